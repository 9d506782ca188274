"""Streaming export writers: rows (tuples of Python values) -> xlsx, csv, or a zip of csv files.

Every writer keeps memory flat whatever the number of rows: nothing is accumulated
in Python; openpyxl's write-only mode streams each sheet's XML to a temporary file
(uncompressed, on disk, until ``close()`` zips it into the .xlsx), and the csv
writers stream straight into their output file or zip member.

Usage::

    with XlsxWriter(path, headers, types, tz=ZoneInfo("Europe/Paris")) as writer:
        for chunk in chunks:            # each chunk: an iterable of row tuples
            writer.write_rows(chunk)
    writer.rows_written

Column types (one string per column): "text", "integer", "decimal", "boolean",
"date", "datetime". Rows must have exactly ``len(headers)`` values, in that order.

Value conventions, shared by all formats:

* ``None`` -> an empty cell.
* "datetime" columns: aware datetimes are converted to ``tz`` (default UTC) and
  written as local wall-clock time without an offset. Naive datetimes are taken as
  being local time already and are written unchanged. A plain ``date`` in a
  datetime column is written as a date.
* "date" columns expect ``date`` objects (written as dates, ISO in csv).
* "text" columns: ``str`` values are written as text, never as a formula (see each
  writer for how); other values are written as they come.

Per-row cost: for each writer the column types are turned once into a single
generated function ``convert(row, n) -> tuple`` which touches only the columns that
need it (e.g. datetime columns, text columns); columns that need nothing are copied
by index. The common cases are inline expressions (plain text, naive datetimes), the
rare ones a call. When no column needs anything the rows are passed through untouched.
Rows are fed to the underlying writer through ``map`` so that, apart from that
function, the per-row loop runs in C (csv.writer.writerows) or inside openpyxl.
``exports.building`` can put its own per-column conversion of database values into
that same function (``ExportWriter.set_source_expressions``).
"""
import codecs
import csv
import io
import re
import zipfile
from collections import deque
from datetime import datetime, timezone
from functools import cached_property
from itertools import chain, count, islice
from operator import itemgetter

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.utils.indexed_list import IndexedList

__all__ = [
    "COLUMN_TYPES", "ExportWriter", "XlsxWriter", "CsvWriter", "ZipCsvWriter",
    "WRITERS", "get_writer", "bare_xlsx", "bare_csv",
]

COLUMN_TYPES = frozenset({"text", "integer", "decimal", "boolean", "date", "datetime"})

#: Rows in an xlsx sheet, header included (Excel's limit).
XLSX_MAX_ROWS = 1_048_576

DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
# The number format openpyxl gives datetime values by itself (openpyxl.cell.cell.TIME_FORMATS).
_OPENPYXL_DATETIME_FORMAT = "yyyy-mm-dd h:mm:ss"

# Strings openpyxl would not store as text: "=..." becomes a formula, these become error cells.
_XLSX_ERROR_CODES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"})
_XLSX_SPECIAL_FIRST = frozenset({"=", "#"})
# Characters XML 1.0 cannot hold; openpyxl raises IllegalCharacterError on them
# (same class as openpyxl.cell.cell.ILLEGAL_CHARACTERS_RE).
_XLSX_ILLEGAL_RE = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")

# Leading characters that make a spreadsheet treat a csv field as a formula (OWASP list).
CSV_FORMULA_FIRST = frozenset({"=", "+", "-", "@", "\t", "\r"})

_first = itemgetter(0)


def _build_converter(converters, sources=None, source_names=None):
    """One function ``convert(row, n=None) -> tuple`` applying ``converters`` column by column.

    ``converters`` has one entry per column: None (value copied as is), a callable
    ``f(value)``, an expression string using ``v`` (e.g. ``'"TRUE" if v else "FALSE"'``),
    or a pair ``(expression, names)`` whose expression may also use the objects in the
    dict ``names`` (e.g. a fallback function for the uncommon cases, so the common
    case costs no call; names are shared by all columns, so one name must always
    mean the same object, and must not be ``r``, ``n``, ``v`` or ``f<digits>``).
    None values are never passed to a converter: they stay None (an empty cell).
    Returns None when no column needs converting, so callers can skip conversion.

    ``sources`` (optional, see ``ExportWriter.set_source_expressions``): one expression
    per column computing its value from the row ``r`` (None: ``r[i]``), evaluated before
    the column's converter, in the same function; ``source_names``: the objects those
    expressions use (same rules as ``names``).

    The function is generated source, so that a row costs one call and no Python
    loop. Only column indexes and fixed templates go into the source, never data.
    """
    sources = [None] * len(converters) if sources is None else list(sources)
    if len(sources) != len(converters):
        raise ValueError(f"{len(sources)} source expressions for {len(converters)} columns")
    if all(c is None for c in converters) and all(src is None for src in sources):
        return None
    namespace = dict(source_names or {})
    items = []
    for i, (conv, src) in enumerate(zip(converters, sources)):
        src = f"r[{i}]" if src is None else f"({src})"
        if conv is None:
            items.append(src)
            continue
        if callable(conv):
            namespace[f"f{i}"] = conv
            expr = f"f{i}(v)"
        elif isinstance(conv, tuple):
            expr, names = conv
            for name, value in names.items():
                if namespace.setdefault(name, value) is not value:
                    raise ValueError(f"Converter name {name!r} is bound to two different objects")
            expr = f"({expr})"
        else:
            expr = f"({conv})"
        items.append(f"(None if (v := {src}) is None else {expr})")
    source = f"def convert(r, n=None):\n    return ({', '.join(items)},)\n"
    exec(compile(source, "<export row converter>", "exec"), namespace)  # noqa: S102
    return namespace["convert"]


def _local_naive(tz):
    """Converter for datetime values to naive local time in ``tz`` (for openpyxl)."""
    def convert(v):
        try:
            tzinfo = v.tzinfo
        except AttributeError:  # a date in a datetime column
            return v
        if tzinfo is None:  # naive: already local time
            return v
        return v.astimezone(tz).replace(tzinfo=None)
    return convert


class ExportWriter:
    """Base class: a file being written from chunks of rows.

    ``write_rows(rows)`` may be called any number of times; ``close()`` finishes
    the file. As a context manager, the writer is closed on success; on an error it
    is closed quietly (file handles and temporary files released, the error left to
    propagate) and whatever is at ``path`` is left for the caller to delete.

    Parameters: ``path`` (file to create), ``headers`` (column titles),
    ``types`` (one of COLUMN_TYPES per column), ``tz`` (a tzinfo such as
    ``zoneinfo.ZoneInfo``; aware datetimes are written in it; default UTC).
    Attributes: ``rows_written`` (data rows so far), ``closed``.
    """

    format_name = ""
    file_extension = ""
    mimetype = "application/octet-stream"

    def __init__(self, path, headers, types, tz=None):
        headers = [str(h) for h in headers]
        types = list(types)
        if len(headers) != len(types):
            raise ValueError(f"{len(headers)} headers but {len(types)} column types")
        unknown = sorted(set(types) - COLUMN_TYPES)
        if unknown:
            raise ValueError(f"Unknown column type(s) {unknown}; expected one of {sorted(COLUMN_TYPES)}")
        self.path = path
        self.headers = headers
        self.types = types
        self.tz = tz if tz is not None else timezone.utc
        self.rows_written = 0
        self.closed = False
        self._convert = _build_converter([self._converter_for(t) for t in types])
        # Rows left in the current sheet / file part; None means no limit.
        self._room = None
        self._sink = None  # consumes an iterable of rows

    # -- to be provided by subclasses ------------------------------------------------

    def _converter_for(self, column_type):
        """None, a callable, or an expression string in ``v`` (see ``_build_converter``)."""
        return None

    def _start_container(self):
        """Start the next sheet / part when the current one is full."""
        raise NotImplementedError

    def _finish(self):
        raise NotImplementedError

    def _abort(self):
        """Release everything without finishing the file; must not raise."""

    def set_source_expressions(self, sources, names):
        """For ``exports.building``: rows given to ``write_rows`` from now on are raw rows.

        ``sources`` has one Python expression per column (or None for ``r[i]``) giving the
        column's value from the raw row ``r``; ``names`` maps the names those expressions
        use to objects (they must not be ``r``, ``n``, ``f<digits>`` or this writer's own
        names, and may bind the local names they assign with ``:=``). Each expression is
        evaluated first, then the value goes through this writer's conversion as usual,
        all in one generated function per row: so a caller that must convert database
        values does not pay a second function call and tuple per row. Call it before the
        first row is written.
        """
        if self.rows_written:
            raise ValueError("set_source_expressions() after rows were written")
        self._convert = _build_converter([self._converter_for(t) for t in self.types], sources, names)

    # -- public interface --------------------------------------------------------------

    def write_rows(self, rows):
        """Write an iterable of rows (tuples or lists); returns how many were written."""
        if self.closed:
            raise ValueError("write_rows() on a closed writer")
        convert = self._convert
        if rows.__class__ is list or rows.__class__ is tuple:
            # A sized chunk that fits in the current sheet / part (the usual case): no
            # counting per row.
            n = len(rows)
            room = self._room
            if n and (room is None or n <= room):
                self._sink(rows if convert is None else map(convert, rows))
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
            source = it if room is None else islice(it, room)
            counter = count()
            # map/zip pull the row first, then the counter, so once the rows run out
            # next(counter) is the number of rows consumed.
            if convert is None:
                source = map(_first, zip(source, counter))
            else:
                source = map(convert, source, counter)
            self._sink(source)
            n = next(counter)
            written += n
            self.rows_written += n
            if room is None:
                break
            self._room = room - n
            if n < room:
                break
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


class XlsxWriter(ExportWriter):
    """xlsx through openpyxl's write-only mode.

    Sheets are named ``sheet_title``, "<title> 2", "<title> 3"…; each starts with the
    header row (plain, unstyled) and holds at most ``max_rows_per_sheet`` rows
    including the header (Excel's limit, 1,048,576, by default).

    Values: ints, floats, Decimals, bools, dates and datetimes are written natively.
    Text starting with "=" (which openpyxl would write as a formula) and text equal
    to an Excel error code such as "#N/A" (which it would write as an error) is
    written through a ``WriteOnlyCell`` typed as a string, so it stays literal text;
    only such values pay for a cell object. Characters XML cannot hold (control
    characters other than tab, LF, CR) are removed from text, as openpyxl would
    otherwise abort the whole export on them; ``isprintable()`` screens the common
    case cheaply. Non-str values in text columns are written as ``str(value)``.

    Number formats: openpyxl already gives date values "yyyy-mm-dd" and datetime
    values "yyyy-mm-dd h:mm:ss" on its fast path (plain values to ``append``).
    Setting the format per cell through a ``WriteOnlyCell`` was measured at +10-20 %
    of the total time for two datetime columns out of five, so instead, when the
    workbook is finished, the number-format code openpyxl registered for datetimes
    is replaced by "yyyy-mm-dd hh:mm:ss" (same format id, so no cell changes).
    That uses ``Workbook._number_formats``; if a future openpyxl changes it, the
    replacement is skipped and datetimes keep openpyxl's "h:mm:ss" (still dates).
    """

    format_name = "xlsx"
    file_extension = ".xlsx"
    mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

    def __init__(self, path, headers, types, tz=None, max_rows_per_sheet=XLSX_MAX_ROWS,
                 sheet_title="Export"):
        if not 2 <= max_rows_per_sheet <= XLSX_MAX_ROWS:
            raise ValueError(f"max_rows_per_sheet must be between 2 and {XLSX_MAX_ROWS} (header included)")
        self.max_rows_per_sheet = max_rows_per_sheet
        self.sheet_title = sheet_title
        self.sheet_count = 0
        self._wb = Workbook(write_only=True)
        self._ws = None
        super().__init__(path, headers, types, tz)
        self._start_container()

    def _converter_for(self, column_type):
        # The common cases inline (a naive datetime, plain printable text), the rest through a call.
        if column_type == "datetime":
            return ("v if v.__class__ is datetime and v.tzinfo is None else xlsx_local_naive(v)",
                    {"datetime": datetime, "xlsx_local_naive": self._local_naive})
        if column_type == "text":
            return ("v if v.__class__ is str and v.isprintable() and v[:1] not in xlsx_special_first "
                    "else xlsx_text(v)",
                    {"xlsx_special_first": _XLSX_SPECIAL_FIRST, "xlsx_text": self._text_converter})
        return None

    @cached_property
    def _local_naive(self):
        return _local_naive(self.tz)

    @cached_property
    def _text_converter(self):
        return self._text  # one bound method object, shared by every text column

    def _text(self, v):
        if v.__class__ is not str and not isinstance(v, str):
            return str(v)
        if not v.isprintable() and _XLSX_ILLEGAL_RE.search(v):
            v = _XLSX_ILLEGAL_RE.sub("", v)
        if v[:1] in _XLSX_SPECIAL_FIRST and (v[0] == "=" or v in _XLSX_ERROR_CODES):
            cell = WriteOnlyCell(self._ws, v)
            cell.data_type = "s"
            return cell
        return v

    def _start_container(self):
        self.sheet_count += 1
        title = self.sheet_title if self.sheet_count == 1 else f"{self.sheet_title} {self.sheet_count}"
        self._ws = self._wb.create_sheet(title)
        self._ws.append([self._text(h) for h in self.headers])
        self._room = self.max_rows_per_sheet - 1
        append = self._ws.append
        self._sink = lambda rows: deque(map(append, rows), maxlen=0)

    def _finish(self):
        formats = getattr(self._wb, "_number_formats", None)
        if isinstance(formats, list) and _OPENPYXL_DATETIME_FORMAT in formats:
            self._wb._number_formats = IndexedList(
                DATETIME_FORMAT if code == _OPENPYXL_DATETIME_FORMAT else code for code in formats
            )
        self._wb.save(self.path)

    def _abort(self):
        # Finish each sheet's XML stream and delete its temporary file; nothing is saved.
        for ws in self._wb.worksheets:
            writer = getattr(ws, "_writer", None)
            if writer is None:
                continue
            try:
                rows = getattr(ws, "_rows", None)
                if rows is not None:
                    rows.close()
                writer.close()
            except Exception:  # noqa: BLE001, S110
                pass
            try:
                writer.cleanup()
            except Exception:  # noqa: BLE001, S110
                pass


class CsvWriter(ExportWriter):
    """csv (Excel dialect: comma, CRLF, minimal quoting), UTF-8 with a BOM so Excel detects UTF-8.

    Values: None -> empty field; datetimes -> local "YYYY-MM-DD HH:MM:SS" (aware
    ones converted to ``tz`` first; microseconds dropped); dates -> "YYYY-MM-DD";
    booleans -> "TRUE" / "FALSE" (Excel's own spelling, which it reads back as
    booleans); numbers -> ``str()`` (Decimals keep their digits, e.g. "1.50").

    Formula injection: with ``escape_formulas=True`` (the default), a text-column
    ``str`` value starting with one of ``= + - @`` TAB CR gets a single quote
    prepended (OWASP's advice), so a spreadsheet shows it as text instead of
    evaluating it: "=1+2" is written as "'=1+2", "-5" in a *text* column as "'-5".
    That does change the data for other consumers: strip one leading "'" from such
    values to get the original back, or pass ``escape_formulas=False`` for a
    verbatim file. Numeric columns are never touched (negative numbers stay numbers).
    """

    format_name = "csv"
    file_extension = ".csv"
    mimetype = "text/csv"
    encoding = "utf-8-sig"
    buffer_size = 1 << 16

    def __init__(self, path, headers, types, tz=None, escape_formulas=True):
        self.escape_formulas = escape_formulas
        super().__init__(path, headers, types, tz)
        self._file = _open_text(open(path, "wb", buffering=self.buffer_size), self.encoding)  # noqa: SIM115
        self._writer = csv.writer(self._file)
        self._writer.writerow(self._header_row())
        self._sink = self._writer.writerows

    def _header_row(self):
        return [_csv_text(h) for h in self.headers] if self.escape_formulas else self.headers

    def _converter_for(self, column_type):
        if column_type == "datetime":
            # A naive datetime without microseconds is passed through: csv.writer's str()
            # of it is exactly "YYYY-MM-DD HH:MM:SS", in C. Anything else goes through
            # _datetime.
            return ("v if v.__class__ is datetime and v.tzinfo is None and not v.microsecond "
                    "else csv_datetime(v)",
                    {"datetime": datetime, "csv_datetime": self._datetime_converter})
        if column_type == "boolean":
            return '"TRUE" if v else "FALSE"'
        if column_type == "text" and self.escape_formulas:
            # _csv_text inlined for str values. Every formula character sorts before "A", so
            # the one comparison settles most values.
            return ("((\"'\" + v if v[:1] in csv_formula_first else v) if v < \"A\" else v) "
                    "if v.__class__ is str else csv_text(v)",
                    {"csv_formula_first": CSV_FORMULA_FIRST, "csv_text": _csv_text})
        return None

    @cached_property
    def _datetime_converter(self):
        return self._datetime  # one bound method object, shared by every datetime column

    def _datetime(self, v):
        try:
            tzinfo = v.tzinfo
        except AttributeError:  # a date in a datetime column
            return v
        if tzinfo is not None:
            v = v.astimezone(self.tz)
        return v.isoformat(" ", "seconds")[:19]

    def _finish(self):
        self._file.close()

    def _abort(self):
        self._file.close()


def _open_text(binary, encoding):
    """A text stream (newline="") over the binary stream ``binary``, in ``encoding``.

    "utf-8-sig" is opened as "utf-8" with the BOM written first: the file is the same,
    but every write then goes through the C utf-8 encoder instead of the utf-8-sig
    codec's Python-level ``encode()`` (one call per csv row).
    """
    bom = codecs.lookup(encoding).name == "utf-8-sig"
    stream = io.TextIOWrapper(binary, encoding="utf-8" if bom else encoding, newline="")
    if bom:
        stream.write("\ufeff")
    return stream


def _csv_text(v, _first_chars=CSV_FORMULA_FIRST):
    try:
        if v[:1] in _first_chars:
            return "'" + v
    except TypeError:  # not a str: csv.writer will str() it
        pass
    return v


class ZipCsvWriter(CsvWriter):
    """A zip (deflated) of csv files "export-part-1.csv", "export-part-2.csv"…

    Each part has the header and at most ``max_rows_per_file`` data rows (default
    1,048,575, so every part opens whole in Excel), and is formatted exactly as
    ``CsvWriter`` (BOM, value conventions, ``escape_formulas``). Members are written
    streaming, with zip64 headers so that parts over 4 GiB work. ``compresslevel``
    is zlib's (None: its default, 6; 1 is several times faster, with larger files).
    """

    format_name = "zip"
    file_extension = ".zip"
    mimetype = "application/zip"
    member_name = "export-part-{}.csv"

    def __init__(self, path, headers, types, tz=None, escape_formulas=True,
                 max_rows_per_file=XLSX_MAX_ROWS - 1, compresslevel=None):
        if max_rows_per_file < 1:
            raise ValueError("max_rows_per_file must be at least 1")
        self.max_rows_per_file = max_rows_per_file
        self.escape_formulas = escape_formulas
        self.part_count = 0
        # Not CsvWriter.__init__: there is no single file to open; parts are opened on demand.
        ExportWriter.__init__(self, path, headers, types, tz)
        self._zip = zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=compresslevel)
        self._file = None
        self._start_container()

    def _start_container(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        self.part_count += 1
        member = self._zip.open(self.member_name.format(self.part_count), "w", force_zip64=True)
        self._file = _open_text(member, self.encoding)
        self._writer = csv.writer(self._file)
        self._writer.writerow(self._header_row())
        self._sink = self._writer.writerows
        self._room = self.max_rows_per_file

    def _finish(self):
        self._file.close()
        self._zip.close()

    def _abort(self):
        try:
            if self._file is not None:
                self._file.close()
        finally:
            self._zip.close()


WRITERS = {"xlsx": XlsxWriter, "csv": CsvWriter, "zip": ZipCsvWriter}


def get_writer(format_name):
    """The writer class for "xlsx", "csv" or "zip"."""
    try:
        return WRITERS[format_name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown export format {format_name!r}; expected one of: {', '.join(sorted(WRITERS))}"
        ) from None


# -- Baselines for the benchmark ------------------------------------------------------------


def bare_xlsx(path, headers, rows):
    """The plainest openpyxl write-only loop, as a baseline for ``XlsxWriter``.

    openpyxl refuses aware datetimes, so the benchmark must give this function rows
    whose datetimes are already naive local time (converted before timing), while
    ``XlsxWriter`` gets the same rows with aware datetimes. No sheet splitting: the
    benchmark stays under one sheet's worth of rows.
    """
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("Export")
    ws.append(headers)
    for row in rows:
        ws.append(row)
    wb.save(path)


def bare_csv(path, headers, rows):
    """The plainest csv.writer loop (``writerows``), as a baseline for ``CsvWriter``.

    Takes the very same rows as ``CsvWriter`` (csv.writer str()-s anything).
    """
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(headers)
        writer.writerows(rows)
