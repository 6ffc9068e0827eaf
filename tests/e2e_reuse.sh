#!/usr/bin/env bash
# Return trips (PROTOCOL.md 4.19, ferry-recv --reuse): a destination that
# already holds an older copy of a disk image receives only the blocks
# that differ, and still ends byte-identical to the source (cmp).
#
# 1. A 256 MiB disk image of incompressible bytes (every block that has to
#    travel costs its full 64 KiB: the worst case) migrates once without
#    --reuse: the full cost, wire_bytes of the done event.
# 2. 5% of the destination copy's blocks are overwritten (random blocks,
#    fixed seed), and the image migrates again with --reuse: the
#    destination equals the source, wire_bytes <= 8% of the image and far
#    below the full run, the sender logs and reports what was there.
# 3. Nothing differs: almost nothing moves.
# 4. Without --reuse on the receiver: no HAVE, everything is sent.
# 5. A destination file of another size: refused (REFUSE_SIZE), as without
#    --reuse; nothing written.
# 6. 300 MiB of 4 KiB pages: more hashes than one HAVE may carry.
# 7. A live guest (memory + disk dirtying, --guest-pid) migrates with
#    --reuse onto its own older copy: equal to the source at pause time,
#    ferry-guest check passes.
source "$(dirname "$0")/lib.sh"
t_certs
G=$FERRY_BIN/ferry-guest
SIZE=$((256 * 1024 * 1024))
BLOCK=65536
NBLK=$((SIZE / BLOCK))

mkdir -p "$T/src" "$T/dst"
python3 - "$T/src/disk.img" "$SIZE" <<'PY' || { not_ok "made the source image"; t_done; }
import random, sys
rng = random.Random(20)
with open(sys.argv[1], "wb") as f:
    for _ in range(int(sys.argv[2]) // (1 << 20)):
        f.write(rng.randbytes(1 << 20))
PY

not() { ! "$@"; }

# spoil FILE SEED: overwrite 5% of FILE's 64 KiB blocks (random ones) with
# random bytes; prints how many.
spoil() {
	python3 - "$1" "$2" "$NBLK" "$BLOCK" <<'PY'
import random, sys
path, seed, nblk, block = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)
pick = rng.sample(range(nblk), (nblk * 5 + 99) // 100)
with open(path, "r+b") as f:
    for b in pick:
        f.seek(b * block)
        f.write(rng.randbytes(block))
print(len(pick))
PY
}

# migrate NAME [RECV FLAGS...]: one receiver (--once) on $T/dst, one
# sender of $T/src/disk.img; sets RC.  ONCE= (empty) leaves the receiver
# running (killed at exit): ferry-recv --once leaks its socket drain timer
# when it exits right after a refusal, which the ASan build reports.
ONCE=--once
migrate() {
	local name=$1; shift
	t_start_recv "recv-$name" "$T/dst" $ONCE "$@" || { RC=99; return; }
	# shellcheck disable=SC2046
	"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --disk "$T/src/disk.img" \
		--json >"$T/send-$name.json" 2>"$T/send-$name.log"
	RC=$?
	[ -n "$ONCE" ] && wait "$RECV_PID" 2>/dev/null
}

# --- 1. the first trip: everything ---------------------------------------------
migrate full
check "first trip (no --reuse): ferry-send exits 0" [ "$RC" -eq 0 ]
[ "$RC" -eq 0 ] || diag <"$T/send-full.log"
check "first trip: destination equals the source (cmp)" cmp "$T/src/disk.img" "$T/dst/disk.img"
full=$(json_done "$T/send-full.json" wire_bytes)
check "first trip: wire bytes $full >= 95% of the image (incompressible)" \
	[ "${full:-0}" -ge $((SIZE * 95 / 100)) ]
check "first trip: no unit reused" [ "$(json_done "$T/send-full.json" units_reused)" = 0 ]

# --- 2. the return trip: 5% of the blocks differ ----------------------------------
n=$(spoil "$T/dst/disk.img" 7)
check "5% of the destination's blocks overwritten ($n of $NBLK)" [ "${n:-0}" -eq $(((NBLK * 5 + 99) / 100)) ]
check "the destination now differs from the source" not cmp -s "$T/src/disk.img" "$T/dst/disk.img"
migrate reuse --reuse
check "return trip (--reuse): ferry-send exits 0" [ "$RC" -eq 0 ]
[ "$RC" -eq 0 ] || diag <"$T/send-reuse.log"
check "return trip: destination equals the source (cmp)" cmp "$T/src/disk.img" "$T/dst/disk.img"
wire=$(json_done "$T/send-reuse.json" wire_bytes)
pct100=$((10000 * ${wire:-0} / SIZE))
check "return trip: wire bytes $wire are $((pct100 / 100)).$(printf %02d $((pct100 % 100)))% of the image (<= 8%)" \
	[ "${wire:-$SIZE}" -le $((SIZE * 8 / 100)) ]
check "return trip: wire bytes $wire < 1/8 of the first trip's $full" [ $((wire * 8)) -lt "${full:-0}" ]
echo "wire bytes: first trip $full, return trip $wire, image $SIZE" | diag
grep -h "reuse:" "$T/recv-reuse.log" "$T/send-reuse.log" | diag
reused=$(json_done "$T/send-reuse.json" units_reused)
check "return trip: units_reused $reused = the $((NBLK - n)) blocks left alone" [ "$reused" = $((NBLK - n)) ]
sent=$(python3 -c '
import json,sys
d=[json.loads(l) for l in open(sys.argv[1])][-1]
print(sum(d[k] for k in ("pages_zero","pages_dedup","pages_lz4","pages_raw")))' "$T/send-reuse.json")
check "return trip: the $n spoiled blocks were sent, nothing else ($sent)" [ "$sent" = "$n" ]
check "return trip: sender log says what was already there" \
	grep -q "reuse: disk.img: $((NBLK - n)) of $NBLK blocks already at the destination" "$T/send-reuse.log"
check "return trip: receiver log says the staging file started from the existing file" \
	grep -q "reuse: disk.img: the staging file starts from the existing destination file" \
	"$T/recv-reuse.log"
check "return trip: receiver's done event offered $NBLK units" \
	[ "$(json_done "$T/recv-reuse.json" units_offered)" = "$NBLK" ]
check "return trip: no staging files left" [ "$(t_staging_left "$T/dst")" -eq 0 ]

# --- 3. nothing differs ----------------------------------------------------------------
migrate same --reuse
check "identical destination (--reuse): ferry-send exits 0" [ "$RC" -eq 0 ]
check "identical destination: still equal (cmp)" cmp "$T/src/disk.img" "$T/dst/disk.img"
w0=$(json_done "$T/send-same.json" wire_bytes)
check "identical destination: $w0 wire bytes (< 256 KiB)" [ "${w0:-$SIZE}" -lt $((256 * 1024)) ]
check "identical destination: every block reused" [ "$(json_done "$T/send-same.json" units_reused)" = "$NBLK" ]

# --- 4. a receiver without --reuse sends no HAVE -----------------------------------
spoil "$T/dst/disk.img" 8 >/dev/null
migrate plain
check "receiver without --reuse: ferry-send exits 0" [ "$RC" -eq 0 ]
check "receiver without --reuse: destination equals the source (cmp)" cmp "$T/src/disk.img" "$T/dst/disk.img"
check "receiver without --reuse: no unit reused" [ "$(json_done "$T/send-plain.json" units_reused)" = 0 ]
check "receiver without --reuse: no units offered" [ "$(json_done "$T/recv-plain.json" units_offered)" = 0 ]
wp=$(json_done "$T/send-plain.json" wire_bytes)
check "receiver without --reuse: everything sent again ($wp >= 95% of the image)" \
	[ "${wp:-0}" -ge $((SIZE * 95 / 100)) ]
check "receiver without --reuse: no reuse line in the sender's log" not grep -q "reuse:" "$T/send-plain.log"

# --- 5. an existing destination of another size: refused as before --------------
truncate -s $((SIZE / 2)) "$T/dst/disk.img"
cp "$T/dst/disk.img" "$T/half.img"
ONCE= migrate size --reuse
check "destination of another size (--reuse): ferry-send exits 3 (refused)" [ "$RC" -eq 3 ]
check "destination of another size: code REFUSE_SIZE" grep -q "REFUSE_SIZE" "$T/send-size.log"
check "destination of another size: left as it was (cmp)" cmp "$T/half.img" "$T/dst/disk.img"
check "destination of another size: no staging files left" [ "$(t_staging_left "$T/dst")" -eq 0 ]
rm -f "$T/half.img"

# --- 6. many HAVE frames -------------------------------------------------------------
# 300 MiB of 4 KiB pages: 76800 hashes, more than the 65791 a HAVE may carry
# under the sender's 1 MiB + 4 KiB maximum; ferry-recv copies and hashes
# 32 MiB per step and sends each step's hashes as one HAVE: in order, each
# page once, none over the maximum.
rm -rf "$T/src" "$T/dst"
mkdir -p "$T/src" "$T/dst" "$T/dump"
truncate -s 300M "$T/src/big.img"
head -c 1M /dev/urandom | dd of="$T/src/big.img" bs=1M seek=150 conv=notrunc status=none
cp --sparse=always "$T/src/big.img" "$T/dst/big.img"
t_start_recv recv-big "$T/dst" --once --reuse --dump-frames "$T/dump" || t_done
# shellcheck disable=SC2046
"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --mem "$T/src/big.img" \
	--json >"$T/send-big.json" 2>"$T/send-big.log"
check "76800 pages (--reuse): ferry-send exits 0" [ $? -eq 0 ]
wait "$RECV_PID" 2>/dev/null
check "76800 pages: equal (cmp)" cmp "$T/src/big.img" "$T/dst/big.img"
check "76800 pages: all reused" [ "$(json_done "$T/send-big.json" units_reused)" = 76800 ]
"$FERRY_BIN/ferry-inspect" --json "$T"/dump/recv-*.fdump >"$T/big.jsonl" 2>&1
check "76800 pages: HAVE frames cover pages 0..76799 in order, each within the sender's maximum" \
	python3 - "$T/big.jsonl" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
h = [r for r in recs if r.get("record") == "frame" and r.get("type") == "HAVE"]
nxt, ok = 0, len(h) >= 2
for x in h:
    ok &= x["fields"]["first"] == nxt and x["length"] <= 1052672
    nxt += x["fields"]["count"]
ok &= nxt == 76800 and recs[-1]["errors"] == 0
sys.exit(0 if ok else 1)
EOF

# --- 7. a live guest onto its own older copy -------------------------------------------
rm -rf "$T/src" "$T/dst" "$T/dump"
mkdir -p "$T/lsrc" "$T/ldst" "$T/paused"
"$G" create --mem "$T/lsrc/mem.img" --mem-size 64M --disk "$T/lsrc/disk.img" --disk-size 128M \
	--seed 21 >/dev/null || { not_ok "ferry-guest create"; t_done; }
t_start_recv recv-l1 "$T/ldst" --once || t_done
# shellcheck disable=SC2046
"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --mem "$T/lsrc/mem.img" \
	--disk "$T/lsrc/disk.img" --json >"$T/send-l1.json" 2>"$T/send-l1.log"
check "live: the first copy migrates" [ $? -eq 0 ]
wait "$RECV_PID" 2>/dev/null
lfull=$(json_done "$T/send-l1.json" wire_bytes)
"$G" run --mem "$T/lsrc/mem.img" --disk "$T/lsrc/disk.img" --dirty-rate 10MiB/s --disk-rate 2MiB/s \
	--pidfile "$T/guest.pid" 2>"$T/guest.log" &
GUEST=$!
t_bg "$GUEST"
for _ in $(seq 1 100); do [ -s "$T/guest.pid" ] && break; sleep 0.05; done
sleep 1
check "live: the guest runs and dirties its images" kill -0 "$GUEST"
t_start_recv recv-l2 "$T/ldst" --once --reuse || t_done
# shellcheck disable=SC2046
"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --mem "$T/lsrc/mem.img" \
	--disk "$T/lsrc/disk.img" --guest-pid "$GUEST" \
	--cleanup-cmd "cp --sparse=always '$T/lsrc/mem.img' '$T/lsrc/disk.img' '$T/paused/' && kill -KILL $GUEST" \
	--json >"$T/send-l2.json" 2>"$T/send-l2.log"
rc=$?
wait "$RECV_PID" 2>/dev/null
check "live (--reuse): ferry-send exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || diag <"$T/send-l2.log"
check "live: memory image equals the source at pause time (cmp)" cmp "$T/paused/mem.img" "$T/ldst/mem.img"
check "live: disk image equals the source at pause time (cmp)" cmp "$T/paused/disk.img" "$T/ldst/disk.img"
"$G" check --mem "$T/ldst/mem.img" --disk "$T/ldst/disk.img" >"$T/check.out" 2>&1
check "live: ferry-guest check passes on the destination" [ $? -eq 0 ]
lr=$(json_done "$T/send-l2.json" units_reused)
check "live: units were reused ($lr)" [ "${lr:-0}" -gt 0 ]
lw=$(json_done "$T/send-l2.json" wire_bytes)
check "live: wire bytes $lw below the first copy's $lfull" [ "${lw:-$lfull}" -lt "${lfull:-0}" ]
check "live: more than one round ($(json_done "$T/send-l2.json" rounds))" \
	[ "$(json_done "$T/send-l2.json" rounds)" -ge 2 ]
check "live: no staging files left" [ "$(t_staging_left "$T/ldst")" -eq 0 ]
t_no_sanitizer_reports "the reuse runs"
t_done
