"""The API's interactive page in a real browser: a logged-in user reads the operations and tries one with
their session (the page sends the CSRF token); nobody else gets the page."""
import pytest

from exports.demo import ensure_demo_domain

pytestmark = [pytest.mark.browser]


def test_a_logged_in_user_lists_their_domains_from_the_api_page(logged_in_page, live_server, alice):
    ensure_demo_domain(slug="docs-clinic", name="Docs clinic", members=[alice])
    page = logged_in_page
    page.goto(f"{live_server.url}/api/v1/docs")
    operation = page.locator("#operations-domains_and_definitions-list_domains")
    operation.locator(".opblock-summary").click()
    page.get_by_role("button", name="Try it out").click()
    page.get_by_role("button", name="Execute").click()
    body = page.locator(".responses-wrapper .live-responses-table .response-col_description pre").first
    body.wait_for()
    assert '"docs-clinic"' in body.inner_text()


def test_the_api_page_sends_a_visitor_to_the_login_page(page, live_server):
    page.goto(f"{live_server.url}/api/v1/docs")
    assert "/accounts/login/" in page.url
