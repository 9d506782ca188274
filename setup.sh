# Shared set-up for run.sh and test.sh, sourced by both: Debian packages, the virtualenv, Redis.
# Everything here is idempotent: a second run finds things in place and moves on quickly.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
STATE="$ROOT/.run"          # pid files, logs and data of the services these scripts start
mkdir -p "$STATE"

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

redis_answers() {  # redis_answers URL
  "$VENV/bin/python" - "$1" <<'PY' 2>/dev/null
import sys, redis
redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1).ping()
PY
}

STARTED_REDIS_PIDFILE=""
ensure_redis() {  # ensure_redis URL: start a local redis-server on the URL's port if nothing answers
  local url="$1" port dir
  redis_answers "$url" && return 0
  command -v redis-server >/dev/null || apt_install redis-server
  port=$("$VENV/bin/python" -c 'import sys; from urllib.parse import urlsplit; print(urlsplit(sys.argv[1]).port or 6379)' "$url")
  dir="$STATE/redis-$port"
  mkdir -p "$dir"
  echo "Starting a local Redis on 127.0.0.1:$port (data in memory only)"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --dir "$dir" --logfile "$dir/redis.log" --pidfile "$dir/redis.pid"
  STARTED_REDIS_PIDFILE="$dir/redis.pid"
  for _ in $(seq 100); do redis_answers "$url" && return 0; sleep 0.1; done
  echo "Redis did not answer on port $port; see $dir/redis.log" >&2
  return 1
}

stop_started_redis() {  # stop the Redis that ensure_redis started, if it started one
  if [ -n "$STARTED_REDIS_PIDFILE" ] && [ -f "$STARTED_REDIS_PIDFILE" ]; then
    kill "$(cat "$STARTED_REDIS_PIDFILE")" 2>/dev/null || true
  fi
}

ensure_chromium() {  # Debian's Chromium, for the browser tests (Playwright drives it)
  command -v chromium >/dev/null || apt_install chromium
}
