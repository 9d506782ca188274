"""The API at /api/v1/: every action of the pages, with their rules and words, each answer checked
against the API's OpenAPI schema (tests.api_schema)."""
import csv
import datetime
import io
import json

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition, ExportRun, SavedExport
from exports.runs import services, words
from exports.runs.status import run_status
from exports.saved import services as saved_exports
from exports.web.streams import status_event
from project.accounts.models import ApiToken
from project.accounts.tokens import create_token
from tests.api_schema import SchemaCheckedClient

pytestmark = pytest.mark.django_db

# The one status shape of a run: its page polls it, its event stream sends it, the API answers it.
# Scripts rely on it: a change here is a change of the public contract.
STATUS_KEYS = {"download_id", "state", "percent", "current", "total", "message", "eta_seconds", "errors", "is_ready",
               "has_file", "download_url", "is_alive", "run_status", "run_status_display", "cancel_requested"}


@pytest.fixture
def domain(alice):
    domain = ensure_demo_domain(slug="api-v1", name="API clinic", members=[alice])
    add_demo_rows(domain, 6)
    return domain


@pytest.fixture
def definition(domain):
    return ExportDefinition.objects.get(domain=domain, name="All form submissions")


def token_client(user, scope=ApiToken.Scope.WRITE):
    return SchemaCheckedClient(HTTP_AUTHORIZATION="Bearer " + create_token(user, f"tests {scope}", scope)[1])


@pytest.fixture
def api(alice):
    return token_client(alice)


@pytest.fixture
def reader(alice):
    return token_client(alice, ApiToken.Scope.READ)


def start_url(definition):
    return reverse("api_v1:start", args=[definition.domain.slug, definition.pk])


def test_the_schema_is_served_to_any_client_and_its_page_to_logged_in_users_only(client, alice):
    schema = client.get("/api/v1/openapi.json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")
    assert "/api/v1/runs" in schema.json()["paths"]
    page = client.get("/api/v1/docs")
    assert page.status_code == 302 and reverse("login") in page["Location"]
    client.force_login(alice)
    page = client.get("/api/v1/docs")
    assert page.status_code == 200 and b"swagger" in page.content.lower()


def test_domains_and_definitions_are_those_of_a_member_with_columns_and_filter_fields(api, domain, definition, bob):
    ensure_demo_domain(slug="elsewhere", name="Elsewhere", members=[bob])
    listed = api.get("/api/v1/domains").json()
    assert [d["slug"] for d in listed] == ["api-v1"]
    definitions = api.get(listed[0]["definitions_url"]).json()
    exported = next(d for d in definitions if d["id"] == definition.pk)
    assert exported["columns"] == exported["available_columns"] and {"key", "label", "type"} <= exported["columns"][0].keys()
    assert exported["filter_fields"][0] == {"key": "form_name", "label": "Form name", "kind": "choice",
                                           "choices": exported["filter_fields"][0]["choices"]}
    assert exported["start_url"] == start_url(definition)
    response = api.get(reverse("api_v1:definitions", args=["elsewhere"]))
    assert response.status_code == 404 and response.json() == {"error": "Not found."}


def test_a_run_is_started_read_cancelled_rerun_and_deleted_with_the_pages_rules(api, alice, definition):
    response = api.post(start_url(definition), {"format": "csv", "columns": ["form_name"]},
                        content_type="application/json")
    assert response.status_code == 202, response.content
    run = response.json()
    assert run["status"] == "queued" and run["parameters"]["columns"] == ["form_name"]
    assert set(run["progress"]) == STATUS_KEYS
    again = api.post(start_url(definition), {"format": "csv", "columns": ["form_name"]}, content_type="application/json")
    assert again.status_code == 200 and again.json()["id"] == run["id"]  # the same export under way
    assert api.get(reverse("api_v1:run", args=[run["id"]])).json()["id"] == run["id"]
    not_ready = api.get(run["file_url"])
    assert not_ready.status_code == 409 and not_ready.json() == {"error": "The export is queued, not ready.",
                                                                 "status": "queued"}
    refused = api.delete(reverse("api_v1:run_delete", args=[run["id"]]))
    assert refused.status_code == 409 and refused.json()["error"] == str(words.ACTIVE_DELETE_WORDS)
    cancelled = api.post(reverse("api_v1:run_cancel", args=[run["id"]]), content_type="application/json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == ExportRun.objects.get(pk=run["id"]).status
    rerun = api.post(reverse("api_v1:run_rerun", args=[run["id"]]), content_type="application/json")
    assert rerun.status_code == 202 and rerun.json()["id"] != run["id"]
    assert rerun.json()["parameters"] == run["parameters"]
    assert api.delete(reverse("api_v1:run_delete", args=[run["id"]])).status_code == 204
    assert not ExportRun.objects.filter(pk=run["id"]).exists()
    assert api.get(reverse("api_v1:run", args=[run["id"]])).status_code == 404


def test_email_me_is_asked_for_a_run_or_refused_in_words_without_an_address(api, alice, definition):
    run, _ = services.start_export(alice, definition, format="csv")
    url = reverse("api_v1:run_notify", args=[run.pk])
    refused = api.post(url, content_type="application/json")
    assert refused.status_code == 400 and refused.json()["error"] == str(words.NO_EMAIL_WORDS)
    type(alice).objects.filter(pk=alice.pk).update(email="alice@example.org")
    assert api.post(url, content_type="application/json").status_code == 200
    run.refresh_from_db()
    assert run.notify_by_email


def test_refusals_are_in_the_words_of_the_pages(api, definition, settings):
    wrong = api.post(start_url(definition), {"format": "pdf", "date_from": "2025-1-2", "colour": "red"},
                     content_type="application/json")
    assert wrong.status_code == 400 and wrong.json()["error"] == "Invalid parameters."
    fields = wrong.json()["fields"]
    assert fields["format"][0]["message"] == 'format must be one of "csv", "xlsx", "zip".'
    assert fields["date_from"][0]["message"] == "date_from must be a date written YYYY-MM-DD, or null."
    assert fields["colour"][0]["code"] == "unknown_parameter"
    order = api.post(start_url(definition), {"date_from": "2025-02-01", "date_to": "2025-01-01"},
                     content_type="application/json")
    assert order.status_code == 400 and "date" in json.dumps(order.json()["fields"])
    column = api.post(start_url(definition), {"columns": ["nope"]}, content_type="application/json")
    assert column.status_code == 400 and "nope" in column.json()["fields"]["columns"][0]["message"]
    settings.EXPORT_MAX_ACTIVE_RUNS_PER_USER = 0
    limited = api.post(start_url(definition), {}, content_type="application/json")
    assert limited.status_code == 400 and "queued or running" in limited.json()["error"] and not ExportRun.objects.exists()


def test_runs_are_listed_newest_first_filtered_and_paginated(api, alice, domain, definition, bob):
    first, _ = services.start_export(alice, definition, format="csv")
    second, _ = services.start_export(alice, definition, format="xlsx")
    third, _ = services.start_export(alice, definition, format="zip")
    ExportRun.objects.filter(pk=first.pk).update(status=ExportRun.Status.FAILED, error="Broken.",
                                                 created_at=timezone.now() - datetime.timedelta(days=3))
    other = ensure_demo_domain(slug="bobs", name="Bob's", members=[bob])
    services.start_export(bob, other.definitions.first(), format="csv")
    page = api.get("/api/v1/runs?page_size=2").json()
    assert page["count"] == 3 and [r["id"] for r in page["items"]] == [str(third.pk), str(second.pk)]
    assert [r["id"] for r in api.get("/api/v1/runs?page_size=2&page=2").json()["items"]] == [str(first.pk)]
    assert [r["id"] for r in api.get("/api/v1/runs?status=failed").json()["items"]] == [str(first.pk)]
    assert api.get(f"/api/v1/runs?domain={domain.slug}").json()["count"] == 3
    today = timezone.now().date()
    assert api.get(f"/api/v1/runs?created_from={today}").json()["count"] == 2
    assert api.get(f"/api/v1/runs?created_to={today - datetime.timedelta(days=1)}").json()["count"] == 1
    refused = api.get("/api/v1/runs?domain=bobs")  # not one of alice's: the words of "My exports"
    assert refused.status_code == 400 and "bobs" in refused.json()["fields"]["domain"][0]["message"]
    assert api.get("/api/v1/runs?status=lost").status_code == 400


def test_a_read_only_token_reads_but_cannot_change_anything(reader, alice, definition):
    run, _ = services.start_export(alice, definition, format="csv")
    assert reader.get(reverse("api_v1:run", args=[run.pk])).status_code == 200
    assert reader.get("/api/v1/runs").status_code == 200
    for response in (reader.post(start_url(definition), {}, content_type="application/json"),
                     reader.post(reverse("api_v1:run_cancel", args=[run.pk]), content_type="application/json"),
                     reader.post(reverse("api_v1:run_rerun", args=[run.pk]), content_type="application/json"),
                     reader.post(reverse("api_v1:run_notify", args=[run.pk]), content_type="application/json"),
                     reader.delete(reverse("api_v1:run_delete", args=[run.pk]))):
        assert response.status_code == 403 and "read-only" in response.json()["error"]
    run.refresh_from_db()
    assert run.is_active and ExportRun.objects.count() == 1


def test_the_tokens_page_lets_a_user_choose_a_read_only_token(client, alice):
    client.force_login(alice)
    page = client.get(reverse("api_tokens")).content.decode()
    assert 'value="read"' in page and 'value="write"' in page
    response = client.post(reverse("api_tokens"), {"name": "dashboard", "scope": "read"})
    assert response.status_code == 200
    assert ApiToken.objects.get(name="dashboard").scope == ApiToken.Scope.READ
    assert "Read only" in client.get(reverse("api_tokens")).content.decode()


def test_the_browser_session_works_with_csrf_for_changes(alice, definition):
    browser = SchemaCheckedClient(enforce_csrf_checks=True)
    browser.force_login(alice)
    assert browser.get("/api/v1/runs").status_code == 200
    refused = browser.post(start_url(definition), {}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["error"]
    browser.get(reverse("api_tokens"))  # a page sets the CSRF cookie, as in a browser
    token = browser.cookies["csrftoken"].value
    started = browser.post(start_url(definition), {}, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert started.status_code == 202


def test_no_credentials_or_a_wrong_token_get_401_in_words(definition):
    anonymous = SchemaCheckedClient()
    response = anonymous.get("/api/v1/runs")
    assert response.status_code == 401 and "token" in response.json()["error"]
    assert response["WWW-Authenticate"].startswith("Bearer")
    wrong = SchemaCheckedClient(HTTP_AUTHORIZATION="Bearer exp_not-a-token")
    assert "not valid" in wrong.get("/api/v1/domains").json()["error"]


def test_a_runs_status_has_one_shape_on_its_page_its_stream_and_the_api(api, alice, alice_client, definition):
    run, _ = services.start_export(alice, definition, format="csv")
    page = alice_client.get(reverse("exports:run_status", args=[run.pk])).json()
    from_api = api.get(reverse("api_v1:run_status", args=[run.pk])).json()
    streamed = status_event(run_status(run)).decode()
    sent = json.loads(streamed.split("data: ", 1)[1])
    assert set(page) == set(from_api) == set(sent) == STATUS_KEYS
    assert from_api == {**page, "eta_seconds": from_api["eta_seconds"], "is_alive": from_api["is_alive"]}


@pytest.fixture
def saved(domain):
    definition = ExportDefinition(domain=domain, name="Nightly", source="form_submissions", format="csv",
                                  is_daily_saved=True)
    saved_exports.save_definition(definition)
    return SavedExport.objects.get(definition=definition)


def test_a_saved_exports_latest_file_is_fetched_with_a_token_and_rebuilt_on_demand(api, reader, saved):
    slug, definition_id = saved.definition.domain.slug, saved.definition_id
    listed = reader.get(reverse("api_v1:saved_exports", args=[slug])).json()
    assert [s["name"] for s in listed] == ["Nightly"] and not listed[0]["has_file"]
    not_built = reader.get(listed[0]["file_url"])
    assert not_built.status_code == 404 and not_built.json()["error"] == "Nightly has not been built yet"
    saved_exports.rebuild(saved.pk)
    response = reader.get(listed[0]["file_url"])
    assert response.status_code == 200
    saved.refresh_from_db()
    assert len(list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))) == 7
    assert saved.last_downloaded_at is not None  # a download keeps the nightly builds going
    assert reader.post(listed[0]["rebuild_url"], content_type="application/json").status_code == 403
    rebuilt = api.post(listed[0]["rebuild_url"], content_type="application/json")
    assert rebuilt.status_code == 202 and rebuilt.json()["created"]
    again = api.post(listed[0]["rebuild_url"], content_type="application/json")
    assert again.status_code == 200 and again.json()["download_id"] == rebuilt.json()["download_id"]
    assert api.get(reverse("api_v1:saved_file", args=[slug, definition_id + 1000])).status_code == 404


def test_the_first_apis_addresses_still_answer_and_are_marked_deprecated(api, definition):
    response = api.post(reverse("exports:api_start", args=[definition.domain.slug, definition.pk]),
                        {"format": "csv"}, content_type="application/json")
    assert response.status_code == 202
    assert api.get(reverse("exports:api_run", args=[response.json()["id"]])).json()["status"] == "queued"
    from exports.web.api import legacy_api

    operations = [op for path in legacy_api.get_openapi_schema(path_prefix="/exports/api/")["paths"].values() for op in path.values()]
    assert operations and all(op.get("deprecated") for op in operations)


def test_answers_are_checked_against_the_schema_and_other_addresses_are_json_404s(api):
    assert api.get("/api/v1/domains").checked_against_schema
    for path in ("/api/v1/", "/api/v1/nowhere", "/api/v1/runs/not-a-uuid"):
        response = Client().get(path)
        assert response.status_code == 404 and response.json() == {"error": "Not found."}
