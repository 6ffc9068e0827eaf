# Helpers for the fault end-to-end scripts (e2e_timeouts, e2e_abort,
# e2e_netns, e2e_bandwidth).  Source after lib.sh.
#
# What it adds to lib.sh:
#  - an EXIT trap that kills every registered PID, then runs registered
#    undo commands (network namespaces, mounts, extra directories) in
#    reverse order, then lib.sh's t_cleanup; INT/TERM/HUP exit through it;
#  - waiting for a PID with a deadline (zombies count as exited), for a
#    line in a file, for a sender state, for an empty directory;
#  - a live guest (ferry-guest run) and its state from /proc (T = stopped);
#  - ferry-send in the background (optionally inside a namespace), the
#    "snapshot at pause time" trick of e2e_migrate.sh, and the checks every
#    success (cmp + ferry-guest check) and every failure (exit status, done
#    result and message, guest running, destination empty, receiver still
#    serving) needs;
#  - the fault proxy and a python3 (stdlib) helper: silent listeners and
#    clients, a listener whose accept queue is full, a stats sampler;
#  - two network namespaces joined by a veth pair (10.231.0.1/24 sender
#    side, 10.231.0.2/24 receiver side), removed on exit.
X_UNDO=()

x_cleanup() {
	local p i
	for p in "${T_PIDS[@]}"; do
		kill -CONT "$p" 2>/dev/null
		kill -KILL "$p" 2>/dev/null
	done
	for p in "${T_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	for ((i = ${#X_UNDO[@]} - 1; i >= 0; i--)); do
		eval "${X_UNDO[$i]}" >/dev/null 2>&1
	done
	T_PIDS=()
	t_cleanup
}
trap x_cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# x_undo CMD: run CMD (eval) at exit, after the processes are gone.
x_undo() { X_UNDO+=("$1"); }

now_ms() { date +%s%3N; }

# State letter of a process from /proc (R, S, D, T, Z...), empty if gone.
proc_state() { sed -n 's/^.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null; }
# Running = exists and is neither a zombie nor dead.
x_alive() {
	local s
	s=$(proc_state "$1")
	[ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]
}
# A guest that runs: alive and not stopped (T/t).
guest_running() {
	local s
	s=$(proc_state "$1")
	[ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ] && [ "$s" != T ] && [ "$s" != t ]
}

# x_wait_pid PID SECONDS: wait for a child to exit; sets X_RC (its status,
# or 124 when it was still running after SECONDS: then it is killed) and
# X_MS (milliseconds waited).
x_wait_pid() {
	local pid=$1 limit=$(($2 * 1000)) t0
	t0=$(now_ms)
	while x_alive "$pid" && [ $(($(now_ms) - t0)) -lt "$limit" ]; do sleep 0.05; done
	X_MS=$(($(now_ms) - t0))
	if x_alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		X_RC=124
	else
		wait "$pid" 2>/dev/null
		X_RC=$?
	fi
}

# x_wait_grep FILE REGEX SECONDS: until FILE has a line matching REGEX (-E).
x_wait_grep() {
	local f=$1 re=$2 limit=$(($3 * 20)) i
	for ((i = 0; i < limit; i++)); do
		grep -Eq -- "$re" "$f" 2>/dev/null && return 0
		sleep 0.05
	done
	grep -Eq -- "$re" "$f" 2>/dev/null
}

# x_wait_state JSON STATE SECONDS: until ferry-send's JSON reports STATE.
x_wait_state() { x_wait_grep "$1" "\"event\":\"state\".*\"state\":\"$2\"" "$3"; }

# Events of one kind in a JSON-lines file.
ev_count() { grep -c "\"event\":\"$2\"" "$1" 2>/dev/null || true; }

# ev_field FILE EVENT INDEX FIELD: FIELD of the INDEX-th (0-based; -1 last)
# EVENT event in FILE; empty when there is none.
ev_field() {
	python3 - "$@" <<'PY'
import json, sys
f, ev, idx, field = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
evs = []
for line in open(f):
    line = line.strip()
    if line.startswith("{"):
        try:
            o = json.loads(line)
        except ValueError:
            continue
        if o.get("event") == ev:
            evs.append(o)
try:
    v = evs[idx].get(field, "")
except IndexError:
    v = ""
print(str(v).lower() if isinstance(v, bool) else v)
PY
}

# Every entry of a directory (hidden ones too), one per line.
dir_files() { (cd "$1" && find . -mindepth 1 | sed 's|^\./||' | sort); }
dir_empty() { [ -z "$(dir_files "$1")" ]; }
# x_wait_empty DIR SECONDS
x_wait_empty() {
	local limit=$(($2 * 20)) i
	for ((i = 0; i < limit; i++)); do
		dir_empty "$1" && return 0
		sleep 0.05
	done
	dir_empty "$1"
}
# x_wait_staging DIR SECONDS: until DIR holds a .ferry-* staging file.
x_wait_staging() {
	local limit=$(($2 * 20)) i
	for ((i = 0; i < limit; i++)); do
		[ "$(t_staging_left "$1")" -gt 0 ] && return 0
		sleep 0.05
	done
	return 1
}

# grep_e REGEX STRING: extended regex match on a string.
grep_e() { printf '%s\n' "$2" | grep -Eq -- "$1"; }

# ---- guests ------------------------------------------------------------------

G=$FERRY_BIN/ferry-guest

# x_guest_create DIR MEMSIZE DISKSIZE SEED: a new guest in DIR (mem.img, disk.img).
x_guest_create() {
	mkdir -p "$1"
	"$G" create --mem "$1/mem.img" --mem-size "$2" --disk "$1/disk.img" --disk-size "$3" \
		--seed "$4" >/dev/null
}

# x_guest_run DIR DIRTYRATE [DISKRATE]: run the guest of DIR; sets GUEST_PID.
x_guest_run() {
	local d=$1 i
	rm -f "$d/guest.pid"
	"$G" run --mem "$d/mem.img" --disk "$d/disk.img" --dirty-rate "$2" --disk-rate "${3:-1MiB/s}" \
		--pidfile "$d/guest.pid" 2>>"$d/guest.log" &
	GUEST_PID=$!
	t_bg "$GUEST_PID"
	for i in $(seq 1 100); do [ -s "$d/guest.pid" ] && return 0; sleep 0.05; done
	return 1
}

# A random (incompressible) image: x_random FILE MIB
x_random() { head -c "$(($2 << 20))" /dev/urandom >"$1"; }

# ---- ferry-send ------------------------------------------------------------------

# Prefix for ferry-send and ferry-recv (e.g. X_SEND_NS=(ip netns exec NS)).
X_SEND_NS=()

# x_send_bg NAME ARGS...: ferry-send with the test certificates and --json in
# the background; JSON in $T/NAME.json, log in $T/NAME.log; sets SEND_PID.
x_send_bg() {
	local name=$1; shift
	# shellcheck disable=SC2046
	"${X_SEND_NS[@]}" "$FERRY_BIN/ferry-send" $(SEND_TLS) --json --no-progress "$@" \
		>"$T/$name.json" 2>"$T/$name.log" &
	SEND_PID=$!
	t_bg "$SEND_PID"
}

# x_snapshot_cmd SRCDIR SNAPDIR GUESTPID: a --cleanup-cmd that copies the
# source images as they are at pause time (after COMMITTED, guest still
# stopped), then ends the guest (SIGTERM + SIGCONT: it exits cleanly).
x_snapshot_cmd() {
	mkdir -p "$2"
	echo "cp --sparse=always '$1/mem.img' '$1/disk.img' '$2/' && kill -TERM $3 && kill -CONT $3"
}

# x_check_fail WHAT NAME RC WANTRC WANTRESULT REGEX: a failed migration's
# exit status, done result and message (JSON error must match REGEX).
x_check_fail() {
	local what=$1 name=$2 rc=$3 want=$4 res=$5 re=$6 got err
	got=$(ev_field "$T/$name.json" done -1 result)
	err=$(ev_field "$T/$name.json" done -1 error)
	if [ "$rc" -eq "$want" ]; then
		ok "$what: ferry-send exits $want ($res)"
	else
		not_ok "$what: ferry-send exits $want ($res), got $rc"
		diag <"$T/$name.log"
	fi
	check "$what: done result is \"$res\" (got \"$got\")" [ "$got" = "$res" ]
	if grep_e "$re" "$err"; then
		ok "$what: message names it (/$re/)"
	else
		not_ok "$what: message names it (/$re/)"
		echo "error: $err" | diag
	fi
}

# x_check_clean WHAT GUESTPID DEST SECONDS: guest still running on the
# source, destination empty (no staging, no image) within SECONDS.
x_check_clean() {
	local what=$1 gp=$2 dest=$3 secs=$4
	if [ -n "$gp" ]; then
		check "$what: source guest still running (state $(proc_state "$gp"))" guest_running "$gp"
	fi
	if x_wait_empty "$dest" "$secs"; then
		ok "$what: destination directory empty (no .ferry-* staging)"
	else
		not_ok "$what: destination directory empty (no .ferry-* staging) within ${secs}s"
		dir_files "$dest" | diag
	fi
}

# x_verify_guest WHAT SNAPDIR DEST: images equal the source at pause time,
# and ferry-guest check passes on the destination.
x_verify_guest() {
	local what=$1 snap=$2 dest=$3
	check "$what: memory image equals the source at pause time (cmp)" \
		cmp -s "$snap/mem.img" "$dest/mem.img"
	check "$what: disk image equals the source at pause time (cmp)" \
		cmp -s "$snap/disk.img" "$dest/disk.img"
	if "$G" check --mem "$dest/mem.img" --disk "$dest/disk.img" >"$T/check.out" 2>&1; then
		ok "$what: ferry-guest check passes on the destination"
	else
		not_ok "$what: ferry-guest check passes on the destination"
		diag <"$T/check.out"
	fi
}

# A small static guest for "the receiver still serves": x_followup WHAT
# HOST:PORT DEST [ferry-send args...]: migrates it, checks exit 0, cmp and
# ferry-guest check in one TAP line, then empties DEST again.
X_FOLLOW=0
x_followup() {
	local what=$1 to=$2 dest=$3 name
	shift 3
	if [ ! -f "$T/follow-src/mem.img" ]; then
		x_guest_create "$T/follow-src" 16M 32M 77 || { not_ok "$what: follow-up guest"; return; }
	fi
	X_FOLLOW=$((X_FOLLOW + 1))
	name=follow$X_FOLLOW
	x_send_bg "$name" --to "$to" --mem "$T/follow-src/mem.img" --disk "$T/follow-src/disk.img" "$@"
	x_wait_pid "$SEND_PID" 60
	if [ "$X_RC" -eq 0 ] && cmp -s "$T/follow-src/mem.img" "$dest/mem.img" &&
		cmp -s "$T/follow-src/disk.img" "$dest/disk.img" &&
		"$G" check --mem "$dest/mem.img" --disk "$dest/disk.img" >/dev/null 2>&1; then
		ok "$what: receiver still serving: a new migration commits, images equal (cmp, check)"
	else
		not_ok "$what: receiver still serving: a new migration commits, images equal (cmp, check)"
		echo "ferry-send exit $X_RC" | diag
		diag <"$T/$name.log"
	fi
	rm -f "$dest/mem.img" "$dest/disk.img"
}

# ---- fault proxy -------------------------------------------------------------------

# x_proxy NAME HOST:PORT: start the fault proxy on loopback in front of
# HOST:PORT; sets PROXY_PID, PROXY_PORT, PROXY_CTL.
x_proxy() {
	local name=$1 to=$2 i
	PROXY_CTL=$T/$name.ctl
	rm -f "$T/$name.port"
	"$FERRY_BIN/ferry-faultproxy" --listen 127.0.0.1:0 --to "$to" --ctl "$PROXY_CTL" \
		--port-file "$T/$name.port" --log "$T/$name.events" 2>"$T/$name.log" &
	PROXY_PID=$!
	t_bg "$PROXY_PID"
	for i in $(seq 1 100); do
		[ -s "$T/$name.port" ] && [ -S "$PROXY_CTL" ] && break
		sleep 0.05
	done
	PROXY_PORT=$(cat "$T/$name.port" 2>/dev/null)
	[ -n "$PROXY_PORT" ]
}
# fp CMD...: a control command to the current proxy; fails unless "ok".
fp() { "$FERRY_BIN/ferry-faultproxy" ctl "$PROXY_CTL" "$@" >/dev/null; }

# ---- python helpers ----------------------------------------------------------------

cat >"$T/xhelp.py" <<'PY'
"""Loopback helpers (python3 stdlib) for the fault scripts.

  listen-silent PORTFILE      accept connections and never answer
  listen-full PORTFILE        a listener whose accept queue is full: a new
                              SYN is dropped, connect() never completes
  client-silent PORT SECS     connect, send nothing; print how long until
                              the server closes ("closed MS" / "open MS")
  client-tls-silent PORT CERTDIR PEERNAME SECS
                              TLS 1.3 handshake with the sender certificate,
                              then send nothing; same output
  sample CTLSOCK OUT          every second: proxy "stats" -> "t_ms up down"
"""
import os, socket, ssl, sys, time


def write_port(path, port):
    with open(path + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(path + ".tmp", path)


def listen_silent(path):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    write_port(path, s.getsockname()[1])
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)


def listen_full(path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(0)
    port = s.getsockname()[1]
    held = []
    # Fill the accept queue (never accepted), until a connect no longer completes.
    for _ in range(16):
        c = socket.socket()
        c.settimeout(0.3)
        try:
            c.connect(("127.0.0.1", port))
            held.append(c)
        except (socket.timeout, OSError):
            c.close()
            break
    write_port(path, port)
    while True:
        time.sleep(3600)


def wait_close(s, secs, t0):
    s.settimeout(0.05)
    while time.monotonic() - t0 < secs:
        try:
            b = s.recv(4096)
            if not b:
                return "closed"
        except socket.timeout:
            continue
        except (ConnectionResetError, ssl.SSLError, OSError):
            return "closed"
    return "open"


def client_silent(port, secs):
    t0 = time.monotonic()
    s = socket.create_connection(("127.0.0.1", int(port)))
    r = wait_close(s, float(secs), t0)
    print("%s %d" % (r, (time.monotonic() - t0) * 1000))


def client_tls_silent(port, certdir, peer, secs):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(certdir + "/ca.pem")
    ctx.load_cert_chain(certdir + "/sender.pem", certdir + "/sender.key")
    t0 = time.monotonic()
    raw = socket.create_connection(("127.0.0.1", int(port)))
    s = ctx.wrap_socket(raw, server_hostname=peer)
    print("handshake %d" % ((time.monotonic() - t0) * 1000))
    r = wait_close(s, float(secs), t0)
    print("%s %d" % (r, (time.monotonic() - t0) * 1000))


def sample(ctl, out):
    t0 = time.monotonic()
    n = 0
    with open(out, "w", buffering=1) as f:
        while True:
            c = socket.socket(socket.AF_UNIX)
            try:
                c.connect(ctl)
                c.sendall(b"stats\n")
                buf = b""
                while not buf.endswith(b"\n"):
                    b = c.recv(4096)
                    if not b:
                        break
                    buf += b
                t = time.time()
                kv = dict(w.split("=", 1) for w in buf.decode().split() if "=" in w)
                f.write("%d %s %s\n" % (t * 1000, kv.get("up", "0"), kv.get("down", "0")))
            except OSError:
                pass
            finally:
                c.close()
            n += 1
            d = t0 + n - time.monotonic()
            if d > 0:
                time.sleep(d)


cmd = sys.argv[1]
if cmd == "listen-silent":
    listen_silent(sys.argv[2])
elif cmd == "listen-full":
    listen_full(sys.argv[2])
elif cmd == "client-silent":
    client_silent(*sys.argv[2:4])
elif cmd == "client-tls-silent":
    client_tls_silent(*sys.argv[2:6])
elif cmd == "sample":
    sample(*sys.argv[2:4])
else:
    sys.exit("unknown command " + cmd)
PY

# x_listener KIND NAME: start a python listener (silent or full); sets LPORT.
x_listener() {
	local i
	python3 "$T/xhelp.py" "listen-$1" "$T/$2.port" &
	t_bg $!
	for i in $(seq 1 100); do [ -s "$T/$2.port" ] && break; sleep 0.05; done
	LPORT=$(cat "$T/$2.port" 2>/dev/null)
	[ -n "$LPORT" ]
}

# ---- network namespaces -------------------------------------------------------------

NS_S="" NS_R="" VETH_S="" VETH_R=""
NS_ADDR_S=10.231.0.1
NS_ADDR_R=10.231.0.2

# ns_setup: namespaces $NS_S (sender, veth $VETH_S = 10.231.0.1/24) and $NS_R
# (receiver, veth $VETH_R = 10.231.0.2/24); removed at exit.  Fails (and
# removes what it made) when namespaces cannot be created here.
ns_setup() {
	NS_S=ferry-$$-s NS_R=ferry-$$-r VETH_S=fys$$ VETH_R=fyr$$
	ip netns add "$NS_S" 2>"$T/ns.err" || return 1
	x_undo "ip netns del $NS_S"
	ip netns add "$NS_R" 2>>"$T/ns.err" || return 1
	x_undo "ip netns del $NS_R"
	ip link add "$VETH_S" netns "$NS_S" type veth peer name "$VETH_R" netns "$NS_R" \
		2>>"$T/ns.err" || return 1
	ip -n "$NS_S" addr add "$NS_ADDR_S/24" dev "$VETH_S" &&
		ip -n "$NS_R" addr add "$NS_ADDR_R/24" dev "$VETH_R" &&
		ip -n "$NS_S" link set lo up && ip -n "$NS_R" link set lo up &&
		ip -n "$NS_S" link set "$VETH_S" up && ip -n "$NS_R" link set "$VETH_R" up \
		2>>"$T/ns.err" || return 1
	return 0
}

# ns_start_recv NAME DEST ARGS...: ferry-recv inside $NS_R on $NS_ADDR_R, a
# free port; sets RECV_PID and RECV_PORT (log $T/NAME.log, JSON $T/NAME.json).
ns_start_recv() {
	local name=$1 dest=$2 i
	shift 2
	mkdir -p "$dest"
	# shellcheck disable=SC2046
	ip netns exec "$NS_R" "$FERRY_BIN/ferry-recv" --listen "$NS_ADDR_R:0" $(RECV_TLS) \
		--dest-dir "$dest" --json "$@" >"$T/$name.json" 2>"$T/$name.log" &
	RECV_PID=$!
	t_bg "$RECV_PID"
	for i in $(seq 1 100); do
		RECV_PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\),.*/\1/p' "$T/$name.log" | head -1)
		[ -n "$RECV_PORT" ] && return 0
		sleep 0.05
	done
	echo "ferry-recv did not start:" | diag
	diag <"$T/$name.log"
	return 1
}
