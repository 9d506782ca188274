"""csv exports rendered by PostgreSQL itself: ``COPY (query) TO STDOUT (FORMAT csv)``.

On PostgreSQL the server can write the csv rows: each column becomes a SQL expression giving
exactly the text ``CsvWriter`` writes for it (local times, "TRUE"/"FALSE", the formula guard), and
COPY streams the rows while the worker only appends them to the file. The worker's CPU per row
drops several-fold and the server's work overlaps the writing (docs/performance.md).

Only what renders identically is sent this way; anything else (another database, a column of a
type not listed in ``_RENDERERS``, a decimal with more than 6 places, a zone without a name, one
column alone, a build inside a transaction, whose rows COPY's own connection would not see) goes
through the Python writer as before. ``tests/test_pg_copy.py`` checks that both
paths write the same bytes on edge values. ``EXPORT_POSTGRES_COPY=false`` turns it off.
"""
from itertools import islice

from django.conf import settings
from django.db import connections, models
from django.db.models import F, Func, Value
from django.db.models.expressions import Col

from exports.conf import exports_conf

__all__ = ["csv_chunks"]

# ``CsvWriter``'s rendering of each column type, in SQL; %(expressions)s is the column (a plain
# column reference, so it may appear twice). NULL is an empty field, as the writer's None. Empty
# text becomes NULL too: COPY would quote it ("") where csv.writer writes nothing.
_FORMULA_FIRST = "'=', '+', '-', '@', chr(9), chr(13)"  # CSV_FORMULA_FIRST
_TEXT = "NULLIF(%(expressions)s, '')"
# ltrim: spaces then "=" (csv_file.spaced_formula).
_GUARDED_TEXT = (f"CASE WHEN left(%(expressions)s, 1) IN ({_FORMULA_FIRST}) "
                 "OR left(ltrim(%(expressions)s, ' '), 1) = '=' THEN '''' || %(expressions)s "
                 "ELSE NULLIF(%(expressions)s, '') END")
_RENDERERS = {
    "integer": (models.IntegerField, "%(expressions)s"),
    "decimal": (models.DecimalField, "%(expressions)s"),
    "date": (models.DateField, "to_char(%(expressions)s, 'YYYY-MM-DD')"),
    "boolean": (models.BooleanField, "CASE WHEN %(expressions)s THEN 'TRUE' WHEN NOT %(expressions)s THEN 'FALSE' END"),
}
# str(Decimal) switches to exponents below 1E-6 (e.g. "1E-7"); PostgreSQL never does.
_MAX_DECIMAL_PLACES = 6


def csv_chunks(queryset, columns, tz, writer, chunk_size):
    """Chunks ``(data, rows)`` of the export's rows as ``writer`` (a ``CsvWriter``) would write them.

    ``data`` is bytes in UTF-8, CRLF after each row, for ``writer.write_encoded``. None when
    PostgreSQL cannot render this export exactly (the caller then reads rows as usual).
    """
    if not exports_conf.EXPORT_POSTGRES_COPY or len(columns) < 2:
        return None
    connection = connections[queryset.db]
    zone = getattr(tz, "key", None)
    if connection.vendor != "postgresql" or not zone or not settings.USE_TZ:
        return None
    if connection.in_atomic_block:  # COPY's own connection would not see this transaction's rows
        return None
    if writer.encoding.replace("_", "-").lower() not in ("utf-8", "utf-8-sig"):
        return None
    aliases = {f"_csv_{i}": _rendered(F(column.key), column.type, writer.escape_formulas, zone)
               for i, column in enumerate(columns)}
    queryset = queryset.annotate(**aliases)
    for alias, column in zip(aliases, columns):
        if not _renders_exactly(queryset.query.annotations[alias].get_source_expressions()[0], column.type):
            return None
    sql, params = queryset.values_list(*aliases).query.get_compiler(using=queryset.db).as_sql()
    return _copy_chunks(queryset.db, f"COPY ({sql}) TO STDOUT (FORMAT csv)", params, chunk_size)


def _rendered(column, column_type, escape_formulas, zone):
    """The SQL expression writing `column` as CsvWriter writes a value of `column_type`."""
    if column_type == "datetime":  # local wall-clock time, seconds truncated, as the writer's isoformat
        return Func(column, Value(zone), arg_joiner=" AT TIME ZONE ",
                    template="to_char(%(expressions)s, 'YYYY-MM-DD HH24:MI:SS')", output_field=models.TextField())
    if column_type == "text":
        template = _GUARDED_TEXT if escape_formulas else _TEXT
    else:
        template = _RENDERERS[column_type][1]
    return Func(column, template=template, output_field=models.TextField())


def _renders_exactly(source, column_type):
    """Is `source` (the resolved column) a plain column whose type the SQL renders as the writer does?"""
    if not isinstance(source, Col):
        return False
    field = source.target
    if column_type == "datetime":
        return isinstance(field, models.DateTimeField)
    if column_type == "text":
        return isinstance(field, (models.CharField, models.TextField))
    if column_type == "date" and isinstance(field, models.DateTimeField):
        return False
    if column_type == "decimal" and isinstance(field, models.DecimalField):
        return field.decimal_places <= _MAX_DECIMAL_PLACES
    return column_type in _RENDERERS and isinstance(field, _RENDERERS[column_type][0])


def _copy_chunks(alias, statement, params, chunk_size):
    # COPY runs on a connection of its own (UTF-8, as Django opens every PostgreSQL connection): while
    # it streams, its connection can do nothing else, and between chunks the caller's progress and
    # cancel checks may use the database (on one connection they would wait for the COPY forever).
    # Each read of a COPY TO gives one row ending in "\n" (libpq returns whole rows), so replacing that
    # last byte gives csv.writer's CRLF without touching line breaks inside quoted values.
    own = connections.create_connection(alias)
    try:
        with own.wrap_database_errors, own.cursor() as cursor:
            with cursor.cursor.copy(statement, params) as copy:
                rows = iter(copy)
                while chunk := list(islice(rows, chunk_size)):
                    yield b"\r\n".join([row[:-1] for row in chunk]) + b"\r\n", len(chunk)
    finally:
        own.close()
