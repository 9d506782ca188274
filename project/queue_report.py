"""One row per queue: waiting messages, the oldest's age, time-to-start against the target, consumers.

On Redis, waiting messages are read from the broker's Redis lists (kombu keeps one list per queue and
priority; LPUSH in, BRPOP out, so the oldest message is the last); the oldest's age comes from the publish
time that project.monitoring stamps in every message. On RabbitMQ the count is the queue's ready messages
(a passive declare); its oldest message cannot be read without taking it, so its age is unknown (None).
Consumers and running tasks come from the workers themselves (`inspect().active_queues()`, then `inspect().active()` if any answered), each with a
short timeout that ends early once every worker with a fresh heartbeat has answered.
"""
import json
import time

import redis
from django.conf import settings

from . import broker, monitoring

PRIORITY_SEPARATOR = "\x06\x16"  # kombu's Redis transport: "<queue>\x06\x16<priority>"
PRIORITY_STEPS = (3, 6, 9)        # its default steps besides 0, which uses the plain queue name
INSPECT_TIMEOUT = 0.5


def queue_lengths(conn=None, queues=None):
    """{queue: (messages waiting, publish time of the oldest or None)} in one round trip.

    `conn`: the Redis of REDIS_URL, used when it is the broker's too.
    """
    queues = list(queues or settings.QUEUE_TABLE)
    if settings.BROKER_IS_RABBITMQ:
        from celery import current_app

        return {queue: (count, None) for queue, count in broker.queue_lengths(current_app, queues).items()}
    if settings.CELERY_BROKER_URL != settings.REDIS_URL:  # a Redis broker apart from REDIS_URL
        timeout = settings.REDIS_SOCKET_TIMEOUT
        conn = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    conn = conn or monitoring.client()
    pipe = conn.pipeline(transaction=False)
    for queue in queues:
        pipe.llen(queue)
        for step in PRIORITY_STEPS:
            pipe.llen(f"{queue}{PRIORITY_SEPARATOR}{step}")
        pipe.lindex(queue, -1)
    replies = iter(pipe.execute())
    lengths = {}
    for queue in queues:
        count = sum(next(replies) for _ in range(1 + len(PRIORITY_STEPS)))
        lengths[queue] = (count, _published(next(replies)))
    return lengths


def _published(raw):
    if not raw:
        return None
    try:
        return float(json.loads(raw)["headers"][monitoring.PUBLISHED_HEADER])
    except (ValueError, KeyError, TypeError):
        return None


def ask_workers(app, expected=None, timeout=INSPECT_TIMEOUT):
    """(active_queues replies, active replies); (None, None) when no worker answered.

    `expected`: how many workers should answer; the wait ends when they have.
    """
    inspect = app.control.inspect(timeout=timeout, limit=expected or None)
    queues = inspect.active_queues()
    if not queues:
        return None, None
    return queues, app.control.inspect(timeout=timeout, limit=len(queues)).active()


def queue_report(app, now=None, targets=None):
    """Every queue's row (a dict), and whether any worker answered."""
    now = time.time() if now is None else now
    targets = targets or settings.QUEUE_TARGETS
    conn = monitoring.client()
    lengths = queue_lengths(conn)
    active_queues, active = ask_workers(app, expected=len(monitoring.live_workers(now, conn)))
    consumers, running = {}, {}
    for worker, queues in (active_queues or {}).items():
        for queue in queues:
            consumers.setdefault(queue["name"], []).append(worker)
    for tasks in (active or {}).values():
        for task in tasks:
            queue = (task.get("delivery_info") or {}).get("routing_key") or "?"
            running[queue] = running.get(queue, 0) + 1
    rows = []
    for queue in settings.QUEUE_TABLE:
        waiting, published = lengths[queue]
        tts = monitoring.percentiles(queue, now, conn)
        target = targets[queue]
        worst = max([value for value in tts.values() if value is not None] + [now - published if published else 0])
        rows.append({
            "queue": queue,
            "waiting": waiting,
            "oldest_seconds": round(now - published, 1) if published else None,
            "p50_seconds": _round(tts[0.5]),
            "p95_seconds": _round(tts[0.95]),
            "target_seconds": target,
            "state": "LATE" if worst > target else "OK",
            "workers": sorted(consumers.get(queue, [])),
            "running": running.get(queue, 0),
        })
    return rows, active_queues is not None


def _round(value):
    return None if value is None else round(value, 2)
