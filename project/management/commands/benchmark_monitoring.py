"""What the monitoring hooks cost per task: no-op tasks per second through real workers, with and without.

    python manage.py benchmark_monitoring --tasks 3000 --rounds 7

Use a Redis of its own (REDIS_URL=redis://127.0.0.1:6379/5). Each round starts two workers at once
(solo pool, one process each: the strictest case, since no pool overhead hides the hooks' round
trips to Redis), one with MONITORING_TASK_HOOKS=true and one with false, each on a queue of its own
(swapped every round). Both batches are queued first, while the workers consume another queue;
then both are told to start. Running side by side, the pair shares whatever else the machine is
doing. Tasks/s runs from a batch's first task's start to its last one's. Prints each round's pair,
and the median and range of the per-round overhead.
"""
import os
import statistics
import subprocess
import sys
import time
import uuid

from celery import group
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from project.celery import app
from project.monitoring import client
from project.monitoring_benchmark import MARK_KEY, noop

QUEUES = ("background_queue", "saved_exports_queue")
IDLE_QUEUE = "email_queue"


class Command(BaseCommand):
    help = "No-op tasks per second through real workers with and without the monitoring hooks, paired."

    def add_arguments(self, parser):
        parser.add_argument("--tasks", type=int, default=3000)
        parser.add_argument("--rounds", type=int, default=7)

    def handle(self, *args, tasks, rounds, **options):
        conn = client()
        if any(conn.llen(queue) for queue in QUEUES + (IDLE_QUEUE,)):
            raise CommandError(f"{', '.join(QUEUES)} must be empty: use a Redis of its own for the benchmark.")
        overheads, with_rates, without_rates = [], [], []
        for round_number in range(rounds):
            queue_of = dict(zip((True, False), QUEUES if round_number % 2 == 0 else QUEUES[::-1]))
            rate = self._measure(queue_of, tasks, conn)
            overhead = 1 - rate[True] / rate[False]
            overheads.append(overhead)
            with_rates.append(rate[True])
            without_rates.append(rate[False])
            self.stdout.write(f"round {round_number + 1}: with hooks {rate[True]:,.0f} tasks/s, without "
                              f"{rate[False]:,.0f} tasks/s, overhead {overhead:+.1%}")
        self.stdout.write(
            f"{rounds} rounds of {tasks:,} no-op tasks per worker: with hooks median "
            f"{statistics.median(with_rates):,.0f} tasks/s, without {statistics.median(without_rates):,.0f}; "
            f"overhead median {statistics.median(overheads):+.1%}, range {min(overheads):+.1%} to "
            f"{max(overheads):+.1%} (cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}).")

    def _measure(self, queue_of, tasks, conn):
        batch = uuid.uuid4().hex[:8]
        workers = {hooks: self._start_worker(hooks, batch) for hooks in queue_of}
        try:
            for hostname, _ in workers.values():
                self._wait_for_ping(hostname, workers)
            marks = {}
            for hooks, queue in queue_of.items():
                marks[hooks] = (f"{batch}-{queue}-first", f"{batch}-{queue}-last")
                first, last = marks[hooks]
                group([noop.s(first)] + [noop.s() for _ in range(tasks - 2)] + [noop.s(last)]).apply_async(queue=queue)
            for hooks, queue in queue_of.items():
                app.control.add_consumer(queue, destination=[workers[hooks][0]], reply=True, timeout=5)
            deadline = time.monotonic() + 900
            while not all(conn.exists(MARK_KEY.format(last)) for _, last in marks.values()):
                if time.monotonic() > deadline or any(process.poll() is not None for _, process in workers.values()):
                    raise CommandError("A benchmark worker stopped or did not finish its batch.")
                time.sleep(0.05)
            rates = {}
            for hooks, (first, last) in marks.items():
                started, ended = (float(conn.get(MARK_KEY.format(mark))) for mark in (first, last))
                conn.delete(MARK_KEY.format(first), MARK_KEY.format(last))
                rates[hooks] = (tasks - 1) / (ended - started)
            return rates
        finally:
            for _, process in workers.values():
                process.terminate()
            for _, process in workers.values():
                process.wait(timeout=30)

    def _start_worker(self, hooks, batch):
        hostname = f"bench-{'hooks' if hooks else 'bare'}-{batch}@localhost"
        env = {**os.environ, "MONITORING_TASK_HOOKS": "true" if hooks else "false"}
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "project", "worker", "-Q", IDLE_QUEUE, "-P", "solo",
             "-n", hostname, "-l", "warning", "--without-gossip", "--without-mingle", "--without-heartbeat",
             "--include", "project.monitoring_benchmark"],
            cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return hostname, process

    def _wait_for_ping(self, hostname, workers):
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[hostname], timeout=0.5):
            if time.monotonic() > deadline or any(process.poll() is not None for _, process in workers.values()):
                raise CommandError("A benchmark worker did not start.")
