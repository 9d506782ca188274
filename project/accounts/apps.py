from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "project.accounts"
    label = "accounts"
    verbose_name = _("Accounts")

    def ready(self):
        from project.accounts import preferences  # noqa: F401  (applies a user's stored language at login)
