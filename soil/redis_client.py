"""One Redis client per process and URL, for serial_task's locks (SOIL_REDIS_URL, else the broker)."""
from functools import lru_cache

import redis as redis_lib

from .conf import soil_conf


def get_redis_client():
    return _client(soil_conf.redis_url)


@lru_cache(maxsize=4)
def _client(url):
    return redis_lib.Redis.from_url(url)
