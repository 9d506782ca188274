"""Task progress and status: every Celery state is mapped onto one of five soil STATES."""
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from celery import states as celery_states
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .exceptions import TaskFailedError

log = logging.getLogger(__name__)

# Set by soil's before_task_publish hook so that "queued, not started" differs from "never queued".
SENT = "SENT"
PROGRESS = "PROGRESS"


class STATES:
    missing = -1
    not_started = 0
    started = 1
    success = 2
    failed = 3


STATE_NAMES = {
    STATES.missing: "missing",
    STATES.not_started: "not_started",
    STATES.started: "started",
    STATES.success: "success",
    STATES.failed: "failed",
}


@dataclass
class TaskProgress:
    current: int | None = None
    total: int | None = None
    percent: int | None = None
    error: bool = False
    error_message: str = ""
    message: str = ""
    started_at: float | None = None
    updated_at: float | None = None

    @property
    def eta_seconds(self):
        """Seconds left at the rate observed between the first and the latest report."""
        if not (self.current and self.total and self.started_at and self.updated_at):
            return None
        elapsed = self.updated_at - self.started_at
        if elapsed <= 0 or self.current >= self.total:
            return 0 if self.current >= self.total else None
        return round(elapsed / self.current * (self.total - self.current))


@dataclass
class TaskStatus:
    result: Any
    error: Any
    state: int
    progress: TaskProgress = field(default_factory=TaskProgress)
    exception: BaseException | None = None

    def missing(self):
        return self.state == STATES.missing

    def not_started(self):
        return self.state == STATES.not_started

    def started(self):
        return self.state == STATES.started

    def success(self):
        return self.state == STATES.success

    def failed(self):
        return self.state == STATES.failed

    @property
    def state_name(self):
        return STATE_NAMES[self.state]


def _request_id(task):
    """The id of the running request of `task`, or None outside a task context."""
    request = getattr(task, "request", None)
    task_id = getattr(request, "id", None)
    if task_id is None or getattr(request, "called_directly", False):
        return None
    if getattr(request, "is_eager", False) and not task.app.conf.task_store_eager_result:
        return None
    return task_id


def update_task_state(task, state, meta):
    """Store `state` with `meta` for the running request of `task`; a no-op outside a task.

    For FAILURE, meta is completed with the exception fields Celery needs to rebuild
    it, so that `{'errors': [...]}` reads back as a TaskFailedError carrying those errors.
    """
    task_id = _request_id(task)
    if task_id is None:
        return
    if state == celery_states.FAILURE:
        meta = dict(meta or {})
        meta.setdefault("exc_type", TaskFailedError.__name__)
        meta.setdefault("exc_module", TaskFailedError.__module__)
        meta.setdefault("exc_message", [meta.get("errors", [])])
    task.update_state(task_id=task_id, state=state, meta=meta)


def set_task_progress(task, current, total, message=None):
    """Record `current` of `total` for the running request of `task`.

    Progress is advice for the page that polls: when the result backend cannot be reached
    (Redis restarting), the report is logged and dropped, and the task goes on.
    """
    if _request_id(task) is None:
        return
    now = time.time()
    request = task.request
    started_at = getattr(request, "soil_progress_started_at", None)
    if started_at is None:
        started_at = now
        request.soil_progress_started_at = now
    meta = {"current": current, "total": total, "started_at": started_at, "updated_at": now}
    if message:
        meta["message"] = message
    try:
        update_task_state(task, PROGRESS, meta)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("Progress %s/%s of task %s not recorded: %r", current, total, request.id, exc)


def _percent(current, total):
    if not total:
        return 100
    return max(0, min(100, int(current) * 100 // int(total)))


def get_task_progress(task):
    """The TaskProgress of an AsyncResult (or None)."""
    if task is None:
        return TaskProgress()
    try:
        info = task.info
    except (TypeError, ValueError) as exc:
        # Meta that cannot be turned back into an exception: report it instead of crashing.
        return TaskProgress(error=True, error_message=str(exc))
    if isinstance(info, BaseException):
        return TaskProgress(error=True, error_message=_error_text(info))
    if not isinstance(info, dict):
        return TaskProgress()
    current, total = info.get("current"), info.get("total")
    return TaskProgress(
        current=current,
        total=total,
        percent=None if current is None else _percent(current, total),
        message=info.get("message", ""),
        started_at=info.get("started_at"),
        updated_at=info.get("updated_at"),
    )


def _error_text(exc):
    if isinstance(exc, TaskFailedError):
        return "; ".join(str(e) for e in exc.errors)
    return str(exc) or type(exc).__name__


def get_task_status(task, is_multiple_download_task=False):
    """Map an AsyncResult (or GroupResult, for MultipleTaskDownload) to a TaskStatus."""
    if task is None:
        return TaskStatus(result=None, error=None, state=STATES.missing)
    if is_multiple_download_task:
        return _group_status(task)

    state = task.state
    progress = get_task_progress(task) if state == PROGRESS else TaskProgress()
    if state == celery_states.SUCCESS:
        result = task.result
        return TaskStatus(result=result, error=None, state=STATES.success, progress=TaskProgress(percent=100))
    if state == celery_states.FAILURE:
        exc = task.result
        if isinstance(exc, TaskFailedError):
            error = exc.errors
        else:
            error = _error_text(exc) if exc is not None else "The task failed."
        return TaskStatus(result=None, error=error, state=STATES.failed, exception=exc,
                          progress=TaskProgress(error=True, error_message=_error_text(exc) if exc else ""))
    if state == celery_states.REVOKED:
        return TaskStatus(result=None, error="The task was cancelled.", state=STATES.failed,
                          progress=TaskProgress(error=True, error_message="The task was cancelled."))
    if state in (PROGRESS, celery_states.STARTED, celery_states.RETRY):
        if progress.percent is None:
            progress.percent = 0
        return TaskStatus(result=None, error=None, state=STATES.started, progress=progress)
    if state in (SENT, celery_states.RECEIVED):
        return TaskStatus(result=None, error=None, state=STATES.not_started, progress=progress)
    # PENDING: Celery's word for "no record", which for us means nobody queued it.
    return TaskStatus(result=None, error=None, state=STATES.missing, progress=progress)


def _group_status(group):
    results = list(group.results or [])
    statuses = [get_task_status(r) for r in results]
    failed = [s for s in statuses if s.failed()]
    done = sum(1 for s in statuses if s.success())
    total = len(statuses)
    progress = TaskProgress(current=done, total=total, percent=_percent(done, total))
    if failed:
        errors = [s.error for s in failed]
        return TaskStatus(result=None, error=errors, state=STATES.failed, progress=progress,
                          exception=failed[0].exception)
    if total and done == total:
        return TaskStatus(result=[s.result for s in statuses], error=None, state=STATES.success,
                          progress=progress)
    if any(not s.missing() and not s.not_started() for s in statuses) or done:
        return TaskStatus(result=None, error=None, state=STATES.started, progress=progress)
    if any(s.not_started() for s in statuses):
        return TaskStatus(result=None, error=None, state=STATES.not_started, progress=progress)
    return TaskStatus(result=None, error=None, state=STATES.missing, progress=progress)


class TaskProgressManager:
    """Report progress, but write only when the quantised percentage changes.

        with TaskProgressManager(my_task, resolution=100) as progress:
            for i, row in enumerate(rows):
                progress.set_progress(i, len(rows))

    With resolution 100 a loop of any length makes at most 101 writes, plus one on exit.
    """

    def __init__(self, task, resolution=100, message_format=None):
        self.task = task
        self.resolution = resolution
        self.message_format = message_format
        self.current = 0
        self.total = 0
        self._last_step = None

    def _step(self, current, total):
        return self.resolution * current // total if total else self.resolution

    def set_progress(self, current, total):
        self.current, self.total = current, total
        step = self._step(current, total)
        if step != self._last_step:
            self._last_step = step
            self._write()

    def _write(self):
        message = self.message_format.format(current=self.current, total=self.total) if self.message_format else None
        set_task_progress(self.task, self.current, self.total, message=message)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._write()
        return False

