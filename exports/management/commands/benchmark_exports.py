"""Benchmark the real export path, each run paired with its own baseline, and its peak memory.

    DEBUG=1 DATABASE_URL=sqlite:///bench.sqlite3 python manage.py migrate -v0
    DEBUG=1 DATABASE_URL=sqlite:///bench.sqlite3 python manage.py benchmark_exports \\
        [--rows 100000 1000000] [--formats xlsx csv] [--repeat 3] [--engine streaming] \\
        [--header-cost] [--libraries] [--writer] [--markdown]

For each N, a domain ``bench-<N>`` is seeded once with exactly N demo rows (keep the database
between runs). Each run of a (format, N) case is a fresh child process (this command with the
hidden ``--one FORMAT N``) that measures, in this order:

1. the export: ``write_export(definition, {"format": fmt}, path)``, the function the Celery task
   calls (row count, database read, conversion, writing), all 11 columns of "form_submissions",
   wall and CPU seconds, and its peak RSS (the kernel's high-water mark, reset first);
2. the database read alone: the same ``row_chunks`` the export reads, consumed and discarded
   (the floor no writer can go under); for a csv that PostgreSQL renders (``exports.files.pg_copy``,
   marked "PostgreSQL COPY"), receiving its rendered rows;
3. the baseline, paired with this export: the same rows fetched into memory (untimed, after the
   peak was read), then only the plainest writer timed: ``bare_xlsx`` (openpyxl write-only,
   ``ws.append`` per row) or ``bare_csv`` (one ``csv.writer.writerows``);
4. with ``--plain-reader``, the export (and the database read) go through the reference reader,
   ``values_list().iterator()`` (``row_chunks(..., reader="reference")``), instead of the fast one
   (what the fast reader saves); with ``--header-cost`` (xlsx): the streaming engine with and without the header styling on
   those in-memory rows; with ``--libraries`` (xlsx): other xlsx libraries on the same rows,
   where installed (xlsxwriter constant_memory, rustpy-xlsxwriter), for the engine choice; with
   ``--writer`` (xlsx): the streaming writer alone on those rows (fed in ``EXPORT_CHUNK_SIZE`` chunks,
   as an export feeds it) as configured and with each deflate (stdlib zlib, zlib-ng) on one thread
   and on two, in a rotating order, each against the compression floor: zlib level 6 (the stdlib's)
   of the very sheet XML it wrote, only the compression timed.

Each run gives a paired ratio (export against its own baseline); the table shows the median and
the range (min-max) over the repeats, of wall-clock ratios and of CPU ratios. Targets:
xlsx export >= 8x faster than bare openpyxl in CPU time; csv <= 2x bare csv.writer; peak memory growth
< 50 MB from the smallest to the largest N; the streaming writer (``--writer``) <= 1.3x the CPU of
zlib level 6 of its own XML.

``--chunk-sizes 500 2000`` measures something else, in place of the targets: the export alone (step 1)
with ``EXPORT_CHUNK_SIZE`` set to each size in turn, interleaved in each repeat, and each run's CPU
paired with the first size's run of the same repeat (docs/performance.md, "Chunk size").
"""
import argparse
import csv
import gc
import json
import os
import platform
import re
import resource
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections import deque
from contextlib import nullcontext
from unittest.mock import patch
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import override_settings
from openpyxl import Workbook

from exports.conf import exports_conf
from exports.demo import add_demo_rows, ensure_demo_domain, settle_demo_rows
from exports.files import export_file as building
from exports.files import pg_copy
from exports.files.export_file import planned_rows, write_export
from exports.files.rows import reference_chunks
from exports.models import Domain, ExportDefinition, FormSubmission
from exports.writers import XLSX_ENGINES, CsvWriter, StreamingXlsxWriter, get_writer
from exports.writers.zip_stream import DEFAULT_DEFLATER, DEFLATERS

SOURCE = "form_submissions"
DEFINITION_NAME = "Benchmark (all columns)"
XLSX_MIN_SPEEDUP = 8.0   # bare openpyxl / export, CPU time
WRITER_MAX_FLOOR_RATIO = 1.3  # streaming writer CPU / zlib level 6 of its own sheet XML
CSV_MAX_RATIO = 2.0      # export / bare csv.writer
HEADER_MAX_COST = 0.10   # styled / plain - 1, streaming engine
MEMORY_GROWTH_LIMIT_MB = 50.0
MB = 1_000_000  # memory is reported in MB (10^6 bytes), as the target is stated


def bare_xlsx(path, headers, rows):
    """The plainest openpyxl write-only loop: the baseline the xlsx export is measured against.

    openpyxl refuses aware datetimes, so it gets rows whose datetimes are already naive local
    time. No sheet splitting: the benchmark stays under one sheet's worth of rows.
    """
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Export")
    ws.append(headers)
    for row in rows:
        ws.append(row)
    wb.save(path)


def bare_csv(path, headers, rows):
    """The plainest csv.writer loop (``writerows``): the baseline the csv export is measured against."""
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(headers)
        writer.writerows(rows)


BARE = {"xlsx": bare_xlsx, "csv": bare_csv}


class PlainHeaderXlsxWriter(StreamingXlsxWriter):
    """The streaming engine without the header styling (no bold, frozen row, filter or widths),
    to measure what the styling costs."""

    def _sheet_head(self, dimension=""):
        header = "".join(f'<c t="inlineStr"><is><t>{h}</t></is></c>' for h in self.headers)
        return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet '
                'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
                f'{dimension}<sheetData><row>{header}</row>')

    def _sheet_tail(self, rows):
        return "</sheetData></worksheet>"

    def _defined_names(self, titles):
        return ""


def timed(function, *args):
    """(result, wall seconds, CPU seconds) of ``function(*args)``."""
    gc.collect()
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return result, time.perf_counter() - wall, time.process_time() - cpu


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
            f"openpyxl {openpyxl.__version__}; {db}; EXPORT_CHUNK_SIZE={exports_conf.EXPORT_CHUNK_SIZE}")


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
        settle_demo_rows()
        if log:
            log(f"  seeded in {time.perf_counter() - started:.1f} s")
    definition, _ = ExportDefinition.objects.get_or_create(
        domain=domain, name=DEFINITION_NAME, defaults={"source": SOURCE, "columns": [], "format": "xlsx"})
    if definition.source != SOURCE or definition.columns or definition.date_from or definition.date_to:
        definition.source, definition.columns, definition.date_from, definition.date_to = SOURCE, [], None, None
        definition.save()
    return definition


def fetch_bare_rows(definition):
    """All rows of the export in memory, prepared the way the bare writers need them.

    Read through the ORM (``values_list``), independently of the export's own reading code;
    aware datetimes become naive wall-clock time in the domain's time zone: openpyxl refuses
    aware datetimes, and csv.writer's ``str()`` of a naive one is exactly the text the export
    writes (the aware one's offset would make the baseline write more, i.e. look slower).
    """
    queryset, columns = planned_rows(definition, {})
    tz = ZoneInfo(definition.domain.time_zone)
    datetime_indexes = [i for i, c in enumerate(columns) if c.type == "datetime"]
    rows = []
    for row in queryset.values_list(*[c.key for c in columns]).iterator(chunk_size=exports_conf.EXPORT_CHUNK_SIZE):
        if datetime_indexes:
            row = list(row)
            for i in datetime_indexes:
                value = row[i]
                if getattr(value, "tzinfo", None) is not None:
                    row[i] = value.astimezone(tz).replace(tzinfo=None)
            row = tuple(row)
        rows.append(row)
    return [str(c.label) for c in columns], rows


def read_rows(definition, copy=False, reader="fast"):
    """Read the export's rows as ``write_export`` does, and discard them: the database floor.

    ``copy``: the csv export's rows as PostgreSQL renders them (``exports.files.pg_copy``).
    """
    queryset, columns = planned_rows(definition, {})
    tz = ZoneInfo(definition.domain.time_zone)
    if copy:
        with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp, \
                CsvWriter(os.path.join(tmp, "unused.csv"), [str(c.label) for c in columns], [c.type for c in columns]) as writer:
            for _ in pg_copy.csv_chunks(queryset, columns, tz, writer, exports_conf.EXPORT_CHUNK_SIZE):
                pass
        return
    chunks = building.row_chunks(queryset, [c.key for c in columns], exports_conf.EXPORT_CHUNK_SIZE, tz=tz,
                                 datetime_keys=[c.key for c in columns if c.type == "datetime"], reader=reader)
    for chunk in chunks:
        deque(chunk, maxlen=0)


def library_candidates(path, headers, rows):
    """{library: CPU seconds} for other xlsx writers on the same in-memory rows, where installed."""
    results = {}
    try:
        import xlsxwriter
    except ImportError:
        pass
    else:
        def write_xlsxwriter():
            wb = xlsxwriter.Workbook(path, {"constant_memory": True, "default_date_format": "yyyy-mm-dd"})
            ws = wb.add_worksheet("Export")
            ws.write_row(0, 0, headers)
            for index, row in enumerate(rows, start=1):
                ws.write_row(index, 0, row)
            wb.close()
        results["xlsxwriter constant_memory"] = timed(write_xlsxwriter)[2]
    try:
        import rustpy_xlsxwriter
    except ImportError:
        pass
    else:
        def write_rustpy():
            rustpy_xlsxwriter.write_worksheet((dict(zip(headers, row)) for row in rows), path,
                                             sheet_name="Export")
        results["rustpy-xlsxwriter (rows as dicts)"] = timed(write_rustpy)[2]
    return results


def writer_variants():
    """{name: StreamingXlsxWriter keyword arguments}: as configured first, then every deflate on one
    thread and on two."""
    variants = {"as configured": {}}
    for deflater in DEFLATERS:
        for threaded in (False, True):
            variants[f"{deflater}, {'two threads' if threaded else 'one thread'}"] = {
                "deflater": deflater, "threaded": threaded}
    return variants


def compression_floor(path):
    """CPU seconds of zlib level 6 (the stdlib's, raw deflate) of the sheets' XML of the xlsx at ``path``,
    read back a MiB at a time; only the compression is timed."""
    cpu = 0.0
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if not name.startswith("xl/worksheets/"):
                continue
            compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
            with z.open(name) as sheet:
                while block := sheet.read(1 << 20):
                    started = time.process_time()
                    compressor.compress(block)
                    cpu += time.process_time() - started
            started = time.process_time()
            compressor.flush()
            cpu += time.process_time() - started
    return cpu


def time_writer(path, headers, types, rows, chunk_size):
    """{variant: {cpu, wall, floor_cpu, file_bytes}}: the streaming writer alone on ``rows`` in memory,
    each variant followed by the compression floor of the file it wrote."""
    results = {}
    variants = writer_variants()
    names = list(variants)
    shift = os.getpid() % len(names)  # a rotating order over the runs: no variant always goes first
    for name in names[shift:] + names[:shift]:
        def write(kwargs=variants[name]):
            with StreamingXlsxWriter(path, headers, types, **kwargs) as writer:
                for start in range(0, len(rows), chunk_size):
                    writer.write_rows(rows[start:start + chunk_size])
        _, wall, cpu = timed(write)
        results[name] = {"cpu": cpu, "wall": wall, "floor_cpu": compression_floor(path),
                         "file_bytes": os.path.getsize(path)}
        os.remove(path)
    return results


def reference_row_chunks(queryset, keys, chunk_size, tz=None, datetime_keys=(), reader=None):
    """``row_chunks`` always by the reference reader (``values_list().iterator()``): what the fast one saves."""
    return reference_chunks(queryset, keys, chunk_size, tz=tz, datetime_keys=datetime_keys)


def run_one(fmt, rows, engine, header_cost=False, libraries=False, plain_reader=False, writer=False,
            export_only=False):
    """One measured run in this (fresh) process; returns a dict of results (`export_only`: the export's
    figures alone, without the read, the baseline and the rest)."""
    definition = ExportDefinition.objects.select_related("domain").get(
        domain__slug=f"bench-{rows}", name=DEFINITION_NAME)
    extension = get_writer(fmt).file_extension
    result = {"format": fmt, "rows": rows, "engine": engine if fmt == "xlsx" else None}
    reader = patch.object(building, "row_chunks", reference_row_chunks) if plain_reader else nullcontext()
    if plain_reader:
        result["reader"] = "reference"
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp, reader, \
            override_settings(EXPORT_XLSX_ENGINE=engine):
        path = os.path.join(tmp, f"export{extension}")
        connection.ensure_connection()
        gc.collect()
        peak_reset = _reset_peak_rss()
        rss_before = _current_rss()
        copied = []  # did the csv go through PostgreSQL's COPY (exports.files.pg_copy)?

        def csv_chunks(*args, _real=pg_copy.csv_chunks):
            chunks = _real(*args)
            copied.append(chunks is not None)
            return chunks

        with patch.object(pg_copy, "csv_chunks", csv_chunks):
            written, export_wall, export_cpu = timed(write_export, definition, {"format": fmt}, path)
        result["copy"] = any(copied)
        hwm = _vm_hwm() if peak_reset else None
        # At least the size it started at: the kernel syncs its per-thread RSS counters in batches, so
        # the high-water mark of a small export could read a few pages under the size read before it.
        export_peak = max(hwm if hwm is not None else _peak_rss(), rss_before)
        if written != rows:
            raise CommandError(f"The export wrote {written:,} rows, expected {rows:,}.")
        result.update(export_wall=export_wall, export_cpu=export_cpu, rss_before=rss_before,
                      export_peak_rss=export_peak, file_bytes=os.path.getsize(path))
        os.remove(path)
        if export_only:
            return result

        _, read_wall, read_cpu = timed(read_rows, definition, result["copy"], "reference" if plain_reader else "fast")
        result.update(read_wall=read_wall, read_cpu=read_cpu)

        headers, bare_rows = fetch_bare_rows(definition)
        if len(bare_rows) != rows:
            raise CommandError(f"Fetched {len(bare_rows):,} rows, expected {rows:,}.")
        _, bare_wall, bare_cpu = timed(BARE[fmt], path, headers, bare_rows)
        result.update(bare_wall=bare_wall, bare_cpu=bare_cpu)
        os.remove(path)

        types = [c.type for c in planned_rows(definition, {})[1]]

        def write_with(cls):
            with cls(path, headers, types) as writer:
                writer.write_rows(bare_rows)

        if fmt == "xlsx" and header_cost:
            # Alternated (styled first, then plain first), best of each: the difference is small
            # next to the noise, and whichever runs first pays for warming up.
            styled, plain = [], []
            for order in ((StreamingXlsxWriter, PlainHeaderXlsxWriter), (PlainHeaderXlsxWriter, StreamingXlsxWriter)) * 2:
                for cls in order:
                    (styled if cls is StreamingXlsxWriter else plain).append(timed(write_with, cls)[2])
            result.update(styled_cpu=min(styled), plain_cpu=min(plain))
        if fmt == "xlsx" and writer:
            result["writer"] = time_writer(path, headers, types, bare_rows, exports_conf.EXPORT_CHUNK_SIZE)
        if fmt == "xlsx" and libraries:
            result["libraries"] = {
                "openpyxl write-only (the bare baseline)": bare_cpu,
                "exports.writers streaming engine": timed(write_with, StreamingXlsxWriter)[2],
                **library_candidates(path, headers, bare_rows),
            }
    return result


def ratio(r, cpu=False):
    """The run's paired ratio: speed-up over bare openpyxl for xlsx, export / bare csv for csv."""
    export, bare = (r["export_cpu"], r["bare_cpu"]) if cpu else (r["export_wall"], r["bare_wall"])
    return bare / export if r["format"] == "xlsx" else export / bare


def growth_mb(r):
    return (r["export_peak_rss"] - r["rss_before"]) / MB


def spread(values, fmt="{:.2f}"):
    """"median [min-max]"."""
    return f"{fmt.format(statistics.median(values))} [{fmt.format(min(values))}–{fmt.format(max(values))}]"


TABLE_HEADERS = ["format", "rows", "runs", "export wall s", "export CPU s", "bare wall s", "paired ratio (wall)",
                 "paired ratio (CPU)", "target", "DB read share (CPU)", "peak − before (MB)", "file (MB)"]


def table_rows(cases):
    lines = []
    for (fmt, n), runs in cases.items():
        name = f"{fmt} ({runs[0]['engine']})" if fmt == "xlsx" else fmt
        if runs[0].get("reader"):
            name += f", {runs[0]['reader']} reader"
        if runs[0].get("copy"):
            name += " (PostgreSQL COPY)"
        lines.append([
            name, f"{n:,}", str(len(runs)),
            spread([r["export_wall"] for r in runs]), spread([r["export_cpu"] for r in runs]),
            spread([r["bare_wall"] for r in runs]),
            spread([ratio(r) for r in runs]) + ("×" if fmt == "xlsx" else ""),
            spread([ratio(r, cpu=True) for r in runs]) + ("×" if fmt == "xlsx" else ""),
            f"≥ {XLSX_MIN_SPEEDUP:.0f}× faster (CPU)" if fmt == "xlsx" else f"≤ {CSV_MAX_RATIO:.1f}",
            spread([100 * r["read_cpu"] / r["export_cpu"] for r in runs], "{:.0f}") + " %",
            f"{max(growth_mb(r) for r in runs):.1f}", f"{runs[0]['file_bytes'] / MB:.1f}",
        ])
    return lines


def table(cases, markdown):
    lines = table_rows(cases)
    if markdown:
        out = ["| " + " | ".join(TABLE_HEADERS) + " |",
               "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(TABLE_HEADERS))) + " |"]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(TABLE_HEADERS)]

    def fmt_row(cells):
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([fmt_row(TABLE_HEADERS), fmt_row(["-" * w for w in widths]), *map(fmt_row, lines)])


def verdicts(cases):
    lines, ok_all = [], True
    for (fmt, n), runs in cases.items():
        median = statistics.median(ratio(r) for r in runs)
        median_cpu = statistics.median(ratio(r, cpu=True) for r in runs)
        if fmt == "xlsx":
            ok = median_cpu >= XLSX_MIN_SPEEDUP
            words = (f"xlsx ({runs[0]['engine']}) {n:,} rows: {median_cpu:.1f}× faster than bare openpyxl in CPU "
                     f"time (median of {len(runs)} paired runs; target ≥ {XLSX_MIN_SPEEDUP:.0f}×; wall {median:.1f}×)")
        else:
            ok = median <= CSV_MAX_RATIO
            words = (f"csv{' (PostgreSQL COPY)' if runs[0].get('copy') else ''} {n:,} rows: export / bare csv.writer = {median:.2f} (median of {len(runs)} paired "
                     f"runs; target ≤ {CSV_MAX_RATIO:.1f}; CPU {median_cpu:.2f})")
        share = statistics.median(r["read_cpu"] / r["export_cpu"] for r in runs)
        words += f"; the database read alone is {share:.0%} of the export's CPU"
        ok_all &= ok
        lines.append(f"{'PASS' if ok else 'FAIL'}  {words}")
        writer_lines, writer_ok = writer_verdicts(n, runs)
        lines += writer_lines
        ok_all &= writer_ok
        costs = [r["styled_cpu"] / r["plain_cpu"] - 1 for r in runs if "styled_cpu" in r]
        if costs:
            cost = statistics.median(costs)
            ok = cost < HEADER_MAX_COST
            ok_all &= ok
            lines.append(f"{'PASS' if ok else 'FAIL'}  xlsx header styling {n:,} rows: costs {cost:+.1%} of the "
                         f"streaming writer's CPU (median of {len(costs)}; target < {HEADER_MAX_COST:.0%})")
    for fmt in dict.fromkeys(fmt for fmt, _ in cases):
        sizes = sorted(n for f, n in cases if f == fmt)
        if len(sizes) < 2:
            continue
        small = max(growth_mb(r) for r in cases[fmt, sizes[0]])
        large = max(growth_mb(r) for r in cases[fmt, sizes[-1]])
        ok = large - small < MEMORY_GROWTH_LIMIT_MB
        ok_all &= ok
        lines.append(f"{'PASS' if ok else 'FAIL'}  {fmt} peak memory growth {sizes[0]:,} → {sizes[-1]:,} rows: "
                     f"{large - small:+.1f} MB (target < {MEMORY_GROWTH_LIMIT_MB:.0f} MB; export peak − RSS "
                     f"before: {small:.1f} → {large:.1f} MB, highest of the runs)")
    return lines, ok_all


def writer_verdicts(n, runs):
    """The writer-alone lines (``--writer``): PASS/FAIL for the configured writer against the floor,
    then each variant's figures; and whether the target is met."""
    found = [r["writer"] for r in runs if r.get("writer")]
    if not found:
        return [], True
    lines, ok = [], True
    for name in writer_variants():
        ratios = [w[name]["cpu"] / w[name]["floor_cpu"] for w in found]
        figures = (f"writer CPU {spread([w[name]['cpu'] for w in found])} s, wall "
                   f"{spread([w[name]['wall'] for w in found])} s; zlib level 6 of its XML "
                   f"{spread([w[name]['floor_cpu'] for w in found])} s CPU; ratio {spread(ratios)}; "
                   f"file {found[0][name]['file_bytes'] / MB:.2f} MB")
        if name == "as configured":
            ok = statistics.median(ratios) <= WRITER_MAX_FLOOR_RATIO
            lines.append(f"{'PASS' if ok else 'FAIL'}  xlsx streaming writer alone, {n:,} rows in memory "
                         f"(deflate {DEFAULT_DEFLATER}): {figures} (median of {len(found)}; target ≤ "
                         f"{WRITER_MAX_FLOOR_RATIO}× the floor)")
        else:
            lines.append(f"      writer alone, {name}: {figures}")
    return lines, ok


class Command(BaseCommand):
    help = ("Time write_export for N rows, each run paired with bare openpyxl / csv.writer on the same rows, "
            "and its peak memory; prints medians and ranges and PASS/FAIL lines for the targets.")

    def add_arguments(self, parser):
        parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
        parser.add_argument("--formats", nargs="+", choices=sorted(BARE), default=["xlsx", "csv"])
        parser.add_argument("--repeat", type=int, default=3, help="paired runs per case, each in a fresh process")
        parser.add_argument("--engine", choices=sorted(XLSX_ENGINES), default=None,
                            help="xlsx engine (default: the EXPORT_XLSX_ENGINE setting)")
        parser.add_argument("--header-cost", action="store_true",
                            help="xlsx: also time the streaming writer with and without the header styling")
        parser.add_argument("--libraries", action="store_true",
                            help="xlsx: also time other xlsx libraries on the same rows, where installed")
        parser.add_argument("--writer", action="store_true",
                            help="xlsx: also time the streaming writer alone on the same rows, with each deflate "
                                 "on one and two threads, against zlib level 6 of its own XML")
        parser.add_argument("--plain-reader", action="store_true",
                            help="read rows with the reference reader (values_list().iterator()) instead of "
                                 "the fast one, to measure what the fast reader saves")
        parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
        parser.add_argument("--chunk-sizes", type=int, nargs="+", metavar="N",
                            help="instead of the targets: the export alone at each EXPORT_CHUNK_SIZE, interleaved, "
                                 "its CPU paired with the first size's in the same repeat")
        parser.add_argument("--one", nargs=2, metavar=("FORMAT", "ROWS"), help=argparse.SUPPRESS)
        parser.add_argument("--export-only", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args, rows, formats, repeat, engine, header_cost, libraries, plain_reader, writer, markdown,
               one, chunk_sizes, export_only, **options):
        engine = engine or exports_conf.EXPORT_XLSX_ENGINE
        if one:
            result = run_one(one[0], int(one[1]), engine, header_cost, libraries, plain_reader, writer, export_only)
            self.stdout.write(json.dumps(result, sort_keys=True))
            return
        if any(n < 1 for n in rows) or repeat < 1 or any(size < 1 for size in chunk_sizes or ()):
            raise CommandError("--rows, --repeat and --chunk-sizes must be at least 1.")
        rows = sorted(dict.fromkeys(rows))
        log = self._begin(rows, engine)
        if chunk_sizes:
            return self._chunk_sizes(rows, formats, repeat, engine, chunk_sizes, log)
        cases = {(fmt, n): [] for fmt in formats for n in rows}
        for attempt in range(repeat):  # the repeats interleave the cases, so load drifts hit all alike
            for n in rows:
                for fmt in formats:
                    log(f"run {attempt + 1}/{repeat}: {fmt} {n:,} rows...")
                    extra = [flag for flag, on in (("--header-cost", header_cost), ("--libraries", libraries),
                                                   ("--plain-reader", plain_reader), ("--writer", writer)) if on]
                    r = self._child(fmt, n, engine, extra)
                    cases[fmt, n].append(r)
                    log(f"  export {r['export_wall']:.2f} s (CPU {r['export_cpu']:.2f}), bare {r['bare_wall']:.2f} s "
                        f"(CPU {r['bare_cpu']:.2f}), DB read CPU {r['read_cpu']:.2f}, peak {growth_mb(r):.1f} MB above start")
        self.stdout.write(f"Load average at end: {_load_average()}")
        self.stdout.write("")
        self.stdout.write(table(cases, markdown))
        self.stdout.write("")
        lines, ok_all = verdicts(cases)
        bullet = "- " if markdown else ""
        for line in lines:
            self.stdout.write(bullet + line)
        for (fmt, n), runs in cases.items():
            found = [r["libraries"] for r in runs if r.get("libraries")]
            for name in (found[0] if found else {}):
                self.stdout.write(f"{bullet}xlsx writers on the same {n:,} rows in memory, CPU s: {name} "
                                  f"{spread([f[name] for f in found])}")
        self.stdout.write("")
        self.stdout.write(
            "Export = write_export() (DB read + conversion + writing) in a fresh process; bare = the plainest "
            "openpyxl write-only / csv.writer loop on the same rows fetched into memory afterwards (only the "
            "writing timed). Each ratio pairs one export with its own baseline; median [min–max] over the runs. "
            "DB read share = CPU of reading the rows alone / CPU of the export. MB = 10^6 bytes.")
        self.stdout.write("ALL TARGETS MET" if ok_all else "SOME TARGETS MISSED")

    def _begin(self, rows, engine):
        """Print the command, the machine and the load; seed each N's domain once. Returns the logger."""
        log = lambda message: self.stderr.write(message)  # noqa: E731
        self.stdout.write(f"Command: {command_line()}")
        self.stdout.write(f"Machine: {machine_description()}; xlsx engine {engine}")
        self.stdout.write(f"Load average at start: {_load_average()}")
        for n in rows:
            bench_definition(n, log=log)
        connection.close()  # the children open their own connections
        return log

    def _chunk_sizes(self, rows, formats, repeat, engine, sizes, log):
        """The export's CPU at each chunk size: each run a fresh process, the sizes interleaved in each
        repeat (their order turned each time), each paired with the first size's run of that repeat."""
        cpu = {(fmt, n, size): [] for fmt in formats for n in rows for size in sizes}
        for attempt in range(repeat):
            for n in rows:
                for fmt in formats:
                    turn = attempt % len(sizes)
                    for size in sizes[turn:] + sizes[:turn]:
                        r = self._child(fmt, n, engine, ["--export-only"], {"EXPORT_CHUNK_SIZE": str(size)})
                        cpu[fmt, n, size].append(r["export_cpu"])
                        log(f"run {attempt + 1}/{repeat}: {fmt} {n:,} rows, chunks of {size}: "
                            f"{r['export_wall']:.2f} s (CPU {r['export_cpu']:.2f})")
        self.stdout.write(f"Load average at end: {_load_average()}")
        self.stdout.write(f"{'format':6} {'rows':>10} {'chunk':>6} {'export CPU s, median [range]':>30} "
                          f"{'CPU / chunks of ' + str(sizes[0]) + ', paired':>32}")
        for fmt in formats:
            for n in rows:
                for size in sizes:
                    values, first = cpu[fmt, n, size], cpu[fmt, n, sizes[0]]
                    self.stdout.write(f"{fmt:6} {n:10,} {size:6} {spread(values, '{:.3f}'):>30} "
                                      f"{spread([v / f for v, f in zip(values, first)]):>32}")

    def _child(self, fmt, n, engine, extra, env=None):
        manage = os.path.join(settings.BASE_DIR, "manage.py")
        proc = subprocess.run(
            [sys.executable, manage, "benchmark_exports", "--one", fmt, str(n), "--engine", engine, *extra],
            cwd=settings.BASE_DIR, env={**os.environ, **(env or {})}, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise CommandError(f"The child process for {fmt} {n:,} failed:\n{proc.stderr[-4000:]}")
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise CommandError(f"No result from the child process for {fmt} {n:,}:\n{proc.stdout[-2000:]}")


def _load_average():
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" (1, 5, 15 min; {os.cpu_count()} CPUs)"
    except OSError:
        return "unknown"
