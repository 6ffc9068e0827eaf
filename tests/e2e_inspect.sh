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
# same frames; a dump built here with DOMAIN and CHECKS frames shows their
# fields (text: a line per CHECKS row; --json).
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
# DOMAIN and CHECKS (sections 4.15, 4.16) in a dump built here (the frame
# builders of fuzz/make_seeds.py, the dump format of fuzz/make_dump_seeds.py):
# a check-only DOMAIN, one whose XML is not XML, CHECKS with a row of each
# status, then REFUSE.
python3 - "$REPO" >"$T/domain.fdump" <<'EOF'
import os, struct, sys
sys.path.insert(0, os.path.join(sys.argv[1], "fuzz"))
import make_dump_seeds as md  # noqa: E402
ms = md.ms
sid = bytes(range(0x10, 0x20))
xml = (b"<domain type='kvm'>\n  <name>web1</name>\n"
       b"  <uuid>0b5e5a7c-1f2d-4c3b-9a8e-7d6c5b4a3f21</uuid>\n  <memory unit='MiB'>512</memory>\n"
       b"  <vcpu>2</vcpu>\n  <os><type arch='x86_64'>hvm</type></os>\n  <devices>\n"
       b"    <disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/>"
       b"<source file='/images/web1.img'/><target dev='vda'/></disk>\n  </devices>\n</domain>\n")
rows = [(1, 58, b"arch", b"x86_64", b"x86_64", b""),
        (2, 60, b"host-cpus", b"8 vcpus", b"4 cpus", b"the domain has 8 vCPUs, this host 4 CPUs"),
        (3, 57, b"disk-cache", b"vda: writeback", b"none", b"disk vda: cache\nwriteback")]
welcome = ms.frame(ms.WELCOME, struct.pack(">IHHII", ms.MAGIC, ms.VERSION, 0, 1,
                                           ms.MAX_FRAME_DEFAULT) + sid)
items = [(md.SENT, ms.hello(ms.SEED, caps=1)), (md.RECEIVED, welcome), ("sid", sid),
         (md.SENT, ms.domain(xml, 1, b"x86_64", b"Skylake-Client",
                             b"4c4c4544-0051-3010-8052-b4c04f4e3332", [b"disk-cache", b"cpu-model"])),
         (md.SENT, ms.domain(b"not <xml", 0, b"aarch64", b"")),
         (md.SENT, ms.manifest([(1, ms.DISK, 4096, 8192, b"web1.img")])),
         (md.RECEIVED, ms.checks(rows)),
         (md.RECEIVED, ms.frame(ms.REFUSE, ms.text_payload(60, b"check host-cpus failed", 0)))]
sys.stdout.buffer.write(md.dump(md.SENDER, items))
EOF
"$I" "$T/domain.fdump" >"$T/domain.txt"
check "DOMAIN/CHECKS dump: ferry-inspect exit 0" [ $? -eq 0 ]
check "DOMAIN (text): flags, arch, model, uuid, waived checks, xml length, domain name" \
	grep -q ' DOMAIN .*flags=1 check_only=true arch=x86_64 model=Skylake-Client uuid=4c4c4544-0051-3010-8052-b4c04f4e3332 waived=\[disk-cache cpu-model\] xml_len=361 .*domain=web1 disks=1' "$T/domain.txt"
check "DOMAIN (text): XML that is not XML is shown with its first bytes, not an error" \
	grep -q ' DOMAIN .*arch=aarch64 model="" uuid="" waived=\[\] xml_len=8 xml_head="not <xml" xml_error=' "$T/domain.txt"
grep -m1 -A3 ' CHECKS ' "$T/domain.txt" | tail -n 3 | cut -c16- >"$T/rows.txt"
check "CHECKS (text): the counts on the frame's line" grep -q ' CHECKS .*nrows=3 pass=1 fail=1 waived=1$' "$T/domain.txt"
check "CHECKS (text): one line per row: status, name, code name, why" \
	bash -c "sed -n 1p '$T/rows.txt' | grep -q '^status=pass name=arch code_name=VIRT_ARCH code=58 ' &&
		sed -n 2p '$T/rows.txt' | grep -q '^status=fail name=host-cpus code_name=VIRT_CPUS code=60 .*why=\"the domain has 8 vCPUs, this host 4 CPUs\"' &&
		sed -n 3p '$T/rows.txt' | grep -q '^status=waived name=disk-cache code_name=VIRT_CACHE code=57 .*why=\"disk vda: cache?writeback\"'"
"$I" --json "$T/domain.fdump" >"$T/domain.jsonl"
check "DOMAIN/CHECKS (--json): the same fields, the rows as an array" python3 - "$T/domain.jsonl" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
fr = {}
for r in recs:
    if r["record"] == "frame":
        fr.setdefault(r["type"], []).append(r)
d, bad = fr["DOMAIN"][0]["fields"], fr["DOMAIN"][1]["fields"]
c = fr["CHECKS"][0]["fields"]
ok = (d["flags"] == 1 and d["check_only"] is True and d["arch"] == "x86_64"
      and d["model"] == "Skylake-Client" and d["uuid"] == "4c4c4544-0051-3010-8052-b4c04f4e3332"
      and d["waived"] == ["disk-cache", "cpu-model"] and d["xml_len"] == 361
      and d["domain"] == "web1" and d["xml_head"].startswith("<domain type='kvm'>"))
ok &= bad["check_only"] is False and bad["model"] == "" and bad["waived"] == [] and "xml_error" in bad
ok &= c["nrows"] == 3 and [(x["status"], x["name"], x["code_name"], x["code"]) for x in c["rows"]] == [
    ("pass", "arch", "VIRT_ARCH", 58), ("fail", "host-cpus", "VIRT_CPUS", 60),
    ("waived", "disk-cache", "VIRT_CACHE", 57)]
ok &= c["rows"][1]["source"] == "8 vcpus" and c["rows"][1]["destination"] == "4 cpus"
ok &= recs[-1]["record"] == "summary" and recs[-1]["errors"] == 0
ok &= recs[-1]["types"]["DOMAIN"]["count"] == 2 and recs[-1]["types"]["CHECKS"]["count"] == 1
sys.exit(0 if ok else 1)
EOF

# QSTREAM and QRETURN (sections 4.17, 4.18) in a dump built here: a
# MANIFEST with a QEMU device, a first QSTREAM with the block list and a
# page of each kind, a second one whose pages use that table, a QRETURN.
python3 - "$REPO" >"$T/qemu.fdump" <<'EOF'
import os, struct, sys
sys.path.insert(0, os.path.join(sys.argv[1], "fuzz"))
import make_dump_seeds as md  # noqa: E402
ms = md.ms
sid = bytes(range(0x30, 0x40))
welcome = ms.frame(ms.WELCOME, struct.pack(">IHHII", ms.MAGIC, ms.VERSION, 0, 2,
                                           ms.MAX_FRAME_DEFAULT) + sid)
items = [(md.SENT, ms.hello(ms.SEED, caps=2)), (md.RECEIVED, welcome), ("sid", sid),
         (md.SENT, ms.manifest([(1, ms.QEMU, 4096, 64 << 20, b"web1")])),
         (md.RECEIVED, ms.seqmsg(ms.ACCEPT, 1)),
         (md.SENT, ms.qstream(1, 0, ms.QSTREAM_FIRST)),
         (md.RECEIVED, ms.seqmsg(ms.ACK, 1)),
         (md.SENT, ms.qstream(2, 20000, [ms.q_page(ms.QREC_DATA, 1, 0, ms.ZERO),
                                         ms.q_opaque(b"\x10\x00\x00\x00\x00\x00\x00\x00")])),
         (md.RECEIVED, ms.qreturn(0, b"\x00\x01\x00\x04\x00\x00\x00\x00"))]
sys.stdout.buffer.write(md.dump(md.SENDER, items))
EOF
"$I" -v "$T/qemu.fdump" >"$T/qemu.txt"
check "QSTREAM/QRETURN dump: ferry-inspect exit 0" [ $? -eq 0 ]
check "MANIFEST (text): the device of kind qemu" grep -q 'kind=qemu unit=4096' "$T/qemu.txt"
check "QSTREAM (text): header, item counts, page kinds and stream bytes on the frame's line" \
	grep -q ' QSTREAM .*seq=1 stream_off=0 count=7 opaque=1 blocks=1 zero=2 ref=1 lz4=1 raw=1 stream_bytes=16485$' "$T/qemu.txt"
check "QSTREAM (text): one line per item, pages with their block and record length" \
	grep -q '^ *type=page record=data cont=false block=pc.ram offset=0 kind=raw record_len=4111$' "$T/qemu.txt"
check "QSTREAM (text): a later frame's pages use the session's block table" \
	grep -q ' QSTREAM .*seq=2 stream_off=20000 count=2 opaque=1 blocks=0 zero=1 .*stream_bytes=4121$' "$T/qemu.txt"
check "QRETURN (text): offset and data bytes" grep -q ' QRETURN .*offset=0 data_bytes=8$' "$T/qemu.txt"
"$I" --json "$T/qemu.fdump" >"$T/qemu.jsonl"
check "QSTREAM/QRETURN (--json): no errors, counts per type" python3 - "$T/qemu.jsonl" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
s = recs[-1]
ok = s["record"] == "summary" and s["errors"] == 0
ok &= s["types"]["QSTREAM"]["count"] == 2 and s["types"]["QRETURN"]["count"] == 1
q = [r["fields"] for r in recs if r["record"] == "frame" and r["type"] == "QSTREAM"]
ok &= q[0]["stream_bytes"] == 16485 and q[1]["zero"] == 1 and q[1]["stream_bytes"] == 4121
sys.exit(0 if ok else 1)
EOF
# HAVE (section 4.19) in a dump built here: the receiver holds a 4-block
# disk already; its HAVE frames name the device of the session's MANIFEST.
python3 - "$REPO" >"$T/have.fdump" <<'EOF'
import os, struct, sys
sys.path.insert(0, os.path.join(sys.argv[1], "fuzz"))
import make_dump_seeds as md  # noqa: E402
ms = md.ms
sid = bytes(range(0x50, 0x60))
welcome = ms.frame(ms.WELCOME, struct.pack(">IHHII", ms.MAGIC, ms.VERSION, 0, 4,
                                           ms.MAX_FRAME_DEFAULT) + sid)


def have(dev, first, n):
    return ms.frame(20, struct.pack(">III", dev, first, n) + bytes(range(16)) * n)


items = [(md.SENT, ms.hello(ms.SEED, caps=4)), (md.RECEIVED, welcome), ("sid", sid),
         (md.SENT, ms.manifest([(1, ms.DISK, 65536, 3 * 65536 + 100, b"disk.img")])),
         (md.RECEIVED, have(1, 0, 3)), (md.RECEIVED, have(1, 3, 1)),
         (md.RECEIVED, ms.seqmsg(ms.ACCEPT, 1))]
sys.stdout.buffer.write(md.dump(md.SENDER, items))
EOF
"$I" "$T/have.fdump" >"$T/have.txt"
check "HAVE dump: ferry-inspect exit 0" [ $? -eq 0 ]
check "HAVE (text): device, first and count, with the MANIFEST's name and unit count" \
	grep -q ' HAVE .*device=1 first=3 count=1 name=disk.img units=4$' "$T/have.txt"
"$I" --json "$T/have.fdump" >"$T/have.jsonl"
check "HAVE (--json): no errors, two HAVE frames covering 4 units" python3 - "$T/have.jsonl" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
s = recs[-1]
h = [r["fields"] for r in recs if r["record"] == "frame" and r["type"] == "HAVE"]
ok = s["record"] == "summary" and s["errors"] == 0 and s["types"]["HAVE"]["count"] == 2
ok &= sum(x["count"] for x in h) == 4 and all(x["name"] == "disk.img" for x in h)
sys.exit(0 if ok else 1)
EOF
t_done
