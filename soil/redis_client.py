"""One Redis client per process, for serial_task's locks (SOIL_REDIS_URL, else REDIS_URL)."""
from functools import lru_cache

import redis as redis_lib
from django.conf import settings


@lru_cache(maxsize=1)
def get_redis_client():
    url = getattr(settings, "SOIL_REDIS_URL", None) or settings.REDIS_URL
    return redis_lib.Redis.from_url(url)
