# Helpers for the fault-injection end-to-end scripts (e2e_resume.sh,
# e2e_indoubt.sh).  Source after lib.sh.  Everything runs on 127.0.0.1;
# every background process is registered with t_bg and killed by PID.

G=$FERRY_BIN/ferry-guest
FP_BIN=$FERRY_BIN/ferry-faultproxy
T0_MS=$(date +%s%3N)

now_ms() { date +%s%3N; }
# Seconds since the script started, for the timing diagnostics.
elapsed() { local n; n=$(now_ms); printf '%d.%03d' $(((n - T0_MS) / 1000)) $(((n - T0_MS) % 1000)); }
say() { echo "# [$(elapsed)s] $*"; }

# --- processes -------------------------------------------------------------

# Process state letter (R, S, D, T, t, Z, ...) from /proc/PID/stat, or "-".
proc_state() {
	local s
	s=$(sed -n 's/.*) \(.\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)
	echo "${s:--}"
}
# The guest process exists and is not stopped (nor a zombie).
guest_runs() {
	kill -0 "$1" 2>/dev/null || return 1
	case "$(proc_state "$1")" in R | S | D) return 0 ;; *) return 1 ;; esac
}
guest_stopped() { [ "$(proc_state "$1")" = T ]; }
# Anonymous resident memory of a process in KiB (the heap, not the file
# pages of the mapped images).
rss_anon_kb() { awk '/^RssAnon:/ {print $2}' "/proc/$1/status" 2>/dev/null; }

# wait_pid PID TIMEOUT_S: wait for a child; sets WAIT_RC (124 on timeout,
# then the process is still running).
wait_pid() {
	local pid=$1 end=$(($(now_ms) + $2 * 1000))
	while kill -0 "$pid" 2>/dev/null && [ "$(proc_state "$pid")" != Z ]; do
		if [ "$(now_ms)" -ge "$end" ]; then
			WAIT_RC=124
			return 1
		fi
		sleep 0.05
	done
	wait "$pid"
	WAIT_RC=$?
	return 0
}

# --- fault proxy ------------------------------------------------------------

# fp_start NAME TARGET_PORT: start a proxy in front of 127.0.0.1:TARGET_PORT;
# sets FP_PID, FP_PORT, FP_CTL (log in $T/NAME.fplog).
fp_start() {
	local name=$1 to=$2
	rm -f "$T/$name.fpport"
	FP_CTL=$T/$name.fpctl
	"$FP_BIN" --listen 127.0.0.1:0 --to "127.0.0.1:$to" --ctl "$FP_CTL" \
		--port-file "$T/$name.fpport" --log "$T/$name.fplog" 2>"$T/$name.fperr" &
	FP_PID=$!
	t_bg "$FP_PID"
	for _ in $(seq 1 100); do
		[ -s "$T/$name.fpport" ] && [ -S "$FP_CTL" ] && break
		sleep 0.05
	done
	FP_PORT=$(cat "$T/$name.fpport" 2>/dev/null)
	[ -n "$FP_PORT" ] || { echo "fault proxy did not start" | diag; diag <"$T/$name.fperr"; return 1; }
}
# fp CMD...: one control command; its reply on stdout; non-zero unless "ok".
fp() {
	local out
	out=$("$FP_BIN" ctl "$FP_CTL" "$@" 2>&1)
	echo "$out"
	case "$out" in ok*) return 0 ;; *) echo "proxy ctl '$*': $out" >&2; return 1 ;; esac
}
fpq() { fp "$@" >/dev/null; }

# --- JSON event files ---------------------------------------------------------

# json_session_field FILE EVENT SID FIELD: FIELD of the last EVENT of
# session SID in a JSON event file (a receiver's), "" if none.
json_session_field() {
	python3 - "$1" "$2" "$3" "$4" <<'PY'
import json, sys
f, ev, s, k = sys.argv[1:5]
v = ""
for l in open(f):
    try:
        e = json.loads(l)
    except ValueError:
        continue
    if e.get("event") == ev and e.get("session") == s:
        v = e.get(k, "")
print(v)
PY
}

# json_count FILE EVENT [KEY VALUE]: number of events (optionally with
# KEY == VALUE).
json_count() {
	python3 - "$@" <<'PY'
import json, sys
f, ev = sys.argv[1], sys.argv[2]
kv = sys.argv[3:5]
n = 0
try:
    for l in open(f):
        l = l.strip()
        if not l.startswith("{"):
            continue
        try:
            e = json.loads(l)
        except ValueError:
            continue
        if e.get("event") != ev:
            continue
        if kv and str(e.get(kv[0])) != kv[1]:
            continue
        n += 1
except OSError:
    pass
print(n)
PY
}
# json_first_ts FILE EVENT [KEY VALUE]: ts_ms of the first such event, or "".
json_first_ts() {
	python3 - "$@" <<'PY'
import json, sys
f, ev = sys.argv[1], sys.argv[2]
kv = sys.argv[3:5]
try:
    for l in open(f):
        l = l.strip()
        if not l.startswith("{"):
            continue
        try:
            e = json.loads(l)
        except ValueError:
            continue
        if e.get("event") == ev and (not kv or str(e.get(kv[0])) == kv[1]):
            print(e.get("ts_ms", ""))
            break
except OSError:
    pass
PY
}
# json_last FILE EVENT FIELD: FIELD of the last EVENT (a.b for a nested one), or "".
json_last() {
	python3 - "$@" <<'PY'
import json, sys
f, ev, k = sys.argv[1:4]
v = ""
try:
    for l in open(f):
        l = l.strip()
        if not l.startswith("{"):
            continue
        try:
            e = json.loads(l)
        except ValueError:
            continue
        if e.get("event") == ev:
            v = e
            for part in k.split("."):
                v = v.get(part, "") if isinstance(v, dict) else ""
except OSError:
    pass
print(v)
PY
}
# wait_count TIMEOUT_S N FILE EVENT [KEY VALUE]: until at least N such
# events; gives up early when $WATCH_PID (if set) has exited.
wait_count() {
	local to=$1 n=$2; shift 2
	local end=$(($(now_ms) + to * 1000))
	while [ "$(json_count "$@")" -lt "$n" ]; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		if [ -n "${WATCH_PID:-}" ] && { ! kill -0 "$WATCH_PID" 2>/dev/null ||
			[ "$(proc_state "$WATCH_PID")" = Z ]; }; then
			[ "$(json_count "$@")" -ge "$n" ]
			return
		fi
		sleep 0.05
	done
}
# wait_json TIMEOUT_S FILE EVENT [KEY VALUE]: wait for such an event.
wait_json() {
	local to=$1; shift
	local end=$(($(now_ms) + to * 1000))
	while [ "$(json_count "$@")" -eq 0 ]; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.05
	done
}
# wait_state TIMEOUT_S FILE STATE [PID]: wait until the sender's JSON shows a
# state event STATE (any time so far); fails early when PID has exited.
wait_state() {
	local to=$1 f=$2 st=$3 pid=${4:-}
	local end=$(($(now_ms) + to * 1000))
	while [ "$(json_count "$f" state state "$st")" -eq 0 ]; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 1; fi
		sleep 0.02
	done
}

# sender_status SOCKET FIELD: a field of "ferry-send ctl SOCKET status --json".
sender_status() {
	"$FERRY_BIN/ferry-send" ctl "$1" status --json 2>/dev/null | python3 -c '
import json,sys
try:
    d=json.load(sys.stdin)
except ValueError:
    sys.exit(0)
print(d.get(sys.argv[1], ""))' "$2"
}

# --- guests and migrations -------------------------------------------------

# guest_make DIR MEM DISK SEED: create DIR/mem.img and DIR/disk.img.
guest_make() {
	rm -rf "$1"
	mkdir -p "$1"
	if [ "$3" = 0 ]; then
		"$G" create --mem "$1/mem.img" --mem-size "$2" --seed "$4" >/dev/null
	else
		"$G" create --mem "$1/mem.img" --mem-size "$2" --disk "$1/disk.img" --disk-size "$3" \
			--seed "$4" >/dev/null
	fi
}
# guest_start DIR RATE NAME: run the guest on DIR's images, dirtying memory
# at RATE (disk at 1 MiB/s); sets GUEST_PID.  Disowned so that bash does
# not print "Killed" when a cleanup command kills it (it is still reaped,
# and still killed by PID at exit).
guest_start() {
	local d=$1 rate=$2 name=$3
	rm -f "$T/$name.gpid"
	"$G" run --mem "$d/mem.img" --disk "$d/disk.img" --dirty-rate "$rate" --disk-rate 1MiB/s \
		--seed 5 --pidfile "$T/$name.gpid" 2>"$T/$name.glog" &
	GUEST_PID=$!
	t_bg "$GUEST_PID"
	disown "$GUEST_PID" 2>/dev/null
	for _ in $(seq 1 100); do [ -s "$T/$name.gpid" ] && break; sleep 0.05; done
	sleep 0.3
	guest_runs "$GUEST_PID"
}
# live_guest NAME MEM DISK SEED RATE: fresh images in $T/NAME.src and a
# guest dirtying them; sets GUEST_PID.
live_guest() {
	guest_make "$T/$1.src" "$2" "$3" "$4" && guest_start "$T/$1.src" "$5" "$1"
}

# send_bg NAME PORT SRCDIR GUESTPID ARGS...: start ferry-send in the
# background on SRCDIR's images (mem.img, disk.img if present) with the
# guest's pid, a control socket $T/NAME.ctl, JSON in $T/NAME.json, log in
# $T/NAME.log.  On commit the cleanup command copies the source images, still
# paused, into $T/NAME.paused/, writes $T/NAME.cleaned and kills the guest.
# Sets SEND_PID.
send_bg() {
	local name=$1 port=$2 src=$3 gpid=$4; shift 4
	local disk=() snap
	[ -f "$src/disk.img" ] && disk=(--disk "$src/disk.img")
	snap=$T/$name.paused
	rm -rf "$snap" "$T/$name.cleaned"
	mkdir -p "$snap"
	local cleanup="cp --sparse=always '$src/mem.img' ${disk:+'$src/disk.img'} '$snap/' && echo ran >'$T/$name.cleaned' && kill -KILL $gpid"
	# shellcheck disable=SC2046
	"$FERRY_BIN/ferry-send" --to "127.0.0.1:$port" $(SEND_TLS) --mem "$src/mem.img" "${disk[@]}" \
		--guest-pid "$gpid" --cleanup-cmd "$cleanup" --ctl "$T/$name.ctl" --json "$@" \
		>"$T/$name.json" 2>"$T/$name.log" &
	SEND_PID=$!
	WATCH_PID=$SEND_PID
	t_bg "$SEND_PID"
}

# verify_dest NAME DEST: the destination equals the paused-time snapshot (cmp)
# and passes ferry-guest check; prints TAP lines.
verify_dest() {
	local name=$1 dest=$2 f
	for f in mem.img disk.img; do
		[ -f "$T/$name.paused/$f" ] || continue
		if cmp "$T/$name.paused/$f" "$dest/$f" >"$T/$name.cmp" 2>&1; then
			ok "$name: $f equals the source at pause time (cmp)"
		else
			not_ok "$name: $f equals the source at pause time (cmp)"
			diag <"$T/$name.cmp"
		fi
	done
	local args=(--mem "$dest/mem.img")
	[ -f "$dest/disk.img" ] && args+=(--disk "$dest/disk.img")
	if "$G" check "${args[@]}" >"$T/$name.check" 2>&1; then
		ok "$name: ferry-guest check passes on the destination"
	else
		not_ok "$name: ferry-guest check passes on the destination"
		diag <"$T/$name.check"
	fi
}

# Number of entries in a directory (all files, staging included).
dir_count() { find "$1" -mindepth 1 | wc -l; }
# wait_dir_empty DIR TIMEOUT_S
wait_dir_empty() {
	local end=$(($(now_ms) + $2 * 1000))
	while [ "$(dir_count "$1")" -ne 0 ]; do
		[ "$(now_ms)" -ge "$end" ] && return 1
		sleep 0.1
	done
}

# show_logs NAME...: the tail of $T/NAME.log / .json / .fplog as diagnostics.
show_logs() {
	local n f
	for n in "$@"; do
		for f in "$T/$n.log" "$T/$n.json" "$T/$n.fplog"; do
			[ -s "$f" ] || continue
			echo "--- $(basename "$f") (last 25 lines)" | diag
			tail -25 "$f" | diag
		done
	done
}

# small_migration NAME PORT DEST: a small static image (4 MiB) migrates to
# the receiver at PORT (directly, no proxy) and lands equal; TAP lines.
small_migration() {
	local name=$1 port=$2 dest=$3
	mkdir -p "$T/$name.src"
	"$G" create --mem "$T/$name.src/$name-mem.img" --mem-size 4M --seed 3 --force >/dev/null
	# shellcheck disable=SC2046
	"$FERRY_BIN/ferry-send" --to "127.0.0.1:$port" $(SEND_TLS) --mem "$T/$name.src/$name-mem.img" \
		--json >"$T/$name.json" 2>"$T/$name.log"
	local rc=$?
	if [ "$rc" -eq 0 ] && cmp -s "$T/$name.src/$name-mem.img" "$dest/$name-mem.img"; then
		ok "$name: the receiver still serves: a next migration succeeds and is equal"
	else
		not_ok "$name: the receiver still serves: a next migration succeeds and is equal (rc $rc)"
		show_logs "$name"
	fi
	rm -f "$dest/$name-mem.img"
}

# expect_ok NAME DEST MINCUTS [TIMEOUT_S]: ferry-send NAME (SEND_PID)
# exits 0 with a done event "ok" and at least MINCUTS cuts, the cleanup
# command ran, the destination equals the source at pause time and passes
# ferry-guest check, and no staging file is left.  Then empties DEST and
# removes the scenario's images.  TAP lines.
expect_ok() {
	local name=$1 dest=$2 mincuts=$3 to=${4:-90} cuts
	wait_pid "$SEND_PID" "$to"
	if [ "$WAIT_RC" -eq 0 ] && [ "$(json_done "$T/$name.json" result)" = ok ]; then
		ok "$name: ferry-send exits 0, done event ok"
	else
		not_ok "$name: ferry-send exits 0, done event ok (exit $WAIT_RC)"
		[ "$WAIT_RC" -eq 124 ] && kill -KILL "$SEND_PID" 2>/dev/null
		show_logs "$name" ${SCEN_LOGS:-}
		# Do not let this failure spill into the next scenario: end the
		# receiver's side of the session now (its staging goes).
		local s
		s=$(json_done "$T/$name.json" session)
		if [ -n "${RECV_CTL:-}" ] && [ -n "$s" ]; then
			"$FERRY_BIN/ferry-recv" ctl "$RECV_CTL" abort "$s" >/dev/null 2>&1
			wait_dir_empty "$dest" 5
		fi
	fi
	cuts=$(json_done "$T/$name.json" cuts)
	check "$name: done event counts ${cuts:-?} cut(s) (>= $mincuts)" [ "${cuts:-0}" -ge "$mincuts" ]
	check "$name: the cleanup command ran after COMMITTED" [ -s "$T/$name.cleaned" ]
	verify_dest "$name" "$dest"
	check "$name: no staging file left" [ "$(t_staging_left "$dest")" -eq 0 ]
	rm -rf "${dest:?}"/* "$T/$name.paused" "$T/$name.src"
}

# expect_dest_empty NAME DEST TIMEOUT_S: DEST holds no file at all
# (staging included) within TIMEOUT_S.  TAP line.
expect_dest_empty() {
	if wait_dir_empty "$2" "$3"; then
		ok "$1: destination directory is empty (no staging files)"
	else
		not_ok "$1: destination directory is empty (no staging files)"
		find "$2" -mindepth 1 | diag
	fi
}

# ck DESCRIPTION 'SHELL CONDITION': ok when the condition (eval'd) holds.
ck() {
	local d=$1; shift
	if eval "$*"; then ok "$d"; else not_ok "$d"; fi
}
