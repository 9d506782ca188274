"""ApiToken and UserPreference, made by the exports app (exports 0005 and 0006), now belong to accounts.

Their tables stay where they are, under their old names (Meta.db_table): this migration only tells
Django's model state that accounts holds them, and exports 0008 takes them out of exports' state.
The content types (and with them the permissions and admin log entries) move to accounts as well.
"""
import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

MOVED_MODELS = ("apitoken", "userpreference")


def relabel_content_types(from_label, to_label):
    def relabel(apps, schema_editor):
        ContentType = apps.get_model("contenttypes", "ContentType")
        content_types = ContentType.objects.using(schema_editor.connection.alias)
        for model in MOVED_MODELS:
            if not content_types.filter(app_label=to_label, model=model).exists():
                content_types.filter(app_label=from_label, model=model).update(app_label=to_label)

    return relabel


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("exports", "0006_user_language"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='ApiToken',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(help_text="What the token is for, e.g. 'nightly sync script'.", max_length=100, verbose_name='name')),
                        ('prefix', models.CharField(help_text="The token's first characters, to tell tokens apart.", max_length=12, verbose_name='starts with')),
                        ('digest', models.CharField(editable=False, max_length=64, unique=True)),
                        ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
                        ('last_used_at', models.DateTimeField(blank=True, null=True)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'API token',
                        'verbose_name_plural': 'API tokens',
                        'db_table': 'exports_apitoken',
                        'ordering': ['-created_at'],
                    },
                ),
                migrations.CreateModel(
                    name='UserPreference',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('language', models.CharField(blank=True, help_text="Applied at each login; empty: the browser's language.", max_length=16, verbose_name='language')),
                        ('user', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='preference', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'verbose_name': 'user preference',
                        'verbose_name_plural': 'user preferences',
                        'db_table': 'exports_userpreference',
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(relabel_content_types("exports", "accounts"),
                             relabel_content_types("accounts", "exports")),
    ]
