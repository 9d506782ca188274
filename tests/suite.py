"""The suite's own pytest plugin, loaded by pytest.ini (`-p tests.suite`) before Django's settings.

* Isolation under pytest-xdist: each xdist worker gets a Redis database (and on RabbitMQ a virtual host
  of its own, `<vhost>-gwN`), a MEDIA_ROOT and (through
  tests/conftest.py) a Celery worker process, worker log and mail folder of its own. pytest-django
  already gives each one its own test database (test_exports_gw1, .test-db.sqlite3_gw1).
* Markers derived from fixtures: whoever uses a fixture gets its marker, so `-m` selects by what a
  test really starts (the worker process, Chromium, a private deployment) whatever its file says.
* `--no-browser-tests`: the selection of a second database pass (./test.sh's PostgreSQL pass): none of
  the browser or sqlite_pass tests; `--db-tests-only`: besides, only the tests that reach the
  database. Both combine with any `-m`.
* At the end, the seconds spent per group (fault, browser, worker, unit).
"""
import os
import time
from collections import defaultdict
from urllib.parse import urlsplit, urlunsplit

import pytest

# Each xdist worker takes every REDIS_DB_STRIDE-th database from the one in REDIS_URL: gw0 the pass's
# own, gw1 the pass's + 2, ... The database in between stays free for the session that
# test_soil_standalone nests (it uses the next database of its own session's).
REDIS_DB_STRIDE = 2
REDIS_DATABASES = int(os.environ.get("TEST_REDIS_DATABASES", 16))  # redis-server's default; ./test.sh's own: 24


def _xdist_worker_index():
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # set by xdist before this module is imported
    return int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else None


def _isolate_xdist_worker():
    """Runs at import, before pytest-django loads the settings: they read these variables."""
    index = _xdist_worker_index()
    if index is None or os.environ.get("TEST_ISOLATED_WORKER") == os.environ["PYTEST_XDIST_WORKER"]:
        return
    url = os.environ.get("REDIS_URL")
    if url:
        parts = urlsplit(url)
        db = int(parts.path.strip("/") or 0) + REDIS_DB_STRIDE * index
        if db + 1 >= REDIS_DATABASES:
            raise pytest.UsageError(f"xdist worker gw{index} would need Redis database {db} (and {db + 1}); "
                                    f"REDIS_URL's server has {REDIS_DATABASES}: use fewer workers")
        os.environ["REDIS_URL"] = urlunsplit(parts._replace(path=f"/{db}"))
    broker = os.environ.get("BROKER_URL", "")
    if broker.startswith("amqp"):  # RabbitMQ: a virtual host per xdist worker (./test.sh makes them)
        parts = urlsplit(broker)
        os.environ["BROKER_URL"] = urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}-gw{index}"))
    if os.environ.get("MEDIA_ROOT"):
        os.environ["MEDIA_ROOT"] = f"{os.environ['MEDIA_ROOT']}-gw{index}"
    # Child processes (the Celery worker, a nested pytest) inherit the variables: not isolated twice.
    os.environ["TEST_ISOLATED_WORKER"] = os.environ["PYTEST_XDIST_WORKER"]


_isolate_xdist_worker()


# --- Markers derived from fixtures ---

FIXTURE_MARKERS = {
    "celery_worker": ("worker",),  # the suite's real Celery worker process
    "worker": ("worker",),
    "chromium": ("browser", "slow"),
    "page": ("browser", "slow"),
    "logged_in_page": ("browser", "slow"),
    "stack": ("fault", "slow"),  # a private Redis, web servers and workers, killed by PID
}
# Using one of these reaches the test database (pytest-django refuses database access to the others).
# live_server asks for transactional_db at run time, not by name. django_db_setup: the worker process
# and the private deployments of fault tests use the test database.
DATABASE_FIXTURES = {
    "db", "transactional_db", "django_db_reset_sequences", "django_db_serialized_rollback", "live_server",
    "admin_user", "admin_client", "django_db_setup",
}
GROUPS = ("fault", "browser", "worker")  # a test's group for the timings: the first of its markers here


def reaches_database(item):
    if item.get_closest_marker("django_db") is not None:
        return True
    names = set(getattr(item, "fixturenames", ()))
    if names & DATABASE_FIXTURES:
        return True
    # A fixture of the suite's that unblocks the database itself (pytest-django's own fixtures ask for
    # django_db_blocker too, and open the database only through those named above).
    infos = getattr(item, "_fixtureinfo", None)
    for name in names:
        for fixturedef in (infos.name2fixturedefs.get(name, ()) if infos else ()):
            module = getattr(fixturedef.func, "__module__", "") or ""
            if "django_db_blocker" in fixturedef.argnames and not module.startswith("pytest_django"):
                return True
    return False


def pytest_addoption(parser):
    parser.addoption(
        "--db-tests-only", action="store_true",
        help="a second database pass: only the tests that reach the database, without the browser and "
             "sqlite_pass ones (./test.sh's PostgreSQL pass); combines with -m",
    )
    parser.addoption(
        "--broker-tests-only", action="store_true",
        help="a second broker pass (./test.sh's RabbitMQ pass): only the worker and fault tests, without the "
             "browser and sqlite_pass ones; combines with -m",
    )
    parser.addoption(
        "--no-fault-tests", action="store_true",
        help="without the fault tests but the browser and sqlite_pass ones (./test.sh's SQLite pass, when the "
             "PostgreSQL and RabbitMQ passes run them: on PostgreSQL with Redis, on SQLite with RabbitMQ)",
    )
    parser.addoption(
        "--no-browser-tests", action="store_true",
        help="without the browser and sqlite_pass tests (./test.sh's PostgreSQL pass); combines with -m",
    )


@pytest.hookimpl(tryfirst=True)  # before -m and -k look at the markers
def pytest_collection_modifyitems(config, items):
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        have = {mark.name for mark in item.iter_markers()}
        for fixture, markers in FIXTURE_MARKERS.items():
            if fixture in names:
                for marker in markers:
                    if marker not in have:
                        item.add_marker(marker)
                        have.add(marker)
    from django.conf import settings

    def marked(item, *names):
        return any(item.get_closest_marker(name) for name in names)

    def leave_out(drop):
        dropped = [item for item in items if drop(item)]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = [item for item in items if not drop(item)]

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        # A test of PostgreSQL's own is left out of the other passes: it would prove nothing there.
        leave_out(lambda item: marked(item, "postgresql"))
    if os.environ.get("TEST_BROKER", "redis") != "rabbitmq":
        # Likewise a test of RabbitMQ's own (a refused publish) outside the RabbitMQ pass.
        leave_out(lambda item: marked(item, "rabbitmq"))
    if config.getoption("no_fault_tests"):
        leave_out(lambda item: marked(item, "fault") and not marked(item, "browser", "sqlite_pass"))
    db_tests_only, broker_tests_only = config.getoption("db_tests_only"), config.getoption("broker_tests_only")
    if db_tests_only or broker_tests_only or config.getoption("no_browser_tests"):
        leave_out(lambda item: (marked(item, "browser", "sqlite_pass")
                                or (db_tests_only and not reaches_database(item))
                                or (broker_tests_only and not marked(item, "worker", "fault"))))


# --- Seconds per group ---

class GroupTimes:
    def __init__(self):
        self.seconds = defaultdict(float)
        self.tests = defaultdict(set)
        self.started = time.monotonic()

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report):
        keywords = getattr(report, "keywords", {}) or {}
        group = next((name for name in GROUPS if name in keywords), "unit")
        self.seconds[group] += report.duration or 0.0
        self.tests[group].add(report.nodeid)

    @pytest.hookimpl
    def pytest_terminal_summary(self, terminalreporter):
        if not self.seconds:
            return
        wall = time.monotonic() - self.started
        total = sum(self.seconds.values())
        workers = getattr(terminalreporter.config.option, "numprocesses", None)
        terminalreporter.section("seconds per group")
        for group in (*GROUPS, "unit"):
            if group in self.seconds:
                terminalreporter.write_line(
                    f"{group:8} {self.seconds[group]:8.1f} s  {len(self.tests[group]):4d} tests"
                    f"  ({100 * self.seconds[group] / total if total else 0:.0f}%)")
        note = f" in {workers} xdist workers" if workers else ""
        terminalreporter.write_line(f"{'total':8} {total:8.1f} s of tests (set-up, call, tear-down){note}; "
                                    f"{wall:.1f} s since start")


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the controller (or the only process) reports
        config.pluginmanager.register(GroupTimes(), "tests-suite-group-times")
