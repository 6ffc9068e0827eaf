#!/usr/bin/env bash
# Timeouts and local failures (issue 3 acceptance 5; RELIABILITY.md rows 9
# through the proxy, 14, 16, 17), on loopback, against a live guest
# (256 MiB memory + 512 MiB disk, dirtying memory):
#  - sender connect timeout (a listener whose accept queue is full drops
#    the SYN) and TLS handshake timeout (a listener that never answers);
#  - receiver handshake timeout (a TCP client that sends nothing, a TLS
#    client that sends no HELLO);
#  - sender progress timeout (proxy drops the receiver's bytes) and
#    receiver progress timeout (proxy stalls the sender's bytes);
#  - completion timeout (--completion-timeout-per-gib);
#  - row 14: sender killed -> receiver fails the session after its own
#    --outage-timeout, staging removed;
#  - row 16: destination tmpfs filled after acceptance -> ENOSPC named with
#    path and bytes, no retry, clean failure;
#  - row 17: destination directory unwritable (receiver runs as nobody) or
#    missing -> refused at pre-flight, before any bulk data.
# Every failure: exit status and JSON result, source guest running (not
# stopped), destination empty, receiver still serving (a following small
# migration commits and compares equal).
# Usage: FERRY_BIN=build bash tests/e2e_timeouts.sh
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_ns.sh"
t_certs

SRC=$T/g
x_guest_create "$SRC" 256M 512M 21 || { not_ok "ferry-guest create"; t_done; }
x_guest_run "$SRC" 4MiB/s 1MiB/s || { not_ok "ferry-guest run"; t_done; }
GP=$GUEST_PID
check "guest is running" guest_running "$GP"
GUEST_ARGS=(--mem "$SRC/mem.img" --disk "$SRC/disk.img" --guest-pid "$GP")

DEST=$T/dest
t_start_recv recv "$DEST" --outage-timeout 3s --handshake-timeout 2s || t_done
R1=$RECV_PID R1_PORT=$RECV_PORT

# in_range VALUE LOW HIGH
in_range() { [ "$1" -ge "$2" ] && [ "$1" -le "$3" ]; }
# no_bulk JSON: the sender never reached pre-copy, sent no round, no bytes.
no_bulk() {
	[ "$(ev_count "$1" round)" -eq 0 ] && ! grep -q '"state":"precopy"' "$1" &&
		[ "$(ev_field "$1" done -1 logical_bytes)" = 0 ]
}

# --- sender: connect timeout ------------------------------------------------------
x_listener full full || not_ok "full-backlog listener started"
x_send_bg conn --to "127.0.0.1:$LPORT" --connect-timeout 1s "${GUEST_ARGS[@]}"
x_wait_pid "$SEND_PID" 15
check "connect timeout: ferry-send gives up after ~1 s ($X_MS ms, 900-3500)" in_range "$X_MS" 900 3500
x_check_fail "connect timeout" conn "$X_RC" 5 timeout 'connect to 127\.0\.0\.1:[0-9]+: no answer in 1000 ms'
check "connect timeout: source guest still running" guest_running "$GP"

# --- sender: TLS handshake timeout against a silent listener ---------------------------
x_listener silent silent || not_ok "silent listener started"
x_send_bg hs --to "127.0.0.1:$LPORT" --connect-timeout 1s "${GUEST_ARGS[@]}"
x_wait_pid "$SEND_PID" 10
if [ "$X_RC" -eq 124 ]; then
	not_ok "TLS handshake timeout: ferry-send gives up within ~1-4 s (still waiting after 10 s: killed)"
	diag <"$T/hs.log"
else
	check "TLS handshake timeout: ferry-send gives up within ~1-4 s ($X_MS ms)" in_range "$X_MS" 900 4000
fi
x_check_fail "TLS handshake timeout" hs "$X_RC" 5 timeout '(TLS|handshake)'
check "TLS handshake timeout: source guest still running" guest_running "$GP"

# --- receiver: handshake timeout ---------------------------------------------------------
out=$(python3 "$T/xhelp.py" client-silent "$R1_PORT" 10)
ms=${out#* }
if [ "${out%% *}" = closed ] && in_range "$ms" 1800 4500; then
	ok "receiver handshake timeout: a silent TCP client is closed after ~2 s ($ms ms)"
else
	not_ok "receiver handshake timeout: a silent TCP client is closed after ~2 s ($out)"
fi
check "receiver handshake timeout: logged (no TLS handshake within 2000 ms)" \
	x_wait_grep "$T/recv.log" 'no TLS handshake within the handshake timeout \(2000 ms\); closed' 2
out=$(python3 "$T/xhelp.py" client-tls-silent "$R1_PORT" "$T/certs" receiver 10 2>&1 | tail -1)
ms=${out#* }
if [ "${out%% *}" = closed ] && in_range "$ms" 1800 4500; then
	ok "receiver handshake timeout: a TLS client sending no HELLO is closed after ~2 s ($ms ms)"
else
	not_ok "receiver handshake timeout: a TLS client sending no HELLO is closed after ~2 s ($out)"
fi
check "receiver handshake timeout: logged (no HELLO or RESUME within 2000 ms)" \
	x_wait_grep "$T/recv.log" 'no HELLO or RESUME within the handshake timeout \(2000 ms\); closed' 2
check "receiver handshake timeout: receiver still running" x_alive "$R1"
check "receiver handshake timeout: destination directory empty" dir_empty "$DEST"
x_followup "receiver handshake timeout" "127.0.0.1:$R1_PORT" "$DEST"

# --- sender progress timeout: the receiver's bytes are dropped -------------------------------
x_proxy p1 "127.0.0.1:$R1_PORT" || not_ok "fault proxy started"
n0=$(ev_count "$T/recv.json" done)
x_send_bg prog --to "127.0.0.1:$PROXY_PORT" --progress-timeout 3s --keepalive 1s \
	--keepalive-timeout 30s --bandwidth 20MiB/s "${GUEST_ARGS[@]}"
x_wait_state "$T/prog.json" precopy 15
sleep 1
fp drop down
t0=$(now_ms)
x_wait_pid "$SEND_PID" 30
ms=$(($(now_ms) - t0))
check "sender progress timeout: fails ~3 s after the acknowledgements stop ($ms ms, 2500-8000)" \
	in_range "$ms" 2500 8000
x_check_fail "sender progress timeout" prog "$X_RC" 5 timeout 'no progress for [0-9]+ ms \(--progress-timeout\)'
check "sender progress timeout: no false dead-peer cut (paused events: $(ev_count "$T/prog.json" paused))" \
	[ "$(ev_count "$T/prog.json" paused)" -eq 0 ]
x_wait_grep "$T/recv.json" '"event":"done"' 1
x_check_clean "sender progress timeout" "$GP" "$DEST" 8
e=$(ev_field "$T/recv.json" done "$n0" error)
check "sender progress timeout: the receiver was told (its done error: $e)" grep_e '^sender: no progress for [0-9]+ ms' "$e"
fp clear
x_followup "sender progress timeout" "127.0.0.1:$R1_PORT" "$DEST"

# --- receiver progress timeout: the sender's bytes are stalled ---------------------------------
DEST2=$T/dest2
t_start_recv recv2 "$DEST2" --progress-timeout 3s --keepalive 1s --keepalive-timeout 30s \
	--outage-timeout 3s || t_done
R2=$RECV_PID R2_PORT=$RECV_PORT
x_proxy p2 "127.0.0.1:$R2_PORT" || not_ok "fault proxy started"
x_send_bg rprog --to "127.0.0.1:$PROXY_PORT" --bandwidth 20MiB/s "${GUEST_ARGS[@]}"
x_wait_state "$T/rprog.json" precopy 15
sleep 1
fp stall up
t0=$(now_ms)
x_wait_pid "$SEND_PID" 30
ms=$(($(now_ms) - t0))
check "receiver progress timeout: sender told ~3 s after its frames stop ($ms ms, 2500-10000)" \
	in_range "$ms" 2500 10000
x_check_fail "receiver progress timeout" rprog "$X_RC" 5 timeout \
	'receiver: no pages applied for [0-9]+ ms \(--progress-timeout\)'
x_wait_grep "$T/recv2.json" '"event":"done"' 2
check "receiver progress timeout: receiver's result is timeout ($(ev_field "$T/recv2.json" done 0 error))" \
	[ "$(ev_field "$T/recv2.json" done 0 result)" = timeout ]
check "receiver progress timeout: receiver logged it" \
	grep -Eq 'timeout: no pages applied for [0-9]+ ms \(--progress-timeout\)' "$T/recv2.log"
x_check_clean "receiver progress timeout" "$GP" "$DEST2" 8
fp clear
x_followup "receiver progress timeout" "127.0.0.1:$R2_PORT" "$DEST2"

# --- completion timeout ----------------------------------------------------------------------
# 4 s per GiB of a 768 MiB guest = 3000 ms: long enough for the session to
# be in pre-copy with staging files, far too short at 20 MiB/s.
n0=$(ev_count "$T/recv.json" done)
t0=$(now_ms)
x_send_bg compl --to "127.0.0.1:$R1_PORT" --completion-timeout-per-gib 4s --bandwidth 20MiB/s \
	"${GUEST_ARGS[@]}"
check "completion timeout: staging files exist during the migration" x_wait_staging "$DEST" 5
x_wait_pid "$SEND_PID" 30
ms=$(($(now_ms) - t0))
check "completion timeout: fails ~3 s after start ($ms ms, 2800-7000)" in_range "$ms" 2800 7000
x_check_fail "completion timeout" compl "$X_RC" 5 timeout \
	'migration not complete after 3000 ms \(--completion-timeout-per-gib\)'
# The receiver learns it by an ERROR frame or, failing that, by its own
# outage timeout (3 s): the staging files must be gone by then.
x_check_clean "completion timeout" "$GP" "$DEST" 10
x_wait_grep "$T/recv.json" '"event":"done"' 1
e=$(ev_field "$T/recv.json" done "$n0" error)
check "completion timeout: the receiver was told by an ERROR frame ($(ev_field "$T/recv.json" done "$n0" result): $e)" \
	grep_e 'sender: migration not complete after' "$e"
check "completion timeout: the receiver's result is timeout too ($(ev_field "$T/recv.json" done "$n0" result))" \
	[ "$(ev_field "$T/recv.json" done "$n0" result)" = timeout ]
x_followup "completion timeout" "127.0.0.1:$R1_PORT" "$DEST"

# --- row 14: sender killed ------------------------------------------------------------------
n0=$(ev_count "$T/recv.json" done)
x_send_bg killed --to "127.0.0.1:$R1_PORT" --bandwidth 20MiB/s "${GUEST_ARGS[@]}"
x_wait_state "$T/killed.json" precopy 15
x_wait_staging "$DEST" 5
sleep 1
kill -KILL "$SEND_PID"
t0=$(now_ms)
wait "$SEND_PID" 2>/dev/null
for _ in $(seq 1 200); do
	[ "$(ev_count "$T/recv.json" done)" -gt "$n0" ] && break
	sleep 0.05
done
ms=$(($(now_ms) - t0))
check "sender killed: receiver fails the session after its --outage-timeout 3s ($ms ms, 2500-10000)" \
	in_range "$ms" 2500 10000
check "sender killed: receiver result is timeout" [ "$(ev_field "$T/recv.json" done "$n0" result)" = timeout ]
check "sender killed: receiver log says the sender did not resume within the outage timeout" \
	grep -Eq 'sender did not resume within the outage timeout \(3000 ms\)' "$T/recv.log"
x_check_clean "sender killed" "$GP" "$DEST" 5
check "sender killed: receiver still running" x_alive "$R1"
x_followup "sender killed" "127.0.0.1:$R1_PORT" "$DEST"

# --- row 16: disk full after acceptance --------------------------------------------------------
SMALL=$T/small
mkdir -p "$SMALL"
if mount -t tmpfs -o size=100M ferry-test "$SMALL" 2>"$T/mount.err"; then
	x_undo "umount '$SMALL' || umount -l '$SMALL'"
	mkdir -p "$SMALL/dest"
	t_start_recv recv3 "$SMALL/dest" --outage-timeout 3s || t_done
	R3=$RECV_PID R3_PORT=$RECV_PORT
	x_random "$T/rnd80.img" 80
	# Pre-flight sees 100 MiB free for 80 MiB: accepted.  Then a filler takes
	# the rest of the tmpfs while the capped migration runs.
	x_send_bg full --to "127.0.0.1:$R3_PORT" --disk "$T/rnd80.img" --bandwidth 10MiB/s
	x_wait_state "$T/full.json" precopy 15
	check "disk full: accepted at pre-flight, staging file created" x_wait_staging "$SMALL/dest" 5
	sleep 1
	dd if=/dev/zero of="$SMALL/filler" bs=1M count=200 2>/dev/null
	x_wait_pid "$SEND_PID" 30
	x_check_fail "disk full" full "$X_RC" 1 error \
		"writing '$SMALL/dest/\.ferry-[0-9a-f]+-rnd80\.img\.part' at offset [0-9]+ \([0-9]+ bytes\): No space left on device"
	x_wait_grep "$T/recv3.json" '"event":"done"' 2
	check "disk full: receiver result is error ($(ev_field "$T/recv3.json" done 0 result))" \
		[ "$(ev_field "$T/recv3.json" done 0 result)" = error ]
	check "disk full: receiver log names the path and the bytes" \
		grep -Eq "writing '[^']*\.part' at offset [0-9]+ \([0-9]+ bytes\): No space left on device" "$T/recv3.log"
	sleep 2
	conns=$(grep -c 'TLS session with' "$T/recv3.log")
	pauses=$(ev_count "$T/full.json" paused)
	check "disk full: no retry loop (1 connection: $conns seen; no pause: $pauses)" \
		[ "$conns.$pauses" = 1.0 ]
	x_check_clean "disk full" "" "$SMALL/dest" 5
	rm -f "$SMALL/filler"
	x_followup "disk full" "127.0.0.1:$R3_PORT" "$SMALL/dest"
else
	for w in "exit status" "result" "message" "receiver result" "receiver log" "no retry" \
		"destination empty" "receiver still serving"; do
		ok "disk full: $w # SKIP tmpfs mount failed: $(head -1 "$T/mount.err")"
	done
fi

# --- row 17: destination directory unwritable or missing ------------------------------------------
# Root ignores permissions: the receiver runs as nobody, with a copy of its
# certificates in a directory nobody can read.
NB=$(mktemp -d /tmp/ferry-nobody.XXXXXX)
x_undo "rm -rf '$NB'"
chmod 755 "$NB"
mkdir -p "$NB/certs" "$NB/dest"
cp "$T/certs/receiver.pem" "$T/certs/receiver.key" "$T/certs/ca.pem" "$NB/certs/"
chown -R nobody "$NB/certs"
chmod 0555 "$NB/dest"
setpriv --reuid nobody --regid nogroup --clear-groups "$FERRY_BIN/ferry-recv" --listen 127.0.0.1:0 \
	--cert "$NB/certs/receiver.pem" --key "$NB/certs/receiver.key" --ca "$NB/certs/ca.pem" \
	--dest-dir "$NB/dest" --json >"$T/recv4.json" 2>"$T/recv4.log" &
R4=$!
t_bg "$R4"
R4_PORT=
for _ in $(seq 1 100); do
	R4_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$T/recv4.log" | head -1)
	[ -n "$R4_PORT" ] && break
	sleep 0.05
done
if [ -n "$R4_PORT" ] && [ "$(stat -c %u "/proc/$R4")" != 0 ]; then
	ok "receiver runs as nobody (uid $(stat -c %u "/proc/$R4"))"
	x_send_bg ro --to "127.0.0.1:$R4_PORT" "${GUEST_ARGS[@]}"
	x_wait_pid "$SEND_PID" 20
	x_check_fail "unwritable destination" ro "$X_RC" 3 refused \
		"refused by receiver: destination directory '$NB/dest' is not writable"
	check "unwritable destination: refused before any bulk data (no pre-copy, no round, 0 bytes)" \
		no_bulk "$T/ro.json"
	x_check_clean "unwritable destination" "$GP" "$NB/dest" 2
	rmdir "$NB/dest"
	x_send_bg missing --to "127.0.0.1:$R4_PORT" "${GUEST_ARGS[@]}"
	x_wait_pid "$SEND_PID" 20
	x_check_fail "missing destination" missing "$X_RC" 3 refused \
		"refused by receiver: destination directory '$NB/dest' does not exist"
	check "missing destination: refused before any bulk data (no pre-copy, no round, 0 bytes)" \
		no_bulk "$T/missing.json"
	check "missing destination: source guest still running" guest_running "$GP"
	check "missing destination: no directory created" [ ! -e "$NB/dest" ]
	mkdir "$NB/dest"
	chown nobody "$NB/dest"
	x_followup "unwritable/missing destination" "127.0.0.1:$R4_PORT" "$NB/dest"
else
	for w in "exit status" "result" "message" "no bulk data" "guest running" "destination empty" \
		"missing: exit status" "missing: result" "missing: message" "missing: no bulk data" \
		"missing: guest running" "missing: no directory" "receiver still serving"; do
		ok "unwritable destination: $w # SKIP cannot run ferry-recv as nobody"
	done
	diag <"$T/recv4.log"
fi

check "guest still running at the end" guest_running "$GP"
check "receivers still running at the end" x_alive "$R1"
t_done
