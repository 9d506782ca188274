"""A JSON API for scripts: start an export, read its status, fetch its file.

Scripts send an API token (`Authorization: Bearer <token>`, made on the "API tokens" page); a
logged-in browser session works too. HTTP Basic with a password only where API_BASIC_AUTH is on.
"""
import base64
import binascii
import json
import logging
from functools import wraps

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt

from exports.models import FORMAT_CHOICES
from exports.runs import reaper, selectors, services
from exports.runs.status import run_status as live_status
from exports.validators import ISO_DATE, ISO_DATE_MESSAGE
from exports.web.forms import StartExportForm
from exports.web.views import file_response_for_run
from project.accounts import throttling, tokens
from project.middleware import answers_json
from project.text_input import LONE_SURROGATE_MESSAGE, holds_lone_surrogate
from soil.exceptions import caused_by_unavailable_redis

log = logging.getLogger(__name__)

_FORMATS = ", ".join(f'"{key}"' for key in sorted(key for key, _ in FORMAT_CHOICES))
# The JSON types each start parameter may have, and the message for any other; the form checks values.
START_PARAMETER_TYPES = {
    "format": (str, f"{{field}} must be one of {_FORMATS}."),
    "date_from": ((str, type(None)), ISO_DATE_MESSAGE),
    "date_to": ((str, type(None)), ISO_DATE_MESSAGE),
    "notify_by_email": (bool, "{field} must be true or false."),
    "columns": ((list, type(None)), "{field} must be a list of column keys, or null."),
    "filters": ((dict, type(None)), "{field} must be an object of filter keys and values, or null."),
}
# Checked by the services (the source's columns and filter fields), not by the form.
CHOICE_PARAMETERS = ("columns", "filters")


class AuthRefused(Exception):
    """The request carried credentials that do not sign anyone in; the message says why."""


def _credentials_user(request):
    """The user the Authorization header signs in, None without one; AuthRefused for bad credentials."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        user = tokens.user_for_token(value.strip())
        if user is None:
            raise AuthRefused(gettext("This token is not valid; it may have been revoked."))
        return user
    if scheme == "basic":
        if not settings.API_BASIC_AUTH:
            raise AuthRefused(gettext("Passwords are not accepted here; send an API token as 'Authorization: Bearer <token>'."))
        try:
            username, _, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise AuthRefused(gettext("Wrong username or password.")) from None
        user = authenticate(request, username=username, password=password)
        if user is None:
            raise AuthRefused(gettext("Wrong username or password."))
        return user
    raise AuthRefused(gettext("Send an API token as 'Authorization: Bearer <token>'."))


def _authenticate(request):
    """Sign the request in from its Authorization header, if it has one; failures are throttled per client
    address. Returns (whether the header signed it in, a 401 response or None)."""
    if not request.META.get("HTTP_AUTHORIZATION"):
        return False, None
    address = throttling.client_address(request)
    rate = settings.API_AUTH_FAILURE_RATE_PER_ADDRESS
    throttling.check(request, "api-auth-address", address, rate)
    try:
        request.user = _credentials_user(request)
    except AuthRefused as refusal:
        throttling.count(request, "api-auth-address", address, rate)
        response = JsonResponse({"error": str(refusal)}, status=401)
        response["WWW-Authenticate"] = 'Bearer realm="exports"'
        return False, response
    return True, None


def _has_body(request):
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return True


def _is_json(request):
    content_type = request.content_type or ""
    return content_type == "application/json" or content_type.endswith("+json")


def api_view(*methods):
    """JSON everywhere: 405 for other methods, 401 without credentials, 415 for a body that is not JSON,
    429 when throttled, 404/403/500 in JSON too. A token (or, if allowed, Basic auth) or the session;
    CSRF for sessions only."""
    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = JsonResponse({"error": gettext("Use %(methods)s here.") % {"methods": " or ".join(methods)}}, status=405)
                response["Allow"] = ", ".join(methods)
                return response
            by_header, refused = _authenticate(request)
            if refused is not None:
                return refused
            if not request.user.is_authenticated:
                response = JsonResponse(
                    {"error": gettext("Authentication required: send an API token as 'Authorization: Bearer <token>'.")},
                    status=401)
                response["WWW-Authenticate"] = 'Bearer realm="exports"'
                return response
            if request.method == "POST" and not by_header and not _session_csrf_ok(request):
                return JsonResponse({"error": "CSRF check failed; scripts send an API token instead."}, status=403)
            if request.method == "POST" and _has_body(request) and not _is_json(request):
                return JsonResponse({"error": gettext("Send the body as JSON, with Content-Type: application/json.")},
                                    status=415)
            throttling.hit(request, "api-user", str(request.user.pk), settings.API_RATE_PER_USER)
            try:
                return view(request, *args, **kwargs)
            except Http404:
                return JsonResponse({"error": gettext("Not found.")}, status=404)
            except PermissionDenied as exc:
                return JsonResponse({"error": str(exc) or "Forbidden."}, status=403)
            except (BadRequest, SuspiciousOperation, throttling.Throttled):
                raise  # Django answers these with a 400 and logs them; Throttled becomes a 429
            except Exception as exc:
                if caused_by_unavailable_redis(exc):
                    raise  # project.middleware answers 503 "try again in a minute"
                # The text of an unexpected error can name servers and paths: it goes to the log only.
                log.exception("API request %s %s failed", request.method, request.path)
                return JsonResponse(
                    {"error": gettext("Something went wrong on our side; it has been logged. Try again later.")}, status=500)

        return answers_json(csrf_exempt(wrapper))

    return decorate


@csrf_exempt
def not_found(request, *args, **kwargs):
    """Every other address under the API prefix: a JSON 404, not an HTML page."""
    return JsonResponse({"error": gettext("Not found.")}, status=404)


def _session_csrf_ok(request):
    from django.middleware.csrf import CsrfViewMiddleware

    return CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {}) is None


def run_json(run):
    return {
        "id": str(run.pk),
        "domain": run.domain.slug,
        "definition": run.definition_id,
        "parameters": run.parameters,
        "status": run.display_status.value,
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
        raise BodyRefused(gettext("The body is too large."), status=413) from None
    try:
        payload = json.loads(body.decode("utf-8-sig")) if body else {}
    except UnicodeDecodeError:
        raise BodyRefused(gettext("The body must be JSON encoded in UTF-8.")) from None
    except RecursionError:
        raise BodyRefused(gettext("The JSON is nested too deeply.")) from None
    except ValueError:  # JSONDecodeError, and integers too long to convert
        raise BodyRefused(gettext("The body must be JSON.")) from None
    if not isinstance(payload, dict):
        raise BodyRefused(gettext("The body must be a JSON object."))
    if holds_lone_surrogate(payload):  # "\ud800" is valid JSON, but no database or encoder takes it
        raise BodyRefused(str(LONE_SURROGATE_MESSAGE))
    return payload


def type_errors(payload, types):
    """Errors, shaped like a form's get_json_data(), for each value in `payload` of the wrong JSON type,
    each date not written YYYY-MM-DD, and each key that is not a parameter."""
    errors = {
        field: [{"message": message.format(field=field), "code": "invalid_type"}]
        for field, (allowed, message) in types.items()
        if field in payload and not isinstance(payload[field], allowed)
    }
    for field in ("date_from", "date_to"):
        value = payload.get(field)
        if field not in errors and isinstance(value, str) and not ISO_DATE.fullmatch(value):
            errors[field] = [{"message": ISO_DATE_MESSAGE.format(field=field), "code": "invalid_date"}]
    for field in payload.keys() - types.keys():
        errors[str(field)[:50]] = [{"message": gettext("Unknown parameter; the parameters are %(names)s.") % {"names": ", ".join(types)},
                                    "code": "unknown_parameter"}]
    return errors


@api_view("POST")
def start(request, slug, definition_id):
    definition = selectors.definition_for(request.user, slug, definition_id)
    try:
        payload = json_object(request)
    except BodyRefused as refusal:
        return JsonResponse({"error": str(refusal)}, status=refusal.status)
    if wrong_types := type_errors(payload, START_PARAMETER_TYPES):
        return JsonResponse({"error": gettext("Invalid parameters."), "fields": wrong_types}, status=400)
    choices = {key: payload.pop(key) for key in CHOICE_PARAMETERS if key in payload}
    form = StartExportForm({"format": definition.format, **payload})
    if not form.is_valid():
        return JsonResponse({"error": gettext("Invalid parameters."), "fields": form.errors.get_json_data()}, status=400)
    try:
        run, created = services.start_export(request.user, definition, **form.cleaned_data, **choices)
    except services.ChoiceRefused as refusal:
        return JsonResponse({"error": gettext("Invalid parameters."), "fields": {
            refusal.field: [{"message": str(refusal), "code": "invalid_choice"}]}}, status=400)
    except services.ExportRefused as refusal:
        return JsonResponse({"error": str(refusal)}, status=400)
    return JsonResponse(run_json(run), status=202 if created else 200)


@api_view("GET")
def run_status(request, run_id):
    return JsonResponse(run_json(reaper.check_run(selectors.run_for(request.user, run_id))))


@api_view("GET")
def run_file(request, run_id):
    run = selectors.run_for(request.user, run_id)
    status = run.display_status
    if status == run.Status.EXPIRED:
        return JsonResponse({"error": gettext("This export has expired; start it again.")}, status=410)
    if status != run.Status.SUCCEEDED:
        return JsonResponse({"error": gettext("The export is %(status)s, not ready.") % {"status": status}, "status": status}, status=409)
    return file_response_for_run(request, run)
