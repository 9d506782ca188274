"""Limits that keep one user or one domain from taking every worker: active runs, rows, saved exports.

Each check returns quietly within the limit and raises LimitReached, whose message is for the user,
when not (exports.services turns it into ExportRefused, which pages and the API show). The counts are read, not locked: two requests at the
same instant may both pass, which can exceed a limit by one or two; no lock is worth that.
"""
from django.conf import settings

from .building import planned_rows
from .models import ExportRun, check_saved_exports_cap  # noqa: F401  (defined with the model it counts)


class LimitReached(ValueError):
    """A limit stops this; the message says which, in words for the user."""


def check_active_runs(user, domain):
    active = ExportRun.objects.filter(status__in=ExportRun.ACTIVE)
    per_user = settings.EXPORT_MAX_ACTIVE_RUNS_PER_USER
    if active.filter(owner=user).count() >= per_user:
        raise LimitReached(f"You already have {per_user} exports queued or running; wait for one to finish "
                           "or cancel one.")
    per_domain = settings.EXPORT_MAX_ACTIVE_RUNS_PER_DOMAIN
    if active.filter(domain=domain).count() >= per_domain:
        raise LimitReached(f"This domain already has {per_domain} exports queued or running; try again "
                           "in a few minutes.")


def check_rows(definition, parameters):
    """Refuse a build of more than EXPORT_MAX_ROWS rows; `parameters` as exports.services.query_parameters."""
    queryset, _ = planned_rows(definition, parameters)
    total = queryset.count()
    if total > settings.EXPORT_MAX_ROWS:
        raise LimitReached(
            f"This export has {total:,} rows, more than the limit of {settings.EXPORT_MAX_ROWS:,}. "
            "Choose a shorter date range."
        )
    return total
