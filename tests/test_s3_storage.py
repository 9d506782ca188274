"""Export files on S3: a real SeaweedFS (tests/s3_server.py), django-storages' S3Storage, real Redis.

Downloads from an S3 storage are redirects to short-lived presigned URLs; these tests fetch those
URLs over HTTP from SeaweedFS itself, so signatures, expiry and headers are checked by a real server.
"""
import csv
import datetime
import io
import urllib.error
import urllib.request
import uuid
from urllib.parse import parse_qs, quote, urlsplit

import botocore.auth
import pytest
from django.core.files.base import ContentFile
from django.shortcuts import resolve_url
from django.urls import reverse
from storages.backends.s3 import S3Storage

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.files.export_file import export_storage
from exports.models import ExportRun
from exports.runs import services
from exports.sources import get_source
from soil import BlobDownload, DownloadBase
from soil.http import content_disposition
from soil.util import expose_blob_download

pytestmark = pytest.mark.django_db

PAYLOAD = "Zoë,東京\r\n".encode() + bytes(range(256)) * 400  # ~100 kB, every byte value
FILENAME = "Zoë report 2025.csv"  # non-ASCII: the header gets the RFC 6266 filename* form


def file_url(download_id):
    return reverse("retrieve_download", args=[download_id]) + "?get_file"


def fetch(url):
    """A real HTTP GET (to SeaweedFS): (status, headers, body); HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our own test server)
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, error.read()


def unique_key(suffix=".csv"):
    return f"tests/{uuid.uuid4().hex}{suffix}"


def stored_object(s3_server, key):
    """The object as SeaweedFS has it, read with boto3 (not through Django)."""
    response = s3_server.client().get_object(Bucket=s3_server.bucket, Key=key)
    return response["Body"].read()


def assert_presigned_redirect(response, s3_server, key):
    """A redirect straight to SeaweedFS, signed (SigV4), for this bucket and key; returns the URL."""
    assert response.status_code == 302, response.content[:500]
    location = response["Location"]
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == s3_server.endpoint_url
    assert parts.path == f"/{s3_server.bucket}/{quote(key)}"
    query = parse_qs(parts.query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith(s3_server.access_key + "/")
    assert query["X-Amz-Signature"][0]
    return location


@pytest.fixture
def blob(s3_exports_storage, alice):
    """A file in the S3 bucket, exposed to alice as a blob download named FILENAME."""
    key = s3_exports_storage.save(unique_key(), ContentFile(PAYLOAD))
    download = expose_blob_download(key, 60, file_extension=".csv", mimetype="text/csv",
                                    content_disposition=FILENAME, owner_ids=[alice.pk], storage_alias="exports")
    return key, download


# --- the storage itself ---

def test_the_django_storage_api_writes_to_seaweedfs_and_reads_back(s3_exports_storage, s3_server):
    storage = s3_exports_storage
    assert isinstance(storage, S3Storage) and export_storage() is storage
    key = storage.save(unique_key(".bin"), ContentFile(PAYLOAD))

    assert stored_object(s3_server, key) == PAYLOAD  # really in the bucket, not somewhere local
    assert storage.exists(key)
    assert storage.size(key) == len(PAYLOAD)
    with storage.open(key, "rb") as stored:
        assert stored.read() == PAYLOAD

    # file_overwrite=False: the same name again is saved under another key, the first file untouched.
    other = storage.save(key, ContentFile(b"second"))
    assert other != key
    assert stored_object(s3_server, key) == PAYLOAD and stored_object(s3_server, other) == b"second"

    storage.delete(key)
    assert not storage.exists(key)


# --- downloads: a redirect to a presigned URL ---

def test_the_owner_is_redirected_to_a_presigned_url_that_serves_the_exact_bytes(alice_client, blob, s3_server,
                                                                                 settings):
    key, download = blob
    assert isinstance(BlobDownload.get(download.download_id), BlobDownload)

    response = alice_client.get(file_url(download.download_id))
    location = assert_presigned_redirect(response, s3_server, key)
    assert parse_qs(urlsplit(location).query)["X-Amz-Expires"] == [str(settings.SOIL_PRESIGNED_URL_EXPIRY)]

    status, headers, body = fetch(location)
    assert status == 200
    assert body == PAYLOAD
    # SeaweedFS honours response-content-disposition / response-content-type of the signed URL.
    assert headers["Content-Disposition"] == content_disposition(FILENAME)
    assert "filename*=UTF-8''Zo%C3%AB%20report%202025.csv" in headers["Content-Disposition"]
    assert headers["Content-Type"] == "text/csv"


def test_the_bucket_is_private_without_a_signature(blob, s3_server):
    key, _ = blob
    status, _, body = fetch(f"{s3_server.endpoint_url}/{s3_server.bucket}/{quote(key)}")
    assert status == 403 and PAYLOAD not in body


def test_another_user_gets_403_and_no_redirect(client, bob, blob):
    _, download = blob
    client.force_login(bob)
    response = client.get(file_url(download.download_id))
    assert response.status_code == 403
    assert "Location" not in response.headers
    assert b"X-Amz-Signature" not in response.content


def test_an_anonymous_visitor_is_sent_to_the_login_page_not_to_s3(client, blob, s3_server, settings):
    _, download = blob
    response = client.get(file_url(download.download_id))
    assert response.status_code == 302
    assert response["Location"].startswith(resolve_url(settings.LOGIN_URL) + "?next=")
    assert s3_server.endpoint_url not in response["Location"]


def test_an_expired_presigned_url_is_refused_by_seaweedfs(alice_client, blob, s3_server, settings, monkeypatch):
    key, download = blob
    settings.SOIL_PRESIGNED_URL_EXPIRY = 1
    # Signed by a clock 3 s behind (instead of waiting): X-Amz-Date has whole seconds, so its 1 s of
    # validity is over for SeaweedFS, whose clock is the real one.
    signing_time = botocore.auth.get_current_datetime
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda *args, **kwargs: signing_time(*args, **kwargs) - datetime.timedelta(seconds=3))
    expiring = assert_presigned_redirect(alice_client.get(file_url(download.download_id)), s3_server, key)
    monkeypatch.undo()
    assert parse_qs(urlsplit(expiring).query)["X-Amz-Expires"] == ["1"]

    status, _, body = fetch(expiring)
    assert status == 403
    assert PAYLOAD not in body
    assert b"expired" in body.lower()

    # A URL signed now, the same way, still works: it is the expiry that was refused.
    settings.SOIL_PRESIGNED_URL_EXPIRY = 60
    fresh = assert_presigned_redirect(alice_client.get(file_url(download.download_id)), s3_server, key)
    assert fetch(fresh)[0] == 200


def test_a_tampered_presigned_url_is_refused_by_seaweedfs(alice_client, blob, s3_server):
    key, download = blob
    location = assert_presigned_redirect(alice_client.get(file_url(download.download_id)), s3_server, key)
    signature = parse_qs(urlsplit(location).query)["X-Amz-Signature"][0]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]

    tampered = {
        "signature": location.replace(signature, flipped),
        "file name": location.replace("report", "rep0rt"),  # a signed response-content-disposition
        "key": location.replace(quote(key), quote(key.replace(".csv", ".CSV"))),
    }
    for what, url in tampered.items():
        assert url != location, what
        status, _, body = fetch(url)
        assert status == 403, what
        assert PAYLOAD not in body, what
    assert fetch(location)[0] == 200  # the untouched URL still works


# --- a whole export run on S3 ---

def test_a_whole_export_run_stores_its_file_in_s3_and_downloads_through_a_presigned_url(
        eager, django_capture_on_commit_callbacks, s3_exports_storage, s3_server, alice, alice_client, bob):
    domain = ensure_demo_domain(slug=f"s3-{uuid.uuid4().hex[:8]}", members=[alice])
    add_demo_rows(domain, 50)
    definition = domain.definitions.get(name="Visits (short)")

    # start_export queues the task in transaction.on_commit, which a django_db test never reaches
    # by itself; run the callbacks, and with `eager` the task runs here and now.
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        run, created = services.start_export(alice, definition, format="csv")
    assert created and callbacks  # the message is sent only on commit

    run.refresh_from_db()
    assert run.status == ExportRun.Status.SUCCEEDED, run.error
    assert run.rows == 50
    assert run.file_key.startswith(f"exports/{domain.slug}/") and run.file_key.endswith(".csv")

    head = s3_server.client().head_object(Bucket=s3_server.bucket, Key=run.file_key)
    assert head["ContentLength"] == run.bytes > 0

    response = alice_client.get(reverse("exports:download", args=[run.pk]))
    location = assert_presigned_redirect(response, s3_server, run.file_key)
    status, headers, body = fetch(location)
    assert status == 200
    assert body == stored_object(s3_server, run.file_key)
    assert headers["Content-Disposition"] == content_disposition(run.filename)

    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    columns = get_source(definition.source).columns_for(definition.columns)
    labels = [column.heading(domain.time_zone) for column in columns]  # "Received on (IST)"
    assert rows[0] == labels
    assert len(rows) == 1 + 50

    # The soil page of the run's download answers the same way.
    download = DownloadBase.get(run.download_id)
    assert download.is_owner(alice) and not download.is_owner(bob)
    assert_presigned_redirect(alice_client.get(file_url(run.download_id)), s3_server, run.file_key)
