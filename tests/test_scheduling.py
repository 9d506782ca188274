"""Tests for exports.saved.scheduling: when each local day begins, and the dispatcher's rule.

Pure Python; no Django, no services. Expected values were checked against
zoneinfo, and a brute-force oracle below recomputes answers independently.
"""
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from exports.saved.scheduling import (
    NIGHT_WINDOW,
    build_offset,
    due_and_next,
    first_due,
    next_build_at,
    validate_time_zone,
)

UTC = timezone.utc
TICK = timedelta(minutes=15)
MICRO = timedelta(microseconds=1)
MINUTE = timedelta(minutes=1)
ALL_ZONES = sorted(available_timezones())

# Dates that never happen locally: clocks jumped over the whole day.
SKIPPED_DATES = {
    ("Pacific/Apia", date(2011, 12, 30)),
    ("Pacific/Fakaofo", date(2011, 12, 30)),
    ("Pacific/Kwajalein", date(1993, 8, 21)),
    ("Kwajalein", date(1993, 8, 21)),
    ("Pacific/Kiritimati", date(1994, 12, 31)),
    ("Pacific/Kanton", date(1994, 12, 31)),
    ("Pacific/Enderbury", date(1994, 12, 31)),
}


@pytest.fixture(autouse=True)
def fresh_test_redis():
    """These tests need no Redis: shadow the suite-wide autouse fixture that flushes it."""


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def local_date(tz, instant):
    return instant.astimezone(tz).date()


def oracle(tz_name, after):
    """Brute-force next_build_at: scan minute by minute, then bisect to the microsecond.

    Every date reached during the 48 hours up to `after` has already begun (no
    zone ever fell back that far); the answer is the first later instant whose
    local date is beyond all of them. No tzdata offset episode is shorter than a
    minute, so a one-minute grid sees them all.
    """
    tz = ZoneInfo(tz_name)
    now = after.astimezone(UTC)
    latest = max(local_date(tz, now - k * MINUTE) for k in range(48 * 60 + 1))
    probe = now
    while local_date(tz, probe) <= latest:
        probe += MINUTE
    low, high = probe - MINUTE, probe
    while high - low > MICRO:
        middle = low + (high - low) // 2
        if local_date(tz, middle) > latest:
            high = middle
        else:
            low = middle
    return high


# --- examples with exact values -------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "after", "expected"),
    [
        # Ordinary day in Paris (+02:00 in May).
        ("Europe/Paris", utc(2026, 5, 1, 12), utc(2026, 5, 1, 22)),
        ("Europe/Paris", utc(2026, 12, 1, 12), utc(2026, 12, 1, 23)),
        # Half- and quarter-hour offsets.
        ("Asia/Kolkata", utc(2026, 5, 1, 12), utc(2026, 5, 1, 18, 30)),
        ("Asia/Kathmandu", utc(2026, 5, 1, 12), utc(2026, 5, 1, 18, 15)),
        # Chatham: +12:45 in winter, +13:45 in summer; 12:00 UTC is already the next local day.
        ("Pacific/Chatham", utc(2026, 5, 1, 12), utc(2026, 5, 2, 11, 15)),
        ("Pacific/Chatham", utc(2026, 1, 1, 12), utc(2026, 1, 2, 10, 15)),
        # Lord Howe: +11 in summer, +10:30 in winter (a 30-minute DST).
        ("Australia/Lord_Howe", utc(2026, 1, 1, 12), utc(2026, 1, 1, 13)),
        ("Australia/Lord_Howe", utc(2026, 7, 1, 12), utc(2026, 7, 1, 13, 30)),
        # Around Lord Howe's own transitions (02:00 local, so days still begin at midnight).
        ("Australia/Lord_Howe", utc(2026, 4, 4, 10), utc(2026, 4, 4, 13)),
        ("Australia/Lord_Howe", utc(2026, 10, 3, 10), utc(2026, 10, 3, 13, 30)),
        # Extreme offsets.
        ("Pacific/Kiritimati", utc(2026, 4, 26, 12), utc(2026, 4, 27, 10)),
        ("Pacific/Pago_Pago", utc(2026, 4, 26, 12), utc(2026, 4, 27, 11)),
        # Sao Paulo fell back from 00:00 on 2019-02-17 to 23:00 on the 16th: Saturday lasted
        # 25 hours and Sunday began at 00:00 -03.
        ("America/Sao_Paulo", utc(2019, 2, 16, 12), utc(2019, 2, 17, 3)),
    ],
)
def test_examples(zone, after, expected):
    result = next_build_at(zone, after)
    assert result == expected
    assert result.tzinfo is UTC
    assert result.astimezone(ZoneInfo(zone)).time() == time(0)


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        # Clocks jumped from 00:00 to 01:00, so there was no midnight: the day begins at 01:00.
        ("America/Sao_Paulo", date(2018, 11, 4), utc(2018, 11, 4, 3)),
        ("America/Havana", date(2026, 3, 8), utc(2026, 3, 8, 5)),
        ("Asia/Beirut", date(2026, 3, 29), utc(2026, 3, 28, 22)),
        ("America/Santiago", date(2026, 9, 6), utc(2026, 9, 6, 4)),
        ("Atlantic/Azores", date(2026, 3, 29), utc(2026, 3, 29, 1)),
        ("Africa/Cairo", date(2026, 4, 24), utc(2026, 4, 23, 22)),
        ("America/Asuncion", date(2024, 10, 6), utc(2024, 10, 6, 4)),
        ("Asia/Tehran", date(2022, 3, 22), utc(2022, 3, 21, 20, 30)),
    ],
)
def test_day_begins_at_one_when_clocks_jump_at_midnight(zone, day, expected):
    tz = ZoneInfo(zone)
    noon_before = datetime.combine(day - timedelta(days=1), time(12), tzinfo=tz)
    result = next_build_at(zone, noon_before)
    assert result == expected
    assert result.astimezone(tz).replace(tzinfo=None) == datetime.combine(day, time(1))
    # Wall-clock 00:00 (fold=0) on that day does not exist: it is not the answer.
    wall_midnight = datetime.combine(day, time(0), tzinfo=tz)
    assert wall_midnight.astimezone(UTC).astimezone(tz).time() != time(0)


@pytest.mark.parametrize(
    ("zone", "after", "expected", "local_start"),
    [
        # Pitcairn moved from -08:30 to -08:00 at midnight: 1998-04-27 began at 00:30.
        ("Pacific/Pitcairn", utc(1998, 4, 26, 12), utc(1998, 4, 27, 8, 30), datetime(1998, 4, 27, 0, 30)),
        # Kiritimati left -10:40: 1979-10-01 began at 00:40.
        ("Pacific/Kiritimati", utc(1979, 9, 30, 12), utc(1979, 10, 1, 10, 40), datetime(1979, 10, 1, 0, 40)),
        # Monrovia left -00:44:30 for UTC: 1972-01-07 began at 00:44:30.
        ("Africa/Monrovia", utc(1972, 1, 6, 12), utc(1972, 1, 7, 0, 44, 30), datetime(1972, 1, 7, 0, 44, 30)),
    ],
)
def test_day_begins_at_odd_time(zone, after, expected, local_start):
    result = next_build_at(zone, after)
    assert result == expected
    assert result.astimezone(ZoneInfo(zone)).replace(tzinfo=None) == local_start


def test_skipped_date_never_begins():
    apia = ZoneInfo("Pacific/Apia")
    # Samoa jumped from the end of 2011-12-29 (-10:00) straight to 2011-12-31 (+14:00).
    for after in (datetime(2011, 12, 29, 0, 0, tzinfo=apia), datetime(2011, 12, 29, 12, tzinfo=apia)):
        result = next_build_at("Pacific/Apia", after)
        assert result == utc(2011, 12, 30, 10)
        assert result.astimezone(apia).replace(tzinfo=None) == datetime(2011, 12, 31)
    # Kwajalein skipped 1993-08-21 the same way.
    result = next_build_at("Pacific/Kwajalein", utc(1993, 8, 20, 12))
    assert result.astimezone(ZoneInfo("Pacific/Kwajalein")).date() == date(1993, 8, 22)


def test_date_that_already_began_does_not_begin_again():
    # St. John's fell back at 00:01 NDT (-02:30) to 23:01 NST (-03:30) until 2010: Sunday
    # 2010-11-07 began at 02:30 UTC, then Saturday came back for an hour.
    st_johns = ZoneInfo("America/St_Johns")
    assert next_build_at("America/St_Johns", utc(2010, 11, 6, 12)) == utc(2010, 11, 7, 2, 30)
    during_repeat = utc(2010, 11, 7, 2, 45)
    assert local_date(st_johns, during_repeat) == date(2010, 11, 6)
    # Sunday already began; the next day to begin is Monday.
    assert next_build_at("America/St_Johns", during_repeat) == utc(2010, 11, 8, 3, 30)
    assert next_build_at("America/St_Johns", utc(2010, 11, 7, 2, 30)) == utc(2010, 11, 8, 3, 30)
    # Casey went from +11 back to +08 at 02:00 on 2010-03-05.
    assert next_build_at("Antarctica/Casey", utc(2010, 3, 4, 12)) == utc(2010, 3, 4, 13)
    assert next_build_at("Antarctica/Casey", utc(2010, 3, 4, 17)) == utc(2010, 3, 5, 16)


def test_after_exactly_at_day_start_returns_next_day():
    start = utc(2026, 5, 1, 22)  # 2026-05-02 00:00 in Paris
    assert next_build_at("Europe/Paris", start) == utc(2026, 5, 2, 22)
    assert next_build_at("Europe/Paris", start - MICRO) == start
    havana_start = utc(2026, 3, 8, 5)  # 01:00, the first instant of 2026-03-08
    assert next_build_at("America/Havana", havana_start) == utc(2026, 3, 9, 4)


def test_after_in_any_time_zone_is_the_same_instant():
    instant = utc(2026, 5, 1, 12)
    for zone in ("America/New_York", "Asia/Tokyo", "Europe/Paris"):
        assert next_build_at("Asia/Kathmandu", instant.astimezone(ZoneInfo(zone))) == utc(2026, 5, 1, 18, 15)
    fixed = timezone(timedelta(hours=-7))
    assert next_build_at("Asia/Kathmandu", instant.astimezone(fixed)) == utc(2026, 5, 1, 18, 15)


def test_naive_after_is_rejected():
    with pytest.raises(ValueError, match="aware"):
        next_build_at("Europe/Paris", datetime(2026, 5, 1, 12))


def test_unknown_zone_is_rejected():
    with pytest.raises(ValueError, match="Mars/Olympus"):
        next_build_at("Mars/Olympus", utc(2026, 5, 1, 12))


@pytest.mark.parametrize(
    ("zone", "after"),
    [
        ("America/Havana", utc(2026, 3, 7, 12)),
        ("America/St_Johns", utc(2010, 11, 7, 2, 45)),
        ("Pacific/Apia", utc(2011, 12, 29, 12)),
        ("Africa/Monrovia", utc(1972, 1, 6, 12)),
        ("Pacific/Chatham", utc(2026, 4, 4, 12)),
    ],
)
def test_oracle_agrees_on_examples(zone, after):
    assert next_build_at(zone, after) == oracle(zone, after)


# --- validate_time_zone ---------------------------------------------------------------------


def test_validate_accepts_iana_names():
    assert validate_time_zone("Asia/Kathmandu") == "Asia/Kathmandu"
    assert validate_time_zone("UTC") == "UTC"
    assert validate_time_zone("asia/kathmandu") == "Asia/Kathmandu"


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "   ", None, "Europe/Paris/", "../etc/passwd", "localtime"])
def test_validate_rejects_unknown_names(name):
    with pytest.raises(ValueError, match="Europe/Paris"):
        validate_time_zone(name)


def test_validate_message_names_the_bad_value():
    with pytest.raises(ValueError, match=r"Unknown time zone 'Mars/Olympus'"):
        validate_time_zone("Mars/Olympus")


# --- properties -----------------------------------------------------------------------------

INSTANTS = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
PROPERTY_SETTINGS = settings(
    max_examples=300, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def check_properties(zone, after):
    tz = ZoneInfo(zone)
    result = next_build_at(zone, after)
    assert result.tzinfo is UTC
    assert result > after
    # The result is the first instant of its local date...
    assert local_date(tz, result - MICRO) != local_date(tz, result)
    # ...no day begins between `after` and the result, so asking again from any
    # instant in between (or just before the result) gives the same answer...
    for between in (after + MICRO, after + (result - after) / 3, result - MICRO):
        if between < result:
            assert next_build_at(zone, between) == result
    # ...and asking from the result moves on to a later day.
    following = next_build_at(zone, result)
    assert following > result
    assert local_date(tz, following) > local_date(tz, result)
    # An independent brute-force computation agrees exactly.
    assert result == oracle(zone, after)


@PROPERTY_SETTINGS
@given(zone=st.sampled_from(ALL_ZONES), after=INSTANTS)
# Inside the hours when a date that already began is left again and comes back.
@example(zone="America/St_Johns", after=utc(2010, 11, 7, 2, 45))
@example(zone="America/St_Johns", after=utc(2010, 11, 7, 2, 30, 30))
@example(zone="America/Goose_Bay", after=utc(1988, 10, 30, 3, 30))
@example(zone="Antarctica/Casey", after=utc(2010, 3, 4, 17))
def test_properties_random_zone_and_instant(zone, after):
    check_properties(zone, after)


# Dates on which something unusual happens at or near midnight.
TRICKY_DAYS = [
    ("America/Sao_Paulo", date(2018, 11, 4)),
    ("America/Sao_Paulo", date(2019, 2, 17)),
    ("America/Havana", date(2026, 3, 8)),
    ("America/Havana", date(2026, 11, 1)),
    ("Asia/Beirut", date(2026, 3, 29)),
    ("Asia/Beirut", date(2026, 10, 25)),
    ("America/Santiago", date(2026, 9, 6)),
    ("America/Santiago", date(2026, 4, 5)),
    ("America/Asuncion", date(2024, 10, 6)),
    ("Atlantic/Azores", date(2026, 3, 29)),
    ("Africa/Cairo", date(2026, 4, 24)),
    ("Asia/Tehran", date(2022, 3, 22)),
    ("Pacific/Apia", date(2011, 12, 30)),
    ("Pacific/Kwajalein", date(1993, 8, 21)),
    ("Pacific/Kiritimati", date(1994, 12, 31)),
    ("America/St_Johns", date(2010, 11, 7)),
    ("America/Goose_Bay", date(1988, 10, 30)),
    ("Antarctica/Casey", date(2010, 3, 5)),
    ("Africa/Monrovia", date(1972, 1, 7)),
    ("Pacific/Pitcairn", date(1998, 4, 27)),
    ("Australia/Lord_Howe", date(2026, 4, 5)),
    ("Australia/Lord_Howe", date(2026, 10, 4)),
    ("Pacific/Chatham", date(2026, 4, 5)),
    ("Europe/London", date(2026, 3, 29)),
    ("America/New_York", date(2026, 11, 1)),
]


@PROPERTY_SETTINGS
@given(
    case=st.sampled_from(TRICKY_DAYS),
    shift=st.integers(min_value=-48 * 3600 * 10**6, max_value=24 * 3600 * 10**6),
)
def test_properties_near_tricky_midnights(case, shift):
    zone, day = case
    after = datetime.combine(day, time(0), tzinfo=UTC) + timedelta(microseconds=shift)
    check_properties(zone, after)


# --- year simulations of the dispatcher -----------------------------------------------------


def year_dates(year):
    day, last = date(year, 1, 1), date(year, 12, 31)
    while day <= last:
        yield day
        day += timedelta(days=1)


def simulate_every_tick(zone, year):
    """Run the dispatcher at every 15-minute UTC tick of a year (plus margins).

    Returns {local date built: (next_due it was built for, tick it was built at)}
    and {local date: first tick whose local date it is}.
    """
    tz = ZoneInfo(zone)
    tick = utc(year, 1, 1) - timedelta(days=2)
    end = utc(year + 1, 1, 1) + timedelta(days=2)
    next_due = first_due(zone, tick)
    builds, first_seen, order = {}, {}, []
    while tick < end:
        first_seen.setdefault(local_date(tz, tick), tick)
        due, new_next_due = due_and_next(zone, next_due, tick)
        if due:
            built = local_date(tz, next_due)
            assert built not in builds, f"{zone}: {built} built twice"
            builds[built] = (next_due, tick)
            order.append(built)
            assert new_next_due > tick
        else:
            assert new_next_due == next_due
            # Recomputing from this tick agrees: no day began since the last build.
            assert next_build_at(zone, tick) == next_due
        next_due = new_next_due
        tick += TICK
    assert order == sorted(order)
    return builds, first_seen


FULL_TICK_CASES = [
    ("Europe/London", 2026),
    ("America/New_York", 2026),
    ("Australia/Sydney", 2026),
    ("America/Sao_Paulo", 2018),
    ("America/Havana", 2026),
    ("Asia/Beirut", 2026),
    ("America/Santiago", 2026),
    ("America/Asuncion", 2024),
    ("Atlantic/Azores", 2026),
    ("Africa/Cairo", 2026),
    ("Asia/Kolkata", 2026),
    ("Asia/Kathmandu", 2026),
    ("Australia/Lord_Howe", 2026),
    ("Pacific/Chatham", 2026),
    ("Pacific/Kiritimati", 2026),
    ("Pacific/Pago_Pago", 2026),
    ("Pacific/Apia", 2011),
    ("Pacific/Kwajalein", 1993),
    ("Pacific/Kiritimati", 1994),
    ("America/St_Johns", 2010),
    ("Antarctica/Casey", 2010),
    ("Africa/Monrovia", 1972),
    ("Pacific/Pitcairn", 1998),
]


@pytest.mark.slow
@pytest.mark.parametrize(("zone", "year"), FULL_TICK_CASES)
def test_year_of_ticks_builds_each_local_date_once(zone, year):
    tz = ZoneInfo(zone)
    builds, first_seen = simulate_every_tick(zone, year)
    skipped = {day for day in year_dates(year) if (zone, day) in SKIPPED_DATES}
    expected = set(year_dates(year)) - skipped
    assert {day for day in builds if day.year == year} == expected
    assert not any(day in first_seen for day in skipped)
    for day in expected:
        begins, built_at = builds[day]
        assert local_date(tz, begins) == day
        assert local_date(tz, begins - MICRO) < day
        # Built at the first tick at or after the day began...
        assert begins <= built_at < begins + TICK
        # ...and no tick saw the date before it was built.
        assert built_at <= first_seen[day]


def simulate_due_ticks_only(zone, year):
    """Like simulate_every_tick, but jumps straight to the first tick at or after next_due.

    The real rule is still applied at that tick and at the tick before it.
    Returns the list of (local date built, next_due it was built for, tick).
    """
    tz = ZoneInfo(zone)
    start = utc(year, 1, 1) - timedelta(days=2)
    end = utc(year + 1, 1, 1) + timedelta(days=2)
    next_due = first_due(zone, start)
    builds = []
    while True:
        ticks_to_wait = -((start - next_due) // TICK)  # ceiling division
        tick = start + max(ticks_to_wait, 0) * TICK
        if tick >= end:
            return builds
        if tick > start:
            due, unchanged = due_and_next(zone, next_due, tick - TICK)
            assert not due and unchanged == next_due
        due, new_next_due = due_and_next(zone, next_due, tick)
        assert due
        assert new_next_due > tick
        day = local_date(tz, next_due)
        assert local_date(tz, next_due - MICRO) < day, f"{zone}: {next_due} does not begin {day}"
        builds.append((day, next_due, tick))
        next_due = new_next_due


@pytest.mark.slow
@pytest.mark.parametrize("year", [1972, 1993, 2011, 2026])
def test_every_zone_builds_each_local_date_once(year):
    failures = []
    for zone in ALL_ZONES:
        builds = simulate_due_ticks_only(zone, year)
        days = [day for day, _, _ in builds]
        built = {day for day in days if day.year == year}
        expected = {day for day in year_dates(year) if (zone, day) not in SKIPPED_DATES}
        if days != sorted(set(days)) or built != expected:
            failures.append((zone, sorted(expected - built)[:3], sorted(built - expected)[:3]))
        for day, begins, tick in builds:
            if not begins <= tick < begins + TICK:
                failures.append((zone, day, begins, tick))
    assert failures == []


# --- catching up after downtime -------------------------------------------------------------


def test_dispatcher_down_for_30_hours_builds_once_then_waits_for_next_day():
    zone = "Europe/Paris"
    next_due = first_due(zone, utc(2026, 4, 30, 15))
    assert next_due == utc(2026, 4, 30, 22)  # 2026-05-01 00:00 in Paris
    # The dispatcher stops at 21:00 UTC and comes back 30 hours later: it missed
    # the start of 1 May, and 2 May has begun too (at 22:00 UTC on 1 May).
    back = utc(2026, 4, 30, 21) + timedelta(hours=30)
    builds = []
    tick = back
    while tick <= utc(2026, 5, 2, 22):
        due, new_next_due = due_and_next(zone, next_due, tick)
        if due:
            builds.append(tick)
            assert new_next_due > tick
        else:
            assert new_next_due == next_due
        next_due = new_next_due
        tick += TICK
    # One catch-up build on return, then nothing until 3 May begins in Paris.
    assert builds == [back, utc(2026, 5, 2, 22)]
    assert next_due == utc(2026, 5, 3, 22)


def test_due_exactly_at_next_due_and_not_before():
    zone = "Asia/Kathmandu"
    next_due = utc(2026, 5, 1, 18, 15)
    assert due_and_next(zone, next_due, next_due - MICRO) == (False, next_due)
    assert due_and_next(zone, next_due, next_due) == (True, utc(2026, 5, 2, 18, 15))


def test_first_due_is_the_next_day_start():
    assert first_due("Asia/Kolkata", utc(2026, 5, 1, 12)) == utc(2026, 5, 1, 18, 30)
    assert first_due("Asia/Kolkata", utc(2026, 5, 1, 18, 30)) == utc(2026, 5, 2, 18, 30)


def test_due_and_next_rejects_naive_datetimes():
    with pytest.raises(ValueError):
        due_and_next("Europe/Paris", utc(2026, 5, 1), datetime(2026, 5, 2))
    with pytest.raises(ValueError):
        due_and_next("Europe/Paris", datetime(2026, 5, 1), utc(2026, 5, 2))


# --- a stable offset into the night ---------------------------------------------------------

OFFSETS = st.integers(min_value=0, max_value=int(NIGHT_WINDOW.total_seconds()) - 1).map(
    lambda seconds: timedelta(seconds=seconds))


def offset_oracle(tz_name, after, offset):
    """Brute force: walk the day starts (from the oracle) from two days before `after`, and take the
    first begin(D) + offset later than `after`."""
    start = oracle(tz_name, after - timedelta(days=2))
    while start + offset <= after:
        start = oracle(tz_name, start)
    return start + offset


@PROPERTY_SETTINGS
@given(zone=st.sampled_from(ALL_ZONES), after=INSTANTS, offset=OFFSETS)
@example(zone="America/St_Johns", after=utc(2010, 11, 7, 5), offset=timedelta(hours=2, minutes=15))
@example(zone="Pacific/Apia", after=utc(2011, 12, 29, 12), offset=timedelta(hours=5, seconds=59))
@example(zone="America/Havana", after=utc(2026, 3, 8, 6), offset=timedelta(hours=3))
def test_offset_build_is_the_first_day_start_plus_offset_after_after(zone, after, offset):
    result = next_build_at(zone, after, offset)
    assert result > after
    assert result == offset_oracle(zone, after, offset)
    # The build of a date is that date's start plus the offset: the day it belongs to began `offset` earlier.
    begins = result - offset
    assert next_build_at(zone, begins - MICRO) == begins


def test_next_build_at_without_offset_is_unchanged():
    after = utc(2026, 5, 1, 12)
    assert next_build_at("Europe/Paris", after) == next_build_at("Europe/Paris", after, timedelta(0))
    assert next_build_at("Europe/Paris", after, timedelta(hours=3)) == utc(2026, 5, 2, 1)


@pytest.mark.parametrize(("offset", "error", "words"), [
    (timedelta(seconds=-1), ValueError, "at least 0 and less than a day"),
    (timedelta(days=1), ValueError, "at least 0 and less than a day"),
    (3600, TypeError, "must be a timedelta, not int"),
])
def test_offset_outside_a_day_is_refused(offset, error, words):
    with pytest.raises(error, match=words):
        next_build_at("Europe/Paris", utc(2026, 5, 1), offset)


def test_build_offset_is_stable_and_spread_over_the_night():
    offsets = [build_offset(key) for key in range(1, 10_001)]
    assert offsets[:3] == [build_offset(1), build_offset(2), build_offset(3)]
    assert all(timedelta(0) <= offset < NIGHT_WINDOW for offset in offsets)
    per_hour = [0] * int(NIGHT_WINDOW / timedelta(hours=1))
    for offset in offsets:
        per_hour[int(offset / timedelta(hours=1))] += 1
    assert max(per_hour) < 1.1 * len(offsets) / len(per_hour)  # near uniform
    assert build_offset(7, window=timedelta(0)) == timedelta(0)


@pytest.mark.parametrize(("zone", "year"), [("America/St_Johns", 2010), ("Pacific/Apia", 2011),
                                            ("Europe/Paris", 2026), ("America/Havana", 2026)])
def test_year_of_due_ticks_with_an_offset_builds_each_local_date_once(zone, year):
    tz = ZoneInfo(zone)
    offset = timedelta(hours=4, minutes=37, seconds=11)
    start, end = utc(year, 1, 1) - timedelta(days=2), utc(year + 1, 1, 1) + timedelta(days=2)
    next_due, tick, days = first_due(zone, start, offset), start, []
    while tick < end:
        due, new_next_due = due_and_next(zone, next_due, tick, offset)
        if due:
            begins = next_due - offset
            assert local_date(tz, begins - MICRO) < local_date(tz, begins)  # a day's start...
            assert next_due <= tick < next_due + TICK                       # ...built at the first tick after its offset
            days.append(local_date(tz, begins))
            assert new_next_due > tick
        next_due = new_next_due
        tick = max(tick + TICK, start + (next_due - start) // TICK * TICK)  # skip the ticks with nothing due
    expected = {day for day in year_dates(year) if (zone, day) not in SKIPPED_DATES}
    assert days == sorted(set(days))
    assert {day for day in days if day.year == year} == expected


def test_a_schedule_made_before_the_offsets_does_not_build_its_date_twice():
    zone, offset = "Europe/Paris", timedelta(hours=5)
    next_due = utc(2026, 4, 30, 22)  # 1 May 00:00 in Paris, as scheduled before the offsets
    due, following = due_and_next(zone, next_due, next_due, offset)
    assert due and following == utc(2026, 5, 1, 22) + offset  # 2 May, not 1 May again at 05:00
