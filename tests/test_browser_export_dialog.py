"""A person opens the export dialog, unticks and moves columns, picks a filter, exports and opens the csv."""
import csv

import pytest

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition, FormSubmission
from tests.test_browser_pages import AXE, ROOT, UNNAMED_CONTROLS, serious_axe_violations

pytestmark = [pytest.mark.browser]


@pytest.fixture
def short(alice, transactional_db):
    domain = ensure_demo_domain(slug="dialog-browser", name="Dialog clinic", members=[alice])
    add_demo_rows(domain, 300)
    return ExportDefinition.objects.get(domain=domain, name="Visits (short)")


def dialog_path(definition):
    return f"/exports/{definition.domain.slug}/definitions/{definition.pk}/export/"


@pytest.mark.worker
def test_a_person_chooses_columns_and_a_filter_and_downloads_just_that(worker, logged_in_page, live_server, short):
    page = logged_in_page
    page.goto(f"{live_server.url}/exports/{short.domain.slug}/")
    page.locator(f"#definition-{short.pk}").get_by_role("link", name="Choose columns and filters").click()
    page.wait_for_url(f"**{dialog_path(short)}")

    # "Visits (short)": received on, submitted by, patient name, visit date, follow-up. Untick the patient's
    # name, move the visit date to the front, add the village after it, and keep Vaccination forms only.
    columns = page.get_by_role("group", name="Columns")
    columns.get_by_label("Patient name", exact=True).uncheck()
    page.get_by_label("Position of Visit date").fill("5")
    columns.get_by_label("Village", exact=True).check()
    page.get_by_label("Position of Village").fill("7")
    page.get_by_role("group", name="Filters").get_by_label("Form name").select_option("Vaccination")
    page.get_by_label("Format").select_option("csv")
    page.get_by_role("button", name="Export", exact=True).click()

    page.wait_for_url("**/exports/runs/*/")
    link = page.locator("#run-download")
    link.wait_for(state="visible", timeout=60_000)
    assert page.locator("#run-status").inner_text() == "Succeeded"
    with page.expect_download() as download_info:
        link.click()
    with open(download_info.value.path(), encoding="utf-8-sig", newline="") as csv_file:
        rows = list(csv.reader(csv_file))
    assert rows[0] == ["Visit date", "Village", "Received on (IST)", "Submitted by", "Follow-up visit"]
    vaccinations = FormSubmission.objects.filter(domain=short.domain, form_name="Vaccination")
    assert len(rows) - 1 == vaccinations.count() > 0
    assert sorted(row[1] for row in rows[1:]) == sorted(vaccinations.values_list("village", flat=True))


def test_dialog_errors_show_next_to_their_fields_and_keep_the_input(logged_in_page, live_server, short):
    page = logged_in_page
    page.goto(live_server.url + dialog_path(short))
    page.get_by_label("Position of Submitted by").fill("10")
    page.get_by_role("group", name="Filters").get_by_label("Submitted by").select_option("amina")
    page.get_by_role("button", name="Export", exact=True).click()
    error = page.locator("#id_position_submitted_by_error")
    assert "same position (10) as Received on" in error.inner_text()
    assert page.get_by_label("Position of Submitted by").get_attribute("aria-describedby") == error.get_attribute("id")
    assert page.locator("#id_filter_submitted_by").input_value() == "amina"
    assert "__all__" not in page.content()


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
def test_the_dialog_has_no_serious_or_critical_axe_violations(logged_in_page, live_server, short, width, height):
    assert AXE.is_file(), (f"axe-core is missing ({AXE.relative_to(ROOT)}): run "
                           "`source setup.sh; ensure_axe_core` (./test.sh does)")
    page = logged_in_page
    page.set_viewport_size({"width": width, "height": height})
    page.goto(live_server.url + dialog_path(short))
    found = serious_axe_violations(page, "export dialog")
    assert page.evaluate(UNNAMED_CONTROLS) == []
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    # With errors shown: a repeated position, a bad date range and a taken name.
    page.get_by_label("Position of Submitted by").fill("10")
    page.get_by_label("From").fill("2025-02-01")
    page.get_by_label("To", exact=True).fill("2025-01-01")
    page.get_by_label("Name of the new definition").fill(short.name)
    page.get_by_role("button", name="Save as definition").click()
    page.locator("#id_name_error").wait_for()
    found += serious_axe_violations(page, "export dialog with errors")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    assert not found, f"axe-core at {width}x{height}:\n" + "\n".join(found)
