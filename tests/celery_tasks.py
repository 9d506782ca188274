"""Tasks used by the tests; the test worker imports this module (--include tests.celery_tasks)."""
import time

from celery import states
from celery.exceptions import Ignore
from django.apps import apps

from soil import DownloadBase
from soil.decorators import serial_task, task
from soil.progress import TaskProgressManager, update_task_state
from soil.redis_client import get_redis_client
from soil.util import expose_cached_download, expose_file_download

# The names the README snippet uses, so that it runs exactly as written.
payload = b"payload of my_cool_task\n\xe2\x9c\x93 bytes survive intact\n"
expiry = 60
file_extension = ".txt"


# --- The snippet from the soil issue, unchanged. ---
@task
def my_cool_task():
    DownloadBase.set_progress(my_cool_task, 0, 100)
    # do some stuff
    DownloadBase.set_progress(my_cool_task, 50, 100)
    # do some more stuff
    DownloadBase.set_progress(my_cool_task, 100, 100)
    expose_cached_download(payload, expiry, file_extension)
# --- end of the snippet ---


GATE_KEY = "tests:gate:{}"


@task(queue="export_download_queue")
def gated_progress(gate, total=10, halfway=5, content="gated file body"):
    """Report halfway, wait until the test opens the gate, then finish and expose a file."""
    DownloadBase.set_progress(gated_progress, 0, total)
    DownloadBase.set_progress(gated_progress, halfway, total)
    client = get_redis_client()
    deadline = time.monotonic() + 30
    while not client.exists(GATE_KEY.format(gate)):
        if time.monotonic() > deadline:
            raise TimeoutError("the test never opened the gate")
        time.sleep(0.05)
    DownloadBase.set_progress(gated_progress, total, total)
    expose_cached_download(content.encode("utf-8"), 60, ".csv", content_disposition="résumé, final\r\n.csv")


@task
def fail_with_errors(errors):
    """Error style 1: FAILURE with errors, then Ignore."""
    update_task_state(fail_with_errors, states.FAILURE, {"errors": errors})
    raise Ignore()


@task
def fail_by_raising(message):
    """Error style 2: just raise."""
    raise ValueError(message)


@task
def count_progress_writes(total, resolution=100):
    """Report every row through the throttled manager."""
    with TaskProgressManager(count_progress_writes, resolution=resolution) as progress:
        for current in range(1, total + 1):
            progress.set_progress(current, total)


@task
def expose_a_file(path):
    expose_file_download(path, 60)


@serial_task("{key}", timeout=30, default_retry_delay=0.2, max_retries=200)
def serial_recorder(key, hold_seconds, run_id):
    """Log when each run starts and ends, so a test can check runs never overlap."""
    client = get_redis_client()
    client.rpush(f"tests:serial:{key}", f"start {run_id} {time.time()}")
    time.sleep(hold_seconds)
    client.rpush(f"tests:serial:{key}", f"end {run_id} {time.time()}")
    return run_id


# --- An export source whose rows wait, inside the worker only, until the test opens a gate. ---

def _gated_submissions(domain):
    from celery import current_task

    from exports.models import FormSubmission

    if current_task and current_task.request.id and not current_task.request.is_eager:
        client = get_redis_client()
        deadline = time.monotonic() + 30
        while not _gate_open(client, GATE_KEY.format(f"export-{domain.slug}")):
            if time.monotonic() > deadline:
                raise TimeoutError("the test never opened the export gate")
            time.sleep(0.05)
    return FormSubmission.objects.filter(domain=domain)


def _gate_open(client, key):
    """Whether the test opened the gate; a Redis that a fault test restarts reads as "not yet"."""
    from redis.exceptions import ConnectionError, TimeoutError

    try:
        return client.exists(key)
    except (ConnectionError, TimeoutError):
        return False


def _register_gated_source():
    from exports.demo import FORM_SUBMISSIONS
    from exports.sources import ExportSource, register

    return register(ExportSource(name="gated_submissions", label="Gated submissions",
                                 queryset=_gated_submissions, columns=FORM_SUBMISSIONS.columns,
                                 date_field="received_on", ordering=("received_on", "id")))


# The soil-only test project (tests/soil_only) has no exports app.
GATED_SOURCE = _register_gated_source() if apps.is_installed("exports") else None


@task
def progress_message_seen(current, total):
    """Report through a manager with a message format and hand back what the backend stored."""
    from celery.result import AsyncResult

    manager = TaskProgressManager(progress_message_seen, message_format="{current:,} of {total:,} rows")
    manager.set_progress(current, total)
    return AsyncResult(progress_message_seen.request.id).info


@task(queue="export_download_queue", acks_late=True)
def slow_progress(steps, step_seconds):
    """Report progress `steps` times, `step_seconds` apart: a long task to break Redis under."""
    for current in range(1, steps + 1):
        time.sleep(step_seconds)
        DownloadBase.set_progress(slow_progress, current, steps)
    return steps
