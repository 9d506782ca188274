"""Broker faults, on whichever broker the stack runs (Redis, or RabbitMQ under ./test.sh's RabbitMQ pass):
the broker restarted with exports queued and one running, a worker killed on another machine, the broker
down when someone presses Export.

Run with -s to see the measured times (quoted in docs/operations.md, "Choosing a broker").
"""
import json
import time

import pytest

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportRun
from exports.runs import words
from project.middleware import UNAVAILABLE_MESSAGE
from tests.processes import wait_until
from tests.test_faults import gated, open_gate, poll_until_finished, start_export, stored_files  # noqa: F401

pytestmark = [pytest.mark.fault]
Status = ExportRun.Status


def broker_name(stack):
    return "RabbitMQ" if stack.on_rabbitmq else "Redis"


@pytest.mark.own_broker
def test_ten_queued_exports_survive_a_broker_restart_and_the_running_one_completes_once(
        stack, alice, gated):  # noqa: F811
    env = {"EXPORT_MAX_ACTIVE_RUNS_PER_USER": 20, "EXPORT_MAX_ACTIVE_RUNS_PER_DOMAIN": 40}
    web = stack.web(**env)
    stack.worker(concurrency=1, **env)  # busy with the gated export: the others wait in the broker
    session = stack.session(web).login(alice.username, alice.raw_password)
    running = start_export(session, gated)
    wait_until(lambda: ExportRun.objects.get(pk=running.pk).status == Status.RUNNING, 30, "the build to start")
    definition = gated.domain.definitions.get(name="All form submissions")
    url = f"/exports/api/{gated.domain.slug}/definitions/{definition.pk}/start/"
    queued = []
    for day in range(1, 11):  # ten different exports (a same one would be answered with the first)
        status, data = session.json("POST", url, json_body={"format": "csv", "date_from": f"2020-01-{day:02d}"})
        assert status in (200, 202), data
        queued.append(data["id"])
    assert ExportRun.objects.filter(pk__in=queued, status=Status.QUEUED).count() == 10

    restarted_at = time.monotonic()
    stack.broker.restart(down_for=0.5)  # Redis with its append-only file; RabbitMQ with its quorum queues
    open_gate(stack, gated)
    everything = [str(running.pk), *queued]
    wait_until(lambda: not ExportRun.objects.filter(pk__in=everything, status__in=ExportRun.ACTIVE).exists(), 120,
               "every export to finish", interval=0.5)
    took = time.monotonic() - restarted_at

    runs = {str(run.pk): run for run in ExportRun.objects.filter(pk__in=everything)}
    assert {run.status for run in runs.values()} == {Status.SUCCEEDED}, {r.pk: r.error for r in runs.values()}
    assert all(runs[run_id].attempts == 1 for run_id in queued), "a queued export was sent again"
    assert runs[str(running.pk)].attempts == 1, "the running export was built twice"
    for run in runs.values():
        assert stored_files(stack, run) == [run.file_key.rsplit("/", 1)[-1]]
    print(f"\n{broker_name(stack)} restarted with 10 exports queued and 1 running: all 11 built once, "
          f"the last {took:.1f} s after the restart began")


def test_a_worker_killed_on_another_machine_is_rebuilt_as_soon_as_rabbitmq_returns_its_message(
        stack, alice, gated):  # noqa: F811
    """The holder is on another host, so its death cannot be seen from here, and the lease is long: only
    RabbitMQ's redelivery (the dead connection's message back at once) gets the run going again. On Redis
    the message comes back only after its visibility timeout, so the lease decides: nobody takes the run
    from a holder whose lease is live."""
    env = {"EXPORT_LEASE_SECONDS": 600, "EXPORT_LEASE_RENEW_SECONDS": 1}
    web = stack.web(**env)
    worker = stack.worker(**env)
    session = stack.session(web).login(alice.username, alice.raw_password)
    run = start_export(session, gated)
    wait_until(lambda: ExportRun.objects.get(pk=run.pk).status == Status.RUNNING, 30, "the build to start")
    ExportRun.objects.filter(pk=run.pk).update(lease_owner="another-machine:4242")

    worker.kill_group()
    killed_at = time.monotonic()
    stack.worker(**env)
    open_gate(stack, gated)
    if not stack.on_rabbitmq:
        for _ in range(40):  # 8 s: a taken-over run would be rebuilt in about 2 s (30 rows)
            time.sleep(0.2)
            held = ExportRun.objects.get(pk=run.pk)
            assert (held.status, held.attempts, held.lease_owner) == (Status.RUNNING, 1, "another-machine:4242")
        print("\nRedis: whole worker SIGKILLed (holder on another host, lease 600 s): the lease decides")
        return
    data = poll_until_finished(session, run, timeout=60)
    recovered = time.monotonic() - killed_at

    run.refresh_from_db()
    assert data["run_status"] == Status.SUCCEEDED, (data, stack.logs())
    assert run.attempts == 2 and run.rows == 30
    assert stored_files(stack, run) == [run.file_key.rsplit("/", 1)[-1]]
    assert recovered < 30, "the new worker waited for the lease instead of taking the redelivery"
    print(f"\nRabbitMQ: whole worker SIGKILLed (holder on another host, lease 600 s): rebuilt {recovered:.1f} s "
          f"after the kill")


@pytest.mark.own_broker
def test_export_answers_503_in_words_while_the_broker_is_down(stack, alice):
    domain = ensure_demo_domain(slug="broker-down", members=[alice])
    add_demo_rows(domain, 5)
    definition = domain.definitions.get(name="Visits (short)")
    web = stack.web()
    session = stack.session(web).login(alice.username, alice.raw_password)
    stack.broker.kill()

    started = time.monotonic()
    status, headers, body = session.post(f"/exports/{domain.slug}/definitions/{definition.pk}/start/",
                                         {f"d{definition.pk}-format": "csv"})
    took = time.monotonic() - started
    assert status == 503, body[:500]
    page = body.decode()
    assert "try again in a minute" in page and "Traceback" not in page
    status, headers, body = session.request("POST", f"/exports/api/{domain.slug}/definitions/{definition.pk}/start/",
                                            json_body={"format": "xlsx"})
    assert status == 503 and json.loads(body) == {"error": UNAVAILABLE_MESSAGE}
    assert took < 3, f"Export took {took:.2f} s to answer"
    # No run waits for a message that never left: each is failed in words.
    runs = ExportRun.objects.filter(definition=definition)
    assert runs.count() == 2 and {run.status for run in runs} == {Status.FAILED}
    assert {run.error for run in runs} == {str(words.UNAVAILABLE_WORDS)}
    print(f"\n{broker_name(stack)} down: Export answered 503 in {took:.2f} s")

    stack.broker.start()
    wait_until(lambda: session.request("POST", f"/exports/api/{domain.slug}/definitions/{definition.pk}/start/",
                                       json_body={"format": "csv"})[0] in (200, 202), 60, "Export to work again")


@pytest.mark.rabbitmq
@pytest.mark.own_broker
def test_a_message_rabbitmq_refuses_is_sent_again_and_one_it_keeps_refusing_fails_in_words(stack, alice):
    """A quorum queue refuses a publish (a negative confirm) while it has no leader: just after it is
    declared, when several first messages arrive at once (CI met it: 40 simultaneous starts, one 503), or
    while a cluster elects one. The refusal is made here with a policy: the queue holds one message and
    refuses the next until it is emptied."""
    import threading

    from django.conf import settings
    from kombu import Connection

    from project.broker import task_queues
    from project.celery import NACK_RETRY_PAUSES

    domain = ensure_demo_domain(slug="broker-refuses", members=[alice])
    add_demo_rows(domain, 5)
    definition = domain.definitions.get(name="Visits (short)")
    web = stack.web()
    session = stack.session(web).login(alice.username, alice.raw_password)
    url = f"/exports/api/{domain.slug}/definitions/{definition.pk}/start/"
    queue = next(q for q in task_queues(settings.QUEUE_TABLE, rabbitmq=True) if q.name == "export_download_queue")

    with Connection(stack.broker.url, transport_options={"confirm_publish": True}) as conn:
        bound = queue(conn.default_channel)
        bound.declare()
        stack.broker.ctl("set_policy", "refuse", "^export_download_queue$",
                         '{"max-length": 1, "overflow": "reject-publish"}', "--apply-to", "queues")
        producer = conn.Producer()

        def refused():
            try:
                producer.publish({"filler": True}, exchange=queue.exchange, routing_key=queue.routing_key)
            except Exception:  # noqa: BLE001 (a refusal, once the policy holds and the queue is full)
                return True
            return False

        wait_until(refused, 30, "the queue to refuse a second message")

        def refusals():
            return web.log_path.read_text().count("RabbitMQ refused the message of exports.tasks.run_export")

        # Refused every time: the message is tried len(NACK_RETRY_PAUSES) + 1 times, then 503 in words.
        started = time.monotonic()
        status, _headers, body = session.request("POST", url, json_body={"format": "csv", "date_from": "2020-01-01"})
        took = time.monotonic() - started
        assert status == 503 and json.loads(body) == {"error": UNAVAILABLE_MESSAGE}, body[:500]
        assert refusals() == len(NACK_RETRY_PAUSES)
        assert took < sum(NACK_RETRY_PAUSES) + 2, f"Export took {took:.2f} s to answer"
        failed = ExportRun.objects.get(definition=definition)
        assert (failed.status, failed.error) == (Status.FAILED, str(words.UNAVAILABLE_WORDS))

        # Refused once, then room: the queue is emptied as soon as the web's first refusal is in its log.
        def empty_after_a_refusal():
            wait_until(lambda: refusals() > len(NACK_RETRY_PAUSES), 30, "the web's message to be refused")
            bound.purge()

        emptier = threading.Thread(target=empty_after_a_refusal)
        emptier.start()
        status, _headers, body = session.request("POST", url, json_body={"format": "csv", "date_from": "2020-01-02"})
        emptier.join(30)
        assert status == 202, body[:500]
        assert refusals() > len(NACK_RETRY_PAUSES)
        stack.broker.ctl("clear_policy", "refuse")

    run = ExportRun.objects.get(pk=json.loads(body)["id"])
    stack.worker(concurrency=1)
    data = poll_until_finished(session, run, timeout=60)
    run.refresh_from_db()
    assert data["run_status"] == Status.SUCCEEDED and run.attempts == 1, (data, stack.logs())
    print(f"\nRabbitMQ refused every try: 503 in {took:.2f} s; refused once: sent again and built once")
