import json

from django.core.management.base import BaseCommand

from project.celery import app
from project.queue_report import INSPECT_TIMEOUT, queue_report


def _seconds(value):
    if value is None:
        return "-"
    if value >= 3600:
        return f"{value / 3600:.1f} h"
    if value >= 60:
        return f"{value / 60:.1f} min"
    return f"{value:.1f} s"


class Command(BaseCommand):
    help = ("One row a queue: messages waiting, the oldest's age, time-to-start p50/p95 over the last hour "
            "against the target (OK/LATE), workers consuming it, tasks running.")
    requires_system_checks = []  # an operator's quick look: under 2 s even on a busy machine

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", dest="as_json", help="print JSON for scripts")

    def handle(self, *args, as_json=False, **options):
        rows, workers_answered = queue_report(app)
        if as_json:
            self.stdout.write(json.dumps({"queues": rows, "workers_answered": workers_answered}))
            return
        header = ("queue", "waiting", "oldest", "p50", "p95", "target", "state", "running", "workers")
        table = [header] + [
            (row["queue"], str(row["waiting"]), _seconds(row["oldest_seconds"]), _seconds(row["p50_seconds"]),
             _seconds(row["p95_seconds"]), _seconds(row["target_seconds"]), row["state"], str(row["running"]),
             ", ".join(row["workers"]) or "NONE")
            for row in rows
        ]
        widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
        for line in table:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1])
        if not workers_answered:
            self.stdout.write(self.style.WARNING(
                f"No worker answered within {INSPECT_TIMEOUT} s: every queue above is without a consumer."))

