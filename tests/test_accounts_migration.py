"""ApiToken and UserPreference moved from exports to accounts: a database migrated before the move keeps
its rows, and a token made then still signs its script in after it; so do its permissions."""
import pytest
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from project.accounts.models import ApiToken, UserPreference
from project.accounts.preferences import stored_language
from project.accounts.tokens import digest, user_for_token

# The last migrations before the move: exports' head then, and no accounts at all.
BEFORE_THE_MOVE = [("exports", "0007_run_last_progress"), ("accounts", None)]
TOKEN = "exp_made-before-the-move-0123456789abcdefghijklmnop"


def migrate(targets=None):
    """Migrate to `targets` (default: every app's latest) and return the apps of that state."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    state = executor.migrate(targets)
    ContentType.objects.clear_cache()
    return state.apps


@pytest.mark.django_db(transaction=True)
def test_a_token_and_a_language_stored_before_the_move_are_there_and_used_after_it(alice):
    try:
        old = migrate(BEFORE_THE_MOVE)
        old.get_model("exports", "ApiToken").objects.create(
            user_id=alice.pk, name="nightly sync", prefix=TOKEN[:10], digest=digest(TOKEN))
        old.get_model("exports", "UserPreference").objects.create(user_id=alice.pk, language="fr")
        old_type = old.get_model("contenttypes", "ContentType").objects.get(app_label="exports", model="apitoken")
        old_permission = old.get_model("auth", "Permission").objects.get(
            content_type=old_type, codename="add_apitoken")
        alice.user_permissions.add(old_permission.pk)
    finally:
        migrate()

    token = ApiToken.objects.get()
    assert (token.user, token.name, token.digest) == (alice, "nightly sync", digest(TOKEN))
    assert user_for_token(TOKEN) == alice
    assert token.scope == ApiToken.Scope.WRITE  # made before scopes existed: it may still do everything
    assert UserPreference.objects.get().user == alice and stored_language(alice) == "fr"
    # The content type moved with its model: the same row, so permissions and admin history stay.
    assert ContentType.objects.get_for_model(ApiToken).pk == old_type.pk
    assert not ContentType.objects.filter(app_label="exports", model__in=["apitoken", "userpreference"]).exists()
    assert Permission.objects.get(pk=old_permission.pk).content_type.app_label == "accounts"
    assert type(alice).objects.get(pk=alice.pk).has_perm("accounts.add_apitoken")
