"""./test.sh runs one at a time per user and machine (setup.sh's take_test_lock): its servers' ports are fixed,
and a second run from another checkout would flush the first one's Redis and stop its servers at its end."""
import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAKE = f"source '{ROOT / 'setup.sh'}'; take_test_lock; echo taken; cat \"$TEST_LOCK\"; sleep %s; release_test_lock"


def _lock(tmp_path):
    return tmp_path / f"exports-test-{os.getuid()}.pid"


def _run(tmp_path, hold_seconds=0):
    # A session of its own: killing its group by the shell's PID stops its `sleep` too.
    return subprocess.Popen(["bash", "-c", TAKE % hold_seconds], env={**os.environ, "TMPDIR": str(tmp_path)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_a_second_run_waits_for_the_first_and_goes_on_once_it_ends(tmp_path):
    first = _run(tmp_path, hold_seconds=60)
    second = None
    try:
        assert first.stdout.readline() == "taken\n"
        assert _lock(tmp_path).read_text().strip() == str(first.pid)
        second = _run(tmp_path)
        time.sleep(2.5)
        assert second.poll() is None  # still waiting
        assert _lock(tmp_path).read_text().strip() == str(first.pid)
        os.killpg(first.pid, signal.SIGKILL)  # its lock is left behind, naming a process that is gone
        first.wait(timeout=10)
        out, err = second.communicate(timeout=30)
        assert second.returncode == 0, err
        assert out.split() == ["taken", str(second.pid)]
        assert f"Another ./test.sh (PID {first.pid}) is running on this machine; waiting for it to end" in err
        assert err.count("Another ./test.sh") == 1  # said once, not every second
        assert list(tmp_path.iterdir()) == []  # released at the end, nothing left beside it
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def test_a_lock_left_by_a_run_that_is_gone_is_taken_at_once(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()
    _lock(tmp_path).write_text(f"{gone.pid}\n")
    started = time.monotonic()
    out, err = _run(tmp_path).communicate(timeout=30)
    assert out.split()[0] == "taken" and "Another" not in err
    assert time.monotonic() - started < 10
    assert list(tmp_path.iterdir()) == []
