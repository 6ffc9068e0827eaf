#!/usr/bin/env bash
# The bench harness (tools/bench/bench.py, `make bench`) on tiny sizes, so
# that it cannot rot: every workload row and every target line comes out,
# with sane numbers (not that the targets pass).  Also: BENCH_STRICT=1 exits
# 1 on a FAIL, and Ctrl-C (SIGINT) stops the bench with nothing left behind
# (sshd, socat, ferry, QEMU, temp files).  Loopback only.  The Q1 rows (QEMU's
# own migration against ferry carrying it, 64 MiB guest) need
# qemu-system-x86_64; without it they must say skipped and target 7 SKIP.
# W5 (a return trip, ferry-recv --reuse onto a destination copy of the disk
# image with 5% of its blocks changed) has two rows, W5 and W5 disk only,
# and target 6.
source "$(dirname "$0")/lib.sh"

BENCH=$REPO/tools/bench/bench.py
for b in ferry-send ferry-recv ferry-guest bench-components; do
	[ -x "$FERRY_BIN/$b" ] || { not_ok "$FERRY_BIN/$b is built"; t_done; }
done
have_rsync=1 have_socat=1
{ command -v rsync && command -v ssh && [ -x /usr/sbin/sshd ]; } >/dev/null || have_rsync=0
{ command -v socat && command -v lz4; } >/dev/null || have_socat=0
have_qemu=1
{ command -v "${FERRY_QEMU:-qemu-system-x86_64}" && [ -f "$FERRY_BIN/qemu-guest/kernel.elf" ]; } \
	>/dev/null || have_qemu=0

# Processes whose command line or environment names DIR (the bench exports
# FERRY_BENCH_WORK=its work directory to everything it starts; none must be
# left).  Prints their number, and the command lines on stderr.
left_under() {
	python3 - "$1" <<'PY'
import os, sys
n = 0
for p in os.listdir("/proc"):
    if not p.isdigit() or int(p) == os.getpid():
        continue
    try:
        blob = b"".join(open(f"/proc/{p}/{f}", "rb").read() for f in ("cmdline", "environ"))
    except OSError:
        continue
    if sys.argv[1].encode() in blob:
        n += 1
        print(p, open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace"),
              file=sys.stderr)
print(n)
PY
}

mkdir -p "$T/work"
start=$SECONDS
BENCH_RUNS=1 BENCH_SCALE=1/64 python3 "$BENCH" --build "$FERRY_BIN" --tmp "$T/work" \
	--out "$T/results.md" --json "$T/results.json" >"$T/out" 2>"$T/err"
rc=$?
took=$((SECONDS - start))
check "bench smoke exits 0 (targets may FAIL) in ${took}s" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || { diag <"$T/err"; diag <"$T/out"; }
case "$FERRY_BIN" in
*asan*) ok "bench smoke took ${took}s # SKIP sanitizers slow everything down" ;;
*) check "bench smoke took under 20 s (${took}s)" [ "$took" -lt 20 ] ;;
esac

row() { grep -qE "^\| $1 \| $2 \| " "$T/out"; }
for r in "W1|ferry" "W2|ferry" "W3|ferry" "W4 256 MiB|ferry" "W4 1 GiB|ferry" "W4 4 GiB|ferry" \
	"W5|ferry" "W5 disk only|ferry"; do
	check "table row ${r%%|*} / ${r#*|}" row "${r%%|*}" "${r#*|}"
done
for w in W1 W3; do
	if [ "$have_socat" = 1 ]; then
		check "table row $w / tar+lz4+socat TLS" row "$w" "tar\+lz4\+socat TLS"
	else
		ok "table row $w / tar+lz4+socat TLS # SKIP socat or lz4 not installed"
	fi
	if [ "$have_rsync" = 1 ]; then
		check "table row $w / rsync -a over ssh" row "$w" "rsync -a over ssh"
	else
		ok "table row $w / rsync -a over ssh # SKIP rsync, ssh or sshd not installed"
	fi
done
for t in 1a 1b 2 3a 3b 4 5a 5b 5c; do
	check "target $t line with PASS or FAIL" grep -qE "^target $t: (PASS|FAIL) " "$T/out"
done
check "target 6 (W5) line with PASS or FAIL" grep -qE '^target 6: (PASS|FAIL) W5 disk only .*% of the ' "$T/out"
if [ "$have_qemu" = 1 ]; then
	for m in qemu-direct qemu-ferry; do
		check "table row Q1 / $m" row Q1 "$m"
	done
	check "target 7 (Q1, QEMU) line with PASS or FAIL" grep -qE '^target 7: (PASS|FAIL) Q1 wire' "$T/out"
else
	check "Q1 rows say skipped without QEMU" grep -qE '^\| Q1 \| qemu-ferry \| .*skipped' "$T/out"
	check "target 7 (Q1) SKIPs without QEMU" grep -qE '^target 7: SKIP ' "$T/out"
fi

# Sane numbers, from the JSON the same run wrote.
python3 - "$T/results.json" "$have_rsync" "$have_socat" "$have_qemu" >"$T/sane" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
bad = []
def need(cond, what):
    if not cond:
        bad.append(what)
# W1 and W3: 3 movers each; W2: ferry; W4: ferry at 3 sizes; W5: ferry,
# with and without the memory image; Q1: 2 movers (skipped rows without QEMU).
expect = 14 - (2 if sys.argv[2] == "0" else 0) - (2 if sys.argv[3] == "0" else 0)
need(len(d["rows"]) == expect, f"{len(d['rows'])} rows, expected {expect}")
for r in d["rows"]:
    name = f"{r['workload']}/{r['mover']}"
    if r["workload"] == "Q1" and sys.argv[4] == "0":
        need(r.get("skipped") and not r["runs"], f"{name}: Q1 without QEMU has runs")
        continue
    need(not r.get("error"), f"{name}: error {r.get('error')}")
    need(len(r["runs"]) == d["runs"], f"{name}: {len(r['runs'])} runs")
    s = r.get("summary", {})
    if r["workload"] == "Q1":
        # QEMU's figures from the source; the bench's downtime (STOP to the
        # destination's completed event) within QEMU's total time.
        for k in ("wall_s", "qemu_total_ms", "qemu_transferred", "qemu_syncs", "downtime_ms"):
            m, lo, hi = s.get(k, (None, None, None))
            need(m is not None and 0 < lo <= m <= hi, f"{name}: {k} = {s.get(k)}")
        need(s["wall_s"][2] < 30, f"{name}: wall {s['wall_s']}")
        need(s["qemu_transferred"][0] > 0.1 * r["logical_bytes"],
             f"{name}: QEMU transferred {s['qemu_transferred']} of {r['logical_bytes']}")
        need(s["downtime_ms"][0] < s["qemu_total_ms"][0] + 1000,
             f"{name}: downtime {s['downtime_ms']} total {s['qemu_total_ms']}")
        if d["netns"] or r["mover"] == "qemu-ferry":
            need(s["ratio"] is not None and 0.05 < s["ratio"] < 1.2, f"{name}: wire/logical {s['ratio']}")
        if r["mover"] == "qemu-ferry":
            md = s["measured_downtime_ms"][0]
            need(md is not None and 0 < md < 1000 * s["wall_s"][0], f"{name}: measured downtime {md}")
            need(s["rss_send"][0] and s["rss_recv"][0], f"{name}: peak RSS {s['rss_send']} {s['rss_recv']}")
        continue
    for k in ("wall_s", "cpu_send_s", "cpu_recv_s", "rss_send", "rss_recv"):
        m, lo, hi = s.get(k, (None, None, None))
        need(m is not None and 0 < lo <= m <= hi, f"{name}: {k} = {s.get(k)}")
    need(s["wall_s"][2] < 30, f"{name}: wall {s['wall_s']}")
    need(r["logical_bytes"] > 0, f"{name}: logical bytes")
    need(1 * 2**20 < s["rss_send"][0] < 4 * 2**30 and 1 * 2**20 < s["rss_recv"][0] < 4 * 2**30,
         f"{name}: peak RSS {s['rss_send']} {s['rss_recv']}")
    if r["workload"].startswith("W5"):
        # Every block but the changed ones was already there, and said so.
        nb, nc = r.get("blocks", 0), r.get("blocks_changed", 0)
        want = nb - nc
        need(0 < nc < 0.06 * nb, f"{name}: {nc} of {nb} blocks changed")
        need(all(x.get("units_reused") == want for x in r["runs"]),
             f"{name}: units_reused {[x.get('units_reused') for x in r['runs']]}, want {want}")
    if r["workload"] == "W5 disk only":
        # Target 6's row: only what differs crosses (whether <= 8% is the target's business).
        need(s.get("ratio") is not None and 0 < s["ratio"] < 0.2, f"{name}: wire/logical {s.get('ratio')}")
    elif d["netns"] or r["mover"] == "ferry":
        ratio = s["ratio"]
        need(ratio is not None and 0.05 < ratio < 1.2, f"{name}: wire/logical {ratio}")
        if r["workload"] == "W3":     # random bytes: nothing to save
            need(ratio > 0.95, f"{name}: W3 wire/logical {ratio}")
    if r["mover"] == "ferry":
        need(s["rounds"][0] is not None and s["rounds"][0] >= 1, f"{name}: rounds {s['rounds']}")
        if r["workload"] not in ("W2", "W5", "W5 disk only"):
            need(r.get("limit_s", 0) > 0 and 0 < s["limit_pct"] < 1000,
                 f"{name}: limit {r.get('limit_s')} pct {s.get('limit_pct')}")
    if r["workload"] == "W2":
        dt = s["downtime_ms"][0]
        need(dt is not None and 0 < dt < 1000 * s["wall_s"][0], f"{name}: downtime {dt} ms")
        fdt = s["ferry_downtime"][0]
        need(fdt is not None and abs(dt - fdt) < 200, f"{name}: bench {dt} vs ferry {fdt} ms")
for name, c in d["components"].items():
    for k in ("hash_Bps", "lz4c_Bps", "lz4d_Bps", "aes_enc_Bps", "aes_dec_Bps", "memcpy_Bps"):
        if k == "lz4d_Bps" and c["lz4_units"] == 0:
            continue                  # W3: no unit shrank, nothing to decompress
        need(1e7 < c[k] < 1e12, f"component {name}: {k} = {c[k]}")
    if name == "W3":
        need(c["lz4_units"] == 0 and c["payload_bytes"] == c["bytes_total"],
             f"component W3: random bytes shrank ({c['lz4_units']} units)")
    need(c["units_zero"] + c["units_dup"] + c["units_unique"] == c["units_total"],
         f"component {name}: unit counts")
    need(0 < c["limit_s"] < 60, f"component {name}: limit {c['limit_s']}")
need(set(d["components"]) >= {"W1", "W3", "W4 4 GiB"}, f"components {list(d['components'])}")
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
check "every row has sane numbers (median within min-max, CPU, RSS, wire, downtime)" [ $? -eq 0 ]
[ -s "$T/sane" ] && diag <"$T/sane"

check "report names the machine (cores, CPU model) and the date" \
	grep -qE '^- machine: [0-9]+ cores .*CPU model' "$T/results.md"
check "report has a date" grep -qE '^- date: [0-9]{4}-[0-9]{2}-[0-9]{2}' "$T/results.md"
check "report lists the exact commands" grep -q '^## Exact commands' "$T/results.md"
check "report has the ferry command line" grep -qE 'ferry-send --to 127\.0\.0\.1:PORT' "$T/results.md"
if [ "$have_rsync" = 1 ]; then
	check "report has the rsync and sshd command lines" \
		sh -c "grep -q '^rsync -a -e ' '$T/results.md' && grep -q 'sshd -d -e -f ' '$T/results.md'"
else
	ok "report has the rsync and sshd command lines # SKIP rsync not installed"
fi
check "report has the openssl speed command" grep -q 'openssl speed .*-evp aes-128-gcm' "$T/results.md"
check "nothing of the bench still runs" [ "$(left_under "$T/work" 2>"$T/left")" -eq 0 ]
diag <"$T/left"
check "the bench removed its work directory" [ -z "$(ls -A "$T/work")" ]

# BENCH_STRICT=1: exit 1 on a FAIL (with --only W5 every other target FAILs
# as not measured).
BENCH_STRICT=1 BENCH_SCALE=1/64 python3 "$BENCH" --build "$FERRY_BIN" --tmp "$T/work" \
	--only W5 >"$T/strict.out" 2>&1
check "BENCH_STRICT=1 exits 1 when a target FAILs" [ $? -eq 1 ]
python3 "$BENCH" --build "$FERRY_BIN" --tmp "$T/work" --scale 1/64 --only W5 >"$T/lax.out" 2>&1
check "without BENCH_STRICT the same bench exits 0" [ $? -eq 0 ]

# Ctrl-C in the middle of a migration: everything stopped, nothing left.
BENCH_RUNS=3 BENCH_SCALE=1/16 python3 "$BENCH" --build "$FERRY_BIN" --tmp "$T/work" \
	--only W1 --out "$T/int.md" >"$T/int.out" 2>"$T/int.err" &
BP=$!
t_bg "$BP"
for _ in $(seq 1 200); do
	grep -q 'W1 run 1/3: socat' "$T/int.err" && break
	sleep 0.05
done
sleep 0.2
kill -INT "$BP"
for _ in $(seq 1 100); do kill -0 "$BP" 2>/dev/null || break; sleep 0.05; done
wait "$BP"
rc=$?
check "SIGINT stops the bench (exit $rc = 130)" [ "$rc" -eq 130 ]
check "after SIGINT no bench process is left (sshd, socat, lz4, ferry)" \
	[ "$(left_under "$T/work" 2>"$T/left")" -eq 0 ]
diag <"$T/left"
check "after SIGINT the work directory is gone" [ -z "$(ls -A "$T/work")" ]
check "an interrupted bench writes no report" [ ! -e "$T/int.md" ]

# The same while Q1 has its two QEMUs and ferry running.
if [ "$have_qemu" = 1 ]; then
	BENCH_RUNS=2 BENCH_SCALE=1/64 python3 "$BENCH" --build "$FERRY_BIN" --tmp "$T/work" \
		--only Q1 --out "$T/qint.md" >"$T/qint.out" 2>"$T/qint.err" &
	BP=$!
	t_bg "$BP"
	for _ in $(seq 1 200); do
		grep -q 'Q1 run 1/2: qemu-ferry' "$T/qint.err" && break
		sleep 0.05
	done
	sleep 0.4
	kill -INT "$BP"
	for _ in $(seq 1 100); do kill -0 "$BP" 2>/dev/null || break; sleep 0.05; done
	wait "$BP"
	rc=$?
	check "SIGINT during Q1 stops the bench (exit $rc = 130)" [ "$rc" -eq 130 ]
	check "after SIGINT during Q1 no QEMU or ferry process is left" \
		[ "$(left_under "$T/work" 2>"$T/left")" -eq 0 ]
	diag <"$T/left"
	check "after SIGINT during Q1 the work directory is gone" [ -z "$(ls -A "$T/work")" ]
else
	ok "SIGINT during Q1 # SKIP qemu-system-x86_64 or the test guest kernel missing"
fi
t_done
