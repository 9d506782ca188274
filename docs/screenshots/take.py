"""Take the screenshots of docs/users.md from a running service (`./run.sh`), in Debian's Chromium.

    .venv/bin/python docs/screenshots/take.py http://127.0.0.1:8000 demo <the demo password>

It logs in, opens the demo domain, starts a csv export, waits for it, and saves the main pages as PNG
files next to this script, at 1280x800, and the domain page and My exports also at a 390x844 phone.
"""
import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

HERE = Path(__file__).parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def shoot(page, name):
    page.screenshot(path=str(HERE / f"{name}.png"), full_page=True)
    print(f"saved {name}.png")


def main(url, username, password):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=FLAGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.set_default_timeout(60_000)
        page.goto(f"{url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("main button[type=submit]")
        page.goto(f"{url}/exports/")  # the one domain's page (also the home page, where login lands)
        domain_url = page.url
        shoot(page, "domain")
        page.click("main .dialog-link a")
        shoot(page, "export-dialog")
        page.goto(domain_url)
        page.locator("main select[name$=format]").first.select_option("csv")
        page.locator("main form button[type=submit]").first.click()
        page.wait_for_selector("#run-download")
        shoot(page, "run-finished")
        page.goto(f"{url}/exports/mine/")
        shoot(page, "my-exports")
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.context.add_cookies(page.context.cookies())
        phone.goto(domain_url)
        shoot(phone, "domain-phone")
        phone.goto(f"{url}/exports/mine/")
        shoot(phone, "my-exports-phone")
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
