"""Bad input gets a 4xx and a message in words, never a 500, and no export run is created."""
import csv
import datetime
import io
import json
from importlib import import_module
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.files.export_file import export_filename
from exports.formatting import one_line
from exports.models import Domain, ExportDefinition, ExportRun, SavedExport
from exports.runs import services
from exports.saved import services as saved_exports
from exports.saved.services import save_definition
from exports.sources import get_source
from tests.test_exports import bearer, start

OUT_OF_RANGE = "must be between 1 January 1900 and 31 December 2100"


@pytest.fixture
def domain(alice):
    # Asia/Kolkata is UTC+5:30: the start of 0001-01-01 there is before the first instant Python can hold.
    domain = ensure_demo_domain(slug="clinic", name="Clinic", time_zone="Asia/Kolkata", members=[alice])
    add_demo_rows(domain, 5)
    return domain


@pytest.fixture
def definition(domain):
    return ExportDefinition.objects.get(domain=domain, name="All form submissions")


def api_start(client, user, definition, body):
    """POST `body` (bytes, or an object sent as JSON) to the API that starts an export."""
    url = reverse("exports:api_start", args=[definition.domain.slug, definition.pk])
    return client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=bearer(user))


def field_messages(response, field):
    return [error["message"] for error in response.json()["fields"][field]]


# --- dates ---

@pytest.mark.django_db
def test_an_end_date_in_the_year_9999_is_refused_with_a_message(alice_client, definition):
    response = start(alice_client, definition, date_to="9999-12-31")
    assert response.status_code == 400
    assert f"The end date {OUT_OF_RANGE}.".encode() in response.content
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
def test_a_start_date_in_the_year_1_is_refused_on_a_domain_ahead_of_utc(alice_client, definition):
    response = start(alice_client, definition, date_from="0001-01-01")
    assert response.status_code == 400
    assert f"The start date {OUT_OF_RANGE}.".encode() in response.content
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
def test_a_definition_with_a_date_out_of_range_is_refused_with_a_message(alice_client, domain):
    url = reverse("exports:definition_new", args=[domain.slug])
    response = alice_client.post(url, {"name": "Far future", "source": "form_submissions", "format": "csv",
                                       "date_to": "9999-12-31"})
    assert response.status_code == 400
    assert f"The end date {OUT_OF_RANGE}.".encode() in response.content
    assert not ExportDefinition.objects.filter(name="Far future").exists()


@pytest.mark.django_db
def test_extreme_dates_already_stored_on_a_definition_export_every_row(alice_client, definition):
    # Saved before dates were bounded: the queryset must not overflow building local midnights.
    ExportDefinition.objects.filter(pk=definition.pk).update(
        date_from=datetime.date(1, 1, 1), date_to=datetime.date(9999, 12, 31))
    definition.refresh_from_db()
    queryset = get_source(definition.source).rows_queryset(definition.domain, definition.date_from,
                                                           definition.date_to)
    assert queryset.count() == 5
    response = start(alice_client, definition)
    assert response.status_code == 302
    assert ExportRun.objects.get().parameters["date_to"] == "9999-12-31"


# --- the JSON API ---

@pytest.mark.django_db
def test_api_refuses_a_number_for_a_date_naming_the_field(client, alice, definition):
    response = api_start(client, alice, definition, {"date_from": 12345})
    assert response.status_code == 400
    assert field_messages(response, "date_from") == ["date_from must be a date written YYYY-MM-DD, or null."]
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(("payload", "field", "message"), [
    ({"format": ["csv"]}, "format", 'format must be one of "csv", "xlsx", "zip".'),
    ({"format": 5}, "format", 'format must be one of "csv", "xlsx", "zip".'),
    ({"date_to": True}, "date_to", "date_to must be a date written YYYY-MM-DD, or null."),
    ({"notify_by_email": "no"}, "notify_by_email", "notify_by_email must be true or false."),
    ({"notify_by_email": 1}, "notify_by_email", "notify_by_email must be true or false."),
])
def test_api_refuses_a_value_of_the_wrong_type_naming_the_field(client, alice, definition, payload, field, message):
    response = api_start(client, alice, definition, payload)
    assert response.status_code == 400
    assert response.json()["error"] == "Invalid parameters."
    assert field_messages(response, field) == [message]
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
def test_api_refuses_a_body_that_is_not_utf8(client, alice, definition):
    response = api_start(client, alice, definition, b'{"format": "csv\xff"}')
    assert response.status_code == 400
    assert response.json() == {"error": "The body must be JSON encoded in UTF-8."}
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
def test_api_refuses_json_nested_100k_deep(client, alice, definition):
    response = api_start(client, alice, definition, b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400
    assert response.json() == {"error": "The JSON is nested too deeply."}
    response = api_start(client, alice, definition, b'{"a":' * 100_000 + b"1" + b"}" * 100_000)
    assert response.status_code == 400
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
def test_api_refuses_a_body_too_large_to_read_in_json(client, alice, definition, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api_start(client, alice, definition, {"format": "csv", "padding": "x" * 2000})
    assert response.status_code == 413
    assert response.json() == {"error": "The body is too large."}
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
def test_api_shows_words_not_exception_text_when_something_unexpected_fails(client, alice, definition,
                                                                             monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to 10.0.0.7:6379. /srv/app/.venv/lib/redis/connection.py")

    monkeypatch.setattr(services, "start_export", broken)
    response = api_start(client, alice, definition, {"format": "csv"})
    assert response.status_code == 500
    assert response.json() == {"error": "Something went wrong on our side; it has been logged. Try again later."}
    assert "10.0.0.7" not in response.content.decode()
    assert "10.0.0.7:6379" in caplog.text  # the details go to the log
    assert not ExportRun.objects.exists()


# --- time zones ---

@pytest.mark.django_db
def test_a_time_zone_typed_in_another_case_is_saved_canonically_and_exports(client, make_user, alice):
    admin = make_user("admin", is_staff=True, is_superuser=True)
    client.force_login(admin)
    add_url = reverse("admin:exports_domain_add")
    response = client.post(add_url, {"slug": "nepal", "name": "Nepal", "time_zone": "asia/kathmandu"})
    assert response.status_code == 302, response.content[:2000]
    domain = Domain.objects.get(slug="nepal")
    assert domain.time_zone == "Asia/Kathmandu"

    response = client.post(add_url, {"slug": "mars", "name": "Mars", "time_zone": "Mars/Olympus"})
    assert response.status_code == 200  # the admin shows its form again, with the message
    assert b"Unknown time zone &#x27;Mars/Olympus&#x27;" in response.content
    assert not Domain.objects.filter(slug="mars").exists()

    ensure_demo_domain(slug="nepal", members=[alice])
    definition = domain.definitions.get(name="All form submissions")
    client.force_login(alice)
    response = start(client, definition)
    assert response.status_code == 302
    assert ExportRun.objects.filter(definition=definition).exists()


@pytest.mark.django_db
def test_a_wrong_case_time_zone_on_an_existing_row_is_mended_by_migration_and_exports(
        eager, django_capture_on_commit_callbacks, alice_client, domain, definition):
    from django.apps import apps

    Domain.objects.filter(pk=domain.pk).update(time_zone="asia/kolkata")  # as saved before zones were checked
    import_module("exports.migrations.0009_canonical_time_zones").canonical_time_zones(apps, None)
    assert Domain.objects.get(pk=domain.pk).time_zone == "Asia/Kolkata"
    with django_capture_on_commit_callbacks(execute=True):
        response = start(alice_client, definition, date_from="2000-01-01", date_to="2100-12-31")
    assert response.status_code == 302
    run = ExportRun.objects.get()
    assert run.status == ExportRun.Status.SUCCEEDED, run.error
    assert run.rows == 5
    response = alice_client.get(reverse("exports:download", args=[run.pk]))
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert len(rows) == 6


@pytest.mark.django_db
def test_a_saved_export_of_a_domain_with_a_wrong_case_time_zone_is_still_dispatched(
        django_capture_on_commit_callbacks, domain, definition):
    definition.is_daily_saved = True
    save_definition(definition)
    now = timezone.now()
    SavedExport.objects.update(next_build_at=now - datetime.timedelta(minutes=1))
    Domain.objects.filter(pk=domain.pk).update(time_zone="asia/kolkata")
    queued = []
    with django_capture_on_commit_callbacks(execute=True):
        assert saved_exports.dispatch_due(now, queued.append) == [definition.saved.pk]
    assert queued == [definition.saved.pk]
    next_build = SavedExport.objects.get().next_build_at - saved_exports.night_offset(definition.pk)
    assert next_build.astimezone(ZoneInfo("Asia/Kolkata")).time() == datetime.time(0)


# --- control characters in names ---

# No NUL: PostgreSQL refuses it in any text column, so no stored name can hold one.
BREAKING_NAME = "Weekly\r\nBcc: eve@example.com\x1b[31m\x85\u2028\u2029\x7f report"


@pytest.mark.django_db
def test_control_characters_are_removed_from_a_definition_name_saved_in_the_ui(alice_client, domain):
    url = reverse("exports:definition_new", args=[domain.slug])
    response = alice_client.post(url, {"name": "Weekly\r\nBcc: eve@example.com\u2028\x85 report",
                                       "source": "form_submissions", "format": "csv"})
    assert response.status_code == 302
    assert ExportDefinition.objects.filter(domain=domain, name="Weekly Bcc: eve@example.com report").exists()


@pytest.mark.django_db
def test_a_name_of_only_control_characters_is_refused_with_a_message(alice_client, domain):
    url = reverse("exports:definition_new", args=[domain.slug])
    response = alice_client.post(url, {"name": "\x1b\x07\x7f", "source": "form_submissions", "format": "csv"})
    assert response.status_code == 400
    assert b"Give the export a name." in response.content
    assert not ExportDefinition.objects.exclude(name__in=["All form submissions", "Visits (short)"]).exists()



def ready_email_subject(owner, definition):
    """The subject of the "export ready" email of a (finished) run of `definition` by `owner`."""
    owner.email = "alice@example.com"
    owner.save()
    run, _ = services.start_export(owner, definition, format="csv", notify_by_email=True)
    ExportRun.objects.filter(pk=run.pk).update(status=ExportRun.Status.SUCCEEDED, rows=5,
                                               expires_at=datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC))
    assert services.send_ready_email(run.pk) is True
    (message,) = mail.outbox
    return message.subject

@pytest.mark.django_db
def test_control_characters_in_an_existing_name_stay_out_of_mail_subjects_and_file_names(alice, definition):
    ExportDefinition.objects.filter(pk=definition.pk).update(name=BREAKING_NAME)
    definition.refresh_from_db()
    filename = export_filename(definition, ".csv", datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
    assert filename == "Weekly Bcc eveexample.com 31m report 2025-01-01 0530.csv"

    assert ready_email_subject(alice, definition) == "Your export 'Weekly Bcc: eve@example.com [31m report' is ready"


# --- lone surrogates (not characters: no database or encoder can store them) ---

SURROGATE_WORDS = "lone surrogate"


@pytest.mark.django_db
@pytest.mark.parametrize("payload", [
    {"filters": {"submitted_by": "\ud800"}},
    {"filters": {"form_name": "\ud800"}},
    {"filters": {"submitted_by": "a\udfff"}},
    {"columns": ["\udbff"]},
    {"\ud800": 1},
], ids=["submitted_by", "form_name", "after_a_letter", "column", "key"])
def test_api_refuses_a_lone_surrogate_in_words(client, alice, definition, payload):
    client.raise_request_exception = False
    response = api_start(client, alice, definition, json.dumps(payload).encode())  # "\ud800" escapes
    assert response.status_code == 400
    assert SURROGATE_WORDS in response.json()["error"]
    assert not ExportRun.objects.exists()


def multipart_body(encoding, boundary, **fields):
    """A form body in a charset that can carry a lone surrogate (Django decodes a multipart form in the
    charset it declares; an urlencoded one must be UTF-8)."""
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'.encode() + value.encode(encoding)
             + b"\r\n" for key, value in fields.items()]
    return b"".join(parts) + f"--{boundary}--\r\n".encode()


@pytest.mark.django_db
@pytest.mark.parametrize("encoding", ["unicode_escape", "utf-7"])
def test_a_form_refuses_a_lone_surrogate_in_words(alice_client, domain, encoding):
    alice_client.raise_request_exception = False
    url = reverse("exports:definition_new", args=[domain.slug])
    body = multipart_body(encoding, "fence", name="Weekly \ud800", source="form_submissions", format="csv")
    response = alice_client.generic("POST", url, body,
                                    content_type=f"multipart/form-data; boundary=fence; charset={encoding}")
    assert response.status_code == 400
    assert SURROGATE_WORDS.encode() in response.content
    assert not ExportDefinition.objects.filter(name__startswith="Weekly").exists()


@pytest.mark.django_db
def test_a_query_string_with_a_lone_surrogate_is_refused_in_words(alice_client, domain):
    response = alice_client.get(reverse("exports:mine"), QUERY_STRING="status=%5Cud800",
                                CONTENT_TYPE="text/plain; charset=unicode_escape")
    assert response.status_code == 400
    assert SURROGATE_WORDS.encode() in response.content


# --- a definition named like another of its domain ---

TAKEN = "This domain already has an export definition named"


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["All form submissions", "Visits\x01(short)", "  Visits (short) "])
def test_a_new_definition_named_like_an_existing_one_is_refused_next_to_the_name(alice_client, domain, name):
    alice_client.raise_request_exception = False
    url = reverse("exports:definition_new", args=[domain.slug])
    response = alice_client.post(url, {"name": name, "source": "form_submissions", "format": "csv"})
    assert response.status_code == 400
    assert TAKEN in response.context["form"].errors["name"][0]
    assert ExportDefinition.objects.filter(domain=domain).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["Visits (short)", "Visits\x01(short)"])
def test_renaming_a_definition_to_a_taken_name_is_refused_next_to_the_name(alice_client, definition, name):
    alice_client.raise_request_exception = False
    url = reverse("exports:definition_edit", args=[definition.domain.slug, definition.pk])
    response = alice_client.post(url, {"name": name, "source": "form_submissions", "format": "csv"})
    assert response.status_code == 400
    assert TAKEN in response.context["form"].errors["name"][0]
    definition.refresh_from_db()
    assert definition.name == "All form submissions"


@pytest.mark.django_db
def test_a_definition_saved_under_its_own_name_or_another_domains_name_is_saved(alice_client, alice, definition):
    other = ensure_demo_domain(slug="other", name="Other", members=[alice])
    url = reverse("exports:definition_edit", args=[definition.domain.slug, definition.pk])
    response = alice_client.post(url, {"name": "All form submissions\x01", "source": "form_submissions",
                                       "format": "xlsx"})
    assert response.status_code == 302
    url = reverse("exports:definition_new", args=[other.slug])
    response = alice_client.post(url, {"name": "Weekly", "source": "form_submissions", "format": "csv"})
    assert response.status_code == 302
    response = alice_client.post(reverse("exports:definition_new", args=[definition.domain.slug]),
                                 {"name": "Weekly", "source": "form_submissions", "format": "csv"})
    assert response.status_code == 302
    assert ExportDefinition.objects.filter(name="Weekly").count() == 2


# --- dates are written in ASCII digits ---

NON_ASCII_DATES = ["٢٠٢٥-01-01", "2025-٠١-01", "２０２５-01-01", "2025-01-0\u0661"]


@pytest.mark.django_db
@pytest.mark.parametrize("value", NON_ASCII_DATES)
def test_api_refuses_a_date_in_digits_other_than_ascii(client, alice, definition, value):
    response = api_start(client, alice, definition, {"date_from": value})
    assert response.status_code == 400
    assert field_messages(response, "date_from") == ["date_from must be a date written YYYY-MM-DD, or null."]
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("value", NON_ASCII_DATES)
def test_forms_refuse_a_date_in_digits_other_than_ascii(alice_client, definition, value):
    response = start(alice_client, definition, date_to=value)
    assert response.status_code == 400
    assert not ExportRun.objects.exists()
    url = reverse("exports:definition_new", args=[definition.domain.slug])
    response = alice_client.post(url, {"name": "Digits", "source": "form_submissions", "format": "csv",
                                       "date_from": value})
    assert response.status_code == 400
    assert not ExportDefinition.objects.filter(name="Digits").exists()


# --- bidi controls ---

BIDI_NAME = "Invoices \u202eslx.exe\u202c \u2066a\u2069\u200e\u200f\u061c\u202a\u202b\u202d\u2067\u2068 report"


def test_one_line_strips_every_bidi_control():
    assert one_line(BIDI_NAME) == "Invoices slx.exe a report"


@pytest.mark.django_db
def test_bidi_controls_stay_out_of_saved_names_mail_subjects_and_file_names(alice, alice_client, domain, definition):
    url = reverse("exports:definition_new", args=[domain.slug])
    response = alice_client.post(url, {"name": "Weekly \u202ecod.exe", "source": "form_submissions", "format": "csv"})
    assert response.status_code == 302
    assert ExportDefinition.objects.filter(domain=domain, name="Weekly cod.exe").exists()

    ExportDefinition.objects.filter(pk=definition.pk).update(name=BIDI_NAME)  # stored before the rule
    definition.refresh_from_db()
    filename = export_filename(definition, ".csv", datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC))
    assert filename == "Invoices slx.exe a report 2025-01-01 0530.csv"
    assert ready_email_subject(alice, definition) == "Your export 'Invoices slx.exe a report' is ready"
