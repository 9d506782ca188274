"""Every setting of the export service, its default and its meaning, read through one object: `exports_conf`.

    from exports.conf import exports_conf
    exports_conf.EXPORT_MAX_ROWS   # settings.EXPORT_MAX_ROWS, else 5,000,000

Each is read from Django's settings at the moment of use, so `override_settings` and pytest-django's
`settings` fixture work. project/settings.py reads them from the environment; nothing else in exports
reads an export setting from `django.conf.settings`. (soil's settings are in soil/conf.py.)
"""
from django.conf import settings

DEFAULTS = {
    # --- files
    # Seconds a finished export's file can be downloaded; then it is deleted and its run expires.
    "EXPORT_FILE_EXPIRY": 24 * 60 * 60,
    # Rows read from the database and written per chunk; progress and cancel are checked per chunk.
    # 500 keeps a chunk's values and XML within a core's L2 cache: 13-14 % less CPU per row than 2,000
    # on 1M rows (docs/performance.md, "Chunk size").
    "EXPORT_CHUNK_SIZE": 500,
    # The xlsx engine: "streaming" (sheet XML written straight into the zip) or "openpyxl" (write-only mode).
    "EXPORT_XLSX_ENGINE": "streaming",
    # csv on PostgreSQL rendered by the server (COPY ... TO STDOUT) where it writes exactly the Python writer's bytes.
    "EXPORT_POSTGRES_COPY": True,
    # Build files are written here first; empty means a folder in the system's temporary directory.
    "EXPORT_TEMP_DIR": "",
    # The storage alias (a key of STORAGES) export files are published to.
    "EXPORTS_STORAGE": "exports",
    # A csv or xlsx export of at least this many rows (0: never) is built as EXPORT_PARTITIONS parts in parallel
    # (exports.files.partitions.splits: zipped csv is always built whole).
    "EXPORT_PARTITION_ROWS": 500_000,
    "EXPORT_PARTITIONS": 4,
    # The Redis that holds the parts' row counts while a partitioned build runs.
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    # --- limits
    # The most rows one export (or one saved rebuild) may have.
    "EXPORT_MAX_ROWS": 5_000_000,
    # The most queued or running exports per user, and per domain.
    "EXPORT_MAX_ACTIVE_RUNS_PER_USER": 3,
    "EXPORT_MAX_ACTIVE_RUNS_PER_DOMAIN": 20,
    # The most daily saved exports per domain: each costs a full build every night.
    "SAVED_EXPORTS_MAX_PER_DOMAIN": 25,
    # --- the run's lifecycle
    # A build's lease lapses this many seconds after its last renewal; a thread renews it this often.
    "EXPORT_LEASE_SECONDS": 60,
    "EXPORT_LEASE_RENEW_SECONDS": 2,
    # A stuck run is queued again until it has been started this many times, then fails in words.
    "EXPORT_MAX_ATTEMPTS": 2,
    # Seconds between two runs of the reaper, and of the cleanup of expired files.
    "EXPORT_REAPER_INTERVAL": 60,
    "EXPORT_CLEANUP_INTERVAL": 15 * 60,
    # A queued run whose message is gone from the broker counts as lost after this many seconds.
    "EXPORT_LOST_MESSAGE_GRACE": 30,
    # --- the run page's event stream
    # How often a stream re-reads the run, sends a keep-alive comment, and how long one stream lives.
    "EXPORT_STREAM_POLL_SECONDS": 1.0,
    "EXPORT_STREAM_KEEPALIVE_SECONDS": 15,
    "EXPORT_STREAM_MAX_SECONDS": 120,
    # Whether a stream also reads the run as soon as its task's progress or state is written (Redis
    # pub/sub, a connection per open stream); off, it reads only every EXPORT_STREAM_POLL_SECONDS.
    "EXPORT_STREAM_PUSH": True,
    # --- saved exports
    # How often the dispatcher looks for due rebuilds; how long a dead rebuild keeps its lock; after how
    # many days without a download a saved export stops being rebuilt.
    "SAVED_EXPORTS_DISPATCH_INTERVAL": 15 * 60,
    "SAVED_EXPORTS_LOCK_TTL": 60,
    "SAVED_EXPORTS_IDLE_DAYS": 35,
    # --- words
    # The site's address, for links in emails.
    "SITE_URL": "http://127.0.0.1:8000",
}


class ExportSettings:
    """`exports_conf.NAME` is `settings.NAME` if set, else the default above."""

    def __getattr__(self, name):
        if name not in DEFAULTS:
            raise AttributeError(f"exports has no setting {name!r}; see exports.conf.DEFAULTS")
        return getattr(settings, name, DEFAULTS[name])


exports_conf = ExportSettings()
