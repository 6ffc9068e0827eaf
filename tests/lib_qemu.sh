# Helpers for the tests that run QEMU with the test guest
# (tests/qemu-guest/): source after lib.sh.  QEMU runs under TCG with no
# network and no display; its QMP socket and serial log are in $T.  Every
# QEMU is registered with t_bg and killed by PID.
QEMU=${FERRY_QEMU:-qemu-system-x86_64}
GUEST_KERNEL=$FERRY_BIN/qemu-guest/kernel.elf
QMPC=(python3 "$REPO/tests/qemu-guest/qmp.py")

# Skip the whole script (one SKIP line) when QEMU or the kernel is missing.
q_require() {
	if ! command -v "$QEMU" >/dev/null 2>&1; then
		ok "QEMU test guest # SKIP $QEMU not installed (tools/install-deps installs qemu-system-x86)"
		t_done
	fi
	if [ ! -f "$GUEST_KERNEL" ]; then
		not_ok "test guest kernel $GUEST_KERNEL missing (make builds it)"
		t_done
	fi
}

# q_start NAME MACHINE MIB [QEMU-ARGS...]: boot the guest; sets QPID, QSOCK.
q_start() {
	local name=$1 machine=$2 mib=$3
	shift 3
	QSOCK=$T/$name.qmp
	"$QEMU" -machine "$machine,accel=tcg" -m "$mib" -kernel "$GUEST_KERNEL" \
		-display none -nodefaults -no-user-config -net none -monitor none \
		-serial "file:$T/$name.serial.log" -qmp "unix:$QSOCK,server=on,wait=off" \
		"$@" >"$T/$name.log" 2>&1 </dev/null &
	QPID=$!
	t_bg "$QPID"
	"${QMPC[@]}" "$QSOCK" wait-ready 20 >/dev/null 2>>"$T/$name.log"
}

# q_status SOCK FIELD: one field of the guest's status block.
q_status() {
	"${QMPC[@]}" "$1" status | python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$2"
}

# q_wait_filled SOCK SECONDS: until the guest finished its fill (state 2).
q_wait_filled() {
	local end=$((SECONDS + $2))
	while [ $SECONDS -lt $end ]; do
		[ "$(q_status "$1" state 2>/dev/null)" = 2 ] && return 0
		sleep 0.2
	done
	return 1
}

# q_start_dest NAME MACHINE MIB [QEMU-ARGS...]: a migration destination: the
# same machine started paused (-S) waiting for migrate-incoming (-incoming
# defer); sets QPID, QSOCK.
q_start_dest() { q_start "$1" "$2" "$3" -incoming defer -S "${@:4}"; }

# q_boot NAME MACHINE MIB SECONDS [QEMU-ARGS...]: q_start, then wait until
# the guest filled its RAM; sets QPID, QSOCK.  Non-zero (QEMU killed) if
# either fails.
q_boot() {
	q_start "$1" "$2" "$3" "${@:5}" || { q_stop "$QPID"; return 1; }
	q_wait_filled "$QSOCK" "$4" || { q_stop "$QPID"; return 1; }
}

# q_runstate SOCK: QEMU's run state (running, paused, postmigrate, inmigrate,
# ...), "?" when QMP does not answer.
q_runstate() {
	"${QMPC[@]}" "$1" runstate 2>/dev/null |
		python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null || echo "?"
}

# q_migstatus SOCK: query-migrate's status ("none": no migration ever).
q_migstatus() { "${QMPC[@]}" "$1" migrate-status 2>/dev/null || echo "?"; }

# q_mig_field JSON PATH: a field of a query-migrate result (PATH like
# ram.transferred or total-time), "" if absent.
q_mig_field() {
	python3 -c '
import json,sys
v=json.loads(sys.argv[1])
for k in sys.argv[2].split("."):
    v=v.get(k, "") if isinstance(v, dict) else ""
print(v)' "$1" "$2"
}

# q_counter_advances SOCK: the guest's rewrite counter grows within 0.5 s;
# prints "A -> B".
q_counter_advances() {
	local a b
	a=$(q_status "$1" counter 2>/dev/null)
	sleep 0.5
	b=$(q_status "$1" counter 2>/dev/null)
	echo "${a:-?} -> ${b:-?}"
	[ -n "$a" ] && [ -n "$b" ] && [ "$b" -gt "$a" ]
}

# q_pmem_cmp SOCK_A SOCK_B MIB NAME: pmemsave all guest RAM (physical 0 to
# MIB MiB) of both QEMUs (A the paused source, B the destination) and
# compare them (cmp).  Returns 0 when equal, 3 when the one difference is
# the counter word of the guest's status block with B's counter behind A's
# (see below), 1 otherwise; prints what differs.  The two files
# ($T/NAME.a.pmem, $T/NAME.b.pmem) are removed.
# Why 3: QEMU 7.2 under TCG can miss the guest's last writes to its status
# page (written on every loop iteration, so its TLB entry never leaves the
# vCPU's TLB) when a migration runs slowly: a direct QEMU-to-QEMU migration
# capped at 20 MiB/s ends with the destination's counter ~0.1 s behind the
# paused source's, every other byte equal.  Not something the transport can
# cause alone; the caller decides how to report it.
q_pmem_cmp() {
	local a=$T/$4.a.pmem b=$T/$4.b.pmem rc
	if ! "${QMPC[@]}" "$1" pmemsave-all "$a" $(($3 << 20)) >/dev/null ||
		! "${QMPC[@]}" "$2" pmemsave-all "$b" $(($3 << 20)) >/dev/null; then
		echo "pmemsave failed"
		rm -f "$a" "$b"
		return 1
	fi
	if cmp -s "$a" "$b"; then
		rm -f "$a" "$b"
		return 0
	fi
	python3 - "$a" "$b" <<'PY'
import struct, sys
CNT = 0x180008          # status block (tests/qemu-guest/kernel.c) word 2
A, B = (open(f, "rb") for f in sys.argv[1:3])
off, pages, first = 0, 0, []
while True:
    x, y = A.read(4096), B.read(4096)
    if not x and not y:
        break
    if x != y:
        pages += 1
        if len(first) < 8:
            first += [off + i for i in range(min(len(x), len(y))) if x[i] != y[i]][:8 - len(first)]
            if len(x) != len(y):
                first.append(off + min(len(x), len(y)))
    off += 4096
A.seek(CNT); B.seek(CNT)
ca, cb = struct.unpack("<I", A.read(4))[0], struct.unpack("<I", B.read(4))[0]
only_counter = pages == 1 and all(CNT <= o < CNT + 4 for o in first)
print("%d page(s) differ, first bytes at %s; status counter: source %d, destination %d"
      % (pages, ", ".join("0x%x" % o for o in first[:8]), ca, cb))
sys.exit(3 if only_counter and cb < ca else 1)
PY
	rc=$?
	rm -f "$a" "$b"
	return $rc
}

# q_stop PID: kill QEMU by PID and reap it.
q_stop() {
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}
