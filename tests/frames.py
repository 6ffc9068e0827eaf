#!/usr/bin/env python3
"""An independent encoder/decoder of ferry frames, written from
proto/PROTOCOL.md alone, and a scripted TLS client for end-to-end tests.

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
hashes of section 5.2, when present).

Where PROTOCOL.md left this second implementation guessing:
- 4/8: ferry-recv sends PING (type 14, u64 payload) every --keepalive, and
  proto/ferry_proto.h has RESUME, RESUMED, PING, PONG (12-15), but section 4
  defines none of them, and section 8 says an unknown type is always an
  error.  This client tolerates and reports them instead.
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
import ctypes
import ctypes.util
import hashlib
import os
import socket
import ssl
import struct
import subprocess
import sys
import time

# ---- constants (PROTOCOL.md sections 3, 4 and 7) ---------------------------

MAGIC = 0x46525931
VERSION = 1
HDR = struct.Struct(">BBHI")            # type, flags, reserved, length
HDR_LEN = 8
MAX_FRAME_MIN = 1024 * 1024 + 4096     # 3.3: one entry of the largest unit
MAX_FRAME_DEFAULT = 1024 * 1024 + 4096
MAX_FRAME_LIMIT = 16 * 1024 * 1024
TEXT_MAX = 1024

HELLO, WELCOME, MANIFEST, ACCEPT, REFUSE, PAGES, ACK, STATE, COMMIT, \
    COMMITTED, ERROR = range(1, 12)
TYPE_NAMES = {
    HELLO: "HELLO", WELCOME: "WELCOME", MANIFEST: "MANIFEST", ACCEPT: "ACCEPT",
    REFUSE: "REFUSE", PAGES: "PAGES", ACK: "ACK", STATE: "STATE",
    COMMIT: "COMMIT", COMMITTED: "COMMITTED", ERROR: "ERROR",
}
# Payload bounds of the section 4 table; None = the negotiated maximum.
PAYLOAD_BOUNDS = {
    HELLO: (24, 24), WELCOME: (32, 32), MANIFEST: (14, None), ACCEPT: (8, 8),
    REFUSE: (10, 10 + TEXT_MAX), PAGES: (25, None), ACK: (8, 8),
    STATE: (8, None), COMMIT: (28, 1308), COMMITTED: (8, 8),
    ERROR: (6, 6 + TEXT_MAX),
}
R2S = (WELCOME, ACCEPT, REFUSE, ACK, COMMITTED, ERROR)
# Not in PROTOCOL.md, but in proto/ferry_proto.h and sent by ferry-recv as a
# heartbeat: PING (14) with a u64.  Tolerated and reported, never expected.
UNDOCUMENTED = {14: "PING", 15: "PONG", 13: "RESUMED"}

CODE_NAMES = {
    10: "PROTO", 11: "PROTO_TYPE", 12: "PROTO_LENGTH", 13: "PROTO_STATE",
    14: "PROTO_RANGE", 15: "PROTO_CODEC", 16: "PROTO_HASH",
    17: "PROTO_VERSION", 20: "REFUSED", 21: "REFUSE_SIZE", 22: "REFUSE_COUNT",
    23: "REFUSE_SAMEFILE", 24: "REFUSE_SPACE", 25: "REFUSE_UNIT",
    26: "REFUSE_NAME", 27: "REFUSE_BUSY", 28: "REFUSE_DIR", 30: "IO",
    31: "NOMEM", 34: "VERIFY", 36: "ABORTED", 40: "INTERNAL",
}
CODES = {v: k for k, v in CODE_NAMES.items()}

DK_MEMORY, DK_DISK = 1, 2
PK_ZERO, PK_REF, PK_LZ4, PK_RAW = 1, 2, 3, 4
HASH_LEN = 16

# ---- encoders ---------------------------------------------------------------


def frame(ftype, payload=b"", flags=0, reserved=0, length=None):
    """A frame: 8-byte header + payload.  length overrides the header's
    length field (to lie about it); flags/reserved may be set to test
    malformed headers."""
    if length is None:
        length = len(payload)
    return HDR.pack(ftype, flags, reserved, length) + payload


def hello(seed=0x0123456789ABCDEF, max_frame=MAX_FRAME_DEFAULT, caps=0,
          magic=MAGIC, version=VERSION, reserved=0):
    return frame(HELLO, struct.pack(">IHHIIQ", magic, version, reserved,
                                    caps, max_frame, seed))


class Device:
    """A manifest device (section 4.3)."""

    def __init__(self, dev_id, name, size, unit=4096, kind=DK_MEMORY,
                 src_dev=0, src_ino=0, reserved=0):
        self.id = dev_id
        self.name = name.encode() if isinstance(name, str) else name
        self.size = size
        self.unit = unit
        self.kind = kind
        self.src_dev = src_dev
        self.src_ino = src_ino
        self.reserved = reserved

    def units(self):
        return (self.size + self.unit - 1) // self.unit

    def unit_len(self, index):
        return min(self.unit, self.size - index * self.unit)

    def encode(self):
        return struct.pack(">IBBHIQQQ", self.id, self.kind, self.reserved,
                           len(self.name), self.unit, self.size,
                           self.src_dev, self.src_ino) + self.name


def manifest(devices, state_size=0, state_name=b"", ndev=None):
    if isinstance(state_name, str):
        state_name = state_name.encode()
    p = struct.pack(">IQH", len(devices) if ndev is None else ndev,
                    state_size, len(state_name)) + state_name
    for d in devices:
        p += d.encode()
    return frame(MANIFEST, p)


def e_zero(index):
    return struct.pack(">IB", index, PK_ZERO)


def e_ref(index, src_device, src_index, digest):
    assert len(digest) == HASH_LEN
    return struct.pack(">IBII", index, PK_REF, src_device, src_index) + digest


def e_lz4(index, block):
    return struct.pack(">IBI", index, PK_LZ4, len(block)) + block


def e_raw(index, data):
    return struct.pack(">IB", index, PK_RAW) + data


def pages(seq, device, entries, rnd=1, count=None):
    p = struct.pack(">QIII", seq, device, rnd,
                    len(entries) if count is None else count)
    return frame(PAGES, p + b"".join(entries))


def state(offset, data):
    return frame(STATE, struct.pack(">Q", offset) + data)


def commit(seq, digests, state_digest=b"\0" * HASH_LEN):
    """digests: [(device id, 16-byte digest)] in manifest order."""
    p = struct.pack(">QI", seq, len(digests))
    for dev_id, dg in digests:
        p += struct.pack(">I", dev_id) + dg
    return frame(COMMIT, p + state_digest)


def error(code, text):
    t = text.encode()[:TEXT_MAX]
    return frame(ERROR, struct.pack(">IH", CODES.get(code, code)
                                    if isinstance(code, str) else code,
                                    len(t)) + t)

# ---- lz4 block format (for LZ4 entries) ------------------------------------


def lz4_literals(data):
    """A valid lz4 block holding data as literals only (one sequence)."""
    n = len(data)
    out = bytearray()
    if n < 15:
        out.append(n << 4)
    else:
        out.append(0xF0)
        rest = n - 15
        while rest >= 255:
            out.append(255)
            rest -= 255
        out.append(rest)
    return bytes(out) + data


def lz4_pattern(pattern, total):
    """A valid lz4 block of `total` bytes repeating the 8-byte `pattern`:
    8 literals, one match at offset 8, then 8 final literals (the block
    format wants the last 5+ bytes as literals)."""
    assert len(pattern) == 8 and total % 8 == 0 and total >= 32
    mlen = total - 16
    out = bytearray([0x80 | 0x0F]) + pattern + struct.pack("<H", 8)
    rest = mlen - 4 - 15
    while rest >= 255:
        out.append(255)
        rest -= 255
    out.append(rest)
    out += bytes([0x80]) + pattern
    return bytes(out)


def lz4_block_from_cli(data):
    """Compress data with the lz4 command line tool and take the first block
    out of its frame format.  None when lz4 is missing or stored the block
    uncompressed."""
    try:
        out = subprocess.run(["lz4", "-c", "-z", "-9"], input=data,
                             stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    if out[:4] != b"\x04\x22\x4d\x18":
        return None
    flg = out[4]
    pos = 6                      # magic, FLG, BD
    if flg & 0x08:
        pos += 8                 # content size
    if flg & 0x01:
        pos += 4                 # dictionary id
    pos += 1                     # header checksum
    (bsize,) = struct.unpack_from("<I", out, pos)
    pos += 4
    if bsize & 0x80000000:
        return None              # stored uncompressed
    return out[pos:pos + bsize]

# ---- XXH3-128 through libxxhash (section 5.2) -------------------------------


class _XXH128(ctypes.Structure):
    _fields_ = [("low64", ctypes.c_uint64), ("high64", ctypes.c_uint64)]


_xxh = None


def _xxh_lib():
    global _xxh
    if _xxh is None:
        _xxh = False
        for name in (ctypes.util.find_library("xxhash"), "libxxhash.so.0"):
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
                f = lib.XXH3_128bits_withSeed
            except (OSError, AttributeError):
                continue
            f.restype = _XXH128
            f.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
            _xxh = f
            break
    return _xxh


def have_xxh3():
    return bool(_xxh_lib())


def xxh3_128(data, seed):
    """XXH3-128 in canonical (big-endian) form."""
    h = _xxh_lib()(bytes(data), len(data), seed)
    return struct.pack(">QQ", h.high64, h.low64)


def unit_hash(seed, data):
    return xxh3_128(data, seed)


def device_digest(seed, unit_hashes):
    return xxh3_128(b"".join(unit_hashes), seed)


def state_digest(seed, blob):
    chunk = 1 << 20
    hashes = [unit_hash(seed, blob[i:i + chunk])
              for i in range(0, len(blob), chunk)]
    return xxh3_128(b"".join(hashes), seed)

# ---- decoder ----------------------------------------------------------------


class Malformed(Exception):
    pass


class Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0

    def take(self, fmt):
        n = struct.calcsize(fmt)
        if self.p + n > len(self.d):
            raise Malformed("truncated payload")
        v = struct.unpack_from(fmt, self.d, self.p)
        self.p += n
        return v if len(v) > 1 else v[0]

    def raw(self, n):
        if self.p + n > len(self.d):
            raise Malformed("truncated payload")
        v = self.d[self.p:self.p + n]
        self.p += n
        return v

    def end(self):
        if self.p != len(self.d):
            raise Malformed("%d trailing bytes" % (len(self.d) - self.p))


def _text(r):
    n = r.take(">H")
    if n > TEXT_MAX:
        raise Malformed("text_len %d > %d" % (n, TEXT_MAX))
    t = r.raw(n).decode("ascii", "replace")
    return "".join(c if 0x20 <= ord(c) < 0x7F else "?" for c in t)


def decode(ftype, payload):
    """Decode a frame the receiver sends: a dict with 'type' (name) and the
    fields.  Raises Malformed on any violation of sections 3 and 4."""
    r = Reader(payload)
    f = {"type": TYPE_NAMES.get(ftype, "UNKNOWN(%d)" % ftype)}
    if ftype == WELCOME:
        magic, f["version"], rsv, f["caps"], f["max_frame"] = r.take(">IHHII")
        f["session_id"] = r.raw(16).hex()
        if magic != MAGIC:
            raise Malformed("WELCOME magic 0x%08x" % magic)
        if rsv != 0:
            raise Malformed("WELCOME reserved %d" % rsv)
        if not MAX_FRAME_MIN <= f["max_frame"] <= MAX_FRAME_LIMIT:
            raise Malformed("WELCOME max_frame %d" % f["max_frame"])
    elif ftype == ACCEPT:
        f["next_seq"] = r.take(">Q")
    elif ftype in (ACK, COMMITTED):
        f["seq"] = r.take(">Q")
    elif ftype == REFUSE:
        f["code"], f["device"] = r.take(">II")
        f["text"] = _text(r)
    elif ftype == ERROR:
        f["code"] = r.take(">I")
        f["text"] = _text(r)
    else:
        raise Malformed("type %d not sent by a receiver" % ftype)
    r.end()
    if "code" in f:
        if f["code"] == 0:
            raise Malformed("%s code 0" % f["type"])
        f["code_name"] = CODE_NAMES.get(f["code"], "UNKNOWN")
    return f


def describe(f):
    """One line for a decoded frame."""
    t = f["type"]
    if t in ("ERROR", "REFUSE"):
        dev = " device=%d" % f["device"] if t == "REFUSE" else ""
        return "%s code=%d %s%s text=%r" % (t, f["code"], f["code_name"], dev,
                                            f["text"])
    fields = " ".join("%s=%s" % (k, v) for k, v in f.items() if k != "type")
    return ("%s %s" % (t, fields)).rstrip()


def token(f):
    """What expectations compare: the type, plus the code name for ERROR
    and REFUSE ("ERROR:PROTO_RANGE")."""
    if f["type"] in ("ERROR", "REFUSE"):
        return "%s:%s" % (f["type"], f["code_name"])
    return f["type"]

# ---- the client ---------------------------------------------------------------


class Closed(Exception):
    pass


class Client:
    def __init__(self, port, certs, timeout):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_cert_chain(os.path.join(certs, "sender.pem"),
                            os.path.join(certs, "sender.key"))
        ctx.load_verify_locations(os.path.join(certs, "ca.pem"))
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        # suppress_ragged_eofs=False: tell a close_notify from a bare EOF.
        self.s = ctx.wrap_socket(raw, server_hostname="receiver",
                                 suppress_ragged_eofs=False)
        self.close_kind = None

    def send(self, data):
        self.s.sendall(data)

    def _exact(self, n):
        buf = b""
        while len(buf) < n:
            try:
                chunk = self.s.recv(min(n - len(buf), 1 << 16))
            except ssl.SSLEOFError:
                self.close_kind = "no close_notify (truncated)"
                raise Closed()
            except ssl.SSLError as e:
                self.close_kind = "TLS error: %s" % e
                raise Closed()
            except ConnectionResetError:
                self.close_kind = "connection reset"
                raise Closed()
            if chunk == b"":
                self.close_kind = "close_notify"
                raise Closed()
            buf += chunk
        return buf

    def recv_frame(self):
        """One decoded frame; raises Closed at the end of the stream,
        socket.timeout when nothing comes, Malformed on a bad frame."""
        hdr = self._exact(HDR_LEN)
        ftype, flags, rsv, length = HDR.unpack(hdr)
        if ftype in UNDOCUMENTED and length <= 64:
            payload = self._exact(length)
            return {"type": UNDOCUMENTED[ftype], "undocumented": True,
                    "payload": payload.hex()}
        if ftype not in R2S:
            raise Malformed("frame type %d not allowed from a receiver" % ftype)
        if flags or rsv:
            raise Malformed("%s flags %d reserved %d"
                            % (TYPE_NAMES[ftype], flags, rsv))
        lo, hi = PAYLOAD_BOUNDS[ftype]
        if hi is None or hi > MAX_FRAME_DEFAULT:
            hi = MAX_FRAME_DEFAULT
        if not lo <= length <= hi:
            raise Malformed("%s length %d outside [%d, %d]"
                            % (TYPE_NAMES[ftype], length, lo, hi))
        try:
            payload = self._exact(length)
        except Closed:
            raise Malformed("%s: stream ended inside the payload"
                            % TYPE_NAMES[ftype])
        return decode(ftype, payload)

    def close_notify(self):
        """Send a TLS close_notify (the orderly end of our stream) and wait
        for the peer's answering close_notify (recorded in close_kind)."""
        try:
            self.s.unwrap()
            self.close_kind = "close_notify"
        except (OSError, ssl.SSLError, ValueError):
            pass

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

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


def _pattern_unit(tag, n=4096):
    """n deterministic, incompressible-looking bytes."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%s-%d" % (tag.encode(), i)).digest()
        i += 1
    return out[:n]


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
    try:
        c = Client(args.port, args.certs, args.timeout)
    except (OSError, ssl.SSLError) as e:
        print("connect: %s" % e)
        print("result: FAIL (no TLS session)")
        return 1
    got = []
    notes = []
    notes_undoc = []
    stopped = False          # we closed: nothing more to read

    def take():
        # --timeout bounds the wait for each documented frame; heartbeats
        # (undocumented PINGs) do not extend it.
        start = time.monotonic()
        while True:
            left = args.timeout - (time.monotonic() - start)
            if left <= 0:
                raise socket.timeout()
            c.s.settimeout(left)
            f = c.recv_frame()
            if not f.get("undocumented"):
                break
            print("< %s payload=%s (type not in PROTOCOL.md: ignored)"
                  % (f["type"], f["payload"]))
            if f["type"] not in notes_undoc:
                notes_undoc.append(f["type"])
        print("< " + describe(f))
        got.append(token(f))
        return f

    try:
        for st in steps:
            if st[0] == "send":
                print("> %s %d bytes" % (TYPE_NAMES.get(st[1][0], "type %d" % st[1][0]),
                                         len(st[1])))
                c.send(st[1])
            elif st[0] == "recv":
                if token(take()) != st[1]:
                    break
            elif st[0] == "close_notify":
                print("> close_notify")
                c.close_notify()
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
    except (BrokenPipeError, ConnectionResetError) as e:
        c.close_kind = "send failed: %s" % e
    finally:
        c.close()
    if c.close_kind:
        print("close: %s" % c.close_kind)
    if notes_undoc:
        print("note: received frame types PROTOCOL.md does not define: %s"
              % " ".join(notes_undoc))
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
