"""API tokens: made, found and revoked here; only a digest of each is kept."""
import hashlib
import secrets

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext

from project.accounts.models import ApiToken

TOKEN_PREFIX = "exp_"


class TokenRefused(ValueError):
    """A token cannot be made; the message says why."""


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(user, name, scope=ApiToken.Scope.WRITE):
    """Make a token for `user` with `scope`; returns (row, token). The token itself is shown once and never stored."""
    name = " ".join((name or "").split())[:100]
    if not name:
        raise TokenRefused(gettext("Give the token a name."))
    if ApiToken.objects.filter(user=user).count() >= settings.API_TOKENS_PER_USER:
        raise TokenRefused(gettext("You have %(count)d tokens already; revoke one first.")
                           % {"count": settings.API_TOKENS_PER_USER})
    if scope not in ApiToken.Scope.values:
        raise TokenRefused(gettext("Choose what the token may do."))
    row = ApiToken(user=user, name=name, scope=scope)
    token = issue(row)
    row.save()
    return row, token


def issue(row):
    """Give an unsaved ApiToken a new random token; returns the token, of which the row keeps a digest."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row.prefix, row.digest = token[:len(TOKEN_PREFIX) + 6], digest(token)
    return token


def token_for(token):
    """The row of a token whose user is active, or None; notes when it was used."""
    if not token or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = ApiToken.objects.select_related("user").filter(digest=digest(token)).first()
    if row is None or not row.user.is_active:
        return None
    ApiToken.objects.filter(pk=row.pk).update(last_used_at=timezone.now())
    return row


def user_for_token(token):
    """The active user a token belongs to, or None; notes when it was used."""
    row = token_for(token)
    return row.user if row else None


def tokens_of(user):
    return ApiToken.objects.filter(user=user)


def revoke_token(user, token_id):
    """Delete one of the user's tokens; returns whether there was one."""
    deleted, _ = ApiToken.objects.filter(user=user, pk=token_id).delete()
    return bool(deleted)
