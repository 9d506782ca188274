"""Reading an export's rows from the database in chunks, with flat memory: one seam, two paths.

``row_chunks`` is the seam every export reads through. It gives chunks (lists) of row tuples holding
what ``queryset.values_list(*keys)`` gives, except that, given a time zone ``tz``, the datetimes of
the columns ``datetime_keys`` are naive wall-clock time in ``tz`` (the same instant; the writers take
naive datetimes as local time). Two readers give exactly those rows:

- ``reference_chunks``, the definition: ``values_list(*keys).iterator(chunk_size)``, its aware
  datetimes made local by plain code. Public Django API only, so it is right by construction.
- ``fast_chunks``, the optimisation: the SQL of the same ``values_list`` (``query.sql_with_params()``)
  run on the connection's chunked cursor (a server-side cursor on PostgreSQL, as ``iterator()``
  uses), each column converted by a plain function chosen by its field's type and the database
  (``SQLITE_COLUMNS``, ``POSTGRESQL_COLUMNS``), a chunk at a time, column by column. On PostgreSQL
  the server gives the local times itself (``AT TIME ZONE``). Anything it does not recognise (another
  database, a field with ``from_db_value``, a type not in the tables, an annotation) is read the
  reference way.

``tests/test_rows.py`` holds the fast reader equal to the reference one, value by value and type by
type, for every column type, NULLs and time zones across DST changes, in both of ``./test.sh``'s
passes (SQLite and PostgreSQL): a Django upgrade that changes what ``values_list`` gives fails it.
"""
import datetime
import decimal
from contextlib import closing
from itertools import islice
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FieldError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import DateTimeField, F, Func, TextField, Value
from django.db.models.expressions import Col
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

__all__ = ["READERS", "fast_chunks", "iter_chunks", "reference_chunks", "row_chunks"]

READERS = ("fast", "reference")


def iter_chunks(rows, size):
    """Lists of up to `size` rows from an iterator, without reading ahead further."""
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk


def row_chunks(queryset, keys, chunk_size, tz=None, datetime_keys=(), reader="fast"):
    """The rows of ``queryset.values_list(*keys)``, in lists of up to `chunk_size` row tuples.

    Given `tz`, datetimes in the columns `datetime_keys` are naive wall-clock time in `tz`. The query
    runs when the first chunk is asked for; the cursor is closed when the generator finishes or is
    closed. `reader`: "fast" (``fast_chunks``) or "reference" (``reference_chunks``); both give the
    same rows.
    """
    if reader not in READERS:
        raise ValueError(f"Unknown row reader {reader!r}; expected one of {', '.join(READERS)}")
    read = fast_chunks if reader == "fast" else reference_chunks
    return read(queryset, keys, chunk_size, tz=tz, datetime_keys=datetime_keys)


# --- the reference: public API, plain code ---

def reference_chunks(queryset, keys, chunk_size, tz=None, datetime_keys=()):
    """``row_chunks`` by ``values_list(*keys).iterator(chunk_size)``: the definition of its rows."""
    local = [i for i, key in enumerate(keys) if key in datetime_keys] if tz is not None else []
    with closing(queryset.values_list(*keys).iterator(chunk_size=chunk_size)) as rows:
        for chunk in iter_chunks(rows, chunk_size):
            yield [_localized(row, local, tz) for row in chunk] if local else chunk


def _localized(row, indexes, tz):
    row = list(row)
    for i in indexes:
        row[i] = local_time(row[i], tz)
    return tuple(row)


def local_time(value, tz):
    """An aware datetime as naive wall-clock time in `tz`; any other value as it is.

    ``fold`` is 0: wall-clock time as a clock shows it, the same in an hour a DST change repeats
    (what PostgreSQL's ``AT TIME ZONE`` gives, and all the writers use).
    """
    if isinstance(value, datetime.datetime) and timezone.is_aware(value):
        return value.astimezone(tz).replace(tzinfo=None, fold=0)
    return value


# --- the fast reader ---

def fast_chunks(queryset, keys, chunk_size, tz=None, datetime_keys=()):
    """``row_chunks`` by the query's SQL on a cursor, with per-column functions; else the reference way."""
    plan = _plan(queryset, keys, tz, datetime_keys)
    if plan is None:
        yield from reference_chunks(queryset, keys, chunk_size, tz=tz, datetime_keys=datetime_keys)
        return
    connection, aliases, converters = plan
    try:
        sql, params = queryset.annotate(**aliases).values_list(*aliases).query.sql_with_params()
    except EmptyResultSet:  # the query can match nothing (e.g. .none())
        return
    server_side = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    cursor = connection.chunked_cursor() if server_side else connection.cursor()
    with closing(cursor):
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        if not set(aliases) <= set(names):
            raise RuntimeError(f"The export query gave the columns {names}, expected {list(aliases)}")
        picks = [names.index(alias) for alias in aliases]
        as_is = picks == list(range(len(names))) and not any(converters)
        while rows := cursor.fetchmany(chunk_size):
            if as_is:
                yield rows if rows.__class__ is list else list(rows)
            else:
                columns = list(zip(*rows))
                yield list(zip(*[columns[p] if convert is None else convert(columns[p])
                                 for p, convert in zip(picks, converters)]))


def _plan(queryset, keys, tz, datetime_keys):
    """(connection, {alias: expression}, [column function or None]) for the fast reader, or None.

    Each key is selected as an alias (so that the cursor's description names the columns); each
    column function takes a column of a chunk (a tuple of values) and gives its values converted.
    """
    if queryset.db != DEFAULT_DB_ALIAS:  # sql_with_params() compiles for the default database
        return None
    connection = connections[queryset.db]
    table = {"sqlite": SQLITE_COLUMNS, "postgresql": POSTGRESQL_COLUMNS}.get(connection.vendor)
    if table is None or not keys or len(set(keys)) != len(keys):
        return None
    probe = queryset.all().query  # a copy: resolving a lookup across a relation adds its join here
    aliases, converters = {}, []
    for i, key in enumerate(keys):
        try:
            column = F(key).resolve_expression(probe)
        except FieldError:  # not a field: an annotation, a transform…, left to values_list()
            return None
        if not isinstance(column, Col) or column.output_field is not column.target:
            return None
        field = column.target
        make = table.get(field.get_internal_type())
        if make is None or hasattr(field, "from_db_value"):
            return None
        local_tz = tz if tz is not None and key in datetime_keys else None
        expression, convert = make(field, connection, local_tz, key)
        aliases[f"export_column_{i}"] = expression
        converters.append(convert)
    return connection, aliases, converters


def unless_all(types, function):
    """A column function: the column as it is when every value's type is one of `types`, else `function` on each.

    For converters that give such values back unchanged: the check is one pass in C.
    """
    types = frozenset(types)
    return lambda column: column if types.issuperset(map(type, column)) else map(function, column)


_NONE = type(None)
_PLAIN_TYPES = ("AutoField", "BigAutoField", "SmallAutoField", "IntegerField", "BigIntegerField",
                "SmallIntegerField", "PositiveIntegerField", "PositiveBigIntegerField",
                "PositiveSmallIntegerField", "CharField", "TextField", "SlugField", "FloatField")


def _plain(field, connection, tz, key):
    """A column the database gives as ``values_list`` does (no converter on either database)."""
    return F(key), None


# --- SQLite: what Django's SQLite backend converters do, as plain functions ---

def _sqlite_datetime(field, connection, tz, key):
    """convert_datetimefield_value: naive values (in the connection's zone) made aware; then local in `tz`.

    The column is read as its stored text and parsed a chunk at a time (``text_parser``: what the
    converter Django registers with sqlite3 gives, without a Python call per value from sqlite3), so
    the common case, a naive datetime, is inline; anything else takes Django's steps (``slow``).
    """
    db_tz = connection.timezone if settings.USE_TZ else None

    def django(v):
        if v is not None:
            if not isinstance(v, datetime.datetime):
                v = parse_datetime(v)
            if db_tz is not None and not timezone.is_aware(v):
                v = timezone.make_aware(v, db_tz)
        return v

    slow = django if tz is None else (lambda v: local_time(django(v), tz))
    naive = datetime.datetime
    if db_tz is None:  # USE_TZ = False: naive values stay as they are
        def convert(values):
            return [v if v.__class__ is naive or v is None else slow(v) for v in values]
    elif tz is None:
        def convert(values):
            return [v.replace(tzinfo=db_tz) if v.__class__ is naive and v.tzinfo is None
                    else None if v is None else slow(v) for v in values]
    elif db_tz in _UTC_ZONES:
        # Naive UTC -> naive local: a dict lookup and an addition for an hour seen before (UtcToLocal).
        to_local = UtcToLocal(tz)
        offset_of = to_local.offsets.get

        def convert(values):
            return [(v + offset if (offset := offset_of(v.toordinal() * 24 + v.hour)) is not None else to_local(v))
                    if v.__class__ is naive and v.tzinfo is None else None if v is None else slow(v)
                    for v in values]
    else:
        def convert(values):
            return [None if v is None else slow(v) for v in values]
    parse = text_parser(naive.fromisoformat, parse_datetime)
    return _as_text(key), lambda values: convert(parse(values))


def _as_text(key):
    """The column as its stored text: an expression has no declared type, so sqlite3 calls no converter
    on it (Django registers a Python one per value for "datetime", "date"...); the column function
    parses the text itself, a chunk at a time (``text_parser``)."""
    return Func(F(key), template="(%(expressions)s || '')", output_field=TextField())


def text_parser(fromisoformat, django_parse):
    """A column function: stored text -> values, as the sqlite3 converter Django registers gives them
    (``django_parse`` of the text: parse_datetime, parse_date), by ``fromisoformat`` (C) in one pass
    when every value takes it; NULL stays None."""
    def careful(text):
        try:
            return fromisoformat(text)
        except ValueError:
            return django_parse(text)

    def parse(values):
        try:
            return [None if text is None else fromisoformat(text) for text in values]
        except (TypeError, ValueError):
            return [None if text is None else careful(str(text)) for text in values]
    return parse


def _sqlite_date(field, connection, tz, key):
    """convert_datefield_value: dates (what sqlite3's converter gives for Django's "date" columns) stay
    as they are; read as text and parsed here, as that converter would."""
    return _as_text(key), text_parser(datetime.date.fromisoformat, parse_date)


def _sqlite_boolean(field, connection, tz, key):
    """convert_booleanfield_value: booleans (what sqlite3 gives for Django's "bool" columns) stay."""
    def convert(v):
        return bool(v) if v in (1, 0) else v
    return F(key), unless_all((bool, _NONE), convert)


#: Decimals kept per column by the SQLite decimal conversion (see ``_sqlite_decimal``): a few MB at most.
DECIMAL_MEMO_SIZE = 20_000


def _sqlite_decimal(field, connection, tz, key):
    """get_decimalfield_converter: 15 significant digits, quantized to the field's places; memoised.

    Django turns each float into a Decimal (about a microsecond). The result is a function of the
    float alone, and Decimals are immutable, so a repeated value (amounts, weights, prices repeat a
    lot) costs a dict lookup. Only non-zero floats are kept (0.0 and -0.0 are equal keys but give
    different Decimals); once DECIMAL_MEMO_SIZE values are kept, no more are.
    """
    create = decimal.Context(prec=15).create_decimal_from_float
    quantum = decimal.Decimal(1).scaleb(-field.decimal_places)
    context = decimal.Context(prec=field.max_digits)
    memo = {}
    known = memo.get

    def django(v):
        result = create(v).quantize(quantum, context=context)
        if v.__class__ is float and v and len(memo) < DECIMAL_MEMO_SIZE:
            memo[v] = result
        return result

    def convert(values):
        return [d if v.__class__ is float and (d := known(v)) is not None else None if v is None else django(v)
                for v in values]
    return F(key), convert


SQLITE_COLUMNS = {
    **dict.fromkeys(_PLAIN_TYPES, _plain),
    "DateTimeField": _sqlite_datetime,
    "DateField": _sqlite_date,
    "BooleanField": _sqlite_boolean,
    "DecimalField": _sqlite_decimal,
}


# --- PostgreSQL: psycopg gives every value as values_list does; local times from the server ---

def _postgresql_datetime(field, connection, tz, key):
    """Aware values, or, given `tz`, naive local time computed by the server.

    ``timestamptz AT TIME ZONE 'zone'`` is the same instant as naive wall-clock time; psycopg loads
    the resulting ``timestamp`` in C. Otherwise every value goes through the pure-Python
    ``timestamptz`` loader Django registers, then ``astimezone``: most of the export's reading time
    on PostgreSQL (docs/performance.md). Only for a named zone with USE_TZ; else converted here.
    """
    zone = getattr(tz, "key", None)
    if tz is None:
        return F(key), None
    if zone and settings.USE_TZ:
        return Func(F(key), Value(zone), arg_joiner=" AT TIME ZONE ", template="(%(expressions)s)",
                    output_field=DateTimeField()), None
    return F(key), lambda values: [local_time(v, tz) for v in values]


POSTGRESQL_COLUMNS = {
    **dict.fromkeys(_PLAIN_TYPES, _plain),
    "DateTimeField": _postgresql_datetime,
    "DateField": _plain,
    "BooleanField": _plain,
    "DecimalField": _plain,
}


# --- naive UTC to local time, fast ---

_UTC_ZONES = (datetime.timezone.utc, ZoneInfo("UTC"))
_HOUR_LESS_A_MICROSECOND = datetime.timedelta(hours=1, microseconds=-1)


class UtcToLocal:
    """Naive UTC datetimes -> naive wall-clock time in `tz`, the same instant.

    ``offsets`` maps a UTC hour (``toordinal() * 24 + hour``) to `tz`'s UTC offset during that whole
    hour, so that most values cost a dict lookup and an addition (the caller inlines that) instead of
    ``replace(tzinfo=UTC).astimezone(tz)`` and ``replace(tzinfo=None)``. Calling the object converts a
    value the slow way and caches its hour's offset when the offset is the same at the hour's first
    and last microsecond. An hour holding a transition shows two offsets, so it is never cached and
    its values always take the slow, exact way; only two transitions in one hour that cancel out
    could fool the check, and the tz database has none (transitions are at least days apart). The
    cache is bounded.
    """

    max_hours = 50_000  # ~6 years of hours; a few MB at most

    def __init__(self, tz):
        self.tz = tz
        self.offsets = {}
        self.distinct = {}  # one timedelta object per offset, shared by the hours

    def __call__(self, value):
        local = value.replace(tzinfo=datetime.timezone.utc).astimezone(self.tz).replace(tzinfo=None, fold=0)
        try:
            start = value.replace(minute=0, second=0, microsecond=0, tzinfo=datetime.timezone.utc)
            first = start.astimezone(self.tz).utcoffset()
            last = (start + _HOUR_LESS_A_MICROSECOND).astimezone(self.tz).utcoffset()
        except OverflowError:  # the first or last hour datetime can hold
            return local
        if first == last:
            if len(self.offsets) >= self.max_hours:
                self.offsets.clear()
            self.offsets[value.toordinal() * 24 + value.hour] = self.distinct.setdefault(first, first)
        return local
