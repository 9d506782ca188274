"""xlsx written as sheet XML straight into the zip entry: the fast default engine.

An xlsx is a zip of XML parts. Everything but the sheets is a few fixed lines; each sheet is
streamed a chunk at a time into its deflated zip member (``zip_stream``), so memory stays flat
whatever the row count. Cells are written without references (``r``) and strings inline (no
shared-string table, which would grow with the data); an empty value is an empty ``<c/>`` so later
cells keep their column. A chunk becomes XML column by column, a column's repeated values looked up
rather than rendered again (``ColumnCells``), and its rows joined once. openpyxl's write-only mode
builds a cell object and an XML element per value; docs/performance.md has the measured figures.
"""
import math
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from xml.sax.saxutils import escape, quoteattr

from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel

from exports.writers.base import XLSX_MAX_ROWS, ExportWriter
from exports.writers.convert import convert_columns, local_naive
from exports.writers.xlsx_layout import (
    DATE_FORMAT,
    DATETIME_FORMAT,
    clean_text,
    column_widths,
    sheet_title,
    validate_sheet_rows,
)
from exports.writers.zip_stream import ZipStream

__all__ = ["StreamingXlsxWriter"]

# Cell styles (indexes into styles.xml's cellXfs): 0 plain, 1 date, 2 datetime, 3 bold header.
DATE_STYLE, DATETIME_STYLE, HEADER_STYLE = 1, 2, 3
# Serial numbers: days since 1899-12-30 (Excel's epoch as seen from 1900-03-01 on; before that
# Excel counts a 29 February 1900 that never was, so earlier values go through openpyxl's to_excel).
EPOCH = datetime(1899, 12, 30)
EPOCH_ORDINAL = EPOCH.toordinal()
FIRST_PLAIN_SERIAL = 61  # 1900-03-01
FIRST_PLAIN_DATETIME = datetime(1900, 3, 1)
DAY = timedelta(days=1)

EMPTY_CELL = b"<c/>"
ROW_BREAK = b"</row><row>"

#: Distinct cells a column keeps for look-up (memory stays bounded whatever the data).
CACHED_CELLS = 4096
#: By column type: the value classes whose cells are kept for look-up, and whether a chunk must hold
#: only those to be looked up (a bool in an integer column equals 1 but is written as a boolean; no
#: value of another class equals a str, a date or a datetime).
CACHED_TYPES = {
    "text": (frozenset({str, type(None)}), False),
    "integer": (frozenset({int, type(None)}), True),
    "decimal": (frozenset({Decimal, type(None)}), True),
    "boolean": (frozenset({bool, type(None)}), True),
    "date": (frozenset({date, type(None)}), False),
    "datetime": (frozenset({datetime, type(None)}), False),
}

NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
NS_R = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
PACKAGE_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
SHEET_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"

STYLES_XML = (
    f'{XML_DECLARATION}<styleSheet {NS}>'
    f'<numFmts count="2"><numFmt numFmtId="164" formatCode="{DATE_FORMAT}"/>'
    f'<numFmt numFmtId="165" formatCode="{DATETIME_FORMAT}"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="4"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    '</styleSheet>'
)


def text_cell(v, style=""):
    """An inline-string cell holding ``v`` (cleaned of what XML cannot hold); empty text is an empty cell."""
    v = clean_text(v)
    if not v:
        return "<c/>"
    return f'<c{style} t="inlineStr"><is><t xml:space="preserve">{escape(v, {chr(13): "&#13;"})}</t></is></c>'


def _number_cell(v):
    return f"<c><v>{v}</v></c>"


def _serial(v):
    """Excel serial number of a naive datetime or a date."""
    if v.__class__ is datetime or isinstance(v, datetime):
        if v >= FIRST_PLAIN_DATETIME:
            return (v - EPOCH) / DAY
        return to_excel(v)
    serial = v.toordinal() - EPOCH_ORDINAL
    return serial if serial >= FIRST_PLAIN_SERIAL else to_excel(v)


class StreamingXlsxWriter(ExportWriter):
    """xlsx streamed straight into the zip: constant memory, typed cells, styled header.

    Same sheets, header and values as ``OpenpyxlXlsxWriter``: sheets "Export", "Export 2"… of at
    most ``max_rows_per_sheet`` rows, header included; a bold, frozen header with an autofilter
    and widths from the column types. ints, floats and Decimals are numbers, booleans booleans,
    dates and datetimes serial numbers formatted "yyyy-mm-dd" and "yyyy-mm-dd hh:mm:ss" (aware
    datetimes in ``tz``, naive ones as they are). Text is an inline string, so it is never a
    formula nor an error value ("=1+2" and "#N/A" stay text); characters XML cannot hold are
    removed, a carriage return is kept as ``&#13;``; an empty string is an empty cell. A value
    of another type than its column's is written by its own type (text in an integer column
    stays text); a number Excel cannot hold (NaN, infinity) is written as text.
    Each sheet starts with its ``<dimension>`` (the cells it holds: readers know its size before
    reading it), filled in when the sheet ends; the package's parts are dated with the time the
    writer was made (in ``tz``). ``compresslevel`` (deflate's level; by default about the size of
    zlib's level 6; 1 is faster and larger), ``deflater`` and ``threaded``: see ``zip_stream.ZipStream``.
    """

    format_name = "xlsx"
    format_label = "Excel (xlsx)"
    file_extension = ".xlsx"
    mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    engine = "streaming"

    def __init__(self, path, headers, types, tz=None, name=None, max_rows_per_sheet=XLSX_MAX_ROWS,
                 sheet_title="Export", compresslevel=None, deflater=None, threaded=False):
        validate_sheet_rows(max_rows_per_sheet, XLSX_MAX_ROWS)
        self.max_rows_per_sheet = max_rows_per_sheet
        self.sheet_title = sheet_title
        self.sheet_count = 0
        self._sheet_rows = []  # rows (header included) of each finished sheet
        self._member = None
        super().__init__(path, headers, types, tz, name)
        self._open(path, compresslevel, deflater, threaded)

    def _open(self, path, compresslevel, deflater=None, threaded=False):
        """Open the file and start the first sheet (exports.writers.xlsx_parts writes parts of a sheet instead)."""
        built = datetime.now(self.tz).replace(tzinfo=None)
        self._zip = ZipStream(path, built, compresslevel=compresslevel, deflater=deflater, threaded=threaded)
        self._start_container()

    # -- cells ---------------------------------------------------------------------------

    def _column_function(self, column_type):
        # Cells as UTF-8 bytes: each type's common case inline, everything else (other types, edge
        # values) through _value; columns of few distinct values (most but keys and times) are looked
        # up (``ColumnCells``).
        value = self._value_converter
        empty = EMPTY_CELL
        if column_type == "text":
            # Printable text needs only &, < and > escaped (no control characters, no CR, no "_xHHHH_").
            def cells(values):
                return [(('<c t="inlineStr"><is><t xml:space="preserve">'
                          f'{v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")}</t></is></c>'
                          ).encode() if v else empty)
                        if v.__class__ is str and v.isprintable() and "_x" not in v
                        else empty if v is None else value(v, True) for v in values]
        elif column_type == "integer":
            def cells(values):
                return [b"<c><v>%d</v></c>" % v if v.__class__ is int else empty if v is None else value(v)
                        for v in values]
        elif column_type == "decimal":
            def cells(values):
                return [f"<c><v>{v}</v></c>".encode()
                        if v.__class__ is Decimal and v.is_finite() or v.__class__ is int
                        else empty if v is None else value(v) for v in values]
        elif column_type == "boolean":
            def cells(values):
                return [(b'<c t="b"><v>1</v></c>' if v else b'<c t="b"><v>0</v></c>') if v.__class__ is bool
                        else empty if v is None else value(v) for v in values]
        elif column_type == "date":
            def cells(values):
                return [b'<c s="%d"><v>%d</v></c>' % (DATE_STYLE, serial)
                        if v.__class__ is date and (serial := v.toordinal() - EPOCH_ORDINAL) >= FIRST_PLAIN_SERIAL
                        else empty if v is None else value(v) for v in values]
        else:  # datetime
            def cells(values):
                return [b'<c s="%d"><v>%r</v></c>' % (DATETIME_STYLE, (v - EPOCH) / DAY)
                        if v.__class__ is datetime and v.tzinfo is None and v >= FIRST_PLAIN_DATETIME
                        else empty if v is None else value(v) for v in values]
        return ColumnCells(cells, *CACHED_TYPES[column_type])

    @cached_property
    def _value_converter(self):
        def cell(v, text=False):
            return self._value(v, text).encode()
        return cell  # one function, shared by every column

    @cached_property
    def _local_naive(self):
        return local_naive(self.tz)

    def _value(self, v, text=False):
        """The cell for any value, by its own type (``text``: a text column's non-str value)."""
        if text and not isinstance(v, str):
            v = str(v)
        if isinstance(v, str):
            return text_cell(v)
        if v.__class__ is bool:
            return f'<c t="b"><v>{int(v)}</v></c>'
        if isinstance(v, int):
            return _number_cell(int(v))
        if isinstance(v, float):
            return _number_cell(repr(float(v))) if math.isfinite(v) else text_cell(str(v))
        if isinstance(v, Decimal):
            return _number_cell(v) if v.is_finite() else text_cell(str(v))
        if isinstance(v, datetime):
            return f'<c s="{DATETIME_STYLE}"><v>{_serial(self._local_naive(v))}</v></c>'
        if isinstance(v, date):
            return f'<c s="{DATE_STYLE}"><v>{_serial(v)}</v></c>'
        return self._value(str(v))

    # -- sheets and the package ------------------------------------------------------------

    def _start_container(self):
        self._end_sheet()
        self.sheet_count += 1
        self._member = self._zip.open(f"xl/worksheets/sheet{self.sheet_count}.xml")
        # The head as stored bytes, its dimension as wide as the largest it can become: filled in at the end.
        self._member.write_stored(self._sheet_head(self._dimension(self.max_rows_per_sheet)).encode())
        self._room = self.max_rows_per_sheet - 1
        self._sink = self._write_rows

    def _dimension(self, rows):
        """The sheet's ``<dimension>`` for ``rows`` rows (header included), padded to the width of the
        largest a sheet can have, so that it can be rewritten in place."""
        widest = f'<dimension ref="{self._filter_ref(self.max_rows_per_sheet).replace("$", "")}"'
        tag = f'<dimension ref="{self._filter_ref(rows).replace("$", "")}"'
        return tag + " " * (len(widest) - len(tag)) + "/>"

    def _sheet_head(self, dimension=""):
        """The sheet's XML up to and including its header row: frozen, bold, columns sized by type."""
        cols = "".join(f'<col min="{i}" max="{i}" width="{w}" customWidth="1"/>'
                       for i, w in enumerate(column_widths(self.headers, self.types), start=1))
        header = "".join(text_cell(h, f' s="{HEADER_STYLE}"') for h in self.headers)
        selected = ' tabSelected="1"' if self.sheet_count == 1 else ""
        return (
            f'{XML_DECLARATION}<worksheet {NS} {NS_R}>{dimension}'
            f'<sheetViews><sheetView{selected} workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>'
            '<sheetFormatPr defaultRowHeight="15"/>'
            f'<cols>{cols}</cols><sheetData><row>{header}</row>'
        )

    def _sheet_tail(self, rows):
        """The sheet's XML after its last row, with the autofilter over its ``rows`` rows."""
        return f'</sheetData><autoFilter ref="{self._filter_ref(rows).replace("$", "")}"/></worksheet>'

    def _defined_names(self, titles):
        """The workbook's defined names: each sheet's filter range (Excel keeps them so)."""
        filters = "".join(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{i}" hidden="1">'
            f"{escape(quote_sheet(t))}!{self._filter_ref(rows)}</definedName>"
            for i, (t, rows) in enumerate(zip(titles, self._sheet_rows)))
        return f"<definedNames>{filters}</definedNames>"

    _convert = staticmethod(convert_columns)

    def _write_rows(self, columns):
        """Write a chunk's columns of cells as the sheet's XML."""
        self._member.write(self.rows_xml(columns))

    def render_rows(self, rows):
        """The sheet XML (bytes, ``<row>`` elements) of the non-empty list ``rows``, as this writer
        writes them, without writing them: for a sheet assembled from parts written apart."""
        return self.rows_xml(self._convert(rows, self._functions))

    @staticmethod
    def rows_xml(columns):
        """The sheet XML (bytes) of a chunk's rows, given its columns of cells (bytes, equal lengths)."""
        width = len(columns) + 1  # the cells of a row, then the tags between it and the next
        parts = [ROW_BREAK] * (len(columns[0]) * width + 1)
        parts[0] = b"<row>"
        for i, cells in enumerate(columns, start=1):
            parts[i::width] = cells
        parts[-1] = b"</row>"
        return b"".join(parts)

    def _filter_ref(self, rows):
        return f"$A$1:${get_column_letter(len(self.headers))}${rows}"

    def _end_sheet(self):
        if self._member is None:
            return
        rows = self.max_rows_per_sheet - self._room
        self._member.write(self._sheet_tail(rows).encode())
        self._member.rewrite_stored(self._sheet_head(self._dimension(rows)).encode())
        self._member.close()
        self._member = None
        self._sheet_rows.append(rows)

    def _finish(self):
        self._end_sheet()
        count = self.sheet_count
        titles = [sheet_title(self.sheet_title, i) for i in range(1, count + 1)]
        sheets = "".join(f'<sheet name={quoteattr(t)} sheetId="{i}" r:id="rId{i}"/>'
                         for i, t in enumerate(titles, start=1))
        sheet_rels = "".join(
            f'<Relationship Id="rId{i}" Type="{DOC_RELS}/worksheet" Target="worksheets/sheet{i}.xml"/>'
            for i in range(1, count + 1))
        overrides = "".join(f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{SHEET_CONTENT_TYPE}"/>'
                            for i in range(1, count + 1))
        parts = {
            "xl/workbook.xml": (f'{XML_DECLARATION}<workbook {NS} {NS_R}><bookViews><workbookView/></bookViews>'
                                f'<sheets>{sheets}</sheets>{self._defined_names(titles)}</workbook>'),
            "xl/_rels/workbook.xml.rels": (
                f'{XML_DECLARATION}<Relationships xmlns="{PACKAGE_RELS}">{sheet_rels}'
                f'<Relationship Id="rId{count + 1}" Type="{DOC_RELS}/styles" Target="styles.xml"/>'
                '</Relationships>'),
            "xl/styles.xml": STYLES_XML,
            "_rels/.rels": (
                f'{XML_DECLARATION}<Relationships xmlns="{PACKAGE_RELS}">'
                f'<Relationship Id="rId1" Type="{DOC_RELS}/officeDocument" Target="xl/workbook.xml"/>'
                '</Relationships>'),
            "[Content_Types].xml": (
                f'{XML_DECLARATION}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                '<Default Extension="xml" ContentType="application/xml"/>'
                '<Override PartName="/xl/workbook.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
                '<Override PartName="/xl/styles.xml" '
                'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
                f'{overrides}</Types>'),
        }
        for name, xml in parts.items():
            self._zip.writestr(name, xml)
        self._zip.close()

    def _abort(self):
        self._zip.abort()


class ColumnCells:
    """A column function that looks cells up by value: most columns hold few distinct values.

    ``render(values)`` is the column's own function (cells as bytes). Values are looked up (one dict
    look-up a value, at C speed through ``map``); a chunk's new values are rendered together, once
    each, and the first ``CACHED_CELLS`` distinct values of the ``types`` classes kept. With
    ``guard``, a chunk holding values of other classes is rendered whole, as is a chunk holding an
    unhashable value. A column whose chunk brings more new values than a quarter of its length
    (keys, times) stops looking up.
    """

    __slots__ = ("render", "types", "guard", "cells", "room")

    def __init__(self, render, types, guard):
        self.render = render
        self.types = types
        self.guard = types if guard else None
        self.cells = {None: EMPTY_CELL}
        self.room = CACHED_CELLS

    def __call__(self, values):
        cells = self.cells
        if cells is None or self.guard is not None and not self.guard.issuperset(map(type, values)):
            return self.render(values)
        try:
            return list(map(cells.__getitem__, values))
        except KeyError:  # some values are new: their cells are rendered together, below
            found = list(map(cells.get, values))
        except TypeError:  # an unhashable value
            return self.render(values)
        missing = [i for i, cell in enumerate(found) if cell is None]
        new = {}  # the distinct new values, by class too: 1 == 1.0 == True, but their cells differ
        for i in missing:
            v = values[i]
            new.setdefault((v.__class__, v), v)
        rendered = dict(zip(new, self.render(list(new.values()))))
        types, room = self.types, self.room
        for (cls, v), cell in rendered.items():
            if room and cls in types:
                room -= 1
                cells[v] = cell
        self.room = room
        for i in missing:
            v = values[i]
            found[i] = rendered[v.__class__, v]
        if len(rendered) * 4 > len(values):
            self.cells = None
        return found


def quote_sheet(title):
    """A sheet name as a formula reference writes it: 'My sheet'."""
    return "'" + title.replace("'", "''") + "'"
