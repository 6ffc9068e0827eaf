#!/usr/bin/env bash
# End to end on loopback: a live guest (256 MiB memory + 512 MiB disk,
# dirtying memory at 20 MiB/s) migrates through ferry-send and ferry-recv
# over mutual TLS; the destination must equal the source images at pause
# time (compared here with cmp, not by ferry) and pass ferry-guest check.
# Also: round 1 of the standard mix puts at most 60% of its bytes on the
# wire, and the receiver's peak RSS stays under 96 MiB for a 1 GiB image.
source "$(dirname "$0")/lib.sh"
t_certs
G=$FERRY_BIN/ferry-guest

mkdir -p "$T/src" "$T/dst" "$T/paused"
"$G" create --mem "$T/src/mem.img" --mem-size 256M --disk "$T/src/disk.img" --disk-size 512M \
	--seed 11 >/dev/null || { not_ok "ferry-guest create"; t_done; }
"$G" run --mem "$T/src/mem.img" --disk "$T/src/disk.img" --dirty-rate 20MiB/s --disk-rate 2MiB/s \
	--pidfile "$T/guest.pid" 2>"$T/guest.log" &
GUEST=$!
t_bg "$GUEST"
for _ in $(seq 1 100); do [ -s "$T/guest.pid" ] && break; sleep 0.05; done
check "guest is running and dirtying memory" kill -0 "$GUEST"
sleep 0.5

t_start_recv recv "$T/dst" || t_done
# After COMMITTED the sender runs the cleanup command while the guest is
# still stopped: it snapshots the source images as they were at pause time.
# shellcheck disable=SC2046
"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) \
	--mem "$T/src/mem.img" --disk "$T/src/disk.img" --guest-pid "$GUEST" \
	--cleanup-cmd "cp --sparse=always '$T/src/mem.img' '$T/src/disk.img' '$T/paused/' && kill -KILL $GUEST" \
	--json >"$T/send.json" 2>"$T/send.log"
rc=$?
check "ferry-send exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || diag <"$T/send.log"
check "done event says ok" [ "$(json_done "$T/send.json" result)" = ok ]
check "memory image equals the source at pause time (cmp)" cmp "$T/paused/mem.img" "$T/dst/mem.img"
check "disk image equals the source at pause time (cmp)" cmp "$T/paused/disk.img" "$T/dst/disk.img"
"$G" check --mem "$T/dst/mem.img" --disk "$T/dst/disk.img" >"$T/check.out" 2>&1
check "ferry-guest check passes on the destination" [ $? -eq 0 ]
dirtied=$(sed -n 's/.* \([0-9]*\) dirtied, .*/\1/p' "$T/check.out")
check "the guest dirtied pages during the migration ($dirtied)" [ "${dirtied:-0}" -gt 0 ]
rounds=$(json_done "$T/send.json" rounds)
check "more than one pre-copy round ($rounds)" [ "${rounds:-0}" -ge 2 ]
r1l=$(json_done "$T/send.json" round1_logical_bytes)
r1w=$(json_done "$T/send.json" round1_frame_bytes)
pct=$((100 * r1w / r1l))
check "round 1 wire bytes are $pct% of logical (<= 60%)" [ "$pct" -le 60 ]
wire=$(json_done "$T/send.json" wire_bytes)
check "wire bytes reported from TCP ($wire)" [ "${wire:-0}" -gt "$r1w" ]
check "done event has every documented field" python3 -c '
import json,sys
d=[json.loads(l) for l in open(sys.argv[1])][-1]
need="result logical_bytes wire_bytes rounds downtime_ms duration_ms pages_zero pages_dedup pages_lz4 pages_raw".split()
missing=[k for k in need if k not in d]
sys.exit(1 if missing or d["event"]!="done" else 0)' "$T/send.json"
check "zero, dedupe, lz4 and raw pages all occurred" python3 -c '
import json,sys
d=[json.loads(l) for l in open(sys.argv[1])][-1]
sys.exit(0 if all(d[k]>0 for k in ("pages_zero","pages_dedup","pages_lz4","pages_raw")) else 1)' "$T/send.json"
check "no staging files left" [ "$(t_staging_left "$T/dst")" -eq 0 ]
check "receiver logged the commit" grep -q '"result":"ok"' "$T/recv.json"

# The same live migration with a dirty log (proto/DIRTYLOG.md): rounds
# after the first scan only what the guest marked, and the destination
# still equals the source at pause time.
rm -rf "$T/src" "$T/dst" "$T/paused"
mkdir -p "$T/src" "$T/dst" "$T/paused"
"$G" create --mem "$T/src/mem.img" --mem-size 256M --disk "$T/src/disk.img" --disk-size 512M \
	--seed 13 >/dev/null || { not_ok "ferry-guest create (dirty log)"; t_done; }
rm -f "$T/guest.pid"
"$G" run --mem "$T/src/mem.img" --disk "$T/src/disk.img" --dirty-rate 20MiB/s --disk-rate 2MiB/s \
	--dirty-log "$T/src/dirty.log" --pidfile "$T/guest.pid" 2>"$T/guest2.log" &
GUEST=$!
t_bg "$GUEST"
for _ in $(seq 1 100); do [ -s "$T/guest.pid" ] && break; sleep 0.05; done
check "dirty log: the guest created it" [ -s "$T/src/dirty.log" ]
sleep 0.5
t_start_recv recvdl "$T/dst" || t_done
# shellcheck disable=SC2046
"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) \
	--mem "$T/src/mem.img" --disk "$T/src/disk.img" --guest-pid "$GUEST" --dirty-log "$T/src/dirty.log" \
	--cleanup-cmd "cp --sparse=always '$T/src/mem.img' '$T/src/disk.img' '$T/paused/' && kill -KILL $GUEST" \
	--json >"$T/senddl.json" 2>"$T/senddl.log"
rc=$?
check "dirty log: ferry-send exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || diag <"$T/senddl.log"
check "dirty log: memory image equals the source at pause time (cmp)" \
	cmp "$T/paused/mem.img" "$T/dst/mem.img"
check "dirty log: disk image equals the source at pause time (cmp)" \
	cmp "$T/paused/disk.img" "$T/dst/disk.img"
check "dirty log: ferry-guest check passes on the destination" \
	"$G" check --mem "$T/dst/mem.img" --disk "$T/dst/disk.img"
scans=$(python3 -c '
import json,sys
r=[json.loads(l) for l in open(sys.argv[1]) if "\"round\"" in l]
r=[x for x in r if x.get("event")=="round"]
print(" ".join(str(x["units_scanned"]) for x in r))' "$T/senddl.json")
check "dirty log: round 1 scans every unit, later rounds far fewer (units scanned: $scans)" \
	python3 -c '
import sys
s=[int(x) for x in sys.argv[1].split()]
sys.exit(0 if len(s)>=2 and s[0]==65536+8192 and all(x < s[0]//4 for x in s[1:]) else 1)' "$scans"

# Receiver memory bound: a 1 GiB memory image.
rm -rf "$T/src" "$T/dst" "$T/paused"
mkdir -p "$T/big" "$T/bigdst"
"$G" create --mem "$T/big/mem.img" --mem-size 1G --seed 12 >/dev/null
t_start_recv recv2 "$T/bigdst" || t_done
# shellcheck disable=SC2046
"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --mem "$T/big/mem.img" \
	--json >"$T/send2.json" 2>"$T/send2.log"
check "1 GiB image migrates" [ "$(json_done "$T/send2.json" result)" = ok ]
# Nothing to pause and round 2 found nothing changed: no final round that
# would only scan the same image again.  The live guest above had one.
check "static image without a guest: 2 rounds ($(json_done "$T/send2.json" rounds))" \
	[ "$(json_done "$T/send2.json" rounds)" -eq 2 ]
check "static image: switchover says nothing changed" \
	grep -q 'switchover after round 2 (nothing changed; no guest to pause)' "$T/send2.log"
check "live guest: a final round after the switchover" grep -q 'switchover after round' "$T/send.log"
check "live guest: not the no-guest switchover" \
	 sh -c "! grep -q 'no guest to pause' '$T/send.log'"
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$RECV_PID/status")
case "$FERRY_BIN" in
*asan*) ok "receiver peak RSS ${hwm} KiB # SKIP sanitizer shadow memory inflates RSS" ;;
*) check "receiver peak RSS ${hwm} KiB < 96 MiB" [ "$hwm" -lt $((96 * 1024)) ] ;;
esac
check "1 GiB image equal (cmp)" cmp "$T/big/mem.img" "$T/bigdst/mem.img"

# Row 3: 90% duplicate or zero pages (45% zero, 45% copies of 64 pages,
# 10% unique random bytes) costs at most 15% of logical on the wire.
rm -rf "$T/big" "$T/bigdst"
mkdir -p "$T/dup" "$T/dupdst"
python3 - "$T/dup/mem.img" <<'PY'
import os, random, sys
rng = random.Random(3)
pool = [rng.randbytes(4096) for _ in range(64)]
zero = bytes(4096)
with open(sys.argv[1], "wb") as f:
    for i in range(65536):          # 256 MiB of 4 KiB pages
        k = i % 20
        f.write(zero if k < 9 else pool[rng.randrange(64)] if k < 18 else rng.randbytes(4096))
PY
t_start_recv recv3 "$T/dupdst" || t_done
# shellcheck disable=SC2046
"$FERRY_BIN/ferry-send" --to "127.0.0.1:$RECV_PORT" $(SEND_TLS) --mem "$T/dup/mem.img" \
	--json >"$T/send3.json" 2>"$T/send3.log"
check "row 3: 90% duplicate/zero image migrates" [ "$(json_done "$T/send3.json" result)" = ok ]
check "row 3: image equal (cmp)" cmp "$T/dup/mem.img" "$T/dupdst/mem.img"
dl=$(json_done "$T/send3.json" logical_bytes)
dw=$(json_done "$T/send3.json" wire_bytes)
dpct=$((100 * dw / dl))
check "row 3: wire bytes (TLS included) are $dpct% of logical (<= 15%)" [ "$dpct" -le 15 ]
t_done
