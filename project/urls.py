from django.contrib import admin
from django.urls import include, path

from . import health, metrics, throttling, views

urlpatterns = [
    path("", views.home, name="home"),
    path("demo/", views.demo, name="demo"),
    # Django's set_language (django.conf.urls.i18n), which also stores a logged-in user's choice.
    path("i18n/setlang/", views.set_language, name="set_language"),
    path("account/tokens/", views.api_tokens, name="api_tokens"),
    path("account/tokens/<int:token_id>/revoke/", views.revoke_api_token, name="revoke_api_token"),
    # Throttled versions of Django's views, ahead of the includes that hold the plain ones.
    path("accounts/login/", throttling.login, name="login"),
    path("accounts/password_reset/", throttling.password_reset, name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/login/", throttling.admin_login),
    path("admin/", admin.site.urls),
    path("downloads/", include("soil.urls")),
    path("exports/", include("exports.web.urls")),
    path("health/", health.live, name="health_live"),
    path("health/ready/", health.ready, name="health_ready"),
    path("metrics", metrics.metrics, name="metrics"),
]
