"""Saved exports: which are due, dispatching them once each, rebuilding, and the stable link's bookkeeping.

Plain functions: the Celery tasks in exports.tasks call them, and so do the tests.
"""
import datetime
import logging
from functools import partial

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from exports.runs import limits
from exports.files.export_file import build_and_store, export_filename, export_storage
from exports.models import SavedExport
from exports.saved.scheduling import build_offset, due_and_next
from exports.files.writers import get_writer

log = logging.getLogger(__name__)

# "Rebuild now" has a person watching its progress bar: it goes to a queue of the interactive worker
# group, not behind the night's batch on saved_exports_queue.
REBUILD_NOW_QUEUE = "export_download_queue"


def night_offset(definition_id):
    """How long after its local day begins a saved export is built: stable, spread over the night."""
    return build_offset(definition_id)


def due_saved_exports(now):
    """One query: saved exports due at `now` (their night's build time has come) that someone still uses.

    A saved export nobody downloaded for SAVED_EXPORTS_IDLE_DAYS (counted from its creation if never
    downloaded) is left alone until someone downloads it again.
    """
    idle_since = now - datetime.timedelta(days=settings.SAVED_EXPORTS_IDLE_DAYS)
    return (
        SavedExport.objects
        .filter(definition__is_daily_saved=True, next_build_at__lte=now)
        .annotate(last_used=Coalesce("last_downloaded_at", "created_at"))
        .filter(last_used__gte=idle_since)
        .values_list("pk", "next_build_at", "definition__domain__time_zone", "definition_id")
    )


def dispatch_due(now, queue_rebuild, batch_size=500, offset_of=night_offset):
    """Queue a rebuild of every due saved export, once; returns the ids queued.

    Each claim is a compare-and-set on next_build_at, so two dispatchers running at once never
    queue the same build twice, and a dispatcher that was down for hours queues each missed
    export once: the next build moves to the first build time after `now` (a local day's start
    plus the export's night offset). Claims commit in
    batches (one disk sync per batch, not per row), and a rebuild is queued only once its claim
    has committed. `offset_of(definition_id)` gives each export's night offset.
    """
    queued = []
    due = list(due_saved_exports(now))
    for start in range(0, len(due), batch_size):
        with transaction.atomic():
            for saved_id, scheduled, tz_name, definition_id in due[start:start + batch_size]:
                is_due, following = due_and_next(tz_name, scheduled, now, offset_of(definition_id))
                if not is_due:
                    continue
                claimed = SavedExport.objects.filter(pk=saved_id, next_build_at=scheduled).update(
                    next_build_at=following, last_scheduled_at=now)
                if claimed:
                    transaction.on_commit(partial(queue_rebuild, saved_id))
                    queued.append(saved_id)
    return queued


def rebuild(saved_id, progress=None):
    """Build the saved export's file anew; the previous file is deleted only once the new one is stored.

    Over EXPORT_MAX_ROWS rows it is not built: the previous file stays and the error says why.
    """
    saved = SavedExport.objects.select_related("definition__domain").get(pk=saved_id)
    definition = saved.definition
    started = timezone.now()
    try:
        limits.check_rows(definition, {"format": definition.format})
        key, rows, size = build_and_store(
            definition, {"format": definition.format},
            f"saved/{definition.domain.slug}/{definition.pk}-{started:%Y%m%dT%H%M%S}", progress=progress)
    except Exception as exc:
        log.exception("Rebuilding saved export %s failed; the previous file stays", saved_id)
        SavedExport.objects.filter(pk=saved_id).update(last_build_error=str(exc) or type(exc).__name__)
        raise
    finished = timezone.now()
    previous_key = saved.file_key
    saved.file_key, saved.rows, saved.bytes = key, rows, size
    saved.filename = export_filename(definition, get_writer(definition.format).file_extension, finished)
    saved.last_build_at, saved.last_build_duration, saved.last_build_error = finished, finished - started, ""
    saved.save(update_fields=["file_key", "rows", "bytes", "filename", "last_build_at", "last_build_duration",
                              "last_build_error"])
    if previous_key and previous_key != key:
        export_storage().delete(previous_key)
    return saved


def record_download(saved, now=None):
    """Note that a member downloaded it: this keeps the nightly rebuilds going."""
    SavedExport.objects.filter(pk=saved.pk).update(last_downloaded_at=now or timezone.now())


def saved_exports_for(domain):
    return (SavedExport.objects.filter(definition__domain=domain, definition__is_daily_saved=True)
            .select_related("definition").order_by("definition__name"))


def saved_export_for(user, slug, definition_id):
    """The saved export of a definition in a domain the user belongs to, else None."""
    return (SavedExport.objects.select_related("definition__domain")
            .filter(definition_id=definition_id, definition__domain__slug=slug,
                    definition__domain__members=user, definition__is_daily_saved=True)
            .first())
