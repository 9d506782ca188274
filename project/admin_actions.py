"""A guard for every ModelAdmin of the site: an admin action refuses selected ids that are not ids of
its model, in a message on the changelist, instead of failing with a 500.

Django filters the changelist by the POSTed ids (`pk__in`) before it runs an action; an id the
primary key cannot hold ("abc" for an integer or a UUID, a number too large for the column) raises
there. Mix it in first:

    class ExportRunAdmin(CheckedSelectionAdminMixin, admin.ModelAdmin): ...
"""
from django.contrib import messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def first_bad_id(model, ids):
    """The first of `ids` (strings) that is not a valid primary key of `model`, or None."""
    pk = model._meta.pk
    for value in ids:
        try:
            pk.run_validators(pk.to_python(value))
        except ValidationError:
            return value
    return None


class CheckedSelectionAdminMixin:
    """Refuses, in a message, an action on selected ids that are not ids; the changelist shows it."""

    def response_action(self, request, queryset):
        bad = first_bad_id(self.model, request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
        if bad is not None:
            self.message_user(request, _("“%(id)s” is not an id of a %(thing)s; nothing was done.")
                              % {"id": bad[:40], "thing": self.model._meta.verbose_name}, messages.ERROR)
            return None  # Django redirects back to the changelist, which shows the message
        return super().response_action(request, queryset)
