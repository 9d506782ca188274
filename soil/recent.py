"""What this process read for a status poll a moment ago: a download record and the heartbeat.

A page polls every second; while its task runs, the record does not change, so the JSON status
reuses it for SOIL_STATUS_REUSE_SECONDS and reads only the task record. Writes made by this process
forget what they replace; soil.status reads afresh as soon as the task has finished.
"""
import threading
import time

MAX_ENTRIES = 4096
_reads = {}
_lock = threading.Lock()


def recall(download_id, max_age):
    """(download, last_beat) read less than `max_age` seconds ago, or None."""
    entry = _reads.get(download_id)
    if entry is None or time.monotonic() - entry[0] >= max_age:
        return None
    return entry[1], entry[2]


def remember(download_id, download, last_beat):
    with _lock:
        if len(_reads) >= MAX_ENTRIES:
            _reads.clear()
        _reads[download_id] = (time.monotonic(), download, last_beat)


def forget(download_id=None):
    """Forget one download's read, or every read (the heartbeat changed)."""
    with _lock:
        if download_id is None:
            _reads.clear()
        else:
            _reads.pop(download_id, None)
