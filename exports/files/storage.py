"""Where export files live (a local folder or S3) and how a finished file is published there.

A file appears under its final key only once it is whole. On a local folder it is put under
`partial/<pid>-…` first, then renamed into place; files left there by killed processes are swept.
When the build folder (EXPORT_TEMP_DIR) is on the storage's filesystem, "put" is a hard link, not a
copy: a 1 M-row csv (135 MB) is published in microseconds instead of a few tenths of a second.
On S3 an upload is invisible until it completes.
"""
import logging
import os
import re
import secrets

from django.core.files import File
from django.core.files.storage import storages

from exports.conf import exports_conf
from exports.files.liveness import pid_is_gone

log = logging.getLogger(__name__)
PARTIAL_FOLDER = "partial"
_PARTIAL_NAME = re.compile(r"^(\d+)-[0-9a-f]+")


def export_storage():
    return storages[exports_conf.EXPORTS_STORAGE]


def is_local(storage):
    try:
        storage.path("")
    except NotImplementedError:
        return False
    return True


def publish(local_path, key):
    """Store the finished file at `local_path` under `key` (or a free name like it); returns the key used.

    The file must not change afterwards (on a local folder it may be the stored file itself);
    the caller still removes `local_path`.
    """
    storage = export_storage()
    with open(local_path, "rb") as built:
        if not is_local(storage):
            return storage.save(key, File(built))
        partial = f"{PARTIAL_FOLDER}/{os.getpid()}-{secrets.token_hex(8)}"
        if not _link(storage, local_path, partial):
            partial = storage.save(partial, File(built))
    try:
        final = storage.get_available_name(key)
        os.makedirs(os.path.dirname(storage.path(final)), exist_ok=True)
        os.replace(storage.path(partial), storage.path(final))
    except BaseException:
        delete_quietly(partial)
        raise
    return final


def _link(storage, local_path, name):
    """Hard-link `local_path` as `name` of a local storage: True, or False where it cannot be linked
    (another filesystem, a filesystem without links), and the caller copies instead."""
    target = storage.path(name)
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.link(local_path, target)
    except OSError:
        return False
    if storage.file_permissions_mode is not None:
        os.chmod(target, storage.file_permissions_mode)  # as a saved file would have
    return True


def delete_quietly(key):
    """Delete a stored file; a failure is logged, not raised (the file is an orphan either way)."""
    if not key:
        return
    try:
        export_storage().delete(key)
    except Exception:  # noqa: BLE001 (cleanup must not hide the error that led here)
        log.warning("Could not delete export file %s", key, exc_info=True)


def sweep_partial_files():
    """Delete half-copied files of processes that no longer run (local storage only); returns how many."""
    storage = export_storage()
    if not is_local(storage) or not storage.exists(PARTIAL_FOLDER):
        return 0
    removed = 0
    for name in storage.listdir(PARTIAL_FOLDER)[1]:
        match = _PARTIAL_NAME.match(name)
        if match and pid_is_gone(int(match.group(1))):
            delete_quietly(f"{PARTIAL_FOLDER}/{name}")
            removed += 1
    return removed
