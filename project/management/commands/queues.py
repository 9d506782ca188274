from django.conf import settings
from django.core.management.base import BaseCommand

from project.queues import WORKER_GROUPS, queues_of_group, worker_arguments


class Command(BaseCommand):
    help = ("Print the Celery queue names, comma-separated (for `celery worker -Q`); --table for details; "
            "--group NAME for one worker group's queues; --worker NAME for its whole `celery worker` arguments.")

    def add_arguments(self, parser):
        parser.add_argument("--table", action="store_true", help="show each queue's group, target and purpose")
        parser.add_argument("--group", choices=list(WORKER_GROUPS), help="only this worker group's queues")
        parser.add_argument("--worker", choices=list(WORKER_GROUPS),
                            help="the group's worker arguments: queues, node name, concurrency, tasks per child, "
                                 "prefetch")

    def handle(self, *args, table=False, group=None, worker=None, **options):
        if worker:
            self.stdout.write(" ".join(worker_arguments(worker)))
            return
        if group:
            self.stdout.write(",".join(queues_of_group(group)))
            return
        if not table:
            self.stdout.write(",".join(settings.QUEUE_TABLE))
            return
        for name, queue in settings.QUEUE_TABLE.items():
            target = settings.QUEUE_TARGETS[name]
            self.stdout.write(f"{name:24} {queue.get('group', 'interactive'):12} {target:>7} s  {queue['purpose']}")
