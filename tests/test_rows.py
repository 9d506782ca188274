"""exports.files.rows.row_chunks gives exactly what ``values_list`` gives, for every column type, on this database.

``row_chunks`` applies Django's converters through generated code (and inlines SQLite's), so it is
checked value by value and type by type against the ORM's own ``values_list()``; ./test.sh runs this
file on SQLite and on PostgreSQL.
"""
import datetime as dt
import zipfile
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from exports.demo import FORM_SUBMISSIONS, ensure_demo_domain
from exports.files.rows import row_chunks
from exports.files.writers import CsvWriter, StreamingXlsxWriter
from exports.models import FormSubmission

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.timezone.utc
KEYS = [c.key for c in FORM_SUBMISSIONS.columns]
TYPES = [c.type for c in FORM_SUBMISSIONS.columns]
DATETIME_KEYS = [c.key for c in FORM_SUBMISSIONS.columns if c.type == "datetime"]

# Every column type with its edge values; datetimes around New York's DST change (2024-03-10 07:00 UTC)
# and with microseconds; decimals repeated (row_chunks memoises SQLite's decimal converter), zero and signed.
RECEIVED = [
    dt.datetime(2024, 3, 10, 6, 59, 59, 999_999, tzinfo=UTC),
    dt.datetime(2024, 3, 10, 7, 0, tzinfo=UTC),
    dt.datetime(2024, 3, 10, 7, 30, tzinfo=UTC),
    dt.datetime(2024, 11, 3, 5, 30, tzinfo=UTC),   # 01:30 EDT
    dt.datetime(2024, 11, 3, 6, 30, tzinfo=UTC),   # 01:30 EST
    dt.datetime(2000, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
    dt.datetime(2024, 3, 10, 7, 0, tzinfo=UTC),
]
WEIGHTS = [Decimal("61.25"), Decimal("0.00"), Decimal("-0.01"), Decimal("9999.99"), None, Decimal("61.25"),
           Decimal("0.10")]
AGES = [0, None, -1, 2**31 - 1, 42, 7, 1]
DATES = [dt.date(2024, 2, 29), None, dt.date(1900, 3, 1), dt.date(9999, 12, 31), dt.date(2000, 1, 1),
         dt.date(2024, 3, 10), None]
FOLLOW_UPS = [True, False, None, True, False, None, True]
TEXTS = ["Zoë 東京", "", "=1+2", "line\nbreak", "#N/A", "'quoted", "plain"]


@pytest.fixture
def domain(db):
    domain = ensure_demo_domain(slug="rows", name="Rows", time_zone="America/New_York")
    for i, received in enumerate(RECEIVED):
        FormSubmission.objects.create(
            domain=domain, form_id=f"row-{i}", received_on=received, submitted_by=TEXTS[i],
            form_name=TEXTS[-1 - i], patient_name=TEXTS[i], village=TEXTS[(i + 2) % len(TEXTS)], age=AGES[i],
            weight_kg=WEIGHTS[i], visit_date=DATES[i], is_follow_up=FOLLOW_UPS[i], notes=TEXTS[(i + 3) % len(TEXTS)],
        )
    return domain


def queryset(domain):
    return FORM_SUBMISSIONS.rows_queryset(domain)


def typed(rows):
    """Rows as (type, value) pairs, so that 1 == 1.0 == True and Decimal("0.10") == Decimal("0.1") tell apart."""
    return [tuple((type(v), str(v)) for v in row) for row in rows]


def chunks_of(domain, **kwargs):
    chunks = [list(chunk) for chunk in row_chunks(queryset(domain), KEYS, 3, **kwargs)]
    assert [len(c) for c in chunks] == [3, 3, 1]
    return [row for chunk in chunks for row in chunk]


def test_rows_are_exactly_what_values_list_gives(domain):
    expected = list(queryset(domain).values_list(*KEYS))
    assert len(expected) == len(RECEIVED)
    got = chunks_of(domain)
    assert typed(got) == typed(expected)


def test_datetimes_may_come_as_local_wall_clock_time(domain):
    """Given a zone, datetime columns hold the same instants as naive local time (what writers take)."""
    expected = [tuple(v.astimezone(NEW_YORK).replace(tzinfo=None) if isinstance(v, dt.datetime) else v for v in row)
                for row in queryset(domain).values_list(*KEYS)]
    got = chunks_of(domain, tz=NEW_YORK, datetime_keys=DATETIME_KEYS)
    local = [tuple(v.astimezone(NEW_YORK).replace(tzinfo=None) if isinstance(v, dt.datetime) and v.tzinfo else v
                   for v in row) for row in got]
    assert typed(local) == typed(expected)


@pytest.mark.parametrize("writer_class", [CsvWriter, StreamingXlsxWriter])
def test_fused_conversion_writes_the_same_file_as_values_list_rows(domain, writer_class, tmp_path):
    """With ``fuse`` the writer applies row_chunks' conversion itself: the file is byte for byte the same."""
    headers = KEYS
    fused = tmp_path / f"fused{writer_class.file_extension}"
    with writer_class(fused, headers, TYPES, tz=NEW_YORK) as writer:
        for chunk in row_chunks(queryset(domain), KEYS, 3, tz=NEW_YORK, datetime_keys=DATETIME_KEYS,
                                fuse=writer.set_source_expressions):
            writer.write_rows(chunk)
    plain = tmp_path / f"plain{writer_class.file_extension}"
    with writer_class(plain, headers, TYPES, tz=NEW_YORK) as writer:
        writer.write_rows(list(queryset(domain).values_list(*KEYS)))
    if writer_class is CsvWriter:
        assert fused.read_bytes() == plain.read_bytes()
    else:
        with zipfile.ZipFile(fused) as a, zipfile.ZipFile(plain) as b:
            assert a.read("xl/worksheets/sheet1.xml") == b.read("xl/worksheets/sheet1.xml")


def test_no_rows_gives_no_chunk(domain):
    assert list(row_chunks(queryset(domain).none(), KEYS, 3)) == []
    assert list(row_chunks(queryset(domain).filter(form_id="none"), KEYS, 3)) == []
