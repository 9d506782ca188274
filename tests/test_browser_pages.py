"""The main pages on a phone (390x844): nothing wider than the screen, every control named, and the
progress widget's ARIA values and error state as a screen reader and a person see them."""
import datetime
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.tokens import default_token_generator
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from exports.demo import ensure_demo_domain
from exports.models import ExportDefinition, ExportRun, SavedExport
from exports.runs import lifecycle
from exports.saved.services import save_definition
from tests.test_redis_unavailable import dead_port

pytestmark = [pytest.mark.browser]
ROOT = Path(__file__).resolve().parent.parent
Status = ExportRun.Status
# axe-core, installed by setup.sh's ensure_axe_core (./test.sh calls it).
AXE = ROOT / ".run/node_modules/axe-core/axe.min.js"
AXE_RUN = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""

# The accessible name of each form control, as the accessible-name rules compute it for these cases
# (aria-labelledby, aria-label, <label>, a button's text or value, title); hidden inputs have none.
UNNAMED_CONTROLS = """() => {
  const named = el => {
    const byId = (el.getAttribute("aria-labelledby") || "").split(/\\s+/).filter(Boolean)
      .map(id => (document.getElementById(id) || {}).textContent || "").join(" ");
    const labels = Array.from(el.labels || []).map(label => label.textContent).join(" ");
    const own = el.tagName === "BUTTON" ? el.textContent
      : (["submit", "button", "reset"].includes(el.type) ? el.value : "");
    return [byId, el.getAttribute("aria-label"), labels, own, el.title].some(t => t && t.trim());
  };
  return Array.from(document.querySelectorAll("input, select, textarea, button"))
    .filter(el => el.type !== "hidden" && !named(el))
    .map(el => el.outerHTML.slice(0, 120));
}"""


@pytest.fixture
def phone(logged_in_page):
    logged_in_page.set_viewport_size({"width": 390, "height": 844})
    return logged_in_page


@pytest.fixture
def runs(alice, transactional_db, redis_client):
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    domain = ensure_demo_domain(slug="phone", name="Phone clinic", members=[alice])
    definition = ExportDefinition.objects.get(domain=domain, name="All form submissions")
    definition.is_daily_saved = True
    save_definition(definition)
    SavedExport.objects.filter(definition=definition).update(
        last_build_at=timezone.now(), rows=1_234_567, bytes=10_000_000,
        last_build_duration=datetime.timedelta(seconds=185))

    def run(status, **fields):
        return ExportRun.objects.create(
            owner=alice, domain=domain, definition=definition, parameters={"format": "xlsx"},
            parameters_key=f"{status}-{time.time()}", task_id=f"phone-{status}-{time.time()}",
            download_id=f"d-phone-{status}", status=status, queued_at=timezone.now(), **fields)

    done = run(Status.SUCCEEDED, rows=305_000, bytes=12_345_678, duration=datetime.timedelta(seconds=2.4),
               file_key="exports/none.xlsx", filename="none.xlsx",
               expires_at=timezone.now() + datetime.timedelta(hours=3))
    failed = run(Status.FAILED, error="The source table is gone: " + "a-very-long-word-" * 8)
    expired = run(Status.SUCCEEDED, rows=10, bytes=100, file_key="exports/gone.xlsx", filename="gone.xlsx",
                  expires_at=timezone.now() - datetime.timedelta(minutes=5))
    from project.accounts.tokens import create_token

    create_token(alice, "nightly sync script")
    running = run(Status.QUEUED)
    lifecycle.start(running.pk, running.task_id)
    return {"domain": domain, "definition": definition, "done": done, "failed": failed, "expired": expired,
            "running": running}


def pages(runs):
    domain, definition = runs["domain"], runs["definition"]
    return ["/", "/exports/", f"/exports/{domain.slug}/", f"/exports/{domain.slug}/definitions/{definition.pk}/",
            f"/exports/runs/{runs['done'].pk}/", f"/exports/runs/{runs['failed'].pk}/",
            f"/exports/runs/{runs['expired'].pk}/", f"/exports/runs/{runs['running'].pk}/?polling=off",
            "/account/tokens/", "/demo/"]


def reset_pages(page, base, user):
    """Open each password reset page in turn, and the 429 page on the way; yield a name for each."""
    reset = f"{base}/accounts/password_reset/"
    page.goto(reset)
    yield "/accounts/password_reset/"
    for attempt in range(3):  # the third goes over PASSWORD_RESET_RATE_PER_EMAIL (2/h)
        page.goto(reset)
        page.fill("input[name=email]", "nobody@example.com")
        with page.expect_navigation() as answer:
            page.click("main [type=submit]")
        if attempt == 0:
            assert page.url == f"{base}/accounts/password_reset/done/"
            yield "/accounts/password_reset/done/"
    assert answer.value.status == 429
    yield "/accounts/password_reset/ (429)"
    user.refresh_from_db()  # the token depends on last_login
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    page.goto(f"{base}/accounts/reset/{uid}/{default_token_generator.make_token(user)}/")
    assert page.url == f"{base}/accounts/reset/{uid}/set-password/"
    yield "/accounts/reset/<uid>/<token>/"
    page.goto(f"{base}/accounts/reset/{uid}/no-such-token/")
    yield "/accounts/reset/<uid>/<token>/ (invalid link)"
    page.goto(f"{base}/accounts/reset/done/")
    yield "/accounts/reset/done/"


def open_unavailable_page(page, base):
    """A download page while the cache points at a port where nothing listens: the 503 page."""
    cache = {**settings.CACHES["default"], "LOCATION": f"redis://127.0.0.1:{dead_port()}/0"}
    with override_settings(CACHES={"default": cache}):
        response = page.goto(base + reverse("retrieve_download", args=["0" * 32]))
    assert response.status == 503
    return "/downloads/<id>/ (503)"


def assert_fits_a_phone_and_names_every_control(page, where):
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"{where} is {width} px wide at 390 px"
    assert page.evaluate(UNNAMED_CONTROLS) == [], where


def test_main_pages_fit_a_phone_and_name_every_control(phone, live_server, alice, runs):
    for path in pages(runs):
        response = phone.goto(live_server.url + path)
        assert response.status == 200, path
        assert_fits_a_phone_and_names_every_control(phone, path)
    for where in reset_pages(phone, live_server.url, alice):
        assert_fits_a_phone_and_names_every_control(phone, where)
    assert_fits_a_phone_and_names_every_control(phone, open_unavailable_page(phone, live_server.url))


def error_pages(runs):
    """Pages people reach by a wrong, old or early link, with their status."""
    return [("/exports/runs/00000000-0000-4000-8000-000000000000/", 404),  # project/templates/404.html
            ("/downloads/no-such-download/", 404),  # soil's "expired or never existed"
            (f"/exports/runs/{runs['running'].pk}/download/", 409)]  # not ready yet


def serious_axe_violations(page, where):
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    page.add_script_tag(path=str(AXE))
    return [f"{where}: {v['id']} ({v['impact']}) {v['help']}; {v['targets']}"
            for v in page.evaluate(AXE_RUN) if v["impact"] in ("serious", "critical")]


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
def test_main_pages_have_no_serious_or_critical_axe_violations(page, live_server, alice, runs, width, height):
    assert AXE.is_file(), (f"axe-core is missing ({AXE.relative_to(ROOT)}): run "
                           "`source setup.sh; ensure_axe_core` (./test.sh does)")
    page.set_viewport_size({"width": width, "height": height})
    page.goto(f"{live_server.url}/accounts/login/")
    found = serious_axe_violations(page, "/accounts/login/ (logged out)")
    for where in reset_pages(page, live_server.url, alice):
        found += serious_axe_violations(page, where + " (logged out)")
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", alice.username)
    page.fill("input[name=password]", alice.raw_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    for path in pages(runs):
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        found += serious_axe_violations(page, path)
    for path, status in error_pages(runs):
        response = page.goto(live_server.url + path)
        assert response.status == status, path
        found += serious_axe_violations(page, f"{path} ({status})")
    found += serious_axe_violations(page, open_unavailable_page(page, live_server.url))
    # The progress widget's other looks, as soil.js draws them: failed (red), and ready with its link.
    running = f"/exports/runs/{runs['running'].pk}/?polling=off"
    render = "s => window.soil.render(document.querySelector('.soil-progress'), s)"
    page.goto(live_server.url + running)
    page.evaluate(render, {"state": "started", "percent": 40, "message": "400 of 1,000 rows", "eta_seconds": 90,
                           "errors": [], "is_alive": False})
    found += serious_axe_violations(page, running + " (workers silent)")
    page.evaluate(render, {"state": "failed", "percent": 0, "errors": ["bad row 3"]})
    found += serious_axe_violations(page, running + " (failed)")
    page.goto(live_server.url + running)
    page.evaluate(render, {"state": "success", "percent": 100, "errors": [], "is_ready": True, "has_file": True,
                           "download_url": "/downloads/x/"})
    found += serious_axe_violations(page, running + " (ready)")
    assert not found, f"axe-core at {width}x{height}:\n" + "\n".join(found)


def test_the_progress_bar_keeps_its_aria_values_and_announces_the_end(phone, live_server, runs):
    phone.goto(f"{live_server.url}/exports/runs/{runs['running'].pk}/?polling=off")
    bar = phone.locator(".soil-bar")
    assert bar.get_attribute("role") == "progressbar"
    assert bar.get_attribute("aria-valuenow") is not None
    assert phone.locator(".soil-state").get_attribute("aria-live") == "polite"
    assert phone.locator("#run-status-line").get_attribute("role") == "status"


def test_a_failed_task_turns_the_bar_red_where_it_stopped_with_the_error_once(page):
    page.set_content('<main><div class="soil-progress" data-state="started">'
                     '<div class="soil-bar" role="progressbar" aria-valuenow="0"><div class="soil-bar-fill"></div></div>'
                     '<p><span class="soil-percent"></span><span class="soil-message"></span><span class="soil-eta">'
                     '</span></p><p class="soil-state" aria-live="polite"></p><ul class="soil-errors"></ul>'
                     '<p class="soil-alive-warning"></p><a class="soil-download" hidden></a></div></main>')
    page.add_script_tag(content=(ROOT / "soil/static/soil/soil.js").read_text())
    render = "s => window.soil.render(document.querySelector('.soil-progress'), s)"
    page.evaluate(render, {"state": "started", "percent": 40, "message": "400 of 1,000 rows", "errors": []})
    assert page.locator(".soil-bar").get_attribute("aria-valuenow") == "40"
    page.evaluate(render, {"state": "failed", "percent": 0, "message": "bad row 3", "errors": ["bad row 3"]})
    widget = page.locator(".soil-progress")
    assert "soil-failed" in widget.get_attribute("class")
    assert page.locator(".soil-bar").get_attribute("aria-valuenow") == "40"
    assert page.locator(".soil-percent").inner_text() == "40%"
    assert page.locator(".soil-state").inner_text() == "Failed."
    assert widget.inner_text().count("bad row 3") == 1


def test_cancel_is_disabled_once_requested(page):
    page.set_content('<p id="run-status-line" data-run-status="running"><strong id="run-status"></strong></p>'
                     '<form id="cancel-form" onsubmit="return false"><button id="cancel-run">Cancel</button></form>'
                     '<span id="cancelling" hidden>Cancelling…</span>')
    page.add_script_tag(content=(ROOT / "exports/static/exports/run.js").read_text())
    page.evaluate("""() => document.dispatchEvent(new CustomEvent("soil:status", {detail: {
        run_status: "running", run_status_display: "Running", cancel_requested: true}}))""")
    assert page.locator("#cancel-run").is_disabled()
    assert page.locator("#cancelling").is_visible()
