"""Decorators that turn a function into a soil task: JSON messages, a named queue."""
import inspect
import logging
import threading
from functools import wraps

from celery import Task, current_app, shared_task, states
from redis.exceptions import LockError

from .conf import soil_conf
from .exceptions import TaskFailedError
from .redis_client import get_redis_client

log = logging.getLogger(__name__)


class SerialTaskBusy(RuntimeError):
    """A serial task gave up waiting for the run that holds its key."""


class SoilTask(Task):
    """Celery's Task, except that a FAILURE stored with the author's `{'errors': [...]}` also carries
    the fields Celery needs to rebuild it, so `AsyncResult.failed()` and `.result` work on it too
    (`.result` is a TaskFailedError whose `.errors` is the list). Soil itself reads the errors as given.
    """

    def update_state(self, task_id=None, state=None, meta=None, **kwargs):
        if state == states.FAILURE and isinstance(meta, dict) and "errors" in meta and "exc_type" not in meta:
            meta = {**meta, "exc_type": TaskFailedError.__name__, "exc_module": TaskFailedError.__module__,
                    "exc_message": [meta["errors"]]}
        super().update_state(task_id, state, meta, **kwargs)


def task(fn=None, *, queue=None, **options):
    """`@task` or `@task(queue="export_download_queue", ...)`: a Celery task with JSON messages.

    Without `queue`, SOIL_DEFAULT_QUEUE; if that is unset too, the task names no queue (soil.conf).
    """
    options.setdefault("serializer", "json")
    options.setdefault("base", SoilTask)

    def decorator(func):
        chosen = queue or soil_conf.queue("default")
        return shared_task(**({"queue": chosen} if chosen else {}), **options)(func)

    return decorator(fn) if fn is not None else decorator


def periodic_task(run_every, queue=None, options=None, **task_options):
    """A task that beat runs every `run_every` (seconds, a timedelta or a crontab), on `queue`, else
    SOIL_PERIODIC_QUEUE, else SOIL_DEFAULT_QUEUE, else Celery's routing (soil.conf).

    The entry is a default: with soil.beat.DefaultsDatabaseScheduler, beat copies it into the
    Django admin once, and what operators change there is kept across restarts.
    """
    def decorator(func):
        chosen = queue or soil_conf.queue("periodic")
        the_task = task(queue=chosen, **task_options)(func)
        current_app.conf.beat_schedule[the_task.name] = {
            "task": the_task.name,
            "schedule": run_every,
            "options": {**({"queue": chosen} if chosen else {}), **(options or {})},
        }
        return the_task

    return decorator


def serial_task(unique_key, default_retry_delay=30, timeout=5 * 60, max_retries=3,
                queue=None, **task_options):
    """A task of which at most one run per key is under way at once.

    `unique_key` is formatted with the call's arguments, by name or position
    ("{domain}-{export_id}" or "{0}"). A run that finds the key's Redis lock taken is retried
    after `default_retry_delay` seconds, at most `max_retries` times. The lock lives `timeout`
    seconds and is renewed while the run goes on, so a long run keeps it, and a worker that dies
    holding it blocks the key for no longer than `timeout`: keep that below
    `default_retry_delay * max_retries`, so that the retries outlast a dead holder. Without `queue`,
    SOIL_SERIAL_QUEUE, else SOIL_DEFAULT_QUEUE, else Celery's routing (soil.conf).
    """
    def decorator(func):
        signature = inspect.signature(func)

        @task(bind=True, queue=queue or soil_conf.queue("serial"), default_retry_delay=default_retry_delay,
              max_retries=max_retries, **task_options)
        @wraps(func)
        def _serial(self, *args, **kwargs):
            call = signature.bind(*args, **kwargs)
            call.apply_defaults()
            key = "soil:serial:" + unique_key.format(*call.args, **call.arguments)
            lock = get_redis_client().lock(key, timeout=timeout, thread_local=False)
            if not lock.acquire(blocking=False):
                if self.request.retries >= max_retries:
                    raise SerialTaskBusy(f"Another run of this task ({unique_key.format(*call.args, **call.arguments)}) "
                                         "was still in progress; try again later.")
                raise self.retry(countdown=default_retry_delay)
            with LockRenewer(lock, timeout):
                try:
                    return func(*args, **kwargs)
                finally:
                    try:
                        lock.release()
                    except LockError:
                        pass  # it expired (renewals failed, e.g. Redis was down); nothing left to release

        return _serial

    return decorator


class LockRenewer:
    """Renews a Redis lock to its full `ttl` every third of it, from a background thread, until exit."""

    def __init__(self, lock, ttl):
        self.lock, self.ttl = lock, ttl
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soil-lock-renewer", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=5)
        return False

    def _run(self):
        while not self._stop.wait(self.ttl / 3):
            try:
                self.lock.extend(self.ttl, replace_ttl=True)
            except LockError:
                return  # lost: it expired and may be someone else's now
            except Exception:  # noqa: BLE001 (Redis briefly away: try again at the next turn)
                log.warning("Could not renew the serial lock %s", self.lock.name, exc_info=True)
