"""The lifecycle of an export run. The ExportRun row is the truth; Redis only adds the live percentage.

    queued → running → succeeded | failed | cancelled;  succeeded → expired

Every transition is one compare-and-set: an UPDATE filtered on the state the caller saw, acting only
when it changed a row. So two deliveries of one message, a user pressing Cancel and the reaper can
race without harm. A build holds a lease (an attempt id, its process and a deadline) that a
LeaseKeeper renews while it runs; a run whose lease lapsed, or whose message was lost, is put back
in the queue once by the reaper (exports.runs.reaper), then failed with words a person understands.
"""
import datetime
import logging
import threading
import time
import uuid
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from exports.conf import exports_conf
from exports.files.liveness import holder_is_gone, this_process
from exports.models import ExportRun
from exports.runs import words
from soil import progress

log = logging.getLogger(__name__)
Status = ExportRun.Status

_LEASE_CLEARED = {"lease_id": "", "lease_owner": "", "lease_expires_at": None}


def lease_deadline(now=None):
    return (now or timezone.now()) + datetime.timedelta(seconds=exports_conf.EXPORT_LEASE_SECONDS)


@dataclass(frozen=True)
class Lease:
    run_id: str
    lease_id: str

    def runs(self):
        """The run, only while this lease holds it."""
        return ExportRun.objects.filter(pk=self.run_id, lease_id=self.lease_id, status=Status.RUNNING)


def run_channel(run_id):
    """The Redis channel a run's transitions are announced on: a page's event stream watches it
    beside the run's task record (exports.web.streams), so a change of state made by anyone (the
    build, a part's assembly, a cancel, the reaper) reaches the page at once, not at its next re-read."""
    return f"exports:run:{run_id}"


def announced(changed, run_id):
    """`changed`, after announcing the change of `run_id` once the transaction commits (if it did)."""
    if changed:
        transaction.on_commit(lambda: progress.announce(run_channel(run_id)))
    return changed


# --- transitions ---

def start(run_id, task_id, now=None, returned_by_broker=False):
    """Take the build of a run for the message `task_id`; a Lease, or None when there is nothing to build.

    Nothing to build: the run finished or was cancelled, the message is an old one (the run was
    queued again under a new task id since), or another build holds a live lease. A redelivery after
    its worker process died need not wait for the dead holder's lease to lapse: on the same host the
    holder's process is seen gone; from any host, when `returned_by_broker` (RabbitMQ redelivered the
    message because the connection that held it closed), the holder is watched for a few renewal
    intervals and the build taken over if it renews no more. A run that has used up its attempts is
    failed in words instead.
    """
    now = now or timezone.now()
    row = (ExportRun.objects.filter(pk=run_id, task_id=task_id, cancel_requested=False)
           .values("status", "lease_id", "lease_owner", "lease_expires_at", "attempts").first())
    if row is None:
        return None
    if not is_free(row["status"], row["lease_expires_at"], row["lease_owner"], now) and not (
            returned_by_broker and row["status"] == Status.RUNNING
            and stopped_renewing(run_id, row["lease_id"], row["lease_expires_at"])):
        return None
    seen = ExportRun.objects.filter(pk=run_id, task_id=task_id, status=row["status"], lease_id=row["lease_id"],
                                    cancel_requested=False)
    if row["attempts"] >= exports_conf.EXPORT_MAX_ATTEMPTS:
        announced(seen.update(status=Status.FAILED, error=words.WORKER_LOST_WORDS, finished_at=now,
                              **_LEASE_CLEARED), run_id)
        return None
    lease = Lease(str(run_id), uuid.uuid4().hex)
    claimed = seen.update(status=Status.RUNNING, lease_id=lease.lease_id, lease_owner=this_process(),
                          lease_expires_at=lease_deadline(now), started_at=now, attempts=F("attempts") + 1)
    return lease if announced(claimed, run_id) else None


def is_free(status, lease_expires_at, lease_owner, now):
    """Whether a build may start: queued, or running under a lease that lapsed or whose holder died."""
    if status == Status.QUEUED:
        return True
    return status == Status.RUNNING and (
        lease_expires_at is None or lease_expires_at < now or holder_is_gone(lease_owner))


def stopped_renewing(run_id, lease_id, deadline, intervals=3):
    """Whether the holder of a running lease has stopped renewing it: its deadline unmoved for `intervals`
    renewal intervals. False as soon as it moves (a live holder, e.g. one whose broker connection broke
    and whose message came back while it went on building) or the run moves on."""
    interval = exports_conf.EXPORT_LEASE_RENEW_SECONDS
    watch_until = time.monotonic() + intervals * interval
    while time.monotonic() < watch_until:
        time.sleep(min(0.5, interval / 2))
        now_deadline = (ExportRun.objects.filter(pk=run_id, lease_id=lease_id, status=Status.RUNNING)
                        .values_list("lease_expires_at", flat=True).first())
        if now_deadline != deadline:
            return False
    return True


def renew(lease, now=None):
    """Push the lease's deadline on; False when the lease is no longer ours."""
    return bool(lease.runs().update(lease_expires_at=lease_deadline(now)))


def hand_over(lease, holder, now=None):
    """Record who holds a running build now, and push its deadline on; False when the lease is no longer ours.

    A partitioned build (exports.runs.partitioned_builds) hands its lease to its parts with holder ""
    (several processes share it; only its deadline, renewed by each part, tells that it is alive),
    and the assembling process takes it back with its own name.
    """
    return bool(lease.runs().update(lease_owner=holder, lease_expires_at=lease_deadline(now)))


def succeed(lease, fields, now=None):
    """running → succeeded, with the file's fields; False if the lease was lost meanwhile."""
    now = now or timezone.now()
    return announced(bool(lease.runs().update(status=Status.SUCCEEDED, finished_at=now, error="", **fields,
                                              **_LEASE_CLEARED)), lease.run_id)


def fail(lease, error, now=None, last_progress=None):
    """running → failed, for the build holding `lease`; `last_progress` is where it stopped, if known."""
    return announced(bool(lease.runs().update(status=Status.FAILED, error=error, finished_at=now or timezone.now(),
                                              **_stopped_at(last_progress), **_LEASE_CLEARED)), lease.run_id)


def cancelled(lease, now=None, last_progress=None):
    """running → cancelled, by the build that noticed the request."""
    return announced(bool(lease.runs().update(status=Status.CANCELLED, error=words.CANCELLED_WORDS,
                                              finished_at=now or timezone.now(), **_stopped_at(last_progress),
                                              **_LEASE_CLEARED)), lease.run_id)


def _stopped_at(last_progress):
    """The fields that keep where a build stopped (exports.runs.status.progress_snapshot); none when unknown."""
    return {"last_progress": last_progress} if last_progress else {}


def fail_active(run_id, error, task_id=None, now=None, announce=True):
    """queued or running → failed, whoever holds it (a message that could not be sent; a hard time limit).

    `announce=False` when no page can be watching the run yet and Redis may be what failed (the
    request that could not send its message answers at once, in words, rather than after a timeout)."""
    runs = ExportRun.objects.filter(pk=run_id, status__in=ExportRun.ACTIVE)
    if task_id:
        runs = runs.filter(task_id=task_id)
    changed = bool(runs.update(status=Status.FAILED, error=error, finished_at=now or timezone.now(),
                               **_LEASE_CLEARED))
    return announced(changed, run_id) if announce else changed


def request_cancel(run, now=None):
    """A queued run is cancelled at once; a running one is asked to stop (its LeaseKeeper notices)."""
    now = now or timezone.now()
    if ExportRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
            status=Status.CANCELLED, cancel_requested=True, error=words.CANCELLED_WORDS, finished_at=now):
        return announced(True, run.pk)
    announced(ExportRun.objects.filter(pk=run.pk, status=Status.RUNNING).update(cancel_requested=True), run.pk)
    return False


def requeue(run, count_attempt=False, now=None):
    """Put a stuck run back in the queue under a new task id; the new id, or None if the run moved on.

    `run` is the row as the caller saw it: it is requeued only if it is still exactly so. A build
    counts its own attempt when it starts; a message lost before any build started counts one here.
    """
    new_task_id = str(uuid.uuid4())
    seen = ExportRun.objects.filter(pk=run.pk, status=run.status, task_id=run.task_id, lease_id=run.lease_id)
    changed = seen.update(status=Status.QUEUED, task_id=new_task_id, queued_at=now or timezone.now(),
                          attempts=F("attempts") + (1 if count_attempt else 0), **_LEASE_CLEARED)
    return new_task_id if announced(changed, run.pk) else None


def requeue_own(lease, now=None):
    """running → queued under a new task id, by the build holding `lease` (it lost its database); the new id or None."""
    new_task_id = str(uuid.uuid4())
    changed = lease.runs().update(status=Status.QUEUED, task_id=new_task_id, queued_at=now or timezone.now(),
                                  **_LEASE_CLEARED)
    return new_task_id if announced(changed, lease.run_id) else None


def settle(run, status, error, now=None, last_progress=None):
    """Fail or cancel a stuck run as the caller saw it; False if it moved on meanwhile."""
    seen = ExportRun.objects.filter(pk=run.pk, status=run.status, task_id=run.task_id, lease_id=run.lease_id)
    return announced(bool(seen.update(status=status, error=error, finished_at=now or timezone.now(),
                                      **_stopped_at(last_progress), **_LEASE_CLEARED)), run.pk)


def expire(run, now=None):
    """succeeded → expired, once its expiry has passed."""
    return announced(bool(ExportRun.objects.filter(pk=run.pk, status=Status.SUCCEEDED,
                                                   expires_at__lte=now or timezone.now())
                          .update(status=Status.EXPIRED, file_key="")), run.pk)


# --- a transition made when the database answers again ---

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_FIRST_DELAY, RETRY_MAX_DELAY = 0.25, 2.0  # seconds between tries: doubling, then every 2 s


def lost_the_database(exc, depth=5):
    """Whether `exc`, or an exception it was raised from, says the database cannot be reached."""
    while exc is not None and depth > 0:
        if isinstance(exc, DATABASE_ERRORS):
            return True
        exc, depth = exc.__cause__ or exc.__context__, depth - 1
    return False


def when_database_answers(transition, seconds=None):
    """Call `transition()` until the database lets it through, for at most `seconds` (default: the reaper's
    own horizon, EXPORT_LEASE_SECONDS × 5); returns its result, or raises the last database error.

    A build whose database went away cannot record how it ended; it tries again with a bounded backoff
    (at most RETRY_MAX_DELAY apart), so the run moves on within seconds of the database's return instead
    of waiting for its lease to lapse. Each failed try drops the broken connection.
    """
    give_up = time.monotonic() + (seconds if seconds is not None else exports_conf.EXPORT_LEASE_SECONDS * 5)
    delay = RETRY_FIRST_DELAY
    while True:
        try:
            return transition()
        except DATABASE_ERRORS:
            connection.close()
            if time.monotonic() + delay > give_up:
                raise
            log.warning("The database did not answer; trying again in %.2f s", delay)
            time.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY)


class LeaseKeeper:
    """Renews a build's lease from a background thread and answers whether a cancel was asked.

    The thread has its own database connection, so it sees a cancel at once even where the build's
    connection holds an open read (SQLite keeps a reader on its snapshot). `should_stop()`, polled by
    the build between chunks, has the thread read the flag and waits for the answer (one small query,
    about 0.3 ms of CPU with the hand-over between threads), at most every CHECK_SECONDS; in between
    it answers from the last reading. If the process dies, the renewals stop and the lease lapses.
    """

    #: How often should_stop() reads the cancel flag: a cancel is seen within this and one chunk.
    #: Reading it at every chunk of 500 rows cost a 1M-row build 0.6 s (docs/performance.md, "Chunk size").
    CHECK_SECONDS = 0.2

    def __init__(self, lease, interval=None):
        self.lease = lease
        self.interval = interval or exports_conf.EXPORT_LEASE_RENEW_SECONDS
        self.lost = threading.Event()
        self.cancel_requested = threading.Event()
        self._stop = threading.Event()
        self._asked = threading.Event()
        self._answered = threading.Event()
        self._next_check = 0.0  # the first call reads the flag
        self._thread = threading.Thread(target=self._run, name=f"lease-{lease.run_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._asked.set()
        self._thread.join(timeout=self.interval + 5)
        return False

    def should_stop(self):
        if not (self.lost.is_set() or self.cancel_requested.is_set()) and time.monotonic() >= self._next_check:
            self._answered.clear()
            self._asked.set()
            self._answered.wait(timeout=5)
            self._next_check = time.monotonic() + self.CHECK_SECONDS
        return self.lost.is_set() or self.cancel_requested.is_set()

    def renew(self):
        if not renew(self.lease):
            # A row this connection cannot see at all (deleted, or not committed yet) is not a lost lease.
            if ExportRun.objects.filter(pk=self.lease.run_id).exists():
                self.lost.set()

    def read_cancel(self):
        if ExportRun.objects.filter(pk=self.lease.run_id, cancel_requested=True).exists():
            self.cancel_requested.set()

    def _run(self):
        next_renewal = time.monotonic() + self.interval
        try:
            while not self._stop.is_set():
                asked = self._asked.wait(timeout=max(0.0, next_renewal - time.monotonic()))
                if self._stop.is_set():
                    break
                try:
                    if time.monotonic() >= next_renewal:
                        self.renew()
                        next_renewal = time.monotonic() + self.interval
                    self.read_cancel()
                except Exception:  # a database blip: keep building; the lease may lapse and be reaped
                    log.warning("Could not renew the lease of export run %s", self.lease.run_id, exc_info=True)
                finally:
                    if asked:
                        self._asked.clear()
                        self._answered.set()
        finally:
            self._answered.set()
            connection.close()
