"""What the API reads and answers, as pydantic schemas: they check JSON types and make the OpenAPI schema.

Values are checked where the pages check them (the start form, the services); a type error here says
in words what the field takes: `{field}` in a message is replaced by the field's name.
"""
import datetime
import uuid
from typing import Annotated, Any, Literal

from django.urls import reverse
from ninja import Field, Schema
from pydantic import BeforeValidator, ConfigDict, StrictBool, ValidationError, WrapValidator
from pydantic_core import PydanticCustomError

from exports.models import FORMAT_CHOICES, ExportRun
from exports.runs.status import run_status as live_status
from exports.sources import SourceError, get_source
from exports.validators import ISO_DATE, ISO_DATE_MESSAGE

API = "api_v1"  # the URL namespace of the API
FORMATS = tuple(sorted(key for key, _label in FORMAT_CHOICES))
RUN_STATUSES = tuple(ExportRun.Status.values)


def in_words(code, message):
    """A validator that answers any type error of its field with `message`."""
    def validate(value, handler):
        try:
            return handler(value)
        except ValidationError:
            raise PydanticCustomError(code, message) from None
    return WrapValidator(validate)


def _iso_date(value, handler):
    if value is not None and not (isinstance(value, str) and ISO_DATE.fullmatch(value)):
        raise PydanticCustomError("invalid_date", ISO_DATE_MESSAGE)
    try:
        return handler(value)
    except ValidationError:
        raise PydanticCustomError("invalid_date", ISO_DATE_MESSAGE) from None


Words = Annotated[str, BeforeValidator(str)]  # a label or message, translated lazily
IsoDate = Annotated[datetime.date | None, WrapValidator(_iso_date)]


class StartExportIn(Schema):
    """What a script may choose for one export; anything left out comes from the definition."""

    model_config = ConfigDict(extra="forbid")

    format: Annotated[Literal[FORMATS] | None, in_words(  # noqa: F821 (a Literal of the writers' names)
        "invalid_type", "{field} must be one of " + ", ".join(f'"{name}"' for name in FORMATS) + ".")] = None
    date_from: IsoDate = None
    date_to: IsoDate = None
    notify_by_email: Annotated[StrictBool, in_words("invalid_type", "{field} must be true or false.")] = False
    columns: Annotated[list[str] | None, in_words(
        "invalid_type", "{field} must be a list of column keys, or null.")] = Field(
        None, description="Column keys in the order wanted; null: the definition's columns.")
    filters: Annotated[dict[str, Any] | None, in_words(
        "invalid_type", "{field} must be an object of filter keys and values, or null.")] = Field(
        None, description="{filter key: value}; see the definition's filter_fields.")


class FieldError(Schema):
    message: str
    code: str


class ErrorOut(Schema):
    error: str
    fields: dict[str, list[FieldError]] | None = Field(None, description="Errors by parameter, when there are any.")
    status: str | None = Field(None, description="The run's status, when it is why the request was refused.")


class StatusOut(Schema):
    """A run's status: soil's status shape (the same on the run page, its event stream and here) plus the run's own."""

    download_id: str | None
    state: Literal["missing", "not_started", "started", "success", "failed"]
    percent: int | float
    current: int | None
    total: int | None
    message: Words
    eta_seconds: int | float | None
    errors: list[Words]
    is_ready: bool
    has_file: bool
    download_url: str | None
    is_alive: bool | None
    run_status: Literal[RUN_STATUSES]  # noqa: F821
    run_status_display: Words
    cancel_requested: bool


class RunOut(Schema):
    id: uuid.UUID
    domain: str = Field(..., alias="domain.slug")
    definition: int = Field(..., alias="definition_id")
    definition_name: str = Field(..., alias="definition.name")
    parameters: dict[str, Any]
    status: Literal[RUN_STATUSES] = Field(..., alias="display_status")  # noqa: F821
    rows: int | None
    bytes: int | None
    error: Words
    created_at: datetime.datetime
    expires_at: datetime.datetime | None
    progress: StatusOut | None = Field(None, description="The live status while the run is queued or running.")
    status_url: str
    file_url: str

    @staticmethod
    def resolve_progress(run):
        return live_status(run) if run.is_active else None

    @staticmethod
    def resolve_status_url(run):
        return reverse(f"{API}:run_status", args=[run.pk])

    @staticmethod
    def resolve_file_url(run):
        return reverse(f"{API}:run_file", args=[run.pk])


class DomainOut(Schema):
    slug: str
    name: str
    time_zone: str
    definitions_url: str
    saved_exports_url: str

    @staticmethod
    def resolve_definitions_url(domain):
        return reverse(f"{API}:definitions", args=[domain.slug])

    @staticmethod
    def resolve_saved_exports_url(domain):
        return reverse(f"{API}:saved_exports", args=[domain.slug])


class ColumnOut(Schema):
    key: str
    label: Words
    type: str


class FilterFieldOut(Schema):
    key: str
    label: Words
    kind: Literal["choice", "text"]
    choices: list[str] | None = Field(None, description="The values to pick from; null: free text.")


def _source(definition):
    """The definition's source, or None when it is gone (the definition offers nothing until it is edited)."""
    try:
        return get_source(definition.source)
    except SourceError:
        return None


class DefinitionOut(Schema):
    id: int
    name: str
    source: str
    format: str
    date_from: datetime.date | None
    date_to: datetime.date | None
    is_daily_saved: bool
    columns: list[ColumnOut] = Field(..., description="The columns it exports, in order.")
    available_columns: list[ColumnOut] = Field(..., description="Every column its source offers.")
    filter_fields: list[FilterFieldOut]
    start_url: str

    @staticmethod
    def resolve_columns(definition):
        source = _source(definition)
        try:
            return source.columns_for(definition.columns) if source else []
        except SourceError:  # a column gone: nothing to offer until the definition is edited
            return []

    @staticmethod
    def resolve_available_columns(definition):
        source = _source(definition)
        return source.columns if source else []

    @staticmethod
    def resolve_filter_fields(definition):
        source = _source(definition)
        return [{"key": f.key, "label": f.label, "kind": f.kind,
                 "choices": list(f.choices(definition.domain)) if f.choices else None}
                for f in (source.filters if source else [])]

    @staticmethod
    def resolve_start_url(definition):
        return reverse(f"{API}:start", args=[definition.domain.slug, definition.pk])


class SavedExportOut(Schema):
    definition: int = Field(..., alias="definition_id")
    name: str = Field(..., alias="definition.name")
    format: str = Field(..., alias="definition.format")
    has_file: bool
    rows: int | None
    bytes: int | None
    last_build_at: datetime.datetime | None
    last_build_error: str
    next_build_at: datetime.datetime
    file_url: str = Field(..., description="The stable link: always the latest file.")
    rebuild_url: str

    @staticmethod
    def resolve_file_url(saved):
        return reverse(f"{API}:saved_file", args=[saved.definition.domain.slug, saved.definition_id])

    @staticmethod
    def resolve_rebuild_url(saved):
        return reverse(f"{API}:saved_rebuild", args=[saved.definition.domain.slug, saved.definition_id])


class RebuildOut(Schema):
    download_id: str
    created: bool = Field(..., description="False: a rebuild was under way already; this is its progress.")
    status_url: str = Field(..., description="soil's status of the rebuild (the same shape as a run's).")
    message: str
