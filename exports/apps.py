from importlib import import_module

from django.apps import AppConfig
from django.conf import settings
from django.utils.translation import gettext_lazy as _


class ExportsConfig(AppConfig):
    name = "exports"
    verbose_name = _("Exports")

    def ready(self):
        from exports import (
            demo,  # noqa: F401  (registers the demo source, first in the registry)
            tasks,  # noqa: F401  (registers the tasks in every process: exports.runs.queueing sends them by name)
        )

        # Modules that register export sources (exports.sources.register), imported in every process.
        for module in getattr(settings, "EXPORT_SOURCE_MODULES", ()):
            import_module(module)
