"""soil stands alone: its own tests pass in a project where it is the only app (tests/soil_only)."""
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from soil.conf import soil_conf

ROOT = Path(__file__).resolve().parent.parent
SOIL_TESTS = sorted(str(path.relative_to(ROOT)) for path in (ROOT / "tests").glob("test_soil_*.py")
                    if path.name != Path(__file__).name)


def neighbour_database(url):
    """The next Redis database on the same server, so the run's flush leaves this session's data alone."""
    parts = urlsplit(url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


@pytest.mark.slow
@pytest.mark.sqlite_pass  # the soil-only project has its own SQLite database, whatever this pass's is
def test_soils_tests_pass_with_only_soil_installed():
    env = {key: value for key, value in os.environ.items()
           if key not in {"REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PYTEST_ADDOPTS"}}
    env["CELERY_BROKER_URL"] = neighbour_database(soil_conf.redis_url)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--ds", "tests.soil_only.settings",
         *SOIL_TESTS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "skipped" not in run.stdout
