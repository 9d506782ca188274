"""Building an export file: rows read in chunks, written by a streaming writer, then stored.

Nothing here knows about Celery: progress and cancellation come in as plain callables.
"""
import os
import re
import tempfile
from itertools import islice
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.files import File
from django.core.files.storage import storages
from django.utils import timezone

from .sources import get_source
from .writers import get_writer


class ExportCancelled(Exception):
    """The user cancelled the export; no file is kept."""


def export_storage():
    return storages[settings.EXPORTS_STORAGE]


def iter_chunks(rows, size):
    """Lists of up to `size` rows from an iterator, without reading ahead further."""
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk


def export_filename(definition, file_extension, when=None):
    when = timezone.localtime(when or timezone.now(), ZoneInfo(definition.domain.time_zone))
    name = re.sub(r"[^\w\- .]+", "", definition.name, flags=re.UNICODE).strip() or "export"
    return f"{name} {when:%Y-%m-%d %H%M}{file_extension}"


def planned_rows(definition, parameters):
    """The queryset an export of `definition` with `parameters` reads, and the columns it writes."""
    source = get_source(definition.source)
    columns = source.columns_for(definition.columns)
    queryset = source.rows_queryset(definition.domain, parameters.get("date_from"), parameters.get("date_to"))
    return queryset, columns


def write_export(definition, parameters, path, progress=None, is_cancelled=None, chunk_size=None):
    """Write the rows of the export to `path`; return the number of rows written.

    `progress(current, total)` is called after each chunk; `is_cancelled()` before each one.
    """
    chunk_size = chunk_size or settings.EXPORT_CHUNK_SIZE
    queryset, columns = planned_rows(definition, parameters)
    total = queryset.count()
    writer_class = get_writer(parameters["format"])
    rows = queryset.values_list(*[column.key for column in columns]).iterator(chunk_size=chunk_size)
    with writer_class(path, [c.label for c in columns], [c.type for c in columns],
                      tz=ZoneInfo(definition.domain.time_zone)) as writer:
        if progress:
            progress(0, total)
        for chunk in iter_chunks(rows, chunk_size):
            if is_cancelled and is_cancelled():
                raise ExportCancelled()
            writer.write_rows(chunk)
            if progress:
                progress(writer.rows_written, max(total, writer.rows_written))
        return writer.rows_written


def build_and_store(definition, parameters, storage_key_prefix, progress=None, is_cancelled=None):
    """Build the export in a temporary file and save it to export storage.

    Returns (storage_key, rows, bytes). The temporary file is removed on success and on failure.
    """
    writer_class = get_writer(parameters["format"])
    handle, path = tempfile.mkstemp(prefix="export-", suffix=writer_class.file_extension)
    os.close(handle)
    try:
        rows = write_export(definition, parameters, path, progress=progress, is_cancelled=is_cancelled)
        size = os.path.getsize(path)
        with open(path, "rb") as built:
            key = export_storage().save(f"{storage_key_prefix}{writer_class.file_extension}", File(built))
        return key, rows, size
    finally:
        os.remove(path)
