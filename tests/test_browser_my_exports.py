"""'My exports' in Chromium: it fits a phone (the table scrolls inside its box), axe-core finds nothing
serious, and a run is deleted through the page."""
import datetime
import uuid

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone

from exports.demo import ensure_demo_domain
from exports.files.storage import export_storage
from exports.models import ExportDefinition, ExportRun
from tests.test_browser_pages import AXE, ROOT, UNNAMED_CONTROLS, serious_axe_violations

pytestmark = [pytest.mark.browser]
Status = ExportRun.Status


@pytest.fixture
def history(alice, transactional_db):
    clinic = ensure_demo_domain(slug="clinic", name="Clinic", time_zone="Asia/Kathmandu", members=[alice])
    farm = ensure_demo_domain(slug="farm", name="Farm with a rather long name", time_zone="America/Lima",
                              members=[alice])

    def run(domain, status, minutes_ago, **fields):
        return ExportRun.objects.create(
            owner=alice, domain=domain, definition=ExportDefinition.objects.get(domain=domain, name="Visits (short)"),
            parameters_key=uuid.uuid4().hex, task_id=str(uuid.uuid4()), download_id=uuid.uuid4().hex,
            status=status, created_at=timezone.now() - datetime.timedelta(minutes=minutes_ago), **fields)

    for minutes in range(30, 56):  # older runs: a second page, also of the farm's failed runs alone
        run(farm, Status.FAILED, minutes, parameters={"format": "csv"}, error="Broken.")
    key = export_storage().save("exports/clinic/browser-history.csv", ContentFile(b"a,b\n1,2\n"))
    done = run(clinic, Status.SUCCEEDED, 1, rows=305_000, bytes=12_345_678, file_key=key, filename="visits.csv",
               finished_at=timezone.now(), expires_at=timezone.now() + datetime.timedelta(hours=3),
               parameters={"format": "xlsx", "date_from": "2026-01-01", "date_to": "2026-03-31",
                           "columns": ["received_on", "village", "patient_name"],
                           "filters": {"village": "Pokhara", "form_name": ["Visit", "Referral"]}})
    expired = run(farm, Status.SUCCEEDED, 5, rows=10, bytes=100, file_key="exports/farm/gone.csv",
                  filename="gone.csv", finished_at=timezone.now(),
                  expires_at=timezone.now() - datetime.timedelta(minutes=1), parameters={"format": "csv"})
    running = run(clinic, Status.RUNNING, 0, parameters={"format": "zip"})
    return {"done": done, "expired": expired, "running": running, "key": key}


@pytest.mark.parametrize("width,height", [(390, 844), (1280, 800)])
def test_my_exports_fits_the_screen_and_has_no_serious_axe_violations(logged_in_page, live_server, history,
                                                                       width, height):
    assert AXE.is_file(), f"axe-core is missing ({AXE.relative_to(ROOT)}): run `source setup.sh; ensure_axe_core`"
    page = logged_in_page
    page.set_viewport_size({"width": width, "height": height})
    page.click("text=My exports")
    page.wait_for_url(f"{live_server.url}/exports/mine/")
    assert page.locator("#my-runs tbody tr").count() == 25
    assert page.evaluate("() => document.documentElement.scrollWidth") <= width
    if width == 390:  # rows are cards: nothing scrolls sideways, not even inside the table's box
        assert page.evaluate("() => { const box = document.querySelector('.table-scroll');"
                             " return box.scrollWidth <= box.clientWidth; }")
    assert page.evaluate(UNNAMED_CONTROLS) == []
    row = page.locator(f"#run-{history['done'].pk}")
    assert "Pokhara" in row.inner_text() and "Received on, Village, Patient name" in row.inner_text()
    assert page.locator(f"#run-{history['expired'].pk} a", has_text="Download").count() == 0
    found = serious_axe_violations(page, "/exports/mine/")
    page.select_option("#id_domain", "farm")
    page.select_option("#id_status", "failed")
    page.click("#run-filters button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/exports/mine/?status=failed&domain=farm"))
    assert page.locator("#my-runs tbody tr").count() == 25
    page.click("text=Older")
    page.wait_for_url(lambda url: url.endswith("?status=failed&domain=farm&page=2"))
    assert page.locator("#my-runs tbody tr").count() == 1
    found += serious_axe_violations(page, page.url)
    assert not found, f"axe-core at {width}x{height}:\n" + "\n".join(found)


def test_a_run_is_deleted_through_the_page(logged_in_page, live_server, history):
    page = logged_in_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/exports/mine/")
    done = history["done"]
    page.locator(f"#run-{done.pk}").get_by_role("button", name="Delete Visits (short)").click()
    page.click("#confirm-delete")
    page.wait_for_selector(".messages")
    assert "Deleted the export “Visits (short)” (Excel (xlsx), started" in page.locator(".messages").inner_text()
    assert page.locator(f"#run-{done.pk}").count() == 0
    assert not ExportRun.objects.filter(pk=done.pk).exists()
    assert not export_storage().exists(history["key"])
    # A run under way offers no Delete.
    assert page.locator(f"#run-{history['running'].pk} button", has_text="Delete").count() == 0
