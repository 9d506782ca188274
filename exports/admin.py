from django.contrib import admin

from .models import Domain, ExportDefinition, ExportRun, SavedExport


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "time_zone"]
    search_fields = ["slug", "name"]
    filter_horizontal = ["members"]

@admin.register(ExportDefinition)
class ExportDefinitionAdmin(admin.ModelAdmin):
    list_display = ["name", "domain", "source", "format", "is_daily_saved"]
    list_filter = ["format", "source", "is_daily_saved"]
    search_fields = ["name", "domain__slug"]

@admin.register(ExportRun)
class ExportRunAdmin(admin.ModelAdmin):
    list_display = ["id", "definition", "owner", "status", "rows", "bytes", "duration", "created_at", "expires_at"]
    list_filter = ["status"]
    search_fields = ["id", "owner__username", "definition__name"]
    readonly_fields = [field.name for field in ExportRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(SavedExport)
class SavedExportAdmin(admin.ModelAdmin):
    list_display = ["definition", "next_build_at", "last_build_at", "last_build_duration", "rows", "bytes",
                    "last_downloaded_at"]
    search_fields = ["definition__name", "definition__domain__slug"]
    readonly_fields = ["file_key", "filename", "last_build_at", "last_build_duration", "rows", "bytes",
                       "last_build_error", "last_downloaded_at", "last_scheduled_at", "rebuild_download_id"]
