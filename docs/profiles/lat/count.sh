#!/bin/bash
# count.sh BINDIR TRANSPORT MODE [N]
# Per round trip of a 64-byte ping-pong (N, default 10000) through a pipe
# of BINDIR's binaries: context switches, syscalls and CPU time of the
# daemon and of the agent (each with its plugin processes), from perf stat;
# then the daemon's syscalls by kind.
BD=$1; TR=$2; MODE=$3; N=${4:-10000}
HERE=$(cd "$(dirname "$0")" && pwd); BENCH=${BENCH:-$PWD/bin/connector-bench}; export BENCH
T=$(mktemp -d)
read A C <<<"$("$HERE/up.sh" "$BD/iofog-connector" "$BD/plugins" "$TR" "$MODE" "$T/p")"
P=$(sed -n 1p "$T/p/pids"); G=$(sed -n 3p "$T/p/pids")
PP=$(pgrep -P $P | tr '\n' ,); GP=$(pgrep -P $G | tr '\n' ,)
"$BENCH" latency -addr "$A" ${C:+-ca "$C"} -n 500 >/dev/null
EV=context-switches,raw_syscalls:sys_enter,task-clock
for k in read write writev futex epoll_pwait nanosleep sendmsg recvmsg; do EV=$EV,syscalls:sys_enter_$k; done
perf stat -x, -e $EV -p $P${PP:+,${PP%,}} -o "$T/daemon.txt" & D=$!
perf stat -x, -e context-switches,raw_syscalls:sys_enter,task-clock -p $G${GP:+,${GP%,}} -o "$T/agent.txt" & E=$!
sleep 0.3
"$BENCH" latency -addr "$A" ${C:+-ca "$C"} -n $N
kill -INT $D $E; wait $D $E
for w in daemon agent; do
  awk -F, -v n=$N -v w=$w '/context-switches/{c=$1} /raw_syscalls/{s=$1} /task-clock/{t=$1}
    END{printf "%s: %.1f csw/RT  %.1f syscalls/RT  %.1f us CPU/RT\n", w, c/n, s/n, t*1000/n}' "$T/$w.txt"
done
awk -F, -v n=$N '/sys_enter_/{ sub("syscalls:sys_enter_","",$3); if ($1>0) printf "%s %.2f  ", $3, $1/n } END{print ""}' "$T/daemon.txt" | sed 's/^/daemon by kind: /'
kill $(cat "$T/p/pids")
