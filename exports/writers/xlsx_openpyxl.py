"""xlsx through openpyxl's write-only mode: the compatibility engine (EXPORT_XLSX_ENGINE=openpyxl)."""
import os
from collections import deque
from datetime import datetime
from functools import cached_property

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from exports.writers.base import XLSX_MAX_ROWS, ExportWriter
from exports.writers.convert import local_naive
from exports.writers.xlsx_layout import ERROR_CODES, clean_text, column_widths, sheet_title, validate_sheet_rows

__all__ = ["OpenpyxlXlsxWriter"]

_SPECIAL_FIRST = frozenset({"=", "#"})


class OpenpyxlXlsxWriter(ExportWriter):
    """xlsx through openpyxl's write-only mode, public API only.

    Sheets are named ``sheet_title``, "<title> 2"…; each starts with the header row (bold,
    frozen, with an autofilter over the sheet's rows, column widths from the column types) and
    holds at most ``max_rows_per_sheet`` rows including the header (Excel's 1,048,576 by default).

    Values: ints, floats, Decimals, bools, dates and datetimes are written natively; openpyxl
    formats dates "yyyy-mm-dd" and datetimes "yyyy-mm-dd h:mm:ss" by itself. Text starting with
    "=" (a formula to openpyxl) or equal to an error code such as "#N/A" is written through a
    ``WriteOnlyCell`` typed as a string, so it stays literal text. Characters XML cannot hold are
    removed from text (openpyxl would abort the export on them); non-str values in text columns
    are written as ``str(value)``.
    """

    format_name = "xlsx"
    format_label = "Excel (xlsx)"
    file_extension = ".xlsx"
    mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    engine = "openpyxl"

    def __init__(self, path, headers, types, tz=None, name=None, max_rows_per_sheet=XLSX_MAX_ROWS,
                 sheet_title="Export"):
        validate_sheet_rows(max_rows_per_sheet, XLSX_MAX_ROWS)
        self.max_rows_per_sheet = max_rows_per_sheet
        self.sheet_title = sheet_title
        self.sheet_count = 0
        self._wb = Workbook(write_only=True)
        self._ws = None
        super().__init__(path, headers, types, tz, name)
        self._widths = column_widths(self.headers, self.types)
        self._start_container()

    def _column_function(self, column_type):
        # The common cases inline (a naive datetime, plain printable text), the rest through a call.
        if column_type == "datetime":
            local = self._local_naive

            def cells(values):
                return [v if v.__class__ is datetime and v.tzinfo is None or v is None else local(v) for v in values]
            return cells
        if column_type == "text":
            text = self._text_converter

            def cells(values):
                return [v if v.__class__ is str and v.isprintable() and v[:1] not in _SPECIAL_FIRST and "_x" not in v
                        else None if v is None else text(v) for v in values]
            return cells
        return None

    @cached_property
    def _local_naive(self):
        return local_naive(self.tz)

    @cached_property
    def _text_converter(self):
        return self._text  # one bound method object, shared by every text column

    def _text(self, v):
        v = clean_text(v)
        if v[:1] in _SPECIAL_FIRST and (v[0] == "=" or v in ERROR_CODES):
            cell = WriteOnlyCell(self._ws, v)
            cell.data_type = "s"
            return cell
        return v

    def _header_cell(self, text):
        cell = WriteOnlyCell(self._ws, clean_text(text))
        cell.data_type = "s"
        cell.font = Font(bold=True)
        return cell

    def _end_sheet(self):
        """Put the autofilter over the rows the finished sheet holds."""
        rows = self.max_rows_per_sheet - self._room
        self._ws.auto_filter.ref = f"A1:{get_column_letter(len(self.headers))}{rows}"

    def _start_container(self):
        if self._ws is not None:
            self._end_sheet()
        self.sheet_count += 1
        self._ws = self._wb.create_sheet(sheet_title(self.sheet_title, self.sheet_count))
        # Set before the first row: write-only sheets write their views and columns with it.
        self._ws.freeze_panes = "A2"
        for index, width in enumerate(self._widths, start=1):
            self._ws.column_dimensions[get_column_letter(index)].width = width
        self._ws.append([self._header_cell(h) for h in self.headers])
        self._room = self.max_rows_per_sheet - 1
        append = self._ws.append
        self._sink = lambda rows: deque(map(append, rows), maxlen=0)

    def _finish(self):
        self._end_sheet()
        self._wb.save(self.path)

    def _abort(self):
        # openpyxl releases a write-only sheet's temporary file only when it saves the workbook;
        # saving into the null device does that through its public API, leaving ``path`` alone.
        with open(os.devnull, "wb") as null:
            self._wb.save(null)
