"""The README's commands work as printed on a fresh clone: manage.py goes through ./run.sh manage, which
gives it run.sh's environment (.ci/smoke-run runs them on a fresh clone)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def commands_in(text):
    """Every command of a ```sh block and every `code span` that starts like a command."""
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    lines = [line.split("#")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines + re.findall(r"`([^`\n]+)`", text) if line]


def test_the_readme_runs_manage_py_only_through_run_sh_manage():
    commands = commands_in((ROOT / "README.md").read_text())
    assert "./run.sh manage createsuperuser" in commands
    assert "./run.sh manage seed_demo_rows --rows 1000000" in commands
    bare = [c for c in commands if "manage.py" in c and not c.startswith("./run.sh manage")]
    assert bare == []

