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

# q_start NAME MACHINE MIB: boot the guest; sets QPID, QSOCK.
q_start() {
	local name=$1 machine=$2 mib=$3
	QSOCK=$T/$name.qmp
	"$QEMU" -machine "$machine,accel=tcg" -m "$mib" -kernel "$GUEST_KERNEL" \
		-display none -nodefaults -no-user-config -net none -monitor none \
		-serial "file:$T/$name.serial.log" -qmp "unix:$QSOCK,server=on,wait=off" \
		>"$T/$name.log" 2>&1 </dev/null &
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

# q_stop PID: kill QEMU by PID and reap it.
q_stop() {
	kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}
