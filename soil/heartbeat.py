"""A heartbeat written by a periodic task: proof that beat and a worker are both running."""
import time

from django.conf import settings

from .downloads import soil_cache

HEARTBEAT_KEY = "soil:heartbeat"


def record_heartbeat(now=None):
    soil_cache().set(HEARTBEAT_KEY, now if now is not None else time.time(), timeout=None)


def last_heartbeat():
    """Unix time of the last beat, or None if there never was one."""
    return soil_cache().get(HEARTBEAT_KEY)


def seconds_since_heartbeat(now=None):
    last = last_heartbeat()
    if last is None:
        return None
    return (now if now is not None else time.time()) - last


def is_alive(now=None):
    """True when the last beat is younger than SOIL_HEARTBEAT_WINDOW seconds."""
    age = seconds_since_heartbeat(now)
    return age is not None and age <= getattr(settings, "SOIL_HEARTBEAT_WINDOW", 120)
