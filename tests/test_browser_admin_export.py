"""A staff member filters the form submissions in the admin, selects all of them, exports them in the
background as an export run, downloads the file and finds the run in My exports; axe-core checks the
changelist, the confirmation, the run's page and My exports."""
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

    # The export is a run: its page, whose heading names it (not "Preparing …" once it is ready).
    page.wait_for_url("**/exports/runs/*/")
    link = page.locator("#run-download")
    link.wait_for(state="visible", timeout=60_000)
    assert page.locator("#run-status").inner_text() == "Succeeded"
    assert page.locator("h1").inner_text() == "Form submissions, from the admin (csv)"
    found += serious_axe_violations(page, "run page (ready)")
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("form-submissions-admin-clinic-")
    assert download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8-sig", newline="") as exported:
        table = list(csv.reader(exported))
    # The labels and local times of an export of the same source from the domain's page.
    assert table[0][:3] == ["Received on (IST)", "Domain", "Form name"]
    assert "Weight (kg)" in table[0] and "Follow-up visit" in table[0]
    assert len(table) == 1 + 130
    assert {(row[1], row[2]) for row in table[1:]} == {("Admin clinic", "Registration")}

    # My exports lists it with its Download, Re-run and Delete.
    page.goto(f"{live_server.url}/exports/mine/")
    row = page.locator("#my-runs tbody tr").first
    assert "Form submissions, from the admin" in row.inner_text()
    for name in ("Download", "Re-run", "Delete"):
        assert row.get_by_role("link" if name == "Download" else "button", name=f"{name} Form submissions").count() == 1
    found += serious_axe_violations(page, "my exports")
    assert not found, "axe-core:\n" + "\n".join(found)
