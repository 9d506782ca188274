from django import forms
from django.utils.translation import gettext_lazy as _

from .models import FORMAT_CHOICES, ExportDefinition, ExportRun
from .sources import all_sources, get_source
from .validators import DATE_ORDER_MESSAGE, EARLIEST_DATE, LATEST_DATE, validate_date_in_range


class ExportDateField(forms.DateField):
    """An optional date within the range exports accept; `what` names it in the message."""

    def __init__(self, *, what, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.DateInput(attrs={
            "type": "date", "min": EARLIEST_DATE.isoformat(), "max": LATEST_DATE.isoformat()}))
        super().__init__(**kwargs)
        self.what = what

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
