"""Template filters for exports pages; the rules live in exports.formatting.

    {% load exports_format %}
    {{ run.created_at|local_time:domain.time_zone }}   -> 2026-11-23 14:05 IST
    {{ run.duration|duration }}                          -> 3 min 5 s
    {{ run.rows|count }}                                 -> 305,000
    {{ run.rows|rows }}                                  -> 305,000 rows
"""
from django import template

from exports import formatting

register = template.Library()


@register.filter
def local_time(value, zone_name):
    return formatting.format_local_time(value, zone_name)


@register.filter
def duration(value):
    return formatting.format_duration(value)


@register.filter
def count(value):
    return formatting.format_count(value)


@register.filter
def rows(value):
    return formatting.format_rows(value)
