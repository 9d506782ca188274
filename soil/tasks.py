from django.conf import settings

from .decorators import periodic_task
from .heartbeat import record_heartbeat


@periodic_task(run_every=getattr(settings, "SOIL_HEARTBEAT_INTERVAL", 30), queue="celery_periodic")
def heartbeat():
    """Record that beat scheduled and a worker ran this, just now."""
    record_heartbeat()
