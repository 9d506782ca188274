"""The demo task: sleeps while reporting progress, then exposes a small text file."""
import time

from celery import states
from celery.exceptions import Ignore
from django.utils import timezone

from soil import DownloadBase
from soil.decorators import task
from soil.progress import update_task_state
from soil.util import expose_cached_download

DEMO_FILE_EXPIRY = 60 * 60
STEPS_PER_SECOND = 4


@task(queue="demo_queue")
def demo_sleep(seconds=10, fail=None):
    """Sleep `seconds`, reporting progress; `fail` ("errors" or "raise") fails halfway, to try both styles."""
    steps = max(1, int(seconds * STEPS_PER_SECOND))
    DownloadBase.set_progress(demo_sleep, 0, steps)
    for step in range(1, steps + 1):
        time.sleep(1 / STEPS_PER_SECOND)
        DownloadBase.set_progress(demo_sleep, step, steps)
        if step >= steps // 2 and fail == "errors":
            update_task_state(demo_sleep, states.FAILURE, {"errors": ["The demo was asked to fail (errors style)."]})
            raise Ignore()
        if step >= steps // 2 and fail == "raise":
            raise RuntimeError("The demo was asked to fail (raise style).")
    payload = f"Made by the soil demo task at {timezone.now().isoformat()} after {seconds} s.\n"
    expose_cached_download(payload, DEMO_FILE_EXPIRY, ".txt", content_disposition="soil-demo.txt")
