"""The demo: its source (form submissions of a domain, registered at start-up by exports.apps) and
realistic demo rows, inserted in batches: a million rows in a few minutes."""
import datetime
import random
import uuid
from decimal import Decimal

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from exports.models import Domain, ExportDefinition, FormSubmission
from exports.sources import Column, ExportSource, FilterField, distinct_values, register

FORMS = ["Registration", "Follow-up visit", "Vaccination", "Household survey", "Référence"]
WORKERS = ["amina", "björn", "chen.wei", "dmitri", "élodie", "fatima", "giorgos", "hiroshi"]
VILLAGES = ["Kibera", "São Miguel", "Ølstykke", "Zürich-Nord", "東京", "Dhaka Sadar", "Łódź", "", ""]
NAMES = ["Zoë Ndlovu", "José Álvarez", "Ngozi Okafor", "Åsa Lindqvist", "李明", "Priya Natarajan", "Ömer Yılmaz"]
NOTES = ["", "", "", "Patient reports improvement.", "Needs referral; see \"notes\" field, line 2\nsecond line",
         "=1+2 should stay text", "Suivi à prévoir"]
START = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)


def demo_submission(domain, rng, index):
    received = START + datetime.timedelta(seconds=index * 37 + rng.randrange(30))
    age = rng.choice([None, rng.randrange(0, 95)])
    return FormSubmission(
        domain=domain,
        form_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        received_on=received,
        submitted_by=rng.choice(WORKERS),
        form_name=rng.choice(FORMS),
        patient_name=rng.choice(NAMES),
        village=rng.choice(VILLAGES),
        age=age,
        weight_kg=None if age is None else Decimal(rng.randrange(250, 12000)) / 100,
        visit_date=rng.choice([None, received.date() - datetime.timedelta(days=rng.randrange(0, 5))]),
        is_follow_up=rng.choice([True, False, None]),
        notes=rng.choice(NOTES),
    )


def add_demo_rows(domain, count, batch_size=5_000, seed=0, progress=None):
    """Insert `count` more demo submissions into `domain`; `progress(done, count)` after each batch."""
    rng = random.Random(f"{domain.slug}-{seed}")
    offset = FormSubmission.objects.filter(domain=domain).count()
    done = 0
    while done < count:
        size = min(batch_size, count - done)
        with transaction.atomic():
            FormSubmission.objects.bulk_create(
                [demo_submission(domain, rng, offset + done + i) for i in range(size)], batch_size=size
            )
        done += size
        if progress:
            progress(done, count)
    return done


def settle_demo_rows():
    """After seeding many rows on PostgreSQL, VACUUM ANALYZE their table, as a benchmark should before it
    measures: the first reads of new rows set their hint bits and write the pages back, which made a
    freshly seeded csv export read 2.47× bare csv.writer against 1.41× once vacuumed. Elsewhere, and
    inside a transaction (where VACUUM cannot run), nothing."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(FormSubmission._meta.db_table)}")


def ensure_demo_domain(slug="demo", name="Demo clinic", time_zone="Asia/Kolkata", members=()):
    """The demo domain with two export definitions, and the given members."""
    domain, _ = Domain.objects.get_or_create(slug=slug, defaults={"name": name, "time_zone": time_zone})
    domain.members.add(*members)
    ExportDefinition.objects.get_or_create(domain=domain, name="All form submissions",
                                           defaults={"source": "form_submissions", "format": "xlsx"})
    ExportDefinition.objects.get_or_create(
        domain=domain, name="Visits (short)",
        defaults={"source": "form_submissions", "format": "csv",
                  "columns": ["received_on", "submitted_by", "patient_name", "visit_date", "is_follow_up"]},
    )
    return domain


def _form_submissions(domain):
    return FormSubmission.objects.filter(domain=domain)


FORM_SUBMISSIONS = register(ExportSource(
    name="form_submissions",
    label=_("Form submissions"),
    queryset=_form_submissions,
    date_field="received_on",
    ordering=("received_on", "id"),
    columns=[
        Column("form_id", _("Form id")),
        Column("received_on", _("Received on"), "datetime"),
        Column("submitted_by", _("Submitted by")),
        Column("form_name", _("Form name")),
        Column("patient_name", _("Patient name")),
        Column("village", _("Village")),
        Column("age", _("Age"), "integer"),
        Column("weight_kg", _("Weight (kg)"), "decimal"),
        Column("visit_date", _("Visit date"), "date"),
        Column("is_follow_up", _("Follow-up visit"), "boolean"),
        Column("notes", _("Notes")),
    ],
    filters=[
        FilterField("form_name", _("Form name"), choices=distinct_values(_form_submissions, "form_name")),
        FilterField("submitted_by", _("Submitted by"), choices=distinct_values(_form_submissions, "submitted_by")),
    ],
))
