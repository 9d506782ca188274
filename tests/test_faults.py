"""Faults with real processes: workers killed by PID, duplicate deliveries, time limits, a killed rebuild, a database that goes away. Each test runs its own deployment (tests/processes.py) against the test database.

Runs alone with `./test.sh -m fault`. Figures are printed (`-s` shows them) and quoted in
docs/operations.md ("Failure modes").
"""
import csv
import io
import os
import signal
import time

import pytest

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition, ExportRun, SavedExport
from exports.runs import words
from exports.saved.services import save_definition
from tests.celery_tasks import GATE_KEY
from tests.processes import wait_until

pytestmark = [pytest.mark.fault]
Status = ExportRun.Status
# Short leases so that a dead worker is noticed in seconds, not a minute.
FAST_LEASES = {"EXPORT_LEASE_SECONDS": 3, "EXPORT_LEASE_RENEW_SECONDS": 1, "EXPORT_LOST_MESSAGE_GRACE": 2}


@pytest.fixture
def gated(alice):
    """A domain of 30 rows whose gated export waits, inside the worker, until the test opens its gate."""
    domain = ensure_demo_domain(slug="faults", name="Faults", time_zone="Asia/Kolkata", members=[alice])
    add_demo_rows(domain, 30)
    definition = ExportDefinition.objects.create(domain=domain, name="Gated", source="gated_submissions",
                                                 format="csv")
    return definition


def open_gate(stack, definition):
    stack.redis.client().set(GATE_KEY.format(f"export-{definition.domain.slug}"), 1, ex=120)


def start_export(session, definition, format="csv"):
    status, headers, body = session.post(f"/exports/{definition.domain.slug}/definitions/{definition.pk}/start/",
                                         {f"d{definition.pk}-format": format})
    assert status == 302, body[:500]
    return ExportRun.objects.get(pk=headers["Location"].rstrip("/").split("/")[-1])


def poll_until_finished(session, run, timeout):
    """Poll the run's status as its page does (which also runs the reaper's check on read)."""
    def finished():
        status, data = session.json("GET", f"/exports/runs/{run.pk}/status/")
        assert status == 200, data
        return data["run_status"] not in ExportRun.ACTIVE and data
    return wait_until(finished, timeout, f"run {run.pk} to finish", interval=0.5)


def stored_files(stack, run):
    folder = stack.media_root / "exports" / "exports" / run.domain.slug
    return sorted(path.name for path in folder.glob(f"{run.pk}*")) if folder.exists() else []


def test_a_whole_worker_killed_mid_export_is_built_once_after_a_restart(stack, alice, gated):
    web = stack.web(**FAST_LEASES)
    worker = stack.worker(**FAST_LEASES)
    session = stack.session(web).login(alice.username, alice.raw_password)
    run = start_export(session, gated)
    wait_until(lambda: ExportRun.objects.get(pk=run.pk).status == Status.RUNNING, 30, "the build to start")

    worker.kill_group()
    killed_at = time.monotonic()
    stack.worker(**FAST_LEASES)
    open_gate(stack, gated)
    data = poll_until_finished(session, run, timeout=60)
    recovered = time.monotonic() - killed_at

    run.refresh_from_db()
    assert data["run_status"] == Status.SUCCEEDED, (data, stack.logs())
    assert run.attempts == 2 and run.rows == 30
    assert stored_files(stack, run) == [os.path.basename(run.file_key)]
    status, _, body = session.get(f"/exports/runs/{run.pk}/download/")
    assert status == 200 and len(list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))) == 31
    print(f"\nwhole worker SIGKILL: built once, {recovered:.1f} s from the kill to the file")


def test_a_killed_pool_process_is_replaced_and_its_run_taken_over_at_once(stack, alice, gated):
    web = stack.web()
    stack.worker()
    session = stack.session(web).login(alice.username, alice.raw_password)
    run = start_export(session, gated)
    running = wait_until(lambda: (r := ExportRun.objects.get(pk=run.pk)).status == Status.RUNNING and r, 30,
                         "the build to start")
    pid = int(running.lease_owner.rpartition(":")[2])

    os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    open_gate(stack, gated)
    data = poll_until_finished(session, run, timeout=60)
    recovered = time.monotonic() - killed_at

    run.refresh_from_db()
    assert data["run_status"] == Status.SUCCEEDED, (data, stack.logs())
    assert run.attempts == 2 and run.lease_owner == ""
    assert stored_files(stack, run) == [os.path.basename(run.file_key)]
    print(f"\npool process SIGKILL: redelivered and taken over, {recovered:.1f} s from the kill to the file")


def test_a_warm_shutdown_finishes_the_export_under_way(stack, alice, gated):
    web = stack.web()
    worker = stack.worker()
    session = stack.session(web).login(alice.username, alice.raw_password)
    run = start_export(session, gated)
    wait_until(lambda: ExportRun.objects.get(pk=run.pk).status == Status.RUNNING, 30, "the build to start")

    worker.signal(signal.SIGTERM)
    open_gate(stack, gated)
    worker.process.wait(timeout=60)
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED and run.attempts == 1, stack.logs()


def test_a_second_delivery_while_the_first_build_runs_builds_nothing(stack, alice, gated):
    web = stack.web()
    stack.worker(concurrency=2)
    session = stack.session(web).login(alice.username, alice.raw_password)
    run = start_export(session, gated)
    wait_until(lambda: ExportRun.objects.get(pk=run.pk).status == Status.RUNNING, 30, "the build to start")

    app = stack.celery_client()
    try:
        duplicate = app.send_task("exports.tasks.run_export", args=[str(run.pk)], task_id=run.task_id,
                                  queue="export_download_queue")
        assert duplicate.get(timeout=30) == {"built": False}  # the copy finds a live lease and leaves
    finally:
        app.close()
    open_gate(stack, gated)
    data = poll_until_finished(session, run, timeout=60)

    run.refresh_from_db()
    assert data["run_status"] == Status.SUCCEEDED and run.attempts == 1
    assert stored_files(stack, run) == [os.path.basename(run.file_key)]


def test_cancel_stops_a_running_export_within_seconds(stack, alice, gated):
    web = stack.web()
    stack.worker()
    session = stack.session(web).login(alice.username, alice.raw_password)
    run = start_export(session, gated)
    wait_until(lambda: ExportRun.objects.get(pk=run.pk).status == Status.RUNNING, 30, "the build to start")

    status, _, _ = session.post(f"/exports/runs/{run.pk}/cancel/")
    assert status == 302
    _, page, body = session.get(f"/exports/runs/{run.pk}/")
    assert b"Cancelling" in body and b'id="cancel-run"' not in body
    open_gate(stack, gated)
    data = poll_until_finished(session, run, timeout=30)
    # Cancelled is not a failure: its words are the message, and there is no error.
    assert data["run_status"] == Status.CANCELLED and data["errors"] == [] and data["message"] == words.CANCELLED_WORDS
    assert stored_files(stack, ExportRun.objects.get(pk=run.pk)) == []


def test_the_soft_time_limit_fails_the_run_in_words(stack, alice, gated):
    # Limits travel in the message, from the settings of the process that sends it.
    limits = {"EXPORT_DOWNLOAD_QUEUE_SOFT_TIME_LIMIT": 2, "EXPORT_DOWNLOAD_QUEUE_TIME_LIMIT": 20}
    web = stack.web(**limits)
    stack.worker(**limits)
    session = stack.session(web).login(alice.username, alice.raw_password)
    run = start_export(session, gated)  # the gate stays shut: the build waits past its limit
    data = poll_until_finished(session, run, timeout=30)
    assert data["run_status"] == Status.FAILED
    assert data["errors"] == ["This export took longer than 2 seconds, the time limit for one export. "
                              "Choose a shorter date range and run it again."]


def test_the_hard_time_limit_fails_the_run_in_words_and_the_worker_goes_on(stack, alice, gated):
    limits = {"EXPORT_DOWNLOAD_QUEUE_SOFT_TIME_LIMIT": 0, "EXPORT_DOWNLOAD_QUEUE_TIME_LIMIT": 3}
    web = stack.web(**limits)
    worker = stack.worker(**limits)
    session = stack.session(web).login(alice.username, alice.raw_password)
    run = start_export(session, gated)
    data = poll_until_finished(session, run, timeout=30)
    assert data["run_status"] == Status.FAILED
    assert data["errors"][0].startswith("This export took longer than 3 seconds")
    assert worker.alive

    # The page of a failed run is drawn once and stays: no reload loop.
    _, _, body = session.get(f"/exports/runs/{run.pk}/")
    assert b'data-run-status="failed"' in body and b"Run it again" in body
    open_gate(stack, gated)
    again = start_export(session, gated)
    assert again.pk != run.pk
    assert poll_until_finished(session, again, timeout=30)["run_status"] == Status.SUCCEEDED


def test_a_rebuild_whose_process_is_killed_is_built_again_the_same_night(stack, alice, gated):
    env = {"SAVED_EXPORTS_LOCK_TTL": 2}  # a dead holder's lock lapses in 2 s; the retries come every 2 s
    gated.is_daily_saved = True
    save_definition(gated)  # schedules the saved export
    saved = SavedExport.objects.get(definition=gated)
    web = stack.web(**env)
    worker = stack.worker(**env)
    session = stack.session(web).login(alice.username, alice.raw_password)
    status, _, _ = session.post(f"/exports/{gated.domain.slug}/saved/{gated.pk}/rebuild/")
    assert status == 302
    redis = stack.redis.client()
    wait_until(lambda: redis.keys("soil:serial:*"), 30, "the rebuild to take its lock")

    for pid in worker.children():  # the pool processes, the rebuild's among them
        os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()
    open_gate(stack, gated)
    wait_until(lambda: SavedExport.objects.get(pk=saved.pk).file_key, 60, "the rebuild to finish")
    print(f"\nrebuild's process SIGKILL: built again {time.monotonic() - killed_at:.1f} s after the kill")
    saved.refresh_from_db()
    assert saved.rows == 30 and saved.last_build_error == ""
    assert worker.alive


def test_a_burst_of_200_api_requests_from_10_users_loses_nothing_and_builds_nothing_twice(stack, make_user):
    users = [make_user(f"user{n}") for n in range(10)]
    domain = ensure_demo_domain(slug="burst", name="Burst", time_zone="UTC", members=users)
    add_demo_rows(domain, 20)
    definition = domain.definitions.get(name="All form submissions")
    # Each user asks for 6 different exports at once: above the default limits of active runs.
    web = stack.web(EXPORT_MAX_ACTIVE_RUNS_PER_USER=6, EXPORT_MAX_ACTIVE_RUNS_PER_DOMAIN=60)
    stack.worker(concurrency=2)
    sessions = [stack.session(web).login(user.username, user.raw_password) for user in users]
    choices = [{"format": f, "date_from": d} for f in ("csv", "xlsx", "zip") for d in (None, "2020-01-01")]
    url = f"/exports/api/{domain.slug}/definitions/{definition.pk}/start/"

    def burst(index):
        session, answers = sessions[index], []
        for n in range(20):
            status, data = session.json("POST", url, json_body=choices[(index + n) % len(choices)])
            answers.append((status, data.get("id")))
        return answers

    from concurrent.futures import ThreadPoolExecutor

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = [answer for answers in pool.map(burst, range(10)) for answer in answers]
    sent = time.monotonic() - started
    assert len(answers) == 200 and {status for status, _ in answers} <= {200, 202}, answers
    run_ids = {run_id for _, run_id in answers}

    def all_finished():
        return not ExportRun.objects.filter(pk__in=run_ids, status__in=ExportRun.ACTIVE).exists()
    wait_until(all_finished, 180, "every run of the burst to finish", interval=0.5)
    drained = time.monotonic() - started

    runs = list(ExportRun.objects.filter(definition=definition))
    assert {str(run.pk) for run in runs} == run_ids  # every run answered exists, and no other was made
    assert {run.status for run in runs} == {Status.SUCCEEDED}
    assert all(run.attempts == 1 for run in runs)
    for run in runs:
        assert stored_files(stack, run) == [os.path.basename(run.file_key)]
    print(f"\n200 requests from 10 users: {len(runs)} runs, sent in {sent:.1f} s, all built once, "
          f"drained in {drained:.1f} s")


def test_exports_queued_when_redis_restarts_empty_are_sent_again_and_built(stack, alice, gated):
    web = stack.web(**FAST_LEASES)
    session = stack.session(web).login(alice.username, alice.raw_password)
    open_gate(stack, gated)
    run = start_export(session, gated)  # no worker yet: the message waits in the broker
    assert ExportRun.objects.get(pk=run.pk).status == Status.QUEUED

    stack.redis.restart(empty=True)  # the message and its SENT record are gone
    open_gate(stack, gated)
    restarted_at = time.monotonic()
    stack.worker(**FAST_LEASES)
    data = poll_until_finished(session, run, timeout=60)
    run.refresh_from_db()
    assert data["run_status"] == Status.SUCCEEDED, stack.logs()
    # On Redis the message went with the SENT record, and the lost message counts as one attempt; on
    # RabbitMQ its queue kept it, so the reaper sends nothing again and the first message builds.
    assert run.attempts == (1 if stack.on_rabbitmq else 2)
    assert stored_files(stack, run) == [os.path.basename(run.file_key)]
    print(f"\nqueued export after Redis restarted empty: built {time.monotonic() - restarted_at:.1f} s later")


def test_two_workers_that_share_no_disk_build_exports_the_web_serves_from_s3(stack, alice, gated, s3_server,
                                                                          tmp_path):
    import urllib.request

    s3 = {"S3_BUCKET": s3_server.bucket, "S3_ENDPOINT_URL": s3_server.endpoint_url,
          "S3_ACCESS_KEY_ID": s3_server.access_key, "S3_SECRET_ACCESS_KEY": s3_server.secret_key}
    machines = {name: tmp_path / name for name in ("web", "one", "two")}  # each its own MEDIA_ROOT and temp dir
    web = stack.web(MEDIA_ROOT=machines["web"], EXPORT_TEMP_DIR=machines["web"] / "tmp", **s3)
    workers = [stack.worker(concurrency=1, MEDIA_ROOT=machines[name], EXPORT_TEMP_DIR=machines[name] / "tmp", **s3)
               for name in ("one", "two")]
    session = stack.session(web).login(alice.username, alice.raw_password)

    held = start_export(session, gated)  # keeps one worker busy until the gate opens
    wait_until(lambda: ExportRun.objects.get(pk=held.pk).status == Status.RUNNING, 30, "the first build to start")
    other = start_export(session, gated.domain.definitions.get(name="All form submissions"))
    assert poll_until_finished(session, other, timeout=60)["run_status"] == Status.SUCCEEDED
    open_gate(stack, gated)
    assert poll_until_finished(session, held, timeout=60)["run_status"] == Status.SUCCEEDED

    def built_by():
        return {run.pk: [w for w in workers if f"run_export[{ExportRun.objects.get(pk=run.pk).task_id}] succeeded"
                         in w.log_path.read_text()] for run in (held, other)}

    # Celery logs a task's success after the task returns, so a moment after the page reads it.
    wait_until(lambda: all(built_by().values()), 10, "both workers to log their build")
    assert built_by()[held.pk] != built_by()[other.pk]
    for run in (held, other):
        run.refresh_from_db()
        status, headers, _ = session.get(f"/exports/runs/{run.pk}/download/")
        assert status == 302 and headers["Location"].startswith(s3_server.endpoint_url)
        with urllib.request.urlopen(headers["Location"], timeout=10) as response:  # noqa: S310 (our own server)
            body = response.read().decode("utf-8-sig")
        assert len(list(csv.reader(io.StringIO(body)))) == run.rows + 1
    for machine in machines.values():  # nothing of the exports landed on any machine's own disk
        assert not list(machine.rglob("*.csv"))


def database_goes_away(database):
    """Cut `database` off as a restart of PostgreSQL does for its clients: every connection to it is
    terminated (each backend process ended by its PID) and new ones are refused until `come_back()`."""
    import psycopg
    from django.db import connection

    settings = connection.settings_dict
    admin = psycopg.connect(host=settings["HOST"] or None, port=settings["PORT"] or None, user=settings["USER"],
                            password=settings["PASSWORD"], dbname="postgres", autocommit=True)
    name = psycopg.sql.Identifier(database)
    # pytest-django made the test database as this user, its owner, who may refuse connections to it.
    admin.execute(psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(name))
    ended = admin.execute("SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", [database]).fetchall()

    def come_back():
        admin.execute(psycopg.sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(name))
        admin.close()
        connection.close()  # the test's own connection was among those ended

    return [pid for pid, _ in ended], come_back


@pytest.mark.postgresql  # it cuts off its own database on the server; SQLite has no server to lose
@pytest.mark.parametrize("partition_rows", ["1", "0"], ids=["planning-its-parts", "built-whole"])
def test_a_build_that_loses_its_database_is_queued_again_within_seconds_of_its_return(stack, alice, gated,
                                                                                      partition_rows):
    """The issue's case: PostgreSQL restarted mid-export. The build's queries fail, and so does its own
    attempt to record that; it keeps trying with a bounded backoff, and once the database answers it
    puts the run back in the queue itself, long before the reaper (the lease is the default 60 s).
    Whether the build was planning its parts (it counts the rows first) or building the file whole."""
    from django.db import connection

    web = stack.web()
    stack.worker(EXPORT_PARTITION_ROWS=partition_rows, EXPORT_PARTITIONS=2)
    session = stack.session(web).login(alice.username, alice.raw_password)
    run = start_export(session, gated)
    wait_until(lambda: ExportRun.objects.get(pk=run.pk).status == Status.RUNNING, 30, "the build to start")

    ended, come_back = database_goes_away(connection.settings_dict["NAME"])
    open_gate(stack, gated)  # the build goes on to read its rows, from a database that is gone
    time.sleep(5)
    come_back()
    back_at = time.time()
    data = poll_until_finished(session, run, timeout=60)

    run.refresh_from_db()
    assert data["run_status"] == Status.SUCCEEDED, (data, stack.logs())
    assert run.attempts == 2 and run.rows == 30
    requeued_after = run.queued_at.timestamp() - back_at
    assert requeued_after < 10, (requeued_after, stack.logs())  # not the lease's 60 s
    assert stored_files(stack, run) == [os.path.basename(run.file_key)]
    print(f"\ndatabase gone for 5 s ({len(ended)} connections ended), {partition_rows=}: the build queued "
          f"its run again {requeued_after:.1f} s after the database came back; built in {time.time() - back_at:.1f} s")
