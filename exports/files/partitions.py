"""The pieces of a partitioned build: key ranges, part files in storage, typed rows, summed progress.

A big export is split into parts by ranges of its ordering key (the source's ordering, which ends
with the primary key, so that every row falls in exactly one part and the parts, taken in order,
hold the rows in the export's order). exports.runs.partitioned_builds builds the parts in parallel and
assembles them; this module holds what those steps share, and what the reaper needs to clean up.

Part files live in export storage under ``exports/parts/<run id>/<lease id>-<index><ext>``, so a
worker on another machine can read them, and the parts of one attempt can be deleted without
touching those of the next.
"""
import datetime
import decimal
import json
import logging
import time
import uuid
from functools import lru_cache

import redis
from django.db.models import Q

from exports.conf import exports_conf
from exports.files.export_file import planned_rows
from exports.files.storage import delete_quietly, export_storage
from exports.sources import get_source
from soil import progress as soil_progress

log = logging.getLogger(__name__)
PARTS_FOLDER = "exports/parts"
PROGRESS_EXPIRY = 24 * 60 * 60


# --- planning ---

def part_count(total):
    """How many parts an export of `total` rows is built in (1: built whole)."""
    threshold = exports_conf.EXPORT_PARTITION_ROWS
    if not threshold or total < threshold or exports_conf.EXPORT_PARTITIONS < 2:
        return 1
    return min(exports_conf.EXPORT_PARTITIONS, total)


def plan_parts(definition, parameters):
    """(total, ranges) of an export big enough to be built in parts (see `key_ranges`); None to build it whole."""
    queryset, _ = planned_rows(definition, parameters)
    keys = get_source(definition.source).range_keys(queryset.model)
    total = queryset.count() if keys else 0
    parts = part_count(total)
    if parts < 2:
        return None
    return total, key_ranges(queryset, keys, total, parts)


def key_fields(source_name, queryset):
    """The fields that order an export's rows, if they can split it into ranges; else None."""
    return get_source(source_name).range_keys(queryset.model)


def key_ranges(queryset, keys, total, parts):
    """[(lower, upper)] bounds that split the `total` rows of `queryset` into `parts` about equal parts.

    Bounds are lists of key values (JSON-safe, see `encode_key`); the first part has no lower
    bound and the last no upper one. Part i holds the rows with lower <= key < upper.
    """
    bounds = []
    for k in range(1, parts):
        row = queryset.values_list(*keys)[k * total // parts:k * total // parts + 1].first()
        if row is not None and (not bounds or list(row) != bounds[-1]):
            bounds.append(list(row))
    edges = [None, *[[encode_key(v) for v in row] for row in bounds], None]
    return list(zip(edges[:-1], edges[1:]))


def range_filter(model, keys, lower, upper):
    """The Q selecting lower <= (keys) < upper, compared as tuples, from encoded bounds."""
    condition = Q()
    # The plain range on the first key is implied by the tuple comparison, but databases use it
    # to read only that slice of an index (the OR of a tuple comparison hides it from SQLite).
    if lower is not None:
        values = _decode_key(model, keys, lower)
        condition &= Q(**{f"{keys[0]}__gte": values[0]}) & _tuple_compare(keys, values, "gt", "gte")
    if upper is not None:
        values = _decode_key(model, keys, upper)
        condition &= Q(**{f"{keys[0]}__lte": values[0]}) & _tuple_compare(keys, values, "lt", "lt")
    return condition


def _tuple_compare(keys, values, strict, last):
    """(k1, k2, …) compared with (v1, v2, …): k1 strict v1, or k1 == v1 and the rest compared."""
    condition = Q(**{f"{keys[-1]}__{last}": values[-1]})
    for key, value in zip(reversed(keys[:-1]), reversed(values[:-1])):
        condition = Q(**{f"{key}__{strict}": value}) | (Q(**{key: value}) & condition)
    return condition


def encode_key(value):
    """A key value as JSON can carry it exactly (datetimes with their microseconds)."""
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    return value


def _decode_key(model, keys, values):
    fields = {field.attname: field for field in model._meta.concrete_fields}
    return [fields[key].to_python(value) for key, value in zip(keys, values)]


# --- part files ---

def part_key(run_id, lease_id, index, extension):
    return f"{PARTS_FOLDER}/{run_id}/{lease_id}-{index:04d}{extension}"


def delete_parts(run_id, lease_id=None):
    """Delete the part files of one attempt (or of every attempt) of a run; returns how many."""
    storage = export_storage()
    folder = f"{PARTS_FOLDER}/{run_id}"
    try:
        names = storage.listdir(folder)[1]
    except FileNotFoundError:
        return 0
    except Exception:  # noqa: BLE001 (storage unreachable: the parts stay until the next sweep)
        log.warning("Could not list the parts of export run %s", run_id, exc_info=True)
        return 0
    doomed = [name for name in names if lease_id is None or name.startswith(f"{lease_id}-")]
    for name in doomed:
        delete_quietly(f"{folder}/{name}")
    return len(doomed)


# --- typed rows: the part format of xlsx and zipped csv exports ---

_TAGS = {"$dt": datetime.datetime.fromisoformat, "$d": datetime.date.fromisoformat,
         "$t": datetime.time.fromisoformat, "$dec": decimal.Decimal, "$uuid": uuid.UUID}


def _encode_value(value):
    if isinstance(value, datetime.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$d": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"$t": value.isoformat()}
    if isinstance(value, decimal.Decimal):
        return {"$dec": str(value)}
    if isinstance(value, uuid.UUID):
        return {"$uuid": str(value)}
    raise TypeError(f"An export value of type {type(value).__name__} cannot be kept in a part file")


def _decode_value(mapping):
    (tag, text), = mapping.items()
    return _TAGS[tag](text)


class TypedRowsWriter:
    """Rows exactly as the database gave them, one JSON line per chunk, for a part to be assembled later.

    Dates, datetimes (naive or aware), decimals and UUIDs are tagged so that `read_typed_rows` gives
    back equal values of the same types; the final writer then converts them as it would have.
    The interface is the part of exports.writers' that exports.files.export_file uses.
    """

    file_extension = ".jsonl"

    def __init__(self, path, headers, types, tz=None, name=None):  # name: a zip member's, unused here
        self.path = path
        self.rows_written = 0
        self._file = open(path, "w", encoding="utf-8")  # noqa: SIM115 (closed by close/abort)
        self._encoder = json.JSONEncoder(default=_encode_value, ensure_ascii=False, separators=(",", ":"))

    def write_rows(self, rows):
        rows = list(rows)
        self._file.write(self._encoder.encode(rows))
        self._file.write("\n")
        self.rows_written += len(rows)
        return len(rows)

    def close(self):
        self._file.close()

    def abort(self):
        self._file.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close() if exc_type is None else self.abort()
        return False


def read_typed_rows(binary_file):
    """The chunks (lists of rows) a TypedRowsWriter wrote, from a binary file object."""
    decoder = json.JSONDecoder(object_hook=_decode_value)
    for line in binary_file:
        if line.strip():
            yield decoder.decode(line.decode("utf-8"))


# --- progress: the sum of the parts, on the run's own soil record ---

class PartProgress:
    """Reports one part's rows; the run's soil record shows the sum over the parts of its attempt.

    Each part keeps its count in a Redis hash of the attempt; after a change of the part's own
    percentage it writes the sum to the run's task record, which the run page reads. Progress is
    advice: when Redis cannot be reached the report is dropped and the build goes on.
    """

    def __init__(self, run, lease_id, index, total, message_format):
        self.task_id = run.task_id
        self.key = f"exports:parts:{run.pk}:{lease_id}"
        self.field = str(index)
        self.total, self.message_format = total, message_format
        self.started_at = run.started_at.timestamp() if run.started_at else time.time()
        self._last_step = None

    def __call__(self, current, part_total):
        step = 100 * current // part_total if part_total else 100
        if step != self._last_step:
            self._last_step = step
            self.report(current)

    def report(self, current):
        try:
            pipe = counts_client().pipeline()
            pipe.hset(self.key, self.field, current)
            pipe.expire(self.key, PROGRESS_EXPIRY)
            pipe.hvals(self.key)
            done = sum(int(value) for value in pipe.execute()[-1])
            store_progress(self.task_id, done, self.total, self.message_format, self.started_at)
        except Exception:  # noqa: BLE001 (progress is advice)
            log.warning("Progress of a part of task %s not recorded", self.task_id, exc_info=True)


def store_progress(task_id, current, total, message_format, started_at):
    """Write soil's progress record for `task_id` (the run's task, which may have ended)."""
    soil_progress.store_progress(task_id, current, total, message_format.format(current=current, total=total),
                                 started_at=started_at)


@lru_cache(maxsize=4)
def _redis(url):
    return redis.Redis.from_url(url)


def counts_client():
    """The Redis that holds the parts' row counts: the project's (REDIS_URL)."""
    return _redis(exports_conf.REDIS_URL)
