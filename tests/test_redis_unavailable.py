"""An unreachable Redis: pages answer 503 with a way forward, never 500, and tasks skip progress reports.

In-process; tests/test_faults_redis.py breaks a real Redis under a real web server and worker."""
import json
import logging
import socket
from types import SimpleNamespace

import pytest
from django.test import RequestFactory
from django.urls import resolve, reverse
from kombu.exceptions import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from project.middleware import UNAVAILABLE_MESSAGE, RedisUnavailableMiddleware
from soil import progress
from soil.exceptions import caused_by_unavailable_redis

pytestmark = pytest.mark.django_db


def raised_from(cause, exc):
    try:
        raise exc from cause
    except Exception as raised:  # noqa: BLE001
        return raised


@pytest.mark.parametrize("exc", [
    RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."),
    RedisTimeoutError("Timeout reading from socket"),
    OperationalError("Error 111 connecting"),
    # Celery's result consumer gives up with a RuntimeError raised from the redis error.
    raised_from(RedisConnectionError("refused"), RuntimeError("Retry limit exceeded")),
], ids=["redis-connection", "redis-timeout", "kombu-operational", "celery-result-consumer"])
def test_redis_and_broker_connection_errors_mean_unavailable(exc):
    assert caused_by_unavailable_redis(exc)


@pytest.mark.parametrize("exc", [
    ValueError("bad input"),
    RuntimeError("a bug"),
    KeyError("missing"),
], ids=["value", "runtime", "key"])
def test_other_errors_stay_errors(exc):
    assert not caused_by_unavailable_redis(exc)


def test_an_error_raised_while_handling_a_redis_error_stays_an_error():
    try:
        try:
            raise RedisConnectionError("refused")
        except RedisConnectionError:
            raise KeyError("a bug in the handler")  # noqa: B904 (implicit context, not a cause)
    except KeyError as exc:
        assert not caused_by_unavailable_redis(exc)


def answer(request, exc):
    return RedisUnavailableMiddleware(lambda r: None).process_exception(request, exc)


def test_a_page_gets_an_html_503_with_retry_after_and_a_way_back(alice, caplog):
    request = RequestFactory().post("/exports/demo/definitions/1/start/", HTTP_REFERER="http://testserver/exports/demo/")
    request.user = alice
    with caplog.at_level(logging.ERROR, logger="project.middleware"):
        response = answer(request, RedisConnectionError("Error 111 connecting to 127.0.0.1:6379."))
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    page = response.content.decode()
    assert "try again in a minute" in page
    assert 'href="http://testserver/exports/demo/">Try again</a>' in page
    assert "Error 111" not in page and "6379" not in page
    assert "Error 111 connecting" in caplog.text  # the details go to the log


def test_a_post_from_elsewhere_offers_the_exports_page_instead_of_the_other_site(alice):
    request = RequestFactory().post("/exports/demo/definitions/1/start/", HTTP_REFERER="https://evil.example/")
    request.user = alice
    page = answer(request, RedisTimeoutError("Timeout reading from socket")).content.decode()
    assert "evil.example" not in page
    assert f'href="{reverse("exports:home")}">Try again</a>' in page


def test_a_client_that_asks_for_json_gets_json(alice):
    request = RequestFactory().get("/exports/", HTTP_ACCEPT="application/json")
    request.user = alice
    response = answer(request, OperationalError("Error 111 connecting"))
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "60"
    assert json.loads(response.content) == {"error": UNAVAILABLE_MESSAGE}


@pytest.mark.parametrize("view_name, args", [("download_status", ["abc"]),
                                             ("exports:api_run", ["00000000-0000-0000-0000-000000000000"])])
def test_a_view_whose_callers_read_json_answers_json_whatever_they_accept(alice, view_name, args):
    """soil's status (named in project.middleware) and the exports API (marked answers_json)."""
    url = reverse(view_name, args=args)
    request = RequestFactory().get(url, HTTP_ACCEPT="text/html")
    request.resolver_match = resolve(url)
    request.user = alice
    response = answer(request, OperationalError("Error 111 connecting"))
    assert response.status_code == 503 and response["Content-Type"] == "application/json"


def test_other_exceptions_are_left_to_django(alice):
    request = RequestFactory().get("/exports/")
    request.user = alice
    assert answer(request, ValueError("a bug")) is None


def dead_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_down(settings):
    """The soil cache points at a port where nothing listens."""
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{dead_port()}/0"}}


def test_the_status_endpoint_answers_json_503_when_the_soil_cache_is_down(alice_client, redis_down):
    response = alice_client.get(reverse("download_status", args=["0" * 32]))
    assert response.status_code == 503
    assert response.json() == {"error": UNAVAILABLE_MESSAGE}


def test_the_heartbeat_answers_json_503_when_the_soil_cache_is_down(alice_client, redis_down):
    response = alice_client.get(reverse("heartbeat_status"))
    assert response.status_code == 503
    assert response.json() == {"error": UNAVAILABLE_MESSAGE}


def test_the_download_page_answers_html_503_when_the_soil_cache_is_down(alice_client, redis_down):
    response = alice_client.get(reverse("retrieve_download", args=["0" * 32]))
    assert response.status_code == 503
    assert b"try again in a minute" in response.content


class RunningTask:
    """Just enough of a task inside a worker for set_task_progress."""

    def __init__(self):
        self.request = SimpleNamespace(id="a-task-id", called_directly=False, is_eager=False)


@pytest.mark.parametrize("exc", [RedisConnectionError("Error 111"), RedisTimeoutError("Timeout reading")],
                         ids=["down", "frozen"])
def test_a_progress_report_that_cannot_reach_redis_is_logged_and_the_task_goes_on(monkeypatch, caplog, exc):
    def unreachable(task, state, meta):
        raise exc

    monkeypatch.setattr(progress, "update_task_state", unreachable)
    with caplog.at_level(logging.WARNING, logger="soil.progress"):
        progress.set_task_progress(RunningTask(), 5, 10)
    assert "Progress 5/10 of task a-task-id not recorded" in caplog.text


def test_a_progress_report_that_fails_otherwise_still_raises(monkeypatch):
    def broken(task, state, meta):
        raise ValueError("a bug")

    monkeypatch.setattr(progress, "update_task_state", broken)
    with pytest.raises(ValueError):
        progress.set_task_progress(RunningTask(), 5, 10)
