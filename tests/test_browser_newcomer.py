"""A newcomer's first hour, in Chromium: errors in sight, phones, cancelled as its own state, a delete
that asks, filter values from lists, columns moved by buttons, and words that read right."""
import datetime
import uuid

import pytest
from django.utils import timezone

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.formatting import format_local_time
from exports.models import ExportDefinition, ExportRun
from tests.test_browser_pages import AXE, ROOT, serious_axe_violations

pytestmark = [pytest.mark.browser]
Status = ExportRun.Status
RED = "rgb(207, 34, 46)"


@pytest.fixture
def clinic(alice, transactional_db):
    """alice's one domain, with 300 rows received on 2025-01-01 (so a later date range matches none)."""
    domain = ensure_demo_domain(slug="newcomer", name="Newcomer clinic", members=[alice])
    add_demo_rows(domain, 300)
    return domain


def definition(domain, name="Visits (short)"):
    return ExportDefinition.objects.get(domain=domain, name=name)


def dialog_url(base, chosen):
    return f"{base}/exports/{chosen.domain.slug}/definitions/{chosen.pk}/export/"


def make_run(owner, chosen, status, minutes_ago=0, **fields):
    fields.setdefault("parameters", {"format": "csv"})
    return ExportRun.objects.create(
        owner=owner, domain=chosen.domain, definition=chosen, parameters_key=uuid.uuid4().hex,
        task_id=str(uuid.uuid4()), download_id=uuid.uuid4().hex, status=status,
        created_at=timezone.now() - datetime.timedelta(minutes=minutes_ago), **fields)


def focused_id(page):
    return page.evaluate("() => document.activeElement && document.activeElement.id")


def in_view(page, locator):
    """Whether the element lies inside the viewport, without scrolling sideways or down."""
    box, size = locator.bounding_box(), page.viewport_size
    return box["x"] >= 0 and box["x"] + box["width"] <= size["width"] and 0 <= box["y"] < size["height"]


# --- 3: form errors summarised at the top, the focus on them ---

def test_the_dialogs_errors_are_summarised_at_the_top_with_the_focus_there(logged_in_page, live_server, clinic):
    page = logged_in_page
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(dialog_url(live_server.url, definition(clinic)))
    page.get_by_label("From").fill("2025-02-01")
    page.get_by_label("To", exact=True).fill("2025-01-01")
    page.get_by_role("button", name="Export", exact=True).click()
    summary = page.locator("#error-summary")
    summary.wait_for()
    assert focused_id(page) == "error-summary" and in_view(page, summary)
    link = summary.get_by_role("link", name="To: The start date is after the end date.")
    link.click()
    assert focused_id(page) == "id_date_to"


def test_the_domain_page_login_and_tokens_forms_summarise_their_errors(page, live_server, alice, clinic):
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", alice.username)
    page.fill("input[name=password]", "not the password")
    page.click("main button[type=submit]")
    page.locator("#error-summary").wait_for()
    assert focused_id(page) == "error-summary"
    assert "correct username and password" in page.locator("#error-summary").inner_text()

    page.fill("input[name=username]", alice.username)
    page.fill("input[name=password]", alice.raw_password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    chosen = definition(clinic)
    row = page.locator(f"#definition-{chosen.pk}")
    row.get_by_label("From").fill("2025-02-01")
    row.get_by_label("To").fill("2025-01-01")
    row.get_by_role("button", name=f"Export {chosen.name}").click()
    page.locator("#error-summary").wait_for()
    assert focused_id(page) == "error-summary" and in_view(page, page.locator("#error-summary"))
    page.locator("#error-summary a").click()
    assert focused_id(page) == f"id_d{chosen.pk}-format"

    page.goto(f"{live_server.url}/account/tokens/")
    page.locator("main form").first.evaluate("form => { form.noValidate = true; }")  # the server's words, not the browser's
    page.click("#create-token")  # no name
    page.locator("#error-summary").wait_for()
    assert focused_id(page) == "error-summary"


# --- 4: a phone shows rows as cards with their actions on screen ---

def test_on_a_phone_export_download_rerun_and_delete_are_on_screen(logged_in_page, live_server, alice, clinic):
    chosen = definition(clinic)
    make_run(alice, chosen, Status.SUCCEEDED, rows=300, bytes=12_000, file_key="exports/x.csv", filename="x.csv",
             expires_at=timezone.now() + datetime.timedelta(hours=2))
    page = logged_in_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/exports/{clinic.slug}/")
    export = page.get_by_role("button", name=f"Export {chosen.name}")
    export.scroll_into_view_if_needed()
    assert in_view(page, export)
    assert page.evaluate("() => [...document.querySelectorAll('.table-scroll')]"
                         ".every(box => box.scrollWidth <= box.clientWidth)")
    page.goto(f"{live_server.url}/exports/mine/")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    for name in (f"Download {chosen.name}", f"Re-run {chosen.name}", f"Delete {chosen.name}"):
        action = page.get_by_role("link", name=name).or_(page.get_by_role("button", name=name))
        action.scroll_into_view_if_needed()
        assert in_view(page, action), name


# --- 5: cancelled is its own state, in words and colour ---

def test_a_cancelled_run_reads_cancelled_not_failed_and_is_not_red(logged_in_page, live_server, alice, clinic):
    run = make_run(alice, definition(clinic), Status.CANCELLED, error="Cancelled by the user.",
                   finished_at=timezone.now(), last_progress={"current": 112, "total": 300, "percent": 37})
    page = logged_in_page
    page.goto(f"{live_server.url}/exports/runs/{run.pk}/")
    assert page.locator("#run-status").inner_text() == "Cancelled"
    stopped = page.locator("#run-stopped")
    assert stopped.locator(".soil-state").inner_text() == "Cancelled."
    assert "Failed" not in page.locator("main").inner_text()
    colours = [page.locator(selector).evaluate("el => getComputedStyle(el).color")
               for selector in ("#run-status", "#run-stopped .soil-state")]
    assert RED not in colours
    fill = stopped.locator(".soil-bar-fill").evaluate("el => getComputedStyle(el).backgroundColor")
    assert fill != RED
    page.goto(f"{live_server.url}/exports/mine/")
    cell = page.locator(f"#run-{run.pk} .run-status-cancelled")
    assert cell.inner_text().strip().endswith("Cancelled")
    assert cell.evaluate("el => getComputedStyle(el).color") not in (RED, "rgb(31, 35, 40)")  # coloured, not red


def test_the_live_page_turns_a_cancelled_status_into_its_own_words(page):
    """run.js over soil's widget: soil knows no cancelled state and would say "Failed." in red."""
    page.set_content('<p id="run-status-line" data-run-status="cancelled" data-cancelled-text="Cancelled.">'
                     '<strong id="run-status"></strong></p>'
                     '<div class="soil-progress soil-failed"><p class="soil-state">Failed.</p></div>')
    page.add_script_tag(content=(ROOT / "exports/static/exports/run.js").read_text())
    page.evaluate("""() => document.querySelector(".soil-progress").dispatchEvent(new CustomEvent("soil:status", {
        bubbles: true, detail: {run_status: "cancelled", run_status_display: "Cancelled", state: "failed"}}))""")
    assert page.locator(".soil-state").inner_text() == "Cancelled."
    assert "soil-failed" not in page.locator(".soil-progress").get_attribute("class")
    assert "run-cancelled" in page.locator("#run-status-line").get_attribute("class")


# --- 8: delete asks first, naming the run by format and time ---

def test_delete_asks_first_and_names_the_run_by_format_and_time(logged_in_page, live_server, alice, clinic):
    chosen = definition(clinic)
    older = make_run(alice, chosen, Status.FAILED, minutes_ago=90, error="Broken.")
    newer = make_run(alice, chosen, Status.FAILED, minutes_ago=5, error="Broken.",
                     parameters={"format": "xlsx"})
    named = f"“{chosen.name}” (Excel (xlsx), started {format_local_time(newer.created_at, clinic.time_zone)})"
    page = logged_in_page
    page.goto(f"{live_server.url}/exports/mine/")
    page.locator(f"#run-{newer.pk}").get_by_role("button", name=f"Delete {chosen.name}").click()
    assert named in page.locator("#delete-what").inner_text()
    assert ExportRun.objects.filter(pk=newer.pk).exists()
    page.click("#keep-run")
    page.wait_for_url(f"{live_server.url}/exports/mine/")
    assert ExportRun.objects.filter(pk=newer.pk).exists()
    page.locator(f"#run-{newer.pk}").get_by_role("button", name=f"Delete {chosen.name}").click()
    page.click("#confirm-delete")
    page.wait_for_url(f"{live_server.url}/exports/mine/")
    assert f"Deleted the export {named} and its file." in page.locator(".messages").inner_text()
    assert not ExportRun.objects.filter(pk=newer.pk).exists()
    assert ExportRun.objects.filter(pk=older.pk).exists()


# --- 9: filter values from lists; a warning before an empty export ---

def test_submitted_by_is_a_list_and_an_empty_export_is_warned_of_first(logged_in_page, live_server, alice, clinic):
    chosen = definition(clinic)
    page = logged_in_page
    page.goto(dialog_url(live_server.url, chosen))
    filters = page.get_by_role("group", name="Filters")
    who = filters.get_by_label("Submitted by")
    assert who.evaluate("el => el.tagName") == "SELECT"
    assert "amina" in who.locator("option").all_inner_texts()
    who.select_option("amina")
    page.get_by_label("From").fill("2026-06-01")  # the rows are from 2025-01-01: none match
    page.get_by_role("button", name="Export", exact=True).click()
    warning = page.locator("#no-rows-warning")
    warning.wait_for()
    assert "No rows match these filters" in warning.inner_text() and focused_id(page) == "no-rows-warning"
    assert not ExportRun.objects.filter(owner=alice).exists()
    assert page.locator("#id_filter_submitted_by").input_value() == "amina"  # kept
    page.get_by_role("button", name="Export anyway").click()
    page.wait_for_url("**/exports/runs/*/")
    run = ExportRun.objects.get(owner=alice)
    assert run.parameters["filters"] == {"submitted_by": "amina"} and run.parameters["date_from"] == "2026-06-01"


# --- 10: columns moved by buttons, from the keyboard ---

def test_columns_move_with_up_and_down_buttons_from_the_keyboard(logged_in_page, live_server, alice, clinic):
    chosen = definition(clinic)  # received on, submitted by, patient name, visit date, follow-up
    page = logged_in_page
    page.set_viewport_size({"width": 390, "height": 844})  # on a phone, the buttons are on screen
    page.goto(dialog_url(live_server.url, chosen))
    for name in ("Move Notes down", "Move Submitted by up"):  # the widest row's last button, and ours
        move = page.get_by_role("button", name=name)
        move.scroll_into_view_if_needed()
        assert in_view(page, move), name
    move.focus()
    page.keyboard.press("Enter")
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == "Move Submitted by up"
    page.get_by_role("button", name="Move Visit date up").focus()
    page.keyboard.press("Enter")
    assert page.get_by_label("Position of Submitted by").input_value() == "10"
    assert page.get_by_label("Position of Visit date").input_value() == "30"
    assert "Visit date is now at position 3." in page.locator("#column-moved").inner_text()
    page.get_by_role("button", name="Export", exact=True).click()
    page.wait_for_url("**/exports/runs/*/")
    assert ExportRun.objects.get(owner=alice).parameters["columns"] == [
        "submitted_by", "received_on", "visit_date", "patient_name", "is_follow_up"]


# --- 11: words ---

def test_the_home_page_is_the_exports_and_the_words_read_right(logged_in_page, live_server, alice, clinic):
    page = logged_in_page
    page.goto(f"{live_server.url}/")  # where login lands: alice's one domain, itself
    assert page.locator("h1").inner_text().startswith("Newcomer clinic")
    chosen = definition(clinic)
    assert page.locator(f"#definition-{chosen.pk} .definition-dates").inner_text() == "all dates"
    assert "Form submissions: 300 rows in this domain." in page.locator("main").inner_text()
    assert "{#" not in page.locator("main").inner_text()  # no template comment leaks onto the page
    run = make_run(alice, chosen, Status.SUCCEEDED, rows=3, bytes=100, file_key="exports/y.csv", filename="y.csv",
                   duration=datetime.timedelta(milliseconds=30), finished_at=timezone.now(),
                   expires_at=timezone.now() + datetime.timedelta(hours=2))
    page.goto(f"{live_server.url}/exports/runs/{run.pk}/")
    assert "built in under 0.1 s" in page.locator("#run-summary").inner_text()
    # The progress line's phrases, as site.css sets them apart (on the widget alone: a live page's
    # event stream would redraw it under the test).
    page.set_content('<div class="soil-progress"><p><span class="soil-percent"></span> <span class="soil-message">'
                     '</span> <span class="soil-eta"></span></p><p class="soil-state"></p><ul class="soil-errors">'
                     '</ul><p class="soil-alive-warning"></p><a class="soil-download" hidden></a>'
                     '<div class="soil-bar"><div class="soil-bar-fill"></div></div></div>')
    page.add_style_tag(path=str(ROOT / "project/static/project/site.css"))
    page.add_script_tag(content=(ROOT / "soil/static/soil/soil.js").read_text())
    page.evaluate("s => window.soil.render(document.querySelector('.soil-progress'), s)",
                  {"state": "started", "percent": 57, "message": "576,500 of 1,005,000 rows read, in parts",
                   "eta_seconds": 6, "errors": []})
    shown = page.evaluate("""() => ['.soil-percent', '.soil-message', '.soil-eta'].map(selector => {
        const el = document.querySelector('.soil-progress ' + selector);
        const before = getComputedStyle(el, '::before').content;
        return (before && before !== 'none' ? JSON.parse(before) : '') + el.textContent; }).join(' ')""")
    assert shown == "57% · 576,500 of 1,005,000 rows read, in parts · about 6 s left"


# --- axe on the pages changed here ---

@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
def test_the_changed_pages_have_no_serious_axe_violations(logged_in_page, live_server, alice, clinic, width, height):
    assert AXE.is_file(), f"axe-core is missing ({AXE.relative_to(ROOT)}): run `source setup.sh; ensure_axe_core`"
    page = logged_in_page
    page.set_viewport_size({"width": width, "height": height})
    chosen = definition(clinic)
    cancelled = make_run(alice, chosen, Status.CANCELLED, error="Cancelled by the user.",
                         last_progress={"current": 1, "total": 3, "percent": 33})
    page.goto(f"{live_server.url}/")
    found = serious_axe_violations(page, "/ (the home page)")
    row = page.locator(f"#definition-{chosen.pk}")
    row.get_by_label("From").fill("2025-02-01")
    row.get_by_label("To").fill("2025-01-01")
    row.get_by_role("button", name=f"Export {chosen.name}").click()
    page.locator("#error-summary").wait_for()
    found += serious_axe_violations(page, "domain page with an error")
    page.goto(dialog_url(live_server.url, chosen))
    found += serious_axe_violations(page, "dialog")
    page.get_by_label("From").fill("2026-06-01")
    page.get_by_role("button", name="Export", exact=True).click()
    page.locator("#no-rows-warning").wait_for()
    found += serious_axe_violations(page, "dialog with no rows")
    page.goto(f"{live_server.url}/exports/runs/{cancelled.pk}/")
    found += serious_axe_violations(page, "cancelled run")
    page.goto(f"{live_server.url}/exports/mine/")
    found += serious_axe_violations(page, "my exports (cards)" if width < 600 else "my exports")
    page.locator(f"#run-{cancelled.pk}").get_by_role("button", name=f"Delete {chosen.name}").click()
    page.locator("#delete-what").wait_for()
    found += serious_axe_violations(page, "delete confirmation")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    page.goto(f"{live_server.url}/account/tokens/")
    page.locator("main form").first.evaluate("form => { form.noValidate = true; }")
    page.click("#create-token")
    page.locator("#error-summary").wait_for()
    found += serious_axe_violations(page, "tokens with an error")
    page.context.clear_cookies()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", alice.username)
    page.fill("input[name=password]", "not the password")
    page.click("main button[type=submit]")
    page.locator("#error-summary").wait_for()
    found += serious_axe_violations(page, "login with an error")
    assert not found, f"axe-core at {width}x{height}:\n" + "\n".join(found)
