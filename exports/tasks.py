"""Celery tasks of the export service: thin wrappers around exports.runs.services, exports.runs.reaper and
exports.admin.changelist_export."""
import functools
import logging

from celery import states
from celery.exceptions import Ignore, SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_failure, worker_ready
from django.utils import timezone, translation
from django.utils.translation import gettext

from exports.admin import changelist_export
from exports.conf import exports_conf
from exports.files import tempfiles
from exports.files.export_file import ExportCancelled
from exports.files.storage import sweep_partial_files
from exports.formatting import ROWS_PROGRESS
from exports.runs import access, lifecycle, partitioned_builds, queueing, reaper, selectors, services, words
from exports.saved import services as saved_exports
from exports.writers import get_writer
from soil.decorators import periodic_task, serial_task, task
from soil.downloads import download_id_for_task
from soil.progress import TaskProgressManager, update_task_state
from soil.util import expose_blob_download

log = logging.getLogger(__name__)


def in_run_language(run_id_of):
    """Run the task in the language of its run (`run_id_of(*args)` names the run): the words it writes."""
    def decorate(func):
        @functools.wraps(func)
        def in_language(*args, **kwargs):
            with translation.override(selectors.run_language(run_id_of(*args, **kwargs))):
                return func(*args, **kwargs)
        return in_language
    return decorate


def first_argument(*args, **kwargs):
    return args[0] if args else kwargs.get("run_id")


def second_argument(*args, **kwargs):
    return args[1] if len(args) > 1 else kwargs.get("run_id")


@task(queue="export_download_queue", acks_late=True)
@in_run_language(first_argument)
def run_export(run_id):
    """Build a user's export, reporting "12,000 of 250,000 rows" as it goes; a big one is built in parts."""
    lease = lifecycle.start(run_id, run_export.request.id, returned_by_broker=queueing.returned_by_broker(run_export))
    if lease is None:
        log.info("Export run %s: message %s has nothing to build", run_id, run_export.request.id)
        return {"built": False}
    # An admin export (exports.admin.actions) reads the changelist's rows; it is never built in parts.
    is_admin_export = selectors.is_admin_export(run_id)
    if not is_admin_export and partitioned_builds.start(lease, time_limit=run_export.soft_time_limit):
        # The parts report on this task's record (exports.files.partitions.PartProgress): keep it as it is.
        raise Ignore()
    build = changelist_export.build_run if is_admin_export else services.build_definition_run
    with TaskProgressManager(run_export, message_format=ROWS_PROGRESS) as progress:
        try:
            run = services.execute_run(run_id, run_export.request.id, progress=progress.set_progress,
                                       time_limit=run_export.soft_time_limit, lease=lease, build=build)
        except ExportCancelled:
            update_task_state(run_export, states.FAILURE, {"errors": [gettext("The export was cancelled.")]})
            raise Ignore() from None
    if run is None:
        return {"built": False}
    if run.notify_by_email:
        queueing.queue_ready_email(run)
    return {"built": True, "rows": run.rows, "bytes": run.bytes}


@task(queue="export_download_queue", acks_late=True)
@in_run_language(first_argument)
def build_export_part(run_id, lease_id, index, lower, upper, total, first_row=None, part_rows=None):
    """Write one key range of a partitioned export to a part file."""
    return partitioned_builds.build_part(run_id, lease_id, index, lower, upper, total,
                                         time_limit=build_export_part.soft_time_limit, first_row=first_row,
                                         part_rows=part_rows)


@task(queue="export_download_queue", acks_late=True)
@in_run_language(second_argument)
def assemble_export(part_results, run_id, lease_id):
    """Join the parts of a partitioned export into its file and hand it to the owner."""
    run = partitioned_builds.assemble(run_id, lease_id, part_results, time_limit=assemble_export.soft_time_limit)
    if run is None:
        return {"built": False}
    if run.notify_by_email:
        queueing.queue_ready_email(run)
    return {"built": True, "rows": run.rows, "bytes": run.bytes}


@task_failure.connect(sender=build_export_part, dispatch_uid="exports.part_killed_at_time_limit")
@task_failure.connect(sender=assemble_export, dispatch_uid="exports.assembly_killed_at_time_limit")
def fail_partitioned_run_killed_at_time_limit(sender=None, exception=None, args=(), **kwargs):
    """A part or the assembly was killed at the hard time limit: fail the run of its attempt in words."""
    if isinstance(exception, TimeLimitExceeded) and args:
        run_id, lease_id = (args[0], args[1]) if sender is build_export_part else (args[1], args[2])
        limit = int(exception.args[0]) if exception.args else sender.time_limit
        with translation.override(selectors.run_language(run_id)):
            lifecycle.fail(lifecycle.Lease(run_id, lease_id), words.time_limit_words(limit))


@task_failure.connect(sender=run_export, dispatch_uid="exports.run_killed_at_time_limit")
def fail_run_killed_at_time_limit(sender=None, task_id=None, exception=None, args=(), **kwargs):
    """The hard time limit killed the build: fail its run in words now instead of waiting for the reaper."""
    if isinstance(exception, TimeLimitExceeded) and args:
        limit = int(exception.args[0]) if exception.args else sender.time_limit
        with translation.override(selectors.run_language(args[0])):
            lifecycle.fail_active(args[0], words.time_limit_words(limit), task_id=task_id)


@worker_ready.connect(dispatch_uid="exports.sweep_at_worker_start")
def sweep_at_worker_start(**kwargs):
    """Files left by builds of processes that were killed: removed when a worker starts."""
    files, size = tempfiles.sweep_orphans()
    partial = sweep_partial_files()
    if files or partial:
        log.warning("Removed %d orphaned build files (%d bytes) and %d partial copies", files, size, partial)


@periodic_task(run_every=exports_conf.EXPORT_REAPER_INTERVAL, queue="celery_periodic")
def reap_stuck_exports():
    """Requeue or fail runs whose worker died or whose message was lost; sweep orphaned files."""
    return reaper.reap(timezone.now())


@task(queue="email_queue", acks_late=True)
@in_run_language(first_argument)
def send_export_ready_email(run_id):
    return services.send_ready_email(run_id)


@periodic_task(run_every=exports_conf.EXPORT_CLEANUP_INTERVAL, queue="celery_periodic")
def cleanup_expired_exports():
    """Delete expired export files and mark their runs expired."""
    return services.expire_runs()


@periodic_task(run_every=exports_conf.SAVED_EXPORTS_DISPATCH_INTERVAL, queue="celery_periodic")
def dispatch_saved_exports():
    """Queue the rebuild of every saved export whose local midnight has come."""
    return len(saved_exports.dispatch_due(timezone.now()))


@serial_task("saved-export-{saved_id}", timeout=exports_conf.SAVED_EXPORTS_LOCK_TTL, default_retry_delay=exports_conf.SAVED_EXPORTS_LOCK_TTL,
             max_retries=30, queue="saved_exports_queue", acks_late=True)
def rebuild_saved_export(saved_id):
    """Rebuild one saved export; never two runs of the same one at once."""
    with TaskProgressManager(rebuild_saved_export, message_format=ROWS_PROGRESS) as progress:
        saved = saved_exports.rebuild(saved_id, progress=progress.set_progress)
    if download_id_for_task(rebuild_saved_export.request.id):
        # Started with "Rebuild now": hand the new file to the page that is watching.
        writer_class = get_writer(saved.definition.format)
        expose_blob_download(saved.file_key, 60 * 60, file_extension=writer_class.file_extension,
                             mimetype=writer_class.mimetype, content_disposition=saved.filename,
                             storage_alias=exports_conf.EXPORTS_STORAGE)
    return {"rows": saved.rows, "bytes": saved.bytes}


@task(queue="export_download_queue", acks_late=True)
def export_admin_changelist(site_name, model_label, query, pks, user_id, format_name, fields, name, max_rows=None):
    """Export an admin changelist (exports.admin.actions) for the user who asked; every argument is JSON.

    The queryset is rebuilt through the ModelAdmin as that user (exports.admin.changelist_export). A refusal
    or any failure ends the task in words on the progress page; a rerun just writes a new file.
    """
    this = export_admin_changelist
    with TaskProgressManager(this, message_format=ROWS_PROGRESS) as progress:
        try:
            built = changelist_export.build_export(site_name, model_label, query, pks, user_id, format_name, fields,
                                                   name, progress=progress.set_progress, max_rows=max_rows)
        except Exception as exc:  # noqa: BLE001 (every failure ends in words on the progress page)
            if not isinstance(exc, (changelist_export.ChangelistExportError, SoftTimeLimitExceeded)):
                log.exception("Admin changelist export of %s failed", model_label)
            words = changelist_export.failure_words(exc, this.soft_time_limit)
            update_task_state(this, states.FAILURE, {"errors": [words]})
            raise Ignore() from None
    # The file is served only while its owner still has the rights it was made with (exports.runs.access).
    expose_blob_download(built.key, exports_conf.EXPORT_FILE_EXPIRY, file_extension=built.file_extension,
                         mimetype=built.mimetype, content_disposition=built.filename,
                         storage_alias=exports_conf.EXPORTS_STORAGE,
                         extras=access.admin_export_extras(model_label, built.domains))
    return {"rows": built.rows, "bytes": built.bytes}


@periodic_task(run_every=exports_conf.EXPORT_CLEANUP_INTERVAL, queue="celery_periodic")
def cleanup_admin_changelist_exports():
    """Delete admin changelist exports whose download has expired."""
    return changelist_export.sweep_expired()
