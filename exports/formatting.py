"""How times, durations and counts read to a person: plain functions, used by templates and emails.

Times are shown in the domain's time zone (an IANA name such as "Asia/Kolkata") and labelled with the
zone's abbreviation ("2026-11-23 14:05 IST"); durations are humanised ("2.4 s", "3 min 5 s"); counts
get thousands separators ("305,000").
"""
import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

TIME_FORMAT = "%Y-%m-%d %H:%M"


def zone(name):
    """The ZoneInfo for `name`; UTC when it is empty or unknown (a page must still render)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(value, zone_name):
    """`value` (an aware datetime) in the zone `zone_name`; None stays None."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(zone(zone_name))


def format_local_time(value, zone_name, empty=""):
    """'2026-11-23 14:05 IST': `value` in the zone, with the zone's abbreviation; `empty` for None."""
    local = local_time(value, zone_name)
    if local is None:
        return empty
    return f"{local:{TIME_FORMAT}} {local.tzname()}"


def format_duration(value, empty=""):
    """'0.4 s', '2.4 s', '3 min 5 s', '2 h 5 min' from a timedelta or seconds; `empty` for None."""
    if value is None:
        return empty
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{round(seconds)} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min {secs} s" if secs else f"{minutes} min"


def format_count(value, empty=""):
    """'305,000' from 305000; `empty` for None."""
    if value is None or value == "":
        return empty
    return f"{int(value):,}"


def format_rows(value, empty=""):
    """'1 row', '305,000 rows'; `empty` for None."""
    if value is None:
        return empty
    return f"{format_count(value)} row{'' if int(value) == 1 else 's'}"
