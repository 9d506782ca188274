"""Throttling counters, kept in the Redis cache by django-ratelimit: check, count and hit a rate.

Used by the API here and by the site's login and password-reset views (project.throttling). A view
raises Throttled; project.throttling.ThrottledMiddleware answers it with 429 and Retry-After.
"""
import logging

from django.conf import settings
from django.utils.translation import ngettext_lazy
from django_ratelimit.core import get_usage

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
