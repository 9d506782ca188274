"""The shared value converter: one generated function per row, applying each column's conversion.

Every writer turns its column types into one function ``convert(row) -> tuple`` (or, for the
streaming xlsx engine, ``-> str``) that touches only the columns that need it. The common cases
are inline expressions and the rare ones a call, so a row costs one Python call and no loop;
``exports.files.export_file`` adds its own database-value conversion to the same function
(``ExportWriter.set_source_expressions``). Measured: the csv export went from 2.7x to 1.8x
bare ``csv.writer`` with this and ``exports.files.rows`` (docs/performance.md).
"""
from datetime import timezone

__all__ = ["build_converter", "local_naive"]


def build_converter(converters, sources=None, source_names=None, none="None", join=None):
    """One function ``convert(row, n=None)`` applying ``converters`` column by column.

    ``converters`` has one entry per column: None (value copied as is), a callable
    ``f(value)``, an expression string using ``v``, or a pair ``(expression, names)`` whose
    expression may also use the objects in the dict ``names`` (shared by all columns: one
    name must always mean the same object, and must not be ``r``, ``n``, ``v`` or ``f<digits>``).
    A None value is never passed to a converter: it becomes the expression ``none``.

    ``sources``: one expression per column computing its value from the raw row ``r`` (None:
    ``r[i]``), evaluated before the column's converter; ``source_names``: the objects those
    expressions use. ``join``: a pair ``(prefix, suffix)``; the function then returns
    ``prefix + "".join(values) + suffix`` instead of a tuple (the xlsx streaming engine's row
    of XML). Returns None when nothing needs converting and ``join`` is not given.

    Only column indexes and fixed templates go into the generated source, never data.
    """
    sources = [None] * len(converters) if sources is None else list(sources)
    if len(sources) != len(converters):
        raise ValueError(f"{len(sources)} source expressions for {len(converters)} columns")
    if join is None and all(c is None for c in converters) and all(src is None for src in sources):
        return None
    namespace = dict(source_names or {})
    items = []
    for i, (conv, src) in enumerate(zip(converters, sources)):
        src = f"r[{i}]" if src is None else f"({src})"
        if conv is None:
            items.append(src)
            continue
        if callable(conv):
            namespace[f"f{i}"] = conv
            expr = f"f{i}(v)"
        elif isinstance(conv, tuple):
            expr, names = conv
            for name, value in names.items():
                if namespace.setdefault(name, value) is not value:
                    raise ValueError(f"Converter name {name!r} is bound to two different objects")
            expr = f"({expr})"
        else:
            expr = f"({conv})"
        items.append(f"({none} if (v := {src}) is None else {expr})")
    if join is None:
        body = f"({', '.join(items)},)"
    else:
        namespace["join_prefix"], namespace["join_suffix"] = join
        body = f"join_prefix + ''.join(({', '.join(items)},)) + join_suffix"
    source = f"def convert(r, n=None):\n    return {body}\n"
    exec(compile(source, "<export row converter>", "exec"), namespace)  # noqa: S102
    return namespace["convert"]


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
