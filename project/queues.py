"""Every Celery queue, its purpose and its target time-to-start, in one table.

Tasks name their queue explicitly; workers are started with the names below
(`python manage.py queues`). Operators scale by giving the slow queues their own
workers; see docs/operations.md.
"""

QUEUES = {
    "export_download_queue": {
        "purpose": "user-started exports a person is waiting for",
        "target_seconds_to_start": 30,
    },
    "email_queue": {
        "purpose": "outgoing email such as 'your export is ready'",
        "target_seconds_to_start": 30,
    },
    "celery": {
        "purpose": "default queue for short tasks that name no other",
        "target_seconds_to_start": 60,
    },
    "celery_periodic": {
        "purpose": "beat-driven housekeeping: heartbeat, cleanup, the nightly dispatcher",
        "target_seconds_to_start": 60,
    },
    "background_queue": {
        "purpose": "work nobody waits for: serial tasks, maintenance",
        "target_seconds_to_start": 15 * 60,
    },
    "saved_exports_queue": {
        "purpose": "nightly rebuilds of saved exports, spread over the day",
        "target_seconds_to_start": 6 * 60 * 60,
    },
}

DEFAULT_QUEUE = "celery"
