"""When daily exports are built, in the time zone of the user who saved them.

A saved export is rebuilt once per local calendar day, as soon as that day
begins. "Begins" is taken literally: the day D begins at the earliest instant
whose local date is D. That is usually local midnight, but not always:

* where clocks jump forward at midnight (Havana, Beirut, Santiago, the Azores,
  Cairo, Sao Paulo until 2018, ...) there is no 00:00 and the day begins at
  the transition, e.g. 01:00;
* where a whole date was skipped (Pacific/Apia on 2011-12-30) that date never
  begins at all;
* where clocks go back across midnight (America/St_Johns at 00:01 until 2010,
  Antarctica/Casey in 2010) the local date goes backwards for a while; a date
  that has already begun does not begin a second time.

A saved export is not built at the very start of its day but a stable `offset`
later (0 to 6 hours by default: see `build_offset`), so that the builds of one
zone spread over its night instead of all starting at once. The offset is
elapsed time since the day began, which keeps every rule above exact: the build
of date D happens at begin(D) + offset, once per date, and a date that never
begins is never built.

Only the standard library is used, so this module is safe to import anywhere
(Celery workers, forms, migrations) without configuring Django.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exports.validators import validate_time_zone  # noqa: F401  (also part of this module's API)

__all__ = ["build_offset", "due_and_next", "first_due", "next_build_at", "validate_time_zone"]

_UTC = timezone.utc
_MIDNIGHT = time()
_DAY = timedelta(days=1)
_NO_OFFSET = timedelta(0)
# The night over which each zone's builds are spread: 00:00 to 06:00 of elapsed time after the day
# began. Five hours leaves the busiest UTC hour of the dispatcher's benchmark at 1.57 times the mean,
# six at 1.46 (docs/performance.md).
NIGHT_WINDOW = timedelta(hours=6)
_TICK = timedelta(microseconds=1)

# Since 1970 every UTC offset lies within -12h..+14h, so the local clock can
# never fall back by 27 hours or more: instants more than _LOOKBACK before
# `after` cannot have reached a later local date than `after` itself.
_LOOKBACK = timedelta(hours=27)
# Spacing of the offset probes. tzdata never changes a zone's offset twice
# within a few hours (since 1970 the closest pair is a week apart), so equal
# offsets at neighbouring probes mean the offset was constant in between.
_PROBE = timedelta(hours=6)
# Some day always begins within about a day of any instant; scanning this far
# without finding one means the zone data is unusable.
_HORIZON = timedelta(days=8)


@lru_cache(maxsize=None)
def _zone(tz_name: str) -> ZoneInfo:
    """Load a zone once, reporting bad names as ValueError like validate_time_zone.

    A name in another letter case ('asia/kathmandu', as rows saved before names
    were canonicalised may hold) loads the zone it names, like validate_time_zone.
    """
    try:
        return ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        if not isinstance(tz_name, str):
            raise ValueError(f"Unknown time zone {tz_name!r}. Use an IANA name such as 'Europe/Paris'.") from exc
        return ZoneInfo(validate_time_zone(tz_name))


def _require_aware(value: datetime, what: str) -> None:
    """Reject naive datetimes: an instant without a zone is ambiguous."""
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")


def _offset(tz: ZoneInfo, instant: datetime) -> timedelta:
    """UTC offset in force in `tz` at the aware instant."""
    return instant.astimezone(tz).utcoffset()


def _midnight_utc(day: date, offset: timedelta) -> datetime:
    """The UTC instant at which wall time `day` 00:00 occurs under `offset`."""
    return datetime.combine(day, _MIDNIGHT, tzinfo=_UTC) - offset


def next_build_at(tz_name: str, after: datetime, offset: timedelta = _NO_OFFSET) -> datetime:
    """First instant, in UTC, of the first local day in `tz_name` that begins after `after`.

    `after` must be aware. The result is strictly later than `after`; an
    `after` that is exactly the start of a day yields the start of the next
    day. See the module docstring for what "begins" means around DST changes
    and skipped dates.

    With an `offset` (at least 0, under a day): the first begin(D) + offset
    strictly later than `after`. Since that holds exactly when D begins after
    `after - offset`, it is the offset-free answer for `after - offset`, shifted
    by the offset: still one build per date, in date order.
    """
    _require_aware(after, "after")
    _check_offset(offset)
    return _next_day_start(tz_name, after - offset) + offset


def _next_day_start(tz_name: str, after: datetime) -> datetime:
    tz = _zone(tz_name)
    now = after.astimezone(_UTC)
    local = now.astimezone(tz)
    offset = local.utcoffset()
    candidate = _midnight_utc(local.date() + _DAY, offset)
    # Common case: the offset is the same from _LOOKBACK before `after` up to
    # the next wall midnight, so local time runs straight through it and that
    # midnight is where the next day begins.
    floor = now - _LOOKBACK
    probe = candidate
    while True:
        if _offset(tz, probe) != offset:
            return _scan_for_next_day(tz, now)
        if probe <= floor:
            return candidate
        probe = max(probe - _PROBE, floor)


def _offset_pieces(tz: ZoneInfo, start: datetime):
    """Yield (begin, offset) for consecutive pieces of time with a constant offset.

    Pieces are at most _PROBE long; where the offset changes inside a step the
    exact instant of the change (to the microsecond) is found by bisection.
    """
    here = start
    offset = _offset(tz, here)
    while True:
        yield here, offset
        probe = here + _PROBE
        new_offset = _offset(tz, probe)
        if new_offset != offset:
            low, high = here, probe
            while high - low > _TICK:
                middle = low + (high - low) // 2
                if _offset(tz, middle) == offset:
                    low = middle
                else:
                    high = middle
            probe, new_offset = high, _offset(tz, high)
        here, offset = probe, new_offset


def _scan_for_next_day(tz: ZoneInfo, now: datetime) -> datetime:
    """Exact search used near offset changes.

    Walks constant-offset pieces from _LOOKBACK before `now`. `latest` is the
    latest local date reached up to `now`; every date up to it has already
    begun, so the answer is the first instant after `now` whose local date is
    later than `latest`.
    """
    pieces = _offset_pieces(tz, now - _LOOKBACK)
    begin, offset = next(pieces)
    latest = (begin + offset).date()
    limit = now + _HORIZON
    for end, next_offset in pieces:
        if begin <= now:
            last = min(end - _TICK, now)
            latest = max(latest, (last + offset).date())
        if end > now:
            start = max(begin, _midnight_utc(latest + _DAY, offset))
            if start < end:
                return start
        if end > limit:
            break
        begin, offset = end, next_offset
    raise RuntimeError(f"no local day begins in {tz.key} within {_HORIZON} of {now.isoformat()}")


def build_offset(key: object, window: timedelta = NIGHT_WINDOW) -> timedelta:
    """A stable offset in [0, window), whole seconds, for the saved export identified by `key`.

    The same key gives the same offset in every process and on every day (a hash, not Python's
    randomised hash()), so an export is built at the same time each night.
    """
    seconds = int(window.total_seconds())
    if seconds <= 0:
        return _NO_OFFSET
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    return timedelta(seconds=int.from_bytes(digest, "big") % seconds)


def _check_offset(offset: timedelta) -> None:
    if not isinstance(offset, timedelta):
        raise TypeError(f"offset must be a timedelta, not {type(offset).__name__}")
    if not _NO_OFFSET <= offset < _DAY:
        raise ValueError(f"offset must be at least 0 and less than a day, not {offset}")


def first_due(tz_name: str, created_at: datetime, offset: timedelta = _NO_OFFSET) -> datetime:
    """When a newly saved export is first built: the next build instant after its creation."""
    return next_build_at(tz_name, created_at, offset)


def due_and_next(tz_name: str, next_due: datetime, now: datetime,
                 offset: timedelta = _NO_OFFSET) -> tuple[bool, datetime]:
    """The dispatcher's rule for one saved export at the tick `now`.

    Returns (due, new_next_due). The export is due iff `next_due <= now`; a
    due export's next build is the next build instant (a day's start plus
    `offset`) after `now` rather than after `next_due`, so a dispatcher that
    was down for a while builds each missed export once instead of once per
    missed day or tick. It is also for a day that begins after `next_due`, so
    the date just built is never built again, even when the export's offset
    changed since `next_due` was set (schedules made before the offsets).
    """
    _require_aware(next_due, "next_due")
    _require_aware(now, "now")
    _check_offset(offset)
    if next_due <= now:
        return True, next_build_at(tz_name, max(now, next_due + offset), offset)
    return False, next_due
