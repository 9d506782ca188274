"""Health checks for load balancers and monitors: no login, 200 or 503, a short JSON body.

`/health/` says the process answers. `/health/ready/` says whether it can serve: the database and
Redis answer, a worker heartbeat is fresh for every user-facing queue, and beat's last tick (soil's
heartbeat, sent by beat and run by a worker) is younger than SOIL_HEARTBEAT_WINDOW. The body names
each check and says "ok" or "failing", never an error message, a host name or an address.

Written here rather than with django-health-check: the checks that matter are ours (per-queue
worker heartbeats, beat's tick), its Celery check sends a task per probe, and a dozen lines of
checks need no plugin registry.
"""
import logging

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from soil.heartbeat import is_alive as beat_is_alive

from . import monitoring

log = logging.getLogger(__name__)


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return True


def check_redis():
    return bool(monitoring.client().ping())


def check_workers():
    """{queue: bool} for every user-facing queue: does a live worker consume it?"""
    consumed = {queue for entry in monitoring.live_workers().values() for queue in entry["queues"]}
    return {queue: queue in consumed for queue in settings.HEALTH_USER_FACING_QUEUES}


def check_beat():
    return bool(beat_is_alive())


def _run(check):
    try:
        return check()
    except Exception as exc:  # noqa: BLE001 (any error is a failing check; logged, not shown)
        log.warning("Health check %s failed: %r", check.__name__, exc)
        return False


def readiness():
    """(ready, {check: "ok" | "failing" | {queue: ...}})."""
    results = {"database": _run(check_database), "redis": _run(check_redis)}
    workers = _run(check_workers) if results["redis"] else False
    if not isinstance(workers, dict):
        workers = {queue: False for queue in settings.HEALTH_USER_FACING_QUEUES}
    results["beat"] = _run(check_beat) if results["redis"] else False
    ready = all(results.values()) and all(workers.values())
    words = {name: "ok" if passed else "failing" for name, passed in results.items()}
    words["workers"] = {queue: "ok" if passed else "failing" for queue, passed in workers.items()}
    return ready, words


@never_cache
@require_GET
def live(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def ready(request):
    is_ready, checks = readiness()
    return JsonResponse({"status": "ok" if is_ready else "unavailable", "checks": checks},
                        status=200 if is_ready else 503)
