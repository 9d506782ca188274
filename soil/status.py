"""A download's status: one function reads it, one JSON shape shows it.

`download_state` is the only place that turns a download record and its Celery task record into a
status; the JSON endpoint, the poll partial, the page and `soil.util.get_download_context` all use it.
A poll reads the record and the heartbeat in one MGET, then the task record; while the task runs,
the JSON poll reuses the record and heartbeat this process read a moment ago, and reads only the task.
"""
from dataclasses import dataclass
from typing import NamedTuple

from django.urls import reverse
from django.utils.translation import gettext

from . import recent
from .conf import soil_conf
from .downloads import DOWNLOAD_KEY, DownloadBase, soil_cache
from .heartbeat import HEARTBEAT_KEY, alive_since, last_heartbeat
from .progress import STATES, TaskStatus

NOT_READ = object()


@dataclass
class DownloadState:
    download_id: str
    download: DownloadBase | None
    task_status: TaskStatus
    has_file: bool
    is_ready: bool
    is_alive: bool

    @property
    def errors(self):
        """The task's errors as a list of strings (empty unless it failed)."""
        if not self.task_status.failed():
            return []
        error = self.task_status.error
        errors = error if isinstance(error, (list, tuple)) else [error]
        return [str(e) for e in errors if e is not None] or [gettext("The task failed.")]

    @property
    def running(self):
        return self.task_status.started() or self.task_status.not_started()

    @property
    def message(self):
        if self.task_status.failed():
            return "; ".join(self.errors)
        return self.task_status.progress.message or (self.download.message if self.download else "")


class Read(NamedTuple):
    download: DownloadBase | None
    last_beat: float | None
    reused: bool = False


def read_download(download_id, reuse=False):
    """The record and the heartbeat, read together in one round trip (MGET).

    With `reuse`, what this process read less than SOIL_STATUS_REUSE_SECONDS ago, if anything:
    for the JSON poll only, which reads afresh once the task is no longer running (soil.views).
    """
    if reuse and soil_conf.STATUS_REUSE_SECONDS > 0:
        recalled = recent.recall(download_id, soil_conf.STATUS_REUSE_SECONDS)
        if recalled is not None:
            return Read(*recalled, reused=True)
    key = DOWNLOAD_KEY.format(download_id)
    values = soil_cache().get_many([key, HEARTBEAT_KEY])
    download, last_beat = DownloadBase.from_record(values.get(key)), values.get(HEARTBEAT_KEY)
    if download is not None and soil_conf.STATUS_REUSE_SECONDS > 0:
        recent.remember(download_id, download, last_beat)
    return Read(download, last_beat)


def download_state(download_id, download=NOT_READ, last_beat=NOT_READ):
    """The state of a download, from its record and its task's record.

    Pass what the caller has already read (`download`, possibly None; `last_beat`) to save reads.
    """
    if download is NOT_READ:
        download, last_beat, _ = read_download(download_id)
    elif last_beat is NOT_READ:
        last_beat = last_heartbeat()
    task_status = download.get_status() if download is not None else TaskStatus(None, None, STATES.missing)
    if task_status.success() and type(download) is DownloadBase:
        # The record was read before the task's record: a quick task may have exposed its file and
        # finished in between, so the record read is the one from before the file. Read it again.
        download = DownloadBase.get(download_id) or download
    # A failed task's file (if any) is never offered, so it is not looked for.
    has_file = download is not None and not task_status.failed() and download.has_file
    # A file with no task record was exposed directly, or its task's result expired before the file.
    is_ready = task_status.success() or (task_status.missing() and has_file)
    return DownloadState(download_id, download, task_status, has_file, is_ready, alive_since(last_beat))


def download_status(download_id, download=NOT_READ, last_beat=NOT_READ):
    """Every state of a download (missing, not_started, started, success, failed) in one shape."""
    return status_of(download_state(download_id, download, last_beat))


def status_of(state):
    """The JSON shape of a DownloadState."""
    if state.task_status.failed():
        return status_shape(state.download_id, state="failed", percent=0, message=state.message,
                            errors=state.errors, is_alive=state.is_alive)
    progress, is_ready = state.task_status.progress, state.is_ready
    return status_shape(
        state.download_id,
        state="success" if is_ready else state.task_status.state_name,
        percent=100 if is_ready else (progress.percent or 0),
        current=progress.current,
        total=progress.total,
        message=state.message,
        eta_seconds=0 if is_ready else progress.eta_seconds,
        is_ready=is_ready,
        has_file=state.has_file,
        download_url=retrieve_url(state.download_id) + "?get_file" if state.has_file and is_ready else None,
        is_alive=state.is_alive,
    )


def status_shape(download_id, state, percent, message, is_alive, current=None, total=None, eta_seconds=None,
                 errors=(), is_ready=False, has_file=False, download_url=None):
    """The status JSON every client sees; apps that keep their own record of a task build theirs with it."""
    return {
        "download_id": download_id,
        "state": state,
        "percent": percent,
        "current": current,
        "total": total,
        "message": message,
        "eta_seconds": eta_seconds,
        "errors": list(errors),
        "is_ready": is_ready,
        "has_file": has_file,
        "download_url": download_url,
        "is_alive": is_alive,
    }


def retrieve_url(download_id):
    return reverse("retrieve_download", args=[download_id])
