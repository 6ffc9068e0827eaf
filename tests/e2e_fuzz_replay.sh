#!/usr/bin/env bash
# Fuzz corpora as regression tests (fuzz/README.md).
#
# 1. Replay: every input of every fuzz/corpus/<harness>/ (seeds and the
#    crash-* inputs of fixed bugs) runs once through the plain driver
#    $FERRY_BIN/fuzz-replay/<harness>, built by `make all` -- under ASan
#    and UBSan when FERRY_BIN is build-asan.  One ok per harness.
# 2. Smoke: when clang and libFuzzer are available, `make fuzz-build` and
#    each libFuzzer harness runs for FERRY_FUZZ_SMOKE seconds (default 10;
#    0 skips) from its corpus, new inputs kept in the temp directory.  One
#    ok per harness, or SKIP when clang/libFuzzer are missing.
# Usage: FERRY_BIN=build bash tests/e2e_fuzz_replay.sh
source "$(dirname "$0")/lib.sh"

SMOKE=${FERRY_FUZZ_SMOKE:-10}
cd "$REPO" || exit 1

harnesses=()
for d in fuzz/corpus/*/; do
	harnesses+=("$(basename "$d")")
done
if [ ${#harnesses[@]} -eq 0 ]; then
	not_ok "fuzz/corpus has no harness directories"
	t_done
fi

# --- 1. replay ---------------------------------------------------------------

for h in "${harnesses[@]}"; do
	exe=$FERRY_BIN/fuzz-replay/$h
	n=$(find "fuzz/corpus/$h" -maxdepth 1 -type f ! -name '.*' | wc -l)
	if [ ! -x "$exe" ]; then
		not_ok "replay $h: $exe missing (make all builds it)"
		continue
	fi
	if "$exe" "fuzz/corpus/$h" >"$T/replay-$h.log" 2>&1 &&
		grep -q "^$h: $n inputs replayed" "$T/replay-$h.log"; then
		ok "replay $h: $n inputs"
	else
		not_ok "replay $h: $n inputs"
		tail -30 "$T/replay-$h.log" | diag
	fi
done

# --- 2. libFuzzer smoke --------------------------------------------------------

skip_all() {
	local h
	for h in "${harnesses[@]}"; do
		ok "libFuzzer smoke $h # SKIP $1"
	done
	t_done
}

[ "$SMOKE" = 0 ] && skip_all "FERRY_FUZZ_SMOKE=0"
command -v clang >/dev/null 2>&1 || skip_all "clang not installed"
printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
	>"$T/probe.c"
clang -fsanitize=fuzzer,address -o "$T/probe" "$T/probe.c" >/dev/null 2>&1 ||
	skip_all "clang cannot link -fsanitize=fuzzer (libFuzzer missing: Debian package libclang-rt-14-dev)"

# Two test runs (build and build-asan) may build at the same time.
lock=()
command -v flock >/dev/null 2>&1 && lock=(flock "$REPO/fuzz")
if ! "${lock[@]}" make --no-print-directory -s fuzz-build >"$T/fuzz-build.log" 2>&1; then
	for h in "${harnesses[@]}"; do not_ok "libFuzzer smoke $h: make fuzz-build failed"; done
	diag <"$T/fuzz-build.log"
	t_done
fi
for h in "${harnesses[@]}"; do
	if FUZZ_FLAGS="-seed=1" fuzz/run-fuzz.sh -t "$SMOKE" -b build-fuzz -w "$T/fuzz" "$h" \
		>"$T/smoke-$h.log" 2>&1; then
		ok "libFuzzer smoke $h: ${SMOKE}s, $(awk -v h="$h" '$1 == h { print $3 " exec/s, cov " $4 }' "$T/smoke-$h.log")"
	else
		not_ok "libFuzzer smoke $h: ${SMOKE}s"
		diag <"$T/smoke-$h.log"
		grep -E 'ERROR|SUMMARY|#[0-9]+ +in |invariant' "$T/fuzz/logs/$h.log" | head -30 | diag
		# Keep the input that crashed where it survives the temp dir.
		mkdir -p build-fuzz/smoke-artifacts
		cp "$T/fuzz/artifacts/$h/"* build-fuzz/smoke-artifacts/ 2>/dev/null &&
			echo "crash input copied to build-fuzz/smoke-artifacts/" | diag
	fi
done
t_done
