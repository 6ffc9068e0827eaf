#!/usr/bin/env python3
"""ferry's benchmark (issue 7): ferry against rsync over ssh and a
tar | lz4 | socat TLS pipe on loopback, plus the component limit, and
(workload Q1) ferry carrying a QEMU migration against QEMU's own.

Usage: tools/bench/bench.py [options]      (make bench, make bench-smoke)

  --runs N        runs per figure, median with min-max (env BENCH_RUNS, default 3)
  --scale F       multiply every workload size and dirty rate by F
                  (env BENCH_SCALE, default 1; make bench-smoke uses 1/64)
  --only LIST     workloads to run, e.g. W1,W3 (env BENCH_ONLY, default all:
                  W1,W2,W3,W4,W5,Q1)
  --out FILE      write the report there (env BENCH_OUT; default
                  tools/bench/RESULTS.md at scale 1 with every workload,
                  nothing otherwise: a partial run does not replace it)
  --json FILE     also write every measurement as JSON
  --build DIR     where ferry's binaries are (env BUILD, default build)
  --tmp DIR       parent of the work directory (env BENCH_TMP, default $TMPDIR or /tmp)
  --strict        exit 1 when a target FAILs (env BENCH_STRICT=1)
  --no-netns      do not move into a private network namespace

Everything runs on 127.0.0.1.  When run as root the bench re-executes
itself in a private network namespace (unshare --net) so that the loopback
byte counters it reads as "wire bytes" count its own traffic only.  Every
process it starts is killed by PID (its process group) and the work
directory removed at exit, also on Ctrl-C.

Q1 needs qemu-system-x86_64 (env FERRY_QEMU names another binary) and the
test guest kernel (BUILD/qemu-guest/kernel.elf, built by make); without
them its rows say skipped and target 7 says SKIP.  It boots the guest with
-append nofill on a memory-backend-file holding the W1 memory image
(tests/qemu-guest/kernel.c) and talks QMP with tests/qemu-guest/qmp.py.
"""
import argparse
import datetime
import json
import os
import platform
import random
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GiB = 1 << 30
MiB = 1 << 20

# ---------------------------------------------------------------- processes

_procs = []            # every Proc ever started, for cleanup
_procs_lock = threading.Lock()


class Proc:
    """A child process in its own process group, reaped by a thread with
    wait4() so that its CPU time and peak RSS (including reaped descendants)
    are known.  With track_stops the thread also records when the child
    stops (SIGSTOP) and continues, from the kernel's own notification."""

    def __init__(self, argv, stdin=None, stdout=None, stderr=None, cwd=None,
                 track_stops=False, env=None):
        self.argv = argv
        self.t_start = time.monotonic()
        self.p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd,
                                  start_new_session=True, env=env)
        self.pid = self.p.pid
        self.t_end = None
        self.status = None
        self.rusage = None
        self.ok_codes = (0,)    # exit statuses that mean success
        self.stops = []         # monotonic times of SIGSTOP
        self.conts = []
        self.done = threading.Event()
        with _procs_lock:
            _procs.append(self)
        threading.Thread(target=self._wait, args=(track_stops,), daemon=True).start()

    def _wait(self, track_stops):
        try:
            if track_stops:
                opts = os.WEXITED | os.WSTOPPED | os.WCONTINUED | os.WNOWAIT
                while True:
                    r = os.waitid(os.P_PID, self.pid, opts)
                    now = time.monotonic()
                    if r is None:
                        continue
                    if r.si_code == os.CLD_STOPPED:
                        self.stops.append(now)
                        os.waitid(os.P_PID, self.pid, os.WSTOPPED | os.WNOHANG)
                    elif r.si_code == os.CLD_CONTINUED:
                        self.conts.append(now)
                        os.waitid(os.P_PID, self.pid, os.WCONTINUED | os.WNOHANG)
                    else:
                        break
            pid, status, ru = os.wait4(self.pid, 0)
            self.t_end = time.monotonic()
            self.status = os.waitstatus_to_exitcode(status)
            self.rusage = ru
            self.p.returncode = self.status
        except ChildProcessError:
            self.t_end = time.monotonic()
            self.status = -1
            self.p.returncode = -1
        finally:
            self.done.set()

    def wait(self, timeout=None):
        return self.done.wait(timeout)

    def alive(self):
        return not self.done.is_set()

    def kill(self):
        if self.done.is_set():
            return
        for sig in (signal.SIGCONT, signal.SIGKILL):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                pass
            except PermissionError:
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    pass

    def cpu(self):
        return self.rusage.ru_utime + self.rusage.ru_stime if self.rusage else None

    def maxrss(self):
        return self.rusage.ru_maxrss * 1024 if self.rusage else None


def kill_stragglers():
    """Kill every process the bench started that is still running."""
    with _procs_lock:
        procs = [pr for pr in _procs if pr.alive()]
        _procs[:] = procs
    for pr in procs:
        pr.kill()
    for pr in procs:
        pr.wait(5)


def kill_all():
    with _procs_lock:
        procs = list(_procs)
    for pr in procs:
        pr.kill()
    for pr in procs:
        pr.wait(5)


class Sampler:
    """Every 100 ms, the peak RSS (VmHWM) of every descendant of the
    watched processes; used for sides made of several processes (a
    process that is not a direct child of the bench is not in wait4's
    figures)."""

    def __init__(self):
        self.hwm = {}           # pid -> (root pid, bytes)
        self.anon = {}          # pid -> (root pid, largest RssAnon seen)
        self.roots = set()
        self.stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def watch(self, pid):
        self.roots.add(pid)

    @staticmethod
    def _children(pid):
        out = []
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children") as f:
                    out += [int(x) for x in f.read().split()]
        except OSError:
            pass
        return out

    @staticmethod
    def _mem(pid):
        """(VmHWM, RssAnon) in bytes, or (None, None) once pid is gone."""
        hwm = anon = None
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = int(line.split()[1]) * 1024
                    elif line.startswith("RssAnon:"):
                        anon = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
        return hwm, anon

    def _run(self):
        while not self.stop.wait(0.1):
            for root in list(self.roots):
                todo = [root]
                while todo:
                    pid = todo.pop()
                    h, a = self._mem(pid)
                    if h is not None:
                        old = self.hwm.get(pid, (root, 0))[1]
                        self.hwm[pid] = (root, max(old, h))
                    if a is not None:
                        old = self.anon.get(pid, (root, 0))[1]
                        self.anon[pid] = (root, max(old, a))
                    todo += self._children(pid)

    def descendants_peak(self, root):
        """Sum of the peak RSS of root's descendants seen (root excluded)."""
        return sum(h for pid, (r, h) in self.hwm.items() if r == root and pid != root)

    def anon_peak(self, root):
        """Sum of the largest anonymous RSS seen of root and its descendants."""
        return sum(a for pid, (r, a) in self.anon.items() if r == root)

    def forget(self, root):
        self.roots.discard(root)
        for d in (self.hwm, self.anon):
            for pid in [p for p, (r, _) in d.items() if r == root]:
                del d[pid]


SAMPLER = None

# ---------------------------------------------------------------- helpers


def die(msg):
    print(f"bench: {msg}", file=sys.stderr)
    sys.exit(2)


def run_quiet(argv, **kw):
    """Run a setup command to completion (not measured); raise on failure."""
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"{shlex.join(argv)} failed ({r.returncode}): {r.stdout.strip()[-500:]}")
    return r.stdout


def lo_bytes():
    """tx bytes of the loopback interface in this network namespace
    (/proc/net/dev is per namespace; /sys/class/net is not)."""
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[8])
    return None


def listening(port):
    """True when something listens on 127.0.0.1:port (read from
    /proc/net/tcp, so that nothing connects to a one-shot listener)."""
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            for line in f.readlines()[1:]:
                p = line.split()
                if p[1] == want and p[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(cond, timeout, what, procs=()):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        for pr in procs:
            if not pr.alive():
                raise RuntimeError(f"{what}: {os.path.basename(pr.argv[0])} exited with {pr.status}")
        time.sleep(0.01)
    raise RuntimeError(f"{what}: not within {timeout} s")


def rm_rf_contents(d):
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)


def one_line(ex):
    return " ".join(str(ex).split()).replace("|", "/")


def human(n):
    return f"{n / GiB:g} GiB" if n >= GiB and n % (GiB // 4) == 0 else f"{n / MiB:.0f} MiB"


def med(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, None, None
    return statistics.median(vals), min(vals), max(vals)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------- QEMU (Q1)

# The migration parameters ferry-send sets on the source QEMU
# (proto/QEMU.md section 5; src/sender/qsource.c): qemu-direct runs with the
# same, so that only the transport differs.  300 ms is also QEMU's default
# downtime-limit and ferry-send's default --downtime.
QEMU_MAX_BANDWIDTH = 100 << 30
QEMU_DOWNTIME_MS = 300


def load_qmp():
    """tests/qemu-guest/qmp.py, the tests' QMP client (stdlib only)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "ferry_test_qmp", os.path.join(REPO, "tests", "qemu-guest", "qmp.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def proc_cpu(pid):
    """User + system CPU seconds of a running process (all its threads),
    from /proc/PID/stat; None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class QemuPair:
    """A source and a destination QEMU (Procs) with the bench's QMP
    connections to them; close() kills both by PID."""

    def __init__(self, d):
        self.dir = d
        self.procs = []
        self.src = self.dst = None
        self.src_fqmp = self.dst_fqmp = None

    def cpu(self):
        """(source, destination) QEMU CPU seconds so far."""
        return tuple(proc_cpu(pr.pid) for pr in self.procs)

    def close(self):
        for q in (self.src, self.dst):
            if q is not None:
                try:
                    q.s.close()
                except OSError:
                    pass
        for pr in self.procs:
            pr.kill()
        for pr in self.procs:
            pr.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args):
        self.a = args
        self.build = os.path.abspath(args.build)
        self.tmp = tempfile.mkdtemp(prefix="ferry-bench.", dir=args.tmp)
        self.runs = args.runs
        self.scale = args.scale
        self.rows = []          # dicts, see record()
        self.components = {}    # workload -> dict
        self.commands = {}      # mover -> command template
        self.notes = []
        self.made_run_sshd = False
        self.timeout = max(60, 600 * args.scale) if args.scale < 1 else 900
        self.netns = os.environ.get("BENCH_IN_NETNS") == "1"
        # Inherited by everything the bench starts: lets a test find leftovers.
        os.environ["FERRY_BENCH_WORK"] = self.tmp

    # -------------------------------------------------- setup

    def size(self, base, unit):
        """base bytes times the scale, a multiple of unit, at least 64 units."""
        n = int(base * self.scale) // unit * unit
        return max(n, 64 * unit)

    def log(self, msg):
        print(f"bench: {msg}", file=sys.stderr, flush=True)

    def setup(self):
        for b in ("ferry-send", "ferry-recv", "ferry-guest", "bench-components"):
            if not os.access(os.path.join(self.build, b), os.X_OK):
                die(f"{self.build}/{b} missing: run make first (make bench builds it)")
        self.certs = os.path.join(self.tmp, "certs")
        run_quiet([os.path.join(REPO, "tools/ferry-certs"), self.certs, "sender", "receiver"])
        self.have_rsync = all(shutil.which(x) for x in ("rsync", "ssh", "ssh-keygen")) and \
            os.access("/usr/sbin/sshd", os.X_OK)
        self.have_socat = all(shutil.which(x) for x in ("socat", "lz4", "tar"))
        if not self.have_rsync:
            self.notes.append("rsync/ssh/sshd missing (tools/install-deps): rsync rows skipped")
        if not self.have_socat:
            self.notes.append("socat or lz4 missing (tools/install-deps): socat rows skipped")
        if self.have_rsync:
            self.setup_ssh()

    def setup_ssh(self):
        d = os.path.join(self.tmp, "ssh")
        os.makedirs(d, mode=0o700)
        self.ssh_dir = d
        run_quiet(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/host_key"])
        run_quiet(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/client_key"])
        shutil.copy(f"{d}/client_key.pub", f"{d}/authorized_keys")
        self.ssh_user = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name
        self.ssh_port = free_port()
        with open(f"{d}/sshd_config", "w") as f:
            f.write(f"""# throwaway sshd for ferry's bench, loopback only
ListenAddress 127.0.0.1:{self.ssh_port}
HostKey {d}/host_key
PidFile none
AuthorizedKeysFile {d}/authorized_keys
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {self.ssh_user}
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
""")
        self.privsep_dir()
        self.ssh_cmd = (f"ssh -F /dev/null -p {self.ssh_port} -i {d}/client_key "
                        f"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                        f"-o BatchMode=yes -o LogLevel=ERROR")

    def privsep_dir(self):
        """sshd's privilege separation needs its empty directory, which the
        openssh-server service normally creates.  Made when missing (checked
        before every sshd start), removed at exit if this bench made it."""
        if os.getuid() == 0 and not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
            self.made_run_sshd = True

    def cleanup(self):
        if SAMPLER:
            SAMPLER.stop.set()
        kill_all()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self.made_run_sshd:
            try:
                os.rmdir("/run/sshd")
            except OSError:
                pass

    # -------------------------------------------------- workloads

    def guest_create(self, d, mem_size, disk_size, seed):
        os.makedirs(d, exist_ok=True)
        argv = [f"{self.build}/ferry-guest", "create", "--mem", f"{d}/mem.img",
                "--mem-size", str(mem_size)]
        files = [(f"{d}/mem.img", 4096)]
        if disk_size:
            argv += ["--disk", f"{d}/disk.img", "--disk-size", str(disk_size)]
            files.append((f"{d}/disk.img", 65536))
        argv += ["--seed", str(seed), "--force"]
        run_quiet(argv)
        return files

    def random_image(self, d, size, seed):
        os.makedirs(d, exist_ok=True)
        rng = random.Random(seed)
        path = f"{d}/mem.img"
        with open(path, "wb") as f:
            left = size
            while left:
                n = min(left, 4 * MiB)
                f.write(rng.randbytes(n))
                left -= n
        return [(path, 4096)]

    def components_for(self, name, files):
        out = run_quiet([f"{self.build}/bench-components", "--reps", str(max(3, self.runs))] +
                        [f"{p}:{u}" for p, u in files])
        c = json.loads(out.strip().splitlines()[-1])
        c["aes_enc_Bps"], c["aes_dec_Bps"] = self.aes_speed()
        # CPU-seconds the workload costs at the least (RESULTS.md explains):
        c["terms"] = {
            "sender: zero test + XXH3-128 + dedupe (all units)": c["classify_s"],
            "sender: lz4 compress (unique non-zero units)": c["lz4c_s"],
            "sender: AES-128-GCM encrypt (payload)": c["payload_bytes"] / c["aes_enc_Bps"],
            "receiver: AES-128-GCM decrypt (payload)": c["payload_bytes"] / c["aes_dec_Bps"],
            "receiver: lz4 decompress": c["lz4d_s"],
            "receiver: XXH3-128 of the non-zero units it writes (digest check)":
                c["bytes_nonzero"] / c["hash_Bps"],
        }
        c["cpu_s"] = sum(c["terms"].values())
        c["cores"] = os.cpu_count()
        c["limit_s"] = c["cpu_s"] / c["cores"]
        c["copy_s"] = c["bytes_unique"] / c["memcpy_Bps"]
        self.components[name] = c
        return c

    _aes = None

    def aes_speed(self):
        """openssl speed -evp aes-128-gcm, 16 KiB records, encrypt and
        decrypt; bytes per second of CPU time.  Measured once per bench."""
        if self.__class__._aes is None:
            res = []
            for extra in ([], ["-decrypt"]):
                argv = ["openssl", "speed", "-seconds", "1" if self.scale < 1 else "3",
                        "-bytes", "16384"] + extra + ["-evp", "aes-128-gcm"]
                out = run_quiet(argv)
                m = re.search(r"^AES-128-GCM\s+([0-9.]+)k\s*$", out, re.M)
                if not m:
                    raise RuntimeError(f"cannot parse {shlex.join(argv)}: {out[-300:]}")
                res.append(float(m.group(1)) * 1000)
                self.commands.setdefault("AES-128-GCM", []).append(shlex.join(argv))
            self.__class__._aes = tuple(res)
        return self.__class__._aes

    # -------------------------------------------------- movers

    def measure(self, start, finish, what):
        """start() launches the processes and returns them grouped by side
        ({"send": [Proc...], "recv": [Proc...]}); wall time runs from
        start's call until every process has exited."""
        lo0 = lo_bytes() if self.netns else None
        t0 = time.monotonic()
        procs = start()
        allp = procs["send"] + procs["recv"]
        for pr in allp:
            SAMPLER.watch(pr.pid)
        deadline = t0 + self.timeout
        failed_at = None
        while any(pr.alive() for pr in allp):
            now = time.monotonic()
            if failed_at is None and any(not pr.alive() and pr.status not in pr.ok_codes
                                         for pr in allp):
                failed_at = now
            # One side failed: give the other 3 s to notice, then stop it.
            if now > deadline or (failed_at is not None and now > failed_at + 3):
                for q in allp:
                    q.kill()
                for q in allp:
                    q.wait(5)
                if now > deadline:
                    raise RuntimeError(f"{what}: timed out after {self.timeout:.0f} s")
                break
            time.sleep(0.02)
        t1 = max(pr.t_end for pr in allp)
        lo1 = lo_bytes() if self.netns else None
        res = {"wall_s": t1 - t0, "wire_bytes": (lo1 - lo0) if lo0 is not None else None}
        for side in ("send", "recv"):
            res[f"cpu_{side}_s"] = sum(pr.cpu() or 0 for pr in procs[side])
            # Peak RSS of a side: its processes run at the same time, so
            # their peaks add up (an upper bound).  Direct children from
            # wait4(); their own children from the sampler.
            res[f"rss_{side}"] = sum((pr.maxrss() or 0) + SAMPLER.descendants_peak(pr.pid)
                                     for pr in procs[side])
            res[f"anon_{side}"] = sum(SAMPLER.anon_peak(pr.pid) for pr in procs[side])
        for pr in allp:
            SAMPLER.forget(pr.pid)
        bad = [pr for pr in allp if pr.status not in pr.ok_codes]
        if bad:
            raise RuntimeError(f"{what}: " + ", ".join(
                f"{os.path.basename(pr.argv[0])} exited with {pr.status}" for pr in bad) +
                finish(False))
        finish(True)
        return res

    def ferry(self, files, dest, guest=None, qemu=None, reuse=None, dirty_log=None):
        """One ferry migration of files into dest.  guest: (Proc, fifo).
        qemu: {"src": QMP socket, "dst": QMP socket} for ferry-send and
        ferry-recv --qemu-qmp (Q1; files is then unused).  reuse: a function
        that fills the emptied dest before the receiver starts (not timed);
        the receiver then runs with --reuse (W5).  dirty_log: the guest's
        dirty log, for ferry-send --dirty-log (W2)."""
        rm_rf_contents(dest)
        if reuse:
            reuse(dest)
        logs = os.path.join(self.tmp, "logs")
        os.makedirs(logs, exist_ok=True)
        c = self.certs
        rargv = [f"{self.build}/ferry-recv", "--listen", "127.0.0.1:0",
                 "--cert", f"{c}/receiver.pem", "--key", f"{c}/receiver.key", "--ca", f"{c}/ca.pem",
                 "--peer-name", "sender", "--dest-dir", dest, "--once", "--json"]
        sargv = [f"{self.build}/ferry-send", "--to", "127.0.0.1:PORT",
                 "--cert", f"{c}/sender.pem", "--key", f"{c}/sender.key", "--ca", f"{c}/ca.pem",
                 "--peer-name", "receiver", "--json", "--no-progress"]
        if reuse:
            rargv += ["--reuse"]
        if qemu:
            rargv += ["--qemu-qmp", qemu["dst"]]
            sargv += ["--qemu-qmp", qemu["src"]]
        else:
            # The first file is the memory image when it has 4 KiB pages
            # (W5's disk-only run has no memory image); the rest are disks.
            for i, (p, u) in enumerate(files):
                sargv += ["--mem" if i == 0 and u == 4096 else "--disk", p]
        if dirty_log:
            sargv += ["--dirty-log", dirty_log]
        fifo = None
        if guest:
            gp, fifo = guest
            rargv += ["--on-commit", f"printf x > {fifo}"]
            sargv += ["--guest-pid", str(gp.pid), "--cleanup-cmd", f"kill -KILL {gp.pid}"]
        self.commands.setdefault("ferry" + (" (W2, live guest)" if guest else
                                            " (Q1, QEMU)" if qemu else
                                            " (W5, --reuse" + (", disk only)" if len(files) == 1
                                                                else ")") if reuse else ""),
                                 [shlex.join(rargv), shlex.join(sargv)])
        rout = open(f"{logs}/recv.json", "w+")
        rerr = open(f"{logs}/recv.log", "w+")
        recv = Proc(rargv, stdout=rout, stderr=rerr, stdin=subprocess.DEVNULL)
        port = []

        def got_port():
            rerr.seek(0)
            m = re.search(r"listening on 127\.0\.0\.1:(\d+),", rerr.read())
            if m:
                port.append(int(m.group(1)))
            return bool(port)
        try:
            wait_for(got_port, 10, "ferry-recv start", [recv])
        except Exception:
            rout.close()
            rerr.close()
            raise
        sargv[2] = f"127.0.0.1:{port[0]}"
        sout = open(f"{logs}/send.json", "w+")
        serr = open(f"{logs}/send.log", "w+")

        commit_t = []
        if fifo:
            fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)

            def commit_watch():
                r, _, _ = select.select([fd], [], [], self.timeout)
                if r:
                    commit_t.append(time.monotonic())
            th = threading.Thread(target=commit_watch, daemon=True)
            th.start()

        def start():
            return {"send": [Proc(sargv, stdout=sout, stderr=serr, stdin=subprocess.DEVNULL)],
                    "recv": [recv]}

        def finish(ok):
            if ok:
                return ""
            serr.seek(0)
            rerr.seek(0)
            return "; ferry-send: " + serr.read()[-400:] + "; ferry-recv: " + rerr.read()[-400:]
        try:
            res = self.measure(start, finish, "ferry")
            sout.seek(0)
            ev = [json.loads(x) for x in sout if x.startswith("{")]
            done = [e for e in ev if e.get("event") == "done"][-1]
            res["ferry"] = {k: done.get(k) for k in (
                "wire_bytes", "logical_bytes", "rounds", "downtime_ms", "duration_ms",
                "pages_zero", "pages_dedup", "pages_lz4", "pages_raw", "qemu",
                "measured_downtime_ms", "units_reused")}
            res["phases"] = phases(ev, done)
            if fifo:
                th.join(5)
                gp.wait(10)
                if gp.stops and commit_t:
                    res["downtime_ms"] = (commit_t[0] - gp.stops[0]) * 1000
                else:
                    res["downtime_ms"] = None
                    self.notes.append("W2: a run where the pause or the commit was not seen")
            return res
        finally:
            if fifo:
                os.close(fd)
            for f in (rout, rerr, sout, serr):
                f.close()

    def rsync(self, files, dest):
        rm_rf_contents(dest)
        logs = os.path.join(self.tmp, "logs")
        os.makedirs(logs, exist_ok=True)
        sshd_argv = ["/usr/sbin/sshd", "-d", "-e", "-f", f"{self.ssh_dir}/sshd_config"]
        rargv = ["rsync", "-a", "-e", self.ssh_cmd] + [p for p, _ in files] + \
            [f"{self.ssh_user}@127.0.0.1:{dest}/"]
        self.commands.setdefault("rsync -a over ssh", [
            shlex.join(sshd_argv) + "    # one connection, then exits (-d)",
            shlex.join(rargv)])
        self.privsep_dir()
        serr = open(f"{logs}/sshd.log", "w+")
        rerr = open(f"{logs}/rsync.log", "w+")
        # sshd -d serves one connection without forking a listener child and
        # exits after it; its wait4() figures include the session and the
        # rsync server it runs.
        sshd = Proc(sshd_argv, stdout=serr, stderr=serr, stdin=subprocess.DEVNULL)
        sshd.ok_codes = (0, 255)    # sshd -d exits 255 when its one client disconnects
        try:
            wait_for(lambda: listening(self.ssh_port), 10, "sshd start", [sshd])
        except Exception:
            sshd.kill()
            raise

        def start():
            return {"send": [Proc(rargv, stdout=rerr, stderr=rerr, stdin=subprocess.DEVNULL)],
                    "recv": [sshd]}

        def finish(ok):
            if ok:
                return ""
            serr.seek(0)
            rerr.seek(0)
            return "; rsync: " + rerr.read()[-400:] + "; sshd: " + serr.read()[-600:]
        try:
            return self.measure(start, finish, "rsync")
        finally:
            serr.close()
            rerr.close()

    def socat(self, files, dest):
        rm_rf_contents(dest)
        logs = os.path.join(self.tmp, "logs")
        os.makedirs(logs, exist_ok=True)
        c = self.certs
        port = free_port()
        srcdir = os.path.dirname(files[0][0])
        names = [os.path.relpath(p, srcdir) for p, _ in files]
        r_socat = ["socat", "-u", "-b", "131072",
                   f"OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,cert={c}/receiver.pem,"
                   f"key={c}/receiver.key,cafile={c}/ca.pem,verify=1", "STDOUT"]
        r_lz4 = ["lz4", "-d", "-c"]
        r_tar = ["tar", "-x", "-C", dest]
        s_tar = ["tar", "-c", "-C", srcdir] + names
        s_lz4 = ["lz4", "-1", "-c"]
        s_socat = ["socat", "-u", "-b", "131072", "STDIN",
                   f"OPENSSL:127.0.0.1:{port},cert={c}/sender.pem,key={c}/sender.key,"
                   f"cafile={c}/ca.pem,verify=1,commonname=receiver"]
        self.commands.setdefault("tar | lz4 -1 | socat OPENSSL", [
            " | ".join(shlex.join(x) for x in (r_socat, r_lz4, r_tar)) + "    # destination",
            " | ".join(shlex.join(x) for x in (s_tar, s_lz4, s_socat)) + "    # source"])
        err = open(f"{logs}/socat.log", "w+")

        def chain(argvs):
            procs, prev = [], subprocess.DEVNULL
            for i, argv in enumerate(argvs):
                last = i == len(argvs) - 1
                pr = Proc(argv, stdin=prev, stdout=err if last else subprocess.PIPE, stderr=err)
                if prev is not subprocess.DEVNULL:
                    prev.close()
                prev = pr.p.stdout
                procs.append(pr)
            return procs
        recv = chain([r_socat, r_lz4, r_tar])
        try:
            wait_for(lambda: listening(port), 10, "socat listener start", recv)
        except Exception:
            for pr in recv:
                pr.kill()
            raise

        def finish(ok):
            if ok:
                return ""
            err.seek(0)
            return "; " + err.read()[-600:]
        try:
            return self.measure(lambda: {"send": chain([s_tar, s_lz4, s_socat]), "recv": recv},
                                finish, "socat")
        finally:
            err.close()

    # -------------------------------------------------- rows

    def record(self, wl, mover, runs, logical, extra=None):
        row = {"workload": wl, "mover": mover, "logical_bytes": logical, "runs": runs}
        if extra:
            row.update(extra)
        self.rows.append(row)
        return row

    def run_movers(self, wl, files, movers, logical):
        """Interleaved: run 1 of every mover, then run 2 of every mover..."""
        dest = os.path.join(self.tmp, "dest")
        results = {m: [] for m in movers}
        errors = {m: None for m in movers}
        for i in range(self.runs):
            for m in movers:
                if errors[m]:
                    continue
                self.log(f"{wl} run {i + 1}/{self.runs}: {m}")
                # Every timed run starts with no writeback pending from the
                # set-up (images just created) or from the previous run.
                os.sync()
                try:
                    fn = {"ferry": self.ferry, "rsync": self.rsync, "socat": self.socat}[m]
                    results[m].append(fn(files, dest))
                except Exception as ex:   # a failed mover is reported, not fatal
                    errors[m] = one_line(ex)
                    self.log(f"{wl} {m}: {ex}")
                finally:
                    kill_stragglers()
                    shutil.rmtree(dest, ignore_errors=True)
        rows = {}
        for m in movers:
            rows[m] = self.record(wl, MOVER_NAMES[m], results[m], logical,
                                  {"error": errors[m]} if errors[m] else None)
        return rows

    def w1(self):
        d = os.path.join(self.tmp, "w1")
        files = self.guest_create(d, self.size(GiB, 4096), self.size(2 * GiB, 65536), 101)
        self.w1_files = files
        logical = sum(os.path.getsize(p) for p, _ in files)
        c = self.components_for("W1", files)
        rows = self.run_movers("W1", files, self.movers(), logical)
        rows["ferry"]["limit_s"] = c["limit_s"]

    def w2(self):
        if not getattr(self, "w1_files", None):
            d = os.path.join(self.tmp, "w1")
            self.w1_files = self.guest_create(d, self.size(GiB, 4096),
                                              self.size(2 * GiB, 65536), 101)
        live = os.path.join(self.tmp, "w2")
        dest = os.path.join(self.tmp, "dest")
        logical = sum(os.path.getsize(p) for p, _ in self.w1_files)
        mem_rate = max(1, int(50 * MiB * self.scale))
        disk_rate = max(1, int(5 * MiB * self.scale))
        results, error = [], None
        for i in range(self.runs):
            self.log(f"W2 run {i + 1}/{self.runs}: ferry, live guest")
            rm_rf_contents(live)
            files = []
            for p, u in self.w1_files:
                q = os.path.join(live, os.path.basename(p))
                run_quiet(["cp", "--sparse=always", p, q])
                files.append((q, u))
            # The copy is set-up: its writeback must not run during the
            # timed migration (it would slow the receiver's commit fsync).
            os.sync()
            fifo = os.path.join(self.tmp, "commit.fifo")
            if os.path.exists(fifo):
                os.unlink(fifo)
            os.mkfifo(fifo)
            rates = ("50MiB/s", "5MiB/s") if self.scale == 1 else \
                (f"{mem_rate}B/s", f"{disk_rate}B/s")
            gargv = [f"{self.build}/ferry-guest", "run", "--mem", files[0][0], "--disk", files[1][0],
                     "--dirty-rate", rates[0], "--disk-rate", rates[1],
                     "--seed", str(200 + i), "--dirty-log", f"{live}/dirty.log",
                     "--pidfile", f"{live}/guest.pid"]
            self.commands.setdefault("W2 guest", [shlex.join(gargv)])
            glog = open(os.path.join(self.tmp, "guest.log"), "w")
            guest = Proc(gargv, stdout=glog, stderr=glog, stdin=subprocess.DEVNULL, track_stops=True)
            glog.close()
            try:
                wait_for(lambda: os.path.exists(f"{live}/guest.pid"), 10, "ferry-guest run", [guest])
                time.sleep(1.0)     # the workload reaches its rate before the migration
                results.append(self.ferry(files, dest, guest=(guest, fifo),
                                          dirty_log=f"{live}/dirty.log"))
            except Exception as ex:
                error = one_line(ex)
                self.log(f"W2 ferry: {ex}")
            finally:
                guest.kill()
                guest.wait(5)
                kill_stragglers()
                shutil.rmtree(dest, ignore_errors=True)
            if error:
                break
        shutil.rmtree(live, ignore_errors=True)
        self.record("W2", "ferry", results, logical, {"error": error} if error else None)

    def w3(self):
        d = os.path.join(self.tmp, "w3")
        files = self.random_image(d, self.size(GiB, 4096), 303)
        logical = sum(os.path.getsize(p) for p, _ in files)
        c = self.components_for("W3", files)
        rows = self.run_movers("W3", files, self.movers(), logical)
        rows["ferry"]["limit_s"] = c["limit_s"]
        shutil.rmtree(d, ignore_errors=True)

    def w4(self):
        for label, base in (("256 MiB", 256 * MiB), ("1 GiB", GiB), ("4 GiB", 4 * GiB)):
            d = os.path.join(self.tmp, "w4")
            files = self.guest_create(d, self.size(base, 4096), 0, 404)
            logical = sum(os.path.getsize(p) for p, _ in files)
            c = self.components_for(f"W4 {label}", files)
            rows = self.run_movers(f"W4 {label}", files, ["ferry"], logical)
            rows["ferry"]["limit_s"] = c["limit_s"]
            shutil.rmtree(d, ignore_errors=True)

    W5_SEED = 505           # which blocks change at the destination, and their bytes
    W5_PCT = 5              # percent of the disk image's 64 KiB blocks that differ

    def w5(self):
        """A return trip: W1 migrated to a destination that already holds a
        copy of W1's disk image in which 5% of the 64 KiB blocks differ
        (random blocks overwritten with random bytes, fixed seed), with
        ferry-recv --reuse.  The memory image has no copy there and goes in
        full.  A second configuration migrates only the disk image onto the
        same prepared destination: target 6 is about the disk image."""
        w1 = getattr(self, "w1_files", None)
        if not w1 or not all(os.path.isfile(p) for p, _ in w1):
            self.w1_files = w1 = self.guest_create(os.path.join(self.tmp, "w1"),
                                                   self.size(GiB, 4096),
                                                   self.size(2 * GiB, 65536), 101)
        disk, bsz = w1[1]
        disk_size = os.path.getsize(disk)
        name = os.path.basename(disk)
        # The destination's old copy, made once; copied into the emptied
        # destination directory before every run (not timed).
        old = os.path.join(self.tmp, "w5", name)
        os.makedirs(os.path.dirname(old), exist_ok=True)
        run_quiet(["cp", "--sparse=always", disk, old])
        nblk = disk_size // bsz
        rng = random.Random(self.W5_SEED)
        pick = sorted(rng.sample(range(nblk), (nblk * self.W5_PCT + 99) // 100))
        with open(old, "r+b") as f:
            for blk in pick:
                f.seek(blk * bsz)
                f.write(rng.randbytes(bsz))
        self.w5_changed, self.w5_blocks, self.w5_disk = len(pick), nblk, disk_size
        self.commands.setdefault("W5 destination (before every run)", [
            f"cp --sparse=always {shlex.quote(disk)} DEST/{name}; then {len(pick)} of its "
            f"{nblk} {bsz // 1024} KiB blocks (random.Random({self.W5_SEED}).sample) "
            f"overwritten with random bytes from the same generator"])
        self.notes.append(
            f"W5: the destination holds W1's disk image ({human(disk_size)}) with {len(pick)} of "
            f"its {nblk} {bsz // 1024} KiB blocks ({self.W5_PCT}%) overwritten with random bytes "
            f"(seed {self.W5_SEED}), restored before every run; ferry-recv --reuse; "
            f"'W5' migrates W1's memory and disk images (the memory image has no copy at the "
            f"destination), 'W5 disk only' the disk image alone (target 6)")

        def prepare(dest):
            run_quiet(["cp", "--sparse=always", old, os.path.join(dest, name)])
            os.sync()       # set-up writeback stays out of the timed run

        configs = [("W5", w1), ("W5 disk only", [w1[1]])]
        dest = os.path.join(self.tmp, "dest")
        results = {wl: [] for wl, _ in configs}
        errors = {wl: None for wl, _ in configs}
        for i in range(self.runs):
            for wl, files in configs:
                if errors[wl]:
                    continue
                self.log(f"{wl} run {i + 1}/{self.runs}: ferry --reuse")
                try:
                    res = self.ferry(files, dest, reuse=prepare)
                    reused = (res.get("ferry") or {}).get("units_reused")
                    res["units_reused"] = reused
                    if not reused:
                        raise RuntimeError(f"ferry-send reused no unit (units_reused {reused}): "
                                           "the destination's copy was not used")
                    results[wl].append(res)
                except Exception as ex:   # a failed configuration is reported, not fatal
                    errors[wl] = one_line(ex)
                    self.log(f"{wl} ferry: {ex}")
                finally:
                    kill_stragglers()
                    shutil.rmtree(dest, ignore_errors=True)
        shutil.rmtree(os.path.dirname(old), ignore_errors=True)
        for wl, files in configs:
            logical = sum(os.path.getsize(p) for p, _ in files)
            self.record(wl, "ferry", results[wl], logical,
                        {"error": errors[wl]} if errors[wl] else
                        {"disk_bytes": disk_size, "blocks": nblk, "blocks_changed": len(pick)})

    # -------------------------------------------------- Q1: a QEMU guest

    def q1(self):
        """QEMU's own migration (qemu-direct) against ferry carrying it
        (qemu-ferry), of the test guest (tests/qemu-guest/) booted on a
        memory-backend-file that holds the W1 memory image."""
        ram = max(64 * MiB, int(GiB * self.scale) // (2 * MiB) * (2 * MiB))
        movers = ["qemu-direct", "qemu-ferry"]
        qname = os.environ.get("FERRY_QEMU") or "qemu-system-x86_64"
        qemu = shutil.which(qname)
        kernel = os.path.join(self.build, "qemu-guest", "kernel.elf")
        why = None
        if not qemu:
            why = (f"skipped: {qname} not installed "
                   "(tools/install-deps installs qemu-system-x86)")
        elif not os.path.isfile(kernel):
            why = f"skipped: the test guest kernel {kernel} is missing (make builds it)"
        if why:
            self.notes.append("Q1: " + why)
            for m in movers:
                self.record("Q1", MOVER_NAMES[m], [], ram, {"error": why, "skipped": True})
            return
        self.qemu_bin, self.guest_kernel = qemu, kernel
        self.qmp = load_qmp()
        image, origin = self.q1_image(ram)
        self.notes.append(f"Q1: guest RAM {human(ram)}, {origin}")
        results = {m: [] for m in movers}
        errors = {m: None for m in movers}
        for i in range(self.runs):
            for m in movers:
                if errors[m]:
                    continue
                self.log(f"Q1 run {i + 1}/{self.runs}: {m}")
                pair = None
                try:
                    pair = self.qemu_pair(image, ram)
                    fn = self.qemu_direct if m == "qemu-direct" else self.qemu_ferry
                    results[m].append(fn(pair))
                except Exception as ex:   # a failed mover is reported, not fatal
                    errors[m] = one_line(ex)
                    self.log(f"Q1 {m}: {ex}")
                finally:
                    if pair:
                        pair.close()
                    kill_stragglers()
                    shutil.rmtree(os.path.join(self.tmp, "dest"), ignore_errors=True)
        shutil.rmtree(os.path.dirname(image), ignore_errors=True)
        for m in movers:
            self.record("Q1", MOVER_NAMES[m], results[m], ram,
                        {"error": errors[m]} if errors[m] else None)

    def q1_image(self, ram):
        """The W1 memory image at the guest's RAM size: W1's own file when
        W1 ran at this size, else made by the same command (ferry-guest
        create, seed 101, W1's disk size; the disk is removed)."""
        d = os.path.join(self.tmp, "q1img")
        w1 = getattr(self, "w1_files", None)
        if w1 and os.path.getsize(w1[0][0]) == ram:
            os.makedirs(d, exist_ok=True)
            path = os.path.join(d, "mem.img")
            run_quiet(["cp", "--sparse=always", w1[0][0], path])
            return path, "W1's memory image"
        files = self.guest_create(d, ram, self.size(2 * GiB, 65536), 101)
        for p, _ in files[1:]:
            os.unlink(p)
        if os.path.getsize(files[0][0]) != ram:
            raise RuntimeError(f"memory image is {os.path.getsize(files[0][0])} bytes, RAM {ram}")
        how = "W1's memory image (the same ferry-guest create command)" if \
            ram == self.size(GiB, 4096) else \
            "a W1-style memory image (ferry-guest create seed 101) at the RAM size, " \
            "larger than W1's at this scale"
        return files[0][0], how

    def qemu_argv(self, name, d, mem_path, ram, share, dest):
        mib = ram // MiB
        argv = [self.qemu_bin, "-machine", "q35,accel=tcg,memory-backend=ram", "-m", f"{mib}M",
                "-object", f"memory-backend-file,id=ram,size={mib}M,mem-path={mem_path},"
                f"share={'on' if share else 'off'}",
                "-kernel", self.guest_kernel, "-append", "nofill",
                "-display", "none", "-nodefaults", "-no-user-config", "-net", "none",
                "-monitor", "none", "-serial", f"file:{d}/{name}.serial",
                "-qmp", f"unix:{d}/{name}.qmp,server=on,wait=off",
                "-qmp", f"unix:{d}/{name}.fqmp,server=on,wait=off"]
        if dest:
            argv += ["-incoming", "defer", "-S"]
        return argv

    def qemu_pair(self, image, ram):
        """A source QEMU on a private copy of the image, its guest running
        (state 2 of its status block), and a destination QEMU on a fresh
        sparse file (-incoming defer -S)."""
        d = os.path.join(self.tmp, "q")
        rm_rf_contents(d)
        if len(f"{d}/src.fqmp") > 100:
            raise RuntimeError(f"work directory {d} too long for a unix socket path (use --tmp)")
        pair = QemuPair(d)
        try:
            src_mem, dst_mem = f"{d}/src-mem.img", f"{d}/dst-mem.img"
            run_quiet(["cp", "--sparse=always", image, src_mem])
            with open(dst_mem, "wb") as f:
                f.truncate(ram)
            for name, mem, dest in (("src", src_mem, False), ("dst", dst_mem, True)):
                argv = self.qemu_argv(name, d, mem, ram, share=not dest, dest=dest)
                self.commands.setdefault(f"Q1 {name} QEMU", [shlex.join(argv)])
                log = open(f"{d}/{name}.log", "w")
                pr = Proc(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
                log.close()
                pair.procs.append(pr)
            qs = []
            for name, pr in zip(("src", "dst"), pair.procs):
                sock = f"{d}/{name}.qmp"

                def connect():      # the socket may exist before QEMU listens
                    try:
                        qs.append(self.qmp.Qmp(sock, 60.0))
                        return True
                    except (OSError, RuntimeError):
                        return False
                wait_for(connect, 20, f"QEMU {name} start (QMP)", [pr])
            pair.src, pair.dst = qs
            pair.src_fqmp, pair.dst_fqmp = f"{d}/src.fqmp", f"{d}/dst.fqmp"
            wait_for(lambda: self.qmp.status(pair.src)["state"] == 2, 20,
                     "the source guest reaches state 2", pair.procs)
            st = self.qmp.status(pair.src)
            if st["filled"] != 0 or st["fill_end"] != st["fill_start"]:
                raise RuntimeError(f"the guest filled its RAM (no 'nofill'?): {st}")
            # The destination reports the end of its incoming migration as
            # a MIGRATION event (timestamped by QEMU): capability "events",
            # which does not change the stream.
            pair.dst.cmd("migrate-set-capabilities", {"capabilities": [
                {"capability": "events", "state": True}]})
            self.commands.setdefault("Q1 QMP, destination (both movers)", [
                '{"execute": "migrate-set-capabilities", "arguments": {"capabilities": '
                '[{"capability": "events", "state": true}]}}'])
            time.sleep(0.3)         # the guest rewrites its pages before the move
            return pair
        except Exception:
            pair.close()
            raise

    def qemu_figures(self, pair, res):
        """QEMU's own figures from the source's query-migrate (after the
        move), and the bench's downtime: the source's STOP event to the
        destination's MIGRATION completed event (QEMU's timestamps)."""
        st = pair.src.cmd("query-migrate")
        pair.dst.cmd("query-migrate")       # reads the events queued meanwhile
        ram = st.get("ram", {})
        res.update({"qemu_status": st.get("status"), "qemu_total_ms": st.get("total-time"),
                    "qemu_downtime_ms": st.get("downtime"), "qemu_setup_ms": st.get("setup-time"),
                    "qemu_transferred": ram.get("transferred"),
                    "qemu_syncs": ram.get("dirty-sync-count"),
                    "qemu_normal": ram.get("normal"), "qemu_zero": ram.get("duplicate")})

        def ts(ev):
            t = ev.get("timestamp", {})
            return t.get("seconds", 0) + t.get("microseconds", 0) / 1e6
        stop = [ts(e) for e in pair.src.events if e.get("event") == "STOP"]
        done = [ts(e) for e in pair.dst.events if e.get("event") == "MIGRATION" and
                e.get("data", {}).get("status") == "completed"]
        res["downtime_ms"] = (done[0] - stop[0]) * 1000 if stop and done else None
        if res["qemu_status"] != "completed":
            raise RuntimeError(f"source QEMU's migration: {st}")
        if not done:
            raise RuntimeError("the destination QEMU did not report completed")
        # The guest arrived: its status block on the (paused) destination.
        gs = self.qmp.status(pair.dst)
        if not gs["magic_ok"] or gs["state"] != 2 or gs["counter"] == 0:
            raise RuntimeError(f"the destination guest's status block is wrong: {gs}")
        return res

    def qemu_direct(self, pair):
        """QEMU's own migration over tcp:127.0.0.1, with the migration
        parameters ferry-send sets (max-bandwidth, downtime-limit)."""
        inc = self.qmp.incoming(pair.dst, "tcp:127.0.0.1:0")
        if "port" not in inc:
            raise RuntimeError("the destination QEMU did not say its port")
        params = {"max-bandwidth": QEMU_MAX_BANDWIDTH, "downtime-limit": QEMU_DOWNTIME_MS}
        pair.src.cmd("migrate-set-parameters", params)
        self.commands.setdefault("Q1 QMP, qemu-direct", [
            '# destination: ' + json.dumps({"execute": "migrate-incoming",
                                            "arguments": {"uri": "tcp:127.0.0.1:0"}}),
            '# source: ' + json.dumps({"execute": "migrate-set-parameters", "arguments": params}),
            '# source: ' + json.dumps({"execute": "migrate",
                                       "arguments": {"uri": "tcp:127.0.0.1:PORT"}}),
            "# then query-migrate on both every 20 ms until both say completed"])
        cpu0 = pair.cpu()
        lo0 = lo_bytes() if self.netns else None
        t0 = time.monotonic()
        pair.src.cmd("migrate", {"uri": f"tcp:127.0.0.1:{inc['port']}"})
        deadline = t0 + self.timeout
        src_done = dst_done = None
        while src_done is None or dst_done is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"qemu-direct: not completed within {self.timeout:.0f} s")
            for q, which in ((pair.src, "source"), (pair.dst, "destination")):
                if (src_done if q is pair.src else dst_done) is not None:
                    continue
                st = q.cmd("query-migrate").get("status")
                if st == "completed":
                    if q is pair.src:
                        src_done = time.monotonic()
                    else:
                        dst_done = time.monotonic()
                elif st in ("failed", "cancelled"):
                    raise RuntimeError(f"qemu-direct: the {which}'s migration {st}")
            for pr in pair.procs:
                if not pr.alive():
                    raise RuntimeError(f"qemu-direct: QEMU exited with {pr.status}")
            time.sleep(0.02)
        lo1 = lo_bytes() if self.netns else None
        res = {"wall_s": max(src_done, dst_done) - t0,
               "wire_bytes": (lo1 - lo0) if lo0 is not None else None}
        self.qemu_cpu(res, cpu0, pair.cpu())
        return self.qemu_figures(pair, res)

    @staticmethod
    def qemu_cpu(res, cpu0, cpu1):
        for k, a, b in zip(("qemu_cpu_src_s", "qemu_cpu_dst_s"), cpu0, cpu1):
            res[k] = b - a if a is not None and b is not None else None

    def qemu_ferry(self, pair):
        dest = os.path.join(self.tmp, "dest")
        cpu0 = pair.cpu()
        res = self.ferry([], dest, qemu={"src": pair.src_fqmp, "dst": pair.dst_fqmp})
        self.qemu_cpu(res, cpu0, pair.cpu())
        fd = res.get("ferry") or {}
        res["measured_downtime_ms"] = fd.get("measured_downtime_ms")
        res["ferry_qemu"] = fd.get("qemu")
        res = self.qemu_figures(pair, res)
        if self.qmp.wait_migration(pair.dst, 10).get("status") != "completed":
            raise RuntimeError("qemu-ferry: the destination QEMU did not complete")
        return res

    def movers(self):
        m = ["ferry"]
        if self.have_socat:
            m.append("socat")
        if self.have_rsync:
            m.append("rsync")
        return m


def phases(ev, done):
    """Where a ferry run's time went, from ferry-send's JSON events: from
    its first event to the start of round 1 (TLS, HELLO, pre-flight; with
    ferry-recv --reuse also the receiver's copying and hashing of the old
    images), round 1, the later pre-copy rounds, the final round (guest
    paused), and from the end of the final round to "done" (COMMIT, the
    receiver's checks, fsync, rename, COMMITTED).  Seconds."""
    rounds = [e for e in ev if e.get("event") == "round"]
    if not rounds:
        return None
    sw = [e for e in ev if e.get("event") == "state" and e.get("state") == "switchover"]
    final = [r for r in rounds if sw and r["ts_ms"] >= sw[0]["ts_ms"]]
    pre = [r for r in rounds if r not in final]
    return {
        "start_s": max(0, rounds[0]["ts_ms"] - rounds[0]["duration_ms"] - ev[0]["ts_ms"]) / 1000,
        "round1_s": rounds[0]["duration_ms"] / 1000,
        "later_s": sum(r["duration_ms"] for r in pre[1:]) / 1000,
        "later_n": len(pre[1:]),
        "final_s": sum(r["duration_ms"] for r in final) / 1000,
        "commit_s": (done["ts_ms"] - rounds[-1]["ts_ms"]) / 1000,
    }


MOVER_NAMES = {"ferry": "ferry", "rsync": "rsync -a over ssh", "socat": "tar+lz4+socat TLS",
               "qemu-direct": "qemu-direct", "qemu-ferry": "qemu-ferry"}

# ---------------------------------------------------------------- report


# Per-run figures of the Q1 rows (qemu_figures(), qemu_ferry()).
Q_KEYS = ("qemu_total_ms", "qemu_downtime_ms", "qemu_setup_ms", "qemu_transferred", "qemu_syncs",
          "measured_downtime_ms", "qemu_cpu_src_s", "qemu_cpu_dst_s")


def summarize(row):
    runs = row["runs"]
    s = {}
    for k in ("wall_s", "cpu_send_s", "cpu_recv_s", "rss_send", "rss_recv", "wire_bytes",
              "downtime_ms", "anon_send", "anon_recv") + Q_KEYS:
        s[k] = med([r.get(k) for r in runs])
    s["rounds"] = med([r["ferry"]["rounds"] for r in runs if "ferry" in r])
    s["units_reused"] = med([r.get("units_reused") for r in runs])
    s["ferry_wire"] = med([r["ferry"]["wire_bytes"] for r in runs if "ferry" in r])
    s["ferry_downtime"] = med([r["ferry"]["downtime_ms"] for r in runs if "ferry" in r])
    wire = s["wire_bytes"][0] if s["wire_bytes"][0] is not None else s["ferry_wire"][0]
    s["wire"] = wire
    s["wire_src"] = "lo" if s["wire_bytes"][0] is not None else ("ferry" if wire else None)
    w = s["wall_s"][0]
    s["mbps"] = row["logical_bytes"] / w / 1e6 if w else None
    s["ratio"] = wire / row["logical_bytes"] if wire is not None else None
    s["limit_pct"] = 100 * row["limit_s"] / w if row.get("limit_s") and w else None
    row["summary"] = s
    return s


def mm(t, f="{:.2f}"):
    m, lo, hi = t
    if m is None:
        return "-"
    return f"{f.format(m)} [{f.format(lo)}-{f.format(hi)}]"


def table(rows):
    head = ["workload", "mover", "size", "runs", "wall s (median [min-max])", "logical MB/s", "wire MB",
            "wire/logical", "CPU s send", "CPU s recv", "peak RSS send MiB", "peak RSS recv MiB",
            "% of limit", "rounds", "downtime ms (bench)", "downtime ms (ferry)"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        if row.get("error"):
            out.append(f"| {row['workload']} | {row['mover']} | {human(row['logical_bytes'])} | "
                       f"{len(row['runs'])} | {row['error'][:200]} |" + " |" * (len(head) - 5))
            continue
        s = row["summary"]
        cells = [row["workload"], row["mover"], human(row["logical_bytes"]), str(len(row["runs"])),
                 mm(s["wall_s"]),
                 f"{s['mbps']:.0f}" if s["mbps"] else "-",
                 f"{s['wire'] / 1e6:.1f}" if s["wire"] is not None else "-",
                 f"{s['ratio']:.3f}" if s["ratio"] is not None else "-",
                 mm(s["cpu_send_s"]), mm(s["cpu_recv_s"]),
                 mm(tuple(None if v is None else v / MiB for v in s["rss_send"]), "{:.0f}"),
                 mm(tuple(None if v is None else v / MiB for v in s["rss_recv"]), "{:.0f}"),
                 f"{s['limit_pct']:.0f}%" if s["limit_pct"] else "-",
                 mm(s["rounds"], "{:.0f}") if row["mover"] == "ferry" else "-",
                 mm(s["downtime_ms"], "{:.0f}") if row["workload"] in ("W2", "Q1") else "-",
                 mm(s["ferry_downtime"], "{:.0f}") if row["workload"] == "W2" else
                 mm(s["measured_downtime_ms"], "{:.0f}") if row["workload"] == "Q1" else "-"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def q_table(rows):
    """The Q1 rows with QEMU's own figures; None when Q1 did not run."""
    q = [r for r in rows if r["workload"] == "Q1"]
    if not q:
        return None
    head = ["mover", "runs", "wall s", "QEMU total-time ms", "QEMU downtime ms",
            "downtime ms (bench: source STOP to destination completed)",
            "ferry measured_downtime_ms", "wire MB (loopback)", "QEMU ram transferred MB",
            "ferry wire_bytes MB", "QEMU dirty syncs", "CPU s QEMU source", "CPU s QEMU destination",
            "CPU s ferry send/recv"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in q:
        if row.get("error"):
            out.append(f"| {row['mover']} | {len(row['runs'])} | {row['error'][:200]} |" +
                       " |" * (len(head) - 3))
            continue
        s = row["summary"]

        def mb(t):
            return mm(tuple(None if v is None else v / 1e6 for v in t), "{:.1f}")
        out.append("| " + " | ".join([
            row["mover"], str(len(row["runs"])), mm(s["wall_s"]),
            mm(s["qemu_total_ms"], "{:.0f}"), mm(s["qemu_downtime_ms"], "{:.0f}"),
            mm(s["downtime_ms"], "{:.0f}"), mm(s["measured_downtime_ms"], "{:.0f}"),
            mb(s["wire_bytes"]), mb(s["qemu_transferred"]), mb(s["ferry_wire"]),
            mm(s["qemu_syncs"], "{:.0f}"), mm(s["qemu_cpu_src_s"]), mm(s["qemu_cpu_dst_s"]),
            "-" if s["cpu_send_s"][0] is None else
            f"{s['cpu_send_s'][0]:.2f}/{s['cpu_recv_s'][0]:.2f}"]) + " |")
    return "\n".join(out)


def target7(rows, get):
    """Target 7: ferry carrying QEMU against QEMU's own migration (Q1)."""
    d, f = get("Q1", MOVER_NAMES["qemu-direct"]), get("Q1", MOVER_NAMES["qemu-ferry"])
    qrows = [r for r in rows.values() if r["workload"] == "Q1"]
    skipped = [r for r in qrows if r.get("skipped")]
    if skipped:
        return ("7", "SKIP", "Q1 against QEMU's own migration: " + skipped[0]["error"])
    if not (d and f):
        errs = [f"{r['mover']}: {r['error']}" for r in qrows if r.get("error")]
        return ("7", "FAIL", "Q1 against QEMU's own migration: not measured" +
                (" (" + "; ".join(errs)[:300] + ")" if errs else " (Q1 not run)"))
    dw = d["wire"]
    fw = f["wire_bytes"][0] if d["wire_src"] == "lo" else f["ferry_wire"][0]
    if d["wire_src"] != "lo":
        dw = d["qemu_transferred"][0]       # no private namespace: QEMU's own count
    src = "loopback bytes" if d["wire_src"] == "lo" else \
        "ferry's wire_bytes vs QEMU's ram transferred (no private namespace)"
    dt, ft = d["qemu_total_ms"][0], f["qemu_total_ms"][0]
    dwall, fwall = d["wall_s"][0], f["wall_s"][0]
    if not fw or not dw or dt is None or ft is None:
        return ("7", "FAIL", f"Q1 against QEMU's own migration: figures missing (wire {fw} vs "
                f"{dw}, QEMU total-time {ft} vs {dt})")
    ok_w = fw <= 0.6 * dw
    ok_t = dt is not None and ft is not None and ft <= dt
    ok_wall = fwall <= dwall
    text = (f"Q1 wire ({src}): qemu-ferry {fw / 1e6:.1f} MB vs qemu-direct {dw / 1e6:.1f} MB = "
            f"{fw / dw:.2f}x (target <= 0.60x: {'ok' if ok_w else 'no'}); QEMU total-time: "
            f"qemu-ferry {ft:.0f} ms vs qemu-direct {dt:.0f} ms ({'ok' if ok_t else 'longer'}); "
            f"wall of the whole move: qemu-ferry {fwall:.2f} s vs qemu-direct {dwall:.2f} s "
            f"({'ok' if ok_wall else 'longer'}) (target: neither longer)")
    return ("7", "PASS" if ok_w and ok_t and ok_wall else "FAIL", text)


def target6(rows, get):
    """Target 6: W5, a return trip with ferry-recv --reuse.  The target is
    about the disk image, so it uses the 'W5 disk only' row (the disk image
    alone onto the prepared destination); the W5 row (memory and disk
    images) is shown beside it."""
    d, full = get("W5 disk only"), get("W5")
    rd, rf = rows.get(("W5 disk only", "ferry")), rows.get(("W5", "ferry"))
    if not d:
        errs = [f"{w}: {r['error']}" for w, r in (("W5 disk only", rd), ("W5", rf))
                if r and r.get("error")]
        return ("6", "FAIL", "W5 wire bytes <= 8% of the disk image: not measured" +
                (" (" + "; ".join(errs)[:300] + ")" if errs else " (W5 not run)"))
    src = "loopback bytes" if d["wire_src"] == "lo" else "ferry's wire_bytes"
    disk = rd["logical_bytes"]
    w, lo, hi = d["wire_bytes"] if d["wire_src"] == "lo" else d["ferry_wire"]
    pct = 100 * w / disk
    text = (f"W5 disk only (ferry-recv --reuse, the disk image alone; {rd['blocks_changed']} of "
            f"{rd['blocks']} blocks differ at the destination): wire ({src}) {w / 1e6:.1f} MB "
            f"[{lo / 1e6:.1f}-{hi / 1e6:.1f}] = {pct:.2f}% of the {human(disk)} disk image "
            f"(target <= 8%), wall {d['wall_s'][0]:.2f} s, "
            f"{d['units_reused'][0]:.0f} blocks reused")
    if full:
        text += (f"; W5 with the memory image too: wire {full['wire'] / 1e6:.1f} MB for "
                 f"{human(rf['logical_bytes'])}, wall {full['wall_s'][0]:.2f} s")
    return ("6", "PASS" if pct <= 8 else "FAIL", text)


def targets(b):
    rows = {(r["workload"], r["mover"]): r for r in b.rows}
    res = []

    def get(wl, mover="ferry"):
        r = rows.get((wl, mover))
        if r is None or r.get("error") or not r["runs"]:
            return None
        return r["summary"]

    def add(tid, text, ok):
        res.append((tid, "PASS" if ok else "FAIL", text))

    f1 = get("W1")
    bases = [(get("W1", MOVER_NAMES[m]), MOVER_NAMES[m]) for m in ("rsync", "socat")]
    bases = [(s, n) for s, n in bases if s]
    if f1 and bases:
        best, name = min(bases, key=lambda x: x[0]["wall_s"][0])
        fw, bw = f1["wall_s"][0], best["wall_s"][0]
        add("1a", f"W1 wall: ferry {fw:.2f} s vs best baseline {name} {bw:.2f} s = "
            f"{fw / bw:.2f}x (target <= 0.50x)", fw <= 0.5 * bw)
    else:
        add("1a", "W1 wall vs best baseline: not measured (ferry or every baseline failed)", False)
    if f1 and f1["ratio"] is not None:
        add("1b", f"W1 wire/logical: ferry {f1['ratio']:.3f} (target <= 0.30)", f1["ratio"] <= 0.30)
    else:
        add("1b", "W1 wire/logical: not measured", False)
    c = b.components.get("W1")
    if f1 and c:
        pct = 100 * c["limit_s"] / f1["wall_s"][0]
        add("2", f"W1 component limit: {c['limit_s']:.2f} s, ferry {f1['wall_s'][0]:.2f} s = "
            f"{pct:.0f}% of the limit (target >= 67%, i.e. within 1.5x)", pct >= 66.67)
    else:
        add("2", "W1 component limit: not measured", False)
    f2 = get("W2")
    if f2:
        rd = f2["rounds"]
        add("3a", f"W2 rounds: median {rd[0]:.0f} [{rd[1]:.0f}-{rd[2]:.0f}] (target <= 10)",
            rd[2] <= 10)
        dt = f2["downtime_ms"]
        if dt[0] is not None:
            add("3b", f"W2 downtime measured by the bench: median {dt[0]:.0f} ms "
                f"[{dt[1]:.0f}-{dt[2]:.0f}] (target <= 300 ms)", dt[0] <= 300)
        else:
            add("3b", "W2 downtime: pause or commit not seen", False)
    else:
        add("3a", "W2 rounds: not measured (" + (rows.get(("W2", "ferry")) or {}).get(
            "error", "no run")[:120] + ")", False)
        add("3b", "W2 downtime: not measured", False)
    f3, s3 = get("W3"), get("W3", MOVER_NAMES["socat"])
    if f3 and s3:
        q = f3["mbps"] / s3["mbps"]
        add("4", f"W3 throughput: ferry {f3['mbps']:.0f} MB/s vs lz4+socat TLS {s3['mbps']:.0f} MB/s"
            f" = {q:.2f}x (target >= 0.80x)", q >= 0.8)
    else:
        add("4", "W3 throughput: not measured", False)
    small, big = get("W4 256 MiB"), get("W4 4 GiB")
    if small and big:
        r_small = rows[("W4 256 MiB", "ferry")]
        r_big = rows[("W4 4 GiB", "ferry")]
        spg_s = small["wall_s"][0] / (r_small["logical_bytes"] / GiB)
        spg_b = big["wall_s"][0] / (r_big["logical_bytes"] / GiB)
        add("5a", f"W4 seconds per GiB: {spg_b:.2f} at 4 GiB vs {spg_s:.2f} at 256 MiB = "
            f"{spg_b / spg_s:.2f}x (target <= 1.15x)", spg_b <= 1.15 * spg_s)
        rr, rs = big["rss_recv"][2] / MiB, big["rss_send"][2] / MiB
        add("5b", f"W4 4 GiB receiver peak RSS: {rr:.0f} MiB (largest of the runs; target < 96 MiB)",
            rr < 96)
        add("5c", f"W4 4 GiB sender peak RSS: {rs:.0f} MiB (largest of the runs; target < 128 MiB)",
            rs < 128)
    else:
        add("5a", "W4 scaling: not measured", False)
        add("5b", "W4 receiver peak RSS: not measured", False)
        add("5c", "W4 sender peak RSS: not measured", False)
    res.append(target6(rows, get))
    res.append(target7(rows, get))
    return res


def report(b, tgts, started, elapsed):
    lines = []
    scale_note = "" if b.scale == 1 else f" (SCALED by {b.scale:g}: smoke sizes, targets not meaningful)"
    lines.append("# ferry benchmark results" + scale_note)
    lines.append("")
    lines.append("Written by `make bench` (tools/bench/bench.py); do not edit by hand.")
    lines.append("")
    lines.append("## Machine and run")
    lines.append("")
    lines.append(f"- date: {started.strftime('%Y-%m-%d %H:%M:%S %Z').strip()}, bench took "
                 f"{elapsed / 60:.1f} min")
    lines.append(f"- machine: {os.cpu_count()} cores (`nproc`: {run_nproc()}), CPU model "
                 f"`{cpu_model()}`, {mem_total()} RAM, kernel {platform.release()}")
    lines.append(f"- ferry: `{git_rev()}`; runs per figure: {b.runs} (median [min-max]), "
                 f"movers interleaved run by run, each after a `sync` (no set-up writeback "
                 f"in a timed run); scale {b.scale:g}")
    lines.append(f"- loopback in a private network namespace: {'yes' if b.netns else 'no'}; "
                 "the machine is shared with other engineers' tests, which adds noise")
    for n in b.notes:
        lines.append(f"- note: {n}")
    lines.append("")
    lines.append("## Results")
    lines.append("")
    lines.append(table(b.rows))
    lines.append("")
    lines.append("Peak memory of ferry's processes: VmHWM (all resident pages, including the "
                 "pages of image files a process maps) and the largest anonymous RSS "
                 "(RssAnon, sampled every 100 ms), median of the runs, MiB:")
    lines.append("")
    lines.append("| workload | size | sender VmHWM | sender RssAnon | receiver VmHWM | receiver RssAnon |")
    lines.append("|---|---|---|---|---|---|")
    for row in b.rows:
        if row["mover"] != "ferry" or row.get("error") or not row["runs"]:
            continue
        s = row["summary"]
        f = [("-" if s[k][0] is None else f"{s[k][0] / MiB:.0f}")
             for k in ("rss_send", "anon_send", "rss_recv", "anon_recv")]
        lines.append(f"| {row['workload']} | {human(row['logical_bytes'])} | " + " | ".join(f) + " |")
    lines.append("")
    lines.append("Where ferry's wall time goes, from ferry-send's `round` and `state` events "
                 "(medians, seconds): before round 1 is from ferry-send's first event (TLS, "
                 "HELLO, pre-flight; in W5 also the receiver copying and hashing its old "
                 "disk image); round 1 sends everything; each later pre-copy round "
                 "re-reads and re-hashes every unit; the final round runs with the guest paused; "
                 "commit is from the end of the final round to `done` (COMMIT, the receiver's "
                 "digest check, fsync, rename, COMMITTED):")
    lines.append("")
    lines.append("| workload | size | wall | before round 1 | round 1 | round 1 logical MB/s "
                 "| later rounds (how many) | final round | commit |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for row in b.rows:
        if row["mover"] != "ferry" or row.get("error") or not row["runs"]:
            continue
        ph = [r.get("phases") for r in row["runs"] if r.get("phases")]
        if not ph:
            continue
        m = {k: statistics.median(p[k] for p in ph) for k in ph[0]}
        lines.append(f"| {row['workload']} | {human(row['logical_bytes'])} | "
                     f"{row['summary']['wall_s'][0]:.2f} | {m['start_s']:.2f} | "
                     f"{m['round1_s']:.2f} | "
                     f"{row['logical_bytes'] / m['round1_s'] / 1e6:.0f} | "
                     f"{m['later_s']:.2f} ({m['later_n']:.0f}) | {m['final_s']:.2f} | "
                     f"{m['commit_s']:.2f} |")
    lines.append("")
    qt = q_table(b.rows)
    if qt:
        lines.append("Q1, QEMU's own migration (qemu-direct) against ferry carrying it "
                     "(qemu-ferry), medians [min-max]; QEMU's figures are the source's "
                     "`query-migrate` after the move (see How it is measured):")
        lines.append("")
        lines.append(qt)
        lines.append("")
    lines.append("## Targets")
    lines.append("")
    for tid, verdict, text in tgts:
        lines.append(f"- target {tid}: **{verdict}** {text}")
    lines.append("")
    lines.append("## Component limit (single core, same files, same run)")
    lines.append("")
    if b.components:
        lines.append("| workload | units (zero/dup/unique) | XXH3-128 GB/s | lz4 c GB/s | lz4 d GB/s "
                     "| AES-GCM enc/dec GB/s | memcpy GB/s | payload MB | CPU-s at least | "
                     "/ cores = limit s |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|")
        for name, c in b.components.items():
            lines.append(
                f"| {name} | {c['units_total']} ({c['units_zero']}/{c['units_dup']}/"
                f"{c['units_unique']}) | {c['hash_Bps'] / 1e9:.2f} | {c['lz4c_Bps'] / 1e9:.2f} | "
                f"{c['lz4d_Bps'] / 1e9:.2f} | {c['aes_enc_Bps'] / 1e9:.2f}/"
                f"{c['aes_dec_Bps'] / 1e9:.2f} | {c['memcpy_Bps'] / 1e9:.1f} | "
                f"{c['payload_bytes'] / 1e6:.0f} | {c['cpu_s']:.2f} | {c['limit_s']:.2f} |")
        c = b.components.get("W1") or next(iter(b.components.values()))
        name = "W1" if "W1" in b.components else next(iter(b.components))
        lines.append("")
        lines.append(f"Terms of the {name} limit (CPU-seconds):")
        lines.append("")
        for k, v in c["terms"].items():
            lines.append(f"- {k}: {v:.3f}")
        lines.append(f"- (not counted: one memcpy of the unique bytes into the destination's "
                     f"page cache, {c['copy_s']:.3f})")
    lines.append("")
    lines.append(METHOD)
    lines.append("## Exact commands")
    lines.append("")
    lines.append("```")
    for k, v in b.commands.items():
        lines.append(f"# {k}")
        for x in v:
            lines.append(x)
    lines.append("```")
    lines.append("")
    lines.append("Paths under the bench's temporary directory are shown as they were in this run.")
    return "\n".join(lines) + "\n"


METHOD = """## How it is measured

- **Workloads** (fixed seeds): W1 is `ferry-guest create` with a 1 GiB memory
  image and a 2 GiB disk image (seed 101, the standard mix); W2 is a fresh
  copy of W1 with `ferry-guest run` dirtying memory at 50 MiB/s and the disk
  at 5 MiB/s, started 1 s before the migration, marking what it changes in a
  dirty log that ferry-send reads (`--dirty-log`, proto/DIRTYLOG.md, as a
  hypervisor's dirty bitmap); W3 is 1 GiB of pseudo-random
  bytes (Python's `random.Random(303)`), migrated as a memory image; W4 are
  `ferry-guest create` memory images of 256 MiB, 1 GiB and 4 GiB (seed 404);
  W5 is a return trip: the destination directory already holds a copy of
  W1's disk image in which 5% of the 64 KiB blocks differ (blocks chosen by
  `random.Random(505).sample`, overwritten with random bytes from the same
  generator); the copy is made once, not timed, and copied into the emptied
  destination directory before every run (`cp --sparse=always`, not
  timed).  `ferry-recv` runs with `--reuse`, so the receiver's copying and
  hashing of the old image is inside the wall time.  Row `W5` migrates W1's
  memory and disk images (the memory image has no copy at the destination
  and goes in full); row `W5 disk only` migrates the disk image alone onto
  the same prepared destination, and target 6 uses its median wire bytes
  against the disk image's size.
- **Q1, a QEMU guest** (target 7): QEMU (`qemu-system-x86_64`, q35, TCG,
  one vCPU, `-nodefaults`) boots the test guest kernel
  (`tests/qemu-guest/kernel.c`) with `-append nofill` on a
  `memory-backend-file` (`share=on`) that is a private copy of the W1 memory
  image (W1's own file, or the same `ferry-guest create` command; 1 GiB,
  scaled as `max(64 MiB, 1 GiB x scale)` rounded down to 2 MiB).  The guest
  does not fill its RAM: it keeps the image, except what the firmware, the
  loader and the kernel overwrite at boot (below 1 MiB, the kernel at 1 MiB
  and its status block, tables at the top: a few hundred pages), and
  rewrites a word of 1024 rotating pages from 2 MiB in a loop, so pre-copy
  has pages to send again.  The destination QEMU has the same
  arguments on a fresh sparse file (`share=off`) plus `-incoming defer -S`.
  Every run boots a fresh pair from a fresh copy; movers interleaved.
  `qemu-direct` is QEMU's own migration: `migrate-incoming tcp:127.0.0.1:0`
  on the destination, `migrate tcp:127.0.0.1:PORT` on the source, with the
  parameters `ferry-send` sets (`max-bandwidth` 100 GiB/s, `downtime-limit`
  300 ms, QEMU's default), so that only the transport differs; `return-path`
  stays off (QEMU's default; `ferry-send` turns it on).  `qemu-ferry` is
  `ferry-recv --qemu-qmp` and `ferry-send --qemu-qmp` over TLS (each QEMU has
  a second QMP socket for ferry).  Wall seconds: `qemu-direct` from the
  `migrate` command until `query-migrate` (polled every 20 ms) says completed
  on both QEMUs; `qemu-ferry` as for ferry above (start of ferry-send until
  both ferry processes exited, COMMITTED included).  Wire bytes: the
  loopback counter as above; QEMU's `total-time`, `downtime`, `ram
  transferred` and `dirty-sync-count` come from the source's `query-migrate`
  after the move (for `qemu-ferry` they equal the `done` event's `qemu`
  figures).  Downtime (bench): QEMU's own timestamps of the source's `STOP`
  event and of the destination's `MIGRATION` event with status `completed`
  (the bench turns the destination's `events` capability on; it does not
  change the stream), i.e. until the destination holds the whole guest; the
  "downtime ms (ferry)" column of `qemu-ferry` is ferry-send's
  `measured_downtime_ms` (STOP to COMMITTED).  CPU and peak RSS of
  `qemu-ferry` are ferry's two processes only; `qemu-direct` shows `-`.  The
  Q1 table adds each QEMU's CPU seconds during the move (all its threads,
  `/proc/PID/stat`; the source's include its vCPU, which spins under TCG).  Target 7 PASSes when ferry's wire
  bytes are at most 0.6 x QEMU's own and neither QEMU's `total-time` on the
  source nor the wall time of the whole move is longer with ferry (medians).
- **Wall seconds**: from starting the source side until every process of the
  transfer (both sides) has exited.  The receiving side is started and
  listening before the clock starts.  ferry's receiver runs with `--once`.
- **Logical MB/s**: the workload's apparent file sizes (10^6 bytes) divided by
  the wall time, the same for every mover.
- **Wire bytes**: bytes sent on the loopback interface during the transfer,
  from `/proc/net/dev` of the bench's private network namespace (both
  directions, IP and TCP headers, ACKs and TLS included).  Without a private
  namespace (not root) ferry's own `wire_bytes` is used and the baselines
  show `-`.
- **CPU seconds and peak RSS of each side**: `wait4()` of each process the
  bench starts (user + sys, including the children it reaped, as
  `/usr/bin/time` does).  A side made of several processes (the tar | lz4 |
  socat pipelines, sshd with its session and rsync server) adds up their
  peaks, since they run at the same time; descendants the bench did not start
  directly are sampled every 100 ms from `/proc/PID/status` (VmHWM).  Source
  files are mapped or read from the page cache; peak RSS counts file pages a
  process maps.
- **Downtime (bench)**, W2: the guest is a child of the bench; a thread
  blocked in `waitid(WSTOPPED)` gets the kernel's notification when ferry-send
  stops it with SIGSTOP.  The receiver runs `--on-commit 'printf x > FIFO'`:
  the moment the destination would start the guest.  The bench's thread in
  `select()` on that FIFO takes the second timestamp.  Downtime is the
  difference (CLOCK_MONOTONIC), so it includes starting the hook's shell
  (about 1 ms), as a real resume would.  ferry's own `downtime_ms` (pause to
  COMMITTED on the sender) is shown beside it.
- **Rounds**: ferry's `rounds` from the `done` event.
- **Baselines**: `rsync -a` (no `-S`, whole files) through ssh's default
  cipher to a throwaway `sshd -d` on a loopback port with its own host key,
  client key and config in the temporary directory; `tar c | lz4 -1 | socat`
  with OpenSSL (TLS 1.3, mutual certificates made by `tools/ferry-certs`, the
  same as ferry's, `verify=1`, 128 KiB buffers) into `socat | lz4 -d | tar x`.
  Neither baseline fsyncs its output; ferry fsyncs the destination files
  before COMMITTED.  The destination directory is emptied after every run.
- **Component limit**: `build/bench-components` classifies the workload's
  units as the sender does (zero test, keyed XXH3-128 with ferry's
  `page_hash()`, dedupe by hash) and times, on one core (thread CPU time,
  median of the runs), XXH3-128 and lz4 level 1 (ferry's `codec_lz4_encode`,
  kept when it shrinks) of the unique non-zero units, lz4 decompression of
  those, and memcpy.  AES-128-GCM encrypt and decrypt speeds come from
  `openssl speed -evp aes-128-gcm -bytes 16384` (CPU time).  The CPU-seconds
  the workload must cost at the least are: the sender's classification, its
  lz4 compression, AES-GCM encryption of the payload (lz4 output, or the raw
  unit when lz4 does not shrink it) and the receiver's decryption, lz4
  decompression and hashing of every non-zero unit it writes (the digest
  check at commit).  The limit is that sum divided by the machine's cores;
  ferry's "% of limit" is limit / wall.  Kernel time (TCP on loopback,
  writing the destination files, fsync) is not in the limit.

"""


def run_nproc():
    try:
        return subprocess.run(["nproc"], stdout=subprocess.PIPE, text=True).stdout.strip()
    except OSError:
        return "?"


def mem_total():
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        return f"{kb / (1 << 20):.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "?"


def git_rev():
    try:
        r = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        return r.stdout.strip() or "?"
    except OSError:
        return "?"


# ---------------------------------------------------------------- main


WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "Q1")


def parse_scale(s):
    if "/" in s:
        a, b = s.split("/", 1)
        return float(a) / float(b)
    return float(s)


def main():
    ap = argparse.ArgumentParser(
        description="ferry's benchmark (issue 7): ferry against rsync over ssh and a "
        "tar | lz4 | socat TLS pipe on loopback, with the component limit.  Every option "
        "also comes from the environment variable named in its help.")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS") or 3),
                    help="runs per figure, median with min-max (BENCH_RUNS, default 3)")
    ap.add_argument("--scale", type=parse_scale,
                    default=parse_scale(os.environ.get("BENCH_SCALE") or "1"),
                    help="multiply every size and dirty rate by this, e.g. 1/64 "
                    "(BENCH_SCALE, default 1)")
    ap.add_argument("--only", default=os.environ.get("BENCH_ONLY") or ",".join(WORKLOADS),
                    help="workloads to run (BENCH_ONLY, default " + ",".join(WORKLOADS) + ")")
    ap.add_argument("--out", default=os.environ.get("BENCH_OUT"),
                    help="report file (BENCH_OUT; default tools/bench/RESULTS.md at scale 1 "
                    "with every workload, none otherwise)")
    ap.add_argument("--json", dest="json_out", default=None,
                    help="also write every measurement as JSON to this file")
    ap.add_argument("--build", default=os.environ.get("BUILD") or "build",
                    help="directory of ferry's binaries and bench-components (BUILD, default build)")
    ap.add_argument("--tmp", default=os.environ.get("BENCH_TMP") or os.environ.get("TMPDIR") or "/tmp",
                    help="parent of the work directory (BENCH_TMP or TMPDIR, default /tmp)")
    ap.add_argument("--strict", action="store_true", default=os.environ.get("BENCH_STRICT") == "1",
                    help="exit 1 when a target FAILs (BENCH_STRICT=1)")
    ap.add_argument("--no-netns", action="store_true",
                    help="stay in the current network namespace (wire bytes of the baselines "
                    "are then not measured)")
    a = ap.parse_args()
    if a.runs < 1 or a.runs > 50:
        die("--runs must be 1..50")
    if not 0 < a.scale <= 4:
        die("--scale must be in (0, 4]")
    a.build = os.path.abspath(a.build)
    wanted = [w.strip().upper() for w in a.only.split(",") if w.strip()]
    for w in wanted:
        if w not in WORKLOADS:
            die(f"--only: unknown workload '{w}'")
    if a.out is None and a.scale == 1 and set(wanted) == set(WORKLOADS):
        a.out = os.path.join(REPO, "tools/bench/RESULTS.md")

    # A private network namespace: the loopback counters are then ours alone.
    if os.environ.get("BENCH_IN_NETNS") is None and not a.no_netns and os.getuid() == 0 \
            and shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(["unshare", "--net", "true"], stderr=subprocess.DEVNULL)
        if probe.returncode == 0:
            os.environ["BENCH_IN_NETNS"] = "1"
            os.execvp("unshare", ["unshare", "--net", "--", sys.executable,
                                  os.path.abspath(__file__)] + sys.argv[1:])
    if os.environ.get("BENCH_IN_NETNS") == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    os.environ.setdefault("BENCH_IN_NETNS", "0")

    global SAMPLER
    SAMPLER = Sampler()
    b = Bench(a)

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)

    started = datetime.datetime.now().astimezone()
    t0 = time.monotonic()
    fatal = None
    try:
        b.setup()
        for w in WORKLOADS:
            if w in wanted:
                try:
                    getattr(b, w.lower())()
                except (KeyboardInterrupt, SystemExit):
                    raise
                except Exception as ex:     # reported; the other workloads still run
                    b.log(f"{w}: {one_line(ex)}")
                    b.notes.append(f"{w} could not run: {one_line(ex)[:300]}")
                    b.record(w, MOVER_NAMES["qemu-ferry"] if w == "Q1" else "ferry", [], 1,
                             {"error": "bench error: " + one_line(ex)[:200]})
                    kill_stragglers()
    except KeyboardInterrupt:
        fatal = ("interrupted", 130)
    except Exception as ex:
        fatal = (one_line(ex), 2)
    finally:
        b.cleanup()         # also on SystemExit (die) and anything else
    if fatal:
        print(f"bench: {fatal[0]}", file=sys.stderr)
        sys.exit(fatal[1])
    elapsed = time.monotonic() - t0

    for row in b.rows:
        if not row.get("error") and row["runs"]:
            summarize(row)
    tgts = targets(b)
    print()
    print(table(b.rows))
    print()
    qt = q_table(b.rows)
    if qt:
        print(qt)
        print()
    for tid, verdict, text in tgts:
        print(f"target {tid}: {verdict} {text}")
    text = report(b, tgts, started, elapsed)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text)
        print(f"\nbench: report written to {a.out}")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump({"rows": b.rows, "components": b.components,
                       "targets": [{"id": t, "verdict": v, "text": x} for t, v, x in tgts],
                       "scale": b.scale, "runs": b.runs, "netns": b.netns}, f, indent=1,
                      default=str)
    fails = [t for t in tgts if t[1] == "FAIL"]
    print(f"bench: {len(tgts) - len(fails)} targets not failing, {len(fails)} FAIL"
          + (" (BENCH_STRICT=1: exit 1)" if fails and a.strict else ""))
    sys.exit(1 if fails and a.strict else 0)


if __name__ == "__main__":
    main()
