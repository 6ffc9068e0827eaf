# Shared helpers for the end-to-end test scripts (bash).  Each script
# sources this, prints TAP lines and exits non-zero when a check failed.
# Every background process is registered and killed by PID on exit; the
# temp directory is removed.
set -u
FERRY_BIN=${FERRY_BIN:-$PWD/build}
case "$FERRY_BIN" in /*) ;; *) FERRY_BIN=$PWD/$FERRY_BIN;; esac
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/ferry-test.XXXXXX")
T_PIDS=()
T_FAILED=0
T_N=0

t_cleanup() {
	local p
	for p in "${T_PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${T_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap t_cleanup EXIT

# Register a background PID for cleanup.
t_bg() { T_PIDS+=("$1"); }

ok() { T_N=$((T_N + 1)); echo "ok $T_N - $*"; }
not_ok() { T_N=$((T_N + 1)); T_FAILED=1; echo "not ok $T_N - $*"; }
diag() { sed 's/^/# /'; }

# check DESCRIPTION COMMAND...: ok when the command succeeds.
check() {
	local d=$1; shift
	if "$@"; then ok "$d"; else not_ok "$d"; fi
}

t_done() {
	echo "1..$T_N"
	exit $T_FAILED
}

# Throwaway certificates in $T/certs: ca.pem, sender.*, receiver.*.
t_certs() {
	"$REPO/tools/ferry-certs" "$T/certs" sender receiver >/dev/null || {
		not_ok "ferry-certs made certificates"; t_done; }
}

# Common flags.
RECV_TLS() { echo --cert "$T/certs/receiver.pem" --key "$T/certs/receiver.key" --ca "$T/certs/ca.pem"; }
SEND_TLS() { echo --cert "$T/certs/sender.pem" --key "$T/certs/sender.key" --ca "$T/certs/ca.pem" --peer-name receiver; }

# t_start_recv NAME DESTDIR [ARGS...]: start ferry-recv on a free loopback
# port; sets RECV_PID and RECV_PORT; log in $T/NAME.log, JSON in $T/NAME.json.
t_start_recv() {
	local name=$1 dest=$2; shift 2
	mkdir -p "$dest"
	# shellcheck disable=SC2046
	"$FERRY_BIN/ferry-recv" --listen 127.0.0.1:0 $(RECV_TLS) --dest-dir "$dest" --json "$@" \
		>"$T/$name.json" 2>"$T/$name.log" &
	RECV_PID=$!
	t_bg "$RECV_PID"
	local i
	for i in $(seq 1 100); do
		RECV_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$T/$name.log" | head -1)
		[ -n "$RECV_PORT" ] && return 0
		sleep 0.05
	done
	echo "ferry-recv did not start:" | diag; diag <"$T/$name.log"
	return 1
}

# Value of a numeric or string field of the last "done" event in a JSON file.
json_done() {
	python3 -c '
import json,sys
ev=[json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
d=[e for e in ev if e.get("event")=="done"]
v=d[-1].get(sys.argv[2], "") if d else ""
print(v)' "$1" "$2"
}

# t_no_sanitizer_reports WHAT: one TAP line, ok when no $T/*.log holds an
# AddressSanitizer, LeakSanitizer or UBSan report (the first lines shown if
# one does).
t_no_sanitizer_reports() {
	if grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$T"/*.log >/dev/null 2>&1; then
		not_ok "no sanitizer report in $1"
		grep -h -A8 -E 'ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:' "$T"/*.log |
			head -40 | diag
	else
		ok "no sanitizer report in $1"
	fi
}

# Files in a directory other than the expected ones (staging leftovers).
t_staging_left() { find "$1" -name '.ferry-*' | wc -l; }
