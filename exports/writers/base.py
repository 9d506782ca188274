"""The writer protocol every format follows: open with columns, feed chunks of rows, close.

Usage::

    with get_writer("xlsx")(path, headers, types, tz=ZoneInfo("Europe/Paris"), name="Visits") as writer:
        for chunk in chunks:            # each chunk: an iterable of row tuples
            writer.write_rows(chunk)
    writer.rows_written

Column types (one string per column): "text", "integer", "decimal", "boolean", "date",
"datetime". Rows must have exactly ``len(headers)`` values, in that order.

Value conventions, shared by all formats: ``None`` is an empty cell; aware datetimes are
converted to ``tz`` (default UTC) and written as local wall-clock time without an offset,
naive ones are taken as local time already; a plain ``date`` in a datetime column is written
as a date; ``str`` values in text columns are text, never a formula (see each writer for how).
"""
from datetime import timezone
from itertools import chain, islice

from exports.writers.convert import convert_rows

__all__ = ["COLUMN_TYPES", "XLSX_MAX_ROWS", "ExportWriter"]

#: The column types every writer accepts (and exports.sources.Column allows): the one list of them.
COLUMN_TYPES = ("text", "integer", "decimal", "boolean", "date", "datetime")

#: Rows in an xlsx sheet, header included (Excel's limit).
XLSX_MAX_ROWS = 1_048_576

#: Rows converted and handed to a sink at a time when ``write_rows`` gets an iterator (memory stays flat).
ROWS_PER_BLOCK = 1000


class ExportWriter:
    """Base class: a file being written from chunks of rows.

    ``write_rows(rows)`` may be called any number of times; ``close()`` finishes the file. As a
    context manager, the writer is closed on success; on an error it is closed quietly (file
    handles and temporary files released, the error left to propagate) and whatever is at
    ``path`` is left for the caller to delete.

    Parameters: ``path`` (file to create), ``headers`` (column titles), ``types`` (one of
    COLUMN_TYPES per column), ``tz`` (a tzinfo; aware datetimes are written in it; default
    UTC), ``name`` (the export's file name without extension; formats that hold several files,
    the zip of csv, name them after it). Attributes: ``rows_written``, ``closed``.
    """

    format_name = ""
    format_label = ""  # what users see when choosing the format
    file_extension = ""
    mimetype = "application/octet-stream"

    def __init__(self, path, headers, types, tz=None, name=None):
        headers = [str(h) for h in headers]
        types = list(types)
        if len(headers) != len(types):
            raise ValueError(f"{len(headers)} headers but {len(types)} column types")
        unknown = sorted(set(types) - set(COLUMN_TYPES))
        if unknown:
            raise ValueError(f"Unknown column type(s) {unknown}; expected one of {sorted(COLUMN_TYPES)}")
        self.path = path
        self.headers = headers
        self.types = types
        self.tz = tz if tz is not None else timezone.utc
        self.name = name or "export"
        self.rows_written = 0
        self.closed = False
        functions = tuple(self._column_function(t) for t in types)
        #: One column function per column (or None: written as is), see ``convert.convert_rows``.
        self._functions = functions if any(functions) else None
        # Rows left in the current sheet / file part; None means no limit.
        self._room = None
        self._sink = None  # consumes an iterable of (converted) rows

    # -- to be provided by subclasses ------------------------------------------------

    #: How a chunk reaches the sink: ``convert_rows`` gives rows; a writer that lays out a chunk
    #: column by column sets ``convert.convert_columns`` (its sink then takes the list of columns).
    _convert = staticmethod(convert_rows)

    def _column_function(self, column_type):
        """The function ``f(values)`` turning a chunk's values of a ``column_type`` column (a tuple,
        None included) into what the format's sink takes, in order; or None where values go to the
        sink as they are. See ``convert.convert_rows``."""
        return None

    def _start_container(self):
        """Start the next sheet / part when the current one is full."""
        raise NotImplementedError

    def _finish(self):
        raise NotImplementedError

    def _abort(self):
        """Release everything without finishing the file; must not raise."""

    # -- public interface --------------------------------------------------------------

    def write_rows(self, rows):
        """Write an iterable of rows (tuples or lists); returns how many were written."""
        if self.closed:
            raise ValueError("write_rows() on a closed writer")
        functions = self._functions
        room = self._room
        if (rows.__class__ is list or rows.__class__ is tuple) and (room is None or len(rows) <= room):
            # A sized chunk that fits in the current sheet / part (the usual case): converted whole.
            n = len(rows)
            if n:
                self._sink(rows if functions is None else self._convert(rows, functions))
                self.rows_written += n
                if room is not None:
                    self._room = room - n
            return n
        it = iter(rows)
        written = 0
        while True:
            room = self._room
            if room == 0:
                try:
                    first_row = next(it)
                except StopIteration:
                    break
                self._start_container()
                it = chain((first_row,), it)
                room = self._room
            block = list(islice(it, ROWS_PER_BLOCK if room is None else min(room, ROWS_PER_BLOCK)))
            if not block:
                break
            self._sink(block if functions is None else self._convert(block, functions))
            n = len(block)
            written += n
            self.rows_written += n
            if room is not None:
                self._room = room - n
        return written

    def write_chunks(self, chunks):
        """Write every chunk of an iterable of chunks; returns ``rows_written``."""
        for chunk in chunks:
            self.write_rows(chunk)
        return self.rows_written

    def close(self):
        """Finish the file. Calling it again does nothing."""
        if self.closed:
            return
        self.closed = True
        try:
            self._finish()
        except BaseException:
            self._abort()
            raise

    def abort(self):
        """Close without finishing the file, quietly. Deleting ``path`` is up to the caller."""
        if self.closed:
            return
        self.closed = True
        try:
            self._abort()
        except Exception:  # noqa: BLE001 - quiet by design; the original error matters
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False
