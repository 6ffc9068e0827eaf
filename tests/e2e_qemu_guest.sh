#!/usr/bin/env bash
# The QEMU test guest (tests/qemu-guest/kernel.c, issue 6): QEMU 7.2 boots
# it under TCG (q35, 512 MiB, -kernel, no network, no display); it fills
# RAM from 2 MiB to 1 MiB below the top with its page pattern, then keeps
# rewriting 1024 pages with a counter kept in its status block.  Checked
# through QMP pmemsave (tests/qemu-guest/qmp.py): the fill finishes, pages
# at the start, middle and end hold the pattern, the counter advances.
# QEMU is killed by PID.  About 10-20 s.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/lib_qemu.sh"

q_require
q_start guest q35 512 || { not_ok "QEMU boots the test guest"; diag <"$T/guest.log"; t_done; }
ok "QEMU boots the test guest (q35, 512 MiB, pid $QPID)"

if q_wait_filled "$QSOCK" 45; then
	ok "the guest filled its RAM (state 2) in ${SECONDS}s"
else
	not_ok "the guest filled its RAM within 45 s"
	"${QMPC[@]}" "$QSOCK" status 2>&1 | diag
	q_stop "$QPID"
	t_done
fi

st=$("${QMPC[@]}" "$QSOCK" status)
read -r start end rot filled < <(python3 -c '
import json,sys
s=json.loads(sys.argv[1]); print(s["fill_start"], s["fill_end"], s["rot_pages"], s["filled"])' "$st")
pages=$(( (end - start) / 4096 ))
check "status block: fill 0x$(printf %x "$start")..0x$(printf %x "$end") (RAM top - 1 MiB), $filled of $pages pages, $rot rotating" \
	test "$start" = $((2 << 20)) -a "$end" -ge $((500 << 20)) -a "$filled" = "$pages" -a "$rot" = 1024

for where in start middle end; do
	case $where in
	start) addr=$start ;;
	middle) addr=$(( start + (pages / 2) * 4096 )) ;;
	end) addr=$(( end - 64 * 4096 )) ;;
	esac
	r=$("${QMPC[@]}" "$QSOCK" check-pattern "$addr" 64)
	if python3 -c 'import json,sys; sys.exit(json.loads(sys.argv[1])["bad"] != 0)' "$r"; then
		ok "pmemsave: 64 pages at the $where of the fill (0x$(printf %x "$addr")) hold the pattern: $r"
	else
		not_ok "pmemsave: 64 pages at the $where of the fill hold the pattern: $r"
	fi
done

c1=$(q_status "$QSOCK" counter)
sleep 0.5
c2=$(q_status "$QSOCK" counter)
check "the rewrite counter advances ($c1 -> $c2 in 0.5 s)" test "$c2" -gt "$c1"
check "the serial log says the fill is done" grep -q "fill done, rewriting" "$T/guest.serial.log"

q_stop "$QPID"
check "QEMU (pid $QPID) is gone" bash -c "! kill -0 $QPID 2>/dev/null"
t_done
