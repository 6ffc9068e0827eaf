#!/usr/bin/env bash
# tools/ferry-dissector.lua against real traffic: dumpcap records four
# loopback sessions on the receiver's port while both daemons append their
# TLS secrets to a key log (SSLKEYLOGFILE):
#   1. a migration that commits (memory + disk + state blob),
#   2. a migration refused at pre-flight (existing destination file of
#      another size: REFUSE),
#   3. a slow migration (bandwidth cap, short keepalive) aborted with
#      `ferry-recv ctl ... abort` (ERROR from the receiver, PING/PONG),
#   4. a libvirt domain checked only (ferry-send --domain --check-only with
#      libvirt's test driver, tests/data/libvirt): DOMAIN, CHECKS with a
#      failed row, REFUSE,
#   5. the images of session 1 sent again to the receiver (--reuse), which
#      already holds them: HAVE frames before ACCEPT, no PAGES.
# tshark then decodes the capture with the key log and the dissector; the
# frames, their order and their field values are checked against what the
# daemons reported and against the constants of proto/ferry_proto.h and
# src/common/err.h.  Without the key log no ferry frame may show.
# Usage: FERRY_BIN=build bash tests/e2e_dissector.sh
source "$(dirname "$0")/lib.sh"

DISS=$REPO/tools/ferry-dissector.lua
G=$FERRY_BIN/ferry-guest

if ! command -v tshark >/dev/null 2>&1 || ! command -v dumpcap >/dev/null 2>&1; then
	ok "ferry dissector # SKIP tshark/dumpcap not installed (tools/install-deps installs tshark)"
	t_done
fi
if ! tshark -v 2>/dev/null | grep -q 'with Lua'; then
	ok "ferry dissector # SKIP this tshark is built without Lua"
	t_done
fi

t_certs
KEYS=$T/keys.log
CAP=$T/cap.pcapng
mkdir -p "$T/src" "$T/dst"
: >"$KEYS"

# --- the sessions --------------------------------------------------------------------

"$G" create --mem "$T/src/mem.img" --mem-size 256K --disk "$T/src/disk.img" --disk-size 1M \
	--seed 7 >/dev/null 2>&1 || { not_ok "ferry-guest create"; t_done; }
head -c 5000 /dev/urandom >"$T/src/state.bin"
head -c 9000 /dev/urandom >"$T/src/sized.img"
head -c 5000 /dev/urandom >"$T/dst/sized.img"
head -c 4M /dev/urandom >"$T/src/slow.img"
# Session 4: the "vcpus" domain of the test driver's source node (8 vCPUs;
# the destination node has 4 CPUs), its two disk images.
sed "s|@DIR@|$T|g" "$REPO/tests/data/libvirt/src-node.xml" >"$T/src-node.xml"
for v in vda vdb; do head -c 64K /dev/urandom >"$T/src/vcpus-$v.img"; done

SSLKEYLOGFILE=$KEYS t_start_recv recv "$T/dst" --keepalive 200ms --keepalive-timeout 3s \
	--reuse --ctl "$T/recv.ctl" --libvirt-uri "test://$REPO/tests/data/libvirt/dst-node.xml" \
	|| { not_ok "ferry-recv started"; t_done; }
PORT=$RECV_PORT

dumpcap -q -i lo -B 64 -f "tcp port $PORT" -w "$CAP" >"$T/dumpcap.out" 2>"$T/dumpcap.err" &
DUMPCAP=$!
t_bg "$DUMPCAP"
for _ in $(seq 1 100); do
	grep -q "Capturing on" "$T/dumpcap.err" 2>/dev/null && break
	kill -0 "$DUMPCAP" 2>/dev/null || break
	sleep 0.05
done
if ! grep -q "Capturing on" "$T/dumpcap.err"; then
	if [ "$(id -u)" != 0 ] && grep -qi 'permission' "$T/dumpcap.err"; then
		ok "ferry dissector # SKIP dumpcap may not capture on lo as $(id -un) (run as root)"
		t_done
	fi
	not_ok "dumpcap captures on lo"
	diag <"$T/dumpcap.err"
	t_done
fi
ok "dumpcap captures on lo, tcp port $PORT"
sleep 0.3

send() { # send NAME ARGS...: ferry-send to the receiver, SSLKEYLOGFILE set
	local name=$1; shift
	# shellcheck disable=SC2046
	SSLKEYLOGFILE=$KEYS "$FERRY_BIN/ferry-send" --to "127.0.0.1:$PORT" $(SEND_TLS) \
		--json "$@" >"$T/$name.json" 2>"$T/$name.log"
}

# 1. commits
send ok --mem "$T/src/mem.img" --disk "$T/src/disk.img" --state "$T/src/state.bin"
rc=$?
check "session 1: migration commits (exit $rc)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || diag <"$T/ok.log"

# 2. refused: the destination exists with another size
send refused --disk "$T/src/sized.img"
rc=$?
check "session 2: migration refused (exit $rc, 3 expected)" [ "$rc" -eq 3 ]

# 3. aborted by the receiver's operator while the capped sender is in
# pre-copy (4 MiB at 1 MiB/s)
# shellcheck disable=SC2046
SSLKEYLOGFILE=$KEYS "$FERRY_BIN/ferry-send" --to "127.0.0.1:$PORT" $(SEND_TLS) \
	--disk "$T/src/slow.img" --bandwidth 1MiB/s --keepalive 200ms --keepalive-timeout 3s \
	--json >"$T/abort.json" 2>"$T/abort.log" &
SP=$!
t_bg "$SP"
sid3=
for _ in $(seq 1 100); do
	sid3=$("$FERRY_BIN/ferry-recv" ctl "$T/recv.ctl" status --json 2>/dev/null | python3 -c '
import json,sys
try:
    s=[x for x in json.load(sys.stdin)["sessions"] if x.get("state") not in ("committed","failed")]
except Exception:
    s=[]
print(s[0]["session"] if len(s)==1 else "")' 2>/dev/null)
	[ -n "$sid3" ] && break
	sleep 0.05
done
sleep 0.8    # a few keepalives (200 ms) on the wire
out=$("$FERRY_BIN/ferry-recv" ctl "$T/recv.ctl" abort "${sid3:-none}" 2>&1 | tr -s ' \n' ' ')
t0=$(date +%s%N)
wait "$SP"
rc=$?
echo "ferry-send exited $((($(date +%s%N) - t0) / 1000000)) ms after the receiver's abort" | diag
check "session 3: 'ferry-recv ctl abort' ends the capped migration (ferry-send exit $rc, 4 expected)" \
	[ "$rc" -eq 4 ]
[ "$rc" -eq 4 ] || { echo "session '$sid3' ctl: $out"; cat "$T/abort.log"; } | diag

# 4. a domain checked only: DOMAIN, then CHECKS (host-cpus fails), REFUSE
send domain --libvirt-uri "test://$T/src-node.xml" --domain vcpus --check-only
rc=$?
check "session 4: check-only domain refused by the destination's checks (exit $rc, 3 expected)" \
	[ "$rc" -eq 3 ]
[ "$rc" -eq 3 ] || diag <"$T/domain.log"

# 5. a return trip: the destination holds session 1's images already
send again --mem "$T/src/mem.img" --disk "$T/src/disk.img"
rc=$?
check "session 5: the same images again, onto the receiver's copies (exit $rc)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || diag <"$T/again.log"

# Let the receiver answer the last close_notify, then stop the capture.
sleep 0.5
kill -INT "$DUMPCAP" 2>/dev/null
wait "$DUMPCAP"
check "capture written ($(stat -c %s "$CAP" 2>/dev/null) bytes)" [ -s "$CAP" ]
# "Packets received/dropped on interface 'Loopback: lo': 812/0 (...)"
drops=$(sed -n 's|^Packets received/dropped on interface .*: [0-9]*/\([0-9]*\) .*|\1|p' "$T/dumpcap.err")
check "dumpcap dropped no packet (${drops:-?})" [ "${drops:-1}" -eq 0 ]
check "both daemons wrote TLS secrets to the key log" \
	[ "$(grep -c '^CLIENT_TRAFFIC_SECRET_0 ' "$KEYS")" -ge 3 ]

# --- decoding -------------------------------------------------------------------------

# ts [tshark args...]: decode the capture with the key log and the dissector
ts() {
	tshark -n -r "$CAP" -o "tls.keylog_file:$KEYS" -X "lua_script:$DISS" "$@" 2>>"$T/tshark.err"
}
F="-T fields -E separator=/t -E occurrence=a -E aggregator=,"

# field FILTER FIELD...: tab-separated values of the packets matching FILTER
field() { local flt=$1; shift; local a=(); for x in "$@"; do a+=(-e "$x"); done
	# shellcheck disable=SC2086
	ts -Y "$flt" $F "${a[@]}"; }

# per_frame STREAM FIELD: "type<TAB>value" per frame, for a field every frame
# has once (ferry.len, ferry.direction)
per_frame() {
	# shellcheck disable=SC2086
	ts -Y "tcp.stream == $1 && ferry" $F -e ferry.type -e "$2" |
		awk -F'\t' '{ n = split($1, t, ","); split($2, v, ",");
			for (i = 1; i <= n; i++) print t[i] "\t" v[i] }'
}


# shellcheck disable=SC2086
ts -Y ferry $F -e tcp.stream -e frame.number -e ferry.type -e ferry.direction >"$T/types.tsv"
if grep -qiE 'lua.*error|error.*lua' "$T/tshark.err"; then
	not_ok "the dissector loads and runs without Lua errors"
	diag <"$T/tshark.err"
else
	ok "the dissector loads and runs without Lua errors"
fi
n=$(wc -l <"$T/types.tsv")
check "ferry frames are shown ($n packets)" [ "$n" -gt 0 ]

# stream_types N: the frame type names of TCP stream N, in capture order
names=(x HELLO WELCOME MANIFEST ACCEPT REFUSE PAGES ACK STATE COMMIT COMMITTED ERROR RESUME RESUMED PING PONG
	DOMAIN CHECKS QSTREAM QRETURN HAVE)
stream_types() {
	awk -F'\t' -v s="$1" '$1 == s { print $3 }' "$T/types.tsv" | tr ',' '\n' |
		while read -r t; do echo "${names[$t]:-?$t}"; done | tr '\n' ' '
}
streams=$(cut -f1 "$T/types.tsv" | sort -un | tr '\n' ' ')
check "five TCP connections carry ferry ($streams)" [ "$(echo "$streams" | wc -w)" -eq 5 ]
read -r S1 S2 S3 S4 S5 <<<"$streams"

t1=$(stream_types "$S1")
# ACKs, PINGs and PONGs may come in between; the rest is in protocol order.
core1=$(echo "$t1" | tr ' ' '\n' | grep -vE '^(ACK|PING|PONG)?$' | uniq | tr '\n' ' ')
check "session 1: HELLO WELCOME MANIFEST ACCEPT PAGES... STATE COMMIT COMMITTED ($core1)" \
	[ "$core1" = "HELLO WELCOME MANIFEST ACCEPT PAGES STATE COMMIT COMMITTED " ]
t2=$(stream_types "$S2")
check "session 2: HELLO WELCOME MANIFEST REFUSE ($t2)" [ "$t2" = "HELLO WELCOME MANIFEST REFUSE " ]
t3=$(stream_types "$S3")
core3=$(echo "$t3" | tr ' ' '\n' | grep -vE '^(ACK|PING|PONG)?$' | uniq | tr '\n' ' ')
# Frames the capped sender had queued may still follow the receiver's ERROR.
check "session 3: HELLO WELCOME MANIFEST ACCEPT PAGES... ERROR ($core3)" \
	[ "${core3%%ERROR *}ERROR " = "HELLO WELCOME MANIFEST ACCEPT PAGES ERROR " ]
after=$(per_frame "$S3" ferry.direction | sed -n '/^11\t/,$p' | sed 1d | grep -c 'receiver->sender')
check "session 3: nothing from the receiver after its ERROR ($after frames)" [ "$after" -eq 0 ]
# The receiver's PINGs (every 200 ms) arrive; the sender's PONGs queue
# behind its capped PAGES, so they are not expected before the abort.
pings=$(per_frame "$S3" ferry.direction | awk -F'\t' '$1 == 14 && $2 == "receiver->sender"' | wc -l)
nonces=$(field "tcp.stream == $S3 && ferry.type == 14" ferry.nonce | tr ',' '\n' | grep -c '^0x')
check "session 3: the receiver's PINGs decoded ($pings), each with a nonce ($nonces in the packets holding PINGs)" \
	[ "$pings" -ge 2 -a "$nonces" -ge "$pings" ]

t4=$(stream_types "$S4")
check "session 4: HELLO WELCOME DOMAIN MANIFEST CHECKS REFUSE ($t4)" \
	[ "$t4" = "HELLO WELCOME DOMAIN MANIFEST CHECKS REFUSE " ]
caps=$(field "tcp.stream == $S4 && (ferry.type == 1 || ferry.type == 2)" ferry.caps | tr '\n' ' ')
# ferry-send offers CAP_REUSE (4) with images, and this ferry-recv (--reuse)
# grants it: DOMAIN | REUSE both ways.
check "session 4: HELLO and WELCOME carry CAP_DOMAIN and CAP_REUSE ($caps)" \
	[ "$caps" = "0x00000005 0x00000005 " ]
dom=$(field "tcp.stream == $S4 && ferry.type == 16" ferry.domain.check_only ferry.domain.arch \
	ferry.domain.nwaive ferry.domain.xml_len)
check "DOMAIN: check_only set, arch, no waiver, an XML length ($dom)" \
	bash -c "echo '$dom' | grep -qP '^(True|1)\t\S+\t0\t[1-9][0-9]*\$'"
rows=$(field "tcp.stream == $S4 && ferry.type == 17" ferry.checks.nrows ferry.checks.status \
	ferry.checks.name ferry.checks.code)
want_cpus=$(sed -n "s/^[[:space:]]*FERR_VIRT_CPUS = -\([0-9]*\),.*/\1/p" "$REPO/src/common/err.h")
check "CHECKS: one row per check, host-cpus fails with VIRT_CPUS ($want_cpus), the others pass" python3 - \
	"$rows" "$want_cpus" <<'EOF'
import sys
nrows, st, names, codes = sys.argv[1].split("\t")
st, names, codes = st.split(","), names.split(","), codes.split(",")
ok = int(nrows) == len(st) == len(names) == len(codes) >= 2
ok &= all((s == "2") == (n == "host-cpus") for s, n in zip(st, names))
ok &= all(s == "1" for s, n in zip(st, names) if n != "host-cpus")
ok &= codes[names.index("host-cpus")] == sys.argv[2]
sys.exit(0 if ok else 1)
EOF
ts -Y "tcp.stream == $S4 && ferry.type == 17" -O ferry >"$T/checks.txt"
check "CHECKS: statuses and codes shown by name (Status: fail, VIRT_CPUS)" \
	bash -c "grep -q 'Status: fail (2)' '$T/checks.txt' && grep -q 'Check code: VIRT_CPUS ($want_cpus)' '$T/checks.txt' && grep -q 'Status: pass (1)' '$T/checks.txt'"
rf4=$(field "tcp.stream == $S4 && ferry.type == 5" ferry.refuse.code)
check "session 4: REFUSE VIRT_CPUS after CHECKS ($rf4)" [ "$rf4" = "$want_cpus" ]

# direction: HELLO/MANIFEST/PAGES/COMMIT from the sender, the rest from the receiver
bad_dir=$(awk -F'\t' '{ n = split($3, t, ","); split($4, d, ",");
	for (i = 1; i <= n; i++) {
		s2r = (t[i] == 1 || t[i] == 3 || t[i] == 6 || t[i] == 8 || t[i] == 9 || t[i] == 12 || t[i] == 16)
		r2s = (t[i] == 2 || t[i] == 4 || t[i] == 5 || t[i] == 7 || t[i] == 10 || t[i] == 13 || t[i] == 17)
		if ((s2r && d[i] != "sender->receiver") || (r2s && d[i] != "receiver->sender")) print $2
	} }' "$T/types.tsv" | wc -l)
check "ferry.direction matches every frame type's direction ($bad_dir wrong)" [ "$bad_dir" -eq 0 ]

# Session id: WELCOME vs the receiver's JSON events (32 hex digits).
sid1=$(field "tcp.stream == $S1 && ferry.type == 2" ferry.session_id | tr -d ':\n')
want=$(python3 -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print([e for e in ev if e.get("event")=="done"][0]["session"])' "$T/recv.json")
check "WELCOME session id = the receiver's session ($sid1)" [ -n "$sid1" -a "$sid1" = "$want" ]
short=$(sed -n 's/.*session \([0-9a-f]\{16\}\) .*committed.*/\1/p' "$T/recv.log" | head -1)
check "... and its first 16 hex digits are the ones ferry-recv logged ($short)" \
	[ -n "$short" -a "${sid1:0:16}" = "$short" ]
sid_ok=$(json_done "$T/ok.json" session)
check "... and the sender's ($sid_ok)" [ "$sid1" = "$sid_ok" ]
hello=$(field "tcp.stream == $S1 && ferry.type == 1" ferry.magic ferry.version ferry.max_frame)
check "HELLO: magic FRY1, version 1, max_frame 1052672 ($hello)" \
	[ "$hello" = "$(printf '0x46525931\t1\t1052672')" ]

# Manifest of session 1 vs the files.
man=$(field "tcp.stream == $S1 && ferry.type == 3" ferry.manifest.ndev ferry.dev.name \
	ferry.dev.kind ferry.dev.unit ferry.dev.size ferry.manifest.state_size ferry.manifest.state_name)
want=$(printf '2\tmem.img,disk.img\t1,2\t4096,65536\t%s,%s\t%s\tstate.bin' \
	"$(stat -c %s "$T/src/mem.img")" "$(stat -c %s "$T/src/disk.img")" "$(stat -c %s "$T/src/state.bin")")
check "MANIFEST: names, kinds, units, sizes and state size match the files" [ "$man" = "$want" ]
[ "$man" = "$want" ] || { echo "got:  $man"; echo "want: $want"; } | diag

# PAGES of session 1: every frame's entries decoded, the per-kind totals
# equal to what ferry-send reported, round 1 covers every unit.
field "tcp.stream == $S1 && ferry.type == 6" ferry.pages.device ferry.pages.round ferry.pages.count \
	ferry.page.kind >"$T/pages.tsv"
python3 - "$T/pages.tsv" "$T/ok.json" >"$T/pages.out" <<'EOF'
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
done = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")][-1]
frames = entries = 0
round1 = {}
kinds = {1: 0, 2: 0, 3: 0, 4: 0}
for dev, rnd, cnt, kind in rows:
    for d, r, c in zip(dev.split(","), rnd.split(","), cnt.split(",")):
        frames += 1
        entries += int(c)
        if r == "1":
            round1[d] = round1.get(d, 0) + int(c)
    for k in kind.split(","):
        kinds[int(k)] += 1
print("frames", frames)
print("entries", entries)
print("decoded", sum(kinds.values()))
print("round1_mem", round1.get("1", 0))
print("round1_disk", round1.get("2", 0))
want = [done[k] for k in ("pages_zero", "pages_dedup", "pages_lz4", "pages_raw")]
print("kinds", " ".join(str(kinds[k]) for k in (1, 2, 3, 4)))
print("sender", " ".join(str(w) for w in want))
EOF
v() { sed -n "s/^$1 //p" "$T/pages.out"; }
check "PAGES: $(v frames) frames, $(v entries) entries announced, $(v decoded) entries decoded" \
	[ "$(v frames)" -gt 0 -a "$(v entries)" = "$(v decoded)" ]
check "PAGES: round 1 sends every unit (memory $(v round1_mem) of 64, disk $(v round1_disk) of 16)" \
	[ "$(v round1_mem)" = 64 -a "$(v round1_disk)" = 16 ]
check "PAGES: ZERO/REF/LZ4/RAW entries ($(v kinds)) = ferry-send's pages_zero/dedup/lz4/raw ($(v sender))" \
	[ "$(v kinds)" = "$(v sender)" ]

# Sequence numbers: PAGES 1..N, COMMIT = N, COMMITTED = N.
pseq=$(field "tcp.stream == $S1 && ferry.type == 6" ferry.pages.seq | tr ',' '\n' | tr '\n' ' ')
n=$(echo "$pseq" | wc -w)
check "PAGES seq runs 1..$n ($pseq)" [ "$pseq" = "$(seq -s ' ' 1 "$n") " ]
cseq=$(field "tcp.stream == $S1 && ferry.type == 9" ferry.commit.seq)
dseq=$(field "tcp.stream == $S1 && ferry.type == 10" ferry.committed.seq)
check "COMMIT seq $cseq and COMMITTED seq $dseq = last PAGES seq $n" [ "$cseq" = "$n" -a "$dseq" = "$n" ]
aseq=$(field "tcp.stream == $S1 && ferry.type == 7" ferry.ack.seq | tr ',' '\n' | tail -1)
check "last ACK acknowledges PAGES $n ($aseq)" [ "$aseq" = "$n" ]
cm=$(field "tcp.stream == $S1 && ferry.type == 9" ferry.commit.ndev ferry.commit.dev_id)
check "COMMIT: 2 devices, ids 1,2 ($cm)" [ "$cm" = "$(printf '2\t1,2')" ]
stlen=$(per_frame "$S1" ferry.len | awk -F'\t' '$1 == 8 { print $2 }' | tr '\n' ' ')
stoff=$(field "tcp.stream == $S1 && ferry.type == 8" ferry.state.offset | tr '\n' ' ')
want=$((8 + $(stat -c %s "$T/src/state.bin")))
check "STATE: one frame, offset 0, payload $want bytes (8 + the state file) ($stoff/$stlen)" \
	[ "$stoff" = "0 " -a "$stlen" = "$want " ]

# Reassembly: a frame larger than one TLS record (16 KiB), several frames in a packet.
big=$(per_frame "$S1" ferry.len | awk -F'\t' '$1 == 6 { print $2 }' | sort -n | tail -1)
check "a PAGES frame of $big bytes (> one 16 KiB TLS record) was reassembled" [ "${big:-0}" -gt 16384 ]
multi=$(awk -F'\t' 'index($3, ",") { n++ } END { print n + 0 }' "$T/types.tsv")
check "packets carrying several ferry frames are split into each ($multi packets)" [ "$multi" -gt 0 ]

# Codes on the wire vs src/common/err.h (wire code = -enum value).
errh=$REPO/src/common/err.h
code_of() { sed -n "s/^[[:space:]]*FERR_$1 = -\([0-9]*\),.*/\1/p" "$errh"; }
rc_size=$(code_of REFUSE_SIZE)
rf=$(field "tcp.stream == $S2 && ferry.type == 5" ferry.refuse.code ferry.refuse.device ferry.refuse.text)
ok_rf=0
[ -n "$rc_size" ] && [ "$(echo "$rf" | cut -f1,2)" = "$(printf '%s\t1' "$rc_size")" ] &&
	echo "$rf" | cut -f3 | grep -q 'sized\.img' && ok_rf=1
check "REFUSE code $(echo "$rf" | cut -f1) = FERR_REFUSE_SIZE ($rc_size), device 1, text names sized.img" \
	[ $ok_rf -eq 1 ]
[ $ok_rf -eq 1 ] || echo "$rf" | diag
t5=$(stream_types "$S5")
core5=$(echo "$t5" | tr ' ' '\n' | grep -vE '^(ACK|PING|PONG)?$' | uniq | tr '\n' ' ')
check "session 5: HELLO WELCOME MANIFEST HAVE... ACCEPT COMMIT COMMITTED ($core5)" \
	[ "$core5" = "HELLO WELCOME MANIFEST HAVE ACCEPT COMMIT COMMITTED " ]
# one "device first count;" per HAVE frame (a packet may hold several)
hv=$(field "tcp.stream == $S5 && ferry.type == 20" ferry.have.device ferry.have.first ferry.have.count |
	awk -F'\t' '{ n = split($1, d, ","); split($2, f, ","); split($3, c, ",");
		for (i = 1; i <= n; i++) printf "%s %s %s;", d[i], f[i], c[i] }')
check "session 5: HAVE covers the 64 pages of device 1 and the 16 blocks of device 2 ($hv)" \
	[ "$hv" = "1 0 64;2 0 16;" ]
nh=$(field "tcp.stream == $S5 && ferry.type == 20" ferry.have.hash | tr ',' '\n' | grep -c .)
check "session 5: one ferry.have.hash per unit ($nh)" [ "$nh" -eq 80 ]
hdir=$(per_frame "$S5" ferry.direction | awk -F'\t' '$1 == 20 { print $2 }' | sort -u)
check "session 5: HAVE goes receiver->sender ($hdir)" [ "$hdir" = "receiver->sender" ]
ts -Y "tcp.stream == $S2 && ferry.type == 5" -O ferry >"$T/refuse.txt"
check "REFUSE code shown by name (Refusal code: REFUSE_SIZE ($rc_size))" \
	grep -q "Refusal code: REFUSE_SIZE ($rc_size)" "$T/refuse.txt"
rc_ab=$(code_of ABORTED)
er=$(field "tcp.stream == $S3 && ferry.type == 11" ferry.error.code)
erdir=$(per_frame "$S3" ferry.direction | awk -F'\t' '$1 == 11 { print $2 }')
check "ERROR code $er ($erdir) = FERR_ABORTED ($rc_ab) from the receiver" \
	[ -n "$rc_ab" -a "$er" = "$rc_ab" -a "$erdir" = "receiver->sender" ]
ts -Y "tcp.stream == $S3 && ferry.type == 11" -O ferry >"$T/error.txt"
check "ERROR code shown by name (Error code: ABORTED ($rc_ab))" \
	grep -q "Error code: ABORTED ($rc_ab)" "$T/error.txt"

# The dissector's names agree with the C headers.
tshark -G values -X "lua_script:$DISS" 2>/dev/null | grep -P '^V\tferry\.' >"$T/values.tsv"
bad=0
while read -r name num; do
	grep -qP "^V\tferry.type\t$num\t$name\$" "$T/values.tsv" || { bad=1; echo "type $num $name" | diag; }
done < <(sed -n 's/^[[:space:]]*FT_\([A-Z]*\) = \([0-9]*\),.*/\1 \2/p' "$REPO/proto/ferry_proto.h" |
	grep -v '^INVALID\|^COUNT')
check "ferry.type names = enum ferry_frame_type of proto/ferry_proto.h" [ $bad -eq 0 ]
bad=0
while read -r name num; do
	grep -qP "^V\tferry.error.code\t$num\t$name\$" "$T/values.tsv" || { bad=1; echo "code $num $name" | diag; }
done < <(sed -n 's/^[[:space:]]*FERR_\([A-Z_]*\) = -\([0-9]*\),.*/\1 \2/p' "$errh" | awk '$2 >= 10')
check "ferry.error.code names = enum ferr_code of src/common/err.h" [ $bad -eq 0 ]
bad=0
while read -r name num; do
	grep -qP "^V\tferry.checks.code\t$num\t$name\$" "$T/values.tsv" || { bad=1; echo "check code $num $name" | diag; }
done < <(sed -n 's/^[[:space:]]*FERR_\([A-Z_]*\) = -\([0-9]*\),.*/\1 \2/p' "$errh" | awk '$2 >= 10')
check "ferry.checks.code names = enum ferr_code of src/common/err.h" [ $bad -eq 0 ]
bad=0
while read -r name num; do
	grep -qP "^V\tferry.checks.status\t$num\t$name\$" "$T/values.tsv" || { bad=1; echo "status $num $name" | diag; }
done < <(sed -n 's/^[[:space:]]*CS_\([A-Z]*\) = \([0-9]*\),.*/\1 \2/p' "$REPO/proto/ferry_proto.h" |
	grep -v '^INVALID' | tr 'A-Z' 'a-z')
check "ferry.checks.status names = enum ferry_check_status of proto/ferry_proto.h" [ $bad -eq 0 ]

# The port preference alone (heuristic off) decodes the same frames.
# shellcheck disable=SC2086
ts -Y ferry --disable-heuristic ferry_tls -o "ferry.tls_port:$PORT" $F \
	-e tcp.stream -e frame.number -e ferry.type -e ferry.direction >"$T/types-port.tsv"
check "with ferry.tls_port:$PORT and the heuristic off: the same frames" \
	cmp -s "$T/types.tsv" "$T/types-port.tsv"

# Without the key log: TLS records, no ferry frame.
nokey=$(tshark -n -r "$CAP" -X "lua_script:$DISS" -o "ferry.tls_port:$PORT" -Y ferry 2>/dev/null | wc -l)
app=$(tshark -n -r "$CAP" -X "lua_script:$DISS" -d "tcp.port==$PORT,tls" -Y tls.app_data 2>/dev/null | wc -l)
check "without the key log: $app TLS application-data packets, $nokey ferry frames" \
	[ "$app" -gt 0 -a "$nokey" -eq 0 ]
t_done
