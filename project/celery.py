"""The Celery app, configured from Django settings (the CELERY_* names)."""
import logging
import math
import os
import time

from celery import Celery

from .broker import is_rabbitmq

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
log = logging.getLogger(__name__)

# A message RabbitMQ refused (a negative publisher confirm) is sent again after these pauses, then the
# error stands. A quorum queue refuses while it has no leader: just after it is declared (the first
# messages a fresh node takes, several at once), or while a cluster elects a new one.
NACK_RETRY_PAUSES = (0.1, 0.3, 0.9)


def refused_by_broker(exc):
    """Whether `exc` (kombu wraps the broker's errors) comes from a negative publisher confirm."""
    from amqp.exceptions import MessageNacked

    while exc is not None:
        if isinstance(exc, MessageNacked):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class ProjectCelery(Celery):
    def send_task(self, name, *args, countdown=None, **kwargs):
        # On RabbitMQ's quorum queues a countdown travels by native delayed delivery, in whole seconds
        # (Celery refuses one under a second): a sub-second retry waits one second there.
        if countdown and 0 < countdown < 1 and is_rabbitmq(self.conf.broker_url):
            countdown = math.ceil(countdown)
        for pause in (*NACK_RETRY_PAUSES, None):
            try:
                return super().send_task(name, *args, countdown=countdown, **kwargs)
            except Exception as exc:
                if pause is None or not refused_by_broker(exc):
                    raise
                log.warning("RabbitMQ refused the message of %s; sending it again in %.1f s", name, pause)
                time.sleep(pause)


app = ProjectCelery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

from django.conf import settings  # noqa: E402

from . import monitoring  # noqa: E402

monitoring.connect_hooks(task_hooks=settings.MONITORING_TASK_HOOKS)  # in web, worker and beat alike
