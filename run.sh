#!/usr/bin/env bash
# Runs the service: web on http://127.0.0.1:8000, a Celery worker on every queue, and beat.
# Installs what is missing first (virtualenv, packages, Redis). Ctrl-C stops all three.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

ensure_venv requirements.txt
export DEBUG="${DEBUG:-true}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
ensure_redis "$REDIS_URL"

PY="$VENV/bin/python"
"$PY" manage.py migrate --noinput
"$PY" manage.py collectstatic --noinput -v 0
"$PY" manage.py seed_demo

cleanup() { trap - EXIT INT TERM; kill $(jobs -p) 2>/dev/null || true; wait || true; }
trap cleanup EXIT INT TERM

"$VENV/bin/celery" -A project worker -Q "$("$PY" manage.py queues)" --concurrency "${WORKER_CONCURRENCY:-2}" \
  -n "worker@%h" -l info >"$STATE/worker.log" 2>&1 &
"$VENV/bin/celery" -A project beat -l info --pidfile "$STATE/beat.pid" >"$STATE/beat.log" 2>&1 &
"$PY" manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}" &
echo "Worker log: $STATE/worker.log   Beat log: $STATE/beat.log   Ctrl-C stops everything."
wait -n  # when any of the three stops, stop the others
