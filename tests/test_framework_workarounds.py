"""Our workarounds of framework bugs, each guarded: a test here fails when the version it was written
for changes, naming the upstream issue and how to tell whether the workaround is still needed."""
import logging

import celery
import kombu
import pytest
from kombu import Connection

from project import worker

RELEASED_TRANSPORT = AttributeError("'NoneType' object has no attribute 'hostname'")


def test_the_worker_consumer_is_written_for_celery_and_kombu_5_7_0():
    assert (celery.__version__, kombu.__version__) == ("5.7.0", "5.7.0"), (
        "project/worker.py works around Celery 5.7.0 closing a broker connection that it has already "
        "collected (the second close came with the fix of celery/celery#9705; the crash is that of "
        "celery/kombu#582). With Celery or kombu upgraded, run tests/test_faults_redis.py with "
        "CELERY_WORKER_CONSUMER removed from project/settings.py: if the worker survives, delete "
        "project/worker.py and that setting; if not, pin this test to the new versions.")


def test_the_worker_consumer_is_the_one_celery_uses(settings):
    assert settings.CELERY_WORKER_CONSUMER == "project.worker:Consumer"
    assert celery.current_app.conf.worker_consumer == "project.worker:Consumer"


class ReleasedConnection(Connection):
    """A connection whose transport Connection.collect() has released, as Celery 5.7.0 leaves it."""

    def close(self):
        raise RELEASED_TRANSPORT


class RefusedConnection(Connection):
    def close(self):
        raise ConnectionRefusedError("Redis is down")


def test_closing_a_lost_connection_whose_transport_is_released_logs_instead_of_raising(caplog):
    with caplog.at_level(logging.WARNING, logger="project.worker"):
        worker._close_lost_connection(ReleasedConnection("redis://127.0.0.1:1/0"))
    assert "delivered again after the visibility timeout" in caplog.text


def test_closing_a_lost_connection_leaves_connection_errors_to_celery():
    # Celery's ignore_errors() deals with these; only the AttributeError escaped it.
    with pytest.raises(ConnectionRefusedError):
        worker._close_lost_connection(RefusedConnection("redis://127.0.0.1:1/0"))


def test_an_ack_on_a_lost_connection_is_left_to_redis_redelivery(caplog):
    def ack_on_released_transport():
        raise RELEASED_TRANSPORT

    with caplog.at_level(logging.WARNING, logger="project.worker"):
        assert worker._settle_message(ack_on_released_transport) is None
    assert "stays in Redis" in caplog.text
    assert worker._settle_message(lambda delivery_tag: delivery_tag, 7) == 7
