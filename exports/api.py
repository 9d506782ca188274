"""A JSON API for scripts: start an export, read its status, fetch its file.

Scripts authenticate with HTTP Basic (`curl -u user:password`); a logged-in browser session works too.
"""
import base64
import binascii
import json
from functools import wraps

from django.contrib.auth import authenticate
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from . import reaper, selectors, services
from .progress import run_status as live_status
from .forms import StartExportForm
from .views import file_response_for_run


def _basic_auth_user(request):
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.startswith("Basic "):
        return None
    try:
        username, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return authenticate(request, username=username, password=password)


def api_view(view):
    """JSON errors instead of redirects or HTML; Basic auth or the session; CSRF for sessions only."""
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        basic_user = _basic_auth_user(request)
        if basic_user is not None:
            request.user = basic_user
        elif "HTTP_AUTHORIZATION" in request.META:
            return JsonResponse({"error": "Wrong username or password."}, status=401)
        elif request.method == "POST" and not _session_csrf_ok(request):
            return JsonResponse({"error": "CSRF check failed; use HTTP Basic auth from scripts."}, status=403)
        if not request.user.is_authenticated:
            response = JsonResponse({"error": "Authentication required."}, status=401)
            response["WWW-Authenticate"] = 'Basic realm="exports"'
            return response
        try:
            return view(request, *args, **kwargs)
        except Http404:
            return JsonResponse({"error": "Not found."}, status=404)
        except PermissionDenied as exc:
            return JsonResponse({"error": str(exc) or "Forbidden."}, status=403)

    return csrf_exempt(wrapper)


def _session_csrf_ok(request):
    from django.middleware.csrf import CsrfViewMiddleware

    return CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {}) is None


def run_json(run):
    return {
        "id": str(run.pk),
        "domain": run.domain.slug,
        "definition": run.definition_id,
        "parameters": run.parameters,
        "status": run.status,
        "rows": run.rows,
        "bytes": run.bytes,
        "error": run.error,
        "created_at": run.created_at.isoformat(),
        "expires_at": run.expires_at.isoformat() if run.expires_at else None,
        "progress": live_status(run) if run.is_active else None,
        "status_url": reverse("exports:api_run", args=[run.pk]),
        "file_url": reverse("exports:api_file", args=[run.pk]),
    }


@require_POST
@api_view
def start(request, slug, definition_id):
    definition = selectors.definition_for(request.user, slug, definition_id)
    try:
        payload = json.loads(request.body or b"{}")
    except json.JSONDecodeError:
        return JsonResponse({"error": "The body must be JSON."}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse({"error": "The body must be a JSON object."}, status=400)
    form = StartExportForm({"format": definition.format, **payload})
    if not form.is_valid():
        return JsonResponse({"error": "Invalid parameters.", "fields": form.errors.get_json_data()}, status=400)
    try:
        run, created = services.start_export(request.user, definition, **form.cleaned_data)
    except services.ExportRefused as refusal:
        return JsonResponse({"error": str(refusal)}, status=400)
    return JsonResponse(run_json(run), status=202 if created else 200)


@require_GET
@api_view
def run_status(request, run_id):
    return JsonResponse(run_json(reaper.check_run(selectors.run_for(request.user, run_id))))


@require_GET
@api_view
def run_file(request, run_id):
    run = selectors.run_for(request.user, run_id)
    if run.is_expired:
        return JsonResponse({"error": "This export has expired; start it again."}, status=410)
    if run.status != run.Status.SUCCEEDED:
        return JsonResponse({"error": f"The export is {run.status}, not ready.", "status": run.status}, status=409)
    return file_response_for_run(request, run)
