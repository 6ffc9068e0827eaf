"""An independent encoder/decoder of ferry frames, written from
proto/PROTOCOL.md alone, and a TLS 1.3 framed connection for either role.

Used by tools/ferry-conformance and tests/frames.py.  Only the Python
standard library is needed, plus libxxhash through ctypes for the XXH3-128
hashes of section 5.2 (have_xxh3() tells whether it loaded).

The TLS exporter of RFC 8446 7.5 (needed for RESUME proofs, section 4.12)
is not exposed by Python's ssl module.  Conn computes it from the
connection's exporter master secret, which OpenSSL hands to Python through
the key log callback (SSLContext.keylog_filename): each connection gets its
own context and key log file in a private temporary directory, read right
after the handshake and removed.
"""
import ctypes
import ctypes.util
import hashlib
import hmac
import os
import shutil
import socket
import ssl
import struct
import tempfile
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
MAX_DEVICES = 64
MAX_ENTRIES = 4096
MAX_TOTAL_UNITS = 1 << 24
DEVICE_SIZE_MAX = 1 << 46
STATE_SIZE_MAX = 256 * 1024 * 1024
PING_FLOOD_PER_SEC = 50
SESSION_ID_LEN = 16
PROOF_LEN = 32
RESUME_KEY_LABEL = b"EXPORTER-ferry-resume-key"
RESUME_BIND_LABEL = b"EXPORTER-ferry-resume-binding"
RESUME_PROOF_PREFIX = b"ferry resume v1"

(HELLO, WELCOME, MANIFEST, ACCEPT, REFUSE, PAGES, ACK, STATE, COMMIT,
 COMMITTED, ERROR, RESUME, RESUMED, PING, PONG, DOMAIN, CHECKS, QSTREAM,
 QRETURN, HAVE) = range(1, 21)
TYPE_NAMES = {
    HELLO: "HELLO", WELCOME: "WELCOME", MANIFEST: "MANIFEST", ACCEPT: "ACCEPT",
    REFUSE: "REFUSE", PAGES: "PAGES", ACK: "ACK", STATE: "STATE",
    COMMIT: "COMMIT", COMMITTED: "COMMITTED", ERROR: "ERROR",
    RESUME: "RESUME", RESUMED: "RESUMED", PING: "PING", PONG: "PONG",
    DOMAIN: "DOMAIN", CHECKS: "CHECKS", QSTREAM: "QSTREAM", QRETURN: "QRETURN",
    HAVE: "HAVE",
}
# Section 4.1: capability bits; sections 4.15, 4.16: DOMAIN and CHECKS
CAP_DOMAIN = 1
CAP_QEMU = 2                            # sections 4.17, 4.18: QSTREAM and QRETURN
CAP_REUSE = 4                           # section 4.19: HAVE
CAPS_KNOWN = CAP_DOMAIN | CAP_QEMU | CAP_REUSE
HAVE_HDR_LEN = 12
DOMAIN_CHECK_ONLY = 1
DOMAIN_XML_MAX = 1024 * 1024
HOST_TOKEN_MAX = 63
UUID_LEN = 36
WAIVE_MAX = 16
CHECKS_MAX = 16
CHECK_NAME_MAX = 31
CHECK_VALUE_MAX = 160
CHECK_WHY_MAX = 512
CHECKS_PAYLOAD_MAX = 2 + CHECKS_MAX * (1 + 4 + 1 + CHECK_NAME_MAX + 2 * (2 + CHECK_VALUE_MAX)
                                       + 2 + CHECK_WHY_MAX)
CS_PASS, CS_FAIL, CS_WAIVED = 1, 2, 3
CS_NAMES = {CS_PASS: "pass", CS_FAIL: "fail", CS_WAIVED: "waived"}
QI_OPAQUE, QI_BLOCKS, QI_PAGE = 1, 2, 3
QREC_DATA, QREC_CONT = 1, 2
QPAGE_SIZE = 4096
QBLOCKS_MAX = 256
QRETURN_MAX = 1024 * 1024
QITEM_MIN = 6
# Payload bounds of the section 4 table; None = the negotiated maximum.
PAYLOAD_BOUNDS = {
    HELLO: (24, 24), WELCOME: (32, 32), MANIFEST: (14, None), ACCEPT: (8, 8),
    REFUSE: (10, 10 + TEXT_MAX), PAGES: (25, None), ACK: (8, 8),
    STATE: (8, None), COMMIT: (28, 1308), COMMITTED: (8, 8),
    ERROR: (6, 6 + TEXT_MAX), RESUME: (60, 60), RESUMED: (20, 20),
    PING: (8, 8), PONG: (8, 8), DOMAIN: (14, None), CHECKS: (15, CHECKS_PAYLOAD_MAX),
    QSTREAM: (20 + QITEM_MIN, None), QRETURN: (9, 8 + QRETURN_MAX),
    HAVE: (HAVE_HDR_LEN + 16, None),
}
S2R = (HELLO, MANIFEST, PAGES, STATE, COMMIT, ERROR, RESUME, PING, PONG, DOMAIN, QSTREAM)
R2S = (WELCOME, ACCEPT, REFUSE, ACK, COMMITTED, ERROR, RESUMED, PING, PONG, CHECKS, QRETURN,
       HAVE)
HEARTBEAT = (PING, PONG)

CODE_NAMES = {
    10: "PROTO", 11: "PROTO_TYPE", 12: "PROTO_LENGTH", 13: "PROTO_STATE",
    14: "PROTO_RANGE", 15: "PROTO_CODEC", 16: "PROTO_HASH",
    17: "PROTO_VERSION", 18: "PROTO_RESUME", 19: "PROTO_FLOOD",
    20: "REFUSED", 21: "REFUSE_SIZE", 22: "REFUSE_COUNT",
    23: "REFUSE_SAMEFILE", 24: "REFUSE_SPACE", 25: "REFUSE_UNIT",
    26: "REFUSE_NAME", 27: "REFUSE_BUSY", 28: "REFUSE_DIR", 30: "IO",
    31: "NOMEM", 32: "TLS", 33: "NET", 34: "VERIFY", 35: "TIMEOUT",
    36: "ABORTED", 37: "USAGE", 38: "INDOUBT", 39: "TLS_INTEGRITY",
    40: "INTERNAL", 50: "VIRT", 51: "VIRT_XML", 52: "VIRT_CDROM",
    53: "VIRT_HOSTDEV", 54: "VIRT_SHAREABLE", 55: "VIRT_READONLY",
    56: "VIRT_NOTFILE", 57: "VIRT_CACHE", 58: "VIRT_ARCH",
    59: "VIRT_CPU_MODEL", 60: "VIRT_CPUS", 61: "VIRT_MEMORY", 62: "VIRT_IMAGES",
    63: "VIRT_EXISTS", 64: "QEMU_CAP", 65: "QEMU_STATE", 70: "QEMU",
}
CODES = {v: k for k, v in CODE_NAMES.items()}

DK_MEMORY, DK_DISK, DK_QEMU = 1, 2, 3
PK_ZERO, PK_REF, PK_LZ4, PK_RAW = 1, 2, 3, 4
HASH_LEN = 16
RSM_RECEIVING, RSM_COMMITTED, RSM_FAILED = 1, 2, 3
RSM_NAMES = {1: "RECEIVING", 2: "COMMITTED", 3: "FAILED"}


def code_of(code):
    """A numeric code from a number or a name ("PROTO_RANGE")."""
    return CODES[code] if isinstance(code, str) else code


def code_name(code):
    return CODE_NAMES.get(code, "UNKNOWN(%d)" % code)

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


def welcome(session_id, max_frame=MAX_FRAME_DEFAULT, caps=0, magic=MAGIC,
            version=VERSION, reserved=0):
    return frame(WELCOME, struct.pack(">IHHII", magic, version, reserved,
                                      caps, max_frame) + session_id)


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


def _seq_frame(ftype, seq):
    return frame(ftype, struct.pack(">Q", seq))


def accept(next_seq=1):
    return _seq_frame(ACCEPT, next_seq)


def ack(seq):
    return _seq_frame(ACK, seq)


def committed(seq):
    return _seq_frame(COMMITTED, seq)


def ping(nonce):
    return _seq_frame(PING, nonce)


def pong(nonce):
    return _seq_frame(PONG, nonce)


def _text_frame(ftype, head, text):
    t = text.encode() if isinstance(text, str) else text
    t = t[:TEXT_MAX]
    return frame(ftype, head + struct.pack(">H", len(t)) + t)


def refuse(code, device, text):
    return _text_frame(REFUSE, struct.pack(">II", code_of(code), device), text)


def error(code, text):
    return _text_frame(ERROR, struct.pack(">I", code_of(code)), text)


def e_zero(index):
    return struct.pack(">IB", index, PK_ZERO)


def e_ref(index, src_device, src_index, digest):
    assert len(digest) == HASH_LEN
    return struct.pack(">IBII", index, PK_REF, src_device, src_index) + digest


def e_lz4(index, block, clen=None):
    return struct.pack(">IBI", index, PK_LZ4,
                       len(block) if clen is None else clen) + block


def e_raw(index, data):
    return struct.pack(">IB", index, PK_RAW) + data


def pages(seq, device, entries, rnd=1, count=None):
    p = struct.pack(">QIII", seq, device, rnd,
                    len(entries) if count is None else count)
    return frame(PAGES, p + b"".join(entries))


def state(offset, data):
    return frame(STATE, struct.pack(">Q", offset) + data)


def commit(seq, digests, state_digest=b"\0" * HASH_LEN, ndev=None):
    """digests: [(device id, 16-byte digest)] in manifest order."""
    p = struct.pack(">QI", seq, len(digests) if ndev is None else ndev)
    for dev_id, dg in digests:
        p += struct.pack(">I", dev_id) + dg
    return frame(COMMIT, p + state_digest)


def resume(session_id, proof, max_frame=MAX_FRAME_DEFAULT, magic=MAGIC,
           version=VERSION, reserved=0):
    return frame(RESUME, struct.pack(">IHHI", magic, version, reserved,
                                     max_frame) + session_id + proof)


def resumed(status, next_seq, state_offset=0):
    return frame(RESUMED, struct.pack(">IQQ", status, next_seq, state_offset))


def _b(v):
    return v.encode() if isinstance(v, str) else v


def domain(xml, flags=0, arch=b"x86_64", model=b"", uuid=b"", waive=(), nwaive=None,
           xml_len=None):
    """DOMAIN (4.15).  nwaive and xml_len override the counts (to lie)."""
    xml = _b(xml)
    p = struct.pack(">I", flags)
    for v in (arch, model, uuid):
        v = _b(v)
        p += struct.pack(">B", len(v)) + v
    p += struct.pack(">B", len(waive) if nwaive is None else nwaive)
    for w in waive:
        w = _b(w)
        p += struct.pack(">B", len(w)) + w
    return frame(DOMAIN, p + struct.pack(">I", len(xml) if xml_len is None else xml_len) + xml)


def checks(rows, nrows=None):
    """CHECKS (4.16): rows of (status, code, name, source, destination,
    why); code by number or name."""
    p = struct.pack(">H", len(rows) if nrows is None else nrows)
    for st, code, name, src, dst, why in rows:
        name = _b(name)
        p += struct.pack(">BIB", st, code_of(code), len(name)) + name
        for v in (src, dst, why):
            v = _b(v)
            p += struct.pack(">H", len(v)) + v
    return frame(CHECKS, p)


def q_opaque(data):
    """QSTREAM items (4.17)."""
    return struct.pack(">BI", QI_OPAQUE, len(data)) + data


def q_blocks(blocks):
    """blocks: (id, length in bytes) pairs."""
    return struct.pack(">BH", QI_BLOCKS, len(blocks)) + b"".join(
        struct.pack(">B", len(_b(i))) + _b(i) + struct.pack(">Q", n) for i, n in blocks)


def q_page(rec, block, offset, kind, payload=b"", src=(0, 0), digest=b"\0" * HASH_LEN):
    """A PAGE item: ZERO nothing; REF src (block, offset) and digest; LZ4
    payload = the lz4 block; RAW payload = the 4096 bytes."""
    p = struct.pack(">BBHQB", QI_PAGE, rec, block, offset, kind)
    if kind == PK_REF:
        p += struct.pack(">HQ", *src) + digest
    elif kind == PK_LZ4:
        p += struct.pack(">I", len(payload)) + payload
    elif kind == PK_RAW:
        p += payload
    return p


def qstream(seq, stream_off, items, count=None):
    return frame(QSTREAM, struct.pack(">QQI", seq, stream_off,
                                      len(items) if count is None else count) + b"".join(items))


def qreturn(offset, data):
    return frame(QRETURN, struct.pack(">Q", offset) + data)


def have(device, first, hashes, count=None):
    """HAVE (4.19): hashes is a list of 16-byte hashes of units first.."""
    return frame(HAVE, struct.pack(">III", device, first, len(hashes) if count is None else count)
                 + b"".join(hashes))

# ---- lz4 block format (for LZ4 entries) ------------------------------------


def _lz4_len_bytes(rest):
    """The extra length bytes of a token nibble of 15."""
    out = bytearray()
    while rest >= 255:
        out.append(255)
        rest -= 255
    out.append(rest)
    return bytes(out)


def lz4_literals(data):
    """A valid lz4 block holding data as literals only (one sequence)."""
    n = len(data)
    if n < 15:
        return bytes([n << 4]) + data
    return bytes([0xF0]) + _lz4_len_bytes(n - 15) + data


def lz4_pattern(pattern, total):
    """A valid lz4 block of `total` bytes repeating the 8-byte `pattern`:
    8 literals, one match at offset 8, then 8 final literals (the block
    format wants the last 5+ bytes as literals)."""
    assert len(pattern) == 8 and total % 8 == 0 and total >= 32
    mlen = total - 16
    out = bytes([0x80 | 0x0F]) + pattern + struct.pack("<H", 8)
    out += _lz4_len_bytes(mlen - 4 - 15)
    return out + bytes([0x80]) + pattern


def lz4_block_from_cli(data):
    """Compress data with the lz4 command line tool and take the first block
    out of its frame format.  None when lz4 is missing or stored the block
    uncompressed."""
    import subprocess
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


def content_digest(seed, dev, content):
    """The section 5.2 digest of a device whose staged bytes are content."""
    return device_digest(seed, [unit_hash(seed, content[i * dev.unit:
                                                       i * dev.unit + dev.unit_len(i)])
                                for i in range(dev.units())])


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


def _magic_version(f, r, what):
    magic, f["version"], rsv = r.take(">IHH")
    if magic != MAGIC:
        raise Malformed("%s magic 0x%08x" % (what, magic))
    if rsv != 0:
        raise Malformed("%s reserved %d" % (what, rsv))


def _max_frame(f, what):
    if not MAX_FRAME_MIN <= f["max_frame"] <= MAX_FRAME_LIMIT:
        raise Malformed("%s max_frame %d" % (what, f["max_frame"]))


def _decode_manifest(f, r):
    f["ndev"], f["state_size"] = r.take(">IQ")
    f["state_name"] = r.raw(r.take(">H")).decode("ascii", "replace")
    devs = []
    for _ in range(min(f["ndev"], MAX_DEVICES + 1)):
        did, kind, rsv, nl, unit, size, sdev, sino = r.take(">IBBHIQQQ")
        devs.append({"id": did, "kind": kind, "unit": unit, "size": size,
                     "name": r.raw(nl).decode("ascii", "replace")})
    f["devices"] = devs


def _token(r, wide, lo, hi, allowed, what):
    """A u8/u16-length-prefixed string of lo..hi bytes; allowed: a set of
    byte values, or None for text (control bytes shown as '?')."""
    n = r.take(">H" if wide else ">B")
    if not lo <= n <= hi:
        raise Malformed("%s length %d outside %d..%d" % (what, n, lo, hi))
    b = r.raw(n)
    if allowed is None:
        return "".join("?" if c < 0x20 or c == 0x7F else chr(c) for c in b)
    bad = [c for c in b if c not in allowed]
    if bad:
        raise Malformed("%s: byte 0x%02x not allowed" % (what, bad[0]))
    return b.decode("ascii")


_HOST = frozenset(range(0x21, 0x7F))
_UUID = frozenset(b"0123456789abcdef-")
_NAME = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-")


def _decode_domain(f, r):
    f["flags"] = r.take(">I")
    if f["flags"] & ~DOMAIN_CHECK_ONLY:
        raise Malformed("DOMAIN flags 0x%08x" % f["flags"])
    f["arch"] = _token(r, False, 1, HOST_TOKEN_MAX, _HOST, "arch")
    f["model"] = _token(r, False, 0, HOST_TOKEN_MAX, _HOST, "model")
    f["uuid"] = _token(r, False, 0, UUID_LEN, _UUID, "uuid")
    if len(f["uuid"]) not in (0, UUID_LEN):
        raise Malformed("uuid of %d bytes" % len(f["uuid"]))
    n = r.take(">B")
    if n > WAIVE_MAX:
        raise Malformed("%d waived checks" % n)
    f["waive"] = []
    for _ in range(n):
        w = _token(r, False, 1, CHECK_NAME_MAX, _NAME, "waived check")
        if w in f["waive"]:
            raise Malformed("check %s waived twice" % w)
        f["waive"].append(w)
    xl = r.take(">I")
    if not 1 <= xl <= DOMAIN_XML_MAX:
        raise Malformed("xml_len %d" % xl)
    f["xml_len"] = xl
    f["xml"] = r.raw(xl)


def _decode_checks(f, r):
    n = r.take(">H")
    if not 1 <= n <= CHECKS_MAX:
        raise Malformed("%d rows" % n)
    rows = []
    for _ in range(n):
        st, code = r.take(">BI")
        if st not in CS_NAMES:
            raise Malformed("row status %d" % st)
        if st != CS_PASS and code == 0:
            raise Malformed("failed row with code 0")
        rows.append({"status": CS_NAMES[st], "code": code,
                     "code_name": CODE_NAMES.get(code, "UNKNOWN") if code else "-",
                     "name": _token(r, False, 1, CHECK_NAME_MAX, _NAME, "check name"),
                     "source": _token(r, True, 0, CHECK_VALUE_MAX, None, "source"),
                     "destination": _token(r, True, 0, CHECK_VALUE_MAX, None, "destination"),
                     "why": _token(r, True, 0, CHECK_WHY_MAX, None, "why")})
    f["nrows"] = n
    f["rows"] = rows


def decode(ftype, payload):
    """Decode a frame of either direction: a dict with 'type' (name) and the
    fields.  Raises Malformed on any violation of sections 3 and 4 (PAGES:
    the header fields only, entries need the manifest; QSTREAM: the header
    only, items need the block table)."""
    r = Reader(payload)
    f = {"type": TYPE_NAMES.get(ftype, "UNKNOWN(%d)" % ftype)}
    if ftype == HELLO:
        _magic_version(f, r, "HELLO")
        f["caps"], f["max_frame"], f["seed"] = r.take(">IIQ")
        _max_frame(f, "HELLO")
    elif ftype == WELCOME:
        _magic_version(f, r, "WELCOME")
        f["caps"], f["max_frame"] = r.take(">II")
        f["session_id"] = r.raw(16).hex()
        _max_frame(f, "WELCOME")
    elif ftype == RESUME:
        _magic_version(f, r, "RESUME")
        f["max_frame"] = r.take(">I")
        f["session_id"] = r.raw(16).hex()
        f["proof"] = r.raw(32).hex()
    elif ftype == MANIFEST:
        _decode_manifest(f, r)
    elif ftype == PAGES:
        f["seq"], f["device"], f["round"], f["count"] = r.take(">QIII")
        r.p = len(payload)
    elif ftype == STATE:
        f["offset"] = r.take(">Q")
        f["data_len"] = len(payload) - 8
        r.p = len(payload)
    elif ftype == COMMIT:
        f["seq"], f["ndev"] = r.take(">QI")
        f["digests"] = [(r.take(">I"), r.raw(16).hex())
                        for _ in range(min(f["ndev"], MAX_DEVICES + 1))]
        f["state_digest"] = r.raw(16).hex()
    elif ftype == RESUMED:
        f["status"], f["next_seq"], f["state_offset"] = r.take(">IQQ")
    elif ftype == ACCEPT:
        f["next_seq"] = r.take(">Q")
    elif ftype in (ACK, COMMITTED):
        f["seq"] = r.take(">Q")
    elif ftype in (PING, PONG):
        f["nonce"] = r.take(">Q")
    elif ftype == REFUSE:
        f["code"], f["device"] = r.take(">II")
        f["text"] = _text(r)
    elif ftype == ERROR:
        f["code"] = r.take(">I")
        f["text"] = _text(r)
    elif ftype == DOMAIN:
        _decode_domain(f, r)
    elif ftype == CHECKS:
        _decode_checks(f, r)
    elif ftype == QSTREAM:
        f["seq"], f["stream_off"], f["count"] = r.take(">QQI")
        if f["seq"] == 0 or not 1 <= f["count"] <= MAX_ENTRIES:
            raise Malformed("QSTREAM seq %d count %d" % (f["seq"], f["count"]))
        r.p = len(payload)      # items need the session's block table
    elif ftype == HAVE:
        f["device"], f["first"], f["count"] = r.take(">III")
        if f["device"] == 0 or f["count"] == 0:
            raise Malformed("HAVE device %d count %d" % (f["device"], f["count"]))
        if len(payload) != HAVE_HDR_LEN + 16 * f["count"]:
            raise Malformed("HAVE count %d in %d bytes" % (f["count"], len(payload)))
        if f["first"] + f["count"] > 0xFFFFFFFF:
            raise Malformed("HAVE first %d + count %d" % (f["first"], f["count"]))
        r.p = len(payload)
    elif ftype == QRETURN:
        f["offset"] = r.take(">Q")
        f["data_len"] = len(payload) - 8
        if f["data_len"] < 1 or f["offset"] + f["data_len"] > QRETURN_MAX:
            raise Malformed("QRETURN offset %d + %d bytes" % (f["offset"], f["data_len"]))
        r.p = len(payload)
    else:
        raise Malformed("unknown frame type %d" % ftype)
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
    if t == "DOMAIN":
        return "DOMAIN flags=%d arch=%s model=%s uuid=%s waive=%s xml_len=%d" % (
            f["flags"], f["arch"], f["model"] or '""', f["uuid"] or '""',
            ",".join(f["waive"]) or "-", f["xml_len"])
    if t == "CHECKS":
        return "CHECKS " + "; ".join("%s %s %s%s" % (
            r["status"], r["name"], r["code_name"], " (%s)" % r["why"] if r["why"] else "")
            for r in f["rows"])
    fields = " ".join("%s=%s" % (k, v) for k, v in f.items() if k != "type")
    return ("%s %s" % (t, fields)).rstrip()


def token(f):
    """What expectations compare: the type, plus the code name for ERROR
    and REFUSE ("ERROR:PROTO_RANGE")."""
    if f["type"] in ("ERROR", "REFUSE"):
        return "%s:%s" % (f["type"], f["code_name"])
    return f["type"]

# ---- TLS 1.3 exporter (RFC 8446 7.1, 7.5) and resume proofs ----------------


def _hkdf_expand_label(hname, secret, label, context, length):
    full = b"tls13 " + label
    info = (struct.pack(">HB", length, len(full)) + full
            + struct.pack(">B", len(context)) + context)
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(secret, t + info + bytes([i]), hname).digest()
        out += t
        i += 1
    return out[:length]


def tls13_exporter(hname, exporter_secret, label, context, length):
    """TLS-Exporter(label, context, length) from the exporter master
    secret of a TLS 1.3 connection whose cipher suite hash is hname."""
    empty = hashlib.new(hname, b"").digest()
    derived = _hkdf_expand_label(hname, exporter_secret, label, empty,
                                 len(empty))
    return _hkdf_expand_label(hname, derived, b"exporter",
                              hashlib.new(hname, context).digest(), length)


def resume_proof(key, session_id, bind):
    return hmac.new(key, RESUME_PROOF_PREFIX + session_id + bind,
                    "sha256").digest()

# ---- connections ---------------------------------------------------------------


class Closed(Exception):
    """The peer's stream ended; kind says how."""

    def __init__(self, kind):
        Exception.__init__(self, kind)
        self.kind = kind


class Frame:
    """A frame as read: header fields, payload, and the decoded fields (f)
    or why they did not decode (malformed)."""

    def __init__(self, ftype, flags, rsv, length, payload):
        self.type, self.flags, self.rsv, self.length = ftype, flags, rsv, length
        self.payload = payload
        self.name = TYPE_NAMES.get(ftype, "type %d" % ftype)
        self.f, self.malformed = None, None
        try:
            if flags or rsv:
                raise Malformed("flags %d reserved %d" % (flags, rsv))
            lo, hi = PAYLOAD_BOUNDS.get(ftype, (0, None))
            if length < lo or (hi is not None and length > hi):
                raise Malformed("length %d outside the section 4 bounds" % length)
            self.f = decode(ftype, payload)
        except Malformed as e:
            self.malformed = "%s: %s" % (self.name, e)

    def token(self):
        return token(self.f) if self.f else self.name

    def describe(self):
        if self.f:
            return describe(self.f)
        return "%s (malformed: %s)" % (self.name, self.malformed)


def hash_name(cipher_name):
    return "sha384" if cipher_name.endswith("SHA384") else "sha256"


class TLSConfig:
    """Certificates and names, with the meaning ferry's daemons give them:
    ca verifies the peer, cert/key are ours; peer_name is the name the
    server certificate must carry (client side) or the client certificate
    must carry (server side; None accepts any name the CA signed)."""

    def __init__(self, ca, cert, key, peer_name=None):
        self.ca, self.cert, self.key, self.peer_name = ca, cert, key, peer_name
        self.tmp = tempfile.mkdtemp(prefix="ferry-wire-")
        self.nconn = 0

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _context(self, server, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server
                             else ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.options |= ssl.OP_NO_TICKET
        ctx.load_cert_chain(cert or self.cert, key or self.key)
        ctx.load_verify_locations(self.ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
        self.nconn += 1
        keylog = os.path.join(self.tmp, "keylog-%d" % self.nconn)
        ctx.keylog_filename = keylog
        return ctx, keylog

    def connect(self, host, port, timeout, cert=None, key=None, raw=None):
        """A client connection (TLS done).  raw: an already connected TCP
        socket to use."""
        ctx, keylog = self._context(False, cert, key)
        if raw is None:
            raw = socket.create_connection((host, port), timeout=timeout)
        raw.settimeout(timeout)
        try:
            s = ctx.wrap_socket(raw, server_hostname=self.peer_name,
                                suppress_ragged_eofs=False)
        except BaseException:
            raw.close()
            raise
        return Conn(s, keylog)

    def accept(self, raw, timeout):
        """The server side of a TLS handshake on an accepted socket."""
        ctx, keylog = self._context(True, None, None)
        raw.settimeout(timeout)
        try:
            s = ctx.wrap_socket(raw, server_side=True,
                                suppress_ragged_eofs=False)
        except BaseException:
            raw.close()
            raise
        c = Conn(s, keylog)
        if self.peer_name is not None:
            names = [v for k, v in s.getpeercert().get("subjectAltName", ())]
            if self.peer_name not in names:
                c.cut()
                raise ssl.SSLError("client certificate names %s, not %s"
                                   % (names, self.peer_name))
        return c


class Conn:
    """One TLS connection carrying frames."""

    def __init__(self, s, keylog=None):
        self.s = s
        self.keylog = keylog
        self.close_kind = None
        self.send_error = None
        self._secret = None

    # -- sending
    def send(self, data):
        """Send bytes; False (and send_error set) when the peer is gone,
        which is not an error for a test: its answer may still be read."""
        try:
            self.s.sendall(data)
            return True
        except (OSError, ssl.SSLError, ValueError) as e:
            self.send_error = str(e) or e.__class__.__name__
            return False

    # -- receiving
    def _exact(self, n, deadline):
        buf = b""
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.s.settimeout(left)
            try:
                chunk = self.s.recv(min(n - len(buf), 1 << 16))
            except ssl.SSLEOFError:
                self.close_kind = "no close_notify (truncated)"
                raise Closed(self.close_kind)
            except ssl.SSLError as e:
                self.close_kind = "TLS error: %s" % e
                raise Closed(self.close_kind)
            except (ConnectionResetError, BrokenPipeError):
                self.close_kind = "connection reset"
                raise Closed(self.close_kind)
            except OSError as e:
                if isinstance(e, socket.timeout):
                    raise
                self.close_kind = "socket error: %s" % e
                raise Closed(self.close_kind)
            if chunk == b"":
                self.close_kind = "close_notify"
                raise Closed(self.close_kind)
            buf += chunk
        return buf

    def recv_frame(self, timeout, limit=MAX_FRAME_LIMIT):
        """The next frame; raises Closed at the end of the stream (also
        inside a frame: close_kind then says so) and socket.timeout when
        nothing came in time.  A length above limit is not read: the frame
        comes back with an empty payload and malformed set."""
        deadline = time.monotonic() + timeout
        hdr = self._exact(HDR_LEN, deadline)
        ftype, flags, rsv, length = HDR.unpack(hdr)
        if length > limit:
            fr = Frame(ftype, flags, rsv, length, b"")
            fr.malformed = "%s: length %d > %d" % (fr.name, length, limit)
            fr.f = None
            return fr
        try:
            payload = self._exact(length, deadline)
        except Closed:
            self.close_kind += " inside a %s frame" % TYPE_NAMES.get(ftype, ftype)
            raise
        return Frame(ftype, flags, rsv, length, payload)

    # -- ending
    def close_notify(self, timeout=2.0):
        """Send a TLS close_notify and wait for the peer's answering
        close_notify (recorded in close_kind)."""
        try:
            self.s.settimeout(timeout)
            self.s.unwrap()
            self.close_kind = "close_notify"
        except (OSError, ssl.SSLError, ValueError):
            pass
        self.cut()

    def cut(self):
        """Close the TCP connection without a close_notify (a cut)."""
        try:
            self.s.close()
        except OSError:
            pass

    # -- TLS exporter
    def exporter(self, label, context, length):
        if self._secret is None:
            line = None
            if self.keylog and os.path.exists(self.keylog):
                with open(self.keylog) as f:
                    for ln in f:
                        if ln.startswith("EXPORTER_SECRET "):
                            line = ln
                os.unlink(self.keylog)
            if line is None:
                raise RuntimeError("no TLS 1.3 exporter secret in the key log")
            self._secret = bytes.fromhex(line.split()[2])
        return tls13_exporter(hash_name(self.s.cipher()[0]), self._secret,
                              label, context, length)

    def resume_key(self, session_id):
        return self.exporter(RESUME_KEY_LABEL, session_id, 32)

    def resume_proof(self, key, session_id):
        """The proof for a RESUME sent on this connection."""
        return resume_proof(key, session_id,
                            self.exporter(RESUME_BIND_LABEL, session_id, 32))

    def peer_names(self):
        return [v for k, v in self.s.getpeercert().get("subjectAltName", ())]


def pattern_bytes(tag, n=4096):
    """n deterministic, incompressible-looking bytes named by tag."""
    out = b""
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"%s-%d" % (tag.encode(), i)).digest()
        i += 1
    return out[:n]
