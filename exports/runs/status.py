"""The status of a run for pages and scripts: the row decides the state; soil adds the live percentage.

Redis may lose the soil record or be down: the state, the error and the download link still come
from the row, and only the percentage goes missing.
"""
import logging

from celery.result import AsyncResult
from django.urls import reverse
from django.utils.translation import gettext

from exports.models import ExportRun
from exports.runs.words import CANCELLED_WORDS
from soil.heartbeat import is_alive
from soil.progress import TaskProgress, get_task_progress
from soil.status import status_shape

log = logging.getLogger(__name__)
Status = ExportRun.Status

SOIL_STATE = {
    Status.QUEUED: "not_started",
    Status.RUNNING: "started",
    Status.SUCCEEDED: "success",
    Status.FAILED: "failed",
    Status.CANCELLED: "failed",
    Status.EXPIRED: "missing",
}


def live_progress(run):
    """The percentage the build last reported to soil; empty when Redis has none or cannot say."""
    try:
        return get_task_progress(AsyncResult(run.task_id)), is_alive()
    except Exception:  # noqa: BLE001 (Redis down: the row still says enough)
        log.warning("No live progress for export run %s", run.pk, exc_info=True)
        return TaskProgress(message=gettext("Progress is unavailable for a moment.")), None


def progress_snapshot(current, total):
    """What the row keeps of where a build stopped: {"current", "total", "percent"}, or None when nothing was reported."""
    if current is None:
        return None
    percent = 100 if not total else max(0, min(100, int(current) * 100 // int(total)))
    return {"current": int(current), "total": int(total) if total is not None else None, "percent": percent}


def recorded_progress(task_id):
    """The snapshot of the progress soil holds for `task_id`, for a build that stopped elsewhere; None when
    Redis has none (the record was replaced by the failure, or lost) or cannot say."""
    try:
        progress = get_task_progress(AsyncResult(task_id))
    except Exception:  # noqa: BLE001 (Redis down: the run still fails, without its last percentage)
        log.warning("No progress recorded for task %s", task_id, exc_info=True)
        return None
    return progress_snapshot(progress.current, progress.total)


class ProgressRecorder:
    """Passes a build's progress reports on, and remembers the last for the row if the build stops."""

    def __init__(self, forward=None):
        self.forward = forward
        self.current = self.total = None

    def __call__(self, current, total):
        self.current, self.total = current, total
        if self.forward:
            self.forward(current, total)

    def snapshot(self):
        return progress_snapshot(self.current, self.total)


def stopped_progress(run):
    """TaskProgress of where a failed or cancelled run stopped, from its row; empty when it never said."""
    last = run.last_progress or {}
    if run.display_status not in (Status.FAILED, Status.CANCELLED) or last.get("percent") is None:
        return TaskProgress()
    return TaskProgress(current=last.get("current"), total=last.get("total"), percent=last["percent"])


def run_status(run):
    """soil's status shape for `run`, plus the run's own status and whether a cancel was asked.

    soil knows no cancelled state: a cancelled run is soil's "failed" with no error, its words in the
    message, and "run_status": "cancelled", which the run page shows in its own words and colour."""
    status = run.display_status
    progress, alive = live_progress(run) if status == Status.RUNNING else (stopped_progress(run), True)
    ready = status == Status.SUCCEEDED
    words = {Status.QUEUED: gettext("Waiting for a worker"), Status.EXPIRED: gettext("This export has expired; run it again.")}
    cancelled = status == Status.CANCELLED  # not a failure: its words are the message, not an error
    shape = status_shape(
        run.download_id,
        state=SOIL_STATE[status],
        percent=100 if ready else (progress.percent or 0),
        current=run.rows if ready else progress.current,
        total=run.rows if ready else progress.total,
        message=(run.error or str(CANCELLED_WORDS)) if cancelled else (progress.message or words.get(status, "")),
        eta_seconds=progress.eta_seconds if status == Status.RUNNING else None,
        errors=[run.error] if status == Status.FAILED and run.error else (),
        is_ready=ready,
        has_file=ready,
        download_url=reverse("exports:download", args=[run.pk]) if ready else None,
        is_alive=alive,
    )
    return {**shape, "run_status": status, "run_status_display": str(Status(status).label),
            "cancel_requested": run.cancel_requested}


def stopped_bar(status):
    """The status the run page draws its red bar from, where a failed or cancelled build stopped; None when
    the build never reported progress (or is not stopped). The error is on the page once already."""
    if status["run_status"] not in (Status.FAILED, Status.CANCELLED) or status["current"] is None:
        return None
    return {**status, "errors": [], "message": ""}
