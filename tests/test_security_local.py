"""The debug page hides URLs with passwords; `.run/` files are the owner's only; the demo login is an
ordinary member; docs/operations.md says how to keep Redis private."""
import io
import os
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import RequestFactory
from django.urls import reverse
from django.views.debug import technical_500_response

from exports.models import Domain

ROOT = Path(__file__).resolve().parent.parent


def debug_page(settings, request):
    settings.DEBUG = True
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        return technical_500_response(request, *sys.exc_info()).content.decode()


def test_the_debug_page_hides_urls_with_passwords(settings):
    # Made here, so that the page's source excerpts (it shows this file's lines) cannot hold them.
    db, broker, cache, env = (secrets.token_hex(8) for _ in range(4))
    settings.DATABASE_URL = f"postgres://exports:{db}@db.internal/exports"
    settings.REDIS_URL = settings.CELERY_BROKER_URL = f"redis://:{broker}@redis.internal:6379/0"
    settings.CACHES = {**settings.CACHES, "default": {**settings.CACHES["default"],
                                                      "LOCATION": f"redis://:{cache}@redis.internal/0"}}
    # runserver passes the environment in each request's META.
    page = debug_page(settings, RequestFactory().get("/exports/", REDIS_URL=f"redis://:{env}@redis.internal/0"))
    assert "boom" in page and "DATABASE_URL" in page and "REDIS_URL" in page
    for secret in (db, broker, cache, env):
        assert secret not in page


@pytest.mark.django_db
def test_the_demo_login_is_an_ordinary_member_of_the_demo_domain(client, settings, tmp_path, monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    settings.BASE_DIR = tmp_path
    old_umask = os.umask(0o022)
    try:
        call_command("seed_demo", rows=0, stdout=open(os.devnull, "w"))  # noqa: SIM115
    finally:
        os.umask(old_umask)
    password_file = tmp_path / ".run" / "demo-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    demo = get_user_model().objects.get(username="demo")
    assert not demo.is_staff and not demo.is_superuser
    demo_domain = Domain.objects.get(members=demo)
    assert client.login(username="demo", password=password_file.read_text().strip())
    assert client.get("/admin/").status_code == 302  # to the admin's login: not staff
    response = client.get("/exports/")  # a member of one domain goes straight to its page
    assert response.status_code == 302
    assert response["Location"] == reverse("exports:domain", args=[demo_domain.slug])
    assert client.get(response["Location"]).status_code == 200


def test_setup_sh_makes_run_files_the_owners_only():
    probe = ROOT / ".run" / "mode-probe-of-the-tests"
    probe.parent.mkdir(exist_ok=True)
    probe.write_text("x")
    probe.chmod(0o644)
    try:
        subprocess.run(["bash", "-c", f"source '{ROOT / 'setup.sh'}'"], check=True, timeout=60)
        assert stat.S_IMODE(probe.stat().st_mode) == 0o600
    finally:
        probe.unlink()


def test_operations_guide_says_how_to_keep_redis_private():
    security = " ".join((ROOT / "docs" / "operations.md").read_text().split("## Security", 1)[1].split())
    assert "must never be reachable by untrusted hosts" in security
    assert "rediss://" in security and "requirepass" in security
    for variable in ("HTTPS_ONLY", "SECURE_PROXY_SSL_HEADER", "CSRF_TRUSTED_ORIGINS", "API_BASIC_AUTH",
                     "LOGIN_FAILURE_RATE_PER_USERNAME", "API_RATE_PER_USER", "EXPORT_MAX_ACTIVE_RUNS_PER_USER",
                     "SAVED_EXPORTS_MAX_PER_DOMAIN"):
        assert variable in security


@pytest.mark.django_db
def test_a_restart_keeps_the_demo_password_changed_through_the_reset_flow(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    settings.BASE_DIR = tmp_path
    call_command("seed_demo", rows=0, stdout=io.StringIO())
    printed = (tmp_path / ".run" / "demo-password").read_text().strip()
    demo = get_user_model().objects.get(username="demo")
    demo.set_password("changed-through-the-reset-link")
    demo.save()

    output = io.StringIO()
    call_command("seed_demo", rows=0, stdout=output)  # what ./run.sh does at its next start

    demo.refresh_from_db()
    assert demo.check_password("changed-through-the-reset-link") and not demo.check_password(printed)
    assert printed not in output.getvalue()  # it would no longer open anything
    assert "log in as demo with the password you gave it" in output.getvalue()


@pytest.mark.django_db
def test_a_restart_prints_the_demo_password_while_it_still_works(settings, tmp_path, monkeypatch):
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)
    settings.BASE_DIR = tmp_path
    call_command("seed_demo", rows=0, stdout=io.StringIO())
    output = io.StringIO()
    call_command("seed_demo", rows=0, stdout=output)
    password = (tmp_path / ".run" / "demo-password").read_text().strip()
    assert f"log in as demo / {password}" in output.getvalue()
