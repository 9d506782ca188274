"""Whether a process of this host still runs: for leases and for temporary files left by killed workers."""
import os
import socket


def this_process():
    """"host:pid", the name a lease records for the process holding it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def pid_is_gone(pid):
    """True when no live process of this host has `pid` (a zombie, killed but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[-1].split()[0] == "Z"
    except OSError:
        return False


def holder_is_gone(holder):
    """True when `holder` ("host:pid") was a process of this host that no longer runs.

    A holder on another host cannot be checked from here: its lease must lapse instead.
    """
    host, _, pid = (holder or "").rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and pid_is_gone(int(pid))
