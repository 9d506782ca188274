"""Poll tokens: a progress page polls its JSON status without loading the session or the user.

The page that shows a download is rendered for a logged-in user who passed every access check
(soil's owner rule and SOIL_DOWNLOAD_ACCESS_CHECK). It hands its poller a status URL carrying a token,
signed with SECRET_KEY, that names that user and is bound to that one download:

    /downloads/<id>/status/?t=<user id>:<timestamp>:<signature>

The status view accepts it for SOIL_POLL_TOKEN_MAX_AGE seconds if the user is still a listed owner of
the download, and then needs neither the session nor the user's row: a poll costs the Redis reads
and nothing else. The trade-off, and why it is bounded:

- Whoever holds the URL may read the download's status (state, progress, message, the error's
  words) until the token expires, even after the user logs out or loses access. Never the file:
  the file still needs the session and every check.
- Past its age, or for a download without listed owners (staff-only), the token is ignored and the
  poll is checked through the session as before; nothing breaks, it is only slower.

SOIL_POLL_TOKEN_MAX_AGE = 0 turns tokens off.
"""
import time

from django.core import signing
from django.urls import reverse

from .conf import soil_conf

SALT = "soil.poll-token"
# Tokens this process verified: (download id, token) -> (user id, signed at). A page polls with the
# same token every second; its signature is checked once, its age at every poll.
MAX_VERIFIED = 4096
_verified = {}


def _signer(download_id):
    return signing.TimestampSigner(salt=f"{SALT}:{download_id}")


def make_poll_token(user, download):
    """A token for `user` to poll `download`, or None when tokens are off or the user is not a listed owner."""
    if not soil_conf.POLL_TOKEN_MAX_AGE or not is_listed_owner(user.pk, download):
        return None
    return _signer(download.download_id).sign(str(user.pk))


def poll_token_user_id(token, download_id):
    """The id of the user the token was made for, or None: missing, forged, for another download, or too old."""
    max_age = soil_conf.POLL_TOKEN_MAX_AGE
    if not token or not max_age:
        return None
    verified = _verified.get((download_id, token))
    if verified is not None:
        user_id, signed_at = verified
        return user_id if time.time() - signed_at <= max_age else None
    signer = _signer(download_id)
    try:
        user_id = signer.unsign(token, max_age=max_age)
    except signing.BadSignature:  # SignatureExpired is one
        return None
    if len(_verified) >= MAX_VERIFIED:
        _verified.clear()
    _verified[download_id, token] = user_id, signing.b62_decode(token.rsplit(signer.sep, 2)[1])
    return user_id


def is_listed_owner(user_id, download):
    return download.owner_ids is not None and str(user_id) in download.owner_ids


def status_url(user, download):
    """The JSON status URL a page polls: with a poll token when one can be made."""
    url = reverse("download_status", args=[download.download_id])
    token = make_poll_token(user, download)
    return f"{url}?t={token}" if token else url
