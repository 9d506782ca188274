"""What can be exported: a registry of sources, each a queryset per domain and typed columns.

A developer declares a source once:

    register(ExportSource(
        name="form_submissions",
        label="Form submissions",
        queryset=lambda domain: FormSubmission.objects.filter(domain=domain),
        date_field="received_on",
        columns=[Column("received_on", "Received on", "datetime"), ...],
    ))
"""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from .writers.base import COLUMN_TYPES


class SourceError(ValueError):
    """An unknown source or column."""


@dataclass(frozen=True)
class Column:
    key: str          # the model field (or lookup) read from the queryset
    label: str        # the header users see
    type: str = "text"

    def __post_init__(self):
        if self.type not in COLUMN_TYPES:
            raise SourceError(f"Column {self.key!r} has type {self.type!r}; use one of {', '.join(COLUMN_TYPES)}.")


@dataclass(frozen=True)
class ExportSource:
    name: str
    label: str
    queryset: Callable
    columns: list = field(default_factory=list)
    date_field: str | None = None
    ordering: tuple = ("pk",)

    def columns_for(self, keys):
        """The chosen columns, in the order given; all of them for an empty choice."""
        if not keys:
            return list(self.columns)
        by_key = {column.key: column for column in self.columns}
        unknown = [key for key in keys if key not in by_key]
        if unknown:
            raise SourceError(f"Unknown column(s) for {self.label}: {', '.join(unknown)}.")
        return [by_key[key] for key in keys]

    def rows_queryset(self, domain, date_from=None, date_to=None):
        """The domain's rows, filtered to [date_from, date_to] in the domain's time zone, in a stable order.

        Any date is safe: a bound whose local midnight lies beyond what a datetime can hold (the year 1
        east of UTC, the day after 9999-12-31) excludes nothing, so it is left out of the query.
        """
        queryset = self.queryset(domain)
        if self.date_field and (date_from or date_to):
            zone = ZoneInfo(domain.time_zone)
            if date_from and (start := _day_start_utc(date_from, zone)):
                queryset = queryset.filter(**{f"{self.date_field}__gte": start})
            if date_to and date_to < date.max and (end := _day_start_utc(date_to + timedelta(days=1), zone)):
                queryset = queryset.filter(**{f"{self.date_field}__lt": end})
        return queryset.order_by(*self.ordering)


def _day_start_utc(day, zone):
    """Local midnight of `day` in `zone` as a UTC datetime; None when that lies outside datetime's range.

    Converting here rather than in the database adapter turns the overflow into a plain None. Only the
    start of 0001-01-01 east of UTC overflows (below datetime.min), and a lower bound there excludes nothing.
    """
    try:
        return datetime.combine(day, time.min, zone).astimezone(timezone.utc)
    except OverflowError:
        return None


_REGISTRY: dict[str, ExportSource] = {}


def register(source):
    _REGISTRY[source.name] = source
    return source


def get_source(name):
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SourceError(f"Unknown export source {name!r}.") from None


def all_sources():
    return list(_REGISTRY.values())
