"""The export dialog: columns, order and filters chosen at export time, in the services, the form, the
page, the API and a real build through the worker."""
import csv
import datetime
import io

import pytest
from django.urls import reverse

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.files import partitions
from exports.files.export_file import planned_rows, write_export
from exports.models import ExportDefinition, ExportRun, FormSubmission
from exports.runs import services
from exports.runs.limits import check_rows
from exports.runs.services import query_parameters
from exports.sources import SourceError, get_source
from exports.web.forms import ExportDialogForm
from project.accounts.tokens import create_token
from tests.conftest import wait_for

Status = ExportRun.Status
SHORT = ["received_on", "submitted_by", "patient_name", "visit_date", "is_follow_up"]  # "Visits (short)"


@pytest.fixture
def domain(alice):
    domain = ensure_demo_domain(slug="dialog", name="Dialog clinic", time_zone="Asia/Kolkata", members=[alice])
    add_demo_rows(domain, 120)
    return domain


@pytest.fixture
def everything(domain):
    return ExportDefinition.objects.get(domain=domain, name="All form submissions")


@pytest.fixture
def short(domain):
    return ExportDefinition.objects.get(domain=domain, name="Visits (short)")


def vaccinations(domain):
    return FormSubmission.objects.filter(domain=domain, form_name="Vaccination")


def dialog_url(definition):
    return reverse("exports:export_dialog", args=[definition.domain.slug, definition.pk])


def dialog_data(definition, columns=None, **fields):
    """The dialog's POST data: `columns` ticked in that order (the definition's by default)."""
    source = get_source(definition.source)
    columns = columns if columns is not None else [c.key for c in source.columns_for(definition.columns)]
    data = {"format": "csv", "action": "export", **fields}
    for position, key in enumerate(columns, start=1):
        data[f"include_{key}"] = "on"
        data[f"position_{key}"] = str(position * 10)
    for column in source.columns:
        data.setdefault(f"position_{column.key}", "500")
    return data


# --- the services: parameters, columns, filters ---

@pytest.mark.django_db
def test_the_definitions_own_choices_add_no_parameter_keys(short):
    plain = services.export_parameters(short, "csv")
    same = services.export_parameters(short, "csv", columns=SHORT, filters={"form_name": "", "submitted_by": None})
    assert plain == same == {"format": "csv", "date_from": None, "date_to": None}
    assert services.parameters_key(short, plain) == services.parameters_key(short, same)


@pytest.mark.django_db
def test_chosen_columns_and_filters_go_into_the_parameters_in_the_history_shape(short):
    parameters = services.export_parameters(short, "csv", columns=["patient_name", "received_on"],
                                            filters={"form_name": "Vaccination", "submitted_by": " amina "})
    assert parameters == {"format": "csv", "date_from": None, "date_to": None,
                          "columns": ["patient_name", "received_on"],
                          "filters": {"form_name": "Vaccination", "submitted_by": "amina"}}
    assert services.parameters_key(short, parameters) != services.parameters_key(
        short, services.export_parameters(short, "csv"))


@pytest.mark.django_db
@pytest.mark.parametrize("columns,words", [
    (["received_on", "shoe_size"], "Unknown column(s) for Form submissions: shoe_size."),
    (["received_on", "received_on"], "Each column may be chosen once."),
    ("received_on", "Columns are given as a list of column keys."),
    ([1, 2], "Columns are given as a list of column keys."),
])
def test_unknown_or_repeated_columns_are_refused_in_words(short, columns, words):
    with pytest.raises(services.ChoiceRefused) as refused:
        services.export_parameters(short, "csv", columns=columns)
    assert (str(refused.value), refused.value.field) == (words, "columns")


@pytest.mark.django_db
@pytest.mark.parametrize("filters,words", [
    ({"shoe_size": "42"}, "Unknown filter 'shoe_size' for Form submissions; its filters are: form_name, "
                          "submitted_by."),
    ({"form_name": "Astrology"}, "'Astrology' is not one of the choices of the filter Form name."),
    ({"submitted_by": 7}, "The filter Submitted by takes text."),
    ({"submitted_by": "x" * 201}, "The filter Submitted by takes at most 200 characters."),
    (["form_name"], "Filters are given as {key: value}."),
])
def test_unknown_filter_keys_and_values_are_refused_in_words(short, filters, words):
    with pytest.raises(services.ChoiceRefused) as refused:
        services.export_parameters(short, "csv", filters=filters)
    assert (str(refused.value), refused.value.field) == (words, "filters")


@pytest.mark.django_db
def test_form_name_choices_are_the_domains_distinct_values(domain, alice):
    other = ensure_demo_domain(slug="other", name="Other", members=[alice])
    FormSubmission.objects.create(domain=other, form_id="x", received_on=datetime.datetime.now(datetime.UTC),
                                  submitted_by="zed", form_name="Only elsewhere")
    choices = get_source("form_submissions").filter_field("form_name").choices(domain)
    assert len(choices) == len(set(choices))  # in the database's collation order, each once
    assert set(choices) == set(FormSubmission.objects.filter(domain=domain).values_list("form_name", flat=True))
    assert "Only elsewhere" not in choices and "Vaccination" in choices


@pytest.mark.django_db
def test_the_rows_read_are_only_the_filtered_ones_in_the_chosen_column_order(domain, short, tmp_path):
    parameters = query_parameters(services.export_parameters(
        short, "csv", columns=["submitted_by", "form_name"], filters={"form_name": "Vaccination",
                                                                        "submitted_by": "amina"}))
    queryset, columns = planned_rows(short, parameters)
    expected = vaccinations(domain).filter(submitted_by="amina")
    assert [c.key for c in columns] == ["submitted_by", "form_name"]
    assert set(queryset.values_list("pk", flat=True)) == set(expected.values_list("pk", flat=True))
    assert 0 < queryset.count() < 120

    path = tmp_path / "out.csv"
    assert write_export(short, parameters, path) == expected.count()
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
    assert rows[0] == ["Submitted by", "Form name"]
    assert {tuple(row) for row in rows[1:]} == {("amina", "Vaccination")}


@pytest.mark.django_db
def test_an_unknown_filter_key_in_a_runs_parameters_fails_the_build_in_words(short):
    with pytest.raises(SourceError, match="Unknown filter 'shoe_size'"):
        planned_rows(short, query_parameters({"format": "csv", "filters": {"shoe_size": "42"}}))


@pytest.mark.django_db
def test_the_row_limit_counts_the_filtered_rows(settings, domain, everything, alice):
    filtered = vaccinations(domain).count()
    settings.EXPORT_MAX_ROWS = filtered
    with pytest.raises(services.ExportRefused, match="This export has 120 rows"):
        services.start_export(alice, everything, "csv")
    assert check_rows(everything, query_parameters(
        services.export_parameters(everything, "csv", filters={"form_name": "Vaccination"}))) == filtered
    run, created = services.start_export(alice, everything, "csv", filters={"form_name": "Vaccination"})
    assert created and run.parameters["filters"] == {"form_name": "Vaccination"}


@pytest.mark.django_db
def test_partitions_split_the_filtered_rows_only(domain, everything):
    queryset, _ = planned_rows(everything, query_parameters({"format": "csv", "filters": {"form_name": "Vaccination"}}))
    keys = partitions.key_fields(everything.source, queryset)
    ranges = partitions.key_ranges(queryset, keys, queryset.count(), 3)
    parts = [list(queryset.filter(partitions.range_filter(queryset.model, keys, lower, upper))
                  .values_list("pk", flat=True)) for lower, upper in ranges]
    assert [pk for part in parts for pk in part] == list(vaccinations(domain).order_by("received_on", "id")
                                                          .values_list("pk", flat=True))


@pytest.mark.django_db
def test_run_it_again_keeps_the_columns_and_filters(domain, everything, alice):
    run, _ = services.start_export(alice, everything, "csv", columns=["village", "age"],
                                   filters={"submitted_by": "amina"})
    ExportRun.objects.filter(pk=run.pk).update(status=Status.EXPIRED)
    again, created = services.rerun(alice, run)
    assert created and again.parameters == run.parameters


@pytest.mark.django_db
def test_save_as_definition_keeps_columns_dates_and_format_and_refuses_a_taken_name(short, alice, bob):
    saved = services.save_as_definition(alice, short, "  Villages ", format="xlsx", columns=["village", "age"],
                                        date_from=datetime.date(2025, 1, 1))
    assert (saved.name, saved.columns, saved.format, saved.date_from, saved.is_daily_saved) == (
        "Villages", ["village", "age"], "xlsx", datetime.date(2025, 1, 1), False)
    assert saved.domain == short.domain and saved.source == short.source
    with pytest.raises(services.ValidationError) as taken:
        services.save_as_definition(alice, short, "Villages", columns=["age"])
    assert taken.value.message_dict == {"name": [
        'This domain already has an export definition named "Villages"; choose another name.']}
    with pytest.raises(services.ValidationError) as nameless:
        services.save_as_definition(alice, short, "  ")
    assert nameless.value.message_dict == {"name": ["Give the new definition a name."]}
    with pytest.raises(services.PermissionDenied):
        services.save_as_definition(bob, short, "Not a member's")


# --- the form ---

@pytest.mark.django_db
def test_the_dialog_starts_from_the_definitions_choices(short):
    form = ExportDialogForm(definition=short)
    shown = [(column.key, include.value(), position.value()) for column, include, position in form.column_rows()]
    assert shown[:5] == [(key, True, (i + 1) * 10) for i, key in enumerate(SHORT)]
    assert all(not ticked for _, ticked, _ in shown[5:]) and len(shown) == 11
    assert form["format"].value() == "csv"
    assert [field.name for field in form.filter_fields()] == ["filter_form_name", "filter_submitted_by"]


@pytest.mark.django_db
def test_the_dialogs_time_column_names_the_zone_as_the_files_heading_does(short):
    short.domain.time_zone = "Asia/Kolkata"
    form = ExportDialogForm(definition=short)
    assert form["include_received_on"].label == "Received on (IST)"
    assert form["include_village"].label == "Village"


@pytest.mark.django_db
def test_the_dialog_orders_ticked_columns_by_position(short):
    data = dialog_data(short, ["received_on", "submitted_by", "patient_name"], filter_form_name="Vaccination")
    data["position_patient_name"] = "5"
    data["include_village"], data["position_village"] = "on", "15"
    form = ExportDialogForm(data, definition=short)
    assert form.is_valid(), form.errors
    arguments = form.export_arguments()
    assert arguments["columns"] == ["patient_name", "received_on", "village", "submitted_by"]
    assert arguments["filters"] == {"form_name": "Vaccination"}


@pytest.mark.django_db
@pytest.mark.parametrize("change,field,words", [
    ({"position_submitted_by": "10"}, "position_submitted_by",
     "Submitted by has the same position (10) as Received on; give each ticked column its own number."),
    ({"position_submitted_by": ""}, "position_submitted_by", "Give Submitted by a position, or untick it."),
    ({"position_submitted_by": "first"}, "position_submitted_by", "Enter a whole number."),
    ({"date_from": "2025-02-01", "date_to": "2025-01-01"}, "date_to", "The start date is after the end date."),
    ({"filter_form_name": "Astrology"}, "filter_form_name",
     "Select a valid choice. Astrology is not one of the available choices."),
    # Who submitted is picked from a list: a typo is refused in words, not exported as 0 rows.
    ({"filter_submitted_by": "nobody-such"}, "filter_submitted_by",
     "Select a valid choice. nobody-such is not one of the available choices."),
])
def test_dialog_errors_are_next_to_their_field(short, change, field, words):
    form = ExportDialogForm({**dialog_data(short, ["received_on", "submitted_by"]), **change}, definition=short)
    assert not form.is_valid()
    assert form.errors == {field: [words]}


@pytest.mark.django_db
def test_unticking_every_column_is_refused_next_to_the_columns(short):
    form = ExportDialogForm(dialog_data(short, []), definition=short)
    assert not form.is_valid() and form.errors == {"columns": ["Tick at least one column."]}


# --- the page ---

@pytest.mark.django_db
def test_the_domain_page_links_each_definition_to_its_dialog(alice_client, short):
    page = alice_client.get(reverse("exports:domain", args=[short.domain.slug])).content.decode()
    assert f'href="{dialog_url(short)}"' in page and "Choose columns and filters" in page


@pytest.mark.django_db
def test_only_members_open_the_dialog(client, bob, short):
    client.force_login(bob)
    assert client.get(dialog_url(short)).status_code == 404
    assert client.post(dialog_url(short), dialog_data(short)).status_code == 404
    assert not ExportRun.objects.exists()


@pytest.mark.django_db
def test_a_refused_dialog_keeps_the_input_and_shows_words_not_field_names(alice_client, short):
    data = dialog_data(short, ["received_on", "submitted_by"], date_from="2025-02-01", date_to="2025-01-01",
                       filter_submitted_by="amina")
    data["position_submitted_by"] = "10"
    response = alice_client.post(dialog_url(short), data)
    page = response.content.decode()
    assert response.status_code == 400 and not ExportRun.objects.exists()
    assert "__all__" not in page
    assert 'id="id_date_to_error"' in page and "The start date is after the end date." in page
    assert 'id="id_position_submitted_by_error"' in page
    assert 'value="amina"' in page and 'value="2025-02-01"' in page


@pytest.mark.django_db
def test_a_refusal_of_the_service_is_shown_above_the_dialog(settings, alice_client, short):
    settings.EXPORT_MAX_ROWS = 10
    response = alice_client.post(dialog_url(short), dialog_data(short))
    assert response.status_code == 400
    assert "This export has 120 rows, more than the limit of 10 rows." in response.content.decode()


@pytest.mark.django_db
def test_exporting_from_the_dialog_starts_a_run_with_the_choices(alice_client, domain, short):
    data = dialog_data(short, ["village", "received_on"], filter_form_name="Vaccination")
    response = alice_client.post(dialog_url(short), data)
    run = ExportRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("exports:run", args=[run.pk])
    assert run.parameters == {"format": "csv", "date_from": None, "date_to": None,
                              "columns": ["village", "received_on"], "filters": {"form_name": "Vaccination"}}


@pytest.mark.django_db
def test_save_as_definition_from_the_dialog_says_so_and_shows_name_errors_next_to_the_name(alice_client, short):
    data = dialog_data(short, ["village", "age"], action="save", name="Villages", filter_form_name="Vaccination")
    response = alice_client.post(dialog_url(short), data, follow=True)
    saved = ExportDefinition.objects.get(domain=short.domain, name="Villages")
    assert response.redirect_chain == [(dialog_url(saved), 302)] and not ExportRun.objects.exists()
    assert saved.columns == ["village", "age"] and saved.format == "csv"
    assert "Saved the new export definition &#x27;Villages&#x27;. Filters are not saved" in response.content.decode()

    again = alice_client.post(dialog_url(short), {**data, "name": "Villages"})
    page = again.content.decode()
    assert again.status_code == 400 and 'id="id_name_error"' in page
    assert "already has an export definition named &quot;Villages&quot;" in page
    assert ExportDefinition.objects.filter(name="Villages").count() == 1


# --- the API ---

@pytest.mark.django_db
def test_the_api_takes_columns_and_filters_with_the_same_rules(client, alice, short):
    header = {"HTTP_AUTHORIZATION": "Bearer " + create_token(alice, "tests")[1]}
    url = reverse("exports:api_start", args=[short.domain.slug, short.pk])
    refused = client.post(url, {"filters": {"form_name": "Astrology"}}, content_type="application/json", **header)
    assert refused.status_code == 400
    assert refused.json()["fields"] == {"filters": [
        {"message": "'Astrology' is not one of the choices of the filter Form name.", "code": "invalid_choice"}]}
    wrong_type = client.post(url, {"columns": "village"}, content_type="application/json", **header)
    assert wrong_type.status_code == 400 and wrong_type.json()["fields"]["columns"][0]["code"] == "invalid_type"
    started = client.post(url, {"columns": ["village"], "filters": {"submitted_by": "amina"}},
                          content_type="application/json", **header)
    assert started.status_code == 202, started.json()
    assert started.json()["parameters"]["columns"] == ["village"]
    assert started.json()["parameters"]["filters"] == {"submitted_by": "amina"}


# --- through the real worker ---

@pytest.mark.worker
def test_a_dialog_export_through_the_worker_has_the_chosen_columns_and_only_the_filtered_rows(
        worker, alice_client, domain, everything):
    data = dialog_data(everything, ["village", "form_name", "received_on"], filter_form_name="Vaccination",
                       filter_submitted_by="amina")
    response = alice_client.post(dialog_url(everything), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    run_id = response["Location"].rstrip("/").split("/")[-1]
    run = wait_for(lambda: (r := ExportRun.objects.get(pk=run_id)).status not in ExportRun.ACTIVE and r,
                   timeout=60, message="the run to finish")
    assert run.status == Status.SUCCEEDED, run.error
    download = alice_client.get(reverse("exports:download", args=[run.pk]))
    rows = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode("utf-8-sig"))))
    expected = vaccinations(domain).filter(submitted_by="amina")
    assert rows[0] == ["Village", "Form name", "Received on (IST)"]
    assert len(rows) - 1 == run.rows == expected.count() > 0
    assert {row[1] for row in rows[1:]} == {"Vaccination"}
    assert sorted(row[0] for row in rows[1:]) == sorted(expected.values_list("village", flat=True))


@pytest.mark.django_db
def test_saving_checks_the_name_with_the_other_fields(short):
    data = {**dialog_data(short, ["received_on", "submitted_by"], action="save", name=short.name),
            "position_submitted_by": "10"}
    form = ExportDialogForm(data, definition=short, saving=True)
    assert not form.is_valid()
    assert set(form.errors) == {"name", "position_submitted_by"}
    assert form.errors["name"] == ['This domain already has an export definition named "Visits (short)"; '
                                   'choose another name.']
    assert ExportDialogForm({**data, "position_submitted_by": "20"}, definition=short).is_valid()  # exporting


@pytest.mark.django_db
def test_a_definition_whose_columns_are_gone_sends_the_person_back_with_words(alice_client, short):
    ExportDefinition.objects.filter(pk=short.pk).update(columns=["received_on", "shoe_size"])
    response = alice_client.get(dialog_url(short), follow=True)
    assert response.redirect_chain == [(reverse("exports:domain", args=[short.domain.slug]), 302)]
    assert "Unknown column(s) for Form submissions: shoe_size." in response.content.decode()
