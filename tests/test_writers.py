"""Streaming export writers (exports/writers/): round trips, splitting, memory.

Pure Python: no Django, no database, no Redis. Run with
``.venv/bin/python -m pytest -p no:django -q tests/test_writers.py``.
"""
import csv
import datetime as dt
import io
import os
import tempfile
import tracemalloc
import zipfile
import zlib
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from exports.writers import (
    WRITERS,
    XLSX_ENGINES,
    XLSX_MAX_ROWS,
    CsvWriter,
    OpenpyxlXlsxWriter,
    StreamingXlsxWriter,
    XlsxWriter,
    ZipCsvWriter,
    get_writer,
    xlsx_engine,
    zip_stream,
)
from exports.writers.xlsx_layout import column_widths
from exports.writers.zip_stream import DEFLATERS


@pytest.fixture(scope="session", autouse=True)
def fresh_test_redis():
    """Overrides conftest's autouse Redis flush: these tests need no services."""


KOLKATA = ZoneInfo("Asia/Kolkata")
UTC = dt.timezone.utc

HEADERS = ["Name", "Count", "Price", "Ratio", "Active", "Born", "Created"]
TYPES = ["text", "integer", "decimal", "decimal", "boolean", "date", "datetime"]
ROWS = [
    # UTC 23:30 on Jan 1 is 05:00 on Jan 2 in Kolkata (+05:30).
    ("Zoë", 1, Decimal("1.50"), 0.25, True, dt.date(2024, 1, 2),
     dt.datetime(2024, 1, 1, 23, 30, tzinfo=UTC)),
    ("東京 🎉", -7, Decimal("-3.25"), 1e-3, False, dt.date(1999, 12, 31),
     dt.datetime(2024, 6, 30, 12, 0, 59, 250_000, tzinfo=ZoneInfo("America/New_York"))),
    ("=1+2", 0, None, None, None, None, None),
    (None, None, Decimal("0"), -2.5, True, dt.date(2000, 2, 29), dt.datetime(2024, 3, 4, 5, 6, 7, 500_000)),
    ("line\nbreak, comma \"quote\"", 10**12, Decimal("12345.678"), 3.0, False, dt.date(2024, 1, 1),
     dt.datetime(2024, 12, 31, 18, 30, tzinfo=UTC)),
]
# What the datetime column must read back as, in Kolkata local time, naive.
EXPECTED_LOCAL = [
    dt.datetime(2024, 1, 2, 5, 0),
    dt.datetime(2024, 6, 30, 21, 30, 59, 250_000),  # EDT (-4) 12:00:59 -> IST (+5:30) 21:30:59
    None,
    dt.datetime(2024, 3, 4, 5, 6, 7, 500_000),  # naive: taken as local already, unchanged
    dt.datetime(2025, 1, 1, 0, 0),
]


def write(cls, path, rows, headers=HEADERS, types=TYPES, chunk=2, **kwargs):
    """Write ``rows`` in chunks, as the export task does; returns the closed writer."""
    with cls(path, headers, types, **kwargs) as writer:
        for start in range(0, len(rows), chunk):
            writer.write_rows(iter(rows[start:start + chunk]))
    return writer


def xlsx_sheets(path):
    """{sheet title: list of row tuples, padded to the header's width}."""
    wb = load_workbook(path, read_only=True)
    try:
        sheets = {}
        for ws in wb.worksheets:
            rows = [tuple(row) for row in ws.iter_rows(values_only=True)]
            width = len(rows[0])
            sheets[ws.title] = [row + (None,) * (width - len(row)) for row in rows]
        return sheets
    finally:
        wb.close()


def read_csv_bytes(data):
    assert data.startswith(b"\xef\xbb\xbf"), data[:10]
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"), newline="")))


ALL_WRITERS = [StreamingXlsxWriter, OpenpyxlXlsxWriter, CsvWriter, ZipCsvWriter]
WRITER_IDS = ["xlsx-streaming", "xlsx-openpyxl", "csv", "zip"]


# -- xlsx (both engines) ----------------------------------------------------------------------

BOTH_ENGINES = pytest.mark.parametrize("cls", [StreamingXlsxWriter, OpenpyxlXlsxWriter], ids=lambda c: c.engine)
# openpyxl gives datetimes its own format and no way to change it without private attributes.
DATETIME_FORMATS = {"streaming": "yyyy-mm-dd hh:mm:ss", "openpyxl": "yyyy-mm-dd h:mm:ss"}


@BOTH_ENGINES
def test_xlsx_round_trip(cls, tmp_path):
    path = tmp_path / "out.xlsx"
    writer = write(cls, path, ROWS, tz=KOLKATA)
    assert writer.rows_written == len(ROWS)
    assert writer.closed

    sheets = xlsx_sheets(path)
    assert list(sheets) == ["Export"]
    rows = sheets["Export"]
    assert rows[0] == tuple(HEADERS)
    assert len(rows) == 1 + len(ROWS)
    for got, row, local in zip(rows[1:], ROWS, EXPECTED_LOCAL):
        name, count, price, ratio, active, born, _created = row
        assert got[0] == name
        assert got[1] == count and type(got[1]) is type(count)  # ints stay ints
        assert got[2] == (None if price is None else pytest.approx(float(price)))
        assert got[3] == ratio
        assert got[4] is active  # booleans come back as bool, not 0/1
        # openpyxl reads date cells back as midnight datetimes
        assert got[5] == (None if born is None else dt.datetime.combine(born, dt.time()))
        assert got[6] == local


@BOTH_ENGINES
def test_xlsx_cell_types_and_date_formats(cls, tmp_path):
    path = tmp_path / "out.xlsx"
    write(cls, path, ROWS, tz=KOLKATA)
    wb = load_workbook(path, read_only=True)
    rows = list(wb["Export"].iter_rows(min_row=2, max_row=4))
    formula_cell = rows[2][0]
    assert formula_cell.value == "=1+2"
    assert formula_cell.data_type == "s"
    assert rows[0][0].data_type == "s"
    assert rows[0][4].data_type == "b"
    assert rows[0][5].is_date and rows[0][5].number_format == "yyyy-mm-dd"
    assert rows[0][6].is_date and rows[0][6].number_format == DATETIME_FORMATS[cls.engine]
    wb.close()


@BOTH_ENGINES
def test_xlsx_special_text_stays_text(cls, tmp_path):
    """Formulas, error codes and XML-illegal characters in text never break or alter the sheet."""
    values = ["=SUM(A1:A9)", "=", "#N/A", "#DIV/0!", "#hashtag", "bell\x07here", "tab\tnew\nline", "cr\r\nlf",
              "<b>&amp;</b>", " padded ", 42]
    path = tmp_path / "out.xlsx"
    write(cls, path, [(v,) for v in values], headers=["=Header"], types=["text"])
    wb = load_workbook(path, read_only=True)
    cells = [row[0] for row in wb.worksheets[0].iter_rows()]
    assert [c.data_type for c in cells] == ["s"] * (1 + len(values))
    assert [c.value for c in cells] == [
        "=Header", "=SUM(A1:A9)", "=", "#N/A", "#DIV/0!", "#hashtag", "bellhere", "tab\tnew\nline", "cr\r\nlf",
        "<b>&amp;</b>", " padded ", "42",
    ]
    wb.close()


@BOTH_ENGINES
def test_xlsx_equal_values_of_other_types_keep_their_own_type(cls, tmp_path):
    """1 == True == 1.0 and 5 != "5": every chunk's cells follow each value's own type, however the
    engine reuses the cells of values it has seen."""
    chunks = [[(1, "5", True, dt.date(2024, 1, 2))] * 3,
              [(True, 5, 1, dt.datetime(2024, 1, 2, 0, 0))],
              [(1.0, 5.0, 0, dt.date(2024, 1, 2)), (1, "5", False, dt.date(2024, 1, 2)),
               (2, 5, True, dt.date(2024, 1, 2))]]
    path = tmp_path / "out.xlsx"
    with cls(path, ["N", "T", "B", "D"], ["integer", "text", "boolean", "date"]) as writer:
        for chunk in chunks:
            writer.write_rows(chunk)
    wb = load_workbook(path, read_only=True)
    number = (int, float)  # 1.0 is a number; an engine may read it back as 1
    got = [tuple((c.value, number if type(c.value) in number else type(c.value)) for c in row)
           for row in wb.worksheets[0].iter_rows(min_row=2)]
    wb.close()
    midnight = dt.datetime(2024, 1, 2)
    assert got[2:] == [
        ((1, number), ("5", str), (True, bool), (midnight, dt.datetime)),
        ((True, bool), ("5", str), (1, number), (midnight, dt.datetime)),
        ((1, number), ("5.0", str), (0, number), (midnight, dt.datetime)),
        ((1, number), ("5", str), (False, bool), (midnight, dt.datetime)),
        ((2, number), ("5", str), (True, bool), (midnight, dt.datetime)),
    ]


def test_xlsx_streaming_columns_of_many_distinct_values(tmp_path):
    """Columns of few, many and all-different values, in chunks, read back value for value."""
    rows = [(i % 7, i % 5000, f"key {i}", f"label {i % 3}", Decimal(i % 6000) / 100, i % 2 == 0, None)
            for i in range(12_000)]
    headers, types = list("ABCDEFG"), ["integer", "integer", "text", "text", "decimal", "boolean", "text"]
    path = tmp_path / "out.xlsx"
    write(StreamingXlsxWriter, path, rows, headers=headers, types=types, chunk=2000)
    got = xlsx_sheets(path)["Export"][1:]
    assert got == [(a, b, c, d, float(e) if e % 1 else int(e), f, g) for a, b, c, d, e, f, g in rows]


@BOTH_ENGINES
def test_xlsx_header_is_bold_frozen_filtered_and_sized_by_type(cls, tmp_path):
    path = tmp_path / "styled.xlsx"
    headers = ["Name", "N", "Amount", "Yes", "Day", "At", "A much longer header than its type needs"]
    types = ["text", "integer", "decimal", "boolean", "date", "datetime", "integer"]
    write(cls, path, [("a", 1, Decimal(1), True, dt.date(2024, 1, 1), dt.datetime(2024, 1, 1), 2)] * 3,
          headers=headers, types=types, max_rows_per_sheet=3)
    wb = load_workbook(path)  # not read-only: sheet views, filters and columns are read too
    assert wb.sheetnames == ["Export", "Export 2"]
    for ws, last_row in zip(wb.worksheets, [3, 2]):
        assert [c.font.b for c in ws[1]] == [True] * len(headers)
        assert not ws["A2"].font.b
        assert ws.freeze_panes == "A2"
        assert ws.auto_filter.ref == f"A1:G{last_row}"
        widths = [ws.column_dimensions[letter].width for letter in "ABCDEFG"]
        assert widths == column_widths(headers, types)
    assert column_widths(headers, types) == [24, 11, 13, 9, 12, 20, len(headers[-1]) + 3]


@BOTH_ENGINES
def test_xlsx_splits_into_sheets_each_with_header(cls, tmp_path):
    path = tmp_path / "split.xlsx"
    rows = [(f"row {i}", i) for i in range(12)]
    writer = write(cls, path, rows, headers=["Label", "N"], types=["text", "integer"], chunk=5,
                   max_rows_per_sheet=5)
    assert writer.rows_written == 12
    assert writer.sheet_count == 3
    sheets = xlsx_sheets(path)
    assert list(sheets) == ["Export", "Export 2", "Export 3"]
    data = []
    for sheet_rows in sheets.values():
        assert sheet_rows[0] == ("Label", "N")
        assert len(sheet_rows) - 1 == 4  # 5 rows per sheet, header included
        data.extend(sheet_rows[1:])
    assert data == rows


@BOTH_ENGINES
def test_xlsx_split_at_exact_boundary_makes_no_empty_sheet(cls, tmp_path):
    path = tmp_path / "exact.xlsx"
    rows = [(i,) for i in range(8)]
    write(cls, path, rows, headers=["N"], types=["integer"], chunk=4, max_rows_per_sheet=5)
    sheets = xlsx_sheets(path)
    assert list(sheets) == ["Export", "Export 2"]
    assert [len(r) for r in sheets.values()] == [5, 5]


@BOTH_ENGINES
def test_xlsx_no_rows_still_has_header(cls, tmp_path):
    path = tmp_path / "empty.xlsx"
    with cls(path, ["A", "B"], ["text", "integer"]) as writer:
        writer.write_rows([])
    assert writer.rows_written == 0
    assert xlsx_sheets(path) == {"Export": [("A", "B")]}


@BOTH_ENGINES
def test_xlsx_sheet_limit_default_is_excel_limit(cls, tmp_path):
    with cls(tmp_path / "x.xlsx", ["A"], ["integer"]) as writer:
        assert writer.max_rows_per_sheet == XLSX_MAX_ROWS == 1_048_576
    for bad in (1, 1_048_577):
        with pytest.raises(ValueError, match="max_rows_per_sheet must be between 2 and 1048576"):
            cls(tmp_path / "y.xlsx", ["A"], ["integer"], max_rows_per_sheet=bad)


@BOTH_ENGINES
def test_xlsx_error_leaves_no_temporary_files(cls, tmp_path, monkeypatch):
    temp_dir = tmp_path / "tmp"
    temp_dir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_dir))  # where openpyxl keeps its sheet files
    path = tmp_path / "broken.xlsx"
    with pytest.raises(RuntimeError, match="boom"):
        with cls(path, ["N"], ["integer"], max_rows_per_sheet=3) as writer:
            writer.write_rows([(i,) for i in range(5)])  # two sheets
            raise RuntimeError("boom")
    assert writer.closed
    assert list(temp_dir.iterdir()) == []
    with pytest.raises(ValueError, match="closed writer"):
        writer.write_rows([(1,)])


def test_xlsx_streaming_sheets_state_their_size(tmp_path):
    """Each sheet's <dimension> gives its cells, so that readers know its size before reading it
    (openpyxl's read-only max_row), whatever the sheet limit and for a sheet of the header alone."""
    cases = [({"max_rows_per_sheet": 4}, [(4, 7), (3, 7)]),  # 5 rows: 3 + 2, each sheet with its header
             ({}, [(6, 7)])]
    for kwargs, sizes in cases:
        path = tmp_path / "sized.xlsx"
        write(StreamingXlsxWriter, path, ROWS, **kwargs)
        wb = load_workbook(path, read_only=True)
        assert [(ws.max_row, ws.max_column) for ws in wb.worksheets] == sizes
        assert wb.worksheets[0].calculate_dimension() == f"A1:G{sizes[0][0]}"
        wb.close()
    write(StreamingXlsxWriter, path, [])
    wb = load_workbook(path, read_only=True)
    assert (wb.worksheets[0].max_row, wb.worksheets[0].max_column) == (1, 7)
    wb.close()


@pytest.mark.parametrize("cls, kwargs", [(StreamingXlsxWriter, {"max_rows_per_sheet": 4}),
                                         (ZipCsvWriter, {"max_rows_per_file": 3})], ids=["xlsx", "zip"])
def test_zip_members_are_dated_with_the_build_time(cls, kwargs, tmp_path):
    """Every member of the zip (the xlsx's own parts, the csv files) is dated when the file was built,
    in the export's time zone, not 1980-01-01."""
    now = dt.datetime.now(KOLKATA).replace(tzinfo=None)
    path = tmp_path / f"dated{cls.file_extension}"
    write(cls, path, ROWS, tz=KOLKATA, **kwargs)
    with zipfile.ZipFile(path) as z:
        infos = z.infolist()
    assert len(infos) >= 2
    for info in infos:  # zip keeps times to 2 s
        assert now - dt.timedelta(seconds=4) <= dt.datetime(*info.date_time) <= now + dt.timedelta(seconds=60), info


@pytest.mark.parametrize("cls, kwargs", [(StreamingXlsxWriter, {"max_rows_per_sheet": 900}),
                                         (ZipCsvWriter, {"max_rows_per_file": 900})], ids=["xlsx", "zip"])
def test_zip_writers_same_content_whatever_the_deflate_and_threads(cls, kwargs, tmp_path):
    """Each deflate (the stdlib's zlib, zlib-ng when installed), on one thread or two, gives members
    whose CRCs check and whose content is the same, byte for byte."""
    contents = {}
    for deflater in DEFLATERS:
        for threaded in (False, True):
            path = tmp_path / f"{deflater}-{threaded}{cls.file_extension}"
            write(cls, path, ROWS * 400, tz=KOLKATA, chunk=300, deflater=deflater, threaded=threaded, **kwargs)
            with zipfile.ZipFile(path) as z:
                assert z.testzip() is None
                contents[deflater, threaded] = {name: z.read(name) for name in z.namelist()}
    first = next(iter(contents.values()))
    assert len(first) >= 3 and all(content == first for content in contents.values())


def test_xlsx_streaming_renders_rows_as_it_writes_them(tmp_path):
    """render_rows gives the very <row> XML the writer puts in its sheet (for sheets assembled from parts)."""
    path = tmp_path / "out.xlsx"
    with StreamingXlsxWriter(path, HEADERS, TYPES, tz=KOLKATA) as writer:
        rendered = writer.render_rows(ROWS)
        writer.write_rows(ROWS)
    with zipfile.ZipFile(path) as z:
        sheet = z.read("xl/worksheets/sheet1.xml")
    assert rendered.startswith(b"<row>") and rendered.endswith(b"</row>") and rendered.count(b"<row>") == len(ROWS)
    assert sheet.split(b"</row>", 1)[1].startswith(rendered)  # right after the header row


def test_crc32_combine_without_zlib_ng_matches_zlib():
    """The stdlib fallback of crc32_combine (a sheet's CRC after its head was rewritten) is zlib's."""
    head, body = b"<worksheet><dimension/>", bytes(range(256)) * 1000 + b"</worksheet>"
    for a, b in ((head, body), (head, b""), (b"", body), (b"x", b"y" * 65537)):
        assert zip_stream._crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


# -- csv -----------------------------------------------------------------------------------


def test_csv_round_trip(tmp_path):
    path = tmp_path / "out.csv"
    writer = write(CsvWriter, path, ROWS, tz=KOLKATA)
    assert writer.rows_written == len(ROWS)
    data = path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")  # BOM, so Excel reads UTF-8
    assert b"\r\n" in data and b"\r\r\n" not in data  # newline="" handled
    rows = read_csv_bytes(data)
    assert rows[0] == HEADERS
    assert rows[1:] == [
        ["Zoë", "1", "1.50", "0.25", "TRUE", "2024-01-02", "2024-01-02 05:00:00"],
        ["東京 🎉", "-7", "-3.25", "0.001", "FALSE", "1999-12-31", "2024-06-30 21:30:59"],
        ["'=1+2", "0", "", "", "", "", ""],
        ["", "", "0", "-2.5", "TRUE", "2000-02-29", "2024-03-04 05:06:07"],
        ['line\nbreak, comma "quote"', "1000000000000", "12345.678", "3.0", "FALSE", "2024-01-01",
         "2025-01-01 00:00:00"],
    ]


def parse_back(row):
    """How a consumer turns a csv row of TYPES back into values (the documented conventions)."""
    name, count, price, ratio, active, born, created = row
    return (
        (name[1:] if name.startswith("'") else name) or None,
        int(count) if count else None,
        Decimal(price) if price else None,
        float(ratio) if ratio else None,
        {"TRUE": True, "FALSE": False, "": None}[active],
        dt.date.fromisoformat(born) if born else None,
        dt.datetime.fromisoformat(created) if created else None,
    )


def test_csv_values_round_trip_to_python(tmp_path):
    path = tmp_path / "out.csv"
    write(CsvWriter, path, ROWS, tz=KOLKATA)
    parsed = [parse_back(r) for r in read_csv_bytes(path.read_bytes())[1:]]
    for got, row, local in zip(parsed, ROWS, EXPECTED_LOCAL):
        assert got[:6] == row[:6]
        # csv keeps whole seconds
        assert got[6] == (None if local is None else local.replace(microsecond=0))


def test_csv_formula_injection_guard(tmp_path):
    """Cells a spreadsheet could evaluate get a leading quote; the others stay as they are.

    Checked in LibreOffice 7.4 (soffice --headless --convert-to xlsx of a csv, then the cells' types
    read): with the default import options only a cell starting with "=" becomes a formula; with
    "Trim spaces" ticked, " =1+1" and "  =SUM(1;1)" do too. Never a formula there: full-width "＝1+1",
    "＋", "－", "＠", spaces before "+", "-" or "@", a leading tab or no-break, ideographic or
    zero-width space, a BOM or U+202E before "=". "+", "-", "@", TAB and CR are guarded for Excel
    (OWASP's list).
    """
    dangerous = ["=1+2", "+1", "-2", "@SUM(A1)", "\tx", "\rx", " =1+1", "   =SUM(1;1)"]
    harmless = ["plain", "a=b", "'quoted", "", "\uff1d1+1", " +1", " -1", " @SUM(A1)", "\u00a0=1+1",
                "\u3000=1+1", " x =1"]
    rows = [(v, -5) for v in dangerous + harmless]
    path = tmp_path / "guarded.csv"
    write(CsvWriter, path, rows, headers=["=Text", "Number"], types=["text", "integer"])
    got = read_csv_bytes(path.read_bytes())
    assert got[0] == ["'=Text", "Number"]
    assert [r[0] for r in got[1:]] == ["'" + v for v in dangerous] + harmless
    assert {r[1] for r in got[1:]} == {"-5"}  # numeric columns are never prefixed

    verbatim = tmp_path / "verbatim.csv"
    write(CsvWriter, verbatim, rows, headers=["=Text", "Number"], types=["text", "integer"],
          escape_formulas=False)
    got = read_csv_bytes(verbatim.read_bytes())
    assert got[0] == ["=Text", "Number"]
    assert [r[0] for r in got[1:]] == dangerous + harmless


def test_csv_text_column_accepts_non_str_values(tmp_path):
    path = tmp_path / "mixed.csv"
    write(CsvWriter, path, [(12,), (-3,), (Decimal("1.5"),)], headers=["T"], types=["text"])
    assert read_csv_bytes(path.read_bytes()) == [["T"], ["12"], ["-3"], ["1.5"]]


def test_csv_without_conversions_passes_rows_through(tmp_path):
    """Only integer/decimal/date columns: no converter at all (the fast path)."""
    path = tmp_path / "plain.csv"
    writer = CsvWriter(path, ["A", "B", "C"], ["integer", "decimal", "date"])
    rows = [(i, Decimal(i) / 4, dt.date(2024, 1, 1 + i)) for i in range(5)]
    with writer:
        assert writer.write_rows(row for row in rows) == 5
        assert writer.write_rows(rows) == 5
    assert writer.rows_written == 10
    got = read_csv_bytes(path.read_bytes())
    assert got[1:] == [[str(a), str(b), c.isoformat()] for a, b, c in rows * 2]


def test_csv_default_timezone_is_utc(tmp_path):
    path = tmp_path / "utc.csv"
    aware = dt.datetime(2024, 1, 1, 23, 30, tzinfo=KOLKATA)
    write(CsvWriter, path, [(aware,)], headers=["When"], types=["datetime"])
    assert read_csv_bytes(path.read_bytes())[1] == ["2024-01-01 18:00:00"]


# -- zip of csv ----------------------------------------------------------------------------


def test_zip_splits_into_parts_each_with_header(tmp_path):
    path = tmp_path / "out.zip"
    rows = [(f"row {i}", i, i % 2 == 0) for i in range(7)]
    writer = write(ZipCsvWriter, path, rows, headers=["Label", "N", "Even"],
                   types=["text", "integer", "boolean"], chunk=2, max_rows_per_file=3)
    assert writer.rows_written == 7
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert names == ["export.csv", "export 2.csv", "export 3.csv"]
        assert {info.compress_type for info in zf.infolist()} == {zipfile.ZIP_DEFLATED}
        parts = [read_csv_bytes(zf.read(name)) for name in names]
    data = []
    for part in parts:
        assert part[0] == ["Label", "N", "Even"]
        data.extend(part[1:])
    assert [len(p) - 1 for p in parts] == [3, 3, 1]
    assert data == [[f"row {i}", str(i), "TRUE" if i % 2 == 0 else "FALSE"] for i in range(7)]


def test_zip_exact_multiple_and_empty(tmp_path):
    path = tmp_path / "exact.zip"
    write(ZipCsvWriter, path, [(i,) for i in range(6)], headers=["N"], types=["integer"], chunk=6,
          max_rows_per_file=3)
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["export.csv", "export 2.csv"]

    empty = tmp_path / "empty.zip"
    write(ZipCsvWriter, empty, [], headers=["N"], types=["integer"])
    with zipfile.ZipFile(empty) as zf:
        assert zf.namelist() == ["export.csv"]
        assert read_csv_bytes(zf.read("export.csv")) == [["N"]]


def test_zip_same_values_as_csv(tmp_path):
    write(CsvWriter, tmp_path / "a.csv", ROWS, tz=KOLKATA)
    write(ZipCsvWriter, tmp_path / "a.zip", ROWS, tz=KOLKATA)
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        assert zf.read("export.csv") == (tmp_path / "a.csv").read_bytes()


def test_zip_members_are_named_after_the_export(tmp_path):
    path = tmp_path / "named.zip"
    write(ZipCsvWriter, path, [(i,) for i in range(3)], headers=["N"], types=["integer"], chunk=3,
          max_rows_per_file=2, name="Visits 2026-01-02 0930")
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist() == ["Visits 2026-01-02 0930.csv", "Visits 2026-01-02 0930 2.csv"]


def test_zip_default_part_size_fits_excel(tmp_path):
    with ZipCsvWriter(tmp_path / "z.zip", ["A"], ["integer"]) as writer:
        assert writer.max_rows_per_file == 1_048_575  # + header = Excel's 1,048,576 rows


# -- common interface ----------------------------------------------------------------------


def test_get_writer():
    assert get_writer("xlsx") is XlsxWriter is StreamingXlsxWriter  # outside Django: the default engine
    assert get_writer("csv") is CsvWriter
    assert get_writer("zip") is ZipCsvWriter
    assert WRITERS == {"xlsx": XlsxWriter, "csv": CsvWriter, "zip": ZipCsvWriter}
    for bad in ("pdf", "", None, "XLSX"):
        with pytest.raises(ValueError, match="Unknown export format.*csv, xlsx, zip"):
            get_writer(bad)


def test_xlsx_engine_by_name():
    assert XLSX_ENGINES == {"streaming": StreamingXlsxWriter, "openpyxl": OpenpyxlXlsxWriter}
    assert xlsx_engine("openpyxl") is OpenpyxlXlsxWriter
    with pytest.raises(ValueError, match="Unknown xlsx engine 'fast'.*openpyxl, streaming"):
        xlsx_engine("fast")


def test_writer_metadata():
    assert [(c.format_name, c.file_extension) for c in WRITERS.values()] == [
        ("xlsx", ".xlsx"), ("csv", ".csv"), ("zip", ".zip"),
    ]
    assert XlsxWriter.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert CsvWriter.mimetype == "text/csv"
    assert ZipCsvWriter.mimetype == "application/zip"


@pytest.mark.parametrize("cls", ALL_WRITERS, ids=WRITER_IDS)
def test_invalid_columns_rejected(cls, tmp_path):
    with pytest.raises(ValueError, match="2 headers but 1"):
        cls(tmp_path / "x", ["a", "b"], ["text"])
    with pytest.raises(ValueError, match="Unknown column type"):
        cls(tmp_path / "x", ["a"], ["money"])


def chunk_generator(n, chunk_size):
    """A generator of chunks, each a generator of rows, like a server-side cursor."""
    def rows(start, stop):
        for i in range(start, stop):
            yield (i, f"name {i}", dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(minutes=i))
    for start in range(0, n, chunk_size):
        yield rows(start, min(n, start + chunk_size))


@pytest.mark.parametrize("cls", ALL_WRITERS, ids=WRITER_IDS)
def test_generator_of_chunks_and_rows_written(cls, tmp_path):
    path = tmp_path / f"gen{cls.file_extension}"
    with cls(path, ["N", "Name", "At"], ["integer", "text", "datetime"]) as writer:
        assert writer.write_chunks(chunk_generator(1000, 7)) == 1000
        assert writer.write_rows(iter(())) == 0
        assert writer.write_rows([(1000, "last", None)]) == 1
    assert writer.rows_written == 1001
    if cls.format_name == "xlsx":
        rows = xlsx_sheets(path)["Export"][1:]
        numbers = [r[0] for r in rows]
        assert rows[999] == (999, "name 999", dt.datetime(2024, 1, 1, 16, 39))
    elif cls is CsvWriter:
        rows = read_csv_bytes(path.read_bytes())[1:]
        numbers = [int(r[0]) for r in rows]
        assert rows[999] == ["999", "name 999", "2024-01-01 16:39:00"]
    else:
        with zipfile.ZipFile(path) as zf:
            rows = read_csv_bytes(zf.read("export.csv"))[1:]
        numbers = [int(r[0]) for r in rows]
    assert numbers == list(range(1001))


@pytest.mark.parametrize("cls", ALL_WRITERS, ids=WRITER_IDS)
def test_error_inside_context_closes_quietly_and_propagates(cls, tmp_path):
    path = tmp_path / f"err{cls.file_extension}"

    def bad_rows():
        yield (1, "ok", None)
        raise KeyError("cursor died")

    with pytest.raises(KeyError, match="cursor died"):
        with cls(path, ["N", "Name", "At"], ["integer", "text", "datetime"]) as writer:
            writer.write_rows(bad_rows())
    assert writer.closed
    writer.close()  # idempotent, no error
    if path.exists():  # left for the caller to delete; the writer released it
        os.remove(path)


@pytest.mark.parametrize("cls", ALL_WRITERS, ids=WRITER_IDS)
def test_rows_of_the_wrong_length_are_refused(cls, tmp_path):
    """Every row has exactly one value per column: a short or long row is an error, not a shifted file."""
    for bad in ([(1, "a")], [(1, "a", None, 4)], [(1, "a", None), (2, "b")]):
        path = tmp_path / f"bad{cls.file_extension}"
        with pytest.raises(ValueError, match="values"):
            with cls(path, ["N", "Name", "At"], ["integer", "text", "datetime"]) as writer:
                writer.write_rows(bad)
        if path.exists():
            os.remove(path)


# -- memory --------------------------------------------------------------------------------


def lazy_chunks(n, chunk_size=1000):
    """n rows of mixed types, produced lazily so the test data itself takes no memory."""
    base = dt.datetime(2024, 1, 1, tzinfo=UTC)
    for start in range(0, n, chunk_size):
        yield [(i, f"name {i}", Decimal(i) / 100, i % 2 == 0, base + dt.timedelta(seconds=i))
               for i in range(start, min(n, start + chunk_size))]


MEMORY_HEADERS = ["N", "Name", "Amount", "Even", "At"]
MEMORY_TYPES = ["integer", "text", "decimal", "boolean", "datetime"]


def peak_memory(cls, path, n, columns, **kwargs):
    """Peak traced memory (bytes above the starting point) while writing n rows."""
    tracemalloc.reset_peak()
    start, _ = tracemalloc.get_traced_memory()
    with cls(path, MEMORY_HEADERS[:columns], MEMORY_TYPES[:columns], **kwargs) as writer:
        writer.write_chunks([row[:columns] for row in chunk] for chunk in lazy_chunks(n))
    _, peak = tracemalloc.get_traced_memory()
    assert writer.rows_written == n
    return peak - start


# openpyxl under tracemalloc costs ~30 us a cell, so xlsx gets 2 columns and 10x fewer rows
# (the same 10x growth) to keep the test quick; it still crosses a sheet boundary.
@pytest.mark.slow
@pytest.mark.parametrize("cls, rows, columns, kwargs", [
    (CsvWriter, 200_000, 5, {}),
    (ZipCsvWriter, 200_000, 5, {"max_rows_per_file": 150_000}),
    (OpenpyxlXlsxWriter, 100_000, 2, {"max_rows_per_sheet": 60_001}),
    (StreamingXlsxWriter, 200_000, 5, {"max_rows_per_sheet": 150_001}),
])
def test_memory_stays_flat(cls, rows, columns, kwargs, tmp_path):
    """Peak traced memory for N rows is about that for N/10: the writers stream."""
    tracemalloc.start()
    try:
        small = peak_memory(cls, tmp_path / f"small{cls.file_extension}", rows // 10, columns, **kwargs)
        large = peak_memory(cls, tmp_path / f"large{cls.file_extension}", rows, columns, **kwargs)
    finally:
        tracemalloc.stop()
    print(f"{cls.__name__}: peak {small / 2**20:.2f} MiB for {rows // 10} rows, "
          f"{large / 2**20:.2f} MiB for {rows}")
    assert large - small < 5 * 2**20, (small, large)
