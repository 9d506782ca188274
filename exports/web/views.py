"""Pages of the export service. Thin: they check input and call services and selectors."""
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db import IntegrityError, transaction
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from exports.conf import exports_conf
from exports.models import ExportDefinition
from exports.runs import reaper, selectors, services, words
from exports.runs.status import run_status, stopped_bar
from exports.saved import services as saved_exports
from exports.sources import SourceError
from exports.web.descriptions import date_range, describe_parameters, describe_run
from exports.web.forms import DefinitionForm, ExportDialogForm, RunFilterForm, StartExportForm
from exports.writers import get_writer
from soil.serving import serve_storage_key


@login_required
def site_home(request):
    """The site's home page, where login lands: the exports themselves (the one domain's page, or the list
    of domains), not links to them."""
    domains = list(selectors.domains_for(request.user))
    if len(domains) == 1:
        return _domain_page(request, domains[0])
    return render(request, "exports/home.html", {"domains": domains})


@login_required
def exports_home(request):
    domains = list(selectors.domains_for(request.user))
    if len(domains) == 1:
        return redirect("exports:domain", domains[0].slug)
    return render(request, "exports/home.html", {"domains": domains})


def _domain_page(request, domain, status=200, start_errors=None, no_rows=None):
    """The domain's page; `start_errors` {definition pk: words} of a refused Export, or `no_rows` the
    bound form of an Export whose dates hold no row (the page warns, with "Export anyway")."""
    definitions = list(domain.definitions.all())
    start_errors = start_errors or {}

    def start_form(definition):
        if no_rows is not None and no_rows.prefix == f"d{definition.pk}":
            return no_rows
        return StartExportForm(initial={"format": definition.format}, prefix=f"d{definition.pk}")

    context = {
        "domain": domain,
        "definitions": [(d, start_form(d), date_range(d.date_from, d.date_to)) for d in definitions],
        "no_rows_prefix": no_rows.prefix if no_rows is not None else None,
        "row_counts": selectors.row_counts(domain, definitions),
        "saved": saved_exports.saved_exports_for(domain),
        "runs": selectors.recent_runs(request.user, domain),
        "start_errors": start_errors,
        "start_error_links": [(f"#id_d{d.pk}-format", f"{d.name}: {start_errors[d.pk]}")
                              for d in definitions if d.pk in start_errors],
    }
    return render(request, "exports/domain.html", context, status=status)


@login_required
def domain_exports(request, slug):
    return _domain_page(request, selectors.domain_for(request.user, slug))


@login_required
@require_POST
def start_export(request, slug, definition_id):
    definition = selectors.definition_for(request.user, slug, definition_id)
    form = StartExportForm(request.POST, prefix=f"d{definition.pk}")
    try:
        if not form.is_valid():
            raise services.ExportRefused(form.errors.as_text())
        chosen = form.cleaned_data
        # Dates typed that hold no row (a typo?) are warned of first; the page already says how many rows
        # the domain holds in all.
        if ((chosen["date_from"] or chosen["date_to"]) and request.POST.get("action") != EXPORT_EMPTY_ACTION
                and not selectors.has_rows(definition, **chosen)):
            return _domain_page(request, definition.domain, no_rows=form)  # warned, with "Export anyway"
        run, created = services.start_export(request.user, definition, **form.cleaned_data)
    except services.ExportRefused as refusal:  # the domain's page again, the words beside the definition
        return _domain_page(request, definition.domain, 400, {definition.pk: str(refusal)})
    if not created:
        messages.info(request, _("This export is already running; here it is."))
    if form.cleaned_data.get("notify_by_email") and not services.can_email(request.user):
        messages.error(request, str(words.NO_EMAIL_WORDS))
    return redirect("exports:run", run.pk)


SAVE_ACTION = "save"
EXPORT_EMPTY_ACTION = "export_empty"  # "Export anyway", after the warning that no rows match
# A saved definition's fields that the dialog shows; errors of any other go above the form.
_DIALOG_FIELDS = {"name", "columns", "date_from", "date_to", "format"}


@login_required
def export_dialog(request, slug, definition_id):
    """Choose columns, dates, filters and format for one export of a definition, then export it or save
    the choices as a new definition (the "save" button)."""
    definition = selectors.definition_for(request.user, slug, definition_id)
    action = request.POST.get("action")
    saving = action == SAVE_ACTION
    no_rows = False
    try:
        form = ExportDialogForm(request.POST or None, definition=definition, saving=saving)
    except SourceError as problem:  # a definition whose source or columns are gone: edit it first
        messages.error(request, str(problem))
        return redirect("exports:domain", slug)
    if request.method == "POST" and form.is_valid():
        if saving:
            if saved := _save_as_definition(request, definition, form):
                return redirect("exports:export_dialog", slug, saved.pk)
        elif action != EXPORT_EMPTY_ACTION and not selectors.has_rows(definition, **form.export_arguments()):
            no_rows = True  # the page again, warning, with "Export anyway"
        else:
            try:
                run, created = services.start_export(request.user, definition, **form.export_arguments())
            except services.ChoiceRefused as refusal:
                form.add_error(refusal.field, str(refusal))
            except services.ExportRefused as refusal:
                form.add_error(None, str(refusal))
            else:
                if not created:
                    messages.info(request, _("This export is already running; here it is."))
                if form.cleaned_data["notify_by_email"] and not services.can_email(request.user):
                    messages.error(request, words.NO_EMAIL_WORDS)
                return redirect("exports:run", run.pk)
    context = {"domain": definition.domain, "definition": definition, "form": form, "no_rows": no_rows}
    return render(request, "exports/export_dialog.html", context, status=400 if form.errors else 200)


def _save_as_definition(request, definition, form):
    """Save the dialog's choices as a new definition and say so; None, with errors on the form, if refused."""
    data = form.cleaned_data
    try:
        saved = services.save_as_definition(request.user, definition, data["name"], format=data["format"],
                                            date_from=data["date_from"], date_to=data["date_to"],
                                            columns=data["columns"])
    except ValidationError as refusal:
        for field, errors in refusal.message_dict.items():
            for error in errors:
                form.add_error(field if field in _DIALOG_FIELDS else None, error)
        return None
    if data["filters"]:
        messages.success(request, _("Saved the new export definition '%(name)s'. Filters are not saved with a "
                                    "definition: choose them here each time.") % {"name": saved.name})
    else:
        messages.success(request, _("Saved the new export definition '%(name)s'.") % {"name": saved.name})
    return saved


@login_required
def run_page(request, run_id):
    run = reaper.check_run(selectors.run_for(request.user, run_id))
    status = run_status(run)
    context = {
        "run": run,
        "download_id": run.download_id,
        "status": status,
        "status_url": reverse("exports:run_status", args=[run.pk]),
        "stopped_status": stopped_bar(status),
    }
    return render(request, "exports/run.html", context)


@login_required
def run_status_json(request, run_id):
    """The run's status in soil's JSON shape, from the row (and the live percentage while it runs)."""
    return JsonResponse(run_status(reaper.check_run(selectors.run_for(request.user, run_id))))


@login_required
@require_POST
def cancel_run(request, run_id):
    run = services.cancel_export(request.user, selectors.run_for(request.user, run_id))
    messages.info(request, _("The export was cancelled.") if run.status == run.Status.CANCELLED
                  else _("The export will stop within a few seconds."))
    return redirect("exports:run", run.pk)


@login_required
@require_POST
def notify_run(request, run_id):
    run = selectors.run_for(request.user, run_id)
    try:
        services.request_email(request.user, run)
    except services.NoEmailAddress as refusal:
        messages.error(request, str(refusal))
    else:
        messages.info(request, _("We will email %(email)s when the export is ready.") % {"email": request.user.email})
    return redirect("exports:run", run.pk)


@login_required
@require_POST
def rerun(request, run_id):
    old = selectors.run_for(request.user, run_id)
    try:
        run, _ = services.rerun(request.user, old)
    except services.ExportRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("exports:domain", old.domain.slug)
    return redirect("exports:run", run.pk)


MY_EXPORTS_PER_PAGE = 25


@login_required
def my_exports(request):
    """Every run of the user across their domains, newest first, filtered by status and domain, paginated."""
    form = RunFilterForm(request.GET, domains=list(selectors.filter_domains(request.user)))
    form.is_valid()  # a bad choice is shown next to its field; the other filter still applies
    chosen = form.cleaned_data
    runs = selectors.my_runs(request.user, status=chosen.get("status"), domain=chosen.get("domain"))
    page = Paginator(runs, MY_EXPORTS_PER_PAGE).get_page(request.GET.get("page"))
    for run in page:
        run.described = describe_parameters(run)
    kept = {name: request.GET[name] for name in ("status", "domain") if request.GET.get(name) and name in chosen}
    context = {"form": form, "page": page, "filtered": bool(kept), "filter_query": urlencode(kept),
               "here": request.get_full_path(),
               # A superuser's admin export may be of a domain they are no member of: no link to its page (404).
               "member_of": set(selectors.domains_for(request.user).values_list("pk", flat=True))}
    return render(request, "exports/my_exports.html", context, status=400 if form.errors else 200)


DELETE_CONFIRMED = "yes"


@login_required
@require_POST
def delete_run(request, run_id):
    """Delete a finished run: the first POST (Delete on My exports) asks for confirmation on a page that
    names the run by its time and format; the second, with confirm=yes, deletes it."""
    run = selectors.run_for(request.user, run_id)
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = reverse("exports:mine")
    if request.POST.get("confirm") != DELETE_CONFIRMED and not run.is_active:
        return render(request, "exports/delete_run.html", {"run": run, "named": describe_run(run), "back": back})
    try:
        services.delete_run(request.user, run)
    except services.DeleteRefused as refusal:
        messages.error(request, str(refusal))
    else:
        messages.success(request, _("Deleted the export %(run)s and its file.") % {"run": describe_run(run)})
    return redirect(back)


def stored_file_response(key, filename, format):
    """Stream (or, on S3, redirect to) an export file in storage; Http404 if it is gone."""
    return serve_storage_key(key, filename, get_writer(format).mimetype, storage_alias=exports_conf.EXPORTS_STORAGE)


def file_response_for_run(request, run):
    """The run's file, from the row alone, or the page that explains why there is none (410 once expired)."""
    if run.display_status == run.Status.EXPIRED:
        return render(request, "exports/expired.html", {"run": run}, status=410)
    if not run.has_file:
        return render(request, "exports/not_ready.html", {"run": run}, status=409)
    try:
        return stored_file_response(run.file_key, run.filename, run.parameters["format"])
    except Http404:
        return render(request, "exports/expired.html", {"run": run}, status=410)


@login_required
def download_run(request, run_id):
    return file_response_for_run(request, selectors.run_for(request.user, run_id))


@login_required
def edit_definition(request, slug, definition_id=None):
    domain = selectors.domain_for(request.user, slug)
    definition = (selectors.definition_for(request.user, slug, definition_id) if definition_id
                  else ExportDefinition(domain=domain))
    form = DefinitionForm(request.POST or None, instance=definition, domain=domain)
    if request.method == "POST" and form.is_valid():
        try:
            with transaction.atomic():
                saved_exports.save_definition(form.save(commit=False))
        except IntegrityError:  # the same name, saved a moment ago by someone else
            form.add_error("name", _("This domain already has an export definition named \"%(name)s\"; "
                                     "choose another name.") % {"name": form.instance.name})
        else:
            messages.success(request, _("Saved '%(name)s'.") % {"name": form.instance.name})
            return redirect("exports:domain", domain.slug)
    return render(request, "exports/definition_form.html", {"domain": domain, "form": form},
                  status=400 if form.errors else 200)


@login_required
def download_saved(request, slug, definition_id):
    """The stable link of a saved export: always the latest successful build, for every member."""
    saved = saved_exports.saved_export_for(request.user, slug, definition_id)
    if saved is None:
        raise Http404("No such saved export.")
    if not saved.has_file:
        return render(request, "exports/saved_not_built.html", {"saved": saved}, status=404)
    saved_exports.record_download(saved)
    return stored_file_response(saved.file_key, saved.filename, saved.definition.format)


@login_required
@require_POST
def rebuild_saved(request, slug, definition_id):
    """"Rebuild now": queue a rebuild (or find the one under way) and show its progress."""
    saved = saved_exports.saved_export_for(request.user, slug, definition_id)
    if saved is None:
        raise Http404("No such saved export.")
    try:
        download, created = saved_exports.rebuild_now(request.user, saved)
    except services.ExportRefused as refusal:
        messages.error(request, str(refusal))
        return redirect("exports:domain", slug)
    if created or download.is_owner(request.user):
        if not created:
            messages.info(request, _("A rebuild is already under way; here it is."))
        return redirect("retrieve_download", download.download_id)
    messages.info(request, _("Someone started a rebuild of this export a moment ago; its link gives the new "
                             "file once it is done."))
    return redirect("exports:domain", slug)
