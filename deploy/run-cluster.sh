#!/usr/bin/env bash
# Confab's production topology on one machine, to try it: nginx in front of N daphne
# workers that talk through Redis. `make run-cluster` calls this. Ctrl-C stops everything.
#
#   WORKERS=2            daphne workers, on 127.0.0.1:WORKER_PORT_BASE.. (8001..800N)
#   PORT=8000            nginx listens on 127.0.0.1:PORT
#   WORKER_PORT_BASE=8001
#   REDIS_URL            used if set and answering; otherwise a private redis-server is
#                        started on a free loopback port (nothing kept on disk)
#   DATABASE_URL         default: a SQLite file in the state dir (kept between runs)
#   SECRET_KEY           default: generated once into <state dir>/secret_key
#   STATIC_ROOT          default: <state dir>/static (collectstatic fills it, nginx serves it)
#   CLUSTER_DIR          the state dir; default deploy/.cluster (logs are in logs/)
#   TURN_URLS            unless set (in the environment or .env, even empty), coturn is
#                        started on a free loopback port from deploy/coturn/turnserver.conf
#                        with a secret made for this run, and STUN_URLS, TURN_URLS and
#                        TURN_SECRET point at it; without turnserver installed: no STUN/TURN
#   JANUS_URLS           unless set (even empty), Janus (the SFU of large rooms) is started
#                        from deploy/janus/ with its API on a free loopback port and a
#                        secret made for this run, and JANUS_URLS and JANUS_API_SECRET point
#                        at it; without /usr/bin/janus installed: no SFU rooms
#
# Everything else comes from the environment or .env as usual; this sets DEBUG=0 and
# HTTPS=0 (plain http on loopback). Every process it starts is stopped by its PID when the
# script ends, whatever the reason.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

WORKERS=${WORKERS:-2}
PORT=${PORT:-8000}
WORKER_PORT_BASE=${WORKER_PORT_BASE:-8001}
CLUSTER_DIR=${CLUSTER_DIR:-$REPO/deploy/.cluster}
PYTHON=$REPO/.venv/bin/python
DAPHNE=$REPO/.venv/bin/daphne
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

# Started in the background by a non-interactive shell (`deploy/run-cluster.sh &` in a test
# script), bash inherits SIGINT as ignored and cannot trap it, so `kill -INT` would do
# nothing. Restore its default disposition and start again.
sig_ignored=$(awk '/^SigIgn:/ {print $2}' "/proc/$$/status" 2>/dev/null || true)
if [[ -z ${_CONFAB_CLUSTER_SIGINT:-} && -n $sig_ignored && -x $PYTHON ]] &&
  ((16#${sig_ignored: -1} & 2)); then # SIGINT is signal 2: bit 1 of the mask
  export _CONFAB_CLUSTER_SIGINT=1
  exec "$PYTHON" -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$BASH" "${BASH_SOURCE[0]}" "$@"
fi

say() { printf '[run-cluster] %s\n' "$*"; }
die() {
  printf '[run-cluster] error: %s\n' "$*" >&2
  exit 1
}

# --- checks before anything starts ---------------------------------------------------------
[[ $WORKERS =~ ^[1-9][0-9]*$ && $WORKERS -le 64 ]] || die "WORKERS must be 1..64 (got '$WORKERS')"
[[ $PORT =~ ^[0-9]+$ && $WORKER_PORT_BASE =~ ^[0-9]+$ ]] || die "PORT and WORKER_PORT_BASE must be numbers"
((WORKER_PORT_BASE + WORKERS - 1 <= 65535)) || die "worker ports would pass 65535"
if ((PORT >= WORKER_PORT_BASE && PORT < WORKER_PORT_BASE + WORKERS)); then
  die "PORT=$PORT is one of the worker ports $WORKER_PORT_BASE..$((WORKER_PORT_BASE + WORKERS - 1))"
fi
[[ -x $DAPHNE && -x $PYTHON ]] || die "no virtualenv at $REPO/.venv: run 'make run' once (it creates it)"
[[ -x $NGINX ]] || die "nginx not found (Debian: apt-get install nginx-light)"

port_free() { # port -> exit 0 when nothing listens on 127.0.0.1:port
  "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
# Like the servers themselves: connections in TIME_WAIT from a previous run do not count.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
EOF
}
for p in "$PORT" $(seq "$WORKER_PORT_BASE" $((WORKER_PORT_BASE + WORKERS - 1))); do
  port_free "$p" || die "127.0.0.1:$p is in use (choose PORT / WORKER_PORT_BASE)"
done

mkdir -p "$CLUSTER_DIR"/{logs,nginx/tmp,redis}
CLUSTER_DIR=$(cd "$CLUSTER_DIR" && pwd)
LOGS=$CLUSTER_DIR/logs

# --- process bookkeeping and shutdown -----------------------------------------------------
declare -a PIDS=() # in start order; stopped in reverse
declare -A NAMES=()
started() { # pid name
  PIDS+=("$1")
  NAMES[$1]=$2
}

running() { # pid -> exit 0 while it runs (an exited child stays a zombie until waited for)
  local stat
  if [[ -r /proc/$1/stat ]]; then
    stat=$(<"/proc/$1/stat") 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
  else
    kill -0 "$1" 2>/dev/null
  fi
}

cleanup() {
  local status=$? pid i deadline
  trap - EXIT INT TERM HUP
  ((${#PIDS[@]})) || exit "$status"
  say "stopping ${#PIDS[@]} processes"
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    pid=${PIDS[i]}
    kill -TERM "$pid" 2>/dev/null || true
  done
  deadline=$((SECONDS + 15))
  for pid in "${PIDS[@]}"; do
    while running "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
    if running "$pid"; then
      say "${NAMES[$pid]} (pid $pid) did not stop in time: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  say "stopped"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

wait_until() { # seconds description command... -> retries command until it succeeds
  local limit=$1 what=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not come up in ${limit}s (logs: $LOGS)"
    sleep 0.3
  done
}

# --- Redis -----------------------------------------------------------------------------------
redis_ping() { "$PYTHON" -c 'import sys, redis; redis.Redis.from_url(sys.argv[1], socket_connect_timeout=2).ping()' "$1"; }

REDIS_NOTE="from REDIS_URL"
if [[ -n ${REDIS_URL:-} ]] && redis_ping "$REDIS_URL" 2>/dev/null; then
  :
else
  [[ -n ${REDIS_URL:-} ]] && say "REDIS_URL=$REDIS_URL does not answer: starting a private Redis"
  command -v redis-server >/dev/null || die "redis-server not found (Debian: apt-get install redis-server)"
  redis_port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no \
    --dir "$CLUSTER_DIR/redis" --logfile "$LOGS/redis.log" --daemonize no &
  started $! redis
  REDIS_URL=redis://127.0.0.1:$redis_port/0
  REDIS_NOTE="private redis-server, pid ${PIDS[-1]}"
  wait_until 15 "Redis on port $redis_port" redis_ping "$REDIS_URL"
fi

# --- coturn: STUN and TURN ------------------------------------------------------------------
# The cluster's own STUN and TURN server, as in production (calls use no third-party
# server): the production file deploy/coturn/turnserver.conf, moved to loopback. A setting
# given in the environment or .env wins, even an empty one (that is a choice too).
configured() { # name -> exit 0 when set in the environment or in .env
  [[ -n ${!1+set} ]] || grep -Eq "^[[:space:]]*$1=" "$REPO/.env" 2>/dev/null
}

free_udp_tcp_port() { # a port free on 127.0.0.1 for both UDP and TCP (coturn listens on both)
  "$PYTHON" - <<'EOF'
import socket
for _ in range(100):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        with socket.socket() as tcp:
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                continue
    print(port)
    break
EOF
}

stun_answers() { # port -> exit 0 when a STUN binding request gets its success response
  "$PYTHON" - "$1" <<'EOF'
import os, socket, struct, sys
tid = os.urandom(12)
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    s.settimeout(1)
    s.sendto(struct.pack("!HHI", 0x0001, 0, 0x2112A442) + tid, ("127.0.0.1", int(sys.argv[1])))
    answer = s.recv(2048)
sys.exit(0 if answer[:2] == b"\x01\x01" and answer[8:20] == tid else 1)
EOF
}

TURN_NOTE=""
if configured TURN_URLS; then
  TURN_NOTE="as configured in .env"
  [[ -z ${TURN_URLS+set} ]] || TURN_NOTE="as configured: ${TURN_URLS:-none (TURN_URLS is empty)}"
elif ! command -v turnserver >/dev/null; then
  say "turnserver not found (Debian: apt-get install coturn): going on without STUN or TURN;"
  say "  calls then connect only between browsers on this machine or its network"
else
  turn_port=$(free_udp_tcp_port)
  [[ -n $turn_port ]] || die "no free loopback port for coturn"
  TURN_SECRET=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')
  mkdir -p "$CLUSTER_DIR/coturn"
  # Dropped from the production file: its public addresses and ports, TLS (no certificate
  # here), realm, syslog, and the denial of loopback peers, since on this machine both
  # ends of a relayed call are loopback relays. Nothing but this machine can reach it.
  turn_conf=$CLUSTER_DIR/coturn/turnserver.conf
  (
    umask 077 # it holds the secret
    grep -Ev '^[[:space:]]*(listening-ip|relay-ip|external-ip|listening-port|tls-listening-port|cert|pkey|realm|static-auth-secret|syslog)([[:space:]=]|$)|^denied-peer-ip=(127\.|::1$)' \
      "$REPO/deploy/coturn/turnserver.conf" >"$turn_conf"
    cat >>"$turn_conf" <<EOF

# --- run-cluster.sh: loopback only, this run's secret -----------------------------------------
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$turn_port
no-tls
allow-loopback-peers
realm=run-cluster.localhost
static-auth-secret=$TURN_SECRET
userdb=$CLUSTER_DIR/coturn/turndb
pidfile=$CLUSTER_DIR/coturn/turnserver.pid
log-file=$LOGS/coturn.log
no-stdout-log
EOF
  )
  rm -f "$LOGS/coturn.log"
  turnserver -c "$turn_conf" >"$LOGS/coturn.out" 2>&1 &
  started $! coturn
  TURN_PID=$!
  deadline=$((SECONDS + 15))
  until stun_answers "$turn_port" 2>/dev/null; do
    running "$TURN_PID" || die "coturn exited while starting: $(tail -n 5 "$LOGS/coturn.out" "$LOGS/coturn.log" 2>/dev/null)"
    ((SECONDS < deadline)) || die "coturn is not answering STUN on 127.0.0.1:$turn_port (log: $LOGS/coturn.log)"
    sleep 0.3
  done
  TURN_URLS="turn:127.0.0.1:$turn_port?transport=udp,turn:127.0.0.1:$turn_port?transport=tcp"
  export TURN_URLS TURN_SECRET
  configured STUN_URLS || export STUN_URLS="stun:127.0.0.1:$turn_port"
  TURN_NOTE="coturn, pid $TURN_PID, 127.0.0.1:$turn_port (STUN and TURN, udp and tcp)"
fi

# --- Janus: the SFU of large rooms ------------------------------------------------------------
# The production files of deploy/janus/ with this run's API secret and a free loopback port
# for the API (the workers are its only clients). Its media cannot stay on loopback: Janus
# skips loopback interfaces when it gathers ICE candidates, so browsers on this machine
# reach it on this machine's own network address, on UDP ports of rtp_port_range while a
# call runs. A JANUS_URLS given in the environment or .env wins, even an empty one.
JANUS_BIN=${JANUS_BIN:-/usr/bin/janus}
janus_answers() { # url -> exit 0 when Janus answers `info` with the VideoRoom plugin loaded
  "$PYTHON" - "$1" <<'EOF'
import json, sys
from websockets.sync.client import connect
with connect(sys.argv[1], subprotocols=["janus-protocol"], open_timeout=1, proxy=None) as ws:
    ws.send(json.dumps({"janus": "info", "transaction": "run-cluster"}))
    info = json.loads(ws.recv(timeout=1))
sys.exit(0 if "janus.plugin.videoroom" in info.get("plugins", {}) else 1)
EOF
}

JANUS_NOTE=""
if configured JANUS_URLS; then
  JANUS_NOTE="as configured in .env"
  [[ -z ${JANUS_URLS+set} ]] || JANUS_NOTE="as configured: ${JANUS_URLS:-none (JANUS_URLS is empty)}"
elif [[ ! -x $JANUS_BIN ]]; then
  say "janus not found (Debian: apt-get install janus): no SFU rooms, only mesh ones"
else
  janus_port=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  JANUS_API_SECRET=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(32))')
  janus_conf=$CLUSTER_DIR/janus
  rm -rf "$janus_conf"
  mkdir -p "$janus_conf"
  (
    umask 077 # janus.jcfg holds the secret
    cp "$REPO"/deploy/janus/*.jcfg "$janus_conf"/
    sed -i "s|^\([[:space:]]*\)api_secret[[:space:]]*=.*|\1api_secret = \"$JANUS_API_SECRET\"|" "$janus_conf/janus.jcfg"
    sed -i "s|^\([[:space:]]*\)ws_port[[:space:]]*=.*|\1ws_port = $janus_port|" "$janus_conf/janus.transport.websockets.jcfg"
  )
  if ! grep -q "api_secret = \"$JANUS_API_SECRET\"" "$janus_conf/janus.jcfg" ||
    ! grep -q "ws_port = $janus_port" "$janus_conf/janus.transport.websockets.jcfg"; then
    die "deploy/janus/ has no api_secret or ws_port line for this script to set"
  fi
  "$JANUS_BIN" -F "$janus_conf" -C "$janus_conf/janus.jcfg" --disable-colors >"$LOGS/janus.log" 2>&1 &
  started $! janus
  JANUS_PID=$!
  deadline=$((SECONDS + 15))
  until janus_answers "ws://127.0.0.1:$janus_port" 2>/dev/null; do
    running "$JANUS_PID" || die "janus exited while starting: $(tail -n 5 "$LOGS/janus.log")"
    ((SECONDS < deadline)) || die "janus is not answering on 127.0.0.1:$janus_port (log: $LOGS/janus.log)"
    sleep 0.3
  done
  export JANUS_URLS="ws://127.0.0.1:$janus_port" JANUS_API_SECRET
  JANUS_NOTE="janus, pid $JANUS_PID, API ws://127.0.0.1:$janus_port (media on this machine's address)"
fi

# --- settings shared by every process --------------------------------------------------------
if [[ -z ${SECRET_KEY:-} ]]; then
  if [[ ! -s $CLUSTER_DIR/secret_key ]]; then
    (umask 077 && "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(50))' >"$CLUSTER_DIR/secret_key")
  fi
  SECRET_KEY=$(<"$CLUSTER_DIR/secret_key")
fi
export SECRET_KEY REDIS_URL
export DEBUG=0 HTTPS=0
export ALLOWED_HOSTS=${ALLOWED_HOSTS:-127.0.0.1,localhost}
export DATABASE_URL=${DATABASE_URL:-sqlite:///$CLUSTER_DIR/db.sqlite3}
export STATIC_ROOT=${STATIC_ROOT:-$CLUSTER_DIR/static}
# nginx serves /static/ from STATIC_ROOT; the workers need not look in the source folders.
export WHITENOISE_USE_FINDERS=0
export DJANGO_SETTINGS_MODULE=config.settings

say "migrate ($DATABASE_URL)"
"$PYTHON" manage.py migrate --noinput
say "collectstatic -> $STATIC_ROOT"
"$PYTHON" manage.py collectstatic --noinput -v 0

# --- daphne workers ----------------------------------------------------------------------------
upstream_servers=""
declare -a WORKER_PIDS=()
for ((n = 1; n <= WORKERS; n++)); do
  wport=$((WORKER_PORT_BASE + n - 1))
  WORKER_ID=$n "$DAPHNE" -b 127.0.0.1 -p "$wport" --proxy-headers \
    --access-log "$LOGS/worker-$n-access.log" config.asgi:application \
    >"$LOGS/worker-$n.log" 2>&1 &
  started $! "worker $n"
  WORKER_PIDS+=($!)
  upstream_servers+="        server 127.0.0.1:$wport max_fails=1 fail_timeout=5s;"$'\n'
done

worker_up() { # port: any HTTP answer counts
  [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/accounts/login/") != 000 ]]
}
for ((n = 1; n <= WORKERS; n++)); do
  pid=${WORKER_PIDS[n - 1]}
  wport=$((WORKER_PORT_BASE + n - 1))
  deadline=$((SECONDS + 60))
  until worker_up "$wport"; do
    running "$pid" || die "worker $n exited while starting: $(tail -n 5 "$LOGS/worker-$n.log")"
    ((SECONDS < deadline)) || die "worker $n is not answering on 127.0.0.1:$wport (log: $LOGS/worker-$n.log)"
    sleep 0.3
  done
done

# --- nginx ---------------------------------------------------------------------------------------
template=$(<"$REPO/deploy/nginx.conf")
if [[ -r /etc/nginx/mime.types ]]; then
  mime="include /etc/nginx/mime.types;"
else
  mime="types { text/html html; text/css css; application/javascript js mjs; image/svg+xml svg; image/png png; image/x-icon ico; application/json json; font/woff2 woff2; }"
fi
user_directive="# (not root: nginx runs as the invoking user)"
if ((EUID == 0)); then
  # Started as root, nginx would switch its workers to `nobody`, who may not be able to read
  # the state dir (a home directory, say). Keep the invoking user; it only listens on loopback.
  user_directive="user root;"
fi
conf=$template
conf=${conf//@@USER_DIRECTIVE@@/$user_directive}
conf=${conf//@@MIME_TYPES@@/$mime}
conf=${conf//@@STATE_DIR@@/$CLUSTER_DIR}
conf=${conf//@@STATIC_ROOT@@/${STATIC_ROOT%/}}
conf=${conf//@@PORT@@/$PORT}
conf=${conf//@@UPSTREAM_SERVERS@@$'\n'/$upstream_servers}
[[ $conf != *@@* ]] || die "deploy/nginx.conf has a token this script does not fill"
printf '%s\n' "$conf" >"$CLUSTER_DIR/nginx/nginx.conf"

nginx_args=(-p "$CLUSTER_DIR/nginx/" -e "$LOGS/nginx-error.log" -c "$CLUSTER_DIR/nginx/nginx.conf")
"$NGINX" -t -q "${nginx_args[@]}" || die "nginx -t failed on $CLUSTER_DIR/nginx/nginx.conf"
"$NGINX" "${nginx_args[@]}" &
started $! nginx
NGINX_PID=$!
URL="http://127.0.0.1:$PORT/"
wait_until 15 "nginx on 127.0.0.1:$PORT" curl -s -f -o /dev/null -m 2 "${URL}accounts/login/"

echo
say "Confab is at $URL"
say "  workers:  $WORKERS on 127.0.0.1:$WORKER_PORT_BASE..$((WORKER_PORT_BASE + WORKERS - 1)) (WORKER_ID 1..$WORKERS)"
say "  redis:    $REDIS_URL ($REDIS_NOTE)"
say "  turn:     ${TURN_NOTE:-none (calls connect on this machine and its network only)}"
say "  janus:    ${JANUS_NOTE:-none (no SFU rooms)}"
say "  database: $DATABASE_URL"
say "  logs:     $LOGS"
say "Ctrl-C stops everything. Kill one worker (its pid is in the list below) to watch the"
say "others take over its rooms:"
for pid in "${PIDS[@]}"; do say "  pid $pid  ${NAMES[$pid]}"; done
if [[ -t 1 ]]; then
  # This run's workers only (the logs dir keeps earlier runs' files); access logs stay in files.
  tail_files=("$LOGS/nginx-error.log")
  for ((n = 1; n <= WORKERS; n++)); do tail_files+=("$LOGS/worker-$n.log"); done
  tail -n 0 -F "${tail_files[@]}" &
  started $! "log tail"
fi

# --- run until told to stop, or until nginx dies -------------------------------------------
# A worker that dies is reported and left dead: that is what ghost sweeping is for.
while true; do
  exited=""
  wait -n -p exited "${PIDS[@]}" || true
  [[ -n $exited ]] || continue
  say "${NAMES[$exited]:-process} (pid $exited) exited"
  if [[ $exited == "$NGINX_PID" ]]; then
    die "nginx stopped (log: $LOGS/nginx-error.log)"
  fi
  # Forget it, so that shutdown does not signal a PID that may have been reused.
  for i in "${!PIDS[@]}"; do [[ ${PIDS[i]} == "$exited" ]] && unset 'PIDS[i]'; done
  PIDS=("${PIDS[@]}")
  ((${#PIDS[@]})) || exit 1
done
