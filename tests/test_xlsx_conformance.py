"""Every xlsx engine's file, read back by openpyxl and by python-calamine, value by value and type by type.

One file per engine holds every column type and the edge cases a spreadsheet gets wrong (formula-like
and error-like text, control characters, empty strings, big integers, leap days, aware datetimes) and
spans two sheets (a small sheet limit). A slow test also opens one in LibreOffice, headless.

Pure Python but for LibreOffice: no Django, no database, no Redis.
"""
import datetime as dt
import math
import shutil
import subprocess
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from python_calamine import CalamineWorkbook

from exports.writers import XLSX_ENGINES


@pytest.fixture(scope="session", autouse=True)
def fresh_test_redis():
    """Overrides conftest's autouse Redis flush: these tests need no services."""


KOLKATA = ZoneInfo("Asia/Kolkata")
UTC = dt.timezone.utc
HEADERS = ["Text", "Integer", "Decimal", "Boolean", "Date", "Datetime"]
TYPES = ["text", "integer", "decimal", "boolean", "date", "datetime"]

TEXTS = [
    "plain", "Zoë 東京 🎉", "=1+2", "=SUM(A1:A9)", "=", "#N/A", "#DIV/0!", "#REF!", "+1", "-1", "@cmd",
    "'quoted", "TRUE", "1e5", "0012", " padded ", "line\nbreak", "cr\r\nlf", "tab\there", "bell\x07here",
    "nul\x00here", "<b>&amp;</b> \"q\" 'a'", "_x0041_ literal", "x" * 5000, "", None,
]
INTEGERS = [0, 1, -1, 42, 2**31, -(2**31), 10**15, 2**53 - 1, None]
DECIMALS = [Decimal("1.50"), Decimal("-0.001"), Decimal("12345.678"), Decimal("0"), Decimal("1E+2"),
            Decimal("-3.25"), None]
BOOLEANS = [True, False, None]
DATES = [dt.date(2024, 2, 29), dt.date(1900, 3, 1), dt.date(1999, 12, 31), dt.date(2000, 1, 1),
         dt.date(9999, 12, 31), None]
DATETIMES = [
    dt.datetime(2024, 1, 1, 23, 30, tzinfo=UTC),                                  # Kolkata: 2024-01-02 05:00
    dt.datetime(2024, 6, 30, 12, 0, 59, 250_000, tzinfo=ZoneInfo("America/New_York")),
    dt.datetime(2024, 3, 4, 5, 6, 7),                                             # naive: local already
    dt.datetime(2024, 3, 4, 5, 6, 7, 500_000),
    dt.datetime(1999, 12, 31, 23, 59, 59),
    dt.date(2020, 5, 17),                                                         # a date in a datetime column
    None,
]
COLUMNS = [TEXTS, INTEGERS, DECIMALS, BOOLEANS, DATES, DATETIMES]
N_ROWS = max(len(c) for c in COLUMNS)
ROWS = [tuple(column[i % len(column)] for column in COLUMNS) for i in range(N_ROWS)]
SHEET_ROWS = 11  # header included: the rows span three sheets


def expected_text(v, reader):
    if v is None:
        return None
    v = "".join(ch for ch in v if ch in "\t\n\r" or ord(ch) >= 32)  # control characters removed
    if reader == "openpyxl":
        # A literal "_x0041_" is written escaped, as Excel needs; openpyxl does not undo the escape
        # (calamine and LibreOffice do).
        v = v.replace("_x0041_", "_x005F_x0041_")
    if reader == "libreoffice":
        v = v.replace("\r\n", "\n")  # LibreOffice's cells end lines with LF alone
    return v or None  # an empty string is an empty cell


def expected_datetime(v):
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(KOLKATA).replace(tzinfo=None)
    return v


def check(got, want, column_type, reader):
    """Assert that the cell value ``got`` read by ``reader`` is ``want`` with the right type.

    ``reader``: "openpyxl", "calamine", or "libreoffice" (its copy of the file, read by openpyxl).
    """
    empty = "" if reader == "calamine" else None  # calamine reads an empty cell as ""
    if column_type == "text":
        want = expected_text(want, reader)
    elif column_type == "datetime":
        want = expected_datetime(want)
    if want is None:
        assert got == empty, (column_type, got)
        return
    if column_type == "text":
        assert type(got) is str and got == want
    elif column_type == "integer":
        # openpyxl keeps integers; calamine reads every xlsx number as a float; LibreOffice, like
        # Excel, keeps 15 significant digits (2**53 - 1 comes back as 9007199254740990).
        assert type(got) is (float if reader == "calamine" else int)
        assert got == (int(float(f"{want:.15g}")) if reader == "libreoffice" else want)
    elif column_type == "decimal":
        assert type(got) in (int, float) and not isinstance(got, bool)
        assert math.isclose(got, float(want), rel_tol=1e-15)
    elif column_type == "boolean":
        assert got is want
    elif column_type in ("date", "datetime") and type(want) is dt.date:
        # openpyxl reads date cells as midnight datetimes, calamine as dates.
        assert got == (want if reader == "calamine" else dt.datetime.combine(want, dt.time()))
        assert type(got) is (dt.date if reader == "calamine" else dt.datetime)
    else:
        assert type(got) is dt.datetime
        assert abs(got - want) <= dt.timedelta(milliseconds=1), (got, want)  # serial numbers keep ms


def read_openpyxl(path):
    # data_only: LibreOffice saves booleans as the formulas TRUE() / FALSE() with their values.
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        return {ws.title: [tuple(row) for row in ws.iter_rows(values_only=True)] for ws in wb.worksheets}
    finally:
        wb.close()


def read_calamine(path):
    wb = CalamineWorkbook.from_path(str(path))
    return {name: [tuple(row) for row in wb.get_sheet_by_name(name).to_python(skip_empty_area=False)]
            for name in wb.sheet_names}


def write_file(cls, path):
    with cls(path, HEADERS, TYPES, tz=KOLKATA, max_rows_per_sheet=SHEET_ROWS) as writer:
        writer.write_rows(ROWS[:7])
        writer.write_rows(iter(ROWS[7:]))
    return path


def data_rows(sheets):
    """The rows of every sheet after its header, in order; the sheets split as the writers split them."""
    assert list(sheets) == ["Export", "Export 2", "Export 3"]
    data = []
    for rows in sheets.values():
        assert rows[0] == tuple(HEADERS)
        data.extend(rows[1:])
    assert len(data) == len(ROWS)
    return data


@pytest.mark.parametrize("engine", sorted(XLSX_ENGINES))
@pytest.mark.parametrize("reader", ["openpyxl", "calamine"])
def test_every_value_reads_back_with_its_type(engine, reader, tmp_path):
    path = write_file(XLSX_ENGINES[engine], tmp_path / f"{engine}.xlsx")
    sheets = (read_openpyxl if reader == "openpyxl" else read_calamine)(path)
    data = data_rows(sheets)
    for got_row, want_row in zip(data, ROWS):
        got_row = got_row + (None if reader == "openpyxl" else "",) * (len(HEADERS) - len(got_row))
        for got, want, column_type in zip(got_row, want_row, TYPES):
            check(got, want, column_type, reader)


def test_engines_agree_cell_by_cell(tmp_path):
    """The same values and cell types from both engines (openpyxl's reading of each)."""
    files = {name: write_file(cls, tmp_path / f"{name}.xlsx") for name, cls in XLSX_ENGINES.items()}
    cells = {}
    for name, path in files.items():
        wb = load_workbook(path, read_only=True)
        cells[name] = [without_trailing_empty([(c.value, c.data_type, c.is_date) for c in row])
                       for ws in wb.worksheets for row in ws.iter_rows()]
        wb.close()
    assert cells["streaming"] == cells["openpyxl"]


def test_streaming_sheets_state_their_size_to_readers(tmp_path):
    """The streaming engine's sheets say their size (<dimension>, written after the rows were): openpyxl's
    read-only mode knows it before reading a row, and calamine agrees with it."""
    path = write_file(XLSX_ENGINES["streaming"], tmp_path / "sized.xlsx")
    heights = [SHEET_ROWS, SHEET_ROWS, len(ROWS) + 3 - 2 * SHEET_ROWS]  # each sheet has its header
    wb = load_workbook(path, read_only=True)
    assert [(ws.max_row, ws.max_column) for ws in wb.worksheets] == [(h, len(HEADERS)) for h in heights]
    wb.close()
    calamine = CalamineWorkbook.from_path(str(path))
    assert [(calamine.get_sheet_by_name(name).height, calamine.get_sheet_by_name(name).width)
            for name in calamine.sheet_names] == [(h, len(HEADERS)) for h in heights]


def without_trailing_empty(cells):
    """A row's cells, empty ones alike whatever their type, without the trailing empty ones."""
    cells = [(None, None, False) if value is None else (value, *rest) for value, *rest in cells]
    while cells and cells[-1][0] is None:
        cells.pop()
    return cells


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("soffice") is None,
                    reason="LibreOffice is not installed (./test.sh installs libreoffice-calc-nogui)")
@pytest.mark.parametrize("engine", sorted(XLSX_ENGINES))
def test_libreoffice_opens_the_file_with_its_types(engine, tmp_path):
    """LibreOffice, headless, reads the file and saves it again; its copy holds the same typed values."""
    (tmp_path / "in").mkdir()
    path = write_file(XLSX_ENGINES[engine], tmp_path / "in" / "export.xlsx")
    out = tmp_path / "out"
    profile = (tmp_path / "profile").as_uri()  # a private profile: runs in parallel do not share one
    subprocess.run(["soffice", f"-env:UserInstallation={profile}", "--headless", "--norestore",
                    "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(out), str(path)],
                   check=True, capture_output=True, timeout=180)
    sheets = read_openpyxl(out / "export.xlsx")
    data = data_rows(sheets)
    for got_row, want_row in zip(data, ROWS):
        got_row = got_row + (None,) * (len(HEADERS) - len(got_row))
        for got, want, column_type in zip(got_row, want_row, TYPES):
            check(got, want, column_type, "libreoffice")
