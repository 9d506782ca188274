"""Domains saved before zones were checked may hold 'asia/kathmandu': stored once in IANA's spelling
('Asia/Kathmandu'), so that no model has to rewrite its zone when a row is loaded."""
from zoneinfo import available_timezones

from django.db import migrations


def canonical_time_zones(apps, schema_editor):
    Domain = apps.get_model("exports", "Domain")
    by_folded = {}
    for name in sorted(available_timezones()):
        by_folded.setdefault(name.casefold(), name)
    for pk, zone in Domain.objects.values_list("pk", "time_zone"):
        canonical = by_folded.get((zone or "").casefold())
        if canonical and canonical != zone:
            Domain.objects.filter(pk=pk).update(time_zone=canonical)


class Migration(migrations.Migration):
    dependencies = [("exports", "0008_api_tokens_and_preferences_to_accounts")]
    operations = [migrations.RunPython(canonical_time_zones, migrations.RunPython.noop)]
