from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Print the Celery queue names, comma-separated (for `celery worker -Q`); --table for details."

    def add_arguments(self, parser):
        parser.add_argument("--table", action="store_true", help="show each queue's purpose and target")

    def handle(self, *args, table=False, **options):
        if not table:
            self.stdout.write(",".join(settings.QUEUE_TABLE))
            return
        for name, queue in settings.QUEUE_TABLE.items():
            self.stdout.write(f"{name:24} {queue['target_seconds_to_start']:>7} s  {queue['purpose']}")
