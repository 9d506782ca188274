"""Safe HTTP headers and responses for downloads: bytes in memory whole, files streamed, and one
byte range of either (206 Partial Content) for a download that resumes."""
import re
import unicodedata
from urllib.parse import quote

from django.http import FileResponse, HttpResponse

CHUNK_SIZE = 64 * 1024
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_FILENAME_IN_HEADER = re.compile(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", re.IGNORECASE)


def clean_filename(name):
    """Drop control characters (CR/LF included) and path separators from a file name."""
    name = _CONTROL_CHARS.sub("", str(name or ""))
    name = name.replace("/", "_").replace("\\", "_").strip()
    return name or "download"


def filename_from_disposition(value):
    """Accept either a bare file name or a whole Content-Disposition value."""
    if value and re.match(r"\s*(attachment|inline)\b", value, re.IGNORECASE):
        match = _FILENAME_IN_HEADER.search(value)
        return match.group(1) if match else None
    return value


def content_disposition(filename, as_attachment=True):
    """A Content-Disposition value that cannot break the header (RFC 6266 for non-ASCII)."""
    filename = clean_filename(filename)
    kind = "attachment" if as_attachment else "inline"
    if filename.isascii():
        escaped = filename.replace("\\", "\\\\").replace('"', '\\"')
        return f'{kind}; filename="{escaped}"'
    fallback = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode("ascii")
    fallback = clean_filename(fallback.replace('"', "")) if fallback.strip(" .") else "download"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _attach_headers(response, filename, mimetype, size=None):
    response["Content-Disposition"] = content_disposition(filename)
    response["Content-Type"] = mimetype
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    if size is not None:
        response["Content-Length"] = str(size)
    return response


def bytes_response(payload, filename, mimetype):
    """A plain HttpResponse for bytes already in memory: streaming them would save nothing."""
    response = _attach_headers(HttpResponse(payload), filename, mimetype, size=len(payload))
    response["Accept-Ranges"] = "bytes"
    response.soil_range_body = (bytes(payload), None, len(payload))  # see ranged_response
    return response


def file_response(fileobj, filename, mimetype, size=None):
    """Stream an open binary file; it is read in blocks, never whole. A seekable file of known size
    also answers Range requests (ranged_response, applied by soil.middleware.RangeRequestsMiddleware)."""
    response = FileResponse(fileobj)
    response.block_size = CHUNK_SIZE
    _attach_headers(response, filename, mimetype, size=size)
    if size is not None and _seekable(fileobj):
        response["Accept-Ranges"] = "bytes"
        response.soil_range_body = (None, fileobj, size)
    return response


# --- Range requests (RFC 9110 §14): a dropped download resumes where it stopped

_BYTE_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


class RangeNotSatisfiable(Exception):
    """The one range asked for lies wholly past the end of the file (416)."""


def requested_range(header, size):
    """The (first, last) byte, both included, of a single `bytes=` range within `size` bytes; None to
    answer with the whole file (no header, a malformed one, several ranges: RFC 9110 lets a server
    ignore those). RangeNotSatisfiable when the range starts past the end, or asks for no bytes."""
    match = _BYTE_RANGE.match(header or "")
    if not match or not any(match.groups()):
        return None
    first, last = match.groups()
    if not first:  # "bytes=-500": the last 500 bytes
        length = int(last)
        if length == 0 or size == 0:
            raise RangeNotSatisfiable()
        return max(size - length, 0), size - 1
    first = int(first)
    if last and int(last) < first:
        return None  # "bytes=9-3" is no valid range: ignored, the whole file
    if first >= size:
        raise RangeNotSatisfiable()
    last = min(int(last), size - 1) if last else size - 1
    return first, last


class _FileSlice:
    """`length` bytes of an open, seekable binary file from `start`: what a 206 streams."""

    def __init__(self, fileobj, start, length):
        fileobj.seek(start)
        self.fileobj, self.left = fileobj, length

    def read(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = self.fileobj.read(size) if size else b""
        self.left -= len(data)
        return data

    def close(self):
        self.fileobj.close()


def _seekable(fileobj):
    try:
        return bool(fileobj.seekable())
    except (AttributeError, ValueError, OSError):
        return hasattr(fileobj, "seek")


def ranged_response(request, response):
    """`response` narrowed to the byte range `request` asks for: 206 Partial Content with the bytes
    of one range, 416 when the range cannot be met, else `response` unchanged.

    Applies only to the file responses of this module (`bytes_response`, `file_response`) answering
    200 to a GET or HEAD; an `If-Range` is answered with the whole file, as these responses carry
    no validator to compare it with.
    """
    body = getattr(response, "soil_range_body", None)
    if (body is None or response.status_code != 200 or request.method not in ("GET", "HEAD")
            or "If-Range" in request.headers):
        return response
    payload, fileobj, size = body
    try:
        span = requested_range(request.headers.get("Range"), size)
    except RangeNotSatisfiable:
        if fileobj is not None:
            fileobj.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        refused["Cache-Control"] = "private, no-store"
        return refused
    if span is None:
        return response
    first, last = span
    length = last - first + 1
    if payload is not None:
        partial = HttpResponse(payload[first:last + 1], status=206)
    else:
        partial = FileResponse(_FileSlice(fileobj, first, length), status=206)
        partial.block_size = CHUNK_SIZE
    for header in ("Content-Disposition", "Content-Type", "Cache-Control", "X-Content-Type-Options",
                   "Accept-Ranges"):
        partial[header] = response[header]
    partial["Content-Length"] = str(length)
    partial["Content-Range"] = f"bytes {first}-{last}/{size}"
    return partial
