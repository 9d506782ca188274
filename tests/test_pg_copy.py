"""csv rendered by PostgreSQL's COPY (exports.files.pg_copy) is byte for byte the Python writer's csv.

Runs in ./test.sh's PostgreSQL pass; on SQLite it only checks that COPY is not attempted.
"""
import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test import override_settings

from exports.demo import ensure_demo_domain
from exports.files import pg_copy
from exports.files.export_file import ExportCancelled, planned_rows, write_export
from exports.models import ExportDefinition, FormSubmission
from exports.writers import CsvWriter

UTC = dt.timezone.utc
on_postgresql = pytest.mark.postgresql  # COPY is PostgreSQL's: left out of the SQLite passes (tests/suite.py)

# Around New York's DST changes, with microseconds (written truncated to the second).
RECEIVED = [
    dt.datetime(2024, 3, 10, 6, 59, 59, 999_999, tzinfo=UTC),
    dt.datetime(2024, 3, 10, 7, 0, tzinfo=UTC),
    dt.datetime(2024, 11, 3, 5, 30, tzinfo=UTC),
    dt.datetime(2024, 11, 3, 6, 30, tzinfo=UTC),
    dt.datetime(1901, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    dt.datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC),
]
# What csv quoting and the formula guard care about: separators, quotes, line breaks, a lone CR, leading
# and trailing spaces, every formula character (and spaces before "="), empty text, 4-byte UTF-8.
TEXTS = ["Zoë 東京 🙂", "", "=1+2", "line\nbreak", 'say "hi", then go', "\rcarriage", " padded ", "+33 1 23",
         "-5", "@sum", "\ttab", "'quoted", "a;b", "\\.", None, "#N/A", " =1+1", "  =SUM(1;1)",
         "\uff1d1+1", " +1", " ", "x =1"]
WEIGHTS = [Decimal("61.25"), Decimal("0.00"), Decimal("-0.01"), Decimal("9999.99"), None, Decimal("0.10")]
AGES = [0, None, -1, 2**31 - 1, 42, 7]
DATES = [dt.date(2024, 2, 29), None, dt.date(1900, 3, 1), dt.date(9999, 12, 31), dt.date(2000, 1, 1), None]
FOLLOW_UPS = [True, False, None, True, False, None]


@pytest.fixture
def definition(transactional_db):  # committed rows: COPY reads them on a connection of its own
    domain = ensure_demo_domain(slug="copy", name="Copy", time_zone="America/New_York")
    for i in range(len(TEXTS)):
        FormSubmission.objects.create(
            domain=domain, form_id=f"copy-{i:02}", received_on=RECEIVED[i % len(RECEIVED)],
            submitted_by=TEXTS[i] or "", form_name=TEXTS[-1 - i] or "", patient_name=TEXTS[(i + 3) % len(TEXTS)] or "",
            village=TEXTS[(i + 5) % len(TEXTS)] or "", age=AGES[i % len(AGES)], weight_kg=WEIGHTS[i % len(WEIGHTS)],
            visit_date=DATES[i % len(DATES)], is_follow_up=FOLLOW_UPS[i % len(FOLLOW_UPS)], notes=TEXTS[i] or "")
    return ExportDefinition.objects.get(domain=domain, name="All form submissions")


def chunks_for(definition, tmp_path, **parameters):
    """pg_copy's chunks for this export, or None where it leaves the export to the Python writer."""
    queryset, columns = planned_rows(definition, parameters)
    with CsvWriter(tmp_path / "unused.csv", [c.label for c in columns], [c.type for c in columns]) as writer:
        return pg_copy.csv_chunks(queryset, columns, ZoneInfo(definition.domain.time_zone), writer, 4)


@on_postgresql
@pytest.mark.parametrize("columns", [[], ["notes", "received_on", "is_follow_up"]])
def test_copy_writes_the_same_bytes_as_the_python_writer(definition, tmp_path, columns):
    copied, written = tmp_path / "copy.csv", tmp_path / "python.csv"
    parameters = {"format": "csv", "columns": columns} if columns else {"format": "csv"}
    assert chunks_for(definition, tmp_path, **parameters) is not None, "COPY was not used"
    assert write_export(definition, parameters, copied, chunk_size=4) == len(TEXTS)
    with override_settings(EXPORT_POSTGRES_COPY=False):
        assert chunks_for(definition, tmp_path, **parameters) is None
        assert write_export(definition, parameters, written, chunk_size=4) == len(TEXTS)
    assert copied.read_bytes() == written.read_bytes()
    assert b"'=1+2" in copied.read_bytes() and b'"line\nbreak"' in copied.read_bytes()
    assert b"' =1+1" in copied.read_bytes() and b"'\xef\xbc\x9d" not in copied.read_bytes()


@on_postgresql
def test_a_cancelled_copy_stops_and_leaves_the_connection_usable(definition, tmp_path):
    calls = []

    def is_cancelled():
        calls.append(1)
        return len(calls) > 2

    with pytest.raises(ExportCancelled):
        write_export(definition, {"format": "csv"}, tmp_path / "cancelled.csv", chunk_size=4, is_cancelled=is_cancelled)
    assert len(calls) == 3
    assert FormSubmission.objects.filter(domain=definition.domain).count() == len(TEXTS)


@on_postgresql
def test_progress_counts_the_copied_rows_and_may_use_the_database_meanwhile(definition, tmp_path):
    seen = []

    def progress(current, total):  # a query between chunks, on the export's own connection
        seen.append((current, total, FormSubmission.objects.filter(domain=definition.domain).count()))

    write_export(definition, {"format": "csv"}, tmp_path / "progress.csv", chunk_size=4, progress=progress)
    total = len(TEXTS)
    assert seen == [(n, total, total) for n in (*range(0, total, 4), total)]


def test_copy_is_not_used_where_it_cannot_render_exactly(definition, tmp_path):
    if connection.vendor != "postgresql":
        assert chunks_for(definition, tmp_path) is None  # SQLite: the Python writer
        return
    assert chunks_for(definition, tmp_path, columns=["notes"]) is None  # one column: csv.writer quotes an empty row
    assert chunks_for(definition, tmp_path, columns=["notes", "age"]) is not None
    with transaction.atomic():  # rows this transaction wrote would be invisible to COPY's own connection
        assert chunks_for(definition, tmp_path) is None
