"""Partitioned builds: a big export built as parts in parallel, on any workers, then assembled.

    run_export (coordinator)  takes the run's lease, splits the rows by key range, sends a chord:
    build_export_part × N     each writes its range to a part file in storage, renewing the lease
    assemble_export           joins the parts into the export file, publishes it, succeeds the run

The run keeps one lease. While the parts run it has no single holder: each part renews its
deadline and watches for a cancel (a LeaseKeeper per part), so when a part's process dies the
other parts finish, the renewals stop, the lease lapses and the reaper requeues or fails the run
as it does for any lost build (and deletes that attempt's parts). A part never raises for an
expected outcome (cancelled, failed in words, run moved on): it settles the run and returns None,
so the chord still reaches the assembly, which deletes the parts of the attempt whatever happened.

Only formats whose parts are joined by copying bytes are split (exports.files.partitions.splits).
csv parts are csv files, concatenated with the header once: the file is byte for byte the one a
single build writes. xlsx parts are their rows' sheet XML as deflate segments
(exports.writers.xlsx_parts), cut where the whole build's sheets end; the assembly copies them into
the sheets' zip entries: the same sheets, cells and values as a single build, no row rendered twice.

Progress: one bar over the phases (parts, assembly, upload), each filling its measured share of it,
never moving back (exports.files.partitions.PartProgress).
"""
import logging
import os
import shutil
import time
from zoneinfo import ZoneInfo

from django.utils import timezone

from exports.conf import exports_conf
from exports.files import tempfiles
from exports.files.export_file import ExportCancelled, export_filename, headings, planned_rows, write_export
from exports.files.liveness import this_process
from exports.files.partitions import (
    PartProgress,
    delete_parts,
    key_fields,
    part_key,
    plan_parts,
    range_filter,
    rows_before,
)
from exports.files.storage import export_storage, publish
from exports.formatting import ASSEMBLY_PROGRESS, PART_ROWS_PROGRESS, STORING_PROGRESS
from exports.models import ExportRun
from exports.runs import lifecycle, queueing
from exports.runs.services import publish_run, record_failed_build
from exports.runs.status import recorded_progress
from exports.runs.words import failure_words
from exports.writers import get_writer
from exports.writers.xlsx_parts import Cancelled, Segment, XlsxPartWriter, assemble_xlsx

log = logging.getLogger(__name__)
Status = ExportRun.Status
# What the phases cost, in the worker's log (read by benchmark_partitions).
PLAN_LOG = "Export run %s: %d rows in %d parts (planned and sent in %.3f s)"
PART_LOG = "Export run %s: part %d: %d rows in %.3f s (CPU %.3f s); %d bytes stored in %.3f s"
ASSEMBLY_LOG = "Export run %s: assembled %d rows, %d bytes in %.3f s (CPU %.3f s); stored in %.3f s"


def part_writer(format_name):
    """The writer of a part: csv's own; the sheet rows of an xlsx (exports.files.partitions.splits)."""
    return XlsxPartWriter if format_name == "xlsx" else get_writer(format_name)


def start(lease, time_limit=None):
    """Send the parts of a run big enough to be built in parts, under its `lease`: how many were sent,
    or 0 when the run is to be built whole (by the caller, under the same lease).
    """
    if not exports_conf.EXPORT_PARTITION_ROWS or queueing.runs_eagerly():
        return 0  # eager (USE_CELERY=false): one process, nothing to run in parallel
    run = None
    try:
        run = _running(lease)
        if run is None:
            return 0
        started = time.perf_counter()
        plan = plan_parts(run.definition, run.parameters)
        if plan is None:
            return 0
        PartProgress(run, lease.lease_id, 0, plan.total, PART_ROWS_PROGRESS).report(0)
        lifecycle.hand_over(lease, "")
        queueing.send_parts(run, lease.lease_id, plan)
    except Exception as exc:
        log.exception("Export run %s: could not plan or send its parts", lease.run_id)
        record_failed_build(lease, run, exc, time_limit)
        raise
    log.info(PLAN_LOG, run.pk, plan.total, len(plan.ranges), time.perf_counter() - started)
    return len(plan.ranges)


def _running(lease):
    return lease.runs().select_related("definition__domain", "owner").first()


def build_part(run_id, lease_id, index, lower, upper, total, time_limit=None, first_row=None, part_rows=None):
    """Write one key range of the run to a part file in storage: {"index", "key", "rows"} (and an xlsx
    part's "segments"), or None. `first_row`: how many rows of the export come before the range's
    first, and `part_rows`: how many the range holds, as counted when the rows were split (None:
    counted now)."""
    lease = lifecycle.Lease(run_id, lease_id)
    run = _running(lease)
    if run is None:
        log.info("Export run %s: part %d has nothing to build (the run moved on)", run_id, index)
        return None
    parameters = run.parameters
    queryset, _ = planned_rows(run.definition, parameters)
    keys = key_fields(run.definition.source, queryset)
    writer_class = part_writer(parameters["format"])
    extension = writer_class.file_extension
    path = tempfiles.new_temp_path(extension)
    opened = []  # an xlsx part's writer, for the segments it lists once closed
    if writer_class is XlsxPartWriter:
        if first_row is None:
            first_row = rows_before(queryset, keys, lower)

        def writer_class(*args, **kwargs):
            opened.append(XlsxPartWriter(*args, first_row=first_row, **kwargs))
            return opened[-1]
    try:
        with lifecycle.LeaseKeeper(lease) as keeper:
            try:
                started, cpu = time.perf_counter(), time.process_time()
                rows = write_export(run.definition, parameters, path, is_cancelled=keeper.should_stop,
                                    key_range=range_filter(queryset.model, keys, lower, upper),
                                    writer_class=writer_class, rows_expected=part_rows,
                                    progress=PartProgress(run, lease_id, index, total, PART_ROWS_PROGRESS))
                written, cpu = time.perf_counter(), time.process_time() - cpu
                key = publish(path, part_key(run.pk, lease_id, index, extension))
                log.info(PART_LOG, run.pk, index, rows, written - started, cpu, os.path.getsize(path),
                         time.perf_counter() - written)
            except ExportCancelled:
                if not keeper.lost.is_set():
                    lifecycle.cancelled(lease, last_progress=recorded_progress(run.task_id))
                return None
            except Exception as exc:  # noqa: BLE001 (settled in words; the assembly cleans up)
                log.exception("Export run %s: part %d failed", run_id, index)
                record_failed_build(lease, run, exc, time_limit, recorded_progress(run.task_id))
                return None
    finally:
        tempfiles.remove(path)
    result = {"index": index, "key": key, "rows": rows}
    if opened:
        result["segments"] = [segment.as_json() for segment in opened[0].segments]
    return result


def assemble(run_id, lease_id, results, time_limit=None):
    """Join the parts into the export file and publish it; the run, or None if it did not succeed here."""
    lease = lifecycle.Lease(run_id, lease_id)
    try:
        run = _running(lease)
        if run is None:
            return None
        if any(result is None for result in results) or not lifecycle.hand_over(lease, this_process()):
            lifecycle.fail(lease, failure_words(RuntimeError("a part of the export is missing")))
            return None
        parts = sorted(results, key=lambda result: result["index"])
        with lifecycle.LeaseKeeper(lease) as keeper:
            try:
                key, rows, size = _assemble_file(run, parts, keeper.should_stop)
            except ExportCancelled:
                if not keeper.lost.is_set():
                    lifecycle.cancelled(lease, last_progress=recorded_progress(run.task_id))
                return None
            except Exception as exc:
                log.exception("Export run %s: assembling its parts failed", run_id)
                record_failed_build(lease, run, exc, time_limit, recorded_progress(run.task_id))
                raise
        return publish_run(lease, run, key, rows, size)
    finally:
        delete_parts(run_id, lease_id)


def _assemble_file(run, parts, is_cancelled):
    """(storage key, rows, bytes) of the whole file built from `parts`."""
    parameters = run.parameters
    writer_class = get_writer(parameters["format"])
    path = tempfiles.new_temp_path(writer_class.file_extension)
    total = sum(part["rows"] for part in parts)
    try:
        started, cpu = time.perf_counter(), time.process_time()
        if parameters["format"] == "xlsx":
            rows = _join_xlsx(run, parts, path, is_cancelled, total)
        else:
            rows = _concatenate(run, parts, path, is_cancelled, total)
        size = os.path.getsize(path)
        PartProgress(run, run.lease_id or "assembly", 0, total, STORING_PROGRESS, phase="upload").report(0)
        assembled, cpu = time.perf_counter(), time.process_time() - cpu
        key = publish(path, f"exports/{run.domain.slug}/{run.pk}{writer_class.file_extension}")
        log.info(ASSEMBLY_LOG, run.pk, rows, size, assembled - started, cpu, time.perf_counter() - assembled)
        return key, rows, size
    finally:
        tempfiles.remove(path)


def _concatenate(run, parts, path, is_cancelled, total):
    """csv: the first part whole, then each other part without the header that every part starts with."""
    header = _empty_file(run)
    storage = export_storage()
    progress = PartProgress(run, run.lease_id or "assembly", 0, total, ASSEMBLY_PROGRESS, phase="assembly")
    copied = 0
    with open(path, "wb") as whole:
        for position, part in enumerate(parts):
            if is_cancelled():
                raise ExportCancelled()
            with storage.open(part["key"], "rb") as source:
                if position and source.read(len(header)) != header:
                    raise ValueError(f"Part {part['index']} of export run {run.pk} does not start with the header")
                shutil.copyfileobj(source, whole, 1 << 20)
            copied += part["rows"]
            progress(copied, total)
    return copied


def _empty_file(run):
    """The bytes the format's writer writes for no rows: what every csv part starts with."""
    path = tempfiles.new_temp_path(".csv")
    try:
        with _open_writer(run, path):
            pass
        return path.read_bytes()
    finally:
        tempfiles.remove(path)


def _writer_arguments(run):
    """(headers, types, tz, name) of the run's writer, as exports.files.export_file opens it."""
    _, columns = planned_rows(run.definition, run.parameters)
    name = export_filename(run.definition, "", when=run.started_at)
    return headings(run.definition, columns), [c.type for c in columns], ZoneInfo(run.domain.time_zone), name


def _open_writer(run, path):
    headers, types, tz, name = _writer_arguments(run)
    return get_writer(run.parameters["format"])(path, headers, types, tz=tz, name=name)


def _join_xlsx(run, parts, path, is_cancelled, total):
    """xlsx: the parts' deflated sheet rows copied into the sheets' zip entries (exports.writers.xlsx_parts)."""
    headers, types, tz, name = _writer_arguments(run)
    storage = export_storage()
    progress = PartProgress(run, run.lease_id or "assembly", 0, total, ASSEMBLY_PROGRESS, phase="assembly")
    try:
        return assemble_xlsx(
            path, headers, types, [[Segment.from_json(s) for s in part["segments"]] for part in parts],
            lambda index: storage.open(parts[index]["key"], "rb"), tz=tz, name=name,
            when=timezone.localtime(timezone.now(), tz).replace(tzinfo=None),
            is_cancelled=is_cancelled, progress=progress)
    except Cancelled:
        raise ExportCancelled() from None
