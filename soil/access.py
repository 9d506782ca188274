"""Who may see a download: the one check behind every view that serves or reports one."""
from .conf import soil_conf


def can_access(user, download):
    """A logged-in user who passes soil's owner rule and, if the project set one, its own check.

    soil's rule (DownloadBase.is_owner): a listed owner; a download saved without owner_ids is for
    staff only, or any logged-in user with SOIL_OWNERLESS_DOWNLOADS = "authenticated".
    SOIL_DOWNLOAD_ACCESS_CHECK (a dotted path to `callable(user, download) -> bool`) can
    only narrow that, e.g. to members of the domain kept in `download.extras`.
    """
    if not download.is_owner(user):
        return False
    check = soil_conf.download_access_check
    return check is None or bool(check(user, download))
