"""The reaper: a run whose build stopped or whose message was lost goes back to the queue once, then
fails in words. It runs periodically and as a check whenever a run is read, so no run stays active forever.

    running, lease lapsed or holder dead  → requeued (new message), or failed when out of attempts
    running, hard time limit recorded     → failed: "took longer than …"
    queued, message gone from the broker  → requeued, or failed when out of attempts
    either, with a cancel requested       → cancelled
"""
import datetime
import logging
import time
from collections import Counter

from celery import states
from celery.result import AsyncResult
from django.conf import settings
from django.utils import timezone, translation

from exports.conf import exports_conf
from exports.files import partitions, storage, tempfiles
from exports.models import ExportRun
from exports.runs import lifecycle, queueing, words
from exports.runs.status import recorded_progress

log = logging.getLogger(__name__)
Status = ExportRun.Status

WORKER_LOST = "worker_lost"
LOST_MESSAGE_RECHECK_SECONDS = 1.5
MESSAGE_LOST = "message_lost"
def _task_result(task_id):
    """(state, result) of a task from the result backend; (None, None) when Redis cannot say."""
    try:
        result = AsyncResult(task_id)
        return result.state, result.result if result.state == states.FAILURE else None
    except Exception:  # noqa: BLE001 (Redis down or a result that cannot be read: decide nothing)
        log.warning("Could not read the state of task %s", task_id, exc_info=True)
        return None, None


def stuck_reason(run, now):
    """Why an active run will not finish by itself, or None if it may still."""
    if run.status == Status.RUNNING and lifecycle.is_free(run.status, run.lease_expires_at, run.lease_owner, now):
        return WORKER_LOST
    grace = datetime.timedelta(seconds=exports_conf.EXPORT_LOST_MESSAGE_GRACE)
    if run.status == Status.QUEUED and run.queued_at and run.queued_at < now - grace:
        state, _ = _task_result(run.task_id)
        # soil records SENT before publishing: no record, no message (on Redis; RabbitMQ may still hold it)
        if state == states.PENDING and not queueing.message_may_be_waiting(run.task_id):
            return MESSAGE_LOST if _still_lost(run) else None
    return None


def _still_lost(run):
    """On RabbitMQ, a queue with no ready message may have just handed the run's message to a worker that
    has not started it yet: look again a moment later (rare: Redis lost the SENT record and the queue is
    empty). On Redis the record and the message went together: lost."""
    if not queueing.broker_is_rabbitmq():
        return True
    time.sleep(LOST_MESSAGE_RECHECK_SECONDS)
    if not ExportRun.objects.filter(pk=run.pk, status=Status.QUEUED, task_id=run.task_id).exists():
        return False
    return _task_result(run.task_id)[0] == states.PENDING and not queueing.message_may_be_waiting(run.task_id)


def hard_time_limit(task_id):
    """The hard limit in seconds if the task was killed for reaching it, else None."""
    state, result = _task_result(task_id)
    if state == states.FAILURE and type(result).__name__ == "TimeLimitExceeded":
        return int(result.args[0]) if result.args else 0
    return None


def reap_run(run, reason, now=None):
    """Requeue, fail or cancel one stuck run; returns what was done, or None if the run moved on.

    The part files of the attempt it stopped (a partitioned build) are deleted.
    """
    with translation.override(run.language or settings.LANGUAGE_CODE):  # the words go to the run's owner
        outcome = _settle_or_requeue(run, reason, now or timezone.now())
    if outcome and run.lease_id:
        partitions.delete_parts(run.pk, run.lease_id)
    return outcome


def _settle_or_requeue(run, reason, now):
    # Where the build stopped, as soil last heard it; a run that never started has none.
    stopped_at = recorded_progress(run.task_id) if run.status == Status.RUNNING else None
    if run.cancel_requested:
        return "cancelled" if lifecycle.settle(run, Status.CANCELLED, words.CANCELLED_WORDS, now,
                                               last_progress=stopped_at) else None
    limit = hard_time_limit(run.task_id) if reason == WORKER_LOST else None
    if limit is not None:
        return "failed" if lifecycle.settle(run, Status.FAILED, words.time_limit_words(limit), now) else None
    if run.attempts >= exports_conf.EXPORT_MAX_ATTEMPTS:
        lost_words = words.WORKER_LOST_WORDS if reason == WORKER_LOST else words.MESSAGE_LOST_WORDS
        return "failed" if lifecycle.settle(run, Status.FAILED, lost_words, now, last_progress=stopped_at) else None
    new_task_id = lifecycle.requeue(run, count_attempt=reason == MESSAGE_LOST, now=now)
    if new_task_id is None:
        return None
    log.warning("Export run %s was stuck (%s); queued again as task %s", run.pk, reason, new_task_id)
    run.task_id = new_task_id
    queueing.queue_run(run)
    return "requeued"


def check_run(run, now=None):
    """The check on read: reap `run` if it is stuck; returns the run as it is now."""
    if not run.is_active:
        return run
    now = now or timezone.now()
    reason = stuck_reason(run, now)
    if reason and reap_run(run, reason, now):
        run.refresh_from_db()
    return run


def reap(now=None):
    """Look at every active run once; returns counts of what was done, and of temporary files swept."""
    now = now or timezone.now()
    counts = Counter()
    active = ExportRun.objects.filter(status__in=ExportRun.ACTIVE).select_related("definition")
    for run in active.iterator():
        reason = stuck_reason(run, now)
        if reason:
            try:
                outcome = reap_run(run, reason, now)
            except Exception:  # noqa: BLE001 (one run that cannot be requeued must not stop the others)
                log.exception("Could not reap export run %s", run.pk)
                outcome = "error"
            counts[outcome or "moved_on"] += 1
    counts["temp_files_swept"], _ = tempfiles.sweep_orphans()
    counts["partial_files_swept"] = storage.sweep_partial_files()
    return dict(counts)
