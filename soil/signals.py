"""Celery signal handlers that soil relies on."""
from celery import current_app
from celery.signals import before_task_publish

from .progress import SENT


@before_task_publish.connect(dispatch_uid="soil.mark_task_sent")
def mark_task_sent(sender=None, headers=None, **kwargs):
    """Record SENT before the message leaves, so a queued task is "not started", not "missing".

    Before, not after: a fast worker could otherwise record STARTED first and be overwritten.
    """
    task_id = (headers or {}).get("id")
    if task_id:
        current_app.backend.store_result(task_id, None, SENT)
