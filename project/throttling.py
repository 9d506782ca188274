"""Throttled login, admin login and password reset, and the 429 answer to any throttled request.

Failed logins are counted, not every login, so that people who type their password right are never
slowed down; password-reset requests are counted whatever their outcome, since each may send an email.
We use django-ratelimit rather than django-axes: its counters live in the Redis cache that every web
process shares (no database write per attempt), and one tool covers every case here, including
password resets and the API, where axes only watches failed logins.
"""
import functools

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import JsonResponse
from django.shortcuts import render

from exports.throttling import Throttled, check, client_address, count, hit

from .middleware import wants_json


def throttled_response(request, exc):
    """429 with Retry-After: JSON for the API, a page for people."""
    message = str(exc)
    if wants_json(request):
        response = JsonResponse({"error": message}, status=429)
    else:
        response = render(request, "throttled.html", {"message": message}, status=429)
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


def login_failures_guard(view):
    """Wrap a login view: refuse while the address or username has too many recent failures; count failures."""
    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if request.method != "POST":
            return view(request, *args, **kwargs)
        address = client_address(request)
        username = request.POST.get("username", "")[:150].lower()
        check(request, "login-address", address, settings.LOGIN_FAILURE_RATE_PER_ADDRESS)
        check(request, "login-username", username, settings.LOGIN_FAILURE_RATE_PER_USERNAME)
        response = view(request, *args, **kwargs)
        if not request.user.is_authenticated:  # the form was refused
            count(request, "login-address", address, settings.LOGIN_FAILURE_RATE_PER_ADDRESS)
            count(request, "login-username", username, settings.LOGIN_FAILURE_RATE_PER_USERNAME)
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


login = login_failures_guard(auth_views.LoginView.as_view())
password_reset = password_reset_guard(auth_views.PasswordResetView.as_view())
admin_login = login_failures_guard(admin.site.login)
