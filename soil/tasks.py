from .conf import soil_conf
from .decorators import periodic_task
from .heartbeat import record_heartbeat


@periodic_task(run_every=soil_conf.HEARTBEAT_INTERVAL)
def heartbeat():
    """Record that beat scheduled and a worker ran this, just now."""
    record_heartbeat()
