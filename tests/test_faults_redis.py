"""Redis faults: a restart under running tasks.

Each test runs its own deployment (the `stack` fixture): a private Redis and a worker.
Run with -s to see the measured times.
"""
import time

import pytest
from celery import Celery

pytestmark = [pytest.mark.fault]


def client_app(stack):
    """A Celery client of the stack's Redis (the test process's own app points at the suite's Redis)."""
    return Celery("faults", broker=stack.redis.url, backend=stack.redis.url, set_as_current=False)


def wait(predicate, timeout, message, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def reported_progress(result):
    try:
        return result.state == "PROGRESS"
    except Exception:  # noqa: BLE001 (Redis may be restarting: not yet)
        return False


# --- The worker outlives a Redis restart.

# (steps, seconds per step): the first writes progress through the outage and fails; the second
# sleeps through it and finishes after the worker reconnected, acknowledging on the lost connection.
IN_FLIGHT = {
    "in-flight-task-fails": (40, 0.25),
    "in-flight-task-finishes": (3, 2.0),
}


@pytest.mark.parametrize("empty", [False, True], ids=["with-aof", "empty"])
@pytest.mark.parametrize("in_flight", list(IN_FLIGHT))
def test_worker_survives_a_redis_restart_under_a_running_task(stack, empty, in_flight):
    worker = stack.worker(concurrency=2)
    app = client_app(stack)
    steps, step_seconds = IN_FLIGHT[in_flight]
    try:
        running = app.send_task("tests.celery_tasks.slow_progress", args=[steps, step_seconds],
                                queue="export_download_queue")
        in_flight_over_at = time.monotonic() + steps * step_seconds + 2
        wait(lambda: reported_progress(running), 30, "the task to report progress")
        restarted_at = time.monotonic()
        stack.redis.restart(empty=empty, down_for=0.5)

        after = app.send_task("tests.celery_tasks.slow_progress", args=[2, 0.1], queue="export_download_queue")
        assert after.get(timeout=60) == 2
        print(f"\nRedis restart ({'empty' if empty else 'with AOF'}, {in_flight}): a task sent after the restart "
              f"completed {time.monotonic() - restarted_at:.1f} s after the restart began")

        # The in-flight task has ended one way or the other; a finished one was acknowledged on the lost connection.
        time.sleep(max(0.0, in_flight_over_at - time.monotonic()))
        assert worker.alive, f"the worker died after the Redis restart:\n{worker.log_tail()}"
        last = app.send_task("tests.celery_tasks.slow_progress", args=[1, 0.1], queue="export_download_queue")
        assert last.get(timeout=60) == 1
        assert worker.alive
        assert "Unrecoverable error" not in worker.log_tail(1_000_000)
    finally:
        app.close()
