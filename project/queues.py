"""Every Celery queue, its purpose, its target time-to-start and its time limits, in one table.

Tasks name their queue explicitly, and Celery knows only these queues (a task sent to any other
raises at once). Each queue belongs to a worker group, by how people wait for its tasks:
`interactive` (someone watches a progress bar) or `batch` (nobody waits). Each group runs as its
own worker command with its own concurrency, tasks per child and prefetch (WORKER_GROUPS below;
`python manage.py queues --worker GROUP` prints its arguments); see docs/operations.md.

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
        "group": "interactive",
        "target_seconds_to_start": 30,
        "soft_time_limit": 30 * MINUTE,
        "time_limit": 31 * MINUTE,
    },
    "email_queue": {
        "purpose": "outgoing email such as 'your export is ready'",
        "group": "interactive",
        "target_seconds_to_start": 30,
        "soft_time_limit": MINUTE,
        "time_limit": 2 * MINUTE,
    },
    "celery": {
        "purpose": "default queue for short tasks that name no other",
        "group": "interactive",
        "target_seconds_to_start": 60,
        "soft_time_limit": 10 * MINUTE,
        "time_limit": 11 * MINUTE,
    },
    "celery_periodic": {
        "purpose": "beat-driven housekeeping: heartbeat, cleanup, the nightly dispatcher",
        "group": "batch",
        "target_seconds_to_start": 60,
        "soft_time_limit": 5 * MINUTE,
        "time_limit": 6 * MINUTE,
    },
    "background_queue": {
        "purpose": "work nobody waits for: serial tasks, maintenance",
        "group": "batch",
        "target_seconds_to_start": 15 * 60,
        "soft_time_limit": HOUR,
        "time_limit": HOUR + 5 * MINUTE,
    },
    "saved_exports_queue": {
        "purpose": "nightly rebuilds of saved exports, spread over the day",
        "group": "batch",
        "target_seconds_to_start": 6 * 60 * 60,
        "soft_time_limit": 3 * HOUR,
        "time_limit": 3 * HOUR + 5 * MINUTE,
    },
    "demo_queue": {
        "purpose": "the demo task that staff start from /demo/, kept off the export workers",
        "group": "batch",
        "target_seconds_to_start": 60,
        "soft_time_limit": 11 * MINUTE,
        "time_limit": 12 * MINUTE,
    },
}

DEFAULT_QUEUE = "celery"
DEFAULT_GROUP = "interactive"  # for a queue whose row names no group

# Worker options per group, each overridable by WORKER_<GROUP>_CONCURRENCY, _MAX_TASKS_PER_CHILD and
# _PREFETCH_MULTIPLIER. Interactive tasks are short and many: more processes, fresh ones less often.
# Batch tasks are long and memory-hungry: a new process after a few builds.
WORKER_GROUPS = {
    "interactive": {"concurrency": 2, "max_tasks_per_child": 100, "prefetch_multiplier": 1},
    "batch": {"concurrency": 2, "max_tasks_per_child": 10, "prefetch_multiplier": 1},
}


def queues_of_group(group, queues=QUEUES):
    """The names of the queues that the group's workers consume, in table order."""
    if group not in WORKER_GROUPS:
        raise ValueError(f"Unknown worker group {group!r}; the groups are {', '.join(WORKER_GROUPS)}.")
    return [name for name, row in queues.items() if row.get("group", DEFAULT_GROUP) == group]


def worker_options(group):
    """The group's worker options, each overridable from the environment."""
    prefix = f"WORKER_{group.upper()}_"
    return {option: env_int(prefix + option.upper(), default) for option, default in WORKER_GROUPS[group].items()}


def worker_arguments(group):
    """`celery worker` arguments for one group: its queues, options and node name."""
    options = worker_options(group)
    return ["-Q", ",".join(queues_of_group(group)), "-n", f"{group}@%h",
            "--concurrency", str(options["concurrency"]),
            "--max-tasks-per-child", str(options["max_tasks_per_child"]),
            "--prefetch-multiplier", str(options["prefetch_multiplier"])]


def targets(queues=QUEUES):
    """{queue: target seconds to start}, each overridable by <QUEUE>_TARGET_SECONDS_TO_START."""
    return {name: env_int(f"{name.upper()}_TARGET_SECONDS_TO_START", row["target_seconds_to_start"])
            for name, row in queues.items()}


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
