"""Limits: active runs per user and per domain, "Rebuild now" deduped, the row limit on rebuilds,
saved exports per domain, and the demo task for staff on its own queue."""
import pytest
from django.urls import reverse

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition, ExportRun, SavedExport
from exports.runs.limits import LimitReached
from exports.saved import services as saved_exports
from exports.saved.services import save_definition
from project.tasks import demo_sleep
from soil import DownloadBase

pytestmark = pytest.mark.django_db


@pytest.fixture
def clinic(alice, bob):
    domain = ensure_demo_domain(slug="limits", name="Limits", members=[alice, bob])
    add_demo_rows(domain, 40)
    return domain


@pytest.fixture
def definition(clinic):
    return ExportDefinition.objects.get(domain=clinic, name="All form submissions")


def start(client, definition, day):
    """Start an export of one day (each day is a different export, not the same one twice)."""
    fields = {"format": "csv", "date_from": f"2025-01-{day:02d}", "date_to": f"2025-01-{day:02d}"}
    return client.post(reverse("exports:start", args=[definition.domain.slug, definition.pk]),
                       {**{f"d{definition.pk}-{key}": value for key, value in fields.items()},
                        "action": "export_empty"})  # "Export anyway": a day may hold no row


def test_a_user_may_have_only_so_many_active_runs(client, alice, definition, settings):
    settings.EXPORT_MAX_ACTIVE_RUNS_PER_USER = 2
    client.force_login(alice)
    assert start(client, definition, 1).status_code == 302
    assert start(client, definition, 2).status_code == 302
    response = start(client, definition, 3)
    assert response.status_code == 400
    assert "You already have 2 exports queued or running" in response.content.decode()
    assert ExportRun.objects.filter(owner=alice).count() == 2
    # Once one finishes, another may start.
    ExportRun.objects.filter(pk=ExportRun.objects.filter(owner=alice).first().pk).update(
        status=ExportRun.Status.FAILED)
    assert start(client, definition, 3).status_code == 302


def test_a_domain_may_have_only_so_many_active_runs(client, alice, bob, definition, settings):
    settings.EXPORT_MAX_ACTIVE_RUNS_PER_DOMAIN = 2
    client.force_login(alice)
    assert start(client, definition, 1).status_code == 302
    assert start(client, definition, 2).status_code == 302
    client.force_login(bob)
    response = start(client, definition, 1)
    assert response.status_code == 400 and "This domain already has 2 exports" in response.content.decode()


def test_the_api_refuses_past_the_limit_in_words(client, alice, definition, settings):
    from project.accounts.tokens import create_token

    settings.EXPORT_MAX_ACTIVE_RUNS_PER_USER = 1
    header = "Bearer " + create_token(alice, "t")[1]
    url = reverse("exports:api_start", args=[definition.domain.slug, definition.pk])
    assert client.post(url, {"date_from": "2025-01-01"}, content_type="application/json",
                       HTTP_AUTHORIZATION=header).status_code == 202
    response = client.post(url, {"date_from": "2025-01-02"}, content_type="application/json",
                           HTTP_AUTHORIZATION=header)
    assert response.status_code == 400 and "You already have 1 export" in response.json()["error"]


@pytest.fixture
def nightly(clinic):
    return save_definition(ExportDefinition(domain=clinic, name="Nightly", source="form_submissions", format="csv",
                                            is_daily_saved=True))


def test_rebuild_now_clicked_twice_queues_one_rebuild(client, alice, bob, nightly):
    url = reverse("exports:saved_rebuild", args=[nightly.domain.slug, nightly.pk])
    client.force_login(alice)
    first = client.post(url)
    second = client.post(url)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    download_id = SavedExport.objects.get(definition=nightly).rebuild_download_id
    assert download_id and download_id in first["Location"]
    # Another member clicking meanwhile is told, and queues nothing either.
    client.force_login(bob)
    response = client.post(url, follow=True)
    assert "Someone started a rebuild" in response.content.decode()
    assert SavedExport.objects.get(definition=nightly).rebuild_download_id == download_id


def test_rebuild_now_after_the_last_one_finished_queues_a_new_one(client, alice, nightly):
    url = reverse("exports:saved_rebuild", args=[nightly.domain.slug, nightly.pk])
    client.force_login(alice)
    first = client.post(url)["Location"]
    download = DownloadBase.get(SavedExport.objects.get(definition=nightly).rebuild_download_id)
    download.task.backend.mark_as_done(download.task_id, {"rows": 1})
    assert client.post(url)["Location"] != first


def test_the_row_limit_applies_to_saved_rebuilds(nightly, settings):
    settings.EXPORT_MAX_ROWS = 10
    with pytest.raises(LimitReached, match="more than the limit of 10"):
        saved_exports.rebuild(nightly.saved.pk)
    saved = SavedExport.objects.get(pk=nightly.saved.pk)
    assert not saved.has_file and "more than the limit" in saved.last_build_error


def test_a_domain_may_have_only_so_many_saved_exports(client, alice, clinic, nightly, settings):
    settings.SAVED_EXPORTS_MAX_PER_DOMAIN = 1
    client.force_login(alice)
    response = client.post(reverse("exports:definition_new", args=[clinic.slug]),
                           {"name": "Second nightly", "source": "form_submissions", "format": "csv",
                            "is_daily_saved": "on"})
    assert response.status_code == 400
    assert "daily saved exports, the most it may have" in response.content.decode()
    assert not ExportDefinition.objects.filter(name="Second nightly").exists()
    # Editing the one there is stays possible.
    response = client.post(reverse("exports:definition_edit", args=[clinic.slug, nightly.pk]),
                           {"name": "Nightly renamed", "source": "form_submissions", "format": "csv",
                            "is_daily_saved": "on"})
    assert response.status_code == 302


def test_the_demo_task_is_for_staff_only(client, alice, make_user):
    client.force_login(alice)
    assert client.get("/demo/").status_code == 302
    response = client.post("/demo/", {"seconds": "600"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(make_user("sam", is_staff=True))
    assert client.get("/demo/").status_code == 200


def test_the_demo_task_runs_on_its_own_queue(settings):
    assert demo_sleep.queue == "demo_queue"
    assert "demo_queue" in settings.QUEUE_TABLE
    assert settings.QUEUE_TIME_LIMITS["demo_queue"][0] > 600  # the longest demo ends in words


def test_forty_simultaneous_api_starts_never_exceed_a_user_or_domain_limit(stack, make_user, clinic, definition):
    """Eight users with five starts each, all at once, against a real server: the limits hold exactly."""
    import json
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from project.accounts.tokens import create_token

    per_user, per_domain = 3, 20
    web = stack.web(EXPORT_MAX_ACTIVE_RUNS_PER_USER=per_user, EXPORT_MAX_ACTIVE_RUNS_PER_DOMAIN=per_domain)
    users = [make_user(f"user{index}") for index in range(8)]
    clinic.members.add(*users)
    tokens = {user.username: create_token(user, "load")[1] for user in users}
    url = f"/exports/api/{clinic.slug}/definitions/{definition.pk}/start/"
    starts = [(user.username, day) for user in users for day in range(1, 6)]  # five different exports each
    go = threading.Event()

    def start_one(username, day):
        session = stack.session(web)
        session.timeout = 60
        go.wait(30)
        status, _headers, body = session.request(
            "POST", url, json_body={"format": "csv", "date_from": f"2025-01-{day:02d}", "date_to": f"2025-01-{day:02d}"},
            headers={"Accept": "application/json", "Authorization": f"Bearer {tokens[username]}"})
        return status, json.loads(body)

    # Ten at a time: runserver's listen backlog is ten, so more would be reset before reaching Django.
    # In this order each user's five starts are in flight together, with another user's.
    with ThreadPoolExecutor(10) as pool:
        futures = [pool.submit(start_one, *start) for start in starts]
        go.set()
        answers = [future.result() for future in futures]

    statuses = sorted({status for status, _ in answers})
    assert set(statuses) <= {202, 400}, answers
    refusals = {body["error"] for status, body in answers if status == 400}
    assert all("queued or running" in words for words in refusals), refusals
    active = ExportRun.objects.filter(domain=clinic, status__in=ExportRun.ACTIVE)
    per_owner = {user.username: active.filter(owner=user).count() for user in users}
    assert max(per_owner.values()) <= per_user, per_owner
    assert active.count() <= per_domain, per_owner
    # Refusals only come at a limit, and 8 users x 3 > 20: the domain fills exactly, one row per 202.
    assert active.count() == per_domain == sum(status == 202 for status, _ in answers), per_owner
