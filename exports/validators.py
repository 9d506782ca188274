"""Limits on what users may type, shared by the forms, the API and the models."""
import datetime

from django.core.exceptions import ValidationError

# Wide enough for any real record, and far enough from date.min and date.max that local midnights
# in every time zone, and the day after the last one, are instants Python and the databases can hold.
EARLIEST_DATE = datetime.date(1900, 1, 1)
LATEST_DATE = datetime.date(2100, 12, 31)

# The words for a range whose start comes after its end (forms, models, services and the API).
DATE_ORDER_MESSAGE = "The start date is after the end date."
# The words for a date the API cannot read; {field} is the parameter's name.
ISO_DATE_MESSAGE = "{field} must be a date written YYYY-MM-DD, or null."


def _in_words(day):
    return f"{day.day} {day:%B} {day.year}"


def validate_date_in_range(value, what="The date"):
    """Refuse a date outside EARLIEST_DATE..LATEST_DATE; `what` names the field in the message."""
    if value is not None and not EARLIEST_DATE <= value <= LATEST_DATE:
        raise ValidationError(
            f"{what} must be between {_in_words(EARLIEST_DATE)} and {_in_words(LATEST_DATE)}.",
            code="date_out_of_range",
        )
