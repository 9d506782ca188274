"""The JSON API at /api/v1/, on django-ninja: every action of the export pages, for scripts and BI tools.

Thin, like the pages: each view calls the same selectors and services, so permissions, limits and the
words of refusals are the pages'. Who may call is project.accounts.api_auth (a token, a password where
allowed, or the browser session with CSRF); the schema is served at /api/v1/openapi.json and its page,
for logged-in users, at /api/v1/docs. Every answer, errors included, is JSON: {"error": words} and, for
parameters, "fields" by parameter.

The addresses of the first API (/exports/api/...) answer as before through `legacy_api`, deprecated.
"""
import datetime
import functools
import json
import logging
import uuid

from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from ninja import Field, NinjaAPI, Router, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as SchemaError
from ninja.openapi.views import openapi_view
from ninja.pagination import PageNumberPagination, paginate
from ninja.parser import Parser

from exports.runs import reaper, selectors, services
from exports.runs.status import run_status
from exports.saved import services as saved_exports
from exports.web.api_schemas import (
    API,
    DefinitionOut,
    DomainOut,
    ErrorOut,
    RebuildOut,
    RunOut,
    SavedExportOut,
    StartExportIn,
    StatusOut,
)
from exports.web.forms import RunFilterForm, StartExportForm
from exports.web.views import MY_EXPORTS_PER_PAGE, file_response_for_run, stored_file_response
from project.accounts import throttling
from project.accounts.api_auth import CredentialsRefused, api_auth, unauthenticated_message
from project.middleware import answers_json
from project.text_input import LONE_SURROGATE_MESSAGE, holds_lone_surrogate
from soil.exceptions import caused_by_unavailable_redis

log = logging.getLogger(__name__)

# The errors any view may answer (401, 403, 404, 429 and 503 come to every one); their shape is one.
ERRORS = {code: ErrorOut for code in (400, 401, 403, 404, 405, 409, 410, 413, 415, 429, 500, 503)}
# A file: its bytes in the writer's type (or, on S3, a redirect to a short-lived link).
FILE_RESPONSES = {"responses": {
    200: {"description": "The file.", "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
    302: {"description": "On S3: a short-lived link to the file."}}}


class BodyRefused(ValueError):
    """The request body cannot be read as a JSON object; the message says why, in words (a 400)."""


def sends_other_than_json(request):
    """Whether the request has a body in another type than JSON (a form post, plain text)."""
    try:
        has_body = int(request.META.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        has_body = True
    content_type = request.content_type or ""
    return has_body and content_type != "application/json" and not content_type.endswith("+json")


class JsonObjectParser(Parser):
    """Bodies are JSON objects in UTF-8: anything else is refused in words."""

    def parse_body(self, request):
        try:
            payload = json.loads(request.body.decode("utf-8-sig"))
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


def error(message, http_status, **extra):
    return JsonResponse({"error": str(message), **extra}, status=http_status)


def invalid(fields):
    return error(gettext("Invalid parameters."), 400, fields=fields)


def _schema_errors(exc):
    """ninja's validation errors, shaped like a form's get_json_data(), by parameter name."""
    fields = {}
    for problem in exc.errors:
        location = [str(part) for part in problem.get("loc", ()) if part not in ("body", "payload", "query", "path")]
        name = (location[0] if location else "body")[:50]
        code = problem.get("type", "invalid")
        if code == "extra_forbidden":
            message = gettext("Unknown parameter; the parameters are %(names)s.") % {
                "names": ", ".join(StartExportIn.model_fields)}
            code = "unknown_parameter"
        else:
            message = problem.get("msg", "").replace("{field}", name)
        fields.setdefault(name, []).append({"message": message, "code": code})
    return fields


def _unauthenticated(request, exc):
    message = str(exc) if isinstance(exc, CredentialsRefused) else unauthenticated_message(request)
    response = error(message, 401)
    response["WWW-Authenticate"] = 'Bearer realm="exports"'
    return response


def _http_error(request, exc):
    if isinstance(exc.__cause__, BodyRefused):  # ninja wraps what the parser refused
        return error(exc.__cause__, 400)
    if exc.status_code == 403 and str(exc) == "CSRF check Failed":
        return error("CSRF check failed; scripts send an API token instead.", 403)
    return error(exc, exc.status_code)


def _unexpected(request, exc):
    if isinstance(exc, RequestDataTooBig):
        return error(gettext("The body is too large."), 413)
    if isinstance(exc, PermissionDenied):
        return error(str(exc) or "Forbidden.", 403)
    if isinstance(exc, (BadRequest, SuspiciousOperation, throttling.Throttled)) or caused_by_unavailable_redis(exc):
        raise exc  # Django answers 400; the project's middleware 429 (throttled) and 503 (Redis down)
    # The text of an unexpected error can name servers and paths: it goes to the log only.
    log.exception("API request %s %s failed", request.method, request.path)
    return error(gettext("Something went wrong on our side; it has been logged. Try again later."), 500)


def configure(api):
    """Every answer of `api` in JSON with words, errors included."""
    api.add_exception_handler(AuthenticationError, _unauthenticated)
    api.add_exception_handler(HttpError, _http_error)
    api.add_exception_handler(SchemaError, lambda request, exc: invalid(_schema_errors(exc)))
    api.add_exception_handler(Http404, lambda request, exc: error(gettext("Not found."), 404))
    api.add_exception_handler(Exception, _unexpected)
    return api


def json_urls(patterns):
    """`patterns` with each view marked as answering JSON (its 429 and 503 too), 405 in JSON, and a body
    of another type refused (415) before anything reads it as a form."""
    def wrap(view):
        @functools.wraps(view)
        def json_view(request, *args, **kwargs):
            if sends_other_than_json(request):
                return error(gettext("Send the body as JSON, with Content-Type: application/json."), 415)
            response = view(request, *args, **kwargs)
            if isinstance(response, HttpResponseNotAllowed):
                allowed = response["Allow"]
                response = error(gettext("Use %(methods)s here.") % {
                    "methods": " or ".join(allowed.split(", "))}, 405)
                response["Allow"] = allowed
            return response
        return answers_json(csrf_exempt(json_view))

    # No root page (ninja's "api-root", which it reverses for the schema's base path): a JSON 404 there.
    return [path(str(p.pattern), not_found if p.name == "api-root" else wrap(p.callback), name=p.name)
            for p in patterns if isinstance(p, URLPattern)]


@csrf_exempt
@answers_json
def not_found(request, *args, **kwargs):
    """Every other address under an API prefix: a JSON 404, not an HTML page."""
    return error(gettext("Not found."), 404)


# --- the views: each calls what its page calls ---

def start_run(request, slug, definition_id, payload):
    """Start an export of a definition: 202 with the new run, or 200 with the same export already under way."""
    definition = selectors.definition_for(request.user, slug, definition_id)
    payload = payload or StartExportIn()
    form = StartExportForm({"format": payload.format or definition.format, "date_from": payload.date_from,
                            "date_to": payload.date_to, "notify_by_email": payload.notify_by_email})
    if not form.is_valid():
        return invalid(form.errors.get_json_data())
    try:
        run, created = services.start_export(request.user, definition, **form.cleaned_data,
                                             columns=payload.columns, filters=payload.filters)
    except services.ChoiceRefused as refusal:
        return invalid({refusal.field: [{"message": str(refusal), "code": "invalid_choice"}]})
    except services.ExportRefused as refusal:
        return error(refusal, 400)
    return Status(202 if created else 200, run)


def read_run(request, run_id: uuid.UUID):
    return reaper.check_run(selectors.run_for(request.user, run_id))


def run_file(request, run_id: uuid.UUID):
    """The run's file once it succeeded; 409 before, 410 once it has expired."""
    run = selectors.run_for(request.user, run_id)
    status = run.display_status
    if status == run.Status.EXPIRED:
        return error(gettext("This export has expired; start it again."), 410)
    if status != run.Status.SUCCEEDED:
        return error(gettext("The export is %(status)s, not ready.") % {"status": status}, 409, status=status)
    return file_response_for_run(request, run)


class Pages(PageNumberPagination):
    """Pages of MY_EXPORTS_PER_PAGE runs (page_size up to 100); a page number past any database's offset is refused."""

    class Input(Schema):
        page: int = Field(1, ge=1, le=1_000_000)
        page_size: int | None = Field(None, ge=1, le=100)


class ExportsAPI(NinjaAPI):
    """Operations named for what they do (list_runs, start_export…), for client generators."""

    def get_openapi_operation_id(self, operation):
        return operation.view_func.__name__


def docs_for_people(view):
    """The interactive page for logged-in users only; the schema itself (no data in it) for any client."""
    return login_required(view) if getattr(view, "func", None) is openapi_view else view


api = configure(ExportsAPI(
    title="Exports API", version="1", urls_namespace=API, auth=api_auth(), parser=JsonObjectParser(),
    description=__doc__.split("\n\n")[0], docs_url="/docs", docs_decorator=docs_for_people,
))
runs = Router(tags=["runs"])
domains = Router(tags=["domains and definitions"])
saved = Router(tags=["saved exports"])


@domains.get("/domains", response={200: list[DomainOut], **ERRORS}, url_name="domains")
def list_domains(request):
    """The domains you are a member of."""
    return selectors.domains_for(request.user)


@domains.get("/domains/{slug:slug}/definitions", response={200: list[DefinitionOut], **ERRORS}, url_name="definitions")
def list_definitions(request, slug: str):
    """A domain's export definitions, with their columns and the fields an export may be filtered by."""
    return selectors.domain_for(request.user, slug).definitions.select_related("domain")


@domains.post("/domains/{slug:slug}/definitions/{int:definition_id}/runs", auth=api_auth(write=True),
              response={200: RunOut, 202: RunOut, **ERRORS}, url_name="start")
def start_export(request, slug: str, definition_id: int, payload: StartExportIn = None):
    """Start an export (202); the same export already queued or running is answered with that run (200)."""
    return start_run(request, slug, definition_id, payload)


@runs.get("/runs", response={200: list[RunOut], **ERRORS}, url_name="runs")
@paginate(Pages, page_size=MY_EXPORTS_PER_PAGE, max_page_size=100)
def list_runs(request, status: str = None, domain: str = None, created_from: datetime.date = None,
              created_to: datetime.date = None):
    """Your runs, newest first, as "My exports" lists them; filtered by status, domain (its slug) and the
    day they were created (UTC, both ends included)."""
    form = RunFilterForm({"status": status or "", "domain": domain or ""},
                         domains=list(selectors.domains_for(request.user)))
    if not form.is_valid():
        raise SchemaError([{"loc": (name,), "msg": e["message"], "type": e["code"]}
                           for name, errors in form.errors.get_json_data().items() for e in errors])
    return selectors.my_runs(request.user, status=form.cleaned_data["status"], domain=form.cleaned_data["domain"],
                             created_from=created_from, created_to=created_to)


@runs.get("/runs/{uuid:run_id}", response={200: RunOut, **ERRORS}, url_name="run")
def get_run(request, run_id: uuid.UUID):
    """One of your runs."""
    return read_run(request, run_id)


@runs.get("/runs/{uuid:run_id}/status", response={200: StatusOut, **ERRORS}, url_name="run_status")
def get_run_status(request, run_id: uuid.UUID):
    """The run's status: the JSON its page polls and its event stream sends."""
    # Scripts poll this: answered as built (soil.status.status_shape), without a second pass through the
    # schema, which the tests check it against.
    return JsonResponse(run_status(read_run(request, run_id)))


@runs.post("/runs/{uuid:run_id}/cancel", auth=api_auth(write=True), response={200: RunOut, **ERRORS},
           url_name="run_cancel")
def cancel_run(request, run_id: uuid.UUID):
    """Cancel a queued run at once, a running one within a few seconds; a finished run is left as it is."""
    return services.cancel_export(request.user, selectors.run_for(request.user, run_id))


@runs.post("/runs/{uuid:run_id}/notify", auth=api_auth(write=True), response={200: RunOut, **ERRORS},
           url_name="run_notify")
def notify_run(request, run_id: uuid.UUID):
    """Email me when it is ready (at once if it is): 400 when the account has no email address."""
    try:
        return services.request_email(request.user, selectors.run_for(request.user, run_id))
    except services.NoEmailAddress as refusal:
        return error(refusal, 400)


@runs.post("/runs/{uuid:run_id}/rerun", auth=api_auth(write=True), response={200: RunOut, 202: RunOut, **ERRORS},
           url_name="run_rerun")
def rerun_run(request, run_id: uuid.UUID):
    """Start the run's export again with the same parameters (202), or get the same export under way (200)."""
    try:
        run, created = services.rerun(request.user, selectors.run_for(request.user, run_id))
    except services.ExportRefused as refusal:
        return error(refusal, 400)
    return Status(202 if created else 200, run)


@runs.delete("/runs/{uuid:run_id}", auth=api_auth(write=True), response={204: None, **ERRORS}, url_name="run_delete")
def delete_run(request, run_id: uuid.UUID):
    """Delete a finished run and its file; a queued or running run is refused (cancel it first)."""
    try:
        services.delete_run(request.user, selectors.run_for(request.user, run_id))
    except services.DeleteRefused as refusal:
        return error(refusal, 409)
    return Status(204, None)


@runs.get("/runs/{uuid:run_id}/file", response=ERRORS, openapi_extra=FILE_RESPONSES, url_name="run_file")
def get_run_file(request, run_id: uuid.UUID):
    """The run's file: 409 while it is not ready, 410 once it has expired."""
    return run_file(request, run_id)


@saved.get("/domains/{slug:slug}/saved", response={200: list[SavedExportOut], **ERRORS}, url_name="saved_exports")
def list_saved_exports(request, slug: str):
    """A domain's saved exports: rebuilt every night, each with a stable link to its latest file."""
    return saved_exports.saved_exports_for(selectors.domain_for(request.user, slug)).select_related("definition__domain")


def _saved_export(request, slug, definition_id):
    found = saved_exports.saved_export_for(request.user, slug, definition_id)
    if found is None:
        raise Http404
    return found


@saved.get("/domains/{slug:slug}/saved/{int:definition_id}/file", response=ERRORS, openapi_extra=FILE_RESPONSES,
           url_name="saved_file")
def get_saved_file(request, slug: str, definition_id: int):
    """The stable link for BI tools: always the latest file of a saved export (404 until its first build)."""
    found = _saved_export(request, slug, definition_id)
    if not found.has_file:
        return error(gettext("%(name)s has not been built yet") % {"name": found.definition.name}, 404)
    saved_exports.record_download(found)
    return stored_file_response(found.file_key, found.filename, found.definition.format)


@saved.post("/domains/{slug:slug}/saved/{int:definition_id}/rebuild", auth=api_auth(write=True),
            response={200: RebuildOut, 202: RebuildOut, **ERRORS}, url_name="saved_rebuild")
def rebuild_saved_export(request, slug: str, definition_id: int):
    """Rebuild a saved export now (202), or follow the rebuild already under way (200)."""
    found = _saved_export(request, slug, definition_id)
    try:
        download, created = saved_exports.rebuild_now(request.user, found)
    except services.ExportRefused as refusal:
        return error(refusal, 400)
    message = (gettext("Rebuilding %(name)s") % {"name": found.definition.name} if created
               else gettext("A rebuild is already under way; here it is."))
    return Status(202 if created else 200, {"download_id": download.download_id, "created": created, "message": message,
                                       "status_url": reverse("download_status", args=[download.download_id])})


api.add_router("", domains)
api.add_router("", runs)
api.add_router("", saved)


# --- the first API's addresses, deprecated: the same views, the answers they gave ---

legacy_api = configure(NinjaAPI(
    title="Exports API (deprecated addresses)", version="0", urls_namespace="exports_api_v0", auth=api_auth(),
    parser=JsonObjectParser(), openapi_url=None, docs_url=None,
))


@legacy_api.post("/{slug:slug}/definitions/{int:definition_id}/start/", auth=api_auth(write=True),
                 response={200: RunOut, 202: RunOut, **ERRORS}, url_name="api_start", deprecated=True)
def legacy_start(request, slug: str, definition_id: int, payload: StartExportIn = None):
    return start_run(request, slug, definition_id, payload)


@legacy_api.get("/runs/{uuid:run_id}/", response={200: RunOut, **ERRORS}, url_name="api_run", deprecated=True)
def legacy_run(request, run_id: uuid.UUID):
    return read_run(request, run_id)


@legacy_api.get("/runs/{uuid:run_id}/file/", response=ERRORS, url_name="api_file", deprecated=True)
def legacy_file(request, run_id: uuid.UUID):
    return run_file(request, run_id)
