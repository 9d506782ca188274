"""A person logs in, clicks Export, watches the progress page and opens the xlsx they downloaded."""
import openpyxl
import pytest

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition
from tests.celery_tasks import GATE_KEY

pytestmark = [pytest.mark.browser, pytest.mark.worker]


def test_export_to_xlsx_shows_progress_and_downloads_a_workbook(worker, logged_in_page, live_server, alice,
                                                                 redis_client):
    domain = ensure_demo_domain(slug="browser-clinic", name="Browser clinic", members=[alice])
    add_demo_rows(domain, 2_500)
    definition = ExportDefinition.objects.create(domain=domain, name="Gated export", source="gated_submissions",
                                                 format="csv")
    page = logged_in_page
    page.goto(f"{live_server.url}/exports/")  # one domain: straight to its page
    row = page.locator(f"#definition-{definition.pk}")
    row.locator("select[name$=format]").select_option("xlsx")
    row.locator("button[type=submit]").click()

    page.wait_for_url("**/exports/runs/*/")
    # The worker holds the export at the gate: the page shows it working, with a way to cancel.
    page.locator(".soil-state", has_text="Working").wait_for()
    assert page.locator("#cancel-run").is_visible()
    assert page.locator("a.soil-download").is_hidden()

    redis_client.set(GATE_KEY.format(f"export-{domain.slug}"), 1, ex=60)
    # Once done, the page shows the finished run: its status, size and a Download button.
    link = page.locator("#run-download")
    link.wait_for(state="visible", timeout=60_000)
    assert page.locator("#run-status").inner_text() == "Succeeded"
    assert "2,500 rows" in page.locator("main").inner_text()
    assert page.locator("#cancel-run").count() == 0

    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename.startswith("Gated export ") and download.suggested_filename.endswith(".xlsx")
    with open(download.path(), "rb") as workbook_file:
        workbook = openpyxl.load_workbook(workbook_file, read_only=True)
        rows = list(workbook.worksheets[0].iter_rows(values_only=True))
    assert rows[0][:3] == ("Form id", "Received on (IST)", "Submitted by")
    assert len(rows) == 2_500 + 1

    # The list of recent exports now offers the same file again.
    page.goto(f"{live_server.url}/exports/{domain.slug}/")
    recent = page.locator("#recent-runs tbody tr").first
    assert "Succeeded" in recent.inner_text() and "2,500" in recent.inner_text()
    with page.expect_download() as again:
        recent.locator("a", has_text="Download").click()
    assert again.value.suggested_filename == download.suggested_filename
