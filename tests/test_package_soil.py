"""soil installs as its own distribution (django-soil, pyproject.toml) and works from the installed copy.

The wheel is built from a copy of what it packages, installed into a fresh virtualenv with only its
declared dependencies (plus pytest and pytest-django to run tests), and then:
1. soil's own tests run in the soil-only project (tests/soil_only) against the installed copy;
2. the project of docs/soil.md, written from its code blocks, runs with a real worker and web server:
   the progress moves and the file downloads over HTTP.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from soil.conf import soil_conf
from tests.processes import HttpSession, free_port, wait_until
from tests.test_soil_standalone import neighbour_database

pytestmark = [pytest.mark.slow, pytest.mark.sqlite_pass]

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "soil.md"
TEST_HELPERS = ["__init__.py", "conftest.py", "suite.py", "processes.py", "s3_server.py", "celery_tasks.py"]
PROJECT_ENV = {"REDIS_URL", "DATABASE_URL", "DJANGO_SETTINGS_MODULE", "PYTEST_ADDOPTS", "PYTHONPATH",
               "VIRTUAL_ENV", "CELERY_BROKER_URL", "SECRET_KEY"}
MANAGE_PY = """import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
"""


def run(command, **kwargs):
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    return result


def pinned(name):
    """`name==version` as requirements-test.txt pins it."""
    for line in (ROOT / "requirements-test.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.strip()
    raise LookupError(name)


def clean_env(**extra):
    """This process's environment without the project's settings: the child finds only what it is given."""
    return {**{key: value for key, value in os.environ.items() if key not in PROJECT_ENV}, **extra}


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory):
    """The python of a fresh virtualenv holding the django-soil wheel and its declared dependencies."""
    base = tmp_path_factory.mktemp("soil-package")
    source = base / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copytree(ROOT / "soil", source / "soil", ignore=shutil.ignore_patterns("__pycache__"))
    (source / "docs").mkdir()
    shutil.copy(GUIDE, source / "docs")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "wheels", source])
    wheel, = (base / "wheels").glob("django_soil-*.whl")
    run([sys.executable, "-m", "venv", "--without-pip", base / "venv"])
    python = base / "venv" / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", wheel, pinned("pytest"),
         pinned("pytest-django")])
    return python


def test_the_wheel_holds_soil_only_with_its_templates_static_and_locale(venv_python):
    found = run([venv_python, "-c", "import soil, pathlib; root = pathlib.Path(soil.__file__).parent; "
                 "print(soil.__version__); print(*sorted(str(p.relative_to(root)) for p in root.rglob('*.*')), sep='\\n')"],
                cwd=venv_python.parent).stdout.split()
    version = re.search(r'__version__ = "([^"]+)"', (ROOT / "soil" / "__init__.py").read_text()).group(1)
    assert found[0] == version
    assert {"templates/soil/retrieve_download.html", "templates/soil/partials/progress.html",
            "static/soil/soil.js", "locale/fr/LC_MESSAGES/django.mo"} <= set(found)
    top_level = run([venv_python, "-c", "import importlib.metadata as m; print(m.distribution('django-soil')"
                     ".read_text('top_level.txt'))"]).stdout.split()
    assert top_level == ["soil"]


def test_soils_own_tests_pass_against_the_installed_copy(venv_python, tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    for name in TEST_HELPERS:
        shutil.copy(ROOT / "tests" / name, tests)
    shutil.copytree(ROOT / "tests" / "soil_only", tests / "soil_only", ignore=shutil.ignore_patterns("__pycache__"))
    soil_tests = [path.name for path in (ROOT / "tests").glob("test_soil_*.py") if path.name != "test_soil_standalone.py"]
    for name in soil_tests:
        shutil.copy(ROOT / "tests" / name, tests)
    shutil.copy(ROOT / "pytest.ini", tmp_path)
    (tmp_path / ".run").mkdir()

    imported_from = run([venv_python, "-c", "import soil; print(soil.__file__)"], cwd=tmp_path).stdout.strip()
    assert imported_from.startswith(str(venv_python.parent.parent)), imported_from

    # The next database is this xdist worker's spare (tests/suite.py); the nested run flushes it.
    env = clean_env(CELERY_BROKER_URL=neighbour_database(soil_conf.redis_url))
    result = subprocess.run(
        [str(venv_python), "-m", "pytest", "-p", "no:cacheprovider", "-q", "--ds", "tests.soil_only.settings",
         *(f"tests/{name}" for name in sorted(soil_tests))],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout


def guide_files():
    """{path: text} of every code block of docs/soil.md whose first line is a comment naming a file."""
    files = {}
    for block in re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.DOTALL):
        first = block.splitlines()[0]
        if re.fullmatch(r"# [\w/]+\.py", first):
            files[first[2:]] = block
    return files


class Child:
    """A server process of the guide's project, stopped with its whole session."""

    def __init__(self, command, cwd, env, log):
        self.log = log
        with open(log, "wb") as out:
            self.process = subprocess.Popen([str(part) for part in command], cwd=cwd, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def tail(self):
        return self.log.read_text(errors="replace")[-3000:]


def test_the_adoption_guides_project_shows_progress_and_serves_the_file(venv_python, tmp_path):
    files = guide_files()
    assert {"mysite/settings.py", "mysite/celery.py", "mysite/urls.py", "reports/tasks.py",
            "reports/views.py", "reports/tests.py"} <= set(files)
    site = tmp_path / "site"
    for path, text in files.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(text)
    (site / "manage.py").write_text(MANAGE_PY)  # as django-admin startproject writes it
    login_page = site / "reports" / "templates" / "registration" / "login.html"  # a project has its own
    login_page.parent.mkdir(parents=True)
    login_page.write_text('<form method="post">{% csrf_token %}{{ form }}<button>Log in</button></form>')
    redis_url = neighbour_database(soil_conf.redis_url)  # this xdist worker's spare database (tests/suite.py)
    env = clean_env(REDIS_URL=redis_url, SECRET_KEY="guide-test-secret")
    python = str(venv_python)

    run([python, "manage.py", "migrate", "-v", "0"], cwd=site, env=env)
    run([python, "manage.py", "shell", "-c",
         "from django.contrib.auth.models import User; User.objects.create_user('reader', password='pw-guide-123')"],
        cwd=site, env=env)
    # The guide's test without a worker.
    run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ds", "mysite.settings", "reports/tests.py"],
        cwd=site, env=env)

    port = free_port()
    worker = Child([python, "-m", "celery", "-A", "mysite", "worker", "-l", "info", "--concurrency", "1",
                    "--without-gossip", "--without-mingle", "-n", f"guide-{port}@localhost"],
                   site, env, tmp_path / "worker.log")
    web = Child([python, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"], site, env,
                tmp_path / "web.log")
    try:
        session = HttpSession(f"http://127.0.0.1:{port}")
        wait_until(lambda: _answers(session), 30, f"the guide's web server\n{web.tail()}")
        session.login("reader", "pw-guide-123")

        status, headers, _ = session.post("/reports/start/", {"count": "10"})
        assert status == 302, status
        page_path = headers["Location"]
        download_id = page_path.rstrip("/").rsplit("/", 1)[-1]
        status, _, page = session.get(page_path)
        assert status == 200 and b"soil/soil.js" in page
        assert session.get("/static/soil/soil.js")[0] == 200

        seen = []

        def ready():
            code, data = session.json("GET", f"/downloads/{download_id}/status/")
            assert code == 200, data
            seen.append(data["percent"])
            return data["is_ready"] and data

        done = wait_until(ready, 60, f"the guide's task to finish\n{worker.tail()}", interval=0.05)
        moving = sorted({percent for percent in seen if 0 < percent < 100})
        assert len(moving) >= 2, seen  # the bar moved while the task ran

        status, headers, body = session.get(done["download_url"])
        assert status == 200
        assert headers["Content-Disposition"] == 'attachment; filename="squares.csv"'
        assert body.decode().splitlines() == ["n,square", *(f"{n},{n * n}" for n in range(1, 11))]
    finally:
        web.stop()
        worker.stop()


def _answers(session):
    try:
        return session.get("/accounts/login/")[0] == 200
    except OSError:
        return False
