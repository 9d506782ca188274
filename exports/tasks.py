"""Celery tasks of the export service: thin wrappers around exports.services."""
from celery import states
from celery.exceptions import Ignore
from django.conf import settings

from soil.decorators import periodic_task, task
from soil.progress import TaskProgressManager, update_task_state

from . import services
from .building import ExportCancelled
from .models import ExportRun


@task(queue="export_download_queue", acks_late=True)
def run_export(run_id):
    """Build a user's export, reporting "12,000 of 250,000 rows" as it goes."""
    with TaskProgressManager(run_export, message_format="{current:,} of {total:,} rows") as progress:
        try:
            run = services.execute_run(run_id, progress=progress.set_progress)
        except ExportCancelled:
            update_task_state(run_export, states.FAILURE, {"errors": ["The export was cancelled."]})
            raise Ignore() from None
    if run.status == ExportRun.Status.SUCCEEDED and ExportRun.objects.filter(pk=run.pk, notify_by_email=True).exists():
        services.queue_ready_email(run)
    return {"rows": run.rows, "bytes": run.bytes}


@task(queue="email_queue", acks_late=True)
def send_export_ready_email(run_id):
    return services.send_ready_email(run_id)


@periodic_task(run_every=settings.EXPORT_CLEANUP_INTERVAL, queue="celery_periodic")
def cleanup_expired_exports():
    """Delete expired export files and mark their runs expired."""
    return services.expire_runs()
