"""The demo source: form submissions of the demo domain.

Kept apart from exports.sources (the registry, which imports no models) so that exports.models can
import the registry at module level. exports.apps imports this module at start-up, in every process.
"""
from django.utils.translation import gettext_lazy as _

from .models import FormSubmission
from .sources import Column, ExportSource, FilterField, distinct_values, register


def _form_submissions(domain):
    return FormSubmission.objects.filter(domain=domain)


FORM_SUBMISSIONS = register(ExportSource(
    name="form_submissions",
    label="Form submissions",
    queryset=_form_submissions,
    date_field="received_on",
    ordering=("received_on", "id"),
    columns=[
        Column("form_id", "Form id"),
        Column("received_on", "Received on", "datetime"),
        Column("submitted_by", "Submitted by"),
        Column("form_name", "Form name"),
        Column("patient_name", "Patient name"),
        Column("village", "Village"),
        Column("age", "Age", "integer"),
        Column("weight_kg", "Weight (kg)", "decimal"),
        Column("visit_date", "Visit date", "date"),
        Column("is_follow_up", "Follow-up visit", "boolean"),
        Column("notes", "Notes"),
    ],
    filters=[
        FilterField("form_name", _("Form name"), choices=distinct_values(_form_submissions, "form_name")),
        FilterField("submitted_by", _("Submitted by")),  # free text: the exact user name
    ],
))
