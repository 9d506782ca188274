"""The Celery worker's consumer, made to outlive a Redis restart (settings: CELERY_WORKER_CONSUMER).

With Celery 5.7.0 on kombu's Redis transport, losing Redis while acks_late tasks are in flight
takes the whole worker process down with
``AttributeError: 'NoneType' object has no attribute 'hostname'``:

1. On a lost connection the stock consumer first calls ``connection.collect()``, which releases
   the connection's transport (``transport.client = None``). When Redis is down, the channel
   that was waiting in BRPOP fails to close there and stays open. Celery 5.7.0 then also calls
   ``connection.close()``, which closes that channel again; putting the unacknowledged
   messages back now needs a new Redis pool, built from the released transport's
   ``client.hostname``. The AttributeError is not a connection error, so it escapes the
   consumer and the worker exits. (Celery 5.6 only collected.)
2. A task received before the loss that ends after the reconnect is acknowledged on its old
   channel, which meets the same released transport inside the event loop.

Both failures concern a connection that is already gone. Here they are logged, and the worker
reconnects and goes on. A message whose ack was lost stays in Redis's unacked set and is
delivered again after the visibility timeout (or is gone with an empty Redis); our long tasks
are idempotent.

Upstream: the second close came with the fix of celery/celery#9705 (a worker that hung on
reconnect; pull requests #10242 and #10570, both in 5.7.0). Closing a Redis channel whose
connection was released is the crash of celery/kombu#582. No Celery or kombu release after 5.7.0
exists yet to drop this for. tests/test_framework_workarounds.py fails when either version
changes: then run tests/test_faults_redis.py without CELERY_WORKER_CONSUMER, and delete this
module if the worker survives.

The only framework internals used: the consumer methods overridden below (Celery's documented
worker_consumer setting chooses the class) and `close` replaced on the one connection being
given up.
"""
import logging
from functools import partial

from celery.worker.consumer import Consumer as CeleryConsumer

log = logging.getLogger(__name__)


class Consumer(CeleryConsumer):
    """Celery's consumer, except that cleaning up a lost Redis connection never stops the worker."""

    def on_connection_error_after_connected(self, exc):
        if self.connection is not None:
            self.connection.close = partial(_close_lost_connection, self.connection)
        super().on_connection_error_after_connected(exc)

    def call_soon_ack(self, p, *args, **kwargs):
        return super().call_soon_ack(_settle_message, p, *args, **kwargs)


def _close_lost_connection(connection):
    """Close a connection whose transport Connection.collect() may already have released."""
    try:
        type(connection).close(connection)
    except AttributeError as exc:
        log.warning("Could not close the lost broker connection (%r); its unacknowledged messages "
                    "stay in Redis and are delivered again after the visibility timeout.", exc)


def _settle_message(ack_or_reject, *args, **kwargs):
    """Ack or reject a message; one that came on a lost connection is left to Redis's redelivery."""
    try:
        return ack_or_reject(*args, **kwargs)
    except AttributeError as exc:
        log.warning("Could not settle a task message received on a lost broker connection (%r); it "
                    "stays in Redis and is delivered again after the visibility timeout.", exc)
        return None
