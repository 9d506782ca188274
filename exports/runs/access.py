"""Who may act on a domain's exports (its members), and who may fetch a file that exports exposed
through soil: its owners (soil checks those) who are still members of its domain.

Every download exports exposes carries its domain's slug in `extras["domain"]`. soil calls
`can_download` for each request to a download page or file (its access hook), so a member removed
from a domain loses their links at once instead of at expiry.
"""
from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext

from exports.models import Domain

DOMAIN_KEY = "domain"


def ensure_member(user, domain):
    """PermissionDenied, in words, unless `user` is a member of `domain`."""
    if not domain.members.filter(pk=user.pk).exists():
        raise PermissionDenied(gettext("You are not a member of this domain."))


def download_extras(domain):
    """The `extras` to expose a download of `domain` with."""
    return {DOMAIN_KEY: domain.slug}


def can_download(user, download):
    """Whether `user` may use `download` as far as exports is concerned (soil checks the owners itself).

    A download without a domain is not one of ours: this hook does not stand in the way.
    """
    slug = (download.extras or {}).get(DOMAIN_KEY)
    if slug is None:
        return True
    if not (user and user.is_authenticated and user.is_active):
        return False
    return user.is_superuser or Domain.objects.filter(slug=slug, members=user).exists()
