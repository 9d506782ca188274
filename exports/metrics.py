"""What the site's /metrics reads of exports: the one public function project.metrics calls."""
from django.db.models import Count

from exports.models import ExportRun


def run_counts():
    """{status: how many runs have it}, for every status a run may have (zero included)."""
    counts = dict(ExportRun.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    return {status: counts.get(status, 0) for status in ExportRun.Status.values}
