"""'My exports': every run of a user across their domains, deleting a run, and where a stopped build stopped."""
import datetime
import time
import uuid

import pytest
from celery import current_app
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils import timezone

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.files.storage import export_storage
from exports.formatting import format_local_time
from exports.models import ExportDefinition, ExportRun
from exports.runs import lifecycle, reaper, selectors, services
from exports.web.descriptions import describe_parameters
from soil import DownloadBase

Status = ExportRun.Status
UTC = datetime.UTC


@pytest.fixture
def clinic(alice):
    return ensure_demo_domain(slug="clinic", name="Clinic", time_zone="Asia/Kolkata", members=[alice])


@pytest.fixture
def farm(alice):
    return ensure_demo_domain(slug="farm", name="Farm", time_zone="Europe/Paris", members=[alice])


def definition_of(domain, name="All form submissions"):
    return ExportDefinition.objects.get(domain=domain, name=name)


def make_run(owner, domain, minutes_ago=0, **fields):
    values = dict(owner=owner, domain=domain, definition=definition_of(domain), parameters={"format": "csv"},
                  parameters_key=uuid.uuid4().hex, task_id=str(uuid.uuid4()), download_id=uuid.uuid4().hex,
                  status=Status.FAILED, created_at=timezone.now() - datetime.timedelta(minutes=minutes_ago))
    values.update(fields)
    return ExportRun.objects.create(**values)


def succeeded(owner, domain, minutes_ago=0, expires_in=datetime.timedelta(hours=2), **fields):
    values = dict(status=Status.SUCCEEDED, rows=305_000, bytes=2048, file_key="exports/none.csv",
                  filename="none.csv", finished_at=timezone.now() - datetime.timedelta(minutes=minutes_ago),
                  expires_at=timezone.now() + expires_in)
    return make_run(owner, domain, minutes_ago, **{**values, **fields})


# --- describe_parameters, without HTTP ---

def test_the_parameters_read_as_format_and_dates():
    run = ExportRun(definition=ExportDefinition(source="form_submissions"),
                    parameters={"format": "csv", "date_from": "2026-01-01", "date_to": "2026-03-31"})
    assert describe_parameters(run) == [("Format", "CSV"), ("Dates", "2026-01-01 – 2026-03-31")]
    run.parameters = {"format": "xlsx", "date_from": None, "date_to": None}
    assert describe_parameters(run) == [("Format", "Excel (xlsx)"), ("Dates", "all dates")]
    run.parameters = {"format": "zip", "date_from": "2026-01-01"}
    assert describe_parameters(run)[1] == ("Dates", "from 2026-01-01")
    run.parameters = {"format": "zip", "date_to": "2026-01-31"}
    assert describe_parameters(run)[1] == ("Dates", "until 2026-01-31")


def test_columns_and_filters_read_as_the_sources_labels():
    run = ExportRun(definition=ExportDefinition(source="form_submissions"), parameters={
        "format": "csv", "columns": ["received_on", "village"],
        "filters": {"village": "Pokhara", "form_name": ["Visit", "Referral"], "age": None}})
    assert describe_parameters(run)[2:] == [
        ("Columns", "Received on, Village"), ("Village", "Pokhara"), ("Form name", "Visit, Referral"),
        ("Age", "empty")]


def test_keys_the_source_does_not_know_read_as_they_are():
    run = ExportRun(definition=ExportDefinition(source="form_submissions"), parameters={
        "format": "odt", "columns": ["village", "gone_column"], "filters": {"gone_filter": 3}})
    assert describe_parameters(run) == [("Format", "odt"), ("Dates", "all dates"),
                                        ("Columns", "Village, gone_column"), ("gone_filter", "3")]
    run.definition = ExportDefinition(source="no_such_source")
    assert describe_parameters(run)[2:] == [("Columns", "village, gone_column"), ("gone_filter", "3")]


# --- the selector ---

@pytest.mark.django_db
def test_my_runs_are_mine_in_the_domains_i_still_belong_to_newest_first(alice, bob, clinic, farm):
    clinic.members.add(bob)
    old = make_run(alice, clinic, minutes_ago=30)
    new = make_run(alice, farm, minutes_ago=1)
    make_run(bob, clinic)
    left = ensure_demo_domain(slug="left", name="Left", members=[alice])
    make_run(alice, left)
    left.members.remove(alice)
    assert list(selectors.my_runs(alice)) == [new, old]
    assert list(selectors.my_runs(alice, domain=clinic)) == [old]


@pytest.mark.django_db
def test_an_expired_run_filters_as_expired_and_offers_no_download(alice, clinic):
    fresh = succeeded(alice, clinic)
    past = succeeded(alice, clinic, minutes_ago=5, expires_in=-datetime.timedelta(minutes=1))
    swept = make_run(alice, clinic, minutes_ago=9, status=Status.EXPIRED)
    assert ExportRun.objects.get(pk=past.pk).status == Status.SUCCEEDED  # the cleanup task has not run
    assert list(selectors.my_runs(alice, status=Status.SUCCEEDED)) == [fresh]
    assert list(selectors.my_runs(alice, status=Status.EXPIRED)) == [past, swept]
    assert [run.has_file for run in selectors.my_runs(alice)] == [True, False, False]


# --- deleting a run ---

@pytest.fixture
def built_run(alice, clinic):
    """A run built in this process as the worker builds it: a stored file and a soil record."""
    add_demo_rows(clinic, 5)
    run, _ = services.start_export(alice, definition_of(clinic), format="csv")
    return services.execute_run(run.pk, run.task_id)


@pytest.mark.django_db
def test_delete_removes_the_row_the_stored_file_and_the_soil_record(alice, built_run):
    assert export_storage().exists(built_run.file_key)
    assert DownloadBase.get(built_run.download_id) is not None
    assert services.delete_run(alice, built_run) is True
    assert not ExportRun.objects.filter(pk=built_run.pk).exists()
    assert not export_storage().exists(built_run.file_key)
    assert DownloadBase.get(built_run.download_id) is None
    assert services.delete_run(alice, built_run) is False  # a second click finds nothing to delete


@pytest.mark.django_db
def test_only_the_owner_deletes_a_run(alice, bob, clinic, client):
    clinic.members.add(bob)
    run = make_run(alice, clinic)
    with pytest.raises(PermissionDenied):
        services.delete_run(bob, run)
    client.force_login(bob)
    assert client.post(reverse("exports:delete", args=[run.pk])).status_code == 404
    assert ExportRun.objects.filter(pk=run.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING])
def test_an_active_run_is_not_deleted_but_refused_in_words(alice, alice_client, clinic, status):
    run = make_run(alice, clinic, status=status)
    with pytest.raises(services.DeleteRefused, match="cancel it first"):
        services.delete_run(alice, run)
    page = alice_client.post(reverse("exports:delete", args=[run.pk]), follow=True).content.decode()
    assert "cancel it first, then delete it" in page
    assert ExportRun.objects.filter(pk=run.pk).exists()


@pytest.mark.django_db
def test_delete_is_post_only_and_says_what_it_deleted(alice_client, alice, clinic):
    run = make_run(alice, clinic)
    assert alice_client.get(reverse("exports:delete", args=[run.pk])).status_code == 405
    back = reverse("exports:mine") + "?status=failed&page=1"
    named = f"“All form submissions” (CSV, started {format_local_time(run.created_at, clinic.time_zone)})"
    # The first press asks, naming the run by its format and time (a definition may have many runs).
    asked = alice_client.post(reverse("exports:delete", args=[run.pk]), {"next": back})
    assert asked.status_code == 200 and ExportRun.objects.filter(pk=run.pk).exists()
    assert f"The export {named} and its file will be deleted." in asked.content.decode()
    response = alice_client.post(reverse("exports:delete", args=[run.pk]), {"next": back, "confirm": "yes"})
    assert response.status_code == 302 and response["Location"] == back
    page = alice_client.get(back).content.decode()
    assert f"Deleted the export {named} and its file." in page
    assert not ExportRun.objects.filter(pk=run.pk).exists()
    other_site = alice_client.post(reverse("exports:delete", args=[make_run(alice, clinic).pk]),
                                   {"next": "https://elsewhere.example/", "confirm": "yes"})
    assert other_site["Location"] == reverse("exports:mine")


# --- the page ---

@pytest.mark.django_db
def test_the_page_is_paginated_newest_first(alice_client, alice, clinic):
    runs = [make_run(alice, clinic, minutes_ago=minutes) for minutes in range(30)]
    page = alice_client.get(reverse("exports:mine")).content.decode()
    assert page.count('<tr id="run-') == 25
    assert f'id="run-{runs[0].pk}"' in page and f'id="run-{runs[25].pk}"' not in page
    assert "Page 1 of 2" in page and "page=2" in page
    page = alice_client.get(reverse("exports:mine"), {"page": 2}).content.decode()
    assert page.count('<tr id="run-') == 5 and f'id="run-{runs[29].pk}"' in page
    assert alice_client.get(reverse("exports:mine"), {"page": "x"}).status_code == 200  # a bad page is page 1


@pytest.mark.django_db
def test_the_page_filters_by_status_and_domain_and_keeps_them_across_pages(alice_client, alice, clinic, farm):
    in_farm = [make_run(alice, farm, minutes_ago=minutes) for minutes in range(26)]
    in_clinic = succeeded(alice, clinic)
    page = alice_client.get(reverse("exports:mine"), {"domain": "farm", "status": "failed"}).content.decode()
    assert f'id="run-{in_farm[0].pk}"' in page and f'id="run-{in_clinic.pk}"' not in page
    assert "status=failed&amp;domain=farm&amp;page=2" in page
    page = alice_client.get(reverse("exports:mine"), {"status": "succeeded"}).content.decode()
    assert page.count('<tr id="run-') == 1 and f'id="run-{in_clinic.pk}"' in page
    assert '<label for="id_status">Status</label>' in page and '<label for="id_domain">Domain</label>' in page


@pytest.mark.django_db
def test_a_bad_filter_is_refused_next_to_its_field_and_the_other_still_applies(alice_client, alice, clinic, farm):
    make_run(alice, farm)
    mine = make_run(alice, clinic)
    response = alice_client.get(reverse("exports:mine"), {"status": "lost", "domain": "clinic"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "Select a valid choice. lost is not one of the available choices." in page
    assert page.count('<tr id="run-') == 1 and f'id="run-{mine.pk}"' in page
    left = ensure_demo_domain(slug="other", name="Other")  # not a member: not a choice
    assert alice_client.get(reverse("exports:mine"), {"domain": left.slug}).status_code == 400


@pytest.mark.django_db
def test_each_row_shows_domain_filters_counts_local_times_and_its_actions(alice_client, alice, clinic, farm):
    done = succeeded(alice, clinic, created_at=datetime.datetime(2026, 11, 23, 8, 35, tzinfo=UTC),
                     finished_at=datetime.datetime(2026, 11, 23, 8, 36, tzinfo=UTC),
                     parameters={"format": "csv", "date_from": "2026-01-01", "date_to": "2026-03-31",
                                 "columns": ["village"], "filters": {"village": "Pokhara"}})
    expired = succeeded(alice, farm, expires_in=-datetime.timedelta(minutes=1),
                        created_at=datetime.datetime(2026, 11, 23, 8, 35, tzinfo=UTC))
    running = make_run(alice, farm, status=Status.RUNNING)
    page = alice_client.get(reverse("exports:mine")).content.decode()
    assert "2026-11-23 14:05 IST" in page and "2026-11-23 14:06 IST" in page  # the clinic's zone
    assert "2026-11-23 09:35 CET" in page  # the farm's
    assert "305,000" in page and "2.0\xa0KB" in page
    assert "2026-01-01 – 2026-03-31" in page and "Village, " not in page and "Pokhara" in page
    assert reverse("exports:download", args=[done.pk]) in page
    assert reverse("exports:download", args=[expired.pk]) not in page and ">Expired<" in page
    assert reverse("exports:delete", args=[expired.pk]) in page and reverse("exports:rerun", args=[expired.pk]) in page
    assert reverse("exports:delete", args=[running.pk]) not in page
    assert f'href="{reverse("exports:mine")}"' in page  # the navigation's link


@pytest.mark.django_db
def test_rerun_from_the_page_starts_the_same_export_again(alice_client, alice, clinic):
    old = succeeded(alice, clinic, expires_in=-datetime.timedelta(minutes=1),
                    parameters={"format": "csv", "date_from": "2026-01-01", "date_to": None})
    response = alice_client.post(reverse("exports:rerun", args=[old.pk]))
    new = ExportRun.objects.exclude(pk=old.pk).get()
    assert response["Location"] == reverse("exports:run", args=[new.pk])
    assert new.parameters == old.parameters and new.status == Status.QUEUED


# --- where a stopped build stopped ---

@pytest.fixture
def forty_rows(alice, clinic, settings, monkeypatch):
    """A queued run of 40 rows whose message is not sent: the test builds it itself, in this process
    (a suite worker started by an earlier test would otherwise take it first)."""
    settings.EXPORT_CHUNK_SIZE = 10
    add_demo_rows(clinic, 40)
    monkeypatch.setattr(services.queueing, "queue_run", lambda run: None)
    run, _ = services.start_export(alice, definition_of(clinic), format="csv")
    return run


def stop_at(rows, action):
    """A progress callback that runs `action` once the build has written `rows` rows."""
    def progress(current, total):
        if current >= rows:
            action()
    return progress


@pytest.mark.django_db
def test_a_failed_build_keeps_where_it_stopped_and_its_page_draws_the_red_bar_there(alice_client, forty_rows):
    def broken():
        raise RuntimeError("the disk went away")

    with pytest.raises(RuntimeError):
        services.execute_run(forty_rows.pk, forty_rows.task_id, progress=stop_at(20, broken))
    run = ExportRun.objects.get(pk=forty_rows.pk)
    assert run.status == Status.FAILED
    assert run.last_progress == {"current": 20, "total": 40, "percent": 50}
    status = alice_client.get(reverse("exports:run_status", args=[run.pk])).json()
    assert (status["state"], status["percent"], status["current"], status["total"]) == ("failed", 50, 20, 40)
    page = alice_client.get(reverse("exports:run", args=[run.pk])).content.decode()
    assert 'class="soil-progress soil-failed"' in page and 'aria-valuenow="50"' in page
    assert "It stopped at 20 of 40 rows." in page
    assert page.count("error on our side") == 1  # the error once, beside the status


@pytest.mark.django_db(transaction=True)
def test_a_cancelled_build_keeps_where_it_stopped(alice_client, forty_rows, monkeypatch):
    def cancel():
        ExportRun.objects.filter(pk=forty_rows.pk).update(cancel_requested=True)

    # The flag read at every chunk, as this 40-row build would otherwise end before a reading 0.2 s on.
    monkeypatch.setattr(lifecycle.LeaseKeeper, "CHECK_SECONDS", 0)
    with pytest.raises(services.ExportCancelled):
        services.execute_run(forty_rows.pk, forty_rows.task_id, progress=stop_at(10, cancel))
    run = ExportRun.objects.get(pk=forty_rows.pk)
    assert run.status == Status.CANCELLED
    assert run.last_progress["percent"] in (25, 50)  # 10 rows, or 20 if the thread answered a chunk late
    page = alice_client.get(reverse("exports:run", args=[run.pk])).content.decode()
    # Cancelled is its own state: a grey bar and its own words, never "Failed." in red.
    assert f'aria-valuenow="{run.last_progress["percent"]}"' in page and "run-cancelled-bar" in page
    assert "soil-failed" not in page and "Failed." not in page and "Cancelled." in page
    status = alice_client.get(reverse("exports:run_status", args=[run.pk])).json()
    assert (status["run_status"], status["errors"], status["message"]) == ("cancelled", [], "Cancelled by the user.")


@pytest.mark.django_db(transaction=True)
def test_a_build_reads_the_cancel_flag_at_most_every_check_seconds(forty_rows, monkeypatch):
    """Reading it costs a query and a hand-over between threads: at every chunk of 500 rows that was 0.6 s
    of a 1M-row build. In between, the last reading answers; a cancel is seen at the next reading."""
    monkeypatch.setattr(lifecycle.LeaseKeeper, "CHECK_SECONDS", 0.5)
    lease = lifecycle.start(forty_rows.pk, forty_rows.task_id)
    with lifecycle.LeaseKeeper(lease) as keeper:
        assert keeper.should_stop() is False
        ExportRun.objects.filter(pk=forty_rows.pk).update(cancel_requested=True)
        assert keeper.should_stop() is False  # the reading of a moment ago
        time.sleep(0.6)
        assert keeper.should_stop() is True


@pytest.mark.django_db
def test_a_run_that_never_reported_progress_has_no_bar(alice_client, alice, clinic):
    run = make_run(alice, clinic, status=Status.FAILED, error="Broken.")
    page = alice_client.get(reverse("exports:run", args=[run.pk])).content.decode()
    assert "soil-progress" not in page and "Run it again" in page


@pytest.mark.django_db
def test_the_reaper_keeps_the_progress_soil_last_heard_when_it_fails_a_lost_build(alice, clinic, settings):
    run = make_run(alice, clinic, status=Status.QUEUED, attempts=settings.EXPORT_MAX_ATTEMPTS - 1)
    lease = lifecycle.start(run.pk, run.task_id)
    current_app.backend.store_result(run.task_id, {"current": 30, "total": 120}, "PROGRESS")
    ExportRun.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - datetime.timedelta(minutes=1))
    run.refresh_from_db()
    assert lease and run.attempts >= settings.EXPORT_MAX_ATTEMPTS
    assert reaper.reap_run(run, reaper.WORKER_LOST) == "failed"
    run.refresh_from_db()
    assert (run.status, run.last_progress) == (Status.FAILED, {"current": 30, "total": 120, "percent": 25})
