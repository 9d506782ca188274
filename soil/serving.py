"""Serving a download's bytes over HTTP, wherever they live: a local file, bytes, a storage key.

Records (soil.downloads) say where the bytes are; these functions only answer the request, so any
app can serve a file it keeps itself the way soil serves its own.
"""
import os

from django.core.files.storage import storages
from django.http import Http404, HttpResponseRedirect

from . import http
from .conf import soil_conf


def serve_payload(payload, filename, mimetype):
    """Bytes held in memory (a cached download), in a plain HttpResponse; 404 once they are gone."""
    if payload is None:
        raise Http404("This download has expired.")
    return http.bytes_response(payload, filename, mimetype)


def serve_local_file(path, filename, mimetype):
    """A file on a local path, read in blocks, never whole; 404 if it is gone."""
    try:
        fileobj = open(path, "rb")  # noqa: SIM115 (FileResponse closes it)
    except (OSError, TypeError):
        raise Http404("This file is gone.") from None
    return http.file_response(fileobj, filename, mimetype, size=os.fstat(fileobj.fileno()).st_size)


def serve_storage_key(key, filename, mimetype, storage_alias=None):
    """A key of a Django storage: a redirect to a short-lived signed URL where the storage makes
    them (S3), else the file streamed through this process; 404 if it is gone."""
    storage = storages[storage_alias or soil_conf.STORAGE]
    if not key or not storage.exists(key):
        raise Http404("This file is gone.")
    signed_url = presigned_url(storage, key, filename, mimetype)
    if signed_url:
        return HttpResponseRedirect(signed_url)
    return http.file_response(storage.open(key, "rb"), filename, mimetype, size=storage.size(key))


def presigned_url(storage, key, filename, mimetype):
    """A short-lived signed URL for storages that make them (django-storages' S3), else None."""
    try:
        from storages.backends.s3 import S3Storage
    except ImportError:  # django-storages not installed: only local storages then
        return None
    if not isinstance(storage, S3Storage):
        return None
    return storage.url(
        key,
        parameters={
            "ResponseContentDisposition": http.content_disposition(filename),
            "ResponseContentType": mimetype,
        },
        expire=soil_conf.PRESIGNED_URL_EXPIRY,
    )
