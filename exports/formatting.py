"""How times, durations and counts read to a person, in the active language: plain functions, used by
templates, emails and progress messages.

Times are shown in the domain's time zone (an IANA name such as "Asia/Kolkata") and labelled with the
zone's abbreviation ("2026-11-23 14:05 IST" in English, "23/11/2026 14:05 IST" in French); durations
are humanised ("2.4 s", "3 min 5 s"; "2,4 s" in French); counts are grouped as the language groups
them ("305,000"; "305 000" with a no-break space in French).
"""
import datetime
import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils.formats import date_format, number_format
from django.utils.translation import gettext, ngettext, ngettext_lazy, pgettext


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
    # The date and time in the language's order (Django's date format characters), then the zone.
    pattern = pgettext("date and time of an export, before the time zone's abbreviation", "Y-m-d H:i")
    return f"{date_format(local, pattern)} {local.tzname()}"


def zone_heading(zone_name, year=None):
    """How a column heading names the zone its times are in: the abbreviation when the zone keeps one
    all year ("IST" for Asia/Kolkata, "UTC"), else its IANA name ("Europe/Paris", which is CET in winter
    and CEST in summer; "Asia/Kathmandu", whose abbreviation is only an offset, "+0545")."""
    tz = zone(zone_name)
    year = year or datetime.date.today().year
    names = {datetime.datetime(year, month, 1, 12, tzinfo=tz).tzname() for month in (1, 7)}
    name = names.pop() if len(names) == 1 else ""
    return name if name.isalpha() else str(tz.key)


def format_decimal(value, places):
    """`value` with `places` decimals and the language's decimal mark: '2.4' in English, '2,4' in French."""
    return number_format(round(value, places), places)  # number_format cuts; a person rounds


def format_duration(value, empty=""):
    """'under 0.1 s', '0.4 s', '2.4 s', '3 min 5 s', '2 h 5 min' from a timedelta or seconds; `empty` for None."""
    if value is None:
        return empty
    seconds = value.total_seconds() if isinstance(value, datetime.timedelta) else float(value)
    seconds = max(seconds, 0.0)
    if seconds < 0.1:  # "0.0 s" reads as nothing happened
        return gettext("under 0.1 s")
    if seconds < 10:
        return gettext("%(seconds)s s") % {"seconds": format_decimal(seconds, 1)}
    if seconds < 60:
        return gettext("%(seconds)s s") % {"seconds": round(seconds)}
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        if minutes:
            return gettext("%(hours)s h %(minutes)s min") % {"hours": hours, "minutes": minutes}
        return gettext("%(hours)s h") % {"hours": hours}
    if secs:
        return gettext("%(minutes)s min %(seconds)s s") % {"minutes": minutes, "seconds": secs}
    return gettext("%(minutes)s min") % {"minutes": minutes}


def format_count(value, empty=""):
    """'305,000' from 305000 (in French '305 000', with a no-break space); `empty` for None."""
    if value is None or value == "":
        return empty
    return number_format(int(value), force_grouping=True)


def format_rows(value, empty=""):
    """'1 row', '305,000 rows'; `empty` for None."""
    if value is None:
        return empty
    count = int(value)
    return ngettext("%(count)s row", "%(count)s rows", count) % {"count": format_count(count)}


class RowProgressWords:
    """A progress message format ('12,000 of 250,000 rows'), in the language active when it is formatted.

    Has the `format(current=, total=)` of a format string, so it goes where soil takes a message_format.
    `words` is an ngettext_lazy(singular, plural, "count") with %(current)s and %(total)s in it.
    """

    def __init__(self, words):
        self.words = words

    def format(self, current, total):
        return str(self.words % {"count": total or 0, "current": format_count(current or 0),
                             "total": format_count(total or 0)})


# The words of a build's progress: one reading the rows, a part of a partitioned build, the assembly.
ROWS_PROGRESS = RowProgressWords(ngettext_lazy(
    "%(current)s of %(total)s row", "%(current)s of %(total)s rows", "count"))
PART_ROWS_PROGRESS = RowProgressWords(ngettext_lazy(
    "%(current)s of %(total)s row read, in parts", "%(current)s of %(total)s rows read, in parts", "count"))
ASSEMBLY_PROGRESS = RowProgressWords(ngettext_lazy(
    "Putting the parts together: %(current)s of %(total)s row",
    "Putting the parts together: %(current)s of %(total)s rows", "count"))
STORING_PROGRESS = RowProgressWords(ngettext_lazy(
    "Storing the file of %(total)s row", "Storing the file of %(total)s rows", "count"))

# C0 controls (CR, LF, tab, ESC, ...), DEL, C1 controls (NEL, ...), and the Unicode line and
# paragraph separators: anything that can break a line or hide in a header. A run of them, with
# the spaces around it, becomes one space.
_LINE_BREAKING = re.compile(r"\s*[\x00-\x1f\x7f-\x9f\u2028\u2029]+\s*")
# Bidirectional controls: embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) and the
# marks (U+200E, U+200F, U+061C). In a subject or a file name they reorder what follows ("cod.exe" shown
# for "exe.doc"); they are removed, not read as a space.
_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def one_line(text):
    """`text` without control characters or line separators, each run of them read as a space, and
    without bidirectional controls."""
    return _LINE_BREAKING.sub(" ", _BIDI_CONTROLS.sub("", text)).strip()
