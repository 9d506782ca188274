"""An export's file resumes: the run's download link, served by the web process from the exports
storage, answers `curl -C -` after a dropped connection with the rest of the file (206)."""
import subprocess

import pytest
from django.urls import reverse

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.files.storage import export_storage
from exports.models import ExportDefinition
from exports.runs import services


@pytest.mark.django_db(transaction=True)
def test_curl_resumes_an_export_file_where_the_connection_dropped(live_server, client, alice, tmp_path,
                                                                  monkeypatch):
    # Built here, not by the suite's worker too: its message is not sent (the two would race for the run).
    monkeypatch.setattr(services.queueing, "queue_run", lambda run: None)
    domain = ensure_demo_domain(slug="clinic", name="Clinic", time_zone="Asia/Kolkata", members=[alice])
    add_demo_rows(domain, 4000)
    definition = ExportDefinition.objects.get(domain=domain, name="All form submissions")
    run, _ = services.start_export(alice, definition, format="csv")
    run = services.execute_run(run.pk, run.task_id)
    with export_storage().open(run.file_key, "rb") as stored:
        content = stored.read()
    assert len(content) > 200_000
    client.force_login(alice)
    target = tmp_path / run.filename
    target.write_bytes(content[:123_457])  # what arrived before the connection dropped

    resumed = subprocess.run(
        ["curl", "--silent", "--show-error", "-C", "-", "-b", f"sessionid={client.cookies['sessionid'].value}",
         "-o", str(target), "-w", "%{http_code}", live_server.url + reverse("exports:download", args=[run.pk])],
        capture_output=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == b"206"
    assert target.read_bytes() == content
