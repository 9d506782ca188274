#!/usr/bin/env bash
# Runs the whole test suite against real services, in three passes that run at the same time:
#   1. SQLite: every test, the browser tests (Debian's Chromium driven by Playwright) included, but the
#      fault tests when passes 2 and 3 run them (on PostgreSQL with Redis, on SQLite with RabbitMQ);
#   2. PostgreSQL: the tests that reach the database, but the sqlite_pass ones (TEST_POSTGRES_ALL=1: every
#      test but the browser and sqlite_pass ones), on the server at TEST_DATABASE_URL if given, else on a private cluster
#      of Debian's PostgreSQL started here (port TEST_POSTGRES_PORT, default 5440) and stopped at the end.
#   3. RabbitMQ: the worker and fault tests again (SQLite), with RabbitMQ as the Celery broker: the suite's
#      worker on the node at TEST_BROKER_URL if given, else on a private node of Debian's rabbitmq-server
#      started here (port TEST_RABBITMQ_PORT, default 5680, data under .run/) and stopped at the end; each
#      fault test on a node of its own. TEST_BROKERS=redis leaves it out; it runs by default only when
#      TEST_DATABASES is not set (a whole run), or when TEST_BROKERS names rabbitmq.
# All use a private Redis (started here, on its own port), each pass its own databases of it, and
# Celery worker processes started by the tests. Each pass runs in TEST_WORKERS pytest-xdist workers
# (default 2; 0: no xdist), each worker with its own Redis database, test database, MEDIA_ROOT and
# Celery worker. TEST_DATABASES=sqlite (or postgres) runs one pass only; TEST_SERIAL=1 runs the passes
# one after the other. Extra arguments go to pytest in both passes, e.g. ./test.sh -k serial -x; a -m of
# yours narrows each pass's own selection, never widens it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"

PASSES=() databases="${TEST_DATABASES:-sqlite,postgres}"
for pass in ${databases//,/ }; do
  case "$pass" in
    sqlite) PASSES+=(sqlite) ;;
    postgres | postgresql) PASSES+=(postgres) ;;
    none) ;;   # TEST_DATABASES=none TEST_BROKERS=rabbitmq: the RabbitMQ pass alone
    *) echo "TEST_DATABASES: unknown database '$pass'; use sqlite, postgres, sqlite,postgres or none" >&2; exit 2 ;;
  esac
done
if [ -n "${TEST_DATABASES:-}" ]; then brokers="${TEST_BROKERS:-redis}"; else brokers="${TEST_BROKERS:-redis,rabbitmq}"; fi
for broker in ${brokers//,/ }; do
  case "$broker" in
    redis) ;;
    rabbitmq) PASSES+=(rabbitmq) ;;
    *) echo "TEST_BROKERS: unknown broker '$broker'; use redis, rabbitmq or redis,rabbitmq" >&2; exit 2 ;;
  esac
done
WORKERS="${TEST_WORKERS:-2}"
[[ "$WORKERS" =~ ^[0-9]+$ ]] || { echo "TEST_WORKERS: a number of xdist workers (0: no xdist), not '$WORKERS'" >&2; exit 2; }

ensure_venv requirements-test.txt
ensure_chromium
ensure_axe_core
ensure_libreoffice
umask 077   # logs, test files and the PostgreSQL password are for this user only
# A Redis of the tests' own, each pass's databases flushed at its start: never point this at real data.
REDIS_URL="${TEST_REDIS_URL:-redis://127.0.0.1:6390/0}"
if [[ "$REDIS_URL" =~ ^(rediss?://[^/]*)(/([0-9]+))?$ ]]; then
  redis_server="${BASH_REMATCH[1]}" redis_db="${BASH_REMATCH[3]:-0}"
else
  echo "TEST_REDIS_URL: expected redis://HOST:PORT/DB, not '$REDIS_URL'" >&2; exit 2
fi
# The SQLite pass takes databases from redis_db on, the PostgreSQL pass from redis_db + 8, the RabbitMQ
# pass from redis_db + 16; each xdist
# worker two of them (its own and the next, for the session that test_soil_standalone nests).
pass_redis_url() { echo "$redis_server/$((redis_db + $1 * 8))"; }
STATUS_DIR="$STATE/test-status"
PASS_PIDS=()
summary() {
  [ -d "$STATUS_DIR" ] || return 0
  local file printed=""
  for file in "$STATUS_DIR"/*.summary; do
    [ -f "$file" ] || continue
    [ -n "$printed" ] || printf '\n===== ./test.sh summary =====\n'
    printed=1
    cat "$file"
  done
}
FORWARD_INT="" HURRY=""
cleanup() {
  local pid child
  # A second Ctrl-C or SIGTERM hurries the clean-up (no more waiting for the passes), never cuts it
  # short: the servers started here would be left running on their ports, and the lock held.
  trap 'HURRY=1' INT TERM
  for pid in "${PASS_PIDS[@]}"; do   # interrupted: each pytest stops its worker processes as it ends
    pid_alive "$pid" && kill -INT "$pid" 2>/dev/null || true
    # A pass's shell answers only once its pytest ends. On Ctrl-C the terminal told that pytest already
    # (a second SIGINT would cut its clean-up short); on SIGTERM (a timeout, a kill by PID) nothing did:
    # ask it to stop as Ctrl-C would, or it would run on against the servers stopped below.
    [ -z "$FORWARD_INT" ] || for child in $(cat "/proc/$pid/task/$pid/children" 2>/dev/null); do
      kill -INT "$child" 2>/dev/null || true
    done
  done
  for pid in "${PASS_PIDS[@]}"; do
    for _ in $(seq 300); do [ -z "$HURRY" ] && pid_alive "$pid" || break; sleep 0.1; done
  done
  stop_started_postgres; stop_started_rabbitmq; stop_started_redis; release_test_lock; summary
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'FORWARD_INT=1; exit 130' TERM
take_test_lock
# 24 databases: 8 for each pass (pass_redis_url).
export REDIS_DATABASES=24 TEST_REDIS_DATABASES=24
ensure_redis "$REDIS_URL"
rm -rf "$STATUS_DIR" && mkdir -p "$STATUS_DIR"

# Production settings (DEBUG=false), served over plain http: no https redirect or https-only cookies.
export SECRET_KEY="test-only-secret-key" DEBUG=false USE_CELERY=true HTTPS_ONLY=false

run_pass() {  # run_pass NAME LABEL INDEX DATABASE_URL PYTEST_ARGS...: one pytest session; no URL means SQLite
  local name="$1" label="$2" index="$3" url="$4" started=$SECONDS status=0 xdist=()
  shift 4
  [ "$WORKERS" -eq 0 ] || xdist=(-n "$WORKERS" --dist worksteal)
  # Shared by the test process and its worker processes; tests/suite.py adds -gwN for an xdist worker.
  local media="$STATE/test-media-$name"
  rm -rf "$media"*
  local env=(-u DATABASE_URL)
  [ -z "$url" ] || env=(DATABASE_URL="$url")
  # BROKER_URL (which the settings and the `celery` command read too), not CELERY_BROKER_URL: Celery lets
  # that one override every app's own broker, and the fault tests' clients must reach their deployment's.
  [ "$name" != rabbitmq ] || env+=(-u CELERY_BROKER_URL BROKER_URL="$BROKER_URL" TEST_BROKER=rabbitmq
                                   TEST_DATABASE_PATH="$STATE/test-db-rabbitmq.sqlite3")
  env+=(REDIS_URL="$(pass_redis_url "$index")" MEDIA_ROOT="$media")
  # Its own temporary folder: two sessions at once must not clean up each other's.
  env "${env[@]}" "$VENV/bin/python" -m pytest --basetemp="$STATE/pytest-$name" "${xdist[@]}" "$@" || status=$?
  local took="in $((SECONDS - started)) s"
  case "$status" in
    0) echo "$label: passed $took" ;;
    5) echo "$label: no test selected $took" ;;
    *) echo "$label: FAILED (pytest exit status $status) $took" ;;
  esac > "$STATUS_DIR/$index-$name.summary"
  echo "$status" > "$STATUS_DIR/$index-$name.status"
}

start_pass() {  # start_pass NAME LABEL INDEX URL ARGS...: in the foreground, or at once in the background
  local name="$1" label="$2"
  if [ -n "${TEST_SERIAL:-}" ] || [ "${#PASSES[@]}" -eq 1 ]; then
    printf '\n===== ./test.sh: %s pass =====\n\n' "$label"
    run_pass "$@"
  else
    printf '===== ./test.sh: %s pass started; its output goes to .run/test-%s.log =====\n' "$label" "$name"
    run_pass "$@" > "$STATE/test-$name.log" 2>&1 &
    PASS_PIDS+=($!)
  fi
}

for pass in "${PASSES[@]}"; do
  case "$pass" in
    sqlite)
      # The fault tests run in the two other passes when both run: on PostgreSQL with Redis as the broker
      # and on SQLite with RabbitMQ. A third time, on SQLite with Redis, would prove nothing new.
      selection=()
      [[ " ${PASSES[*]} " != *" postgres "* || " ${PASSES[*]} " != *" rabbitmq "* ]] || selection=(--no-fault-tests)
      start_pass sqlite SQLite 0 "" "${selection[@]}" "$@"
      ;;
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
      # Only the tests that reach the database (tests/suite.py): pytest-django refuses the database to the
      # others, so they are the same on both and run in the SQLite pass, as do the browser and sqlite_pass
      # tests. TEST_POSTGRES_ALL=1: every test but those. A -m of yours narrows either, never widens it.
      selection=--db-tests-only
      [ -z "${TEST_POSTGRES_ALL:-}" ] || selection=--no-browser-tests
      start_pass postgres PostgreSQL 1 "$url" "$selection" "$@"
      ;;
    rabbitmq)
      if [ -n "${TEST_BROKER_URL:-}" ]; then
        BROKER_URL="$TEST_BROKER_URL"   # its virtual host, and one per xdist worker (<vhost>-gwN), must exist
      else
        port="${TEST_RABBITMQ_PORT:-5680}"
        ensure_rabbitmq "$port"
        # A virtual host for the pass and one per xdist worker, in one call (each rabbitmqctl starts a VM).
        "$VENV/bin/python" - "$WORKERS" >"$STATE/rabbitmq-$port/test-vhosts.json" <<'PY'
import json, sys
names = ["tests"] + [f"tests-gw{n}" for n in range(int(sys.argv[1]))]
print(json.dumps({"vhosts": [{"name": name} for name in names],
                  "permissions": [{"user": "guest", "vhost": name, "configure": ".*", "write": ".*", "read": ".*"}
                                  for name in names]}))
PY
        rabbitmq_ctl "$port" import_definitions "$STATE/rabbitmq-$port/test-vhosts.json" >/dev/null
        BROKER_URL="amqp://guest:guest@127.0.0.1:$port/tests"
      fi
      # The worker and fault tests only: the others do not reach the broker.
      start_pass rabbitmq RabbitMQ 2 "" --broker-tests-only "$@"
      ;;
  esac
done

for pid in "${PASS_PIDS[@]}"; do wait "$pid" || true; done
for pass in "${PASSES[@]}"; do
  if [ "${#PASS_PIDS[@]}" -gt 0 ]; then
    case "$pass" in sqlite) label=SQLite ;; postgres) label=PostgreSQL ;; rabbitmq) label=RabbitMQ ;; esac
    printf '\n===== ./test.sh: %s pass (.run/test-%s.log) =====\n\n' "$label" "$pass"
    cat "$STATE/test-$pass.log"
  fi
done
PASS_PIDS=()

FAILED=0 RAN=0
for file in "$STATUS_DIR"/*.status; do
  [ -f "$file" ] || { FAILED=1; continue; }
  case "$(cat "$file")" in
    0) RAN=1 ;;
    5) ;;
    *) FAILED=1; RAN=1 ;;
  esac
done
[ "$(ls "$STATUS_DIR"/*.status 2>/dev/null | wc -l)" -eq "${#PASSES[@]}" ] || FAILED=1
[ "$FAILED" -eq 0 ] || exit 1
[ "$RAN" -eq 1 ] || exit 5
