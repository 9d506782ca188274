"""The admin is scoped by domain: a staff user sees, filters and picks only their own domains."""
import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from exports.demo import ensure_demo_domain
from exports.files.export_file import export_storage
from exports.models import ExportDefinition, ExportRun, SavedExport
from exports.saved.services import save_definition

pytestmark = pytest.mark.django_db


@pytest.fixture
def sam(make_user, mine):
    """A staff member of `mine` with every exports permission, and no superuser."""
    sam = make_user("sam", is_staff=True)
    sam.user_permissions.add(*Permission.objects.filter(content_type__app_label="exports"))
    mine.members.add(sam)
    return sam


@pytest.fixture
def their_definition(theirs):
    return ExportDefinition.objects.create(domain=theirs, name="Their secrets", source="form_submissions",
                                           format="csv")


@pytest.fixture
def their_run(bob, theirs, their_definition):
    return ExportRun.objects.create(owner=bob, domain=theirs, definition=their_definition, parameters={},
                                    parameters_key="x", status=ExportRun.Status.SUCCEEDED)


def test_lists_show_only_the_staff_users_domains(client, sam, mine, their_definition, their_run):
    client.force_login(sam)
    page = client.get(reverse("admin:exports_exportdefinition_changelist")).content.decode()
    assert "Their secrets" not in page and "All form submissions" in page
    page = client.get(reverse("admin:exports_exportrun_changelist")).content.decode()
    assert str(their_run.pk) not in page
    page = client.get(reverse("admin:exports_domain_changelist")).content.decode()
    assert "Theirs" not in page and "Mine" in page


def test_list_filters_offer_only_the_staff_users_domains(client, sam, alice, mine, theirs, their_run):
    also_mine = ensure_demo_domain(slug="also-mine", name="Also mine", members=[alice, sam])
    for domain in (mine, also_mine):
        ExportRun.objects.create(owner=alice, domain=domain, definition=domain.definitions.first(), parameters={},
                                 parameters_key="y")
    client.force_login(sam)
    page = client.get(reverse("admin:exports_exportrun_changelist")).content.decode()
    assert f"domain__id__exact={mine.pk}" in page and f"domain__id__exact={also_mine.pk}" in page
    assert f"domain__id__exact={theirs.pk}" not in page
    page = client.get(reverse("admin:exports_exportdefinition_changelist")).content.decode()
    assert f"domain__id__exact={theirs.pk}" not in page
    # Asking for the other domain by hand shows nothing of it.
    page = client.get(reverse("admin:exports_exportrun_changelist") + f"?domain__id__exact={theirs.pk}")
    assert str(their_run.pk) not in page.content.decode()


def test_other_domains_objects_cannot_be_opened_or_changed(client, sam, their_definition, their_run):
    client.force_login(sam)
    change = reverse("admin:exports_exportdefinition_change", args=[their_definition.pk])
    assert client.get(change).status_code == 302  # "doesn't exist", back to the index
    client.post(change, {"name": "Mine now", "source": "form_submissions", "format": "csv", "columns": "[]"})
    their_definition.refresh_from_db()
    assert their_definition.name == "Their secrets"
    assert client.get(reverse("admin:exports_exportrun_change", args=[their_run.pk])).status_code == 302


def test_foreign_key_choices_hold_only_the_staff_users_domains(client, sam, mine, theirs):
    client.force_login(sam)
    add = reverse("admin:exports_exportdefinition_add")
    form = client.get(add).context["adminform"].form
    assert list(form.fields["domain"].queryset) == [mine]
    response = client.post(add, {"domain": theirs.pk, "name": "Sneaky", "source": "form_submissions",
                                 "format": "csv", "columns": "[]"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert not ExportDefinition.objects.filter(name="Sneaky").exists()


def test_a_definitions_domain_is_read_only_after_creation(client, sam, mine, theirs):
    """The attack of the issue: a staff member moved another domain's definition into their own."""
    definition = mine.definitions.first()
    client.force_login(sam)
    change = reverse("admin:exports_exportdefinition_change", args=[definition.pk])
    assert "domain" not in client.get(change).context["adminform"].form.fields
    response = client.post(change, {"domain": theirs.pk, "name": definition.name, "source": "form_submissions",
                                    "format": "csv", "columns": "[]"})
    assert response.status_code == 302
    definition.refresh_from_db()
    assert definition.domain == mine


def test_moving_a_definition_through_the_service_deletes_its_saved_file(mine, theirs):
    definition = save_definition(ExportDefinition(domain=mine, name="Nightly", source="form_submissions",
                                                  format="csv", is_daily_saved=True))
    storage = export_storage()
    key = storage.save("saved/mine/nightly-test.csv", __import__("io").BytesIO(b"secret,rows\n"))
    SavedExport.objects.filter(definition=definition).update(file_key=key, filename="n.csv", rows=1,
                                                             last_build_at=timezone.now())
    definition.domain = theirs
    save_definition(definition)
    saved = SavedExport.objects.get(definition=definition)
    assert saved.file_key == "" and not saved.has_file
    assert not storage.exists(key)


def test_superusers_see_every_domain(client, make_user, their_definition):
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    page = client.get(reverse("admin:exports_exportdefinition_changelist")).content.decode()
    assert "Their secrets" in page


@pytest.fixture
def user_viewer(make_user, mine):
    """A staff member of `mine` who may view and change users, and no superuser."""
    viewer = make_user("vera", is_staff=True)
    viewer.user_permissions.add(*Permission.objects.filter(content_type__app_label="auth",
                                                           codename__in=["view_user", "change_user"]))
    mine.members.add(viewer)
    return viewer


def test_staff_see_only_the_users_of_their_domains(client, user_viewer, alice, bob, theirs, make_user):
    bob.email = "bob@theirs.example"
    bob.save()
    make_user("loner", email="loner@nowhere.example")
    client.force_login(user_viewer)
    page = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "alice" in page and "vera" in page
    assert "bob" not in page and "loner" not in page
    page = client.get(reverse("admin:auth_user_changelist") + "?q=theirs.example").content.decode()
    assert "bob@theirs.example" not in page
    assert client.get(reverse("admin:auth_user_change", args=[bob.pk])).status_code == 302  # "doesn't exist"
    assert client.get(reverse("admin:auth_user_password_change", args=[bob.pk])).status_code == 404


def test_staff_cannot_make_anyone_superuser_through_the_user_admin(client, user_viewer, alice):
    client.force_login(user_viewer)
    form = client.get(reverse("admin:auth_user_change", args=[user_viewer.pk])).context["adminform"].form
    assert not {"is_superuser", "groups", "user_permissions"} & set(form.fields)
    response = client.post(reverse("admin:auth_user_change", args=[user_viewer.pk]),
                           {"username": "vera", "is_superuser": "on", "is_staff": "on", "is_active": "on",
                            "date_joined_0": "2025-01-01", "date_joined_1": "00:00:00"})
    assert response.status_code == 302  # saved, without the field it may not change
    user_viewer.refresh_from_db()
    assert not user_viewer.is_superuser


def test_superusers_keep_the_whole_user_admin(client, make_user, alice, bob):
    root = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(root)
    page = client.get(reverse("admin:auth_user_changelist")).content.decode()
    assert "alice" in page and "bob" in page
    form = client.get(reverse("admin:auth_user_change", args=[bob.pk])).context["adminform"].form
    assert {"is_superuser", "groups", "user_permissions"} <= set(form.fields)
    assert client.get(reverse("admin:auth_user_add")).status_code == 200
    assert client.get(reverse("admin:auth_user_password_change", args=[bob.pk])).status_code == 200
