"""How many run event streams (server-sent events) one web process holds, and what each costs.

    DATABASE_URL=sqlite:///path/bench.sqlite3 python manage.py migrate -v0
    DATABASE_URL=sqlite:///path/bench.sqlite3 REDIS_URL=redis://127.0.0.1:6379/1 \\
        python manage.py benchmark_streams [--streams 50 200 500] [--servers wsgi asgi] [--seconds 10]

For each server and each number N of streams, a fresh web process is started on a free port:
``wsgi`` is Django's threaded development server (``runserver --noreload``: a thread per stream,
as gunicorn's ``gthread`` worker), ``asgi`` is uvicorn serving ``project.asgi`` (one event loop;
a stream is a coroutine that sleeps between reads). One running run is created, held by a live
lease and left unchanged, so every stream re-reads it every EXPORT_STREAM_POLL_SECONDS and only
sends keep-alives: the idle cost. The command opens N streams as a logged-in user, reads each
one's first event, and then measures the server process over ``--seconds``: resident memory
(VmRSS) and threads against the same process before the streams opened, and CPU seconds
(user + system) spent while the streams sat open. Each figure is measured with its own baseline in
the same process; nothing is asserted.

    ... python manage.py benchmark_streams --latency 30 [--servers wsgi asgi]

measures instead how soon a progress report reaches the page: for each server, two web processes,
one with EXPORT_STREAM_PUSH on and one with it off (the stream then only re-reads every
EXPORT_STREAM_POLL_SECONDS), each showing the same run page in Chromium (Playwright, Debian's
chromium). The command writes the run's progress as a build does (soil's store_progress, stamped
with the time of the report) at random moments, and each page records when its bar changed
(a MutationObserver, the browser's clock: the same machine). It prints the median and range of
report-to-DOM latency of both, and PASS/FAIL for push ≤ 100 ms.
"""
import os
import random
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from django.utils import timezone

from exports.conf import exports_conf
from exports.demo import ensure_demo_domain
from exports.models import ExportRun
from exports.runs import lifecycle
from soil.progress import store_progress

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LATENCY_TARGET_MS = 100
# Every change of the bar's value, with the browser's wall clock (ms since the epoch).
RECORD_BAR_CHANGES = """() => {
    window.barChanges = [];
    const bar = document.querySelector('.soil-bar');
    new MutationObserver(() => window.barChanges.push(
        [bar.getAttribute('aria-valuenow'), performance.timeOrigin + performance.now()]
    )).observe(bar, {attributes: true, attributeFilter: ['aria-valuenow']});
}"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return int(fields["VmRSS"][0]) * 1024, int(fields["Threads"][0])


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as stat:
        parts = stat.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / CLOCK_TICKS


def serve_static(route):
    """A Playwright route answering a static file from the app folders, as runserver does."""
    from django.contrib.staticfiles import finders

    found = finders.find(route.request.url.split(settings.STATIC_URL, 1)[1].split("?")[0])
    if found:
        route.fulfill(path=found)
    else:
        route.fulfill(status=404)


class Streams:
    """N open event streams, drained by one thread so that the server never blocks on a full socket."""

    def __init__(self, port, path, cookie):
        self.port, self.path, self.cookie = port, path, cookie
        self.sockets = []
        self.received = 0
        self._selector = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, daemon=True)

    def open(self, count, timeout=60):
        request = (f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
                   f"Cookie: sessionid={self.cookie}\r\nConnection: keep-alive\r\n\r\n").encode()
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
            sock.sendall(request)
            first = b""
            while b"event: status" not in first:
                data = sock.recv(65536)
                if not data:
                    raise CommandError(f"A stream closed before its first event: {first[:300]!r}")
                first += data
            if b"200" not in first.split(b"\r\n", 1)[0]:
                raise CommandError(f"The stream was refused: {first[:300]!r}")
            sock.setblocking(False)
            self._selector.register(sock, selectors.EVENT_READ)
            self.sockets.append(sock)
        self._thread.start()

    def _drain(self):
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.2):
                try:
                    self.received += len(key.fileobj.recv(65536))
                except (BlockingIOError, ConnectionError):
                    pass

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        for sock in self.sockets:
            sock.close()


class Command(BaseCommand):
    help = "Measure open run event streams per web process: memory, threads and idle CPU per stream."

    def add_arguments(self, parser):
        parser.add_argument("--streams", type=int, nargs="+", default=[50, 200, 500])
        parser.add_argument("--servers", nargs="+", choices=["wsgi", "asgi"], default=["wsgi", "asgi"])
        parser.add_argument("--seconds", type=float, default=10.0, help="idle window measured per case")
        parser.add_argument("--latency", type=int, default=0, metavar="SAMPLES",
                            help="measure report-to-page latency over this many reports instead (push vs re-read)")

    def handle(self, *args, streams, servers, seconds, latency, **options):
        run, cookie = self._running_run()
        if latency:
            try:
                for server in servers:
                    self._latency(server, run, cookie, min(latency, 95))
            finally:
                ExportRun.objects.filter(pk=run.pk).delete()
            return
        path = f"/exports/runs/{run.pk}/events/"
        self.stdout.write(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
                          f"stream poll {exports_conf.EXPORT_STREAM_POLL_SECONDS} s, "
                          f"database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}")
        self.stdout.write("| server | streams | RSS before MB | RSS after MB | KB per stream | threads before/after "
                          "| CPU % of a core, idle | CPU ms/s per 100 streams | bytes/s received |")
        self.stdout.write("|---|---:|---:|---:|---:|---|---:|---:|---:|")
        try:
            for server in servers:
                for count in streams:
                    self._case(server, count, path, cookie, seconds)
        finally:
            ExportRun.objects.filter(pk=run.pk).delete()

    def _running_run(self):
        user, _ = get_user_model().objects.get_or_create(username="stream-bench")
        domain = ensure_demo_domain(slug="stream-bench", name="Stream bench", members=[user])
        run = ExportRun.objects.create(owner=user, domain=domain, definition=domain.definitions.first(),
                                       parameters={"format": "csv", "bench": uuid.uuid4().hex},
                                       parameters_key=uuid.uuid4().hex, task_id=str(uuid.uuid4()),
                                       download_id=uuid.uuid4().hex, queued_at=timezone.now())
        lease = lifecycle.start(run.pk, run.task_id)
        # A live lease held by nobody on this host, far in the future: the reaper leaves it alone.
        ExportRun.objects.filter(pk=run.pk).update(lease_owner="", lease_expires_at=timezone.now()
                                                   + timezone.timedelta(days=1))
        assert lease is not None
        client = Client()
        client.force_login(user)
        return run, client.cookies["sessionid"].value

    def _server(self, server, port, **environ):
        env = {**os.environ, "EXPORT_STREAM_MAX_SECONDS": "3600", "PYTHONUNBUFFERED": "1", **environ}
        if server == "wsgi":
            command = [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"]
        else:
            command = [sys.executable, "-m", "uvicorn", "project.asgi:application", "--host", "127.0.0.1",
                       "--port", str(port), "--log-level", "warning", "--no-access-log"]
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return process
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise CommandError(f"The {server} server did not start: {process.stderr.read()[-2000:]!r}")
                time.sleep(0.2)

    def _case(self, server, count, path, cookie, seconds):
        port = free_port()
        process = self._server(server, port)
        streams = Streams(port, path, cookie)
        try:
            Streams(port, path, cookie).open(1)  # warm up: imports, first connections (then left to close)
            time.sleep(1)
            rss_before, threads_before = proc_status(process.pid)
            streams.open(count)
            time.sleep(1)
            cpu_start, received_start, started = cpu_seconds(process.pid), streams.received, time.monotonic()
            time.sleep(seconds)
            elapsed = time.monotonic() - started
            cpu = cpu_seconds(process.pid) - cpu_start
            rss_after, threads_after = proc_status(process.pid)
            received = streams.received - received_start
        finally:
            streams.close()
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        per_stream_kb = (rss_after - rss_before) / count / 1024
        cpu_percent = 100 * cpu / elapsed
        self.stdout.write(
            f"| {server} | {count} | {rss_before / 1e6:.1f} | {rss_after / 1e6:.1f} | {per_stream_kb:.0f} "
            f"| {threads_before}/{threads_after} | {cpu_percent:.1f} | {1000 * cpu / elapsed / count * 100:.0f} "
            f"| {received / elapsed:.0f} |")

    def _latency(self, server, run, cookie, samples):
        from playwright.sync_api import sync_playwright

        store_progress(run.task_id, 0, 1000, started_at=time.time())
        processes = {}
        try:
            for mode, push in (("push", "true"), ("re-read", "false")):
                port = free_port()
                processes[mode] = (port, self._server(server, port, EXPORT_STREAM_PUSH=push))
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                                     args=["--headless", "--no-sandbox", "--disable-gpu"])
                pages = {mode: self._run_page(browser, port, run, cookie) for mode, (port, _) in processes.items()}
                latencies = {mode: [] for mode in pages}
                for sample in range(1, samples + 1):
                    time.sleep(random.uniform(0.2, 1.2))  # any moment of the re-read's second
                    reported_at = time.time()
                    store_progress(run.task_id, sample * 10, 1000, started_at=reported_at, updated_at=reported_at)
                    for mode, page in pages.items():
                        page.wait_for_function(f"window.barChanges.some(c => c[0] === '{sample}')", timeout=10_000)
                        changed_at = page.evaluate(f"window.barChanges.find(c => c[0] === '{sample}')[1]")
                        latencies[mode].append(changed_at - reported_at * 1000)
                browser.close()
        finally:
            for _, process in processes.values():
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
        self.stdout.write(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; server {server}; "
                          f"stream re-read every {exports_conf.EXPORT_STREAM_POLL_SECONDS} s; {samples} reports")
        for mode, values in latencies.items():
            self.stdout.write(f"  {mode:8} report -> page: median {statistics.median(values):.0f} ms "
                              f"[{min(values):.0f}-{max(values):.0f}]")
        push = statistics.median(latencies["push"])
        verdict = "PASS" if push <= LATENCY_TARGET_MS else "FAIL"
        self.stdout.write(f"{verdict}  {server}: progress on the page {push:.0f} ms after the report (median; "
                          f"target <= {LATENCY_TARGET_MS} ms; re-read alone "
                          f"{statistics.median(latencies['re-read']):.0f} ms)")

    def _run_page(self, browser, port, run, cookie):
        context = browser.new_context()
        context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": cookie, "url": f"http://127.0.0.1:{port}"}])
        page = context.new_page()
        page.route("**/static/**", serve_static)  # uvicorn serves no static files
        page.goto(f"http://127.0.0.1:{port}/exports/runs/{run.pk}/?polling=off")
        page.locator(".soil-progress[data-updates=events]").wait_for(state="attached", timeout=30_000)
        page.wait_for_function("document.querySelector('.soil-bar').getAttribute('aria-valuenow') === '0'")
        page.evaluate(RECORD_BAR_CHANGES)
        return page
