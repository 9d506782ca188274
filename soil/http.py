"""Safe HTTP headers and responses for downloads: bytes in memory whole, files streamed."""
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
    return _attach_headers(HttpResponse(payload), filename, mimetype, size=len(payload))


def file_response(fileobj, filename, mimetype, size=None):
    """Stream an open binary file; it is read in blocks, never whole."""
    response = FileResponse(fileobj)
    response.block_size = CHUNK_SIZE
    return _attach_headers(response, filename, mimetype, size=size)
