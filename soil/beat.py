"""Beat's database scheduler, with the entries declared by @periodic_task as defaults only.

An optional extra: it needs django-celery-beat (installed, and in INSTALLED_APPS). Nothing else in
soil imports this module; a project opts in with CELERY_BEAT_SCHEDULER = "soil.beat:DefaultsDatabaseScheduler".
"""
try:
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import DatabaseScheduler
except ImportError as exc:  # the rest of soil needs only Django, Celery and Redis
    raise ImportError("soil.beat needs django-celery-beat; install it and add 'django_celery_beat' to "
                      "INSTALLED_APPS, or use another beat scheduler") from exc


class DefaultsDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler, except that it never overwrites an existing entry.

    The stock scheduler rewrites every entry of the code's beat_schedule at each start,
    undoing what an operator changed in the Django admin. Here code only adds the entries
    that are missing; after that the database (the admin) decides.
    """

    def update_from_dict(self, mapping):
        existing = set(PeriodicTask.objects.filter(name__in=list(mapping)).values_list("name", flat=True))
        super().update_from_dict({name: entry for name, entry in mapping.items() if name not in existing})
