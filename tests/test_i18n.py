"""Translations: the French catalogue is whole and compiled, the language follows the browser, the
footer's selector and the stored preference, counts and times read the language's way."""
import datetime
import gettext
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation

from exports import formatting
from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition, ExportRun
from exports.runs import limits
from exports.tasks import send_export_ready_email
from project.accounts.models import UserPreference
from tests.po_file import read_po
from tests.test_exports import start

ROOT = Path(__file__).resolve().parent.parent
CATALOGUES = sorted(ROOT.glob("*/locale/fr/LC_MESSAGES/django.po"))
NO_BREAK_SPACES = ("\u00a0", "\u202f")
UTC = datetime.UTC


# --- the catalogue ---

def test_each_app_has_a_french_catalogue():
    assert {path.relative_to(ROOT).parts[0] for path in CATALOGUES} == {"soil", "exports", "project"}


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda path: path.relative_to(ROOT).parts[0])
def test_every_french_msgid_is_translated_and_none_is_fuzzy(po):
    entries = [entry for entry in read_po(po) if entry.msgid and not entry.obsolete]
    assert entries
    untranslated = [entry.msgid for entry in entries if not all(entry.msgstr.values()) or
                    (entry.msgid_plural is not None and len(entry.msgstr) < 2)]
    fuzzy = [entry.msgid for entry in entries if "fuzzy" in entry.flags]
    assert untranslated == [] and fuzzy == []
    header = read_po(po)[0]
    assert "fuzzy" not in header.flags and "Plural-Forms: nplurals=2; plural=(n > 1);" in header.msgstr[0]


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda path: path.relative_to(ROOT).parts[0])
def test_the_committed_mo_holds_exactly_the_po(po):
    """The .mo is compiled from the .po as it is now (docs/operations.md: compilemessages after each edit)."""
    with open(po.with_suffix(".mo"), "rb") as mo:
        compiled = gettext.GNUTranslations(mo)._catalog
    expected = {}
    for entry in read_po(po):
        if entry.obsolete or "fuzzy" in entry.flags:
            continue
        if entry.msgid_plural is None:
            expected[entry.key] = entry.msgstr[0]
        else:
            expected.update({(entry.key, n): text for n, text in entry.msgstr.items()})
    compiled.pop(""), expected.pop("")  # the header: msgfmt keeps some of its fields, not all
    assert compiled == expected


# --- numbers and times by language ---

def test_counts_durations_and_times_read_the_languages_way():
    moment = datetime.datetime(2026, 11, 23, 8, 35, tzinfo=UTC)
    with translation.override("en"):
        assert formatting.format_count(305000) == "305,000"
        assert formatting.format_rows(305000) == "305,000 rows"
        assert formatting.format_duration(2.365833) == "2.4 s"
        assert formatting.format_local_time(moment, "Asia/Kolkata") == "2026-11-23 14:05 IST"
        assert formatting.ROWS_PROGRESS.format(current=12000, total=250000) == "12,000 of 250,000 rows"
    with translation.override("fr"):
        count = formatting.format_count(305000)
        assert count[:3] == "305" and count[3] in NO_BREAK_SPACES and count[4:] == "000"
        assert formatting.format_rows(305000) == f"{count} lignes"
        assert formatting.format_rows(1) == "1 ligne"
        assert formatting.format_duration(2.365833) == "2,4 s"
        assert formatting.format_duration(185) == "3 min 5 s"
        assert formatting.format_local_time(moment, "Asia/Kolkata") == "23/11/2026 14:05 IST"
        assert formatting.ROWS_PROGRESS.format(current=1, total=1) == "1 sur 1 ligne"


# --- the language of a request ---

@pytest.fixture
def domain(alice):
    return ensure_demo_domain(slug="clinic", name="Clinic", time_zone="Asia/Kolkata", members=[alice])


@pytest.fixture
def definition(domain):
    return ExportDefinition.objects.get(domain=domain, name="All form submissions")


@pytest.mark.django_db
def test_a_page_asked_for_in_french_is_in_french_and_english_stays_english(alice_client, definition):
    url = reverse("exports:domain", args=[definition.domain.slug])
    french = alice_client.get(url, HTTP_ACCEPT_LANGUAGE="fr-FR,fr;q=0.9,en;q=0.5").content.decode()
    assert '<html lang="fr">' in french
    assert "Vos exports récents" in french and "Définitions d’export" in french
    assert "Your recent exports" not in french
    english = alice_client.get(url, HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9").content.decode()
    assert '<html lang="en">' in english and "Your recent exports" in english
    assert '<html lang="en">' in alice_client.get(url).content.decode()  # no Accept-Language: English


@pytest.mark.django_db
def test_the_selector_switches_language_and_stores_it_for_the_next_login(client, alice):
    client.force_login(alice)
    response = client.post(reverse("set_language"), {"language": "fr", "next": "/exports/"})
    assert response.status_code == 302 and response["Location"] == "/exports/"
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    assert UserPreference.objects.get(user=alice).language == "fr"
    assert "Vos domaines" in client.get("/exports/").content.decode()

    fresh = type(client)()  # another browser: no cookie, an English Accept-Language
    page = fresh.get(reverse("login"), HTTP_ACCEPT_LANGUAGE="en")
    assert "Log in" in page.content.decode()
    response = fresh.post(reverse("login"), {"username": alice.username, "password": alice.raw_password},
                          HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302
    assert fresh.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    assert '<html lang="fr">' in fresh.get("/", HTTP_ACCEPT_LANGUAGE="en").content.decode()


@pytest.mark.django_db
def test_a_login_without_a_stored_language_sets_no_cookie(client, alice):
    response = client.post(reverse("login"), {"username": alice.username, "password": alice.raw_password})
    assert response.status_code == 302
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies


@pytest.mark.django_db
def test_an_anonymous_choice_sets_the_cookie_and_stores_nothing(client):
    response = client.post(reverse("set_language"), {"language": "fr", "next": "/accounts/login/"})
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "fr"
    assert response["Location"] == "/accounts/login/"
    assert "Se connecter" in client.get("/accounts/login/").content.decode()
    assert not UserPreference.objects.exists()


@pytest.mark.django_db
def test_an_unknown_language_is_neither_applied_nor_stored(client, alice):
    client.force_login(alice)
    client.post(reverse("set_language"), {"language": "xx", "next": "/"})
    assert settings.LANGUAGE_COOKIE_NAME not in client.cookies
    assert not UserPreference.objects.exists()


# --- form errors, refusals and the email in French ---

@pytest.mark.django_db
def test_form_errors_and_refusals_come_out_in_french(alice_client, definition, settings):
    alice_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fr"
    response = start(alice_client, definition, date_to="9999-12-31")
    assert response.status_code == 400
    assert "La date de fin doit être comprise entre le 1 janvier 1900 et le 31 décembre 2100." in response.content.decode()
    response = start(alice_client, definition, date_from="2025-02-01", date_to="2025-01-01")
    assert "La date de début est postérieure à la date de fin." in response.content.decode()
    add_demo_rows(definition.domain, 3)
    settings.EXPORT_MAX_ROWS = 0
    response = start(alice_client, definition)
    assert response.status_code == 400
    assert "plus que la limite de 0 ligne. Choisissez une période plus courte." in response.content.decode()
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
def test_the_active_runs_limit_refuses_in_french(alice, domain, settings):
    settings.EXPORT_MAX_ACTIVE_RUNS_PER_USER = 0
    with translation.override("fr"), pytest.raises(limits.LimitReached) as refusal:
        limits.check_active_runs(alice, domain)
    assert str(refusal.value) == ("Vous avez déjà 0 export en attente ou en cours ; "
                                  "attendez qu’il se termine ou annulez-le.")


@pytest.mark.django_db
def test_a_run_keeps_the_language_it_was_asked_in_and_its_email_is_in_it(alice_client, alice, definition):
    alice.email = "alice@example.com"
    alice.save()
    alice_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fr"
    assert start(alice_client, definition, date_from="2025-01-01", date_to="2025-01-01").status_code == 302
    run = ExportRun.objects.get()
    assert run.language == "fr"
    ExportRun.objects.filter(pk=run.pk).update(
        status=ExportRun.Status.SUCCEEDED, rows=305000, notify_by_email=True,
        expires_at=datetime.datetime(2026, 11, 23, 8, 35, tzinfo=UTC))
    assert send_export_ready_email(str(run.pk)) is True  # the task, run here: in the run's language
    (message,) = mail.outbox
    assert message.subject == "Votre export « All form submissions » est prêt"
    assert "lignes est disponible jusqu’au 23/11/2026 14:05 IST" in message.body


# --- the progress widget's JavaScript, in a browser ---

@pytest.mark.browser
def test_the_progress_widget_speaks_french_in_french(chromium, live_server, alice, transactional_db):
    domain = ensure_demo_domain(slug="fr-clinic", name="Clinique", members=[alice])
    definition = ExportDefinition.objects.get(domain=domain, name="All form submissions")
    run = ExportRun.objects.create(
        owner=alice, domain=domain, definition=definition, parameters={"format": "csv"},
        parameters_key=uuid.uuid4().hex, task_id=str(uuid.uuid4()), download_id=uuid.uuid4().hex,
        status=ExportRun.Status.QUEUED, queued_at=timezone.now())
    context = chromium.new_context(locale="fr-FR")  # the browser sends Accept-Language: fr-FR
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{live_server.url}/accounts/login/")
        assert page.locator("html").get_attribute("lang") == "fr"
        page.fill("input[name=username]", alice.username)
        page.fill("input[name=password]", alice.raw_password)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        # Neither the run's event stream nor polling: only the states drawn here reach the widget.
        page.route("**/events/", lambda route: route.abort())
        page.goto(f"{live_server.url}/exports/runs/{run.pk}/?polling=off")
        widget = page.locator(".soil-progress")
        render = "s => window.soil.render(document.querySelector('.soil-progress'), s)"
        page.evaluate(render, {"state": "started", "percent": 40, "eta_seconds": 90, "errors": [], "is_alive": True})
        assert widget.locator(".soil-state").inner_text() == "En cours…"
        assert widget.locator(".soil-eta").inner_text() == "encore environ 2 min"
        page.evaluate(render, {"state": "started", "percent": 50, "eta_seconds": 20, "errors": []})
        assert widget.locator(".soil-eta").inner_text() == "encore environ 20 s"
        page.evaluate(render, {"state": "not_started", "percent": 0, "errors": []})
        assert widget.locator(".soil-state").inner_text() == "En attente d’un processus de travail…"
        page.evaluate(render, {"state": "success", "percent": 100, "errors": [], "is_ready": True,
                               "has_file": True, "download_url": "/downloads/x/"})
        assert widget.locator(".soil-state").inner_text() == "Prêt."
        assert widget.locator(".soil-download").inner_text() == "Télécharger"
        # The footer's selector switches back to English.
        page.select_option("#language-select", "en")
        page.click("#language-submit")
        page.wait_for_load_state()
        assert page.locator("html").get_attribute("lang") == "en"
        assert page.locator("#language-select").input_value() == "en"
    finally:
        context.close()
