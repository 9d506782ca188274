import sys
import time

from django.core.management.base import BaseCommand, CommandError

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import Domain


class Command(BaseCommand):
    help = "Add N demo form submissions to a domain (created if missing), with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("--domain", default="demo", help="domain slug (default: demo)")
        parser.add_argument("--rows", type=int, default=10_000)
        parser.add_argument("--time-zone", default="Asia/Kolkata", help="for a new domain")
        parser.add_argument("--batch-size", type=int, default=5_000)

    def handle(self, *args, domain, rows, time_zone, batch_size, **options):
        if rows < 1:
            raise CommandError("--rows must be at least 1.")
        if not Domain.objects.filter(slug=domain).exists():
            ensure_demo_domain(slug=domain, name=domain.replace("-", " ").title(), time_zone=time_zone)
        target = Domain.objects.get(slug=domain)
        started = time.monotonic()
        add_demo_rows(target, rows, batch_size=batch_size, progress=self._bar(started))
        sys.stderr.write("\n")
        elapsed = time.monotonic() - started
        self.stdout.write(self.style.SUCCESS(
            f"Added {rows:,} rows to '{domain}' in {elapsed:.1f} s ({rows / elapsed:,.0f} rows/s)."))

    def _bar(self, started):
        def show(done, total):
            filled = int(30 * done / total)
            rate = done / max(time.monotonic() - started, 1e-6)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done:,}/{total:,} rows, {rate:,.0f}/s")
            sys.stderr.flush()

        return show
