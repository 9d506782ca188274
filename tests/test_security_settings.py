"""Production settings come from the environment; `check --deploy` is clean in the documented one."""
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = ROOT / "docs" / "operations.md"


def documented_production_environment():
    """The variables in the first sh block under "### Production environment" in docs/operations.md."""
    text = OPERATIONS.read_text()
    section = text.split("### Production environment", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    env = {}
    for line in block.splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = secrets.token_urlsafe(50) if value.startswith("<") else value
    return env


def manage(env, *args):
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("SECURE_", "SESSION_", "CSRF_", "HTTPS_", "DEBUG", "ALLOWED_HOSTS"))
             and key != "DJANGO_ALLOW_ASYNC_UNSAFE"}  # set by conftest for Playwright, never in production
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_check_deploy_prints_no_warning_in_the_documented_production_environment():
    env = documented_production_environment()
    assert env["DEBUG"] == "false"
    result = manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stderr + result.stdout
    assert "no issues" in result.stdout


def test_production_defaults_turn_https_on_and_trust_the_proxy_header():
    env = documented_production_environment()
    script = ("from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, s.SESSION_COOKIE_SECURE, "
              "s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, s.SECURE_PROXY_SSL_HEADER, s.CSRF_TRUSTED_ORIGINS)")
    result = manage(env, "shell", "--no-imports", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "True True True 31536000 ('HTTP_X_FORWARDED_PROTO', 'https') ['https://exports.example.org']")
    # Each can be turned off from the environment, as the tests and plain-http set-ups do.
    result = manage({**env, "HTTPS_ONLY": "false"}, "shell", "--no-imports", "-c", script)
    assert result.stdout.strip() == "False False False 0 None ['https://exports.example.org']"


def test_behind_a_tls_proxy_password_reset_links_say_https(client, make_user, settings, mailoutbox):
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    make_user("alice", email="alice@example.com")
    response = client.post("/accounts/password_reset/", {"email": "alice@example.com"},
                           HTTP_X_FORWARDED_PROTO="https", SERVER_PORT="443")
    assert response.status_code == 302
    assert "https://testserver/accounts/reset/" in mailoutbox[0].body
