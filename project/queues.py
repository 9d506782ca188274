"""Every Celery queue, its purpose, its target time-to-start and its time limits, in one table.

Tasks name their queue explicitly; workers are started with the names below
(`python manage.py queues`). Operators scale by giving the slow queues their own
workers; see docs/operations.md.

`soft_time_limit` (seconds) raises SoftTimeLimitExceeded inside the task, which ends it in words;
the hard `time_limit` kills the process. Each can be overridden from the environment, e.g.
EXPORT_DOWNLOAD_QUEUE_SOFT_TIME_LIMIT=600 and EXPORT_DOWNLOAD_QUEUE_TIME_LIMIT=660 (a soft limit of
0 means none). The limits travel in each message from the process that sends it: set them alike on
web, beat and worker processes.
"""
from .env import env_int

MINUTE, HOUR = 60, 60 * 60

QUEUES = {
    "export_download_queue": {
        "purpose": "user-started exports a person is waiting for",
        "target_seconds_to_start": 30,
        "soft_time_limit": 30 * MINUTE,
        "time_limit": 31 * MINUTE,
    },
    "email_queue": {
        "purpose": "outgoing email such as 'your export is ready'",
        "target_seconds_to_start": 30,
        "soft_time_limit": MINUTE,
        "time_limit": 2 * MINUTE,
    },
    "celery": {
        "purpose": "default queue for short tasks that name no other",
        "target_seconds_to_start": 60,
        "soft_time_limit": 10 * MINUTE,
        "time_limit": 11 * MINUTE,
    },
    "celery_periodic": {
        "purpose": "beat-driven housekeeping: heartbeat, cleanup, the nightly dispatcher",
        "target_seconds_to_start": 60,
        "soft_time_limit": 5 * MINUTE,
        "time_limit": 6 * MINUTE,
    },
    "background_queue": {
        "purpose": "work nobody waits for: serial tasks, maintenance",
        "target_seconds_to_start": 15 * 60,
        "soft_time_limit": HOUR,
        "time_limit": HOUR + 5 * MINUTE,
    },
    "saved_exports_queue": {
        "purpose": "nightly rebuilds of saved exports, spread over the day",
        "target_seconds_to_start": 6 * 60 * 60,
        "soft_time_limit": 3 * HOUR,
        "time_limit": 3 * HOUR + 5 * MINUTE,
    },
}

DEFAULT_QUEUE = "celery"


def time_limits(queues=QUEUES):
    """{queue: (soft, hard)} from the table, each overridable by <QUEUE>_SOFT_TIME_LIMIT / <QUEUE>_TIME_LIMIT."""
    limits = {}
    for name, row in queues.items():
        prefix = name.upper()
        soft = env_int(f"{prefix}_SOFT_TIME_LIMIT", row["soft_time_limit"]) or None  # 0: no soft limit
        hard = env_int(f"{prefix}_TIME_LIMIT", row["time_limit"])
        limits[name] = (soft, max(hard, soft or 0))  # Celery refuses a soft limit above the hard one
    return limits


class QueueTimeLimits:
    """A Celery task annotation: every task gets the time limits of the queue it names."""

    def __init__(self, limits):
        self.limits = limits

    def annotate(self, task):
        limits = self.limits.get(getattr(task, "queue", None) or DEFAULT_QUEUE)
        if limits is None:
            return None
        return {"soft_time_limit": limits[0], "time_limit": limits[1]}
