#!/usr/bin/env bash
# ferry-faultproxy: every fault of the control socket and the signals,
# checked with a python3 (stdlib) sink server and client on loopback, plus
# the command line, the event log and a clean exit.  The server records
# what arrives per connection (a prefix of the bytes, the count, sha256,
# EOF or reset); the client compares with what it sent.
source "$(dirname "$0")/lib.sh"
FP=$FERRY_BIN/ferry-faultproxy
if [ ! -x "$FP" ]; then
	not_ok "ferry-faultproxy is built ($FP)"
	t_done
fi

cat >"$T/fp.py" <<'PY'
"""Loopback helpers for e2e_faultproxy.sh (python3 stdlib only).

  fp.py serve DIR
      Sink server on a free 127.0.0.1 port (written to DIR/port).  For the
      Nth connection it creates DIR/conn-N.bin at accept and appends the
      first KEEP bytes to it as they arrive; at EOF or reset it writes
      DIR/conn-N.done ("BYTES SHA256 eof|reset RECVS") and, after EOF,
      replies "BYTES SHA256\\n" and closes.
  fp.py case NAME PORT CTLSOCK FAULTPROXY DIR PID
      Run one scenario through the proxy; prints "PASS what" / "FAIL what".
"""
import hashlib
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

KEEP = 4 << 20


def serve(d):
    os.makedirs(d, exist_ok=True)
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    with open(d + "/port.tmp", "w") as f:
        f.write("%d\n" % lst.getsockname()[1])
    os.rename(d + "/port.tmp", d + "/port")
    n = 0
    while True:
        c, _ = lst.accept()
        n += 1
        keep = open("%s/conn-%d.bin" % (d, n), "wb", buffering=0)
        threading.Thread(target=sink, args=(c, n, d, keep), daemon=True).start()


def sink(c, n, d, keep):
    h = hashlib.sha256()
    total = recvs = 0
    end = "eof"
    try:
        while True:
            b = c.recv(1 << 20)
            if not b:
                break
            if total < KEEP:
                keep.write(b[:KEEP - total])
            total += len(b)
            recvs += 1
            h.update(b)
    except OSError:
        end = "reset"
    keep.close()
    with open("%s/conn-%d.tmp" % (d, n), "w") as f:
        f.write("%d %s %s %d\n" % (total, h.hexdigest(), end, recvs))
    os.rename("%s/conn-%d.tmp" % (d, n), "%s/conn-%d.done" % (d, n))
    if end == "eof":
        try:
            c.sendall(b"%d %s\n" % (total, h.hexdigest().encode()))
        except OSError:
            pass
    c.close()


class Case:
    def __init__(self, port, ctlsock, fp, d, pid):
        self.port, self.ctlsock, self.fp, self.d, self.pid = int(port), ctlsock, fp, d, int(pid)

    # -- reporting
    def result(self, what, cond, detail=""):
        print(("PASS %s" % what) if cond else ("FAIL %s -- %s" % (what, detail)), flush=True)
        return cond

    # -- control socket, through the proxy's own client mode
    def ctl(self, cmd):
        r = subprocess.run([self.fp, "ctl", self.ctlsock] + cmd.split(), capture_output=True,
                           text=True, timeout=10)
        return r.returncode, r.stdout.strip() + r.stderr.strip()

    def must(self, cmd):
        rc, out = self.ctl(cmd)
        if rc != 0 or not out.startswith("ok"):
            raise RuntimeError("ctl %s: rc %d: %s" % (cmd, rc, out))
        return out

    # -- server side
    def nconns(self):
        return len([f for f in os.listdir(self.d) if f.endswith(".bin")])

    def wait_conn(self, before, timeout=5):
        t = time.time() + timeout
        while time.time() < t:
            if self.nconns() > before:
                return before + 1
            time.sleep(0.01)
        raise RuntimeError("server saw no new connection")

    def got(self, n):
        return os.path.getsize("%s/conn-%d.bin" % (self.d, n))

    def kept(self, n):
        with open("%s/conn-%d.bin" % (self.d, n), "rb") as f:
            return f.read()

    def wait_got(self, n, size, timeout=5):
        t = time.time() + timeout
        while time.time() < t and self.got(n) < size:
            time.sleep(0.01)
        return self.got(n)

    def done(self, n, timeout=10):
        p = "%s/conn-%d.done" % (self.d, n)
        t = time.time() + timeout
        while time.time() < t:
            if os.path.exists(p):
                with open(p) as f:
                    w = f.read().split()
                return int(w[0]), w[1], w[2], int(w[3])
            time.sleep(0.01)
        return None

    # -- client side
    def connect(self):
        return socket.create_connection(("127.0.0.1", self.port), timeout=15)

    @staticmethod
    def payload(size, seed):
        return random.Random(seed).randbytes(size)

    @staticmethod
    def read_all(s):
        out = b""
        while True:
            b = s.recv(1 << 16)
            if not b:
                return out
            out += b

    def transfer(self, data):
        """Send data, half-close, return (reply, seconds, server conn no)."""
        before = self.nconns()
        s = self.connect()
        t0 = time.monotonic()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        rep = self.read_all(s)
        el = time.monotonic() - t0
        s.close()
        return rep, el, before + 1

    def intact(self, what, data):
        rep, el, _ = self.transfer(data)
        want = b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())
        self.result(what, rep == want, "reply %r, want %r" % (rep[:100], want))
        return el

    def closed_by_peer(self, s, timeout=5):
        """'rst', 'eof' or 'open' (nothing within timeout)."""
        s.settimeout(timeout)
        try:
            while True:
                b = s.recv(1 << 16)
                if not b:
                    return "eof"
        except ConnectionResetError:
            return "rst"
        except socket.timeout:
            return "open"

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    # ---------------------------------------------------------------- cases
    def case_clean(self):
        data = self.payload(50 << 20, 1)
        el = self.intact("50 MiB pass unchanged with no fault (sha256 both ends)", data)
        print("50 MiB in %.2f s" % el)
        # one connection finished: stats count exactly its bytes
        out = ""
        for _ in range(100):
            out = self.must("stats")
            if "active=0" in out:
                break
            time.sleep(0.02)
        down = len(b"%d %s\n" % (len(data), b"0" * 64))
        want = "ok conns=1 up=%d down=%d active=0" % (len(data), down)
        self.result("stats counts connections and bytes", out == want, "%r, want %r" % (out, want))

    def case_many(self):
        res = {}

        def one(i):
            data = self.payload(1 << 20, 100 + i)
            s = self.connect()
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            rep = self.read_all(s)
            s.close()
            res[i] = rep == b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())

        th = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in th:
            t.start()
        for t in th:
            t.join(20)
        self.result("8 connections at once all intact", len(res) == 8 and all(res.values()), str(res))

    def rtt(self):
        """Round trip of one byte on an established connection: send, EOF,
        the server's reply."""
        before = self.nconns()
        s = self.connect()
        self.wait_conn(before)
        t0 = time.monotonic()
        s.sendall(b"x")
        s.shutdown(socket.SHUT_WR)
        self.read_all(s)
        el = time.monotonic() - t0
        s.close()
        return el

    def case_latency(self):
        base = min(self.rtt() for _ in range(3))
        self.must("latency 200 up")
        up = self.rtt()
        self.must("latency 200")
        both = self.rtt()
        # The proxy holds bytes >= the latency from when it read them; the
        # 1 ms allowance is for run-to-run noise of the rest of the path.
        self.result("latency 200 up adds >= 200 ms to a round trip (%.1f -> %.1f ms)"
                    % (base * 1e3, up * 1e3), up >= 0.2 and 0.199 <= up - base < 1.0, "")
        self.result("latency 200 both ways adds >= 400 ms (%.1f ms)" % (both * 1e3),
                    both >= 0.4 and 0.399 <= both - base < 1.5, "")
        self.must("latency 30")
        # many small writes under latency: order kept
        data = self.payload(2 << 20, 7)
        s = self.connect()
        for i in range(0, len(data), 4096):
            s.sendall(data[i:i + 4096])
        s.shutdown(socket.SHUT_WR)
        rep = self.read_all(s)
        s.close()
        want = b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())
        self.result("latency keeps byte order (2 MiB in 4 KiB writes)", rep == want, repr(rep[:80]))
        self.must("clear")

    def case_rate(self):
        self.must("rate 5000000")
        data = self.payload(10 * 1000 * 1000, 2)
        el = self.intact("rate 5 MB/s: 10 MB intact", data)
        self.must("rate 0")
        self.result("rate 5 MB/s: 10 MB take %.2f s (1.6-3)" % el, 1.6 <= el <= 3.0, "")
        self.must("clear")

    def sender(self, s, data):
        def run():
            try:
                s.sendall(data)
            except OSError:
                pass
        t = threading.Thread(target=run)
        t.start()
        return t

    def case_stall(self):
        data = self.payload(300 << 10, 3)
        before = self.nconns()
        s = self.connect()
        n = self.wait_conn(before)
        self.must("stall")
        t = self.sender(s, data)
        time.sleep(1.0)
        self.result("stall: nothing arrives for 1 s", self.got(n) == 0, "%d bytes arrived" % self.got(n))
        self.must("unstall")
        t.join(10)
        s.shutdown(socket.SHUT_WR)
        rep = self.read_all(s)
        s.close()
        want = b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())
        self.result("unstall delivers everything intact", rep == want, repr(rep[:80]))

    def case_sigusr2(self):
        data = self.payload(100 << 10, 4)
        before = self.nconns()
        os.kill(self.pid, signal.SIGUSR2)
        s = self.connect()
        n = self.wait_conn(before)
        t = self.sender(s, data)
        time.sleep(0.6)
        held = self.got(n)
        os.kill(self.pid, signal.SIGUSR2)
        t.join(10)
        s.shutdown(socket.SHUT_WR)
        rep = self.read_all(s)
        s.close()
        want = b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())
        self.result("SIGUSR2 stalls, a second SIGUSR2 resumes intact", held == 0 and rep == want,
                    "held %d, reply %r" % (held, rep[:80]))

    def case_drop(self):
        before = self.nconns()
        s = self.connect()
        n = self.wait_conn(before)
        self.must("drop up")
        s.sendall(b"A" * 1000)
        time.sleep(0.5)
        vanished = self.got(n) == 0
        self.must("undrop up")
        s.sendall(b"B" * 1000)
        s.shutdown(socket.SHUT_WR)
        rep = self.read_all(s)
        s.close()
        d = self.done(n)
        self.result("drop up: bytes vanish", vanished and d is not None and d[0] == 1000, str(d))
        self.result("drop up: connection stays open, later bytes pass",
                    self.kept(n) == b"B" * 1000 and rep.startswith(b"1000 "), repr(rep[:80]))
        # the other way: the server's reply (and its FIN) vanish
        self.must("drop down")
        before = self.nconns()
        s = self.connect()
        n = self.wait_conn(before)
        s.sendall(b"hello")
        s.shutdown(socket.SHUT_WR)
        d = self.done(n)
        state = self.closed_by_peer(s, 0.5)
        s.close()
        self.must("undrop")
        self.result("drop down: reply vanishes, client connection stays open",
                    d is not None and d[0] == 5 and state == "open", "%s %s" % (d, state))
        # that half-open connection stays in the proxy until reset
        out = self.must("reset")
        self.result("drop down: the half-open connection is still there (%s)" % out,
                    out == "ok reset 1 connections", out)

    def reset_with(self, what, trigger):
        before = self.nconns()
        s = self.connect()
        n = self.wait_conn(before)
        s.sendall(b"x" * 100)
        self.wait_got(n, 100)
        out = trigger()
        client = self.closed_by_peer(s, 3)
        s.close()
        d = self.done(n, 5)
        self.result("%s: client gets RST (%s)" % (what, out), client == "rst", client)
        self.result("%s: no connection left" % what, self.must("stats").endswith(" active=0"), "")
        self.result("%s: server side reset too" % what, d is not None and d[2] == "reset", str(d))

    def case_reset(self):
        def reset():
            out = self.must("reset")
            self.result("reset: one connection reset (%s)" % out, out == "ok reset 1 connections", out)
            return out
        self.reset_with("reset", reset)

    def case_sigusr1(self):
        def kill():
            os.kill(self.pid, signal.SIGUSR1)
            return "SIGUSR1"
        self.reset_with("SIGUSR1", kill)

    def case_close_after(self):
        out = self.must("close-after 1000 up")
        data = self.payload(5000, 5)
        before = self.nconns()
        s = self.connect()
        n = self.wait_conn(before)
        try:
            s.sendall(data)
        except OSError:
            pass
        client = self.closed_by_peer(s, 5)
        s.close()
        d = self.done(n)
        self.result("close-after 1000 (armed for the next connection: %s)" % out,
                    "next connection" in out, out)
        self.result("close-after: client side closed (%s)" % client, client in ("eof", "rst"), client)
        self.result("close-after 1000: server got exactly the first 1000 bytes, then EOF",
                    d is not None and d[0] == 1000 and d[2] == "eof" and self.kept(n) == data[:1000],
                    str(d))
        self.intact("close-after is one-shot: the next connection is untouched", self.payload(20000, 6))

    def case_slice(self):
        self.must("slice 7")
        data = self.payload(100 << 10, 8)
        rep, el, n = self.transfer(data)
        self.must("slice 0")
        want = b"%d %s\n" % (len(data), hashlib.sha256(data).hexdigest().encode())
        d = self.done(n)
        self.result("slice 7: 100 KiB intact (%.2f s)" % el, rep == want, repr(rep[:80]))
        self.result("slice 7: server needed many reads (%s)" % (d[3] if d else None),
                    d is not None and d[3] >= 100, str(d))

    def case_flip(self):
        data = self.payload(100 << 10, 9)
        before = self.nconns()
        s = self.connect()
        n = self.wait_conn(before)
        out = self.must("flip 12345 up")
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        self.read_all(s)
        s.close()
        self.done(n)
        got = self.kept(n)
        diff = [(i, a ^ b) for i, (a, b) in enumerate(zip(got, data)) if a != b]
        bits = sum(bin(x).count("1") for _, x in diff)
        self.result("flip 12345 up changes exactly one bit, at byte 12345 (%s)" % out,
                    len(got) == len(data) and bits == 1 and diff[0][0] == 12345, str(diff[:4]))
        self.intact("flip is one-shot: the next connection is untouched", self.payload(20000, 10))

    def case_refuse(self):
        self.must("refuse")
        before = self.nconns()
        try:
            s = self.connect()
            state = self.closed_by_peer(s, 3)
            s.close()
        except OSError as e:
            state = "refused: %s" % e
        time.sleep(0.2)
        self.result("refuse: connection closed at once (%s), server never sees it" % state,
                    state != "open" and self.nconns() == before, state)
        self.must("accept")
        self.intact("accept: connections relayed again", self.payload(10000, 11))

    def under_asan(self):
        with open("/proc/%d/maps" % self.pid) as f:
            return "libasan" in f.read()

    def case_memory(self):
        """A sender much faster than the rate: the proxy must stop reading
        (the client can push only what the socket buffers and the proxy's
        bounded queue hold), and its memory must not grow with the backlog."""
        self.must("rate 2MB/s up")
        rss0 = self.rss_kb()
        s = self.connect()
        stop = []
        chunk = b"m" * (1 << 20)
        sent = [0]
        limit = 256 << 20

        def run():
            s.settimeout(0.2)
            while not stop and sent[0] < limit:
                try:
                    sent[0] += s.send(chunk)
                except socket.timeout:
                    pass
                except OSError:
                    return
        t = threading.Thread(target=run)
        t.start()
        time.sleep(1.5)
        rss1 = self.rss_kb()
        stop.append(1)
        t.join(5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        self.must("clear")
        mib = sent[0] / 1048576.0
        self.result("rate-limited sender is pushed back: it got %.1f of 256 MiB out in 1.5 s" % mib,
                    mib < 64, "")
        grow = (rss1 - rss0) / 1024.0
        if self.under_asan():
            print("proxy RSS +%.1f MiB (not checked under ASan: its quarantine keeps freed memory)" % grow)
        else:
            self.result("rate-limited sender: proxy RSS grew %.1f MiB (< 16)" % grow, grow < 16, "")

def main():
    if sys.argv[1] == "serve":
        serve(sys.argv[2])
        return
    c = Case(*sys.argv[3:8])
    getattr(c, "case_" + sys.argv[2].replace("-", "_"))()


if __name__ == "__main__":
    main()
PY

# exit_and_text RC WANT_RC TEXT PREFIX: RC is WANT_RC and TEXT starts with PREFIX.
exit_and_text() { [ "$1" -eq "$2" ] && [[ $3 == "$4"* ]]; }

# --- command line
out=$("$FP" --help)
rc=$?
check "--help exits 0 and lists the commands" exit_and_text "$rc" 0 "$out" "usage: ferry-faultproxy"
out=$("$FP" --listen 127.0.0.1:0 2>&1 >/dev/null)
rc=$?
check "missing --to: exit 2 ($out)" exit_and_text "$rc" 2 "$out" "ferry-faultproxy: --listen and --to are required"
out=$("$FP" --listen 127.0.0.1:0 --to 127.0.0.1:0 2>&1 >/dev/null)
rc=$?
check "--to port 0: exit 2 ($out)" exit_and_text "$rc" 2 "$out" "ferry-faultproxy: --to: address '127.0.0.1:0': port 0"
out=$("$FP" --listen 127.0.0.1:0 --to 127.0.0.1:1 --bogus 2>&1 >/dev/null)
rc=$?
check "unknown option: exit 2 ($out)" exit_and_text "$rc" 2 "$out" "ferry-faultproxy: unknown option --bogus"

# --- sink server, then the proxy in front of it
python3 "$T/fp.py" serve "$T/srv" >"$T/srv.out" 2>&1 &
t_bg $!
for _ in $(seq 1 100); do [ -s "$T/srv/port" ] && break; sleep 0.05; done
SRV_PORT=$(cat "$T/srv/port" 2>/dev/null)
[ -n "$SRV_PORT" ] || { not_ok "sink server started"; diag <"$T/srv.out"; t_done; }

CTL=$T/ctl.sock
"$FP" --listen 127.0.0.1:0 --to "127.0.0.1:$SRV_PORT" --ctl "$CTL" --port-file "$T/fp.port" \
	--log "$T/fp.log" 2>"$T/fp.err" &
FP_PID=$!
t_bg "$FP_PID"
for _ in $(seq 1 100); do [ -s "$T/fp.port" ] && break; sleep 0.05; done
PORT=$(cat "$T/fp.port" 2>/dev/null)
[ -n "$PORT" ] || { not_ok "proxy started"; diag <"$T/fp.err"; t_done; }
check "prints 'listening on 127.0.0.1:$PORT' and writes the port file" \
	grep -q "^listening on 127.0.0.1:$PORT\$" "$T/fp.err"

out=$("$FP" ctl "$CTL" bogus 2>&1)
rc=$?
check "ctl: unknown command is an error, exit 1 ($out)" exit_and_text "$rc" 1 "$out" "error unknown command"
out=$("$FP" ctl "$CTL" latency soon 2>&1)
rc=$?
check "ctl: bad value is an error, exit 1 ($out)" exit_and_text "$rc" 1 "$out" "error latency: duration 'soon'"
out=$("$FP" ctl "$CTL" stall sideways 2>&1)
rc=$?
check "ctl: bad direction is an error, exit 1 ($out)" exit_and_text "$rc" 1 "$out" "error stall: unexpected 'sideways'"
out=$("$FP" ctl "$T/nothing.sock" stats 2>&1)
rc=$?
check "ctl: no proxy at the socket: exit 1 ($out)" exit_and_text "$rc" 1 "$out" "ferry-faultproxy ctl: $T/nothing.sock:"
out=$("$FP" ctl "$CTL" show 2>&1)
rc=$?
check "ctl: show lists no fault at start ($out)" exit_and_text "$rc" 0 "$out" \
	"ok latency=0/0 rate=0/0 stall=0/0 drop=0/0 slice=0 refuse=0"

# run_case NAME: one python scenario; its PASS/FAIL lines become TAP lines.
run_case() {
	local out rc line
	out=$(timeout 60 python3 "$T/fp.py" case "$1" "$PORT" "$CTL" "$FP" "$T/srv" "$FP_PID" 2>&1)
	rc=$?
	while IFS= read -r line; do
		case "$line" in
		"PASS "*) ok "$1: ${line#PASS }" ;;
		"FAIL "*) not_ok "$1: ${line#FAIL }" ;;
		"") ;;
		*) echo "$line" | diag ;;
		esac
	done <<<"$out"
	[ "$rc" -eq 0 ] || not_ok "$1: scenario failed (exit $rc)"
	# every scenario leaves no fault behind
	"$FP" ctl "$CTL" clear >/dev/null
}

for c in clean many latency rate stall sigusr2 drop reset sigusr1 close-after slice flip refuse memory; do
	run_case "$c"
done

# --- event log, clean exit
check "log has connects, closes and faults" bash -c \
	"grep -q 'accepted from' '$T/fp.log' && grep -q 'closed (both sides closed)' '$T/fp.log' &&
	 grep -q 'fault: latency 200 ms up' '$T/fp.log' && grep -q 'flipped bit 0' '$T/fp.log' &&
	 grep -q 'close-after fired' '$T/fp.log' && grep -q 'refused connection' '$T/fp.log'"
check "proxy still running after every fault" kill -0 "$FP_PID"
kill -TERM "$FP_PID"
rc=0
wait "$FP_PID" || rc=$?
check "SIGTERM: clean exit ($rc)" [ "$rc" -eq 0 ]
check "SIGTERM: control socket removed" [ ! -e "$CTL" ]
check "no sanitizer report from the proxy" bash -c "! grep -qE 'Sanitizer|runtime error' '$T/fp.err'"
if [ "$rc" -ne 0 ] || [ "$(wc -l <"$T/fp.err")" -gt 1 ]; then diag <"$T/fp.err"; fi
t_done
