"""What the site keeps per user: API tokens and the chosen language.

Both tables were made by the exports app and keep their names (Meta.db_table): the move to this app
changed Django's idea of where the models live, not the database (migrations/0001_initial.py).
"""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class ApiToken(models.Model):
    """A key a script sends as `Authorization: Bearer <token>`; only its SHA-256 digest is stored.

    Tokens are long random strings, so a plain digest is enough: nothing to guess, and looking one up
    costs one indexed query instead of a password hash. Its scope says what it may do: read only, or
    also start, cancel, re-run and delete exports and rebuild saved exports.
    """

    class Scope(models.TextChoices):
        READ = "read", _("Read only: list and download")
        WRITE = "write", _("Read, and start, cancel, re-run and delete exports")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100,
                            help_text=_("What the token is for, e.g. 'nightly sync script'."))
    prefix = models.CharField(_("starts with"), max_length=12,
                              help_text=_("The token's first characters, to tell tokens apart."))
    digest = models.CharField(max_length=64, unique=True, editable=False)
    # Tokens made before scopes existed could do everything: they keep that (the default).
    scope = models.CharField(_("scope"), max_length=8, choices=Scope.choices, default=Scope.WRITE)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "exports_apitoken"
        ordering = ["-created_at"]
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def may_write(self):
        return self.scope == self.Scope.WRITE


class UserPreference(models.Model):
    """What a user chose for themselves. Read at login only (accounts.preferences), never per request."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="preference")
    language = models.CharField(_("language"), max_length=16, blank=True,
                                help_text=_("Applied at each login; empty: the browser's language."))

    class Meta:
        db_table = "exports_userpreference"
        verbose_name = _("user preference")
        verbose_name_plural = _("user preferences")

    def __str__(self):
        return f"{self.user}: {self.language or '-'}"
