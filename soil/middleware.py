"""Range requests for soil's downloads: a dropped download resumes where it stopped (`curl -C -`,
a browser's "Resume").

Django's FileResponse always sends the whole file. Every download soil serves, and every file an app
serves through soil.serving, comes from soil.http, which marks the responses whose bytes it can
slice; this middleware answers a single `Range: bytes=…` of those with 206 Partial Content (416 when
it starts past the end) and leaves every other response alone. Add it to MIDDLEWARE:

    "soil.middleware.RangeRequestsMiddleware",
"""
from .http import ranged_response


class RangeRequestsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return ranged_response(request, self.get_response(request))
