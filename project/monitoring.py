"""What the tasks tell about themselves: time-to-start per queue, run time and outcome per task, in Redis.

Every message carries the time it was published (a header stamped at `before_task_publish`). When a
worker starts the task (`task_prerun`) the delay goes into a fixed-bucket histogram of its queue and
into a rolling window of the last hour (for p50/p95); when it ends (`task_postrun`) its run time and
outcome go in per task name. The hooks only append to a buffer in the process; a thread of the
process sends the buffer to Redis in one pipelined round trip every MONITORING_FLUSH_SECONDS
(and when the process ends), so a task never waits for Redis on monitoring's account.

Monitoring must never break a task: a Redis error is swallowed, the records it lost are counted in
the process and added to `monitoring:write_errors` with the next write that succeeds.

Workers also write a heartbeat naming the queues they consume every MONITORING_WORKER_HEARTBEAT_INTERVAL
seconds; /health/ready/, /metrics and queue_status read it. (What each worker is running, queue_status asks
the workers themselves, through Celery's public `inspect().active()`.)
"""
import atexit
import json
import logging
import os
import threading
import time
from datetime import datetime

import redis
from celery.signals import (
    before_task_publish,
    task_postrun,
    task_prerun,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)
from django.conf import settings

from .queues import DEFAULT_QUEUE

log = logging.getLogger(__name__)

PUBLISHED_HEADER = "published_at"
PREFIX = "monitoring:"
# Upper bounds (seconds) of the histogram buckets; the last bucket, "+Inf", takes the rest.
TIME_TO_START_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600)
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 3 * 3600)
WINDOW_SECONDS = 60 * 60      # the rolling window of p50/p95
WINDOW_MAX_SAMPLES = 10_000   # per queue; the oldest go first in a busier hour

_client = None
_started = {}       # task id -> perf_counter at task_prerun, in the process that runs it
_unrecorded = [0]   # records lost to Redis errors, not yet added to monitoring:write_errors
MAX_PENDING = 10_000  # records a process keeps while Redis is away; later ones are dropped and counted


class _Buffer:
    """This process's records waiting for the flushing thread (made anew in a forked child)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records = []
        self.thread = None


_buffer = _Buffer()


def _new_buffer_after_fork():
    global _buffer
    _buffer = _Buffer()


os.register_at_fork(after_in_child=_new_buffer_after_fork)


def client():
    """This process's Redis client for monitoring, with the project's short timeouts."""
    global _client
    if _client is None:
        timeout = settings.REDIS_SOCKET_TIMEOUT
        _client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    return _client


def key(*parts):
    return PREFIX + ":".join(parts)


def bucket_of(value, bounds):
    """The label of the first bucket whose upper bound holds `value`."""
    for bound in bounds:
        if value <= bound:
            return str(bound)
    return "+Inf"


def _write(*builds, records=None):
    """Run each `build(pipeline)` in one round trip; never raise (monitoring must not break a task).

    `records`: how many records the builds carry (counted as lost if the write fails); one each by default.
    """
    try:
        pipe = client().pipeline(transaction=False)
        for build in builds:
            build(pipe)
        lost = _unrecorded[0]
        if lost:
            pipe.incrby(key("write_errors"), lost)
        pipe.execute()
        _unrecorded[0] -= lost
    except Exception as exc:  # noqa: BLE001 (any failure: Redis down, frozen, full)
        _count_lost(len(builds) if records is None else records, exc)


def _count_lost(count, reason):
    before = _unrecorded[0]
    _unrecorded[0] += count
    if before == 0 or before // 100 != _unrecorded[0] // 100:
        log.warning("Monitoring could not write to Redis (%r); %d records lost so far", reason, _unrecorded[0])


def _record(record):
    """Queue `record` (a tuple) for the flushing thread, which this starts in each process that records."""
    buffer = _buffer
    with buffer.lock:
        if len(buffer.records) >= MAX_PENDING:
            dropped = True
        else:
            dropped = False
            buffer.records.append(record)
        if buffer.thread is None:
            buffer.thread = threading.Thread(target=_flush_forever, args=(buffer,), name="monitoring-flush",
                                             daemon=True)
            buffer.thread.start()
    if dropped:
        _count_lost(1, "too many records waiting")


def flush():
    """Send this process's waiting records now (the thread does every MONITORING_FLUSH_SECONDS)."""
    buffer = _buffer
    with buffer.lock:
        records, buffer.records = buffer.records, []
    if records:
        _write(_aggregated(records), records=len(records))


def _flush_forever(buffer):
    while buffer is _buffer:
        time.sleep(settings.MONITORING_FLUSH_SECONDS)
        flush()


atexit.register(flush)


class _Histogram:
    def __init__(self):
        self.buckets, self.sum, self.count = {}, 0.0, 0

    def add(self, value, bounds):
        label = bucket_of(value, bounds)
        self.buckets[label] = self.buckets.get(label, 0) + 1
        self.sum += value
        self.count += 1


def _aggregated(records):
    """One pipeline builder for many records: counts are summed in the process first, so a flush
    sends a few commands per queue and task name, not a dozen per task (measured: the per-task
    commands cost a no-op task about a fifth of its throughput)."""
    histograms, recent, counters, floats = {}, {}, {}, {}

    def histogram(kind, label):
        return histograms.setdefault((kind, label), _Histogram())

    def count(name, field, amount=1):
        fields = counters.setdefault(name, {})
        fields[field] = fields.get(field, 0) + amount

    for record in records:
        if record[0] == "tts":
            _, queue, delay, task_id, now = record
            histogram("tts", queue).add(delay, TIME_TO_START_BUCKETS)
            recent.setdefault(queue, {})[f"{task_id}:{delay:.6f}"] = now
        else:
            _, task_name, state, duration, retval = record
            histogram("duration", task_name).add(duration, DURATION_BUCKETS)
            count(key("outcomes"), f"{task_name}|{state.lower()}")
            rows = built_rows(retval)
            if rows is not None:
                count(key("rows_written"), task_name, rows)
                fields = floats.setdefault(key("build_seconds"), {})
                fields[task_name] = fields.get(task_name, 0.0) + duration
            if task_name == settings.MONITORING_REAPER_TASK and isinstance(retval, dict):  # counts of what it did
                for what, number in retval.items():
                    if isinstance(number, int):
                        count(key("reaper"), what, number)

    def build(pipe):
        for (kind, label), hist in histograms.items():
            name = key(kind, label)
            pipe.sadd(key(kind + "_names"), label)
            for bucket, number in hist.buckets.items():
                pipe.hincrby(name, bucket, number)
            pipe.hincrbyfloat(name, "sum", hist.sum)
            pipe.hincrby(name, "count", hist.count)
        for queue, members in recent.items():
            name, newest = key("tts_recent", queue), max(members.values())
            pipe.zadd(name, members)
            pipe.zremrangebyscore(name, "-inf", newest - WINDOW_SECONDS)
            pipe.zremrangebyrank(name, 0, -WINDOW_MAX_SAMPLES - 1)
        for name, fields in counters.items():
            for field, number in fields.items():
                pipe.hincrby(name, field, number)
        for name, fields in floats.items():
            for field, number in fields.items():
                pipe.hincrbyfloat(name, field, number)

    return build


def built_rows(retval):
    """The rows of the file a task built, if its return value says so: {"rows": n, "bytes": size, ...}.

    Any task may report this way (the export tasks do, whatever their name); a part of a partitioned
    export returns its rows without bytes, and is not counted: its assembly counts the whole file.
    """
    if isinstance(retval, dict) and isinstance(retval.get("rows"), int) and isinstance(retval.get("bytes"), int):
        return retval["rows"]
    return None


def record_time_to_start(queue, delay, task_id, now=None):
    _record(("tts", queue, delay, task_id, time.time() if now is None else now))


def record_outcome(task_name, state, duration, retval=None):
    _record(("outcome", task_name, state, duration, retval))


def _timestamp(value):
    """Unix time from a header value: a number, or an ISO 8601 string (Celery's eta)."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def queue_of(request, task):
    delivery = getattr(request, "delivery_info", None) or {}
    return delivery.get("routing_key") or getattr(task, "queue", None) or DEFAULT_QUEUE


def stamp_publish_time(headers=None, **kwargs):
    if headers is not None:
        headers[PUBLISHED_HEADER] = time.time()


def on_task_prerun(task_id=None, task=None, **kwargs):
    request = task.request
    if request.is_eager:
        return
    _started[task_id] = time.perf_counter()
    published = _timestamp(getattr(request, PUBLISHED_HEADER, None))
    if published is None:
        return
    now = time.time()
    # A task sent with a countdown (a retry) is late only from the moment it was due.
    due = max(published, _timestamp(request.eta) or published)
    record_time_to_start(queue_of(request, task), max(0.0, now - due), task_id, now)


def on_task_postrun(task_id=None, task=None, state=None, retval=None, **kwargs):
    started = _started.pop(task_id, None)
    if started is None:
        return
    record_outcome(task.name, state or "unknown", time.perf_counter() - started, retval)


# --- The workers' heartbeat.

WORKERS_KEY = key("workers")


def worker_window():
    """Seconds after which a worker's heartbeat counts as dead."""
    return 3 * settings.MONITORING_WORKER_HEARTBEAT_INTERVAL


class WorkerHeartbeat(threading.Thread):
    """In the worker's main process: every interval, the queues this worker consumes."""

    def __init__(self, hostname, queues, interval):
        super().__init__(name="monitoring-heartbeat", daemon=True)
        self.hostname, self.queues, self.interval = hostname, sorted(queues), interval
        self.stopped = threading.Event()

    def beat(self):
        entry = {"queues": self.queues, "at": time.time()}
        _write(lambda pipe: pipe.hset(WORKERS_KEY, self.hostname, json.dumps(entry)))

    def run(self):
        while not self.stopped.is_set():
            self.beat()
            self.stopped.wait(self.interval)

    def stop(self):
        self.stopped.set()
        _write(lambda pipe: pipe.hdel(WORKERS_KEY, self.hostname))


_heartbeat = None


def start_worker_heartbeat(sender=None, **kwargs):
    global _heartbeat
    queues = [queue.name for queue in sender.task_consumer.queues]
    _heartbeat = WorkerHeartbeat(sender.hostname, queues, settings.MONITORING_WORKER_HEARTBEAT_INTERVAL)
    _heartbeat.start()


def stop_worker_heartbeat(**kwargs):
    if _heartbeat is not None:
        _heartbeat.stop()


def flush_at_process_end(**kwargs):
    flush()


def connect_hooks(task_hooks=True):
    """Connect the hooks (project.celery does, at import). The workers' heartbeat is always on;
    the per-task hooks can be left off (MONITORING_TASK_HOOKS=false), e.g. to measure their cost."""
    worker_ready.connect(start_worker_heartbeat, dispatch_uid="project.monitoring.worker_ready")
    worker_shutdown.connect(stop_worker_heartbeat, dispatch_uid="project.monitoring.worker_shutdown")
    if task_hooks:
        before_task_publish.connect(stamp_publish_time, dispatch_uid="project.monitoring.stamp")
        task_prerun.connect(on_task_prerun, dispatch_uid="project.monitoring.prerun")
        task_postrun.connect(on_task_postrun, dispatch_uid="project.monitoring.postrun")
        worker_process_shutdown.connect(flush_at_process_end, dispatch_uid="project.monitoring.child_flush")
        worker_shutdown.connect(flush_at_process_end, dispatch_uid="project.monitoring.flush")


# --- Reading it back (queue_status, /metrics, /health/ready/).

def live_workers(now=None, conn=None):
    """{hostname: {"queues": [...], "at": t}} of the workers heard from lately."""
    now = time.time() if now is None else now
    conn = conn or client()
    live, dead = {}, []
    for hostname, raw in conn.hgetall(WORKERS_KEY).items():
        entry = json.loads(raw)
        if now - entry["at"] <= worker_window():
            live[hostname.decode()] = entry
        elif now - entry["at"] > 24 * 60 * 60:
            dead.append(hostname)
    if dead:
        conn.hdel(WORKERS_KEY, *dead)
    return live


def read_histogram(name, bounds, conn=None):
    """(cumulative [(upper bound label, count)], sum, count) of a stored histogram."""
    raw = {k.decode(): v for k, v in (conn or client()).hgetall(name).items()}
    running, buckets = 0, []
    for label in [str(bound) for bound in bounds] + ["+Inf"]:
        running += int(raw.get(label, 0))
        buckets.append((label, running))
    return buckets, float(raw.get("sum", 0)), int(raw.get("count", 0))


def histogram_names(kind, conn=None):
    """The queue or task names that have a stored histogram of `kind` ("tts" or "duration")."""
    return sorted(name.decode() for name in (conn or client()).smembers(key(kind + "_names")))


def percentiles(queue, now=None, conn=None, quantiles=(0.5, 0.95)):
    """{quantile: seconds} of the time-to-start over the last hour, or None values without samples."""
    now = time.time() if now is None else now
    members = (conn or client()).zrangebyscore(key("tts_recent", queue), now - WINDOW_SECONDS, "+inf")
    delays = sorted(float(member.rsplit(b":", 1)[1]) for member in members)
    if not delays:
        return {q: None for q in quantiles}
    return {q: delays[min(len(delays) - 1, int(q * len(delays)))] for q in quantiles}


def float_hash(name, conn=None):
    return {k.decode(): float(v) for k, v in (conn or client()).hgetall(name).items()}
