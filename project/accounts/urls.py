"""The account pages, and throttled versions of Django's login and password-reset views.

Include these ahead of django.contrib.auth.urls and the admin's urls, which hold the plain views
at the same addresses.
"""
from django.urls import path

from . import views

urlpatterns = [
    # Django's set_language (django.conf.urls.i18n), which also stores a logged-in user's choice.
    path("i18n/setlang/", views.set_language, name="set_language"),
    path("account/tokens/", views.api_tokens, name="api_tokens"),
    path("account/tokens/<int:token_id>/revoke/", views.revoke_api_token, name="revoke_api_token"),
    path("accounts/login/", views.login, name="login"),
    path("accounts/password_reset/", views.password_reset, name="password_reset"),
    path("admin/login/", views.admin_login),
]
