"""Writes: starting, running, cancelling, deleting, emailing and expiring exports.

Plain functions of users and rows: no request and no task object comes in (messages leave through
exports.runs.queueing), so a view, a task and a test call them alike.
"""
import datetime
import logging
import uuid

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from exports.conf import exports_conf
from exports.files.export_file import ExportCancelled, build_and_store, export_filename
from exports.files.parameters import ChoiceRefused, ExportRefused, export_parameters, parameters_key, query_parameters  # noqa: F401  (ChoiceRefused: the refusals callers catch are here too)
from exports.files.storage import delete_quietly
from exports.formatting import format_local_time, format_rows, one_line
from exports.models import ExportDefinition, ExportRun
from exports.runs import access, lifecycle, limits, queueing, reaper, words
from exports.runs.status import ProgressRecorder
from exports.sources import get_source
from exports.writers import get_writer
from soil import DownloadBase
from soil.downloads import new_download_id
from soil.util import expose_blob_download

log = logging.getLogger(__name__)
Status = ExportRun.Status


def start_export(user, definition, format=None, date_from=None, date_to=None, notify_by_email=False,
                 columns=None, filters=None):
    """Create a run and queue it after the transaction commits; returns (run, created).

    `columns` (keys in order) and `filters` ({key: value}) narrow the export; see export_parameters.

    The same user asking for the same export while one is queued or running gets that run back,
    unless that run is stuck (then the reaper settles it first). An export over EXPORT_MAX_ROWS rows,
    or past the user's or the domain's number of active runs (exports.runs.limits), is refused before
    anything is queued.
    """
    access.ensure_member(user, definition.domain)
    notify_by_email = notify_by_email and can_email(user)  # no address: nobody to email (the view says so)
    parameters = export_parameters(definition, format, date_from, date_to, columns=columns, filters=filters)
    key = parameters_key(definition, parameters)
    active = ExportRun.objects.filter(owner=user, definition=definition, parameters_key=key, status__in=ExportRun.ACTIVE)
    if (existing := active.first()) and reaper.check_run(existing).is_active:
        return existing, False
    try:
        limits.check_active_runs(user, definition.domain)  # cheap, before counting rows; exact below
        limits.check_rows(definition, parameters)
        with transaction.atomic():
            # Insert first (on SQLite this takes the write lock), then lock the domain and count again
            # with the new run included: concurrent starts cannot all pass a limit (exports.runs.limits).
            run = ExportRun.objects.create(
                owner=user, domain=definition.domain, definition=definition, parameters=parameters,
                parameters_key=key, task_id=str(uuid.uuid4()), download_id=new_download_id(),
                notify_by_email=notify_by_email, queued_at=timezone.now(), language=translation.get_language() or "",
            )
            limits.lock_active_runs(definition.domain)
            limits.check_active_runs(user, definition.domain, including_new=True)
    except limits.LimitReached as limit:
        raise ExportRefused(str(limit)) from None
    except IntegrityError:
        # Another request created the same run between our check and our insert.
        return active.get(), False
    queueing.queue_run(run)
    return run, True


def check_new_definition_name(domain, name):
    """The name, on one line, for a new definition of `domain`; a ValidationError on "name" if empty or taken."""
    name = one_line(name or "")
    if not name:
        raise ValidationError({"name": _("Give the new definition a name.")})
    if ExportDefinition.objects.filter(domain=domain, name=name).exists():
        raise ValidationError({"name": _("This domain already has an export definition named \"%(name)s\"; "
                                         "choose another name.") % {"name": name}})
    return name


def save_as_definition(user, definition, name, format=None, date_from=None, date_to=None, columns=None):
    """A new definition of `definition`'s domain and source with these choices; returns it.

    Any member of the domain may, as on the definition pages. The model's rules apply (a name, known
    columns, dates in range and in order); a ValidationError says what is wrong, by field. Filters are
    not kept: a definition has no place for them.
    """
    access.ensure_member(user, definition.domain)
    source = get_source(definition.source)
    keys = list(columns) if columns else [column.key for column in source.columns_for(definition.columns)]
    if keys == [column.key for column in source.columns]:
        keys = []  # every column, in the source's order: saved as "all", as the definition form does
    new = ExportDefinition(domain=definition.domain, name=one_line(name or ""), source=definition.source,
                           columns=keys, format=format or definition.format, date_from=date_from, date_to=date_to)
    check_new_definition_name(definition.domain, new.name)
    new.full_clean(validate_constraints=False)  # the name's uniqueness is checked above, in words
    try:
        with transaction.atomic():
            new.save()
    except IntegrityError:  # the same name, saved a moment ago by someone else
        raise ValidationError({"name": _("This domain already has an export definition named \"%(name)s\"; "
                                         "choose another name.") % {"name": new.name}}) from None
    return new


def start_admin_export(user, domain, admin_export, format_name):
    """Create an export run of an admin changelist's rows of `domain` and queue it; returns (run, True).

    `admin_export` says what the build reads (exports.admin.actions makes it): the admin site, the
    model, the changelist's query, the ticked pks (None: the whole filtered list), the fields, the
    list's title and the file's name. The run then lives as any other: My exports, Re-run, Delete,
    the same lifecycle, and its file is served only while its owner still may view that list in the
    admin (exports.runs.access). The limits of active runs apply as to any export.
    """
    if not access.may_still_view_in_admin(user, admin_export["model"]):
        raise PermissionDenied(gettext("You may not view this list in the admin."))
    if not user.is_superuser:
        access.ensure_member(user, domain)
    get_writer(format_name)  # an unknown format is refused before anything is stored
    try:
        limits.check_active_runs(user, domain)
        with transaction.atomic():
            run = ExportRun.objects.create(
                owner=user, domain=domain, definition=None, admin_export=admin_export,
                parameters={"format": format_name}, parameters_key=uuid.uuid4().hex, task_id=str(uuid.uuid4()),
                download_id=new_download_id(), queued_at=timezone.now(), language=translation.get_language() or "",
            )
            limits.lock_active_runs(domain)
            limits.check_active_runs(user, domain, including_new=True)
    except limits.LimitReached as limit:
        raise ExportRefused(str(limit)) from None
    queueing.queue_run(run)
    return run, True


def rerun(user, run, notify_by_email=False):
    """Start the export of `run` again with the same parameters."""
    if run.admin_export:
        return start_admin_export(user, run.domain, run.admin_export, run.parameters["format"])
    parameters = query_parameters(run.parameters)
    return start_export(user, run.definition, parameters["format"], parameters["date_from"], parameters["date_to"],
                        notify_by_email=notify_by_email, columns=parameters.get("columns"),
                        filters=parameters.get("filters"))


def build_definition_run(run, storage_key_prefix, progress=None, is_cancelled=None):
    """Build the file of a run of a definition: (storage key, rows, bytes)."""
    return build_and_store(run.definition, run.parameters, storage_key_prefix, progress=progress,
                           is_cancelled=is_cancelled)


def execute_run(run_id, task_id, progress=None, time_limit=None, lease=None, build=build_definition_run):
    """Build the file of a queued run under a lease, publish it, and expose it to its owner.

    Safe to deliver twice: a message for a run that finished, was cancelled, was queued again since,
    or is being built elsewhere returns None without building. Raises ExportCancelled when the user
    cancelled during the build; other errors fail the run in words and are raised again.
    `time_limit` (seconds) is the soft limit the task runs under, for the words of a timeout.
    `lease` is the run's lease when the caller has taken it already. `build(run, storage_key_prefix,
    progress=, is_cancelled=)` writes and stores the file; an admin export passes its own.
    """
    lease = lease or lifecycle.start(run_id, task_id)
    if lease is None:
        log.info("Export run %s: message %s has nothing to build", run_id, task_id)
        return None
    run = ExportRun.objects.select_related("definition__domain", "owner").get(pk=run_id)
    recorder = ProgressRecorder(progress)  # a run that stops keeps where it stopped, for its page
    with lifecycle.LeaseKeeper(lease) as keeper:
        try:
            key, rows, size = build(run, f"exports/{run.domain.slug}/{run.pk}", progress=recorder,
                                    is_cancelled=keeper.should_stop)
        except ExportCancelled:
            if keeper.lost.is_set():
                log.warning("Export run %s: lease lost mid-build; another attempt owns it", run_id)
                return None
            lifecycle.cancelled(lease, last_progress=recorder.snapshot())
            raise
        except Exception as exc:
            log.exception("Export run %s failed", run_id)
            record_failed_build(lease, run, exc, time_limit, recorder.snapshot())
            raise
    return publish_run(lease, run, key, rows, size)


def record_failed_build(lease, run, exc, time_limit=None, last_progress=None):
    """running → failed in words; a build that lost its database instead puts its run back in the queue
    (while it has attempts left) as soon as the database answers again, rather than leave it to the reaper.

    Whole builds, a partitioned build's planning, its parts and its assembly all end here. `run` may be
    None when the database went away before the build could read it; it is read once the database answers.
    """
    if not lifecycle.lost_the_database(exc):
        lifecycle.fail(lease, words.failure_words(exc, time_limit), last_progress=last_progress)
        return

    def settle():
        nonlocal run
        run = run or ExportRun.objects.select_related("definition__domain", "owner").get(pk=lease.run_id)
        if run.attempts >= exports_conf.EXPORT_MAX_ATTEMPTS:
            return lifecycle.fail(lease, words.failure_words(exc, time_limit), last_progress=last_progress)
        new_task_id = lifecycle.requeue_own(lease)
        if new_task_id:
            log.warning("Export run %s lost its database mid-build; queued again as task %s", run.pk, new_task_id)
            run.task_id = new_task_id
            queueing.queue_run(run)
        return new_task_id

    try:
        lifecycle.when_database_answers(settle)
    except lifecycle.DATABASE_ERRORS:
        log.warning("Export run %s: the database did not come back; the reaper will settle it", lease.run_id)


def publish_run(lease, run, key, rows, size):
    """running → succeeded with the stored file `key`, exposed to the owner; None (file deleted) if the lease was lost."""
    finished = timezone.now()
    writer_class = get_writer(run.parameters["format"])
    fields = {
        "file_key": key, "rows": rows, "bytes": size, "duration": finished - run.started_at,
        "filename": run_filename(run, writer_class.file_extension, finished),
        "expires_at": finished + datetime.timedelta(seconds=exports_conf.EXPORT_FILE_EXPIRY),
    }
    if not lifecycle.succeed(lease, fields, now=finished):
        log.warning("Export run %s: lease lost before publishing; deleting %s", run.pk, key)
        delete_quietly(key)
        return None
    run.refresh_from_db()
    expose_blob_download(
        key, exports_conf.EXPORT_FILE_EXPIRY, file_extension=writer_class.file_extension,
        mimetype=writer_class.mimetype, content_disposition=run.filename, download_id=run.download_id,
        owner_ids=[run.owner_id], storage_alias=exports_conf.EXPORTS_STORAGE, extras=access.run_download_extras(run),
    )
    return run


def run_filename(run, file_extension, when):
    """The file's name: the definition's and the local time, or the admin export's own ("form-submissions-…")."""
    if run.admin_export:
        return f"{run.admin_export['name']}{file_extension}"
    return export_filename(run.definition, file_extension, when)


def cancel_export(user, run):
    """Ask a run to stop: a queued run is cancelled at once, a running one within a couple of seconds."""
    if run.owner_id != user.pk:
        raise PermissionDenied(gettext("Only the person who started an export can cancel it."))
    if run.is_active:
        lifecycle.request_cancel(run)
        run.refresh_from_db()
    return run


class DeleteRefused(ExportRefused):
    """The run cannot be deleted now; the message says why."""


def delete_run(user, run):
    """Delete a finished run of the user's own: its row, its stored file and its soil record.

    A queued or running run is refused in words (DeleteRefused): cancelling is a separate, visible step,
    and a build under way must not lose its row. Only the owner may delete (PermissionDenied otherwise).
    """
    if run.owner_id != user.pk:
        raise PermissionDenied("Only the person who started an export can delete it.")
    # One compare-and-set: a run that is (still) active is never deleted.
    deleted, _per_model = ExportRun.objects.filter(pk=run.pk).exclude(status__in=ExportRun.ACTIVE).delete()
    if not deleted:
        if ExportRun.objects.filter(pk=run.pk).exists():
            raise DeleteRefused(words.ACTIVE_DELETE_WORDS)
        return False  # deleted meanwhile (a second click): nothing left to do
    delete_quietly(run.file_key)
    if run.download_id:
        forget_download(run.download_id)
    return True




class NoEmailAddress(ExportRefused):
    """The user asked for an email but their account has no address to send it to."""


def can_email(user):
    """Whether a 'your export is ready' email can reach `user`."""
    return bool(user.email)


def request_email(user, run):
    """Email the owner when the run is ready (at once if it already is).

    Raises NoEmailAddress, and changes nothing, when the account has no email address.
    """
    if run.owner_id != user.pk:
        raise PermissionDenied(gettext("Only the person who started an export can ask for its email."))
    if not can_email(user):
        raise NoEmailAddress(str(words.NO_EMAIL_WORDS))
    ExportRun.objects.filter(pk=run.pk).update(notify_by_email=True)
    run.refresh_from_db()
    if run.status == Status.SUCCEEDED:
        queueing.queue_ready_email(run)
    return run


def send_ready_email(run_id):
    """Send the 'your export is ready' email once; returns whether this call sent it."""
    claimed = ExportRun.objects.filter(
        pk=run_id, status=Status.SUCCEEDED, notify_by_email=True, email_sent_at__isnull=True
    ).update(email_sent_at=timezone.now())
    if not claimed:
        return False
    run = ExportRun.objects.select_related("definition", "owner", "domain").get(pk=run_id)
    if not run.owner.email:
        return False
    link = exports_conf.SITE_URL.rstrip("/") + reverse("exports:run", args=[run.pk])
    # In the run's language: exports.tasks runs this under translation.override(run.language).
    send_mail(
        subject=gettext("Your export '%(name)s' is ready") % {"name": one_line(run.name)},
        message=gettext("Your export of %(rows)s is ready until %(expires)s.\n\nDownload it here: %(link)s\n") % {
            "rows": format_rows(run.rows), "expires": format_local_time(run.expires_at, run.domain.time_zone),
            "link": link},
        from_email=None,
        recipient_list=[run.owner.email],
    )
    return True


def expire_runs(now=None):
    """Delete the files of runs past their expiry and mark them expired; returns how many."""
    now = now or timezone.now()
    expired = 0
    for run in ExportRun.objects.filter(status=Status.SUCCEEDED, expires_at__lte=now).iterator():
        if lifecycle.expire(run, now):
            delete_quietly(run.file_key)
            forget_download(run.download_id)
            expired += 1
    return expired


def forget_download(download_id):
    """Drop the soil record of a download; it only mirrors the run, so Redis being down is no error."""
    try:
        DownloadBase(download_id=download_id).delete()
    except Exception:  # noqa: BLE001
        log.warning("Could not delete the soil record of download %s", download_id, exc_info=True)
