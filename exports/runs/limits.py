"""Limits that keep one user or one domain from taking every worker: active runs, rows, saved exports.

Each check returns quietly within the limit and raises LimitReached, whose message is for the user,
when not (exports.runs.services turns it into ExportRefused, which pages and the API show).

The active-run limits hold exactly under concurrent starts: services.start_export inserts the new run
and, in the same transaction, calls `lock_active_runs` and counts again with the new row included
(`check_active_runs(..., including_new=True)`), rolling back over a limit. The lock is the domain's row
(`SELECT ... FOR NO KEY UPDATE` on PostgreSQL, which serialises every start in the domain, hence every
user's count too, without blocking inserts that merely reference the domain); SQLite has one writer at
a time, and the insert has taken the write lock before the count.
"""
from django.utils.translation import ngettext

from exports.conf import exports_conf
from exports.files.export_file import planned_rows
from exports.formatting import format_count
from exports.models import Domain, ExportRun, check_saved_exports_cap  # noqa: F401  (defined with the model it counts)


class LimitReached(ValueError):
    """A limit stops this; the message says which, in words for the user."""


def lock_active_runs(domain):
    """Inside a transaction: hold the domain's active-run counts still until it ends (PostgreSQL; SQLite has one writer)."""
    list(Domain.objects.select_for_update(no_key=True).filter(pk=domain.pk).values_list("pk"))


def check_active_runs(user, domain, including_new=False):
    """Refuse a start past the user's or the domain's active runs; `including_new`: the new run is already counted."""
    active = ExportRun.objects.filter(status__in=ExportRun.ACTIVE)
    new = 0 if including_new else 1
    per_user = exports_conf.EXPORT_MAX_ACTIVE_RUNS_PER_USER
    if active.filter(owner=user).count() + new > per_user:
        raise LimitReached(ngettext(
            "You already have %(count)d export queued or running; wait for it to finish or cancel it.",
            "You already have %(count)d exports queued or running; wait for one to finish or cancel one.",
            per_user) % {"count": per_user})
    per_domain = exports_conf.EXPORT_MAX_ACTIVE_RUNS_PER_DOMAIN
    if active.filter(domain=domain).count() + new > per_domain:
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
