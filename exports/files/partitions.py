"""The pieces of a partitioned build: key ranges, part files in storage, the bar across its phases.

A big export is split into parts by ranges of its ordering key (the source's ordering, which ends
with the primary key, so that every row falls in exactly one part and the parts, taken in order,
hold the rows in the export's order). exports.runs.partitioned_builds builds the parts in parallel and
assembles them; this module holds what those steps share, and what the reaper needs to clean up.

Only formats whose parts are joined by copying bytes are split (csv: files laid end to end; xlsx:
deflated sheet rows, exports.writers.xlsx_parts): a join that renders rows again costs more than the
parts save (docs/performance.md).

Part files live in export storage under ``exports/parts/<run id>/<lease id>-<index><ext>``, so a
worker on another machine can read them, and the parts of one attempt can be deleted without
touching those of the next.
"""
import datetime
import decimal
import logging
import time
import uuid
from functools import lru_cache
from typing import NamedTuple

import redis
from django.db.models import Q
from redis.exceptions import LockError

from exports.conf import exports_conf
from exports.files.export_file import planned_rows
from exports.files.storage import delete_quietly, export_storage
from exports.sources import get_source
from soil import progress as soil_progress

log = logging.getLogger(__name__)
PARTS_FOLDER = "exports/parts"
PROGRESS_EXPIRY = 24 * 60 * 60
WRITE_LOCK_SECONDS = 5.0
REPORT_SECONDS = 0.2  # a part's reports cost a Redis script and a write each: a few per second is smooth enough


# --- planning ---

#: The formats built in parts, and their weight of each phase: the share of a partitioned build's
#: time that reading and writing the parts, joining them and storing the file take (measured on
#: 1M rows with 2 worker processes, docs/performance.md). The bar moves through the phases by them.
PHASES = {
    "csv": {"parts": 0.93, "assembly": 0.04, "upload": 0.03},
    "xlsx": {"parts": 0.96, "assembly": 0.03, "upload": 0.01},
}


class Plan(NamedTuple):
    total: int
    ranges: list  # [(lower, upper)], see key_ranges
    first_rows: list  # how many rows come before each range's first

    @property
    def part_rows(self):
        """How many rows each range holds, as counted when the rows were split."""
        return [end - start for start, end in zip(self.first_rows, [*self.first_rows[1:], self.total])]


def splits(format_name):
    """Whether an export of this format is built in parts when it is big (see PHASES)."""
    if format_name == "xlsx":
        return exports_conf.EXPORT_XLSX_ENGINE == "streaming"  # the parts are that engine's sheet XML
    return format_name in PHASES


def part_count(total, format_name="csv"):
    """How many parts an export of `total` rows is built in (1: built whole)."""
    threshold = exports_conf.EXPORT_PARTITION_ROWS
    if not threshold or total < threshold or exports_conf.EXPORT_PARTITIONS < 2 or not splits(format_name):
        return 1
    return min(exports_conf.EXPORT_PARTITIONS, total)


def plan_parts(definition, parameters):
    """The Plan of an export big enough to be built in parts (see `key_ranges`); None to build it whole."""
    if not splits(parameters["format"]):
        return None
    queryset, _ = planned_rows(definition, parameters)
    keys = get_source(definition.source).range_keys(queryset.model)
    total = queryset.count() if keys else 0
    parts = part_count(total, parameters["format"])
    if parts < 2:
        return None
    cuts = _cuts(queryset, keys, total, parts)
    return Plan(total, _ranges(cuts), [0, *[offset for offset, _ in cuts]])


def key_fields(source_name, queryset):
    """The fields that order an export's rows, if they can split it into ranges; else None."""
    return get_source(source_name).range_keys(queryset.model)


def key_ranges(queryset, keys, total, parts):
    """[(lower, upper)] bounds that split the `total` rows of `queryset` into `parts` about equal parts.

    Bounds are lists of key values (JSON-safe, see `encode_key`): all the keys, or the first key alone
    where the part begins with the first row of its first key's value; the first part has no lower
    bound and the last no upper one. Part i holds the rows with lower <= key < upper, compared as
    tuples of as many keys as the bound has.
    """
    return _ranges(_cuts(queryset, keys, total, parts))


def _cuts(queryset, keys, total, parts):
    """[(offset, bound)]: where each part after the first starts, as a row count and as the values of its
    keys (the first key's alone where that is enough, see `_first_key_cut`).

    Each cut is looked for from the one before (an OFFSET within the rows from that cut on), so that
    the database skips each part's rows once, not every part's before it: N parts cost a scan of the
    rows, not N ÷ 2 of them.
    """
    cuts = []
    for k in range(1, parts):
        offset = k * total // parts
        rows, skip = queryset, offset
        previous_offset = cuts[-1][0] if cuts else 0
        if cuts:
            lower = [encode_key(v) for v in cuts[-1][1]]
            rows, skip = queryset.filter(range_filter(queryset.model, keys, lower, None)), offset - previous_offset
        row = rows.values_list(*keys)[skip:skip + 1].first()
        if row is not None and (not cuts or list(row) != cuts[-1][1]):
            cuts.append(_first_key_cut(queryset, keys, offset, list(row), previous_offset))
    return cuts


def _first_key_cut(queryset, keys, offset, row, previous_offset):
    """The cut at `row` moved back to the first row with its first key's value, bounded by that value
    alone, unless that would reach the part before: then the cut as it is, bounded by all the keys.

    A bound on the first key alone is read as a plain range of an index; one on all the keys makes
    the database compare tuples on every row of the part (SQLite: 6 % more CPU to read a part).
    """
    if len(keys) == 1:
        return offset, row
    # The rows of the same first key ahead of `row` (values as the database gave them): a few entries
    # of an index, equal then less than.
    before = queryset.filter(Q(**{keys[0]: row[0]}) & _tuple_compare(keys[1:], row[1:], "lt", "lt")).count()
    if offset - before > previous_offset:
        return offset - before, row[:1]
    return offset, row


def _ranges(cuts):
    edges = [None, *[[encode_key(v) for v in row] for _, row in cuts], None]
    return list(zip(edges[:-1], edges[1:]))


def rows_before(queryset, keys, lower):
    """How many rows of `queryset` come before the encoded bound `lower` (0 for the first part)."""
    if lower is None:
        return 0
    return queryset.filter(range_filter(queryset.model, keys, None, lower)).count()


def range_filter(model, keys, lower, upper):
    """The Q selecting lower <= (keys) < upper, compared as tuples of as many keys as each bound has,
    from encoded bounds."""
    condition = Q()
    # The plain range on the first key is implied by the tuple comparison, but databases use it
    # to read only that slice of an index (the OR of a tuple comparison hides it from SQLite).
    if lower is not None:
        values = _decode_key(model, keys, lower)
        condition &= Q(**{f"{keys[0]}__gte": values[0]})
        if len(values) > 1:
            condition &= _tuple_compare(keys[:len(values)], values, "gt", "gte")
    if upper is not None:
        values = _decode_key(model, keys, upper)
        if len(values) > 1:
            condition &= Q(**{f"{keys[0]}__lte": values[0]}) & _tuple_compare(keys[:len(values)], values, "lt", "lt")
        else:
            condition &= Q(**{f"{keys[0]}__lt": values[0]})
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


# --- the bar: one forward-only progress across the phases, on the run's own soil record ---

# One report: the part's rows (never fewer than it reported before: a part built again by another
# delivery does not pull the sum back), the sum over the phase's parts, and the bar's value in
# row units, kept if it is higher than any before it for the run (forward only, whatever the order
# of the reports of several processes).
_REPORT = """
local rows = tonumber(ARGV[2])
if rows > tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1') then redis.call('HSET', KEYS[1], ARGV[1], rows) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
local done = 0
for _, value in ipairs(redis.call('HVALS', KEYS[1])) do done = done + tonumber(value) end
local units = math.floor(tonumber(ARGV[4]) + tonumber(ARGV[5]) * done)
local bar = tonumber(redis.call('GET', KEYS[2]) or '0')
if units > bar then bar = units end
redis.call('SET', KEYS[2], bar, 'EX', ARGV[3])
local first = redis.call('GET', KEYS[3])
if not first and ARGV[7] == '1' then
  first = ARGV[6]
  redis.call('SET', KEYS[3], first, 'EX', ARGV[3])
end
return {done, bar, first or ''}
"""


def phase_span(format_name, phase):
    """(start, weight): where `phase` starts on the bar and its share of it, as fractions of the whole."""
    weights = PHASES.get(format_name, PHASES["csv"])
    order = list(weights)
    return sum(weights[name] for name in order[:order.index(phase)]), weights[phase]


class PartProgress:
    """Reports one part's rows (or the assembly's, or the upload's) on the run's one bar.

    The run's soil record counts rows of work: `current` of `total`, where the parts' rows read fill
    the parts' share of the bar and the assembly's and the upload's theirs (`PHASES`), so the bar
    and its ETA move at the pace of the whole build and never back. The message counts real rows.
    Each part keeps its count in a Redis hash of the attempt's phase; the run's bar is the highest
    value written for it. Progress is advice: when Redis cannot be reached the report is dropped.

    The ETA counts from when the attempt's first part began reading rows, not from the run's start:
    planning and handing the parts over read none, and a rate that counted them made the first ETAs of a
    5 s build 11–15 s.
    """

    def __init__(self, run, lease_id, index, total, message_format, phase="parts"):
        self.task_id = run.task_id
        self.key = f"exports:parts:{run.pk}:{lease_id}" if phase == "parts" else f"exports:{phase}:{run.pk}:{lease_id}"
        self.bar_key = bar_key(run.pk)
        self.reading_key = f"exports:reading-since:{run.pk}:{lease_id}"
        self.field = str(index)
        self.total, self.message_format = total, message_format
        self.span = phase_span(run.parameters.get("format", "csv"), phase)
        self.started_at = run.started_at.timestamp() if run.started_at else time.time()
        self._last_step, self._last_report = None, 0.0

    def __call__(self, current, part_total):
        """Report when the part's own percentage changed, at most every REPORT_SECONDS but for the last."""
        step = 100 * current // part_total if part_total else 100
        now = time.monotonic()
        if step != self._last_step and (step == 100 or now - self._last_report >= REPORT_SECONDS):
            self._last_step, self._last_report = step, now
            self.report(current, reading=True)

    def report(self, current, reading=False):
        """Count `current` rows and write the bar; `reading`: from the work itself (a part reading its rows),
        not a phase's first report."""
        try:
            done, _, reading_since = self.bar(current, reading)
            started_at = reading_since or self.started_at
            # One writer at a time, writing the bar as it is then: the record only grows, even when
            # one process's write would otherwise land after a later one's.
            # Until the bar stops moving under it, so that a report that gave up waiting is written too.
            client = counts_client()
            written = None
            with client.lock(f"{self.bar_key}:write", timeout=WRITE_LOCK_SECONDS, sleep=0.005,
                             blocking_timeout=WRITE_LOCK_SECONDS):
                while (units := min(int(client.get(self.bar_key) or 0), self.total)) != written:
                    soil_progress.store_progress(self.task_id, units, self.total,
                                                 self.message_format.format(current=done, total=self.total),
                                                 started_at=started_at)
                    written = units
        except LockError:  # another process was writing for a while: it writes this report's bar too
            log.info("Progress of a part of task %s skipped: another report held the bar", self.task_id)
        except Exception:  # noqa: BLE001 (progress is advice)
            log.warning("Progress of a part of task %s not recorded", self.task_id, exc_info=True)

    def bar(self, current, reading=False):
        """(rows done in this phase, the bar's value in row units, since when the attempt's parts read rows:
        Unix seconds, None before) once `current` is counted."""
        start, weight = self.span
        done, units, reading_since = _report_script(exports_conf.REDIS_URL)(
            keys=[self.key, self.bar_key, self.reading_key],
            args=[self.field, int(current), PROGRESS_EXPIRY, start * self.total, weight, repr(time.time()),
                  int(reading)])
        return int(done), min(int(units), self.total), float(reading_since) if reading_since else None


def bar_key(run_id):
    return f"exports:bar:{run_id}"


def store_progress(task_id, current, total, message_format, started_at):
    """Write soil's progress record for `task_id` (the run's task, which may have ended)."""
    soil_progress.store_progress(task_id, current, total, message_format.format(current=current, total=total),
                                 started_at=started_at)


@lru_cache(maxsize=4)
def _redis(url):
    return redis.Redis.from_url(url)


@lru_cache(maxsize=4)
def _report_script(url):
    return _redis(url).register_script(_REPORT)


def counts_client():
    """The Redis that holds the parts' row counts: the project's (REDIS_URL)."""
    return _redis(exports_conf.REDIS_URL)
