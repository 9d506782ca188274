"""The export benchmark's pieces: its baselines write the rows, and one paired run measures what it says."""
import csv
import datetime as dt

import pytest
from django.db import connection
from openpyxl import load_workbook

from exports.management.commands import benchmark_exports as bench
from exports.models import FormSubmission


def test_bare_baselines_write_the_rows(tmp_path):
    rows = [(i, f"n{i}", dt.datetime(2024, 1, 1, 5, 0)) for i in range(3)]
    bench.bare_xlsx(tmp_path / "b.xlsx", ["N", "Name", "At"], rows)
    wb = load_workbook(tmp_path / "b.xlsx", read_only=True)
    assert [tuple(r) for r in wb["Export"].iter_rows(values_only=True)] == [("N", "Name", "At"), *rows]
    wb.close()
    bench.bare_csv(tmp_path / "b.csv", ["N", "Name", "At"], rows)
    with open(tmp_path / "b.csv", newline="", encoding="utf-8") as f:
        assert list(csv.reader(f)) == [["N", "Name", "At"]] + [[str(v) for v in r] for r in rows]


@pytest.mark.django_db(transaction=True)  # committed rows: on PostgreSQL the csv goes through COPY
@pytest.mark.parametrize("fmt, extra", [("xlsx", {"header_cost": True, "writer": True}),
                                        ("csv", {"plain_reader": True})])
def test_one_paired_run_exports_every_row_and_times_its_baseline(fmt, extra):
    bench.bench_definition(40)
    result = bench.run_one(fmt, 40, "streaming", **extra)
    assert result["rows"] == 40 and result["file_bytes"] > 0
    for key in ("export_wall", "export_cpu", "bare_wall", "bare_cpu", "read_cpu"):
        assert result[key] > 0, key
    assert result["rss_before"] > 0 and result["export_peak_rss"] > 0
    if fmt == "xlsx":
        assert result["styled_cpu"] > 0 and result["plain_cpu"] > 0
        # The writer alone: as configured and with each deflate on one and two threads, each against
        # zlib level 6 of its own XML.
        assert set(result["writer"]) == set(bench.writer_variants()) and len(result["writer"]) >= 3
        for figures in result["writer"].values():
            assert figures["cpu"] > 0 and figures["floor_cpu"] > 0 and figures["file_bytes"] > 0
    else:
        assert result["reader"] == "reference"
        assert result["copy"] is (connection.vendor == "postgresql")  # PostgreSQL renders the csv
    lines, _ = bench.verdicts({(fmt, 40): [result]})
    assert lines[0].startswith(("PASS", "FAIL")) and "database read alone" in lines[0]
    if fmt == "xlsx":
        assert "in CPU time" in lines[0] and "target ≥ 8×" in lines[0]
        assert lines[1].startswith(("PASS", "FAIL")) and "writer alone" in lines[1] and "target ≤ 1.3×" in lines[1]


@pytest.mark.django_db(transaction=True)
def test_a_run_for_the_chunk_sizes_times_the_export_alone():
    bench.bench_definition(40)
    result = bench.run_one("csv", 40, "streaming", export_only=True)
    assert result["rows"] == 40 and result["export_cpu"] > 0 and result["file_bytes"] > 0
    assert "bare_cpu" not in result and "read_cpu" not in result  # no baseline, no separate read


@pytest.mark.postgresql  # VACUUM is PostgreSQL's: left out of the SQLite passes (tests/suite.py)
@pytest.mark.django_db(transaction=True)
def test_the_rows_a_benchmark_seeds_are_vacuumed_on_postgresql():
    """A freshly seeded table reads slower at first (hint bits written back): the benchmark settles it."""
    assert connection.vendor == "postgresql"
    bench.bench_definition(40)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = %s",
                       [FormSubmission._meta.db_table])
        assert all(cursor.fetchone())
