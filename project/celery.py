"""The Celery app, configured from Django settings (the CELERY_* names)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from django.conf import settings  # noqa: E402

from . import monitoring  # noqa: E402

monitoring.connect_hooks(task_hooks=settings.MONITORING_TASK_HOOKS)  # in web, worker and beat alike
