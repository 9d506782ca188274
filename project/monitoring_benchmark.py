"""The no-op task of `manage.py benchmark_monitoring`; only its benchmark workers import this module."""
import time

from soil.decorators import task

from .monitoring import client

MARK_KEY = "benchmark:monitoring:{}"


@task(queue="background_queue", ignore_result=True)
def noop(mark=None):
    """Do nothing; the first and last of a batch note when they ran."""
    if mark:
        client().set(MARK_KEY.format(mark), time.time())
