"""The broker setting: Redis by default, RabbitMQ for amqp:// (durable quorum queues, results still on Redis),
and the node config whose consumer_timeout must outlast the longest hard time limit."""
import json
import subprocess
import sys

import pytest
from django.db import OperationalError

from exports.runs import lifecycle
from project.broker import consumer_timeout_ms, longest_hard_limit, rabbitmq_conf, task_queues
from project.queues import QUEUES, time_limits
from tests.processes import ROOT

SHOW_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
from project.celery import app
queue = settings.CELERY_TASK_QUEUES[0]
print(json.dumps({
    "rabbitmq": settings.BROKER_IS_RABBITMQ, "broker": app.conf.broker_url, "results": app.conf.result_backend,
    "soil_redis": getattr(settings, "SOIL_REDIS_URL", None), "cache": settings.CACHES["default"]["LOCATION"],
    "queues": [q.name for q in settings.CELERY_TASK_QUEUES], "arguments": queue.queue_arguments,
    "durable": queue.durable, "exchange_type": queue.exchange.type,
    "detect_quorum": app.conf.worker_detect_quorum_queues, "acks_late": app.conf.task_acks_late,
    "transport": app.conf.broker_transport_options,
}))
"""


def settings_with(**env):
    """The settings a process gets from this environment (settings are read once, at start)."""
    base = {"PATH": "/usr/bin:/bin", "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "project.settings",
            "REDIS_URL": "redis://results.invalid:6379/2"}
    out = subprocess.run([sys.executable, "-c", SHOW_SETTINGS], cwd=ROOT, env={**base, **env}, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_broker_is_redis_unless_a_broker_url_names_another():
    shown = settings_with()
    assert shown["broker"] == shown["results"] == "redis://results.invalid:6379/2"
    assert not shown["rabbitmq"] and shown["arguments"] is None and shown["exchange_type"] == "direct"
    assert "visibility_timeout" in shown["transport"]


@pytest.mark.parametrize("variable", ["CELERY_BROKER_URL", "BROKER_URL"])
def test_an_amqp_broker_url_selects_rabbitmq_with_durable_quorum_queues_and_results_on_redis(variable):
    shown = settings_with(**{variable: "amqp://guest:guest@rabbit.invalid:5672//"})
    assert shown["rabbitmq"] and shown["broker"].startswith("amqp://")
    redis = "redis://results.invalid:6379/2"
    assert shown["results"] == shown["soil_redis"] == shown["cache"] == redis  # results, locks, cache: Redis
    assert shown["queues"] == list(QUEUES)
    assert shown["arguments"] == {"x-queue-type": "quorum"} and shown["durable"]
    assert shown["exchange_type"] == "topic"  # what native delayed delivery (countdowns) can route to
    assert shown["detect_quorum"] and shown["acks_late"]
    assert shown["transport"]["confirm_publish"] and shown["transport"]["read_timeout"] <= 1.0


def test_every_queue_of_the_table_is_a_quorum_queue_on_rabbitmq():
    queues = task_queues(QUEUES, rabbitmq=True)
    assert [q.name for q in queues] == list(QUEUES)
    assert all(q.queue_arguments == {"x-queue-type": "quorum"} and q.durable and q.exchange.durable for q in queues)


def conf_value(conf, key):
    return next(line.split("=", 1)[1].strip() for line in conf.splitlines() if line.startswith(f"{key} ="))


def test_the_node_config_lets_a_delivery_go_unacknowledged_longer_than_the_longest_hard_limit(settings):
    """RabbitMQ closes a channel whose delivery stays unacknowledged past consumer_timeout (30 min by
    default): the config the project writes for a node must outlast every queue's hard limit."""
    conf = rabbitmq_conf(settings.QUEUE_TIME_LIMITS, port=5999)
    timeout_ms = int(conf_value(conf, "consumer_timeout"))
    longest = longest_hard_limit(settings.QUEUE_TIME_LIMITS)
    assert longest >= 3 * 60 * 60  # the saved exports' 3 h 5 min
    assert timeout_ms > longest * 1000
    assert timeout_ms == consumer_timeout_ms(settings.QUEUE_TIME_LIMITS)
    assert conf_value(conf, "listeners.tcp.1") == "127.0.0.1:5999"


def test_a_longer_time_limit_from_the_environment_moves_the_consumer_timeout_with_it(monkeypatch):
    monkeypatch.setenv("SAVED_EXPORTS_QUEUE_TIME_LIMIT", str(6 * 60 * 60))
    limits = time_limits()
    assert int(conf_value(rabbitmq_conf(limits), "consumer_timeout")) > 6 * 60 * 60 * 1000


def test_the_rabbitmq_config_command_prints_what_the_node_needs(settings):
    out = subprocess.run([sys.executable, "manage.py", "rabbitmq_config", "--port", "5681"], cwd=ROOT,
                         env={"PATH": "/usr/bin:/bin", "DEBUG": "true"}, check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert int(conf_value(out, "consumer_timeout")) == consumer_timeout_ms(settings.QUEUE_TIME_LIMITS)


# --- A build that lost its database records how it ended once the database answers.

def test_a_transition_is_tried_again_until_the_database_answers():
    calls = []

    def transition():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return "done"

    assert lifecycle.when_database_answers(transition, seconds=10) == "done"
    assert len(calls) == 3


def test_a_transition_gives_up_when_the_database_stays_away():
    def transition():
        raise OperationalError("could not connect to server")

    with pytest.raises(OperationalError):
        lifecycle.when_database_answers(transition, seconds=0.5)


def test_a_lost_database_is_recognised_through_the_exceptions_causes():
    try:
        try:
            raise OperationalError("terminating connection due to administrator command")
        except OperationalError as exc:
            raise RuntimeError("the build failed") from exc
    except RuntimeError as wrapped:
        assert lifecycle.lost_the_database(wrapped)
    assert not lifecycle.lost_the_database(ValueError("bad value"))


# --- RabbitMQ's redelivery, and a build that lost its database (plain functions, on the test database).

@pytest.fixture
def run(alice):
    from django.utils import timezone

    from exports.demo import ensure_demo_domain
    from exports.models import ExportRun

    domain = ensure_demo_domain(slug="broker", members=[alice])
    return ExportRun.objects.create(owner=alice, domain=domain, definition=domain.definitions.first(),
                                    parameters={"format": "csv"}, parameters_key="k", task_id="task-1",
                                    download_id="d1", queued_at=timezone.now())


@pytest.mark.django_db
def test_a_message_rabbitmq_returned_takes_over_a_lease_its_holder_stopped_renewing(run, settings):
    from exports.models import ExportRun

    settings.EXPORT_LEASE_RENEW_SECONDS = 0.2
    first = lifecycle.start(run.pk, "task-1")
    ExportRun.objects.filter(pk=run.pk).update(lease_owner="another-machine:4242")  # its death cannot be seen
    assert lifecycle.start(run.pk, "task-1") is None  # a plain second delivery waits for the lease
    second = lifecycle.start(run.pk, "task-1", returned_by_broker=True)
    assert second is not None and second.lease_id != first.lease_id
    assert ExportRun.objects.get(pk=run.pk).attempts == 2


@pytest.mark.django_db(transaction=True)
def test_a_message_rabbitmq_returned_leaves_a_holder_that_still_renews_alone(run, settings):
    """RabbitMQ also returns the message of a worker whose connection broke while it went on building."""
    import threading

    from exports.models import ExportRun

    settings.EXPORT_LEASE_RENEW_SECONDS = 0.2
    first = lifecycle.start(run.pk, "task-1")
    ExportRun.objects.filter(pk=run.pk).update(lease_owner="another-machine:4242")
    stop = threading.Event()

    def keep_renewing():
        from django.db import connection

        while not stop.wait(0.1):
            lifecycle.renew(first)
        connection.close()

    renewer = threading.Thread(target=keep_renewing)
    renewer.start()
    try:
        assert lifecycle.start(run.pk, "task-1", returned_by_broker=True) is None
    finally:
        stop.set()
        renewer.join()
    assert ExportRun.objects.get(pk=run.pk).lease_id == first.lease_id


@pytest.mark.django_db
def test_a_build_that_lost_its_database_queues_its_run_again_once_it_answers(run, django_capture_on_commit_callbacks):
    from exports.models import ExportRun
    from exports.runs import services

    lease = lifecycle.start(run.pk, "task-1")
    run.refresh_from_db()
    lost = OperationalError("terminating connection due to administrator command")
    with django_capture_on_commit_callbacks() as sent:
        services.record_failed_build(lease, run, lost)
    run.refresh_from_db()
    assert run.status == ExportRun.Status.QUEUED and run.task_id not in ("task-1", "") and run.lease_id == ""
    assert len(sent) == 2  # its new message, and the word to the run's page (lifecycle.announced)


@pytest.mark.django_db
def test_a_build_out_of_attempts_that_lost_its_database_is_failed_in_words(run, settings):
    from exports.models import ExportRun
    from exports.runs import services

    settings.EXPORT_MAX_ATTEMPTS = 1
    lease = lifecycle.start(run.pk, "task-1")
    run.refresh_from_db()
    services.record_failed_build(lease, run, OperationalError("the database system is shutting down"))
    run.refresh_from_db()
    assert run.status == ExportRun.Status.FAILED and "error on our side" in run.error
