"""`/metrics` for Prometheus: queues, time-to-start, task run times and outcomes, exports, the reaper, beat.

Everything is read at scrape time from Redis (what project.monitoring wrote) and the database, so
one scrape of any web process shows the whole deployment. The view answers only a request with the
bearer token METRICS_BEARER_TOKEN or from an address in METRICS_ALLOWED_ADDRESSES; with neither set
it answers nobody.
"""
import hmac
import ipaddress
import logging
import time

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from soil.heartbeat import last_heartbeat

from . import monitoring
from .queue_report import queue_lengths

log = logging.getLogger(__name__)


def _histogram(family, label_value, name, bounds, conn):
    buckets, total, _count = monitoring.read_histogram(name, bounds, conn)
    family.add_metric([label_value], [(label if label == "+Inf" else str(float(label)), count)
                                      for label, count in buckets], total)


class ServiceCollector:
    """Collects the whole service's figures on each scrape."""

    def collect(self):
        conn = monitoring.client()
        lengths = GaugeMetricFamily("exports_queue_length", "Messages waiting in the queue", labels=["queue"])
        oldest = GaugeMetricFamily("exports_queue_oldest_age_seconds", "Age of the oldest waiting message",
                                   labels=["queue"])
        now = time.time()
        for queue, (length, published) in queue_lengths(conn).items():
            lengths.add_metric([queue], length)
            oldest.add_metric([queue], now - published if published else 0)
        yield lengths
        yield oldest
        targets = GaugeMetricFamily("exports_queue_target_seconds", "The queue table's target time-to-start",
                                    labels=["queue"])
        for queue, target in settings.QUEUE_TARGETS.items():
            targets.add_metric([queue], target)
        yield targets

        workers = GaugeMetricFamily("exports_queue_workers", "Live workers consuming the queue", labels=["queue"])
        consumers = {queue: 0 for queue in settings.QUEUE_TABLE}
        for entry in monitoring.live_workers(now, conn).values():
            for queue in entry["queues"]:
                consumers[queue] = consumers.get(queue, 0) + 1
        for queue, count in consumers.items():
            workers.add_metric([queue], count)
        yield workers

        tts = HistogramMetricFamily("exports_time_to_start_seconds",
                                    "Seconds from publish (or due time) to start, per queue", labels=["queue"])
        for queue in monitoring.histogram_names("tts", conn):
            _histogram(tts, queue, monitoring.key("tts", queue), monitoring.TIME_TO_START_BUCKETS, conn)
        yield tts

        duration = HistogramMetricFamily("exports_task_duration_seconds", "Task run time", labels=["task"])
        for task in monitoring.histogram_names("duration", conn):
            _histogram(duration, task, monitoring.key("duration", task), monitoring.DURATION_BUCKETS, conn)
        yield duration

        outcomes = CounterMetricFamily("exports_task_outcomes", "Tasks ended, by task and final state",
                                       labels=["task", "state"])
        for field, count in monitoring.float_hash(monitoring.key("outcomes"), conn).items():
            task, state = field.rsplit("|", 1)
            outcomes.add_metric([task, state], count)
        yield outcomes

        rows = CounterMetricFamily("exports_rows_written", "Export rows written", labels=["task"])
        rate = GaugeMetricFamily("exports_rows_per_second", "Rows written per second of build time",
                                 labels=["task"])
        seconds = monitoring.float_hash(monitoring.key("build_seconds"), conn)
        for task, count in monitoring.float_hash(monitoring.key("rows_written"), conn).items():
            rows.add_metric([task], count)
            rate.add_metric([task], count / seconds[task] if seconds.get(task) else 0)
        yield rows
        yield rate

        reaper = CounterMetricFamily("exports_reaper_actions", "What the reaper did, by kind", labels=["action"])
        for action, count in monitoring.float_hash(monitoring.key("reaper"), conn).items():
            reaper.add_metric([action], count)
        yield reaper

        errors = CounterMetricFamily("exports_monitoring_write_errors", "Monitoring writes lost to Redis errors")
        errors.add_metric([], float(conn.get(monitoring.key("write_errors")) or 0))
        yield errors

        yield self._runs_by_status()
        beat = GaugeMetricFamily("exports_beat_last_tick_timestamp_seconds",
                                 "Unix time of beat's last heartbeat (sent by beat, run by a worker)")
        beat.add_metric([], last_heartbeat() or 0)
        yield beat

    def _runs_by_status(self):
        from exports.metrics import run_counts

        runs = GaugeMetricFamily("exports_runs", "Export runs by status", labels=["status"])
        for status, count in run_counts().items():
            runs.add_metric([status], count)
        return runs


def is_authorised(request):
    """The bearer token, or an allowed address; closed when neither is configured."""
    token = settings.METRICS_BEARER_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    for allowed in settings.METRICS_ALLOWED_ADDRESSES:
        try:
            if address in ipaddress.ip_network(allowed, strict=False):
                return True
        except ValueError:
            log.warning("METRICS_ALLOWED_ADDRESSES holds %r, which is not an address or network", allowed)
    return False


@never_cache
@require_GET
def metrics(request):
    if not is_authorised(request):
        return HttpResponseForbidden("Metrics need METRICS_BEARER_TOKEN or an address in METRICS_ALLOWED_ADDRESSES.\n",
                                     content_type="text/plain")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServiceCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
