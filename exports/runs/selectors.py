"""Reads: what a user may see. Everything is filtered by domain membership or ownership."""
from django.conf import settings
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from exports.models import Domain, ExportDefinition, ExportRun


def domains_for(user):
    return Domain.objects.filter(members=user)


def domain_for(user, slug):
    """The domain if `user` is a member, else 404 (a non-member learns nothing of it)."""
    return get_object_or_404(domains_for(user), slug=slug)


def definition_for(user, slug, definition_id):
    return get_object_or_404(ExportDefinition.objects.select_related("domain"),
                             pk=definition_id, domain__slug=slug, domain__members=user)


def run_for(user, run_id):
    """A run of the user's own, in a domain they still belong to."""
    return get_object_or_404(ExportRun.objects.select_related("definition", "domain"),
                             pk=run_id, owner=user, domain__members=user)


def recent_runs(user, domain, limit=20):
    return ExportRun.objects.filter(owner=user, domain=domain).select_related("definition")[:limit]


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
    runs = ExportRun.objects.filter(owner=user, domain__in=domains_for(user)).select_related("definition", "domain")
    if domain is not None:
        runs = runs.filter(domain=domain)
    if status:
        runs = runs_with_display_status(runs, status)
    if created_from:
        runs = runs.filter(created_at__date__gte=created_from)
    if created_to:
        runs = runs.filter(created_at__date__lte=created_to)
    return runs.order_by("-created_at", "pk")
