"""Building an export file: rows read in chunks, written by a streaming writer, then stored.

Nothing here knows about Celery: progress and cancellation come in as plain callables.
"""
import os
import re
from contextlib import closing
from zoneinfo import ZoneInfo

from django.utils import timezone

from exports.conf import exports_conf
from exports.files import pg_copy, tempfiles
from exports.files.parameters import query_parameters
from exports.files.rows import row_chunks
from exports.files.storage import export_storage, publish
from exports.formatting import one_line
from exports.sources import get_source
from exports.writers import get_writer

__all__ = ["ExportCancelled", "build_and_store", "export_filename", "export_storage", "headings", "planned_rows",
           "write_export"]


class ExportCancelled(Exception):
    """The user cancelled the export; no file is kept."""


def export_filename(definition, file_extension, when=None):
    when = timezone.localtime(when or timezone.now(), ZoneInfo(definition.domain.time_zone))
    name = re.sub(r"[^\w\- .]+", "", one_line(definition.name), flags=re.UNICODE).strip() or "export"
    return f"{name} {when:%Y-%m-%d %H%M}{file_extension}"


def planned_rows(definition, parameters):
    """The queryset an export of `definition` with `parameters` reads, and the columns it writes.

    The run's own "columns" and "filters", when it has them, else the definition's columns and no filter.
    Every reader of an export's rows (the build, its parts, the row limit) goes through here.
    `parameters` as a run keeps them (JSON) or with dates as dates (exports.files.parameters).
    """
    parameters = query_parameters(parameters)
    source = get_source(definition.source)
    columns = source.columns_for(parameters.get("columns") or definition.columns)
    queryset = source.rows_queryset(definition.domain, parameters.get("date_from"), parameters.get("date_to"),
                                    filters=parameters.get("filters"))
    return queryset, columns


def headings(definition, columns):
    """The header row of an export of `definition`: the columns' labels, a time column's naming the zone."""
    return [column.heading(definition.domain.time_zone) for column in columns]


def write_export(definition, parameters, path, progress=None, is_cancelled=None, chunk_size=None,
                 key_range=None, writer_class=None, rows_expected=None):
    """Write the rows of the export to `path`; return the number of rows written.

    `progress(current, total)` is called after each chunk; `is_cancelled()` before each one.
    A part of a partitioned build (exports.files.partitions) passes `key_range`, a filter on the rows,
    may pass its own `writer_class` instead of the format's, and passes `rows_expected`, the rows its
    plan counted in the range, so that they are not counted again (the bar's total; the rows written
    are what they are).
    """
    chunk_size = chunk_size or exports_conf.EXPORT_CHUNK_SIZE
    queryset, columns = planned_rows(definition, parameters)
    if key_range is not None:
        queryset = queryset.filter(key_range)
    total = queryset.count() if rows_expected is None else rows_expected
    writer_class = writer_class or get_writer(parameters["format"])
    tz = ZoneInfo(definition.domain.time_zone)
    # Files inside the file (the zip's csv members) are named after the export, as of the build's start.
    name = export_filename(definition, "")
    with writer_class(path, headings(definition, columns), [c.type for c in columns], tz=tz, name=name) as writer:
        if progress:
            progress(0, total)
        # csv on PostgreSQL: the server renders the rows (exports.files.pg_copy), when it can exactly.
        chunks = (pg_copy.csv_chunks(queryset, columns, tz, writer, chunk_size)
                  if getattr(writer, "takes_encoded_rows", False) else None)
        write = writer.write_rows if chunks is None else writer.write_encoded
        if chunks is None:
            chunks = row_chunks(queryset, [column.key for column in columns], chunk_size, tz=tz,
                                datetime_keys=[column.key for column in columns if column.type == "datetime"])
        with closing(chunks):
            for chunk in chunks:
                if is_cancelled and is_cancelled():
                    raise ExportCancelled()
                write(chunk)
                if progress:
                    progress(writer.rows_written, max(total, writer.rows_written))
        return writer.rows_written


def build_and_store(definition, parameters, storage_key_prefix, progress=None, is_cancelled=None):
    """Build the export in a temporary file and publish it to export storage once it is whole.

    Returns (storage_key, rows, bytes). The temporary file is removed on success and on failure;
    one left by a killed process is swept by exports.files.tempfiles.sweep_orphans.
    """
    writer_class = get_writer(parameters["format"])
    path = tempfiles.new_temp_path(writer_class.file_extension)
    try:
        rows = write_export(definition, parameters, path, progress=progress, is_cancelled=is_cancelled)
        size = os.path.getsize(path)
        key = publish(path, f"{storage_key_prefix}{writer_class.file_extension}")
        return key, rows, size
    finally:
        tempfiles.remove(path)
