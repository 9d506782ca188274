"""User exports end to end: a real worker, real Redis, the test database and the real views."""
import base64
import csv
import datetime
import io
import zipfile
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from exports.demo import FORM_SUBMISSIONS, add_demo_rows, ensure_demo_domain
from exports.files.export_file import export_storage, write_export
from exports.models import Domain, ExportDefinition, ExportRun, FormSubmission
from exports.runs import services
from exports.tasks import cleanup_expired_exports
from soil import DownloadBase
from tests.celery_tasks import GATE_KEY, progress_message_seen
from tests.conftest import WORKER_MAIL_DIR, wait_for

ZONE = ZoneInfo("Asia/Kolkata")
Status = ExportRun.Status


@pytest.fixture
def domain(alice):
    domain = ensure_demo_domain(slug="clinic", name="Clinic", time_zone="Asia/Kolkata", members=[alice])
    # Rows with known values, first in time order, then generated ones.
    FormSubmission.objects.create(
        domain=domain, form_id="known-1", received_on=datetime.datetime(2024, 12, 31, 23, 30, tzinfo=datetime.UTC),
        submitted_by="élodie", form_name="Référence", patient_name="Zoë 東京", village="", age=None,
        weight_kg=Decimal("61.25"), visit_date=datetime.date(2024, 12, 30), is_follow_up=True,
        notes="=1+2 stays text",
    )
    FormSubmission.objects.create(
        domain=domain, form_id="known-2", received_on=datetime.datetime(2024, 12, 31, 23, 45, tzinfo=datetime.UTC),
        submitted_by="chen.wei", form_name="Vaccination", patient_name="", village="Łódź", age=7,
        weight_kg=None, visit_date=None, is_follow_up=None, notes="",
    )
    add_demo_rows(domain, 40)
    return domain


@pytest.fixture
def definition(domain):
    return ExportDefinition.objects.get(domain=domain, name="All form submissions")


def start(client, definition, **data):
    data.setdefault("format", "csv")
    return client.post(reverse("exports:start", args=[definition.domain.slug, definition.pk]),
                       {f"d{definition.pk}-{key}": value for key, value in data.items()})


def finished_run(run_id, timeout=60):
    return wait_for(lambda: (run := ExportRun.objects.get(pk=run_id)).status not in ExportRun.ACTIVE and run,
                    timeout=timeout, message=f"run {run_id} to finish")


def download(client, run):
    response = client.get(reverse("exports:download", args=[run.pk]))
    assert response.status_code == 200, response.content[:500]
    return response, b"".join(response.streaming_content)


def run_from_redirect(response):
    assert response.status_code == 302, response.content[:500]
    return ExportRun.objects.get(pk=response["Location"].rstrip("/").split("/")[-1])


# --- the three formats through the worker: values round-trip ---

def test_csv_export_through_the_worker_round_trips_values(worker, alice_client, definition):
    run = finished_run(run_from_redirect(start(alice_client, definition, format="csv")).pk)
    assert run.status == Status.SUCCEEDED, run.error
    assert (run.rows, run.parameters["format"]) == (42, "csv")
    response, body = download(alice_client, run)
    assert body.startswith(b"\xef\xbb\xbf")  # BOM, so that Excel reads UTF-8
    assert run.filename.endswith(".csv") and "filename=" in response["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Form id", "Received on (IST)", "Submitted by"]
    assert len(rows) == 43
    first, second = rows[1], rows[2]
    # 23:30 UTC is 05:00 the next day in Kolkata.
    assert first[:5] == ["known-1", "2025-01-01 05:00:00", "élodie", "Référence", "Zoë 東京"]
    assert first[5:10] == ["", "", "61.25", "2024-12-30", "TRUE"]
    assert second[6] == "7" and second[7] == "" and second[8] == "" and second[9] == ""
    assert run.bytes == len(body) and run.duration is not None


def test_xlsx_export_through_the_worker_round_trips_values(worker, alice_client, definition):
    run = finished_run(run_from_redirect(start(alice_client, definition, format="xlsx")).pk)
    assert run.status == Status.SUCCEEDED, run.error
    _, body = download(alice_client, run)
    sheet = openpyxl.load_workbook(io.BytesIO(body), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("Form id", "Received on (IST)") and len(rows) == 43
    first = rows[1]
    assert first[1] == datetime.datetime(2025, 1, 1, 5, 0)
    assert first[4] == "Zoë 東京" and first[5] is None and first[6] is None
    assert float(first[7]) == 61.25 and first[8] == datetime.datetime(2024, 12, 30) and first[9] is True
    assert first[10] == "=1+2 stays text"


def test_zipped_csv_export_through_the_worker_round_trips_values(worker, alice_client, definition):
    run = finished_run(run_from_redirect(start(alice_client, definition, format="zip")).pk)
    assert run.status == Status.SUCCEEDED, run.error
    _, body = download(alice_client, run)
    archive = zipfile.ZipFile(io.BytesIO(body))
    (name,) = archive.namelist()
    # Named after the export (its name and the build's start time), not "export-part-1.csv".
    assert name.startswith(f"{definition.name} ") and name.endswith(".csv"), name
    rows = list(csv.reader(io.StringIO(archive.read(name).decode("utf-8-sig"))))
    assert len(rows) == 43 and rows[1][4] == "Zoë 東京"


def test_a_date_range_is_applied_in_the_domains_time_zone(domain, definition, tmp_path):
    # 2025-01-01 in Kolkata starts at 2024-12-31 18:30 UTC: both known rows fall on that local day.
    path = tmp_path / "out.csv"
    rows = write_export(definition, {"format": "csv", "date_from": datetime.date(2025, 1, 1),
                                     "date_to": datetime.date(2025, 1, 1)}, path)
    expected = FormSubmission.objects.filter(
        domain=domain, received_on__gte=datetime.datetime(2024, 12, 31, 18, 30, tzinfo=datetime.UTC),
        received_on__lt=datetime.datetime(2025, 1, 1, 18, 30, tzinfo=datetime.UTC)).count()
    assert rows == expected >= 2


def test_progress_is_reported_after_each_chunk(definition, tmp_path):
    seen = []
    write_export(definition, {"format": "csv"}, tmp_path / "out.csv", progress=lambda c, t: seen.append((c, t)),
                 chunk_size=10)
    assert seen == [(0, 42), (10, 42), (20, 42), (30, 42), (40, 42), (42, 42)]


def test_progress_message_reads_rows_of_total(eager):
    meta = progress_message_seen.delay(12000, 250000).result
    assert meta["message"] == "12,000 of 250,000 rows"


# --- cancel and dedupe, with the worker held at a gate ---

def gated_definition(domain, redis_client):
    """A definition whose builds wait at the domain's gate, closed: an earlier test of this process may
    have opened it for a minute."""
    redis_client.delete(GATE_KEY.format(f"export-{domain.slug}"))
    return ExportDefinition.objects.create(domain=domain, name="Gated", source="gated_submissions", format="csv")


def test_cancel_stops_a_running_export_and_exposes_no_file(worker, alice_client, domain, redis_client):
    definition = gated_definition(domain, redis_client)
    run = run_from_redirect(start(alice_client, definition))
    wait_for(lambda: ExportRun.objects.get(pk=run.pk).status == Status.RUNNING, message="the run to start")

    response = alice_client.post(reverse("exports:cancel", args=[run.pk]))
    assert response.status_code == 302
    redis_client.set(GATE_KEY.format(f"export-{domain.slug}"), 1, ex=60)

    run = finished_run(run.pk)
    assert run.status == Status.CANCELLED and not run.file_key
    status = wait_for(lambda: (s := alice_client.get(reverse("download_status", args=[run.download_id])).json())
                      ["state"] == "failed" and s, message="the soil status to fail")
    assert status["errors"] == ["The export was cancelled."] and not status["has_file"]
    assert alice_client.get(reverse("exports:download", args=[run.pk])).status_code == 409
    folder = f"exports/{domain.slug}"  # made by the first file stored there, if any
    stored = export_storage().listdir(folder)[1] if export_storage().exists(folder) else []
    assert not [name for name in stored if name.startswith(str(run.pk))]


def test_starting_the_same_export_while_it_runs_returns_that_run(worker, alice_client, domain, redis_client):
    definition = gated_definition(domain, redis_client)
    first = run_from_redirect(start(alice_client, definition))
    second = run_from_redirect(start(alice_client, definition))
    other_format = run_from_redirect(start(alice_client, definition, format="xlsx"))
    assert second.pk == first.pk and other_format.pk != first.pk
    assert ExportRun.objects.filter(definition=definition).count() == 2
    redis_client.set(GATE_KEY.format(f"export-{domain.slug}"), 1, ex=60)
    assert finished_run(first.pk).status == Status.SUCCEEDED
    assert finished_run(other_format.pk).status == Status.SUCCEEDED
    third = run_from_redirect(start(alice_client, definition))
    assert third.pk != first.pk


# --- limits and access ---

@pytest.mark.django_db
def test_an_export_over_the_row_limit_is_refused_up_front(alice_client, definition, settings):
    settings.EXPORT_MAX_ROWS = 10
    response = start(alice_client, definition)
    assert response.status_code == 400
    assert "42 rows, more than the limit of 10" in response.content.decode()
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
def test_a_bad_format_is_refused_with_a_message(alice_client, definition):
    response = start(alice_client, definition, format="pdf")
    assert response.status_code == 400 and b"pdf" in response.content
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
def test_an_unknown_time_zone_is_refused_when_a_domain_is_saved():
    with pytest.raises(ValidationError, match="Unknown time zone 'Mars/Olympus'"):
        Domain.objects.create(slug="mars", name="Mars", time_zone="Mars/Olympus")


@pytest.mark.django_db
def test_people_outside_the_domain_see_nothing_of_it(client, bob, alice, definition):
    run, _ = services.start_export(alice, definition, format="csv")
    client.force_login(bob)
    urls = [
        reverse("exports:domain", args=[definition.domain.slug]),
        reverse("exports:definition_edit", args=[definition.domain.slug, definition.pk]),
        reverse("exports:run", args=[run.pk]),
        reverse("exports:run_status", args=[run.pk]),
        reverse("exports:download", args=[run.pk]),
        reverse("exports:api_run", args=[run.pk]),
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert start(client, definition).status_code == 404
    with pytest.raises(PermissionDenied, match="not a member"):
        services.start_export(bob, definition)


@pytest.mark.django_db
def test_a_member_cannot_reach_another_domains_definition(alice_client, alice):
    other = ensure_demo_domain(slug="other", name="Other", time_zone="UTC")
    other_definition = other.definitions.first()
    assert start(alice_client, other_definition).status_code == 404
    # Even through the URL of a domain alice belongs to.
    ensure_demo_domain(slug="mine", members=[alice])
    url = reverse("exports:start", args=["mine", other_definition.pk])
    assert alice_client.post(url, {f"d{other_definition.pk}-format": "csv"}).status_code == 404


# --- expiry ---

def test_cleanup_deletes_expired_files_and_the_download_answers_410(worker, alice_client, definition):
    run = finished_run(run_from_redirect(start(alice_client, definition)).pk)
    key = run.file_key
    assert export_storage().exists(key)
    ExportRun.objects.filter(pk=run.pk).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))

    assert cleanup_expired_exports.delay().get(timeout=30) == 1
    run.refresh_from_db()
    assert run.status == Status.EXPIRED
    assert not export_storage().exists(key)
    response = alice_client.get(reverse("exports:download", args=[run.pk]))
    assert response.status_code == 410
    assert b"Run it again" in response.content
    assert DownloadBase.get(run.download_id) is None

    again = run_from_redirect(alice_client.post(reverse("exports:rerun", args=[run.pk])))
    assert again.pk != run.pk and again.parameters == run.parameters


# --- email ---

def test_email_me_sends_the_link_when_the_export_is_ready(worker, alice_client, alice, definition):
    alice.email = "alice@example.com"
    alice.save()
    run = finished_run(run_from_redirect(start(alice_client, definition, notify_by_email="on")).pk)
    assert run.status == Status.SUCCEEDED
    def whole_email():  # the file backend creates its file before it writes the message
        text = "".join(path.read_text() for path in WORKER_MAIL_DIR.glob("*.log"))
        return text if "is ready" in text else None

    text = wait_for(whole_email, message="the email")
    assert "alice@example.com" in text and "is ready" in text
    assert reverse("exports:run", args=[run.pk]) in text
    assert ExportRun.objects.get(pk=run.pk).email_sent_at is not None


@pytest.mark.django_db
def test_the_ready_email_is_sent_once(alice, definition):
    alice.email = "alice@example.com"
    alice.save()
    run, _ = services.start_export(alice, definition, format="csv", notify_by_email=True)
    ExportRun.objects.filter(pk=run.pk).update(status=Status.SUCCEEDED, rows=42,
                                               expires_at=timezone.now() + datetime.timedelta(hours=1))
    assert services.send_ready_email(run.pk) is True
    assert services.send_ready_email(run.pk) is False
    assert len(mail.outbox) == 1


# --- the JSON API for scripts ---

def bearer(user):
    """An Authorization header with an API token of the user's (made on first use)."""
    from project.accounts.tokens import create_token

    if not hasattr(user, "api_header"):
        user.api_header = "Bearer " + create_token(user, "tests")[1]
    return user.api_header


def test_api_starts_reads_and_fetches_an_export(worker, client, alice, definition):
    url = reverse("exports:api_start", args=[definition.domain.slug, definition.pk])
    response = client.post(url, {"format": "csv"}, content_type="application/json",
                           HTTP_AUTHORIZATION=bearer(alice))
    assert response.status_code == 202
    run_id = response.json()["id"]
    finished_run(run_id)
    status = client.get(reverse("exports:api_run", args=[run_id]), HTTP_AUTHORIZATION=bearer(alice)).json()
    assert status["status"] == "succeeded" and status["rows"] == 42
    response = client.get(status["file_url"], HTTP_AUTHORIZATION=bearer(alice))
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert len(list(csv.reader(io.StringIO(body)))) == 43


@pytest.mark.django_db
def test_api_answers_json_errors(client, alice, definition):
    url = reverse("exports:api_start", args=[definition.domain.slug, definition.pk])
    assert client.post(url, {}, content_type="application/json").status_code == 401
    wrong = "Basic " + base64.b64encode(b"alice:wrong").decode()
    assert client.post(url, {}, content_type="application/json", HTTP_AUTHORIZATION=wrong).status_code == 401
    response = client.post(url, {"format": "pdf"}, content_type="application/json", HTTP_AUTHORIZATION=bearer(alice))
    assert response.status_code == 400 and "format" in response.json()["fields"]
    response = client.post(url, "not json", content_type="application/json", HTTP_AUTHORIZATION=bearer(alice))
    assert response.status_code == 400


# --- editing definitions in the UI and the admin ---

@pytest.mark.django_db
def test_a_member_creates_a_definition_in_the_ui_with_chosen_columns(alice_client, domain):
    url = reverse("exports:definition_new", args=[domain.slug])
    response = alice_client.post(url, {"name": "Ages", "source": "form_submissions", "columns": ["age", "village"],
                                       "format": "zip", "is_daily_saved": "on"})
    assert response.status_code == 302
    definition = ExportDefinition.objects.get(domain=domain, name="Ages")
    assert definition.columns == ["age", "village"] and definition.format == "zip"
    assert definition.saved.next_build_at > timezone.now()  # a daily saved export is scheduled at once


@pytest.mark.django_db
def test_a_definition_with_bad_dates_is_refused_with_a_message(alice_client, domain):
    url = reverse("exports:definition_new", args=[domain.slug])
    response = alice_client.post(url, {"name": "Backwards", "source": "form_submissions", "format": "csv",
                                       "date_from": "2025-02-01", "date_to": "2025-01-01"})
    assert response.status_code == 400
    assert b"The start date is after the end date." in response.content
    assert not ExportDefinition.objects.filter(name="Backwards").exists()


@pytest.mark.django_db
def test_staff_edit_definitions_and_see_runs_in_the_admin(client, make_user, definition):
    admin = make_user("admin", is_staff=True, is_superuser=True)
    client.force_login(admin)
    change_url = reverse("admin:exports_exportdefinition_change", args=[definition.pk])
    assert client.get(change_url).status_code == 200
    response = client.post(change_url, {"domain": definition.domain_id, "name": definition.name,
                                        "source": "form_submissions", "columns": '["nope"]', "format": "csv"})
    assert response.status_code == 200 and b"Unknown column(s)" in response.content
    for model in ("domain", "exportrun", "savedexport"):
        assert client.get(reverse(f"admin:exports_{model}_changelist")).status_code == 200


@pytest.mark.django_db
def test_temporary_files_are_removed_on_success_and_on_failure(definition, tmp_path, settings):
    from exports.files.export_file import ExportCancelled, build_and_store

    settings.EXPORT_TEMP_DIR = str(tmp_path)
    key, rows, size = build_and_store(definition, {"format": "xlsx"}, "exports/tmp-check")
    assert rows == 42 and size > 0 and export_storage().exists(key)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ExportCancelled):
        build_and_store(definition, {"format": "csv"}, "exports/tmp-check", is_cancelled=lambda: True)
    assert list(tmp_path.iterdir()) == []
    assert export_storage().listdir("partial") == ([], [])  # the published file went through it; nothing is left


def test_a_time_column_heading_names_the_zone_of_its_times():
    received_on = next(column for column in FORM_SUBMISSIONS.columns if column.key == "received_on")
    assert received_on.heading("Asia/Kolkata") == "Received on (IST)"
    assert received_on.heading("UTC") == "Received on (UTC)"
    # A zone that changes abbreviation over the year, or has only an offset for one, is named.
    assert received_on.heading("Europe/Paris") == "Received on (Europe/Paris)"
    assert received_on.heading("Asia/Kathmandu") == "Received on (Asia/Kathmandu)"
    village = next(column for column in FORM_SUBMISSIONS.columns if column.key == "village")
    assert village.heading("Asia/Kolkata") == "Village"


def test_dates_that_hold_no_row_are_warned_of_before_the_export_starts(client, alice, definition):
    client.force_login(alice)
    response = start(client, definition, date_from="2031-01-01", date_to="2031-01-31")
    page = response.content.decode()
    assert response.status_code == 200 and not ExportRun.objects.exists()
    assert 'id="no-rows-warning"' in page and "No rows in these dates" in page
    assert 'value="2031-01-01"' in page  # what was typed is kept
    response = client.post(reverse("exports:start", args=[definition.domain.slug, definition.pk]),
                           {f"d{definition.pk}-format": "csv", f"d{definition.pk}-date_from": "2031-01-01",
                            f"d{definition.pk}-date_to": "2031-01-31", "action": "export_empty"})
    run = ExportRun.objects.get()
    assert response.status_code == 302 and run.parameters["date_from"] == "2031-01-01"
    # Dates that hold rows start at once, as does an export with no dates typed.
    assert start(client, definition, date_from="2024-12-01", date_to="2025-12-31").status_code == 302
    assert start(client, definition, format="xlsx").status_code == 302
