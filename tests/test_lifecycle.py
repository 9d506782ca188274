"""The run lifecycle as plain functions: compare-and-set transitions, leases, the reaper's decisions."""
import datetime
import os
import subprocess
import sys
import uuid

import pytest
from celery import states
from celery.exceptions import TimeLimitExceeded
from django.utils import timezone

from exports.demo import ensure_demo_domain
from exports.files import storage, tempfiles
from exports.files.liveness import this_process
from exports.models import ExportRun
from exports.runs import lifecycle, reaper, words
from project.celery import app

Status = ExportRun.Status
pytestmark = pytest.mark.django_db


@pytest.fixture
def run(alice):
    domain = ensure_demo_domain(slug="life", members=[alice])
    return ExportRun.objects.create(owner=alice, domain=domain, definition=domain.definitions.first(),
                                    parameters={"format": "csv"}, parameters_key="k", task_id="task-1",
                                    download_id="d1", queued_at=timezone.now())


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_delivery_while_the_lease_is_live_builds_nothing(run):
    first = lifecycle.start(run.pk, "task-1")
    assert first is not None
    assert lifecycle.start(run.pk, "task-1") is None
    run.refresh_from_db()
    assert (run.status, run.attempts, run.lease_id, run.lease_owner) == (
        Status.RUNNING, 1, first.lease_id, this_process())


def test_a_message_of_an_older_attempt_builds_nothing(run):
    assert lifecycle.start(run.pk, "task-0") is None
    assert ExportRun.objects.get(pk=run.pk).status == Status.QUEUED


def test_a_lapsed_lease_is_taken_over_and_the_old_holder_can_no_longer_finish(run):
    old = lifecycle.start(run.pk, "task-1")
    later = timezone.now() + datetime.timedelta(seconds=3600)
    new = lifecycle.start(run.pk, "task-1", now=later)
    assert new is not None and new.lease_id != old.lease_id
    assert not lifecycle.succeed(old, {"rows": 1})
    assert lifecycle.succeed(new, {"rows": 2})
    run.refresh_from_db()
    assert (run.status, run.rows, run.attempts, run.lease_id) == (Status.SUCCEEDED, 2, 2, "")


def test_a_dead_holder_on_this_host_need_not_wait_for_its_lease(run):
    lifecycle.start(run.pk, "task-1")
    ExportRun.objects.filter(pk=run.pk).update(lease_owner=f"{this_process().rpartition(':')[0]}:{dead_pid()}")
    assert lifecycle.start(run.pk, "task-1") is not None


def test_a_run_out_of_attempts_fails_in_words_instead_of_starting(run, settings):
    ExportRun.objects.filter(pk=run.pk).update(attempts=settings.EXPORT_MAX_ATTEMPTS)
    assert lifecycle.start(run.pk, "task-1") is None
    run.refresh_from_db()
    assert (run.status, run.error) == (Status.FAILED, words.WORKER_LOST_WORDS)


def test_cancel_ends_a_queued_run_at_once_and_asks_a_running_one(run):
    assert lifecycle.request_cancel(run) is True
    assert ExportRun.objects.get(pk=run.pk).status == Status.CANCELLED
    other = ExportRun.objects.create(owner=run.owner, domain=run.domain, definition=run.definition,
                                     parameters={}, parameters_key="k2", task_id="task-2", download_id="d2")
    lifecycle.start(other.pk, "task-2")
    assert lifecycle.request_cancel(other) is False
    other.refresh_from_db()
    assert other.status == Status.RUNNING and other.cancel_requested
    assert lifecycle.start(other.pk, "task-2", now=timezone.now() + datetime.timedelta(hours=1)) is None


def test_the_reaper_requeues_a_lapsed_run_once_then_fails_it_in_words(run, django_capture_on_commit_callbacks):
    lifecycle.start(run.pk, "task-1")
    later = timezone.now() + datetime.timedelta(hours=1)
    run.refresh_from_db()
    with django_capture_on_commit_callbacks() as sent:
        assert reaper.reap_run(run, reaper.stuck_reason(run, later), later) == "requeued"
    run.refresh_from_db()
    assert run.status == Status.QUEUED and run.task_id != "task-1"
    assert len(sent) == 2  # its new message, and the word to the run's page (lifecycle.announced)
    lifecycle.start(run.pk, run.task_id, now=later)
    much_later = later + datetime.timedelta(hours=1)
    run.refresh_from_db()
    assert reaper.reap_run(run, reaper.stuck_reason(run, much_later), much_later) == "failed"
    run.refresh_from_db()
    assert (run.status, run.error) == (Status.FAILED, words.WORKER_LOST_WORDS)


def test_the_reaper_fails_a_run_killed_at_its_hard_time_limit_without_retrying(run):
    task_id = str(uuid.uuid4())
    ExportRun.objects.filter(pk=run.pk).update(task_id=task_id)
    lifecycle.start(run.pk, task_id)
    app.backend.store_result(task_id, app.backend.prepare_exception(TimeLimitExceeded(90)), states.FAILURE)
    later = timezone.now() + datetime.timedelta(hours=1)
    run.refresh_from_db()
    assert reaper.reap_run(run, reaper.stuck_reason(run, later), later) == "failed"
    run.refresh_from_db()
    assert run.error.startswith("This export took longer than 90 seconds")


def test_a_queued_run_whose_message_is_gone_from_redis_counts_as_lost(run, settings):
    run.task_id = str(uuid.uuid4())  # a task id no other test wrote to Redis
    later = timezone.now() + datetime.timedelta(seconds=settings.EXPORT_LOST_MESSAGE_GRACE + 1)
    assert reaper.stuck_reason(run, later) == reaper.MESSAGE_LOST  # no SENT record: Redis lost it
    app.backend.store_result(run.task_id, None, "SENT")
    assert reaper.stuck_reason(run, later) is None  # still waiting in the queue


def test_dedupe_never_hands_back_a_dead_run(run, alice, settings, django_capture_on_commit_callbacks):
    from exports.runs import services

    definition = run.definition
    dead, _ = services.start_export(alice, definition, format="csv")
    ExportRun.objects.filter(pk=dead.pk).update(status=Status.RUNNING, attempts=settings.EXPORT_MAX_ATTEMPTS,
                                                lease_expires_at=timezone.now() - datetime.timedelta(seconds=1))
    fresh, created = services.start_export(alice, definition, format="csv")
    assert created and fresh.pk != dead.pk
    assert ExportRun.objects.get(pk=dead.pk).status == Status.FAILED


def test_build_files_of_processes_that_are_gone_are_swept(settings, tmp_path):
    settings.EXPORT_TEMP_DIR = str(tmp_path)
    mine = tempfiles.new_temp_path(".csv")
    orphan = tmp_path / f"export-{dead_pid()}-0123abcd.xlsx"
    orphan.write_bytes(b"x" * 100)
    assert tempfiles.sweep_orphans() == (1, 100)
    assert mine.exists() and not orphan.exists()


def test_half_copied_files_of_processes_that_are_gone_are_swept():
    exports = storage.export_storage()
    name = exports.save(f"{storage.PARTIAL_FOLDER}/{dead_pid()}-0123abcd", __import__("io").BytesIO(b"half"))
    assert storage.sweep_partial_files() >= 1
    assert not exports.exists(name)


def test_a_finished_file_is_published_by_a_link_where_the_build_folder_shares_the_storage_filesystem(settings):
    exports = storage.export_storage()
    settings.EXPORT_TEMP_DIR = exports.path("build-folder-for-test")  # surely the storage's filesystem
    built = tempfiles.new_temp_path(".csv")
    built.write_bytes(b"id\n1\n")
    key = storage.publish(built, f"exports/test/{uuid.uuid4().hex}.csv")
    try:
        published = exports.path(key)
        assert os.stat(published).st_ino == os.stat(built).st_ino  # no byte copied
        assert exports.file_permissions_mode is None or (
            os.stat(published).st_mode & 0o777 == exports.file_permissions_mode)
        tempfiles.remove(built)
        with exports.open(key, "rb") as stored:
            assert stored.read() == b"id\n1\n"
        assert not any(name.startswith(f"{os.getpid()}-") for name in exports.listdir(storage.PARTIAL_FOLDER)[1])
    finally:
        exports.delete(key)


def test_a_file_that_cannot_be_linked_is_copied(settings, monkeypatch, tmp_path):
    settings.EXPORT_TEMP_DIR = str(tmp_path)
    built = tempfiles.new_temp_path(".csv")
    built.write_bytes(b"id\n2\n")

    def cross_device(*args):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(storage.os, "link", cross_device)  # as between two filesystems
    key = storage.publish(built, f"exports/test/{uuid.uuid4().hex}.csv")
    exports = storage.export_storage()
    try:
        assert os.stat(exports.path(key)).st_ino != os.stat(built).st_ino
        with exports.open(key, "rb") as stored:
            assert stored.read() == b"id\n2\n"
    finally:
        exports.delete(key)
