"""csv: Excel dialect, UTF-8 with a BOM, streamed straight into the file."""
import codecs
import csv
import io
from datetime import datetime
from functools import cached_property

from exports.writers.base import ExportWriter

__all__ = ["CSV_FORMULA_FIRST", "CsvWriter"]

# Leading characters that make a spreadsheet treat a csv field as a formula (OWASP list).
CSV_FORMULA_FIRST = frozenset({"=", "+", "-", "@", "\t", "\r"})
# And spaces before "=": LibreOffice evaluates " =1+1" when "Trim spaces" is ticked on import.
# Full-width "＝" and spaces before "+", "-" or "@" evaluate nowhere we know of (tests/test_writers.py).


class CsvWriter(ExportWriter):
    """csv (Excel dialect: comma, CRLF, minimal quoting), UTF-8 with a BOM so Excel detects UTF-8.

    Values: None -> empty field; datetimes -> local "YYYY-MM-DD HH:MM:SS" (aware ones converted
    to ``tz`` first; microseconds dropped); dates -> "YYYY-MM-DD"; booleans -> "TRUE" / "FALSE"
    (Excel's own spelling); numbers -> ``str()`` (Decimals keep their digits, e.g. "1.50").

    Formula injection: with ``escape_formulas=True`` (the default), a text-column ``str`` value
    starting with one of ``= + - @`` TAB CR, or with spaces then ``=``, gets a single quote prepended
    (OWASP's advice), so a spreadsheet shows it as text: "=1+2" is written as "'=1+2". Strip one leading "'" from such
    values to get the original back, or pass ``escape_formulas=False`` for a verbatim file.
    Numeric columns are never touched (negative numbers stay numbers).
    """

    format_name = "csv"
    format_label = "CSV"
    file_extension = ".csv"
    mimetype = "text/csv"
    encoding = "utf-8-sig"
    buffer_size = 1 << 16

    def __init__(self, path, headers, types, tz=None, name=None, escape_formulas=True):
        self.escape_formulas = escape_formulas
        super().__init__(path, headers, types, tz, name)
        self._file = open_text(open(path, "wb", buffering=self.buffer_size), self.encoding)  # noqa: SIM115
        self._start_csv(self._file)

    def _start_csv(self, stream):
        self._writer = csv.writer(stream)
        self._writer.writerow(self._header_row())
        self._sink = self._writer.writerows

    def _header_row(self):
        return [csv_text(h) for h in self.headers] if self.escape_formulas else self.headers

    def _column_function(self, column_type):
        if column_type == "datetime":
            slow = self._datetime_converter

            def cells(values):
                # A naive datetime without microseconds is passed through: csv.writer's str() of it is
                # exactly "YYYY-MM-DD HH:MM:SS", in C.
                return [v if v.__class__ is datetime and v.tzinfo is None and not v.microsecond or v is None
                        else slow(v) for v in values]
            return cells
        if column_type == "boolean":
            def cells(values):
                return [None if v is None else "TRUE" if v else "FALSE" for v in values]
            return cells
        if column_type == "text" and self.escape_formulas:
            def cells(values):
                # csv_text inlined for str values. Every formula character sorts before "A", so the one
                # comparison settles most values.
                return [("'" + v if v < "A" and (v[:1] in CSV_FORMULA_FIRST or v[:1] == " " and spaced_formula(v))
                         else v) if v.__class__ is str
                        else None if v is None else csv_text(v) for v in values]
            return cells
        return None

    #: Takes rows already rendered as bytes (``write_encoded``); a subclass that splits its output by
    #: row count (the zip of csv parts) does not.
    takes_encoded_rows = True

    def write_encoded(self, chunk):
        """Write ``(data, rows)``: `rows` rows already rendered as this writer renders them, as bytes
        in its encoding, CRLF after each (``exports.files.pg_copy``: csv written by PostgreSQL's COPY)."""
        if not self.takes_encoded_rows:
            raise TypeError(f"{type(self).__name__} does not take encoded rows")
        if self.closed:
            raise ValueError("write_encoded() on a closed writer")
        data, rows = chunk
        self._file.flush()
        self._file.buffer.write(data)
        self.rows_written += rows
        return rows

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


def open_text(binary, encoding):
    """A text stream (newline="") over the binary stream ``binary``, in ``encoding``.

    "utf-8-sig" is opened as "utf-8" with the BOM written first: the same file, but every write
    goes through the C utf-8 encoder instead of the utf-8-sig codec's Python-level ``encode()``.
    """
    bom = codecs.lookup(encoding).name == "utf-8-sig"
    stream = io.TextIOWrapper(binary, encoding="utf-8" if bom else encoding, newline="")
    if bom:
        stream.write("\ufeff")
    return stream


def spaced_formula(v):
    """Whether `v` is spaces then "=": a formula to LibreOffice when it trims spaces on import."""
    return v.lstrip(" ")[:1] == "="


def csv_text(v, _first_chars=CSV_FORMULA_FIRST):
    try:
        if v[:1] in _first_chars or v[:1] == " " and spaced_formula(v):
            return "'" + v
    except TypeError:  # not a str: csv.writer will str() it
        pass
    return v
