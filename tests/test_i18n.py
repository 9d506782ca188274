"""Translations: the French catalogue is whole and compiled, the language follows the browser, the
footer's selector and the stored preference, counts and times read the language's way."""
import datetime
import gettext
import json
import re
import uuid
from html.parser import HTMLParser
from pathlib import Path

import django
import pytest
from django.conf import settings
from django.core import mail
from django.urls import reverse
from django.utils import timezone, translation

from exports import formatting
from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition, ExportRun, FormSubmission
from exports.runs import limits, services, words
from exports.saved import services as saved_exports
from exports.tasks import send_export_ready_email
from project.accounts.models import UserPreference
from soil.util import expose_file_download
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
    assert str(refusal.value) == ("Vous avez déjà 0 export en attente ou en cours\u202f; "
                                  "attendez qu’il se termine ou annulez-le.")


@pytest.mark.django_db
def test_a_run_keeps_the_language_it_was_asked_in_and_its_email_is_in_it(alice_client, alice, definition):
    alice.email = "alice@example.com"
    alice.save()
    alice_client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fr"
    assert start(alice_client, definition).status_code == 302
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


# --- every page, email and JSON message, in French: no English left ---

PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]|\{\{[^}]*\}\}|<[^>]+>|&\w+;|\n")


def french_texts():
    """Every French string of the catalogues (ours and Django's own French, which the admin uses)."""
    texts = []
    for po in CATALOGUES:
        for entry in read_po(po):
            texts.extend(entry.msgstr.values())
    with open(Path(django.__file__).parent / "conf/locale/fr/LC_MESSAGES/django.mo", "rb") as mo:
        for value in gettext.GNUTranslations(mo)._catalog.values():
            texts.append(value)
    return texts


def english_fragments():
    """The English words of every msgid (cut at its placeholders and tags) that a French page must not
    show: those that no French string contains too ("Village" or "CSV" read the same in both)."""
    french = "\n".join(french_texts())
    fragments = set()
    for po in CATALOGUES:
        for entry in read_po(po):
            if not entry.msgid or entry.obsolete:
                continue
            for text in filter(None, (entry.msgid, entry.msgid_plural)):
                for fragment in PLACEHOLDER.split(text):
                    fragment = fragment.strip(" .,:;()«»“”\"'…·–-")
                    if len(fragment) >= 4 and re.search(r"[A-Za-z]{3}", fragment) and \
                            not re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", french):
                        fragments.add(fragment)
    return fragments


class VisibleText(HTMLParser):
    """What a person reads on a page: its text and the words of aria-label, title, placeholder, alt and
    a button's value; not scripts and styles."""

    def __init__(self):
        super().__init__()
        self.parts, self.skipping = [], 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skipping += 1
        attrs = dict(attrs)
        for name in ("aria-label", "title", "placeholder", "alt"):
            if attrs.get(name):
                self.parts.append(attrs[name])
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.parts.append(attrs["value"])

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skipping -= 1

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)


def visible_text(html):
    parser = VisibleText()
    parser.feed(html)
    return re.sub(r"[ \t\r\n]+", " ", " ".join(parser.parts)).strip()  # U+202F and U+00A0 are kept


def english_in(text, fragments):
    return sorted(fragment for fragment in fragments if re.search(rf"(?<!\w){re.escape(fragment)}(?!\w)", text))


@pytest.fixture
def french_site(alice, client, settings, tmp_path):
    """Alice, staff and superuser, with a domain holding runs in every state, read in French."""
    settings.DEBUG = False
    alice.is_staff = alice.is_superuser = True
    alice.email = "alice@example.com"
    alice.save()
    domain = ensure_demo_domain(slug="clinique", name="Clinique du test", time_zone="Asia/Kolkata", members=[alice])
    definition = ExportDefinition.objects.get(domain=domain, name="All form submissions")
    definition.is_daily_saved = True
    definition.name = "Toutes les visites"  # data in French: the check looks for English words
    saved_exports.save_definition(definition)
    FormSubmission.objects.create(domain=domain, received_on=timezone.now(), submitted_by="amina",
                                  form_name="Vaccination", patient_name="Zoë")
    now = timezone.now()

    def run(status, **fields):
        return ExportRun.objects.create(
            owner=alice, domain=domain, definition=definition, parameters_key=uuid.uuid4().hex,
            task_id=str(uuid.uuid4()), download_id=uuid.uuid4().hex, status=status, queued_at=now, language="fr",
            **{"parameters": {"format": "zip", "date_from": "2026-01-01", "date_to": "2026-03-31",
                              "columns": ["received_on", "form_name"],
                              "filters": {"form_name": "Vaccination", "submitted_by": "amina"}}, **fields})

    Status = ExportRun.Status
    translation.activate("fr")  # the runs' stored words are in the language they were asked in
    runs = {
        "queued": run(Status.QUEUED),
        "succeeded": run(Status.SUCCEEDED, rows=305_000, bytes=2048, file_key="exports/none.zip",
                         filename="none.zip", duration=datetime.timedelta(seconds=75), finished_at=now,
                         expires_at=now + datetime.timedelta(hours=2)),
        "failed": run(Status.FAILED, error=str(words.failure_words(RuntimeError())), finished_at=now,
                      last_progress={"current": 12, "total": 40, "percent": 30}),
        "cancelled": run(Status.CANCELLED, error=str(words.CANCELLED_WORDS), finished_at=now),
        "expired": run(Status.EXPIRED, rows=3, bytes=10, finished_at=now, expires_at=now),
    }
    translation.activate("en")
    path = tmp_path / "rapport.csv"
    path.write_bytes(b"a,b\n")
    download = expose_file_download(str(path), 60, owner_ids=[alice.pk])
    client.force_login(alice)
    client.defaults["HTTP_ACCEPT_LANGUAGE"] = "fr"
    return {"domain": domain, "definition": definition, "runs": runs, "download": download, "client": client}


def french_pages(site):
    """(name, response) of every page a person reaches, in French."""
    client, domain, definition, runs = site["client"], site["domain"], site["definition"], site["runs"]
    slug, pk = domain.slug, definition.pk
    anonymous = type(client)(HTTP_ACCEPT_LANGUAGE="fr")
    pages = [
        ("login", anonymous.get(reverse("login"))),
        ("password reset", anonymous.get(reverse("password_reset"))),
        ("password reset sent", anonymous.get(reverse("password_reset_done"))),
        ("password reset, a bad link", anonymous.get(reverse("password_reset_confirm", args=["x", "y"]))),
        ("password reset complete", anonymous.get(reverse("password_reset_complete"))),
        ("home", client.get("/")),
        ("exports home", client.get(reverse("exports:home"), follow=True)),
        ("domain", client.get(reverse("exports:domain", args=[slug]))),
        ("start refused", client.post(reverse("exports:start", args=[slug, pk]), {"format": "csv",
                                                                                 "date_from": "2026-02-01",
                                                                                 "date_to": "2026-01-01"})),
        ("new definition", client.get(reverse("exports:definition_new", args=[slug]))),
        ("definition refused", client.post(reverse("exports:definition_new", args=[slug]), {"name": ""})),
        ("edit definition", client.get(reverse("exports:definition_edit", args=[slug, pk]))),
        ("export dialog", client.get(reverse("exports:export_dialog", args=[slug, pk]))),
        ("export dialog refused", client.post(reverse("exports:export_dialog", args=[slug, pk]),
                                              {"format": "csv", "include_village": "on", "position_village": "x"})),
        ("my exports", client.get(reverse("exports:mine"))),
        ("my exports, none match", client.get(reverse("exports:mine") + "?status=running")),
        ("my exports, a bad filter", client.get(reverse("exports:mine") + "?status=nonsense")),
        ("saved export not built", client.get(reverse("exports:saved_download", args=[slug, pk]))),
        ("api tokens", client.get(reverse("api_tokens"))),
        ("demo task", client.get(reverse("demo"))),
        ("soil progress page", client.get(reverse("retrieve_download", args=[site["download"].download_id]))),
        ("soil missing download", client.get(reverse("retrieve_download", args=["0" * 32]))),
        ("page not found", client.get("/no/such/page/")),
        ("admin index", client.get("/admin/")),
        *[(f"admin {model}", client.get(reverse(f"admin:exports_{model}_changelist")))
          for model in ("domain", "exportdefinition", "exportrun", "formsubmission", "savedexport")],
        ("admin run", client.get(reverse("admin:exports_exportrun_change", args=[runs["failed"].pk]))),
        ("admin definition", client.get(reverse("admin:exports_exportdefinition_change", args=[pk]))),
        ("admin export confirmation", client.post(reverse("admin:exports_formsubmission_changelist"), {
            "action": "export_changelist", "select_across": "1", "index": "0",
            "_selected_action": [str(FormSubmission.objects.first().pk)]})),
    ]
    for state, run in runs.items():
        pages.append((f"run page, {state}", client.get(reverse("exports:run", args=[run.pk]))))
    pages.append(("download, not ready", client.get(reverse("exports:download", args=[runs["queued"].pk]))))
    pages.append(("download, expired", client.get(reverse("exports:download", args=[runs["expired"].pk]))))
    return pages


def french_json(site):
    """(name, JSON text) of the JSON answers a page or a script reads, in French."""
    client, runs = site["client"], site["runs"]
    script = type(client)(HTTP_ACCEPT_LANGUAGE="fr")
    answers = [
        ("run status, failed", client.get(reverse("exports:run_status", args=[runs["failed"].pk]))),
        ("run status, cancelled", client.get(reverse("exports:run_status", args=[runs["cancelled"].pk]))),
        ("soil status, missing", client.get(reverse("download_status", args=["0" * 32]))),
        ("api, no token", script.get(reverse("exports:api_run", args=[runs["failed"].pk]))),
        ("api, a bad token", script.get(reverse("exports:api_run", args=[runs["failed"].pk]),
                                        HTTP_AUTHORIZATION="Bearer nope")),
        ("api, no such path", script.get("/exports/api/nothing/")),
    ]
    return [(name, json.dumps(response.json(), ensure_ascii=False)) for name, response in answers]


@pytest.mark.django_db
def test_every_page_email_and_json_message_in_french_has_no_english_left(french_site):
    fragments = english_fragments() - {"English"}  # the language selector names each language in its own words
    assert {"Received on", "Zipped CSV", "My exports", "Download"} <= fragments  # the check is not empty
    found = []
    for name, response in french_pages(french_site):
        assert response.status_code < 500, name
        html = response.content.decode()
        assert '<html lang="fr"' in html, name
        text = visible_text(html)
        if name == "admin run":
            text = re.sub(r"\{.*?\}", "", text)  # its parameters, shown as stored: JSON keys are data
        found += [f"{name}: {fragment}" for fragment in english_in(text, fragments)]
    for name, text in french_json(french_site):
        found += [f"{name}: {fragment}" for fragment in english_in(text, fragments)]
    mail.outbox.clear()
    with translation.override("fr"):
        ExportRun.objects.filter(pk=french_site["runs"]["succeeded"].pk).update(notify_by_email=True)
        services.send_ready_email(french_site["runs"]["succeeded"].pk)
    type(french_site["client"])(HTTP_ACCEPT_LANGUAGE="fr").post(reverse("password_reset"),
                                                                 {"email": "alice@example.com"})
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        found += [f"email {message.subject!r}: {fragment}"
                  for fragment in english_in(f"{message.subject}\n{message.body}", fragments)]
    assert found == []


@pytest.mark.django_db
def test_french_pages_write_dates_and_names_before_values_the_french_way(french_site):
    client, domain = french_site["client"], french_site["domain"]
    mine = visible_text(client.get(reverse("exports:mine")).content.decode())
    assert "Format\u202f: CSV compressé (zip)" in mine
    assert "Dates\u202f: 01/01/2026 – 31/03/2026" in mine
    assert "Nom du formulaire\u202f: Vaccination" in mine and "Colonnes\u202f: Reçu le, Nom du formulaire" in mine
    page = visible_text(client.get(reverse("exports:domain", args=[domain.slug])).content.decode())
    assert "Exports de Clinique du test · heures du fuseau Asia/Kolkata" in page


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda path: path.relative_to(ROOT).parts[0])
def test_french_puts_a_narrow_no_break_space_before_two_part_punctuation(po):
    """« État : » with U+202F, never a plain space or none, before : ; ? ! (code such as
    "Authorization: Bearer", an HTML entity or a time is not prose)."""
    wrong = []
    for entry in read_po(po):
        for text in entry.msgstr.values() if entry.msgid else ():
            prose = re.sub(r"<code>.*?</code>|Authorization: Bearer|Content-Type: \S+|&#?\w+;|\{clé: valeur\}|"
                           r"\d:\d|https?:", "", text)
            if re.search(r"(^|[^\u202f])[:;?!](\s|$)", prose):
                wrong.append(text)
    assert wrong == []


@pytest.mark.browser
def test_a_french_reader_sees_my_exports_and_the_domain_page_in_french(chromium, live_server, alice, transactional_db):
    domain = ensure_demo_domain(slug="fr-pages", name="Clinique", members=[alice])
    definition = ExportDefinition.objects.get(domain=domain, name="All form submissions")
    ExportRun.objects.create(
        owner=alice, domain=domain, definition=definition, parameters_key=uuid.uuid4().hex,
        task_id=str(uuid.uuid4()), download_id=uuid.uuid4().hex, status=ExportRun.Status.FAILED,
        parameters={"format": "zip", "date_from": "2026-01-01", "date_to": "2026-03-31", "columns": ["received_on"],
                    "filters": {"form_name": "Vaccination"}})
    context = chromium.new_context(locale="fr-FR")
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("input[name=username]", alice.username)
        page.fill("input[name=password]", alice.raw_password)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{live_server.url}/")
        page.goto(f"{live_server.url}/exports/mine/")
        asked = page.locator("#my-runs .run-parameters").first.inner_text().splitlines()
        assert asked == ["Format\u202f: CSV compressé (zip)", "Dates\u202f: 01/01/2026 – 31/03/2026",
                         "Colonnes\u202f: Reçu le", "Nom du formulaire\u202f: Vaccination"]
        page.goto(f"{live_server.url}/exports/fr-pages/")
        assert page.locator("h1").inner_text() == "Exports de Clinique · heures du fuseau Asia/Kolkata"
    finally:
        context.close()


@pytest.mark.django_db
def test_the_words_soil_keeps_for_a_run_are_in_the_runs_language(alice, definition):
    from exports.runs.queueing import run_message

    run = ExportRun(owner=alice, domain=definition.domain, definition=definition, language="fr")
    assert run_message(run) == "Export de All form submissions"
    run.language = "en"
    assert run_message(run) == "Export of All form submissions"
