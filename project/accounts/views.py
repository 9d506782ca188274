"""The account pages: API tokens, the language choice, and the throttled login and password-reset views."""
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import i18n
from django.views.decorators.http import require_POST

from . import preferences, tokens
from .forms import TokenForm
from .throttling import login_failures_guard, password_reset_guard


@login_required
def api_tokens(request):
    """The user's API tokens: make one (shown once), see when each was last used."""
    form = TokenForm(request.POST or None)
    new_token = None
    if request.method == "POST" and form.is_valid():
        try:
            _row, new_token = tokens.create_token(request.user, form.cleaned_data["name"],
                                                    form.cleaned_data["scope"])
            form = TokenForm()  # a blank form for the next one
        except tokens.TokenRefused as refusal:
            form.add_error("name", str(refusal))
    context = {"form": form, "tokens": tokens.tokens_of(request.user), "new_token": new_token}
    return render(request, "accounts/api_tokens.html", context, status=400 if form.errors else 200)


@login_required
@require_POST
def revoke_api_token(request, token_id):
    if tokens.revoke_token(request.user, token_id):
        messages.info(request, _("The token was revoked; scripts that use it are refused from now on."))
    return redirect("api_tokens")


@require_POST
def set_language(request):
    """Django's set_language (the footer's selector); a logged-in user's choice is also stored, for their next login."""
    response = i18n.set_language(request)
    chosen = response.cookies.get(settings.LANGUAGE_COOKIE_NAME)
    if chosen is not None and request.user.is_authenticated and preferences.is_offered(chosen.value):
        preferences.store_language(request.user, chosen.value)
    return response


login = login_failures_guard(auth_views.LoginView.as_view())
# The email signs with the product's name ("The Exports team"), not the host it was asked on.
password_reset = password_reset_guard(auth_views.PasswordResetView.as_view(
    extra_email_context={"site_name": gettext_lazy("Exports")}))
admin_login = login_failures_guard(admin.site.login)
