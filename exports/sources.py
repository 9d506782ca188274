"""What can be exported: a registry of sources, each a queryset per domain and typed columns.

A developer declares a source once:

    def form_submissions(domain):
        return FormSubmission.objects.filter(domain=domain)

    register(ExportSource(
        name="form_submissions",
        label="Form submissions",
        queryset=form_submissions,
        date_field="received_on",
        columns=[Column("received_on", "Received on", "datetime"), ...],
        filters=[FilterField("form_name", "Form name", choices=distinct_values(form_submissions, "form_name"))],
    ))

Filter fields are what a person may narrow an export by at export time (the export dialog, the API):
a choice from `choices(domain)`, or free text when a field has no choices. Run parameters carry the
chosen values as {key: value}; `rows_queryset` applies them as `lookup=value`.
"""
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from exports.formatting import one_line, zone_heading
from exports.writers.base import COLUMN_TYPES


class SourceError(ValueError):
    """An unknown source, column or filter; the message says which, in words for the user."""


@dataclass(frozen=True)
class Column:
    key: str          # the model field (or lookup) read from the queryset
    label: str        # the header users see
    type: str = "text"

    def __post_init__(self):
        if self.type not in COLUMN_TYPES:
            raise SourceError(f"Column {self.key!r} has type {self.type!r}; use one of {', '.join(COLUMN_TYPES)}.")

    def heading(self, zone_name):
        """The header of this column in a file whose times are in `zone_name`: a time column names its
        zone ("Received on (IST)"), so nobody reads local times as UTC or the other way round."""
        label = str(self.label)
        return f"{label} ({zone_heading(zone_name)})" if self.type == "datetime" else label


FILTER_VALUE_MAX_LENGTH = 200


@dataclass(frozen=True)
class FilterField:
    """A field an export may be narrowed by: rows where `lookup` equals the chosen value.

    `choices(domain)` gives the values a person may pick from (a list of strings, or None when there
    are too many to list; any value it has is still accepted); without it the value is free text of up
    to FILTER_VALUE_MAX_LENGTH characters.
    """

    key: str          # the name in run parameters and the API
    label: str        # what users see
    lookup: str = ""  # the queryset lookup; the key when empty
    choices: Callable | None = None

    @property
    def kind(self):
        return "choice" if self.choices else "text"

    def clean(self, domain, value):
        """The value to filter by ("" for none), or SourceError in words."""
        if value is None:
            return ""
        if not isinstance(value, str):
            raise SourceError(_("The filter %(label)s takes text.") % {"label": self.label})
        value = one_line(value)
        if not value:
            return ""
        if len(value) > FILTER_VALUE_MAX_LENGTH:
            raise SourceError(_("The filter %(label)s takes at most %(count)d characters.")
                              % {"label": self.label, "count": FILTER_VALUE_MAX_LENGTH})
        if self.choices and not self._is_choice(domain, value):
            raise SourceError(_("%(value)s is not one of the choices of the filter %(label)s.")
                              % {"value": repr(value)[:60], "label": self.label})
        return value

    def _is_choice(self, domain, value):
        # A `choices` with a `contains(domain, value)` answers without listing every value.
        contains = getattr(self.choices, "contains", None)
        return contains(domain, value) if contains else value in (self.choices(domain) or ())


DISTINCT_VALUES_LIMIT = 200  # more values than this and a filter field is typed, not picked from a list


def distinct_values(queryset, field_name, limit=DISTINCT_VALUES_LIMIT):
    """`choices` for a FilterField: the distinct non-empty values of `field_name` in `queryset(domain)`
    (pass the source's own queryset function), in order; None when there are more than `limit` (then
    the value is typed). Checking one value is an EXISTS query.

    The values are read by walking an index on (domain, field_name): each next value is one seek
    (`field > previous ORDER BY field LIMIT 1`), so listing the 5 form names of a million rows reads
    6 index entries instead of every row. Give the model that index (exports.models.FormSubmission).
    """
    def choices(domain):
        ordered = queryset(domain).order_by(field_name).values_list(field_name, flat=True)
        values = []
        while len(values) <= limit:
            following = list(ordered.filter(**{f"{field_name}__gt": values[-1] if values else ""})[:1])
            if not following:
                return values
            values.append(following[0])
        return None

    def contains(domain, value):
        return value != "" and queryset(domain).filter(**{field_name: value}).exists()

    choices.contains = contains
    return choices


@dataclass(frozen=True)
class ExportSource:
    name: str
    label: str
    queryset: Callable
    columns: list = field(default_factory=list)
    date_field: str | None = None
    ordering: tuple = ("pk",)
    filters: list = field(default_factory=list)

    def columns_for(self, keys):
        """The chosen columns, in the order given; all of them for an empty choice."""
        if not keys:
            return list(self.columns)
        by_key = {column.key: column for column in self.columns}
        unknown = [str(key) for key in keys if key not in by_key]
        if unknown:
            raise SourceError(_("Unknown column(s) for %(source)s: %(keys)s.")
                              % {"source": self.label, "keys": ", ".join(unknown)})
        if len(set(keys)) != len(keys):
            raise SourceError(_("Each column may be chosen once."))
        return [by_key[key] for key in keys]

    def filter_field(self, key):
        for filter_field in self.filters:
            if filter_field.key == key:
                return filter_field
        known = ", ".join(f.key for f in self.filters) or _("none")
        raise SourceError(_("Unknown filter %(key)s for %(source)s; its filters are: %(known)s.")
                          % {"key": repr(key)[:60], "source": self.label, "known": known})

    def clean_filters(self, domain, filters):
        """{key: value} with the empty values left out; SourceError for an unknown key or value."""
        if not filters:
            return {}
        if not isinstance(filters, dict):
            raise SourceError(_("Filters are given as {key: value}."))
        cleaned = {}
        for key, value in filters.items():
            if value := self.filter_field(key).clean(domain, value):
                cleaned[key] = value
        return cleaned

    def rows_queryset(self, domain, date_from=None, date_to=None, filters=None):
        """The domain's rows, filtered to [date_from, date_to] in the domain's time zone and by `filters`
        ({key: value} of this source's filter fields), in a stable order.

        Any date is safe: a bound whose local midnight lies beyond what a datetime can hold (the year 1
        east of UTC, the day after 9999-12-31) excludes nothing, so it is left out of the query.
        An unknown filter key is a SourceError; values are checked when the export starts (clean_filters).
        """
        queryset = self.queryset(domain)
        for key, value in (filters or {}).items():
            filter_field = self.filter_field(key)
            queryset = queryset.filter(**{filter_field.lookup or filter_field.key: value})
        if self.date_field and (date_from or date_to):
            zone = ZoneInfo(domain.time_zone)
            if date_from and (start := _day_start_utc(date_from, zone)):
                queryset = queryset.filter(**{f"{self.date_field}__gte": start})
            if date_to and date_to < date.max and (end := _day_start_utc(date_to + timedelta(days=1), zone)):
                queryset = queryset.filter(**{f"{self.date_field}__lt": end})
        return queryset.order_by(*self.ordering)

    def range_keys(self, model):
        """The fields of `model` that order this source's rows, if they can split them into key ranges
        (exports.files.partitions); else None.

        They can when every one is a plain, non-null column in ascending order and the last is the
        primary key, so that they order the rows totally.
        """
        names = []
        for name in self.ordering:
            if name.startswith("-") or "__" in name:
                return None
            field = model._meta.pk if name == "pk" else model._meta.get_field(name)
            if field.null or not field.concrete:
                return None
            names.append(field.attname)
        if not names or names[-1] != model._meta.pk.attname:
            return None
        return names


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
