# Shared helpers of the walk-through scripts (sourced, not run).
# They start everything on 127.0.0.1 in a temp dir and stop what they
# started, by PID, on exit.

set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d)
# A relative PLUGIN_DIR means the caller's directory; the daemon and the
# agent get it absolute, so the scripts run the same from any directory.
if [ -n "${PLUGIN_DIR:-}" ]; then
	PLUGIN_DIR=$(cd "$PLUGIN_DIR" && pwd)
fi
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 30 "$f"; } >&2; done; exit 1; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# port_range N prints "LO-HI" for N consecutive free loopback ports.
port_range() {
	python3 - "$1" <<'PY'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(100):
    lo = random.randint(20000, 60000)
    socks = []
    try:
        for p in range(lo, lo + n):
            s = socket.socket(); s.bind(("127.0.0.1", p)); socks.append(s)
        print(f"{lo}-{lo + n - 1}"); break
    except OSError:
        pass
    finally:
        for s in socks: s.close()
PY
}

# json_get KEY reads a JSON object on stdin and prints one field.
json_get() { python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# build_connector sets BIN, building the connector unless
# IOFOG_CONNECTOR_BIN names one.
build_connector() {
	BIN=${IOFOG_CONNECTOR_BIN:-$WORK/iofog-connector}
	if [ ! -x "$BIN" ]; then
		(cd "$ROOT" && go build -o "$BIN" ./cmd/iofog-connector)
	fi
	echo "connector binary: $BIN"
}

# start_daemon writes dev-mode settings and starts the daemon; sets API.
# PLUGIN_DIR, when set, becomes plugins.dir.
start_daemon() {
	local ports api_port
	ports=$(port_range 10)
	api_port=$(free_port)
	API=http://127.0.0.1:$api_port
	cat >"$WORK/iofog-connector.conf" <<JSON
{
  "ports": ["$ports"],
  "exclude": [],
  "broker": 12345,
  "address": "127.0.0.1",
  "dev": true,
  "api": "127.0.0.1:$api_port",
  "plugins": {"dir": "${PLUGIN_DIR:-}"}
}
JSON
	echo "settings ($WORK/iofog-connector.conf):"; cat "$WORK/iofog-connector.conf"
	"$BIN" start --config "$WORK/iofog-connector.conf" --data-dir "$WORK/data" >"$WORK/daemon.log" 2>&1 &
	PIDS+=($!)
	local i
	for i in $(seq 100); do
		if curl -sf -X POST -d mappingid=all "$API/api/v2/status" >/dev/null 2>&1; then
			echo "daemon is up: $(curl -sf -X POST -d mappingid=all "$API/api/v2/status")"
			return 0
		fi
		sleep 0.2
	done
	fail "the daemon did not answer $API/api/v2/status"
}

# transport_flags prints the agent flags for TRANSPORT and PLUGIN_DIR, and
# --plaintext: the daemon runs in dev mode (no TLS), and the agent speaks
# TLS with certificate verification unless told otherwise.
transport_flags() {
	[ -n "${TRANSPORT:-}" ] && printf -- '--transport %s ' "$TRANSPORT"
	[ -n "${PLUGIN_DIR:-}" ] && printf -- '--plugin-dir %s ' "$PLUGIN_DIR"
	printf -- '--plaintext '
}

# transport_field prints the mapping's "transport" JSON member, if any.
transport_field() {
	[ -n "${TRANSPORT:-}" ] && printf ',"transport":"%s"' "$TRANSPORT"
	true
}
