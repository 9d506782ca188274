"""Who may act on a domain's exports (its members), and who may fetch a file that exports exposed
through soil: its owners (soil checks those) who still have the rights it was made with.

Every run's download carries its domain's slug in `extras["domain"]`. An admin changelist export
carries `extras["admin_export"]`: the exported model and the domains its rows belong to (several,
for a superuser's export). soil calls `can_download` for each request to a download page or file
(its access hook), so a member removed from a domain, or a staff member who loses staff status or
the model's view permission, loses their links at once instead of at expiry.
"""
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext

from exports.models import Domain

DOMAIN_KEY = "domain"
ADMIN_EXPORT_KEY = "admin_export"


def ensure_member(user, domain):
    """PermissionDenied, in words, unless `user` is a member of `domain`."""
    if not domain.members.filter(pk=user.pk).exists():
        raise PermissionDenied(gettext("You are not a member of this domain."))


def download_extras(domain):
    """The `extras` to expose a download of `domain` with."""
    return {DOMAIN_KEY: domain.slug}


def run_download_extras(run):
    """The `extras` of a run's download: its domain's, and an admin export's mark, so that soil's own
    links to the file follow the same rules as the run's pages (may_see_run)."""
    if run.admin_export:
        return {**download_extras(run.domain), **admin_export_extras(run.admin_export["model"], [run.domain.slug])}
    return download_extras(run.domain)


def may_see_run(user, run):
    """Whether `user` may see and fetch `run` (selectors.visible_runs says the same in one query): its
    owner, a member of its domain; for an admin export, also still staff with the view permission of
    the exported model, and a superuser need not be a member."""
    if run.owner_id != user.pk:
        return False
    if run.admin_export:
        if not may_still_view_in_admin(user, run.admin_export["model"]):
            return False
        if user.is_superuser:
            return True
    return run.domain.members.filter(pk=user.pk).exists()


def admin_export_extras(model_label, domains=None):
    """The `extras` of an admin changelist export of `model_label` ("exports.formsubmission") whose rows
    belong to the domains with the slugs `domains` (None until the rows are read)."""
    return {ADMIN_EXPORT_KEY: {"model": model_label, "domains": sorted(domains) if domains is not None else None}}


def may_still_view_in_admin(user, model_label):
    """Whether `user` may still see `model_label`'s changelist: active staff with its view (or change)
    permission, as Django's ModelAdmin.has_view_permission asks."""
    if not (user.is_active and user.is_staff):
        return False
    app_label, _, model_name = model_label.partition(".")
    return user.has_perm(f"{app_label}.view_{model_name}") or user.has_perm(f"{app_label}.change_{model_name}")


def is_member_of_all(user, slugs):
    slugs = set(slugs)
    if not slugs:
        return True
    return Domain.objects.filter(slug__in=slugs, members=user).count() == len(slugs)


def can_download(user, download):
    """Whether `user` may use `download` as far as exports is concerned (soil checks the owners itself).

    A run's download: a member of its domain. An admin export: staff who may still view the model and
    are members of every domain whose rows it holds. Superusers pass the membership rules (an admin
    export still needs them to be staff). A download with neither mark is not one of ours: this hook
    does not stand in the way.
    """
    extras = download.extras or {}
    slug, admin_export = extras.get(DOMAIN_KEY), extras.get(ADMIN_EXPORT_KEY)
    if slug is None and admin_export is None:
        return True
    if not (user and user.is_authenticated and user.is_active):
        return False
    if admin_export is not None and not may_still_view_in_admin(user, admin_export["model"]):
        return False
    if user.is_superuser:
        return True
    domains = ([slug] if slug is not None else []) + list((admin_export or {}).get("domains") or [])
    return is_member_of_all(user, domains)
