"""Exporting an admin changelist: the rows a ModelAdmin lists, rebuilt from JSON-safe parameters,
streamed through the export writers into storage, and swept once expired.

Nothing here knows about Celery (exports.tasks wraps `build_export`) or about the action that starts
it (exports.admin.actions). The queryset is rebuilt through the ModelAdmin itself, as the changelist
page builds it for that user, so its domain scoping, filters, search and permissions are the admin's.
"""
import datetime
import json
import os
import secrets
from dataclasses import dataclass
from itertools import islice

from celery.exceptions import SoftTimeLimitExceeded
from django.apps import apps
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.sites import NotRegistered, all_sites
from django.contrib.admin.utils import NotRelationField, get_fields_from_path, label_for_field
from django.contrib.admin.views.main import ERROR_FLAG, PAGE_VAR
from django.contrib.auth import get_user_model
from django.contrib.messages import MessageFailure
from django.core.exceptions import FieldDoesNotExist
from django.db import models
from django.http import HttpRequest, QueryDict
from django.urls import reverse
from django.utils import timezone
from django.utils.text import capfirst, slugify
from django.utils.translation import gettext as _

from exports.conf import exports_conf
from exports.files import tempfiles
from exports.files.export_file import ExportCancelled
from exports.files.parameters import ExportRefused
from exports.files.storage import export_storage, publish
from exports.formatting import zone, zone_heading
from exports.runs import words
from exports.sources import SourceError, get_source
from exports.writers import get_writer

#: Where changelist exports are stored (a folder of the exports storage), swept once expired.
EXPORT_FOLDER = "admin-exports"


class ChangelistExportError(ExportRefused):
    """The export cannot be built; the message says why, in words for the user (a run shows them)."""


@dataclass(frozen=True)
class ExportColumn:
    """One column: the field path read with values_list, its header, its writer type, and how its
    database value becomes the written one (a choice's label, a related object's name, text)."""

    path: str
    label: str
    type: str
    choices: dict | None = None
    related_model: type | None = None


@dataclass(frozen=True)
class BuiltExport:
    key: str
    filename: str
    rows: int
    bytes: int
    file_extension: str
    mimetype: str
    domains: list  # the slugs of the domains the rows belong to (none for a model without domains)


def changelist_query(get_params):
    """The changelist's GET query without the page number and error flag: filters, search, ordering."""
    query = get_params.copy()
    for name in (PAGE_VAR, ERROR_FLAG):
        query.pop(name, None)
    return query.urlencode()


def export_filename_stem(model, when=None):
    """"form-submissions-2026-11-23": the model's plural name and the day, in the site's time zone."""
    day = timezone.localdate(when or timezone.now())
    return f"{slugify(model._meta.verbose_name_plural) or 'export'}-{day:%Y-%m-%d}"


def model_admin_for(site_name, model_label):
    """The ModelAdmin registered for `model_label` ("exports.formsubmission") on the admin site `site_name`."""
    site = next((site for site in all_sites if site.name == site_name), None)
    try:
        model = apps.get_model(model_label)
        if site is None:
            raise LookupError(site_name)
        return site.get_model_admin(model)
    except (LookupError, ValueError, NotRegistered):
        raise ChangelistExportError(_("This list can no longer be exported: it is gone from the admin.")) from None


def changelist_request(model_admin, user, query):
    """The request the ModelAdmin sees when the task rebuilds its changelist: a plain HttpRequest,
    a GET of the changelist's path by `user` with `query`, and nothing more.

    Its `user`, `GET`, `method` and `path` are what a ModelAdmin's get_queryset(), list filters and
    permission checks read. It has no session, cookies or message storage: a ModelAdmin that needs
    more of a live request cannot be exported in the background.
    """
    opts = model_admin.model._meta
    request = HttpRequest()
    request.method = "GET"
    request.path = request.path_info = reverse(
        f"{model_admin.admin_site.name}:{opts.app_label}_{opts.model_name}_changelist")
    request.GET = QueryDict(query or "")
    request.user = user
    return request


def changelist_queryset(model_admin, user, query, pks=None):
    """The rows the changelist shows `user` for `query` (or only `pks` among them), ordered as listed.

    Refuses, in words, a user who may no longer view the list, and filters that no longer apply.
    """
    request = changelist_request(model_admin, user, query)
    if not (user.is_active and model_admin.admin_site.has_permission(request)
            and model_admin.has_view_permission(request)):
        raise ChangelistExportError(
            _("You may no longer view %(things)s, so they were not exported.")
            % {"things": model_admin.model._meta.verbose_name_plural})
    try:
        queryset = model_admin.get_changelist_instance(request).queryset
    except (IncorrectLookupParameters, MessageFailure):
        # MessageFailure: the changelist wanted to tell the user something (Django's own says that
        # the search is invalid); the request has nowhere to keep messages, and nobody would see them.
        raise ChangelistExportError(
            _("The list's filters no longer apply (a field or a choice is gone); filter the list again and "
              "export it from there.")) from None
    if pks is not None:
        queryset = queryset.filter(pk__in=pks)
    return queryset


def default_export_fields(model_admin, request=None):
    """The list_display entries that are model fields (or paths through relations, "owner__username")."""
    names = model_admin.get_list_display(request) if request is not None else model_admin.list_display
    return [name for name in names if isinstance(name, str) and _field_at(model_admin.model, name) is not None]


def _field_at(model, path):
    try:
        field = get_fields_from_path(model, path)[-1]
    except (FieldDoesNotExist, NotRelationField, IndexError):
        return None
    if field.many_to_many or field.one_to_many or not getattr(field, "concrete", False):
        return None
    return field


def column_type(field):
    """The writer column type (exports.writers.COLUMN_TYPES) of a model field's values."""
    if field.choices:
        return "text"
    if isinstance(field, models.BooleanField):
        return "boolean"
    if isinstance(field, models.IntegerField) and not field.is_relation:
        return "integer"
    if isinstance(field, (models.DecimalField, models.FloatField)):
        return "decimal"
    if isinstance(field, models.DateTimeField):
        return "datetime"
    if isinstance(field, models.DateField):
        return "date"
    return "text"


def source_columns(model_admin):
    """{key: Column} of the export source the ModelAdmin names (`export_source`), if any: its rows are
    then written with the labels and types of any export of that source."""
    name = getattr(model_admin, "export_source", None)
    if not name:
        return {}
    try:
        return {column.key: column for column in get_source(name).columns}
    except SourceError:
        return {}


def export_columns(model_admin, field_names, tz=None):
    """The columns for `field_names`; an unknown or many-valued field is refused in words.

    A field the ModelAdmin's export source has is labelled as that source labels it ("Weight (kg)");
    a time column names the zone `tz` its times are written in ("Received on (IST)").
    """
    from_source = source_columns(model_admin)
    zone_name = tz or timezone.get_default_timezone_name()
    columns = []
    for name in field_names:
        field = _field_at(model_admin.model, name)
        if field is None:
            raise ChangelistExportError(_("“%(name)s” is not a field of %(model)s that can be exported.")
                                        % {"name": name, "model": model_admin.model._meta.verbose_name})
        kind = column_type(field)
        if name in from_source and not field.choices and not field.is_relation:
            label, kind = str(from_source[name].label), from_source[name].type
        else:
            label = capfirst(" ".join(str(label_for_field(name, model_admin.model, model_admin)).split()))
        if kind == "datetime":
            label = f"{label} ({zone_heading(zone_name)})"
        columns.append(ExportColumn(
            path=name, label=label, type=kind,
            choices={value: str(text) for value, text in field.flatchoices} if field.choices else None,
            related_model=field.related_model if field.is_relation else None,
        ))
    return columns


def _text(value):
    if isinstance(value, str):
        return value
    if isinstance(value, datetime.timedelta):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def row_chunks(queryset, columns, chunk_size):
    """Chunks (lists) of written rows, read `chunk_size` at a time: never the whole queryset in memory.

    The pk is read first (and dropped): with the admin's distinct() it keeps equal-looking rows apart.
    Related objects are named as the admin names them, str(), one query per chunk and column.
    """
    rows = queryset.values_list("pk", *[column.path for column in columns]).iterator(chunk_size=chunk_size)
    while chunk := list(islice(rows, chunk_size)):
        converters = []
        for index, column in enumerate(columns, start=1):
            if column.related_model is not None:
                ids = {row[index] for row in chunk} - {None}
                names = {pk: str(obj) for pk, obj in column.related_model._default_manager.in_bulk(ids).items()}
                converters.append(names.get)
            elif column.choices is not None:
                converters.append(lambda value, choices=column.choices: choices.get(value, _text(value)))
            elif column.type == "text":
                converters.append(_text)
            else:
                converters.append(None)
        yield [tuple(value if value is None or convert is None else convert(value)
                     for value, convert in zip(row[1:], converters)) for row in chunk]


def build_export(site_name, model_label, query, pks, user_id, format_name, fields, name,
                 progress=None, chunk_size=None, max_rows=None):
    """Write the changelist export to storage; returns a BuiltExport. Raises ChangelistExportError.

    For a ModelAdmin without domains; one with domains exports as runs (build_run)."""
    model_admin = model_admin_for(site_name, model_label)
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    if user is None:
        raise ChangelistExportError(_("The account that asked for this export is gone."))
    try:
        writer_class = get_writer(format_name)
    except ValueError:
        raise ChangelistExportError(_("Unknown export format “%(format)s”.") % {"format": format_name}) from None
    queryset = changelist_queryset(model_admin, user, query, pks)
    zone_name = timezone.get_default_timezone_name()
    key, rows, size = write_and_publish(
        queryset, export_columns(model_admin, fields, tz=zone_name), writer_class, zone_name, name,
        f"{EXPORT_FOLDER}/{secrets.token_hex(16)}", progress=progress, chunk_size=chunk_size, max_rows=max_rows)
    return BuiltExport(key=key, filename=f"{name}{writer_class.file_extension}", rows=rows,
                       bytes=size, file_extension=writer_class.file_extension, mimetype=writer_class.mimetype,
                       domains=exported_domains(model_admin, queryset))


def build_run(run, storage_key_prefix, progress=None, is_cancelled=None):
    """Build the file of an admin export run (exports.admin.actions): the changelist's rows of the run's
    domain, rebuilt as its owner sees them now, in the domain's time zone. Returns (key, rows, bytes),
    as exports.files.export_file.build_and_store does, so the run goes through the same lifecycle."""
    spec = run.admin_export
    model_admin = model_admin_for(spec["site"], spec["model"])
    queryset = changelist_queryset(model_admin, run.owner, spec["query"], spec.get("pks"))
    queryset = model_admin.rows_of_domain(queryset, run.domain)
    zone_name = run.domain.time_zone
    return write_and_publish(
        queryset, export_columns(model_admin, spec["fields"], tz=zone_name), get_writer(run.parameters["format"]),
        zone_name, spec["name"], storage_key_prefix, progress=progress, is_cancelled=is_cancelled,
        max_rows=spec.get("max_rows"))


def write_and_publish(queryset, columns, writer_class, zone_name, name, storage_key_prefix, progress=None,
                      is_cancelled=None, chunk_size=None, max_rows=None):
    """Write `queryset`'s `columns` with times in `zone_name` to a temporary file and publish it under
    `storage_key_prefix`; returns (key, rows, bytes). Over `max_rows` rows it is refused in words."""
    total = queryset.count()
    max_rows = max_rows if max_rows is not None else exports_conf.EXPORT_MAX_ROWS
    if total > max_rows:
        raise ChangelistExportError(row_limit_words(total, max_rows))
    path = tempfiles.new_temp_path(writer_class.file_extension)
    try:
        with writer_class(path, [c.label for c in columns], [c.type for c in columns], tz=zone(zone_name),
                          name=name) as writer:
            if progress:
                progress(0, total)
            for chunk in row_chunks(queryset, columns, chunk_size or exports_conf.EXPORT_CHUNK_SIZE):
                if is_cancelled and is_cancelled():
                    raise ExportCancelled()
                writer.write_rows(chunk)
                if progress:
                    progress(writer.rows_written, max(total, writer.rows_written))
        size = os.path.getsize(path)
        key = publish(path, f"{storage_key_prefix}{writer_class.file_extension}")
    finally:
        tempfiles.remove(path)
    return key, writer.rows_written, size


def exported_domains(model_admin, queryset):
    """The domains of the exported rows, if the ModelAdmin knows them (exports.admin.site.DomainScopedAdmin)."""
    domains_of_rows = getattr(model_admin, "exported_domains", None)
    return list(domains_of_rows(queryset)) if domains_of_rows is not None else []


def row_limit_words(total, max_rows):
    return (_("This list has %(total)s rows, more than the limit of %(limit)s for one export. Filter the list "
              "further, then export it again.") % {"total": f"{total:,}", "limit": f"{max_rows:,}"})


def failure_words(exc, time_limit=None):
    """What the progress page says when an export fails: words, never a trace."""
    if isinstance(exc, ChangelistExportError):
        return str(exc)
    if isinstance(exc, SoftTimeLimitExceeded):
        span = _("%(minutes)s minutes") % {"minutes": round(time_limit / 60)} if time_limit else _("its time limit")
        return _("This export took longer than %(span)s and was stopped. Filter the list further, then export "
                 "it again.") % {"span": span}
    return words.failure_words(exc)  # disk full, or an error on our side


def sweep_expired(now=None, expiry=None):
    """Delete changelist exports older than their expiry (EXPORT_FILE_EXPIRY); returns how many."""
    storage = export_storage()
    if not storage.exists(EXPORT_FOLDER):
        return 0
    cutoff = (now or timezone.now()) - datetime.timedelta(seconds=expiry or exports_conf.EXPORT_FILE_EXPIRY)
    removed = 0
    for name in storage.listdir(EXPORT_FOLDER)[1]:
        key = f"{EXPORT_FOLDER}/{name}"
        try:
            if storage.get_modified_time(key) < cutoff:
                storage.delete(key)
                removed += 1
        except FileNotFoundError:
            continue
    return removed
