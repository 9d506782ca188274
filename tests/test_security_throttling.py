"""Throttling: failed logins (site and admin), password resets and the API get 429 with Retry-After."""
import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

# The counters run in fixed windows (django-ratelimit): tests whose attempts each hash a password use
# windows of an hour, so that their few seconds of attempts almost never straddle two windows.


def assert_throttled(response):
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0


def test_failed_logins_lock_the_username_out_even_with_the_right_password(client, alice, settings):
    settings.LOGIN_FAILURE_RATE_PER_USERNAME = "5/h"
    for _ in range(5):
        response = client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    response = client.post("/accounts/login/", {"username": "alice", "password": alice.raw_password})
    assert_throttled(response)
    assert "Too many attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_right_passwords_are_never_throttled(client, alice):
    for _ in range(8):
        response = client.post("/accounts/login/", {"username": "alice", "password": alice.raw_password})
        assert response.status_code == 302
        client.logout()


def test_the_counters_start_empty_in_each_test(client, alice):
    """The test above that locked alice out leaves nothing behind (tests/conftest.py resets the counters)."""
    response = client.post("/accounts/login/", {"username": "alice", "password": alice.raw_password})
    assert response.status_code == 302


def test_failed_admin_logins_are_throttled(client, make_user, settings):
    settings.LOGIN_FAILURE_RATE_PER_USERNAME = "5/h"
    make_user("sam", is_staff=True)
    for _ in range(5):
        assert client.post("/admin/login/", {"username": "sam", "password": "wrong"}).status_code == 200
    assert_throttled(client.post("/admin/login/", {"username": "sam", "password": "pw-for-tests-123"}))


def test_many_failures_from_one_address_lock_out_every_username(client, settings):
    settings.LOGIN_FAILURE_RATE_PER_ADDRESS = "3/h"
    for name in ("a", "b", "c"):
        client.post("/accounts/login/", {"username": name, "password": "wrong"})
    assert_throttled(client.post("/accounts/login/", {"username": "d", "password": "wrong"}))


def test_password_resets_are_throttled_per_email_address(client, make_user, mailoutbox):
    make_user("alice", email="alice@example.com")
    for _ in range(2):
        assert client.post("/accounts/password_reset/", {"email": "alice@example.com"}).status_code == 302
    assert_throttled(client.post("/accounts/password_reset/", {"email": "alice@example.com"}))
    assert len(mailoutbox) == 2


def test_wrong_api_credentials_are_throttled_per_address(client, alice):
    url = reverse("exports:api_run", args=["00000000-0000-0000-0000-000000000000"])
    for _ in range(10):
        assert client.get(url, HTTP_AUTHORIZATION="Bearer exp_wrong").status_code == 401
    response = client.get(url, HTTP_AUTHORIZATION="Bearer exp_wrong")
    assert_throttled(response)
    assert "Too many attempts" in response.json()["error"]


def test_basic_auth_attempts_are_throttled_too(client, alice, settings):
    import base64

    settings.API_BASIC_AUTH = True
    settings.API_AUTH_FAILURE_RATE_PER_ADDRESS = "3/h"
    header = "Basic " + base64.b64encode(b"alice:wrong").decode()
    url = reverse("exports:api_run", args=["00000000-0000-0000-0000-000000000000"])
    for _ in range(3):
        assert client.get(url, HTTP_AUTHORIZATION=header).status_code == 401
    assert_throttled(client.get(url, HTTP_AUTHORIZATION=header))


def test_api_requests_of_one_user_are_throttled(client, alice, settings):
    from project.accounts.tokens import create_token

    settings.API_RATE_PER_USER = "3/m"
    header = "Bearer " + create_token(alice, "script")[1]
    url = reverse("exports:api_run", args=["00000000-0000-0000-0000-000000000000"])
    for _ in range(3):
        assert client.get(url, HTTP_AUTHORIZATION=header).status_code == 404
    assert_throttled(client.get(url, HTTP_AUTHORIZATION=header))


@pytest.mark.parametrize("spelling", ["ａｌｉｃｅ", "ALICE", "Ａｌｉce", " alice "])
def test_another_spelling_of_a_locked_out_username_is_locked_out_too(client, alice, settings, spelling):
    settings.LOGIN_FAILURE_RATE_PER_USERNAME = "5/h"
    for _ in range(5):
        assert client.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code == 200
    response = client.post("/accounts/login/", {"username": spelling, "password": alice.raw_password})
    assert_throttled(response)
    assert "_auth_user_id" not in client.session


def test_failures_under_every_spelling_count_together(client, alice, settings):
    settings.LOGIN_FAILURE_RATE_PER_USERNAME = "5/h"
    for spelling in ["ａｌｉｃｅ", "ALICE", "Ａｌｉce", " alice ", "aliCE"]:
        assert client.post("/accounts/login/", {"username": spelling, "password": "wrong"}).status_code == 200
    assert_throttled(client.post("/accounts/login/", {"username": "alice", "password": alice.raw_password}))
    assert_throttled(client.post("/admin/login/", {"username": "ａｌｉｃｅ", "password": alice.raw_password}))


def test_a_full_width_spelling_with_the_right_password_logs_in_when_not_locked_out(client, alice):
    """The normalised key takes nothing away from the person who types their name another way."""
    response = client.post("/accounts/login/", {"username": "ａｌｉｃｅ", "password": alice.raw_password})
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_failures_count_against_the_user_the_name_resolves_to(client, make_user, settings, monkeypatch):
    """A user model whose manager also takes the email (a common override): both names share the user's counter."""
    from django.contrib.auth import get_user_model
    from django.db.models import Q

    settings.LOGIN_FAILURE_RATE_PER_USERNAME = "5/h"
    alice = make_user("alice", email="alice@example.com")
    manager = type(get_user_model()._default_manager)
    monkeypatch.setattr(manager, "get_by_natural_key", lambda self, name: self.get(Q(username=name) | Q(email=name)))
    assert client.post("/accounts/login/", {"username": "alice@example.com", "password": alice.raw_password}).status_code == 302
    client.logout()
    for _ in range(5):
        assert client.post("/accounts/login/", {"username": "alice@example.com", "password": "wrong"}).status_code == 200
    assert_throttled(client.post("/accounts/login/", {"username": "alice", "password": alice.raw_password}))
