"""The API examples of docs/users.md, run as written against a real server and a real worker: the Python
client starts an export, waits for it and downloads the file; the BI tool's curl line fetches the
latest file of a saved export."""
import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.models import ExportDefinition, SavedExport
from exports.saved import services as saved_exports
from project.accounts.models import ApiToken
from project.accounts.tokens import create_token

USERS_GUIDE = Path(__file__).resolve().parent.parent / "docs" / "users.md"


def documented(fence, after):
    """The first ```fence block of the users' guide after the heading `after`."""
    text = USERS_GUIDE.read_text()
    return re.search(rf"```{fence}\n(.*?)```", text[text.index(after):], re.S).group(1)


def test_the_documented_python_client_starts_waits_for_and_downloads_an_export(worker, live_server, alice, tmp_path):
    domain = ensure_demo_domain(slug="demo", name="Demo clinic", members=[alice])
    add_demo_rows(domain, 12)
    definition = ExportDefinition.objects.get(domain=domain, name="All form submissions")
    env = {**os.environ, "EXPORTS_URL": live_server.url, "EXPORTS_TOKEN": create_token(alice, "client")[1],
           "EXPORTS_DOMAIN": domain.slug, "EXPORTS_DEFINITION": str(definition.pk)}
    done = subprocess.run([sys.executable, "-c", documented("python", "### A Python client")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [saved] = tmp_path.glob("export-*.csv")
    rows = list(csv.reader(saved.read_text(encoding="utf-8-sig").splitlines(keepends=True)))
    assert len(rows) == 13 and done.stdout.strip() == f"{saved.name}: 12 rows"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_documented_curl_line_fetches_a_saved_exports_latest_file_with_a_read_only_token(
        transactional_db, live_server, alice, tmp_path):
    domain = ensure_demo_domain(slug="demo", name="Demo clinic", members=[alice])
    add_demo_rows(domain, 5)
    definition = saved_exports.save_definition(ExportDefinition(
        domain=domain, name="Visits", source="form_submissions", format="csv", is_daily_saved=True))
    saved_exports.rebuild(SavedExport.objects.get(definition=definition).pk)
    line = documented("sh", "### A stable link for BI tools").strip()
    line = line.replace("http://127.0.0.1:8000", live_server.url).replace("/saved/3/", f"/saved/{definition.pk}/")
    token = create_token(alice, "dashboard", ApiToken.Scope.READ)[1]
    assert line.startswith("curl ")
    done = subprocess.run(["sh", "-c", line.replace("curl ", "curl -sS --fail ", 1)],
                          env={**os.environ, "TOKEN": token}, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert len((tmp_path / "visits.csv").read_text(encoding="utf-8-sig").splitlines()) >= 6
