"""Every soil setting, its default and its meaning, read through one object: `soil_conf`.

    from soil.conf import soil_conf
    soil_conf.DEFAULT_EXPIRY   # settings.SOIL_DEFAULT_EXPIRY, else 86400

Each is read from Django's settings at the moment of use, so `override_settings` works in tests.
Nothing else in soil reads `django.conf.settings`.
"""
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

DEFAULTS = {
    # The Django cache (a key of CACHES) that holds download records and cached files.
    "CACHE": "default",
    # Redis for serial_task's locks; None means the Celery broker URL.
    "REDIS_URL": None,
    # Seconds a download lives when `expiry` is not given.
    "DEFAULT_EXPIRY": 24 * 60 * 60,
    # Seconds between two runs of the periodic heartbeat task.
    "HEARTBEAT_INTERVAL": 30,
    # The workers count as alive while the last heartbeat is at most this many seconds old.
    "HEARTBEAT_WINDOW": 120,
    # The storage (a key of STORAGES) of expose_blob_download when no storage_alias is given.
    "STORAGE": "default",
    # Seconds a presigned URL (S3) handed out for a blob download stays valid.
    "PRESIGNED_URL_EXPIRY": 60,
    # Seconds the JSON status reuses a download record and the heartbeat this process read, while the
    # task runs (a poll then costs one read, the task record); 0 reads them at every poll.
    "STATUS_REUSE_SECONDS": 2,
    # Seconds a progress page's poll token (soil.poll_tokens) is accepted: polls then load neither the
    # session nor the user. 0 turns tokens off (every poll is checked through the session).
    "POLL_TOKEN_MAX_AGE": 60 * 60,
    # Dotted path to `callable(user, download) -> bool`, asked after soil's own owner rule (both must allow).
    "DOWNLOAD_ACCESS_CHECK": None,
    # Who may use a download saved without owner_ids: "staff" (staff users only) or "authenticated"
    # (any logged-in user, CommCare's rule). The trade-off: "authenticated" lets every user of the site
    # read a download they were given the link of, so a task that forgets owner_ids exposes its file
    # to all; "staff" keeps such files to staff, and a page written for CommCare's rule shows 403 to
    # ordinary users until its downloads name their owners. Listed owners are never widened by either.
    "OWNERLESS_DOWNLOADS": "staff",
    # The queue of a @task that names none; also of @periodic_task and @serial_task unless the two below
    # name theirs. None: the task names no queue and Celery's routing decides (task_routes, else
    # task_default_queue). Read when a decorator runs, i.e. when the tasks module is imported.
    "DEFAULT_QUEUE": None,
    "PERIODIC_QUEUE": None,
    "SERIAL_QUEUE": None,
}

OWNERLESS_CHOICES = ("staff", "authenticated")


class SoilSettings:
    """`soil_conf.NAME` is `settings.SOIL_NAME` if set, else the default above."""

    def __getattr__(self, name):
        if name not in DEFAULTS:
            raise AttributeError(f"soil has no setting {name!r}; see soil.conf.DEFAULTS")
        return getattr(settings, f"SOIL_{name}", DEFAULTS[name])

    @property
    def redis_url(self):
        """SOIL_REDIS_URL, else the Celery broker URL: soil needs no REDIS_URL of the project's."""
        from celery import current_app

        return self.REDIS_URL or current_app.conf.broker_url

    @property
    def ownerless_downloads(self):
        """SOIL_OWNERLESS_DOWNLOADS, checked: an unknown value is a configuration error, not an open door."""
        value = self.OWNERLESS_DOWNLOADS
        if value not in OWNERLESS_CHOICES:
            raise ImproperlyConfigured(f"SOIL_OWNERLESS_DOWNLOADS must be one of {OWNERLESS_CHOICES}, not {value!r}")
        return value

    def queue(self, kind):
        """The queue soil's decorators use: SOIL_PERIODIC_QUEUE or SOIL_SERIAL_QUEUE for those kinds when
        set, else SOIL_DEFAULT_QUEUE; None (name no queue) when none is set."""
        named = {"periodic": self.PERIODIC_QUEUE, "serial": self.SERIAL_QUEUE}.get(kind)
        return named or self.DEFAULT_QUEUE

    @property
    def download_access_check(self):
        """The project's extra access check as a callable, or None."""
        path = self.DOWNLOAD_ACCESS_CHECK
        return _import(path) if path else None


@lru_cache(maxsize=8)
def _import(path):
    return import_string(path)


soil_conf = SoilSettings()
