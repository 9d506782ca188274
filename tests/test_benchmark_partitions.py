"""The partition benchmark's judgement: the bar's steps back and its ETA, the phases read from a worker's log."""
import io

from exports.management.commands.benchmark_partitions import Command
from exports.runs.partitioned_builds import ASSEMBLY_LOG, PART_LOG, PLAN_LOG

# The worker's own log lines (exports/runs/partitioned_builds.py).
PART = PART_LOG.replace("part %d", "part {i}") % (7, 250_000, 3.1, 3.0, 11_300_000, 0.02)
JOIN = ASSEMBLY_LOG % (7, 1_000_000, 45_200_000, 0.1, 0.08, 0.06)
PLAN = PLAN_LOG % (7, 1_000_000, 4, 0.3)


def judged(method, *args):
    command = Command(stdout=io.StringIO())
    getattr(command, method)(*args)
    return command.stdout.getvalue()


def test_a_bar_that_steps_back_or_an_eta_far_off_fails():
    # (seconds since the start, percent, ETA shown, seconds actually left) of a 10-second run
    steady = [(t, t * 10, 10 - t, 10 - t) for t in range(1, 10)]
    out = judged("_report_bar", [steady])
    assert "PASS: the bar of parts/2 never moved back" in out and "PASS: after 10 % of the run" in out
    back = [*steady[:5], (5.5, 40, 5, 4.5), *steady[5:]]
    assert "FAIL: the bar of parts/2 never moved back (10 samples, 1 steps back)" in judged("_report_bar", [back])
    wrong = [(t, t * 10, 3 * (10 - t) + 2, 10 - t) for t in range(1, 10)]
    assert "FAIL: after 10 % of the run" in judged("_report_bar", [wrong])
    early = [(0.5, 5, 100, 9.5), *steady]  # before 10 % of the run the ETA is not judged
    assert "PASS: after 10 % of the run the ETA was within 2× (± 1 s) of the time left in 9 of 9" in judged(
        "_report_bar", [early])


def test_the_phases_are_read_from_the_workers_log_and_predict_10_million_rows():
    log = "\n".join([PLAN, *[PART.format(i=i) for i in range(4)], JOIN])
    out = judged("_report_phases", [log], 1_000_000, {"parts/1": [13.0], "parts/2": [7.0]})
    assert "a part, per row: 12.00 µs CPU" in out and "the assembly, per row: 0.10 µs (range" in out
    assert "(45.2 bytes per row)" in out and "storing files: 565.00 MB/s" in out
    # 10 M × (0.3 planning + (12 + 0.08 storing) ÷ N + 0.1 assembly + 0.08 storing) µs
    assert "model, 10,000,000 rows on N worker processes: 1: 125.6 s; 2: 65.2 s; 4: 35.0 s; 16: 12.4 s" in out
