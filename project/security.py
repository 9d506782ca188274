"""What the debug page (DEBUG=true only) may show."""
import re

from django.views.debug import SafeExceptionReporterFilter


class SettingsMaskingFilter(SafeExceptionReporterFilter):
    """Django's filter, also hiding every `*_URL` setting or environment variable and cache locations:
    DATABASE_URL, REDIS_URL and the Celery URLs may carry passwords."""

    hidden_settings = re.compile(
        SafeExceptionReporterFilter.hidden_settings.pattern + r"|_URL$|^URL$|LOCATION|DSN",
        flags=re.IGNORECASE,
    )
