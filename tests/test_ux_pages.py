"""What a person reads: local times, humanised durations and counts, statuses and messages."""
import datetime
import uuid

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from exports import formatting
from exports.demo import ensure_demo_domain
from exports.models import ExportDefinition, ExportRun, SavedExport
from exports.runs import services
from exports.saved.services import save_definition

Status = ExportRun.Status
UTC = datetime.UTC


# --- exports.formatting, without HTTP ---

def test_local_time_is_in_the_zone_with_its_abbreviation():
    moment = datetime.datetime(2026, 11, 23, 8, 35, tzinfo=UTC)
    assert formatting.format_local_time(moment, "Asia/Kolkata") == "2026-11-23 14:05 IST"
    assert formatting.format_local_time(moment, "Europe/Paris") == "2026-11-23 09:35 CET"
    assert formatting.format_local_time(moment, "UTC") == "2026-11-23 08:35 UTC"
    summer = datetime.datetime(2026, 7, 1, 8, 35, tzinfo=UTC)
    assert formatting.format_local_time(summer, "Europe/Paris") == "2026-07-01 10:35 CEST"


def test_local_time_of_nothing_or_an_unknown_zone():
    assert formatting.format_local_time(None, "Asia/Kolkata") == ""
    assert formatting.format_local_time(None, "Asia/Kolkata", empty="not yet") == "not yet"
    moment = datetime.datetime(2026, 11, 23, 8, 35, tzinfo=UTC)
    assert formatting.format_local_time(moment, "Not/AZone") == "2026-11-23 08:35 UTC"


@pytest.mark.parametrize("seconds, text", [
    (0, "under 0.1 s"), (0.04, "under 0.1 s"), (0.4, "0.4 s"), (2.365833, "2.4 s"), (9.96, "10.0 s"), (12.4, "12 s"), (59.4, "59 s"),
    (60, "1 min"), (185, "3 min 5 s"), (3600, "1 h"), (3600 + 5 * 60 + 7, "1 h 5 min"),
])
def test_durations_read_as_a_person_says_them(seconds, text):
    assert formatting.format_duration(datetime.timedelta(seconds=seconds)) == text
    assert formatting.format_duration(seconds) == text


def test_counts_have_thousands_separators():
    assert formatting.format_duration(None) == ""
    assert formatting.format_count(305000) == "305,000"
    assert formatting.format_count(None) == ""
    assert formatting.format_rows(305000) == "305,000 rows"
    assert formatting.format_rows(1) == "1 row"


# --- pages and the email ---

@pytest.fixture
def domain(alice):
    return ensure_demo_domain(slug="clinic", name="Clinic", time_zone="Asia/Kolkata", members=[alice])


@pytest.fixture
def definition(domain):
    return ExportDefinition.objects.get(domain=domain, name="All form submissions")


def make_run(alice, definition, **fields):
    values = dict(owner=alice, domain=definition.domain, definition=definition, parameters={"format": "csv"},
                  parameters_key=uuid.uuid4().hex, task_id=str(uuid.uuid4()), status=Status.SUCCEEDED, rows=305000, bytes=2048,
                  duration=datetime.timedelta(seconds=2.365833), file_key="exports/none.csv",
                  filename="none.csv", download_id=uuid.uuid4().hex,
                  created_at=datetime.datetime(2026, 11, 23, 8, 35, tzinfo=UTC),
                  expires_at=timezone.now() + datetime.timedelta(hours=2))
    values.update(fields)
    return ExportRun.objects.create(**values)


@pytest.mark.django_db
def test_pages_show_local_times_durations_and_counts(alice_client, alice, definition):
    run = make_run(alice, definition)
    SavedExport.objects.filter(definition=definition).delete()
    definition.is_daily_saved = True
    save_definition(definition)
    SavedExport.objects.filter(definition=definition).update(
        last_build_at=datetime.datetime(2026, 11, 22, 18, 30, tzinfo=UTC), rows=1234567,
        last_build_duration=datetime.timedelta(seconds=185),
        next_build_at=datetime.datetime(2026, 11, 23, 18, 30, tzinfo=UTC))
    page = alice_client.get(reverse("exports:domain", args=[definition.domain.slug])).content.decode()
    assert "2026-11-23 14:05 IST" in page  # the run's start
    assert "2026-11-23 00:00 IST" in page  # last built
    assert "2026-11-24 00:00 IST" in page  # next build
    assert "3 min 5 s" in page and "1,234,567" in page and "305,000" in page
    page = alice_client.get(reverse("exports:run", args=[run.pk])).content.decode()
    assert "Started 2026-11-23 14:05 IST" in page
    assert "305,000 rows" in page and "2.4 s" in page and "0:00:02" not in page
    assert formatting.format_local_time(run.expires_at, "Asia/Kolkata") in page


@pytest.mark.django_db
def test_the_email_gives_the_expiry_in_the_domains_zone(alice, definition):
    alice.email = "alice@example.com"
    alice.save()
    expires = timezone.now() + datetime.timedelta(hours=1)
    run = make_run(alice, definition, notify_by_email=True, expires_at=expires)
    assert services.send_ready_email(run.pk) is True
    (message,) = mail.outbox
    assert "305,000 rows" in message.body
    assert formatting.format_local_time(expires, "Asia/Kolkata") in message.body
    assert " IST" in message.body


# --- B: the status is computed when it is read ---

@pytest.mark.django_db
def test_a_run_past_its_expiry_reads_as_expired_everywhere_before_cleanup(alice_client, alice, definition):
    run = make_run(alice, definition, expires_at=timezone.now() - datetime.timedelta(minutes=1))
    assert ExportRun.objects.get(pk=run.pk).status == Status.SUCCEEDED  # the cleanup task has not run
    assert (run.display_status, run.has_file) == (Status.EXPIRED, False)

    page = alice_client.get(reverse("exports:run", args=[run.pk])).content.decode()
    assert "Expired" in page and "Succeeded" not in page
    assert 'id="run-download"' not in page and reverse("exports:download", args=[run.pk]) not in page
    assert reverse("exports:rerun", args=[run.pk]) in page

    page = alice_client.get(reverse("exports:domain", args=[definition.domain.slug])).content.decode()
    assert "Expired" in page and "Succeeded" not in page
    assert reverse("exports:download", args=[run.pk]) not in page
    assert reverse("exports:rerun", args=[run.pk]) in page

    response = alice_client.get(reverse("exports:download", args=[run.pk]))
    assert response.status_code == 410 and b"has expired" in response.content
    assert alice_client.get(reverse("exports:run_status", args=[run.pk])).json()["run_status"] == "expired"


@pytest.mark.django_db
def test_a_run_before_its_expiry_offers_its_file(alice_client, alice, definition):
    run = make_run(alice, definition)
    assert (run.display_status, run.has_file) == (Status.SUCCEEDED, True)
    page = alice_client.get(reverse("exports:domain", args=[definition.domain.slug])).content.decode()
    assert "Succeeded" in page and reverse("exports:download", args=[run.pk]) in page


# --- C: failure and cancel on the progress page ---

@pytest.mark.django_db
def test_a_failed_run_shows_a_red_error_state_with_the_error_once(alice_client, alice, definition):
    run = make_run(alice, definition, status=Status.FAILED, error="The source table is gone.", rows=None,
                   file_key="", expires_at=None)
    page = alice_client.get(reverse("exports:run", args=[run.pk])).content.decode()
    assert 'class="run-status run-failed"' in page
    assert ">Failed</strong>" in page
    assert page.count("The source table is gone.") == 1
    assert "Run it again" in page


def test_the_progress_widget_of_a_failed_task_is_red_and_gives_the_error_once():
    from django.template.loader import render_to_string

    status = {"state": "failed", "percent": 40, "message": "bad row 3", "errors": ["bad row 3"],
              "is_alive": True, "has_file": False, "is_ready": False}
    html = render_to_string("soil/partials/progress.html", {"status": status, "status_url": "/s/"})
    assert 'class="soil-progress soil-failed"' in html and "Failed." in html
    assert html.count("bad row 3") == 1
    assert 'aria-valuenow="40"' in html


@pytest.mark.django_db
def test_once_cancel_is_requested_the_page_offers_no_cancel(alice_client, alice, definition):
    run = make_run(alice, definition, status=Status.RUNNING, rows=None, expires_at=None, file_key="")
    page = alice_client.get(reverse("exports:run", args=[run.pk])).content.decode()
    assert 'id="cancel-run"' in page
    ExportRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    page = alice_client.get(reverse("exports:run", args=[run.pk])).content.decode()
    assert 'id="cancel-run"' not in page and "Cancelling…" in page
    assert alice_client.get(reverse("exports:run_status", args=[run.pk])).json()["cancel_requested"] is True


# --- D: "Email me" without an email address ---

@pytest.mark.django_db
def test_email_me_without_an_address_gives_only_the_error(alice_client, alice, definition):
    alice.email = ""
    alice.save()
    run = make_run(alice, definition, status=Status.RUNNING, rows=None, expires_at=None, file_key="")
    response = alice_client.post(reverse("exports:notify", args=[run.pk]), follow=True)
    page = response.content.decode()
    assert "no email address" in page
    assert "We will email" not in page
    assert ExportRun.objects.get(pk=run.pk).notify_by_email is False
    assert 'id="notify-run"' in page  # still offered, for after an address is added
    with pytest.raises(services.NoEmailAddress):
        services.request_email(alice, run)


@pytest.mark.django_db
def test_email_me_with_an_address_says_where_it_goes(alice_client, alice, definition):
    alice.email = "alice@example.com"
    alice.save()
    run = make_run(alice, definition, status=Status.RUNNING, rows=None, expires_at=None, file_key="")
    page = alice_client.post(reverse("exports:notify", args=[run.pk]), follow=True).content.decode()
    assert "We will email alice@example.com" in page and "no email address" not in page
    assert ExportRun.objects.get(pk=run.pk).notify_by_email is True


@pytest.mark.django_db
def test_starting_with_email_me_without_an_address_says_so(alice_client, alice, definition, eager):
    alice.email = ""
    alice.save()
    response = alice_client.post(reverse("exports:start", args=[definition.domain.slug, definition.pk]),
                                 {f"d{definition.pk}-format": "csv", f"d{definition.pk}-notify_by_email": "on"},
                                 follow=True)
    page = response.content.decode()
    assert "no email address" in page and "We will email" not in page
    assert ExportRun.objects.filter(owner=alice, notify_by_email=True).count() == 0


# --- E: the email's link ---

@pytest.mark.django_db
def test_the_email_link_starts_with_site_url(alice, definition, settings):
    settings.SITE_URL = "https://exports.example.org/"
    alice.email = "alice@example.com"
    alice.save()
    run = make_run(alice, definition, notify_by_email=True)
    assert services.send_ready_email(run.pk) is True
    (message,) = mail.outbox
    assert f"https://exports.example.org{reverse('exports:run', args=[run.pk])}\n" in message.body


def test_the_default_site_url_and_run_sh_follow_host_and_port():
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent

    def site_url(host, port):
        return subprocess.run(["bash", "-c", f"source '{root / 'setup.sh'}' && site_url \"$0\" \"$1\"", host, port],
                              check=True, capture_output=True, text=True, timeout=60).stdout.strip()

    assert site_url("127.0.0.1", "8000") == "http://127.0.0.1:8000"
    assert site_url("192.168.1.20", "9000") == "http://192.168.1.20:9000"
    assert site_url("0.0.0.0", "8080") == "http://127.0.0.1:8080"
    assert site_url("::1", "8000") == "http://[::1]:8000"
    run_sh = (root / "run.sh").read_text()
    assert 'export SITE_URL="${SITE_URL:-$(site_url "$HOST" "$PORT")}"' in run_sh
    # set before the workers start: they send the emails
    assert run_sh.index("export SITE_URL=") < run_sh.index("worker $(")


@pytest.mark.django_db
def test_api_token_times_say_their_zone(alice_client, alice):
    from project.accounts.tokens import create_token

    create_token(alice, "nightly sync script")
    page = alice_client.get(reverse("api_tokens")).content.decode()
    assert " UTC</td>" in page and "never" in page


@pytest.mark.django_db
def test_error_pages_are_the_sites_own_in_words_with_a_way_on(alice_client, rf):
    """404 and 403 keep the menu and point to the exports; 500 renders without a request's context."""
    from django.core.exceptions import PermissionDenied
    from django.views import defaults

    response = alice_client.get(f"/exports/runs/{uuid.uuid4()}/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page and reverse("exports:home") in page and "Log out" in page
    response = defaults.permission_denied(rf.get("/somewhere/"), PermissionDenied())
    assert response.status_code == 403 and b"Not allowed" in response.content
    response = defaults.server_error(rf.get("/somewhere/"))
    assert response.status_code == 500
    assert b"Something went wrong" in response.content and b'<html lang="en">' in response.content
    french = alice_client.get(f"/exports/runs/{uuid.uuid4()}/", HTTP_ACCEPT_LANGUAGE="fr")
    assert "Page introuvable" in french.content.decode()


@pytest.mark.django_db
def test_the_new_words_read_in_french(alice_client, alice, definition):
    """Issue 23's new strings (a cancelled run, the delete question, the domain's rows, a quick build) in French."""
    french = {"HTTP_ACCEPT_LANGUAGE": "fr"}
    cancelled = make_run(alice, definition, status=Status.CANCELLED, error="Annulé par l’utilisateur.",
                         last_progress={"current": 1, "total": 4, "percent": 25})
    page = alice_client.get(reverse("exports:run", args=[cancelled.pk]), **french).content.decode()
    assert "Annulé." in page and "Échec." not in page
    asked = alice_client.post(reverse("exports:delete", args=[cancelled.pk]), **french).content.decode()
    assert "Supprimer cet export\u202f?" in asked and "« All form submissions » (CSV, lancé le 23/11/2026" in asked
    quick = make_run(alice, definition, duration=datetime.timedelta(milliseconds=20))
    assert "moins de 0,1 s" in alice_client.get(reverse("exports:run", args=[quick.pk]), **french).content.decode()
    domain_page = alice_client.get(reverse("exports:domain", args=[definition.domain.slug]), **french).content.decode()
    assert "Formulaires reçus\u202f: 0 ligne dans ce domaine." in domain_page and "toutes les dates" in domain_page
