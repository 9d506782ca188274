from django.contrib import admin

from .models import Domain, ExportDefinition, ExportRun


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "time_zone"]
    search_fields = ["slug", "name"]
    filter_horizontal = ["members"]

@admin.register(ExportDefinition)
class ExportDefinitionAdmin(admin.ModelAdmin):
    list_display = ["name", "domain", "source", "format"]
    list_filter = ["format", "source"]
    search_fields = ["name", "domain__slug"]

@admin.register(ExportRun)
class ExportRunAdmin(admin.ModelAdmin):
    list_display = ["id", "definition", "owner", "status", "rows", "bytes", "duration", "created_at", "expires_at"]
    list_filter = ["status"]
    search_fields = ["id", "owner__username", "definition__name"]
    readonly_fields = [field.name for field in ExportRun._meta.fields]

    def has_add_permission(self, request):
        return False
