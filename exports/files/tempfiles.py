"""Temporary files of builds in progress, named after the process writing them.

A worker killed mid-build cannot remove its file; the name says whose it was, so the next
worker to start (and the reaper) delete the files of processes that no longer run.
"""
import os
import re
import secrets
import tempfile
from pathlib import Path

from exports.conf import exports_conf
from exports.files.liveness import pid_is_gone

_NAME = re.compile(r"^export-(\d+)-[0-9a-f]+")


def temp_dir():
    folder = Path(exports_conf.EXPORT_TEMP_DIR or Path(tempfile.gettempdir()) / "exports-build")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder


def new_temp_path(suffix=""):
    """A new, empty file of this process's own, in the build folder."""
    path = temp_dir() / f"export-{os.getpid()}-{secrets.token_hex(8)}{suffix}"
    path.touch(mode=0o600, exist_ok=False)
    return path


def remove(path):
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def sweep_orphans():
    """Delete build files whose process no longer runs; returns (files, bytes) removed."""
    files = size = 0
    for path in temp_dir().iterdir():
        match = _NAME.match(path.name)
        if not match or not pid_is_gone(int(match.group(1))):
            continue
        try:
            freed = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            continue
        files, size = files + 1, size + freed
    return files, size
