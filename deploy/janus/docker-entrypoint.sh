#!/bin/sh
# The Janus container of deploy/docker-compose.yml: deploy/janus's configs (mounted at
# /etc/confab/janus), with the API secret from JANUS_API_SECRET and the API moved from
# 127.0.0.1:8188 to a Unix socket in /run/janus, a volume only the workers mount (Janus
# shares the host's network, the workers do not). Janus then runs as uid 10001, the
# workers' uid, so that they, and only they, can connect to the socket.
set -eu

CONF_SRC=${CONF_SRC:-/etc/confab/janus}
CONF_DIR=${CONF_DIR:-/tmp/janus}
SOCKET_DIR=${SOCKET_DIR:-/run/janus}
RUN_AS=${RUN_AS:-10001}

[ -n "${JANUS_API_SECRET:-}" ] || { echo "JANUS_API_SECRET is not set" >&2; exit 1; }
case $JANUS_API_SECRET in
  REPLACE-WITH-*) echo "JANUS_API_SECRET is the example's placeholder" >&2; exit 1 ;;
  *[!A-Za-z0-9._~-]*) echo "JANUS_API_SECRET: letters, digits and ._~- only (openssl rand -hex 32)" >&2; exit 1 ;;
esac

umask 077
rm -rf "$CONF_DIR"
mkdir -p "$CONF_DIR"
cp "$CONF_SRC"/janus.jcfg "$CONF_SRC"/janus.plugin.videoroom.jcfg \
  "$CONF_SRC"/janus.transport.websockets.jcfg "$CONF_DIR"/
sed -i "s|^\([[:space:]]*\)api_secret[[:space:]]*=.*|\1api_secret = \"$JANUS_API_SECRET\"|" \
  "$CONF_DIR"/janus.jcfg
# A socket client has no address: ws_acl would refuse it, so it goes with ws_ip.
sed -i -e 's|^\([[:space:]]*\)ws_ip[[:space:]]*=.*|\1# ws_ip: the API is a Unix socket here|' \
  -e 's|^\([[:space:]]*\)ws_acl[[:space:]]*=.*|\1# ws_acl: none for a Unix socket|' \
  -e "s|^\([[:space:]]*\)#ws_unix[[:space:]]*=.*|\1ws_unix = \"$SOCKET_DIR/janus.sock\"|" \
  "$CONF_DIR"/janus.transport.websockets.jcfg
if ! grep -q "api_secret = \"$JANUS_API_SECRET\"" "$CONF_DIR"/janus.jcfg ||
  ! grep -q "ws_unix = \"$SOCKET_DIR/janus.sock\"" "$CONF_DIR"/janus.transport.websockets.jcfg; then
  echo "$CONF_SRC: no api_secret or ws_unix line to set" >&2
  exit 1
fi
chown -R "$RUN_AS:$RUN_AS" "$CONF_DIR"
install -d -o "$RUN_AS" -g "$RUN_AS" -m 0750 "$SOCKET_DIR"

exec setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --clear-groups --inh-caps=-all \
  janus -F "$CONF_DIR" -C "$CONF_DIR"/janus.jcfg --disable-colors
