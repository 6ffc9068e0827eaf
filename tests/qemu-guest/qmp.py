#!/usr/bin/env python3
"""A tiny QMP client for the tests (stdlib only; the C client is
src/common/qmp.c).  Each command prints its result as one JSON line.

  qmp.py SOCK wait-ready [TIMEOUT]      wait until the socket answers
  qmp.py SOCK cmd NAME [JSON-ARGS]      run one command, print "return"
  qmp.py SOCK status                    the test guest's status block
  qmp.py SOCK peek ADDR LEN OUT         pmemsave LEN bytes at ADDR to OUT
  qmp.py SOCK check-pattern ADDR NPAGES
        the guest's page pattern on NPAGES pages from ADDR (pmemsave):
        prints {"bad": N, "rewritten": N, "first_bad": ADDR}
  qmp.py SOCK migrate-file FILE [TIMEOUT] [CAPS]
        migrate to "exec:cat > FILE" with the comma-separated capabilities
        turned on, wait for "completed" (or fail), print query-migrate
  qmp.py SOCK migrate-unix FILE [TIMEOUT] [CAPS]
        the same to a unix socket this script listens on, writing what
        arrives to FILE; with return-path it plays the destination's part
        of the return path: one SHUT message (no error) once the stream
        has ended (its last byte is the '}' of QEMU's vmstate description
        and nothing came for 0.3 s), which the source waits for
  qmp.py SOCK pmemsave-all OUT SIZE     pmemsave guest physical 0..SIZE to OUT
  qmp.py SOCK runstate                  query-status: {"status": ..., ...}
  qmp.py SOCK incoming URI              migrate-incoming URI (a destination
        started with -incoming defer); for tcp:HOST:0 prints the port QEMU
        listens on: {"port": N}
  qmp.py SOCK migrate-start URI [CAPS] [PARAMS]
        turn the comma-separated CAPS on, set the migration parameters
        PARAMS (a JSON object, e.g. {"max-bandwidth": 67108864}) and start
        "migrate" to URI without waiting
  qmp.py SOCK migrate-wait [TIMEOUT]
        wait until query-migrate says completed, failed or cancelled (on a
        source or a destination), print it; exit 0 only for completed
  qmp.py SOCK migrate-status            query-migrate's status ("none" when
        it has none: no migration ever started)
"""
import json
import os
import socket
import struct
import sys
import tempfile
import threading
import time

STATUS_ADDR = 0x180000
STATUS_MAGIC = 0x47595246
PAGE_MAGIC = 0x45474150
SAME_BASE = 0x5A5A0000
PAGE = 4096
RP_MSG_SHUT = 1


class Qmp:
    def __init__(self, path, timeout=10.0):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        self.events = []
        greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError("no greeting: %r" % greeting)
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.f.readline()
        if not line:
            raise RuntimeError("QMP connection closed")
        return json.loads(line)

    def cmd(self, name, args=None):
        req = {"execute": name}
        if args is not None:
            req["arguments"] = args
        self.s.sendall(json.dumps(req).encode() + b"\n")
        while True:
            m = self._read()
            if "event" in m:
                self.events.append(m)
                continue
            if "error" in m:
                raise RuntimeError("%s: %s" % (name, m["error"]))
            return m.get("return")


def peek(q, addr, length):
    fd, path = tempfile.mkstemp(prefix="ferry-pmem.")
    os.close(fd)
    try:
        q.cmd("pmemsave", {"val": addr, "size": length, "filename": path})
        with open(path, "rb") as f:
            return f.read()
    finally:
        os.unlink(path)


def status(q):
    b = peek(q, STATUS_ADDR, 28)
    w = struct.unpack("<7I", b)
    return {"magic_ok": w[0] == STATUS_MAGIC, "state": w[1], "counter": w[2],
            "fill_start": w[3], "fill_end": w[4], "rot_pages": w[5], "filled": w[6]}


def expected_page(p):
    """The words of the page at physical p right after the fill (word 3,
    the generation, is 0): the mix described in tests/qemu-guest/kernel.c."""
    k = (p >> 12) % 4
    if k == 1:
        w = [SAME_BASE | i for i in range(PAGE // 4)]
        w[3] = 0
        return w
    w = [p, PAGE_MAGIC, ~p & 0xFFFFFFFF, 0]
    x = p | 1
    for i in range(4, PAGE // 4):
        if k == 0:
            x ^= (x << 13) & 0xFFFFFFFF
            x ^= x >> 17
            x ^= (x << 5) & 0xFFFFFFFF
            w.append(x)
        else:
            w.append((p + 4 * (i % 16)) & 0xFFFFFFFF)
    return w


def check_pattern(q, addr, npages):
    """Every page holds expected_page(P) except word 3, the generation,
    which is at most the guest's counter."""
    b = peek(q, addr, npages * PAGE)
    counter = status(q)["counter"]
    bad = rewritten = 0
    first_bad = None
    for k in range(npages):
        p = addr + k * PAGE
        w = list(struct.unpack_from("<%dI" % (PAGE // 4), b, k * PAGE))
        exp = expected_page(p)
        gen = w[3]
        w[3] = 0
        ok = w == exp and gen <= counter
        w[3] = gen
        if not ok:
            bad += 1
            first_bad = p if first_bad is None else first_bad
        rewritten += w[3] != 0
    return {"bad": bad, "rewritten": rewritten, "first_bad": first_bad}


def set_caps(q, caps):
    if caps:
        q.cmd("migrate-set-capabilities", {"capabilities": [
            {"capability": c, "state": True} for c in caps.split(",")]})


def wait_migration(q, timeout):
    end = time.time() + timeout
    while time.time() < end:
        st = q.cmd("query-migrate")
        if st.get("status") in ("completed", "failed", "cancelled"):
            return st
        time.sleep(0.1)
    raise RuntimeError("migration not done within %s s: %r" % (timeout, st))


def migrate_file(q, out, timeout, caps):
    set_caps(q, caps)
    q.cmd("migrate", {"uri": "exec:cat > " + out})
    return wait_migration(q, timeout)


def migrate_unix(q, out, timeout, caps):
    path = out + ".sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(timeout)
    result = {}

    def receive():
        rp = "return-path" in caps.split(",")
        try:
            c, _ = srv.accept()
            c.settimeout(0.3 if rp else timeout)
            end = time.time() + timeout
            last = b""
            with open(out, "wb") as f:
                while time.time() < end:
                    try:
                        d = c.recv(1 << 20)
                    except socket.timeout:
                        if last == b"}":
                            c.sendall(struct.pack(">HHI", RP_MSG_SHUT, 4, 0))
                            c.settimeout(timeout)
                        continue
                    if not d:
                        break
                    f.write(d)
                    last = d[-1:]
            c.close()
        except OSError as e:
            result["error"] = str(e)

    t = threading.Thread(target=receive)
    t.start()
    set_caps(q, caps)
    q.cmd("migrate", {"uri": "unix:" + path})
    st = wait_migration(q, timeout)
    t.join(timeout)
    srv.close()
    os.unlink(path)
    if "error" in result:
        raise RuntimeError("receiving the stream: " + result["error"])
    return st


def pmemsave_all(q, out, size):
    q.s.settimeout(120)
    q.cmd("pmemsave", {"val": 0, "size": size, "filename": os.path.abspath(out)})
    return {"file": out, "size": os.path.getsize(out)}


def incoming(q, uri):
    q.cmd("migrate-incoming", {"uri": uri})
    st = q.cmd("query-migrate")
    for a in st.get("socket-address", []):
        if a.get("type") in ("inet", "tcp") and "port" in a:
            return {"port": int(a["port"])}
    return {}


def migrate_start(q, uri, caps, params):
    set_caps(q, caps)
    if params:
        q.cmd("migrate-set-parameters", json.loads(params))
    q.cmd("migrate", {"uri": uri})
    return {}


def main(argv):
    sock, what = argv[1], argv[2]
    if what == "wait-ready":
        end = time.time() + float(argv[3] if len(argv) > 3 else 10)
        while True:
            try:
                Qmp(sock, 2.0)
                return 0
            except (OSError, RuntimeError):
                if time.time() > end:
                    raise
                time.sleep(0.05)
    q = Qmp(sock)
    if what == "cmd":
        args = json.loads(argv[4]) if len(argv) > 4 else None
        print(json.dumps(q.cmd(argv[3], args)))
    elif what == "status":
        print(json.dumps(status(q)))
    elif what == "peek":
        with open(argv[5], "wb") as f:
            f.write(peek(q, int(argv[3], 0), int(argv[4], 0)))
    elif what == "check-pattern":
        print(json.dumps(check_pattern(q, int(argv[3], 0), int(argv[4], 0))))
    elif what in ("migrate-file", "migrate-unix"):
        timeout = float(argv[4]) if len(argv) > 4 else 60
        caps = argv[5] if len(argv) > 5 else ""
        fn = migrate_file if what == "migrate-file" else migrate_unix
        st = fn(q, argv[3], timeout, caps)
        print(json.dumps(st))
        return 0 if st.get("status") == "completed" else 1
    elif what == "pmemsave-all":
        print(json.dumps(pmemsave_all(q, argv[3], int(argv[4], 0))))
    elif what == "runstate":
        print(json.dumps(q.cmd("query-status")))
    elif what == "incoming":
        print(json.dumps(incoming(q, argv[3])))
    elif what == "migrate-start":
        print(json.dumps(migrate_start(q, argv[3], argv[4] if len(argv) > 4 else "",
                                       argv[5] if len(argv) > 5 else "")))
    elif what == "migrate-wait":
        st = wait_migration(q, float(argv[3]) if len(argv) > 3 else 60)
        print(json.dumps(st))
        return 0 if st.get("status") == "completed" else 1
    elif what == "migrate-status":
        print(q.cmd("query-migrate").get("status", "none"))
    else:
        print("unknown command " + what, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
