"""Flower shows every user's task arguments: ./run.sh never opens it with the demo login (an ordinary
member). Without FLOWER_BASIC_AUTH it makes a random password of its own, kept in .run/ for this user
only. (.ci/smoke-run checks the running Flower: 401 with the demo login, 200 with the printed one.)"""
import os
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def flower_basic_auth(password_file, **env):
    """What setup.sh's flower_basic_auth answers, with `env` on top of an environment without FLOWER_*."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("FLOWER_")}
    result = subprocess.run(
        ["bash", "-c", f"set -euo pipefail; source '{ROOT / 'setup.sh'}'; flower_basic_auth \"$1\"", "-",
         str(password_file)], env={**base, **env}, capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.strip()


def test_without_flower_basic_auth_flower_gets_a_random_password_of_its_own(tmp_path):
    password_file = tmp_path / "flower-password"
    auth = flower_basic_auth(password_file, DEMO_PASSWORD="the-demo-password")
    user, _, password = auth.partition(":")
    assert user == "flower" and "the-demo-password" not in auth
    assert len(password) >= 32 and password == password_file.read_text()
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert flower_basic_auth(password_file) == auth  # the same between runs
    other = tmp_path / "other"
    assert flower_basic_auth(other) != auth  # random


def test_flower_basic_auth_wins_when_set(tmp_path):
    assert flower_basic_auth(tmp_path / "unused", FLOWER_BASIC_AUTH="ops:s3cret,ann:pw") == "ops:s3cret,ann:pw"
    assert not (tmp_path / "unused").exists()


def test_run_sh_takes_flowers_login_from_flower_basic_auth_never_from_the_demo_login():
    run_sh = (ROOT / "run.sh").read_text()
    assert 'FLOWER_AUTH="$(flower_basic_auth "$STATE/flower-password")"' in run_sh
    assert "demo-password" not in run_sh
