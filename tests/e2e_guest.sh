#!/usr/bin/env bash
# End-to-end test of ferry-guest, the simulated guest: create, stats, check,
# run under SIGSTOP/SIGCONT/SIGTERM, corruption and in-flight handling, mark,
# determinism, refusal to overwrite.  Prints TAP lines; exits non-zero when
# any check failed.  Binaries come from $FERRY_BIN (default: build).
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${FERRY_BIN:-build}
if [ -d "$bin" ]; then
	bin=$(cd "$bin" && pwd)
elif [ -d "$here/$bin" ]; then
	bin=$here/$bin
fi
G=$bin/ferry-guest

n=0 failed=0
pids=()
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-e2e-guest.XXXXXX")

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
# check DESCRIPTION COMMAND...: ok when the simple command succeeds
check() {
	local d=$1; shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}
# { compound condition; }; res $? DESCRIPTION
res() { if [ "$1" -eq 0 ]; then ok "$2"; else not_ok "$2"; fi; }
diag() { sed 's/^/# /' "$@"; }
quiet() { "$@" >/dev/null 2>&1; }

# stat_val FILE NAME [FIELD]: value of a "name value percent" line of stats
stat_val() { awk -v k="$2" -v f="${3:-2}" '$1 == k { sub("%", "", $f); print $f }' "$1"; }
# between VALUE LOW HIGH (decimals allowed)
between() { awk -v v="$1" -v lo="$2" -v hi="$3" 'BEGIN { exit !(v != "" && v >= lo && v <= hi) }'; }
# flip_byte FILE OFFSET: invert one byte in place
flip_byte() {
	local b
	b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
	printf "\\x$(printf %02x $((b ^ 0xff)))" |
		dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# put_be64 FILE OFFSET VALUE: write a big-endian u64
put_be64() {
	local hex i s=""
	hex=$(printf %016x "$3")
	for i in 0 2 4 6 8 10 12 14; do s="$s\\x${hex:$i:2}"; done
	printf "$s" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
# wait_for_file FILE SECONDS
wait_for_file() {
	local i
	for i in $(seq 1 $(($2 * 20))); do
		[ -s "$1" ] && return 0
		sleep 0.05
	done
	return 1
}

# wait_stopped PID: until the process is in state T (SIGSTOP took effect)
wait_stopped() {
	local i
	for i in $(seq 1 250); do
		[ "$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" = T ] && return 0
		sleep 0.02
	done
	return 1
}
now_ms() { echo $(($(date +%s%N) / 1000000)); }

if [ ! -x "$G" ]; then
	not_ok "ferry-guest binary found at $G (build it with make build/ferry-guest)"
	echo "1..$n"
	exit 1
fi

mem=$tmp/mem.img disk=$tmp/disk.img
PAGE=4096 BLOCK=65536

# --- usage -------------------------------------------------------------------
"$G" --help >"$tmp/out" 2>&1
check "--help exits 0 and lists the commands" \
	grep -q "create --mem FILE" "$tmp/out"
"$G" create --mem "$mem" --mem-size 100000 --disk "$disk" --disk-size 32M 2>"$tmp/err"
rc=$?
{ [ "$rc" -eq 2 ] && grep -q -- "--mem-size" "$tmp/err" && [ ! -e "$mem" ]; }
res $? "create rejects a memory size that is not whole pages (exit 2)"
"$G" run --mem "$mem" --dirty-rate fast >/dev/null 2>"$tmp/err"
rc=$?
{ [ "$rc" -eq 2 ] && grep -q -- "--dirty-rate" "$tmp/err"; }
res $? "run rejects a bad rate naming the flag (exit 2)"
"$G" check --mem "$tmp/nonexistent" >/dev/null 2>"$tmp/err"
rc=$?
{ [ "$rc" -eq 2 ] && grep -q "nonexistent" "$tmp/err"; }
res $? "check on a missing file is an I/O error naming it (exit 2)"

# --- create and the page mix -------------------------------------------------
start=$(date +%s%N)
check "create 16M memory + 32M disk" \
	"$G" create --mem "$mem" --mem-size 16M --disk "$disk" --disk-size 32M --seed 7
echo "# create took $((($(date +%s%N) - start) / 1000000)) ms"
{ [ "$(stat -c %s "$mem")" -eq $((16 << 20)) ] && [ "$(stat -c %s "$disk")" -eq $((32 << 20)) ]; }
res $? "image sizes are exact"
check "disk image is sparse (under half of it allocated)" \
	[ $(($(stat -c %b "$disk") * 512)) -lt $((16 << 20)) ]

"$G" stats --mem "$mem" --disk "$disk" >"$tmp/stats"
diag "$tmp/stats"
check "zero pages are 35-55%" between "$(stat_val "$tmp/stats" mem.zero 3)" 35 55
check "duplicate pages are 5-15%" between "$(stat_val "$tmp/stats" mem.duplicate 3)" 5 15
check "compressible (text-like) pages are 20-40%" \
	between "$(stat_val "$tmp/stats" mem.compressible 3)" 20 40
check "zero disk blocks are 60-80%" between "$(stat_val "$tmp/stats" disk.zero 3)" 60 80
check "fresh image has no dirtied pages" [ "$(stat_val "$tmp/stats" mem.dirty)" = 0 ]

# text pages should shrink 2-4x with lz4: take the first compressible page
if command -v lz4 >/dev/null; then
	found=0
	for p in $(seq 1 200); do
		dd if="$mem" bs=$PAGE skip="$p" count=1 status=none >"$tmp/page"
		if [ "$(tr -d '\0' <"$tmp/page" | wc -c)" -gt 0 ] &&
		    ! LC_ALL=C grep -q '[^[:print:][:space:]]' "$tmp/page"; then
			found=$p
			break
		fi
	done
	sz=$(lz4 -c -1 "$tmp/page" | wc -c)
	{ [ "$found" -gt 0 ] && [ "$sz" -ge 1024 ] && [ "$sz" -le 2048 ]; }
	res $? "a text page (page $found) shrinks 2-4x with lz4 ($sz bytes)"
fi

"$G" check --mem "$mem" --disk "$disk" >"$tmp/out" 2>&1
rc=$?
diag "$tmp/out"
{ [ "$rc" -eq 0 ] && grep -q "^ok: 4096 pages ok, 0 dirtied" "$tmp/out"; }
res $? "check passes on the fresh image"

# --- determinism and overwrite -----------------------------------------------
mkdir "$tmp/b"
"$G" create --mem "$tmp/b/mem.img" --mem-size 16M --disk "$tmp/b/disk.img" --disk-size 32M --seed 7
check "same seed gives identical memory images" cmp -s "$mem" "$tmp/b/mem.img"
check "same seed gives identical disk images" cmp -s "$disk" "$tmp/b/disk.img"
"$G" create --mem "$tmp/b/mem8.img" --mem-size 16M --disk "$tmp/b/disk8.img" --disk-size 32M --seed 8
{ ! cmp -s "$mem" "$tmp/b/mem8.img"; }
res $? "another seed gives another memory image"
{ ! cmp -s "$disk" "$tmp/b/disk8.img"; }
res $? "another seed gives another disk image"
sum_before=$(sha256sum <"$tmp/b/mem.img")
"$G" create --mem "$tmp/b/mem.img" --mem-size 16M --disk "$tmp/b/disk.img" --disk-size 32M \
	--seed 9 >/dev/null 2>"$tmp/err"
rc=$?
{ [ "$rc" -eq 2 ] && grep -q "already exists" "$tmp/err" && [ "$(sha256sum <"$tmp/b/mem.img")" = "$sum_before" ]; }
res $? "create refuses to overwrite (exit 2, file untouched)"
check "create --force overwrites" \
	"$G" create --mem "$tmp/b/mem.img" --mem-size 16M --disk "$tmp/b/disk.img" --disk-size 32M --seed 8 --force
check "overwritten image equals a fresh one with that seed" cmp -s "$tmp/b/mem.img" "$tmp/b/mem8.img"
rm -rf "$tmp/b"

# --- run: stop, check, continue, terminate -----------------------------------
"$G" run --mem "$mem" --disk "$disk" --dirty-rate 8MiB/s --disk-rate 1MiB/s \
	--pidfile "$tmp/guest.pid" 2>"$tmp/run.err" &
gpid=$!
pids+=("$gpid")
check "run writes its pidfile" wait_for_file "$tmp/guest.pid" 5
check "pidfile holds the run's pid" [ "$(cat "$tmp/guest.pid" 2>/dev/null)" = "$gpid" ]
sleep 1
kill -STOP "$gpid"
check "SIGSTOP stops the guest" wait_stopped "$gpid"
"$G" check --mem "$mem" --disk "$disk" >"$tmp/out" 2>&1
rc=$?
diag "$tmp/out"
check "check passes while the guest is stopped mid-run" [ "$rc" -eq 0 ]
d1=$(grep -o '[0-9]* dirtied' "$tmp/out" | head -1 | cut -d' ' -f1)
check "pages were dirtied during the first second ($d1)" [ "${d1:-0}" -gt 500 ]

# After a long stop the guest must not burst to catch up: at 8 MiB/s (2048
# pages/s) 1.5 s stopped would be 3072 pages; the credit cap allows 100 ms
# worth (205) on top of the time it really ran.
"$G" stats --mem "$mem" >"$tmp/s1"
sleep 1.5
t0=$(now_ms)
kill -CONT "$gpid"
sleep 0.3
kill -STOP "$gpid"
wait_stopped "$gpid"
ran=$(($(now_ms) - t0))
"$G" stats --mem "$mem" >"$tmp/s2"
g1=$(stat_val "$tmp/s1" mem.generation) g2=$(stat_val "$tmp/s2" mem.generation)
limit=$((2048 * ran / 1000 + 205 + 400))
{ [ $((g2 - g1)) -gt 100 ] && [ $((g2 - g1)) -lt "$limit" ]; }
res $? "no catch-up burst after SIGCONT ($((g2 - g1)) units in $ran ms, limit $limit)"
kill -CONT "$gpid"
sleep 0.2
kill -TERM "$gpid"
wait "$gpid"
rc=$?
pids=()
diag "$tmp/run.err"
check "run exits 0 on SIGTERM" [ "$rc" -eq 0 ]
check "run removes its pidfile" [ ! -e "$tmp/guest.pid" ]
check "run prints a summary" grep -q "pages and [0-9]* blocks written" "$tmp/run.err"

"$G" check --mem "$mem" --disk "$disk" >"$tmp/out" 2>&1
rc=$?
diag "$tmp/out"
pd=$(grep -o '[0-9]* dirtied' "$tmp/out" | sed -n 1p | cut -d' ' -f1)
bd=$(grep -o '[0-9]* dirtied' "$tmp/out" | sed -n 2p | cut -d' ' -f1)
check "check passes after the run" [ "$rc" -eq 0 ]
{ [ "${pd:-0}" -gt 0 ] && [ "${bd:-0}" -gt 0 ]; }
res $? "dirtied pages > 0 ($pd) and dirtied blocks > 0 ($bd)"
"$G" stats --mem "$mem" >"$tmp/stats"
check "in-flight slot is clear after a clean stop" [ "$(stat_val "$tmp/stats" mem.inflight)" = 0 ]

# --- a run stopped by a timer ------------------------------------------------
check "run --duration stops by itself" \
	timeout 5 "$G" run --mem "$mem" --dirty-rate 4MiB/s --duration 300ms 2>/dev/null

# --- corruption --------------------------------------------------------------
cp "$mem" "$tmp/good.img"
bad=1234
flip_byte "$mem" $((bad * PAGE + 1000))
"$G" check --mem "$mem" >"$tmp/out" 2>&1
rc=$?
diag "$tmp/out"
check "check fails (exit 1) on a flipped byte" [ "$rc" -eq 1 ]
check "check names the corrupted page $bad" grep -Eq "^page $bad: (bad checksum|differs from initial content)" "$tmp/out"
check "check names only that page" [ "$(grep -c '^page ' "$tmp/out")" -eq 1 ]

# the same damage is accepted when the in-flight slot names that page
put_be64 "$mem" 64 $((bad + 1))
"$G" check --mem "$mem" >"$tmp/out" 2>&1
rc=$?
diag "$tmp/out"
{ [ "$rc" -eq 0 ] && grep -q "^page $bad: in-flight, accepted" "$tmp/out"; }
res $? "a torn page named by the in-flight slot is accepted"
put_be64 "$mem" 64 $((bad + 2))
"$G" check --mem "$mem" >/dev/null 2>&1
check "the slot excuses no other page" [ $? -eq 1 ]

# run finishes an interrupted store: slot set and page torn, run repairs it
put_be64 "$mem" 64 $((bad + 1))
timeout 5 "$G" run --mem "$mem" --dirty-rate 0 --duration 100ms 2>/dev/null
"$G" check --mem "$mem" >"$tmp/out" 2>&1
rc=$?
{ [ "$rc" -eq 0 ] && ! grep -q "in-flight, accepted" "$tmp/out"; }
res $? "run rewrites the torn in-flight page at start"

# a page copied over another: valid checksum, wrong index
cp "$tmp/good.img" "$mem"
"$G" mark --mem "$mem" --page 10 --text "copy-source" >/dev/null
dd if="$mem" of="$mem" bs=$PAGE skip=10 seek=11 count=1 conv=notrunc status=none
"$G" check --mem "$mem" >"$tmp/out" 2>&1
rc=$?
diag "$tmp/out"
{ [ "$rc" -eq 1 ] && grep -q "^page 11: index mismatch (holds 10)" "$tmp/out"; }
res $? "a page copied to the wrong index is reported as index mismatch"

# a damaged disk block
cp "$tmp/good.img" "$mem"
flip_byte "$disk" $((77 * BLOCK + 5000))
"$G" check --mem "$mem" --disk "$disk" >"$tmp/out" 2>&1
rc=$?
diag "$tmp/out"
{ [ "$rc" -eq 1 ] && grep -q "^block 77: " "$tmp/out"; }
res $? "check names a corrupted disk block"
flip_byte "$disk" $((77 * BLOCK + 5000))
check "disk passes again once the byte is restored" quiet "$G" check --disk "$disk"

# many bad pages: list capped at 20, then a count
for p in $(seq 100 130); do flip_byte "$mem" $((p * PAGE + 7)); done
"$G" check --mem "$mem" >"$tmp/out" 2>&1
{ [ "$(grep -c '^page ' "$tmp/out")" -eq 20 ] && grep -q "^\.\.\. and 11 more" "$tmp/out"; }
res $? "the bad list stops at 20 and counts the rest"
cp "$tmp/good.img" "$mem"

# --- mark --------------------------------------------------------------------
marker="FERRY-E2E-MARKER-$$-4b1d"
check "mark writes a text into a page" quiet "$G" mark --mem "$mem" --page 42 --text "$marker"
check "the marker is in the image at page 42" \
	[ "$(dd if="$mem" bs=$PAGE skip=42 count=1 status=none | tr -d '\0' | grep -ac "$marker")" -eq 1 ]
check "check accepts the marked page" quiet "$G" check --mem "$mem" --disk "$disk"
"$G" mark --mem "$mem" --page 4096 --text x >/dev/null 2>"$tmp/err"
{ [ $? -eq 2 ] && grep -q -- "--page" "$tmp/err"; }
res $? "mark rejects a page past the end (exit 2)"

echo "1..$n"
[ "$failed" -eq 0 ]
