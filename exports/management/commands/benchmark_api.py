"""What the API framework adds to a script's status poll: /api/v1/runs/<id>/status against the same work
done by a plain Django view.

    DATABASE_URL=sqlite:///path/bench.sqlite3 python manage.py migrate -v0
    DATABASE_URL=sqlite:///path/bench.sqlite3 REDIS_URL=redis://127.0.0.1:6379/1 \\
        python manage.py benchmark_api [--requests 200] [--rounds 11]

Both endpoints read the same queued run with the same API token, through the whole middleware stack
(Django's test client, in this process), the baseline's address placed just ahead of the API's among
the site's URLs (so both are resolved after the same patterns). The baseline is a plain view doing what the hand-written API
did: the same token check and throttles (project.accounts.api_auth, called directly), the same status
(exports.runs.status.run_status) in a JsonResponse. Rounds alternate which endpoint goes first; each
round's API figure is paired with that round's baseline. Printed per endpoint: the median and range of
CPU time and of wall time per request, then the median of the paired CPU ratios, PASS when the API
costs at most 10 % more. CPU time of this process is the figure judged: on a machine that others load,
wall time mostly measures them.
"""
import os
import statistics
import time
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.http import JsonResponse
from django.test import Client, override_settings
from django.urls import path

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.runs import reaper, selectors, services
from exports.runs.status import run_status
from project.accounts.api_auth import TokenAuth
from project.accounts.tokens import create_token

TARGET_RATIO = 1.10
BENCH_USER = "api-benchmark"


def plain_status(request, run_id):
    """The baseline: the same checks and the same answer, without the framework."""
    TokenAuth()(request)
    return JsonResponse(run_status(reaper.check_run(selectors.run_for(request.user, run_id))))


def _site_with_baseline():
    """The site's URLs with the baseline just ahead of the API's, so that both are found after the same patterns."""
    site = list(import_module(settings.ROOT_URLCONF).urlpatterns)
    at = next(i for i, pattern in enumerate(site) if str(pattern.pattern) == "api/v1/")
    return [*site[:at], path("benchmark/plain-status/<uuid:run_id>/", plain_status), *site[at:]]


urlpatterns = _site_with_baseline()


class Command(BaseCommand):
    help = "Compare the API's status endpoint with a plain Django view doing the same work (paired, interleaved)."

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=200, help="requests per endpoint per round")
        parser.add_argument("--rounds", type=int, default=11)

    def handle(self, *args, requests, rounds, **options):
        user, _ = get_user_model().objects.get_or_create(username=BENCH_USER)
        domain = ensure_demo_domain(slug="api-benchmark", name="API benchmark", members=[user])
        if not domain.submissions.exists():
            add_demo_rows(domain, 3)
        run, _ = services.start_export(user, domain.definitions.first(), format="csv")
        client = Client(HTTP_AUTHORIZATION="Bearer " + create_token(user, "benchmark")[1])
        endpoints = {"plain view (baseline)": f"/benchmark/plain-status/{run.pk}/",
                     "API /api/v1 status": f"/api/v1/runs/{run.pk}/status"}
        # Unthrottled and over plain HTTP for the measurement; the module is the URLconf (the baseline's address).
        with override_settings(ROOT_URLCONF=__name__, API_RATE_PER_USER="1000000000/m", SECURE_SSL_REDIRECT=False,
                               ALLOWED_HOSTS=["testserver"]):
            for url in endpoints.values():
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code, response.content[:200])
            cpu = {name: [] for name in endpoints}
            wall = {name: [] for name in endpoints}
            for round_number in range(rounds):
                order = list(endpoints) if round_number % 2 == 0 else list(reversed(endpoints))
                for name in order:
                    cpu_start, wall_start = time.process_time(), time.perf_counter()
                    for _ in range(requests):
                        client.get(endpoints[name])
                    cpu[name].append((time.process_time() - cpu_start) / requests * 1e6)
                    wall[name].append((time.perf_counter() - wall_start) / requests * 1e6)
        self.stdout.write(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
                          f"{rounds} rounds of {requests} requests per endpoint")
        for name in endpoints:
            self.stdout.write(f"{name:24s} CPU median {statistics.median(cpu[name]):7.0f} µs "
                              f"(range {min(cpu[name]):.0f}–{max(cpu[name]):.0f}); wall median "
                              f"{statistics.median(wall[name]):7.0f} µs (range {min(wall[name]):.0f}–{max(wall[name]):.0f})")
        base, api = cpu["plain view (baseline)"], cpu["API /api/v1 status"]
        ratios = [a / b for a, b in zip(api, base)]
        ratio = statistics.median(ratios)
        verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        self.stdout.write(f"API / baseline, CPU per request: median {ratio:.3f} (range {min(ratios):.3f}–"
                          f"{max(ratios):.3f}); target ≤ {TARGET_RATIO:.2f}: {verdict}")
        services.cancel_export(user, run)
