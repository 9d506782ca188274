"""What an export is asked for: format, dates, columns and filters, checked against the definition's
source and its writers, kept as JSON on the run, and read back as the values a build needs.

    export_parameters(definition, "csv", date_from, None, columns=[...])  -> {"format": "csv", ...}
    query_parameters(run.parameters)  -> the same with dates as dates (planned_rows takes either)
"""
import datetime
import hashlib
import json

from django.utils.translation import gettext as _

from exports.sources import SourceError, get_source
from exports.validators import DATE_ORDER_MESSAGE
from exports.writers import get_writer


class ExportRefused(ValueError):
    """The export cannot start; the message says why, in words for the user."""


class ChoiceRefused(ExportRefused):
    """A chosen column or filter is not one the source has; `field` is "columns" or "filters"."""

    def __init__(self, message, field):
        super().__init__(message)
        self.field = field


def export_parameters(definition, format=None, date_from=None, date_to=None, columns=None, filters=None):
    """The JSON-safe parameters of a run; anything not given comes from the definition.

    "columns" ([keys in order]) and "filters" ({key: value}) are there only when they differ from the
    definition's (its columns, no filter), so a run with the defaults has the same parameters, and the
    same dedupe key, as before they existed.
    """
    source = get_source(definition.source)
    chosen_columns = None
    if columns:  # the run's own columns, kept only when they differ from the definition's
        if not isinstance(columns, (list, tuple)) or not all(isinstance(key, str) for key in columns):
            raise ChoiceRefused(_("Columns are given as a list of column keys."), "columns")
        try:
            keys = [column.key for column in source.columns_for(list(columns))]
        except SourceError as exc:
            raise ChoiceRefused(str(exc), "columns") from None
        if keys != [column.key for column in source.columns_for(definition.columns)]:
            chosen_columns = keys
    try:  # the run's filters, empty values left out
        chosen_filters = source.clean_filters(definition.domain, filters)
    except SourceError as exc:
        raise ChoiceRefused(str(exc), "filters") from None
    format = format or definition.format
    try:
        get_writer(format)
    except ValueError as exc:
        raise ExportRefused(str(exc)) from None
    date_from = date_from or definition.date_from
    date_to = date_to or definition.date_to
    if date_from and date_to and date_from > date_to:
        raise ExportRefused(DATE_ORDER_MESSAGE)
    parameters = {
        "format": format,
        "date_from": date_from.isoformat() if date_from else None,
        "date_to": date_to.isoformat() if date_to else None,
    }
    if chosen_columns is not None:
        parameters["columns"] = chosen_columns
    if chosen_filters:
        parameters["filters"] = chosen_filters
    return parameters


def query_parameters(parameters):
    """Run parameters with the dates turned back into dates, for building the queryset (dates stay dates)."""
    return {
        **parameters,
        "date_from": _date(parameters.get("date_from")),
        "date_to": _date(parameters.get("date_to")),
    }


def _date(value):
    if isinstance(value, str):
        return datetime.date.fromisoformat(value) if value else None
    return value  # a date already, or None


def parameters_key(definition, parameters):
    text = json.dumps({"definition": definition.pk, **parameters}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
