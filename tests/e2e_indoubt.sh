#!/usr/bin/env bash
# A cut at commit time is resolved, never guessed (issue 3 acceptance 4;
# PROTOCOL.md 4.12-4.13 and 6.1; RELIABILITY promise 1).  A live guest
# (64 MiB + 128 MiB, dirtying memory, --guest-pid) migrates through
# ferry-faultproxy on 127.0.0.1; the moment the sender's JSON says
# "switchover" (guest paused, last round going out) the test cuts one
# direction of the link, so that either COMMITTED or COMMIT itself is lost:
#   a. COMMITTED lost: the receiver committed; the sender reconnects,
#      learns "committed", stops the source (cleanup command) and exits 0.
#   b. COMMIT lost: the receiver is cut, its operator aborts the session;
#      the sender reconnects, learns "failed", resumes the guest, exits 6.
#      Twice: drop up (the receiver's close reaches the sender) and drop
#      both (the sender finds the cut by its own heartbeat).
#   c. COMMITTED lost and the receiver unreachable until --outage-timeout:
#      the sender exits 8 (indoubt) with the guest deliberately left paused.
# --max-rounds 1 and a bandwidth cap make the final round last about a
# second, so the fault lands before COMMIT goes out.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_fault.sh"
t_certs
for b in ferry-send ferry-recv ferry-guest ferry-faultproxy; do
	[ -x "$FERRY_BIN/$b" ] || { not_ok "$b is built in $FERRY_BIN"; t_done; }
done

KA=(--keepalive 500ms --keepalive-timeout 2s)
t_start_recv recv "$T/dst" "${KA[@]}" --outage-timeout 30s --ctl "$T/recv.ctl" || t_done
RPID=$RECV_PID
RPORT=$RECV_PORT
RECV_CTL=$T/recv.ctl
fp_start fp "$RPORT" || t_done
SCEN_LOGS="recv fp"
MIGR=(--max-rounds 1 --bandwidth 20MiB/s)

# at_state NAME STATE: wait (polling the JSON file every 10 ms) for sender
# NAME's state event; fails when the sender ended first.
at_state() {
	local end=$(($(now_ms) + 40000))
	until grep -q "\"state\":\"$2\"" "$T/$1.json" 2>/dev/null; do
		if [ "$(now_ms)" -ge "$end" ] || ! kill -0 "$SEND_PID" 2>/dev/null; then
			return 1
		fi
		sleep 0.01
	done
}
sid() { json_done "$T/$1.json" session; }
# wait_recv_event TIMEOUT_S NAME EVENT: the receiver's JSON has EVENT for
# sender NAME's session (the session id is known from the sender's ctl
# status before the sender's own done event).
wait_recv_event() {
	local end=$(($(now_ms) + $1 * 1000)) s
	s=$(sender_status "$T/$2.ctl" session)
	[ -n "$s" ] || s=$(sid "$2")
	SID=$s
	while [ "$(json_count "$T/recv.json" "$3" session "$s")" -eq 0 ]; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.05
	done
}
# recv_field_sid EVENT SID FIELD: FIELD of the receiver's last EVENT of session SID.
recv_field_sid() { json_session_field "$T/recv.json" "$1" "$2" "$3"; }
next_migration() {
	fpq clear
	small_migration "$1" "$FP_PORT" "$T/dst"
}

# ------------------------------------------------------------- a. committed
say "a: COMMITTED lost (drop down at switchover): the sender learns 'committed'"
live_guest a 64M 128M 31 8MiB/s || not_ok "a: guest runs"
GA=$GUEST_PID
send_bg a "$FP_PORT" "$T/a.src" "$GA" "${KA[@]}" "${MIGR[@]}" --outage-timeout 30s
if at_state a switchover; then
	t_drop=$(now_ms)
	fpq drop down
	say "a: switchover seen, acknowledgements and COMMITTED now dropped"
	if wait_recv_event 20 a done; then
		t_commit=$(json_first_ts "$T/recv.json" done session "$SID")
		check "a: the receiver committed ($(recv_field_sid done "$SID" result)) $((t_commit - t_drop)) ms after the drop" \
			[ "$(recv_field_sid done "$SID" result)" = ok ]
	else
		not_ok "a: the receiver committed"
	fi
	check "a: the sender has not heard it: guest still paused (state $(proc_state "$GA"))" guest_stopped "$GA"
	check "a: the cleanup command has not run yet" [ ! -e "$T/a.cleaned" ]
	sleep 2
	fpq undrop
	t_heal=$(now_ms)
	fpq reset
else
	not_ok "a: the sender reached switchover"
fi
wait_pid "$SEND_PID" 30
rc=$WAIT_RC
s_ts=$(json_first_ts "$T/a.json" done)
el=$((${s_ts:-0} - ${t_heal:-0}))
check "a: ferry-send exits 0 ($rc), done $el ms after the link healed" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || show_logs a recv fp
check "a: done event ok" [ "$(json_done "$T/a.json" result)" = ok ]
ck "a: the sender paused in the commit phase and resumed" \
	'[ "$(json_count "$T/a.json" paused phase commit)" -ge 1 ] && [ "$(json_count "$T/a.json" resumed)" -ge 1 ]'
check "a: the sender logged that it learned the outcome" grep -q "committed" "$T/a.log"
check "a: the cleanup command ran (source stopped for good)" [ -s "$T/a.cleaned" ]
check "a: the source guest is gone (state $(proc_state "$GA"))" bash -c "! kill -0 $GA 2>/dev/null || [ \"\$(sed -n 's/.*) \(.\) .*/\1/p' /proc/$GA/stat)\" = Z ]"
verify_dest a "$T/dst"
check "a: no staging file left" [ "$(t_staging_left "$T/dst")" -eq 0 ]
rm -rf "$T/dst/mem.img" "$T/dst/disk.img" "$T/a.src" "$T/a.paused"
next_migration a-next

# ------------------------------------------------------------- b. not committed
# not_committed NAME DIR SEED: at switchover drop DIR (up: exactly what the
# scenario asks: COMMIT and the final frames never arrive; both: the same,
# and the receiver's own close never reaches the sender either, so the
# sender notices the cut by its heartbeat).
not_committed() {
	local n=$1 dir=$2 g s_ts el out err gp rc t_drop t_cut t_heal=""
	say "$n: COMMIT lost (drop $dir at switchover), receiver operator aborts: the sender learns 'failed'"
	live_guest "$n" 64M 128M "$3" 8MiB/s || not_ok "$n: guest runs"
	g=$GUEST_PID
	send_bg "$n" "$FP_PORT" "$T/$n.src" "$g" "${KA[@]}" "${MIGR[@]}" --outage-timeout 30s
	if at_state "$n" switchover; then
		t_drop=$(now_ms)
		fpq drop "$dir"
		say "$n: switchover seen, $dir now dropped"
		if wait_recv_event 20 "$n" paused; then
			t_cut=$(json_first_ts "$T/recv.json" paused session "$SID")
			ok "$n: the receiver's heartbeat cut its side $((t_cut - t_drop)) ms after the drop ($(recv_field_sid paused "$SID" reason))"
		else
			not_ok "$n: the receiver's heartbeat cut its side"
		fi
		at_state "$n" commit
		check "$n: the sender sent COMMIT and waits: guest still paused (state $(proc_state "$g"))" guest_stopped "$g"
		out=$("$FERRY_BIN/ferry-recv" ctl "$RECV_CTL" abort "${SID:0:12}" 2>&1)
		check "$n: ferry-recv ctl abort ${SID:0:12} ($(tr -d '\n ' <<<"$out"))" grep -q "$SID" <<<"$out"
		wait_recv_event 5 "$n" done
		check "$n: the receiver's done event says aborted ($(recv_field_sid done "$SID" result))" \
			[ "$(recv_field_sid done "$SID" result)" = aborted ]
		expect_dest_empty "$n" "$T/dst" 3
		fpq undrop
		t_heal=$(now_ms)
		fpq reset
	else
		not_ok "$n: the sender reached switchover"
	fi
	wait_pid "$SEND_PID" 30
	rc=$WAIT_RC
	s_ts=$(json_first_ts "$T/$n.json" done)
	el=$((${s_ts:-0} - ${t_heal:-0}))
	check "$n: ferry-send exits 6 (network: the receiver failed the session) ($rc)" [ "$rc" -eq 6 ]
	check "$n: it waited for the link to heal and asked: done $el ms after the heal (>= 0)" [ "$el" -ge 0 ]
	ck "$n: it paused in the commit phase and resumed to learn the outcome" \
		'[ "$(json_count "$T/$n.json" paused phase commit)" -ge 1 ] && [ "$(json_count "$T/$n.json" resumed)" -ge 1 ]'
	err=$(json_done "$T/$n.json" error)
	check "$n: the message says the receiver failed the session ($err)" grep -q "receiver failed the session" <<<"$err"
	check "$n: the sender resumed the guest: it runs again (state $(proc_state "$g"))" guest_runs "$g"
	gp=$(json_done "$T/$n.json" guest_paused)
	check "$n: done event: guest_paused $gp" [ "$gp" = False ]
	check "$n: the cleanup command never ran" [ ! -e "$T/$n.cleaned" ]
	expect_dest_empty "$n" "$T/dst" 2
	[ "$el" -ge 0 ] && guest_runs "$g" || show_logs "$n" recv fp
	kill -KILL "$g" 2>/dev/null
	rm -rf "$T/$n.src" "$T/$n.paused"
	next_migration "$n-next"
}
not_committed b up 32
not_committed b2 both 34

# ------------------------------------------------------------- c. in doubt
say "c: COMMITTED lost and the receiver unreachable (--outage-timeout 4s): in doubt"
live_guest c 64M 128M 33 8MiB/s || not_ok "c: guest runs"
GC=$GUEST_PID
send_bg c "$FP_PORT" "$T/c.src" "$GC" "${KA[@]}" "${MIGR[@]}" --outage-timeout 4s
t_drop=$(now_ms)
if at_state c switchover; then
	t_drop=$(now_ms)
	fpq drop down
	say "c: switchover seen, acknowledgements and COMMITTED now dropped"
	at_state c commit
	# COMMIT has left: wait until the receiver has it, then take the
	# receiver away for good.
	wait_recv_event 3 c done
	fpq refuse
	fpq reset
else
	not_ok "c: the sender reached switchover"
fi
wait_pid "$SEND_PID" 20
rc=$WAIT_RC
s_ts=$(json_first_ts "$T/c.json" done)
el=$((${s_ts:-0} - t_drop))
check "c: ferry-send exits 8 (indoubt) ($rc)" [ "$rc" -eq 8 ]
ck "c: it gave up $el ms after the last byte could arrive (3000..6000: --outage-timeout 4s + slack)" \
	'[ -n "$s_ts" ] && [ "$el" -ge 3000 ] && [ "$el" -le 6000 ]'
err=$(json_done "$T/c.json" error)
check "c: the message tells the operator how to decide ($err)" \
	bash -c "grep -q 'ferry-recv ctl SOCKET status' <<<\"\$1\" && grep -q 'stop the source' <<<\"\$1\" && grep -q 'resume it' <<<\"\$1\"" _ "$err"
{ [ "$rc" -eq 8 ] && [ "$T_FAILED" -eq 0 ]; } || show_logs c recv fp
check "c: the guest is deliberately left paused (state $(proc_state "$GC"))" guest_stopped "$GC"
gp=$(json_done "$T/c.json" guest_paused)
check "c: done event: guest_paused $gp" [ "$gp" = True ]
check "c: the cleanup command never ran" [ ! -e "$T/c.cleaned" ]
SID=$(sid c)
check "c: the receiver did commit that session (its JSON: $(recv_field_sid done "$SID" result))" \
	[ "$(recv_field_sid done "$SID" result)" = ok ]
status=$("$FERRY_BIN/ferry-recv" ctl "$RECV_CTL" status --json 2>&1)
check "c: ferry-recv ctl status lists it as ok in its history" python3 -c '
import json,sys
d=json.loads(sys.argv[1])
sys.exit(0 if any(h["session"]==sys.argv[2] and h["result"]=="ok" for h in d["history"]) else 1)' "$status" "$SID"
# The operator's decision: the destination committed, so stop the source.
kill -KILL "$GC" 2>/dev/null
rm -rf "$T/dst/mem.img" "$T/dst/disk.img" "$T/c.src" "$T/c.paused"
fpq accept
next_migration c-next

check "the receiver is still running" kill -0 "$RPID"
check "no sanitizer report in any log" bash -c "! grep -lE 'Sanitizer|runtime error' '$T'/*.log"
t_done
