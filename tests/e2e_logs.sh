#!/usr/bin/env bash
# Log lines and readable `ctl status` (issue 8, operator experience), on
# loopback with a small migration (8 MiB memory + 24 MiB random disk at
# 16 MiB/s, about 2 s):
#  - every stderr line of ferry-recv and ferry-send is one logfmt event:
#    "PROG: level=L [key=value]... msg="..."" with a known level, and
#    msg last; the receiver's lines about a session carry session= and
#    peer=, the sender's carry peer= and state=, and session= once the
#    receiver has given one;
#  - --log-level debug adds debug lines (accepted connections), default
#    info has none; --log-level error (command line, and `log-level` in a
#    config file) hides the info lines on both sides, the migration still
#    commits; a bad level is refused (exit 2) naming the flag, also from a
#    config file (FILE:LINE and the key);
#  - -q: a refused migration leaves one error line on each side, with
#    reason=refused and code=REFUSE_COUNT;
#  - under systemd's journal (JOURNAL_STREAM naming stderr) lines start
#    with the syslog priority and no progress line is written;
#  - `ctl SOCKET status` without --json is readable: "State:" lines and
#    sizes with units, for ferry-send during the migration and ferry-recv
#    during and after it; with --json it is one JSON line, as before.
# Usage: FERRY_BIN=build bash tests/e2e_logs.sh
source "$(dirname "$0")/lib.sh"
t_certs
R=$FERRY_BIN/ferry-recv
S=$FERRY_BIN/ferry-send
MIB=1048576

mkdir -p "$T/src" "$T/dst" "$T/dst2" "$T/dst3"
"$FERRY_BIN/ferry-guest" create --mem "$T/src/mem.img" --mem-size 8M --seed 4 >/dev/null ||
	{ not_ok "ferry-guest create"; t_done; }
head -c $((24 * MIB)) /dev/urandom >"$T/src/disk.img"

# A logfmt event: PROG: level=L, keys with bare or quoted values, msg last.
VAL='("([^"\\]|\\.)*"|[^ "=]+)'
logfmt_re() { echo "^$1: level=(error|warn|info|debug)( [a-z_]+=$VAL)* msg=\"([^\"\\\\]|\\\\.)*\"\$"; }

# bad_lines FILE PROG: the lines of FILE that are not logfmt events.
bad_lines() { grep -vE "$(logfmt_re "$2")" "$1"; }

# recv_port JSONFILE: the port of the "listening" event (waits 5 s).
recv_port() {
	local i p
	for i in $(seq 1 100); do
		p=$(sed -n 's/.*"listen":"127\.0\.0\.1:\([0-9]*\)".*/\1/p' "$1" 2>/dev/null | head -1)
		[ -n "$p" ] && { echo "$p"; return 0; }
		sleep 0.05
	done
	return 1
}

# --- a migration at the default level, receiver at debug ------------------------

t_start_recv recv "$T/dst" --log-level debug --ctl "$T/r.sock" || t_done
# shellcheck disable=SC2046
"$S" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --no-progress --json --ctl "$T/s.sock" \
	--mem "$T/src/mem.img" --disk "$T/src/disk.img" --bandwidth 16MiB/s \
	>"$T/send.json" 2>"$T/send.log" &
SEND_PID=$!
t_bg "$SEND_PID"
# Both control sockets while the migration runs.
: >"$T/sstat.txt"
: >"$T/rstat_during.txt"
for _ in $(seq 1 100); do
	"$S" ctl "$T/s.sock" status >"$T/sstat.try" 2>/dev/null
	if grep -q '^State: *precopy' "$T/sstat.try" && grep -qE '[0-9.]+ (KiB|MiB|GiB)' "$T/sstat.try"; then
		cp "$T/sstat.try" "$T/sstat.txt"
		"$R" ctl "$T/r.sock" status >"$T/rstat_during.txt" 2>&1
		"$S" ctl "$T/s.sock" status --json >"$T/sstat.json" 2>&1
		break
	fi
	sleep 0.1
done
wait "$SEND_PID"
rc=$?
check "migration at the default level commits (exit $rc)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || diag <"$T/send.log"
check "disk image equal (cmp)" cmp "$T/src/disk.img" "$T/dst/disk.img"

out=$(bad_lines "$T/recv.log" ferry-recv)
if [ -z "$out" ] && [ -s "$T/recv.log" ]; then
	ok "every ferry-recv stderr line is a logfmt event with level= and msg= ($(wc -l <"$T/recv.log") lines)"
else
	not_ok "ferry-recv stderr lines that are not logfmt events"; echo "$out" | diag
fi
out=$(bad_lines "$T/send.log" ferry-send)
if [ -z "$out" ] && [ -s "$T/send.log" ]; then
	ok "every ferry-send stderr line is a logfmt event with level= and msg= ($(wc -l <"$T/send.log") lines)"
else
	not_ok "ferry-send stderr lines that are not logfmt events"; echo "$out" | diag
fi
sid=$(json_done "$T/send.json" session)
s16=${sid:0:16}
check "receiver: the committed line carries session=$s16 and peer=" \
	grep -qE "^ferry-recv: level=info session=$s16 peer=127\.0\.0\.1:[0-9]+ state=COMMITTED msg=\"session $s16 from .*: committed" "$T/recv.log"
# Every receiver line about the session (its id in the message) says so in its fields.
out=$(grep -E "msg=\"session [0-9a-f]{16}" "$T/recv.log" | grep -vE "session=[0-9a-f]{16} peer=[^ ]+ ")
check "receiver: every line about a session carries session= and peer= ($(grep -c "session=" "$T/recv.log") lines)" \
	[ -z "$out" ]
[ -z "$out" ] || echo "$out" | diag
check "receiver: connection lines carry peer= (TLS session with ...)" \
	grep -qE '^ferry-recv: level=info peer=127\.0\.0\.1:[0-9]+ msg="TLS session with ' "$T/recv.log"
check "receiver --log-level debug: debug lines (accepted connection, started session)" \
	bash -c 'grep -q "level=debug .*msg=\"connection from .* accepted\"" "$1" &&
		grep -q "level=debug session=.*msg=\"session .*: started by " "$1"' _ "$T/recv.log"
check "sender at the default level: no debug line" bash -c '! grep -q "level=debug" "$1"' _ "$T/send.log"
check "sender: the committed line carries session=$s16, peer= and state=" \
	grep -qE "^ferry-send: level=info session=$s16 peer=127\.0\.0\.1:$RECV_PORT state=[a-z]+ msg=\"committed: " "$T/send.log"
out=$(grep -v ' peer=127\.0\.0\.1:' "$T/send.log")
check "sender: every line carries the receiver as peer=" [ -z "$out" ]
[ -z "$out" ] || echo "$out" | diag

# ctl status, readable by default.
check "ferry-send ctl status (readable): State:, Transferred: with units, Bandwidth cap:" \
	bash -c 'grep -qE "^State: +precopy" "$1" && grep -qE "^Transferred: +[0-9.]+ (B|KiB|MiB|GiB) logical, [0-9.]+ (B|KiB|MiB|GiB) on the wire" "$1" &&
		grep -qE "^Bandwidth cap: +16\.0 MiB/s" "$1" && grep -qE "^Session: +[0-9a-f]{32}" "$1"' _ "$T/sstat.txt"
grep -q State: "$T/sstat.txt" || diag <"$T/sstat.try"
check "ferry-send ctl status --json: one JSON line with state and logical_bytes" \
	python3 -c 'import json,sys; l=open(sys.argv[1]).read().splitlines(); d=json.loads(l[0]);
sys.exit(0 if len(l)==1 and d["ok"] and d["state"] and "logical_bytes" in d else 1)' "$T/sstat.json"
check "ferry-recv ctl status during the migration: State: receiving, a session row with peer, size and rate" \
	bash -c 'grep -qE "^State: +receiving \(1 active\)" "$1" && grep -qE "^  SESSION +PEER +NAME +STATE +BYTES +RATE" "$1" &&
		grep -qE "^  $2  127\.0\.0\.1:[0-9]+ +sender +RECEIVING +[0-9.]+ (B|KiB|MiB) +[0-9.]+ (B|KiB|MiB)/s" "$1"' _ "$T/rstat_during.txt" "$s16" ||
	diag <"$T/rstat_during.txt"
"$R" ctl "$T/r.sock" status >"$T/rstat_after.txt" 2>&1
check "ferry-recv ctl status after it: State: idle, the history row: ok and 32.0 MiB" \
	bash -c 'grep -qE "^State: +idle" "$1" && grep -qE "^History: +last 1" "$1" &&
		grep -qE "^  $2  127\.0\.0\.1:[0-9]+ +ok +32\.0 MiB +[0-9.]+(ms|s) +0\$" "$1"' _ "$T/rstat_after.txt" "$s16" ||
	diag <"$T/rstat_after.txt"
check "ferry-recv ctl status --json is unchanged (one line, sessions, history, active)" \
	bash -c '"$1" ctl "$2" status --json | python3 -c "import json,sys; l=sys.stdin.read().splitlines(); d=json.loads(l[0])
sys.exit(0 if len(l)==1 and d[\"ok\"] and d[\"history\"][0][\"result\"]==\"ok\" and d[\"active\"]==0 and d[\"sessions\"]==[] else 1)"' _ "$R" "$T/r.sock"
kill "$RECV_PID" 2>/dev/null
wait "$RECV_PID" 2>/dev/null

# --- --log-level error: no info lines ----------------------------------------------

# shellcheck disable=SC2046
"$R" --listen 127.0.0.1:0 $(RECV_TLS) --dest-dir "$T/dst2" --json --once --log-level error \
	>"$T/recv2.json" 2>"$T/recv2.log" &
RECV_PID=$!
t_bg "$RECV_PID"
port=$(recv_port "$T/recv2.json") || { not_ok "ferry-recv --log-level error starts"; t_done; }
cat >"$T/s.conf" <<EOF
cert = $T/certs/sender.pem
key = $T/certs/sender.key
ca = $T/certs/ca.pem
peer-name = receiver
log-level = error
EOF
"$S" --config "$T/s.conf" --to "127.0.0.1:$port" --mem "$T/src/mem.img" --no-progress \
	>/dev/null 2>"$T/send2.log"
rc=$?
wait "$RECV_PID"
rrc=$?
check "--log-level error on both sides (the sender's from its config file): commits (exit $rc, $rrc)" \
	[ "$rc" -eq 0 ] && [ "$rrc" -eq 0 ]
check "ferry-recv --log-level error: no line at all for a committed migration" [ ! -s "$T/recv2.log" ]
[ -s "$T/recv2.log" ] && diag <"$T/recv2.log"
check "ferry-send log-level = error (config file): no line at all" [ ! -s "$T/send2.log" ]
[ -s "$T/send2.log" ] && diag <"$T/send2.log"

# --- bad levels ----------------------------------------------------------------------

# shellcheck disable=SC2046
"$R" --listen 127.0.0.1:0 $(RECV_TLS) --dest-dir "$T/dst2" --log-level loud >/dev/null 2>"$T/bad.err"
rc=$?
check "ferry-recv --log-level loud: exit 2 naming the flag and the value ($(head -1 "$T/bad.err"))" \
	bash -c '[ "$1" -eq 2 ] && grep -q -- "--log-level .loud." "$2"' _ "$rc" "$T/bad.err"
# shellcheck disable=SC2046
"$S" --to 127.0.0.1:1 $(SEND_TLS) --mem "$T/src/mem.img" --log-level=INFO >/dev/null 2>"$T/bad.err"
rc=$?
check "ferry-send --log-level=INFO: exit 2 naming the flag ($(head -1 "$T/bad.err"))" \
	bash -c '[ "$1" -eq 2 ] && grep -q -- "--log-level .INFO." "$2"' _ "$rc" "$T/bad.err"
printf 'log-level = chatty\n' >>"$T/s.conf"
"$S" --config "$T/s.conf" --to 127.0.0.1:1 --mem "$T/src/mem.img" >/dev/null 2>"$T/bad.err"
rc=$?
check "log-level = chatty in a config file: exit 2 naming FILE:LINE and the key ($(head -1 "$T/bad.err"))" \
	bash -c '[ "$1" -eq 2 ] && grep -q "s.conf:6: key .log-level.: --log-level .chatty." "$2"' _ "$rc" "$T/bad.err"

# --- -q: a refused migration, one error line on each side -------------------------

# shellcheck disable=SC2046
"$R" --listen 127.0.0.1:0 $(RECV_TLS) --dest-dir "$T/dst3" --json --once -q --expect-disks 2 \
	>"$T/recv3.json" 2>"$T/recv3.log" &
RECV_PID=$!
t_bg "$RECV_PID"
port=$(recv_port "$T/recv3.json") || { not_ok "ferry-recv -q starts"; t_done; }
# shellcheck disable=SC2046
"$S" --to "127.0.0.1:$port" $(SEND_TLS) -q --mem "$T/src/mem.img" --disk "$T/src/disk.img" \
	>/dev/null 2>"$T/send3.log"
rc=$?
wait "$RECV_PID"
check "refused migration with -q: ferry-send exits 3" [ "$rc" -eq 3 ]
check "ferry-send -q: exactly one line, level=error reason=refused code=REFUSE_COUNT, the message last" \
	bash -c '[ "$(wc -l <"$1")" -eq 1 ] &&
		grep -qE "^ferry-send: level=error session=[0-9a-f]{16} peer=127\.0\.0\.1:[0-9]+ state=[a-z]+ reason=refused code=REFUSE_COUNT msg=\"refused: .*disk count" "$1"' _ "$T/send3.log"
diag <"$T/send3.log"
check "ferry-recv -q: exactly one line, the failed session with session=, peer=, reason=refused" \
	bash -c '[ "$(wc -l <"$1")" -eq 1 ] &&
		grep -qE "^ferry-recv: level=error session=[0-9a-f]{16} peer=127\.0\.0\.1:[0-9]+ state=[A-Z_]+ reason=refused code=REFUSE_COUNT msg=\"session " "$1"' _ "$T/recv3.log"
diag <"$T/recv3.log"

# --- the journal ---------------------------------------------------------------------

: >"$T/journal.log"
js=$(stat -c '%d:%i' "$T/journal.log")
# shellcheck disable=SC2046
JOURNAL_STREAM=$js "$S" --to 127.0.0.1:1 $(SEND_TLS) --mem "$T/src/mem.img" --progress \
	--connect-timeout 2s >/dev/null 2>>"$T/journal.log"
rc=$?
check "JOURNAL_STREAM names stderr: lines start with the priority (<3> for the error), not the program" \
	bash -c '[ "$1" -ne 0 ] && grep -qE "^<6>level=info peer=127\.0\.0\.1:1 state=connecting msg=\"connecting to " "$2" &&
		grep -qE "^<3>level=error .*reason=network .*msg=\"network: " "$2" && ! grep -q "^ferry-send:" "$2"' _ "$rc" "$T/journal.log"
check "JOURNAL_STREAM names stderr: no progress line (no carriage return) even with --progress" \
	bash -c '! grep -q $'"'"'\r'"'"' "$1"' _ "$T/journal.log"
diag <"$T/journal.log"
# shellcheck disable=SC2046
JOURNAL_STREAM=$js "$S" --to 127.0.0.1:1 $(SEND_TLS) --mem "$T/src/mem.img" --connect-timeout 2s \
	>/dev/null 2>"$T/notjournal.log"
check "JOURNAL_STREAM naming another file: plain lines" \
	grep -qE '^ferry-send: level=error ' "$T/notjournal.log"
t_no_sanitizer_reports "the logs"
t_done
