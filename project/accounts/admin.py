from django.contrib import admin, messages

from . import tokens
from .models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens: a staff user sees and makes their own, a superuser anyone's. The token is shown once."""

    list_display = ["name", "user", "prefix", "created_at", "last_used_at"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name"] if request.user.is_superuser else ["name"]
        return ["user", "name", "prefix", "created_at", "last_used_at"]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["user"] if obj is not None else [])

    def save_model(self, request, obj, form, change):
        token = None
        if not change:
            if not request.user.is_superuser:
                obj.user = request.user
            token = tokens.issue(obj)
        super().save_model(request, obj, form, change)
        if token:
            messages.warning(request, f"The new token is {token} (copy it now; it is not shown again).")

