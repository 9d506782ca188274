"""The run page follows its run through server-sent events, and polls only when the stream fails.

The run is held in the running state under a lease of this process; its progress is written to the
real Redis as a build writes it, and the page is served by the real (threaded) live server.
"""
import time

import pytest
from django.utils import timezone

from exports.demo import ensure_demo_domain
from exports.files.partitions import store_progress
from exports.models import ExportRun
from exports.runs import lifecycle

pytestmark = [pytest.mark.browser]
WORDS = "{current:,} of {total:,} rows"


@pytest.fixture
def running(alice, transactional_db, redis_client):
    domain = ensure_demo_domain(slug="sse", name="SSE clinic", members=[alice])
    run = ExportRun.objects.create(owner=alice, domain=domain, definition=domain.definitions.first(),
                                   parameters={"format": "csv"}, parameters_key="k", task_id=f"sse-{time.time()}",
                                   download_id="d-sse", queued_at=timezone.now())
    lease = lifecycle.start(run.pk, run.task_id)
    store_progress(run.task_id, 0, 1_000, WORDS, time.time())
    return run, lease


def requests_to(page):
    seen = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def test_the_bar_moves_with_server_sent_events_and_no_polling(logged_in_page, live_server, running):
    run, lease = running
    page = logged_in_page
    seen = requests_to(page)
    page.goto(f"{live_server.url}/exports/runs/{run.pk}/?polling=off")
    page.locator(".soil-progress[data-updates=events]").wait_for(state="attached")
    bar = page.locator(".soil-bar")

    for current in (300, 700):
        store_progress(run.task_id, current, 1_000, WORDS, time.time())
        page.wait_for_function(f"document.querySelector('.soil-bar').getAttribute('aria-valuenow') === '{current // 10}'")
        assert page.locator(".soil-message").inner_text() == f"{current:,} of 1,000 rows"
    assert bar.get_attribute("aria-valuenow") == "70"

    assert lifecycle.succeed(lease, {"rows": 1_000, "bytes": 10, "file_key": "none.csv",
                                      "expires_at": timezone.now() + timezone.timedelta(hours=1)})
    page.locator("#run-download").wait_for()  # the final status reloads the page once
    assert page.locator("#run-status").inner_text() == "Succeeded"
    assert any(f"/runs/{run.pk}/events/" in url for url in seen)
    assert not [url for url in seen if "/status/" in url]


def test_the_page_polls_when_the_event_stream_is_refused(logged_in_page, live_server, running):
    run, _ = running
    page = logged_in_page
    page.route("**/events/", lambda route: route.fulfill(status=503, body="unavailable"))
    seen = requests_to(page)
    page.goto(f"{live_server.url}/exports/runs/{run.pk}/")
    page.locator(".soil-progress[data-updates=polling]").wait_for(state="attached")
    store_progress(run.task_id, 500, 1_000, WORDS, time.time())
    page.wait_for_function("document.querySelector('.soil-bar').getAttribute('aria-valuenow') === '50'")
    assert [url for url in seen if f"/runs/{run.pk}/status/" in url]
