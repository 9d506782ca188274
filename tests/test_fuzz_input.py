"""Fuzzed input to the API and the forms: never a 500, never a run left queued or running.

Production settings (DEBUG is false under ./test.sh), Django's test client with
raise_request_exception=False so an unexpected error is a 500 status, and tasks run eagerly on commit,
so a run that was created either finished or was refused. Text is drawn with lone surrogates, control
and bidirectional characters, full-width and Arabic-Indic digits, formula starts, and JSON of any shape.
Each test is bounded by its number of examples (the whole file takes some seconds).
"""
import json

import pytest
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition, ExportRun
from tests.test_exports import bearer

FUZZ = settings(max_examples=120, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

TRICKY = ["\ud800", "a\udfff", "\udbff\udc00", "\x00", "\x01", "\x1b[31m", "\r\n", "\u2028", "\u202e", "\u2066",
          "\u200f", "\u061c", "\ufeff", "٢٠٢٥-01-01", "２０２５-01-01", "2025-13-45", "0001-01-01", "9999-12-31",
          "=1+1", " =1+1", "＝1+1", "@SUM(A1)", "All form submissions", "Visits (short)", "Visits\x01(short)",
          "form_submissions", "csv", "xlsx", "zip", "x" * 300, ""]
any_text = st.one_of(st.sampled_from(TRICKY), st.text(st.characters(exclude_categories=()), max_size=30),
                     st.lists(st.sampled_from(TRICKY), max_size=4).map("".join))
characters = st.one_of(st.sampled_from([t for t in TRICKY if not any("\ud800" <= c <= "\udfff" for c in t)]),
                       st.text(st.characters(exclude_categories=("Cs",)), max_size=30))  # what a browser can send
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | any_text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4),
    max_leaves=12)
COLUMN_KEYS = ["form_id", "received_on", "submitted_by", "form_name", "age", "notes"]
payloads = st.fixed_dictionaries({}, optional={
    "format": st.sampled_from(["csv", "xlsx", "zip"]) | json_values,
    "date_from": any_text | json_values,
    "date_to": any_text | json_values,
    "notify_by_email": st.booleans() | json_values,
    "columns": st.lists(st.sampled_from(COLUMN_KEYS) | any_text, max_size=5) | json_values,
    "filters": st.dictionaries(st.sampled_from(["submitted_by", "form_name"]) | any_text, any_text | json_values,
                               max_size=3) | json_values,
    "extra": json_values,
})
deeply_nested = st.integers(min_value=1, max_value=200_000).map(lambda depth: b"[" * depth + b"]" * depth)
bodies = st.one_of(payloads.map(lambda p: json.dumps(p).encode()), deeply_nested, st.binary(max_size=60),
                   json_values.map(lambda v: json.dumps(v).encode()))


@pytest.fixture
def fuzz_domain(transactional_db, eager, make_user, settings):
    settings.API_RATE_PER_USER = "100000/m"
    alice = make_user("alice")
    domain = ensure_demo_domain(slug="fuzz", name="Fuzz", members=[alice])
    add_demo_rows(domain, 3)
    return alice, domain, ExportDefinition.objects.get(domain=domain, name="All form submissions")


def assert_no_run_left_active():
    assert list(ExportRun.objects.filter(status__in=ExportRun.ACTIVE).values_list("status", "error")) == []


def test_the_api_answers_fuzzed_bodies_without_a_500(client, fuzz_domain):
    alice, domain, definition = fuzz_domain
    client.raise_request_exception = False
    url = reverse("exports:api_start", args=[domain.slug, definition.pk])
    header = bearer(alice)

    @FUZZ
    @given(body=bodies)
    def post(body):
        response = client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=header)
        assert response.status_code < 500, (body[:200], response.content[:300])
        assert_no_run_left_active()

    post()


def test_the_forms_answer_fuzzed_fields_without_a_500(alice_client_for_fuzz, fuzz_domain):
    client = alice_client_for_fuzz
    _alice, domain, definition = fuzz_domain
    new_definition = reverse("exports:definition_new", args=[domain.slug])
    edit_definition = reverse("exports:definition_edit", args=[domain.slug, definition.pk])
    start = reverse("exports:start", args=[domain.slug, definition.pk])
    dialog = reverse("exports:export_dialog", args=[domain.slug, definition.pk])
    mine = reverse("exports:mine")
    fields = st.dictionaries(st.sampled_from(["name", "source", "format", "date_from", "date_to", "columns",
                                              "is_daily_saved", "filter_submitted_by", "filter_form_name",
                                              "include_age", "position_age", "status", "domain"]) | characters,
                             characters, max_size=6)

    @FUZZ
    @given(where=st.sampled_from(["new", "edit", "start", "dialog", "mine"]), data=fields)
    def submit(where, data):
        if where == "start":
            response = client.post(start, {f"d{definition.pk}-{key}": value for key, value in data.items()})
        elif where == "mine":
            response = client.get(mine, data)
        else:
            url = {"new": new_definition, "edit": edit_definition, "dialog": dialog}[where]
            response = client.post(url, data)
        assert response.status_code < 500, (where, data, response.content[:300])
        assert_no_run_left_active()

    submit()


@pytest.fixture
def alice_client_for_fuzz(client, fuzz_domain):
    client.force_login(fuzz_domain[0])
    client.raise_request_exception = False
    return client
