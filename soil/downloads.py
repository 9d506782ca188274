"""Downloads: a record in the soil cache that ties a task's progress to the file it produces.

A download is saved as JSON under an unguessable id with an expiry. The subclasses say
where the bytes live: in the cache (CachedDownload), on a local path (FileDownload), in a
Django storage (BlobDownload), or, for MultipleTaskDownload, which tasks make it up.
"""
import json
import mimetypes
import os
import secrets
import time

from celery import current_app
from celery.backends.base import BaseKeyValueStoreBackend
from celery.result import AsyncResult, GroupResult
from django.core.cache import caches
from django.core.files.storage import storages
from django.http import Http404, JsonResponse
from django.urls import reverse

from . import http, recent, serving
from .conf import soil_conf
from .progress import TaskRecord, get_task_status, set_task_progress

DOWNLOAD_KEY = "soil:download:{}"
PAYLOAD_KEY = "soil:payload:{}"
TASK_DOWNLOAD_KEY = "soil:task-download:{}"


def soil_cache():
    return caches[soil_conf.CACHE]


def expiry_seconds(expiry):
    """Seconds a download lives: `expiry` when given and positive, else SOIL_DEFAULT_EXPIRY."""
    return int(expiry) if expiry and int(expiry) > 0 else soil_conf.DEFAULT_EXPIRY


def new_download_id():
    """128 random bits, hex encoded."""
    return secrets.token_hex(16)


def download_id_for_task(task_id):
    """The id of the download that tracks `task_id`, if one was saved with set_task()."""
    if not task_id:
        return None
    return soil_cache().get(TASK_DOWNLOAD_KEY.format(task_id))


class DownloadBase:
    """A download in progress or ready. The base class has no file: it tracks a task."""

    kind = "base"
    is_multiple = False

    def __init__(self, mimetype="application/octet-stream", filename=None, download_id=None,
                 extras=None, task_id=None, owner_ids=None, message=None, expires_at=None,
                 content_disposition=None):
        self.download_id = download_id or new_download_id()
        self.mimetype = mimetype
        self.filename = http.clean_filename(
            filename or http.filename_from_disposition(content_disposition) or "download"
        )
        self.extras = extras or {}
        self.task_id = task_id
        # None: staff only (SOIL_OWNERLESS_DOWNLOADS); a list: only those users (empty: nobody).
        self.owner_ids = [str(owner) for owner in owner_ids] if owner_ids is not None else None
        self.message = message or ""
        self.expires_at = expires_at

    # --- persistence
    def to_dict(self):
        return {
            "kind": self.kind,
            "download_id": self.download_id,
            "mimetype": self.mimetype,
            "filename": self.filename,
            "extras": self.extras,
            "task_id": self.task_id,
            "owner_ids": self.owner_ids,
            "message": self.message,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data):
        data = dict(data)
        data.pop("kind", None)
        return cls(**data)

    @classmethod
    def get(cls, download_id):
        """The saved download with this id, of its own subclass; None if unknown or expired."""
        if not download_id:
            return None
        return cls.from_record(soil_cache().get(DOWNLOAD_KEY.format(download_id)))

    @staticmethod
    def from_record(raw):
        """The download a stored record describes (None for None), of its own subclass."""
        if raw is None:
            return None
        data = json.loads(raw)
        return DOWNLOAD_KINDS.get(data.get("kind"), DownloadBase).from_dict(data)

    def save(self, expiry=None):
        expiry = expiry_seconds(expiry)
        self.expires_at = time.time() + expiry
        cache = soil_cache()
        cache.set(DOWNLOAD_KEY.format(self.download_id), json.dumps(self.to_dict()), timeout=expiry)
        recent.forget(self.download_id)
        if self.task_id:
            cache.set(TASK_DOWNLOAD_KEY.format(self.task_id), self.download_id, timeout=expiry)
        return self

    def delete(self):
        soil_cache().delete(DOWNLOAD_KEY.format(self.download_id))
        recent.forget(self.download_id)

    # --- the task
    def set_task(self, task, expiry=None):
        """Track `task` (an AsyncResult) and save."""
        self.task_id = task.id
        return self.save(expiry)

    @property
    def task(self):
        return AsyncResult(self.task_id) if self.task_id else None

    def get_status(self):
        return get_task_status(self._task_to_read(), is_multiple_download_task=self.is_multiple)

    def _task_to_read(self):
        """`task`; or, where the record is read by key (Redis) and `task` is this class's own, the
        lighter soil.progress.TaskRecord of the same id and backend."""
        if self.task_id and type(self).task is DownloadBase.task:
            backend = current_app.backend
            if isinstance(backend, BaseKeyValueStoreBackend):
                return TaskRecord(self.task_id, backend)
        return self.task

    def get_progress(self):
        """The TaskProgress of the task (or group) behind this download."""
        return self.get_status().progress

    @classmethod
    def set_progress(cls, task, current, total, message=None):
        """Report progress from inside `task`; a harmless no-op outside a task."""
        set_task_progress(task, current, total, message=message)

    # --- access and serving
    def is_owner(self, user):
        """soil's owner rule: a listed owner; a download saved without owner_ids is for staff only,
        or for any logged-in user with SOIL_OWNERLESS_DOWNLOADS = "authenticated" (see soil.conf).

        Views ask soil.access.can_access, which adds login and the project's own check.
        """
        if not (user and user.is_authenticated):
            return False
        if self.owner_ids is None:
            return soil_conf.ownerless_downloads == "authenticated" or bool(user.is_staff)
        return str(user.pk) in self.owner_ids

    @property
    def has_file(self):
        return False

    def toHttpResponse(self):  # noqa: N802 (the soil API's name)
        raise Http404("This download has no file.")

    def get_start_response(self):
        """The JSON a page gets back when it starts a task tracked by this download."""
        return JsonResponse({
            "download_id": self.download_id,
            "download_url": reverse("retrieve_download", args=[self.download_id]),
            "poll_url": reverse("ajax_job_poll", args=[self.download_id]),
            "status_url": reverse("download_status", args=[self.download_id]),
            "message": self.message,
            "is_poll_successful": True,
        })


class CachedDownload(DownloadBase):
    """Bytes kept in the soil cache next to the record; for small and medium files."""

    kind = "cached"

    @classmethod
    def create(cls, payload, expiry, **kwargs):
        if hasattr(payload, "read"):
            payload = payload.read()
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        download = cls(**kwargs)
        soil_cache().set(PAYLOAD_KEY.format(download.download_id), bytes(payload), timeout=expiry_seconds(expiry))
        return download.save(expiry)

    def get_payload(self):
        return soil_cache().get(PAYLOAD_KEY.format(self.download_id))

    @property
    def has_file(self):
        return soil_cache().has_key(PAYLOAD_KEY.format(self.download_id))

    def delete(self):
        soil_cache().delete(PAYLOAD_KEY.format(self.download_id))
        super().delete()

    def toHttpResponse(self):  # noqa: N802
        return serving.serve_payload(self.get_payload(), self.filename, self.mimetype)


class FileDownload(DownloadBase):
    """A file on a local path that every web process can read."""

    kind = "file"

    def __init__(self, path=None, **kwargs):
        super().__init__(**kwargs)
        self.path = str(path) if path else None

    def to_dict(self):
        return {**super().to_dict(), "path": self.path}

    @property
    def has_file(self):
        return bool(self.path) and os.path.isfile(self.path)

    def toHttpResponse(self):  # noqa: N802
        return serving.serve_local_file(self.path, self.filename, self.mimetype)


class BlobDownload(DownloadBase):
    """A key in a Django storage, so a local folder and S3 work alike.

    Storages that can sign URLs (S3) answer with a redirect to a short-lived URL that
    carries the file name; the others are streamed through the web process (soil.serving).
    """

    kind = "blob"

    def __init__(self, identifier=None, storage_alias=None, **kwargs):
        super().__init__(**kwargs)
        self.identifier = identifier
        self.storage_alias = storage_alias or soil_conf.STORAGE

    def to_dict(self):
        return {**super().to_dict(), "identifier": self.identifier, "storage_alias": self.storage_alias}

    @property
    def storage(self):
        return storages[self.storage_alias]

    @property
    def has_file(self):
        return bool(self.identifier) and self.storage.exists(self.identifier)

    def toHttpResponse(self):  # noqa: N802
        return serving.serve_storage_key(self.identifier, self.filename, self.mimetype, self.storage_alias)


class MultipleTaskDownload(DownloadBase):
    """A download made by a group of tasks; progress is the share of them that finished."""

    kind = "multiple"
    is_multiple = True

    def set_task(self, task, expiry=None):
        task.save()  # a GroupResult is restorable only once saved in the result backend
        return super().set_task(task, expiry)

    @property
    def task(self):
        return GroupResult.restore(self.task_id) if self.task_id else None


DOWNLOAD_KINDS = {klass.kind: klass for klass in
                  (DownloadBase, CachedDownload, FileDownload, BlobDownload, MultipleTaskDownload)}


def extension_of(name):
    """".csv" for "/a.b/report.csv", "" for "/a.b/report"."""
    return os.path.splitext(os.path.basename(str(name)))[1]


def guess_mimetype(file_extension):
    mimetype, _ = mimetypes.guess_type(f"download{file_extension or ''}")
    return mimetype or "application/octet-stream"
