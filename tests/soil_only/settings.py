"""Settings of a project with soil as its only app: no exports, no django-celery-beat, no REDIS_URL.

Everything soil needs: Django's auth and sessions (its views require login), a Redis cache for its
records, and Celery on Redis. soil reads its own settings through soil.conf, all left at their
defaults: soil's tasks name no queue, so Celery's default queue takes them.
"""
import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")

SECRET_KEY = "soil-only-test-settings"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "soil",
]
MIDDLEWARE = [
    "soil.middleware.PollTokenMiddleware",  # optional (docs/soil.md); its tests need it
    "soil.middleware.RangeRequestsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
ROOT_URLCONF = "tests.soil_only.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
}]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": BASE_DIR / ".run" / "soil-only.sqlite3",
    "TEST": {"NAME": str(BASE_DIR / ".run" / "soil-only-test.sqlite3")},
}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
MEDIA_ROOT = BASE_DIR / ".run" / "soil-only-media"

CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": BROKER_URL}}

CELERY_BROKER_URL = BROKER_URL
CELERY_RESULT_BACKEND = BROKER_URL
CELERY_TASK_SERIALIZER = CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = CELERY_RESULT_ACCEPT_CONTENT = ["json"]
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_STORE_EAGER_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# Test users only: a fast hasher keeps the run short.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
