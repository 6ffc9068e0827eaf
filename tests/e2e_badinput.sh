#!/usr/bin/env bash
# Hostile and refused input against a real ferry-recv.
#
# Frame cases: tests/frames.py (an independent client written from
# proto/PROTOCOL.md) sends malformed frames to one long-lived receiver.  For
# each: the ERROR/REFUSE code on the wire, the text naming frame and field
# (on the wire and in the receiver's JSON "done" event), no file left in the
# destination directory, and the receiver still running.
# Manifest refusals: real ferry-send against real ferry-recv (destination of
# another size, --expect-disks, destination is the source, no space on a
# small tmpfs), plus the same manifest through frames.py for the exact code.
# Ends with a valid scripted session and a real migration that must commit.
# Usage: FERRY_BIN=build bash tests/e2e_badinput.sh
source "$(dirname "$0")/lib.sh"

FRAMES=$REPO/tests/frames.py
SEND=$FERRY_BIN/ferry-send
GUEST=$FERRY_BIN/ferry-guest
SMALL=$T/small
MOUNTED=0

b_cleanup() {
	local p
	# Receivers first (one may hold files on the tmpfs), then the mount.
	for p in "${T_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	if [ "$MOUNTED" = 1 ]; then umount "$SMALL" 2>/dev/null || umount -l "$SMALL"; fi
	t_cleanup
}
trap b_cleanup EXIT

t_certs
mkdir -p "$T/src"

# --- helpers -------------------------------------------------------------------

done_count() { grep -c '"event":"done"' "$1" 2>/dev/null || true; }
# wait_done FILE N: until FILE holds N done events (5 s at most)
wait_done() {
	local _
	for _ in $(seq 1 100); do
		[ "$(done_count "$1")" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}
# dir_files DIR: every entry, hidden ones included, one per line
dir_files() { (cd "$1" && find . -mindepth 1 | sed 's|^\./||' | sort); }
dir_empty() { [ -z "$(dir_files "$1")" ]; }
# wait_empty DIR: until DIR is empty (4 s at most); a receiver that keeps a
# cut session for --outage-timeout removes its staging only then.
wait_empty() {
	local _
	for _ in $(seq 1 80); do
		dir_empty "$1" && return 0
		sleep 0.05
	done
	return 1
}
alive() { kill -0 "$1" 2>/dev/null; }
sum() { sha256sum <"$1" | cut -d' ' -f1; }
# grep_e REGEX STRING: extended regex match on a string
grep_e() { printf '%s\n' "$2" | grep -Eq -- "$1"; }

# A receiver that keeps a cut session for the sender to RESUME holds its
# staging files and a session slot for --outage-timeout: keep that short.
RECV_EXTRA=()
if "$FERRY_BIN/ferry-recv" --help 2>&1 | grep -q -- '--outage-timeout'; then
	RECV_EXTRA=(--outage-timeout 1s --max-sessions 8)
fi
DEST=$T/dest
t_start_recv recv "$DEST" "${RECV_EXTRA[@]}" || { not_ok "ferry-recv started"; t_done; }
RJ=$T/recv.json
NAMED_CODE=0 CODED_CASES=0

# frame_case CASE TOKEN REGEX DESCRIPTION [TIMEOUT]
# TOKEN: what frames.py must see last, e.g. ERROR:PROTO_RANGE.
# REGEX: what the text must contain, on the wire and in the receiver's log.
frame_case() {
	local c=$1 tok=$2 re=$3 what=$4 to=${5:-5}
	local out=$T/fr-$c.out n0 rc err kind=${2%%:*} code=${2#*:} start ms
	n0=$(done_count "$RJ")
	start=$(date +%s%N)
	python3 "$FRAMES" --port "$RECV_PORT" --certs "$T/certs" --timeout "$to" "$c" >"$out" 2>&1
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	if [ $rc -eq 0 ] && grep -Eq "^< $kind code=[0-9]+ $code " "$out"; then
		ok "$what: receiver answers $kind $code ($ms ms)"
	else
		not_ok "$what: receiver answers $kind $code ($ms ms)"
		diag <"$out"
	fi
	if grep -E "^< $kind " "$out" | grep -Eq -- "text=.*$re"; then
		ok "$what: $kind text names it (/$re/)"
	else
		not_ok "$what: $kind text names it (/$re/)"
		grep -E "^< (ERROR|REFUSE) " "$out" | diag
	fi
	wait_done "$RJ" $((n0 + 1))
	err=$(json_done "$RJ" error)
	if grep_e "$re" "$err"; then
		ok "$what: receiver's JSON done error names it"
	else
		not_ok "$what: receiver's JSON done error names it"
		echo "error: $err" | diag
	fi
	CODED_CASES=$((CODED_CASES + 1))
	tail -n 1 "$RJ" | grep -q "$code" && NAMED_CODE=$((NAMED_CODE + 1))
	if wait_empty "$DEST"; then
		ok "$what: destination directory has no file (no staging, no final)"
	else
		not_ok "$what: destination directory has no file (no staging, no final)"
		dir_files "$DEST" | diag
	fi
	check "$what: receiver still running" alive "$RECV_PID"
}

# --- frame cases -----------------------------------------------------------------

frame_case bad_type ERROR:PROTO_TYPE 'type 200' "unknown frame type 200"
frame_case over_limit ERROR:PROTO_LENGTH 'PAGES: length 16777217 > max' \
	"PAGES header saying 16 MiB+1, header only"
# The receiver announced 1 MiB + 4 KiB in WELCOME: one byte more must also be
# refused from the header alone (section 3.3), not after waiting for 1 MiB.
frame_case over_negotiated ERROR:PROTO_LENGTH 'PAGES: length 1052673 > max' \
	"PAGES header saying 1 MiB+4 KiB+1 (over the announced max), header only" 3
frame_case bad_flags ERROR:PROTO 'PAGES: flags 0x80' "PAGES header with flags 0x80"
frame_case bad_index ERROR:PROTO_RANGE 'PAGES: device 1 index 7 ' "PAGES entry index 7 of 3 units"
frame_case lz4_garbage ERROR:PROTO_CODEC 'PAGES: LZ4 entry' "LZ4 entry with garbage"
err=$(json_done "$RJ" error)
check "LZ4 garbage: the error names the entry's unit index 2 ($err)" grep_e 'entry 2|unit 2|index 2' "$err"
frame_case lz4_short ERROR:PROTO_CODEC 'PAGES: LZ4 entry.*100 bytes' \
	"LZ4 entry of a 100-byte input in a 4096-byte unit"
err=$(json_done "$RJ" error)
check "LZ4 short: the error names the entry's unit index 2 ($err)" grep_e 'entry 2|unit 2|index 2' "$err"
frame_case pages_before_manifest ERROR:PROTO_STATE 'PAGES: not allowed in state' "PAGES before MANIFEST"
frame_case ref_bad_hash ERROR:PROTO_HASH 'PAGES: REF entry 1' "REF with a wrong hash"
frame_case bad_magic ERROR:PROTO_VERSION 'HELLO: magic 0x46525932' "HELLO with a bad magic"
frame_case bad_version ERROR:PROTO_VERSION 'HELLO: version 2' "HELLO with version 2"
frame_case commit_bad_digest ERROR:VERIFY "COMMIT: device 1 'fr-mem.img' digest" \
	"COMMIT with a wrong digest"
frame_case unit_1000 REFUSE:REFUSE_UNIT "unit size 1000 " "MANIFEST with unit 1000"
frame_case unit_2m REFUSE:REFUSE_UNIT "unit size 2097152 " "MANIFEST with unit 2 MiB"
frame_case name_dotdot ERROR:PROTO_RANGE 'MANIFEST: device 1 name invalid' \
	"MANIFEST with device name '../x'"

# Truncated PAGES (1000 bytes promised, 100 sent), ended with close_notify and
# with a bare TCP close: no answer is possible; the session fails, staging goes.
for how in notify eof; do
	what="PAGES cut at 100 of 1000 bytes, then $([ $how = notify ] && echo close_notify || echo 'TCP close')"
	n0=$(done_count "$RJ")
	python3 "$FRAMES" --port "$RECV_PORT" --certs "$T/certs" "truncated_$how" >"$T/fr-tr-$how.out" 2>&1
	rc=$?
	check "$what: WELCOME and ACCEPT, nothing else" [ $rc -eq 0 ]
	wait_done "$RJ" $((n0 + 1))
	res=$(json_done "$RJ" result) err=$(json_done "$RJ" error)
	check "$what: receiver's session failed (result $res)" [ -n "$res" -a "$res" != ok ]
	if grep_e 'PAGES' "$err" && grep_e 'truncat|cut short|incomplete' "$err"; then
		ok "$what: receiver's error says the PAGES frame was truncated"
	else
		not_ok "$what: receiver's error says the PAGES frame was truncated"
		echo "error: $err" | diag
	fi
	check "$what: staging removed, destination empty" wait_empty "$DEST"
	check "$what: receiver still running" alive "$RECV_PID"
done

# A PAGES of exactly the max_frame the receiver announced is accepted
# (section 3.3: a side accepts frames up to its own announced value).
n0=$(done_count "$RJ")
python3 "$FRAMES" --port "$RECV_PORT" --certs "$T/certs" max_exact >"$T/fr-max.out" 2>&1
rc=$?
[ $rc -eq 0 ] || diag <"$T/fr-max.out"
check "PAGES of exactly the announced max_frame (1052672 bytes) is applied (ACK)" [ $rc -eq 0 ]
wait_done "$RJ" $((n0 + 1))
check "max-size PAGES: destination empty after the session ends" wait_empty "$DEST"
check "max-size PAGES: receiver still running" alive "$RECV_PID"

# --- manifest refusals, real ferry-send --------------------------------------------

# ssend NAME [ARGS...]: ferry-send with the test's certificates; stdout JSON in
# $T/NAME.sjson, stderr in $T/NAME.serr, exit status in SRC.
ssend() {
	local name=$1 port=$2; shift 2
	# shellcheck disable=SC2046
	timeout 30 "$SEND" --to "127.0.0.1:$port" $(SEND_TLS) --no-progress --json "$@" \
		>"$T/$name.sjson" 2>"$T/$name.serr"
	SRC=$?
}
SENDER_NAMED=0 REFUSALS=0
# refusal_checks NAME RECV_JSON N DESCRIPTION REGEX...: ferry-send exited 3;
# its stderr, its JSON done error and the receiver's (the Nth done event of
# RECV_JSON, the last one) match every REGEX.
refusal_checks() {
	local name=$1 rj=$2 n=$3 what=$4; shift 4
	local serr sjerr rjerr re okk=1
	serr=$(grep 'refused' "$T/$name.serr")
	sjerr=$(json_done "$T/$name.sjson" error)
	wait_done "$rj" "$n"
	rjerr=$(json_done "$rj" error)
	check "$what: ferry-send exits 3 (refused), got $SRC" [ "$SRC" -eq 3 ]
	for re in "$@"; do grep_e "$re" "$serr" || okk=0; done
	if [ $okk = 1 ]; then ok "$what: ferry-send's stderr names it"; else
		not_ok "$what: ferry-send's stderr names it"; diag <"$T/$name.serr"; fi
	okk=1
	for re in "$@"; do grep_e "$re" "$sjerr" || okk=0; done
	if [ $okk = 1 ]; then ok "$what: ferry-send's JSON done error names it"; else
		not_ok "$what: ferry-send's JSON done error names it"; echo "$sjerr" | diag; fi
	okk=1
	for re in "$@"; do grep_e "$re" "$rjerr" || okk=0; done
	if [ $okk = 1 ]; then ok "$what: receiver's JSON done error names it"; else
		not_ok "$what: receiver's JSON done error names it"; echo "$rjerr" | diag; fi
	REFUSALS=$((REFUSALS + 1))
	grep -q 'REFUSE_' "$T/$name.serr" && SENDER_NAMED=$((SENDER_NAMED + 1))
}
# wire_code NAME PORT FILE TOKEN [ARGS]: the same manifest from frames.py
wire_code() {
	local name=$1 port=$2 file=$3 tok=$4; shift 4
	python3 "$FRAMES" --port "$port" --certs "$T/certs" --file "$file" --expect "$tok" "$@" \
		manifest_file >"$T/$name.fr" 2>&1
	local rc=$?
	[ $rc -eq 0 ] || diag <"$T/$name.fr"
	check "$name: the refusal on the wire is ${tok#REFUSE:} (frames.py)" [ $rc -eq 0 ]
}

# 1. The destination exists with another size (main receiver).
head -c 9000 /dev/urandom >"$T/src/sized.img"
head -c 5000 /dev/urandom >"$DEST/sized.img"
before=$(sum "$DEST/sized.img")
n0=$(done_count "$RJ")
ssend size "$RECV_PORT" --disk "$T/src/sized.img"
refusal_checks size "$RJ" $((n0 + 1)) "existing destination of another size" \
	"sized\.img" "5000" "9000"
check "existing destination: file untouched (same sha256)" [ "$(sum "$DEST/sized.img")" = "$before" ]
check "existing destination: no other file created" [ "$(dir_files "$DEST")" = "sized.img" ]
wire_code size "$RECV_PORT" "$T/src/sized.img" REFUSE:REFUSE_SIZE
check "existing destination: still untouched after the scripted manifest" \
	[ "$(sum "$DEST/sized.img")" = "$before" -a "$(dir_files "$DEST")" = "sized.img" ]
rm -f "$DEST/sized.img"
check "existing destination: receiver still running" alive "$RECV_PID"

# 2. --expect-disks 2, one disk sent.
"$GUEST" create --mem "$T/src/g.mem" --mem-size 256K --disk "$T/src/g.disk" --disk-size 1M \
	--seed 3 >/dev/null 2>&1 || not_ok "ferry-guest created the images"
MAIN_PID=$RECV_PID MAIN_PORT=$RECV_PORT
t_start_recv disks "$T/dest-disks" --expect-disks 2 "${RECV_EXTRA[@]}"
ssend disks "$RECV_PORT" --mem "$T/src/g.mem" --disk "$T/src/g.disk"
refusal_checks disks "$T/disks.json" 1 "--expect-disks 2 with one disk" \
	"1 disk" "expects 2|2 expected|expected 2"
check "--expect-disks: destination directory empty" dir_empty "$T/dest-disks"
wire_code disks "$RECV_PORT" "$T/src/g.disk" REFUSE:REFUSE_COUNT
kill "$RECV_PID" 2>/dev/null

# 3. The destination is the source file: --dest-dir is the source directory.
mkdir -p "$T/same"
cp "$T/src/g.disk" "$T/same/g.disk"
before=$(sum "$T/same/g.disk")
t_start_recv same "$T/same" "${RECV_EXTRA[@]}"
ssend same "$RECV_PORT" --disk "$T/same/g.disk"
refusal_checks same "$T/same.json" 1 "destination is the source file" \
	"g\.disk" "source file"
check "same file: source unchanged (same sha256)" [ "$(sum "$T/same/g.disk")" = "$before" ]
check "same file: no other file in the directory" [ "$(dir_files "$T/same")" = "g.disk" ]
wire_code same "$RECV_PORT" "$T/same/g.disk" REFUSE:REFUSE_SAMEFILE
check "same file: still unchanged after the scripted manifest" \
	[ "$(sum "$T/same/g.disk")" = "$before" -a "$(dir_files "$T/same")" = "g.disk" ]
kill "$RECV_PID" 2>/dev/null

# 4. Not enough space: an 8 MiB tmpfs, a 12 MiB (sparse) disk.
mkdir -p "$SMALL"
if mount -t tmpfs -o size=8M tmpfs "$SMALL" 2>"$T/mount.err"; then
	MOUNTED=1
	truncate -s 12M "$T/src/big.img"
	t_start_recv space "$SMALL" "${RECV_EXTRA[@]}"
	ssend space "$RECV_PORT" --disk "$T/src/big.img"
	refusal_checks space "$T/space.json" 1 "not enough space" \
		"$SMALL" "12582912" "8388608|free"
	check "no space: destination empty" dir_empty "$SMALL"
	wire_code space "$RECV_PORT" "$T/src/big.img" REFUSE:REFUSE_SPACE
	check "no space: destination still empty" dir_empty "$SMALL"
	kill "$RECV_PID" 2>/dev/null
	wait "$RECV_PID" 2>/dev/null
	umount "$SMALL" && MOUNTED=0
else
	ok "not enough space # SKIP no tmpfs ($(head -c 80 "$T/mount.err"))"
fi
RECV_PID=$MAIN_PID RECV_PORT=$MAIN_PORT

check "ferry-send names the refusal code (REFUSE_*) in its message ($SENDER_NAMED of $REFUSALS did)" \
	[ "$SENDER_NAMED" -eq "$REFUSALS" ]
check "receiver's JSON done event carries the error code name ($NAMED_CODE of $CODED_CASES frame cases)" \
	[ "$NAMED_CODE" -eq "$CODED_CASES" ]

# --- after all that, valid sessions still commit --------------------------------------

check "main receiver still running after every bad session" alive "$RECV_PID"
python3 "$FRAMES" --port "$RECV_PORT" --certs "$T/certs" valid >"$T/fr-valid.out" 2>&1
rc=$?
if [ $rc -eq 77 ]; then
	ok "scripted valid session commits # SKIP $(grep '^skip' "$T/fr-valid.out")"
else
	[ $rc -eq 0 ] || diag <"$T/fr-valid.out"
	check "scripted valid session (every entry kind, state blob) commits" [ $rc -eq 0 ]
	bad=0
	while read -r _ name want; do
		[ -f "$DEST/$name" ] && [ "$(sum "$DEST/$name")" = "$want" ] || bad=1
	done < <(grep '^expect-sha256 ' "$T/fr-valid.out")
	check "scripted valid session: the three files hold the expected bytes" [ $bad -eq 0 ]
	check "scripted valid session: no staging file left" [ "$(t_staging_left "$DEST")" -eq 0 ]
	# Section 2.1 / 4.10: after COMMITTED the sender closes with close_notify
	# and the receiver answers with its own.
	how=$(sed -n 's/^close: //p' "$T/fr-valid.out")
	check "receiver answers the sender's close_notify after COMMITTED ($how)" \
		[ "$how" = close_notify ]
	rm -f "$DEST"/fr-valid-*
fi

head -c 200000 /dev/urandom >"$T/src/final.img"
n0=$(done_count "$RJ")
ssend final "$RECV_PORT" --disk "$T/src/final.img"
check "a real migration after the bad sessions succeeds (exit $SRC)" [ "$SRC" -eq 0 ]
check "the migrated file is identical" cmp -s "$T/src/final.img" "$DEST/final.img"
wait_done "$RJ" $((n0 + 1))
check "receiver logged the migration as ok" [ "$(json_done "$RJ" result)" = ok ]
check "no staging file left after it" [ "$(t_staging_left "$DEST")" -eq 0 ]

t_no_sanitizer_reports "the receivers' logs"
t_done
