"""Partitioned builds: key ranges, typed part rows, and real workers building parts in parallel.

The worker tests run a private deployment each (tests/processes.py) with a low partition threshold.
"""
import csv
import datetime
import io
import os
import signal
import threading
import time
import uuid
import zipfile

import openpyxl
import pytest
from celery.result import AsyncResult
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.files import partitions
from exports.files.export_file import planned_rows, write_export
from exports.formatting import ASSEMBLY_PROGRESS, PART_ROWS_PROGRESS, STORING_PROGRESS
from exports.models import ExportDefinition, ExportRun, FormSubmission
from exports.runs.services import query_parameters
from soil.progress import get_task_progress
from tests.partition_sources import PART_GATE_KEY, PARTS_WAITING_KEY
from tests.processes import wait_until

Status = ExportRun.Status
PARTITIONED = {"EXPORT_PARTITION_ROWS": 100, "EXPORT_PARTITIONS": 3,
               "EXPORT_SOURCE_MODULES": "tests.celery_tasks,tests.partition_sources"}
FAST_LEASES = {"EXPORT_LEASE_SECONDS": 3, "EXPORT_LEASE_RENEW_SECONDS": 1, "EXPORT_LOST_MESSAGE_GRACE": 2}
WORKER_MODULES = ("--include", "tests.celery_tasks,tests.partition_sources")


@pytest.fixture
def domain(alice):
    domain = ensure_demo_domain(slug="parts", name="Parts", time_zone="Asia/Kolkata", members=[alice])
    add_demo_rows(domain, 1_000)
    return domain


def _rows_in(queryset, keys, ranges):
    model = queryset.model
    return [list(queryset.filter(partitions.range_filter(model, keys, lower, upper)).values_list("pk", flat=True))
            for lower, upper in ranges]


@pytest.mark.django_db
@pytest.mark.parametrize("ordering_source", ["form_submissions", "part_gated_submissions"])
def test_key_ranges_hold_every_row_once_in_the_exports_order(domain, ordering_source):
    definition = ExportDefinition.objects.create(domain=domain, name="All", source=ordering_source, format="csv")
    queryset, _ = planned_rows(definition, query_parameters({"format": "csv"}))
    keys = partitions.key_fields(definition.source, queryset)
    assert keys == ["received_on", "id"]
    ranges = partitions.key_ranges(queryset, keys, queryset.count(), 3)
    parts = _rows_in(queryset, keys, ranges)
    assert len(parts) == 3 and all(300 <= len(part) <= 340 for part in parts)
    assert [pk for part in parts for pk in part] == list(queryset.values_list("pk", flat=True))


@pytest.mark.django_db
def test_rows_with_equal_first_keys_are_split_by_the_primary_key(domain):
    FormSubmission.objects.filter(domain=domain).update(received_on=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
    definition = ExportDefinition.objects.create(domain=domain, name="All", source="form_submissions", format="csv")
    queryset, _ = planned_rows(definition, query_parameters({"format": "csv"}))
    keys = partitions.key_fields(definition.source, queryset)
    ranges = partitions.key_ranges(queryset, keys, 1_000, 4)
    assert [len(lower) for lower, _ in ranges[1:]] == [2, 2, 2]  # one group: the cuts cannot move to its start
    parts = _rows_in(queryset, keys, ranges)
    assert [len(part) for part in parts] == [250, 250, 250, 250]
    assert [pk for part in parts for pk in part] == list(queryset.values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_cut_inside_a_group_of_equal_first_keys_moves_to_the_groups_first_row_and_bounds_that_key_alone(domain):
    # Ten rows a second: the cuts at rows 333 and 666 fall inside the groups that begin at 330 and 660.
    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    pks = FormSubmission.objects.filter(domain=domain).order_by("pk").values_list("pk", flat=True)
    for index, pk in enumerate(pks):
        FormSubmission.objects.filter(pk=pk).update(received_on=start + datetime.timedelta(seconds=index // 10))
    definition = ExportDefinition.objects.create(domain=domain, name="All", source="form_submissions", format="xlsx")
    with override_settings(EXPORT_PARTITION_ROWS=100, EXPORT_PARTITIONS=3):
        plan = partitions.plan_parts(definition, {"format": "xlsx"})
    queryset, _ = planned_rows(definition, query_parameters({"format": "xlsx"}))
    keys = partitions.key_fields(definition.source, queryset)
    assert plan.first_rows == [0, 330, 660]
    assert [len(lower) for lower, _ in plan.ranges[1:]] == [1, 1]  # the time alone: read as a plain index range
    assert [partitions.rows_before(queryset, keys, lower) for lower, _ in plan.ranges] == plan.first_rows
    parts = _rows_in(queryset, keys, plan.ranges)
    assert [len(part) for part in parts] == [330, 330, 340]
    assert [pk for part in parts for pk in part] == list(queryset.values_list("pk", flat=True))


def test_only_big_exports_are_split(settings):
    settings.EXPORT_PARTITION_ROWS, settings.EXPORT_PARTITIONS = 1_000, 4
    assert [partitions.part_count(n) for n in (0, 999, 1_000, 10**7)] == [1, 1, 4, 4]
    settings.EXPORT_PARTITION_ROWS = 0
    assert partitions.part_count(10**7) == 1


def test_only_formats_joined_by_copying_bytes_are_split(settings):
    settings.EXPORT_PARTITION_ROWS, settings.EXPORT_PARTITIONS = 1_000, 4
    assert [partitions.part_count(10**6, format) for format in ("csv", "xlsx", "zip")] == [4, 4, 1]
    settings.EXPORT_XLSX_ENGINE = "openpyxl"  # parts are the streaming engine's sheet XML
    assert partitions.part_count(10**6, "xlsx") == 1


@pytest.mark.django_db
def test_a_plan_counts_the_rows_before_each_range(domain):
    definition = ExportDefinition.objects.create(domain=domain, name="All", source="form_submissions", format="xlsx")
    with override_settings(EXPORT_PARTITION_ROWS=100, EXPORT_PARTITIONS=3):
        plan = partitions.plan_parts(definition, {"format": "xlsx"})
    queryset, _ = planned_rows(definition, query_parameters({"format": "xlsx"}))
    keys = partitions.key_fields(definition.source, queryset)
    assert plan.total == 1_000 and plan.first_rows == [0, 333, 666]
    assert [partitions.rows_before(queryset, keys, lower) for lower, _ in plan.ranges] == plan.first_rows
    assert [len(part) for part in _rows_in(queryset, keys, plan.ranges)] == [333, 333, 334] == plan.part_rows
    with override_settings(EXPORT_PARTITION_ROWS=100, EXPORT_PARTITIONS=3):
        assert partitions.plan_parts(definition, {"format": "zip"}) is None


@pytest.mark.django_db
def test_a_part_told_its_rows_does_not_count_them_again(domain, tmp_path):
    """The plan counted each range's rows: a part's build reads them, and only them."""
    definition = ExportDefinition.objects.create(domain=domain, name="All", source="form_submissions", format="csv")
    queryset, _ = planned_rows(definition, query_parameters({"format": "csv"}))
    keys = partitions.key_fields(definition.source, queryset)
    with override_settings(EXPORT_PARTITION_ROWS=100, EXPORT_PARTITIONS=3):
        plan = partitions.plan_parts(definition, {"format": "csv"})
    key_range = partitions.range_filter(queryset.model, keys, *plan.ranges[1])
    reports = []
    for rows_expected in (None, plan.part_rows[1]):
        with CaptureQueriesContext(connection) as queries:
            rows = write_export(definition, {"format": "csv"}, tmp_path / "part.csv", key_range=key_range,
                                rows_expected=rows_expected, progress=lambda *report: reports.append(report))
        counted = [query["sql"] for query in queries.captured_queries if "COUNT(" in query["sql"].upper()]
        assert rows == 333 and len(counted) == (1 if rows_expected is None else 0), counted
        assert reports[0] == (0, 333) and reports[-1] == (333, 333)
        reports.clear()


@pytest.mark.django_db
def test_the_bar_moves_forward_through_the_parts_the_assembly_and_the_upload(domain, alice):
    run = ExportRun.objects.create(owner=alice, domain=domain, definition=domain.definitions.first(),
                                   parameters={"format": "xlsx"}, parameters_key="bar", task_id=f"bar-{uuid.uuid4()}",
                                   download_id=f"bar-{uuid.uuid4()}", started_at=timezone.now())
    shown = []

    def report(index, rows, phase="parts", words=PART_ROWS_PROGRESS):
        partitions.PartProgress(run, "lease", index, 1_000, words, phase=phase).report(rows)
        progress = get_task_progress(AsyncResult(run.task_id))
        shown.append(progress.percent)
        return progress

    report(0, 0)
    report(0, 250)
    assert report(1, 250).message == "500 of 1,000 rows read, in parts"
    assert report(1, 0).percent == 48  # part 1 delivered again starts over: its rows count once, the bar stays
    report(2, 500)
    assert shown[-1] == 96  # every row read: the parts' share of an xlsx build (partitions.PHASES)
    assert report(0, 500, "assembly", ASSEMBLY_PROGRESS).message == "Putting the parts together: 500 of 1,000 rows"
    report(0, 1_000, "assembly", ASSEMBLY_PROGRESS)
    report(0, 0, "upload", STORING_PROGRESS)
    assert shown == sorted(shown) and shown[-1] == 99
    assert report(0, 900, "assembly", ASSEMBLY_PROGRESS).percent == 99  # a late report never pulls the bar back
    assert get_task_progress(AsyncResult(run.task_id)).message == "Putting the parts together: 1,000 of 1,000 rows"


@pytest.mark.django_db
def test_parts_reporting_at_once_never_pull_the_bar_back(domain, alice):
    """Four parts report from four threads while a reader watches the record: each value it reads is at
    least the one before (writes from several processes must not land out of order)."""
    run = ExportRun.objects.create(owner=alice, domain=domain, definition=domain.definitions.first(),
                                   parameters={"format": "csv"}, parameters_key="race", task_id=f"race-{uuid.uuid4()}",
                                   download_id=f"race-{uuid.uuid4()}", started_at=timezone.now())
    done = threading.Event()
    seen = []

    def part(index):
        progress = partitions.PartProgress(run, "lease", index, 4_000, PART_ROWS_PROGRESS)
        for rows in range(0, 1_001, 10):
            progress.report(rows)

    def watch():
        while not done.is_set():
            current = get_task_progress(AsyncResult(run.task_id)).current
            if current is not None:
                seen.append(current)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    parts = [threading.Thread(target=part, args=(index,)) for index in range(4)]
    for thread in parts:
        thread.start()
    for thread in parts:
        thread.join()
    done.set()
    watcher.join()
    seen.append(get_task_progress(AsyncResult(run.task_id)).current)  # once every report is in
    assert len(seen) > 50 and seen == sorted(seen)
    assert seen[-1] == int(4_000 * partitions.PHASES["csv"]["parts"])


@pytest.mark.django_db
def test_the_eta_of_a_build_in_parts_counts_from_when_its_parts_began_reading_not_from_the_runs_start(
        domain, alice):
    """Planning and handing the parts over read no rows: counted from the run's start, the rate made the
    first ETAs of a 5 s build 11–15 s (benchmark_partitions)."""
    run = ExportRun.objects.create(owner=alice, domain=domain, definition=domain.definitions.first(),
                                   parameters={"format": "csv"}, parameters_key="eta", task_id=f"eta-{uuid.uuid4()}",
                                   download_id=f"eta-{uuid.uuid4()}",
                                   started_at=timezone.now() - datetime.timedelta(seconds=30))
    first, second = (partitions.PartProgress(run, "lease", index, 1_000, PART_ROWS_PROGRESS) for index in (0, 1))
    first.report(0)  # the planning's report: nothing read yet
    assert get_task_progress(AsyncResult(run.task_id)).started_at == pytest.approx(run.started_at.timestamp())

    before = time.time()
    first(0, 500)  # a part opens its file, as write_export reports, and begins reading
    began = get_task_progress(AsyncResult(run.task_id)).started_at
    assert before <= began <= time.time()
    time.sleep(0.3)
    second(0, 500)  # another part, in another process: the same start
    second.report(100, reading=True)  # as its next call would (calls come at most every REPORT_SECONDS)
    first(100, 500)
    progress = get_task_progress(AsyncResult(run.task_id))
    assert progress.started_at == began
    # A fifth of the bar in about 0.3 s: about 1 s left, where the run's start would say 2 minutes.
    assert progress.eta_seconds <= 3, progress


# --- real workers ---

def start_export(session, definition, format):
    status, headers, body = session.post(f"/exports/{definition.domain.slug}/definitions/{definition.pk}/start/",
                                         {f"d{definition.pk}-format": format})
    assert status == 302, body[:500]
    return ExportRun.objects.get(pk=headers["Location"].rstrip("/").split("/")[-1])


def wait_finished(session, run, timeout=90):
    def finished():
        status, data = session.json("GET", f"/exports/runs/{run.pk}/status/")
        assert status == 200, data
        return data["run_status"] not in ExportRun.ACTIVE and data
    return wait_until(finished, timeout, f"run {run.pk} to finish", interval=0.3)


def whole_build(definition, format, tmp_path):
    """The same export built in one piece, in this process."""
    path = tmp_path / f"whole.{format}"
    write_export(definition, query_parameters({"format": format}), path)
    return path.read_bytes()


def parts_left(stack, run):
    folder = stack.media_root / "exports" / partitions.PARTS_FOLDER / str(run.pk)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.worker
@pytest.mark.slow
def test_a_partitioned_csv_is_byte_identical_to_the_whole_build(stack, alice, domain, tmp_path):
    definition = ExportDefinition.objects.create(domain=domain, name="All", source="form_submissions", format="csv")
    web = stack.web(**PARTITIONED)
    stack.worker(extra_args=WORKER_MODULES, **PARTITIONED)
    session = stack.session(web).login(alice.username, alice.raw_password)
    run = start_export(session, definition, "csv")
    data = wait_finished(session, run)
    assert data["run_status"] == Status.SUCCEEDED, (data, stack.logs())
    log = stack.logs()
    assert "1000 rows in 3 parts" in log
    status, _, body = session.get(f"/exports/runs/{run.pk}/download/")
    assert status == 200
    assert body == whole_build(definition, "csv", tmp_path)
    run.refresh_from_db()
    assert run.rows == 1_000 and run.bytes == len(body)
    assert parts_left(stack, run) == []


@pytest.mark.worker
@pytest.mark.slow
def test_a_partitioned_build_writes_only_the_chosen_columns_and_filtered_rows(stack, alice, domain, tmp_path):
    definition = ExportDefinition.objects.create(domain=domain, name="All", source="form_submissions", format="csv")
    web = stack.web(**PARTITIONED)
    stack.worker(extra_args=WORKER_MODULES, **PARTITIONED)
    session = stack.session(web).login(alice.username, alice.raw_password)
    data = {"action": "export", "format": "csv", "filter_form_name": "Vaccination",
            "include_village": "on", "position_village": "1", "include_form_id": "on", "position_form_id": "2"}
    status, headers, body = session.post(f"/exports/{domain.slug}/definitions/{definition.pk}/export/", data)
    assert status == 302, body[:2000]
    run = ExportRun.objects.get(pk=headers["Location"].rstrip("/").split("/")[-1])
    finished = wait_finished(session, run)
    assert finished["run_status"] == Status.SUCCEEDED, (finished, stack.logs())
    vaccinations = FormSubmission.objects.filter(domain=domain, form_name="Vaccination").count()
    assert f"{vaccinations} rows in 3 parts" in stack.logs()
    status, _, body = session.get(f"/exports/runs/{run.pk}/download/")
    assert status == 200
    path = tmp_path / "whole.csv"
    write_export(definition, query_parameters(run.parameters), path)
    assert body == path.read_bytes()
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["Village", "Form id"] and len(rows) == vaccinations + 1


@pytest.mark.worker
@pytest.mark.slow
def test_a_partitioned_xlsx_holds_the_whole_builds_sheets_and_a_zip_is_built_whole(stack, alice, domain, tmp_path):
    definition = ExportDefinition.objects.create(domain=domain, name="All", source="form_submissions", format="xlsx")
    web = stack.web(**PARTITIONED)
    stack.worker(extra_args=WORKER_MODULES, **PARTITIONED)
    session = stack.session(web).login(alice.username, alice.raw_password)
    for format in ("xlsx", "zip"):
        run = start_export(session, definition, format)
        data = wait_finished(session, run)
        assert data["run_status"] == Status.SUCCEEDED, (data, stack.logs())
        status, _, body = session.get(f"/exports/runs/{run.pk}/download/")
        assert status == 200
        whole = whole_build(definition, format, tmp_path)
        if format == "xlsx":
            assert stack.logs().count("1000 rows in 3 parts") == 1
            assert _sheet_values(body) == _sheet_values(whole)
            assert _members(body) == _members(whole)  # the sheet XML byte for byte, and every other part
        else:
            assert stack.logs().count("1000 rows in 3 parts") == 1  # not split: rendering rows twice costs more
            (name, member), (_, whole_member) = _zip_member(body), _zip_member(whole)
            assert name.startswith("All ") and name.endswith(".csv")  # named after the export, as whole builds are
            assert member == whole_member
        assert parts_left(stack, run) == []


def _sheet_values(content):
    workbook = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    rows = [[(type(v).__name__, v) for v in row] for row in workbook.worksheets[0].iter_rows(values_only=True)]
    assert len(rows) == 1_001
    return rows


def _members(content):
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        assert archive.testzip() is None  # every member's CRC-32 checks
        return {name: archive.read(name) for name in archive.namelist()}


def _zip_member(content):
    """(name, bytes) of the archive's one member."""
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        (name,) = archive.namelist()
        member = archive.read(name)
    assert len(list(csv.reader(io.StringIO(member.decode("utf-8-sig"))))) > 1_000
    return name, member


def open_part_gate(stack, domain):
    stack.redis.client().set(PART_GATE_KEY.format(domain.slug), 1, ex=120)


def _gated_run(stack, alice, domain, **env):
    definition = ExportDefinition.objects.create(domain=domain, name="Gated parts", source="part_gated_submissions",
                                                 format="csv")
    web = stack.web(**PARTITIONED, **FAST_LEASES, **env)
    worker = stack.worker(extra_args=WORKER_MODULES, concurrency=3, **PARTITIONED, **FAST_LEASES, **env)
    session = stack.session(web).login(alice.username, alice.raw_password)
    run = start_export(session, definition, "csv")
    redis = stack.redis.client()
    waiting = wait_until(lambda: len(redis.smembers(PARTS_WAITING_KEY.format(domain.slug))) == 3 and
                         redis.smembers(PARTS_WAITING_KEY.format(domain.slug)), 60, "three parts at the gate")
    return definition, worker, session, run, sorted(int(pid) for pid in waiting)


@pytest.mark.fault
def test_a_part_whose_pool_process_is_killed_is_built_again_and_the_run_finishes(stack, alice, domain, tmp_path):
    definition, worker, session, run, pids = _gated_run(stack, alice, domain)
    assert set(pids) <= set(worker.children())
    run.refresh_from_db()
    assert run.status == Status.RUNNING and run.lease_owner == ""  # the parts share the lease

    os.kill(pids[0], signal.SIGKILL)  # one part's pool process, by PID: Celery redelivers that part
    open_part_gate(stack, domain)
    data = wait_finished(session, run)

    run.refresh_from_db()
    assert data["run_status"] == Status.SUCCEEDED, (data, stack.logs())
    assert run.rows == 1_000
    status, _, body = session.get(f"/exports/runs/{run.pk}/download/")
    assert status == 200 and body == whole_build(definition, "csv", tmp_path)
    assert parts_left(stack, run) == []


@pytest.mark.fault
def test_parts_of_a_killed_worker_are_built_again_by_the_next_attempt(stack, alice, domain, tmp_path):
    definition, worker, session, run, pids = _gated_run(stack, alice, domain)
    worker.kill_group()  # the whole worker and its pool, by PID: Redis redelivers nothing; RabbitMQ the parts
    stack.worker(extra_args=WORKER_MODULES, **PARTITIONED, **FAST_LEASES)
    open_part_gate(stack, domain)
    data = wait_finished(session, run)

    run.refresh_from_db()
    assert data["run_status"] == Status.SUCCEEDED, (data, stack.logs())
    # On Redis the lapsed lease sends a second attempt. On RabbitMQ the dead worker's unacknowledged part
    # messages come back at once and race the (short, here) lease: the first attempt completes, or the
    # second does; either way the file is built once, whole.
    assert run.attempts in ((1, 2) if stack.on_rabbitmq else (2,)) and run.rows == 1_000
    status, _, body = session.get(f"/exports/runs/{run.pk}/download/")
    assert status == 200 and body == whole_build(definition, "csv", tmp_path)
    assert parts_left(stack, run) == []


@pytest.mark.fault
def test_parts_of_a_killed_worker_on_the_last_attempt_fail_the_run_in_words(stack, alice, domain):
    definition, worker, session, run, pids = _gated_run(stack, alice, domain, EXPORT_MAX_ATTEMPTS=1)
    worker.kill_group()
    data = wait_finished(session, run)
    assert data["run_status"] == Status.FAILED, (data, stack.logs())
    assert data["errors"] == ["The worker building this export stopped; it was retried once. Run it again."]


@pytest.mark.fault
def test_cancel_stops_every_part_and_leaves_no_part_files(stack, alice, domain):
    definition, worker, session, run, pids = _gated_run(stack, alice, domain)
    status, _, _ = session.post(f"/exports/runs/{run.pk}/cancel/")
    assert status == 302
    open_part_gate(stack, domain)
    data = wait_finished(session, run, timeout=30)
    assert data["run_status"] == Status.CANCELLED, (data, stack.logs())
    wait_until(lambda: parts_left(stack, run) == [], 10, "the part files to be deleted")
    assert worker.alive
