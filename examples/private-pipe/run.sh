#!/usr/bin/env bash
# Join two agents with a private pipe: every step of README.md, on this
# machine, in dev mode. Agent A serves a local echo service; agent B offers
# a local port; bytes written to B's port reach A's service and come back.
#
# From any directory (paths below are from the repository root):
#   examples/private-pipe/run.sh
#   TRANSPORT=websocket PLUGIN_DIR=examples/websocket-transport examples/private-pipe/run.sh
#
# Exits 0 when 1 MiB of random bytes comes back intact (SHA-256).
source "$(dirname "$0")/../lib.sh"

step "1. Build the connector"
build_connector

step "2. Start a local echo service next to agent A"
SVC_PORT=$(free_port)
python3 - "$SVC_PORT" >"$WORK/echo.log" 2>&1 <<'PY' &
import socket, socketserver, sys
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while True:
            b = self.request.recv(65536)
            if not b:
                break
            self.request.sendall(b)
        self.request.shutdown(socket.SHUT_WR)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
PY
PIDS+=($!)
echo "echo service on 127.0.0.1:$SVC_PORT"

step "3. Start the connector daemon"
start_daemon

step "4. Add a private mapping over the REST API (as the ioFog Controller does)"
MAPPING="{\"type\":\"private\",\"maxconnectionsport1\":1,\"maxconnectionsport2\":1,\"heartbeatabsencethresholdport1\":200000,\"heartbeatabsencethresholdport2\":200000$(transport_field)}"
echo "curl -X POST --data-urlencode 'mapping=$MAPPING' $API/api/v2/mapping/add"
RESP=$(curl -sf -X POST --data-urlencode "mapping=$MAPPING" "$API/api/v2/mapping/add") || fail "mapping/add"
echo "$RESP"
ID=$(json_get id <<<"$RESP")
PORT1=$(json_get port1 <<<"$RESP")
PORT2=$(json_get port2 <<<"$RESP")
PASS1=$(json_get passcode1 <<<"$RESP")
PASS2=$(json_get passcode2 <<<"$RESP")

step "5. Agent A (next to the service) links to port1 ($PORT1)"
# The passcodes go in files (0600), not on the command line, where ps
# would show them to every local user.
(umask 077; printf '%s\n' "$PASS1" >"$WORK/passcode1"; printf '%s\n' "$PASS2" >"$WORK/passcode2")
# shellcheck disable=SC2046
"$BIN" agent private --connector "127.0.0.1:$PORT1" --passcode-file "$WORK/passcode1" \
	--local "127.0.0.1:$SVC_PORT" $(transport_flags) >"$WORK/agent-a.log" 2>&1 &
PIDS+=($!)

step "6. Agent B (next to the client) links to port2 ($PORT2) and offers a local port"
B_PORT=$(free_port)
# shellcheck disable=SC2046
"$BIN" agent private --connector "127.0.0.1:$PORT2" --passcode-file "$WORK/passcode2" \
	--listen "127.0.0.1:$B_PORT" $(transport_flags) >"$WORK/agent-b.log" 2>&1 &
PIDS+=($!)

step "7. Send 1 MiB through agent B's port 127.0.0.1:$B_PORT and check the echo"
ok=
for i in $(seq 60); do
	if python3 - "$B_PORT" <<'PY'
import hashlib, os, socket, sys, threading
data = os.urandom(1 << 20)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
def send():
    s.sendall(data); s.shutdown(socket.SHUT_WR)
threading.Thread(target=send, daemon=True).start()
got = bytearray()
while True:
    b = s.recv(65536)
    if not b:
        break
    got += b
ok = hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
print(f"sent {len(data)} bytes, echoed {len(got)}, sha256 equal: {ok}")
sys.exit(0 if ok else 1)
PY
	then ok=1; break; fi
	sleep 0.5
done
[ -n "$ok" ] || fail "no intact echo through the private pipe"

step "8. Remove the mapping"
curl -sf -X POST -d "mappingid=$ID" "$API/api/v2/mapping/remove" || fail "mapping/remove"
echo
echo "Done: the two agents were joined through the connector."
