"""The row reader's conformance: the fast reader gives exactly the reference reader's rows, on this database.

``exports.files.rows`` has one seam, ``row_chunks``, and two readers behind it: the reference
(``values_list().iterator()``, public API, plain code) and the fast one (the query's SQL on a cursor,
per-column functions). They are compared value by value and type by type, for every column type,
NULLs, edge values and time zones across DST changes, and through every writer byte for byte;
./test.sh runs this file on SQLite and on PostgreSQL.
"""
import datetime as dt
import zipfile
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models.functions import Lower

from exports.demo import FORM_SUBMISSIONS, ensure_demo_domain
from exports.files import rows as rows_module
from exports.files.rows import fast_chunks, reference_chunks, row_chunks
from exports.models import FormSubmission
from exports.writers import CsvWriter, OpenpyxlXlsxWriter, StreamingXlsxWriter, ZipCsvWriter

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.timezone.utc
KEYS = [c.key for c in FORM_SUBMISSIONS.columns]
TYPES = [c.type for c in FORM_SUBMISSIONS.columns]
DATETIME_KEYS = [c.key for c in FORM_SUBMISSIONS.columns if c.type == "datetime"]
# New York (DST), Lord Howe (a half-hour DST change), Kolkata (a half-hour offset), UTC, a fixed offset
# without a zone name (not given to PostgreSQL as a name), and no zone at all (aware datetimes).
ZONES = [NEW_YORK, ZoneInfo("Australia/Lord_Howe"), ZoneInfo("Asia/Kolkata"), ZoneInfo("UTC"),
         dt.timezone(dt.timedelta(hours=-3, minutes=-30)), None]
ZONE_IDS = ["new_york", "lord_howe", "kolkata", "utc", "fixed_offset", "no_zone"]

# Every column type with its edge values; datetimes around New York's and Lord Howe's DST changes
# (both ways), with microseconds, at the ends of the range; decimals repeated (the fast reader
# memoises SQLite's decimal conversion), zero, signed, at full precision; NULLs in every nullable column.
RECEIVED = [
    dt.datetime(2024, 3, 10, 6, 59, 59, 999_999, tzinfo=UTC),
    dt.datetime(2024, 3, 10, 7, 0, tzinfo=UTC),
    dt.datetime(2024, 3, 10, 7, 30, tzinfo=UTC),
    dt.datetime(2024, 11, 3, 5, 30, tzinfo=UTC),   # 01:30 EDT
    dt.datetime(2024, 11, 3, 6, 30, tzinfo=UTC),   # 01:30 EST
    dt.datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    dt.datetime(2024, 3, 10, 7, 0, tzinfo=UTC),
    dt.datetime(2024, 4, 6, 14, 45, tzinfo=UTC),   # Lord Howe: 02:00 +11 becomes 01:30 +10:30 at 15:00 UTC
    dt.datetime(2024, 4, 6, 15, 15, tzinfo=UTC),
    dt.datetime(2024, 10, 5, 15, 29, 59, tzinfo=UTC),  # and back at 15:30 UTC
    dt.datetime(1901, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    dt.datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
    dt.datetime(2024, 11, 3, 6, 45, tzinfo=UTC),   # 01:45 EST, the repeated hour again (read from the cache)
    dt.datetime(2024, 11, 3, 5, 45, tzinfo=UTC),   # 01:45 EDT
]
WEIGHTS = [Decimal("61.25"), Decimal("0.00"), Decimal("-0.01"), Decimal("9999.99"), None, Decimal("61.25"),
           Decimal("0.10"), Decimal("-9999.99"), Decimal("0.01"), Decimal("1234.50"), None, Decimal("61.25"),
           Decimal("0.10"), Decimal("-0.00")]
AGES = [0, None, -1, 2**31 - 1, 42, 7, 1, -2**31, None, 100, 5, 5, 0, None]
DATES = [dt.date(2024, 2, 29), None, dt.date(1900, 3, 1), dt.date(9999, 12, 31), dt.date(2000, 1, 1),
         dt.date(2024, 3, 10), None, dt.date(1, 1, 1), dt.date(1899, 12, 31), dt.date(2024, 1, 1), None,
         dt.date(2024, 1, 1), dt.date(2024, 11, 3), None]
FOLLOW_UPS = [True, False, None, True, False, None, True, True, False, None, None, False, True, None]
TEXTS = ["Zoë 東京 🙂", "", "=1+2", "line\nbreak", "#N/A", "'quoted", "plain", "\rcarriage", "a & <b>",
         "_x0041_", " padded ", "+33 1 23", "@sum", "-5"]


@pytest.fixture
def domain(db):
    domain = ensure_demo_domain(slug="rows", name="Rows", time_zone="America/New_York")
    n = len(RECEIVED)
    for i, received in enumerate(RECEIVED):
        FormSubmission.objects.create(
            domain=domain, form_id=f"row-{i:02}", received_on=received, submitted_by=TEXTS[i],
            form_name=TEXTS[-1 - i], patient_name=TEXTS[(i + 1) % n], village=TEXTS[(i + 2) % n], age=AGES[i],
            weight_kg=WEIGHTS[i], visit_date=DATES[i], is_follow_up=FOLLOW_UPS[i], notes=TEXTS[(i + 3) % n],
        )
    return domain


def queryset(domain):
    return FORM_SUBMISSIONS.rows_queryset(domain)


def typed(rows):
    """Rows as (type, repr) pairs: 1, 1.0 and True, Decimal("0.10") and Decimal("0.1"), datetimes with
    different tzinfo or fold, tell apart."""
    return [tuple((type(v), repr(v)) for v in row) for row in rows]


def read(reader, qs, keys=KEYS, chunk_size=5, **kwargs):
    chunks = list(reader(qs, keys, chunk_size, **kwargs))
    assert all(isinstance(chunk, list) for chunk in chunks)
    assert [len(c) for c in chunks][:-1] == [chunk_size] * (len(chunks) - 1)
    return [row for chunk in chunks for row in chunk]


@pytest.fixture
def no_fallback(monkeypatch):
    """The fast reader must not leave these reads to the reference reader (this module's own
    ``reference_chunks``, imported above, stays the real one)."""
    def fail(*args, **kwargs):
        raise AssertionError("the fast reader fell back to the reference reader")
    monkeypatch.setattr(rows_module, "reference_chunks", fail)


def test_the_reference_is_values_list(domain):
    assert typed(read(reference_chunks, queryset(domain))) == typed(queryset(domain).values_list(*KEYS))


@pytest.mark.parametrize("tz", ZONES, ids=ZONE_IDS)
def test_the_fast_reader_gives_the_reference_rows(domain, tz, no_fallback):
    kwargs = {"tz": tz, "datetime_keys": DATETIME_KEYS}
    expected = read(reference_chunks, queryset(domain), **kwargs)
    assert len(expected) == len(RECEIVED)
    if tz is not None:  # local wall-clock time, the same instants
        assert sorted(row[1] for row in expected) == sorted(r.astimezone(tz).replace(tzinfo=None) for r in RECEIVED)
    # Repeated hours and decimals in the rows: some values come from the fast reader's caches.
    assert typed(read(fast_chunks, queryset(domain), **kwargs)) == typed(expected)


@pytest.mark.parametrize("chunk_size", [1, 4, 12, 100])
def test_chunking_and_column_order(domain, chunk_size, no_fallback):
    """Any chunk size; a subset of the columns, in another order."""
    keys = ["weight_kg", "received_on", "age", "is_follow_up", "visit_date", "notes"][::-1]
    expected = read(reference_chunks, queryset(domain), keys=keys, chunk_size=chunk_size, tz=NEW_YORK, datetime_keys=DATETIME_KEYS)
    got = read(fast_chunks, queryset(domain), keys=keys, chunk_size=chunk_size, tz=NEW_YORK,
               datetime_keys=DATETIME_KEYS)
    assert typed(got) == typed(expected)


def test_what_the_fast_reader_does_not_know_goes_the_reference_way(domain):
    """An annotation, a lookup across a relation and a key given twice: the same rows either way."""
    qs = queryset(domain).annotate(lower=Lower("form_name"))
    for keys in (["form_id", "lower", "received_on"], ["form_id", "domain__slug", "weight_kg"],
                 ["age", "age"]):
        kwargs = {"keys": keys, "tz": NEW_YORK, "datetime_keys": DATETIME_KEYS}
        assert typed(read(fast_chunks, qs, **kwargs)) == typed(read(reference_chunks, qs, **kwargs))


@pytest.mark.parametrize("writer_class", [CsvWriter, ZipCsvWriter, StreamingXlsxWriter, OpenpyxlXlsxWriter])
@pytest.mark.parametrize("tz", [NEW_YORK, ZoneInfo("Australia/Lord_Howe")], ids=["new_york", "lord_howe"])
def test_both_readers_write_the_same_file(domain, writer_class, tz, tmp_path):
    """Through every writer, byte for byte (the xlsx sheets' XML; the zip's members)."""
    files = {}
    for reader in ("fast", "reference"):
        path = files[reader] = tmp_path / f"{reader}{writer_class.file_extension}"
        with writer_class(path, KEYS, TYPES, tz=tz, name="rows") as writer:
            writer.write_chunks(row_chunks(queryset(domain), KEYS, 5, tz=tz, datetime_keys=DATETIME_KEYS,
                                           reader=reader))
        assert writer.rows_written == len(RECEIVED)
    if writer_class is CsvWriter:
        assert files["fast"].read_bytes() == files["reference"].read_bytes()
    else:
        with zipfile.ZipFile(files["fast"]) as a, zipfile.ZipFile(files["reference"]) as b:
            members = [n for n in a.namelist() if n.startswith("xl/worksheets/") or n.endswith(".csv")]
            assert members
            assert all(a.read(name) == b.read(name) for name in members)


def test_no_rows_gives_no_chunk(domain):
    for reader in ("fast", "reference"):
        assert list(row_chunks(queryset(domain).none(), KEYS, 3, reader=reader)) == []
        assert list(row_chunks(queryset(domain).filter(form_id="none"), KEYS, 3, reader=reader)) == []


def test_an_unknown_reader_is_refused(domain):
    with pytest.raises(ValueError, match="reader"):
        row_chunks(queryset(domain), KEYS, 3, reader="quick")
