"""The Celery broker: Redis (the default) or RabbitMQ, and what each needs of the queue table.

Results, progress, the soil cache and the monitoring figures stay on Redis (REDIS_URL) whatever the
broker. On RabbitMQ every queue of the table is a durable quorum queue: replicated on a cluster,
kept across a restart, and a message a dead consumer held goes back at once. The node's
`consumer_timeout` (how long RabbitMQ lets a delivery go unacknowledged before it closes the channel,
30 minutes by default) must be longer than the longest hard time limit, or a long saved export would
be cut off: `rabbitmq_conf` writes it so, and `manage.py rabbitmq_config` prints it for a node.
"""
from kombu import Exchange, Queue

RABBITMQ_SCHEMES = ("amqp", "amqps", "pyamqp")
# Above the longest hard limit, as the Redis visibility timeout is: no task outlives its hard limit.
CONSUMER_TIMEOUT_MARGIN_SECONDS = 10 * 60


def is_rabbitmq(url):
    return url.split("://", 1)[0].lower() in RABBITMQ_SCHEMES


def longest_hard_limit(limits):
    """The longest hard time limit (seconds) of {queue: (soft, hard)}."""
    return max(hard for _, hard in limits.values())


def task_queues(queues, rabbitmq):
    """Celery's queues for the table. On RabbitMQ: durable quorum queues behind topic exchanges (the kind
    Celery's native delayed delivery, which replaces countdowns on quorum queues, can route to)."""
    if not rabbitmq:
        return [Queue(name, Exchange(name), routing_key=name) for name in queues]
    return [Queue(name, Exchange(name, type="topic", durable=True), routing_key=name, durable=True,
                  queue_arguments={"x-queue-type": "quorum"}) for name in queues]


def consumer_timeout_ms(limits):
    """RabbitMQ's consumer_timeout for these time limits, in milliseconds."""
    return (longest_hard_limit(limits) + CONSUMER_TIMEOUT_MARGIN_SECONDS) * 1000


def rabbitmq_conf(limits, port=5672, bind="127.0.0.1", management_port=None):
    """The lines of a node's rabbitmq.conf that this service relies on."""
    lines = [
        f"listeners.tcp.1 = {bind}:{port}",
        "# Longer than the longest hard time limit: a long build is never cut off unacknowledged.",
        f"consumer_timeout = {consumer_timeout_ms(limits)}",
    ]
    if management_port:
        lines += [f"management.tcp.ip = {bind}", f"management.tcp.port = {management_port}"]
    return "\n".join(lines) + "\n"


def queue_lengths(app, queues):
    """{queue: messages ready} from RabbitMQ (a passive declare per queue; one connection)."""
    lengths = {}
    with app.connection_for_read() as conn:
        channel = conn.default_channel
        for queue in queues:
            try:
                lengths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except Exception as exc:  # noqa: BLE001 (a queue no worker declared yet: the channel closes)
                if getattr(exc, "code", None) != 404:
                    raise
                lengths[queue] = 0
                channel = conn.channel()
    return lengths
