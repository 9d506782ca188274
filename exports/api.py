"""A JSON API for scripts: start an export, read its status, fetch its file.

Scripts authenticate with HTTP Basic (`curl -u user:password`); a logged-in browser session works too.
"""
import base64
import binascii
import json
import logging
from functools import wraps

from django.contrib.auth import authenticate
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from soil.exceptions import caused_by_unavailable_redis

from . import reaper, selectors, services
from .progress import run_status as live_status
from .forms import StartExportForm
from .models import FORMAT_CHOICES
from .views import file_response_for_run

log = logging.getLogger(__name__)

_FORMATS = ", ".join(f'"{key}"' for key in sorted(key for key, _ in FORMAT_CHOICES))
_DATE_MESSAGE = "{field} must be a date written YYYY-MM-DD, or null."
# The JSON types each start parameter may have, and the message for any other; the form checks values.
START_PARAMETER_TYPES = {
    "format": (str, f"{{field}} must be one of {_FORMATS}."),
    "date_from": ((str, type(None)), _DATE_MESSAGE),
    "date_to": ((str, type(None)), _DATE_MESSAGE),
    "notify_by_email": (bool, "{field} must be true or false."),
}


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
        except (BadRequest, SuspiciousOperation):
            raise  # Django answers these with a 400 and logs them as security events.
        except Exception as exc:
            if caused_by_unavailable_redis(exc):
                raise  # project.middleware answers 503 "try again in a minute"
            # The text of an unexpected error can name servers and paths: it goes to the log only.
            log.exception("API request %s %s failed", request.method, request.path)
            return JsonResponse(
                {"error": "Something went wrong on our side; it has been logged. Try again later."}, status=500)

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


class BodyRefused(ValueError):
    """The request body cannot be read as a JSON object; the message says why, in words."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


def json_object(request):
    """The body as a dict (an empty body is {}), or BodyRefused."""
    try:
        body = request.body
    except RequestDataTooBig:
        raise BodyRefused("The body is too large.", status=413) from None
    try:
        payload = json.loads(body.decode("utf-8-sig")) if body else {}
    except UnicodeDecodeError:
        raise BodyRefused("The body must be JSON encoded in UTF-8.") from None
    except RecursionError:
        raise BodyRefused("The JSON is nested too deeply.") from None
    except ValueError:  # JSONDecodeError, and integers too long to convert
        raise BodyRefused("The body must be JSON.") from None
    if not isinstance(payload, dict):
        raise BodyRefused("The body must be a JSON object.")
    return payload


def type_errors(payload, types):
    """Errors, shaped like a form's get_json_data(), for each value in `payload` of the wrong JSON type."""
    return {
        field: [{"message": message.format(field=field), "code": "invalid_type"}]
        for field, (allowed, message) in types.items()
        if field in payload and not isinstance(payload[field], allowed)
    }


@require_POST
@api_view
def start(request, slug, definition_id):
    definition = selectors.definition_for(request.user, slug, definition_id)
    try:
        payload = json_object(request)
    except BodyRefused as refusal:
        return JsonResponse({"error": str(refusal)}, status=refusal.status)
    if wrong_types := type_errors(payload, START_PARAMETER_TYPES):
        return JsonResponse({"error": "Invalid parameters.", "fields": wrong_types}, status=400)
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
