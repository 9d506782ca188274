"""The one JSON shape that the status endpoint, the poll partial and the page's script share."""
from django.urls import reverse

from .exceptions import TaskFailedError
from .heartbeat import is_alive
from .util import get_download_context


def download_status(download_id, download=None):
    """Every state of a download (missing, not_started, started, success, failed) in one shape.

    Pass `download` when the caller has already read the record, to save a second read.
    """
    try:
        context = get_download_context(download_id, download=download)
    except TaskFailedError as exc:
        return status_shape(download_id, state="failed", percent=0, message=str(exc),
                      errors=[str(error) for error in exc.errors] or ["The task failed."], is_alive=is_alive())
    status, progress = context["task_status"], context["progress"]
    is_ready, has_file = context["is_ready"], context["has_file"]
    return status_shape(
        download_id,
        state="success" if is_ready else status.state_name,
        percent=100 if is_ready else (progress.percent or 0),
        current=progress.current,
        total=progress.total,
        message=progress.message or context["message"] or "",
        eta_seconds=0 if is_ready else progress.eta_seconds,
        is_ready=is_ready,
        has_file=has_file,
        download_url=retrieve_url(download_id) + "?get_file" if has_file and is_ready else None,
        is_alive=context["is_alive"],
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
