"""What a run was asked for, in words: the format, the date range, and any chosen columns and filters.

    describe_parameters(run) -> [("Format", "CSV"), ("Dates", "2026-01-01 – 2026-03-31"),
                                 ("Columns", "Received on, Village"), ("Village", "Pokhara")]

Columns and filters are named by their labels in the run's source when it knows them, by their raw
keys otherwise (a source renamed since, or a key it no longer has): a history must still render.
"""
import datetime
from urllib.parse import unquote_plus

from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext, pgettext

from exports import models
from exports.formatting import format_count, format_local_time
from exports.sources import SourceError, get_source


def describe_parameters(run):
    """(name, value) pairs describing the parameters of `run`, in the order a person reads them."""
    parameters = run.parameters if isinstance(run.parameters, dict) else {}
    if run.admin_export:
        return [(_("Format"), format_label(parameters.get("format"))), (_("Rows"), admin_rows(run.admin_export))]
    labels = column_labels(run.definition.source)
    described = [(_("Format"), format_label(parameters.get("format"))),
                 (_("Dates"), date_range(parameters.get("date_from"), parameters.get("date_to")))]
    columns = parameters.get("columns")
    if columns and isinstance(columns, list):
        described.append((_("Columns"), ", ".join(labels.get(str(key), str(key)) for key in columns)))
    filters = parameters.get("filters")
    if filters and isinstance(filters, dict):
        described.extend((labels.get(str(key), str(key)), filter_value(value)) for key, value in filters.items())
    return described


def describe_run(run):
    """One run among others of the same definition, by name, format and start time:
    '“All form submissions” (CSV, started 2026-12-05 14:05 IST)'."""
    parameters = run.parameters if isinstance(run.parameters, dict) else {}
    return _("“%(name)s” (%(format)s, started %(started)s)") % {
        "name": run.name, "format": format_label(parameters.get("format")),
        "started": format_local_time(run.created_at, run.domain.time_zone)}


def admin_rows(admin_export):
    """Which rows of the admin's list an admin export holds: those ticked, or the list as filtered."""
    if admin_export.get("pks") is not None:
        count = len(admin_export["pks"])
        return ngettext("%(count)s ticked row", "%(count)s ticked rows", count) % {"count": format_count(count)}
    if admin_export.get("query"):
        return _("the admin's list, filtered: %(query)s") % {"query": unquote_plus(admin_export["query"])}
    return _("the admin's whole list")


def column_labels(source_name):
    """{column key: label} of a source; empty when the source is not registered (any more)."""
    try:
        return {column.key: str(column.label) for column in get_source(source_name).columns}
    except SourceError:
        return {}


def format_label(name):
    return models.format_label(name)


def date_range(date_from, date_to):
    """'2026-01-01 – 2026-03-31' in English, '01/01/2026 – 31/03/2026' in French; 'all dates' for none."""
    date_from, date_to = local_date(date_from), local_date(date_to)
    if not date_from and not date_to:
        return _("all dates")
    if not date_to:
        return _("from %(date)s") % {"date": date_from}
    if not date_from:
        return _("until %(date)s") % {"date": date_to}
    return f"{date_from} – {date_to}"


def local_date(value):
    """A stored ISO date as the active language writes dates; text that is no date stays as it is."""
    try:
        day = datetime.date.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return value
    if not isinstance(day, datetime.date):
        return value
    return date_format(day, pgettext("a date shown to a person, in Django's date format characters", "Y-m-d"))


def filter_value(value):
    """A filter's value as text: a list reads 'a, b'; a missing one 'empty'."""
    if isinstance(value, (list, tuple)):
        return ", ".join(str(item) for item in value)
    if value is None or value == "":
        return _("empty")
    return str(value)
