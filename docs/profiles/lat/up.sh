#!/bin/bash
# up.sh BIN PLUGINDIR TRANSPORT MODE(dev|tls) DIR
# Starts a connector daemon, a public mapping on TRANSPORT, a
# `connector-bench svc` echo service and the mapping's agent, as
# cmd/connector-bench does; prints the public address (and, for tls, the CA
# file to trust). The PIDs are in DIR/pids (daemon, svc, agent): stop them
# with kill $(cat DIR/pids). BENCH is the connector-bench binary (default
# bin/connector-bench); DPPROF/APPROF, when set, are the daemon's and the
# agent's IOFOG_CONNECTOR_PPROF.
set -e
BIN=$1; PD=$2; TR=$3; MODE=$4; DIR=$5
BENCH=${BENCH:-$PWD/bin/connector-bench}
free() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
rm -rf "$DIR"; mkdir -p "$DIR/data"
API=$(free)
DEV=true; SCHEME=http
if [ "$MODE" = tls ]; then
  DEV=false; SCHEME=https
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$DIR/server-key.pem" -out "$DIR/server-cert.pem" -days 1 \
    -subj /CN=connector-bench -addext "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
  openssl ec -in "$DIR/server-key.pem" -out "$DIR/k.pem" 2>/dev/null && mv "$DIR/k.pem" "$DIR/server-key.pem"
fi
P0=$(free)
cat > "$DIR/iofog-connector.conf" <<J
{"ports":["$((41000 + P0 % 20 * 1000))-$((41999 + P0 % 20 * 1000))"],"exclude":[],"broker":12345,"address":"127.0.0.1","dev":$DEV,
 "api-address":"127.0.0.1:$API","bind":"127.0.0.1","transport":"$TR","plugins":{"dir":"$PD"}}
J
cd "$DIR"
IOFOG_CONNECTOR_PPROF=$DPPROF "$BIN" start --config "$DIR/iofog-connector.conf" --data-dir "$DIR/data" > "$DIR/daemon.log" 2>&1 &
echo $! > "$DIR/pids"
for i in $(seq 100); do curl -sk -o /dev/null -X POST $SCHEME://127.0.0.1:$API/api/v2/status && break; sleep 0.1; done
M=$(curl -sk -X POST $SCHEME://127.0.0.1:$API/api/v2/mapping/add \
  --data-urlencode "mapping={\"type\":\"public\",\"maxconnections\":100,\"heartbeatabsencethreshold\":200000,\"transport\":\"$TR\"}")
field() { echo "$M" | python3 -c "import json,sys;print(json.load(sys.stdin)['$1'])"; }
P1=$(field port1); P2=$(field port2); PC=$(field passcode1)
"$BENCH" svc --addr 127.0.0.1:0 > "$DIR/svc.log" 2>&1 &
echo $! >> "$DIR/pids"
for i in $(seq 50); do grep -q . "$DIR/svc.log" && break; sleep 0.1; done
SVC=$(grep -oE '127\.0\.0\.1:[0-9]+' "$DIR/svc.log" | head -1)
if [ "$MODE" = tls ]; then SEC="--ca $DIR/server-cert.pem"; else SEC="--plaintext"; fi
IOFOG_CONNECTOR_PPROF=$APPROF "$BIN" agent public --connector 127.0.0.1:$P1 --passcode "$PC" --local "$SVC" --transport "$TR" $SEC --plugin-dir "$PD" > "$DIR/agent.log" 2>&1 &
echo $! >> "$DIR/pids"
sleep 1.5
if [ "$MODE" = tls ]; then echo "127.0.0.1:$P2 $DIR/server-cert.pem"; else echo "127.0.0.1:$P2"; fi
