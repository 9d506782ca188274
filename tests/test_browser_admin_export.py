"""A staff member filters the form submissions in the admin, selects all of them, exports them in the
background and downloads the file; axe-core checks the changelist, the confirmation and the progress page."""
import csv
import datetime

import pytest
from django.contrib.auth.models import Permission

from exports.demo import ensure_demo_domain
from exports.models import FormSubmission
from tests.test_browser_pages import AXE, serious_axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.worker]
START = datetime.datetime(2026, 3, 1, tzinfo=datetime.timezone.utc)

def add(domain, form_name, count):
    FormSubmission.objects.bulk_create([
        FormSubmission(domain=domain, received_on=START + datetime.timedelta(minutes=i), form_name=form_name,
                       submitted_by="amina", patient_name=f"{form_name} {i}", village="Kibera")
        for i in range(count)
    ])


def test_staff_export_the_filtered_changelist_in_the_background_and_download_it(worker, logged_in_page, live_server,
                                                                                 alice, bob):
    assert AXE.is_file(), "axe-core is missing: run `source setup.sh; ensure_axe_core`"
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])
    alice.user_permissions.add(Permission.objects.get(codename="view_formsubmission"))
    mine = ensure_demo_domain(slug="admin-clinic", name="Admin clinic", members=[alice])
    theirs = ensure_demo_domain(slug="other-clinic", name="Other clinic", members=[bob])
    add(mine, "Registration", 130)  # more than a page (100), so "Select all 130" is offered
    add(mine, "Vaccination", 40)
    add(theirs, "Registration", 25)

    page = logged_in_page
    page.goto(f"{live_server.url}/admin/")
    found = serious_axe_violations(page, "admin index")
    page.goto(f"{live_server.url}/admin/exports/formsubmission/")
    found += serious_axe_violations(page, "changelist")
    page.locator("#changelist-filter a", has_text="Registration").click()
    page.wait_for_url("**form_name=Registration**")
    page.locator("#action-toggle").check()
    page.locator(".actions .question a").click()  # "Select all 130 form submissions"
    assert "130" in page.locator(".actions .all").inner_text()
    page.locator("select[name=action]").select_option("export_changelist")
    page.locator("button[name=index]").click()

    page.locator(".export-count").wait_for()
    assert "You are exporting 130 rows of form submissions" in page.locator(".export-count").inner_text()
    found += serious_axe_violations(page, "confirmation")
    page.get_by_label("CSV", exact=True).check()
    page.locator("input[type=submit][value=Export]").click()

    page.wait_for_url("**/downloads/*/")
    link = page.locator("a.soil-download")
    link.wait_for(state="visible", timeout=60_000)
    assert page.locator(".soil-state").inner_text() == "Ready."
    found += serious_axe_violations(page, "progress page (ready)")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("form-submissions-") and download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8-sig", newline="") as exported:
        table = list(csv.reader(exported))
    assert table[0][:3] == ["Received on (UTC)", "Domain", "Form name"]
    assert len(table) == 1 + 130
    assert {(row[1], row[2]) for row in table[1:]} == {("Admin clinic", "Registration")}
    assert not found, "axe-core:\n" + "\n".join(found)
