"""Reads: what a user may see. Everything is filtered by domain membership or ownership."""
from django.conf import settings
from django.shortcuts import get_object_or_404

from .models import Domain, ExportDefinition, ExportRun


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
