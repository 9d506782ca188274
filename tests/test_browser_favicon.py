"""The site has an icon: every page names it, the old /favicon.ico leads to it, and no page a person
opens asks the server for something it answers 404."""
import pytest

from exports.demo import ensure_demo_domain


@pytest.mark.django_db
def test_every_kind_of_page_names_the_icon_and_favicon_ico_leads_to_it(client, alice):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    ensure_demo_domain(slug="clinic", members=[alice])
    icon = '<link rel="icon" href="/static/project/favicon.svg" type="image/svg+xml">'
    assert icon in client.get("/accounts/login/").content.decode()
    client.force_login(alice)
    for url in ("/", "/exports/", "/exports/clinic/", "/exports/mine/", "/admin/", "/admin/exports/formsubmission/"):
        assert icon in client.get(url, follow=True).content.decode(), url
    old_way = client.get("/favicon.ico")
    assert old_way.status_code == 301 and old_way["Location"] == "/static/project/favicon.svg"


@pytest.mark.browser
def test_no_page_asks_for_something_that_is_not_there(logged_in_page, live_server, alice, transactional_db):
    alice.is_staff = alice.is_superuser = True
    alice.save()
    ensure_demo_domain(slug="clinic", members=[alice])
    page = logged_in_page
    missing = []
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
    for url in ("/", "/exports/", "/exports/clinic/", "/exports/mine/", "/admin/", "/admin/exports/formsubmission/"):
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
    icon = page.request.get(f"{live_server.url}/favicon.ico")
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml")
    assert missing == []
