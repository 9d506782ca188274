"""The speed-up of a partitioned export with 1 vs 2 worker processes, through real Celery workers.

    DATABASE_URL=sqlite:///path/bench.sqlite3 python manage.py migrate -v0
    DATABASE_URL=sqlite:///path/bench.sqlite3 REDIS_URL=redis://127.0.0.1:6379/1 MEDIA_ROOT=path \\
        python manage.py benchmark_partitions [--rows 600000] [--format csv] [--parts 4] [--repeat 3]

A domain ``partition-bench-<N>`` is seeded once with N demo rows (keep the database between runs).
Each repeat then builds the same export (all columns of "form_submissions") three ways, each by a
fresh ``celery worker`` on the export queue, started for it and stopped after it:

    whole    concurrency 1, partitioning off (EXPORT_PARTITION_ROWS=0): today's single build
    parts/1  concurrency 1, EXPORT_PARTITIONS=--parts: the parts one after another, then the assembly
    parts/2  concurrency 2, the same parts two at a time

Times are the run's own (finished_at - started_at: from the worker taking the run to the file being
published), so worker start-up and queue waits are left out. The CPU seconds the worker and its pool
processes spent on each build are printed too: on a shared machine they tell whether a slow run did
more work or just waited for a core. The speed-up is parts/1 over parts/2
within the same repeat (paired); the table shows medians and ranges over the repeats. Each repeat
first times a CPU-bound control (two equal jobs in one process, then in two): what the machine
offered two processes at that moment, the ceiling of any speed-up measured beside it. Target: >= 1.6x
for csv on 2 cores. Nothing is asserted; the machine's load is printed with the figures.
"""
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from celery import Celery
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition, ExportRun, FormSubmission
from exports.runs import services

TARGET = 1.6
CASES = (("whole", 1, False), ("parts/1", 1, True), ("parts/2", 2, True))


def _spin(loops):
    total = 0
    for i in range(loops):
        total += i * i
    return total


def machine_parallelism(loops=15_000_000):
    """How much faster two CPU-bound processes finish two equal jobs than one process does, now.

    2.0 on two idle cores; near 1.0 when other load leaves no second core. It bounds what any
    build split over two processes can gain at the same moment.
    """
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(1) as pool:
        pool.map(_spin, [loops, loops])
    one = time.perf_counter() - started
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_spin, [loops, loops])
    return one / (time.perf_counter() - started)


def tree_cpu_seconds(pid):
    """User + system CPU seconds of a worker and its pool processes so far (Linux /proc)."""
    pids = [pid]
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as children:
            pids += [int(child) for child in children.read().split()]
    total = 0.0
    for one in pids:
        try:
            with open(f"/proc/{one}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


class Command(BaseCommand):
    help = "Measure a partitioned export built by 1 vs 2 worker processes (real workers, paired runs)."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=600_000)
        parser.add_argument("--format", choices=["csv", "zip", "xlsx"], default="csv")
        parser.add_argument("--parts", type=int, default=4)
        parser.add_argument("--repeat", type=int, default=3)

    def handle(self, *args, rows, format, parts, repeat, **options):
        definition, user = self._definition(rows)
        self.stdout.write(f"machine: {os.cpu_count()} cores, load {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
                          f"{rows:,} rows, {format}, {parts} parts, database "
                          f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
        times = {name: [] for name, _, _ in CASES}
        parallelism = []
        for attempt in range(1, repeat + 1):
            parallelism.append(machine_parallelism())
            self.stdout.write(f"  repeat {attempt}: the machine gives 2 processes {parallelism[-1]:.2f}× one process")
            for name, concurrency, partitioned in CASES:
                seconds, cpu = self._build(definition, user, format, concurrency, parts if partitioned else 0)
                times[name].append(seconds)
                self.stdout.write(f"  repeat {attempt}: {name:8} {seconds:7.2f} s  (worker CPU {cpu:6.2f} s; "
                                  f"load {os.getloadavg()[0]:.1f})")
        self._report(times, format, parallelism)

    def _definition(self, rows):
        user, _ = get_user_model().objects.get_or_create(username="partition-bench")
        domain = ensure_demo_domain(slug=f"partition-bench-{rows}", name=f"Partition bench {rows}", members=[user])
        have = FormSubmission.objects.filter(domain=domain).count()
        if have < rows:
            self.stdout.write(f"seeding {rows - have:,} rows (once)…")
            add_demo_rows(domain, rows - have)
        elif have > rows:
            raise CommandError(f"Domain {domain.slug} has {have:,} rows, more than {rows:,}.")
        definition, _ = ExportDefinition.objects.get_or_create(
            domain=domain, name="Partition benchmark", defaults={"source": "form_submissions", "format": "csv"})
        return definition, user

    def _build(self, definition, user, format, concurrency, parts):
        # The worker runs without DEBUG, so it needs the key this process has (made up when DEBUG is on).
        env = {"SECRET_KEY": settings.SECRET_KEY, **os.environ, "EXPORT_PARTITION_ROWS": "1" if parts else "0",
               "EXPORT_PARTITIONS": str(parts or 1), "DEBUG": "false"}
        hostname = f"partition-bench-{uuid.uuid4().hex[:8]}@localhost"
        log = tempfile.TemporaryFile()  # the worker's own words, for the error if it dies
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "project", "worker", "-Q", "export_download_queue",
             "--concurrency", str(concurrency), "-n", hostname, "-l", "warning", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_for_worker(worker, hostname, log)
            cpu_before = tree_cpu_seconds(worker.pid)
            run, _ = services.start_export(user, definition, format=format)
            deadline = time.monotonic() + 3600
            while run.is_active:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise CommandError(f"The worker stopped or the export took too long (run {run.pk}).")
                time.sleep(0.2)
                run.refresh_from_db()
            if run.status != ExportRun.Status.SUCCEEDED:
                raise CommandError(f"Run {run.pk} ended {run.status}: {run.error}")
            return (run.finished_at - run.started_at).total_seconds(), tree_cpu_seconds(worker.pid) - cpu_before
        finally:
            stop_process_group(worker)
            log.close()

    def _wait_for_worker(self, worker, hostname, log):
        app = Celery(broker=settings.CELERY_BROKER_URL, set_as_current=False)
        try:
            deadline = time.monotonic() + 60
            while not app.control.ping(destination=[hostname], timeout=0.5):
                if worker.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    words = log.read().decode(errors="replace")[-2000:]
                    raise CommandError(f"The benchmark worker did not start. Its output:\n{words}")
        finally:
            app.close()

    def _report(self, times, format, parallelism):
        pairs = [one / two for one, two in zip(times["parts/1"], times["parts/2"])]
        overhead = [parts / whole for parts, whole in zip(times["parts/1"], times["whole"])]
        whole_vs_two = [whole / two for whole, two in zip(times["whole"], times["parts/2"])]

        def summary(values, unit=""):
            return f"{statistics.median(values):.2f}{unit} (range {min(values):.2f}–{max(values):.2f})"

        self.stdout.write("")
        self.stdout.write("| case | seconds, median (range) |")
        self.stdout.write("|---|---|")
        for name, values in times.items():
            self.stdout.write(f"| {name} | {summary(values)} |")
        self.stdout.write("")
        self.stdout.write(f"speed-up parts/1 ÷ parts/2 (paired): {summary(pairs, '×')}")
        self.stdout.write(f"speed-up whole ÷ parts/2 (paired):   {summary(whole_vs_two, '×')}")
        self.stdout.write(f"cost of partitioning, parts/1 ÷ whole: {summary(overhead, '×')}")
        self.stdout.write(f"what the machine offered 2 processes (CPU-bound control): {summary(parallelism, '×')}")
        verdict = "PASS" if statistics.median(pairs) >= TARGET else "FAIL"
        self.stdout.write(f"{verdict}: {format} speed-up with 2 worker processes >= {TARGET}× "
                          f"(median {statistics.median(pairs):.2f}×; load now {os.getloadavg()[0]:.2f})")


def stop_process_group(process):
    """SIGTERM, then SIGKILL after 30 s, to the process group of `process`; nothing if it has ended."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # the group is gone already (the worker died on its own)
            break
        try:
            process.wait(timeout=30)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()
