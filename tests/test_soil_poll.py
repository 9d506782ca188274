"""The status poll: one read of the record, one of the task, a 304 while nothing changed."""
from unittest.mock import patch

import pytest
import redis
from celery import current_app as app
from celery import shared_task, states, uuid
from celery.exceptions import Ignore
from celery.result import AsyncResult
from django.urls import reverse

from soil import DownloadBase, recent
from soil.exceptions import TaskFailedError
from soil.progress import get_task_status, update_task_state
from soil.util import expose_cached_download
from tests.celery_tasks import fail_with_errors

pytestmark = pytest.mark.django_db


@shared_task(queue="celery")
def plain_celery_task_with_errors():
    """A task declared with Celery's own decorator, not soil's: its FAILURE meta is stored as given."""
    update_task_state(plain_celery_task_with_errors, states.FAILURE, {"errors": ["bad row 3"]})
    raise Ignore()


def progress_download(owner, current=3, total=10):
    task_id = uuid()
    app.backend.store_result(task_id, {"current": current, "total": total}, "PROGRESS")
    return DownloadBase(task_id=task_id, owner_ids=[owner.pk]).save(60), task_id


def status_url(download):
    return reverse("download_status", args=[download.download_id])


def redis_commands_of(client, url):
    """The Redis commands this process sends while `client` gets `url`, and the response."""
    with patch.object(redis.Redis, "execute_command", autospec=True,
                      side_effect=redis.Redis.execute_command) as command:
        response = client.get(url)
    return [call.args[1] for call in command.call_args_list], response


def test_a_poll_reads_the_record_with_the_heartbeat_then_the_task_record(alice_client, alice, settings):
    settings.SOIL_STATUS_REUSE_SECONDS = 0
    download, _ = progress_download(alice)
    alice_client.get(status_url(download))  # the session and the user are loaded once, from the database
    commands, response = redis_commands_of(alice_client, status_url(download))
    assert response.status_code == 200 and response.json()["percent"] == 30
    assert commands == ["MGET", "GET"]


def test_while_the_task_runs_a_poll_reads_only_the_task_record(alice_client, alice):
    download, task_id = progress_download(alice)
    alice_client.get(status_url(download))
    app.backend.store_result(task_id, {"current": 7, "total": 10}, "PROGRESS")
    commands, response = redis_commands_of(alice_client, status_url(download))
    assert response.json()["percent"] == 70
    assert commands == ["GET"]


def test_once_the_task_is_done_the_poll_reads_the_record_afresh(alice_client, alice):
    download, task_id = progress_download(alice)
    running = alice_client.get(status_url(download)).json()
    assert running["state"] == "started" and not running["has_file"]
    # Another process exposes the file (this process still holds the record it read) and the task ends.
    remembered = DownloadBase.get(download.download_id)
    expose_cached_download(b"done", 60, ".txt", download_id=download.download_id, owner_ids=[alice.pk])
    recent.remember(download.download_id, remembered, None)
    app.backend.store_result(task_id, None, states.SUCCESS)

    done = alice_client.get(status_url(download)).json()
    assert done["state"] == "success" and done["has_file"] and done["download_url"]


def test_the_status_answers_304_until_it_changes(alice_client, alice):
    download, task_id = progress_download(alice)
    first = alice_client.get(status_url(download))
    etag = first["ETag"]
    assert first.status_code == 200 and etag and "no-cache" in first["Cache-Control"]

    again = alice_client.get(status_url(download), HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag and again.content == b""

    app.backend.store_result(task_id, {"current": 4, "total": 10}, "PROGRESS")
    moved = alice_client.get(status_url(download), HTTP_IF_NONE_MATCH=etag)
    assert moved.status_code == 200 and moved.json()["percent"] == 40 and moved["ETag"] != etag


def test_a_304_still_checks_who_is_asking(client, alice, bob):
    download, _ = progress_download(alice)
    client.force_login(alice)
    etag = client.get(status_url(download))["ETag"]
    client.force_login(bob)
    assert client.get(status_url(download), HTTP_IF_NONE_MATCH=etag).status_code == 403


def test_errors_stored_exactly_as_the_author_gave_them_read_back_as_those_errors(alice_client, alice, eager):
    result = plain_celery_task_with_errors.delay()
    raw = app.backend.decode(app.backend.get(app.backend.get_key_for_task(result.id)))
    assert raw["result"] == {"errors": ["bad row 3"]}
    download = DownloadBase(task_id=result.id, owner_ids=[alice.pk]).save(60)
    data = alice_client.get(status_url(download)).json()
    assert (data["state"], data["errors"], data["message"]) == ("failed", ["bad row 3"], "bad row 3")


def test_a_soil_task_that_reports_errors_is_also_a_failure_to_celery(eager):
    result = fail_with_errors.delay(["Row 3 has no date"])
    stored = AsyncResult(result.id)
    assert stored.failed() and isinstance(stored.result, TaskFailedError)
    assert stored.result.errors == ["Row 3 has no date"]
    assert get_task_status(stored).error == ["Row 3 has no date"]
