"""A user's chosen language: stored once, applied through Django's language cookie at login and when chosen.

Nothing here runs on an ordinary request: LocaleMiddleware takes a request's language from the
cookie, else from the browser's Accept-Language, so no page (nor the polled status endpoints) pays a
database read for it. The stored choice is read once per login and follows the user to a new browser.
"""
from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils import translation

from project.accounts.models import UserPreference


def is_offered(code):
    """Whether `code` is one of the languages of settings.LANGUAGES."""
    return code in dict(settings.LANGUAGES)


def stored_language(user):
    """The language `user` chose, or "" when they never chose one (or chose one no longer offered)."""
    code = UserPreference.objects.filter(user=user).values_list("language", flat=True).first() or ""
    return code if is_offered(code) else ""


def store_language(user, code):
    """Remember `code` as the language of `user`, to be applied at each of their logins."""
    if not is_offered(code):
        raise ValueError(f"Language {code!r} is not in settings.LANGUAGES")
    UserPreference.objects.update_or_create(user=user, defaults={"language": code})


def set_language_cookie(response, code):
    """The cookie LocaleMiddleware reads, set as Django's own set_language view sets it."""
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME, code,
        max_age=settings.LANGUAGE_COOKIE_AGE, path=settings.LANGUAGE_COOKIE_PATH,
        domain=settings.LANGUAGE_COOKIE_DOMAIN, secure=settings.LANGUAGE_COOKIE_SECURE,
        httponly=settings.LANGUAGE_COOKIE_HTTPONLY, samesite=settings.LANGUAGE_COOKIE_SAMESITE,
    )


@receiver(user_logged_in, dispatch_uid="accounts.apply_language_at_login")
def apply_language_at_login(sender, request, user, **kwargs):
    """At login, switch to the user's stored language; LoginLanguageMiddleware sets its cookie."""
    code = stored_language(user)
    if code and request is not None:
        translation.activate(code)
        request.language_chosen = code


class LoginLanguageMiddleware:
    """Sets the language cookie on the answer to a request that logged in a user with a stored language."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        code = getattr(request, "language_chosen", None)
        if code:
            set_language_cookie(response, code)
        return response
