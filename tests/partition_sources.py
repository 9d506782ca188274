"""An export source whose parts wait, inside part tasks only, at a gate the test opens (tests/test_partitions.py).

Each waiting part adds its process id to a Redis set, so that a test can kill one part's process by PID.
"""
import os
import time

from soil.redis_client import get_redis_client

PART_GATE_KEY = "tests:part-gate:{}"
PARTS_WAITING_KEY = "tests:parts-waiting:{}"


def _part_gated_submissions(domain):
    from celery import current_task

    from exports.models import FormSubmission

    request = current_task.request if current_task else None
    if request is not None and request.id and current_task.name == "exports.tasks.build_export_part":
        client = get_redis_client()
        client.sadd(PARTS_WAITING_KEY.format(domain.slug), os.getpid())
        deadline = time.monotonic() + 60
        while not client.exists(PART_GATE_KEY.format(domain.slug)):
            if time.monotonic() > deadline:
                raise TimeoutError("the test never opened the part gate")
            time.sleep(0.05)
    return FormSubmission.objects.filter(domain=domain)


def _register():
    from exports.demo import FORM_SUBMISSIONS
    from exports.sources import ExportSource, register

    return register(ExportSource(name="part_gated_submissions", label="Part-gated submissions",
                                 queryset=_part_gated_submissions, columns=FORM_SUBMISSIONS.columns,
                                 date_field="received_on", ordering=FORM_SUBMISSIONS.ordering))


PART_GATED_SOURCE = _register()
