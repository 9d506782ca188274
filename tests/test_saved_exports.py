"""Saved exports: rebuilt once per local night, dispatched once even by two dispatchers, served by a stable link."""
import datetime
import threading
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from exports.demo import add_demo_rows, ensure_demo_domain
from exports.files.export_file import export_storage
from exports.models import ExportDefinition, SavedExport
from exports.saved import services as saved_exports
from exports.saved.scheduling import next_build_at
from exports.tasks import dispatch_saved_exports
from project.celery import app as celery_app
from soil.beat import DefaultsDatabaseScheduler
from tests.conftest import wait_for

UTC = datetime.UTC


def saved_definition(domain, name="Nightly", **fields):
    return saved_exports.save_definition(ExportDefinition(domain=domain, name=name, source="form_submissions",
                                                          format=fields.pop("format", "csv"), is_daily_saved=True,
                                                          **fields))


@pytest.fixture
def kathmandu(alice):
    domain = ensure_demo_domain(slug="ktm", name="Kathmandu clinic", time_zone="Asia/Kathmandu", members=[alice])
    add_demo_rows(domain, 25)
    return domain


# --- scheduling of a new saved export ---

@pytest.mark.django_db
def test_marking_a_definition_daily_saved_schedules_the_next_local_midnight(kathmandu):
    before = timezone.now()
    saved = saved_definition(kathmandu).saved
    assert saved.next_build_at == next_build_at("Asia/Kathmandu", saved.created_at)
    local = saved.next_build_at.astimezone(ZoneInfo("Asia/Kathmandu"))
    assert (local.hour, local.minute) == (0, 0) and saved.next_build_at > before


@pytest.mark.django_db
def test_changing_the_domains_time_zone_moves_the_next_build(kathmandu):
    saved = saved_definition(kathmandu).saved
    kathmandu.time_zone = "America/New_York"
    saved_exports.save_domain(kathmandu)
    saved.refresh_from_db()
    local = saved.next_build_at.astimezone(ZoneInfo("America/New_York"))
    assert (local.hour, local.minute) == (0, 0)


# --- the dispatcher ---

@pytest.fixture
def dispatch(django_capture_on_commit_callbacks):
    """Run the dispatcher at `now`; return the ids whose rebuild it queued (on commit)."""
    def run(now):
        queued = []
        with django_capture_on_commit_callbacks(execute=True):
            claimed = saved_exports.dispatch_due(now, queued.append)
        assert claimed == queued
        return queued

    return run


@pytest.mark.django_db
def test_only_due_saved_exports_are_dispatched(kathmandu, dispatch):
    due = saved_definition(kathmandu, "Due").saved
    later = saved_definition(kathmandu, "Later").saved
    not_saved = saved_definition(kathmandu, "Unticked").saved
    ExportDefinition.objects.filter(pk=not_saved.definition_id).update(is_daily_saved=False)
    now = timezone.now()
    SavedExport.objects.filter(pk__in=[due.pk, not_saved.pk]).update(next_build_at=now - datetime.timedelta(minutes=1))
    SavedExport.objects.filter(pk=later.pk).update(next_build_at=now + datetime.timedelta(minutes=1))
    assert dispatch(now) == [due.pk]


@pytest.mark.django_db
def test_after_thirty_hours_down_each_missed_export_is_built_once(kathmandu, dispatch):
    saved = saved_definition(kathmandu).saved
    now = datetime.datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    SavedExport.objects.filter(pk=saved.pk).update(next_build_at=now - datetime.timedelta(hours=30),
                                                   created_at=now - datetime.timedelta(days=3))
    queued = dispatch(now)
    for minutes in range(15, 6 * 60, 15):  # the ticks that follow, same local day
        queued += dispatch(now + datetime.timedelta(minutes=minutes))
    assert queued == [saved.pk]
    saved.refresh_from_db()
    # The next build: the next local day's start plus this export's stable night offset.
    assert saved.next_build_at == next_build_at("Asia/Kathmandu", now, saved_exports.night_offset(saved.definition_id)) > now
    assert saved.last_scheduled_at == now


@pytest.mark.django_db(transaction=True)
def test_two_dispatchers_at_the_same_moment_queue_each_build_once(kathmandu):
    ids = [saved_definition(kathmandu, f"Nightly {n}").saved.pk for n in range(20)]
    now = timezone.now()
    SavedExport.objects.filter(pk__in=ids).update(next_build_at=now - datetime.timedelta(minutes=5))
    queued, errors = [], []
    start_together = threading.Barrier(2)

    def dispatcher():
        try:
            start_together.wait()
            saved_exports.dispatch_due(now, queued.append, batch_size=3)
        except Exception as exc:  # surfaced below; a thread's exception is otherwise lost
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert sorted(queued) == sorted(ids)


@pytest.mark.django_db
def test_a_saved_export_nobody_downloads_for_35_days_is_not_rebuilt_until_downloaded(kathmandu, dispatch):
    saved = saved_definition(kathmandu).saved
    now = timezone.now()
    idle = now - datetime.timedelta(days=settings.SAVED_EXPORTS_IDLE_DAYS + 1)
    SavedExport.objects.filter(pk=saved.pk).update(next_build_at=now - datetime.timedelta(minutes=1),
                                                   created_at=idle, last_downloaded_at=idle)
    assert dispatch(now) == []
    saved_exports.record_download(saved, now)
    assert dispatch(now) == [saved.pk]


@pytest.mark.django_db
def test_a_failed_rebuild_keeps_the_previous_file(kathmandu):
    definition = saved_definition(kathmandu)
    first = saved_exports.rebuild(definition.saved.pk)
    assert export_storage().exists(first.file_key)
    ExportDefinition.objects.filter(pk=definition.pk).update(source="no_such_source")
    with pytest.raises(ValueError):
        saved_exports.rebuild(definition.saved.pk)
    after = SavedExport.objects.get(pk=first.pk)
    assert after.file_key == first.file_key and export_storage().exists(first.file_key)
    assert "no_such_source" in after.last_build_error


@pytest.mark.django_db
def test_a_rebuild_replaces_the_file_and_deletes_the_old_one_only_after(kathmandu):
    definition = saved_definition(kathmandu)
    first = saved_exports.rebuild(definition.saved.pk)
    second = saved_exports.rebuild(definition.saved.pk)
    assert second.file_key != first.file_key
    assert export_storage().exists(second.file_key) and not export_storage().exists(first.file_key)
    assert second.rows == 25 and second.last_build_duration is not None


# --- the stable link ---

@pytest.mark.django_db
def test_the_stable_link_serves_members_only_and_records_the_download(client, alice, bob, kathmandu):
    definition = saved_definition(kathmandu)
    url = reverse("exports:saved_download", args=[kathmandu.slug, definition.pk])
    client.force_login(alice)
    assert client.get(url).status_code == 404  # not built yet: a clear page
    saved_exports.rebuild(definition.saved.pk)
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode("utf-8-sig").startswith("Form id,")
    assert SavedExport.objects.get(pk=definition.saved.pk).last_downloaded_at is not None
    client.force_login(bob)
    assert client.get(url).status_code == 404


# --- end to end through the worker ---

def test_the_dispatcher_builds_a_due_saved_export_and_the_link_serves_it(worker, alice_client, kathmandu):
    definition = saved_definition(kathmandu, format="xlsx")
    SavedExport.objects.filter(definition=definition).update(next_build_at=timezone.now() - datetime.timedelta(minutes=1))
    assert dispatch_saved_exports.delay().get(timeout=30) == 1
    saved = wait_for(lambda: (s := SavedExport.objects.get(definition=definition)).has_file and s,
                     timeout=60, message="the nightly build")
    assert saved.rows == 25 and saved.next_build_at > timezone.now()
    response = alice_client.get(reverse("exports:saved_download", args=[kathmandu.slug, definition.pk]))
    assert response.status_code == 200 and response["Content-Disposition"].endswith('.xlsx"')
    assert dispatch_saved_exports.delay().get(timeout=30) == 0


def test_rebuild_now_shows_progress_and_offers_the_new_file(worker, alice_client, kathmandu):
    definition = saved_definition(kathmandu)
    response = alice_client.post(reverse("exports:saved_rebuild", args=[kathmandu.slug, definition.pk]))
    assert response.status_code == 302
    status_url = response["Location"].rstrip("/") + "/status/"
    status = wait_for(lambda: (s := alice_client.get(status_url).json())["is_ready"] and s, message="the rebuild")
    assert status["has_file"]
    assert SavedExport.objects.get(definition=definition).rows == 25


# --- beat and queues ---

@pytest.mark.django_db(transaction=True)  # the scheduler closes the connection, as beat does
def test_beat_keeps_a_schedule_an_operator_changed_and_adds_missing_defaults():
    every_hour, _ = IntervalSchedule.objects.get_or_create(every=3600, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="soil.tasks.heartbeat", task="soil.tasks.heartbeat", interval=every_hour)
    celery_app.loader.import_default_modules()  # as beat does: every @periodic_task is declared
    assert "soil.tasks.heartbeat" in celery_app.conf.beat_schedule
    scheduler = DefaultsDatabaseScheduler(app=celery_app, lazy=True)
    scheduler.setup_schedule()
    assert PeriodicTask.objects.get(name="soil.tasks.heartbeat").interval.every == 3600
    dispatcher = PeriodicTask.objects.get(name="exports.tasks.dispatch_saved_exports")
    assert dispatcher.interval.every == settings.SAVED_EXPORTS_DISPATCH_INTERVAL
    assert dispatcher.queue == "celery_periodic"


def test_every_task_names_a_queue_from_the_queue_table():
    import tests.celery_tasks  # noqa: F401  (the test tasks count too)

    celery_app.loader.import_default_modules()
    # The project's tasks and those of tests/celery_tasks.py; a test module's own tasks (the soil contract's)
    # stand for another project's and may name other queues.
    ours = {name: t for name, t in celery_app.tasks.items()
            if name.split(".")[0] in {"exports", "soil", "project"} or name.startswith("tests.celery_tasks.")}
    assert {"exports.tasks.run_export", "exports.tasks.rebuild_saved_export", "soil.tasks.heartbeat"} <= set(ours)
    for name, registered in ours.items():
        assert registered.queue in settings.QUEUE_TABLE, f"{name} is on {registered.queue!r}"
