"""Settings of the server that `manage.py benchmark_poll` starts: the project's, plus a URL for
celery-progress's status view. celery-progress is installed only in the benchmark's own folder."""
from .settings import *  # noqa: F403

ROOT_URLCONF = "project.benchmark_poll_urls"
