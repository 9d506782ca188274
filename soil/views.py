"""Download pages: the polling page, the file, an HTML partial, JSON status and heartbeat."""
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse

from .downloads import DownloadBase
from .heartbeat import is_alive, last_heartbeat, seconds_since_heartbeat
from .status import download_status


def _missing(request, download_id):
    return render(request, "soil/download_missing.html", {"download_id": download_id}, status=404)


def _forbidden(request, download_id):
    return render(request, "soil/download_forbidden.html", {"download_id": download_id}, status=403)


def _owned_download(request, download_id):
    """(download, error_response): the download if it exists and the user may see it."""
    download = DownloadBase.get(download_id)
    if download is None:
        return None, _missing(request, download_id)
    if not download.is_owner(request.user):
        return None, _forbidden(request, download_id)
    return download, None


@login_required
def retrieve_download(request, download_id, template="soil/retrieve_download.html", extra_context=None):
    """The page that polls until the file is ready; with ?get_file, the file itself."""
    download, error = _owned_download(request, download_id)
    if error:
        return error
    if "get_file" in request.GET:
        if not download_status(download_id, download)["download_url"]:
            return _missing(request, download_id)
        return download.toHttpResponse()
    context = {
        "download_id": download_id,
        "download": download,
        "status": download_status(download_id, download),
        "status_url": reverse("download_status", args=[download_id]),
        "poll_url": reverse("ajax_job_poll", args=[download_id]),
        **(extra_context or {}),
    }
    return render(request, template, context)


@login_required
def ajax_job_poll(request, download_id, template="soil/partials/job_status.html"):
    """The status as an HTML fragment, for pages that swap it in."""
    download, error = _owned_download(request, download_id)
    if error:
        return error
    return render(request, template, {"download_id": download_id, "status": download_status(download_id, download)})


@login_required
def status_json(request, download_id):
    """The status as JSON, in one shape for every state."""
    download = DownloadBase.get(download_id)
    if download is None:
        return JsonResponse({"error": "This download has expired or never existed."}, status=404)
    if not download.is_owner(request.user):
        return JsonResponse({"error": "This download belongs to someone else."}, status=403)
    return JsonResponse(download_status(download_id, download))


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
