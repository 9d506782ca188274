"""How long "Choose columns and filters…" (the export dialog) takes to open on a big domain.

    ./run.sh manage seed_demo_rows --rows 1000000
    ./run.sh manage benchmark_dialog [--domain demo] [--repeats 15]

Each round opens, as a member of the domain, the dialog of its first definition and its domain page,
and runs the query the dialog's filter lists used to run (every distinct form name, read by scanning
the domain's rows: the baseline), interleaved so the machine's load weighs on all three alike. It
prints the median and range of each and PASS/FAIL against the target: the dialog opens in under 0.3 s.
"""
import statistics
import time

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.test import Client
from django.urls import reverse

from exports.models import Domain, FormSubmission

TARGET_SECONDS = 0.3


def timed(action):
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def summary(seconds):
    return f"median {statistics.median(seconds):.3f} s (range {min(seconds):.3f}–{max(seconds):.3f} s)"


class Command(BaseCommand):
    help = "Time the export dialog's opening on a domain's rows, against the old full scan for its lists."

    def add_arguments(self, parser):
        parser.add_argument("--domain", default="demo", help="domain slug (default: demo)")
        parser.add_argument("--repeats", type=int, default=15)

    def handle(self, *args, domain, repeats, **options):
        domain = Domain.objects.filter(slug=domain).first()
        if domain is None or not domain.definitions.exists():
            raise CommandError("No such domain with a definition: run seed_demo_rows first.")
        user, _ = get_user_model().objects.get_or_create(username="benchmark-dialog")
        domain.members.add(user)
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        definition = domain.definitions.order_by("pk").first()
        dialog = reverse("exports:export_dialog", args=[domain.slug, definition.pk])
        page = reverse("exports:domain", args=[domain.slug])

        def get(path):
            response = client.get(path)
            if response.status_code != 200:
                raise CommandError(f"{path} answered {response.status_code}")

        def old_lists():  # what the dialog ran before: every distinct value, by reading all the rows
            rows = FormSubmission.objects.filter(domain=domain).exclude(form_name="")
            list(rows.order_by("form_name").values_list("form_name", flat=True).distinct())

        get(dialog)  # warm up: templates, translations, the database's cache
        figures = {"dialog": [], "domain page": [], "baseline (old list query)": []}
        for _round in range(repeats):
            figures["dialog"].append(timed(lambda: get(dialog)))
            figures["domain page"].append(timed(lambda: get(page)))
            figures["baseline (old list query)"].append(timed(old_lists))
        rows = FormSubmission.objects.filter(domain=domain).count()
        self.stdout.write(f"{rows:,} rows in '{domain.slug}', {repeats} rounds")
        for name, seconds in figures.items():
            self.stdout.write(f"  {name:<27} {summary(seconds)}")
        median = statistics.median(figures["dialog"])
        verdict = "PASS" if median < TARGET_SECONDS else "FAIL"
        self.stdout.write(f"{verdict}: the dialog opens in {median:.3f} s (target < {TARGET_SECONDS} s)")
