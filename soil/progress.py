"""Task progress and status: every Celery state is mapped onto one of five soil STATES."""
import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from celery import current_app
from celery import states as celery_states
from celery.backends.base import BaseKeyValueStoreBackend
from celery.backends.redis import RedisBackend
from django.utils.translation import gettext
from redis import asyncio as aioredis
from redis.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
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
    """Store `state` with exactly `meta` for the running request of `task`; a no-op outside a task.

    This is `task.update_state(state=state, meta=meta)`, so a test may patch the task's update_state
    and assert that call. A FAILURE meta of `{'errors': [...]}` reads back as those errors
    (see status_from_meta); soil's task class also makes it restorable by Celery (soil.decorators).
    """
    if _request_id(task) is None:
        return
    task.update_state(state=state, meta=meta)


def set_task_progress(task, current, total, src="unknown", message=None):
    """Record `current` of `total` for the running request of `task`.

    `src` names the caller, as in CommCare's soil; it is not stored (every progress record has one
    shape, see `progress_meta`) and appears only in the log line of a dropped report. `message` is
    soil's own addition: words for the page, stored with the counts.

    Progress is advice for the page that polls: when the result backend cannot be reached
    (Redis restarting), the report is logged and dropped, and the task goes on.
    """
    if _request_id(task) is None:
        return
    request = task.request
    started_at = getattr(request, "soil_progress_started_at", None)
    meta = progress_meta(current, total, message, started_at)
    if started_at is None:
        request.soil_progress_started_at = meta["started_at"]
    try:
        update_task_state(task, PROGRESS, meta)
    except (RedisConnectionError, RedisTimeoutError) as exc:
        log.warning("Progress %s/%s of task %s not recorded (reported by %s): %r", current, total, request.id, src, exc)


def progress_meta(current, total, message=None, started_at=None, updated_at=None):
    """The one shape of a PROGRESS record: `current`, `total`, `started_at`, `updated_at`, and
    `message` when there is one. Times are Unix seconds; both default to now."""
    now = time.time()
    meta = {"current": current, "total": total,
            "started_at": started_at if started_at is not None else now,
            "updated_at": updated_at if updated_at is not None else now}
    if message:
        meta["message"] = str(message)
    return meta


def store_progress(task_id, current, total, message=None, started_at=None, updated_at=None):
    """Record progress for a task by its id, from any process: the record set_task_progress writes.

    For apps that report on a task they do not run themselves (the parts of a build that one task
    id stands for, say). It writes whatever state the task is in; write only while it runs, or a
    finished task reads as started again. Pass the same `started_at` (Unix seconds) at every report,
    so that the ETA is computed over the whole run; by default it is now. Unlike set_task_progress
    it raises when the result backend cannot be reached: the caller decides whether that matters.
    """
    current_app.backend.store_result(task_id, progress_meta(current, total, message, started_at, updated_at),
                                     PROGRESS)


class ProgressWatch:
    """Wakes whoever waits on it when a task's record is written: each write of the Redis result
    backend (progress, and every state Celery stores) is published on the record's own key as a
    channel, in the same round trip as the write. So the writer needs nothing more, and a page that
    waits here sees a report as soon as it is stored.

    `wait(timeout)` returns True on a write, False after `timeout` seconds without one. It also wakes
    on a message to any of `channels`, which other writers announce on (`announce(channel)`: e.g. a
    project's own record of the run, changed by someone other than the task). It is a hint
    to re-read, never the data: a message missed (Redis restarting, a watch opened after the write)
    only means the caller's next timed re-read finds the change. Without a Redis result backend, or
    when Redis cannot be reached, `wait` simply sleeps for `timeout`. One Redis connection per watch.
    """

    def __init__(self, task_id, channels=()):
        self.task_id = None
        self.channels = tuple(channels)
        self._pubsub = None
        self._backend = current_app.backend if isinstance(current_app.backend, RedisBackend) else None
        self.follow(task_id)

    def follow(self, task_id):
        """Watch `task_id` instead (a run queued again under a new task id); the channels stay."""
        if task_id == self.task_id:
            return
        previous, self.task_id = self.task_id, task_id
        if self._backend is None or not (task_id or self.channels):
            return
        try:
            if self._pubsub is None:
                self._pubsub = self._backend.client.pubsub(ignore_subscribe_messages=True)
                if self.channels:
                    self._pubsub.subscribe(*self.channels)
            elif previous:
                self._pubsub.unsubscribe(self._backend.get_key_for_task(previous))
            if task_id:
                self._pubsub.subscribe(self._backend.get_key_for_task(task_id))
        except (RedisConnectionError, RedisTimeoutError):
            log.warning("Not watching task %s for progress: Redis cannot be reached", task_id, exc_info=True)
            self.close()

    def wait(self, timeout):
        if self._pubsub is None:
            time.sleep(timeout)
            return False
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                if self._pubsub.get_message(timeout=left) is not None:
                    while self._pubsub.get_message(timeout=0) is not None:
                        pass  # several writes since: one wake is enough
                    return True
        except (RedisConnectionError, RedisTimeoutError):
            log.warning("Stopped watching task %s for progress: Redis cannot be reached", self.task_id)
            self.close()
            time.sleep(max(0.0, deadline - time.monotonic()))
        return False

    def close(self):
        if self._pubsub is not None:
            pubsub, self._pubsub = self._pubsub, None
            try:
                pubsub.close()
            except (RedisConnectionError, RedisTimeoutError):
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False


class AsyncProgressWatch:
    """ProgressWatch for an event loop (an ASGI stream): `await wait(timeout)`, `await follow(id)`,
    `await close()`; it waits on the loop, holding no thread."""

    # The connection settings redis-py's asyncio client shares with the sync one Celery made.
    _CONNECTION_KEYS = ("host", "port", "db", "username", "password", "socket_connect_timeout")

    def __init__(self, channels=()):
        self.task_id = None
        self.channels = tuple(channels)
        self._backend = current_app.backend if isinstance(current_app.backend, RedisBackend) else None
        self._client = self._pubsub = None

    async def follow(self, task_id):
        if task_id == self.task_id:
            return
        previous, self.task_id = self.task_id, task_id
        if self._backend is None or not (task_id or self.channels):
            return
        pool = self._backend.client.connection_pool
        if pool.connection_class is not Connection:
            return  # TLS, a socket path, Sentinel: wait by sleeping
        try:
            if self._pubsub is None:
                kwargs = {key: pool.connection_kwargs[key] for key in self._CONNECTION_KEYS
                          if key in pool.connection_kwargs}
                self._client = aioredis.Redis(**kwargs)
                self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                if self.channels:
                    await self._pubsub.subscribe(*self.channels)
            elif previous:
                await self._pubsub.unsubscribe(self._backend.get_key_for_task(previous))
            if task_id:
                await self._pubsub.subscribe(self._backend.get_key_for_task(task_id))
        except (RedisConnectionError, RedisTimeoutError, OSError):
            log.warning("Not watching task %s for progress: Redis cannot be reached", task_id, exc_info=True)
            await self.close()

    async def wait(self, timeout):
        if self._pubsub is None:
            await asyncio.sleep(timeout)
            return False
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                if await self._pubsub.get_message(timeout=left) is not None:
                    while await self._pubsub.get_message(timeout=0) is not None:
                        pass
                    return True
        except (RedisConnectionError, RedisTimeoutError, OSError):
            log.warning("Stopped watching task %s for progress: Redis cannot be reached", self.task_id)
            await self.close()
            await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        return False

    async def close(self):
        pubsub, client, self._pubsub, self._client = self._pubsub, self._client, None, None
        try:
            if pubsub is not None:
                await pubsub.aclose()
            if client is not None:
                await client.aclose()
        except (RedisConnectionError, RedisTimeoutError, OSError):
            pass


def watch_progress(task_id, channels=()):
    """A ProgressWatch on `task_id` (a context manager): `watch.wait(timeout)` returns early, True,
    when the task's progress or state is written, or when something is announced on `channels`."""
    return ProgressWatch(task_id, channels)


async def async_watch_progress(task_id, channels=()):
    """An AsyncProgressWatch on `task_id` and `channels`; close it with `await watch.close()`."""
    watch = AsyncProgressWatch(channels)
    await watch.follow(task_id)
    return watch


def announce(channel):
    """Wake the watches on `channel` (see ProgressWatch): True if Redis took the message.

    For writers other than the task (a cancel, a reaper, a project's own state) whose change a
    watching page should see now rather than at its next timed re-read. Best effort: when the result
    backend is not Redis, or Redis cannot be reached, nothing is sent and the watchers re-read on time.
    """
    backend = current_app.backend
    if not isinstance(backend, RedisBackend):
        return False
    try:
        backend.client.publish(channel, b"")
        return True
    except RedisError as exc:  # whatever Redis says, the change itself is made: it must not fail for this
        log.info("Not announced on %s: %r", channel, exc)
        return False


def _percent(current, total):
    if not total:
        return 100
    return max(0, min(100, int(current) * 100 // int(total)))


def read_task_meta(task):
    """The task record of `task` as stored, `{'status': ..., 'result': ...}`, or None.

    `task` is an AsyncResult or any object with its API. Where it has a key-value result backend
    (Redis), the record is read raw in one GET, so that a FAILURE whose meta is the author's
    `{'errors': [...]}` is not handed to Celery's exception rebuilding (which needs `exc_type`).
    Otherwise it is read through `task._get_task_meta()`, or `task.state` and `task.result`.
    """
    backend = getattr(task, "backend", None)
    task_id = getattr(task, "id", None)
    if isinstance(backend, BaseKeyValueStoreBackend) and task_id:
        raw = backend.get(backend.get_key_for_task(task_id))
        return backend.decode(raw) if raw else None
    get_task_meta = getattr(task, "_get_task_meta", None)
    meta = get_task_meta() if callable(get_task_meta) else None
    if isinstance(meta, dict) and meta.get("status"):
        return meta
    return {"status": task.state, "result": task.result}


class TaskRecord(NamedTuple):
    """A task as read_task_meta reads it from a key-value result backend: its id and that backend.

    Lighter than an AsyncResult, whose making and collection are about a tenth of a status poll's
    time (docs/performance.md, "Status poll"); soil.downloads reads its tasks' status through it.
    """
    id: str
    backend: Any


def get_task_progress(task):
    """The TaskProgress of an AsyncResult, or of any object with its API (see get_task_status)."""
    return get_task_status(task).progress


def get_task_status(task, is_multiple_download_task=False):
    """The TaskStatus of an AsyncResult (a GroupResult for a MultipleTaskDownload), or None.

    Any object with the AsyncResult API will do (`_get_task_meta()`, `state`, `result`, `failed()`,
    `successful()`): a test may pass a small stand-in (see read_task_meta).
    """
    if task is None:
        return TaskStatus(result=None, error=None, state=STATES.missing)
    if is_multiple_download_task:
        return _group_status(task)
    return status_from_meta(read_task_meta(task), getattr(task, "backend", None))


def status_from_meta(meta, backend=None):
    """The one mapping of a stored Celery task record (see read_task_meta) to a TaskStatus.

    PENDING (no record) is `missing`: soil's publish hook writes SENT for every task it queues.
    """
    state = (meta or {}).get("status", celery_states.PENDING)
    result = (meta or {}).get("result")
    if state == celery_states.PENDING and meta and _more_than_pending(meta):
        return TaskStatus(result=None, error=None, state=STATES.not_started)
    if state == celery_states.SUCCESS:
        return TaskStatus(result=result, error=None, state=STATES.success, progress=TaskProgress(percent=100))
    if state == celery_states.FAILURE:
        return _failure(result, backend)
    if state == celery_states.REVOKED:
        return _failed(gettext("The task was cancelled."))
    if state in (PROGRESS, celery_states.STARTED, celery_states.RETRY):
        progress = _progress(result) if state == PROGRESS else TaskProgress()
        if progress.percent is None:
            progress.percent = 0
        return TaskStatus(result=None, error=None, state=STATES.started, progress=progress)
    if state in (SENT, celery_states.RECEIVED):
        return TaskStatus(result=None, error=None, state=STATES.not_started)
    return TaskStatus(result=None, error=None, state=STATES.missing)


def _more_than_pending(meta):
    """A PENDING record that says more than "no record" (a name, arguments: Celery's extended
    results) belongs to a real task not yet started; CommCare's soil reads it so too."""
    return any(value not in (None, [], {}) for key, value in meta.items()
               if key not in ("status", "task_id", "result"))


def _progress(meta):
    if not isinstance(meta, dict):
        return TaskProgress()
    current, total = meta.get("current"), meta.get("total")
    return TaskProgress(
        current=current,
        total=total,
        percent=None if current is None else _percent(current, total),
        message=meta.get("message", ""),
        started_at=meta.get("started_at"),
        updated_at=meta.get("updated_at"),
    )


def _failed(error, exception=None, message=None):
    message = message if message is not None else error
    return TaskStatus(result=None, error=error, state=STATES.failed, exception=exception,
                      progress=TaskProgress(error=True, error_message=message))


def _failure(result, backend):
    """Error style 1 (the author's `{'errors': [...]}`) or style 2 (a raised exception)."""
    if isinstance(result, dict) and "errors" in result:
        errors = result["errors"]
        errors = [errors] if isinstance(errors, str) else list(errors or [])
        exc = TaskFailedError(errors)
        return _failed(errors, exception=exc, message=str(exc))
    if isinstance(result, BaseException):
        exc = result
    elif isinstance(result, dict) and result.get("exc_type") and backend is not None:
        exc = _rebuilt_exception(result, backend)
    else:
        return _failed(gettext("The task failed."))
    text = _error_text(exc)
    return _failed(text, exception=exc)


def _rebuilt_exception(result, backend):
    """The exception Celery stored, rebuilt; a record it refuses to rebuild becomes a plain error."""
    try:
        return backend.exception_to_python(result)
    except Exception:  # noqa: BLE001 (an unknown or unsafe type: keep its words, not its class)
        log.warning("Could not rebuild the stored exception %r", result.get("exc_type"), exc_info=True)
        message = result.get("exc_message")
        if isinstance(message, (list, tuple)):
            message = " ".join(str(part) for part in message)
        return RuntimeError(message or result.get("exc_type"))


def _error_text(exc):
    if isinstance(exc, TaskFailedError):
        return str(exc)
    return str(exc) or type(exc).__name__


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
    """Report progress, but write only when the quantised percentage changes, and once more on exit.

        with TaskProgressManager(my_task, src="my_report") as progress:
            for i, row in enumerate(rows):
                progress.set_progress(i, len(rows))

    With resolution 100 a loop of any length makes at most 101 writes, plus one on exit (none when
    the block raises, so that a failure is not overwritten). Each write is
    `set_task_progress(task, current=..., total=..., src=...)`, with `message=...` only when
    `message_format` (soil's addition, e.g. "{current:,} of {total:,} rows") gives one.
    `timedelta` is accepted for CommCare's callers and ignored: writes are limited by the percentage.
    """

    def __init__(self, task, src="unknown_via_progress_manager", timedelta=None, resolution=100,
                 message_format=None):
        self.task = task
        self.src = src
        self.timedelta = timedelta
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
        kwargs = {"current": self.current, "total": self.total, "src": self.src}
        if self.message_format:
            kwargs["message"] = self.message_format.format(current=self.current, total=self.total)
        set_task_progress(self.task, **kwargs)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self._write()
        return False
