"""A person makes an API token in Chromium, sees it once, and revokes it."""
import os

import pytest

from project.accounts.models import ApiToken
from project.accounts.tokens import user_for_token

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_person_makes_a_token_sees_it_once_and_revokes_it(logged_in_page, live_server, alice):
    page = logged_in_page
    page.click("text=API tokens")
    page.fill("input[name=name]", "laptop script")
    page.click("#create-token")
    token = page.locator("#new-token").inner_text()
    assert user_for_token(token) == alice
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=os.path.join(os.environ["SCREENSHOT_DIR"], "api-tokens.png"), full_page=True)
    page.goto(f"{live_server.url}/account/tokens/")
    assert token not in page.content() and "laptop script" in page.content()
    page.click("button:has-text(\"Revoke\")")
    page.wait_for_selector("text=The token was revoked")
    assert not ApiToken.objects.filter(user=alice).exists() and user_for_token(token) is None
