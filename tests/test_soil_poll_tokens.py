"""Poll tokens: the download page's poller reads its status without a session or a user row."""
import time

import pytest
from celery import current_app as app
from celery import uuid
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import QueryDict
from django.test import Client
from django.urls import reverse

from soil import DownloadBase
from soil.middleware import query_token
from soil.poll_tokens import _signer, make_poll_token

pytestmark = pytest.mark.django_db


def progress_download(owner_ids, current=3, total=10):
    task_id = uuid()
    app.backend.store_result(task_id, {"current": current, "total": total}, "PROGRESS")
    return DownloadBase(task_id=task_id, owner_ids=owner_ids).save(60)


def page_status_url(client, download):
    """The status URL the download's page hands its poller."""
    response = client.get(reverse("retrieve_download", args=[download.download_id]))
    assert response.status_code == 200
    return response.context["status_url"]


def test_the_page_polls_with_a_token_that_needs_no_session_and_no_database(alice_client, alice,
                                                                            django_assert_num_queries):
    download = progress_download([alice.pk])
    url = page_status_url(alice_client, download)
    assert "?t=" in url
    with django_assert_num_queries(0):
        response = Client().get(url)  # no cookies at all
    assert response.status_code == 200 and response.json()["percent"] == 30


def test_without_a_token_the_poll_still_needs_a_login(client, alice):
    download = progress_download([alice.pk])
    response = client.get(reverse("download_status", args=[download.download_id]))
    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.parametrize("spoil", [
    lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"),  # a changed signature
    lambda token: "9999" + token[token.index(":"):],                 # another user's id
    lambda token: "",
])
def test_a_spoilt_token_is_ignored_and_the_login_is_asked_for(client, alice, spoil):
    download = progress_download([alice.pk])
    url = reverse("download_status", args=[download.download_id])
    response = client.get(url, {"t": spoil(make_poll_token(alice, download))})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_token_works_for_its_own_download_only(client, alice):
    mine, other = progress_download([alice.pk]), progress_download([alice.pk])
    token = make_poll_token(alice, mine)
    assert client.get(reverse("download_status", args=[mine.download_id]), {"t": token}).status_code == 200
    response = client.get(reverse("download_status", args=[other.download_id]), {"t": token})
    assert response.status_code == 302


def test_a_token_for_someone_not_listed_gives_nothing(client, alice, bob):
    download = progress_download([alice.pk])
    assert make_poll_token(bob, download) is None
    forged_for_bob = _signer(download.download_id).sign(str(bob.pk))  # as if signed by the server
    response = client.get(reverse("download_status", args=[download.download_id]), {"t": forged_for_bob})
    assert response.status_code == 403


def test_staff_only_downloads_get_no_token(admin_client, admin_user):
    download = progress_download(None)
    url = page_status_url(admin_client, download)
    assert "?t=" not in url and admin_client.get(url).status_code == 200


def test_an_old_token_is_refused(client, alice, settings, monkeypatch):
    settings.SOIL_POLL_TOKEN_MAX_AGE = 1
    download = progress_download([alice.pk])
    token = make_poll_token(alice, download)
    url = reverse("download_status", args=[download.download_id])
    assert client.get(url, {"t": token}).status_code == 200
    # 2.1 s later for Django's signing and soil's memory of verified tokens, which both read the
    # token's age from time.time(): no waiting.
    now = time.time
    monkeypatch.setattr(time, "time", lambda: now() + 2.1)
    assert client.get(url, {"t": token}).status_code == 302


def test_tokens_can_be_turned_off(alice_client, alice, settings):
    download = progress_download([alice.pk])
    token = make_poll_token(alice, download)
    settings.SOIL_POLL_TOKEN_MAX_AGE = 0
    assert "?t=" not in page_status_url(alice_client, download)
    response = Client().get(reverse("download_status", args=[download.download_id]), {"t": token})
    assert response.status_code == 302


def test_the_token_never_serves_the_file(client, alice):
    download = progress_download([alice.pk])
    token = make_poll_token(alice, download)
    response = client.get(reverse("retrieve_download", args=[download.download_id]), {"t": token, "get_file": 1})
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_token_poll_is_answered_before_the_session_and_the_rest_of_the_middleware(client, alice, monkeypatch):
    download = progress_download([alice.pk])
    url = reverse("download_status", args=[download.download_id])
    token = make_poll_token(alice, download)
    client.force_login(alice)
    by_session = client.get(url)

    def no_session(self, request):
        raise AssertionError("a token poll went through the session middleware")

    monkeypatch.setattr(SessionMiddleware, "process_request", no_session)
    by_token = client.get(url, {"t": token}, HTTP_ACCEPT_LANGUAGE="fr")
    assert by_token.status_code == 200 and by_token.content == by_session.content
    assert by_token["ETag"] == by_session["ETag"] and by_token["Cache-Control"] == by_session["Cache-Control"]
    assert by_token["Content-Language"] == "fr" and "Accept-Language" in by_token["Vary"]
    assert client.get(url, {"t": token}, HTTP_IF_NONE_MATCH=by_token["ETag"]).status_code == 304


def test_a_token_that_does_not_settle_the_poll_goes_on_through_the_middleware(client, alice, bob):
    download = progress_download([alice.pk])
    forged_for_bob = _signer(download.download_id).sign(str(bob.pk))  # bob is not a listed owner
    url = reverse("download_status", args=[download.download_id])
    client.force_login(alice)  # the session decides, and alice may see it
    assert client.get(url, {"t": forged_for_bob}).json()["percent"] == 30


@pytest.mark.parametrize("query", ["t=a:b:c", "x=1&t=a%3Ab&y=2", "t=1&t=2", "t=a+b", "st=1", "t=", "x=t=1", ""])
def test_the_middleware_reads_the_token_as_the_view_does(query):
    assert (query_token(query) or None) == (QueryDict(query).get("t") or None)
