from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path

from . import health, metrics, views


def favicon(request):
    """Pages name their icon; a browser that asks the old way, at /favicon.ico, is sent to it too."""
    return HttpResponsePermanentRedirect(static("project/favicon.svg"))


urlpatterns = [
    path("", include("exports.web.home_urls")),  # the home page is the user's exports
    path("demo/", views.demo, name="demo"),
    # The account pages, and throttled login and password reset: ahead of the includes that hold the plain views.
    path("", include("project.accounts.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("downloads/", include("soil.urls")),
    path("exports/", include("exports.web.urls")),
    path("api/v1/", include("exports.web.api_urls")),
    path("health/", health.live, name="health_live"),
    path("health/ready/", health.ready, name="health_ready"),
    path("metrics", metrics.metrics, name="metrics"),
    path("favicon.ico", favicon),
]
