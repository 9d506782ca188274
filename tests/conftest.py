"""Fixtures that start real things: a Celery worker process, Chromium, users."""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from celery import current_app as celery_app  # the settings' project made it: project/ or tests/soil_only/

pytest.register_assert_rewrite("tests.processes")  # imported below before pytest loads it as a plugin
from django.conf import settings

from soil.conf import soil_conf
from tests.processes import database_url, die_with_parent, wait_until

pytest_plugins = ["tests.s3_server", "tests.processes"]  # SeaweedFS S3; private deployments for fault tests

ROOT = Path(__file__).resolve().parent.parent
# One of each per session running at once (an xdist worker, a pass of ./test.sh): named after the
# session's Redis database, which tests/suite.py and ./test.sh make its own.
_REDIS_DB = int(urlsplit(soil_conf.redis_url).path.strip("/") or 0)
WORKER_LOG = ROOT / ".run" / f"test-worker-redis{_REDIS_DB}.log"
# The worker sends mail with Django's file backend, so that tests can read what it sent.
WORKER_MAIL_DIR = ROOT / ".run" / f"test-mail-redis{_REDIS_DB}"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def pytest_configure(config):
    # Playwright's sync API keeps an event loop in the test thread; Django's ORM is safe here.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def redis_client():
    client = redis.Redis.from_url(soil_conf.redis_url)
    client.ping()
    return client


@pytest.fixture(scope="session", autouse=True)
def quick_password_hashing():
    """Test users' passwords hashed with few iterations (tests/hashers.py); the production hashers stay
    listed, so every hash checks. (The soil-only project's settings choose a fast hasher of their own.)"""
    from django.test.utils import override_settings

    if settings.PASSWORD_HASHERS[0] != "django.contrib.auth.hashers.PBKDF2PasswordHasher":
        yield
        return
    override = override_settings(PASSWORD_HASHERS=["tests.hashers.QuickPBKDF2PasswordHasher",
                                                   *settings.PASSWORD_HASHERS])
    override.enable()
    yield
    override.disable()


@pytest.fixture(scope="session", autouse=True)
def fresh_test_redis(redis_client):
    """Each run starts from an empty test Redis: no messages or locks left by an earlier run."""
    redis_client.flushdb()


@pytest.fixture(autouse=True)
def fresh_throttle_counters(redis_client):
    """Every test starts with no failed logins or API calls counted: no test locks out another."""
    cache = getattr(settings, "RATELIMIT_USE_CACHE", None)
    if cache is None:  # the soil-only project has no throttling
        return
    prefix = settings.CACHES[cache].get("KEY_PREFIX", "")
    for key in redis_client.scan_iter(match=f"{prefix}:*:rl:*", count=1000):
        redis_client.delete(key)


@pytest.fixture(autouse=True)
def default_language():
    """A request in French leaves French active in the test's thread (LocaleMiddleware does not undo
    it): each test starts and ends in the default language."""
    from django.utils import translation

    translation.deactivate()
    yield
    translation.deactivate()


def worker_queues():
    """The project's QUEUE_TABLE if it has one; else Celery's default queue and every queue a known task
    names (soil's own tests need no setting of the project's)."""
    table = getattr(settings, "QUEUE_TABLE", None)
    if table:
        return list(table)
    import tests.celery_tasks  # noqa: F401 (its tasks name queues too)

    named = {getattr(task, "queue", None) for task in celery_app.tasks.values()}
    return sorted({celery_app.conf.task_default_queue} | named - {None})


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real `celery worker` process on every queue, using the test database and test Redis."""
    name = f"test-{os.getpid()}@localhost"
    shutil.rmtree(WORKER_MAIL_DIR, ignore_errors=True)
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(WORKER_MAIL_DIR),
    }
    queues = ",".join(worker_queues())
    WORKER_LOG.parent.mkdir(exist_ok=True)
    log = open(WORKER_LOG, "w")  # noqa: SIM115 (closed at teardown)
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", celery_app.main, "worker", "-Q", queues, "--concurrency", "2",
         "--include", "tests.celery_tasks", "-n", name, "-l", "info",
         "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent,
    )
    deadline = time.monotonic() + 60
    while not celery_app.control.ping(destination=[name], timeout=0.5):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"The test worker did not start; see {WORKER_LOG}:\n{WORKER_LOG.read_text()[-3000:]}")
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def worker(celery_worker, transactional_db):
    """For tests whose tasks run in the worker: data must be committed for it to see."""
    return celery_worker


@pytest.fixture
def eager():
    """Run tasks in-process, synchronously, as USE_CELERY=false does."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.task_eager_propagates
    conf.task_always_eager, conf.task_eager_propagates = True, True
    yield
    conf.task_always_eager, conf.task_eager_propagates = saved


def wait_for(predicate, timeout=30, interval=0.1, message="condition"):
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    return wait_until(predicate, timeout, message, interval)


@pytest.fixture
def make_user(django_user_model):
    def make(username="alice", password="pw-for-tests-123", **fields):
        user = django_user_model.objects.create_user(username=username, password=password, **fields)
        user.raw_password = password
        return user

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob")


@pytest.fixture
def mine(alice):
    """A domain of alice's (the admin tests' own, next to bob's `theirs`)."""
    from exports.demo import ensure_demo_domain  # here, not at the top: soil's own project has no exports

    return ensure_demo_domain(slug="mine", name="Mine", members=[alice])


@pytest.fixture
def theirs(bob):
    from exports.demo import ensure_demo_domain

    return ensure_demo_domain(slug="theirs", name="Theirs", members=[bob])


@pytest.fixture
def sam(make_user, mine):
    """A staff member of `mine` who may view form submissions, nothing more (the admin export tests')."""
    from django.contrib.auth.models import Permission

    sam = make_user("sam", is_staff=True)
    sam.user_permissions.add(Permission.objects.get(codename="view_formsubmission"))
    mine.members.add(sam)
    return sam


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium, driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture
def logged_in_page(page, live_server, alice):
    """A browser page logged in as alice through the login form."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", alice.username)
    page.fill("input[name=password]", alice.raw_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    return page
