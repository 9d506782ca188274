"""Sending the messages of the export service: the one module that sends its tasks, by name, so nothing
else imports or is handed a task (exports.apps imports exports.tasks in every process).

A run's message goes through soil's start_download, under the run's own download id and task id,
once the current transaction commits. A message that cannot be sent (Redis down) fails the run in
words and raises the error again, so the page answers 503 and no run waits for a message that
never left.
"""
import logging

from celery import chord, current_app
from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext

from exports.conf import exports_conf
from exports.runs import lifecycle, words
from soil.util import start_download

log = logging.getLogger(__name__)
RUN_EXPORT = "exports.tasks.run_export"
SEND_READY_EMAIL = "exports.tasks.send_export_ready_email"
REBUILD_SAVED_EXPORT = "exports.tasks.rebuild_saved_export"
EXPORT_ADMIN_CHANGELIST = "exports.tasks.export_admin_changelist"
BUILD_EXPORT_PART = "exports.tasks.build_export_part"
ASSEMBLE_EXPORT = "exports.tasks.assemble_export"
# "Rebuild now" has a person watching its progress bar: it goes to a queue of the interactive worker
# group, not behind the night's batch on saved_exports_queue.
REBUILD_NOW_QUEUE = "export_download_queue"
RUN_QUEUE = "export_download_queue"  # run_export's queue (exports.tasks)


def task(name):
    """The registered Celery task called `name` (exports.apps imports exports.tasks in every process)."""
    return current_app.tasks[name]


def queue_run(run):
    """Send `run`'s message (for its current task id) once the transaction commits."""
    run_id, task_id = str(run.pk), run.task_id

    def send():
        try:
            start_download(task(RUN_EXPORT), args=[run_id], task_id=task_id,
                           download_id=run.download_id, owner_ids=[run.owner_id],
                           expiry=exports_conf.EXPORT_FILE_EXPIRY, message=run_message(run))
        except Exception:
            log.exception("Could not queue export run %s", run_id)
            # Not announced: Redis may be what failed, and the request or reaper sending the message should
            # not wait for another timeout; a page watching the run sees it at its next re-read.
            lifecycle.fail_active(run_id, words.UNAVAILABLE_WORDS, task_id=task_id, announce=False)
            raise

    transaction.on_commit(send)


def run_message(run):
    """The words soil's record of the run starts with, in the run's language."""
    with translation.override(run.language or translation.get_language()):
        return gettext("Export of %(name)s") % {"name": run.name}


# --- What the broker can tell (Redis or RabbitMQ: CELERY_BROKER_URL) ---

RABBITMQ_SCHEMES = ("amqp", "amqps", "pyamqp")


def broker_is_rabbitmq():
    return current_app.conf.broker_url.split("://", 1)[0].lower() in RABBITMQ_SCHEMES


def returned_by_broker(task):
    """Whether RabbitMQ redelivered the task's message because the connection that held it closed (its
    worker died) or its process was lost: then whoever held the run's lease under it is gone."""
    return bool(broker_is_rabbitmq() and (task.request.delivery_info or {}).get("redelivered"))


def message_may_be_waiting(task_id, queue=RUN_QUEUE):
    """Whether a queued run's message may still be in the broker, though soil's SENT record of it is gone.

    On Redis the record and the message live in one store and vanish together: no. On RabbitMQ (quorum
    queues, publisher confirms) a sent message outlives a Redis that lost its data; it is taken as lost
    only when its queue holds no ready message at all. An error asking counts as "may be waiting".
    """
    if not broker_is_rabbitmq():
        return False
    try:
        with current_app.connection_for_read() as conn:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count > 0
    except Exception:  # noqa: BLE001 (RabbitMQ unreachable, or the queue not declared yet)
        log.warning("Could not read the length of queue %s for task %s", queue, task_id, exc_info=True)
        return True


def queue_ready_email(run):
    run_id = str(run.pk)
    transaction.on_commit(lambda: task(SEND_READY_EMAIL).delay(run_id))


def queue_changelist_export(kwargs, owner_id, download_class, message):
    """Send an admin changelist export (JSON-safe `kwargs`) under a new soil download; returns the download."""
    return start_download(task(EXPORT_ADMIN_CHANGELIST), kwargs=kwargs, owner_ids=[owner_id],
                          expiry=exports_conf.EXPORT_FILE_EXPIRY, download_class=download_class, message=message)


def runs_eagerly():
    """Whether tasks run in the caller (USE_CELERY=false): one process, nothing runs in parallel."""
    return bool(current_app.conf.task_always_eager)


def send_parts(run, lease_id, plan):
    """A chord: one part task per key range of `run`'s attempt `lease_id`, then the assembly.

    `plan`: an exports.files.partitions.Plan. Each part is told how many rows come before its range's
    first (an xlsx part cuts its sheets by it) and how many its range holds (not counted again).
    """
    part, assemble = task(BUILD_EXPORT_PART), task(ASSEMBLE_EXPORT)
    header = [part.si(str(run.pk), lease_id, index, lower, upper, plan.total, first_row, rows).set(queue=part.queue)
              for index, ((lower, upper), first_row, rows)
              in enumerate(zip(plan.ranges, plan.first_rows, plan.part_rows))]
    chord(header, assemble.s(str(run.pk), lease_id).set(queue=assemble.queue)).apply_async()


def queue_saved_rebuild(saved_id):
    """The nightly rebuild of one saved export (its claim has committed: see exports.saved.services.dispatch_due)."""
    task(REBUILD_SAVED_EXPORT).delay(saved_id)


def start_saved_rebuild(saved_id, owner_id, download_id, download_class, message):
    """"Rebuild now": the rebuild under a soil download a person watches, on the interactive queue."""
    return start_download(task(REBUILD_SAVED_EXPORT), args=[saved_id], owner_ids=[owner_id], download_id=download_id,
                          download_class=download_class, message=message, queue=REBUILD_NOW_QUEUE)
