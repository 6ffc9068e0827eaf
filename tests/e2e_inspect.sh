#!/usr/bin/env bash
# --dump-frames and ferry-inspect, end to end on loopback: a small live
# migration with frame dumps on both sides (and, when dumpcap can capture
# on lo, a packet capture with SSLKEYLOGFILE set).  Checks: one dump file
# per side, mode 0600, named after the session; ferry-inspect decodes both
# with the frames in protocol order and the session id of the done event;
# --json parses and its per-type counts equal its summary; what the sender
# sent is what the receiver received; damaged dumps (truncated, a bad frame
# type, a bad record length) show the error at the right offset and the
# rest still decodes; ferry-inspect --keylog decodes the capture to the
# same frames.
source "$(dirname "$0")/lib.sh"
t_certs
G=$FERRY_BIN/ferry-guest
I=$FERRY_BIN/ferry-inspect

mkdir -p "$T/src" "$T/dst" "$T/dumps-s" "$T/dumps-r"
"$G" create --mem "$T/src/mem.img" --mem-size 8M --disk "$T/src/disk.img" --disk-size 4M \
	--seed 21 >/dev/null || { not_ok "ferry-guest create"; t_done; }
"$G" run --mem "$T/src/mem.img" --disk "$T/src/disk.img" --dirty-rate 2MiB/s --disk-rate 1MiB/s \
	--pidfile "$T/guest.pid" 2>"$T/guest.log" &
GUEST=$!
t_bg "$GUEST"
for _ in $(seq 1 100); do [ -s "$T/guest.pid" ] && break; sleep 0.05; done

t_start_recv recv "$T/dst" --once --dump-frames "$T/dumps-r" || t_done

# A capture of the migration, when dumpcap may capture on lo.
CAP=""
if command -v dumpcap >/dev/null 2>&1; then
	# A large capture buffer, and the sender capped below, so the kernel
	# does not drop packets (a gap stops tshark's decryption there).
	dumpcap -B 64 -i lo -f "tcp port $RECV_PORT" -w "$T/cap.pcapng" >"$T/dumpcap.log" 2>&1 &
	DUMPCAP=$!
	t_bg "$DUMPCAP"
	for _ in $(seq 1 100); do
		[ -s "$T/cap.pcapng" ] && break
		kill -0 "$DUMPCAP" 2>/dev/null || break
		sleep 0.05
	done
	if kill -0 "$DUMPCAP" 2>/dev/null && [ -s "$T/cap.pcapng" ]; then
		CAP=$T/cap.pcapng
		sleep 0.3
	fi
fi

# shellcheck disable=SC2046
SSLKEYLOGFILE=$T/keys.log "$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) \
	--mem "$T/src/mem.img" --disk "$T/src/disk.img" --guest-pid "$GUEST" \
	--cleanup-cmd "kill -KILL $GUEST" --dump-frames "$T/dumps-s" --bandwidth 40MiB/s \
	--json >"$T/send.json" 2>"$T/send.log"
rc=$?
check "migration with --dump-frames on both sides exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || diag <"$T/send.log"
for _ in $(seq 1 100); do kill -0 "$RECV_PID" 2>/dev/null || break; sleep 0.05; done
check "ferry-recv --once exited" bash -c "! kill -0 $RECV_PID 2>/dev/null"
"$G" check --mem "$T/dst/mem.img" --disk "$T/dst/disk.img" >"$T/check.out" 2>&1
check "destination equals the source (ferry-guest check)" [ $? -eq 0 ]
if [ -n "$CAP" ]; then
	sleep 0.3
	kill -INT "$DUMPCAP" 2>/dev/null
	wait "$DUMPCAP" 2>/dev/null
fi

SID=$(json_done "$T/send.json" session)
SF=$(ls "$T"/dumps-s/*.fdump 2>/dev/null)
RF=$(ls "$T"/dumps-r/*.fdump 2>/dev/null)
check "one dump file per side" [ "$(echo "$SF" | grep -c .)" -eq 1 ] && [ "$(echo "$RF" | grep -c .)" -eq 1 ]
check "dump files are mode 0600" [ "$(stat -c %a "$SF")" = 600 ] && [ "$(stat -c %a "$RF")" = 600 ]
check "file names carry role, pid and the session id ($SID)" \
	bash -c "[[ '$(basename "$SF")' == send-*-$SID.fdump && '$(basename "$RF")' == recv-*-$SID.fdump ]]"

# Protocol order and the session id, from the JSON lines.
order() {
	python3 - "$1" "$2" "$SID" <<'EOF'
import json, re, sys
role, sid = sys.argv[2], sys.argv[3]
recs = [json.loads(l) for l in open(sys.argv[1])]
fr = [r for r in recs if r["record"] == "frame"]
def seq(flow):
    s = [r["type"] for r in fr if r["flow"] == flow and r["type"] not in ("PING", "PONG")]
    return " ".join(s)
s2r, r2s = seq("S->R"), seq("R->S")
ok = re.fullmatch(r"HELLO MANIFEST( PAGES)+ COMMIT", s2r) is not None
ok &= re.fullmatch(r"WELCOME ACCEPT( ACK)+ COMMITTED", r2s) is not None
wel = [r for r in fr if r["type"] == "WELCOME"]
ok &= len(wel) == 1 and wel[0]["fields"]["session"] == sid
ok &= [r["session"] for r in recs if r["record"] == "session"] == [sid]
want = "sent" if role == "sender" else "recv"
ok &= all(r["dir"] == (want if r["flow"] == "S->R" else ("recv" if want == "sent" else "sent")) for r in fr)
ok &= not any("error" in r for r in fr) and recs[-1]["record"] == "summary" and recs[-1]["errors"] == 0
print(s2r[:60] + " ... | " + r2s[:40] + " ...")
sys.exit(0 if ok else 1)
EOF
}
for side in sender:"$SF" receiver:"$RF"; do
	role=${side%%:*} f=${side#*:}
	"$I" "$f" >"$T/$role.txt"
	check "ferry-inspect decodes the $role's dump (exit 0)" [ $? -eq 0 ]
	"$I" --json "$f" >"$T/$role.jsonl"
	order "$T/$role.jsonl" "$role" >"$T/$role.order" 2>&1
	check "$role: frames in protocol order, session $SID: $(cat "$T/$role.order")" [ $? -eq 0 ]
	check "$role: text output names the frames" \
		bash -c "grep -q ' HELLO ' '$T/$role.txt' && grep -q ' PAGES .*seq=1 ' '$T/$role.txt' && grep -q ' COMMITTED ' '$T/$role.txt' && grep -q '^summary: ' '$T/$role.txt'"
done

# --json parses and its per-type counts and bytes equal its summary.
counts_match() {
	python3 - "$1" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
summ = recs[-1]
got = {}
for r in recs:
    if r["record"] == "frame":
        c = got.setdefault(r["type"], {"count": 0, "bytes": 0})
        c["count"] += 1
        c["bytes"] += 8 + r["length"]
sys.exit(0 if summ["record"] == "summary" and got == summ["types"]
         and summ["frames"] == sum(c["count"] for c in got.values()) else 1)
EOF
}
check "--json: per-type counts and bytes equal the summary (sender)" counts_match "$T/sender.jsonl"
check "--json: per-type counts and bytes equal the summary (receiver)" counts_match "$T/receiver.jsonl"
check "the sender's sent frames are the receiver's received frames (PAGES, COMMIT, ...)" python3 - \
	"$T/sender.jsonl" "$T/receiver.jsonl" <<'EOF'
import json, sys
def frames(p, d):
    return [(r["type"], r["length"], r["fields"].get("seq")) for r in map(json.loads, open(p))
            if r["record"] == "frame" and r["dir"] == d and r["type"] not in ("PING", "PONG")]
s, r = sys.argv[1], sys.argv[2]
sys.exit(0 if frames(s, "sent") == frames(r, "recv") and frames(r, "sent") == frames(s, "recv") else 1)
EOF

# Damaged dumps: errors at their offsets, decoding goes on.
offsets() { python3 -c '
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
print(" ".join(str(r["offset"]) for r in recs if r["record"] in ("frame", "session", "end")))' "$1"; }
read -r -a OFF <<<"$(offsets "$T/sender.jsonl")"
NFR=$(grep -c '"record":"frame"' "$T/sender.jsonl")
LAST=${OFF[${#OFF[@]}-1]}
size=$(stat -c %s "$SF")
head -c $((size - 10)) "$SF" >"$T/trunc.fdump"
"$I" "$T/trunc.fdump" >"$T/trunc.txt"
rc=$?
check "truncated dump: exit 1" [ "$rc" -eq 1 ]
check "truncated dump: error at the last record's offset ($LAST)" \
	grep -q "^@$LAST .*ERROR: offset $LAST: END record truncated" "$T/trunc.txt"
check "truncated dump: every frame before it decoded ($NFR)" \
	grep -q "^summary: $NFR frames" "$T/trunc.txt"

# The second record is WELCOME (received); its frame type byte is at +16.
W=${OFF[1]}
cp "$SF" "$T/badtype.fdump"
printf '\143' | dd of="$T/badtype.fdump" bs=1 seek=$((W + 16)) conv=notrunc status=none
"$I" "$T/badtype.fdump" >"$T/badtype.txt"
check "bad frame type: exit 1" [ $? -eq 1 ]
check "bad frame type: error at offset $W" grep -q "^@$W .*UNKNOWN .*ERROR: frame header: type 99 unknown" "$T/badtype.txt"
check "bad frame type: the frames after it decode (COMMITTED)" grep -q " COMMITTED .*seq=" "$T/badtype.txt"

# A record length damaged: the reader skips to the next good record.
P=${OFF[4]}
cp "$SF" "$T/badlen.fdump"
printf '\377' | dd of="$T/badlen.fdump" bs=1 seek=$((P + 4)) conv=notrunc status=none
"$I" "$T/badlen.fdump" >"$T/badlen.txt"
check "bad record length: exit 1" [ $? -eq 1 ]
check "bad record length: error at offset $P" grep -q "^@$P .*ERROR: offset $P: FRAME record length" "$T/badlen.txt"
check "bad record length: resynchronised at the next record (${OFF[5]})" grep -q "^@${OFF[5]} .*resync" "$T/badlen.txt"
check "bad record length: one frame missing, the rest decoded" grep -q "^summary: $((NFR - 1)) frames" "$T/badlen.txt"

# The capture, decrypted with the key log.
drops=$(sed -n 's|.*received/dropped on interface.*: [0-9]*/\([0-9]*\) .*|\1|p' "$T/dumpcap.log" 2>/dev/null)
if [ -z "$CAP" ]; then
	ok "capture decoded with --keylog # SKIP dumpcap cannot capture on lo here"
elif [ "${drops:-0}" -gt 0 ]; then
	ok "capture decoded with --keylog # SKIP the kernel dropped $drops packets of the capture"
else
	"$I" --json --keylog "$T/keys.log" "$CAP" >"$T/cap.jsonl" 2>"$T/cap.err"
	rc=$?
	check "ferry-inspect --keylog decodes the capture (exit 0)" [ "$rc" -eq 0 ]
	[ "$rc" -eq 0 ] || { diag <"$T/cap.err"; head -5 "$T/cap.jsonl" | diag; }
	check "capture: the same frames as the sender's dump, in order" python3 - "$T/cap.jsonl" \
		"$T/sender.jsonl" <<'EOF'
import json, sys
def frames(p):
    return [(r["flow"], r["type"], r["length"], r["fields"].get("seq"), r["fields"].get("session"))
            for r in map(json.loads, open(p)) if r["record"] == "frame" and r["type"] not in ("PING", "PONG")]
cap, dump = frames(sys.argv[1]), frames(sys.argv[2])
s2r = lambda fr, f: [x for x in fr if x[0] == f]
ok = s2r(cap, "S->R") == s2r(dump, "S->R") and s2r(cap, "R->S") == s2r(dump, "R->S")
sys.exit(0 if ok and len(cap) > 5 else 1)
EOF
	check "capture: the keylog was needed (no key log, no frames)" \
		bash -c "! '$I' --keylog /dev/null '$CAP' >/dev/null 2>&1"
fi
t_done
