from django.conf import settings
from django.core.management.base import BaseCommand

from project.broker import rabbitmq_conf


class Command(BaseCommand):
    help = ("Print the rabbitmq.conf lines this service needs of a RabbitMQ node: its listener and a "
            "consumer_timeout longer than the longest hard time limit of the queue table.")
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=5672, help="the AMQP port (default 5672)")
        parser.add_argument("--bind", default="127.0.0.1", help="the address to listen on (default 127.0.0.1)")
        parser.add_argument("--management-port", type=int, help="the management plugin's HTTP port, if enabled")

    def handle(self, *args, port, bind, management_port=None, **options):
        self.stdout.write(rabbitmq_conf(settings.QUEUE_TIME_LIMITS, port=port, bind=bind,
                                        management_port=management_port).rstrip("\n"))
