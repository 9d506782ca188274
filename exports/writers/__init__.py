"""Streaming export writers: rows (tuples of Python values) -> xlsx, csv, or a zip of csv files.

One module per format (``csv_file``, ``zip_csv``, and two xlsx engines: ``xlsx_streaming``, the
default, and ``xlsx_openpyxl``, the compatibility engine), the protocol they share (``base``),
the per-column value conversion (``convert``). Every writer keeps memory flat whatever the row
count. ``get_writer("xlsx")`` gives the engine the ``EXPORT_XLSX_ENGINE`` setting names.
"""
from exports.writers.base import COLUMN_TYPES, XLSX_MAX_ROWS, ExportWriter
from exports.writers.csv_file import CsvWriter
from exports.writers.xlsx_openpyxl import OpenpyxlXlsxWriter
from exports.writers.xlsx_streaming import StreamingXlsxWriter
from exports.writers.zip_csv import ZipCsvWriter

__all__ = [
    "COLUMN_TYPES", "DEFAULT_XLSX_ENGINE", "XLSX_ENGINES", "XLSX_MAX_ROWS", "WRITERS", "CsvWriter",
    "ExportWriter", "OpenpyxlXlsxWriter", "StreamingXlsxWriter", "XlsxWriter", "ZipCsvWriter",
    "get_writer", "xlsx_engine",
]

XLSX_ENGINES = {"streaming": StreamingXlsxWriter, "openpyxl": OpenpyxlXlsxWriter}
DEFAULT_XLSX_ENGINE = "streaming"

#: The default xlsx engine's class (``get_writer("xlsx")`` follows the setting).
XlsxWriter = XLSX_ENGINES[DEFAULT_XLSX_ENGINE]

#: The formats and their writer classes, xlsx with the default engine, keyed by each class's format_name.
#: The one list of formats: exports.models.FORMAT_CHOICES (forms, API, admin) is derived from it.
WRITERS = {cls.format_name: cls for cls in (XlsxWriter, CsvWriter, ZipCsvWriter)}


def xlsx_engine(name=None):
    """The xlsx writer class for the engine ``name`` (default: the EXPORT_XLSX_ENGINE setting)."""
    if name is None:
        name = _configured_engine()
    try:
        return XLSX_ENGINES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown xlsx engine {name!r} (EXPORT_XLSX_ENGINE); expected one of: {', '.join(sorted(XLSX_ENGINES))}"
        ) from None


def _configured_engine():
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        return getattr(settings, "EXPORT_XLSX_ENGINE", DEFAULT_XLSX_ENGINE)
    except ImproperlyConfigured:  # used outside a Django project
        return DEFAULT_XLSX_ENGINE


def get_writer(format_name):
    """The writer class for "xlsx", "csv" or "zip" (for xlsx, the configured engine)."""
    if format_name == "xlsx":
        return xlsx_engine()
    try:
        return WRITERS[format_name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown export format {format_name!r}; expected one of: {', '.join(sorted(WRITERS))}"
        ) from None
