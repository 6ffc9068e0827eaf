#!/usr/bin/env python3
"""An independent encoder/decoder of ferry frames, written from
proto/PROTOCOL.md alone (tools/pyferry/ferry_wire.py, shared with
tools/ferry-conformance), driven as a scripted TLS client for end-to-end
tests.

Usage:
    python3 tests/frames.py --port PORT --certs DIR CASE
    python3 tests/frames.py --list

The client connects to 127.0.0.1:PORT over mutual TLS 1.3 with DIR/sender.pem
and DIR/sender.key, trusting DIR/ca.pem and expecting the name "receiver",
sends the scripted frames of CASE, then reads frames until the receiver
closes, printing one line per frame:

    < WELCOME version=1 caps=0 max_frame=1052672 session_id=...
    < ERROR code=14 PROTO_RANGE text='PAGES: device 1 index 7 >= 3 units'
    close: close_notify

It ends with "result: ok" and exit status 0 when the frames received are the
ones CASE expects (types, and for ERROR and REFUSE the code), "result: FAIL"
and status 1 when not, 2 on usage errors and 77 when the case cannot run here
(the "valid" case needs libxxhash for XXH3-128, loaded with ctypes).

Only the standard library is used (plus libxxhash through ctypes for the
hashes of section 5.2, when present).  Heartbeats (PING, PONG) from the
receiver are printed and otherwise ignored.

Where PROTOCOL.md left this second implementation guessing:
- 2.1: a connection ending without close_notify is a truncation, but the
  text never says that a side sends close_notify after its last frame
  (COMMITTED, ERROR, REFUSE); this client reports which end it saw.
- 3.4/7: a stream that ends inside a frame (even with close_notify) is not
  given a code; the truncated_* cases expect no answer.
- 3.3: no code is named for a HELLO/WELCOME max_frame outside its bounds.
- 4.6: a duplicate PAGES is "ignored": whether it is acknowledged is not
  said (ferry-recv does not ACK it).
- 5.2: "a never-written unit has the hash of zeros": of the unit's own
  length (the last unit may be shorter) -- assumed, and confirmed by the
  valid case committing.
- 7: REFUSE_NAME exists but no pre-flight check uses it; a bad name is
  PROTO_RANGE at MANIFEST decoding (4.3).
- 6.2 bounds the time to HELLO only: nothing in the text bounds a stall
  inside a frame (over_negotiated shows the receiver waiting for it).
"""
import argparse
import hashlib
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tools"))
from pyferry.ferry_wire import (  # noqa: E402
    Closed, Device, HDR, HDR_LEN, HASH_LEN, HEARTBEAT, MAX_FRAME_DEFAULT,
    MAX_FRAME_LIMIT, Malformed, PAGES, R2S, TLSConfig, TYPE_NAMES, commit,
    DK_DISK, DK_MEMORY, describe, device_digest, e_lz4, e_raw, e_ref, e_zero,
    error, frame, have_xxh3, hello, lz4_block_from_cli, lz4_pattern,
    lz4_literals, manifest, pages, state, state_digest, token, unit_hash)
from pyferry.ferry_wire import pattern_bytes as _pattern_unit  # noqa: E402


# ---- scenarios ----------------------------------------------------------------
#
# A scenario is a list of steps and the list of frame tokens expected from the
# receiver over the whole connection.  Steps:
#   ("send", bytes)         send bytes
#   ("recv", "TOKEN")       read one frame; stop scripting if it is not TOKEN
#   ("close_notify",)       send close_notify, stop reading
#   ("close",)              close the TCP connection without close_notify
# After the steps the client reads frames until the receiver closes.

SEED = 0x5EED_F00D_0BAD_CAFE


def _one_dev(**kw):
    args = dict(dev_id=1, name="fr-mem.img", size=3 * 4096, unit=4096)
    args.update(kw)
    return Device(**args)


def _open(devs, seed=SEED, state_size=0, state_name=b""):
    """HELLO/WELCOME and MANIFEST/ACCEPT."""
    return [("send", hello(seed=seed)), ("recv", "WELCOME"),
            ("send", manifest(devs, state_size, state_name)),
            ("recv", "ACCEPT")]


def lz4_short_block():
    """A valid lz4 block of a 100-byte input: from the lz4 tool when present,
    else assembled by hand (literals only)."""
    data = (b"ferry lz4 short input " * 5)[:100]
    blk = lz4_block_from_cli(data)
    src = "lz4 tool"
    if blk is None:
        blk, src = lz4_literals(data), "hand-assembled literals"
    return blk, src


def sc_bad_type(args=None):
    return ([("send", hello()), ("recv", "WELCOME"),
             ("send", frame(200, b"\0" * 8))],
            ["WELCOME", "ERROR:PROTO_TYPE"])


def _over(length):
    d = _one_dev()
    return (_open([d]) + [("send", HDR.pack(PAGES, 0, 0, length))],
            ["WELCOME", "ACCEPT", "ERROR:PROTO_LENGTH"])


def sc_over_limit(args=None):
    """Header only, length 16 MiB + 1: refused from the header alone."""
    return _over(MAX_FRAME_LIMIT + 1)


def sc_over_negotiated(args=None):
    """Header only, length one above the announced 1 MiB + 4 KiB."""
    return _over(MAX_FRAME_DEFAULT + 1)


def _truncated(how):
    d = _one_dev()
    body = struct.pack(">QIII", 1, 1, 1, 1) + e_raw(0, b"\xab" * 75)
    assert len(body) == 100
    return (_open([d]) + [("send", HDR.pack(PAGES, 0, 0, 1000) + body),
                          (how,)],
            ["WELCOME", "ACCEPT"])


def sc_truncated_notify(args=None):
    return _truncated("close_notify")


def sc_truncated_eof(args=None):
    return _truncated("close")


def sc_bad_index(args=None):
    d = _one_dev()          # 3 units
    return (_open([d]) + [("send", pages(1, 1, [e_zero(0), e_zero(7)]))],
            ["WELCOME", "ACCEPT", "ERROR:PROTO_RANGE"])


def sc_lz4_garbage(args=None):
    d = _one_dev()
    blk = b"\xff" * 9 + b"garbage!"
    return (_open([d]) + [("send", pages(1, 1, [e_lz4(2, blk)]))],
            ["WELCOME", "ACCEPT", "ERROR:PROTO_CODEC"])


def sc_lz4_short(args=None):
    d = _one_dev()
    blk, src = lz4_short_block()
    print("# lz4 block of a 100-byte input (%s): %d bytes" % (src, len(blk)))
    return (_open([d]) + [("send", pages(1, 1, [e_lz4(2, blk)]))],
            ["WELCOME", "ACCEPT", "ERROR:PROTO_CODEC"])


def sc_pages_before_manifest(args=None):
    return ([("send", hello()), ("recv", "WELCOME"),
             ("send", pages(1, 1, [e_zero(0)]))],
            ["WELCOME", "ERROR:PROTO_STATE"])


def sc_ref_bad_hash(args=None):
    d = _one_dev()
    wrong = b"\x5a" * HASH_LEN
    return (_open([d]) + [("send", pages(1, 1, [e_raw(0, _pattern_unit("r")),
                                                e_ref(1, 1, 0, wrong)]))],
            ["WELCOME", "ACCEPT", "ERROR:PROTO_HASH"])


def sc_bad_magic(args=None):
    return ([("send", hello(magic=0x46525932))], ["ERROR:PROTO_VERSION"])


def sc_bad_version(args=None):
    return ([("send", hello(version=2))], ["ERROR:PROTO_VERSION"])


def sc_commit_bad_digest(args=None):
    d = _one_dev()
    return (_open([d]) + [("send", pages(1, 1, [e_raw(0, _pattern_unit("c"))])),
                          ("recv", "ACK"),
                          ("send", commit(1, [(1, b"\x11" * HASH_LEN)]))],
            ["WELCOME", "ACCEPT", "ACK", "ERROR:VERIFY"])


def _refuse_unit(unit):
    d = _one_dev(name="fr-unit.img", size=8192, unit=unit)
    return ([("send", hello()), ("recv", "WELCOME"),
             ("send", manifest([d]))],
            ["WELCOME", "REFUSE:REFUSE_UNIT"])


def sc_unit_1000(args=None):
    return _refuse_unit(1000)


def sc_unit_2m(args=None):
    return _refuse_unit(2 * 1024 * 1024)


def sc_name_dotdot(args=None):
    d = _one_dev(name="../x")
    return ([("send", hello()), ("recv", "WELCOME"), ("send", manifest([d]))],
            ["WELCOME", "ERROR:PROTO_RANGE"])


def sc_max_exact(args=None):
    """A PAGES whose payload is exactly the max_frame the receiver announced
    (1 MiB + 4 KiB): 256 RAW units of 4096 bytes and a RAW last unit of
    2791 bytes.  Section 3.3: a side accepts frames up to its own value."""
    d = _one_dev(name="fr-max.img", size=256 * 4096 + 2791)
    ents = [e_raw(i, _pattern_unit("m%d" % i)) for i in range(256)]
    ents.append(e_raw(256, _pattern_unit("mtail", 2791)))
    f = pages(1, 1, ents)
    assert len(f) - HDR_LEN == MAX_FRAME_DEFAULT, len(f)
    steps = _open([d]) + [("send", f), ("recv", "ACK"),
                          ("send", error("ABORTED", "frames.py: test over, aborting"))]
    return steps, ["WELCOME", "ACCEPT", "ACK"]


def sc_valid(args=None):
    """A whole session that commits: every entry kind, a partial last unit,
    a never-written unit, two devices and a state blob in two pieces, with
    the digests of section 5.2.  Prints 'expect-sha256 NAME HEX' for each
    file so the caller can check what landed."""
    seed = SEED
    mem = Device(1, "fr-valid-mem.img", 4 * 4096 + 100, 4096, DK_MEMORY)
    disk = Device(2, "fr-valid-disk.img", 2 * 65536, 65536, DK_DISK)
    blob = _pattern_unit("state", 3000)
    u0 = _pattern_unit("v0")
    pat = b"FERRYPAT"
    u3 = pat * 512
    u4 = (b"tail-" * 20)[:100]
    mem_units = [u0, b"\0" * 4096, u0, u3, u4]
    d0 = _pattern_unit("d0", 65536)
    disk_units = [d0, b"\0" * 65536]         # unit 1 never written
    tail_blk = lz4_block_from_cli(u4)
    ents = [e_raw(0, u0), e_zero(1), e_ref(2, 1, 0, unit_hash(seed, u0)),
            e_lz4(3, lz4_pattern(pat, 4096))]
    if tail_blk is not None and len(tail_blk) < 100:
        ents.append(e_lz4(4, tail_blk))
    else:
        ents.append(e_raw(4, u4))
    digests = [(1, device_digest(seed, [unit_hash(seed, u) for u in mem_units])),
               (2, device_digest(seed, [unit_hash(seed, u) for u in disk_units]))]
    steps = _open([mem, disk], seed, len(blob), "fr-valid-state.bin") + [
        ("send", pages(1, 1, ents)), ("recv", "ACK"),
        ("send", pages(2, 2, [e_raw(0, d0), e_zero(1)])), ("recv", "ACK"),
        ("send", state(0, blob[:1000])),
        ("send", state(1000, blob[1000:])),
        ("send", commit(2, digests, state_digest(seed, blob))),
        ("recv", "COMMITTED"),
        ("close_notify",)]
    for name, content in ((mem.name, b"".join(mem_units)),
                          (disk.name, b"".join(disk_units)),
                          (b"fr-valid-state.bin", blob)):
        print("expect-sha256 %s %s" % (name.decode(),
                                       hashlib.sha256(content).hexdigest()))
    return steps, ["WELCOME", "ACCEPT", "ACK", "ACK", "COMMITTED"]


def sc_bad_flags(args=None):
    d = _one_dev()
    bad = bytearray(pages(1, 1, [e_zero(0)]))
    bad[1] = 0x80
    return (_open([d]) + [("send", bytes(bad))],
            ["WELCOME", "ACCEPT", "ERROR:PROTO"])


def sc_manifest_file(args):
    """HELLO, then a MANIFEST describing --file as one disk (name = its base
    name, size = its size or --size, st_dev/st_ino from stat, unit --unit);
    expect the receiver's answer to be --expect (e.g. REFUSE:REFUSE_SIZE)."""
    st = os.stat(args.file)
    d = Device(1, os.path.basename(args.file),
               args.size if args.size is not None else st.st_size,
               args.unit, DK_DISK, st.st_dev, st.st_ino)
    steps = [("send", hello()), ("recv", "WELCOME"), ("send", manifest([d]))]
    if args.expect == "ACCEPT":
        steps += [("recv", "ACCEPT"),
                  ("send", error("ABORTED", "frames.py: manifest accepted, aborting"))]
    return steps, ["WELCOME", args.expect]


SCENARIOS = {
    "bad_type": (sc_bad_type, "unknown frame type 200 after HELLO -> PROTO_TYPE"),
    "over_limit": (sc_over_limit, "PAGES header with length 16 MiB+1, header only -> PROTO_LENGTH"),
    "over_negotiated": (sc_over_negotiated, "PAGES header with length 1 MiB+4 KiB+1, header only -> PROTO_LENGTH"),
    "truncated_notify": (sc_truncated_notify, "PAGES promising 1000 bytes, 100 sent, then close_notify"),
    "truncated_eof": (sc_truncated_eof, "PAGES promising 1000 bytes, 100 sent, then TCP close without close_notify"),
    "bad_index": (sc_bad_index, "PAGES entry index 7 of a 3-unit device -> PROTO_RANGE"),
    "lz4_garbage": (sc_lz4_garbage, "LZ4 entry with garbage -> PROTO_CODEC"),
    "lz4_short": (sc_lz4_short, "LZ4 entry decoding to 100 of 4096 bytes -> PROTO_CODEC"),
    "pages_before_manifest": (sc_pages_before_manifest, "PAGES right after HELLO -> PROTO_STATE"),
    "ref_bad_hash": (sc_ref_bad_hash, "REF entry with a wrong hash -> PROTO_HASH"),
    "bad_magic": (sc_bad_magic, "HELLO with magic FRY2 -> PROTO_VERSION"),
    "bad_version": (sc_bad_version, "HELLO with version 2 -> PROTO_VERSION"),
    "commit_bad_digest": (sc_commit_bad_digest, "COMMIT with a wrong device digest -> VERIFY"),
    "unit_1000": (sc_unit_1000, "MANIFEST with unit 1000 -> REFUSE_UNIT"),
    "unit_2m": (sc_unit_2m, "MANIFEST with unit 2 MiB -> REFUSE_UNIT"),
    "name_dotdot": (sc_name_dotdot, "MANIFEST device name '../x' -> PROTO_RANGE"),
    "max_exact": (sc_max_exact, "PAGES of exactly the announced max_frame (1 MiB+4 KiB) -> ACK"),
    "bad_flags": (sc_bad_flags, "PAGES header with flags 0x80 -> PROTO"),
    "manifest_file": (sc_manifest_file, "MANIFEST for --file as a disk; expect --expect (REFUSE:CODE or ACCEPT)"),
    "valid": (sc_valid, "a whole valid session that commits (needs libxxhash)"),
}


def run(args):
    fn, _ = SCENARIOS[args.case]
    if args.case == "valid" and not have_xxh3():
        print("skip: libxxhash not loadable, no XXH3-128 for digests")
        return 77
    steps, expect = fn(args)
    d = args.certs
    tls = TLSConfig(os.path.join(d, "ca.pem"), os.path.join(d, "sender.pem"),
                    os.path.join(d, "sender.key"), "receiver")
    try:
        c = tls.connect("127.0.0.1", args.port, args.timeout)
    except (OSError, ssl.SSLError) as e:
        tls.cleanup()
        print("connect: %s" % e)
        print("result: FAIL (no TLS session)")
        return 1
    got = []
    notes = []
    stopped = False          # we closed: nothing more to read

    def take():
        # --timeout bounds the wait for each frame; heartbeats do not
        # extend it.
        start = time.monotonic()
        while True:
            left = args.timeout - (time.monotonic() - start)
            if left <= 0:
                raise socket.timeout()
            fr = c.recv_frame(left, limit=MAX_FRAME_DEFAULT)
            if fr.type not in R2S:
                raise Malformed("frame type %d not allowed from a receiver"
                                % fr.type)
            if fr.malformed:
                raise Malformed(fr.malformed)
            if fr.type not in HEARTBEAT:
                break
            print("< %s (heartbeat: ignored)" % fr.describe())
        print("< " + describe(fr.f))
        got.append(token(fr.f))
        return fr.f

    try:
        for st in steps:
            if st[0] == "send":
                print("> %s %d bytes" % (TYPE_NAMES.get(st[1][0], "type %d" % st[1][0]),
                                         len(st[1])))
                if not c.send(st[1]):
                    c.close_kind = "send failed: %s" % c.send_error
                    break
            elif st[0] == "recv":
                if token(take()) != st[1]:
                    break
            elif st[0] == "close_notify":
                print("> close_notify")
                c.close_notify(args.timeout)
                stopped = True
                break
            elif st[0] == "close":
                print("> TCP close (no close_notify)")
                stopped = True
                break
        while not stopped:
            take()
    except Closed:
        pass
    except socket.timeout:
        notes.append("TIMEOUT")
        print("timeout: nothing from the receiver for %.1f s and no close" % args.timeout)
    except Malformed as e:
        notes.append("MALFORMED")
        print("malformed frame from the receiver: %s" % e)
    finally:
        c.cut()
        tls.cleanup()
    if c.close_kind:
        print("close: %s" % c.close_kind)
    print("expected: %s" % " ".join(expect))
    print("received: %s" % " ".join(got + notes))
    if got == expect and not notes:
        print("result: ok")
        return 0
    print("result: FAIL")
    return 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int)
    ap.add_argument("--certs", help="directory with ca.pem, sender.pem, sender.key")
    ap.add_argument("--timeout", type=float, default=5.0,
                    help="seconds to wait for each frame (default 5)")
    ap.add_argument("--list", action="store_true", help="list the cases")
    ap.add_argument("--file", help="manifest_file: the file to describe")
    ap.add_argument("--size", type=int, help="manifest_file: size to declare")
    ap.add_argument("--unit", type=int, default=65536,
                    help="manifest_file: unit (default 65536)")
    ap.add_argument("--expect", default="ACCEPT",
                    help="manifest_file: expected answer, e.g. REFUSE:REFUSE_SIZE")
    ap.add_argument("case", nargs="?", choices=sorted(SCENARIOS), metavar="CASE")
    args = ap.parse_args()
    if args.list:
        for k in sorted(SCENARIOS):
            print("%-22s %s" % (k, SCENARIOS[k][1]))
        return 0
    if args.case is None or args.port is None or args.certs is None:
        ap.print_usage(sys.stderr)
        print("frames.py: --port, --certs and CASE are required (or --list)",
              file=sys.stderr)
        return 2
    if args.case == "manifest_file" and not args.file:
        print("frames.py: manifest_file needs --file", file=sys.stderr)
        return 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
