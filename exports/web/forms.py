from django import forms
from django.utils.translation import gettext_lazy as _

from exports.formatting import one_line
from exports.models import FORMAT_CHOICES, ExportDefinition, ExportRun
from exports.runs.services import check_new_definition_name
from exports.sources import FILTER_VALUE_MAX_LENGTH, SourceError, all_sources, get_source
from exports.validators import (
    DATE_ORDER_MESSAGE,
    EARLIEST_DATE,
    LATEST_DATE,
    is_ascii_date_text,
    validate_date_in_range,
)


class ExportDateField(forms.DateField):
    """An optional date within the range exports accept; `what` names it in the message."""

    def __init__(self, *, what, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.DateInput(attrs={
            "type": "date", "min": EARLIEST_DATE.isoformat(), "max": LATEST_DATE.isoformat()}))
        super().__init__(**kwargs)
        self.what = what

    def to_python(self, value):
        if not is_ascii_date_text(value):  # "٢٠٢٥-01-01" would read as 2025-01-01
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return super().to_python(value)

    def validate(self, value):
        super().validate(value)
        validate_date_in_range(value, self.what)


class StartExportForm(forms.Form):
    format = forms.ChoiceField(choices=FORMAT_CHOICES, label=_("Format"))
    date_from = ExportDateField(what=_("The start date"), label=_("From"))
    date_to = ExportDateField(what=_("The end date"), label=_("To"))
    notify_by_email = forms.BooleanField(required=False, label=_("Email me when it is ready"))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError(str(DATE_ORDER_MESSAGE))
        return data


class DefinitionForm(forms.ModelForm):
    """Edit a definition; the columns are offered as checkboxes of the chosen source's columns."""

    columns = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple,
                                        label=_("Columns"), help_text=_("None ticked means all columns."))
    date_from = ExportDateField(what=_("The start date"), label=_("Date from"))
    date_to = ExportDateField(what=_("The end date"), label=_("Date to"))

    class Meta:
        model = ExportDefinition
        fields = ["name", "source", "columns", "date_from", "date_to", "format", "is_daily_saved"]
        widgets = {"source": forms.Select(choices=[])}

    def __init__(self, *args, domain, **kwargs):
        super().__init__(*args, **kwargs)
        self.instance.domain = domain
        sources = all_sources()
        self.fields["source"].widget.choices = [(s.name, s.label) for s in sources]
        source_name = self.data.get("source") or self.initial.get("source") or self.instance.source or sources[0].name
        try:
            columns = get_source(source_name).columns
        except ValueError:
            columns = []
        self.fields["columns"].choices = [(c.key, c.label) for c in columns]
        self.stored_name = self.instance.name if self.instance.pk else None

    def clean(self):
        """The (domain, name) constraint, in words next to the name: the form has no domain field, so
        Django's own unique check never runs. The name is compared as it will be saved, on one line."""
        data = super().clean()
        name = one_line(data.get("name") or "")
        if name and name != self.stored_name:
            try:
                check_new_definition_name(self.instance.domain, name)
            except forms.ValidationError as error:
                self.add_error(None, error)  # its dict puts the words next to the name
        return data


class RunFilterForm(forms.Form):
    """The filters of "My exports" (a GET form): a status and one of the user's domains, both optional."""

    status = forms.ChoiceField(label=_("Status"), required=False,
                               choices=[("", _("Any status"))] + list(ExportRun.Status.choices))
    domain = forms.ChoiceField(label=_("Domain"), required=False)

    def __init__(self, data, domains):
        super().__init__(data)
        self.domains = {domain.slug: domain for domain in domains}
        self.fields["domain"].choices = [("", _("All your domains"))] + [(d.slug, d.name) for d in domains]

    def clean_domain(self):
        """The chosen Domain, or None for all of them."""
        return self.domains.get(self.cleaned_data["domain"])


POSITION_STEP = 10  # the dialog numbers columns 10, 20, 30…: a column moves by taking a number between two


class ExportDialogForm(StartExportForm):
    """The export dialog of one definition: columns (ticked, and their positions), dates, the source's
    filter fields, format, email; and a name, for "Save as definition".

    The definition's choices are the defaults. Field names: `include_<key>` and `position_<key>` per
    column, `filter_<key>` per filter field, `name` for saving.
    """

    name = forms.CharField(label=_("Name of the new definition"), required=False, max_length=200)
    columns = forms.CharField(required=False, widget=forms.HiddenInput)  # carries the column list's errors

    def __init__(self, *args, definition, saving=False, **kwargs):
        self.definition = definition
        self.saving = saving  # "Save as definition" was pressed: the name is checked with the rest
        self.source = get_source(definition.source)
        chosen = [column.key for column in self.source.columns_for(definition.columns)]
        # The chosen columns first, in their order, then the others, unticked.
        ordered = [*self.source.columns_for(chosen),
                   *(column for column in self.source.columns if column.key not in chosen)]
        initial = {"format": definition.format, "date_from": definition.date_from, "date_to": definition.date_to,
                   **kwargs.pop("initial", {})}
        for index, column in enumerate(ordered, start=1):
            initial.setdefault(f"include_{column.key}", column.key in chosen)
            initial.setdefault(f"position_{column.key}", index * POSITION_STEP)
        super().__init__(*args, initial=initial, **kwargs)
        self.ordered_columns = ordered
        for column in ordered:
            # A time column's box names the zone of the file's times, as the file's heading does.
            self.fields[f"include_{column.key}"] = forms.BooleanField(
                required=False, label=column.heading(definition.domain.time_zone))
            self.fields[f"position_{column.key}"] = forms.IntegerField(
                required=False, min_value=1, max_value=9999,
                label=_("Position of %(column)s") % {"column": column.label},
                widget=forms.NumberInput(attrs={"class": "position"}))
        for filter_field in self.source.filters:
            values = filter_field.choices(definition.domain) if filter_field.choices else None
            if values is not None:  # a list to pick from; None when there are too many values to list
                choices = [("", _("Any"))] + [(value, value) for value in values]
                field = forms.ChoiceField(required=False, choices=choices, label=filter_field.label)
            else:
                field = forms.CharField(required=False, label=filter_field.label, max_length=FILTER_VALUE_MAX_LENGTH,
                                        help_text=_("Exactly as recorded; leave empty for all."))
            self.fields[f"filter_{filter_field.key}"] = field

    def column_rows(self):
        """(column, include field, position field) for the template, in the order shown."""
        return [(column, self[f"include_{column.key}"], self[f"position_{column.key}"])
                for column in self.ordered_columns]

    def filter_fields(self):
        return [self[f"filter_{f.key}"] for f in self.source.filters]

    def clean(self):
        data = forms.Form.clean(self)  # not StartExportForm's: the date order error goes next to the end date
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", DATE_ORDER_MESSAGE)
        data["columns"] = self._chosen_columns(data)
        filters = {}
        for filter_field in self.source.filters:
            name = f"filter_{filter_field.key}"
            if name in self.errors:
                continue
            try:
                if value := filter_field.clean(self.definition.domain, data.get(name)):
                    filters[filter_field.key] = value
            except SourceError as exc:
                self.add_error(name, str(exc))
        data["filters"] = filters
        if self.saving and "name" not in self.errors:
            try:
                data["name"] = check_new_definition_name(self.definition.domain, data.get("name"))
            except forms.ValidationError as error:
                self.add_error(None, error)  # its dict puts the words next to the name
        return data

    def _chosen_columns(self, data):
        """The ticked columns' keys by position; errors go next to the position or the column list."""
        ticked = []
        for index, column in enumerate(self.ordered_columns):
            name = f"position_{column.key}"
            if not data.get(f"include_{column.key}") or name in self.errors:
                continue
            if data.get(name) is None:
                self.add_error(name, _("Give %(column)s a position, or untick it.") % {"column": column.label})
                continue
            ticked.append((data[name], index, column))
        if not ticked and not any(name.startswith("position_") for name in self.errors):
            self.add_error("columns", _("Tick at least one column."))
        first_at = {}
        for position, _index, column in ticked:
            if (other := first_at.setdefault(position, column)) is not column:
                self.add_error(f"position_{column.key}", _(
                    "%(column)s has the same position (%(position)d) as %(other)s; give each ticked column "
                    "its own number.") % {"column": column.label, "position": position, "other": other.label})
        return [column.key for _position, _index, column in sorted(ticked, key=lambda item: item[:2])]

    def export_arguments(self):
        """The keyword arguments of services.start_export."""
        data = self.cleaned_data
        return {"format": data["format"], "date_from": data["date_from"], "date_to": data["date_to"],
                "notify_by_email": data["notify_by_email"], "columns": data["columns"], "filters": data["filters"]}
