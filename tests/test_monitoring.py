"""Operations: declared queues, time-to-start, queue_status, /metrics and the health checks.

The fault-style tests build a private deployment (`stack`): a Redis, a web server and workers of
their own, started, held back and killed by PID.
"""
import json
import subprocess
import sys
import time

import pytest
import redis
from celery.exceptions import QueueNotFound
from celery.signals import before_task_publish
from django.urls import reverse

from exports.saved.services import save_definition
from project import monitoring
from project.tasks import demo_sleep
from tests.processes import ROOT, free_port, wait_until

# --- queues ----------------------------------------------------------------------------------


def test_a_task_sent_to_an_unknown_queue_raises_at_send_time():
    with pytest.raises(QueueNotFound):
        demo_sleep.apply_async(kwargs={"seconds": 0}, queue="export_downlaod_queue")


def test_worker_groups_split_the_queue_table_by_how_people_wait():
    from django.conf import settings

    from project.queues import queues_of_group, worker_arguments

    interactive, batch = queues_of_group("interactive"), queues_of_group("batch")
    assert {"export_download_queue", "email_queue", "celery"} <= set(interactive)
    assert {"saved_exports_queue", "background_queue", "celery_periodic"} <= set(batch)
    assert sorted(interactive + batch) == sorted(settings.QUEUE_TABLE)
    arguments = worker_arguments("batch")
    assert arguments[arguments.index("-Q") + 1] == ",".join(batch)
    assert "--max-tasks-per-child" in arguments and "--prefetch-multiplier" in arguments


@pytest.mark.worker
def test_rebuild_now_is_sent_to_the_interactive_group(worker, alice_client, kathmandu_saved):
    from exports.runs.queueing import REBUILD_NOW_QUEUE
    from project.queues import queues_of_group

    sent = []

    def note(sender=None, routing_key=None, **kwargs):
        sent.append((sender, routing_key))

    before_task_publish.connect(note, weak=False)
    try:
        domain, definition = kathmandu_saved
        response = alice_client.post(reverse("exports:saved_rebuild", args=[domain.slug, definition.pk]))
    finally:
        before_task_publish.disconnect(note)
    assert response.status_code == 302
    assert ("exports.tasks.rebuild_saved_export", REBUILD_NOW_QUEUE) in sent
    assert REBUILD_NOW_QUEUE in queues_of_group("interactive")
    status_url = response["Location"].rstrip("/") + "/status/"
    wait_until(lambda: alice_client.get(status_url).json()["is_ready"], 60, "the rebuild on the interactive queue")


@pytest.fixture
def kathmandu_saved(alice):
    from exports.models import Domain, ExportDefinition

    domain = Domain.objects.create(slug="ktm-ops", name="Kathmandu", time_zone="Asia/Kathmandu")
    domain.members.add(alice)
    definition = save_definition(ExportDefinition(domain=domain, name="Nightly", source="form_submissions",
                                                  format="csv", is_daily_saved=True))
    return domain, definition


# --- the hooks never break a task ------------------------------------------------------------


def test_monitoring_writes_swallow_redis_errors_and_count_them(redis_client):
    redis_client.delete(monitoring.key("write_errors"))
    saved_client, saved_lost = monitoring._client, monitoring._unrecorded[0]
    monitoring._client = redis.Redis(port=free_port(), socket_connect_timeout=0.2, socket_timeout=0.2)  # nothing listens
    monitoring._unrecorded[0] = 0
    try:
        monitoring.record_time_to_start("celery", 1.5, "lost-1")
        monitoring.record_outcome("some.task", "SUCCESS", 0.1)
        monitoring.flush()
        assert monitoring._unrecorded[0] == 2
    finally:
        monitoring._client = saved_client
    monitoring.record_outcome("some.task", "SUCCESS", 0.1)  # Redis is back: the losses are counted
    monitoring.flush()
    wait_until(lambda: int(redis_client.get(monitoring.key("write_errors")) or 0) == 2, 5, "the lost records counted")
    assert monitoring._unrecorded[0] == 0
    monitoring._unrecorded[0] = saved_lost


def test_the_rows_of_every_task_that_built_a_file_are_counted_by_its_return_value_not_its_name(redis_client):
    redis_client.delete(monitoring.key("rows_written"), monitoring.key("build_seconds"))
    monitoring.record_outcome("reports.tasks.monthly_report", "SUCCESS", 2.0, {"rows": 40, "bytes": 1200})
    monitoring.record_outcome("exports.tasks.assemble_export", "SUCCESS", 1.0, {"built": True, "rows": 600, "bytes": 9})
    monitoring.record_outcome("exports.tasks.build_export_part", "SUCCESS", 1.0, {"index": 0, "key": "k", "rows": 300})
    monitoring.record_outcome("exports.tasks.run_export", "SUCCESS", 0.1, {"built": False})
    monitoring.flush()
    assert monitoring.float_hash(monitoring.key("rows_written"), redis_client) == {
        "reports.tasks.monthly_report": 40, "exports.tasks.assemble_export": 600}  # a part's rows: in its assembly's
    assert monitoring.float_hash(monitoring.key("build_seconds"), redis_client) == {
        "reports.tasks.monthly_report": 2.0, "exports.tasks.assemble_export": 1.0}


def test_a_workers_heartbeat_names_the_queues_it_consumes(redis_client):
    heartbeat = monitoring.WorkerHeartbeat("heartbeat-test@localhost", ["email_queue", "celery"], interval=10)
    heartbeat.beat()
    entry = monitoring.live_workers(conn=redis_client)["heartbeat-test@localhost"]
    assert entry["queues"] == ["celery", "email_queue"]
    heartbeat.stop()
    assert "heartbeat-test@localhost" not in monitoring.live_workers(conn=redis_client)


# --- /metrics --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_metrics_are_closed_by_default(client, settings):
    settings.METRICS_BEARER_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = "", []
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


@pytest.mark.django_db
def test_metrics_refuse_an_unauthenticated_request_and_serve_histograms_to_an_authorised_one(client, settings):
    settings.METRICS_BEARER_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = "metrics-token-for-tests", []
    monitoring.record_time_to_start("email_queue", 3.0, "metrics-test")
    monitoring.record_outcome("exports.tasks.run_export", "SUCCESS", 2.0, {"built": True, "rows": 500, "bytes": 9000})
    monitoring.flush()
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 403
    response = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-for-tests")
    assert response.status_code == 200
    text = response.content.decode()
    assert 'exports_time_to_start_seconds_bucket{le="2.5",queue="email_queue"} 0.0' in text
    assert 'exports_time_to_start_seconds_bucket{le="5.0",queue="email_queue"} 1.0' in text
    assert 'exports_task_duration_seconds_count{task="exports.tasks.run_export"}' in text
    assert 'exports_rows_written_total{task="exports.tasks.run_export"}' in text
    assert 'exports_queue_length{queue="saved_exports_queue"}' in text
    assert 'exports_runs{status="queued"} 0.0' in text
    assert "exports_beat_last_tick_timestamp_seconds" in text


@pytest.mark.django_db
def test_metrics_count_export_runs_by_status_every_status_included(client, settings, alice):
    from exports.demo import ensure_demo_domain
    from exports.models import ExportRun

    settings.METRICS_BEARER_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = "metrics-token-for-tests", []
    domain = ensure_demo_domain(members=[alice])
    for key, status in [("a", "failed"), ("b", "failed"), ("c", "succeeded")]:
        ExportRun.objects.create(owner=alice, domain=domain, definition=domain.definitions.first(),
                                 parameters_key=key, status=status)
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token-for-tests").content.decode()
    assert 'exports_runs{status="failed"} 2.0' in text and 'exports_runs{status="succeeded"} 1.0' in text
    assert 'exports_runs{status="cancelled"} 0.0' in text


@pytest.mark.django_db
def test_metrics_answer_an_allowed_address_only(client, settings):
    settings.METRICS_BEARER_TOKEN, settings.METRICS_ALLOWED_ADDRESSES = "", ["10.1.0.0/16", "192.0.2.7"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403


def test_liveness_answers_without_a_login(client):
    response = client.get("/health/")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


# --- with real processes ---------------------------------------------------------------------


def queue_status(stack, **env):
    """`manage.py queue_status --json` against the stack, as an operator runs it; (rows by queue, answer, seconds)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "manage.py", "queue_status", "--json"], cwd=ROOT, env=stack.env(**env),
                          capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    return {row["queue"]: row for row in answer["queues"]}, answer["workers_answered"], took


@pytest.mark.fault
def test_a_task_held_back_two_seconds_shows_its_time_to_start_late_against_a_one_second_target(stack):
    sender = stack.celery_client()  # its broker: Redis, or RabbitMQ in ./test.sh's RabbitMQ pass
    try:
        sender.send_task("project.tasks.demo_sleep", kwargs={"seconds": 0}, queue="celery")
    finally:
        sender.close()
    sent = time.monotonic()
    rows, answered, took = queue_status(stack, CELERY_TARGET_SECONDS_TO_START=1)
    print(f"queue_status with no worker took {took:.2f} s")
    assert not answered
    assert rows["celery"]["waiting"] == 1 and rows["celery"]["workers"] == []
    # RabbitMQ cannot show its oldest message without taking it (project/queue_report.py).
    assert (rows["celery"]["oldest_seconds"] is None) == stack.on_rabbitmq
    assert rows["email_queue"]["waiting"] == 0
    time.sleep(max(0.0, 2.0 - (time.monotonic() - sent)))
    worker = stack.worker(queues=["celery"])
    conn = stack.redis.client()
    wait_until(lambda: monitoring.percentiles("celery", conn=conn)[0.5] is not None, 30, "the task to start")
    assert monitoring.percentiles("celery", conn=conn)[0.5] >= 2.0
    rows, answered, took = queue_status(stack, CELERY_TARGET_SECONDS_TO_START=1)
    print(f"queue_status with one worker took {took:.2f} s")
    assert answered and rows["celery"]["workers"] == [worker.hostname]
    assert rows["celery"]["waiting"] == 0
    assert rows["celery"]["p50_seconds"] >= 2.0 and rows["celery"]["target_seconds"] == 1
    assert rows["celery"]["state"] == "LATE"
    assert rows["email_queue"]["state"] == "OK" and rows["email_queue"]["workers"] == []


@pytest.mark.fault
def test_readiness_turns_503_when_the_worker_is_killed_and_200_when_it_is_back(stack):
    interval = {"MONITORING_WORKER_HEARTBEAT_INTERVAL": "0.5"}
    web = stack.web(**interval)
    session = stack.session(web)
    status, body = session.json("GET", "/health/ready/")
    assert status == 503 and body["checks"]["workers"]["export_download_queue"] == "failing"
    worker = stack.worker(**interval)
    sender = stack.celery_client()  # its broker: Redis, or RabbitMQ in ./test.sh's RabbitMQ pass
    try:  # beat's tick: the heartbeat task, as beat sends it
        sender.send_task("soil.tasks.heartbeat", queue="celery_periodic")
    finally:
        sender.close()
    wait_until(lambda: session.json("GET", "/health/ready/")[0] == 200, 30, "ready with a live worker")
    status, body = session.json("GET", "/health/ready/")
    assert body == {"status": "ok", "checks": {"database": "ok", "redis": "ok", "beat": "ok",
                                               "workers": {"export_download_queue": "ok", "email_queue": "ok",
                                                           "celery": "ok"}}}

    worker.kill_group()  # SIGKILL, by PID: no goodbye from the worker
    wait_until(lambda: session.json("GET", "/health/ready/")[0] == 503, 30, "503 once the worker is dead")
    status, body = session.json("GET", "/health/ready/")
    assert body["status"] == "unavailable" and body["checks"]["database"] == "ok"
    assert set(body["checks"]["workers"].values()) == {"failing"}
    assert worker.hostname.split("@")[0] not in json.dumps(body)  # nothing about hosts

    stack.worker(**interval)
    wait_until(lambda: session.json("GET", "/health/ready/")[0] == 200, 30, "200 once a worker is back")
