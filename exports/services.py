"""Writes: starting, running, cancelling and expiring exports. Plain functions, no HTTP, no Celery."""
import datetime
import hashlib
import json
import logging

from celery import uuid
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from soil import DownloadBase
from soil.util import expose_blob_download

from .building import ExportCancelled, build_and_store, export_filename, export_storage, planned_rows
from .models import ExportRun
from .text import one_line
from .writers import get_writer

log = logging.getLogger(__name__)
Status = ExportRun.Status


class ExportRefused(ValueError):
    """The export cannot start; the message says why, in words for the user."""


def export_parameters(definition, format=None, date_from=None, date_to=None):
    """The JSON-safe parameters of a run; anything not given comes from the definition."""
    format = format or definition.format
    try:
        get_writer(format)
    except ValueError as exc:
        raise ExportRefused(str(exc)) from None
    date_from = date_from or definition.date_from
    date_to = date_to or definition.date_to
    if date_from and date_to and date_from > date_to:
        raise ExportRefused("The start date is after the end date.")
    return {
        "format": format,
        "date_from": date_from.isoformat() if date_from else None,
        "date_to": date_to.isoformat() if date_to else None,
    }


def query_parameters(parameters):
    """Run parameters with the dates turned back into dates, for building the queryset."""
    return {
        **parameters,
        "date_from": _date(parameters.get("date_from")),
        "date_to": _date(parameters.get("date_to")),
    }


def _date(value):
    return datetime.date.fromisoformat(value) if value else None


def parameters_key(definition, parameters):
    text = json.dumps({"definition": definition.pk, **parameters}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def ensure_member(user, domain):
    if not domain.members.filter(pk=user.pk).exists():
        raise PermissionDenied("You are not a member of this domain.")


def start_export(user, definition, format=None, date_from=None, date_to=None, notify_by_email=False):
    """Create a run and queue it after the transaction commits; returns (run, created).

    The same user asking for the same export while one is queued or running gets that run back.
    An export over EXPORT_MAX_ROWS rows is refused before anything is queued.
    """
    ensure_member(user, definition.domain)
    parameters = export_parameters(definition, format, date_from, date_to)
    key = parameters_key(definition, parameters)
    active = ExportRun.objects.filter(owner=user, definition=definition, parameters_key=key, status__in=ExportRun.ACTIVE)
    if existing := active.first():
        return existing, False

    queryset, _ = planned_rows(definition, query_parameters(parameters))
    total = queryset.count()
    if total > settings.EXPORT_MAX_ROWS:
        raise ExportRefused(
            f"This export has {total:,} rows, more than the limit of {settings.EXPORT_MAX_ROWS:,}. "
            "Choose a shorter date range."
        )

    download = DownloadBase(owner_ids=[user.pk], task_id=uuid(), message=f"Export of {definition.name}")
    try:
        with transaction.atomic():
            run = ExportRun.objects.create(
                owner=user, domain=definition.domain, definition=definition, parameters=parameters,
                parameters_key=key, task_id=download.task_id, download_id=download.download_id,
                notify_by_email=notify_by_email,
            )
    except IntegrityError:
        # Another request created the same run between our check and our insert.
        return active.get(), False
    download.save(settings.EXPORT_FILE_EXPIRY)
    transaction.on_commit(lambda: _queue(run))
    return run, True


def _queue(run):
    from .tasks import run_export

    run_export.apply_async(args=[str(run.pk)], task_id=run.task_id)


def rerun(user, run, notify_by_email=False):
    """Start the export of `run` again with the same parameters."""
    parameters = query_parameters(run.parameters)
    return start_export(user, run.definition, parameters["format"], parameters["date_from"], parameters["date_to"],
                        notify_by_email=notify_by_email)


def execute_run(run_id, progress=None):
    """Build the file of a queued run, store it, and expose it to its owner.

    Safe to run twice: a run that is no longer queued or running is returned untouched.
    Raises ExportCancelled when the user cancelled before or during the build.
    """
    run = ExportRun.objects.select_related("definition__domain", "owner").get(pk=run_id)
    if run.status == Status.CANCELLED:
        raise ExportCancelled()
    if run.status not in ExportRun.ACTIVE:
        return run
    started = timezone.now()
    ExportRun.objects.filter(pk=run.pk).update(status=Status.RUNNING, started_at=started)

    def is_cancelled():
        return ExportRun.objects.filter(pk=run.pk, cancel_requested=True).exists()

    try:
        if is_cancelled():
            raise ExportCancelled()
        key, rows, size = build_and_store(
            run.definition, query_parameters(run.parameters), f"exports/{run.domain.slug}/{run.pk}",
            progress=progress, is_cancelled=is_cancelled,
        )
    except ExportCancelled:
        _finish(run, Status.CANCELLED, error="Cancelled by the user.")
        raise
    except Exception as exc:
        log.exception("Export run %s failed", run.pk)
        _finish(run, Status.FAILED, error=str(exc) or type(exc).__name__)
        raise

    finished = timezone.now()
    writer_class = get_writer(run.parameters["format"])
    run.file_key, run.rows, run.bytes = key, rows, size
    run.filename = export_filename(run.definition, writer_class.file_extension, finished)
    run.expires_at = finished + datetime.timedelta(seconds=settings.EXPORT_FILE_EXPIRY)
    _finish(run, Status.SUCCEEDED, finished=finished,
            fields=["file_key", "rows", "bytes", "filename", "expires_at", "duration"], started=started)
    expose_blob_download(
        key, settings.EXPORT_FILE_EXPIRY, file_extension=writer_class.file_extension,
        mimetype=writer_class.mimetype, content_disposition=run.filename, download_id=run.download_id,
        owner_ids=[run.owner_id], storage_alias=settings.EXPORTS_STORAGE,
    )
    return run


def _finish(run, status, error="", finished=None, fields=(), started=None):
    run.status = status
    run.error = error
    run.finished_at = finished or timezone.now()
    if started:
        run.duration = run.finished_at - started
    run.save(update_fields=["status", "error", "finished_at", *fields])


def cancel_export(user, run):
    """Ask a run to stop: a queued run is cancelled at once, a running one at its next chunk."""
    if run.owner_id != user.pk:
        raise PermissionDenied("Only the person who started an export can cancel it.")
    if not run.is_active:
        return run
    ExportRun.objects.filter(pk=run.pk).update(cancel_requested=True)
    ExportRun.objects.filter(pk=run.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED, error="Cancelled by the user.", finished_at=timezone.now()
    )
    run.refresh_from_db()
    return run


def request_email(user, run):
    """Email the owner when the run is ready (at once if it already is)."""
    if run.owner_id != user.pk:
        raise PermissionDenied("Only the person who started an export can ask for its email.")
    ExportRun.objects.filter(pk=run.pk).update(notify_by_email=True)
    run.refresh_from_db()
    if run.status == Status.SUCCEEDED:
        queue_ready_email(run)
    return run


def queue_ready_email(run):
    from .tasks import send_export_ready_email

    transaction.on_commit(lambda: send_export_ready_email.delay(str(run.pk)))


def send_ready_email(run_id):
    """Send the 'your export is ready' email once; returns whether this call sent it."""
    claimed = ExportRun.objects.filter(
        pk=run_id, status=Status.SUCCEEDED, notify_by_email=True, email_sent_at__isnull=True
    ).update(email_sent_at=timezone.now())
    if not claimed:
        return False
    run = ExportRun.objects.select_related("definition", "owner").get(pk=run_id)
    if not run.owner.email:
        return False
    link = settings.SITE_URL.rstrip("/") + reverse("exports:run", args=[run.pk])
    send_mail(
        subject=f"Your export '{one_line(run.definition.name)}' is ready",
        message=(f"Your export of {run.rows:,} rows is ready until "
                 f"{timezone.localtime(run.expires_at):%Y-%m-%d %H:%M %Z}.\n\nDownload it here: {link}\n"),
        from_email=None,
        recipient_list=[run.owner.email],
    )
    return True


def expire_runs(now=None):
    """Delete the files of runs past their expiry and mark them expired; returns how many."""
    now = now or timezone.now()
    storage = export_storage()
    expired = 0
    for run in ExportRun.objects.filter(status=Status.SUCCEEDED, expires_at__lte=now).iterator():
        if run.file_key:
            storage.delete(run.file_key)
        DownloadBase(download_id=run.download_id).delete()
        expired += ExportRun.objects.filter(pk=run.pk, status=Status.SUCCEEDED).update(
            status=Status.EXPIRED, file_key=""
        )
    return expired
