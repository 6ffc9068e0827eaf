#!/usr/bin/env bash
# Aborts (issue 3 acceptance 7; RELIABILITY.md row 15 "cancel in every
# state"), on loopback against a live guest:
#  - during pre-copy, from each of the three sources: `ferry-send ctl SOCKET
#    abort`, SIGINT and SIGTERM to ferry-send, `ferry-recv ctl SOCKET abort
#    SESSION` (the sender then gets the receiver's ERROR);
#  - while connecting (SYN never answered; TLS handshake never answered),
#    while negotiating and in pre-flight (the fault proxy delays the
#    receiver's bytes by 1.5 s so each state lasts that long), and during a
#    pause (link reset, reconnects refused: sender abort, receiver abort);
#  - after COMMIT: `ferry-send ctl abort` and SIGTERM are refused, the
#    migration commits, the images equal the source at pause time.
# Each abort: sender exit 4 and JSON result "aborted" with the reason, the
# receiver's session ends (aborted, or its own outage timeout when the
# sender could not tell it), source guest running, destination empty, and
# an immediate new session commits (cmp, ferry-guest check).
# Usage: FERRY_BIN=build bash tests/e2e_abort.sh
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ns.sh"
t_certs
SEND=$FERRY_BIN/ferry-send
RECVB=$FERRY_BIN/ferry-recv

SRC=$T/g
x_guest_create "$SRC" 128M 256M 31 || { not_ok "ferry-guest create"; t_done; }
x_guest_run "$SRC" 4MiB/s 1MiB/s || { not_ok "ferry-guest run"; t_done; }
GP=$GUEST_PID
check "guest is running" guest_running "$GP"
GUEST_ARGS=(--mem "$SRC/mem.img" --disk "$SRC/disk.img" --guest-pid "$GP")

DEST=$T/dest
RCTL=$T/recv.ctl
t_start_recv recv "$DEST" --outage-timeout 3s --ctl "$RCTL" || t_done
R=127.0.0.1:$RECV_PORT
RPID=$RECV_PID
RJ=$T/recv.json

in_range() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
# no_match REGEX FILE: FILE has no line matching REGEX.
no_match() { ! grep -Eq -- "$1" "$2"; }

# recv_ended WHAT N0 RESULT REGEX SECS: the receiver's next session (the
# N0-th done event) ended with RESULT and an error matching REGEX.
recv_ended() {
	local what=$1 n0=$2 res=$3 re=$4 secs=$5 i got err
	for ((i = 0; i < secs * 20; i++)); do
		[ "$(ev_count "$RJ" done)" -gt "$n0" ] && break
		sleep 0.05
	done
	got=$(ev_field "$RJ" done "$n0" result)
	err=$(ev_field "$RJ" done "$n0" error)
	if [ "$got" = "$res" ] && grep_e "$re" "$err"; then
		ok "$what: receiver's session ended: $res ($err)"
	else
		not_ok "$what: receiver's session ended: $res /$re/ (got \"$got\": $err)"
		tail -5 "$T/recv.log" | diag
	fi
}

# precopy_run NAME [ARGS]: a capped migration of the live guest, in
# pre-copy with staging files when this returns.
precopy_run() {
	local name=$1
	shift
	x_send_bg "$name" --to "$R" --bandwidth 20MiB/s --ctl "$T/$name.ctl" "${GUEST_ARGS[@]}" "$@"
	x_wait_state "$T/$name.json" precopy 15 && x_wait_staging "$DEST" 5
	sleep 0.5
}

# --- pre-copy: the three sources ------------------------------------------------------------
n0=$(ev_count "$RJ" done)
precopy_run a1 || not_ok "ctl abort: migration reached pre-copy"
out=$("$SEND" ctl "$T/a1.ctl" abort 2>&1 | tr -s ' \n' ' ')
check "ctl abort in pre-copy: 'ferry-send ctl abort' answers ok ($out)" grep -q '"ok":true' <<<"$out"
x_wait_pid "$SEND_PID" 10
check "ctl abort in pre-copy: ferry-send ends within 2 s ($X_MS ms)" [ "$X_MS" -le 2000 ]
x_check_fail "ctl abort in pre-copy" a1 "$X_RC" 4 aborted 'aborted through the control socket'
recv_ended "ctl abort in pre-copy" "$n0" aborted 'aborted through the control socket' 5
x_check_clean "ctl abort in pre-copy" "$GP" "$DEST" 3
x_followup "ctl abort in pre-copy" "$R" "$DEST"

for sig in INT TERM; do
	n0=$(ev_count "$RJ" done)
	precopy_run "s$sig" || not_ok "SIG$sig: migration reached pre-copy"
	kill "-$sig" "$SEND_PID"
	x_wait_pid "$SEND_PID" 10
	num=$(kill -l "$sig")
	check "SIG$sig in pre-copy: ferry-send ends within 2 s ($X_MS ms)" [ "$X_MS" -le 2000 ]
	x_check_fail "SIG$sig in pre-copy" "s$sig" "$X_RC" 4 aborted "aborted by signal $num"
	recv_ended "SIG$sig in pre-copy" "$n0" aborted "aborted by signal $num" 5
	x_check_clean "SIG$sig in pre-copy" "$GP" "$DEST" 3
	x_followup "SIG$sig in pre-copy" "$R" "$DEST"
done

n0=$(ev_count "$RJ" done)
precopy_run ra || not_ok "receiver abort: migration reached pre-copy"
sid=$("$RECVB" ctl "$RCTL" status --json | python3 -c '
import json,sys
s=json.load(sys.stdin)["sessions"]
print(s[0]["session"] if len(s)==1 else "")')
out=$("$RECVB" ctl "$RCTL" abort "${sid:0:12}" 2>&1 | tr -s ' \n' ' ')
check "receiver abort in pre-copy: 'ferry-recv ctl abort SESSION' answers with the session ($out)" \
	grep -q "\"aborted\":\"$sid\"" <<<"$out"
x_wait_pid "$SEND_PID" 10
check "receiver abort in pre-copy: ferry-send ends within 2 s ($X_MS ms)" [ "$X_MS" -le 2000 ]
x_check_fail "receiver abort in pre-copy" ra "$X_RC" 4 aborted \
	"receiver: aborted by the receiver's operator \(ABORTED\)"
recv_ended "receiver abort in pre-copy" "$n0" aborted "aborted by the receiver's operator" 5
x_check_clean "receiver abort in pre-copy" "$GP" "$DEST" 3
x_followup "receiver abort in pre-copy" "$R" "$DEST"

# --- while connecting ------------------------------------------------------------------------
x_listener full full || not_ok "full-backlog listener started"
x_send_bg c1 --to "127.0.0.1:$LPORT" --connect-timeout 30s --ctl "$T/c1.ctl" "${GUEST_ARGS[@]}"
x_wait_state "$T/c1.json" connecting 5
sleep 1
out=$("$SEND" ctl "$T/c1.ctl" abort 2>&1 | tr -s ' \n' ' ')
check "ctl abort while connecting: 'ferry-send ctl abort' answers ok ($out)" grep -q '"ok":true' <<<"$out"
x_wait_pid "$SEND_PID" 10
check "ctl abort while connecting (SYN unanswered): ends within 2 s ($X_MS ms)" [ "$X_MS" -le 2000 ]
x_check_fail "ctl abort while connecting" c1 "$X_RC" 4 aborted 'aborted through the control socket'
check "ctl abort while connecting: source guest still running" guest_running "$GP"

x_listener silent silent || not_ok "silent listener started"
x_send_bg c2 --to "127.0.0.1:$LPORT" --connect-timeout 30s "${GUEST_ARGS[@]}"
x_wait_state "$T/c2.json" connecting 5
sleep 1
kill -TERM "$SEND_PID"
x_wait_pid "$SEND_PID" 10
check "SIGTERM during the TLS handshake (never answered): ends within 2 s ($X_MS ms)" [ "$X_MS" -le 2000 ]
x_check_fail "SIGTERM during the TLS handshake" c2 "$X_RC" 4 aborted 'aborted by signal 15'
check "SIGTERM during the TLS handshake: source guest still running" guest_running "$GP"
x_followup "aborts while connecting" "$R" "$DEST"

# --- negotiating and pre-flight: the receiver's bytes arrive 1.5 s late -----------------------
x_proxy slow "$R" || not_ok "fault proxy started"
fp latency 1500 down
n0=$(ev_count "$RJ" done)
x_send_bg n1 --to "127.0.0.1:$PROXY_PORT" --ctl "$T/n1.ctl" "${GUEST_ARGS[@]}"
if x_wait_state "$T/n1.json" negotiating 10; then
	out=$("$SEND" ctl "$T/n1.ctl" abort 2>&1 | tr -s ' \n' ' ')
	check "ctl abort while negotiating: 'ferry-send ctl abort' answers ok ($out)" grep -q '"ok":true' <<<"$out"
	x_wait_pid "$SEND_PID" 10
	check "ctl abort while negotiating: was in state negotiating, not later" \
		no_match '"state":"(preflight|precopy)"' "$T/n1.json"
	x_check_fail "ctl abort while negotiating" n1 "$X_RC" 4 aborted 'aborted through the control socket'
	recv_ended "ctl abort while negotiating" "$n0" aborted 'aborted through the control socket' 5
	x_check_clean "ctl abort while negotiating" "$GP" "$DEST" 3
else
	not_ok "ctl abort while negotiating: sender reached state negotiating"
	diag <"$T/n1.log"
fi

n0=$(ev_count "$RJ" done)
x_send_bg n2 --to "127.0.0.1:$PROXY_PORT" "${GUEST_ARGS[@]}"
if x_wait_state "$T/n2.json" preflight 15; then
	# The receiver has accepted (its ACCEPT is in the delayed direction):
	# staging files exist, the sender is still in pre-flight.
	x_wait_staging "$DEST" 2
	staged=$(t_staging_left "$DEST")
	kill -TERM "$SEND_PID"
	x_wait_pid "$SEND_PID" 10
	check "SIGTERM in pre-flight: was in state preflight, not pre-copy (receiver had staged $staged files)" \
		no_match '"state":"precopy"' "$T/n2.json"
	x_check_fail "SIGTERM in pre-flight" n2 "$X_RC" 4 aborted 'aborted by signal 15'
	recv_ended "SIGTERM in pre-flight" "$n0" aborted 'aborted by signal 15' 5
	x_check_clean "SIGTERM in pre-flight" "$GP" "$DEST" 3
else
	not_ok "SIGTERM in pre-flight: sender reached state preflight"
	diag <"$T/n2.log"
fi
fp clear
x_followup "aborts while negotiating and in pre-flight" "$R" "$DEST"

# --- during a pause: the connection is reset and reconnects are refused -------------------------
# pause_run NAME: a migration through the proxy, cut in pre-copy, the
# sender paused and reconnecting in vain when this returns.
pause_run() {
	local name=$1
	x_send_bg "$name" --to "127.0.0.1:$PROXY_PORT" --bandwidth 20MiB/s --ctl "$T/$name.ctl" \
		--keepalive 1s --keepalive-timeout 3s --outage-timeout 60s "${GUEST_ARGS[@]}"
	x_wait_state "$T/$name.json" precopy 15 && x_wait_staging "$DEST" 5
	sleep 0.5
	fp refuse
	fp reset
	x_wait_state "$T/$name.json" paused 5
	sleep 1
}

n0=$(ev_count "$RJ" done)
pause_run p1
check "ctl abort during a pause: sender paused and reconnecting" \
	grep -q '"event":"paused"' "$T/p1.json"
out=$("$SEND" ctl "$T/p1.ctl" abort 2>&1 | tr -s ' \n' ' ')
check "ctl abort during a pause: 'ferry-send ctl abort' answers ok ($out)" grep -q '"ok":true' <<<"$out"
x_wait_pid "$SEND_PID" 10
check "ctl abort during a pause: ferry-send ends within 2 s ($X_MS ms)" [ "$X_MS" -le 2000 ]
x_check_fail "ctl abort during a pause" p1 "$X_RC" 4 aborted 'aborted through the control socket'
# The receiver cannot be told: it ends the session by its own outage timeout.
recv_ended "ctl abort during a pause" "$n0" timeout 'did not resume within the outage timeout' 8
x_check_clean "ctl abort during a pause" "$GP" "$DEST" 8
fp accept
x_followup "ctl abort during a pause" "$R" "$DEST"

n0=$(ev_count "$RJ" done)
pause_run p2
sid=$("$RECVB" ctl "$RCTL" status --json | python3 -c '
import json,sys
s=[x for x in json.load(sys.stdin)["sessions"] if x["state"]=="paused"]
print(s[0]["session"] if len(s)==1 else "")')
check "receiver abort during a pause: the receiver lists the session as paused" [ -n "$sid" ]
out=$("$RECVB" ctl "$RCTL" abort "$sid" 2>&1 | tr -s ' \n' ' ')
check "receiver abort during a pause: 'ferry-recv ctl abort' answers ($out)" grep -q "\"aborted\":\"$sid\"" <<<"$out"
recv_ended "receiver abort during a pause" "$n0" aborted "aborted by the receiver's operator" 3
x_check_clean "receiver abort during a pause" "$GP" "$DEST" 2
fp accept
# The sender learns it when it resumes: RESUMED carries only FAILED (no
# reason), so "aborted" cannot reach it; it must fail, never commit.
x_wait_pid "$SEND_PID" 15
res=$(ev_field "$T/p2.json" done -1 result)
err=$(ev_field "$T/p2.json" done -1 error)
if { [ "$X_RC" -eq 4 ] && [ "$res" = aborted ]; } || { [ "$X_RC" -eq 6 ] && [ "$res" = network ] &&
	grep_e 'receiver failed the session while the connection was down' "$err"; }; then
	ok "receiver abort during a pause: sender fails on reconnect (exit $X_RC, $res: $err)"
else
	not_ok "receiver abort during a pause: sender fails on reconnect (exit $X_RC, $res: $err)"
	diag <"$T/p2.log"
fi
check "receiver abort during a pause: source guest still running after the sender ended" guest_running "$GP"
x_followup "receiver abort during a pause" "$R" "$DEST"

# --- after COMMIT: abort is refused, the migration commits ----------------------------------------
fp clear
fp latency 1500 down
SNAP=$T/paused
n0=$(ev_count "$RJ" done)
x_send_bg k1 --to "127.0.0.1:$PROXY_PORT" --ctl "$T/k1.ctl" "${GUEST_ARGS[@]}" \
	--cleanup-cmd "$(x_snapshot_cmd "$SRC" "$SNAP" "$GP")"
if x_wait_state "$T/k1.json" commit 60; then
	out=$("$SEND" ctl "$T/k1.ctl" abort 2>&1)
	rc=$?
	out=$(tr -s ' \n' ' ' <<<"$out")
	kill -TERM "$SEND_PID" 2>/dev/null
	if [ "$rc" -ne 0 ] && grep -q 'COMMIT is already sent' <<<"$out"; then
		ok "ctl abort after COMMIT: refused ($out)"
	else
		not_ok "ctl abort after COMMIT: refused (exit $rc: $out)"
	fi
	x_wait_pid "$SEND_PID" 30
	check "SIGTERM after COMMIT: refused and logged" grep -q 'abort refused: COMMIT is already sent' "$T/k1.log"
	check "abort after COMMIT: ferry-send exits 0 (got $X_RC)" [ "$X_RC" -eq 0 ]
	check "abort after COMMIT: done result ok" [ "$(ev_field "$T/k1.json" done -1 result)" = ok ]
	recv_ended "abort after COMMIT" "$n0" ok '' 5
	x_verify_guest "abort after COMMIT" "$SNAP" "$DEST"
	check "abort after COMMIT: no staging left" [ "$(t_staging_left "$DEST")" -eq 0 ]
else
	not_ok "abort after COMMIT: sender reached state commit"
	diag <"$T/k1.log"
fi
check "receiver still running at the end" x_alive "$RPID"
t_done
