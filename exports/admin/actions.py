"""Async export for any ModelAdmin: an admin action that exports the changelist in the background.

    class FormSubmissionAdmin(AsyncExportAdminMixin, admin.ModelAdmin):
        list_display = ["received_on", "form_name", "village"]
        export_fields = None  # default: the list_display entries that are model fields

"Export …" exports exactly what the changelist shows: the ticked rows, or with "Select all N" the
whole filtered and searched list. A confirmation page shows the row count and offers the formats.

A ModelAdmin whose rows belong to domains (exports.admin.site.DomainScopedAdmin) exports as export
runs, one per domain of the rows: each is listed in My exports with Download, Re-run and Delete,
written in its domain's time zone, with the labels of the ModelAdmin's `export_source` where it
names one, and served by the rules of any run (exports.runs.access). The user lands on the run's
page, or on My exports when the rows span several domains. Any other ModelAdmin's export is a soil
download: the user lands on soil's progress page, which ends with the download link.

It lives in `exports`, not in `soil`, because it writes its files with exports' typed streaming
writers (csv, xlsx, zipped csv) into exports' storage, and `soil` must not import `exports`
(DESIGN.md). It is not tied to the demo source: any ModelAdmin of any app can mix it in.
"""
import functools

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import IS_POPUP_VAR
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.text import capfirst, slugify
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from exports.admin.changelist_export import (
    changelist_query,
    default_export_fields,
    export_columns,
    export_filename_stem,
    row_limit_words,
)
from exports.conf import exports_conf
from exports.formatting import zone
from exports.models import format_label
from exports.runs import queueing, services
from exports.runs.access import admin_export_extras
from exports.writers import WRITERS
from soil import DownloadBase

ACTION_NAME = "export_changelist"
CONFIRMED = "export_confirmed"


class ExportFormatForm(forms.Form):
    """The confirmation page's one choice: the file format."""

    format = forms.ChoiceField(label=gettext_lazy("Format"), widget=forms.RadioSelect)

    def __init__(self, *args, formats=None, **kwargs):
        super().__init__(*args, **kwargs)
        names = formats or list(WRITERS)
        self.fields["format"].choices = [(name, format_label(name)) for name in names]
        self.fields["format"].initial = names[0]


def export_changelist(modeladmin, request, queryset):
    """The admin action: confirm (format, row count), then queue the export and go to its progress page."""
    return modeladmin.export_changelist_response(request, queryset)


class AsyncExportAdminMixin:
    """Adds the "Export …" action to a ModelAdmin. Settings, each optional:

    - `export_fields`: field names or paths through relations ("owner__username"); default: the
      `list_display` entries that are model fields. A foreign key is written as the related
      object's name (its str()), a field with choices as the choice's label.
    - `export_formats`: a subset of ("xlsx", "csv", "zip"); default all, the first preselected.
    - `export_max_rows`: the largest export allowed; default the EXPORT_MAX_ROWS setting.
    - `export_source`: the name of the export source (exports.sources) these rows are also exported
      through; its columns' labels and types are used for the fields it has.
    """

    export_fields = None
    export_formats = None
    export_max_rows = None
    export_source = None
    export_confirmation_template = "admin/exports/export_confirmation.html"

    def get_actions(self, request):
        actions = super().get_actions(request)
        if self.actions is None or IS_POPUP_VAR in request.GET or not self.has_view_permission(request):
            return actions
        description = _("Export selected %(verbose_name_plural)s") % {
            "verbose_name_plural": self.model._meta.verbose_name_plural}
        actions[ACTION_NAME] = (export_changelist, ACTION_NAME, description)
        return actions

    def get_export_fields(self, request):
        return list(self.export_fields) if self.export_fields else default_export_fields(self, request)

    def get_export_max_rows(self, request):
        return self.export_max_rows if self.export_max_rows is not None else exports_conf.EXPORT_MAX_ROWS

    def export_changelist_response(self, request, queryset):
        if not self.has_view_permission(request):
            raise PermissionDenied
        total = queryset.count()
        max_rows = self.get_export_max_rows(request)
        if total > max_rows:
            messages.error(request, row_limit_words(total, max_rows))
            return None  # back to the changelist, which shows the message
        fields = self.get_export_fields(request)
        form = ExportFormatForm(request.POST if CONFIRMED in request.POST else None, formats=self.export_formats)
        if form.is_bound and form.is_valid():
            if hasattr(self, "domains_of_rows"):
                return self.start_export_runs(request, queryset, form.cleaned_data["format"], fields)
            download = self.start_changelist_export(request, queryset, form.cleaned_data["format"], fields, total)
            return redirect("retrieve_download", download.download_id)
        opts = self.model._meta
        context = {
            **self.admin_site.each_context(request),
            "title": _("Export %(verbose_name_plural)s") % {"verbose_name_plural": opts.verbose_name_plural},
            "opts": opts,
            "total": total,
            "total_text": f"{total:,}",
            "columns": export_columns(self, fields),
            "form": form,
            "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": ACTION_NAME,
            "confirmed_name": CONFIRMED,
            "changelist_query": request.GET.urlencode(),
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.export_confirmation_template, context,
                                status=400 if form.errors else 200)

    def admin_export_spec(self, request, queryset, fields):
        """What an export run of this changelist reads, JSON-safe: the task rebuilds the queryset itself.

        With "Select all" the whole filtered changelist; otherwise only the ticked pks (Django's
        DATA_UPLOAD_MAX_NUMBER_FIELDS already bounds how many a POST can carry).
        """
        select_across = request.POST.get("select_across") == "1"
        opts = self.model._meta
        return {
            "site": self.admin_site.name,
            "model": opts.label_lower,
            "query": changelist_query(request.GET),
            "pks": None if select_across else [str(pk) for pk in queryset.values_list("pk", flat=True)],
            "fields": fields,
            "title": str(capfirst(opts.verbose_name_plural)),
            "max_rows": self.get_export_max_rows(request),
        }

    def start_export_runs(self, request, queryset, format_name, fields):
        """One export run per domain of the rows; the run's page, or My exports for several."""
        spec = self.admin_export_spec(request, queryset, fields)
        runs = []
        try:
            for domain in self.domains_of_rows(queryset):
                day = timezone.localdate(timezone.now(), zone(domain.time_zone))
                name = f"{slugify(self.model._meta.verbose_name_plural) or 'export'}-{domain.slug}-{day:%Y-%m-%d}"
                runs.append(services.start_admin_export(request.user, domain, {**spec, "name": name}, format_name)[0])
        except services.ExportRefused as refusal:
            messages.error(request, str(refusal))
            if not runs:
                return None  # back to the changelist, which shows the message
        if not runs:
            messages.warning(request, _("There are no rows to export."))
            return None
        if len(runs) == 1:
            return redirect("exports:run", runs[0].pk)
        messages.info(request, ngettext(
            "Started %(count)d export, one per domain of the rows: each file holds one domain's rows, with "
            "times in its time zone.",
            "Started %(count)d exports, one per domain of the rows: each file holds one domain's rows, with "
            "times in its time zone.", len(runs)) % {"count": len(runs)})
        return redirect("exports:mine")

    def start_changelist_export(self, request, queryset, format_name, fields, total):
        """Queue the export with JSON-safe arguments only: the task rebuilds the queryset itself.

        With "Select all" the task reads the whole filtered changelist; otherwise only the ticked
        pks (Django's DATA_UPLOAD_MAX_NUMBER_FIELDS already bounds how many a POST can carry).
        """
        select_across = request.POST.get("select_across") == "1"
        pks = None if select_across else [str(pk) for pk in queryset.values_list("pk", flat=True)]
        opts = self.model._meta
        name = export_filename_stem(self.model)
        # The progress page names the file from the start ("Preparing form-submissions-2026-11-23.csv"),
        # and only staff who may still view the model see it; the task adds the rows' domains.
        named_download = functools.partial(DownloadBase, filename=f"{name}{WRITERS[format_name].file_extension}",
                                           extras=admin_export_extras(opts.label_lower))
        return queueing.queue_changelist_export(
            kwargs={
                "site_name": self.admin_site.name,
                "model_label": opts.label_lower,
                "query": changelist_query(request.GET),
                "pks": pks,
                "user_id": request.user.pk,
                "format_name": format_name,
                "fields": fields,
                "name": name,
                "max_rows": self.get_export_max_rows(request),
            },
            owner_id=request.user.pk,
            download_class=named_download,
            message=_("%(count)s %(things)s to %(format)s") % {
                "count": f"{total:,}", "things": opts.verbose_name_plural, "format": format_label(format_name)},
        )
