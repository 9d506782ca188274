"""Benchmark the real export path against the plainest writer loops, and its peak memory.

    DEBUG=1 DATABASE_URL=sqlite:////tmp/bench.sqlite3 python manage.py migrate -v0
    DEBUG=1 DATABASE_URL=sqlite:////tmp/bench.sqlite3 python manage.py benchmark_exports \
        [--rows 100000 1000000] [--formats xlsx csv] [--repeat 1] [--markdown] [--csv-naive-baseline]

For each N, a domain ``bench-<N>`` is seeded once with exactly N demo rows (keep the
database between runs: seeding runs at ~15k rows/s). Each (format, N) case then runs in
a fresh child process (this command with the hidden ``--one FORMAT N --json``), which:

1. notes the process's RSS, resets the kernel's RSS high-water mark (Linux
   ``/proc/self/clear_refs``), then times ``write_export(definition, {"format": fmt}, path)``:
   the real code path (row reading + conversion + writing), all columns of the
   "form_submissions" source, into a temporary directory;
2. reads the peak RSS right after the export (``VmHWM``; ``ru_maxrss`` where the mark
   cannot be reset), before anything else is allocated, so the peak is the export's;
3. only then fetches the same rows into memory through the ORM (untimed), prepares them
   the way the bare writer needs them (aware datetimes converted to the domain's time
   zone; made naive for openpyxl) and times ``bare_xlsx`` / ``bare_csv`` writing them.

Ratios are of wall-clock seconds (CPU seconds are shown too: on a shared machine they
say whether other load skewed a run). With ``--repeat``, each case runs that many
times, each in a fresh process, and the best times are kept.

Targets: xlsx export <= 1.3x bare openpyxl write-only; csv <= 2x bare csv.writer;
peak memory (export peak - RSS before) grows by less than 50 MB from the smallest
to the largest N.
"""
import argparse
import gc
import json
import os
import platform
import re
import resource
import shlex
import sqlite3
import subprocess
import sys
import tempfile
import time
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from exports.building import planned_rows, write_export
from exports.demo_data import add_demo_rows, ensure_demo_domain
from exports.models import Domain, ExportDefinition, FormSubmission
from exports.writers import bare_csv, bare_xlsx, get_writer

SOURCE = "form_submissions"
DEFINITION_NAME = "Benchmark (all columns)"
TARGET_RATIO = {"xlsx": 1.3, "csv": 2.0}
BARE = {"xlsx": bare_xlsx, "csv": bare_csv}
MEMORY_GROWTH_LIMIT_MB = 50.0
MB = 1_000_000  # memory is reported in MB (10^6 bytes), as the target is stated


def _current_rss():
    """Resident set size of this process now, in bytes (Linux /proc; else the peak so far)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _peak_rss()


def _peak_rss():
    """Peak resident set size of this process, in bytes (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _reset_peak_rss():
    """Reset the kernel's RSS high-water mark where supported (Linux >= 4.0); True if done.

    Only then is ru_maxrss after the export the export's own peak even if start-up had
    peaked higher; the child process also starts small, so without it the figure is still
    the export's as long as the export peaks above start-up.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _vm_hwm():
    """VmHWM (the peak RSS, which clear_refs resets; ru_maxrss is not reset) in bytes, or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _masked_database_url():
    url = os.environ.get("DATABASE_URL", "")
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def command_line():
    env = []
    for name in ("DEBUG", "DATABASE_URL", "EXPORT_CHUNK_SIZE"):
        if name in os.environ:
            value = _masked_database_url() if name == "DATABASE_URL" else os.environ[name]
            env.append(f"{name}={shlex.quote(value)}")
    args = ["python", "manage.py", *sys.argv[1:]] if sys.argv[0].endswith("manage.py") else sys.argv
    return " ".join([*env, *(shlex.quote(a) for a in args)])


def machine_description():
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
        memory = f"{mem_kib / 2**20:.1f} GiB RAM"
    except (OSError, ValueError, IndexError):
        memory = "RAM unknown"
    import django
    import openpyxl

    db = connection.vendor
    if db == "sqlite":
        db = f"SQLite {sqlite3.sqlite_version}"
    else:
        connection.ensure_connection()
        db = f"{connection.display_name} {'.'.join(map(str, connection.get_database_version()))}"
    return (f"{os.cpu_count()} CPUs, {memory}; {platform.system()} {platform.machine()}; "
            f"Python {platform.python_version()}; Django {django.__version__}; "
            f"openpyxl {openpyxl.__version__}; {db}; EXPORT_CHUNK_SIZE={settings.EXPORT_CHUNK_SIZE}")


def bench_definition(rows, log=None):
    """The definition exporting all columns of the domain bench-<rows>, seeded with exactly `rows` rows."""
    slug = f"bench-{rows}"
    domain = Domain.objects.filter(slug=slug).first() or ensure_demo_domain(slug=slug, name=f"Bench {rows:,}")
    have = FormSubmission.objects.filter(domain=domain).count()
    if have > rows:  # not ours or damaged: start again so that the count is exact
        if log:
            log(f"{slug} has {have:,} rows, more than {rows:,}: deleting them and seeding again")
        FormSubmission.objects.filter(domain=domain).delete()
        have = 0
    if have < rows:
        if log:
            log(f"seeding {slug}: {rows - have:,} rows (once; keep this database between runs)...")
        started = time.perf_counter()
        add_demo_rows(domain, rows - have, batch_size=10_000)
        if log:
            log(f"  seeded in {time.perf_counter() - started:.1f} s")
    definition, _ = ExportDefinition.objects.get_or_create(
        domain=domain, name=DEFINITION_NAME, defaults={"source": SOURCE, "columns": [], "format": "xlsx"})
    if definition.source != SOURCE or definition.columns or definition.date_from or definition.date_to:
        definition.source, definition.columns, definition.date_from, definition.date_to = SOURCE, [], None, None
        definition.save()
    return definition


def fetch_bare_rows(definition, fmt, naive=None):
    """All rows of the export in memory, prepared the way the bare writer needs them.

    Read through the ORM (``values_list``), independently of the export's own reading
    code; aware datetimes are converted to the domain's time zone (the wall-clock time
    the export writes), and made naive for openpyxl, which refuses aware datetimes.
    csv.writer takes them as they are (aware; ``bare_csv``: "the very same rows as
    CsvWriter"), unless ``naive`` asks for naive ones for csv too (``--csv-naive-baseline``).
    """
    queryset, columns = planned_rows(definition, {})
    tz = ZoneInfo(definition.domain.time_zone)
    make_naive = fmt == "xlsx" if naive is None else naive
    datetime_indexes = [i for i, c in enumerate(columns) if c.type == "datetime"]
    rows = []
    for row in queryset.values_list(*[c.key for c in columns]).iterator(chunk_size=settings.EXPORT_CHUNK_SIZE):
        if datetime_indexes:
            row = list(row)
            for i in datetime_indexes:
                value = row[i]
                if getattr(value, "tzinfo", None) is not None:
                    value = value.astimezone(tz)
                    row[i] = value.replace(tzinfo=None) if make_naive else value
            row = tuple(row)
        rows.append(row)
    return [c.label for c in columns], rows


def run_one(fmt, rows, naive_baseline=False):
    """One measured case in this (fresh) process; returns a dict of results."""
    definition = ExportDefinition.objects.select_related("domain").get(
        domain__slug=f"bench-{rows}", name=DEFINITION_NAME)
    extension = get_writer(fmt).file_extension
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp:
        path = os.path.join(tmp, f"export{extension}")
        bare_path = os.path.join(tmp, f"bare{extension}")
        connection.ensure_connection()
        gc.collect()
        peak_reset = _reset_peak_rss()
        rss_before = _current_rss()
        maxrss_before = _peak_rss()
        started, started_cpu = time.perf_counter(), time.process_time()
        written = write_export(definition, {"format": fmt}, path)
        export_seconds = time.perf_counter() - started
        export_cpu = time.process_time() - started_cpu
        # Read the peak now, before the bare baseline materialises its rows.
        maxrss_after = _peak_rss()
        hwm = _vm_hwm() if peak_reset else None
        export_peak = hwm if hwm is not None else maxrss_after
        file_bytes = os.path.getsize(path)
        os.remove(path)
        if written != rows:
            raise CommandError(f"The export wrote {written:,} rows, expected {rows:,}.")

        started = time.perf_counter()
        headers, bare_rows = fetch_bare_rows(definition, fmt, naive=True if naive_baseline else None)
        fetch_seconds = time.perf_counter() - started
        if len(bare_rows) != rows:
            raise CommandError(f"Fetched {len(bare_rows):,} rows, expected {rows:,}.")
        gc.collect()
        started, started_cpu = time.perf_counter(), time.process_time()
        BARE[fmt](bare_path, headers, bare_rows)
        bare_seconds = time.perf_counter() - started
        bare_cpu = time.process_time() - started_cpu
        bare_bytes = os.path.getsize(bare_path)
        os.remove(bare_path)
    return {
        "format": fmt, "rows": rows, "export_seconds": export_seconds, "bare_seconds": bare_seconds,
        "export_cpu": export_cpu, "bare_cpu": bare_cpu,
        "fetch_seconds": fetch_seconds, "rss_before": rss_before, "maxrss_before": maxrss_before,
        "export_peak_rss": export_peak, "maxrss_after_export": maxrss_after, "peak_reset": peak_reset,
        "file_bytes": file_bytes, "bare_file_bytes": bare_bytes,
    }


def combine(runs):
    """Several runs of one case: best (minimum) times, highest memory growth."""
    best = dict(min(runs, key=lambda r: r["export_seconds"]))
    for key in ("export_seconds", "bare_seconds", "export_cpu", "bare_cpu", "fetch_seconds"):
        best[key] = min(r[key] for r in runs)
    worst = max(runs, key=lambda r: r["export_peak_rss"] - r["rss_before"])
    best.update({k: worst[k] for k in ("rss_before", "export_peak_rss")})
    best["runs"] = len(runs)
    return best


def growth_mb(r):
    return (r["export_peak_rss"] - r["rss_before"]) / MB


TABLE_HEADERS = ["format", "rows", "export s", "rows/s", "bare s", "export / bare", "target",
                 "CPU s export / bare", "RSS before → export peak (MB)", "peak − before (MB)", "file (MB)"]


def table_rows(results):
    lines = []
    for r in results:
        lines.append([
            r["format"], f"{r['rows']:,}", f"{r['export_seconds']:.2f}",
            f"{r['rows'] / r['export_seconds']:,.0f}", f"{r['bare_seconds']:.2f}",
            f"{r['export_seconds'] / r['bare_seconds']:.2f}", f"≤ {TARGET_RATIO[r['format']]:.1f}",
            f"{r['export_cpu']:.2f} / {r['bare_cpu']:.2f} = {r['export_cpu'] / r['bare_cpu']:.2f}",
            f"{r['rss_before'] / MB:.1f} → {r['export_peak_rss'] / MB:.1f}",
            f"{growth_mb(r):.1f}", f"{r['file_bytes'] / MB:.1f}",
        ])
    return lines


def table(results, markdown):
    lines = table_rows(results)
    if markdown:
        out = ["| " + " | ".join(TABLE_HEADERS) + " |",
               "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(TABLE_HEADERS))) + " |"]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(TABLE_HEADERS)]

    def fmt_row(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([fmt_row(TABLE_HEADERS), fmt_row(["-" * w for w in widths]), *map(fmt_row, lines)])


def verdicts(results):
    lines = []
    ok_all = True
    for r in results:
        ratio = r["export_seconds"] / r["bare_seconds"]
        target = TARGET_RATIO[r["format"]]
        ok = ratio <= target
        ok_all &= ok
        lines.append(f"{'PASS' if ok else 'FAIL'}  {r['format']} {r['rows']:,} rows: export / bare = "
                     f"{ratio:.2f} (target ≤ {target:.1f}; {r['export_seconds']:.2f} s vs {r['bare_seconds']:.2f} s; "
                     f"CPU time ratio {r['export_cpu'] / r['bare_cpu']:.2f})")
    for fmt in dict.fromkeys(r["format"] for r in results):
        cases = sorted((r for r in results if r["format"] == fmt), key=lambda r: r["rows"])
        if len(cases) < 2:
            continue
        small, large = cases[0], cases[-1]
        growth = growth_mb(large) - growth_mb(small)
        ok = growth < MEMORY_GROWTH_LIMIT_MB
        ok_all &= ok
        lines.append(f"{'PASS' if ok else 'FAIL'}  {fmt} peak memory growth {small['rows']:,} → "
                     f"{large['rows']:,} rows: {growth:+.1f} MB (target < {MEMORY_GROWTH_LIMIT_MB:.0f} MB; "
                     f"export peak − RSS before: {growth_mb(small):.1f} → {growth_mb(large):.1f} MB; "
                     f"absolute peak {small['export_peak_rss'] / MB:.1f} → {large['export_peak_rss'] / MB:.1f} MB)")
    return lines, ok_all


class Command(BaseCommand):
    help = ("Time write_export for N rows against bare openpyxl / csv.writer on the same rows, "
            "and its peak memory; prints a table and PASS/FAIL lines for the targets.")

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
        parser.add_argument("--formats", nargs="+", choices=sorted(BARE), default=["xlsx", "csv"])
        parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
        parser.add_argument("--repeat", type=int, default=1,
                            help="runs per case (each in a fresh process); best times are kept")
        parser.add_argument("--csv-naive-baseline", action="store_true",
                            help="give bare csv.writer naive local datetimes (str() without an offset, "
                                 "the text the export writes): a stricter baseline than the default aware ones")
        parser.add_argument("--one", nargs=2, metavar=("FORMAT", "ROWS"), help=argparse.SUPPRESS)
        parser.add_argument("--json", dest="as_json", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args, rows, formats, markdown, repeat, one, as_json, csv_naive_baseline, **options):
        if one:
            fmt, n = one[0], int(one[1])
            if fmt not in BARE:
                raise CommandError(f"Unknown format {fmt!r}.")
            result = run_one(fmt, n, naive_baseline=csv_naive_baseline)
            self.stdout.write(json.dumps(result, sort_keys=True) if as_json else repr(result))
            return
        if any(n < 1 for n in rows) or repeat < 1:
            raise CommandError("--rows and --repeat must be at least 1.")
        rows = sorted(dict.fromkeys(rows))
        log = lambda message: self.stderr.write(message)  # noqa: E731
        self.stdout.write(f"Command: {command_line()}")
        self.stdout.write(f"Machine: {machine_description()}")
        for n in rows:
            bench_definition(n, log=log)
        connection.close()  # the children open their own connections
        results = []
        for fmt in formats:
            for n in rows:
                runs = []
                for attempt in range(repeat):
                    log(f"running {fmt} {n:,} rows" + (f" ({attempt + 1}/{repeat})" if repeat > 1 else "") + "...")
                    runs.append(self._child(fmt, n, csv_naive_baseline))
                    r = runs[-1]
                    log(f"  export {r['export_seconds']:.2f} s (CPU {r['export_cpu']:.2f}), bare "
                        f"{r['bare_seconds']:.2f} s (CPU {r['bare_cpu']:.2f}), peak {growth_mb(r):.1f} MB above start")
                results.append(combine(runs))
        self.stdout.write("")
        self.stdout.write(table(results, markdown))
        self.stdout.write("")
        lines, ok_all = verdicts(results)
        bullet = "- " if markdown else ""
        for line in lines:
            self.stdout.write(bullet + line)
        self.stdout.write("")
        baseline = ("naive local datetimes for csv too (--csv-naive-baseline)" if csv_naive_baseline
                    else "datetimes in the domain's time zone, naive for openpyxl")
        self.stdout.write(
            "Export = write_export() (DB read + conversion + writing), timed in a fresh process; bare = "
            "bare_xlsx / bare_csv on the same rows fetched into memory afterwards, " + baseline +
            " (only the writing timed). Ratios are of wall-clock seconds. Peak RSS read from the kernel "
            "right after the export, before the bare rows are fetched. MB = 10^6 bytes.")
        if repeat > 1:
            self.stdout.write(f"{repeat} runs per case; best times, highest memory growth.")
        self.stdout.write("ALL TARGETS MET" if ok_all else "SOME TARGETS MISSED")

    def _child(self, fmt, n, csv_naive_baseline=False):
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        proc = subprocess.run(
            [sys.executable, manage, "benchmark_exports", "--one", fmt, str(n), "--json",
             *(["--csv-naive-baseline"] if csv_naive_baseline else [])],
            cwd=settings.BASE_DIR, env=os.environ.copy(), capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise CommandError(f"The child process for {fmt} {n:,} failed:\n{proc.stderr[-4000:]}")
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise CommandError(f"No result from the child process for {fmt} {n:,}:\n{proc.stdout[-2000:]}")

