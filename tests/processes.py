"""Real processes for fault tests: a private Redis, web servers and Celery workers, killed by PID.

Fault tests never touch the suite's own Redis or worker: each builds a small deployment of its
own (`stack` fixture) on free ports, pointing at the test database, and breaks it on purpose.

    def test_something(stack):
        web = stack.web()
        worker = stack.worker()
        session = stack.login(user)
        ...
        worker.kill()          # SIGKILL by PID
        stack.redis.restart()  # with its append-only file, or empty=True
        stack.broker.restart()  # the Celery broker: the same Redis, or RabbitMQ under TEST_BROKER=rabbitmq
"""
import http.cookiejar
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL = 4000


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, timeout, message, interval=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"Timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


def die_with_parent():
    """Popen's preexec_fn: the child is killed when the test process ends, however it ends (Linux's
    PR_SET_PDEATHSIG), so that no worker or server outlives its pytest and takes another run's work."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG


class Process:
    """A child process with its own log file, stopped by PID."""

    name = "process"

    def __init__(self, command, env, log_path):
        self.command, self.env, self.log_path = command, env, Path(log_path)
        self.process = None

    def start(self):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 (the child keeps it)
        self.process = subprocess.Popen(self.command, cwd=getattr(self, "cwd", ROOT), env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=die_with_parent)
        log.close()
        return self

    @property
    def pid(self):
        return self.process.pid

    @property
    def alive(self):
        return self.process is not None and self.process.poll() is None

    def signal(self, signum):
        if self.alive:
            os.kill(self.pid, signum)

    def kill(self):
        """SIGKILL the process itself (not its children), then reap it."""
        self.signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def kill_group(self):
        """SIGKILL the process and every process of its session (a whole worker with its children)."""
        if self.process is None:
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def stop(self, timeout=20):
        if not self.alive:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
        else:
            self.kill_group()  # children a SIGTERM left behind

    def log_tail(self, size=LOG_TAIL):
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return "(no log)"

    def children(self):
        """PIDs of the direct children (a prefork worker's pool processes)."""
        found = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            try:
                found += [int(pid) for pid in (task / "children").read_text().split()]
            except OSError:
                pass
        return found


class RedisServer(Process):
    """A private redis-server on a free port, with an append-only file so a restart keeps its data."""

    name = "redis"

    def __init__(self, workdir, port=None, appendonly=True):
        self.port = port or free_port()
        self.dir = Path(workdir) / f"redis-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
                   "--save", "", "--appendonly", "yes" if appendonly else "no", "--appendfsync", "always",
                   "--daemonize", "no"]
        super().__init__(command, dict(os.environ), self.dir / "redis.log")

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_connect_timeout=1, socket_timeout=2)

    def answers(self):
        try:
            return self.client().ping()
        except Exception:  # noqa: BLE001 (any failure means "not yet")
            return False

    def start(self):
        super().start()
        wait_until(self.answers, 10, f"redis on port {self.port}")
        return self

    def restart(self, empty=False, down_for=0.0):
        """SIGKILL, wait `down_for` seconds, start again on the same port (empty: without its data)."""
        self.kill()
        if empty:
            for path in self.dir.iterdir():
                if path.name != "redis.log":
                    shutil.rmtree(path) if path.is_dir() else path.unlink()
        time.sleep(down_for)
        return self.start()


RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")


def group_thread_states(pgid):
    """The state letter of every thread of every process in process group `pgid` (Linux /proc)."""
    states = []
    for stat in Path("/proc").glob("[0-9]*/task/[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp
            states.append(fields[0])
    return states


def test_broker():
    """The broker the fault stacks use: TEST_BROKER=rabbitmq (./test.sh's RabbitMQ pass), else Redis."""
    return "rabbitmq" if os.environ.get("TEST_BROKER", "redis") == "rabbitmq" else "redis"


class RabbitServer(Process):
    """A private RabbitMQ node (Debian's rabbitmq-server) on a free port, its data and logs in its folder.

    Its quorum queues and their messages are kept on disk across a restart, unless empty=True.
    """

    name = "rabbitmq"

    def __init__(self, workdir, port=None):
        from django.conf import settings

        from project.broker import rabbitmq_conf

        self.port = port or free_port()
        self.dir = Path(workdir) / f"rabbitmq-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "rabbitmq.conf").write_text(rabbitmq_conf(settings.QUEUE_TIME_LIMITS, port=self.port))
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq-env.conf").write_text("")
        self.node = f"exports-fault-{self.port}@localhost"
        self.cwd = self.dir  # where Erlang leaves a crash dump when the node is killed
        env = {**os.environ, "HOME": str(self.dir), "RABBITMQ_NODENAME": self.node,
               "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1", "RABBITMQ_NODE_PORT": str(self.port),
               "RABBITMQ_DIST_PORT": str(free_port()), "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
               "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
               "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"), "RABBITMQ_LOG_BASE": str(self.dir / "log"),
               "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
               "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"), "ERL_EPMD_ADDRESS": "127.0.0.1",
               "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
               "ERL_CRASH_DUMP": str(self.dir / "erl_crash.dump")}
        super().__init__([str(RABBITMQ_BIN / "rabbitmq-server")], env, self.dir / "server.log")

    @property
    def url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def answers(self):
        import kombu

        try:
            with kombu.Connection(self.url, connect_timeout=1) as conn:
                conn.connect()
            return True
        except Exception:  # noqa: BLE001 (any failure means "not yet")
            return False

    def start(self):
        super().start()
        wait_until(lambda: self.answers() or not self.alive, 60, f"RabbitMQ on port {self.port}", interval=0.2)
        if not self.alive:
            raise RuntimeError(f"RabbitMQ died at start:\n{self.log_tail()}")
        return self

    def ctl(self, *args):
        """rabbitmqctl for this node; its output."""
        done = subprocess.run([str(RABBITMQ_BIN / "rabbitmqctl"), "-q", "-n", self.node, *args], env=self.env,
                              capture_output=True, text=True, timeout=60)
        if done.returncode:
            raise RuntimeError(f"rabbitmqctl {args[0]}: {done.stderr or done.stdout}")
        return done.stdout

    def signal(self, signum):
        """To the whole node: the script that started it and the Erlang VM. A SIGSTOP returns once every
        thread of the group has stopped (the VM's schedulers stop one by one, each at its next switch)."""
        if self.alive:
            os.killpg(self.pid, signum)
            if signum == signal.SIGSTOP:
                wait_until(lambda: set(group_thread_states(self.pid)) == {"T"}, 10,
                           f"RabbitMQ on port {self.port} to stop", interval=0.01)

    def kill(self):
        """SIGKILL the node (the Erlang VM and the script that started it)."""
        self.kill_group()

    def stop(self, timeout=20):
        self.kill_group()  # nothing of a test node needs a clean shutdown

    def restart(self, empty=False, down_for=0.0):
        """SIGKILL, wait `down_for` seconds, start again on the same port (empty: without its data)."""
        self.kill()
        if empty:
            shutil.rmtree(self.dir / "mnesia", ignore_errors=True)
        time.sleep(down_for)
        return self.start()


class SharedRabbitNode:
    """One RabbitMQ node for the fault tests of a pytest process that leave their broker alone: each test
    gets a virtual host of its own on it (`vhost()`), instead of a node whose start costs seconds of CPU.
    A test that stops, freezes or reconfigures its broker is marked `own_broker` and gets a node."""

    BATCH = 40  # virtual hosts made at once: each rabbitmqctl call starts an Erlang VM

    def __init__(self, workdir):
        self.server = RabbitServer(workdir).start()
        self.made, self.used = [], 0

    def vhost(self):
        if self.used == len(self.made):
            names = [f"test-{len(self.made) + n}" for n in range(self.BATCH)]
            definitions = Path(self.server.dir) / "vhosts.json"
            definitions.write_text(json.dumps({
                "vhosts": [{"name": name} for name in names],
                "permissions": [{"user": "guest", "vhost": name, "configure": ".*", "write": ".*", "read": ".*"}
                                for name in names]}))
            self.server.ctl("import_definitions", str(definitions))
            self.made += names
        self.used += 1
        return RabbitVhost(self.server, self.made[self.used - 1])

    def stop(self):
        self.server.stop()


class RabbitVhost:
    """A test's virtual host on the shared node: a broker of its own that it must not stop."""

    def __init__(self, server, vhost):
        self.server, self.vhost = server, vhost

    @property
    def url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.server.port}/{self.vhost}"

    def _own_node_only(self, *args, **kwargs):
        raise RuntimeError("this test stops, freezes or reconfigures its broker: mark it @pytest.mark.own_broker")

    kill = restart = signal = start = ctl = _own_node_only


class WebServer(Process):
    """Django's development server, without the reloader, on a free port."""

    name = "web"

    def __init__(self, env, log_path, port=None):
        self.port = port or free_port()
        command = [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{self.port}"]
        super().__init__(command, env, log_path)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self):
        super().start()
        wait_until(lambda: self.answers() or not self.alive, 30, f"the web server on port {self.port}")
        if not self.alive:
            raise RuntimeError(f"The web server died:\n{self.log_tail()}")
        return self


class Worker(Process):
    """A `celery worker` process on the given queues."""

    name = "worker"

    def __init__(self, env, log_path, queues, hostname, concurrency=2, extra_args=()):
        self.hostname = hostname
        command = [sys.executable, "-m", "celery", "-A", "project", "worker", "-Q", ",".join(queues),
                   "--concurrency", str(concurrency), "-n", hostname, "-l", "info",
                   "--without-gossip", "--without-mingle", *extra_args]
        super().__init__(command, env, log_path)

    def start(self, timeout=60):
        from celery import Celery

        super().start()
        # Not the current app: the test process's own tasks and results must keep using the suite's Redis.
        app = Celery(broker=self.env["CELERY_BROKER_URL"], set_as_current=False)
        try:
            wait_until(lambda: not self.alive or app.control.ping(destination=[self.hostname], timeout=0.5),
                       timeout, f"worker {self.hostname} to answer a ping")
        finally:
            app.close()
        if not self.alive:
            raise RuntimeError(f"The worker died at start:\n{self.log_tail()}")
        return self


class HttpSession:
    """A browser-like HTTP client: cookies, Django's CSRF token, JSON in and out."""

    def __init__(self, base_url, timeout=10):
        self.base_url = base_url
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies),
                                                  NoRedirect())

    def csrf_token(self):
        for cookie in self.cookies:
            if cookie.name == "csrftoken":
                return cookie.value
        return ""

    def request(self, method, path, data=None, json_body=None, headers=None):
        """(status, headers, body bytes); never raises for an HTTP error status."""
        headers = {"X-CSRFToken": self.csrf_token(), "Referer": self.base_url + "/", **(headers or {})}
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        elif data is not None:
            body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": self.csrf_token()}).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, data=None, **kwargs):
        return self.request("POST", path, data=data if data is not None else {}, **kwargs)

    def json(self, method, path, **kwargs):
        status, headers, body = self.request(method, path, headers={"Accept": "application/json"}, **kwargs)
        try:
            return status, json.loads(body or b"null")
        except ValueError:
            return status, {"raw": body[:500].decode(errors="replace")}

    def login(self, username, password):
        self.get("/accounts/login/")
        status, headers, _ = self.post("/accounts/login/", {"username": username, "password": password})
        assert status == 302, f"login failed with {status}"
        return self


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def database_url():
    """The test database that pytest-django created, as a URL for child processes."""
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = urllib.parse.quote(db.get("USER") or "", safe="")
    password = f":{urllib.parse.quote(db['PASSWORD'], safe='')}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{db.get('HOST') or ''}{port}/{db['NAME']}"


class Stack:
    """A private deployment for one test: Redis, then web servers and workers on demand."""

    def __init__(self, workdir, media_root, broker=None):
        self.workdir = Path(workdir)
        self.media_root = media_root
        self.redis = RedisServer(self.workdir).start()
        self.processes = [self.redis]
        # The Celery broker: this Redis, a RabbitMQ node of the stack's own, or the `broker` given (a virtual
        # host of a shared node); results stay on Redis.
        self.broker = broker or self.redis
        if broker is None and test_broker() == "rabbitmq":
            self.broker = RabbitServer(self.workdir).start()
            self.processes.append(self.broker)
        self.overrides = {}

    @property
    def on_rabbitmq(self):
        return self.broker is not self.redis

    def celery_client(self):
        """A Celery client of the stack (the test process's own app points at the suite's broker)."""
        from celery import Celery

        from project.broker import task_queues

        app = Celery("faults", broker=self.broker.url, backend=self.redis.url, set_as_current=False)
        from django.conf import settings

        app.conf.task_queues = task_queues(settings.QUEUE_TABLE, self.on_rabbitmq)
        return app

    def env(self, **overrides):
        from django.conf import settings

        env = {
            **os.environ,
            "DATABASE_URL": database_url(),
            "REDIS_URL": self.redis.url,
            "CELERY_BROKER_URL": self.broker.url,
            "BROKER_URL": self.broker.url,  # the `celery` command reads this one as its --broker
            "CELERY_RESULT_BACKEND": self.redis.url,
            "SECRET_KEY": "test-only-secret-key",
            "DEBUG": "false",
            "HTTPS_ONLY": "false",  # production settings, served over plain http
            "USE_CELERY": "true",
            "MEDIA_ROOT": str(self.media_root),
            "STATIC_ROOT": str(settings.STATIC_ROOT),
            "PYTHONUNBUFFERED": "1",
            "EXPORT_SOURCE_MODULES": "tests.celery_tasks",  # the gated source, in web and worker alike
            **self.overrides,
        }
        env.update({key: str(value) for key, value in overrides.items()})
        return env

    def _log(self, kind):
        count = sum(1 for process in self.processes if process.name == kind)
        return self.workdir / f"{kind}-{count + 1}.log"

    def web(self, **env):
        server = WebServer(self.env(**env), self._log("web"))
        self.processes.append(server)
        return server.start()

    def worker(self, queues=None, concurrency=2, extra_args=("--include", "tests.celery_tasks"), **env):
        from django.conf import settings

        queues = queues or list(settings.QUEUE_TABLE)
        hostname = f"fault-{len(self.processes)}-{os.getpid()}@localhost"
        worker = Worker(self.env(**env), self._log("worker"), queues, hostname, concurrency, extra_args)
        self.processes.append(worker)
        return worker.start()

    def session(self, web):
        return HttpSession(web.url)

    def logs(self):
        return "\n".join(f"--- {p.name} {p.log_path.name} (pid {p.pid if p.process else '-'}):\n{p.log_tail()}"
                         for p in self.processes)

    def close(self):
        for process in reversed(self.processes):
            try:
                process.stop()
            except Exception:  # noqa: BLE001 (clean up the others whatever happens)
                pass


@pytest.fixture(scope="session")
def shared_rabbitmq(tmp_path_factory):
    node = SharedRabbitNode(tmp_path_factory.mktemp("shared-rabbitmq"))
    yield node
    node.stop()


@pytest.fixture
def stack(transactional_db, tmp_path, request):
    """A private Redis plus whatever web servers and workers the test starts; all stopped at the end.
    Under TEST_BROKER=rabbitmq the broker is a virtual host of its own on a node shared with the other
    tests, or for a test marked `own_broker` a node of its own.

    On failure the tail of every process's log is printed with the test's report.
    """
    broker = None
    if test_broker() == "rabbitmq" and not request.node.get_closest_marker("own_broker"):
        broker = request.getfixturevalue("shared_rabbitmq").vhost()
    deployment = Stack(tmp_path / "stack", tmp_path / "media", broker=broker)
    yield deployment
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        print(deployment.logs())
    deployment.close()


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)

