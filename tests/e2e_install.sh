#!/usr/bin/env bash
# `make install` and the systemd units (issue 8, acceptance 1 in part):
# install into a DESTDIR with PREFIX=/usr, check what landed where, verify
# the units with systemd-analyze, then start ferry-recv from the installed
# ferry-recv.service's ExecStart line (paths moved into the DESTDIR, the
# installed sample config adapted to throwaway certificates and a temp
# destination directory), wait for its sd_notify READY=1 on a
# NOTIFY_SOCKET of our own, migrate a small guest into it with the
# installed ferry-send, and read `ferry-recv ctl SOCKET status`.
source "$(dirname "$0")/lib.sh"
t_certs
cd "$REPO" || exit 1
D=$T/root

# Install the binaries under test (build or build-asan) as they are:
# BINS= drops install's prerequisites, so this never compiles anything.
build=$(basename "$FERRY_BIN")
if make --no-print-directory -s install BINS= BUILD="$build" DESTDIR="$D" PREFIX=/usr \
	>"$T/install.log" 2>&1; then
	ok "make install DESTDIR=... PREFIX=/usr"
else
	not_ok "make install DESTDIR=... PREFIX=/usr"; diag <"$T/install.log"; t_done
fi
missing=""
for f in usr/bin/ferry-send usr/bin/ferry-recv usr/bin/ferry-guest usr/bin/ferry-inspect \
	usr/bin/ferry-certs usr/lib/systemd/system/ferry-recv.service \
	usr/lib/systemd/system/ferry-send@.service usr/share/man/man1/ferry-send.1 \
	usr/share/man/man8/ferry-recv.8 usr/share/man/man1/ferry-guest.1 \
	usr/share/man/man1/ferry-inspect.1 usr/share/doc/ferry/ferry-recv.conf.sample \
	usr/share/doc/ferry/ferry-send.conf.sample \
	usr/share/bash-completion/completions/ferry-send \
	usr/share/bash-completion/completions/ferry-recv \
	usr/share/bash-completion/completions/ferry-guest \
	usr/share/bash-completion/completions/ferry-inspect; do
	[ -e "$D/$f" ] || missing="$missing $f"
done
check "binaries, units, man pages, samples and completion installed${missing:+ (missing:$missing)}" \
	[ -z "$missing" ]
check "nothing installed outside DESTDIR/usr" [ "$(ls "$D")" = usr ]
check "man finds the installed pages (man -M .../usr/share/man 8 ferry-recv)" \
	bash -c 'LC_ALL=C MANWIDTH=80 man -M "$1/usr/share/man" 8 ferry-recv 2>/dev/null | grep -q "^FERRY-RECV(8)"' _ "$D"

U=$D/usr/lib/systemd/system/ferry-recv.service
check "ferry-recv.service: Type=notify, Restart=on-failure" \
	bash -c 'grep -qx "Type=notify" "$1" && grep -qx "Restart=on-failure" "$1"' _ "$U"
check "ferry-recv.service: ProtectSystem=strict, PrivateTmp, NoNewPrivileges" \
	bash -c 'grep -qx "ProtectSystem=strict" "$1" && grep -qx "PrivateTmp=yes" "$1" &&
		grep -qx "NoNewPrivileges=yes" "$1"' _ "$U"
rw=$(sed -n 's/^ReadWritePaths=//p' "$U")
dest=$(sed -n 's/^dest-dir = //p' "$D/usr/share/doc/ferry/ferry-recv.conf.sample")
check "the one writable path ($rw) is the sample's dest-dir ($dest)" [ -n "$rw" ] && [ "$rw" = "$dest" ]
check "ferry-send@.service: a oneshot reading /etc/ferry/send-%i.conf" \
	bash -c 'grep -qx "Type=oneshot" "$1" && grep -qx "ExecStart=/usr/bin/ferry-send --config /etc/ferry/send-%i.conf" "$1"' \
	_ "$D/usr/lib/systemd/system/ferry-send@.service"

# systemd-analyze verify needs the ExecStart binaries at their paths: a
# second install with PREFIX inside the temp directory.
if command -v systemd-analyze >/dev/null 2>&1; then
	A=$T/abs
	make --no-print-directory -s install BINS= BUILD="$build" PREFIX="$A/usr" SYSCONFDIR="$A/etc" \
		>"$T/install2.log" 2>&1
	cp "$A/usr/lib/systemd/system/ferry-send@.service" "$T/ferry-send@vm1.service"
	if systemd-analyze verify --man=no "$A/usr/lib/systemd/system/ferry-recv.service" \
		"$T/ferry-send@vm1.service" >"$T/verify.log" 2>&1; then
		ok "systemd-analyze verify: both units (ferry-send@ as ferry-send@vm1)"
	else
		not_ok "systemd-analyze verify"; diag <"$T/verify.log"
	fi
else
	ok "systemd-analyze verify # SKIP systemd-analyze not installed"
fi

# --- ferry-recv from the unit's ExecStart line ------------------------------

exec_line=$(sed -n 's/^ExecStart=//p' "$U")
check "ExecStart reads the config file ($exec_line)" \
	[ "$exec_line" = "/usr/bin/ferry-recv --config /etc/ferry/ferry-recv.conf" ]
mkdir -p "$D/etc/ferry" "$T/dest"
sed -e "s|^listen = .*|listen = 127.0.0.1:0|" \
	-e "s|^cert = .*|cert = $T/certs/receiver.pem|" \
	-e "s|^key = .*|key = $T/certs/receiver.key|" \
	-e "s|^ca = .*|ca = $T/certs/ca.pem|" \
	-e "s|^peer-name = .*|peer-name = sender|" \
	-e "s|^dest-dir = .*|dest-dir = $T/dest|" \
	-e "s|^ctl = .*|ctl = $T/recv.sock|" \
	-e "s|^# metrics = .*|metrics = 127.0.0.1:0|" \
	"$D/usr/share/doc/ferry/ferry-recv.conf.sample" >"$D/etc/ferry/ferry-recv.conf"
# The unit's paths, moved into the DESTDIR.
read -r -a cmd <<<"$(sed -e "s|/usr/bin/|$D/usr/bin/|g" -e "s|/etc/ferry/|$D/etc/ferry/|g" <<<"$exec_line")"
"${cmd[@]}" --check-config >"$T/check.out" 2>&1
check "the adapted sample passes ${cmd[0]##*/} --check-config" [ $? -eq 0 ]
diag <"$T/check.out"

# Our own NOTIFY_SOCKET: a datagram socket that appends what it receives.
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[2], "w").close()
while True:
    d = s.recv(4096)
    with open(sys.argv[2], "ab") as f:
        f.write(d + b"\n")
' "$T/notify.sock" "$T/notify.txt" &
t_bg $!
for _ in $(seq 1 100); do [ -S "$T/notify.sock" ] && [ -e "$T/notify.txt" ] && break; sleep 0.05; done

NOTIFY_SOCKET=$T/notify.sock "${cmd[@]}" >"$T/recv.out" 2>"$T/recv.log" &
RECV_PID=$!
t_bg "$RECV_PID"
for _ in $(seq 1 200); do grep -q '^READY=1' "$T/notify.txt" 2>/dev/null && break; sleep 0.05; done
check "ferry-recv sent READY=1 to NOTIFY_SOCKET once listening" grep -q '^READY=1' "$T/notify.txt"
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\),.*/\1/p' "$T/recv.log" | head -1)
check "... with STATUS=127.0.0.1:$port" grep -qx "STATUS=127.0.0.1:$port" "$T/notify.txt"
[ -n "$port" ] || { diag <"$T/recv.log"; t_done; }

mkdir -p "$T/src"
"$D/usr/bin/ferry-guest" create --mem "$T/src/vm-mem.img" --mem-size 8M \
	--disk "$T/src/vm-disk.img" --disk-size 4M --seed 8 >/dev/null
# shellcheck disable=SC2046
"$D/usr/bin/ferry-send" --to "127.0.0.1:$port" $(SEND_TLS) \
	--mem "$T/src/vm-mem.img" --disk "$T/src/vm-disk.img" --json >"$T/send.json" 2>"$T/send.log"
rc=$?
check "installed ferry-send migrates into it (exit $rc)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || diag <"$T/send.log"
check "memory image equal (cmp)" cmp "$T/src/vm-mem.img" "$T/dest/vm-mem.img"
check "disk image equal (cmp)" cmp "$T/src/vm-disk.img" "$T/dest/vm-disk.img"
session=$(json_done "$T/send.json" session)
"$D/usr/bin/ferry-recv" ctl "$T/recv.sock" status --json >"$T/status.json" 2>&1
check "ferry-recv ctl SOCKET status answers ok (exit $?)" \
	python3 -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["ok"] is True else 1)' "$T/status.json"
check "... and lists session ${session:0:16} as committed" python3 -c '
import json, sys
st = json.load(open(sys.argv[1]))
def walk(o):
    if isinstance(o, dict):
        yield o
        for v in o.values(): yield from walk(v)
    elif isinstance(o, list):
        for v in o: yield from walk(v)
hit = [o for o in walk(st) if str(o.get("session", "")).startswith(sys.argv[2][:16])]
sys.exit(0 if hit and any(o.get("result") == "ok" for o in hit) else 1)' "$T/status.json" "$session" ||
	diag <"$T/status.json"
# The metrics endpoint of the sample's (uncommented) metrics line.
mport=$(sed -n 's|.*metrics on http://127\.0\.0\.1:\([0-9]*\)/metrics.*|\1|p' "$T/recv.log" | head -1)
check "GET /metrics: committed session counted, none active (port ${mport:-none})" python3 -c '
import sys, urllib.request
r = urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5)
text = r.read().decode()
ok = r.headers.get("Content-Type", "").startswith("text/plain; version=0.0.4") and \
    "\nferry_recv_sessions_total{result=\"ok\"} 1\n" in text and "\nferry_recv_sessions_active 0\n" in text
sys.exit(0 if ok else 1)' "${mport:-0}"

kill -TERM "$RECV_PID"
wait "$RECV_PID"
check "ferry-recv stops on SIGTERM (systemctl stop) with exit 0" [ $? -eq 0 ]
t_done
