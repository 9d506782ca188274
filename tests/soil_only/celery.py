"""The Celery app of the soil-only project, configured from its Django settings like any other."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.soil_only.settings")

app = Celery("tests.soil_only")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
