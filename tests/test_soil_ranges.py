"""Range requests: a dropped download resumes where it stopped. soil answers one `bytes=` range of a
file it serves with 206 Partial Content, and a range past the end with 416 (RFC 9110 §14); checked
with the client a person resumes with, `curl -C -`, against a live server."""
import hashlib
import os
import subprocess

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from soil.http import RangeNotSatisfiable, requested_range
from soil.util import expose_blob_download, expose_cached_download, expose_file_download

SIZE = 3 * 1024 * 1024 + 12345  # a few MB, not a multiple of the 64 KiB block


def file_url(download_id):
    return reverse("retrieve_download", args=[download_id]) + "?get_file"


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.fixture
def content():
    return os.urandom(SIZE)


# --- the header, read as RFC 9110 reads it ---

@pytest.mark.parametrize("header, expected", [
    ("bytes=0-99", (0, 99)),
    ("bytes=100-", (100, 999)),
    ("bytes=-100", (900, 999)),
    ("bytes=-5000", (0, 999)),
    ("bytes=990-5000", (990, 999)),
    ("bytes=999-999", (999, 999)),
    (None, None),
    ("", None),
    ("bytes=-", None),
    ("bytes=5-2", None),  # not a valid range: ignored
    ("bytes=0-1,5-9", None),  # several ranges: the whole file
    ("items=0-5", None),
    ("bytes=abc-", None),
])
def test_one_byte_range_is_read_and_anything_else_ignored(header, expected):
    assert requested_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_a_range_past_the_end_cannot_be_satisfied(header):
    with pytest.raises(RangeNotSatisfiable):
        requested_range(header, 1000)


# --- each kind of download, through the view ---

@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["file", "blob", "cached"])
def test_every_kind_of_download_answers_a_range_with_206_and_those_bytes(alice_client, alice, tmp_path, kind):
    data = os.urandom(200_000)
    if kind == "file":
        path = tmp_path / "report.bin"
        path.write_bytes(data)
        download = expose_file_download(str(path), 60, owner_ids=[alice.pk])
    elif kind == "blob":
        key = default_storage.save("soil-tests/report.bin", ContentFile(data))
        download = expose_blob_download(key, 60, owner_ids=[alice.pk])
    else:
        download = expose_cached_download(data, 60, ".bin", owner_ids=[alice.pk])
    url = file_url(download.download_id)

    whole = alice_client.get(url)
    assert whole.status_code == 200 and whole["Accept-Ranges"] == "bytes" and body(whole) == data

    part = alice_client.get(url, HTTP_RANGE="bytes=70000-")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 70000-{len(data) - 1}/{len(data)}"
    assert part["Content-Length"] == str(len(data) - 70000)
    assert part["Content-Disposition"] == whole["Content-Disposition"]
    assert part["Cache-Control"] == "private, no-store"
    assert body(part) == data[70000:]
    assert body(alice_client.get(url, HTTP_RANGE="bytes=10-19")) == data[10:20]

    refused = alice_client.get(url, HTTP_RANGE=f"bytes={len(data)}-")
    assert refused.status_code == 416 and refused["Content-Range"] == f"bytes */{len(data)}"
    # With If-Range there is no validator to compare: the whole file, never a mismatched part.
    assert alice_client.get(url, HTTP_RANGE="bytes=10-", HTTP_IF_RANGE='"x"').status_code == 200


@pytest.mark.django_db
def test_a_range_gives_nothing_to_someone_who_may_not_download(client, alice, bob, tmp_path):
    path = tmp_path / "report.bin"
    path.write_bytes(b"secret" * 100)
    download = expose_file_download(str(path), 60, owner_ids=[alice.pk])
    client.force_login(bob)
    response = client.get(file_url(download.download_id), HTTP_RANGE="bytes=0-3")
    assert response.status_code == 403 and b"secret" not in body(response)


# --- a real resume, with curl ---

def curl(*args):
    return subprocess.run(["curl", "--silent", "--show-error", *args], capture_output=True, timeout=60)


@pytest.mark.django_db(transaction=True)
def test_curl_resumes_a_dropped_download_where_it_stopped(live_server, client, alice, tmp_path, content):
    source = tmp_path / "big.bin"
    source.write_bytes(content)
    download = expose_file_download(str(source), 600, owner_ids=[alice.pk])
    client.force_login(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    url = live_server.url + file_url(download.download_id)
    target = tmp_path / "downloaded.bin"
    target.write_bytes(content[:1_234_567])  # what arrived before the connection dropped

    resumed = curl("-C", "-", "-b", cookie, "-o", str(target), "-w", "%{http_code}", url)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == b"206"
    assert hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(content).digest()

    # Resuming a file already whole: the range starts at the end, 416, and curl counts it as done.
    again = curl("-C", "-", "-b", cookie, "-o", str(target), "-w", "%{http_code}", url)
    assert again.stdout == b"416" and again.returncode == 0, again.stderr
    assert target.read_bytes() == content
