"""Celery tasks of the export service: thin wrappers around exports.services."""
from celery import states
from celery.exceptions import Ignore
from django.conf import settings

from django.utils import timezone

from soil.decorators import periodic_task, serial_task, task
from soil.downloads import download_id_for_task
from soil.progress import TaskProgressManager, update_task_state
from soil.util import expose_blob_download

from . import saved_exports, services
from .building import ExportCancelled
from .models import ExportRun
from .writers import get_writer


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


@periodic_task(run_every=settings.SAVED_EXPORTS_DISPATCH_INTERVAL, queue="celery_periodic")
def dispatch_saved_exports():
    """Queue the rebuild of every saved export whose local midnight has come."""
    return len(saved_exports.dispatch_due(timezone.now(), rebuild_saved_export.delay))


@serial_task("saved-export-{saved_id}", timeout=settings.SAVED_EXPORTS_BUILD_TIMEOUT, default_retry_delay=60,
             max_retries=30, queue="saved_exports_queue", acks_late=True)
def rebuild_saved_export(saved_id):
    """Rebuild one saved export; never two runs of the same one at once."""
    with TaskProgressManager(rebuild_saved_export, message_format="{current:,} of {total:,} rows") as progress:
        saved = saved_exports.rebuild(saved_id, progress=progress.set_progress)
    if download_id_for_task(rebuild_saved_export.request.id):
        # Started with "Rebuild now": hand the new file to the page that is watching.
        writer_class = get_writer(saved.definition.format)
        expose_blob_download(saved.file_key, 60 * 60, file_extension=writer_class.file_extension,
                             mimetype=writer_class.mimetype, content_disposition=saved.filename,
                             storage_alias=settings.EXPORTS_STORAGE)
    return {"rows": saved.rows, "bytes": saved.bytes}
