"""API tokens (hashed at rest, made and revoked on a page and in the admin) and the API's JSON answers."""
import base64
import uuid

import pytest
from django.urls import reverse

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition
from project.accounts.models import ApiToken

pytestmark = pytest.mark.django_db


@pytest.fixture
def definition(alice):
    domain = ensure_demo_domain(slug="api-clinic", name="API clinic", members=[alice])
    add_demo_rows(domain, 5)
    return ExportDefinition.objects.filter(domain=domain).first()


@pytest.fixture
def start_url(definition):
    return reverse("exports:api_start", args=[definition.domain.slug, definition.pk])


def make_token_on_the_page(client, user, name="sync script", scope="write"):
    client.force_login(user)
    response = client.post(reverse("api_tokens"), {"name": name, "scope": scope})
    assert response.status_code == 200
    token = response.context["new_token"]
    assert token in response.content.decode()
    client.logout()
    return token


def test_a_token_made_on_the_page_starts_an_export_and_only_its_digest_is_stored(client, alice, start_url):
    token = make_token_on_the_page(client, alice)
    row = ApiToken.objects.get(user=alice)
    assert token not in (row.digest, row.prefix, row.name) and token.startswith(row.prefix)
    response = client.post(start_url, {"format": "csv"}, content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 202, response.content
    row.refresh_from_db()
    assert row.last_used_at is not None
    # The page lists it without showing it again.
    client.force_login(alice)
    page = client.get(reverse("api_tokens")).content.decode()
    assert "sync script" in page and token not in page


def test_a_revoked_token_is_refused(client, alice, start_url):
    token = make_token_on_the_page(client, alice)
    client.force_login(alice)
    row = ApiToken.objects.get(user=alice)
    assert client.post(reverse("revoke_api_token", args=[row.pk])).status_code == 302
    client.logout()
    response = client.post(start_url, {}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 401 and "not valid" in response.json()["error"]


def test_one_user_cannot_revoke_another_users_token(client, alice, bob):
    token = make_token_on_the_page(client, alice)
    client.force_login(bob)
    client.post(reverse("revoke_api_token", args=[ApiToken.objects.get(user=alice).pk]))
    assert ApiToken.objects.filter(user=alice).count() == 1 and token


def test_staff_make_a_token_in_the_admin_and_it_is_shown_once(client, make_user, start_url, definition):
    sam = make_user("sam", is_staff=True)
    from django.contrib.auth.models import Permission

    sam.user_permissions.add(*Permission.objects.filter(codename__endswith="_apitoken"))
    definition.domain.members.add(sam)
    client.force_login(sam)
    response = client.post(reverse("admin:accounts_apitoken_add"), {"name": "from the admin", "scope": "write"},
                           follow=True)
    assert response.status_code == 200
    message = next(str(m) for m in response.context["messages"] if "new token" in str(m))
    token = message.split("The new token is ", 1)[1].split(" ", 1)[0]
    assert ApiToken.objects.get(name="from the admin").user == sam
    client.logout()
    response = client.post(start_url, {}, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 202


def test_without_credentials_the_api_answers_401_json_not_a_csrf_403(client, start_url):
    response = client.post(start_url, {}, content_type="application/json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert "token" in response.json()["error"]


def test_basic_auth_with_a_password_is_off_by_default(client, alice, start_url, settings):
    header = "Basic " + base64.b64encode(f"alice:{alice.raw_password}".encode()).decode()
    response = client.post(start_url, {}, content_type="application/json", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401 and "token" in response.json()["error"]
    settings.API_BASIC_AUTH = True
    response = client.post(start_url, {}, content_type="application/json", HTTP_AUTHORIZATION=header)
    assert response.status_code == 202


@pytest.fixture
def token_header(alice):
    from project.accounts.tokens import create_token

    return "Bearer " + create_token(alice, "tests")[1]


def test_a_body_that_is_not_json_gets_415(client, start_url, token_header):
    response = client.post(start_url, '{"format": "csv"}', content_type="text/plain",
                           HTTP_AUTHORIZATION=token_header)
    assert response.status_code == 415 and "JSON" in response.json()["error"]
    response = client.post(start_url, {"format": "csv"}, HTTP_AUTHORIZATION=token_header)  # a form post
    assert response.status_code == 415


def test_unknown_keys_get_400_and_start_nothing(client, start_url, token_header):
    response = client.post(start_url, {"fromat": "csv"}, content_type="application/json",
                           HTTP_AUTHORIZATION=token_header)
    assert response.status_code == 400
    assert response.json()["fields"]["fromat"][0]["code"] == "unknown_parameter"


@pytest.mark.parametrize("written", ["01/02/2025", "2025-1-2", "20250102", "2025-01-02T00:00"])
def test_dates_not_written_iso_get_400(client, start_url, token_header, written):
    response = client.post(start_url, {"date_from": written}, content_type="application/json",
                           HTTP_AUTHORIZATION=token_header)
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.json()["fields"]["date_from"][0]["message"]


NO_RUN = uuid.uuid5(uuid.NAMESPACE_URL, "no such run")  # the same in every xdist worker's collection


@pytest.mark.parametrize("path", ["/exports/api/", "/exports/api/nothing/here/", "/exports/api/runs/not-a-uuid/",
                                  f"/exports/api/runs/{NO_RUN}/", f"/exports/api/runs/{NO_RUN}/file/",
                                  "/exports/api/nowhere/definitions/99/start/"])
def test_every_address_under_the_api_answers_json_404(client, token_header, path):
    if path.endswith("start/"):
        response = client.post(path, {}, content_type="application/json", HTTP_AUTHORIZATION=token_header)
    else:
        response = client.get(path, HTTP_AUTHORIZATION=token_header)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json" and response.json()["error"]


def test_the_wrong_method_gets_json_405(client, start_url, token_header):
    response = client.get(start_url, HTTP_AUTHORIZATION=token_header)
    assert response.status_code == 405 and response["Allow"] == "POST" and response.json()["error"]
    response = client.delete(reverse("exports:api_run", args=[uuid.uuid4()]), HTTP_AUTHORIZATION=token_header)
    assert response.status_code == 405 and response.json()["error"]


def test_a_user_may_hold_only_so_many_tokens(client, alice, settings):
    settings.API_TOKENS_PER_USER = 1
    make_token_on_the_page(client, alice)
    client.force_login(alice)
    response = client.post(reverse("api_tokens"), {"name": "one more", "scope": "read"})
    assert response.status_code == 400 and "revoke one first" in response.content.decode()
    assert ApiToken.objects.filter(user=alice).count() == 1
