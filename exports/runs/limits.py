"""Limits that keep one user or one domain from taking every worker: active runs, rows, saved exports.

Each check returns quietly within the limit and raises LimitReached, whose message is for the user,
when not (exports.runs.services turns it into ExportRefused, which pages and the API show). The counts are read, not locked: two requests at the
same instant may both pass, which can exceed a limit by one or two; no lock is worth that.
"""
from django.utils.translation import ngettext

from exports.conf import exports_conf
from exports.files.export_file import planned_rows
from exports.formatting import format_count
from exports.models import ExportRun, check_saved_exports_cap  # noqa: F401  (defined with the model it counts)


class LimitReached(ValueError):
    """A limit stops this; the message says which, in words for the user."""


def check_active_runs(user, domain):
    active = ExportRun.objects.filter(status__in=ExportRun.ACTIVE)
    per_user = exports_conf.EXPORT_MAX_ACTIVE_RUNS_PER_USER
    if active.filter(owner=user).count() >= per_user:
        raise LimitReached(ngettext(
            "You already have %(count)d export queued or running; wait for it to finish or cancel it.",
            "You already have %(count)d exports queued or running; wait for one to finish or cancel one.",
            per_user) % {"count": per_user})
    per_domain = exports_conf.EXPORT_MAX_ACTIVE_RUNS_PER_DOMAIN
    if active.filter(domain=domain).count() >= per_domain:
        raise LimitReached(ngettext(
            "This domain already has %(count)d export queued or running; try again in a few minutes.",
            "This domain already has %(count)d exports queued or running; try again in a few minutes.",
            per_domain) % {"count": per_domain})


def check_rows(definition, parameters):
    """Refuse a build of more than EXPORT_MAX_ROWS rows; `parameters` as a run keeps them."""
    queryset, _ = planned_rows(definition, parameters)
    total = queryset.count()
    if total > exports_conf.EXPORT_MAX_ROWS:
        raise LimitReached(ngettext(
            "This export has %(total)s rows, more than the limit of %(limit)s row. Choose a shorter date range.",
            "This export has %(total)s rows, more than the limit of %(limit)s rows. Choose a shorter date range.",
            exports_conf.EXPORT_MAX_ROWS) % {"total": format_count(total), "limit": format_count(exports_conf.EXPORT_MAX_ROWS)})
    return total
