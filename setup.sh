# Shared set-up for run.sh and test.sh, sourced by both: Debian packages, the virtualenv, Redis. Everything here is idempotent: a second run finds things in place and moves on quickly.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
STATE="$ROOT/.run"          # pid files, logs and data of the services these scripts start
mkdir -p "$STATE" && chmod 700 "$STATE"   # logs and data are for this user only

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {  # apt_install PACKAGE...: install the Debian packages that are missing
  local missing=() pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  echo "Installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

ensure_venv() {  # ensure_venv REQUIREMENTS_FILE: the virtualenv with those packages installed
  local requirements="$1" python="${PYTHON:-python3}"
  command -v "$python" >/dev/null || apt_install python3
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
      rm -rf "$VENV"
      apt_install python3-venv
      "$python" -m venv "$VENV"
    fi
  fi
  local stamp="$VENV/.installed-$(basename "$requirements")" digest
  digest=$(cat "$ROOT"/requirements*.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$requirements"
    echo "$digest" > "$stamp"
  fi
}

port_answers() {  # port_answers PORT: something accepts TCP connections on 127.0.0.1:PORT
  "$VENV/bin/python" - "$1" <<'PY' 2>/dev/null
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()
PY
}

free_port() {  # a TCP port of 127.0.0.1 that nothing listens on now
  "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pid_alive() {  # pid_alive PID: the process runs (one that is gone, or a zombie, counts as stopped)
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [ -n "$state" ] && [ "$state" != Z ]
}

redis_answers() {  # redis_answers URL
  "$VENV/bin/python" - "$1" <<'PY' 2>/dev/null
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
PY
}

STARTED_REDIS_PIDFILE=""
ensure_redis() {  # ensure_redis URL [--appendonly]: start a local redis-server on the URL's port if nothing answers
  local url="$1" mode="${2:-}" port dir persistence
  redis_answers "$url" && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  port=$("$VENV/bin/python" -c 'import sys; from urllib.parse import urlsplit; print(urlsplit(sys.argv[1]).port or 6379)' "$url")
  dir="$STATE/redis-$port"
  if [ "$mode" = --appendonly ]; then
    # Queued tasks, progress and download records survive a restart (fsync once a second).
    persistence=(--appendonly yes --appendfsync everysec)
    echo "Starting a local Redis on 127.0.0.1:$port (data kept on disk in .run/redis-$port)"
  else
    persistence=(--appendonly no)
    echo "Starting a local Redis on 127.0.0.1:$port (data in memory only)"
  fi
  (
    umask 077
    mkdir -p "$dir" && chmod 700 "$dir"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" "${persistence[@]}" \
      --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
  )
  STARTED_REDIS_PIDFILE="$dir/redis.pid"
  for _ in $(seq 100); do redis_answers "$url" && return 0; sleep 0.1; done
  echo "Redis did not answer on port $port; see .run/redis-$port/redis.log" >&2
  return 1
}

stop_started_redis() {  # stop the Redis that ensure_redis started, if it started one, and wait for it
  [ -n "$STARTED_REDIS_PIDFILE" ] && [ -f "$STARTED_REDIS_PIDFILE" ] || return 0
  local pid
  pid=$(cat "$STARTED_REDIS_PIDFILE")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do pid_alive "$pid" || break; sleep 0.1; done
  STARTED_REDIS_PIDFILE=""
}

ensure_chromium() {  # Debian's Chromium, for the browser tests (Playwright drives it)
  command -v chromium >/dev/null || apt_install chromium
}
