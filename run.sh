#!/usr/bin/env bash
# Runs the service: web on http://127.0.0.1:8000, a Celery worker on every queue, and beat.
# Installs what is missing first (virtualenv, packages, Redis). If one of the three stops, says which,
# shows the end of its log, stops the others and exits non-zero. Ctrl-C stops all three (exit 130).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

ensure_venv requirements.txt
umask 077   # logs, pid files, the demo password and Redis's data are for this user only
export DEBUG="${DEBUG:-true}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
STOP_TIMEOUT="${RUN_STOP_TIMEOUT:-15}"   # seconds the worker may take to finish its tasks at Ctrl-C
LOG_LINES=40

declare -A SERVICE=()   # pid -> web, worker or beat, while it runs
GROUPS_STARTED=()       # every service's pid, which is also its process group's id
any_alive() { local pid; for pid in "${!SERVICE[@]}"; do pid_alive "$pid" && return 0; done; return 1; }
STOPPED=""
stop_everything() {  # TERM each service, KILL what is left after STOP_TIMEOUT (or a second Ctrl-C)
  [ -z "$STOPPED" ] || return 0
  STOPPED=1
  local pid force="" deadline=$((SECONDS + STOP_TIMEOUT))
  trap 'force=1' INT TERM
  if [ "${#SERVICE[@]}" -gt 0 ]; then
    echo "Stopping ${SERVICE[*]} (up to $STOP_TIMEOUT s; Ctrl-C again to stop at once)" >&2
    for pid in "${!SERVICE[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    while any_alive && [ -z "$force" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  fi
  # Each service leads a process group of its own: this ends the children any of them left behind,
  # the pool processes of a worker that died included.
  for pid in "${GROUPS_STARTED[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_started_redis
  rm -f "$STATE/run.pids"
}
trap 'stop_everything; exit 130' INT
trap 'stop_everything; exit 143' TERM
trap 'stop_everything; exit 129' HUP
trap stop_everything EXIT

ensure_redis "$REDIS_URL" --appendonly
PY="$VENV/bin/python"
"$PY" manage.py migrate --noinput
"$PY" manage.py collectstatic --noinput -v 0
"$PY" manage.py seed_demo

start() {  # start NAME COMMAND...: in a session of its own (Ctrl-C reaches run.sh only), log in .run/NAME.log
  local name="$1"
  shift
  : >"$STATE/$name.log"
  if [ "$name" = web ]; then  # the web log also goes to the terminal, as runserver's output always did
    setsid "$@" </dev/null > >(tee -a "$STATE/$name.log") 2>&1 &
  else
    setsid "$@" </dev/null >>"$STATE/$name.log" 2>&1 &
  fi
  SERVICE[$!]="$name"
  GROUPS_STARTED+=("$!")
  echo "$name $!" >>"$STATE/run.pids"
}
rm -f "$STATE/run.pids"
start worker "$PY" -m celery -A project worker -Q "$("$PY" manage.py queues)" \
  --concurrency "${WORKER_CONCURRENCY:-2}" -n "worker@%h" -l info
start beat "$PY" -m celery -A project beat -l info --pidfile "$STATE/beat.pid"
start web "$PY" manage.py runserver "${HOST:-127.0.0.1}:${PORT:-8000}"
echo "Worker log: .run/worker.log   Beat log: .run/beat.log   Web log: .run/web.log   Ctrl-C stops everything."

# When any of the three stops, say which and why, and stop the others.
died="" status=0
wait -n -p died "${!SERVICE[@]}" || status=$?
name="${SERVICE[$died]:-a service}"
[ -z "$died" ] || unset "SERVICE[$died]"
{
  echo
  echo "run.sh: $name (pid $died) stopped with exit status $status. The last $LOG_LINES lines of .run/$name.log:"
  tail -n "$LOG_LINES" "$STATE/$name.log" | sed 's/^/    /'
  echo "run.sh: stopping the others."
} >&2
[ "$status" -ne 0 ] || status=1
exit "$status"
