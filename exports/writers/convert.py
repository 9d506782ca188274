"""The shared value conversion: one plain function per column, applied to a chunk column by column.

Every writer turns each column type into a column function ``f(values)``: given the values of one
column of a chunk (a tuple, None included), it gives what the writer writes for each, in order; or
None where values are written as they are. ``convert_rows`` applies them: the chunk is transposed
with ``zip``, each column that has a function goes through it, and the columns are zipped back into
rows. The column functions are list comprehensions whose common case is a type check and an
expression, anything else a call of the writer's general method: a value costs no function call, a
column without a function nothing at all. There is no generated code.
"""
from datetime import timezone

__all__ = ["convert_columns", "convert_rows", "local_naive"]


def convert_rows(rows, functions):
    """The rows of the list ``rows`` with column ``i`` through the column function ``functions[i]`` (None: as is).

    Returns an iterator of tuples (or ``rows`` itself when no column has a function). Every row
    must have exactly ``len(functions)`` values: a ValueError says otherwise.
    """
    if not any(functions) or not rows:
        return rows
    return zip(*convert_columns(rows, functions))


def convert_columns(rows, functions):
    """The columns of the non-empty list ``rows``, column ``i`` through ``functions[i]`` (None: as is).

    For writers that lay out a chunk column by column (the streaming xlsx engine) rather than row by
    row. Every row must have exactly ``len(functions)`` values: a ValueError says otherwise.
    """
    try:
        columns = list(zip(*rows, strict=True))
    except ValueError:
        raise ValueError(f"Rows of different lengths; every row must have {len(functions)} values") from None
    if len(columns) != len(functions):
        raise ValueError(f"Rows of {len(columns)} values; every row must have {len(functions)} values")
    return [column if f is None else f(column) for f, column in zip(functions, columns)]


def local_naive(tz):
    """Converter for datetime values to naive local time in ``tz``.

    Aware datetimes are converted to ``tz``; naive ones are taken as local time already;
    a plain date (in a datetime column) is returned as it is.
    """
    tz = tz or timezone.utc

    def convert(v):
        try:
            tzinfo = v.tzinfo
        except AttributeError:  # a date in a datetime column
            return v
        if tzinfo is None:
            return v
        return v.astimezone(tz).replace(tzinfo=None)
    return convert
