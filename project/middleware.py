"""Answer 503 "try again in a minute", never 500, while Redis (broker, results, soil cache) is unreachable."""
import logging

from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy

from soil.exceptions import caused_by_unavailable_redis

log = logging.getLogger(__name__)

UNAVAILABLE_MESSAGE = gettext_lazy("The export service is unavailable; try again in a minute.")
RETRY_AFTER_SECONDS = 60
# soil's views whose callers read JSON (soil, a library, knows nothing of this site); other apps mark theirs.
SOIL_JSON_VIEWS = {"download_status", "heartbeat_status"}


def answers_json(view):
    """Mark `view` as one whose callers read JSON, whatever their Accept header says: its 503 and 429 are JSON."""
    view.answers_json = True
    return view


def wants_json(request):
    match = request.resolver_match
    if match is not None and (match.view_name in SOIL_JSON_VIEWS or getattr(match.func, "answers_json", False)):
        return True
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def retry_url(request):
    """Where "Try again" leads: this page for a GET; for a form post, the page the form was on."""
    if request.method == "GET":
        return request.get_full_path()
    referer = request.headers.get("Referer", "")
    if url_has_allowed_host_and_scheme(referer, {request.get_host()}, request.is_secure()):
        return referer
    return reverse("exports:home")


class RedisUnavailableMiddleware:
    """Turn an unreachable Redis into a 503 with Retry-After; the details go to the log only."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not caused_by_unavailable_redis(exception):
            return None
        log.error("Redis is unavailable; answered 503 to %s %s", request.method, request.path, exc_info=exception)
        if wants_json(request):
            response = JsonResponse({"error": str(UNAVAILABLE_MESSAGE)}, status=503)
        else:
            context = {"message": UNAVAILABLE_MESSAGE, "retry_url": retry_url(request)}
            response = render(request, "service_unavailable.html", context, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
