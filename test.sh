#!/usr/bin/env bash
# Runs the whole test suite against real services, in two passes:
#   1. SQLite: every test, the browser tests (Debian's Chromium driven by Playwright) included;
#   2. PostgreSQL: every test but the browser ones, on the server at TEST_DATABASE_URL if given, else on
#      a private cluster of Debian's PostgreSQL started here (port TEST_POSTGRES_PORT, default 5440) and
#      stopped at the end.
# Both use a private Redis (started here, on its own port) and a Celery worker process started by the
# tests. TEST_DATABASES=sqlite (or postgres) runs one pass only. Extra arguments go to pytest in both
# passes, e.g. ./test.sh -k serial -x
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

PASSES=() databases="${TEST_DATABASES:-sqlite,postgres}"
for pass in ${databases//,/ }; do
  case "$pass" in
    sqlite) PASSES+=(sqlite) ;;
    postgres | postgresql) PASSES+=(postgres) ;;
    *) echo "TEST_DATABASES: unknown database '$pass'; use sqlite, postgres or sqlite,postgres" >&2; exit 2 ;;
  esac
done

ensure_venv requirements-test.txt
ensure_chromium
ensure_axe_core
ensure_libreoffice
umask 077   # logs, test files and the PostgreSQL password are for this user only
# A Redis of the tests' own, flushed at the start of every pass: never point this at real data.
export REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6390/0}"
SUMMARY=() FAILED=0 RAN=0
summary() {
  [ "${#SUMMARY[@]}" -gt 0 ] || return 0
  printf '\n===== ./test.sh summary =====\n'
  printf '%s\n' "${SUMMARY[@]}"
}
cleanup() { stop_started_postgres; stop_started_redis; summary; }
trap cleanup EXIT
ensure_redis "$REDIS_URL"

# Production settings (DEBUG=false), served over plain http: no https redirect or https-only cookies.
export SECRET_KEY="test-only-secret-key" DEBUG=false USE_CELERY=true HTTPS_ONLY=false
export MEDIA_ROOT="$STATE/test-media"   # shared by the test process and the test worker

run_pass() {  # run_pass LABEL DATABASE_URL PYTEST_ARGS...: one pytest session; an empty URL means SQLite
  local label="$1" url="$2" started=$SECONDS status=0
  shift 2
  printf '\n===== ./test.sh: %s pass =====\n\n' "$label"
  rm -rf "$MEDIA_ROOT"
  if [ -z "$url" ]; then
    env -u DATABASE_URL "$VENV/bin/python" -m pytest "$@" || status=$?
  else
    DATABASE_URL="$url" "$VENV/bin/python" -m pytest "$@" || status=$?
  fi
  local took="in $((SECONDS - started)) s"
  case "$status" in
    0) SUMMARY+=("$label: passed $took"); RAN=1 ;;
    5) SUMMARY+=("$label: no test selected $took") ;;
    *) SUMMARY+=("$label: FAILED (pytest exit status $status) $took"); FAILED=1; RAN=1 ;;
  esac
}

for pass in "${PASSES[@]}"; do
  case "$pass" in
    sqlite) run_pass SQLite "" "$@" ;;
    postgres)
      if [ -n "${TEST_DATABASE_URL:-}" ]; then
        url="$TEST_DATABASE_URL"
      elif [ -n "${TEST_POSTGRES_PORT:-}" ]; then
        ensure_postgres "$TEST_POSTGRES_PORT"
        url="$POSTGRES_URL"
      else
        ensure_postgres 5440 --or-free-port
        url="$POSTGRES_URL"
      fi
      # The browser tests and those marked sqlite_pass are the same on both databases: they run in the
      # SQLite pass. A -m of yours wins.
      run_pass PostgreSQL "$url" -m "not browser and not sqlite_pass" "$@"
      ;;
  esac
done

[ "$FAILED" -eq 0 ] || exit 1
[ "$RAN" -eq 1 ] || exit 5
