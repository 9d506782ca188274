"""Download pages: the polling page, the file, an HTML partial, JSON status and heartbeat."""
import hashlib
import json

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import parse_etags
from django.utils.translation import gettext

from .access import can_access
from .heartbeat import is_alive, last_heartbeat, seconds_since_heartbeat
from .poll_tokens import is_listed_owner, poll_token_user_id, status_url
from .status import download_state, download_status, read_download, status_of


def _missing(request, download_id):
    return render(request, "soil/download_missing.html", {"download_id": download_id}, status=404)


def _forbidden(request, download_id):
    return render(request, "soil/download_forbidden.html", {"download_id": download_id}, status=403)


def _visible_download(request, download_id):
    """(download, last heartbeat, error_response): the download if it exists and the user may see it."""
    download, last_beat, _ = read_download(download_id)
    if download is None:
        return None, None, _missing(request, download_id)
    if not can_access(request.user, download):
        return None, None, _forbidden(request, download_id)
    return download, last_beat, None


@login_required
def retrieve_download(request, download_id, template="soil/retrieve_download.html", extra_context=None):
    """The page that polls until the file is ready; with ?get_file, the file itself."""
    download, last_beat, error = _visible_download(request, download_id)
    if error:
        return error
    status = download_status(download_id, download, last_beat)
    if "get_file" in request.GET:
        if not status["download_url"]:
            return _missing(request, download_id)
        return download.toHttpResponse()
    context = {
        "download_id": download_id,
        "download": download,
        "status": status,
        "status_url": status_url(request.user, download),
        "poll_url": reverse("ajax_job_poll", args=[download_id]),
        **(extra_context or {}),
    }
    return render(request, template, context)


@login_required
def ajax_job_poll(request, download_id, template="soil/partials/job_status.html"):
    """The status as an HTML fragment, for pages that swap it in."""
    download, last_beat, error = _visible_download(request, download_id)
    if error:
        return error
    status = download_status(download_id, download, last_beat)
    return render(request, template, {"download_id": download_id, "status": status})


class NeedsSession(Exception):
    """The poll token does not settle who may see the download: the session must."""


def _json_refusal(request, download, token_user_id=None, session=True):
    if download is None:
        return JsonResponse({"error": gettext("This download has expired or never existed.")}, status=404)
    if token_user_id is not None and is_listed_owner(token_user_id, download):
        return None  # checked when the token was made (soil.poll_tokens); no session, no user row
    if not session:
        raise NeedsSession
    if not can_access(request.user, download):
        return JsonResponse({"error": gettext("This download belongs to someone else.")}, status=403)
    return None


def status_json(request, download_id):
    """The status as JSON, in one shape for every state; 304 when it has not changed since the ETag.

    Login is required, unless the URL carries a valid poll token (`?t=`, soil.poll_tokens) for this
    download, which the download's page hands its poller: such a poll loads no session and no user
    (and soil.middleware.PollTokenMiddleware answers it before the rest of the middleware).
    While the task runs, the record and heartbeat this process read a moment ago are reused; once
    it no longer runs, they are read afresh (its file and final record may be new).
    """
    token_user_id = poll_token_user_id(request.GET.get("t"), download_id)
    if token_user_id is None and not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    return status_response(request, download_id, token_user_id)


def token_status_response(request, download_id, token_user_id):
    """status_json's answer for a poll whose token names `token_user_id`, without the session or the
    user; None when the token does not settle it (the user is no longer a listed owner)."""
    try:
        return status_response(request, download_id, token_user_id, session=False)
    except NeedsSession:
        return None


def status_response(request, download_id, token_user_id=None, session=True):
    read = read_download(download_id, reuse=True)
    refusal = _json_refusal(request, read.download, token_user_id, session)
    if refusal:
        return refusal
    state = download_state(download_id, read.download, read.last_beat)
    if read.reused and not state.running:
        read = read_download(download_id)
        refusal = _json_refusal(request, read.download, token_user_id, session)
        if refusal:
            return refusal
        state = download_state(download_id, read.download, read.last_beat)
    body = json.dumps(status_of(state)).encode()
    etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
    if etag in parse_etags(request.META.get("HTTP_IF_NONE_MATCH", "")):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(body, content_type="application/json")
    response["ETag"] = etag
    # The browser keeps the answer but asks again each time (and gets a 304 while nothing moves).
    # Set as patch_cache_control(private=True, no_cache=True) sets it on a new response, without parsing.
    response["Cache-Control"] = "private, no-cache"
    return response


@login_required
def heartbeat_status(request):
    """Whether beat and a worker ran the heartbeat task recently; 503 if not."""
    alive = is_alive()
    age = seconds_since_heartbeat()
    return JsonResponse(
        {
            "is_alive": alive,
            "last_heartbeat": last_heartbeat(),
            "seconds_since_heartbeat": None if age is None else round(age, 1),
        },
        status=200 if alive else 503,
    )
