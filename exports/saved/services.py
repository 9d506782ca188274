"""Saved exports: which are due, dispatching them once each, rebuilding, and the stable link's bookkeeping.

Plain functions: the Celery tasks in exports.tasks call them, and so do the tests.
"""
import datetime
import functools
import logging

from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext

from exports.conf import exports_conf
from exports.files import parameters
from exports.files.export_file import build_and_store, export_filename, export_storage
from exports.files.storage import delete_quietly
from exports.models import Domain, ExportDefinition, SavedExport, canonical_time_zone
from exports.runs import access, limits, queueing
from exports.saved.scheduling import build_offset, due_and_next, first_due
from exports.writers import get_writer
from soil import DownloadBase
from soil.downloads import new_download_id

log = logging.getLogger(__name__)

def save_domain(domain):
    """Save `domain`; when its time zone changed, its saved exports follow the new zone from its next
    local midnight."""
    old_zone = Domain.objects.filter(pk=domain.pk).values_list("time_zone", flat=True).first() if domain.pk else None
    domain.save()
    if old_zone and canonical_time_zone(old_zone) != domain.time_zone:
        SavedExport.objects.filter(definition__domain=domain).update(
            next_build_at=first_due(domain.time_zone, timezone.now()))
    return domain


def save_definition(definition):
    """Save `definition` and what follows: a daily saved export gets its SavedExport, first built at the
    domain's next local midnight; a definition moved to another domain loses its saved file."""
    old_domain = (ExportDefinition.objects.filter(pk=definition.pk).values_list("domain_id", flat=True).first()
                  if definition.pk else None)
    definition.save()
    if old_domain is not None and old_domain != definition.domain_id:
        forget_saved_file(definition)
    if definition.is_daily_saved:
        SavedExport.objects.get_or_create(
            definition=definition, defaults={"next_build_at": first_due(definition.domain.time_zone, timezone.now())})
    return definition


def forget_saved_file(definition):
    """A definition moved to another domain: its saved file holds the old domain's rows, so it goes."""
    saved = SavedExport.objects.filter(definition=definition).first()
    if saved is None or not saved.file_key:
        return
    SavedExport.objects.filter(pk=saved.pk).update(file_key="", filename="", rows=None, bytes=None,
                                                   last_build_at=None, rebuild_download_id="")
    delete_quietly(saved.file_key)


def night_offset(definition_id):
    """How long after its local day begins a saved export is built: stable, spread over the night."""
    return build_offset(definition_id)


def due_saved_exports(now):
    """One query: saved exports due at `now` (their night's build time has come) that someone still uses.

    A saved export nobody downloaded for SAVED_EXPORTS_IDLE_DAYS (counted from its creation if never
    downloaded) is left alone until someone downloads it again.
    """
    idle_since = now - datetime.timedelta(days=exports_conf.SAVED_EXPORTS_IDLE_DAYS)
    return (
        SavedExport.objects
        .filter(definition__is_daily_saved=True, next_build_at__lte=now)
        .annotate(last_used=Coalesce("last_downloaded_at", "created_at"))
        .filter(last_used__gte=idle_since)
        .values_list("pk", "next_build_at", "definition__domain__time_zone", "definition_id")
    )


def dispatch_due(now, queue_rebuild=queueing.queue_saved_rebuild, batch_size=500, offset_of=night_offset):
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
                    transaction.on_commit(functools.partial(queue_rebuild, saved_id))
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


def rebuild_now(user, saved):
    """"Rebuild now": queue a rebuild of `saved` unless a rebuild asked for this way is still under way.

    Returns (download, created). A second click, by anyone, while one is queued or running gets that
    rebuild's download back with created False; the claim on `rebuild_download_id` is a compare-and-set,
    so two clicks at the same instant queue one rebuild.
    """
    access.ensure_member(user, saved.definition.domain)
    current = saved.rebuild_download_id
    if current and (download := DownloadBase.get(current)) is not None and not _finished(download):
        return download, False
    download_id = new_download_id()
    if not SavedExport.objects.filter(pk=saved.pk, rebuild_download_id=current).update(rebuild_download_id=download_id):
        saved.refresh_from_db()
        download = DownloadBase.get(saved.rebuild_download_id)
        if download is None:
            raise parameters.ExportRefused(gettext("Another rebuild was just asked for; reload the page."))
        return download, False
    try:
        download = queueing.start_saved_rebuild(
            saved.pk, user.pk, download_id,
            download_class=functools.partial(DownloadBase, extras=access.download_extras(saved.definition.domain)),
            message=gettext("Rebuilding %(name)s") % {"name": saved.definition.name},
        )
    except Exception:
        # Not queued (Redis unreachable): the next click must not wait for a rebuild that never comes.
        SavedExport.objects.filter(pk=saved.pk, rebuild_download_id=download_id).update(rebuild_download_id="")
        raise
    return download, True


def _finished(download):
    status = download.get_status()
    return status.success() or status.failed()
