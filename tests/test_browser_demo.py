"""A person in Chromium starts the demo task, watches the bar move and downloads the file."""
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.worker]


@pytest.fixture(autouse=True)
def staff_alice(alice):
    """The demo task is for staff."""
    alice.is_staff = True
    alice.save(update_fields=["is_staff"])


def test_demo_task_progress_bar_moves_and_the_file_downloads(worker, logged_in_page, live_server):
    page = logged_in_page
    page.goto(f"{live_server.url}/demo/")
    page.fill("input[name=seconds]", "4")
    page.click("#start-demo")
    page.wait_for_url("**/downloads/*/")

    bar = page.locator(".soil-bar")
    # The bar shows a value strictly between 0 and 100 while the task works...
    page.wait_for_function(
        "() => { const v = +document.querySelector('.soil-bar').getAttribute('aria-valuenow');"
        " return v > 0 && v < 100; }"
    )
    midway = int(bar.get_attribute("aria-valuenow"))
    # ...then reaches 100 and offers the file.
    link = page.locator("a.soil-download")
    link.wait_for(state="visible", timeout=30_000)
    assert int(bar.get_attribute("aria-valuenow")) == 100 > midway
    assert page.locator(".soil-state").inner_text() == "Ready."

    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.suggested_filename == "soil-demo.txt"
    with open(download.path(), "rb") as downloaded:
        assert downloaded.read().startswith(b"Made by the soil demo task at ")


def test_demo_task_failure_shows_the_error_in_the_page(worker, logged_in_page, live_server):
    page = logged_in_page
    page.goto(f"{live_server.url}/demo/")
    page.fill("input[name=seconds]", "1")
    page.select_option("select[name=fail]", "errors")
    page.click("#start-demo")
    page.locator(".soil-errors li").wait_for(timeout=30_000)
    assert "errors style" in page.locator(".soil-errors").inner_text()
    assert page.locator(".soil-state").inner_text() == "Failed."
    assert page.locator("a.soil-download").is_hidden()
