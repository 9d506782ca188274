"""Sending the messages of the export service. Tasks are looked up by name, so services never import tasks.

A run's message goes through soil's start_download, under the run's own download id and task id,
once the current transaction commits. A message that cannot be sent (Redis down) fails the run in
words and raises the error again, so the page answers 503 and no run waits for a message that
never left.
"""
import logging

from celery import current_app
from django.conf import settings
from django.db import transaction

from soil.util import start_download

from exports.runs import lifecycle

log = logging.getLogger(__name__)
RUN_EXPORT = "exports.tasks.run_export"
SEND_READY_EMAIL = "exports.tasks.send_export_ready_email"
REBUILD_SAVED_EXPORT = "exports.tasks.rebuild_saved_export"
EXPORT_ADMIN_CHANGELIST = "exports.tasks.export_admin_changelist"


def task(name):
    """The registered Celery task called `name` (exports.apps imports exports.tasks in every process)."""
    return current_app.tasks[name]


def queue_run(run):
    """Send `run`'s message (for its current task id) once the transaction commits."""
    run_id, task_id = str(run.pk), run.task_id

    def send():
        try:
            start_download(task(RUN_EXPORT), args=[run_id], task_id=task_id,
                           download_id=run.download_id, owner_ids=[run.owner_id],
                           expiry=settings.EXPORT_FILE_EXPIRY, message=f"Export of {run.definition.name}")
        except Exception:
            log.exception("Could not queue export run %s", run_id)
            lifecycle.fail_active(run_id, lifecycle.UNAVAILABLE_WORDS, task_id=task_id)
            raise

    transaction.on_commit(send)


def queue_ready_email(run):
    run_id = str(run.pk)
    transaction.on_commit(lambda: task(SEND_READY_EMAIL).delay(run_id))


def queue_changelist_export(kwargs, owner_id, download_class, message):
    """Send an admin changelist export (JSON-safe `kwargs`) under a new soil download; returns the download."""
    return start_download(task(EXPORT_ADMIN_CHANGELIST), kwargs=kwargs, owner_ids=[owner_id],
                          expiry=settings.EXPORT_FILE_EXPIRY, download_class=download_class, message=message)
