"""Django settings. Everything that differs between machines comes from the environment."""
from pathlib import Path

import dj_database_url
from redis.backoff import NoBackoff
from redis.retry import Retry

from .env import env_bool, env_float, env_int, env_list, env_str
from .queues import DEFAULT_QUEUE, QUEUES, QueueTimeLimits, time_limits

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        # A missing key in production must not silently fall back to a public one.
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured("Set SECRET_KEY (or DEBUG=true for local development).")
    SECRET_KEY = "insecure-development-key-only-used-with-debug"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    # project first, so that its templates (base.html, soil/base.html) override the apps'.
    "project",
    "soil",
    "exports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so that it sees the views' exceptions first: Redis down answers 503, not 500.
    "project.middleware.RedisUnavailableMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite by default, PostgreSQL (or any dj-database-url URL) via DATABASE_URL.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat are separate processes: WAL lets readers and one writer overlap.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
    # A file, not memory, so that a test worker process can open the test database too.
    DATABASES["default"]["TEST"] = {
        "NAME": env_str("TEST_DATABASE_PATH", str(BASE_DIR / ".test-db.sqlite3")),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(BASE_DIR / "media")))
MEDIA_URL = "media/"

# --- Redis: Celery broker, result backend and the soil cache.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "exports"),
    }
}

# --- Celery. USE_CELERY=false runs every task in-process, synchronously (local development).
USE_CELERY = env_bool("USE_CELERY", True)

CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = env_int("CELERY_RESULT_EXPIRES", 2 * 24 * 60 * 60)
CELERY_TASK_DEFAULT_QUEUE = DEFAULT_QUEUE
CELERY_TASK_TRACK_STARTED = True
# Our long tasks are idempotent, so a task lost with its worker is better run again than dropped.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Time limits per queue (project/queues.py); a fresh child process now and then keeps leaks bounded.
QUEUE_TIME_LIMITS = time_limits()
CELERY_TASK_ANNOTATIONS = [QueueTimeLimits(QUEUE_TIME_LIMITS)]
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("WORKER_MAX_TASKS_PER_CHILD", 100)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = env_int("WORKER_MAX_MEMORY_PER_CHILD_KB", 1024 * 1024)
# With acks_late on Redis, an unacknowledged task is redelivered after this many seconds. No task
# outlives its queue's hard time limit, so just past the longest limit is enough: a task whose whole
# worker was killed runs again within that (user exports sooner: the reaper requeues them).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", max(hard for _, hard in QUEUE_TIME_LIMITS.values()) + 600),
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = CELERY_BROKER_TRANSPORT_OPTIONS

# --- Redis faults: the web answers 503 within seconds, workers ride out restarts.
# A worker outlives a lost connection (Celery 5.7.0's own consumer exits; see project/worker.py) and
# waits for Redis as long as it takes (Celery gives up after 100 tries, about 45 minutes).
CELERY_WORKER_CONSUMER = "project.worker:Consumer"
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Connect and read timeouts for every Redis client (redis-py's default is 5 s, kombu's none at all),
# with no retry on top: a pooled connection that a Redis restart broke is replaced when it is taken.
# A frozen Redis then costs a page one timeout and queueing a task about two and a half before
# project.middleware answers 503.
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 1.0)
CACHES["default"]["OPTIONS"] = {
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
    "socket_timeout": REDIS_SOCKET_TIMEOUT,
    "retry": Retry(NoBackoff(), 0),
}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = REDIS_SOCKET_TIMEOUT
CELERY_REDIS_SOCKET_TIMEOUT = REDIS_SOCKET_TIMEOUT
# Celery retries a failed result write or result subscription 20 times, a second apart: not here.
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {
    **CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS,
    "retry_policy": {"max_retries": 0},
}
# The broker's read timeout must outlast kombu's one-second BRPOP, which a closing worker waits for.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    **CELERY_BROKER_TRANSPORT_OPTIONS,
    "socket_connect_timeout": REDIS_SOCKET_TIMEOUT,
    "socket_timeout": max(REDIS_SOCKET_TIMEOUT, 1) + 0.5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = REDIS_SOCKET_TIMEOUT
# No publish retry either: kombu's retry reconnects and pings first, a socket timeout each.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 0}

CELERY_TASK_ALWAYS_EAGER = not USE_CELERY
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_STORE_EAGER_RESULT = True
# django-celery-beat's database scheduler; code-declared periodic tasks are defaults that the admin can change.
CELERY_BEAT_SCHEDULER = "soil.beat:DefaultsDatabaseScheduler"
CELERY_BEAT_SCHEDULE = {}
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

QUEUE_TABLE = QUEUES

# --- soil
SOIL_CACHE = "default"
SOIL_DEFAULT_EXPIRY = env_int("SOIL_DEFAULT_EXPIRY", 24 * 60 * 60)
SOIL_HEARTBEAT_INTERVAL = env_int("SOIL_HEARTBEAT_INTERVAL", 30)
SOIL_HEARTBEAT_WINDOW = env_int("SOIL_HEARTBEAT_WINDOW", 120)
SOIL_STORAGE = "default"  # where expose_blob_download looks when no storage_alias is given

# --- exports
EXPORT_FILE_EXPIRY = env_int("EXPORT_FILE_EXPIRY", 24 * 60 * 60)
EXPORT_MAX_ROWS = env_int("EXPORT_MAX_ROWS", 5_000_000)
EXPORT_CHUNK_SIZE = env_int("EXPORT_CHUNK_SIZE", 2_000)
EXPORT_CLEANUP_INTERVAL = env_int("EXPORT_CLEANUP_INTERVAL", 15 * 60)
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")
# The run lifecycle (exports.lifecycle): a build's lease lapses this long after its last renewal,
# which a background thread makes every EXPORT_LEASE_RENEW_SECONDS; a stuck run is retried until
# it has been started EXPORT_MAX_ATTEMPTS times; the reaper looks for stuck runs this often, and a
# queued run whose message is gone from Redis counts as lost after EXPORT_LOST_MESSAGE_GRACE seconds.
EXPORT_LEASE_SECONDS = env_int("EXPORT_LEASE_SECONDS", 60)
EXPORT_LEASE_RENEW_SECONDS = env_int("EXPORT_LEASE_RENEW_SECONDS", 2)
EXPORT_MAX_ATTEMPTS = env_int("EXPORT_MAX_ATTEMPTS", 2)
EXPORT_REAPER_INTERVAL = env_int("EXPORT_REAPER_INTERVAL", 60)
EXPORT_LOST_MESSAGE_GRACE = env_int("EXPORT_LOST_MESSAGE_GRACE", 30)
# Modules that register export sources besides the demo one, comma-separated (imported at start-up).
EXPORT_SOURCE_MODULES = env_list("EXPORT_SOURCE_MODULES", [])
# Build files are written here first; empty means a folder in the system's temporary directory.
EXPORT_TEMP_DIR = env_str("EXPORT_TEMP_DIR", "")
# Saved exports: how often the dispatcher looks for due rebuilds, how long a dead rebuild keeps its
# lock (a live one renews it), and after how many days without a download a saved export stops being rebuilt.
SAVED_EXPORTS_DISPATCH_INTERVAL = env_int("SAVED_EXPORTS_DISPATCH_INTERVAL", 15 * 60)
SAVED_EXPORTS_LOCK_TTL = env_int("SAVED_EXPORTS_LOCK_TTL", 60)
SAVED_EXPORTS_IDLE_DAYS = env_int("SAVED_EXPORTS_IDLE_DAYS", 35)

# --- Files: a local folder by default; S3 (or any S3-compatible server) when S3_BUCKET is set.
EXPORTS_STORAGE = "exports"
S3_BUCKET = env_str("S3_BUCKET", "")
if S3_BUCKET:
    EXPORTS_STORAGE_CONFIG = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": S3_BUCKET,
            "endpoint_url": env_str("S3_ENDPOINT_URL", "") or None,
            "access_key": env_str("S3_ACCESS_KEY_ID", "") or None,
            "secret_key": env_str("S3_SECRET_ACCESS_KEY", "") or None,
            "region_name": env_str("S3_REGION", "us-east-1"),
            "signature_version": "s3v4",
            "addressing_style": "path",
            "default_acl": None,
            "file_overwrite": False,
            "querystring_expire": env_int("S3_PRESIGNED_URL_EXPIRY", 60),
        },
    }
else:
    EXPORTS_STORAGE_CONFIG = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": MEDIA_ROOT / "exports", "base_url": None},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    EXPORTS_STORAGE: EXPORTS_STORAGE_CONFIG,
}
SOIL_PRESIGNED_URL_EXPIRY = env_int("S3_PRESIGNED_URL_EXPIRY", 60)

# --- Email: printed to the console unless EMAIL_BACKEND says otherwise.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH", str(BASE_DIR / ".run" / "mail"))
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "exports@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
