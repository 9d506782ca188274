"""The Celery app, configured from Django settings (the CELERY_* names)."""
import math
import os

from celery import Celery

from .broker import is_rabbitmq

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")


class ProjectCelery(Celery):
    def send_task(self, *args, countdown=None, **kwargs):
        # On RabbitMQ's quorum queues a countdown travels by native delayed delivery, in whole seconds
        # (Celery refuses one under a second): a sub-second retry waits one second there.
        if countdown and 0 < countdown < 1 and is_rabbitmq(self.conf.broker_url):
            countdown = math.ceil(countdown)
        return super().send_task(*args, countdown=countdown, **kwargs)


app = ProjectCelery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from django.conf import settings  # noqa: E402

from . import monitoring  # noqa: E402

monitoring.connect_hooks(task_hooks=settings.MONITORING_TASK_HOOKS)  # in web, worker and beat alike
