"""soil's settings live in soil/conf.py, and soil's core needs only Django, Celery and Redis."""
import re
from pathlib import Path

import pytest
from celery import current_app

import soil
from soil.conf import DEFAULTS, soil_conf
from soil.redis_client import get_redis_client

SOIL_DIR = Path(soil.__file__).parent
SETTINGS_READ = re.compile(r"\bsettings\.[A-Z]|getattr\(settings\b|from django\.conf import settings")


def test_no_soil_module_but_conf_reads_django_settings():
    readers = [path.name for path in SOIL_DIR.rglob("*.py")
               if path.name != "conf.py" and SETTINGS_READ.search(path.read_text())]
    assert readers == []


def test_every_setting_has_a_default_and_reads_the_soil_prefixed_django_setting(settings):
    settings.SOIL_HEARTBEAT_WINDOW = 7
    assert soil_conf.HEARTBEAT_WINDOW == 7
    del settings.SOIL_HEARTBEAT_WINDOW
    assert soil_conf.HEARTBEAT_WINDOW == DEFAULTS["HEARTBEAT_WINDOW"] == 120
    with pytest.raises(AttributeError, match="no setting 'NOT_A_SETTING'"):
        soil_conf.NOT_A_SETTING  # noqa: B018


def test_soil_redis_defaults_to_the_celery_broker(settings):
    if hasattr(settings, "SOIL_REDIS_URL"):
        del settings.SOIL_REDIS_URL
    assert soil_conf.redis_url == current_app.conf.broker_url


def test_soil_redis_url_chooses_the_lock_server(settings):
    settings.SOIL_REDIS_URL = "redis://locks.example.invalid:6400/3"
    kwargs = get_redis_client().connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("locks.example.invalid", 6400, 3)


def test_only_the_optional_beat_module_needs_django_celery_beat():
    users = sorted(path.name for path in SOIL_DIR.rglob("*.py") if "django_celery_beat" in path.read_text())
    assert users == ["beat.py"]
