#!/usr/bin/env bash
# Expose a local HTTP service publicly through iofog-connector: every step
# of README.md, on this machine, in dev mode (plain TCP and HTTP).
#
# From any directory (paths below are from the repository root):
#   examples/expose-http/run.sh                                   # built-in default transport
#   TRANSPORT=websocket PLUGIN_DIR=examples/websocket-transport examples/expose-http/run.sh
#
# Exits 0 when the page fetched through the connector is the one served.
source "$(dirname "$0")/../lib.sh"

step "1. Build the connector"
build_connector

step "2. Start a local HTTP service (the one behind the NAT)"
SVC_PORT=$(free_port)
mkdir "$WORK/www"
echo "hello from behind the NAT, $(date -u +%FT%TZ)" >"$WORK/www/index.html"
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/www" "$SVC_PORT" >"$WORK/http.log" 2>&1 &
PIDS+=($!)
echo "serving $WORK/www on 127.0.0.1:$SVC_PORT"

step "3. Start the connector daemon"
start_daemon

step "4. Add a public mapping over the REST API (as the ioFog Controller does)"
MAPPING="{\"type\":\"public\",\"maxconnections\":60,\"heartbeatabsencethreshold\":200000$(transport_field)}"
echo "curl -X POST --data-urlencode 'mapping=$MAPPING' $API/api/v2/mapping/add"
RESP=$(curl -sf -X POST --data-urlencode "mapping=$MAPPING" "$API/api/v2/mapping/add") || fail "mapping/add"
echo "$RESP"
ID=$(json_get id <<<"$RESP")
PORT1=$(json_get port1 <<<"$RESP")
PORT2=$(json_get port2 <<<"$RESP")
PASS1=$(json_get passcode1 <<<"$RESP")

step "5. Run the agent next to the service: it links to port1 ($PORT1)"
# The passcode goes in a file (0600), not on the command line, where ps
# would show it to every local user.
(umask 077; printf '%s\n' "$PASS1" >"$WORK/passcode1")
# shellcheck disable=SC2046
"$BIN" agent public --connector "127.0.0.1:$PORT1" --passcode-file "$WORK/passcode1" \
	--local "127.0.0.1:$SVC_PORT" $(transport_flags) >"$WORK/agent.log" 2>&1 &
PIDS+=($!)

step "6. Fetch the page from the public port ($PORT2)"
WANT=$(cat "$WORK/www/index.html")
for i in $(seq 100); do
	GOT=$(curl -sf --max-time 5 "http://127.0.0.1:$PORT2/index.html" || true)
	[ "$GOT" = "$WANT" ] && break
	sleep 0.3
done
echo "curl http://127.0.0.1:$PORT2/index.html -> $GOT"
[ "$GOT" = "$WANT" ] || fail "the page through the connector differs from the page served"

step "7. Remove the mapping"
curl -sf -X POST -d "mappingid=$ID" "$API/api/v2/mapping/remove" || fail "mapping/remove"
echo
if curl -sf --max-time 3 "http://127.0.0.1:$PORT2/" >/dev/null 2>&1; then
	fail "the public port still answers after mapping/remove"
fi
echo "public port closed. Done: the local service was reachable through the connector."
