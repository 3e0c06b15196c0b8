#!/usr/bin/env bash
# Installs and starts what the test suite needs on a fresh Debian machine, and does
# nothing on a machine that already has it. Called by `make test`.
#
# - Debian packages: chromium, firefox-esr and xvfb (browser tests), coturn (TURN tests), janus
#   (the SFU: its driver's tests and SFU rooms in the browser suite), nginx (cluster tests),
#   redis-server and postgresql (channel layer and database tests), gettext (translations),
#   fonts-noto-cjk and fonts-noto-color-emoji (zh-hans pages and reactions render as
#   themselves, not boxes).
# - PostgreSQL answering on 127.0.0.1:5432 and Redis on 127.0.0.1:6379: the machine's own
#   if they run, otherwise started here.
set -euo pipefail

packages=(chromium firefox-esr xvfb fonts-noto-cjk fonts-noto-color-emoji coturn janus nginx-light redis-server postgresql gettext iproute2 util-linux procps)
need_install=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
    || need_install+=("$package")
done
# nginx-light is one of several nginx flavours; any of them will do.
if [[ " ${need_install[*]-} " == *" nginx-light "* ]] && command -v nginx >/dev/null; then
  need_install=("${need_install[@]/nginx-light}")
fi
mapfile -t need_install < <(printf '%s\n' "${need_install[@]-}" | grep -v '^$' || true)

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

if [ "${#need_install[@]}" -gt 0 ]; then
  echo "Installing system packages: ${need_install[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_install[@]}" >/dev/null
fi

# Debian's janus package enables and starts its service with the stock /etc/janus configs:
# HTTP and WebSocket APIs on every interface, no API secret. The tests start Janus
# instances of their own (tests/janus_server.py), so a Janus installed here is switched
# off again; one that was installed before is left as its owner set it up.
if [[ " ${need_install[*]-} " == *" janus "* ]]; then
  if [ -d /run/systemd/system ]; then
    as_root systemctl disable --now janus.service >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/janus ]; then
    as_root invoke-rc.d janus stop >/dev/null 2>&1 || true
    as_root update-rc.d janus disable >/dev/null 2>&1 || true
  fi
fi

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Starting Redis on 127.0.0.1:6379"
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
    --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  echo "Starting PostgreSQL on 127.0.0.1:5432"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.5; done

# The tests connect as `postgres` over TCP. A machine set up for CI trusts loopback; a
# stock Debian cluster asks for a password, so give that role the one the tests use.
if ! psql -h 127.0.0.1 -U postgres -d postgres -Atc 'select 1' >/dev/null 2>&1; then
  as_root runuser -u postgres -- psql -q -c "ALTER ROLE postgres PASSWORD 'postgres'"
fi
