"""Domains (tenants), what they export, each export run, and the demo data.

Models hold data and small invariants (a canonical zone, a one-line name). What follows from a change
(a saved export's schedule, its file) is done by the service that makes the change:
exports.saved.services.save_domain and save_definition.
"""
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from exports.conf import exports_conf
from exports.formatting import one_line
from exports.sources import SourceError, get_source
from exports.validators import DATE_ORDER_MESSAGE, validate_date_in_range, validate_time_zone
from exports.writers import WRITERS

# The formats are the writers' (exports.writers.WRITERS): xlsx, csv and zip, with the labels users see,
# in their language (the writers know no Django; their labels are marked for the catalogue here).
FORMAT_LABELS_TO_TRANSLATE = (gettext_noop("Excel (xlsx)"), gettext_noop("CSV"), gettext_noop("Zipped CSV"))
FORMAT_CHOICES = [(name, _(writer.format_label)) for name, writer in WRITERS.items()]


def format_label(name):
    """The label of the format `name` in the active language ("Zipped CSV", "CSV zippé"); `name` if unknown."""
    writer = WRITERS.get(name)
    return gettext(writer.format_label) if writer and writer.format_label else (name or "")


def validate_time_zone_field(value):
    """Refuse an unknown time zone with a message; return the canonical spelling of a known one."""
    try:
        return validate_time_zone(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


def canonical_time_zone(name):
    """`name` spelled as IANA spells it ('asia/kathmandu' gives 'Asia/Kathmandu'); an unknown name unchanged."""
    try:
        return validate_time_zone(name)
    except ValueError:
        return name


class Domain(models.Model):
    """A tenant: its members see and export its data, nobody else does."""

    slug = models.SlugField(_("slug"), unique=True)
    name = models.CharField(_("name"), max_length=200)
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC", validators=[validate_time_zone_field],
                                 help_text=_("IANA name, e.g. Europe/Paris; exports show times in it."))
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="domains", blank=True,
                                     verbose_name=_("members"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("domain")
        verbose_name_plural = _("domains")

    def __str__(self):
        return self.name

    def clean(self):
        # The field's validator reports an unknown zone; a known one is kept in its canonical spelling.
        self.time_zone = canonical_time_zone(self.time_zone)

    def save(self, *args, **kwargs):
        # Refuse an unknown zone on every save, not only through forms, and store the canonical spelling.
        self.time_zone = validate_time_zone_field(self.time_zone)
        super().save(*args, **kwargs)


class ExportDefinition(models.Model):
    """A saved choice of source, columns, filter and format for one domain."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="definitions", verbose_name=_("domain"))
    name = models.CharField(_("name"), max_length=200)
    source = models.CharField(_("source"), max_length=64, help_text=_("A source registered in exports.sources."))
    columns = models.JSONField(_("columns"), default=list, blank=True, help_text=_("Column keys; empty means all."))
    date_from = models.DateField(_("date from"), null=True, blank=True)
    date_to = models.DateField(_("date to"), null=True, blank=True)
    format = models.CharField(_("format"), max_length=8, choices=FORMAT_CHOICES, default="xlsx")
    is_daily_saved = models.BooleanField(
        _("daily saved export"), default=False,
        help_text=_("Rebuild every night at midnight in the domain's time zone; members download it from a "
                    "stable link."))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("export definition")
        verbose_name_plural = _("export definitions")
        constraints = [models.UniqueConstraint(fields=["domain", "name"], name="unique_definition_name")]

    def __str__(self):
        return f"{self.domain.slug}: {self.name}"

    def clean(self):
        self.name = one_line(self.name)
        if not self.name:
            raise ValidationError({"name": gettext("Give the export a name.")})
        try:
            source = get_source(self.source)
            source.columns_for(self.columns)
        except SourceError as exc:
            raise ValidationError(str(exc)) from None
        errors = {}
        for field, what in (("date_from", gettext("The start date")), ("date_to", gettext("The end date"))):
            try:
                validate_date_in_range(getattr(self, field), what)
            except ValidationError as error:
                errors[field] = error
        if errors:
            raise ValidationError(errors)
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValidationError(DATE_ORDER_MESSAGE)
        check_saved_exports_cap(self)

    def save(self, *args, **kwargs):
        # The name goes into mail subjects and file names: no line breaks or control characters.
        self.name = one_line(self.name)
        super().save(*args, **kwargs)


def check_saved_exports_cap(definition):
    """A ValidationError if making `definition` a daily saved export goes over the domain's cap."""
    if not definition.is_daily_saved or definition.domain_id is None:
        return
    cap = exports_conf.SAVED_EXPORTS_MAX_PER_DOMAIN
    others = ExportDefinition.objects.filter(domain_id=definition.domain_id, is_daily_saved=True)
    if definition.pk:
        others = others.exclude(pk=definition.pk)
    if others.count() >= cap:
        raise ValidationError({"is_daily_saved": gettext(
            "This domain has %(cap)d daily saved exports, the most it may have; untick one of them first.")
            % {"cap": cap}})


class ExportRun(models.Model):
    """One export a user asked for: the durable record, whatever happens to the task."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")
        EXPIRED = "expired", _("Expired")

    ACTIVE = (Status.QUEUED, Status.RUNNING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="export_runs",
                              verbose_name=_("owner"))
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="runs", verbose_name=_("domain"))
    # None for an export of an admin changelist (exports.admin.actions): `admin_export` says what it reads.
    definition = models.ForeignKey(ExportDefinition, on_delete=models.CASCADE, related_name="runs",
                                   null=True, blank=True, verbose_name=_("definition"))
    admin_export = models.JSONField(
        _("admin export"), null=True, blank=True,
        help_text=_("An admin changelist export: site, model, query, pks, fields, title, name (exports.admin)."))
    parameters = models.JSONField(_("parameters"), default=dict)
    parameters_key = models.CharField(_("parameters key"), max_length=64,
                                      help_text=_("Digest of the parameters, for dedupe."))
    status = models.CharField(_("status"), max_length=16, choices=Status.choices, default=Status.QUEUED)
    task_id = models.CharField(_("task id"), max_length=64, blank=True)
    download_id = models.CharField(_("download id"), max_length=64, blank=True)
    file_key = models.CharField(_("file key"), max_length=500, blank=True)
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    rows = models.PositiveBigIntegerField(_("rows"), null=True, blank=True)
    bytes = models.PositiveBigIntegerField(_("bytes"), null=True, blank=True)
    duration = models.DurationField(_("duration"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    cancel_requested = models.BooleanField(_("cancel requested"), default=False)
    # The lifecycle (exports.runs.lifecycle): how often the run was queued, and the lease of the build under way.
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0,
                                                help_text=_("How many times the run was queued."))
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    lease_id = models.CharField(_("lease id"), max_length=64, blank=True, help_text=_("The attempt holding the build."))
    lease_owner = models.CharField(_("lease owner"), max_length=200, blank=True,
                                   help_text=_("host:pid of the process building it."))
    lease_expires_at = models.DateTimeField(_("lease expires at"), null=True, blank=True)
    notify_by_email = models.BooleanField(_("email when ready"), default=False)
    email_sent_at = models.DateTimeField(_("email sent at"), null=True, blank=True)
    # The language the owner used when asking for it: its progress words, errors and email are in it.
    language = models.CharField(_("language"), max_length=16, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    # Where a failed or cancelled build stopped, {"current", "total", "percent"}: Redis forgets it, the page shows it.
    last_progress = models.JSONField(_("last progress"), null=True, blank=True,
                                     help_text=_("The last progress of a build that stopped."))

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["owner", "-created_at"]),
            models.Index(fields=["status", "expires_at"]),
            models.Index(fields=["status", "lease_expires_at"]),
        ]
        verbose_name = _("export run")
        verbose_name_plural = _("export runs")
        constraints = [
            # At most one queued or running run per (user, definition, parameters).
            models.UniqueConstraint(
                fields=["owner", "definition", "parameters_key"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_run_per_request",
            ),
        ]

    def __str__(self):
        return f"{self.domain.slug}: {self.name} by {self.owner} ({self.status})"

    @property
    def name(self):
        """What the run exports, as a person reads it: its definition's name, or the admin list's."""
        if self.admin_export:
            return gettext("%(things)s, from the admin") % {"things": self.admin_export.get("title", "")}
        return self.definition.name

    @property
    def is_active(self):
        return self.status in self.ACTIVE

    @property
    def is_expired(self):
        return self.status == self.Status.EXPIRED or (
            self.status == self.Status.SUCCEEDED and self.expires_at is not None and self.expires_at <= timezone.now()
        )

    @property
    def display_status(self):
        """The status a person (or script) is shown, computed at read time: a succeeded run whose file is
        past its expiry is 'expired' even before the cleanup task marks it so. Pages, the API and the
        download views all read this, never `status`, to decide what to show."""
        return self.Status.EXPIRED if self.is_expired else self.Status(self.status)

    @property
    def display_status_label(self):
        return self.display_status.label

    @property
    def has_file(self):
        """Whether the run's file may be downloaded now."""
        return self.display_status == self.Status.SUCCEEDED


class SavedExport(models.Model):
    """The nightly build of a daily saved definition: its schedule and its latest file.

    The file behind the stable link is replaced only after a new build succeeds.
    """

    definition = models.OneToOneField(ExportDefinition, on_delete=models.CASCADE, related_name="saved",
                                      verbose_name=_("definition"))
    next_build_at = models.DateTimeField(_("next build at"), db_index=True,
                                         help_text=_("The next local midnight to build at (UTC)."))
    last_scheduled_at = models.DateTimeField(_("last scheduled at"), null=True, blank=True)
    file_key = models.CharField(_("file key"), max_length=500, blank=True)
    filename = models.CharField(_("file name"), max_length=255, blank=True)
    last_build_at = models.DateTimeField(_("last build at"), null=True, blank=True)
    last_build_duration = models.DurationField(_("last build duration"), null=True, blank=True)
    rows = models.PositiveBigIntegerField(_("rows"), null=True, blank=True)
    bytes = models.PositiveBigIntegerField(_("bytes"), null=True, blank=True)
    last_build_error = models.TextField(_("last build error"), blank=True)
    last_downloaded_at = models.DateTimeField(_("last downloaded at"), null=True, blank=True)
    rebuild_download_id = models.CharField(_("rebuild download id"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("saved export")
        verbose_name_plural = _("saved exports")

    def __str__(self):
        return f"saved {self.definition}"

    @property
    def has_file(self):
        return bool(self.file_key)


def uuid_text():
    return str(uuid.uuid4())


class FormSubmission(models.Model):
    """Demo data: form submissions received from the field, the shipped export source."""

    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="submissions", verbose_name=_("domain"))
    form_id = models.CharField(_("form id"), max_length=36, default=uuid_text)
    received_on = models.DateTimeField(_("received on"))
    submitted_by = models.CharField(_("submitted by"), max_length=150)
    form_name = models.CharField(_("form name"), max_length=200)
    patient_name = models.CharField(_("patient name"), max_length=200, blank=True)
    village = models.CharField(_("village"), max_length=200, blank=True)
    age = models.IntegerField(_("age"), null=True, blank=True)
    weight_kg = models.DecimalField(_("weight (kg)"), max_digits=6, decimal_places=2, null=True, blank=True)
    visit_date = models.DateField(_("visit date"), null=True, blank=True)
    is_follow_up = models.BooleanField(_("follow-up visit"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)

    class Meta:
        # (domain, form_name) and (domain, submitted_by): the export dialog lists their values by index seeks
        # (exports.sources.distinct_values) and a filtered export finds its rows without reading the others.
        indexes = [models.Index(fields=["domain", "received_on", "id"]),
                   models.Index(fields=["domain", "form_name"], name="exports_sub_domain_form_name"),
                   models.Index(fields=["domain", "submitted_by"], name="exports_sub_domain_submitter")]
        verbose_name = _("form submission")
        verbose_name_plural = _("form submissions")

