"""The words a person reads about a run that stopped: why it failed, was cancelled or was lost.

Lazy strings are written into a run's row in the language active then (the run's, see exports.tasks);
functions answer in the active language.
"""
import errno

from celery.exceptions import SoftTimeLimitExceeded
from django.utils.translation import gettext, gettext_lazy, ngettext

from exports.files.parameters import ExportRefused
from exports.sources import SourceError

CANCELLED_WORDS = gettext_lazy("Cancelled by the user.")
WORKER_LOST_WORDS = gettext_lazy("The worker building this export stopped; it was retried once. Run it again.")
UNAVAILABLE_WORDS = gettext_lazy(
    "The export service was unavailable when this export was asked for; run it again in a minute.")
MESSAGE_LOST_WORDS = gettext_lazy(
    "This export was lost from the queue (the queue service restarted); it was retried once. Run it again.")
ACTIVE_DELETE_WORDS = gettext_lazy("This export is still queued or running: cancel it first, then delete it.")
NO_EMAIL_WORDS = gettext_lazy("Your account has no email address, so no email can be sent.")


def time_limit_words(seconds):
    if seconds < 120:
        span = ngettext("%(count)d second", "%(count)d seconds", seconds) % {"count": seconds}
    else:
        minutes = round(seconds / 60)
        span = ngettext("%(count)d minute", "%(count)d minutes", minutes) % {"count": minutes}
    return gettext("This export took longer than %(span)s, the time limit for one export. "
                   "Choose a shorter date range and run it again.") % {"span": span}


def failure_words(exc, time_limit=None):
    """What a person reads when a build fails: words, never a trace or a server's address."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return time_limit_words(time_limit) if time_limit else gettext(
            "This export took longer than its time limit. Choose a shorter date range and run it again.")
    if isinstance(exc, (ExportRefused, SourceError)):
        return str(exc)
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return gettext("The export server ran out of disk space. Try again later, or tell your administrator.")
    return gettext("The export failed because of an error on our side; it has been logged. "
                   "Run it again, and tell your administrator if it keeps failing.")
