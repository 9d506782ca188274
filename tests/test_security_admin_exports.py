"""An admin export's run, its page and its file are checked against its owner's rights at each request,
not only when it was made: staff status, the view permission on the exported model, and membership of
the domain whose rows it holds. And the admin's actions refuse a selected id that is not an id, in a message."""
import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from exports.models import ExportRun
from exports.runs.access import admin_export_extras, can_download
from soil import DownloadBase
from tests.test_admin_export import CHANGELIST, action_post, download_run, fetch, finished, rows  # noqa: F401

FORBIDDEN_WORDS = "This download belongs to someone else"


def export_as(client, user, ticked, select_across=True):
    """`user` exports the form submissions changelist (all of it, or only the `ticked` rows) on the worker;
    returns its runs (one per domain of the rows) once their files are ready."""
    client.force_login(user)
    before = set(ExportRun.objects.values_list("pk", flat=True))
    response = client.post(reverse(CHANGELIST), action_post(ticked, select_across=select_across, confirmed=True))
    assert response.status_code == 302, response.content.decode()[:500]
    runs = [finished(run) for run in ExportRun.objects.exclude(pk__in=before).order_by("domain__slug")]
    for run in runs:
        assert run.status == "succeeded", run.error
        assert allowed(client, run)
    return runs


def allowed(client, run):
    """The run's page, its file and soil's link to the file all answer."""
    return (client.get(reverse("exports:run", args=[run.pk])).status_code == 200
            and download_run(client, run)[0].status_code == 200
            and fetch(client, run.download_id)[0].status_code == 200)


def refused(client, run):
    """The run's page and file are not found; soil's link to the file and its page answer 403, in words."""
    answer, content = fetch(client, run.download_id)
    page = client.get(reverse("retrieve_download", args=[run.download_id]))
    return (client.get(reverse("exports:run", args=[run.pk])).status_code == 404
            and download_run(client, run)[0].status_code == 404
            and reverse("exports:run", args=[run.pk]) not in client.get(reverse("exports:mine")).content.decode()
            and answer.status_code == 403 and FORBIDDEN_WORDS in content.decode()
            and page.status_code == 403 and FORBIDDEN_WORDS in page.content.decode())


def fresh(user):
    """The user as the next request loads it (permissions are cached on the instance)."""
    return type(user).objects.get(pk=user.pk)


@pytest.mark.worker
def test_an_admin_export_is_refused_once_its_owner_leaves_the_domain(worker, rows, sam, mine, client):
    (run,) = export_as(client, sam, rows["kibera"][:1])
    mine.members.remove(sam)
    assert refused(client, run)
    mine.members.add(sam)
    assert allowed(client, run)  # the rule is read at each request


@pytest.mark.worker
def test_an_admin_export_is_refused_once_its_owner_is_no_longer_staff(worker, rows, sam, client):
    (run,) = export_as(client, sam, rows["kibera"][:1])
    sam.is_staff = False
    sam.save(update_fields=["is_staff"])
    assert refused(client, run)


@pytest.mark.worker
def test_an_admin_export_is_refused_once_its_owner_may_no_longer_view_the_model(worker, rows, sam, client):
    (run,) = export_as(client, sam, rows["kibera"][:1])
    sam.user_permissions.clear()
    assert refused(client, run)


@pytest.mark.worker
def test_a_superusers_export_across_domains_needs_each_domain_once_demoted(worker, rows, sam, mine, client):
    """A superuser exports rows of `mine` and `theirs`: one run per domain. Demoted to a staff member of
    `mine` alone, the run of `theirs` is refused; the run of `mine` is still theirs to fetch."""
    sam.is_superuser = True
    sam.save(update_fields=["is_superuser"])
    of_mine, of_theirs = export_as(client, sam, rows["kibera"][:1])
    assert (of_mine.domain.slug, of_theirs.domain.slug) == ("mine", "theirs")
    sam.is_superuser = False
    sam.save(update_fields=["is_superuser"])
    client.force_login(sam)
    assert refused(client, of_theirs)
    assert allowed(client, of_mine)


@pytest.mark.django_db
def test_the_access_rule_of_an_admin_export_reads_the_owners_current_rights(sam, mine, theirs, make_user):
    download = DownloadBase(owner_ids=[sam.pk],
                            extras=admin_export_extras("exports.formsubmission", domains=[mine.slug]))
    assert can_download(fresh(sam), download)
    across = DownloadBase(owner_ids=[sam.pk],
                          extras=admin_export_extras("exports.formsubmission", domains=[mine.slug, theirs.slug]))
    assert not can_download(fresh(sam), across)
    not_started = DownloadBase(owner_ids=[sam.pk], extras=admin_export_extras("exports.formsubmission"))
    assert can_download(fresh(sam), not_started)
    sam.is_active = False
    sam.save(update_fields=["is_active"])
    assert not can_download(fresh(sam), not_started)
    root = make_user("root", is_staff=True, is_superuser=True)
    assert can_download(root, across)


# --- a selected id that is not an id


# Form submissions are read-only: they have no delete action.
ACTIONS = [(CHANGELIST, "export_changelist"), ("admin:exports_exportrun_changelist", "export_changelist"),
           ("admin:exports_exportrun_changelist", "delete_selected"),
           ("admin:auth_user_changelist", "delete_selected"), ("admin:accounts_apitoken_changelist", "delete_selected")]


@pytest.mark.django_db
@pytest.mark.parametrize(("changelist", "action"), ACTIONS)
@pytest.mark.parametrize("bad_id", ["abc", "1.5", "99999999999999999999999", ""])
def test_an_admin_action_refuses_a_selected_id_that_is_not_an_id_in_a_message(
        client, admin_user, changelist, action, bad_id):
    client.force_login(admin_user)
    url = reverse(changelist)
    response = client.post(url, {"action": action, "select_across": "0", "index": "0",
                                 ACTION_CHECKBOX_NAME: [bad_id]}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(url, 302)]
    messages = [str(message) for message in response.context["messages"]]
    assert any("not an id" in message for message in messages), messages
