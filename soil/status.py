"""The one JSON shape that the status endpoint, the poll partial and the page's script share."""
from django.urls import reverse

from .exceptions import TaskFailedError
from .heartbeat import is_alive
from .util import get_download_context


def download_status(download_id):
    """Every state of a download (missing, not_started, started, success, failed) in one shape."""
    try:
        context = get_download_context(download_id)
    except TaskFailedError as exc:
        return {
            "download_id": download_id,
            "state": "failed",
            "percent": 0,
            "current": None,
            "total": None,
            "message": str(exc),
            "eta_seconds": None,
            "errors": [str(error) for error in exc.errors] or ["The task failed."],
            "is_ready": False,
            "has_file": False,
            "download_url": None,
            "is_alive": is_alive(),
        }
    status, progress = context["task_status"], context["progress"]
    is_ready = context["is_ready"]
    has_file = context["has_file"]
    state = "success" if is_ready else status.state_name
    return {
        "download_id": download_id,
        "state": state,
        "percent": 100 if is_ready else (progress.percent or 0),
        "current": progress.current,
        "total": progress.total,
        "message": progress.message or context["message"] or "",
        "eta_seconds": 0 if is_ready else progress.eta_seconds,
        "errors": [],
        "is_ready": is_ready,
        "has_file": has_file,
        "download_url": retrieve_url(download_id) + "?get_file" if has_file and is_ready else None,
        "is_alive": context["is_alive"],
    }


def retrieve_url(download_id):
    return reverse("retrieve_download", args=[download_id])
