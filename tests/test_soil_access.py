"""Who may see a download, through HTTP: every view that serves or reports one asks soil.access."""
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse

from soil.conf import soil_conf
from soil.util import expose_cached_download

pytestmark = pytest.mark.django_db

VIEWS = ("retrieve_download", "ajax_job_poll", "download_status")


def members_only(user, download):
    """A project's extra rule, as SOIL_DOWNLOAD_ACCESS_CHECK: the user must be listed in the extras."""
    return user.username in download.extras.get("members", [])


def answers(client, download):
    """The status code of each view, and of the file, for this client."""
    codes = {name: client.get(reverse(name, args=[download.download_id])).status_code for name in VIEWS}
    codes["get_file"] = client.get(reverse("retrieve_download", args=[download.download_id]) + "?get_file").status_code
    return codes


def everywhere(code):
    return dict.fromkeys((*VIEWS, "get_file"), code)


def test_a_download_saved_without_owners_is_for_staff_only(client, alice, make_user):
    download = expose_cached_download(b"x", 60, ".txt")
    client.force_login(alice)
    assert answers(client, download) == everywhere(403)
    client.force_login(make_user("staffer", is_staff=True))
    assert answers(client, download) == everywhere(200)


def test_ownerless_downloads_authenticated_lets_any_logged_in_user_in_as_commcare_does(client, alice, settings):
    settings.SOIL_OWNERLESS_DOWNLOADS = "authenticated"
    download = expose_cached_download(b"x", 60, ".txt")
    client.force_login(alice)
    assert answers(client, download) == everywhere(200)
    client.logout()
    assert {code for code in answers(client, download).values()} == {302}


def test_ownerless_downloads_authenticated_does_not_widen_a_list_of_owners(client, alice, bob, settings):
    settings.SOIL_OWNERLESS_DOWNLOADS = "authenticated"
    download = expose_cached_download(b"x", 60, ".txt", owner_ids=[alice.pk])
    client.force_login(bob)
    assert answers(client, download) == everywhere(403)


def test_ownerless_downloads_defaults_to_staff(settings):
    if hasattr(settings, "SOIL_OWNERLESS_DOWNLOADS"):
        del settings.SOIL_OWNERLESS_DOWNLOADS
    assert soil_conf.ownerless_downloads == "staff"


def test_an_unknown_ownerless_downloads_value_is_refused_not_read_as_open(alice, settings):
    settings.SOIL_OWNERLESS_DOWNLOADS = "everyone"
    download = expose_cached_download(b"x", 60, ".txt")
    with pytest.raises(ImproperlyConfigured, match="SOIL_OWNERLESS_DOWNLOADS"):
        download.is_owner(alice)


def test_the_owners_may_use_it_and_nobody_else_not_even_staff(client, alice, make_user):
    download = expose_cached_download(b"x", 60, ".txt", owner_ids=[alice.pk])
    client.force_login(make_user("staffer", is_staff=True))
    assert answers(client, download) == everywhere(403)
    client.force_login(alice)
    assert answers(client, download) == everywhere(200)


def test_the_projects_check_narrows_access_by_what_the_extras_hold(client, alice, settings):
    settings.SOIL_DOWNLOAD_ACCESS_CHECK = "tests.test_soil_access.members_only"
    client.force_login(alice)
    elsewhere = expose_cached_download(b"x", 60, ".txt", owner_ids=[alice.pk], extras={"members": ["bob"]})
    assert answers(client, elsewhere) == everywhere(403)
    hers = expose_cached_download(b"x", 60, ".txt", owner_ids=[alice.pk], extras={"members": ["alice"]})
    assert answers(client, hers) == everywhere(200)


def test_the_projects_check_cannot_widen_the_owner_list(client, alice, bob, settings):
    settings.SOIL_DOWNLOAD_ACCESS_CHECK = "tests.test_soil_access.members_only"
    download = expose_cached_download(b"x", 60, ".txt", owner_ids=[alice.pk], extras={"members": ["bob"]})
    client.force_login(bob)
    assert answers(client, download) == everywhere(403)


def test_anonymous_visitors_are_sent_to_log_in(client):
    download = expose_cached_download(b"x", 60, ".txt")
    assert {code for code in answers(client, download).values()} == {302}
