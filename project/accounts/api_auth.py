"""Who is calling the API: django-ninja auth classes for API tokens, passwords (where allowed) and the session.

An API view lists them in order (`api_auth(write=...)`); the first that signs the request in wins, and
`request.auth` is then the token's row or the user. Wrong credentials are refused in words (401) and
counted per client address; a read-only token asking to change something is refused (403). Every
signed-in request counts against the user's API rate.
"""
from django.conf import settings
from django.contrib.auth import authenticate
from django.utils.translation import gettext, gettext_lazy
from ninja.errors import AuthenticationError, AuthorizationError
from ninja.security import HttpBasicAuth, HttpBearer, SessionAuth

from . import throttling, tokens

NO_CREDENTIALS_MESSAGE = gettext_lazy(
    "Authentication required: send an API token as 'Authorization: Bearer <token>'.")
READ_ONLY_MESSAGE = gettext_lazy(
    "This token is read-only; make a token that may start and cancel exports on the API tokens page.")


class CredentialsRefused(AuthenticationError):
    """Credentials that sign nobody in; the message says why."""

    def __init__(self, message):
        super().__init__(401, str(message))


def _refuse(request, message):
    throttling.count(request, "api-auth-address", throttling.client_address(request),
                     settings.API_AUTH_FAILURE_RATE_PER_ADDRESS)
    raise CredentialsRefused(message)


def _check_address(request):
    throttling.check(request, "api-auth-address", throttling.client_address(request),
                     settings.API_AUTH_FAILURE_RATE_PER_ADDRESS)


def _signed_in(request, user):
    throttling.hit(request, "api-user", str(user.pk), settings.API_RATE_PER_USER)
    request.user = user


class TokenAuth(HttpBearer):
    """`Authorization: Bearer <token>` with a token made on the API tokens page; `write` asks for that scope."""

    def __init__(self, write=False):
        super().__init__()
        self.write = write

    def authenticate(self, request, token):
        _check_address(request)
        row = tokens.token_for(token.strip())
        if row is None:
            _refuse(request, gettext("This token is not valid; it may have been revoked."))
        _signed_in(request, row.user)
        if self.write and not row.may_write:
            raise AuthorizationError(403, str(READ_ONLY_MESSAGE))
        return row


class PasswordAuth(HttpBasicAuth):
    """HTTP Basic with a username and password, only where API_BASIC_AUTH is on."""

    def authenticate(self, request, username, password):
        _check_address(request)
        if not settings.API_BASIC_AUTH:
            _refuse(request, gettext(
                "Passwords are not accepted here; send an API token as 'Authorization: Bearer <token>'."))
        user = authenticate(request, username=username, password=password)
        if user is None:
            _refuse(request, gettext("Wrong username or password."))
        _signed_in(request, user)
        return user


class BrowserSessionAuth(SessionAuth):
    """The logged-in browser's session, with Django's CSRF check on requests that change something."""

    def __call__(self, request):
        if request.headers.get("Authorization"):
            return None  # a header the classes above did not take is refused below, not passed by the session
        return super().__call__(request)

    def authenticate(self, request, key):
        if not request.user.is_authenticated:
            return None
        _signed_in(request, request.user)
        return request.user


def unauthenticated_message(request):
    """Why no auth class signed the request in: no credentials, or (counted as a failure) a header of another scheme."""
    if request.headers.get("Authorization"):
        throttling.count(request, "api-auth-address", throttling.client_address(request),
                         settings.API_AUTH_FAILURE_RATE_PER_ADDRESS)
        return gettext("Send an API token as 'Authorization: Bearer <token>'.")
    return str(NO_CREDENTIALS_MESSAGE)


def api_auth(write=False):
    """The auth classes of an API view; `write`: one that starts, cancels or deletes (a read-only token may not)."""
    return [TokenAuth(write=write), PasswordAuth(), BrowserSessionAuth()]
