"""A partitioned export against one unsplit build, through real Celery workers: speed, phases, the bar.

    DEBUG=1 DATABASE_URL=sqlite:///<dir>/bench.sqlite3 .venv/bin/python manage.py migrate -v0
    DEBUG=1 DATABASE_URL=sqlite:///<dir>/bench.sqlite3 REDIS_URL=redis://127.0.0.1:<port>/1 MEDIA_ROOT=<dir>/media \
        .venv/bin/python manage.py benchmark_partitions [--rows 1000000] [--format xlsx] [--parts 4] [--repeat 3]

A domain ``partition-bench-<N>`` is seeded once with N demo rows (keep the database between runs).
Each repeat then builds the same export (all columns of "form_submissions") three ways, each by a
fresh ``celery worker`` on the export queue, started for it and stopped after it:

    whole    concurrency 1, partitioning off (EXPORT_PARTITION_ROWS=0): one unsplit build
    parts/1  concurrency 1, EXPORT_PARTITIONS=--parts: the parts one after another, then the assembly
    parts/2  concurrency 2, the same parts two at a time

Times are the run's own (finished_at - started_at: from the worker taking the run to the file being
published), so worker start-up and queue waits are left out. The CPU seconds the worker and its pool
processes spent on each build are printed too: on a shared machine they tell whether a slow run did
more work or just waited for a core. Each repeat first times a CPU-bound control (two equal jobs in
one process, then in two): what the machine offered two processes at that moment, the ceiling of any
speed-up measured beside it. Ratios are paired (the same repeat); the table shows medians and ranges.

Printed with PASS/FAIL (the machine's load beside them):
  - whole ÷ parts/2 >= 1.8× for csv and xlsx (a format that is not split, zip, must simply not be
    slower: >= 1.0×, within the noise of 5 %);
  - the bar of parts/2, sampled every 0.2 s: it never moves back, and after the first 10 % of the
    run its ETA is within 2× of the time actually left (give or take the one second it is shown in).
The phases' costs, read from the worker's log (per part, the assembly, storing), and the time they
predict for 10 million rows on 1, 4 and 16 workers (docs/performance.md, "10 million rows on N machines").
"""
import multiprocessing
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

from celery import Celery
from celery.result import AsyncResult
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from exports.demo import add_demo_rows, ensure_demo_domain, settle_demo_rows
from exports.models import ExportDefinition, ExportRun, FormSubmission
from exports.runs import services
from soil.progress import get_task_progress

TARGETS = {"csv": 1.8, "xlsx": 1.8}  # whole ÷ parts/2; a format that is not split only must not lose
NOT_SLOWER = 0.95
ETA_AFTER, ETA_FACTOR, ETA_SLACK = 0.10, 2.0, 1.0
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


PART_LINE = re.compile(r"part \d+: (\d+) rows in ([\d.]+) s \(CPU ([\d.]+) s\); (\d+) bytes stored in ([\d.]+) s")
ASSEMBLY_LINE = re.compile(r"assembled (\d+) rows, (\d+) bytes in ([\d.]+) s \(CPU ([\d.]+) s\); stored in ([\d.]+) s")
PLAN_LINE = re.compile(r"rows in \d+ parts \(planned and sent in ([\d.]+) s\)")


class Command(BaseCommand):
    help = "Measure a partitioned export against one unsplit build (real workers, paired runs), its phases and its bar."

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, default=1_000_000)
        parser.add_argument("--format", choices=["csv", "zip", "xlsx"], default="xlsx")
        parser.add_argument("--parts", type=int, default=4)
        parser.add_argument("--repeat", type=int, default=3)

    def handle(self, *args, rows, format, parts, repeat, **options):
        definition, user = self._definition(rows)
        self.stdout.write(f"machine: {os.cpu_count()} cores, load {', '.join(f'{x:.2f}' for x in os.getloadavg())}; "
                          f"{rows:,} rows, {format}, {parts} parts, database "
                          f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
        times = {name: [] for name, _, _ in CASES}
        parallelism, bars, phases = [], [], []
        for attempt in range(1, repeat + 1):
            parallelism.append(machine_parallelism())
            self.stdout.write(f"  repeat {attempt}: the machine gives 2 processes {parallelism[-1]:.2f}× one process")
            for name, concurrency, partitioned in CASES:
                build = self._build(definition, user, format, concurrency, parts if partitioned else 0,
                                    watch_bar=name == "parts/2")
                times[name].append(build["seconds"])
                if name == "parts/2":
                    bars.append(build["bar"])
                if partitioned:
                    phases.append(build["phases"])
                self.stdout.write(f"  repeat {attempt}: {name:8} {build['seconds']:7.2f} s  (worker CPU "
                                  f"{build['cpu']:6.2f} s; load {os.getloadavg()[0]:.1f})")
        self._report(times, format, parallelism)
        self._report_bar(bars)
        self._report_phases(phases, rows, times)

    def _definition(self, rows):
        user, _ = get_user_model().objects.get_or_create(username="partition-bench")
        domain = ensure_demo_domain(slug=f"partition-bench-{rows}", name=f"Partition bench {rows}", members=[user])
        have = FormSubmission.objects.filter(domain=domain).count()
        if have < rows:
            self.stdout.write(f"seeding {rows - have:,} rows (once)…")
            add_demo_rows(domain, rows - have)
            settle_demo_rows()
        elif have > rows:
            raise CommandError(f"Domain {domain.slug} has {have:,} rows, more than {rows:,}.")
        definition, _ = ExportDefinition.objects.get_or_create(
            domain=domain, name="Partition benchmark", defaults={"source": "form_submissions", "format": "csv"})
        return definition, user

    def _build(self, definition, user, format, concurrency, parts, watch_bar=False):
        """{"seconds", "cpu", "bar": [(time, percent, eta seconds)], "phases": worker log lines} of one build."""
        # The worker runs without DEBUG, so it needs the key this process has (made up when DEBUG is on).
        env = {"SECRET_KEY": settings.SECRET_KEY, **os.environ, "EXPORT_PARTITION_ROWS": "1" if parts else "0",
               "EXPORT_PARTITIONS": str(parts or 1), "DEBUG": "false"}
        hostname = f"partition-bench-{uuid.uuid4().hex[:8]}@localhost"
        log = tempfile.TemporaryFile()  # the worker's own words: its phases' times, the error if it dies
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "project", "worker", "-Q", "export_download_queue",
             "--concurrency", str(concurrency), "-n", hostname, "-l", "info", "--without-gossip",
             "--without-mingle", "--without-heartbeat"],
            cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_for_worker(worker, hostname, log)
            cpu_before = tree_cpu_seconds(worker.pid)
            run, _ = services.start_export(user, definition, format=format)
            deadline = time.monotonic() + 3600
            bar = []
            while run.is_active:
                if worker.poll() is not None or time.monotonic() > deadline:
                    raise CommandError(f"The worker stopped or the export took too long (run {run.pk}).")
                time.sleep(0.2)
                if watch_bar and run.status == ExportRun.Status.RUNNING:
                    progress = get_task_progress(AsyncResult(run.task_id))
                    if progress.percent is not None:
                        bar.append((time.time(), progress.percent, progress.eta_seconds))
                run.refresh_from_db()
            if run.status != ExportRun.Status.SUCCEEDED:
                raise CommandError(f"Run {run.pk} ended {run.status}: {run.error}")
            cpu = tree_cpu_seconds(worker.pid) - cpu_before
            log.seek(0)
            return {"seconds": (run.finished_at - run.started_at).total_seconds(), "cpu": cpu,
                    "bar": [(t - run.started_at.timestamp(), p, e, run.finished_at.timestamp() - t) for t, p, e in bar],
                    "phases": log.read().decode(errors="replace")}
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
        self.stdout.write("")
        self.stdout.write("| case | seconds, median (range) |")
        self.stdout.write("|---|---|")
        for name, values in times.items():
            self.stdout.write(f"| {name} | {summary(values)} |")
        self.stdout.write("")
        self.stdout.write(f"speed-up whole ÷ parts/2 (paired):   {summary(whole_vs_two, '×')}")
        self.stdout.write(f"speed-up parts/1 ÷ parts/2 (paired): {summary(pairs, '×')}")
        self.stdout.write(f"cost of partitioning, parts/1 ÷ whole: {summary(overhead, '×')}")
        self.stdout.write(f"what the machine offered 2 processes (CPU-bound control): {summary(parallelism, '×')}")
        target = TARGETS.get(format, NOT_SLOWER)
        median = statistics.median(whole_vs_two)
        what = (f"{format} with 2 worker processes >= {target}× one unsplit build" if format in TARGETS
                else f"{format} (built whole, not split) no slower with 2 worker processes: >= {target}×")
        self.stdout.write(f"{'PASS' if median >= target else 'FAIL'}: {what} (median {median:.2f}×; "
                          f"control {statistics.median(parallelism):.2f}×; load now {os.getloadavg()[0]:.2f})")

    def _report_bar(self, bars):
        samples = [sample for bar in bars for sample in bar]
        if not samples:
            return
        backwards = sum(1 for bar in bars for (_, a, *_), (_, b, *_) in zip(bar, bar[1:]) if b < a)
        self.stdout.write(f"{'PASS' if not backwards else 'FAIL'}: the bar of parts/2 never moved back "
                          f"({len(samples)} samples, {backwards} steps back)")
        judged, worst = 0, []
        for bar in bars:
            length = bar[-1][0] + bar[-1][3] if bar else 0
            for elapsed, _percent, eta, left in bar:
                if elapsed < ETA_AFTER * length or eta is None:
                    continue
                judged += 1
                if not left / ETA_FACTOR - ETA_SLACK <= eta <= left * ETA_FACTOR + ETA_SLACK:
                    worst.append(f"{eta} s shown, {left:.1f} s left")
        self.stdout.write(f"{'PASS' if not worst else 'FAIL'}: after 10 % of the run the ETA was within 2× "
                          f"(± {ETA_SLACK:.0f} s) of the time left in {judged - len(worst)} of {judged} samples"
                          + (f"; off: {', '.join(worst[:5])}" if worst else ""))

    def _report_phases(self, phases, rows, times):
        """The phases' costs from the worker's log, and what they predict (docs/performance.md's model)."""
        logs = "\n".join(phases)
        parts = [tuple(map(float, match)) for match in PART_LINE.findall(logs)]  # rows, s, CPU s, bytes, s
        joins = [tuple(map(float, match)) for match in ASSEMBLY_LINE.findall(logs)]  # rows, bytes, s, CPU s, s
        plans = [float(s) for s in PLAN_LINE.findall(logs)]
        if not parts or not joins or not plans:
            return
        wall_row = [seconds / count for count, seconds, _, _, _ in parts if count]
        cpu_row = [cpu / count for count, _, cpu, _, _ in parts if count]
        storing = [size / seconds for _, _, _, size, seconds in parts if seconds] + \
                  [size / seconds for _, size, _, _, seconds in joins if seconds]
        join_row = [seconds / count for count, _, seconds, _, _ in joins if count]
        size_row = statistics.median(size / count for count, size, _, _, _ in joins)
        us = 1e6
        self.stdout.write("")
        self.stdout.write(f"phases (worker log, {len(parts)} parts, {len(joins)} assemblies):")
        self.stdout.write(f"  planning (count, boundaries, sending): {summary(plans, ' s')}")
        self.stdout.write(f"  a part, per row: {summary([us * c for c in cpu_row], ' µs CPU')}; "
                          f"wall {summary([us * c for c in wall_row], ' µs')}")
        self.stdout.write(f"  the assembly, per row: {summary([us * c for c in join_row], ' µs')} "
                          f"({size_row:.1f} bytes per row)")
        self.stdout.write(f"  storing files: {summary([t / 1e6 for t in storing], ' MB/s')}")
        # T(R, N) = R × (planning + (part + storing a part) ÷ N + assembly + storing the file), per row: the
        # parts run N at a time, the rest once (the database and the storage keeping up with N readers).
        plan, part, join = statistics.median(plans) / rows, statistics.median(cpu_row), statistics.median(join_row)
        throughput = statistics.median(storing)
        for count in (rows, 10_000_000):
            store = size_row / throughput
            predicted = [f"{workers}: {count * (plan + (part + store) / workers + join + store):.1f} s"
                         for workers in (1, 2, 4, 16)]
            self.stdout.write(f"  model, {count:,} rows on N worker processes: {'; '.join(predicted)}")
        self.stdout.write(f"  measured here, {rows:,} rows: parts/1 {statistics.median(times['parts/1']):.1f} s, "
                          f"parts/2 {statistics.median(times['parts/2']):.1f} s")


def summary(values, unit=""):
    return f"{statistics.median(values):.2f}{unit} (range {min(values):.2f}–{max(values):.2f})"


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
