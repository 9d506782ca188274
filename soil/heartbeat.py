"""A heartbeat written by a periodic task: proof that beat and a worker are both running."""
import time

from . import recent
from .conf import soil_conf
from .downloads import soil_cache

HEARTBEAT_KEY = "soil:heartbeat"


def record_heartbeat(now=None):
    soil_cache().set(HEARTBEAT_KEY, now if now is not None else time.time(), timeout=None)
    recent.forget()


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
    return alive_since(last_heartbeat(), now)


def alive_since(last_beat, now=None):
    """is_alive for a beat time the caller already read (the status reads it with the record)."""
    if last_beat is None:
        return False
    return (now if now is not None else time.time()) - last_beat <= soil_conf.HEARTBEAT_WINDOW
