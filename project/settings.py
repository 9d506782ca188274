"""Django settings. Everything that differs between machines comes from the environment."""
import sys
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _
from redis.backoff import NoBackoff
from redis.retry import Retry

from .broker import is_rabbitmq, longest_hard_limit, task_queues
from .env import env_bool, env_float, env_int, env_list, env_str
from .queues import DEFAULT_QUEUE, QUEUES, QueueTimeLimits, queues_of_group, targets, time_limits

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

# --- HTTPS (docs/operations.md, "Security"). On by default in production (DEBUG false); the local
# run command (DEBUG=true) and the tests (HTTPS_ONLY=false) serve plain http.
HTTPS_ONLY = env_bool("HTTPS_ONLY", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", HTTPS_ONLY)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS_ONLY)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS_ONLY)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 60 * 60 if HTTPS_ONLY else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", HTTPS_ONLY)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# The header a TLS-terminating proxy sets to tell Django the request came over https (the proxy must
# overwrite it on every request); empty means none. Without it, links in emails would say http://.
_proxy_header = env_str("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto" if HTTPS_ONLY else "").strip()
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _proxy_header.upper().replace("-", "_"), "https") if _proxy_header else None
)

INSTALLED_APPS = [
    # project first, so that its templates (base.html, soil/base.html, registration/) override the apps',
    # Django admin's password reset pages included.
    "project",
    "project.accounts",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_ratelimit",
    "ninja",  # the API's interactive page serves its own copy of Swagger UI (no CDN)
    "soil",
    "exports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A download page's status poll with a valid poll token is answered here: it needs no session,
    # user, CSRF or messages (soil.poll_tokens).
    "soil.middleware.PollTokenMiddleware",
    # A download asked for from a byte on (a resumed download) gets 206 with the rest (soil.middleware).
    "soil.middleware.RangeRequestsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of a request: the language cookie (set by the footer's selector, and at login from
    # the user's stored choice), else the browser's Accept-Language. No database read.
    "django.middleware.locale.LocaleMiddleware",
    "project.accounts.preferences.LoginLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    # A form or query string holding a lone surrogate (not a character) is refused in words (project.text_input).
    "project.text_input.LoneSurrogateMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # A throttled client gets 429 with Retry-After (project.accounts.throttling).
    "project.accounts.throttling.ThrottledMiddleware",
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
# Persistent connections (checked before reuse), so a status poll does not pay for a new connection.
# Not under runserver: it serves each request on a new thread, whose connection would stay open
# until it timed out (Django's docs say not to enable them there).
DB_CONN_MAX_AGE = env_int("DB_CONN_MAX_AGE", 0 if "runserver" in sys.argv else 60)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=DB_CONN_MAX_AGE, conn_health_checks=True)}
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

LANGUAGE_CODE = "en"
# English and French. Each app keeps its catalogue in its own locale/ folder (soil, a reusable library,
# carries its own); docs/operations.md says how to update and compile them.
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
# Where `manage.py makemessages` puts each app's strings when run from the top folder (each file goes
# to the locale/ folder of the app it is in); Django finds an app's catalogue there by itself anyway.
LOCALE_PATHS = [BASE_DIR / "project" / "locale", BASE_DIR / "exports" / "locale", BASE_DIR / "soil" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
# Numbers in templates stay ungrouped (ids, percentages in styles); counts shown to people are
# grouped by exports.formatting, in the active language's way ("305,000", "305 000").
USE_THOUSAND_SEPARATOR = False
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

# The broker: Redis (REDIS_URL) unless CELERY_BROKER_URL (or BROKER_URL) names another; amqp:// is RabbitMQ.
# Results, progress and the soil cache stay on Redis whatever the broker (project/broker.py).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", env_str("BROKER_URL", REDIS_URL))
BROKER_IS_RABBITMQ = is_rabbitmq(CELERY_BROKER_URL)
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_RESULT_EXPIRES = env_int("CELERY_RESULT_EXPIRES", 2 * 24 * 60 * 60)
CELERY_TASK_DEFAULT_QUEUE = DEFAULT_QUEUE
# Celery knows exactly the queues of the table: a task sent to any other raises QueueNotFound at once
# instead of waiting forever where no worker listens.
CELERY_TASK_QUEUES = task_queues(QUEUES, BROKER_IS_RABBITMQ)
# On RabbitMQ those are durable quorum queues: Celery then turns off global QoS (which they refuse) and
# sends countdowns through RabbitMQ's native delayed delivery.
CELERY_WORKER_DETECT_QUORUM_QUEUES = True
CELERY_TASK_CREATE_MISSING_QUEUES = False
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
# RabbitMQ has no visibility timeout: it returns a message when its consumer's connection closes, and
# closes a channel that holds one unacknowledged past its consumer_timeout, which the node's config
# must therefore set above the longest hard limit too (project/broker.py writes it; docs/operations.md).
CELERY_VISIBILITY_TIMEOUT = env_int("CELERY_VISIBILITY_TIMEOUT", longest_hard_limit(QUEUE_TIME_LIMITS) + 600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
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
if BROKER_IS_RABBITMQ:
    # Publisher confirms: a sent message is on the quorum queue's majority, or an error. Socket timeouts, so
    # that a frozen node costs a publish three of them (the confirm, closing the channel, then the
    # connection), not forever: a waiting confirm reads with no timeout of its own.
    BROKER_SOCKET_TIMEOUT = env_float("BROKER_SOCKET_TIMEOUT", 1.0)
    CELERY_BROKER_TRANSPORT_OPTIONS = {"confirm_publish": True, "read_timeout": BROKER_SOCKET_TIMEOUT,
                                       "write_timeout": BROKER_SOCKET_TIMEOUT}
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
QUEUE_TARGETS = targets()  # target seconds to start, per queue (queue_status, alerts)

# --- soil
SOIL_CACHE = "default"
SOIL_DEFAULT_EXPIRY = env_int("SOIL_DEFAULT_EXPIRY", 24 * 60 * 60)
SOIL_HEARTBEAT_INTERVAL = env_int("SOIL_HEARTBEAT_INTERVAL", 30)
SOIL_HEARTBEAT_WINDOW = env_int("SOIL_HEARTBEAT_WINDOW", 120)
SOIL_STORAGE = "default"  # where expose_blob_download looks when no storage_alias is given
# Exports' downloads carry their domain: a member removed from it loses soil's pages and files at once.
SOIL_DOWNLOAD_ACCESS_CHECK = "exports.runs.access.can_download"
# CommCare's queue names, for soil's decorators when a task names no queue (all are in project/queues.py).
SOIL_DEFAULT_QUEUE, SOIL_PERIODIC_QUEUE, SOIL_SERIAL_QUEUE = "celery", "celery_periodic", "background_queue"
# soil's serial_task locks: the broker's Redis (SOIL_REDIS_URL unset), or REDIS_URL when the broker is RabbitMQ;
# see soil/conf.py for every SOIL_* setting.
if BROKER_IS_RABBITMQ:
    SOIL_REDIS_URL = REDIS_URL

# --- Monitoring (project/monitoring.py, /metrics, /health/): see docs/operations.md.
# Time-to-start, run time and outcome of every task (off only to measure what they cost).
MONITORING_TASK_HOOKS = env_bool("MONITORING_TASK_HOOKS", True)
# The hooks buffer their records in the process; a thread sends them to Redis this often.
MONITORING_FLUSH_SECONDS = env_float("MONITORING_FLUSH_SECONDS", 0.5)
# Workers write a heartbeat naming their queues this often; one older than three intervals is dead.
MONITORING_WORKER_HEARTBEAT_INTERVAL = env_float("MONITORING_WORKER_HEARTBEAT_INTERVAL", 10.0)
# The task whose returned counts /metrics shows as what the reaper did (requeued, failed, ...).
MONITORING_REAPER_TASK = "exports.tasks.reap_stuck_exports"
# /metrics answers a request that carries this bearer token or comes from one of these addresses or
# networks (REMOTE_ADDR, e.g. "127.0.0.1,10.0.0.0/8"); with neither set it answers nobody.
METRICS_BEARER_TOKEN = env_str("METRICS_BEARER_TOKEN", "")
METRICS_ALLOWED_ADDRESSES = env_list("METRICS_ALLOWED_ADDRESSES", [])
# Queues whose users wait: /health/ready/ needs a live worker on each.
HEALTH_USER_FACING_QUEUES = env_list("HEALTH_USER_FACING_QUEUES", queues_of_group("interactive"))

# --- exports
EXPORT_FILE_EXPIRY = env_int("EXPORT_FILE_EXPIRY", 24 * 60 * 60)
EXPORT_MAX_ROWS = env_int("EXPORT_MAX_ROWS", 5_000_000)  # user exports and saved rebuilds alike
# At most this many queued or running exports per user, and per domain (exports.runs.limits).
EXPORT_MAX_ACTIVE_RUNS_PER_USER = env_int("EXPORT_MAX_ACTIVE_RUNS_PER_USER", 3)
EXPORT_MAX_ACTIVE_RUNS_PER_DOMAIN = env_int("EXPORT_MAX_ACTIVE_RUNS_PER_DOMAIN", 20)
# At most this many daily saved exports per domain: each costs a full build every night.
SAVED_EXPORTS_MAX_PER_DOMAIN = env_int("SAVED_EXPORTS_MAX_PER_DOMAIN", 25)
EXPORT_CHUNK_SIZE = env_int("EXPORT_CHUNK_SIZE", 500)  # measured: docs/performance.md, "Chunk size"
EXPORT_CLEANUP_INTERVAL = env_int("EXPORT_CLEANUP_INTERVAL", 15 * 60)
# The xlsx writer (exports.writers.XLSX_ENGINES): "streaming" writes the sheet XML straight into the
# zip (fast, the default); "openpyxl" is the compatibility engine (openpyxl's write-only mode).
EXPORT_XLSX_ENGINE = env_str("EXPORT_XLSX_ENGINE", "streaming")
if EXPORT_XLSX_ENGINE not in ("streaming", "openpyxl"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"EXPORT_XLSX_ENGINE={EXPORT_XLSX_ENGINE!r}: use streaming or openpyxl.")
# csv exports on PostgreSQL are rendered by the server (COPY ... TO STDOUT, exports.files.pg_copy) where it
# writes exactly what the Python writer would; false: always the Python writer.
EXPORT_POSTGRES_COPY = env_bool("EXPORT_POSTGRES_COPY", True)
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")
# The run lifecycle (exports.runs.lifecycle): a build's lease lapses this long after its last renewal,
# which a background thread makes every EXPORT_LEASE_RENEW_SECONDS; a stuck run is retried until
# it has been started EXPORT_MAX_ATTEMPTS times; the reaper looks for stuck runs this often, and a
# queued run whose message is gone from Redis counts as lost after EXPORT_LOST_MESSAGE_GRACE seconds.
EXPORT_LEASE_SECONDS = env_int("EXPORT_LEASE_SECONDS", 60)
EXPORT_LEASE_RENEW_SECONDS = env_int("EXPORT_LEASE_RENEW_SECONDS", 2)
EXPORT_MAX_ATTEMPTS = env_int("EXPORT_MAX_ATTEMPTS", 2)
EXPORT_REAPER_INTERVAL = env_int("EXPORT_REAPER_INTERVAL", 60)
EXPORT_LOST_MESSAGE_GRACE = env_int("EXPORT_LOST_MESSAGE_GRACE", 30)
# Partitioned builds (exports.files.partitions): an export of at least EXPORT_PARTITION_ROWS rows (0: never)
# is built as EXPORT_PARTITIONS parts by key range, in parallel, then assembled into one file.
EXPORT_PARTITION_ROWS = env_int("EXPORT_PARTITION_ROWS", 500_000)
EXPORT_PARTITIONS = env_int("EXPORT_PARTITIONS", 4)
# Server-sent events (exports.web.streams): how often a stream re-reads the run, how often it sends a
# keep-alive comment, and how long one stream lives before the browser reconnects.
EXPORT_STREAM_POLL_SECONDS = env_float("EXPORT_STREAM_POLL_SECONDS", 1.0)
EXPORT_STREAM_KEEPALIVE_SECONDS = env_int("EXPORT_STREAM_KEEPALIVE_SECONDS", 15)
EXPORT_STREAM_MAX_SECONDS = env_int("EXPORT_STREAM_MAX_SECONDS", 120)
EXPORT_STREAM_PUSH = env_bool("EXPORT_STREAM_PUSH", True)
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

# --- Security: throttling (django-ratelimit, counted in the Redis cache), API tokens, the debug page.
# Rates are "count/period" with period s, m, h or d. Failed logins (site and admin) are counted per
# client address and per username; password-reset requests per address and per email address; the
# API per user, and its failed authentications per address.
RATELIMIT_ENABLE = env_bool("RATELIMIT_ENABLE", True)
RATELIMIT_USE_CACHE = "default"
# django-ratelimit names django-redis as supported; Django's own RedisCache is as good for it (add is
# SET NX, incr is INCRBY: both atomic).
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
LOGIN_FAILURE_RATE_PER_ADDRESS = env_str("LOGIN_FAILURE_RATE_PER_ADDRESS", "20/10m")
LOGIN_FAILURE_RATE_PER_USERNAME = env_str("LOGIN_FAILURE_RATE_PER_USERNAME", "5/10m")
PASSWORD_RESET_RATE_PER_ADDRESS = env_str("PASSWORD_RESET_RATE_PER_ADDRESS", "10/h")
PASSWORD_RESET_RATE_PER_EMAIL = env_str("PASSWORD_RESET_RATE_PER_EMAIL", "2/h")
API_RATE_PER_USER = env_str("API_RATE_PER_USER", "300/m")
API_AUTH_FAILURE_RATE_PER_ADDRESS = env_str("API_AUTH_FAILURE_RATE_PER_ADDRESS", "10/m")
# Where the client address comes from: REMOTE_ADDR, or behind a proxy the header it sets, e.g.
# HTTP_X_FORWARDED_FOR (the proxy must overwrite it; the last address in the list is used).
RATELIMIT_CLIENT_ADDRESS_HEADER = env_str("RATELIMIT_CLIENT_ADDRESS_HEADER", "REMOTE_ADDR")
# API tokens are the way scripts sign in; HTTP Basic with a password is off unless turned on here.
API_BASIC_AUTH = env_bool("API_BASIC_AUTH", False)
API_TOKENS_PER_USER = env_int("API_TOKENS_PER_USER", 10)
# The debug page (DEBUG=true only) hides settings whose names match, URLs with passwords included.
DEFAULT_EXCEPTION_REPORTER_FILTER = "project.security.SettingsMaskingFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
