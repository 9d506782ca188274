"""Exceptions of the soil API, and how to tell that Redis cannot be reached."""
from django.utils.translation import gettext
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Redis down or frozen, as redis-py says it and as kombu says it when a task cannot be queued.
UNAVAILABLE_ERRORS = (RedisConnectionError, RedisTimeoutError, OperationalError)


def caused_by_unavailable_redis(exc, depth=5):
    """True if `exc`, or an exception it was raised from, says Redis cannot be reached.

    Celery re-raises a lost result store as RuntimeError("Retry limit exceeded ...") from the
    redis error, so the explicit causes are followed too.
    """
    while exc is not None and depth > 0:
        if isinstance(exc, UNAVAILABLE_ERRORS):
            return True
        exc, depth = exc.__cause__, depth - 1
    return False


class TaskFailedError(Exception):
    """A task ended in FAILURE; `.errors` is the list it reported (or its message)."""

    def __init__(self, errors=None):
        if errors is None:
            errors = []
        elif isinstance(errors, str):
            errors = [errors]
        self.errors = list(errors)
        super().__init__(self.errors)

    def __str__(self):
        return "; ".join(str(error) for error in self.errors) or gettext("The task failed.")
