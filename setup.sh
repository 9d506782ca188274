# Shared set-up for run.sh and test.sh, sourced by both: Debian packages, the virtualenv, Redis,
# PostgreSQL. Everything here is idempotent: a second run finds things in place and moves on quickly.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$ROOT/.venv"
STATE="$ROOT/.run"          # pid files, logs and data of the services these scripts start
# Logs and data are for this user only. No chmod 700 of an existing .run/: a PostgreSQL cluster of the
# tests may be running from it as another user (see postgres_dir), and must keep its way in.
[ -d "$STATE" ] || mkdir -m 700 "$STATE"
chmod go-rw "$STATE"
# Its files too (the demo password, logs, pid files), also those left by an older version.
find "$STATE" -maxdepth 1 -type f -exec chmod go-rwx {} +

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

site_url() {  # site_url HOST PORT: the address links in emails use for a web server listening there
  local host="$1" port="$2"
  case "$host" in
    0.0.0.0|"") host=127.0.0.1 ;;   # listening everywhere: this machine's own address works
    ::|"[::]") host="[::1]" ;;
    *:*) [ "${host#[}" != "$host" ] || host="[$host]" ;;   # a bare IPv6 address needs brackets
  esac
  echo "http://$host:$port"
}

flower_basic_auth() {  # flower_basic_auth FILE: FLOWER_BASIC_AUTH if set, else "flower:<password kept in FILE>"
  # Not the demo login: that is an ordinary member, and Flower shows every user's task arguments.
  # The password is random (128 bits), made once, readable by this user only.
  local file="$1"
  if [ -n "${FLOWER_BASIC_AUTH:-}" ]; then echo "$FLOWER_BASIC_AUTH"; return; fi
  if [ ! -s "$file" ]; then
    (umask 077; od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$file")
  fi
  chmod 600 "$file"
  echo "flower:$(cat "$file")"
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

TEST_LOCK=""
take_test_lock() {  # one ./test.sh at a time for this user on this machine: waits while another runs
  # Its Redis, PostgreSQL and RabbitMQ ports are fixed: a second run at once, from another checkout,
  # would flush the first one's Redis databases, and at its end stop the servers the first one uses.
  # The lock is a file naming its holder's PID, put in place whole by a hard link (never seen empty).
  local lock="${TMPDIR:-/tmp}/exports-test-$(id -u).pid" holder told=""
  local mine="$lock.$$"
  echo "$$" > "$mine"
  until ln "$mine" "$lock" 2>/dev/null; do
    holder="$(cat "$lock" 2>/dev/null || true)"
    if [[ "$holder" =~ ^[0-9]+$ ]] && [ "$holder" != "$$" ] && pid_alive "$holder"; then
      [ -n "$told" ] || echo "Another ./test.sh (PID $holder) is running on this machine; waiting for it to end," \
        "as both would use the same Redis, PostgreSQL and RabbitMQ ports." >&2
      told=1
      sleep 1
    elif [ -n "$holder" ] && [ "$(cat "$lock" 2>/dev/null)" = "$holder" ]; then
      rm -f "$lock"   # left by a run that is gone
    fi
  done
  rm -f "$mine"
  TEST_LOCK="$lock"
}

release_test_lock() {  # the lock take_test_lock took, if this shell still holds it
  [ -n "$TEST_LOCK" ] || return 0
  [ "$(cat "$TEST_LOCK" 2>/dev/null)" != "$$" ] || rm -f "$TEST_LOCK"
  TEST_LOCK=""
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
    rm -f "$dir/redis.pid"   # a pid file left by a crash must not name someone else's process later
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" "${persistence[@]}" \
      --databases "${REDIS_DATABASES:-16}" \
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

AXE_CORE_VERSION=4.10.2
ensure_axe_core() {  # axe-core (from npm) in .run/node_modules, for the browser tests' accessibility check
  [ -f "$STATE/node_modules/axe-core/axe.min.js" ] && return 0
  command -v npm >/dev/null || apt_install npm
  echo "Installing axe-core $AXE_CORE_VERSION into .run/node_modules"
  npm install --prefix "$STATE" --no-save --no-audit --no-fund --loglevel=error "axe-core@$AXE_CORE_VERSION"
}

ensure_libreoffice() {  # LibreOffice Calc without a GUI (~90 MB), for the slow xlsx conformance test
  command -v soffice >/dev/null || apt_install libreoffice-calc-nogui
}

# --- PostgreSQL: a private cluster of Debian's server, for the tests' PostgreSQL pass.
# initdb and postgres refuse to run as root: as root they run as the `postgres` system user.

as_postgres() {  # as the postgres user when root (from /, a folder it may enter), else as ourselves
  if [ "$(id -u)" -eq 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

postgres_bindir() {  # Debian's server binaries (initdb, pg_ctl); installs the postgresql package if missing
  local initdb
  initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$initdb" ]; then
    apt_install postgresql >&2
    initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)
  fi
  dirname "$initdb"
}

postgres_dir() {  # postgres_dir PORT: the folder of the private cluster on PORT (data, password, log)
  local dir="$STATE/postgres-$1"
  if [ "$(id -u)" -eq 0 ]; then
    # The postgres user may pass through .run/ (not list it) to the cluster's own 0700 folder;
    # postgres opens its files by their full path, so .run/ stays 0711 from now on.
    chmod 711 "$STATE"
    if ! runuser -u postgres -- test -x "$STATE"; then
      # A folder above this checkout is closed to other users: keep the cluster in postgres's home.
      dir="$(getent passwd postgres | cut -d: -f6)/exports-test-$(echo "$ROOT" | sha256sum | cut -c1-12)-$1"
      echo "The postgres user cannot reach .run/ (a folder above it is closed); the cluster goes to $dir" >&2
    fi
  fi
  echo "$dir"
}

STARTED_POSTGRES_DATA="" STARTED_POSTGRES_BINDIR="" STARTED_POSTGRES_REMOVE=""
POSTGRES_URL=""
ensure_postgres() {  # ensure_postgres PORT [--or-free-port]: a private cluster on 127.0.0.1:PORT; sets POSTGRES_URL
  local port="$1" fallback="${2:-}" bindir dir data password temporary=""
  bindir=$(postgres_bindir)
  dir=$(postgres_dir "$port")
  if ! as_postgres "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 && port_answers "$port"; then
    if [ "$fallback" != --or-free-port ]; then
      echo "Port $port is taken by another program; choose another with TEST_POSTGRES_PORT." >&2
      return 1
    fi
    port=$(free_port)  # a cluster for this run only, removed when it stops
    dir=$(postgres_dir "$port")
    temporary=1
  fi
  if [ "$(id -u)" -eq 0 ]; then
    [ -d "$dir" ] || install -d -m 700 -o postgres -g postgres "$dir"
  else
    mkdir -p -m 700 "$dir"
  fi
  data="$dir/data"

  if [ ! -s "$dir/password" ] || [ "$(cat "$data/PG_VERSION" 2>/dev/null)" != "$(basename "$(dirname "$bindir")")" ]; then
    as_postgres "$bindir/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    as_postgres rm -rf "$data"
    (umask 077; "$VENV/bin/python" -c 'import secrets; print(secrets.token_hex(16))' > "$dir/password")
    if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$dir/password"; fi
    # Password logins only, over TCP on 127.0.0.1 (no Unix socket); fsync off: a throw-away test cluster.
    as_postgres "$bindir/initdb" -D "$data" -U postgres --pwfile="$dir/password" --auth-host=scram-sha-256 \
      --auth-local=peer --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { echo "initdb failed; see $dir/initdb.log:" >&2; tail -n 20 "$dir/initdb.log" >&2; return 1; }
  fi
  password=$(cat "$dir/password")

  STARTED_POSTGRES_DATA="$data" STARTED_POSTGRES_BINDIR="$bindir"
  STARTED_POSTGRES_REMOVE="${temporary:+$dir}"
  if ! as_postgres "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    echo "Starting a private PostgreSQL on 127.0.0.1:$port (data in ${dir#"$ROOT/"})"
    as_postgres "$bindir/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 -o "-p $port \
      -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c synchronous_commit=off \
      -c full_page_writes=off" start >/dev/null \
      || { echo "PostgreSQL did not start; see $dir/server.log:" >&2; tail -n 20 "$dir/server.log" >&2; return 1; }
  fi
  POSTGRES_URL="postgres://postgres:$password@127.0.0.1:$port/exports"
}

stop_started_postgres() {  # stop the cluster that ensure_postgres started (and remove it if temporary)
  [ -n "$STARTED_POSTGRES_DATA" ] || return 0
  as_postgres "$STARTED_POSTGRES_BINDIR/pg_ctl" -D "$STARTED_POSTGRES_DATA" -m fast -w stop >/dev/null 2>&1 || true
  [ -n "$STARTED_POSTGRES_REMOVE" ] && rm -rf "$STARTED_POSTGRES_REMOVE"
  STARTED_POSTGRES_DATA="" STARTED_POSTGRES_REMOVE=""
}

# --- RabbitMQ: a private node of Debian's rabbitmq-server (its own node name, ports and data under .run/).

RABBITMQ_BIN=/usr/lib/rabbitmq/bin
RABBITMQ_ENV=()
rabbitmq_env() {  # rabbitmq_env PORT: sets RABBITMQ_ENV, the environment of the private node on PORT
  local port="$1" dir="$STATE/rabbitmq-$1"
  # Its data, logs and Erlang cookie in its folder; distribution on 127.0.0.1 only, at PORT + 20000.
  RABBITMQ_ENV=(HOME="$dir" RABBITMQ_NODENAME="exports-$port@localhost" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
    RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT="$((port + 20000))" RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
    RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" RABBITMQ_MNESIA_BASE="$dir/mnesia"
    RABBITMQ_LOG_BASE="$dir/log" RABBITMQ_PID_FILE="$dir/rabbitmq.pid" RABBITMQ_CONF_ENV_FILE="$dir/rabbitmq-env.conf"
    ERL_EPMD_ADDRESS=127.0.0.1 "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}")
}

rabbitmq_answers() {  # rabbitmq_answers URL: an AMQP login succeeds
  "$VENV/bin/python" - "$1" <<'PY' 2>/dev/null
import sys, kombu
with kombu.Connection(sys.argv[1], connect_timeout=2) as conn:
    conn.connect()
PY
}

STARTED_RABBITMQ_PORT=""
ensure_rabbitmq() {  # ensure_rabbitmq PORT [MANAGEMENT_PORT]: start a private node on 127.0.0.1:PORT if nothing answers
  local port="$1" management="${2:-}" dir="$STATE/rabbitmq-$1" url="amqp://guest:guest@127.0.0.1:$1//"
  rabbitmq_answers "$url" && return 0
  [ -x "$RABBITMQ_BIN/rabbitmq-server" ] || apt_install rabbitmq-server
  if port_answers "$port"; then
    echo "Port $port is taken by another program (not an AMQP broker we may log in to)." >&2
    return 1
  fi
  mkdir -p -m 700 "$dir"
  # The listener and a consumer_timeout above the longest hard time limit (project/broker.py).
  DEBUG=true "$VENV/bin/python" manage.py rabbitmq_config --port "$port" ${management:+--management-port "$management"} \
    >"$dir/rabbitmq.conf"
  if [ -n "$management" ]; then echo "[rabbitmq_management]." >"$dir/enabled_plugins"; else echo "[]." >"$dir/enabled_plugins"; fi
  : >"$dir/rabbitmq-env.conf"
  rabbitmq_env "$port"
  echo "Starting a private RabbitMQ node on 127.0.0.1:$port (data and logs in .run/rabbitmq-$port)"
  # setsid -f: the node is no child of this shell, whose `wait` must not wait for it.
  (cd "$dir" && exec setsid -f env "${RABBITMQ_ENV[@]}" "$RABBITMQ_BIN/rabbitmq-server") >"$dir/server.log" 2>&1 </dev/null
  STARTED_RABBITMQ_PORT="$port"
  env "${RABBITMQ_ENV[@]}" "$RABBITMQ_BIN/rabbitmqctl" -q -n "exports-$port@localhost" wait "$dir/rabbitmq.pid" \
    --timeout 60 >/dev/null 2>&1 || true
  for _ in $(seq 100); do rabbitmq_answers "$url" && return 0; sleep 0.2; done
  echo "RabbitMQ did not answer on port $port; see .run/rabbitmq-$port/server.log" >&2
  return 1
}

rabbitmq_ctl() {  # rabbitmq_ctl PORT ARGS...: rabbitmqctl for the private node on PORT
  local port="$1"
  shift
  rabbitmq_env "$port"
  env "${RABBITMQ_ENV[@]}" "$RABBITMQ_BIN/rabbitmqctl" -q -n "exports-$port@localhost" "$@"
}

stop_started_rabbitmq() {  # stop the node that ensure_rabbitmq started, if it started one
  [ -n "$STARTED_RABBITMQ_PORT" ] || return 0
  rabbitmq_ctl "$STARTED_RABBITMQ_PORT" shutdown >/dev/null 2>&1 || true
  STARTED_RABBITMQ_PORT=""
}
