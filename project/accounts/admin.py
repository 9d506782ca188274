from django.contrib import admin, messages
from django.contrib.auth import admin as auth_admin  # registers Django's UserAdmin, replaced below
from django.contrib.auth import get_user_model
from django.db.models import Q

from project.admin_actions import CheckedSelectionAdminMixin

from . import tokens
from .models import ApiToken

User = get_user_model()


@admin.register(ApiToken)
class ApiTokenAdmin(CheckedSelectionAdminMixin, admin.ModelAdmin):
    """Tokens: a staff user sees and makes their own, a superuser anyone's. The token is shown once."""

    list_display = ["name", "user", "scope", "prefix", "created_at", "last_used_at"]
    search_fields = ["name", "user__username", "prefix"]
    readonly_fields = ["prefix", "created_at", "last_used_at"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["user", "name", "scope"] if request.user.is_superuser else ["name", "scope"]
        return ["user", "name", "scope", "prefix", "created_at", "last_used_at"]

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



class DomainScopedUserAdmin(CheckedSelectionAdminMixin, auth_admin.UserAdmin):
    """Django's UserAdmin, scoped: a staff member sees and changes only themselves and the people who share
    a domain with them, and cannot grant superuser status, groups or permissions; superusers keep it all.

    "domains" is the reverse name of the exports Domain's members (a lookup, not an import: project
    imports nothing of exports but its metrics).
    """

    staff_readonly_fields = ["is_superuser", "groups", "user_permissions"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        shared = User._default_manager.filter(domains__members=request.user).values("pk")
        return queryset.filter(Q(pk__in=shared) | Q(pk=request.user.pk))

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else fields + self.staff_readonly_fields


admin.site.unregister(User)
admin.site.register(User, DomainScopedUserAdmin)
