"""Benchmark the status poll: soil's JSON status against celery-progress's view, on one server.

    python manage.py benchmark_poll --install      # once: celery-progress and gunicorn, into .run only
    python manage.py benchmark_poll --workers 2 --rounds 5 --seconds 3

Two pairs, each in the same gunicorn (same sync workers, same middleware, same session and
database), reading the same task, which is in PROGRESS:

- capability URLs: soil as its download page polls (the status URL with a poll token,
  soil.poll_tokens, which loads neither session nor user) against celery-progress's `get_progress`
  as it ships (no login: whoever knows the task id may read it). Target: soil ≥ 1.2×.
- session: soil's status URL without a token against `get_progress` behind `login_required`.
  Target: soil ≥ 1.0×.

Rounds interleave the endpoints (the order rotates each round), so a busy neighbour slows them
alike; each round's soil figure is paired with that round's figure of its celery-progress
counterpart. Printed: median req/s and range per endpoint, the median of the paired ratios, and
PASS/FAIL per target.

celery-progress is not a dependency of the project: --install puts it (with gunicorn) in a folder
of its own (--packages), which only the benchmark's server has on its path.
It lives in project/, not soil/: it measures the project's deployment (its middleware, sessions and
database) and starts a server, which a reusable library should not ship.
"""
import os
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from celery import current_app, uuid
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from django.urls import reverse

from soil import DownloadBase
from soil.poll_tokens import status_url

BENCH_PACKAGES = ("celery-progress==0.5", "gunicorn==27.0.1")
BENCH_USER = "poll-benchmark"
# The poll soil's download page makes: its status URL with a poll token (soil.poll_tokens). The browser
# sends its cookies too, as here; the view does not load the session or the user for it.
PAGE_POLL = "soil status, token (200)"
SESSION_POLL = "soil status, session (200)"
OPEN_BASELINE = "celery-progress, as shipped"
LOGIN_BASELINE = "celery-progress, login_required"
# (soil endpoint, its celery-progress counterpart, target ratio of req/s)
TARGETS = [(PAGE_POLL, OPEN_BASELINE, 1.2), (SESSION_POLL, LOGIN_BASELINE, 1.0)]


def _hammer(port, request, expected, deadline):
    """One client process: a request per connection (sync workers close it) until the deadline."""
    done = errors = 0
    while time.monotonic() < deadline:
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(request)
            chunks = []
            while chunk := conn.recv(65536):
                chunks.append(chunk)
        if b"".join(chunks[:1]).startswith(expected):
            done += 1
        else:
            errors += 1
    return done, errors


class Command(BaseCommand):
    help = "Requests per second of soil's status JSON vs celery-progress's get_progress, on the same server."

    def add_arguments(self, parser):
        parser.add_argument("--packages", default=str(Path(settings.BASE_DIR) / ".run" / "benchmark-poll-packages"),
                            help="the benchmark's own folder of packages (celery-progress, gunicorn)")
        parser.add_argument("--install", action="store_true", help="pip-install those packages into --packages")
        parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers (default 2)")
        parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
        parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
        parser.add_argument("--seconds", type=float, default=3.0, help="seconds per endpoint per round (default 3)")
        parser.add_argument("--port", type=int, default=0, help="server port (default: a free one)")

    def handle(self, *args, packages, install, workers, clients, rounds, seconds, port, **options):
        if min(workers, clients, rounds) < 1 or seconds <= 0:
            raise CommandError("--workers, --clients and --rounds must be at least 1, --seconds above 0.")
        packages = Path(packages)
        if install:
            self._install(packages)
        if not all((packages / name).is_dir() for name in ("celery_progress", "gunicorn")):
            self.stdout.write(f"SKIPPED: celery-progress and gunicorn are not in {packages}. Run once with --install "
                              "to put them there (they stay out of the project's environment).")
            return
        port = port or _free_port()
        endpoints = self._prepare()
        server = self._start_server(packages, port, workers)
        try:
            for name, path, headers, expected in endpoints:
                self._check(port, path, headers, expected, name)
            figures, cpu = self._measure(port, endpoints, clients, rounds, seconds, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
        self._report(figures, cpu, workers, clients, rounds, seconds)

    def _install(self, packages):
        packages.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade",
                        "--target", str(packages), *BENCH_PACKAGES], check=True)

    def _prepare(self):
        """A user with a session, a task in PROGRESS, and the same task behind a soil download."""
        user, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
        client = Client(SERVER_NAME="127.0.0.1")
        client.force_login(user)
        cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
        task_id = uuid()
        current_app.backend.store_result(task_id, {"current": 1234, "total": 10000, "message": "1,234 of 10,000 rows"},
                                         "PROGRESS")
        download = DownloadBase(task_id=task_id, owner_ids=[user.pk], message="benchmark").save(3600)
        soil_path = reverse("download_status", args=[download.download_id])
        token_path = status_url(user, download)  # what soil's download page hands its poller
        if token_path == soil_path:
            raise CommandError("No poll token: SOIL_POLL_TOKEN_MAX_AGE is 0 in these settings.")
        etag = client.get(soil_path)["ETag"]
        base = {"Cookie": cookie}
        return [
            (OPEN_BASELINE, f"/benchmark/celery-progress/{task_id}/", base, b"HTTP/1.1 200"),
            (PAGE_POLL, token_path, base, b"HTTP/1.1 200"),
            ("soil status, token (304)", token_path, {**base, "If-None-Match": etag}, b"HTTP/1.1 304"),
            (LOGIN_BASELINE, f"/benchmark/celery-progress-login/{task_id}/", base, b"HTTP/1.1 200"),
            (SESSION_POLL, soil_path, base, b"HTTP/1.1 200"),
            ("soil status, session (304)", soil_path, {**base, "If-None-Match": etag}, b"HTTP/1.1 304"),
        ]

    def _start_server(self, packages, port, workers):
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.benchmark_poll_settings",
               "PYTHONPATH": os.pathsep.join([str(packages), str(settings.BASE_DIR)])}
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--worker-class", "sync",
             "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "project.wsgi:application"],
            cwd=settings.BASE_DIR, env=env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError("gunicorn exited at start; see its output above.")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return server
            except OSError:
                time.sleep(0.2)
        server.terminate()
        raise CommandError("gunicorn did not answer within 60 s.")

    def _check(self, port, path, headers, expected, name):
        done, errors = _hammer(port, _request(path, headers), expected, time.monotonic() + 0.5)
        if errors or not done:
            raise CommandError(f"{name} did not answer {expected.decode()} at {path}.")

    def _measure(self, port, endpoints, clients, rounds, seconds, server_pid):
        """Requests per second of each endpoint per round, and the server's CPU µs per request."""
        figures = {name: [] for name, *_ in endpoints}
        cpu = {name: [] for name, *_ in endpoints}
        with ProcessPoolExecutor(max_workers=clients) as pool:
            for round_no in range(rounds):
                shift = round_no % len(endpoints)
                for name, path, headers, expected in endpoints[shift:] + endpoints[:shift]:
                    request = _request(path, headers)
                    cpu_before = _server_cpu_seconds(server_pid)
                    began = time.monotonic()
                    deadline = began + seconds
                    results = list(pool.map(_hammer, [port] * clients, [request] * clients,
                                            [expected] * clients, [deadline] * clients))
                    elapsed = time.monotonic() - began
                    errors = sum(e for _, e in results)
                    if errors:
                        raise CommandError(f"{name}: {errors} unexpected answers in round {round_no + 1}.")
                    done = sum(d for d, _ in results)
                    figures[name].append(done / elapsed)
                    cpu[name].append((_server_cpu_seconds(server_pid) - cpu_before) / done * 1e6)
        return figures, cpu

    def _report(self, figures, cpu, workers, clients, rounds, seconds):
        self.stdout.write(f"Status poll, one gunicorn ({workers} sync workers), {clients} client processes, "
                          f"{rounds} interleaved rounds of {seconds:g} s per endpoint; task in PROGRESS; "
                          f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores.")
        self.stdout.write(f"{'endpoint':34} {'median req/s':>12} {'range':>15} {'paired ratio':>13} "
                          f"{'server CPU µs/req':>18} {'CPU ratio':>10}")
        for name, values in figures.items():
            baseline_name = LOGIN_BASELINE if "session" in name or "login" in name else OPEN_BASELINE
            ratios = _paired(values, figures[baseline_name])
            cpu_ratios = _paired(cpu[baseline_name], cpu[name])
            self.stdout.write(f"{name:34} {statistics.median(values):12.0f} {min(values):7.0f}–{max(values):<7.0f} "
                              f"{statistics.median(ratios):12.2f}× {statistics.median(cpu[name]):18.0f} "
                              f"{statistics.median(cpu_ratios):9.2f}×")
        self.stdout.write("(CPU ratio: the celery-progress counterpart's server CPU per request over this one's, "
                          "paired by round; less sensitive to a loaded machine than req/s.)")
        for soil_name, baseline_name, target in TARGETS:
            ratios = _paired(figures[soil_name], figures[baseline_name])
            cpu_ratio = statistics.median(_paired(cpu[baseline_name], cpu[soil_name]))
            ratio = statistics.median(ratios)
            verdict = "PASS" if ratio >= target else "FAIL"
            self.stdout.write(f"{verdict}  {soil_name} ≥ {target}× {baseline_name}: {ratio:.2f}× req/s "
                              f"[{min(ratios):.2f}–{max(ratios):.2f}], {cpu_ratio:.2f}× less server CPU per request")


def _paired(values, baseline):
    return [value / base for value, base in zip(values, baseline)]


def _server_cpu_seconds(master_pid):
    """User + system CPU seconds of gunicorn's master and its workers so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    pids = [master_pid]
    try:
        with open(f"/proc/{master_pid}/task/{master_pid}/children") as children:
            pids += [int(pid) for pid in children.read().split()]
    except OSError:
        pass
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # a worker that just exited
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def _request(path, headers):
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: application/json", "Connection: close",
             *(f"{key}: {value}" for key, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
