"""ApiToken and UserPreference moved to the site's accounts app (project/accounts): out of exports'
model state only. Their tables stay, under the same names; accounts 0001 took them over first."""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("exports", "0007_run_last_progress"),
        ("accounts", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="ApiToken"),
                migrations.DeleteModel(name="UserPreference"),
            ],
            database_operations=[],
        ),
    ]
