"""The admin's async export action: the changelist's own rows, rebuilt in the task, exported in the
background, refused in words over the limit or without permission, downloadable by its owner only."""
import csv
import datetime
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.cache import caches
from django.http import HttpRequest, QueryDict
from django.urls import reverse
from django.utils import timezone

from exports.admin import changelist_export
from exports.admin.actions import ACTION_NAME, CONFIRMED
from exports.files.storage import export_storage
from exports.models import ExportRun, FormSubmission
from soil.conf import soil_conf
from soil.downloads import DOWNLOAD_KEY
from soil.util import start_download
from tests.conftest import wait_for

CHANGELIST = "admin:exports_formsubmission_changelist"
START = datetime.datetime(2026, 3, 1, 9, 30, tzinfo=datetime.timezone.utc)


def submissions(domain, form_name, villages, start=0):
    return FormSubmission.objects.bulk_create([
        FormSubmission(domain=domain, received_on=START + datetime.timedelta(minutes=start + i), form_name=form_name,
                       submitted_by="amina", patient_name=f"Patient {start + i}", village=village, age=30 + i,
                       weight_kg=Decimal("61.50"), is_follow_up=i % 2 == 0)
        for i, village in enumerate(villages)
    ])


@pytest.fixture
def rows(mine, theirs):
    """Mine: 3 Registrations in Kibera, 2 in Łódź, 2 Vaccinations in Kibera. Theirs: 2 Registrations in Kibera."""
    return {
        "kibera": submissions(mine, "Registration", ["Kibera"] * 3),
        "lodz": submissions(mine, "Registration", ["Łódź"] * 2, start=10),
        "vaccinations": submissions(mine, "Vaccination", ["Kibera"] * 2, start=20),
        "theirs": submissions(theirs, "Registration", ["Kibera"] * 2, start=30),
    }


@pytest.fixture
def sam_client(client, sam):
    client.force_login(sam)
    return client


def pks(objects):
    return sorted(obj.pk for obj in objects)


def model_admin():
    return admin.site.get_model_admin(FormSubmission)


def download_records(redis_client):
    """How many soil download records the cache holds: start_download saves one before it queues."""
    prefix = caches[soil_conf.CACHE].make_key(DOWNLOAD_KEY.format("*"))
    return len(list(redis_client.scan_iter(match=prefix, count=1000)))


def action_post(rows_ticked, select_across=False, confirmed=False, file_format="csv"):
    data = {"action": ACTION_NAME, "select_across": "1" if select_across else "0",
            ACTION_CHECKBOX_NAME: [str(row.pk) for row in rows_ticked]}
    if confirmed:
        data.update({CONFIRMED: "yes", "format": file_format})
    else:
        data["index"] = "0"  # the changelist's "Go" button
    return data


# --- the queryset rebuild: plain functions, no HTTP, no Celery


@pytest.mark.django_db
def test_the_rebuilt_queryset_is_the_changelists_filtered_searched_and_scoped_rows(rows, sam, sam_client):
    query = "form_name=Registration&q=Kibera"
    rebuilt = changelist_export.changelist_queryset(model_admin(), sam, query)
    assert pks(rebuilt) == pks(rows["kibera"])  # not Łódź (search), not Vaccination (filter), not theirs (domain)
    # The same rows the changelist page lists for the same query.
    page = sam_client.get(reverse(CHANGELIST) + "?" + query)
    assert pks(page.context["cl"].result_list) == pks(rebuilt)


@pytest.mark.django_db
def test_the_rebuilt_queryset_keeps_only_the_selected_rows_that_the_changelist_shows(rows, sam):
    selected = [rows["kibera"][0], rows["lodz"][1], rows["theirs"][0]]
    rebuilt = changelist_export.changelist_queryset(model_admin(), sam, "form_name=Registration",
                                                    pks=[str(row.pk) for row in selected])
    assert pks(rebuilt) == pks(selected[:2])  # another domain's pk is not exported, whatever was sent


@pytest.mark.django_db
def test_the_rebuilt_queryset_ignores_the_page_number_and_keeps_the_lists_order(rows, sam, admin_user):
    query = changelist_export.changelist_query(QueryDict("p=7&e=1&o=-5&form_name=Registration"))  # -5: patient
    assert query == "o=-5&form_name=Registration"
    rebuilt = changelist_export.changelist_queryset(model_admin(), sam, query)
    assert [row.pk for row in rebuilt] == [row.pk for row in sorted(rows["kibera"] + rows["lodz"],
                                                                     key=lambda r: (r.patient_name, r.pk),
                                                                     reverse=True)]
    # A superuser's changelist is every domain's.
    everything = changelist_export.changelist_queryset(model_admin(), admin_user, "form_name=Registration")
    assert pks(everything) == pks(rows["kibera"] + rows["lodz"] + rows["theirs"])


@pytest.mark.django_db
def test_a_user_without_view_permission_or_with_stale_filters_is_refused_in_words(rows, sam, bob):
    bob.is_staff = True
    bob.save()
    with pytest.raises(changelist_export.ChangelistExportError, match="no longer view form submissions"):
        changelist_export.changelist_queryset(model_admin(), bob, "")
    with pytest.raises(changelist_export.ChangelistExportError, match="filters no longer apply"):
        changelist_export.changelist_queryset(model_admin(), sam, "no_such_field=1")


@pytest.mark.django_db
def test_a_search_the_changelist_refuses_is_refused_in_words_not_with_an_error(rows, sam):
    # Django's changelist tells the user of an invalid search through the messages framework; the
    # task's request keeps no messages, so the export ends in words instead.
    with pytest.raises(changelist_export.ChangelistExportError, match="filters no longer apply"):
        changelist_export.changelist_queryset(model_admin(), sam, "q=Kibera%00")


def test_the_task_rebuilds_the_changelist_with_a_plain_request_of_the_user_and_query(sam):
    request = changelist_export.changelist_request(model_admin(), sam, "form_name=Registration&q=Kibera")
    assert type(request) is HttpRequest  # no test client's request, no middleware's attributes
    assert (request.method, request.path, request.user) == ("GET", reverse(CHANGELIST), sam)
    assert request.GET.dict() == {"form_name": "Registration", "q": "Kibera"}


@pytest.mark.django_db
def test_default_export_fields_are_the_list_display_model_fields():
    from exports.models import ExportRun

    run_admin = admin.site.get_model_admin(ExportRun)
    assert changelist_export.default_export_fields(run_admin) == list(run_admin.list_display)
    columns = changelist_export.export_columns(run_admin, ["status", "rows", "created_at", "owner", "owner__username"])
    assert [(c.label, c.type) for c in columns] == [
        ("Status", "text"), ("Rows", "integer"), ("Created at (UTC)", "datetime"), ("Owner", "text"),
        ("Owner username", "text")]
    with pytest.raises(changelist_export.ChangelistExportError, match="“domain__members” is not a field"):
        changelist_export.export_columns(run_admin, ["domain__members"])  # many-valued: refused


# --- the action: confirmation, refusals


@pytest.mark.django_db
def test_the_action_asks_for_a_format_and_shows_the_row_count_before_queueing(rows, sam_client, redis_client):
    before = download_records(redis_client)
    response = sam_client.post(reverse(CHANGELIST) + "?form_name=Registration",
                               action_post(rows["kibera"][:1], select_across=True))
    assert response.status_code == 200
    page = response.content.decode()
    assert "You are exporting 5 rows of form submissions" in page
    assert 'value="xlsx"' in page and 'value="csv"' in page and 'value="zip"' in page
    assert download_records(redis_client) == before


@pytest.mark.django_db
def test_over_the_row_limit_the_action_is_refused_in_words_and_nothing_is_queued(rows, sam_client, redis_client,
                                                                                 settings):
    settings.EXPORT_MAX_ROWS = 4
    before = download_records(redis_client)
    for confirmed in (False, True):
        response = sam_client.post(reverse(CHANGELIST) + "?form_name=Registration",
                                   action_post(rows["kibera"][:1], select_across=True, confirmed=confirmed),
                                   follow=True)
        assert response.redirect_chain[-1][0].endswith("?form_name=Registration")
        assert "This list has 5 rows, more than the limit of 4 for one export" in response.content.decode()
    assert download_records(redis_client) == before


@pytest.mark.django_db
def test_without_view_permission_the_action_is_refused_and_nothing_is_queued(rows, client, make_user, mine,
                                                                             redis_client):
    nobody = make_user("nobody", is_staff=True)
    mine.members.add(nobody)
    client.force_login(nobody)
    before = download_records(redis_client)
    response = client.post(reverse(CHANGELIST), action_post(rows["kibera"], confirmed=True))
    assert response.status_code == 403
    assert download_records(redis_client) == before


# --- through the real worker


def status(client, download_id):
    return client.get(reverse("download_status", args=[download_id])).json()


def wait_until_finished(client, download_id):
    return wait_for(lambda: (s := status(client, download_id))["state"] in ("success", "failed") and s,
                    timeout=60, message="the export to finish")


def fetch(client, download_id):
    response = client.get(reverse("retrieve_download", args=[download_id]) + "?get_file")
    return response, b"".join(response.streaming_content) if response.streaming else response.content


def started_run(response):
    """The export run an admin export started, from the action's redirect to the run's page."""
    assert response.status_code == 302, response.content.decode()[:500]
    run = ExportRun.objects.latest("created_at")
    assert response.url == reverse("exports:run", args=[run.pk])
    return run


def finished(run):
    """The run once its build ended (the real worker builds it)."""
    return wait_for(lambda: (fresh := ExportRun.objects.get(pk=run.pk)).status in ("succeeded", "failed") and fresh,
                    timeout=60, message="the export to finish")


def download_run(client, run):
    response = client.get(reverse("exports:download", args=[run.pk]))
    return response, b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.worker
def test_a_filtered_select_all_export_is_a_run_with_the_sources_labels_and_local_times(
        worker, rows, sam, sam_client, client, bob):
    response = sam_client.post(reverse(CHANGELIST) + "?form_name=Registration&q=Kibera&p=1",
                               action_post(rows["kibera"][:1], select_across=True, confirmed=True))
    run = started_run(response)
    assert (run.owner, run.domain.slug, run.definition, run.parameters) == (sam, "mine", None, {"format": "csv"})
    page = sam_client.get(response.url).content.decode()
    assert "Form submissions, from the admin" in page and 'class="soil-progress' in page

    run = finished(run)
    assert run.status == "succeeded", run.error
    answer, content = download_run(sam_client, run)
    assert answer.status_code == 200
    today = timezone.localdate(timezone.now(), ZoneInfo(run.domain.time_zone)).isoformat()
    assert answer["Content-Disposition"] == f'attachment; filename="form-submissions-mine-{today}.csv"'
    table = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
    # The labels of an export of the same rows from the domain's page, times in the domain's zone.
    assert table[0] == ["Received on (IST)", "Domain", "Form name", "Submitted by", "Patient name", "Village",
                        "Age", "Weight (kg)", "Visit date", "Follow-up visit", "Form id", "Notes"]
    assert len(table) == 1 + 3
    assert {tuple(row[1:3]) + (row[5],) for row in table[1:]} == {("Mine", "Registration", "Kibera")}
    assert sorted(row[4] for row in table[1:]) == sorted(row.patient_name for row in rows["kibera"])
    assert table[1][0] == "2026-03-01 15:02:00"  # 09:32 UTC in Kolkata; newest first, as the list orders them

    # It is listed in My exports, with what it holds and its actions.
    mine_page = sam_client.get(reverse("exports:mine")).content.decode()
    assert "Form submissions, from the admin" in mine_page
    assert "the admin&#x27;s list, filtered: form_name=Registration&amp;q=Kibera" in mine_page
    for action in ("exports:download", "exports:rerun", "exports:delete"):
        assert reverse(action, args=[run.pk]) in mine_page

    # Somebody else, even another staff user, gets neither the page nor the file.
    client.force_login(bob)
    assert client.get(reverse("exports:run", args=[run.pk])).status_code == 404
    assert download_run(client, run)[0].status_code == 404
    assert fetch(client, run.download_id)[0].status_code == 403


@pytest.mark.worker
def test_a_selection_exports_only_the_ticked_rows_to_xlsx(worker, rows, sam_client):
    ticked = [rows["kibera"][1], rows["vaccinations"][0]]
    run = finished(started_run(sam_client.post(reverse(CHANGELIST),
                                               action_post(ticked, confirmed=True, file_format="xlsx"))))
    assert run.status == "succeeded", run.error
    _, content = download_run(sam_client, run)
    sheet = openpyxl.load_workbook(io.BytesIO(content), read_only=True).worksheets[0]
    table = list(sheet.iter_rows(values_only=True))
    assert len(table) == 1 + 2
    assert sorted(row[4] for row in table[1:]) == sorted(row.patient_name for row in ticked)
    assert {row[7] for row in table[1:]} == {61.5}  # a number, not text
    assert all(isinstance(row[0], datetime.datetime) for row in table[1:])


@pytest.mark.worker
def test_rerun_and_delete_of_an_admin_export_work_as_for_any_run(worker, rows, sam_client):
    run = finished(started_run(sam_client.post(reverse(CHANGELIST), action_post(rows["lodz"], confirmed=True))))
    again = sam_client.post(reverse("exports:rerun", args=[run.pk]))
    rerun = ExportRun.objects.exclude(pk=run.pk).get()
    assert again.url == reverse("exports:run", args=[rerun.pk])
    assert rerun.admin_export == run.admin_export and rerun.parameters == run.parameters
    rerun = finished(rerun)
    assert rerun.status == "succeeded" and rerun.rows == 2, rerun.error
    sam_client.post(reverse("exports:delete", args=[run.pk]), {"confirm": "yes"})
    assert not ExportRun.objects.filter(pk=run.pk).exists()
    assert not export_storage().exists(run.file_key)


@pytest.mark.worker
def test_a_superusers_export_across_domains_is_one_run_per_domain_in_its_zone(worker, rows, sam, sam_client, theirs):
    sam.is_superuser = True
    sam.save(update_fields=["is_superuser"])
    theirs.time_zone = "Europe/Paris"
    theirs.save()
    response = sam_client.post(reverse(CHANGELIST) + "?form_name=Registration",
                               action_post(rows["kibera"][:1], select_across=True, confirmed=True), follow=True)
    assert response.redirect_chain[-1][0] == reverse("exports:mine")
    assert "Started 2 exports, one per domain of the rows" in response.content.decode()
    runs = {run.domain.slug: finished(run) for run in ExportRun.objects.all()}
    assert set(runs) == {"mine", "theirs"} and {run.rows for run in runs.values()} == {5, 2}
    table = list(csv.reader(io.StringIO(download_run(sam_client, runs["theirs"])[1].decode("utf-8-sig"))))
    assert table[0][0] == "Received on (Europe/Paris)" and table[1][0] == "2026-03-01 11:01:00"  # 10:01 UTC
    # My exports' Domain filter offers both, though sam is no member of theirs.
    page = sam_client.get(reverse("exports:mine") + "?domain=theirs").content.decode()
    assert '<option value="theirs" selected>Theirs</option>' in page and '<option value="mine">Mine</option>' in page
    assert reverse("exports:run", args=[runs["theirs"].pk]) in page
    assert reverse("exports:run", args=[runs["mine"].pk]) not in page
    # The domain is named, not linked: its page is for members (a 404 for sam).
    assert sam_client.get(reverse("exports:domain", args=["theirs"])).status_code == 404
    assert reverse("exports:domain", args=["theirs"]) not in page and ">Theirs</td>" in page
    assert reverse("exports:domain", args=["mine"]) in sam_client.get(reverse("exports:mine")).content.decode()


@pytest.mark.worker
def test_an_admin_export_run_that_cannot_be_built_fails_in_words(worker, rows, sam, mine):
    from exports.runs import services

    run, _ = services.start_admin_export(sam, mine, {
        "site": "admin", "model": "exports.formsubmission", "query": "", "pks": None, "title": "Form submissions",
        "fields": ["form_name", "no_such_field"], "name": "broken"}, "csv")
    run = finished(run)
    assert run.status == "failed"
    assert run.error == "“no_such_field” is not a field of form submission that can be exported."


@pytest.mark.worker
def test_a_failing_export_shows_words_on_the_progress_page(worker, rows, sam, sam_client):
    from exports.tasks import export_admin_changelist

    download = start_download(export_admin_changelist, owner_ids=[sam.pk], kwargs={
        "site_name": "admin", "model_label": "exports.formsubmission", "query": "", "pks": None,
        "user_id": sam.pk, "format_name": "csv", "fields": ["form_name", "no_such_field"], "name": "broken"})
    done = wait_until_finished(sam_client, download.download_id)
    assert done["state"] == "failed"
    assert done["errors"] == ["“no_such_field” is not a field of form submission that can be exported."]
    page = sam_client.get(reverse("retrieve_download", args=[download.download_id])).content.decode()
    assert "is not a field of form submission" in page


@pytest.mark.django_db
def test_expired_changelist_exports_are_swept_and_fresh_ones_kept():
    storage = export_storage()
    key = storage.save(f"{changelist_export.EXPORT_FOLDER}/old.csv", io.BytesIO(b"a,b\n"))
    try:
        now = storage.get_modified_time(key)
        changelist_export.sweep_expired(now=now, expiry=60)  # older files of other tests may go; not this one
        assert storage.exists(key)
        assert changelist_export.sweep_expired(now=now + datetime.timedelta(seconds=61), expiry=60) >= 1
        assert not storage.exists(key)
    finally:
        storage.delete(key)
