from django.apps import AppConfig


class SoilConfig(AppConfig):
    name = "soil"
    verbose_name = "Soil: task progress and downloads"

    def ready(self):
        from . import signals  # noqa: F401  (connects the Celery signal handlers)
