"""Reading an export's rows from the database fast, in chunks, with flat memory.

`row_chunks` is ``queryset.values_list(...).iterator(chunk_size)`` without its per-row
overhead: the csv export must stay within 2x the bare csv writer (docs/performance.md), and
Django's generic per-value converter loop alone costs more than that. Everything here falls
back to calling Django's own converters for anything it does not recognise.
"""
import datetime
from itertools import islice
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections
from django.db.models import DateTimeField, F, Func, Value
from django.db.models.sql.constants import CURSOR


def iter_chunks(rows, size):
    """Lists of up to `size` rows from an iterator, without reading ahead further."""
    rows = iter(rows)
    while chunk := list(islice(rows, size)):
        yield chunk


def row_chunks(queryset, keys, chunk_size, tz=None, datetime_keys=(), fuse=None):
    """The rows of ``queryset.values_list(*keys)``, in chunks of up to `chunk_size` rows.

    Each chunk is an iterable of row tuples holding exactly the values ``values_list()``
    gives, except that, given a time zone `tz`, datetimes in the columns `datetime_keys`
    may come as naive wall-clock time in `tz` instead of aware datetimes (the same
    instant: the writers take naive datetimes as local time). The query runs when the
    first chunk is asked for. Reading is chunked (``fetchmany(chunk_size)`` on the
    cursor ``QuerySet.iterator()`` would use: a server-side cursor where the backend
    has them), so memory stays flat; the cursor is closed when the generator finishes
    or is closed.

    This is ``values_list(*keys).iterator(chunk_size)`` without its per-row overhead, on
    any database. Django compiles and runs the query, and its converters
    (``compiler.get_converters``: backend converters, then fields' ``from_db_value``)
    are applied by one generated function per row instead of ``apply_converters``'
    generic loops (``_conversion_plan``): Django's own SQLite converters for dates,
    datetimes and booleans are inlined as type checks, its SQLite decimal converter is
    memoised, every other converter is called as Django calls it. Where SQLite gives
    naive UTC datetimes for `datetime_keys`, they become local time with the UTC offset
    cached per hour (``_UtcToLocal``): a dict lookup and an addition instead of
    ``replace(tzinfo=...)`` here, then ``astimezone(tz)`` and ``replace(tzinfo=None)``
    in the writer. PostgreSQL needs no converters for these fields, so its rows go
    through untouched, and on PostgreSQL the server gives `datetime_keys` as local time
    itself (``AT TIME ZONE``, see ``_local_on_postgresql``). Composite fields, which the
    fast path does not handle, take the plain ``iterator()`` path.

    `fuse`, if given, is called once, when the query has run, with the per-column
    expressions and names of the conversion (``_conversion_plan``), e.g. a writer's
    ``set_source_expressions``: the caller then applies them itself, and the chunks
    hold the raw database rows (one generated function per row instead of two when the
    writer converts values too). It is not called when there is nothing to convert.
    """
    connection = connections[queryset.db]
    if tz is not None and datetime_keys and connection.vendor == "postgresql":
        queryset, keys = _local_on_postgresql(queryset, keys, datetime_keys, tz)
    queryset = queryset.values_list(*keys)
    compiler = queryset.query.get_compiler(using=queryset.db)
    chunked_fetch = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    cursor = compiler.execute_sql(CURSOR, chunked_fetch=chunked_fetch, chunk_size=chunk_size)
    if cursor is None:  # the query can match nothing (EmptyResultSet)
        return
    try:
        fields = [s[0] for s in compiler.select[0:compiler.col_count]]
        fast = not (compiler.has_composite_fields(fields) or queryset._prefetch_related_lookups)
        if fast:
            local = {i for i, key in enumerate(keys) if key in datetime_keys} if tz is not None else set()
            plan = _conversion_plan(len(fields), compiler.get_converters(fields), connection,
                                    tz=tz, local_columns=local)
            if plan is not None and fuse is not None:
                fuse(*plan)
                convert = None
            else:
                convert = _row_converter(plan)
            col_count = compiler.col_count if compiler.has_extra_select else None
            sentinel = connection.features.empty_fetchmany_value
            while (rows := cursor.fetchmany(chunk_size)) != sentinel and rows:
                if col_count is not None:
                    rows = [row[:col_count] for row in rows]
                yield rows if convert is None else map(convert, rows)
    finally:
        cursor.close()
    if not fast:
        yield from iter_chunks(queryset.iterator(chunk_size=chunk_size), chunk_size)


_UTC_ZONES = (datetime.timezone.utc, ZoneInfo("UTC"))


def _local_on_postgresql(queryset, keys, datetime_keys, tz):
    """The queryset and keys with `datetime_keys` read as naive local time in `tz` by PostgreSQL.

    ``timestamptz AT TIME ZONE 'zone'`` is the same instant as naive wall-clock time, computed
    by the server; psycopg loads the resulting ``timestamp`` in C. Otherwise every value goes
    through the pure-Python ``timestamptz`` loader Django registers, and the writers convert
    it to local time again: together most of the export's reading time on PostgreSQL
    (docs/performance.md). Only aware DateTimeFields with a named zone are read this way;
    other keys are left as they are.
    """
    zone = getattr(tz, "key", None)
    if not (zone and settings.USE_TZ):
        return queryset, keys
    annotations = {f"_export_local_{i}": Func(F(key), Value(zone), arg_joiner=" AT TIME ZONE ",
                                              template="(%(expressions)s)", output_field=DateTimeField())
                   for i, key in enumerate(keys) if key in datetime_keys}
    queryset = queryset.annotate(**annotations)
    keys = list(keys)
    for alias in annotations:
        source = queryset.query.annotations[alias].get_source_expressions()[0]
        if isinstance(getattr(source, "output_field", None), DateTimeField):
            keys[int(alias.rsplit("_", 1)[1])] = alias
    return queryset, keys


def _sqlite_datetime_converter():
    try:
        from django.db.backends.sqlite3.operations import DatabaseOperations
    except ImportError:  # Python built without sqlite3
        return None
    return DatabaseOperations.convert_datetimefield_value


class _UtcToLocal:
    """Naive UTC datetimes -> naive wall-clock time in `tz`, the same instant.

    ``offsets`` maps a UTC hour (``toordinal() * 24 + hour``) to `tz`'s UTC offset
    during that whole hour, so that most values cost a dict lookup and an addition
    (the caller inlines that) instead of ``replace(tzinfo=UTC).astimezone(tz)`` and
    ``replace(tzinfo=None)``. Calling the object converts a value the slow way and
    caches its hour's offset when the offset is the same at the hour's first and
    last microsecond. An hour holding a transition shows two offsets, so it is never
    cached and its values always take the slow, exact way; only two transitions in
    one hour that cancel out could fool the check, and the tz database has none
    (transitions are at least days apart). The cache is bounded.
    """

    max_hours = 50_000  # ~6 years of hours; a few MB at most

    def __init__(self, tz):
        self.tz = tz
        self.offsets = {}
        self._distinct = {}  # one timedelta object per offset, shared by the hours

    def __call__(self, value):
        local = value.replace(tzinfo=datetime.timezone.utc).astimezone(self.tz).replace(tzinfo=None)
        try:
            start = value.replace(minute=0, second=0, microsecond=0, tzinfo=datetime.timezone.utc)
            first = start.astimezone(self.tz).utcoffset()
            last = (start + _HOUR_LESS_A_MICROSECOND).astimezone(self.tz).utcoffset()
        except OverflowError:  # the first or last hour datetime can hold
            return local
        if first == last:
            if len(self.offsets) >= self.max_hours:
                self.offsets.clear()
            self.offsets[value.toordinal() * 24 + value.hour] = self._distinct.setdefault(first, first)
        return local


_HOUR_LESS_A_MICROSECOND = datetime.timedelta(hours=1, microseconds=-1)


_SQLITE_DECIMAL_CONVERTER = ("django.db.backends.sqlite3.operations",
                             "DatabaseOperations.get_decimalfield_converter.<locals>.converter")


def _is_sqlite_decimal_converter(conv):
    """Is `conv` the closure Django's SQLite backend makes for DecimalField columns?"""
    return (getattr(conv, "__module__", None), getattr(conv, "__qualname__", None)) == _SQLITE_DECIMAL_CONVERTER


class _DecimalMemo:
    """SQLite's DecimalField converter, its results kept per float value.

    SQLite hands decimals back as floats, and Django turns each into a Decimal
    (``create_decimal_from_float`` then ``quantize``: about a microsecond). The result
    is a function of the float alone, and Decimals are immutable, so a repeated value
    (amounts, weights, prices repeat a lot) costs a dict lookup. Only non-zero floats
    are kept (0.0 and -0.0 are equal keys but give different Decimals). The memo is
    bounded (a few MB): once full it keeps the values it has and takes no more. Like
    the converter, it gives None for None (the caller skips the call for None).
    """

    max_values = 20_000

    def __init__(self, converter, expression, connection):
        self.converter = converter
        self.expression = expression
        self.connection = connection
        self.decimals = {}

    def __call__(self, value):
        result = self.converter(value, self.expression, self.connection)
        if value.__class__ is float and value and result is not None:
            if len(self.decimals) < self.max_values:
                self.decimals[value] = result
        return result


def _inline_converters():
    """{backend converter function: expression} for converters cheap to inline.

    Only Django's own SQLite converters, matched by identity (a backend that overrides
    them is not matched). Each expression computes from a value ``v`` that is not None
    exactly what the converter returns: a type check takes the common case, anything
    else calls the converter (``c`` stands for the converter, ``e`` for the expression,
    ``conn`` for the connection; ``db_datetime``, ``db_date`` and ``db_tz`` are
    datetime.datetime, datetime.date and the connection's time zone). Python's sqlite3
    module has already turned the values into datetime / date / bool objects (Django
    registers converters for those declared column types), so the check nearly always
    succeeds.
    """
    try:
        from django.db.backends.sqlite3.operations import DatabaseOperations
    except ImportError:  # Python built without sqlite3
        return {}
    if settings.USE_TZ:
        # convert_datetimefield_value: a naive datetime -> make_aware(v, connection.timezone),
        # which is v.replace(tzinfo=connection.timezone) (db_tz); an aware one is returned as is.
        datetime_expr = ("((v.replace(tzinfo=db_tz) if v.tzinfo is None else v) if v.__class__ is db_datetime "
                         "else c(v, e, conn))")
    else:
        datetime_expr = "(v if v.__class__ is db_datetime else c(v, e, conn))"
    return {
        DatabaseOperations.convert_datetimefield_value: datetime_expr,
        DatabaseOperations.convert_datefield_value: "(v if v.__class__ is db_date else c(v, e, conn))",
        DatabaseOperations.convert_booleanfield_value: "(v if v.__class__ is bool else c(v, e, conn))",
    }


def _conversion_plan(width, converters, connection, tz=None, local_columns=()):
    """Per-column expressions applying Django's converters as ``apply_converters`` does.

    ``converters``: ``{index: (converter functions, expression)}`` from
    ``compiler.get_converters()``. Returns ``(expressions, names)``: one Python
    expression per column computing the converted value from the raw row ``r`` (None
    where there is nothing to do), and the objects they use (all named ``db_...``; the
    local names assigned are ``v``, ``o`` and ``d``); or None when no column needs
    converting. Converters are called in order with ``(value, expression, connection)``,
    even on None, as Django does; inlined ones (which return None for None) skip None.
    Only column indexes and fixed templates go into the expressions, never data.

    For the columns in ``local_columns`` whose only converter is SQLite's datetime
    converter, with the database in UTC: naive values (UTC) become naive local time
    in ``tz`` (see ``row_chunks``); other values are converted as Django does.
    """
    if not converters:
        return None
    inline = _inline_converters()
    db_tz = connection.timezone
    names = {"db_conn": connection, "db_tz": db_tz, "db_datetime": datetime.datetime, "db_date": datetime.date}
    if tz is not None and local_columns and db_tz in _UTC_ZONES:
        names["db_utc_to_local"] = to_local = _UtcToLocal(tz)
        names["db_local_offsets"] = to_local.offsets
    else:
        local_columns = ()
    expressions = [None] * width
    for i, (convs, expression) in converters.items():
        names[f"db_e{i}"] = expression
        expr = f"r[{i}]"
        if (i in local_columns and len(convs) == 1 and settings.USE_TZ
                and getattr(convs[0], "__func__", None) is _sqlite_datetime_converter()):
            names[f"db_c{i}_0"] = convs[0]
            expressions[i] = (
                f"None if (v := r[{i}]) is None else "
                f"((v + o if (o := db_local_offsets.get(v.toordinal() * 24 + v.hour)) is not None "
                f"else db_utc_to_local(v)) if v.__class__ is db_datetime and v.tzinfo is None "
                f"else db_c{i}_0(v, db_e{i}, db_conn))")
            continue
        for j, conv in enumerate(convs):
            name = f"db_c{i}_{j}"
            names[name] = conv
            if _is_sqlite_decimal_converter(conv):
                # Memoised: the result depends on the value only (see _DecimalMemo).
                names[f"db_m{i}_{j}"] = memo = _DecimalMemo(conv, expression, connection)
                names[f"db_d{i}_{j}"] = memo.decimals
                expr = (f"(None if (v := {expr}) is None else d if v.__class__ is float "
                        f"and (d := db_d{i}_{j}.get(v)) is not None else db_m{i}_{j}(v))")
                continue
            template = inline.get(getattr(conv, "__func__", None))
            if template is None:
                expr = f"{name}({expr}, db_e{i}, db_conn)"
            else:
                body = template.replace("c(v, e, conn)", f"{name}(v, db_e{i}, db_conn)")
                expr = f"(None if (v := {expr}) is None else {body})"
        expressions[i] = expr
    return expressions, names


def _row_converter(plan):
    """A function ``convert(row) -> tuple`` evaluating a ``_conversion_plan``; None for no plan."""
    if plan is None:
        return None
    expressions, names = plan
    items = [f"r[{i}]" if expr is None else f"({expr})" for i, expr in enumerate(expressions)]
    namespace = dict(names)
    source = f"def convert(r):\n    return ({', '.join(items)},)\n"
    exec(compile(source, "<export db row converter>", "exec"), namespace)  # noqa: S102
    return namespace["convert"]
