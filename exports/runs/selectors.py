"""Reads: what a user may see. Everything is filtered by domain membership or ownership."""
from django.conf import settings
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from exports.files.export_file import planned_rows
from exports.models import Domain, ExportDefinition, ExportRun
from exports.runs.access import may_still_view_in_admin
from exports.sources import SourceError, get_source


def domains_for(user):
    return Domain.objects.filter(members=user)


def domain_for(user, slug):
    """The domain if `user` is a member, else 404 (a non-member learns nothing of it)."""
    return get_object_or_404(domains_for(user), slug=slug)


def definition_for(user, slug, definition_id):
    return get_object_or_404(ExportDefinition.objects.select_related("domain"),
                             pk=definition_id, domain__slug=slug, domain__members=user)


def visible_runs(user):
    """The runs of `user` they may still see (exports.runs.access.may_see_run, in one query): those in
    a domain they belong to; an admin export also only while they may view its model in the admin, and
    for a superuser in any domain."""
    runs = ExportRun.objects.filter(owner=user)
    member = Q(domain__in=domains_for(user))
    admin_models = [model for model in runs.filter(admin_export__isnull=False)
                    .values_list("admin_export__model", flat=True).distinct()
                    if isinstance(model, str) and may_still_view_in_admin(user, model)]
    admin_runs = Q(admin_export__model__in=admin_models) & (Q() if user.is_superuser else member)
    return runs.filter(Q(admin_export__isnull=True) & member | admin_runs)


def run_for(user, run_id):
    """A run of the user's own that they may still see (visible_runs), else 404."""
    return get_object_or_404(visible_runs(user).select_related("definition", "domain"), pk=run_id)


def row_counts(domain, definitions):
    """[(source label, rows)] of the sources `definitions` export, for the domain's page to say how much it holds.
    One COUNT per source (on the domain's index: about 20 ms for a million rows on SQLite)."""
    counts = []
    for name in dict.fromkeys(definition.source for definition in definitions):
        try:
            source = get_source(name)
        except SourceError:
            continue
        counts.append((source.label, source.queryset(domain).count()))
    return counts


def has_rows(definition, date_from=None, date_to=None, filters=None, **_other_choices):
    """Whether an export of `definition` with these dates and filters would write any row (one EXISTS query).

    Dates not given are the definition's, as for the export itself (exports.files.parameters)."""
    parameters = {"date_from": date_from or definition.date_from, "date_to": date_to or definition.date_to,
                  "filters": filters or {}}
    queryset, _columns = planned_rows(definition, parameters)
    return queryset.exists()


def recent_runs(user, domain, limit=20):
    return visible_runs(user).filter(domain=domain).select_related("definition")[:limit]


def filter_domains(user):
    """The domains "My exports" may be narrowed to: the user's, and those of the runs they see (a
    superuser's admin exports may be of domains they are no member of)."""
    return Domain.objects.filter(Q(members=user) | Q(runs__in=visible_runs(user))).distinct()


def is_admin_export(run_id):
    """Whether the run exports an admin changelist (exports.admin.actions) rather than a definition."""
    return ExportRun.objects.filter(pk=run_id, admin_export__isnull=False).exists()


def run_language(run_id):
    """The language the run's owner asked in: its progress words, errors and email are written in it."""
    code = ExportRun.objects.filter(pk=run_id).values_list("language", flat=True).first()
    return code or settings.LANGUAGE_CODE


def runs_with_display_status(runs, status, now=None):
    """`runs` narrowed to those whose display_status is `status` (a succeeded run past its expiry is expired)."""
    now = now or timezone.now()
    Status = ExportRun.Status
    if status == Status.EXPIRED:
        return runs.filter(Q(status=Status.EXPIRED) | Q(status=Status.SUCCEEDED, expires_at__lte=now))
    if status == Status.SUCCEEDED:
        return runs.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), status=Status.SUCCEEDED)
    return runs.filter(status=status)


def my_runs(user, status=None, domain=None, created_from=None, created_to=None):
    """Every run of `user` in the domains they still belong to, newest first ("My exports").

    `status` narrows to one display status, `domain` to one of their domains, `created_from` and
    `created_to` (dates, both included) to the days they were created on.
    """
    runs = visible_runs(user).select_related("definition", "domain")
    if domain is not None:
        runs = runs.filter(domain=domain)
    if status:
        runs = runs_with_display_status(runs, status)
    if created_from:
        runs = runs.filter(created_at__date__gte=created_from)
    if created_to:
        runs = runs.filter(created_at__date__lte=created_to)
    return runs.order_by("-created_at", "pk")
