"""The run's event stream: one status event per change, keep-alives, an end when the run is final or
the stream is old, and the same owner checks as the JSON status."""
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.utils import timezone

from exports.demo import ensure_demo_domain
from exports.files.partitions import store_progress
from exports.models import ExportRun
from exports.runs import lifecycle

Status = ExportRun.Status
pytestmark = pytest.mark.django_db(transaction=True)  # the stream closes its connection between reads


@pytest.fixture
def fast_streams(settings):
    settings.EXPORT_STREAM_POLL_SECONDS = 0.05
    settings.EXPORT_STREAM_KEEPALIVE_SECONDS = 0.2
    settings.EXPORT_STREAM_MAX_SECONDS = 1


@pytest.fixture
def running(alice, redis_client):
    domain = ensure_demo_domain(slug="streams", members=[alice])
    run = ExportRun.objects.create(owner=alice, domain=domain, definition=domain.definitions.first(),
                                   parameters={"format": "csv"}, parameters_key="k", task_id=f"task-{time.time()}",
                                   download_id="d-streams", queued_at=timezone.now())
    lease = lifecycle.start(run.pk, run.task_id)
    run.refresh_from_db()
    return run, lease


def events(response, until=None):
    """(kind, data) of each event or comment the stream sends, while `until(kind, data)` says to go on."""
    assert response["Content-Type"] == "text/event-stream"
    for chunk in response.streaming_content:
        text = chunk.decode()
        if text.startswith(":"):
            kind, data = "comment", text
        elif text.startswith("retry:"):
            kind, data = "retry", text
        else:
            lines = dict(line.split(": ", 1) for line in text.strip().split("\n"))
            kind, data = lines["event"], json.loads(lines["data"])
        yield kind, data
        if until and not until(kind, data):
            return


def test_the_stream_sends_each_change_once_then_ends_with_the_final_status(alice_client, running, fast_streams):
    run, lease = running
    response = alice_client.get(f"/exports/runs/{run.pk}/events/")
    seen = []
    for kind, data in events(response):
        seen.append((kind, data.get("percent") if isinstance(data, dict) else None))
        statuses = [s for s in seen if s[0] == "status"]
        if len(statuses) == 1:
            store_progress(run.task_id, 40, 100, "{current} of {total}", time.time())
        elif len(statuses) == 2:
            assert lifecycle.succeed(lease, {"rows": 100})
    kinds = [kind for kind, _ in seen]
    assert kinds[0] == "retry"
    assert [s for s in seen if s[0] == "status"] == [("status", 0), ("status", 40), ("status", 100)]
    assert kinds[-1] == "status"  # ended by the final status, before its lifetime


def test_the_stream_sends_keep_alives_and_ends_at_its_lifetime(alice_client, running, fast_streams):
    run, _ = running
    started = time.monotonic()
    seen = [kind for kind, _ in events(alice_client.get(f"/exports/runs/{run.pk}/events/"))]
    took = time.monotonic() - started
    assert seen.count("status") == 1 and seen.count("comment") >= 3
    assert 0.8 < took < 5  # the lifetime is 1 s; the browser reconnects after it


def test_only_the_owner_may_open_the_stream(client, bob, running):
    run, _ = running
    client.force_login(bob)
    assert client.get(f"/exports/runs/{run.pk}/events/").status_code == 404
    client.logout()
    assert client.get(f"/exports/runs/{run.pk}/events/").status_code == 302


def test_a_finished_run_sends_its_status_once_and_ends(alice_client, running, fast_streams):
    run, lease = running
    lifecycle.fail(lease, "Broken in words.")
    seen = list(events(alice_client.get(f"/exports/runs/{run.pk}/events/")))
    assert [kind for kind, _ in seen] == ["retry", "status"]
    assert seen[1][1]["run_status"] == Status.FAILED and seen[1][1]["errors"] == ["Broken in words."]


def test_the_async_stream_for_asgi_reads_and_ends_as_the_plain_one(running, fast_streams):
    import asyncio

    from exports.runs.status import run_status
    from exports.web.streams import StatusStream

    run, lease = running

    async def collect():
        stream = StatusStream(run, time.monotonic())
        chunks = []
        async for chunk in stream.async_chunks(run_status(run)):
            chunks.append(chunk)
            if len(chunks) == 2:
                await asyncio.to_thread(lifecycle.cancelled, lease)
        return chunks

    # In a thread of its own: Playwright's sync API may keep an event loop in the test thread.
    with ThreadPoolExecutor(1) as thread:
        chunks = thread.submit(asyncio.run, collect()).result(timeout=30)
    statuses = [json.loads(c.decode().split("data: ", 1)[1]) for c in chunks if c.startswith(b"event: status")]
    assert [s["run_status"] for s in statuses] == [Status.RUNNING, Status.CANCELLED]


@pytest.fixture
def slow_re_reads(settings):
    """A re-read only every 20 s: a progress report seen sooner was pushed."""
    settings.EXPORT_STREAM_POLL_SECONDS = 20
    settings.EXPORT_STREAM_MAX_SECONDS = 60


def report_soon(run, current):
    """The build's report, from another thread while the stream waits (as a worker's would come)."""
    timer = threading.Timer(0.3, store_progress, args=(run.task_id, current, 100, "{current} of {total}", time.time()))
    timer.start()
    return timer


def test_a_progress_report_reaches_the_stream_without_waiting_for_the_re_read(alice_client, running, slow_re_reads):
    run, _ = running
    response = alice_client.get(f"/exports/runs/{run.pk}/events/")
    started = None
    try:
        for kind, data in events(response):
            if kind == "status" and started is None:
                report_soon(run, 40)
                started = time.monotonic()
            elif kind == "status":
                break
    finally:
        response.close()
    assert data["percent"] == 40 and data["current"] == 40
    assert time.monotonic() - started < 10  # not the re-read, 20 s away


def test_the_async_stream_wakes_on_a_progress_report_too(running, slow_re_reads):
    import asyncio

    from exports.runs.status import run_status
    from exports.web.streams import StatusStream

    run, _ = running

    async def second_status():
        stream = StatusStream(run, time.monotonic())
        chunks = stream.async_chunks(run_status(run))
        statuses = []
        try:
            async for chunk in chunks:
                if chunk.startswith(b"event: status"):
                    statuses.append(json.loads(chunk.decode().split("data: ", 1)[1]))
                    if len(statuses) == 1:
                        report_soon(run, 60)
                    else:
                        return statuses[-1]
        finally:
            await chunks.aclose()

    started = time.monotonic()
    with ThreadPoolExecutor(1) as thread:
        status = thread.submit(asyncio.run, second_status()).result(timeout=30)
    assert status["percent"] == 60
    assert time.monotonic() - started < 10


def transition_soon(action):
    """A change of the run's state made by someone other than its task (no write of its task record)."""
    timer = threading.Timer(0.3, action)
    timer.start()
    return timer


@pytest.mark.parametrize("transition", ["succeeded by a partitioned build's assembly", "cancelled by its owner"])
def test_a_change_of_state_reaches_the_stream_without_waiting_for_the_re_read(alice_client, running, slow_re_reads,
                                                                               transition):
    run, lease = running
    succeeds = transition.startswith("succeeded")
    action = ((lambda: lifecycle.succeed(lease, {"rows": 3})) if succeeds
              else (lambda: lifecycle.request_cancel(ExportRun.objects.get(pk=run.pk))))
    response = alice_client.get(f"/exports/runs/{run.pk}/events/")
    statuses, started = [], None
    try:
        for kind, data in events(response):
            if kind == "status":
                statuses.append(data)
                if started is None:
                    transition_soon(action)
                    started = time.monotonic()
                else:
                    break
    finally:
        response.close()
    assert time.monotonic() - started < 10  # not the re-read, 20 s away
    first, second = statuses
    assert first["run_status"] == Status.RUNNING and not first["cancel_requested"]
    if succeeds:
        assert second["run_status"] == Status.SUCCEEDED
    else:
        assert second["run_status"] == Status.RUNNING and second["cancel_requested"]


def test_the_async_stream_wakes_when_the_reaper_settles_the_run(running, slow_re_reads):
    import asyncio

    from exports.runs.status import run_status
    from exports.web.streams import StatusStream

    run, _ = running

    async def last_status():
        stream = StatusStream(run, time.monotonic())
        async for chunk in stream.async_chunks(run_status(run)):
            if chunk.startswith(b"event: status"):
                status = json.loads(chunk.decode().split("data: ", 1)[1])
                if status["run_status"] == Status.RUNNING:
                    transition_soon(lambda: lifecycle.settle(ExportRun.objects.get(pk=run.pk), Status.FAILED,
                                                             "The worker building it stopped."))
        return status

    started = time.monotonic()
    with ThreadPoolExecutor(1) as thread:
        status = thread.submit(asyncio.run, last_status()).result(timeout=30)
    assert status["run_status"] == Status.FAILED
    assert time.monotonic() - started < 10
