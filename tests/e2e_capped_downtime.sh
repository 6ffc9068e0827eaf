#!/usr/bin/env bash
# Under a low bandwidth cap the sender must not queue more than a moment of
# data ahead of the wire: otherwise a round looks finished while most of it
# still waits in the queue, the sender switches over early, and the guest
# stays paused until the queue drains.  An incompressible 4 MiB image at
# --bandwidth 1MiB/s takes about 4 s on the wire; the guest (a stand-in
# process stopped with SIGSTOP) must be paused for well under that.
source "$(dirname "$0")/lib.sh"
t_certs
mkdir -p "$T/src"
head -c 4M /dev/urandom >"$T/src/mem.img"
t_start_recv recv "$T/dst" || t_done
sleep 600 &
GUEST=$!
t_bg "$GUEST"
start=$(date +%s%3N)
# shellcheck disable=SC2046
"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --mem "$T/src/mem.img" \
	--guest-pid "$GUEST" --cleanup-cmd true --bandwidth 1MiB/s --downtime 300ms --completion-timeout-per-gib 10000s --json \
	>"$T/send.json" 2>"$T/send.log"
rc=$?
el=$(($(date +%s%3N) - start))
check "capped migration commits (exit $rc, $el ms)" [ "$rc" -eq 0 ]
check "image equal (cmp)" cmp "$T/src/mem.img" "$T/dst/mem.img"
check "it took the cap's time: $el ms for 4 MiB at 1 MiB/s (>= 3000)" [ "$el" -ge 3000 ]
dt=$(json_done "$T/send.json" downtime_ms)
check "guest paused ${dt:-?} ms (<= 500: the queue holds at most about 100 ms of the cap)" \
	[ "${dt:-99999}" -le 500 ]
r1=$(python3 -c '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print([e for e in r if e.get("event") == "round" and e.get("round") == 1][0]["duration_ms"])' "$T/send.json")
check "round 1 lasted ${r1} ms: its bytes were on the wire, not only queued (>= 3500)" [ "${r1:-0}" -ge 3500 ]
[ "$T_FAILED" -eq 0 ] || { diag <"$T/send.log"; tail -5 "$T/recv.log" | diag; }
t_done
