"""The soil contract (DESIGN.md, "The soil contract"): every public name, its signature and defaults,
and its behaviour, pinned so that a refactor that would break a task author's call fails here.

The signatures are written out by hand from the contract, not read back from the code: change one
only when the contract changes. Patching a task's update_state, or soil.progress.set_task_progress,
is the contract's own testing style (docs/task-authors.md), so these tests use it.
"""
import importlib
import inspect
import time
from unittest import mock
from unittest.mock import patch

import pytest
from celery import current_app as app
from celery import states, uuid
from celery.result import AsyncResult
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import reverse

import soil
import soil.progress
from soil import BlobDownload, CachedDownload, DownloadBase, FileDownload, MultipleTaskDownload
from soil.conf import soil_conf
from soil.exceptions import TaskFailedError
from soil.progress import STATES, TaskProgress, TaskProgressManager, TaskStatus
from tests.celery_tasks import count_progress_writes, fail_with_errors, progress_message_seen

SIGNATURES = {
    "soil.DownloadBase.set_progress": "(task, current, total, message=None)",
    "soil.DownloadBase.get": "(download_id)",
    "soil.DownloadBase.save": "(self, expiry=None)",
    "soil.DownloadBase.set_task": "(self, task, expiry=None)",
    "soil.DownloadBase.get_progress": "(self)",
    "soil.DownloadBase.toHttpResponse": "(self)",
    "soil.DownloadBase.get_start_response": "(self)",
    "soil.progress.get_task_progress": "(task)",
    "soil.progress.get_task_status": "(task, is_multiple_download_task=False)",
    "soil.progress.set_task_progress": "(task, current, total, src='unknown', message=None)",
    "soil.progress.update_task_state": "(task, state, meta)",
    "soil.progress.store_progress": "(task_id, current, total, message=None, started_at=None, updated_at=None)",
    "soil.progress.TaskProgressManager": ("(task, src='unknown_via_progress_manager', timedelta=None, "
                                          "resolution=100, message_format=None)"),
    "soil.util.expose_cached_download": ("(payload, expiry, file_extension, mimetype=None, content_disposition=None, "
                                         "download_id=None, extras=None, owner_ids=None)"),
    "soil.util.expose_file_download": ("(path, expiry, file_extension=None, mimetype=None, content_disposition=None, "
                                       "download_id=None, extras=None, owner_ids=None)"),
    "soil.util.expose_blob_download": ("(identifier, expiry, file_extension=None, mimetype=None, "
                                       "content_disposition=None, download_id=None, extras=None, owner_ids=None, "
                                       "storage_alias=None)"),
    "soil.util.get_download_context": "(download_id, message=None, require_result=False)",
    "soil.util.get_task": "(task_id)",
    "soil.decorators.task": "(fn=None, *, queue=None, **options)",
    "soil.decorators.periodic_task": "(run_every, queue=None, options=None, **task_options)",
    "soil.decorators.serial_task": ("(unique_key, default_retry_delay=30, timeout=300, max_retries=3, queue=None, "
                                    "**task_options)"),
}


def resolve(dotted):
    """The object a dotted name ("soil.util.get_task", "soil.DownloadBase.get") names."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("dotted, expected", SIGNATURES.items(), ids=list(SIGNATURES))
def test_every_public_callable_keeps_its_signature_and_defaults(dotted, expected):
    assert str(inspect.signature(resolve(dotted))) == expected


def test_set_progress_is_a_classmethod_callable_on_the_class():
    assert isinstance(inspect.getattr_static(DownloadBase, "set_progress"), classmethod)
    assert isinstance(inspect.getattr_static(DownloadBase, "get"), classmethod)


def test_the_package_exports_the_download_classes():
    assert set(soil.__all__) >= {"DownloadBase", "CachedDownload", "FileDownload", "BlobDownload",
                                 "MultipleTaskDownload"}
    for klass in (CachedDownload, FileDownload, BlobDownload, MultipleTaskDownload):
        assert issubclass(klass, DownloadBase)


def test_states_keep_their_numbers():
    assert (STATES.missing, STATES.not_started, STATES.started, STATES.success, STATES.failed) == (-1, 0, 1, 2, 3)


def test_task_progress_and_task_status_keep_their_fields_in_order():
    assert list(inspect.signature(TaskProgress).parameters)[:5] == ["current", "total", "percent", "error",
                                                                   "error_message"]
    assert list(inspect.signature(TaskStatus).parameters) == ["result", "error", "state", "progress", "exception"]
    status = TaskStatus(result=None, error=None, state=STATES.started)
    assert [status.missing(), status.not_started(), status.started(), status.success(), status.failed()] == \
        [False, False, True, False, False]
    assert TaskProgress() == TaskProgress(current=None, total=None, percent=None, error=False, error_message="")


def test_the_named_urls_exist():
    download_id = "0" * 32
    assert reverse("retrieve_download", args=[download_id])
    assert reverse("ajax_job_poll", args=[download_id])
    assert reverse("download_status", args=[download_id])
    assert reverse("heartbeat_status")


def test_the_ownerless_rule_and_the_queues_default_as_documented():
    from soil.conf import DEFAULTS

    assert DEFAULTS["OWNERLESS_DOWNLOADS"] == "staff"
    assert DEFAULTS["DEFAULT_QUEUE"] is DEFAULTS["PERIODIC_QUEUE"] is DEFAULTS["SERIAL_QUEUE"] is None


# --- get_task_status on a stand-in with the AsyncResult API, as CommCare's own tests pass ---

class StandInTask:
    """Exactly the members of the AsyncResult API that soil reads, and nothing else."""

    def __init__(self, task_meta, state, result, failed=False, successful=False):
        self._task_meta, self.state, self.result = task_meta, state, result
        self._failed, self._successful = failed, successful

    def _get_task_meta(self):
        return self._task_meta

    def failed(self):
        return self._failed

    def successful(self):
        return self._successful


def stand_in(status, result=None, **meta):
    return StandInTask({"status": status, "result": result, "task_id": "t-1", **meta}, status, result,
                       failed=status == states.FAILURE, successful=status == states.SUCCESS)


def test_a_stand_in_that_was_never_queued_is_missing():
    status = soil.progress.get_task_status(stand_in(states.PENDING, traceback=None, date_done=None))
    assert status == TaskStatus(result=None, error=None, state=STATES.missing)


def test_a_stand_in_pending_with_a_task_name_is_not_started():
    task = stand_in(states.PENDING, task_name="reports.build", task_args="[]", task_kwargs="{}")
    assert soil.progress.get_task_status(task).not_started()


def test_a_stand_in_in_progress_is_started_with_its_counts():
    status = soil.progress.get_task_status(stand_in("PROGRESS", {"current": 17, "total": 68}))
    assert status.started()
    assert (status.progress.current, status.progress.total, status.progress.percent) == (17, 68, 25)
    assert soil.progress.get_task_progress(stand_in("PROGRESS", {"current": 17, "total": 68})).percent == 25


def test_a_stand_in_that_succeeded_is_success_with_its_result():
    status = soil.progress.get_task_status(stand_in(states.SUCCESS, {"messages": ["done"]}))
    assert status.success() and status.result == {"messages": ["done"]} and status.progress.percent == 100


def test_a_stand_in_that_failed_with_errors_shows_them():
    status = soil.progress.get_task_status(stand_in(states.FAILURE, {"errors": ["no rows"]}))
    assert status.failed() and status.error == ["no rows"]
    assert isinstance(status.exception, TaskFailedError) and status.exception.errors == ["no rows"]


def test_a_stand_in_that_raised_shows_the_message():
    status = soil.progress.get_task_status(stand_in(states.FAILURE, ValueError("bad date")))
    assert status.failed() and status.error == "bad date" and isinstance(status.exception, ValueError)


def test_a_stand_in_without_task_meta_is_read_through_state_and_result():
    class Minimal:
        state, result = states.SUCCESS, 42

    assert soil.progress.get_task_status(Minimal()).result == 42


def test_no_task_is_missing():
    assert soil.progress.get_task_status(None).missing()


# --- progress reports, in the contract's testing style ---

@patch("tests.celery_tasks.fail_with_errors.update_state")
def test_the_seed_example_errors_reach_update_state_exactly(update_state, eager):
    fail_with_errors.delay(["Column 'date' is missing"])
    update_state.assert_called_with(state=states.FAILURE, meta={"errors": ["Column 'date' is missing"]})


def test_a_progress_manager_calls_set_task_progress_with_current_total_and_src(monkeypatch):
    calls = []

    def set_task_progress(task, current, total, src):  # CommCare's tests patch it with exactly this
        calls.append((task, current, total, src))

    monkeypatch.setattr(soil.progress, "set_task_progress", set_task_progress)
    task = object()
    with TaskProgressManager(task, src="my_report", resolution=10) as progress:
        for current in range(1, 101):
            progress.set_progress(current, 100)
    # Written at 1 (step 0) and at each of steps 1..10, then once more on exit.
    assert [call[1] for call in calls] == [1, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 100]
    assert {(call[0], call[2], call[3]) for call in calls} == {(task, 100, "my_report")}


def test_a_progress_manager_names_its_source_by_default_and_passes_a_message_only_when_it_has_one():
    with patch.object(soil.progress, "set_task_progress") as write:
        with TaskProgressManager(object()) as progress:
            progress.set_progress(1, 2)
    write.assert_called_with(mock.ANY, current=1, total=2, src="unknown_via_progress_manager")

    with patch.object(soil.progress, "set_task_progress") as write:
        with TaskProgressManager(object(), message_format="{current} of {total}") as progress:
            progress.set_progress(1, 2)
    write.assert_called_with(mock.ANY, current=1, total=2, src="unknown_via_progress_manager", message="1 of 2")


def test_a_progress_manager_accepts_a_timedelta_and_ignores_it():
    with patch.object(soil.progress, "set_task_progress") as write:
        with TaskProgressManager(object(), timedelta=60) as progress:
            progress.set_progress(1, 2)
            progress.set_progress(2, 2)
    assert write.call_count == 3


def test_set_task_progress_stores_exactly_current_total_and_times(eager):
    with patch("tests.celery_tasks.count_progress_writes.update_state") as update_state:
        count_progress_writes.delay(1, resolution=1)
    meta = update_state.call_args.kwargs["meta"]
    update_state.assert_called_with(state="PROGRESS", meta=meta)
    assert set(meta) == {"current", "total", "started_at", "updated_at"}
    assert (meta["current"], meta["total"]) == (1, 1)


def test_set_task_progress_takes_src_positionally_and_outside_a_task_writes_nothing(redis_client):
    before = set(redis_client.keys("celery-task-meta-*"))
    soil.progress.set_task_progress(count_progress_writes, 1, 2, "a_caller")
    soil.progress.set_task_progress(count_progress_writes, 1, 2, src="a_caller", message="words")
    assert set(redis_client.keys("celery-task-meta-*")) == before


# --- store_progress: a task's progress from a process that does not run it ---

def test_store_progress_writes_the_record_set_task_progress_writes(eager):
    from_a_task = progress_message_seen.delay(3, 12).result  # the record set_task_progress stored
    task_id = uuid()
    soil.progress.store_progress(task_id, 3, 12, message="3 of 12 rows", started_at=1000.0)
    stored = AsyncResult(task_id)
    assert stored.state == "PROGRESS"
    assert set(stored.info) == set(from_a_task) == {"current", "total", "message", "started_at", "updated_at"}
    assert (stored.info["current"], stored.info["total"], stored.info["message"]) == (3, 12, "3 of 12 rows")
    assert stored.info["started_at"] == 1000.0 and stored.info["updated_at"] >= time.time() - 60
    progress = soil.progress.get_task_progress(stored)
    assert (progress.percent, progress.message) == (25, "3 of 12 rows")
    assert progress.eta_seconds is not None


def test_store_progress_without_a_message_stores_none():
    task_id = uuid()
    soil.progress.store_progress(task_id, 0, 5)
    assert "message" not in AsyncResult(task_id).info


# --- downloads ---

@pytest.mark.django_db
def test_a_cached_download_answers_with_a_plain_http_response():
    download = soil.util.expose_cached_download(b"in memory", 60, ".txt")
    response = DownloadBase.get(download.download_id).toHttpResponse()
    assert type(response) is HttpResponse and response.content == b"in memory"


@pytest.mark.django_db
def test_a_file_download_still_streams(tmp_path):
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n")
    response = soil.util.expose_file_download(path, 60).toHttpResponse()
    assert isinstance(response, StreamingHttpResponse) and response.streaming


def test_get_task_gives_the_async_result_of_an_id():
    task_id = uuid()
    task = soil.util.get_task(task_id)
    assert isinstance(task, AsyncResult) and task.id == task_id
    assert soil.progress.get_task_status(task).missing()


def test_a_downloads_task_and_progress():
    task_id = uuid()
    app.backend.store_result(task_id, {"current": 1, "total": 4}, "PROGRESS")
    download = DownloadBase(task_id=task_id).save(60)
    assert download.task_id == task_id and download.task.id == task_id
    assert len(download.download_id) >= 32  # 128 random bits, hex
    assert DownloadBase.get(download.download_id).get_progress().percent == 25


def test_get_download_context_keys_custom_message_and_require_result():
    exposed = soil.util.expose_cached_download(b"x", 60, ".txt")
    context = soil.util.get_download_context(exposed.download_id, message="Preparing your file")
    assert {"download_id", "result", "error", "is_ready", "is_alive", "progress", "has_file",
            "custom_message"} <= set(context)
    assert context["custom_message"] == "Preparing your file"
    assert context["is_ready"] and context["has_file"]
    assert soil.util.get_download_context(exposed.download_id)["custom_message"] is None
    # Exposed without a task: no result, so not ready when a result is required.
    assert not soil.util.get_download_context(exposed.download_id, require_result=True)["is_ready"]

    task_id = uuid()
    app.backend.store_result(task_id, {"rows": 3}, states.SUCCESS)
    done = DownloadBase(task_id=task_id).save(60)
    assert soil.util.get_download_context(done.download_id, require_result=True)["is_ready"]


def test_get_download_context_raises_task_failed_error_with_errors():
    task_id = uuid()
    app.backend.store_result(task_id, {"errors": ["no rows"]}, states.FAILURE)
    download = DownloadBase(task_id=task_id).save(60)
    with pytest.raises(TaskFailedError) as failure:
        soil.util.get_download_context(download.download_id)
    assert failure.value.errors == ["no rows"]


def test_the_decorators_queue_defaults_come_from_soils_settings(settings):
    from soil.decorators import periodic_task, serial_task, task

    settings.SOIL_DEFAULT_QUEUE, settings.SOIL_PERIODIC_QUEUE = "q_default", "q_periodic"
    settings.SOIL_SERIAL_QUEUE = "q_serial"

    @task
    def contract_plain():
        pass

    @periodic_task(run_every=3600)
    def contract_periodic():
        pass

    @serial_task("{0}")
    def contract_serial(key):
        pass

    try:
        assert (contract_plain.queue, contract_periodic.queue, contract_serial.queue) == \
            ("q_default", "q_periodic", "q_serial")
        assert app.conf.beat_schedule[contract_periodic.name]["options"]["queue"] == "q_periodic"
    finally:
        app.conf.beat_schedule.pop(contract_periodic.name, None)

    del settings.SOIL_DEFAULT_QUEUE, settings.SOIL_PERIODIC_QUEUE, settings.SOIL_SERIAL_QUEUE
    assert soil_conf.queue("default") is soil_conf.queue("periodic") is soil_conf.queue("serial") is None
