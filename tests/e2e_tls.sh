#!/usr/bin/env bash
# Mutual TLS 1.3 refusals between real ferry-send and ferry-recv, and from
# openssl s_client: a sender certificate from another CA, a receiver
# certificate from another CA, a wrong --peer-name, a client without a
# certificate, a TLS 1.2 client.  Each: the refusal, the message on both
# sides, an empty destination, and the receiver still serving (a good
# migration right after succeeds).
# Usage: FERRY_BIN=build bash tests/e2e_tls.sh
source "$(dirname "$0")/lib.sh"

SEND=$FERRY_BIN/ferry-send
t_certs
"$REPO/tools/ferry-certs" "$T/other" sender receiver >/dev/null ||
	{ not_ok "ferry-certs made a second CA"; t_done; }
differ() { ! cmp -s "$1" "$2"; }
check "the second CA is another CA" differ "$T/certs/ca.pem" "$T/other/ca.pem"

mkdir -p "$T/src"
head -c 150000 /dev/urandom >"$T/src/tls.img"
DEST=$T/dest
t_start_recv recv "$DEST" || { not_ok "ferry-recv started"; t_done; }
MAIN_PID=$RECV_PID MAIN_PORT=$RECV_PORT

alive() { kill -0 "$1" 2>/dev/null; }
dir_empty() { [ -z "$(find "$1" -mindepth 1 | head -1)" ]; }
# wait_grep FILE EREGEX: until FILE has a matching line (5 s at most)
wait_grep() {
	local _
	for _ in $(seq 1 100); do
		grep -Eq -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
# grep_check DESCRIPTION FILE EREGEX: ok when FILE matches; else show FILE
grep_check() {
	if wait_grep "$2" "$3"; then ok "$1"; else
		not_ok "$1"; tail -n 8 "$2" | diag; fi
}
# tsend NAME PORT [ARGS]: ferry-send of tls.img; stderr in $T/NAME.err,
# exit status in SRC.  ARGS replace the default TLS flags.
tsend() {
	local name=$1 port=$2; shift 2
	timeout 30 "$SEND" --to "127.0.0.1:$port" --no-progress --json --disk "$T/src/tls.img" "$@" \
		>"$T/$name.json" 2>"$T/$name.err"
	SRC=$?
}
# good_migration LABEL: a normal migration to the main receiver commits
good_migration() {
	# shellcheck disable=SC2046
	tsend good "$MAIN_PORT" $(SEND_TLS)
	if [ "$SRC" -eq 0 ] && cmp -s "$T/src/tls.img" "$DEST/tls.img"; then
		ok "$1: receiver still serves, a good migration commits"
	else
		not_ok "$1: receiver still serves, a good migration commits (exit $SRC)"
		diag <"$T/good.err"
	fi
	rm -f "$DEST/tls.img"
}
OTHER_SEND=(--cert "$T/other/sender.pem" --key "$T/other/sender.key")
OUR_CA=(--ca "$T/certs/ca.pem")

good_migration "before the refusals"

# (a) The sender's certificate comes from the other CA.  In TLS 1.3 the
# receiver checks the client certificate after the client has finished its
# handshake, so the sender only learns of the refusal from an alert.  Tried
# several times: the message must name the CA every time, not only when the
# alert wins the race against the connection reset.
tries=20 exit6=0 named=0
for _ in $(seq 1 $tries); do
	tsend a "$MAIN_PORT" "${OTHER_SEND[@]}" "${OUR_CA[@]}" --peer-name receiver
	[ "$SRC" -eq 6 ] && exit6=$((exit6 + 1))
	if grep -Ew 'CA|unknown_ca' "$T/a.err" | grep -q network; then
		named=$((named + 1))
	else
		cp "$T/a.err" "$T/a.unnamed.err"
	fi
done
check "(a) sender cert from another CA: ferry-send exits 6 (network), $exit6 of $tries tries" \
	[ "$exit6" -eq "$tries" ]
if [ "$named" -eq "$tries" ]; then
	ok "(a) ferry-send's message says the receiver refused its certificate's CA ($named of $tries tries)"
else
	not_ok "(a) ferry-send's message says the receiver refused its certificate's CA ($named of $tries tries)"
	echo "a message without the CA:" | diag
	diag <"$T/a.unnamed.err"
fi
grep_check "(a) receiver log: the client certificate is not signed by its CA" "$T/recv.log" \
	"client certificate 'sender' is not signed by our CA"
grep_check "(a) receiver's --json stream records the refused handshake and why" "$T/recv.json" \
	"client certificate .sender. is not signed by our CA"
line=$(grep "client certificate 'sender' is not signed" "$T/recv.log" | grep -E 'session 0{16} |:[0-9]+ :' | tail -n 1)
if [ -n "$line" ]; then
	not_ok "(a) receiver's log line for a refused handshake has no all-zero session id and no dangling ' :'"
	echo "$line" | diag
else
	ok "(a) receiver's log line for a refused handshake has no all-zero session id and no dangling ' :'"
fi
check "(a) destination directory empty" dir_empty "$DEST"
check "(a) receiver still running" alive "$MAIN_PID"
good_migration "(a)"

# (b) The receiver's certificate comes from the other CA (it still trusts our
# senders).
# shellcheck disable=SC2317
RECV_TLS() { echo --cert "$T/other/receiver.pem" --key "$T/other/receiver.key" --ca "$T/certs/ca.pem"; }
t_start_recv recv-b "$T/dest-b"
unset -f RECV_TLS
RECV_TLS() { echo --cert "$T/certs/receiver.pem" --key "$T/certs/receiver.key" --ca "$T/certs/ca.pem"; }
# shellcheck disable=SC2046
tsend b "$RECV_PORT" $(SEND_TLS)
check "(b) receiver cert from another CA: ferry-send exits 6, got $SRC" [ "$SRC" -eq 6 ]
grep_check "(b) ferry-send: the server certificate is not signed by our CA" "$T/b.err" \
	"server certificate 'receiver' is not signed by our CA"
grep_check "(b) that receiver's log: the sender rejected its certificate (unknown CA)" \
	"$T/recv-b.log" "client rejected our certificate: not signed by a CA it trusts"
check "(b) destination directory empty" dir_empty "$T/dest-b"
check "(b) that receiver still running" alive "$RECV_PID"
kill "$RECV_PID" 2>/dev/null
RECV_PID=$MAIN_PID RECV_PORT=$MAIN_PORT

# (c) --peer-name other while the receiver's certificate says "receiver".
tsend c "$MAIN_PORT" --cert "$T/certs/sender.pem" --key "$T/certs/sender.key" "${OUR_CA[@]}" \
	--peer-name other
check "(c) wrong --peer-name: ferry-send exits 6, got $SRC" [ "$SRC" -eq 6 ]
grep_check "(c) ferry-send: name 'receiver' does not match expected 'other'" "$T/c.err" \
	"name 'receiver' does not match expected 'other'"
grep_check "(c) receiver log: the client rejected its certificate" "$T/recv.log" \
	"client rejected our certificate \(alert bad_certificate"
check "(c) destination directory empty" dir_empty "$DEST"
check "(c) receiver still running" alive "$MAIN_PID"

# (d) A client without a certificate.  -ign_eof: s_client reads on after the
# end of its input, so it sees the receiver's alert instead of racing it.
timeout 10 openssl s_client -connect "127.0.0.1:$MAIN_PORT" -CAfile "$T/certs/ca.pem" -tls1_3 \
	-ign_eof </dev/null >"$T/d.out" 2>&1
grep_check "(d) no client certificate: receiver log says the client sent no certificate" \
	"$T/recv.log" "refused: TLS handshake: client sent no certificate"
grep_check "(d) s_client hears alert certificate required" "$T/d.out" "alert certificate required"
check "(d) destination directory empty" dir_empty "$DEST"
check "(d) receiver still running" alive "$MAIN_PID"

# (e) A TLS 1.2 client.
timeout 10 openssl s_client -connect "127.0.0.1:$MAIN_PORT" -CAfile "$T/certs/ca.pem" -tls1_2 \
	-cert "$T/certs/sender.pem" -key "$T/certs/sender.key" </dev/null >"$T/e.out" 2>&1
rc=$?
check "(e) TLS 1.2 client: s_client fails (exit $rc)" [ "$rc" -ne 0 ]
grep_check "(e) s_client hears alert protocol version" "$T/e.out" "alert protocol version"
grep_check "(e) receiver log: client offered TLS 1.2; TLS 1.3 is required" "$T/recv.log" \
	"client offered TLS 1.2; TLS 1.3 is required"
check "(e) destination directory empty" dir_empty "$DEST"
check "(e) receiver still running" alive "$MAIN_PID"

good_migration "after every refusal"
check "no staging file left" [ "$(t_staging_left "$DEST")" -eq 0 ]
if grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$T"/*.log "$T"/*.err >/dev/null 2>&1; then
	not_ok "no sanitizer report in the logs"
	grep -h -A5 -E 'AddressSanitizer|runtime error:' "$T"/*.log "$T"/*.err | head -40 | diag
else
	ok "no sanitizer report in the logs"
fi
t_done
