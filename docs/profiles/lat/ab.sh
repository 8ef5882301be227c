#!/bin/bash
# ab.sh TRANSPORT MODE ROUNDS [N]
# Alternates, ROUNDS times, a 64-byte ping-pong of N round trips (default
# 5000, `connector-bench latency`) against the echo service directly, a tcp
# pipe (BASE binaries), a TRANSPORT pipe of the BASE binaries and one of the
# NEW binaries, all in MODE (dev or tls) and all up at once; prints each
# round's p50s and the medians of the added p50s and their ratios. BASE and
# NEW are directories holding iofog-connector and plugins/.
TR=$1; MODE=$2; R=$3; N=${4:-5000}
HERE=$(cd "$(dirname "$0")" && pwd); BENCH=${BENCH:-$PWD/bin/connector-bench}; export BENCH
T=$(mktemp -d)
lat() { "$BENCH" latency -addr "$1" ${2:+-ca "$2"} -n $N | grep -oE 'p50 [0-9.]+(µs|ms)' |
  awk '{v=$2; if (v ~ /ms/) {sub("ms","",v); v=v*1000} else {sub("µs","",v)}; print v}'; }
read TA TC <<<"$("$HERE/up.sh" "$BASE/iofog-connector" "$BASE/plugins" tcp "$MODE" "$T/tcp")"
read BA BC <<<"$("$HERE/up.sh" "$BASE/iofog-connector" "$BASE/plugins" "$TR" "$MODE" "$T/base")"
read NA NC <<<"$(env $NEWENV "$HERE/up.sh" "$NEW/iofog-connector" "$NEW/plugins" "$TR" "$MODE" "$T/new")"
SVC=$(grep -oE '127\.0\.0\.1:[0-9]+' "$T/tcp/svc.log" | head -1)
for i in $(seq $R); do echo "$(lat $SVC) $(lat $TA $TC) $(lat $BA $BC) $(lat $NA $NC)"; done > "$T/rows"
echo "direct tcp base new (p50, us)"; cat "$T/rows"
python3 - "$T/rows" <<'P'
import sys, statistics as st
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
m = lambda xs: st.median(list(xs))
print("median added p50 (us): tcp %.1f base %.1f new %.1f; median ratio to tcp's: base %.2f new %.2f; median new/base %.3f" % (
    m(r[1]-r[0] for r in rows), m(r[2]-r[0] for r in rows), m(r[3]-r[0] for r in rows),
    m((r[2]-r[0])/(r[1]-r[0]) for r in rows), m((r[3]-r[0])/(r[1]-r[0]) for r in rows),
    m((r[3]-r[0])/(r[2]-r[0]) for r in rows)))
P
for d in tcp base new; do kill $(cat "$T/$d/pids") 2>/dev/null; done
