"""Limits on what users may type, shared by the forms, the API and the models: dates and time zones."""
from __future__ import annotations

import datetime
import re
from functools import lru_cache
from zoneinfo import available_timezones

from django.core.exceptions import ValidationError
from django.utils.formats import date_format
from django.utils.translation import gettext, gettext_lazy

# Wide enough for any real record, and far enough from date.min and date.max that local midnights
# in every time zone, and the day after the last one, are instants Python and the databases can hold.
EARLIEST_DATE = datetime.date(1900, 1, 1)
LATEST_DATE = datetime.date(2100, 12, 31)

# The words for a range whose start comes after its end (forms, models, services and the API).
DATE_ORDER_MESSAGE = gettext_lazy("The start date is after the end date.")
# The words for a date the API cannot read; {field} is the parameter's name.
ISO_DATE_MESSAGE = "{field} must be a date written YYYY-MM-DD, or null."
# A date the API reads: ASCII digits only (r"\d" is any script's digit, "٢٠٢٥" too).
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def is_ascii_date_text(value):
    """Whether a typed date is in ASCII only: Python's date parsing takes any script's digits."""
    return not isinstance(value, str) or value.isascii()


def _in_words(day):
    """'1 January 1900' in English, '1 janvier 1900' in French."""
    return date_format(day, "j F Y")


def validate_date_in_range(value, what=gettext_lazy("The date")):
    """Refuse a date outside EARLIEST_DATE..LATEST_DATE; `what` names the field in the message."""
    if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValidationError(
            gettext("%(what)s must be between %(earliest)s and %(latest)s.") % {
                "what": what, "earliest": _in_words(EARLIEST_DATE), "latest": _in_words(LATEST_DATE)},
            code="date_out_of_range",
        )


# Names that zoneinfo lists on some hosts but that are not zones a user should
# pick: "localtime" links to the server's own setting, "posixrules" is a legacy
# tzdata helper file.
_NOT_IANA = frozenset({"localtime", "posixrules"})


@lru_cache(maxsize=1)
def _known_zones() -> tuple[frozenset[str], dict[str, str]]:
    """The IANA keys, and a map from each case-folded key to its canonical spelling."""
    names = sorted(available_timezones() - _NOT_IANA)
    by_folded: dict[str, str] = {}
    for name in names:
        by_folded.setdefault(name.casefold(), name)
    return frozenset(names), by_folded


def validate_time_zone(name: str) -> str:
    """Return the canonical IANA key for `name`, or raise ValueError.

    Matching ignores case ('asia/kathmandu' gives 'Asia/Kathmandu') so that a
    hand-typed name is stored in the spelling every platform understands.
    """
    if name is None or (isinstance(name, str) and not name.strip()):
        raise ValueError("A time zone is required. Use an IANA name such as 'Europe/Paris'.")
    if not isinstance(name, str):
        raise ValueError(
            f"Time zone must be a string, not {type(name).__name__}. "
            "Use an IANA name such as 'Europe/Paris'."
        )
    names, by_folded = _known_zones()
    if name in names:
        return name
    canonical = by_folded.get(name.casefold())
    if canonical is None:
        raise ValueError(f"Unknown time zone {name!r}. Use an IANA name such as 'Europe/Paris'.")
    return canonical
