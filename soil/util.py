"""Helpers for task authors: hand back a file, read a download's state."""
import logging

from celery import current_task, uuid
from celery.result import AsyncResult
from django.db import transaction

from .downloads import (
    BlobDownload,
    CachedDownload,
    DownloadBase,
    FileDownload,
    download_id_for_task,
    extension_of,
    guess_mimetype,
)
from .exceptions import TaskFailedError
from .status import download_state

log = logging.getLogger(__name__)


def _download_fields(file_extension, mimetype, content_disposition, download_id, extras, owner_ids):
    """Fields for a new download, filling in what the download tracking this task already knows.

    Called inside a task without a download_id, the file goes to the download that set_task()
    tied to this task, so the page already polling it finds the file. Its owners carry over.
    """
    running_task_id = current_task.request.id if current_task else None
    download_id = download_id or download_id_for_task(running_task_id)
    existing = DownloadBase.get(download_id) if download_id else None
    if file_extension and not file_extension.startswith("."):
        file_extension = f".{file_extension}"
    fields = {
        "download_id": download_id,
        "mimetype": mimetype or guess_mimetype(file_extension),
        "content_disposition": content_disposition,
        "filename": None if content_disposition else f"download{file_extension or ''}",
        "extras": extras,
        "owner_ids": owner_ids,
        "task_id": running_task_id,
    }
    if existing is not None:
        fields["owner_ids"] = owner_ids if owner_ids is not None else existing.owner_ids
        fields["task_id"] = existing.task_id or running_task_id
        fields["message"] = existing.message
        fields["extras"] = extras if extras is not None else existing.extras
    return fields


def expose_cached_download(payload, expiry, file_extension, mimetype=None, content_disposition=None,
                           download_id=None, extras=None, owner_ids=None):
    """Keep `payload` (bytes, str or a binary file object) in the cache for `expiry` seconds."""
    fields = _download_fields(file_extension, mimetype, content_disposition, download_id, extras, owner_ids)
    return CachedDownload.create(payload, expiry, **fields)


def expose_file_download(path, expiry, file_extension=None, mimetype=None, content_disposition=None,
                         download_id=None, extras=None, owner_ids=None):
    """Serve the file at `path` (readable by the web processes) for `expiry` seconds."""
    if file_extension is None:
        file_extension = extension_of(path)
    fields = _download_fields(file_extension, mimetype, content_disposition, download_id, extras, owner_ids)
    return FileDownload(path=path, **fields).save(expiry)


def expose_blob_download(identifier, expiry, file_extension=None, mimetype=None, content_disposition=None,
                         download_id=None, extras=None, owner_ids=None, storage_alias=None):
    """Serve the object `identifier` of a Django storage (local folder or S3) for `expiry` seconds."""
    if file_extension is None:
        file_extension = extension_of(identifier)
    fields = _download_fields(file_extension, mimetype, content_disposition, download_id, extras, owner_ids)
    return BlobDownload(identifier=identifier, storage_alias=storage_alias, **fields).save(expiry)


def get_download_context(download_id, message=None, require_result=False):
    """The state of a download for your own views; raises TaskFailedError (with `.errors`) if its task failed.

    With `require_result`, `is_ready` also needs the task's result to be there (not None); a file
    exposed without a task then never reads ready. `custom_message` is `message` as given;
    `message` is that, else the task's progress message, else the download's.
    A thin view of soil.status.download_state, which soil's own views use without raising.
    """
    state = download_state(download_id)
    status = state.task_status
    if status.failed():
        raise TaskFailedError(state.errors)
    is_ready = state.is_ready and (status.result is not None or not require_result)
    return {
        "download_id": download_id,
        "result": status.result,
        "error": status.error,
        "is_ready": is_ready,
        "is_alive": state.is_alive,
        "progress": status.progress,
        "has_file": state.has_file,
        "message": message or state.message,
        "custom_message": message,
    }


def get_task(task_id):
    """The AsyncResult of `task_id`, to read its state with get_task_status."""
    return AsyncResult(task_id)


def start_download(task, args=(), kwargs=None, owner_ids=None, expiry=None, message=None,
                   download_class=DownloadBase, download_id=None, task_id=None, **apply_options):
    """Queue `task` once the current transaction commits; return a saved download that tracks it.

    The download is saved before the task is queued, so that even a task that runs at once
    (eager mode, an idle worker) finds it when it exposes its file. In eager mode a task that
    raises has its failure recorded for the download's page instead of escaping as a 500.
    Pass `download_id` and `task_id` to send a task again under a download that already exists.
    """
    download = download_class(owner_ids=owner_ids, message=message, task_id=task_id or uuid(),
                              download_id=download_id)
    download.save(expiry)

    def queue():
        try:
            task.apply_async(args=args, kwargs=kwargs or {}, task_id=download.task_id, **apply_options)
        except Exception as exc:
            if not task.app.conf.task_always_eager:
                raise
            log.exception("Eager task %s failed; its download page shows the error", task.name)
            task.backend.mark_as_failure(download.task_id, exc)

    transaction.on_commit(queue)
    return download
