"""The run page's bar through a partitioned build: read in parts, assembled, stored; it only moves forward.

A private deployment (tests/processes.py) builds the export in parts with real workers; the page records
every value its bar shows, as a person would have seen it.
"""
import pytest

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition
from tests.partition_sources import PART_GATE_KEY, PARTS_WAITING_KEY
from tests.processes import wait_until

pytestmark = [pytest.mark.browser]
PARTITIONED = {"EXPORT_PARTITION_ROWS": 100, "EXPORT_PARTITIONS": 3,
               "EXPORT_SOURCE_MODULES": "tests.celery_tasks,tests.partition_sources",
               "EXPORT_STREAM_POLL_SECONDS": 0.05, "EXPORT_CHUNK_SIZE": 500}
ROWS = 40_000

# On every page load (the run page reloads itself once the run is done): each value the bar takes.
RECORD_THE_BAR = """document.addEventListener('DOMContentLoaded', () => {
  const bar = document.querySelector('.soil-bar');
  if (!bar) return;
  const note = () => window.recordBar(parseInt(bar.getAttribute('aria-valuenow'), 10));
  note();
  new MutationObserver(note).observe(bar, {attributes: true, attributeFilter: ['aria-valuenow']});
});"""


def test_the_bar_of_a_partitioned_xlsx_build_never_moves_back(stack, page, alice):
    domain = ensure_demo_domain(slug="bar", name="Bar clinic", members=[alice])
    add_demo_rows(domain, ROWS)
    definition = ExportDefinition.objects.create(domain=domain, name="Gated parts", source="part_gated_submissions",
                                                 format="xlsx")
    web = stack.web(DEBUG="true", **PARTITIONED)  # DEBUG: runserver serves the page's scripts
    stack.worker(extra_args=("--include", "tests.celery_tasks,tests.partition_sources"), concurrency=2, **PARTITIONED)
    page.goto(f"{web.url}/accounts/login/")
    page.fill("input[name=username]", alice.username)
    page.fill("input[name=password]", alice.raw_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{web.url}/")

    values = []
    page.expose_function("recordBar", lambda value: values.append(value))
    page.add_init_script(RECORD_THE_BAR)
    page.goto(f"{web.url}/exports/{domain.slug}/")
    page.locator(f"#definition-{definition.pk} button[type=submit]").click()
    page.wait_for_url("**/exports/runs/*/")
    redis = stack.redis.client()
    wait_until(lambda: redis.scard(PARTS_WAITING_KEY.format(domain.slug)) >= 2, 60, "the parts at the gate")
    redis.set(PART_GATE_KEY.format(domain.slug), 1, ex=120)

    page.locator("#run-download").wait_for(state="visible", timeout=120_000)
    assert values == sorted(values), values
    moving = [value for value in values if 0 < value < 100]
    assert len(set(moving)) >= 3, values  # the bar was seen moving, not only at its ends
    assert values[-1] == 100
