"""Downloads check current domain membership: a member removed from a domain loses their links at once."""
import pytest
from django.urls import reverse

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition, SavedExport
from exports.runs import access, services
from exports.saved import services as saved_exports
from soil import DownloadBase

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinic(alice):
    domain = ensure_demo_domain(slug="access", name="Access", members=[alice])
    add_demo_rows(domain, 12)
    return domain


@pytest.fixture
def built_run(alice, clinic):
    """A run built in this process, as the worker builds it."""
    definition = ExportDefinition.objects.get(domain=clinic, name="All form submissions")
    run, _ = services.start_export(alice, definition, format="csv")
    return services.execute_run(run.pk, run.task_id)


def test_the_soil_record_of_a_run_names_its_domain(built_run, clinic):
    download = DownloadBase.get(built_run.download_id)
    assert download.extras == {"domain": clinic.slug}
    assert download.owner_ids == [str(built_run.owner_id)]


def test_can_download_follows_membership(built_run, clinic, alice, bob, make_user):
    download = DownloadBase.get(built_run.download_id)
    assert access.can_download(alice, download)
    assert not access.can_download(bob, download)
    clinic.members.remove(alice)
    assert not access.can_download(alice, download)
    assert access.can_download(make_user("root", is_superuser=True), download)


def test_a_download_that_is_not_an_exports_one_is_left_to_soil(alice):
    assert access.can_download(alice, DownloadBase(owner_ids=[alice.pk]))


def test_a_removed_member_loses_the_run_download_and_page(client, built_run, clinic, alice):
    client.force_login(alice)
    url = reverse("exports:download", args=[built_run.pk])
    assert client.get(url).status_code == 200
    clinic.members.remove(alice)
    assert client.get(url).status_code == 404
    assert client.get(reverse("exports:run", args=[built_run.pk])).status_code == 404
    assert client.get(reverse("exports:api_file", args=[built_run.pk])).status_code == 404


def test_a_removed_member_loses_the_saved_export_link(client, clinic, alice):
    nightly = saved_exports.save_definition(ExportDefinition(
        domain=clinic, name="Nightly", source="form_submissions", format="csv", is_daily_saved=True))
    saved_exports.rebuild(nightly.saved.pk)
    url = reverse("exports:saved_download", args=[clinic.slug, nightly.pk])
    client.force_login(alice)
    assert client.get(url).status_code == 200
    clinic.members.remove(alice)
    assert client.get(url).status_code == 404


def test_rebuild_now_records_the_domain_on_its_download(client, clinic, alice):
    nightly = saved_exports.save_definition(ExportDefinition(
        domain=clinic, name="Nightly", source="form_submissions", format="csv", is_daily_saved=True))
    client.force_login(alice)
    client.post(reverse("exports:saved_rebuild", args=[clinic.slug, nightly.pk]))
    download = DownloadBase.get(SavedExport.objects.get(definition=nightly).rebuild_download_id)
    assert download.extras == {"domain": clinic.slug}


def test_a_removed_member_loses_soils_page_and_file_of_a_run(client, built_run, clinic, alice):
    client.force_login(alice)
    page = reverse("retrieve_download", args=[built_run.download_id])
    assert client.get(page, {"get_file": ""}).status_code == 200
    clinic.members.remove(alice)
    assert client.get(page).status_code == 403
    assert client.get(page, {"get_file": ""}).status_code == 403
    assert client.get(reverse("download_status", args=[built_run.download_id])).status_code == 403
