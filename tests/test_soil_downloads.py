"""Downloads and their views: ownership, expiry, streaming, safe headers, one JSON shape."""
import time

import pytest
from celery import current_app as app
from celery import states, uuid
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from soil import BlobDownload, CachedDownload, DownloadBase, FileDownload
from soil.conf import soil_conf
from soil.exceptions import TaskFailedError
from soil.http import content_disposition
from soil.progress import SENT
from soil.util import (
    expose_blob_download,
    expose_cached_download,
    expose_file_download,
    get_download_context,
    start_download,
)
from tests.celery_tasks import fail_by_raising

pytestmark = pytest.mark.django_db

STATUS_KEYS = {"download_id", "state", "percent", "current", "total", "message", "eta_seconds", "errors",
               "is_ready", "has_file", "download_url", "is_alive"}


def file_url(download_id):
    return reverse("retrieve_download", args=[download_id]) + "?get_file"


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


# --- ids and headers ---

def test_download_ids_carry_128_random_bits():
    ids = {DownloadBase().download_id for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(download_id) == 32 and int(download_id, 16) >= 0 for download_id in ids)


@pytest.mark.parametrize("name", ["a\r\nSet-Cookie: x=1.txt", "a\nb.txt", "a\rb.txt", "nul\x00.txt"])
def test_content_disposition_strips_control_characters(name):
    header = content_disposition(name)
    assert "\r" not in header and "\n" not in header and "\x00" not in header


def test_content_disposition_uses_rfc_6266_for_non_ascii_names():
    header = content_disposition("Zoë résumé 東京.xlsx")
    assert "filename*=UTF-8''Zo%C3%AB%20r%C3%A9sum%C3%A9%20%E6%9D%B1%E4%BA%AC.xlsx" in header
    assert header.startswith('attachment; filename="')
    assert header.split('filename="')[1].split('"')[0].isascii()


def test_content_disposition_escapes_quotes_and_drops_path_separators():
    assert content_disposition('say "hi"/../x.csv') == 'attachment; filename="say \\"hi\\"_.._x.csv"'


# --- serving ---

def test_a_cached_download_is_served_byte_for_byte_with_a_safe_header(alice_client, alice):
    payload = bytes(range(256)) * 1000
    download = expose_cached_download(payload, 60, ".bin", content_disposition="evil\r\nX-Injected: 1.bin",
                                      owner_ids=[alice.pk])
    response = alice_client.get(file_url(download.download_id))
    assert response.status_code == 200
    assert body(response) == payload
    assert "X-Injected" not in response.headers
    assert response["Content-Disposition"] == 'attachment; filename="evilX-Injected: 1.bin"'
    assert response["Content-Length"] == str(len(payload))


def test_a_file_download_is_streamed_from_its_path(alice_client, alice, tmp_path):
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n" * 50_000)
    download = expose_file_download(path, 60, owner_ids=[alice.pk])
    response = alice_client.get(file_url(download.download_id))
    assert response.streaming
    assert body(response) == path.read_bytes()
    assert response["Content-Type"].startswith("text/csv")


def test_the_pages_heading_is_the_files_name_whatever_the_state(alice_client, alice, tmp_path):
    """Not "Preparing report.csv" above "Ready.": the heading names the file, the state line says the rest."""
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\n")
    download = expose_file_download(path, 60, owner_ids=[alice.pk], content_disposition="report.csv")
    page = alice_client.get(reverse("retrieve_download", args=[download.download_id])).content.decode()
    assert "<h1>report.csv</h1>" in page and "Preparing" not in page


def test_a_blob_download_is_served_from_django_storage(alice_client, alice):
    key = default_storage.save(f"tests/{uuid()}.txt", ContentFile(b"stored in the storage"))
    try:
        download = expose_blob_download(key, 60, owner_ids=[alice.pk], content_disposition="blob.txt")
        assert isinstance(DownloadBase.get(download.download_id), BlobDownload)
        response = alice_client.get(file_url(download.download_id))
        assert body(response) == b"stored in the storage"
        assert response["Content-Disposition"] == 'attachment; filename="blob.txt"'
    finally:
        default_storage.delete(key)


def test_downloads_read_back_as_their_own_class():
    cached = expose_cached_download(b"x", 60, ".txt")
    assert type(DownloadBase.get(cached.download_id)) is CachedDownload
    filed = expose_file_download("/nonexistent/file.txt", 60)
    assert type(DownloadBase.get(filed.download_id)) is FileDownload
    assert not DownloadBase.get(filed.download_id).has_file


# --- who may see it ---

@pytest.mark.parametrize("view", ["retrieve_download", "ajax_job_poll", "download_status"])
def test_another_user_gets_403_on_every_view(client, alice, bob, view):
    download = expose_cached_download(b"secret", 60, ".txt", owner_ids=[alice.pk])
    client.force_login(bob)
    assert client.get(reverse(view, args=[download.download_id])).status_code == 403


def test_another_user_gets_403_for_the_file(client, alice, bob):
    download = expose_cached_download(b"secret", 60, ".txt", owner_ids=[alice.pk])
    client.force_login(bob)
    response = client.get(file_url(download.download_id))
    assert response.status_code == 403
    assert b"secret" not in response.content


@pytest.mark.parametrize("view", ["retrieve_download", "ajax_job_poll", "download_status"])
def test_anonymous_users_are_sent_to_log_in(client, view):
    download = expose_cached_download(b"x", 60, ".txt")
    response = client.get(reverse(view, args=[download.download_id]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_after_expiry_the_file_answers_404_with_a_clear_page(alice_client, alice):
    download = expose_cached_download(b"short-lived", 1, ".txt", owner_ids=[alice.pk])
    assert alice_client.get(file_url(download.download_id)).status_code == 200
    time.sleep(1.2)
    response = alice_client.get(file_url(download.download_id))
    assert response.status_code == 404
    assert b"expired" in response.content


def test_an_unknown_download_answers_404_as_json_too(alice_client):
    response = alice_client.get(reverse("download_status", args=["0" * 32]))
    assert response.status_code == 404
    assert "expired" in response.json()["error"]


# --- the one JSON shape ---

def _download_in_state(state, meta=None, owner=None):
    task_id = uuid()
    if state == "failed-errors":
        app.backend.store_result(task_id, {"errors": ["no rows"], "exc_type": "TaskFailedError",
                                           "exc_module": "soil.exceptions", "exc_message": [["no rows"]]},
                                 states.FAILURE)
    elif state == "failed-raise":
        app.backend.mark_as_failure(task_id, RuntimeError("disk full"))
    elif state is not None:
        app.backend.store_result(task_id, meta, state)
    return DownloadBase(task_id=task_id, owner_ids=[owner.pk]).save(60)


@pytest.mark.parametrize("celery_state, meta, expected", [
    (None, None, {"state": "missing", "percent": 0, "is_ready": False}),
    (SENT, None, {"state": "not_started", "percent": 0}),
    ("PROGRESS", {"current": 12000, "total": 250000, "message": "12,000 of 250,000 rows"},
     {"state": "started", "percent": 4, "current": 12000, "total": 250000, "message": "12,000 of 250,000 rows"}),
    (states.SUCCESS, None, {"state": "success", "percent": 100, "is_ready": True, "has_file": False}),
    ("failed-errors", None, {"state": "failed", "errors": ["no rows"], "is_ready": False}),
    ("failed-raise", None, {"state": "failed", "errors": ["disk full"]}),
])
def test_the_status_endpoint_has_one_shape_for_every_state(alice_client, alice, celery_state, meta, expected):
    download = _download_in_state(celery_state, meta, owner=alice)
    data = alice_client.get(reverse("download_status", args=[download.download_id])).json()
    assert set(data) == STATUS_KEYS
    assert {key: data[key] for key in expected} == expected


def test_a_file_exposed_without_a_task_is_ready_with_a_download_url(alice_client, alice):
    download = expose_cached_download(b"x", 60, ".txt", owner_ids=[alice.pk])
    data = alice_client.get(reverse("download_status", args=[download.download_id])).json()
    assert data["is_ready"] and data["has_file"]
    assert data["download_url"] == file_url(download.download_id)


def test_get_download_context_raises_task_failed_error_with_the_errors(alice):
    download = _download_in_state("failed-errors", owner=alice)
    with pytest.raises(TaskFailedError) as failure:
        get_download_context(download.download_id)
    assert failure.value.errors == ["no rows"]


def test_the_poll_partial_shows_the_errors(alice_client, alice):
    download = _download_in_state("failed-errors", owner=alice)
    response = alice_client.get(reverse("ajax_job_poll", args=[download.download_id]))
    assert response.status_code == 200
    assert b"no rows" in response.content and b"Failed" in response.content


def test_the_page_carries_the_status_url_for_its_script(alice_client, alice):
    download = _download_in_state("PROGRESS", {"current": 1, "total": 2}, owner=alice)
    response = alice_client.get(reverse("retrieve_download", args=[download.download_id]))
    assert response.status_code == 200
    assert reverse("download_status", args=[download.download_id]).encode() in response.content
    assert b"soil/soil.js" in response.content


def test_start_response_points_to_the_page_and_the_status():
    download = DownloadBase(task_id=uuid()).save(60)
    data = download.get_start_response()
    assert b"/downloads/" + download.download_id.encode() in data.content


# --- edge cases found in review ---

def test_an_empty_owner_list_lets_nobody_in(alice_client):
    download = expose_cached_download(b"x", 60, ".txt", owner_ids=[])
    assert alice_client.get(file_url(download.download_id)).status_code == 403


def test_extension_comes_from_the_file_name_not_a_dotted_folder(tmp_path):
    folder = tmp_path / "a.b"
    folder.mkdir()
    (folder / "report").write_bytes(b"x")
    download = expose_file_download(folder / "report", 60)
    assert download.filename == "download" and download.mimetype == "application/octet-stream"
    assert expose_file_download(folder / "report.csv", 60).filename == "download.csv"


@pytest.mark.parametrize("expiry", [0, None])
def test_a_missing_expiry_means_the_default_expiry(expiry):
    download = expose_cached_download(b"kept", expiry, ".txt")
    again = DownloadBase.get(download.download_id)
    assert again.has_file
    assert again.expires_at - time.time() > soil_conf.DEFAULT_EXPIRY - 60


def test_a_file_whose_task_record_expired_is_still_ready(alice_client, alice):
    download = expose_cached_download(b"older than the result", 60, ".txt", owner_ids=[alice.pk])
    download.task_id = uuid()  # a task id the result backend no longer knows
    download.save(60)
    data = alice_client.get(reverse("download_status", args=[download.download_id])).json()
    assert data["state"] == "success" and data["is_ready"] and data["download_url"]


def test_the_file_is_not_served_while_its_task_is_still_working(alice_client, alice):
    task_id = uuid()
    app.backend.store_result(task_id, {"current": 1, "total": 2}, "PROGRESS")
    download = expose_cached_download(b"partial", 60, ".txt", owner_ids=[alice.pk])
    download.task_id = task_id
    download.save(60)
    assert alice_client.get(file_url(download.download_id)).status_code == 404
    assert alice_client.get(reverse("download_status", args=[download.download_id])).json()["download_url"] is None


@pytest.mark.django_db(transaction=True)
def test_an_eager_task_that_raises_shows_its_error_on_the_page_not_a_500(eager, alice_client, alice):
    download = start_download(fail_by_raising, args=("The export definition was deleted",), owner_ids=[alice.pk])
    data = alice_client.get(reverse("download_status", args=[download.download_id])).json()
    assert data["state"] == "failed"
    assert data["errors"] == ["The export definition was deleted"]


def test_a_record_read_just_before_a_quick_task_exposed_its_file_and_finished_still_finds_the_file(alice):
    """The poll reads the download record, then the task record. A task that exposes its file and
    succeeds between those two reads must not read as "success without a file"."""
    from soil.status import download_state

    tracked = DownloadBase(owner_ids=[alice.pk], task_id=uuid()).save(60)
    read_before = DownloadBase.get(tracked.download_id)  # the poll's first read: no file yet
    exposed = expose_cached_download(b"quick", 60, ".txt", download_id=tracked.download_id)
    app.backend.store_result(tracked.task_id, None, states.SUCCESS)  # then the task finishes
    assert exposed.task_id == tracked.task_id

    state = download_state(tracked.download_id, read_before, None)
    assert state.is_ready and state.has_file
    assert body(state.download.toHttpResponse()) == b"quick"
