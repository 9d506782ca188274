#!/usr/bin/env bash
# Runs the whole test suite against real services: a private Redis (started here, on its own port),
# a Celery worker process (started by the tests), SQLite, and Debian's Chromium driven by Playwright.
# Extra arguments go to pytest, e.g. ./test.sh -k serial -x
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

ensure_venv requirements-test.txt
ensure_chromium
# A Redis of the tests' own, flushed at the start of every run: never point this at real data.
export REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6390/0}"
ensure_redis "$REDIS_URL"
trap stop_started_redis EXIT

export SECRET_KEY="test-only-secret-key" DEBUG=false USE_CELERY=true
export MEDIA_ROOT="$STATE/test-media"   # shared by the test process and the test worker
rm -rf "$MEDIA_ROOT"
"$VENV/bin/python" -m pytest "$@"
