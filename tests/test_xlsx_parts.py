"""An xlsx assembled from parts' deflated sheet rows is the whole build's file: byte for byte inside, and as
openpyxl, python-calamine and LibreOffice read it, value by value.

Pure Python but for LibreOffice: no Django, no database, no Redis.
"""
import random
import shutil
import subprocess
import zipfile
import zlib

import pytest

from exports.writers import StreamingXlsxWriter
from exports.writers.xlsx_parts import Segment, XlsxPartWriter, assemble_xlsx, crc32_combine, sheets_of
from tests.test_xlsx_conformance import (
    HEADERS,
    KOLKATA,
    ROWS,
    SHEET_ROWS,
    TYPES,
    check,
    data_rows,
    read_calamine,
    read_openpyxl,
)


@pytest.fixture(scope="session", autouse=True)
def fresh_test_redis():
    """Overrides conftest's autouse Redis flush: these tests need no services."""


def test_crc32_combine_is_zlibs():
    pieces = [b"", b"a", bytes(range(256)) * 5, random.Random(1).randbytes(100_003)]
    for first in pieces:
        for second in pieces:
            assert crc32_combine(zlib.crc32(first), zlib.crc32(second), len(second)) == zlib.crc32(first + second)
    # lengths far past any buffer: the combination works from the length alone
    zeros = bytes(1 << 20)
    assert crc32_combine(zlib.crc32(b"x"), zlib.crc32(zeros), len(zeros)) == zlib.crc32(b"x" + zeros)


def build_in_parts(tmp_path, rows, cuts, max_rows_per_sheet=SHEET_ROWS, headers=HEADERS, types=TYPES, **assembly):
    """The xlsx of `rows` built as parts starting at the row indexes `cuts` (the first is 0), then assembled."""
    bounds = [*cuts, len(rows)]
    parts = []
    for index, (start, end) in enumerate(zip(bounds[:-1], bounds[1:])):
        with XlsxPartWriter(tmp_path / f"part{index}", headers, types, tz=KOLKATA, first_row=start,
                            max_rows_per_sheet=max_rows_per_sheet) as writer:
            writer.write_rows(rows[start:end][:3])
            writer.write_rows(iter(rows[start:end][3:]))  # both ways write_rows takes rows
        parts.append([Segment.from_json(segment.as_json()) for segment in writer.segments])  # as a task sends them
    path = tmp_path / "assembled.xlsx"
    written = assemble_xlsx(path, headers, types, parts, lambda index: open(tmp_path / f"part{index}", "rb"),
                            tz=KOLKATA, max_rows_per_sheet=max_rows_per_sheet, **assembly)
    assert written == len(rows)
    return path


def whole_build(tmp_path, rows, max_rows_per_sheet=SHEET_ROWS, headers=HEADERS, types=TYPES):
    path = tmp_path / "whole.xlsx"
    with StreamingXlsxWriter(path, headers, types, tz=KOLKATA, max_rows_per_sheet=max_rows_per_sheet) as writer:
        writer.write_rows(rows)
    return path


def members(path):
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # every member's CRC-32 and size check
        return {name: archive.read(name) for name in archive.namelist()}


# The conformance rows (every type and edge value) over three sheets of 10 data rows: parts cut inside a
# sheet, on a sheet's edge, and one part spanning a whole sheet and more.
CUTS = [[0], [0, 5], [0, 10], [0, 3, 9, 10, 24], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]


@pytest.mark.parametrize("cuts", CUTS, ids=lambda cuts: "-".join(map(str, cuts)))
def test_the_assembled_file_holds_the_whole_builds_parts_byte_for_byte(tmp_path, cuts):
    assembled = members(build_in_parts(tmp_path, ROWS, cuts))
    whole = members(whole_build(tmp_path, ROWS))
    assert list(assembled) == list(whole)
    assert assembled == whole


@pytest.mark.parametrize("reader", ["openpyxl", "calamine"])
def test_every_value_of_an_assembled_file_reads_back_with_its_type(reader, tmp_path):
    path = build_in_parts(tmp_path, ROWS, [0, 3, 9, 10, 24])
    sheets = (read_openpyxl if reader == "openpyxl" else read_calamine)(path)
    for got_row, want_row in zip(data_rows(sheets), ROWS):
        got_row = got_row + (None if reader == "openpyxl" else "",) * (len(HEADERS) - len(got_row))
        for got, want, column_type in zip(got_row, want_row, TYPES):
            check(got, want, column_type, reader)


def test_zip64_headers_read_back(tmp_path):
    """Zip64 fields as a sheet over 4 GiB gets them (forced here from 0 bytes on): zip, openpyxl and calamine read it."""
    path = build_in_parts(tmp_path, ROWS, [0, 12], zip64_from=0)
    with open(path, "rb") as file:
        assert b"PK\x06\x06" in file.read()  # the zip64 end of central directory
    assert members(path) == members(whole_build(tmp_path, ROWS))
    assert read_openpyxl(path) == read_openpyxl(tmp_path / "whole.xlsx")
    assert read_calamine(path) == read_calamine(tmp_path / "whole.xlsx")


def test_sheets_never_overflow_when_a_part_counted_its_first_row_wrong():
    """Rows added between the split and a part's build: a sheet ends early rather than over the limit."""
    segments = [Segment(7, 1, 0, 1), Segment(3, 1, 0, 1), Segment(9, 1, 0, 1), Segment(4, 1, 0, 1)]
    assert [[s.rows for s in sheet] for sheet in sheets_of(segments, max_rows_per_sheet=11)] == [[7, 3], [9], [4]]
    assert sheets_of([], max_rows_per_sheet=11) == [[]]
    with pytest.raises(ValueError):
        sheets_of([Segment(11, 1, 0, 1)], max_rows_per_sheet=11)


def test_no_rows_is_one_sheet_with_the_header(tmp_path):
    assert members(build_in_parts(tmp_path, [], [0])) == members(whole_build(tmp_path, []))


@pytest.mark.slow
def test_parts_past_a_million_rows_start_the_second_sheet_where_a_whole_build_does(tmp_path):
    """1,100,000 rows in four parts, the sheet limit (1,048,576 rows with the header) inside the third."""
    rows = [(i, f"r{i}") for i in range(1_100_000)]
    kwargs = {"max_rows_per_sheet": 1_048_576, "headers": ["Number", "Text"], "types": ["integer", "text"]}
    assembled = members(build_in_parts(tmp_path, rows, [0, 300_000, 900_000, 1_050_000], **kwargs))
    whole = members(whole_build(tmp_path, rows, **kwargs))
    assert sorted(assembled) == sorted(whole) and "xl/worksheets/sheet2.xml" in whole
    assert assembled == whole


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("soffice") is None,
                    reason="LibreOffice is not installed (./test.sh installs libreoffice-calc-nogui)")
def test_libreoffice_reads_an_assembled_file_with_its_types(tmp_path):
    (tmp_path / "in").mkdir()
    path = build_in_parts(tmp_path, ROWS, [0, 3, 9, 10, 24])
    path = path.rename(tmp_path / "in" / "export.xlsx")
    out = tmp_path / "out"
    profile = (tmp_path / "profile").as_uri()
    subprocess.run(["soffice", f"-env:UserInstallation={profile}", "--headless", "--norestore",
                    "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(out), str(path)],
                   check=True, capture_output=True, timeout=180)
    for got_row, want_row in zip(data_rows(read_openpyxl(out / "export.xlsx")), ROWS):
        got_row = got_row + (None,) * (len(HEADERS) - len(got_row))
        for got, want, column_type in zip(got_row, want_row, TYPES):
            check(got, want, column_type, "libreoffice")
