#!/usr/bin/env bash
# Run libFuzzer harnesses one after another, each for a fixed time, on its
# seed corpus; new inputs go to a work directory so fuzz/corpus stays
# small.  Used by `make fuzz` and by tests/e2e_fuzz_replay.sh.
#
# Usage: fuzz/run-fuzz.sh [-t SECONDS] [-b BINDIR] [-w WORKDIR] [HARNESS...]
#   -t  seconds per harness (default 60)
#   -b  where the libFuzzer binaries are (default build-fuzz)
#   -w  work directory: WORKDIR/corpus/H (new inputs), WORKDIR/artifacts/H
#       (crashes, leaks, timeouts, OOMs), WORKDIR/logs/H.log (default
#       build-fuzz)
#   HARNESS  names like fuzz_rsess (default: every fuzz/fuzz_*.c)
# Extra libFuzzer flags can be given in FUZZ_FLAGS.
#
# Prints one line per harness (runs, exec/s, cov, ft, corpus size) and
# exits 1 if any harness found a crash (or failed to run), naming the
# artifact to replay: BINDIR/H ARTIFACT, or build/fuzz-replay/H ARTIFACT.
set -u
cd "$(dirname "$0")/.." || exit 2

secs=60 bin=build-fuzz work=build-fuzz
while getopts t:b:w: o; do
	case $o in
	t) secs=$OPTARG ;;
	b) bin=$OPTARG ;;
	w) work=$OPTARG ;;
	*) sed -n '2,17p' "$0" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -gt 0 ]; then
	harnesses=("$@")
else
	harnesses=()
	for f in fuzz/fuzz_*.c; do harnesses+=("$(basename "$f" .c)"); done
fi

# Longest input per harness: room for a few frames with whole 4 KiB units
# (pages, rsess), the largest valid manifest (64 devices with 255-byte
# names), short strings for the CLI parsers.
max_len() {
	case $1 in
	fuzz_rsess | fuzz_pages | fuzz_qframe) echo 16384 ;;
	fuzz_manifest) echo 20000 ;;
	fuzz_frame | fuzz_lz4) echo 8192 ;;
	fuzz_resume) echo 1024 ;;
	fuzz_units) echo 256 ;;
	*) echo 4096 ;;
	esac
}

failed=()
printf '%-14s %9s %8s %6s %7s %7s  %s\n' harness runs exec/s cov ft corpus result
for h in "${harnesses[@]}"; do
	exe=$bin/$h
	log=$work/logs/$h.log
	mkdir -p "$work/corpus/$h" "$work/artifacts/$h" "$work/logs"
	if [ ! -x "$exe" ]; then
		echo "$h: $exe not built (make fuzz-build)" >&2
		failed+=("$h")
		continue
	fi
	seeds=()
	[ -d "fuzz/corpus/$h" ] && seeds=("fuzz/corpus/$h")
	# shellcheck disable=SC2086
	"$exe" -max_total_time="$secs" -timeout=25 -rss_limit_mb=2048 \
		-max_len="$(max_len "$h")" -dict=fuzz/ferry.dict -print_final_stats=1 \
		-artifact_prefix="$work/artifacts/$h/" ${FUZZ_FLAGS:-} \
		"$work/corpus/$h" "${seeds[@]}" >"$log" 2>&1
	rc=$?
	# Last status line: "#123 DONE cov: 456 ft: 789 corp: 12/3Kb ... exec/s: 1000 ..."
	last=$(grep -E '^#[0-9]+' "$log" | tail -1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
	ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
	corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9A-Za-z]*\).*/\1/p' <<<"$last")
	if [ "$rc" -eq 0 ]; then
		res=ok
	else
		res="CRASH (exit $rc), see $log"
		failed+=("$h")
	fi
	printf '%-14s %9s %8s %6s %7s %7s  %s\n' "$h" "${runs:-?}" "${eps:-?}" "${cov:-?}" \
		"${ft:-?}" "${corp:-?}" "$res"
	if [ "$rc" -ne 0 ]; then
		grep -E '^==[0-9]+==ERROR|^SUMMARY|fuzz invariant|^artifact_prefix|Test unit written' "$log" |
			head -8 | sed 's/^/    /'
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: failed: ${failed[*]} (artifacts in $work/artifacts/)"
	exit 1
fi
exit 0
