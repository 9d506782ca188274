"""soil through a real Celery worker process, real Redis and the real views."""
import time

import pytest
from celery import current_app as app
from celery.exceptions import Retry
from celery.result import AsyncResult
from django.urls import reverse

from soil import DownloadBase
from soil.conf import soil_conf
from soil.decorators import SerialTaskBusy
from soil.heartbeat import is_alive, record_heartbeat
from soil.progress import get_task_status
from soil.redis_client import get_redis_client
from soil.tasks import heartbeat
from soil.util import start_download
from tests.celery_tasks import (
    GATE_KEY,
    fail_by_raising,
    fail_with_errors,
    gated_progress,
    my_cool_task,
    payload,
    serial_recorder,
)
from tests.conftest import wait_for

pytestmark = [pytest.mark.worker]


def status_of(client, download):
    return client.get(reverse("download_status", args=[download.download_id])).json()


def fetch_file(client, download):
    response = client.get(reverse("retrieve_download", args=[download.download_id]) + "?get_file")
    return response, b"".join(response.streaming_content) if response.streaming else response.content


def test_the_readme_snippet_runs_unchanged_and_its_file_reaches_the_page(worker, alice_client, alice):
    download = start_download(my_cool_task, owner_ids=[alice.pk])
    data = wait_for(lambda: (s := status_of(alice_client, download))["is_ready"] and s, message="success")
    assert data["state"] == "success" and data["has_file"]
    response, content = fetch_file(alice_client, download)
    assert response.status_code == 200
    assert content == payload
    assert response["Content-Disposition"] == 'attachment; filename="download.txt"'


def test_progress_is_seen_mid_flight_and_the_file_downloads_byte_for_byte(worker, alice_client, alice,
                                                                          redis_client, client, bob):
    gate = DownloadBase().download_id
    content = "id,name\n1,Zoë\n2,東京\n"
    download = start_download(gated_progress, kwargs={"gate": gate, "content": content}, owner_ids=[alice.pk])

    halfway = wait_for(lambda: (s := status_of(alice_client, download))["state"] == "started"
                       and s["current"] == 5 and s, message="halfway progress")
    assert (halfway["percent"], halfway["total"], halfway["is_ready"], halfway["has_file"]) == (50, 10, False, False)
    assert halfway["eta_seconds"] is not None

    redis_client.set(GATE_KEY.format(gate), 1, ex=60)
    done = wait_for(lambda: (s := status_of(alice_client, download))["is_ready"] and s, message="success")
    assert done["has_file"] and done["percent"] == 100

    response, body = fetch_file(alice_client, download)
    assert body == content.encode("utf-8")
    assert "filename*=UTF-8''r%C3%A9sum%C3%A9%2C%20final.csv" in response["Content-Disposition"]

    client.force_login(bob)
    assert fetch_file(client, download)[0].status_code == 403
    assert client.get(reverse("download_status", args=[download.download_id])).status_code == 403


def test_errors_style_through_the_worker_shows_the_errors(worker, alice_client, alice):
    download = start_download(fail_with_errors, args=(["Column 'date' is missing"],), owner_ids=[alice.pk])
    data = wait_for(lambda: (s := status_of(alice_client, download))["state"] == "failed" and s,
                    message="failure")
    assert data["errors"] == ["Column 'date' is missing"]
    assert not download.task.successful()


def test_raise_style_through_the_worker_shows_the_message(worker, alice_client, alice):
    download = start_download(fail_by_raising, args=("The export definition was deleted",), owner_ids=[alice.pk])
    data = wait_for(lambda: (s := status_of(alice_client, download))["state"] == "failed" and s,
                    message="failure")
    assert data["errors"] == ["The export definition was deleted"]
    assert download.task.failed()
    assert isinstance(get_task_status(download.task).exception, ValueError)


def test_serial_task_never_runs_two_runs_of_one_key_at_once(worker, redis_client):
    key = DownloadBase().download_id
    results = [serial_recorder.delay(key, 0.4, run_id) for run_id in range(3)]
    assert sorted(result.get(timeout=60) for result in results) == [0, 1, 2]

    log = [entry.decode().split() for entry in redis_client.lrange(f"tests:serial:{key}", 0, -1)]
    assert [kind for kind, _, _ in log] == ["start", "end"] * 3, log
    for (_, started_run, _), (_, ended_run, _) in zip(log[::2], log[1::2]):
        assert started_run == ended_run


def test_serial_task_releases_its_lock_when_done(worker, redis_client):
    key = DownloadBase().download_id
    serial_recorder.delay(key, 0, 0).get(timeout=30)
    assert not redis_client.exists(f"soil:serial:{key}")


def test_the_heartbeat_task_run_by_a_worker_makes_the_service_alive(worker, alice_client):
    record_heartbeat(time.time() - 3600)
    assert not is_alive()
    assert alice_client.get(reverse("heartbeat_status")).status_code == 503

    heartbeat.apply_async().get(timeout=30)
    assert is_alive()
    response = alice_client.get(reverse("heartbeat_status"))
    assert response.status_code == 200 and response.json()["is_alive"] is True


def test_the_status_reports_is_alive_from_the_heartbeat(worker, alice_client, alice):
    download = start_download(my_cool_task, owner_ids=[alice.pk])
    record_heartbeat(time.time() - 3600)
    assert status_of(alice_client, download)["is_alive"] is False
    record_heartbeat()
    assert status_of(alice_client, download)["is_alive"] is True


def test_periodic_task_registers_itself_in_the_beat_schedule():
    entry = app.conf.beat_schedule["soil.tasks.heartbeat"]
    assert entry["task"] == heartbeat.name
    assert entry["options"].get("queue") == soil_conf.queue("periodic") == getattr(heartbeat, "queue", None)
    assert entry["schedule"] > 0


def test_a_task_started_by_the_worker_leaves_a_record_we_can_read(worker):
    result = my_cool_task.delay()
    result.get(timeout=30)
    assert get_task_status(AsyncResult(result.id)).success()


def test_a_multiple_task_download_is_ready_when_every_task_is(worker, alice_client, alice):
    from celery import group

    from soil import MultipleTaskDownload

    download = MultipleTaskDownload(owner_ids=[alice.pk])
    download.set_task(group(my_cool_task.s() for _ in range(3)).apply_async(), 60)
    assert type(DownloadBase.get(download.download_id)) is MultipleTaskDownload
    data = wait_for(lambda: (s := status_of(alice_client, download))["state"] == "success" and s,
                    message="the group to finish")
    assert data["percent"] == 100 and data["is_ready"]


def test_a_multiple_task_download_fails_when_one_task_fails(worker, alice_client, alice):
    from celery import group

    from soil import MultipleTaskDownload

    download = MultipleTaskDownload(owner_ids=[alice.pk])
    download.set_task(group([my_cool_task.s(), fail_by_raising.s("one part broke")]).apply_async(), 60)
    data = wait_for(lambda: (s := status_of(alice_client, download))["state"] == "failed" and s,
                    message="the group to fail")
    assert "one part broke" in data["errors"][0]


def test_a_serial_run_that_finds_the_key_busy_after_its_last_retry_fails_with_serial_task_busy(redis_client):
    lock = get_redis_client().lock("soil:serial:busy-key", timeout=30)
    assert lock.acquire(blocking=False)
    try:
        with pytest.raises(SerialTaskBusy, match="still in progress"):
            serial_recorder.apply(args=("busy-key", 0, "late"), retries=serial_recorder.max_retries, throw=True)
    finally:
        lock.release()


def test_an_eager_serial_run_that_finds_the_key_busy_raises_retry_to_the_caller(eager, redis_client):
    lock = get_redis_client().lock("soil:serial:eager-busy", timeout=30)
    assert lock.acquire(blocking=False)
    try:
        with pytest.raises(Retry):
            serial_recorder.delay("eager-busy", 0, "eager")
    finally:
        lock.release()
