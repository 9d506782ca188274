"""Every Celery state maps onto one soil STATE; progress writes are throttled. Real Redis backend."""
import pytest
from celery import current_app as app
from celery import states, uuid
from celery.exceptions import Ignore
from celery.result import AsyncResult
from kombu import Queue

import soil.progress
from soil import DownloadBase
from soil.exceptions import TaskFailedError
from soil.progress import (
    SENT,
    STATES,
    TaskProgressManager,
    get_task_progress,
    get_task_status,
)
from tests.celery_tasks import count_progress_writes, fail_by_raising, fail_with_errors, my_cool_task


def stored(state, meta=None):
    """An AsyncResult whose backend record is `state` with `meta`, written to the real backend."""
    task_id = uuid()
    app.backend.store_result(task_id, meta, state)
    return AsyncResult(task_id)


def test_an_id_nobody_queued_is_missing():
    status = get_task_status(AsyncResult(uuid()))
    assert status.missing() and status.state == STATES.missing == -1


def test_no_task_at_all_is_missing():
    assert get_task_status(None).missing()


def test_queued_but_not_started_is_not_started():
    assert get_task_status(stored(SENT)).not_started()


def test_a_published_task_is_marked_sent_before_any_worker_sees_it():
    # No worker consumes this queue, so the record can only come from soil's publish hook. A Queue
    # object, not a name: Celery refuses names that are not in the queue table.
    result = my_cool_task.apply_async(queue=Queue("tests_nobody_consumes_this"))
    try:
        assert result.state == SENT
        assert get_task_status(result).not_started()
    finally:
        result.revoke()


def test_progress_is_started_with_integer_percent():
    status = get_task_status(stored("PROGRESS", {"current": 1, "total": 3}))
    assert status.started()
    assert (status.progress.current, status.progress.total, status.progress.percent) == (1, 3, 33)


def test_progress_with_total_zero_is_one_hundred_percent():
    assert get_task_status(stored("PROGRESS", {"current": 0, "total": 0})).progress.percent == 100


def test_started_without_progress_is_started_at_zero():
    status = get_task_status(stored(states.STARTED, {"pid": 1, "hostname": "w"}))
    assert status.started() and status.progress.percent == 0


def test_success_is_success_with_its_result():
    status = get_task_status(stored(states.SUCCESS, {"rows": 3}))
    assert status.success() and status.result == {"rows": 3} and status.progress.percent == 100


def test_a_raised_exception_is_failed_with_its_message():
    task_id = uuid()
    app.backend.mark_as_failure(task_id, ValueError("the file is too big"))
    status = get_task_status(AsyncResult(task_id))
    assert status.failed()
    assert status.error == "the file is too big"
    assert isinstance(status.exception, ValueError)


def test_revoked_is_failed():
    assert get_task_status(stored(states.REVOKED)).failed()


def test_eta_comes_from_the_observed_rate():
    result = stored("PROGRESS", {"current": 25, "total": 100, "started_at": 1000.0, "updated_at": 1010.0})
    assert get_task_progress(result).eta_seconds == 30


# --- the two error styles, eagerly ---

def test_errors_style_eagerly_returns_ignore_and_reads_back_as_failed_with_the_errors(eager):
    result = fail_with_errors.delay(["Row 3 has no date", "Row 9 is empty"])
    assert isinstance(result.result, Ignore)
    assert not result.successful()
    status = get_task_status(AsyncResult(result.id))
    assert status.failed()
    assert status.error == ["Row 3 has no date", "Row 9 is empty"]
    assert isinstance(status.exception, TaskFailedError)


def test_raise_style_eagerly_reaches_the_caller(eager):
    with pytest.raises(ValueError, match="bad input"):
        fail_by_raising.delay("bad input")


# --- progress writes ---

def test_set_progress_outside_a_task_is_a_harmless_no_op(redis_client):
    before = set(redis_client.keys("celery-task-meta-*"))
    DownloadBase.set_progress(my_cool_task, 5, 10)
    assert set(redis_client.keys("celery-task-meta-*")) == before


def test_progress_manager_writes_only_when_the_percentage_changes(eager, monkeypatch):
    writes = []
    real_write = soil.progress.set_task_progress

    def counting_write(task, current, total, src):
        writes.append((current, total))
        real_write(task, current, total, src)

    monkeypatch.setattr(soil.progress, "set_task_progress", counting_write)
    result = count_progress_writes.delay(100_000)
    # 101 distinct percentages (0..100) plus the write on exit.
    assert len(writes) == 102
    assert writes[-1] == (100_000, 100_000)
    assert get_task_status(AsyncResult(result.id)).success()


def test_progress_manager_resolution_sets_the_number_of_writes(eager, monkeypatch):
    writes = []
    monkeypatch.setattr(soil.progress, "set_task_progress", lambda *args, **kwargs: writes.append(args))
    count_progress_writes.delay(1_000, resolution=10)
    assert len(writes) == 12


def test_progress_manager_does_not_overwrite_a_failure_on_exit(eager, monkeypatch):
    class Boom(Exception):
        pass

    writes = []
    monkeypatch.setattr(soil.progress, "set_task_progress", lambda *args, **kwargs: writes.append(args))
    manager = TaskProgressManager(my_cool_task)
    with pytest.raises(Boom):
        with manager:
            raise Boom()
    assert writes == []
    with manager:  # the same manager leaving normally does write: the patch above sees its writes
        pass
    assert len(writes) == 1


def test_a_watch_wakes_on_an_announcement_on_its_channels_and_keeps_them_when_it_follows_another_task():
    import threading

    from soil.progress import announce, watch_progress

    channel = f"tests:announce:{uuid()}"
    with watch_progress(uuid(), channels=[channel]) as watch:
        assert not watch.wait(0.2)  # nothing written, nothing announced
        threading.Timer(0.2, announce, args=(channel,)).start()
        assert watch.wait(10)
        watch.follow(uuid())  # a run queued again under a new task id
        threading.Timer(0.2, announce, args=(channel,)).start()
        assert watch.wait(10)
        assert not watch.wait(0.2)
