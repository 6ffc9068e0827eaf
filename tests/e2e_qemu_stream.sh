#!/usr/bin/env bash
# Real QEMU 7.2 migration streams through src/common/qstream.c (issue 6).
# The test guest (tests/qemu-guest/) boots under TCG, fills its RAM and
# keeps rewriting pages; QMP `migrate` writes its stream to a file:
#   1. q35, 32 MiB, "exec:cat > FILE", default capabilities;
#   2. pc, 16 MiB, a unix socket, return-path on (so the stream carries
#      QEMU_VM_COMMAND OPEN_RETURN_PATH; the reader answers SHUT at the end).
# Each stream is parsed in random chunks by build/tests/test_qstream
# --stream: no fallback, the device-state tail found, the re-encoded stream
# byte-identical (memcmp), every page of every RAM block sent at least
# once, and the guest's page pattern intact in the RAM rebuilt from the
# page records; the rebuilt stream, written out, is cmp-identical to QEMU's.
# QEMU is killed by PID.  About 15-30 s.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_qemu.sh"

q_require

# capture NAME MACHINE MIB MODE CAPS
capture() {
	local name=$1 machine=$2 mib=$3 mode=$4 caps=$5 st
	if ! q_start "$name" "$machine" "$mib"; then
		not_ok "$name: QEMU boots the test guest"; diag <"$T/$name.log"; return 1
	fi
	if ! q_wait_filled "$QSOCK" 30; then
		not_ok "$name: the guest filled its RAM within 30 s"; q_stop "$QPID"; return 1
	fi
	if st=$("${QMPC[@]}" "$QSOCK" "$mode" "$T/$name.bin" 60 "$caps" 2>"$T/$name.migrate.log"); then
		ok "$name: migrate ($machine, $mib MiB, ${caps:-no capabilities}) completed: $(du -k "$T/$name.bin" | cut -f1) KiB"
	else
		not_ok "$name: migrate completed: $st"; diag <"$T/$name.migrate.log"; q_stop "$QPID"; return 1
	fi
	q_stop "$QPID"
}

# parse NAME: the checks of test_qstream --stream, as our TAP lines.
parse() {
	local name=$1 line
	"$FERRY_BIN/tests/test_qstream" --stream "$T/$name.bin" --guest --out "$T/$name.rebuilt" \
		>"$T/$name.parse.log" 2>&1
	while IFS= read -r line; do
		case $line in
		"ok "*) ok "$name: ${line#ok * - }" ;;
		"not ok "*) not_ok "$name: ${line#not ok * - }" ;;
		esac
	done <"$T/$name.parse.log"
	grep -q '^ok' "$T/$name.parse.log" || { not_ok "$name: test_qstream ran"; diag <"$T/$name.parse.log"; }
	check "$name: the rebuilt stream equals QEMU's (cmp)" cmp -s "$T/$name.bin" "$T/$name.rebuilt"
	rm -f "$T/$name.rebuilt"
}

if capture exec q35 32 migrate-file ""; then
	parse exec
	check "exec: the stream starts with QEVM, version 3 (od)" \
		test "$(od -An -tx1 -N8 "$T/exec.bin" | tr -d ' \n')" = 5145564d00000003
fi
if capture rp pc 16 migrate-unix return-path; then
	parse rp
	check "rp: OPEN_RETURN_PATH (08 0001 0000) follows the configuration" \
		test "$(od -An -tx1 -j26 -N5 "$T/rp.bin" | tr -d ' \n')" = 0800010000
fi
t_done
