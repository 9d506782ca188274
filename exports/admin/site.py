"""The admin, scoped by domain: a staff user sees and picks only the domains they belong to (superusers
see all). A definition's domain is fixed once it is made."""
from django.contrib import admin

from exports.admin.actions import AsyncExportAdminMixin
from exports.models import Domain, ExportDefinition, ExportRun, FormSubmission, SavedExport
from exports.saved import services as saved_exports
from project.admin_actions import CheckedSelectionAdminMixin


def domains_of(user):
    return Domain.objects.all() if user.is_superuser else Domain.objects.filter(members=user)


class DomainScopedAdmin(CheckedSelectionAdminMixin, admin.ModelAdmin):
    """Rows, list filters and foreign-key choices limited to the staff user's domains; actions refuse
    selected ids that are not ids in a message (project.admin_actions)."""

    domain_path = "domain"  # how the model reaches its Domain

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.domain_path}__members": request.user}).distinct()

    def domains_of_rows(self, queryset):
        """The domains `queryset`'s rows belong to: an admin export makes one run for each
        (exports.admin.actions)."""
        return Domain.objects.filter(pk__in=queryset.order_by().values(self.domain_path)).order_by("slug")

    def rows_of_domain(self, queryset, domain):
        """`queryset`'s rows that belong to `domain`: what the export run of that domain writes."""
        return queryset.filter(**{self.domain_path: domain})

    def exported_domains(self, queryset):
        """The slugs of the domains `queryset`'s rows belong to: an admin export records them, and its
        file is only served to someone who is still a member of each (exports.runs.access)."""
        domain_ids = queryset.order_by().values(self.domain_path)
        return list(Domain.objects.filter(pk__in=domain_ids).values_list("slug", flat=True))

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "domain":
            kwargs["queryset"] = domains_of(request.user)
        elif db_field.name == "definition":
            kwargs["queryset"] = ExportDefinition.objects.filter(domain__in=domains_of(request.user))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Domain)
class DomainAdmin(DomainScopedAdmin):
    list_display = ["slug", "name", "time_zone"]
    search_fields = ["slug", "name"]
    filter_horizontal = ["members"]

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        return queryset if request.user.is_superuser else queryset.filter(members=request.user)

    def has_add_permission(self, request):
        return request.user.is_superuser and super().has_add_permission(request)

    def save_model(self, request, obj, form, change):
        saved_exports.save_domain(obj)  # a new time zone moves the saved exports' next builds

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "members" and not request.user.is_superuser:
            # Only people who already share a domain with this staff user; a superuser adds newcomers.
            user_model = db_field.remote_field.model
            kwargs["queryset"] = user_model.objects.filter(domains__in=domains_of(request.user)).distinct()
        return super().formfield_for_manytomany(db_field, request, **kwargs)


@admin.register(ExportDefinition)
class ExportDefinitionAdmin(DomainScopedAdmin):
    list_display = ["name", "domain", "source", "format", "is_daily_saved"]
    list_filter = [("domain", admin.RelatedOnlyFieldListFilter), "format", "source", "is_daily_saved"]
    search_fields = ["name", "domain__slug"]

    def save_model(self, request, obj, form, change):
        saved_exports.save_definition(obj)  # a daily saved export gets its schedule

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["domain"] if obj is not None else fields


@admin.register(ExportRun)
class ExportRunAdmin(AsyncExportAdminMixin, DomainScopedAdmin):
    list_display = ["id", "definition", "owner", "status", "rows", "bytes", "duration", "created_at", "expires_at"]
    list_filter = ["status", ("domain", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["id", "owner__username", "definition__name"]
    readonly_fields = [field.name for field in ExportRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(FormSubmission)
class FormSubmissionAdmin(AsyncExportAdminMixin, DomainScopedAdmin):
    """The demo data, read-only: a big list to filter, search and export in the background."""

    list_display = ["received_on", "domain", "form_name", "submitted_by", "patient_name", "village", "age",
                    "weight_kg", "visit_date", "is_follow_up"]
    list_filter = ["form_name", ("domain", admin.RelatedOnlyFieldListFilter), "is_follow_up"]
    search_fields = ["patient_name", "submitted_by", "village", "form_id"]
    export_fields = list_display + ["form_id", "notes"]
    export_source = "form_submissions"  # the same labels as an export from the domain's page
    ordering = ["-received_on", "-id"]
    show_full_result_count = False  # one count of a million rows per page is enough

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(SavedExport)
class SavedExportAdmin(DomainScopedAdmin):
    domain_path = "definition__domain"
    list_display = ["definition", "next_build_at", "last_build_at", "last_build_duration", "rows", "bytes",
                    "last_downloaded_at"]
    list_filter = [("definition__domain", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["definition__name", "definition__domain__slug"]
    readonly_fields = ["file_key", "filename", "last_build_at", "last_build_duration", "rows", "bytes",
                       "last_build_error", "last_downloaded_at", "last_scheduled_at", "rebuild_download_id"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields + ["definition"] if obj is not None else fields

