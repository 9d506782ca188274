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

csv parts are csv files, concatenated with the header once: the file is byte for byte the one a
single build writes. xlsx and zipped csv parts keep typed rows (exports.files.partitions.TypedRowsWriter)
that the assembly streams into the one writer, so types and sheet splitting are as in a single build.
"""
import logging
import os
import shutil
from zoneinfo import ZoneInfo

from exports.conf import exports_conf
from exports.files import tempfiles
from exports.files.export_file import ExportCancelled, export_filename, headings, planned_rows, write_export
from exports.files.liveness import this_process
from exports.files.partitions import (
    PartProgress,
    TypedRowsWriter,
    delete_parts,
    key_fields,
    part_key,
    plan_parts,
    range_filter,
    read_typed_rows,
    store_progress,
)
from exports.files.storage import export_storage, publish
from exports.formatting import ASSEMBLY_PROGRESS, PART_ROWS_PROGRESS
from exports.models import ExportRun
from exports.runs import lifecycle, queueing
from exports.runs.services import publish_run
from exports.runs.status import recorded_progress
from exports.runs.words import failure_words
from exports.writers import get_writer

log = logging.getLogger(__name__)
Status = ExportRun.Status


def concatenates(format_name):
    """csv parts are joined as bytes; other formats are rebuilt from typed rows."""
    return format_name == "csv"


def part_writer(format_name):
    return get_writer(format_name) if concatenates(format_name) else TypedRowsWriter


def start(lease, time_limit=None):
    """Send the parts of a run big enough to be built in parts, under its `lease`: how many were sent,
    or 0 when the run is to be built whole (by the caller, under the same lease).
    """
    if not exports_conf.EXPORT_PARTITION_ROWS or queueing.runs_eagerly():
        return 0  # eager (USE_CELERY=false): one process, nothing to run in parallel
    run = _running(lease)
    if run is None:
        return 0
    try:
        plan = plan_parts(run.definition, run.parameters)
        if plan is None:
            return 0
        total, ranges = plan
        store_progress(run.task_id, 0, total, PART_ROWS_PROGRESS, run.started_at.timestamp())
        lifecycle.hand_over(lease, "")
        queueing.send_parts(run, lease.lease_id, ranges, total)
    except Exception as exc:
        log.exception("Export run %s: could not send its parts", run.pk)
        lifecycle.fail(lease, failure_words(exc, time_limit))
        raise
    log.info("Export run %s: %d rows in %d parts", run.pk, total, len(ranges))
    return len(ranges)


def _running(lease):
    return lease.runs().select_related("definition__domain", "owner").first()


def build_part(run_id, lease_id, index, lower, upper, total, time_limit=None):
    """Write one key range of the run to a part file in storage: {"index", "key", "rows"}, or None."""
    lease = lifecycle.Lease(run_id, lease_id)
    run = _running(lease)
    if run is None:
        log.info("Export run %s: part %d has nothing to build (the run moved on)", run_id, index)
        return None
    parameters = run.parameters
    queryset, _ = planned_rows(run.definition, parameters)
    keys = key_fields(run.definition.source, queryset)
    writer_class = part_writer(parameters["format"])
    path = tempfiles.new_temp_path(writer_class.file_extension)
    try:
        with lifecycle.LeaseKeeper(lease) as keeper:
            try:
                rows = write_export(run.definition, parameters, path, is_cancelled=keeper.should_stop,
                                    key_range=range_filter(queryset.model, keys, lower, upper),
                                    writer_class=writer_class,
                                    progress=PartProgress(run, lease_id, index, total, PART_ROWS_PROGRESS))
                key = publish(path, part_key(run.pk, lease_id, index, writer_class.file_extension))
            except ExportCancelled:
                if not keeper.lost.is_set():
                    lifecycle.cancelled(lease, last_progress=recorded_progress(run.task_id))
                return None
            except Exception as exc:  # noqa: BLE001 (settled in words; the assembly cleans up)
                log.exception("Export run %s: part %d failed", run_id, index)
                lifecycle.fail(lease, failure_words(exc, time_limit),
                               last_progress=recorded_progress(run.task_id))
                return None
    finally:
        tempfiles.remove(path)
    return {"index": index, "key": key, "rows": rows}


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
                lifecycle.fail(lease, failure_words(exc, time_limit),
                               last_progress=recorded_progress(run.task_id))
                raise
        return publish_run(lease, run, key, rows, size)
    finally:
        delete_parts(run_id, lease_id)


def _assemble_file(run, parts, is_cancelled):
    """(storage key, rows, bytes) of the whole file built from `parts`."""
    parameters = run.parameters
    writer_class = get_writer(parameters["format"])
    path = tempfiles.new_temp_path(writer_class.file_extension)
    try:
        if concatenates(parameters["format"]):
            rows = _concatenate(run, parts, path, is_cancelled)
        else:
            rows = _rewrite(run, parts, path, is_cancelled)
        size = os.path.getsize(path)
        return publish(path, f"exports/{run.domain.slug}/{run.pk}{writer_class.file_extension}"), rows, size
    finally:
        tempfiles.remove(path)


def _concatenate(run, parts, path, is_cancelled):
    """csv: the first part whole, then each other part without the header that every part starts with."""
    header = _empty_file(run)
    storage = export_storage()
    with open(path, "wb") as whole:
        for position, part in enumerate(parts):
            if is_cancelled():
                raise ExportCancelled()
            with storage.open(part["key"], "rb") as source:
                if position and source.read(len(header)) != header:
                    raise ValueError(f"Part {part['index']} of export run {run.pk} does not start with the header")
                shutil.copyfileobj(source, whole, 1 << 20)
    return sum(part["rows"] for part in parts)


def _empty_file(run):
    """The bytes the format's writer writes for no rows: what every csv part starts with."""
    path = tempfiles.new_temp_path(".csv")
    try:
        with _open_writer(run, path):
            pass
        return path.read_bytes()
    finally:
        tempfiles.remove(path)


def _open_writer(run, path):
    """The run's own writer on `path`, as exports.files.export_file opens it."""
    _, columns = planned_rows(run.definition, run.parameters)
    writer_class = get_writer(run.parameters["format"])
    name = export_filename(run.definition, "", when=run.started_at)
    return writer_class(path, headings(run.definition, columns), [c.type for c in columns],
                        tz=ZoneInfo(run.domain.time_zone), name=name)


def _rewrite(run, parts, path, is_cancelled):
    """xlsx and zipped csv: the parts' typed rows streamed into the format's own writer."""
    total = sum(part["rows"] for part in parts)
    progress = PartProgress(run, "assembly", 0, total, ASSEMBLY_PROGRESS)
    storage = export_storage()
    with _open_writer(run, path) as writer:
        for part in parts:
            with storage.open(part["key"], "rb") as source:
                for chunk in read_typed_rows(source):
                    if is_cancelled():
                        raise ExportCancelled()
                    writer.write_rows(chunk)
                    progress(writer.rows_written, total)
        return writer.rows_written
