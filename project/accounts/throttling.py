"""Throttling: counters kept in the Redis cache by django-ratelimit, the guards of the login and
password-reset views, and the 429 answer to any throttled request.

A view (or the exports API) checks, counts or hits a rate and raises Throttled; ThrottledMiddleware
answers it with 429 and Retry-After. Failed logins are counted, not every login, so that people who
type their password right are never slowed down; password-reset requests are counted whatever their
outcome, since each may send an email. We use django-ratelimit rather than django-axes: its counters
live in the Redis cache that every web process shares (no database write per attempt), and one tool
covers every case here, including password resets and the API, where axes only watches failed logins.
"""
import functools
import logging
import unicodedata

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import ngettext_lazy
from django_ratelimit.core import get_usage

from project.middleware import wants_json

log = logging.getLogger(__name__)

THROTTLED_MESSAGE = ngettext_lazy("Too many attempts; try again in %(seconds)d second.",
                                  "Too many attempts; try again in %(seconds)d seconds.", "seconds")


class Throttled(Exception):
    """The client used up a rate; `retry_after` is how many seconds until the window ends."""

    def __init__(self, retry_after):
        super().__init__(str(THROTTLED_MESSAGE % {"seconds": retry_after}))
        self.retry_after = retry_after


def client_address(request):
    """The client's address: REMOTE_ADDR, or the last address of the header a trusted proxy sets."""
    header = settings.RATELIMIT_CLIENT_ADDRESS_HEADER
    value = request.META.get(header, "") or request.META.get("REMOTE_ADDR", "")
    return value.split(",")[-1].strip() or "unknown"


def _usage(request, group, value, rate, increment):
    try:
        return get_usage(request, group=group, key=lambda _group, _request: value, rate=rate, increment=increment)
    except Exception:  # noqa: BLE001 - Redis down: throttling fails open; the views report Redis themselves
        log.warning("Could not count %s for throttling", group, exc_info=True)
        return None


def check(request, group, value, rate):
    """Raise Throttled if `value` has already used up `rate` in `group` (counting nothing)."""
    usage = _usage(request, group, value, rate, increment=False)
    if usage and usage["count"] >= usage["limit"]:
        raise Throttled(max(1, usage["time_left"]))


def count(request, group, value, rate):
    """Count one attempt of `value` in `group`."""
    _usage(request, group, value, rate, increment=True)


def hit(request, group, value, rate):
    """Count one attempt and raise Throttled if that went over `rate`."""
    usage = _usage(request, group, value, rate, increment=True)
    if usage and usage["should_limit"]:
        raise Throttled(max(1, usage["time_left"]))


def throttled_response(request, exc):
    """429 with Retry-After: JSON for the API, a page for people."""
    message = str(exc)
    if wants_json(request):
        response = JsonResponse({"error": message}, status=429)
    else:
        response = render(request, "accounts/throttled.html", {"message": message}, status=429)
    response["Retry-After"] = str(exc.retry_after)
    return response


class ThrottledMiddleware:
    """Turn Throttled raised by any view into its 429."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, Throttled):
            return throttled_response(request, exception)
        return None


def login_name(typed):
    """The username as Django's login form cleans it: stripped and NFKC-normalised ("ａｌｉｃｅ " is "alice")."""
    return unicodedata.normalize("NFKC", typed[:150].strip())


def login_username_key(name):
    """The counter key of a cleaned username; casefold joins spellings that differ only in case, too."""
    return name.casefold()


def login_user_key(name):
    """The pk of the user a cleaned username names, looked up as Django's backend does; None for nobody."""
    users = get_user_model()._default_manager
    try:
        return str(users.get_by_natural_key(name).pk) if name else None
    except users.model.DoesNotExist:
        return None


def login_failures_guard(view):
    """Wrap a login view: refuse while the address, the username or its user has too many recent failures; count failures.

    The username is counted under its normalised key (login_username_key) and, when it names a user,
    under that user's pk as well, so no other spelling of the same account starts a fresh count.
    """
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method != "POST":
            return view(request, *args, **kwargs)
        rate = settings.LOGIN_FAILURE_RATE_PER_USERNAME
        address = client_address(request)
        name = login_name(request.POST.get("username", ""))
        username, user = login_username_key(name), login_user_key(name)
        check(request, "login-address", address, settings.LOGIN_FAILURE_RATE_PER_ADDRESS)
        check(request, "login-username", username, rate)
        if user is not None:
            check(request, "login-user", user, rate)
        response = view(request, *args, **kwargs)
        if not request.user.is_authenticated:  # the form was refused
            count(request, "login-address", address, settings.LOGIN_FAILURE_RATE_PER_ADDRESS)
            count(request, "login-username", username, rate)
            if user is not None:
                count(request, "login-user", user, rate)
        return response

    return wrapper


def password_reset_guard(view):
    """Wrap the password-reset view: each request counts, per address and per email address."""
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method == "POST":
            hit(request, "reset-address", client_address(request), settings.PASSWORD_RESET_RATE_PER_ADDRESS)
            hit(request, "reset-email", request.POST.get("email", "")[:254].strip().lower(),
                settings.PASSWORD_RESET_RATE_PER_EMAIL)
        return view(request, *args, **kwargs)

    return wrapper

