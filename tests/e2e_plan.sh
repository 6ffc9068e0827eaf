#!/usr/bin/env bash
# Host evacuation (issue 8, acceptance 4): `ferry-send --plan FILE` runs the
# migrations FILE lists, at most --concurrency at once.  On loopback, one
# ferry-recv (--max-sessions 8, so the limit seen is the sender's) whose
# `ctl SOCKET status` is polled every ~100 ms to count the active sessions.
#  - 4 live guests (32 MiB memory + 4 MiB disk, dirtying), each capped at
#    8 MiB/s, concurrency 2: exit 0, 4 ok lines, the summary, every image
#    equal (cmp) to its source at pause time and `ferry-guest check` passing;
#    at most 2 sessions active at any moment, and 2 at some moment;
#  - --concurrency 1 with 3 entries, one of them refused (its destination
#    file exists with another size): exit 3, summary "2 ok, 1 failed",
#    that guest still running (not stopped), the others migrated; never
#    more than 1 session active;
#  - a plan line with a bad flag: exit 2 naming FILE:LINE, nothing started.
source "$(dirname "$0")/lib.sh"
t_certs
G=$FERRY_BIN/ferry-guest
S=$FERRY_BIN/ferry-send
R=$FERRY_BIN/ferry-recv
mkdir -p "$T/src" "$T/dst" "$T/paused"
SOCK=$T/recv.sock

t_start_recv recv "$T/dst" --max-sessions 8 --ctl "$SOCK" || t_done

# start_guest N: create and run guest gN; sets GPID[N].
declare -A GPID
start_guest() {
	local n=$1
	"$G" create --mem "$T/src/g$n-mem.img" --mem-size 32M --disk "$T/src/g$n-disk.img" \
		--disk-size 4M --seed "$n" >/dev/null || return 1
	"$G" run --mem "$T/src/g$n-mem.img" --disk "$T/src/g$n-disk.img" --dirty-rate 2MiB/s \
		--disk-rate 256KiB/s --pidfile "$T/g$n.pid" 2>"$T/g$n.log" &
	GPID[$n]=$!
	t_bg "${GPID[$n]}"
}

# plan_line N: one entry; its cleanup command snapshots the images at pause
# time, then stops the guest.
plan_line() {
	local n=$1
	echo "g$n --mem $T/src/g$n-mem.img --disk '$T/src/g$n-disk.img' --guest-pid ${GPID[$n]}" \
		"--cleanup-cmd \"cp --sparse=always '$T/src/g$n-mem.img' '$T/src/g$n-disk.img'" \
		"'$T/paused/' && kill -KILL ${GPID[$n]}\""
}

# Poll the receiver's status into FILE (one JSON reply per line) until killed.
poll_status() {
	while :; do
		"$R" ctl "$SOCK" status --json 2>/dev/null
		sleep 0.1
	done >"$1"
}

# active_max FILE / active_ok FILE: the largest number of active sessions in
# the replies, and whether every line was a reply.
active_max() {
	python3 -c '
import json,sys
n=[len(json.loads(l).get("sessions",[])) for l in open(sys.argv[1]) if l.startswith("{")]
print(max(n) if n else -1, len(n))' "$1"
}

wait_guests() {
	local n
	for n in "$@"; do
		for _ in $(seq 1 100); do [ -s "$T/g$n.pid" ] && break; sleep 0.05; done
	done
}

# --- 4 guests, concurrency 2 --------------------------------------------------

for n in 1 2 3 4; do start_guest "$n" || { not_ok "ferry-guest create g$n"; t_done; }; done
wait_guests 1 2 3 4
{
	echo "# evacuation test: four guests"
	echo
	for n in 1 2 3 4; do plan_line "$n"; done
} >"$T/plan1"
poll_status "$T/status1" &
POLL=$!
t_bg "$POLL"
start=$SECONDS
# shellcheck disable=SC2046
"$S" --plan "$T/plan1" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --bandwidth 8MiB/s \
	>"$T/plan1.out" 2>"$T/plan1.log"
rc=$?
el=$((SECONDS - start))
sleep 0.2
kill "$POLL" 2>/dev/null
wait "$POLL" 2>/dev/null
check "plan of 4 guests exits 0 (${el}s)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || diag <"$T/plan1.log"
check "4 ok lines on stderr" [ "$(grep -cE '^ferry-send: level=info msg="plan: g[1-4] ok \(exit 0, ' "$T/plan1.log")" -eq 4 ]
check "summary line: 4 ok, 0 failed" grep -qx 'ferry-send: level=info msg="plan: 4 ok, 0 failed"' "$T/plan1.log"
check "children's log lines are prefixed with the entry name" grep -q '^\[g3\] ferry-send: ' "$T/plan1.log"
for n in 1 2 3 4; do
	check "g$n: memory equals the source at pause time (cmp)" cmp "$T/paused/g$n-mem.img" "$T/dst/g$n-mem.img"
	check "g$n: disk equals the source at pause time (cmp)" cmp "$T/paused/g$n-disk.img" "$T/dst/g$n-disk.img"
	check "g$n: ferry-guest check passes on the destination" \
		bash -c '"$1" check --mem "$2" --disk "$3" >/dev/null 2>&1' _ "$G" "$T/dst/g$n-mem.img" \
		"$T/dst/g$n-disk.img"
done
read -r amax npolls < <(active_max "$T/status1")
check "at most 2 sessions active at once ($amax, $npolls polls)" [ "$amax" -le 2 ] && [ "$npolls" -gt 5 ]
check "2 sessions active at some moment (concurrency used)" [ "$amax" -eq 2 ]
check "receiver committed 4 sessions" [ "$(grep -c '"event":"done".*"result":"ok"' "$T/recv.json")" -eq 4 ]

# --- concurrency 1, one entry refused ---------------------------------------------

for n in 5 6 7; do start_guest "$n" || { not_ok "ferry-guest create g$n"; t_done; }; done
wait_guests 5 6 7
truncate -s 1M "$T/dst/g6-mem.img"       # another size: g6 is refused
{ plan_line 5; plan_line 6; plan_line 7; } >"$T/plan2"
mkdir -p "$T/logs"
poll_status "$T/status2" &
POLL=$!
t_bg "$POLL"
# shellcheck disable=SC2046
"$S" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --bandwidth 16MiB/s --plan "$T/plan2" \
	--concurrency 1 --plan-log-dir "$T/logs" --json >"$T/plan2.json" 2>"$T/plan2.log"
rc=$?
sleep 0.2
kill "$POLL" 2>/dev/null
wait "$POLL" 2>/dev/null
check "plan with a refused entry exits 3 (refused), got $rc" [ "$rc" -eq 3 ]
check "summary line: 2 ok, 1 failed" grep -qx 'ferry-send: level=error msg="plan: 2 ok, 1 failed"' "$T/plan2.log"
check "the failed entry is reported as refused" grep -q '^ferry-send: level=error msg="plan: g6 failed: refused (exit 3, ' "$T/plan2.log"
st=$(awk '{print $3}' "/proc/${GPID[6]}/stat" 2>/dev/null)
check "the refused guest is still running (state $st)" bash -c '[ -n "$1" ] && [ "$1" != T ] && [ "$1" != Z ]' _ "$st"
check "the refused guest's destination was left alone" [ "$(stat -c %s "$T/dst/g6-mem.img")" -eq 1048576 ]
for n in 5 7; do
	check "g$n: migrated, equal at pause time (cmp)" \
		bash -c 'cmp "$1" "$2" && cmp "$3" "$4"' _ "$T/paused/g$n-mem.img" "$T/dst/g$n-mem.img" \
		"$T/paused/g$n-disk.img" "$T/dst/g$n-disk.img"
done
read -r amax npolls < <(active_max "$T/status2")
check "--concurrency 1: at most 1 session active at once ($amax, $npolls polls)" \
	[ "$amax" -eq 1 ] && [ "$npolls" -gt 5 ]
check "--plan-log-dir: per-entry log and JSON files" \
	bash -c 'grep -q "^ferry-send: " "$1/g5.log" && grep -q "\"event\":\"done\"" "$1/g7.json" &&
		grep -q "REFUSE_SIZE" "$1/g6.json"' _ "$T/logs"
check "--json: a plan_result per entry and a final plan event" python3 -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1])]
pr={e["entry"]:e["result"] for e in ev if e["event"]=="plan_result"}
last=ev[-1]
ok = pr=={"g5":"ok","g6":"refused","g7":"ok"} and last["event"]=="plan" and \
  (last["ok"],last["failed"],last["not_started"],last["exit"])==(2,1,0,3)
ok = ok and any(e["event"]=="done" and e.get("entry")=="g5" for e in ev)
sys.exit(0 if ok else 1)' "$T/plan2.json"

# --- a bad line: nothing starts -----------------------------------------------------

printf 'a --mem %s\nb --mem %s --downtime 5fortnights\n' "$T/src/g6-mem.img" "$T/src/g6-mem.img" >"$T/plan3"
# shellcheck disable=SC2046
"$S" --plan "$T/plan3" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) >/dev/null 2>"$T/plan3.log"
rc=$?
check "a plan line with a bad flag: exit 2 naming FILE:LINE ($(head -1 "$T/plan3.log"))" \
	bash -c '[ "$1" -eq 2 ] && grep -q "plan3:2: entry .b.: " "$2" && ! grep -q started "$2"' _ "$rc" "$T/plan3.log"
printf 'a --mem "unterminated\n' >"$T/plan4"
"$S" --plan "$T/plan4" >/dev/null 2>"$T/plan4.log"
check "an unterminated quote: exit 2 naming FILE:LINE" \
	bash -c '[ "$1" -eq 2 ] && grep -q "plan4:1: unterminated \" quote" "$2"' _ $? "$T/plan4.log"

# --- SIGTERM: forwarded, nothing more starts ---------------------------------------

for n in 8 9; do start_guest "$n" || { not_ok "ferry-guest create g$n"; t_done; }; done
wait_guests 8 9
{ plan_line 8; plan_line 9; } >"$T/plan5"
# shellcheck disable=SC2046
"$S" --plan "$T/plan5" --concurrency 1 --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) \
	--bandwidth 2MiB/s >/dev/null 2>"$T/plan5.log" &
PLAN=$!
t_bg "$PLAN"
sleep 1.5
kill -TERM "$PLAN"
wait "$PLAN"
rc=$?
check "SIGTERM during a plan: exit 4 (aborted), got $rc" [ "$rc" -eq 4 ]
check "summary: 0 ok, 1 failed, 1 not started" grep -qx 'ferry-send: level=error msg="plan: 0 ok, 1 failed, 1 not started"' "$T/plan5.log"
[ "$rc" -eq 4 ] || diag <"$T/plan5.log"
for n in 8 9; do
	st=$(awk '{print $3}' "/proc/${GPID[$n]}/stat" 2>/dev/null)
	check "g$n still running after the interrupted plan (state $st)" \
		bash -c '[ -n "$1" ] && [ "$1" != T ] && [ "$1" != Z ]' _ "$st"
done
t_no_sanitizer_reports "the plan runs"
t_done
