"""The status of a run for pages and scripts: the row decides the state; soil adds the live percentage.

Redis may lose the soil record or be down: the state, the error and the download link still come
from the row, and only the percentage goes missing.
"""
import logging

from celery.result import AsyncResult
from django.urls import reverse
from django.utils.translation import gettext

from soil.heartbeat import is_alive
from soil.progress import TaskProgress, get_task_progress
from soil.status import status_shape

from .models import ExportRun

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


def run_status(run):
    """soil's status shape for `run`, plus the run's own status and whether a cancel was asked."""
    status = run.display_status
    progress, alive = live_progress(run) if status == Status.RUNNING else (TaskProgress(), True)
    ready = status == Status.SUCCEEDED
    words = {Status.QUEUED: gettext("Waiting for a worker"), Status.EXPIRED: gettext("This export has expired; run it again.")}
    shape = status_shape(
        run.download_id,
        state=SOIL_STATE[status],
        percent=100 if ready else (progress.percent or 0),
        current=run.rows if ready else progress.current,
        total=run.rows if ready else progress.total,
        message=progress.message or words.get(status, ""),
        eta_seconds=progress.eta_seconds if status == Status.RUNNING else None,
        errors=[run.error] if status in (Status.FAILED, Status.CANCELLED) and run.error else (),
        is_ready=ready,
        has_file=ready,
        download_url=reverse("exports:download", args=[run.pk]) if ready else None,
        is_alive=alive,
    )
    return {**shape, "run_status": status, "run_status_display": str(Status(status).label),
            "cancel_requested": run.cancel_requested}
