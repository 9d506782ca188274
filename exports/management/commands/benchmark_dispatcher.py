"""Benchmark the nightly dispatcher: N saved exports spread over every IANA zone, one simulated day.

    DATABASE_URL=sqlite:///bench.sqlite3 python manage.py migrate
    DATABASE_URL=sqlite:///bench.sqlite3 python manage.py benchmark_dispatcher --saved 100000

Prints the selection query's time per 15-minute tick, the whole dispatch time per tick, and the
number of builds per UTC hour that the schedule produces: each export at its local day's start plus
its stable night offset (exports.saved.scheduling.build_offset), or, with --window-hours 0, at local
midnight as before the offsets.
"""
import datetime
import statistics
import time
from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from exports.models import Domain, ExportDefinition, SavedExport
from exports.saved.scheduling import NIGHT_WINDOW, build_offset, first_due, validate_time_zone
from exports.saved.services import dispatch_due, due_saved_exports

BENCH_PREFIX = "bench-tz-"
TICK = datetime.timedelta(minutes=15)


def all_zones():
    from zoneinfo import available_timezones

    return sorted(name for name in available_timezones() if _valid(name))


def _valid(name):
    try:
        validate_time_zone(name)
        return True
    except ValueError:
        return False


class Command(BaseCommand):
    help = "Time the saved-export dispatcher over one simulated day with N saved exports across all IANA zones."

    def add_arguments(self, parser):
        parser.add_argument("--saved", type=int, default=100_000, help="how many saved exports (default 100,000)")
        parser.add_argument("--start", default="2026-11-23T00:00:00+00:00", help="simulated start (UTC, ISO)")
        parser.add_argument("--markdown", action="store_true", help="print the results as Markdown")
        parser.add_argument("--window-hours", type=float, default=NIGHT_WINDOW.total_seconds() / 3600,
                            help="night window the builds are spread over (default: the scheduler's; "
                                 "0: every build at its local day's start)")

    def handle(self, *args, saved, start, markdown, window_hours, **options):
        if saved < 1:
            raise CommandError("--saved must be at least 1.")
        if not 0 <= window_hours < 24:
            raise CommandError("--window-hours must be at least 0 and less than 24.")
        self.window = datetime.timedelta(hours=window_hours)
        start = datetime.datetime.fromisoformat(start)
        zones = all_zones()
        self._populate(saved, zones, start)

        query_seconds, dispatch_seconds, per_hour = [], [], Counter()
        # One day of ticks, and the tick that ends it: it sends what fell due in the last quarter hour
        # (counted in the 00:00 hour, as the next day's first tick would).
        tick, end = start, start + datetime.timedelta(days=1)
        while tick <= end:
            began = time.perf_counter()
            due = len(list(due_saved_exports(tick)))
            query_seconds.append(time.perf_counter() - began)
            began = time.perf_counter()
            queued = dispatch_due(tick, lambda saved_id: None, offset_of=self._offset)
            dispatch_seconds.append(time.perf_counter() - began)
            assert len(queued) == due, (len(queued), due)
            per_hour[tick.hour] += len(queued)
            tick += TICK

        self._report(saved, len(zones), query_seconds, dispatch_seconds, per_hour, markdown)

    def _offset(self, definition_id):
        return build_offset(definition_id, self.window)

    def _populate(self, count, zones, start):
        """(Re)create the bench rows: one domain per zone, `count` saved exports round-robin over them."""
        self.stderr.write(f"Creating {count:,} saved exports over {len(zones)} zones...")
        began = time.perf_counter()
        with transaction.atomic():
            Domain.objects.filter(slug__startswith=BENCH_PREFIX).delete()
            domains = Domain.objects.bulk_create(
                [Domain(slug=f"{BENCH_PREFIX}{i}", name=zone, time_zone=zone) for i, zone in enumerate(zones)])
            definitions = ExportDefinition.objects.bulk_create(
                [ExportDefinition(domain=domains[i % len(domains)], name=f"Nightly {i}", source="form_submissions",
                                  format="csv", is_daily_saved=True) for i in range(count)],
                batch_size=5_000)
            # Created a second before the simulated day, as if scheduled all along: each export's next
            # build (a day's start plus its offset) falls within the day, once.
            created = start - datetime.timedelta(seconds=1)
            zone_of = {domain.pk: domain.time_zone for domain in domains}
            SavedExport.objects.bulk_create(
                [SavedExport(definition=d, created_at=created,
                             next_build_at=first_due(zone_of[d.domain_id], created, self._offset(d.pk)))
                 for d in definitions],
                batch_size=5_000)
        self.stderr.write(f"  done in {time.perf_counter() - began:.1f} s")

    def _report(self, count, zones, query_seconds, dispatch_seconds, per_hour, markdown):
        def ms(values, fn):
            return f"{fn(values) * 1000:.1f} ms"

        def p95(values):
            return sorted(values)[int(0.95 * (len(values) - 1))]

        builds = sum(per_hour.values())
        peak_hour, peak = max(per_hour.items(), key=lambda item: item[1])
        lines = [
            f"Saved exports: {count:,} over {zones} zones; {builds:,} builds dispatched in one simulated day "
            f"({len(query_seconds)} ticks of 15 minutes); database: {connection.vendor}.",
            f"Selection query per tick: median {ms(query_seconds, statistics.median)}, "
            f"p95 {ms(query_seconds, p95)}, max {ms(query_seconds, max)}.",
            f"Whole dispatch per tick (query + claims): median {ms(dispatch_seconds, statistics.median)}, "
            f"p95 {ms(dispatch_seconds, p95)}, max {ms(dispatch_seconds, max)}.",
            f"Night window: {self.window.total_seconds() / 3600:g} h after each local day's start.",
            f"Busiest UTC hour: {peak_hour:02d}:00 with {peak:,} builds ({peak / builds:.1%} of the day; "
            f"all at 00:00 UTC would be 100%). Mean per hour: {builds / 24:,.0f}; "
            f"busiest / mean: {peak / (builds / 24):.2f}.",
        ]
        if markdown:
            self.stdout.write("\n".join(f"- {line}" for line in lines))
            self.stdout.write("\n| UTC hour | builds | share |\n| --- | ---: | ---: |")
            for hour in range(24):
                self.stdout.write(f"| {hour:02d}:00 | {per_hour[hour]:,} | {per_hour[hour] / builds:.1%} |")
            return
        self.stdout.write("\n".join(lines))
        self.stdout.write("\nBuilds per UTC hour:")
        width = 50
        for hour in range(24):
            bar = "#" * round(width * per_hour[hour] / peak) if peak else ""
            self.stdout.write(f"  {hour:02d}:00 {per_hour[hour]:>7,} {bar}")
        explain = self._explain(timezone.now())
        if explain:
            self.stdout.write(f"\nQuery plan:\n{explain}")

    def _explain(self, now):
        try:
            return due_saved_exports(now).explain()
        except Exception as exc:  # explain is informative only
            return f"(no plan: {exc})"
