#!/usr/bin/env bash
# tools/ferry-conformance against ferry's own daemons (RELIABILITY.md rows
# 20-24, 30, 32): every case of the sender role against ferry-recv, every
# case of the receiver role against ferry-send; each case is one TAP check.
#
# Sender role: one ferry-recv with short timeouts (so that the cases that
# wait for the handshake, keepalive and outage timeouts stay short), its
# destination directory checked for leftovers by the tool, its PID given
# for the memory checks.  If the receiver stops serving (a crash), the
# cases not run yet are run again against a new receiver, and the crash is
# reported by the case that caused it.  The DOMAIN/CHECKS cases
# (domain-*, checks-*) run against a second ferry-recv started with
# --libvirt-uri (libvirt's test driver, tests/data/libvirt/dst-node.xml),
# which offers CAP_DOMAIN.
# Receiver role: the tool listens on a loopback port and starts ferry-send
# (a 256 KiB memory image) for each case.
# Usage: FERRY_BIN=build bash tests/e2e_conformance.sh
source "$(dirname "$0")/lib.sh"

TOOL=$REPO/tools/ferry-conformance
t_certs
"$REPO/tools/ferry-certs" --ca-from "$T/certs" "$T/certs" other >/dev/null ||
	not_ok "ferry-certs made a second identity"
C=$T/certs
DEST=$T/dest
TIMEOUTS=(--handshake-timeout 2s --keepalive-timeout 2s --outage-timeout 2s)
RECV_FLAGS=("${TIMEOUTS[@]}" --keepalive 500ms --max-sessions 8)

ncases=$("$TOOL" --list | wc -l)
check "ferry-conformance lists at least 30 cases ($ncases)" [ "$ncases" -ge 30 ]

# report OUT: one TAP line per case of the tool's output OUT; the names of
# the cases not run (the target stopped serving) go to NOT_RUN.
report() {
	local verdict name detail
	NOT_RUN=()
	while IFS= read -r line; do
		verdict=${line%% *}
		name=${line#* }
		name=${name%%:*}
		detail=${line#*: }
		case $verdict in
		PASS) ok "$name: $detail" ;;
		SKIP) ok "$name # SKIP $detail" ;;
		FAIL)
			if [[ $detail == *"not run: the target stopped serving"* ]]; then
				NOT_RUN+=("$name")
			else
				not_ok "$name: $detail"
			fi
			;;
		esac
	done < <(grep -E '^(PASS|FAIL|SKIP) ' "$1")
	if ! tail -n 1 "$1" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$'; then
		not_ok "ferry-conformance ended with its 'N passed, N failed' line"
		tail -n 5 "$1" | diag
	fi
}

# --- the tool as sender, against ferry-recv --------------------------------------

mapfile -t todo < <("$TOOL" --list --role sender | awk '{print $1}' | grep -vE '^sender/(domain|checks)-')
round=0
while [ ${#todo[@]} -gt 0 ] && [ $round -lt 4 ]; do
	round=$((round + 1))
	t_start_recv "recv$round" "$DEST" "${RECV_FLAGS[@]}" || { not_ok "ferry-recv started"; break; }
	sel=()
	for c in "${todo[@]}"; do sel+=(--case "$c"); done
	timeout -k 5 150 python3 "$TOOL" --role sender --to "127.0.0.1:$RECV_PORT" \
		--ca "$C/ca.pem" --cert "$C/sender.pem" --key "$C/sender.key" --peer-name receiver \
		--alt-cert "$C/other.pem" --alt-key "$C/other.key" \
		--dest-dir "$DEST" --target-pid "$RECV_PID" "${TIMEOUTS[@]}" --grace 1s \
		"${sel[@]}" >"$T/sender-role.$round.out" 2>&1
	report "$T/sender-role.$round.out"
	if ! kill -0 "$RECV_PID" 2>/dev/null; then
		echo "ferry-recv died during round $round:" | diag
		if grep -q 'ERROR: AddressSanitizer' "$T/recv$round.log"; then
			grep -m1 -A10 'ERROR: AddressSanitizer' "$T/recv$round.log" | diag
		else
			tail -n 4 "$T/recv$round.log" | diag
		fi
	fi
	kill "$RECV_PID" 2>/dev/null
	wait "$RECV_PID" 2>/dev/null
	todo=("${NOT_RUN[@]}")
done
[ ${#todo[@]} -eq 0 ] || not_ok "sender role: ${#todo[@]} cases never ran: ${todo[*]}"
check "sender role: no file left in the destination directory" \
	[ -z "$(find "$DEST" -mindepth 1 | head -1)" ]

# --- DOMAIN and CHECKS, against a ferry-recv that takes domains ------------------

DEST_V=$T/dest-virt
t_start_recv recv-virt "$DEST_V" "${RECV_FLAGS[@]}" \
	--libvirt-uri "test://$REPO/tests/data/libvirt/dst-node.xml" || not_ok "ferry-recv --libvirt-uri started"
if [ -n "$RECV_PORT" ] && kill -0 "$RECV_PID" 2>/dev/null; then
	timeout -k 5 60 python3 "$TOOL" --role sender --to "127.0.0.1:$RECV_PORT" \
		--ca "$C/ca.pem" --cert "$C/sender.pem" --key "$C/sender.key" --peer-name receiver \
		--dest-dir "$DEST_V" --target-pid "$RECV_PID" "${TIMEOUTS[@]}" --grace 1s \
		--case 'domain-*' --case 'checks-*' >"$T/sender-role-virt.out" 2>&1
	report "$T/sender-role-virt.out"
	# Every case ran: none may skip for want of CAP_DOMAIN here.
	check "DOMAIN cases: ferry-recv --libvirt-uri offered CAP_DOMAIN (no case skipped)" \
		bash -c "! grep -q '^SKIP ' '$T/sender-role-virt.out'"
	[ ${#NOT_RUN[@]} -eq 0 ] || not_ok "DOMAIN cases never ran (ferry-recv --libvirt-uri died): ${NOT_RUN[*]}"
	kill -0 "$RECV_PID" 2>/dev/null || { echo "ferry-recv --libvirt-uri died:" | diag; tail -n 4 "$T/recv-virt.log" | diag; }
	kill "$RECV_PID" 2>/dev/null
	wait "$RECV_PID" 2>/dev/null
	check "DOMAIN cases: no file left in the destination directory" \
		[ -z "$(find "$DEST_V" -mindepth 1 | head -1)" ]
fi

# --- the tool as receiver, against ferry-send ----------------------------------------

head -c 262144 /dev/urandom >"$T/src-mem.img"
cp "$T/src-mem.img" "$T/src-mem.orig"
SEND_CMD="'$FERRY_BIN/ferry-send' --to {addr} --cert '$C/sender.pem' --key '$C/sender.key'"
SEND_CMD+=" --ca '$C/ca.pem' --peer-name receiver --mem '$T/src-mem.img' --no-progress"
SEND_CMD+=" --keepalive 500ms --keepalive-timeout 2s --outage-timeout 3s --connect-timeout 2s"
SEND_CMD+=" --completion-timeout-per-gib 100000s 2>>'$T/senders.log'"
timeout -k 5 120 python3 "$TOOL" --role receiver --listen 127.0.0.1:0 \
	--ca "$C/ca.pem" --cert "$C/receiver.pem" --key "$C/receiver.key" --peer-name sender \
	--keepalive-timeout 2s --grace 1s --sender-cmd "$SEND_CMD" >"$T/receiver-role.out" 2>&1
report "$T/receiver-role.out"
check "receiver role: the source image is unchanged" cmp -s "$T/src-mem.img" "$T/src-mem.orig"

t_no_sanitizer_reports "the daemons' logs"
t_done
