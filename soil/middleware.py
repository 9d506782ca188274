"""soil's middleware: two classes, each optional, each named in docs/soil.md.

PollTokenMiddleware: a download page's status poll answered before the rest of the middleware.

A poll that carries a valid poll token (soil.poll_tokens) needs no session, no user, no CSRF check
and no message storage: the token settles who may read the status. Placed right after Django's
SecurityMiddleware, this answers such a poll at once with exactly the JSON status view's answer
(soil.views.status_json: same body, ETag, 304 and cache headers), with the request's language
active as LocaleMiddleware would make it. Anything else, including a token that does not settle it
(the user is no longer a listed owner) and an unreachable Redis (so that the site's own handling
answers), goes on through the middleware as usual.

    MIDDLEWARE = [
        "django.middleware.security.SecurityMiddleware",
        "soil.middleware.PollTokenMiddleware",
        ...
    ]

RangeRequestsMiddleware: range requests for soil's downloads, so a dropped download resumes where it
stopped (`curl -C -`, a browser's "Resume").

Django's FileResponse always sends the whole file. Every download soil serves, and every file an app
serves through soil.serving, comes from soil.http, which marks the responses whose bytes it can
slice; this middleware answers a single `Range: bytes=…` of those with 206 Partial Content (416 when
it starts past the end) and leaves every other response alone. Add it to MIDDLEWARE:

    "soil.middleware.RangeRequestsMiddleware",
"""
from urllib.parse import unquote

from django.urls import get_script_prefix, reverse
from django.utils import translation
from django.utils.cache import patch_vary_headers

from .exceptions import caused_by_unavailable_redis
from .http import ranged_response
from .poll_tokens import poll_token_user_id

PLACEHOLDER = "soil-download-id"


def query_token(query_string):
    """The last `t` of a query string, as request.GET["t"] reads it, without building a QueryDict."""
    if "t=" not in query_string:
        return None
    token = None
    for part in query_string.split("&"):
        if part.startswith("t="):
            token = unquote(part[2:].replace("+", " "))
    return token


class PollTokenMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self._affixes = None

    def __call__(self, request):
        token = request.method == "GET" and query_token(request.META.get("QUERY_STRING", ""))
        if token:
            download_id = self._status_download_id(request.path_info)
            if download_id is not None:
                response = self._answer(request, download_id, token)
                if response is not None:
                    return response
        return self.get_response(request)

    def _status_download_id(self, path_info):
        """The download id if `path_info` is soil's JSON status URL (download_status), else None."""
        if self._affixes is None:
            url = reverse("download_status", args=[PLACEHOLDER])
            prefix, _, suffix = url[len(get_script_prefix()) - 1:].partition(PLACEHOLDER)
            self._affixes = prefix, suffix
        prefix, suffix = self._affixes
        if not (path_info.startswith(prefix) and path_info.endswith(suffix)):
            return None
        download_id = path_info[len(prefix):len(path_info) - len(suffix)]
        return download_id if download_id and "/" not in download_id else None

    def _answer(self, request, download_id, token):
        from .views import token_status_response

        token_user_id = poll_token_user_id(token, download_id)
        if token_user_id is None:
            return None
        request.get_host()  # the Host header is checked as for any other request (400 if not allowed)
        language = translation.get_language_from_request(request)
        translation.activate(language)
        request.LANGUAGE_CODE = language
        try:
            response = token_status_response(request, download_id, token_user_id)
        except Exception as exc:
            if caused_by_unavailable_redis(exc):
                return None  # the view meets it again, and the site answers as it answers every page
            raise
        if response is not None:
            patch_vary_headers(response, ("Accept-Language",))
            response.headers.setdefault("Content-Language", language)
        return response


class RangeRequestsMiddleware:
    """A single byte range of a download soil serves answered with 206 (see the module)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return ranged_response(request, self.get_response(request))
