#!/usr/bin/env bash
# Runs the service: web on http://127.0.0.1:8000, two Celery workers (the interactive and the batch queue
# group), beat, and Flower on http://127.0.0.1:5555 (FLOWER_PORT; Basic auth FLOWER_BASIC_AUTH=user:password,
# else user "flower" with a random password kept in .run/flower-password, never the demo login). Installs
# what is missing first (virtualenv, packages, Redis; RabbitMQ with BROKER=rabbitmq); ends its start-up output with the URL and the logins
# in a box. If one of them stops, says which, shows the end of
# its log, stops the others and exits non-zero. Ctrl-C stops all (exit 130).
#
#   ./run.sh manage COMMAND [ARGS...]   runs manage.py COMMAND in the same environment (installing what is
#                                       missing, the database migrated first), e.g. ./run.sh manage createsuperuser
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

ensure_venv requirements.txt
umask 077   # logs, pid files, the demo password and Redis's data are for this user only
export DEBUG="${DEBUG:-true}"
export REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379/0}"
# BROKER=rabbitmq: the Celery broker is RabbitMQ (a private node on RABBITMQ_PORT, default 5673, started
# here when none answers; its management plugin on RABBITMQ_MANAGEMENT_PORT, default 15673, for Flower),
# unless CELERY_BROKER_URL names one. Results, progress and the cache stay on Redis.
BROKER="${BROKER:-redis}"
case "$BROKER" in
  redis) ;;
  rabbitmq)
    RABBITMQ_PORT="${RABBITMQ_PORT:-5673}" RABBITMQ_MANAGEMENT_PORT="${RABBITMQ_MANAGEMENT_PORT:-15673}"
    export CELERY_BROKER_URL="${CELERY_BROKER_URL:-amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT//}"
    ;;
  *) echo "BROKER: use redis (the default) or rabbitmq, not '$BROKER'" >&2; exit 2 ;;
esac
STOP_TIMEOUT="${RUN_STOP_TIMEOUT:-15}"   # seconds the worker may take to finish its tasks at Ctrl-C
LOG_LINES=40

if [ "${1:-}" = manage ]; then
  shift
  [ "$#" -gt 0 ] || { echo "usage: ./run.sh manage COMMAND [ARGS...], e.g. ./run.sh manage createsuperuser" >&2; exit 2; }
  "$VENV/bin/python" manage.py migrate --noinput -v 0
  exec "$VENV/bin/python" manage.py "$@"
fi

declare -A SERVICE=()   # pid -> web, worker-interactive, worker-batch, beat or flower, while it runs
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
  stop_started_rabbitmq
  stop_started_redis
  rm -f "$STATE/run.pids"
}
trap 'stop_everything; exit 130' INT
trap 'stop_everything; exit 143' TERM
trap 'stop_everything; exit 129' HUP
trap stop_everything EXIT

ensure_redis "$REDIS_URL" --appendonly
flower_broker=()
if [ "$BROKER" = rabbitmq ]; then
  if [ "$CELERY_BROKER_URL" = "amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT//" ]; then
    ensure_rabbitmq "$RABBITMQ_PORT" "$RABBITMQ_MANAGEMENT_PORT"
    # Flower reads queue lengths from RabbitMQ's management API.
    flower_broker=(--broker_api="http://guest:guest@127.0.0.1:$RABBITMQ_MANAGEMENT_PORT/api/")
  fi
fi
PY="$VENV/bin/python"
echo "Migrating the database"
"$PY" manage.py migrate --noinput -v 0
"$PY" manage.py collectstatic --noinput -v 0
LOGIN="$("$PY" manage.py seed_demo)"   # the URL and the demo login, printed in the box at the end

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
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
# Links in emails (sent by the workers) point at this web server unless SITE_URL says otherwise.
export SITE_URL="${SITE_URL:-$(site_url "$HOST" "$PORT")}"
for group in interactive batch; do  # queues, concurrency, tasks per child, prefetch: project/queues.py
  # shellcheck disable=SC2046  # the arguments are words without spaces
  start "worker-$group" "$PY" -m celery -A project worker $("$PY" manage.py queues --worker "$group") -l info
done
start beat "$PY" -m celery -A project beat -l info --pidfile "$STATE/beat.pid"
FLOWER_PORT="${FLOWER_PORT:-5555}"
FLOWER_AUTH="$(flower_basic_auth "$STATE/flower-password")"
# Flower reads its Basic auth from the environment, never from its command line (which ps shows).
FLOWER_BASIC_AUTH="$FLOWER_AUTH" start flower "$PY" -m celery -A project flower --address=127.0.0.1 \
  --port="$FLOWER_PORT" "${flower_broker[@]}"
# Unbuffered: runserver's banner reaches the terminal before the box below.
PYTHONUNBUFFERED=1 start web "$PY" manage.py runserver "$HOST:$PORT"
if [ -n "${FLOWER_BASIC_AUTH:-}" ]; then
  flower_login="Basic auth: FLOWER_BASIC_AUTH, user ${FLOWER_AUTH%%:*}"
else
  flower_login="Basic auth: user flower, password ${FLOWER_AUTH#*:} from .run/flower-password"
fi
web_answers() {  # web_answers URL: something accepts TCP connections at the URL's host and port
  "$PY" - "$1" <<'PY' 2>/dev/null
import socket, sys
from urllib.parse import urlsplit
url = urlsplit(sys.argv[1])
socket.create_connection((url.hostname, url.port), timeout=1).close()
PY
}
web_url="$(site_url "$HOST" "$PORT")" web_pid="$(awk '$1 == "web" {print $2}' "$STATE/run.pids")"
for _ in $(seq 150); do   # up to about 30 s, so that the box comes after runserver's banner
  if web_answers "$web_url" || ! pid_alive "$web_pid"; then break; fi
  sleep 0.2
done
box() {  # box LINE...: the lines in a frame, so that they stand out from the logs around them
  local line width=0 rule
  for line in "$@"; do [ "${#line}" -le "$width" ] || width=${#line}; done
  rule="+$(printf '%*s' $((width + 2)) '' | tr ' ' -)+"
  echo "$rule"
  for line in "$@"; do printf '| %-*s |\n' "$width" "$line"; done
  echo "$rule"
}
mapfile -t login_lines <<<"$LOGIN"
echo
box "${login_lines[@]}" \
  "Flower: http://127.0.0.1:$FLOWER_PORT/ ($flower_login)" \
  "Links in emails: $SITE_URL (SITE_URL)" \
  "Broker: $([ "$BROKER" = rabbitmq ] && echo "RabbitMQ (BROKER=rabbitmq)" || echo "Redis (BROKER=rabbitmq for RabbitMQ)")" \
  "Emails are printed, not sent: password reset in .run/web.log, export ready in .run/worker-interactive.log" \
  "Logs in .run/: worker-interactive.log worker-batch.log beat.log flower.log web.log" \
  "Ctrl-C stops everything."

# When any of them stops, say which and why, and stop the others.
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
