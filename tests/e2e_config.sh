#!/usr/bin/env bash
# Config files (--config FILE, --check-config) of ferry-recv and ferry-send
# (issue 8, acceptance 2): a valid file is printed back; an unknown key,
# a bad unit, a missing '=' and a bad boolean are refused naming FILE:LINE
# and the key; a command-line flag replaces the file's line (even a bad
# one); a bad command-line value is not blamed on the file; certificates
# are loaded by ferry-recv --check-config; one file with [send] and [recv]
# serves both; the samples name every flag of --help; and a migration on
# loopback runs with both daemons configured by files.
source "$(dirname "$0")/lib.sh"
t_certs
R=$FERRY_BIN/ferry-recv
S=$FERRY_BIN/ferry-send
G=$FERRY_BIN/ferry-guest
mkdir -p "$T/dst"

# A ferry-recv config whose line 10 is handshake-timeout.
write_recv_conf() {
	cat >"$T/r.conf" <<EOF
# ferry-recv for the test
[recv]
listen = 127.0.0.1:0
cert = $T/certs/receiver.pem
key = $T/certs/receiver.key
ca = $T/certs/ca.pem
; only the test's sender
peer-name = sender
dest-dir = $T/dst
handshake-timeout = ${1:-5s}
json = true
EOF
}

# expect_fail NAME FILE_AND_LINE TEXT CMD...: exit 2 and a message on
# stderr that holds "FILE:LINE: " and TEXT.
expect_fail() {
	local name=$1 where=$2 text=$3 rc; shift 3
	"$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ "$rc" -eq 2 ] && grep -qF -- "$where: " "$T/err" && grep -qF -- "$text" "$T/err"; then
		ok "$name: exit 2, $(head -1 "$T/err")"
	else
		not_ok "$name: exit $rc (want 2 and '$where: ... $text')"
		diag <"$T/err"
	fi
}

# --- ferry-recv --check-config ----------------------------------------------

write_recv_conf
"$R" --config "$T/r.conf" --check-config >"$T/out" 2>"$T/err"
check "recv: a valid file passes --check-config (exit 0)" [ $? -eq 0 ]
check "recv: --check-config prints the settings as a config file" \
	grep -qx "handshake-timeout = 5s" "$T/out"
check "recv: ... including flags without value as 'key = true'" grep -qx "json = true" "$T/out"
"$R" --config "$T/out" --check-config >"$T/out2" 2>"$T/err"
check "recv: the printed settings are themselves a valid config file" [ $? -eq 0 ]

cp "$T/r.conf" "$T/bad.conf"
sed -i 's/^peer-name = sender$/peer-nmae = sender/' "$T/bad.conf"
expect_fail "recv: unknown key" "$T/bad.conf:8" "unknown key 'peer-nmae'" \
	"$R" --config "$T/bad.conf" --check-config
write_recv_conf "5 fortnights"
expect_fail "recv: bad unit" "$T/r.conf:10" "key 'handshake-timeout': --handshake-timeout: duration '5 fortnights': unknown unit" \
	"$R" --config "$T/r.conf" --check-config
write_recv_conf "5x"
expect_fail "recv: bad unit (5x)" "$T/r.conf:10" "key 'handshake-timeout'" \
	"$R" --config "$T/r.conf" --check-config
write_recv_conf
printf 'max-sessions = 0\n' >>"$T/r.conf"
expect_fail "recv: value out of range on the last line" "$T/r.conf:12" "key 'max-sessions': --max-sessions" \
	"$R" --config "$T/r.conf" --check-config
write_recv_conf
printf 'once\n' >>"$T/r.conf"
expect_fail "recv: missing '='" "$T/r.conf:12" "key 'once': missing '='" \
	"$R" --config "$T/r.conf" --check-config
write_recv_conf
printf 'once = perhaps\n' >>"$T/r.conf"
expect_fail "recv: bad boolean" "$T/r.conf:12" "key 'once': expected true or false, not 'perhaps'" \
	"$R" --config "$T/r.conf" --check-config
write_recv_conf
printf '[reciever]\n' >>"$T/r.conf"
expect_fail "recv: unknown section" "$T/r.conf:12" "unknown section [reciever]" \
	"$R" --config "$T/r.conf" --check-config
write_recv_conf
"$R" --config "$T/missing.conf" --check-config >/dev/null 2>"$T/err"
check "recv: a missing file is a usage error naming it ($(cat "$T/err"))" \
	grep -qF "$T/missing.conf: No such file or directory" "$T/err"

# Flags override the file: the bad line is replaced, not parsed.
write_recv_conf "5 fortnights"
"$R" --config "$T/r.conf" --check-config --handshake-timeout 3s >"$T/out" 2>"$T/err"
check "recv: a flag replaces the file's line with the same key (exit 0)" [ $? -eq 0 ]
check "recv: --check-config shows the replaced line as a comment" \
	grep -q "^# handshake-timeout = 5 fortnights .*replaced by the command line" "$T/out"
check "recv: ... and the flag's value" grep -qx "handshake-timeout = 3s" "$T/out"
write_recv_conf
"$R" --config "$T/r.conf" --check-config --max-sessions 0 >/dev/null 2>"$T/err"
check "recv: a bad command-line value is not blamed on the file ($(cat "$T/err"))" \
	bash -c '! grep -q "r.conf" "$1" && grep -q -- "--max-sessions" "$1"' _ "$T/err"

# ferry-recv --check-config loads the certificates.
write_recv_conf
sed -i "s|^key = .*|key = $T/certs/sender.key|" "$T/r.conf"
"$R" --config "$T/r.conf" --check-config >/dev/null 2>"$T/err"
rc=$?
check "recv: --check-config refuses a key that does not match the certificate (exit $rc: $(head -1 "$T/err"))" \
	[ "$rc" -eq 2 ]

# --- ferry-send --check-config ----------------------------------------------

cat >"$T/s.conf" <<EOF
# ferry-send for the test
to = 127.0.0.1:1
cert = $T/certs/sender.pem
key = $T/certs/sender.key
ca = $T/certs/ca.pem
peer-name = receiver
mem = $T/src/mem.img
disk = $T/src/disk.img
bandwidth = 100MiB/s
rekey-bytes = 64M
no-progress = true
json = yes
EOF
"$S" --config "$T/s.conf" --check-config >"$T/out" 2>"$T/err"
check "send: a valid file passes --check-config (exit 0)" [ $? -eq 0 ]
check "send: --check-config prints the settings" grep -qx "bandwidth = 100MiB/s" "$T/out"
sed 's/^bandwidth = .*/bandwidth = 100 furlongs/' "$T/s.conf" >"$T/bad.conf"
expect_fail "send: bad unit (rate)" "$T/bad.conf:9" "key 'bandwidth': --bandwidth" \
	"$S" --config "$T/bad.conf" --check-config
sed 's/^rekey-bytes = .*/rekey-bytes = 64 megs/' "$T/s.conf" >"$T/bad.conf"
expect_fail "send: bad unit (size)" "$T/bad.conf:10" "key 'rekey-bytes': --rekey-bytes" \
	"$S" --config "$T/bad.conf" --check-config
sed 's/^bandwidth = /bandwith = /' "$T/s.conf" >"$T/bad.conf"
expect_fail "send: unknown key" "$T/bad.conf:9" "unknown key 'bandwith'" \
	"$S" --config "$T/bad.conf" --check-config
printf 'listen = 127.0.0.1:0\n' >>"$T/bad.conf"
sed -i '/^bandwith/d' "$T/bad.conf"
expect_fail "send: a ferry-recv key outside [recv]" "$T/bad.conf:12" "unknown key 'listen'" \
	"$S" --config "$T/bad.conf" --check-config

# One file, two sections.
write_recv_conf
{ printf '# shared\nca = %s\n[send]\n' "$T/certs/ca.pem"
  grep -vE '^(#|ca =)' "$T/s.conf"
  printf '[recv]\n'
  grep -vE '^(#|ca =|\[recv\]|json)' "$T/r.conf"; } >"$T/both.conf"
"$S" --config "$T/both.conf" --check-config >/dev/null 2>"$T/err"
check "one file with [send] and [recv]: ferry-send takes its part" [ $? -eq 0 ]
"$R" --config "$T/both.conf" --check-config >"$T/out" 2>"$T/err"
check "one file with [send] and [recv]: ferry-recv takes its part" \
	bash -c '[ "$1" -eq 0 ] && grep -q "^ca = " "$2" && ! grep -q "^to = " "$2"' _ $? "$T/out"

# --- the samples name every flag --------------------------------------------

for p in send recv; do
	missing=""
	for f in $("$FERRY_BIN/ferry-$p" --help | awk '{ s = $0; sub(/^[ \t]+/, "", s)
			if (s ~ /^-/) { sub(/  .*/, "", s); print s } }' |
		grep -oE -- '--[a-z][a-z0-9-]+' | sort -u); do
		k=${f#--}
		# The plan flags run other ferry-send processes: not config keys.
		case $k in help | config | check-config | plan | concurrency | plan-log-dir) continue ;; esac
		grep -qE "^(# )?$k =" "$REPO/tools/ferry-$p.conf.sample" || missing="$missing $k"
	done
	check "tools/ferry-$p.conf.sample has a line for every flag of --help${missing:+ (missing:$missing)}" \
		[ -z "$missing" ]
done
"$S" --config "$REPO/tools/ferry-send.conf.sample" --check-config >/dev/null 2>"$T/err"
check "tools/ferry-send.conf.sample passes --check-config" [ $? -eq 0 ]
sed -e "s|/etc/ferry/hostb|$T/certs/receiver|; s|/etc/ferry/ca.pem|$T/certs/ca.pem|" \
	"$REPO/tools/ferry-recv.conf.sample" >"$T/sample.conf"
"$R" --config "$T/sample.conf" --check-config >/dev/null 2>"$T/err"
check "tools/ferry-recv.conf.sample passes --check-config (with test certificates)" [ $? -eq 0 ]
diag <"$T/err"

# --- a migration with both daemons configured by files ----------------------

mkdir -p "$T/src"
"$G" create --mem "$T/src/mem.img" --mem-size 8M --disk "$T/src/disk.img" --disk-size 4M \
	--seed 5 >/dev/null || { not_ok "ferry-guest create"; t_done; }
write_recv_conf
printf 'once = true\n' >>"$T/r.conf"
"$R" --config "$T/r.conf" >"$T/recv.json" 2>"$T/recv.log" &
RECV_PID=$!
t_bg "$RECV_PID"
port=""
for _ in $(seq 1 100); do
	port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$T/recv.log" | head -1)
	[ -n "$port" ] && break
	sleep 0.05
done
check "ferry-recv --config listens (port $port)" [ -n "$port" ]
check "ferry-recv took json = true from the file" grep -q '"event":"listening"' "$T/recv.json"
"$S" --config "$T/s.conf" --to "127.0.0.1:$port" >"$T/send.json" 2>"$T/send.log"
rc=$?
check "ferry-send --config (to from the command line) exits 0" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || diag <"$T/send.log"
check "ferry-send took json = yes from the file" [ "$(json_done "$T/send.json" result)" = ok ]
check "memory image equal (cmp)" cmp "$T/src/mem.img" "$T/dst/mem.img"
check "disk image equal (cmp)" cmp "$T/src/disk.img" "$T/dst/disk.img"
wait "$RECV_PID"
check "ferry-recv took once = true from the file: exited 0 after the migration" [ $? -eq 0 ]
t_done
