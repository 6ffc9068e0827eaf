#!/usr/bin/env python3
"""Generate the ferry wire test vectors in proto/vectors/ (format: README.md).

Written from proto/PROTOCOL.md alone: every frame is built here field by
field with struct.pack, never with ferry's own encoders, so that
tests/test_vectors.c checks the C codec against an independent reading of
the specification.  LZ4 blocks are assembled by hand from sequences (the
lz4 block format: token, literal-length bytes, literals, 2-byte little-endian
offset, match-length bytes; the last sequence is literals only) and checked
with the small block decoder below.

Usage: python3 proto/vectors/make_vectors.py [--check]
  (no option)  rewrite every *.vec file in this directory
  --check      exit 1 when the files on disk differ from what would be written

Only the standard library is used.  Output is deterministic.
"""
import hashlib
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- constants, PROTOCOL.md sections 3, 4 and 7 ----------------------------

MAGIC = 0x46525931                      # 4.1 "FRY1"
VERSION = 1
MAX_FRAME_MIN = 1024 * 1024 + 4096      # 3.3
MAX_FRAME_DEFAULT = 1024 * 1024 + 4096  # 3.3
MAX_FRAME_LIMIT = 16 * 1024 * 1024      # 3.3
MAX_DEVICES = 64                        # 4.3
STATE_SIZE_MAX = 256 * 1024 * 1024      # 4.3
DEVICE_SIZE_MAX = 1 << 46               # 4.3
MAX_TOTAL_UNITS = 1 << 24               # 4.3
MAX_PAGES = 4096                        # 4.6
TEXT_MAX = 1024                         # 4.5, 4.11

TYPES = {
    "HELLO": 1, "WELCOME": 2, "MANIFEST": 3, "ACCEPT": 4, "REFUSE": 5,
    "PAGES": 6, "ACK": 7, "STATE": 8, "COMMIT": 9, "COMMITTED": 10,
    "ERROR": 11, "RESUME": 12, "RESUMED": 13, "PING": 14, "PONG": 15,
    "DOMAIN": 16, "CHECKS": 17, "QSTREAM": 18, "QRETURN": 19, "HAVE": 20,
}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
# Section 4 table: direction of each type.
DIRS = {
    "HELLO": "S2R", "WELCOME": "R2S", "MANIFEST": "S2R", "ACCEPT": "R2S",
    "REFUSE": "R2S", "PAGES": "S2R", "ACK": "R2S", "STATE": "S2R",
    "COMMIT": "S2R", "COMMITTED": "R2S", "ERROR": "both", "RESUME": "S2R",
    "RESUMED": "R2S", "PING": "both", "PONG": "both", "DOMAIN": "S2R",
    "CHECKS": "R2S", "QSTREAM": "S2R", "QRETURN": "R2S", "HAVE": "R2S",
}
CODES = {  # section 7
    "PROTO": 10, "PROTO_TYPE": 11, "PROTO_LENGTH": 12, "PROTO_STATE": 13,
    "PROTO_RANGE": 14, "PROTO_CODEC": 15, "PROTO_HASH": 16,
    "PROTO_VERSION": 17, "PROTO_RESUME": 18, "PROTO_FLOOD": 19,
    "REFUSED": 20, "REFUSE_SIZE": 21, "REFUSE_COUNT": 22,
    "REFUSE_SAMEFILE": 23, "REFUSE_SPACE": 24, "REFUSE_UNIT": 25,
    "REFUSE_NAME": 26, "REFUSE_BUSY": 27, "REFUSE_DIR": 28, "IO": 30,
    "NOMEM": 31, "VERIFY": 34, "TIMEOUT": 35, "ABORTED": 36, "INTERNAL": 40,
    "VIRT": 50, "VIRT_XML": 51, "VIRT_CDROM": 52, "VIRT_HOSTDEV": 53,
    "VIRT_SHAREABLE": 54, "VIRT_READONLY": 55, "VIRT_NOTFILE": 56,
    "VIRT_CACHE": 57, "VIRT_ARCH": 58, "VIRT_CPU_MODEL": 59, "VIRT_CPUS": 60,
    "VIRT_MEMORY": 61, "VIRT_IMAGES": 62,
}
CODE_NAMES = {v: k for k, v in CODES.items()}
DK = {"memory": 1, "disk": 2, "qemu": 3}
DK_NAMES = {1: "memory", 2: "disk", 3: "qemu"}
PK = {"ZERO": 1, "REF": 2, "LZ4": 3, "RAW": 4}
PK_NAMES = {v: k for k, v in PK.items()}
RSM_NAMES = {1: "RECEIVING", 2: "COMMITTED", 3: "FAILED"}
# Sections 4.15, 4.16: DOMAIN and CHECKS
CAP_DOMAIN = 1
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
CS_NAMES = {1: "PASS", 2: "FAIL", 3: "WAIVED"}
# Sections 4.17, 4.18: QSTREAM and QRETURN (CAP_QEMU)
CAP_QEMU = 2
QI_NAMES = {1: "OPAQUE", 2: "BLOCKS", 3: "PAGE"}
QREC_DATA, QREC_CONT = 1, 2
QPAGE = 4096
QBLOCKS_MAX = 256
QBLOCK_ID_MAX = 255
QRETURN_MAX = 1024 * 1024
QITEM_MIN = 6
# Section 4.19: HAVE (CAP_REUSE)
CAP_REUSE = 4
HAVE_HDR_LEN = 12
HASH_LEN = 16


def u8(v): return struct.pack(">B", v)
def u16(v): return struct.pack(">H", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)


def det_bytes(tag, n):
    """n deterministic pseudo-random bytes named by tag (SHA-256 counter)."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(("%s/%d" % (tag, i)).encode()).digest()
        i += 1
    return bytes(out[:n])


def fnv1a64(b):
    h = 0xcbf29ce484222325
    for c in b:
        h ^= c
        h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


# ---- lz4 block format --------------------------------------------------------

def _lz4_len_bytes(n):
    """Extra length bytes after a token nibble of 15: n - 15 as 255s + rest."""
    out = bytearray()
    n -= 15
    while n >= 255:
        out.append(255)
        n -= 255
    out.append(n)
    return bytes(out)


def lz4_block(seqs, last_literals):
    """seqs: [(literals, offset, match_len)], then the final literals."""
    out = bytearray()
    for lit, off, mlen in seqs:
        assert mlen >= 4 and 1 <= off <= 65535
        ln, ml = len(lit), mlen - 4
        out.append((min(ln, 15) << 4) | min(ml, 15))
        if ln >= 15:
            out += _lz4_len_bytes(ln)
        out += lit
        out += struct.pack("<H", off)
        if ml >= 15:
            out += _lz4_len_bytes(ml)
    ln = len(last_literals)
    out.append(min(ln, 15) << 4)
    if ln >= 15:
        out += _lz4_len_bytes(ln)
    out += last_literals
    return bytes(out)


def lz4_unblock(b):
    """Decode an lz4 block; raises ValueError when malformed."""
    out = bytearray()
    i = 0
    while True:
        if i >= len(b):
            raise ValueError("no token")
        tok = b[i]
        i += 1
        ln = tok >> 4
        if ln == 15:
            while True:
                if i >= len(b):
                    raise ValueError("literal length runs past the end")
                x = b[i]
                i += 1
                ln += x
                if x != 255:
                    break
        if i + ln > len(b):
            raise ValueError("literals run past the end")
        out += b[i:i + ln]
        i += ln
        if i == len(b):
            return bytes(out)
        if i + 2 > len(b):
            raise ValueError("offset runs past the end")
        off = b[i] | (b[i + 1] << 8)
        i += 2
        if off == 0 or off > len(out):
            raise ValueError("bad offset")
        ml = tok & 15
        if ml == 15:
            while True:
                if i >= len(b):
                    raise ValueError("match length runs past the end")
                x = b[i]
                i += 1
                ml += x
                if x != 255:
                    break
        ml += 4
        for _ in range(ml):
            out.append(out[-off])


def lz4_checked(seqs, last, unit_len):
    """Build a block and check it follows the end-of-block rules (last 5
    bytes literals, last match starting at least 12 bytes before the end)
    and decodes to exactly unit_len bytes.  Returns (block, unit bytes)."""
    blk = lz4_block(seqs, last)
    unit = lz4_unblock(blk)
    assert len(unit) == unit_len, (len(unit), unit_len)
    assert len(last) >= 5
    if seqs:
        lit, _, mlen = seqs[-1]
        assert len(last) + mlen >= 12
    return blk, unit


TEXT = b"mov rax, rbx ; call memcpy ; the page buffer count "


def lz4_text_unit(unit_len, salt):
    """A compressible unit: a text line, then a long match repeating it."""
    lit = bytes([0x41 + salt % 26]) + TEXT[1:]
    last = b"<end>"
    m = unit_len - len(lit) - len(last)
    return lz4_checked([(lit, len(lit), m)], last, unit_len)


def lz4_exact(unit_len, clen, tag):
    """A block of exactly clen bytes decoding to unit_len bytes: random
    literals, one match of a recent stretch, random final literals."""
    def ext(n):
        return 0 if n < 15 else 1 + (n - 15) // 255
    for last_n in range(5, 40):
        for m in range(4, 600):
            lit_n = unit_len - m - last_n
            size = 1 + ext(lit_n) + lit_n + 2 + ext(m - 4) + 1 + ext(last_n) + last_n
            if size == clen and last_n + m >= 12 and lit_n >= 100:
                lit = det_bytes(tag + "/lit", lit_n)
                last = det_bytes(tag + "/last", last_n)
                blk, unit = lz4_checked([(lit, 97, m)], last, unit_len)
                assert len(blk) == clen
                return blk, unit
    raise AssertionError("no block of %d bytes for %d" % (clen, unit_len))


# ---- frames --------------------------------------------------------------------

class Part:
    """Bytes of one field with a comment; pack=True folds many small parts
    into dense hex lines (for thousands of entries)."""
    def __init__(self, data, comment="", pack=False):
        self.data = data
        self.comment = comment
        self.pack = pack


def header(ftype, length, flags=0, reserved=0):
    name = TYPE_NAMES.get(ftype, "unknown")
    c = "header: type %d (%s), flags %d, reserved %d, length %d" % (
        ftype, name, flags, reserved, length)
    return Part(struct.pack(">BBHI", ftype, flags, reserved, length), c)


def plen(parts):
    return sum(len(p.data) for p in parts)


class Msg:
    """A payload (list of Parts) and the fields a decoder must report."""
    def __init__(self, ftype, parts, fields):
        self.type = ftype
        self.parts = parts
        self.fields = fields

    def frame(self, length=None, flags=0, reserved=0, ftype=None):
        t = self.type if ftype is None else ftype
        n = plen(self.parts) if length is None else length
        return [header(t, n, flags, reserved)] + self.parts


def q(s):
    """A field string value: quoted, with \\\\, \\" and \\xHH escapes."""
    out = '"'
    for c in s:
        if c == 0x5c:
            out += "\\\\"
        elif c == 0x22:
            out += '\\"'
        elif 0x20 <= c <= 0x7e:
            out += chr(c)
        else:
            out += "\\x%02x" % c
    return out + '"'


def hx(b):
    return b.hex()


def hello(magic=MAGIC, version=VERSION, reserved=0, caps=0,
          max_frame=MAX_FRAME_DEFAULT, seed=0x0123456789ABCDEF):
    parts = [Part(u32(magic), "magic"), Part(u16(version), "version"),
             Part(u16(reserved), "reserved"), Part(u32(caps), "caps"),
             Part(u32(max_frame), "max_frame"), Part(u64(seed), "hash_seed")]
    return Msg(1, parts, [("version", version), ("caps", caps),
                          ("max_frame", max_frame), ("hash_seed", "0x%016x" % seed)])


def welcome(magic=MAGIC, version=VERSION, reserved=0, caps=0,
            max_frame=MAX_FRAME_DEFAULT, sid=None):
    sid = sid if sid is not None else det_bytes("session", 16)
    parts = [Part(u32(magic), "magic"), Part(u16(version), "version"),
             Part(u16(reserved), "reserved"), Part(u32(caps), "caps"),
             Part(u32(max_frame), "max_frame"), Part(sid, "session_id")]
    return Msg(2, parts, [("version", version), ("caps", caps),
                          ("max_frame", max_frame), ("session_id", hx(sid))])


class Dev:
    def __init__(self, id, name, kind=1, unit=4096, size=16384, src_dev=0,
                 src_ino=0, reserved=0, name_len=None):
        self.id, self.name, self.kind, self.unit, self.size = id, name, kind, unit, size
        self.src_dev, self.src_ino, self.reserved = src_dev, src_ino, reserved
        self.name_len = len(name) if name_len is None else name_len

    def units(self):
        return (self.size + self.unit - 1) // self.unit

    def unit_len(self, i):
        return min(self.unit, self.size - i * self.unit)

    def context(self):
        return "device id=%d kind=%s unit=%d size=%d" % (
            self.id, DK_NAMES.get(self.kind, str(self.kind)), self.unit, self.size)


def manifest(devs, state_size=0, state_name=b"", ndev=None, snl=None,
             trailing=b"", cut=None):
    ndev = len(devs) if ndev is None else ndev
    snl = len(state_name) if snl is None else snl
    parts = [Part(u32(ndev), "ndev"), Part(u64(state_size), "state_size"),
             Part(u16(snl), "state_name_len")]
    if state_name:
        parts.append(Part(state_name, "state_name " + q(state_name)))
    fields = [("ndev", ndev), ("state_size", state_size), ("state_name", q(state_name))]
    for i, d in enumerate(devs):
        parts.append(Part(u32(d.id) + u8(d.kind) + u8(d.reserved) + u16(d.name_len) +
                          u32(d.unit) + u64(d.size) + u64(d.src_dev) + u64(d.src_ino),
                          "device %d: id %d, kind %d, reserved %d, name_len %d, unit %d, "
                          "size %d, src_dev %d, src_ino %d" % (
                              i, d.id, d.kind, d.reserved, d.name_len, d.unit, d.size,
                              d.src_dev, d.src_ino)))
        if d.name:
            parts.append(Part(d.name, "device %d name %s" % (i, q(d.name))))
        for k, v in (("id", d.id), ("kind", DK_NAMES.get(d.kind, d.kind)),
                     ("name", q(d.name)), ("unit", d.unit), ("size", d.size),
                     ("src_dev", d.src_dev), ("src_ino", d.src_ino)):
            fields.append(("dev[%d].%s" % (i, k), v))
    if trailing:
        parts.append(Part(trailing, "trailing bytes"))
    if cut is not None:
        parts = cut_parts(parts, cut)
    return Msg(3, parts, fields)


def cut_parts(parts, n):
    """The first n payload bytes of parts."""
    out = []
    for p in parts:
        if n <= 0:
            break
        if len(p.data) <= n:
            out.append(p)
            n -= len(p.data)
        else:
            out.append(Part(p.data[:n], p.comment + " (cut to %d of %d bytes)" % (n, len(p.data))))
            n = 0
    return out


def seqmsg(ftype, v, what="seq"):
    return Msg(ftype, [Part(u64(v), what)], [(what, v)])


def text_msg(ftype, code, text, device=None, text_len=None, trailing=b""):
    tl = len(text) if text_len is None else text_len
    parts = [Part(u32(code), "code")]
    fields = [("code", code)]
    if device is not None:
        parts.append(Part(u32(device), "device"))
        fields.append(("device", device))
    parts.append(Part(u16(tl), "text_len"))
    if text:
        if len(text) > 64:
            parts += [Part(text[i:i + 32], "text" if i == 0 else "", pack=False)
                      for i in range(0, len(text), 32)]
        else:
            parts.append(Part(text, "text " + q(text)))
    if trailing:
        parts.append(Part(trailing, "trailing bytes"))
    fields.append(("text", q(text)))
    return Msg(ftype, parts, fields)


class Entry:
    def __init__(self, index, kind, **kw):
        self.index, self.kind = index, kind
        self.kw = kw


def pages(dev, entries, seq=1, round=1, count=None, device=None, trailing=b"",
          dense=False, range_fields=None):
    """A PAGES frame for dev.  Entries: ZERO; REF(src_device, src_index,
    hash); LZ4(block, unit) or LZ4(clen=, data=); RAW(data); any kind number
    with raw= bytes for malformed entries."""
    device = dev.id if device is None else device
    count = len(entries) if count is None else count
    parts = [Part(u64(seq), "seq"), Part(u32(device), "device"),
             Part(u32(round), "round"), Part(u32(count), "count")]
    fields = [("seq", seq), ("device", device), ("round", round), ("count", count)]
    for n, e in enumerate(entries):
        k = e.kind
        head = u32(e.index) + u8(k)
        kn = PK_NAMES.get(k, "kind %d" % k)
        ulen = dev.unit_len(e.index) if e.index < dev.units() else 0
        pre = "entry[%d]." % n
        if not range_fields:
            fields += [(pre + "index", e.index), (pre + "kind", kn), (pre + "len", ulen)]
        c = "entry %d: index %d, %s" % (n, e.index, kn)
        if dense:
            parts.append(Part(head, "", pack=True))
        elif k == 1:
            parts.append(Part(head, c))
        elif k == 2:
            h = e.kw.get("hash", det_bytes("hash/%d/%d" % (e.index, n), 16))
            sd, si = e.kw["src_device"], e.kw["src_index"]
            body = head + u32(sd) + u32(si) + h
            if "cut" in e.kw:
                body = body[:e.kw["cut"]]
                c += " (cut to %d bytes)" % len(body)
            else:
                c += ", src_device %d, src_index %d, hash" % (sd, si)
            parts.append(Part(body, c))
            fields += [(pre + "src_device", sd), (pre + "src_index", si), (pre + "hash", hx(h))]
        elif k == 3:
            data = e.kw["data"]
            clen = e.kw.get("clen", len(data))
            parts.append(Part(head + u32(clen), c + ", clen %d" % clen))
            if data:
                parts += [Part(data[i:i + 32], "lz4 block" if i == 0 else "")
                          for i in range(0, len(data), 32)]
            fields += [(pre + "clen", clen), (pre + "data_fnv1a64", "0x%016x" % fnv1a64(data))]
            if "unit" in e.kw:
                fields.append((pre + "unit_fnv1a64", "0x%016x" % fnv1a64(e.kw["unit"])))
        elif k == 4:
            data = e.kw["data"]
            parts.append(Part(head, c + ", %d bytes follow" % len(data)))
            parts += [Part(data[i:i + 32], "unit bytes" if i == 0 else "")
                      for i in range(0, len(data), 32)]
            fields.append((pre + "data_fnv1a64", "0x%016x" % fnv1a64(data)))
        else:
            parts.append(Part(head + e.kw.get("raw", b""), c))
    if range_fields:
        fields += range_fields
    if trailing:
        parts.append(Part(trailing, "trailing bytes"))
    return Msg(6, parts, fields)


def state(offset, data):
    return Msg(8, [Part(u64(offset), "offset"), Part(data, "data")],
               [("offset", offset), ("len", len(data)), ("data", hx(data))])


def commit(seq, devs, state_digest=None, ndev=None, trailing=b""):
    ndev = len(devs) if ndev is None else ndev
    sd = state_digest if state_digest is not None else bytes(16)
    parts = [Part(u64(seq), "seq"), Part(u32(ndev), "ndev")]
    fields = [("seq", seq), ("ndev", ndev)]
    for i, (did, dg) in enumerate(devs):
        parts.append(Part(u32(did) + dg, "device %d: id %d, digest" % (i, did)))
        fields += [("dev[%d].id" % i, did), ("dev[%d].digest" % i, hx(dg))]
    parts.append(Part(sd, "state_digest"))
    fields.append(("state_digest", hx(sd)))
    if trailing:
        parts.append(Part(trailing, "trailing bytes"))
    return Msg(9, parts, fields)


def resume(magic=MAGIC, version=VERSION, reserved=0, max_frame=MAX_FRAME_DEFAULT):
    sid = det_bytes("session", 16)
    proof = det_bytes("proof", 32)
    parts = [Part(u32(magic), "magic"), Part(u16(version), "version"),
             Part(u16(reserved), "reserved"), Part(u32(max_frame), "max_frame"),
             Part(sid, "session_id"), Part(proof, "proof")]
    return Msg(12, parts, [("version", version), ("max_frame", max_frame),
                           ("session_id", hx(sid)), ("proof", hx(proof))])


def resumed(status, next_seq, state_offset):
    parts = [Part(u32(status), "status"), Part(u64(next_seq), "next_seq"),
             Part(u64(state_offset), "state_offset")]
    return Msg(13, parts, [("status", RSM_NAMES.get(status, status)),
                           ("next_seq", next_seq), ("state_offset", state_offset)])


def domain(flags=0, arch=b"x86_64", model=b"Skylake-Client", uuid=b"", waive=(),
           xml=None, nwaive=None, xml_len=None, trailing=b"", cut=None,
           lens=None):
    """A DOMAIN payload (4.15).  lens overrides the length bytes of arch,
    model and uuid (a dict) to lie about them."""
    xml = DOMAIN_XML if xml is None else xml
    lens = lens or {}
    nw = len(waive) if nwaive is None else nwaive
    xl = len(xml) if xml_len is None else xml_len
    parts = [Part(u32(flags), "flags")]
    for k, v in (("arch", arch), ("model", model), ("uuid", uuid)):
        n = lens.get(k, len(v))
        parts.append(Part(u8(n) + v, "%s_len %d, %s %s" % (k, n, k, q(v))))
    parts.append(Part(u8(nw), "nwaive"))
    for i, w in enumerate(waive):
        parts.append(Part(u8(len(w)) + w, "waived check %d: len %d, %s" % (i, len(w), q(w))))
    parts.append(Part(u32(xl), "xml_len"))
    parts += [Part(xml[i:i + 32], "xml" if i == 0 else "") for i in range(0, len(xml), 32)]
    if trailing:
        parts.append(Part(trailing, "trailing bytes"))
    if cut is not None:
        parts = cut_parts(parts, cut)
    fields = [("flags", flags), ("arch", q(arch)), ("model", q(model)), ("uuid", q(uuid)),
              ("nwaive", nw)]
    fields += [("waive[%d]" % i, q(w)) for i, w in enumerate(waive)]
    fields += [("xml_len", xl), ("xml", q(xml))]
    return Msg(16, parts, fields)


DOMAIN_XML = (b"<domain type='kvm'>\n  <name>web1</name>\n"
              b"  <uuid>0b5e5a7c-1f2d-4c3b-9a8e-7d6c5b4a3f21</uuid>\n"
              b"  <memory unit='KiB'>1048576</memory>\n  <vcpu>2</vcpu>\n"
              b"  <os><type arch='x86_64'>hvm</type></os>\n  <devices>\n"
              b"    <disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/>"
              b"<source file='/var/lib/ferry/web1-vda.img'/><target dev='vda'/></disk>\n"
              b"  </devices>\n</domain>\n")
HOST_UUID = b"4c4c4544-0051-3010-8052-b4c04f4e3332"


class Row:
    """One CHECKS row (4.16)."""
    def __init__(self, status, code, name, src=b"", dst=b"", why=b""):
        self.status, self.code, self.name = status, code, name
        self.src, self.dst, self.why = src, dst, why


def shown(b):
    """Text as a decoder shows it: control bytes replaced with '?'."""
    return bytes(0x3f if c < 0x20 or c == 0x7f else c for c in b)


def checks(rows, nrows=None, trailing=b"", cut=None):
    n = len(rows) if nrows is None else nrows
    parts = [Part(u16(n), "nrows")]
    fields = [("nrows", n)]
    for i, r in enumerate(rows):
        parts.append(Part(u8(r.status) + u32(r.code), "row %d: status %d (%s), code %d (%s)" % (
            i, r.status, CS_NAMES.get(r.status, "?"), r.code, CODE_NAMES.get(r.code, "-"))))
        parts.append(Part(u8(len(r.name)) + r.name, "row %d name %s" % (i, q(r.name))))
        for what, v in (("source", r.src), ("destination", r.dst), ("why", r.why)):
            b = u16(len(v)) + v
            if len(b) <= 32:
                parts.append(Part(b, "row %d %s %s" % (i, what, q(v))))
            else:
                parts += [Part(b[k:k + 32], "row %d %s (%d bytes)" % (i, what, len(v)) if k == 0
                               else "") for k in range(0, len(b), 32)]
        pre = "row[%d]." % i
        fields += [(pre + "status", CS_NAMES.get(r.status, r.status)),
                   (pre + "code", CODE_NAMES.get(r.code, r.code)), (pre + "name", q(r.name)),
                   (pre + "source", q(shown(r.src))), (pre + "destination", q(shown(r.dst))),
                   (pre + "why", q(shown(r.why)))]
    if trailing:
        parts.append(Part(trailing, "trailing bytes"))
    if cut is not None:
        parts = cut_parts(parts, cut)
    return Msg(17, parts, fields)


class QItem:
    """One QSTREAM item (4.17).  kind "OPAQUE": data (len= to lie about the
    length); "BLOCKS": blocks = [(id, len)] (n= to lie about the count);
    "PAGE": rec, block, offset, pk and its payload: REF src=(block, offset)
    and hash; LZ4 data (the lz4 block, clen= to lie) and page (what it
    decodes to); RAW data.  raw= appends bytes after the fixed part of a
    malformed item."""
    def __init__(self, kind, **kw):
        self.kind = kind
        self.kw = kw


def qopaque(data, **kw):
    return QItem("OPAQUE", data=data, **kw)


def qblocks(blocks, **kw):
    return QItem("BLOCKS", blocks=blocks, **kw)


def qpage(rec, block, offset, pk, **kw):
    return QItem("PAGE", rec=rec, block=block, offset=offset, pk=pk, **kw)


def qtype(b):
    return QI_NAMES.get(b, "type %d" % b)


def qstream(items, seq=1, stream_off=0, count=None, table=(), trailing=b"", dense=False,
            range_fields=None):
    """A QSTREAM payload.  table: the session's block table before this
    frame ((id, len) pairs, also the vector's context)."""
    tab = list(table)
    count = len(items) if count is None else count
    parts = [Part(u64(seq), "seq"), Part(u64(stream_off), "stream_off"), Part(u32(count), "count")]
    fields = [("seq", seq), ("stream_off", stream_off), ("count", count)]
    for i, it in enumerate(items):
        kw = it.kw
        pre = "item[%d]." % i
        if not range_fields:
            fields.append((pre + "type", it.kind))
        if it.kind == "OPAQUE":
            data = kw["data"]
            n = kw.get("len", len(data))
            if dense:
                parts.append(Part(u8(1) + u32(n) + data, "", pack=True))
            else:
                parts.append(Part(u8(1) + u32(n), "item %d: OPAQUE, len %d" % (i, n)))
                if data:
                    parts += [Part(data[k:k + 32], "opaque bytes" if k == 0 else "")
                              for k in range(0, len(data), 32)]
            if not range_fields:
                fields += [(pre + "len", n), (pre + "data", hx(data))]
        elif it.kind == "BLOCKS":
            blocks = kw["blocks"]
            n = kw.get("n", len(blocks))
            parts.append(Part(u8(2) + u16(n), "item %d: BLOCKS, n %d" % (i, n)))
            fields.append((pre + "nblocks", n))
            for j, (bid, blen) in enumerate(blocks):
                shown = q(bid) if len(bid) <= 40 else "%d bytes" % len(bid)
                parts.append(Part(u8(len(bid)) + bid + u64(blen),
                                  "block %d: id_len %d, id %s, len %d" % (j, len(bid), shown, blen)))
                fields += [(pre + "block[%d].id" % j, q(bid)), (pre + "block[%d].len" % j, blen)]
            tab = list(blocks)
        elif it.kind == "PAGE":
            rec, blk, off, pk = kw["rec"], kw["block"], kw["offset"], kw["pk"]
            kn = PK_NAMES.get(pk, "kind %d" % pk)
            c = "item %d: PAGE, rec %d, block %d, offset %d, %s" % (i, rec, blk, off, kn)
            head = u8(3) + u8(rec) + u16(blk) + u64(off) + u8(pk)
            idl = len(tab[blk][0]) if blk < len(tab) else 0
            rlen = 8 + (0 if rec & QREC_CONT else 1 + idl) + (QPAGE if rec & QREC_DATA else 1)
            fields += [(pre + "rec", rec), (pre + "block", blk), (pre + "offset", off),
                       (pre + "kind", kn), (pre + "len", rlen)]
            if pk == 2 and "raw" not in kw:
                sb, so = kw["src"]
                h = kw.get("hash", det_bytes("qhash/%d" % i, 16))
                parts.append(Part(head, c))
                parts.append(Part(u16(sb) + u64(so) + h,
                                  "src_block %d, src_offset %d, hash" % (sb, so)))
                fields += [(pre + "src_block", sb), (pre + "src_offset", so), (pre + "hash", hx(h))]
            elif pk == 3 and "raw" not in kw:
                data = kw["data"]
                clen = kw.get("clen", len(data))
                parts.append(Part(head + u32(clen), c + ", clen %d" % clen))
                if data:
                    parts += [Part(data[k:k + 32], "lz4 block" if k == 0 else "")
                              for k in range(0, len(data), 32)]
                fields += [(pre + "clen", clen), (pre + "data_fnv1a64", "0x%016x" % fnv1a64(data))]
                if "page" in kw:
                    fields.append((pre + "page_fnv1a64", "0x%016x" % fnv1a64(kw["page"])))
            elif pk == 4 and "raw" not in kw:
                data = kw["data"]
                parts.append(Part(head, c + ", %d bytes follow" % len(data)))
                parts += [Part(data[k:k + 32], "page bytes" if k == 0 else "")
                          for k in range(0, len(data), 32)]
                fields.append((pre + "data_fnv1a64", "0x%016x" % fnv1a64(data)))
            else:
                parts.append(Part(head, c))
                if kw.get("raw"):
                    parts.append(Part(kw["raw"], "payload bytes"))
        else:
            parts.append(Part(u8(kw["type"]) + kw.get("raw", b""), "item %d: type %d" % (i, kw["type"])))
    if range_fields:
        fields += range_fields
    if trailing:
        parts.append(Part(trailing, "trailing bytes"))
    return Msg(18, parts, fields)


def qctx(table):
    return ["qblock id=%s len=%d" % (bid.decode(), blen) for bid, blen in table]


def qreturn(offset, data):
    return Msg(19, [Part(u64(offset), "offset"), Part(data, "data")],
               [("offset", offset), ("len", len(data)), ("data", hx(data))])


def have(device, first, hashes, count=None, trailing=b""):
    """A HAVE (4.19): hashes is a list of 16-byte hashes."""
    count = len(hashes) if count is None else count
    parts = [Part(u32(device), "device"), Part(u32(first), "first"), Part(u32(count), "count")]
    parts += [Part(h, "hash of unit %d" % (first + i)) for i, h in enumerate(hashes)]
    if trailing:
        parts.append(Part(trailing, "trailing bytes"))
    return Msg(20, parts, [("device", device), ("first", first), ("count", count),
                           ("hashes", hx(b"".join(hashes)))])


# ---- the vector file writer ------------------------------------------------------

VECTORS = []


def hexlines(parts):
    lines = []
    dense = bytearray()

    def flush():
        for i in range(0, len(dense), 32):
            lines.append((dense[i:i + 32], ""))
        dense.clear()
    for p in parts:
        if p.pack:
            dense += p.data
            continue
        flush()
        if len(p.data) <= 32:
            lines.append((p.data, p.comment))
        else:
            for i in range(0, len(p.data), 32):
                lines.append((p.data[i:i + 32], p.comment if i == 0 else ""))
    flush()
    out = []
    for b, c in lines:
        h = " ".join(b[i:i + 4].hex() for i in range(0, len(b), 4))
        out.append(("hex: " + h).ljust(40) + " # " + c if c else "hex: " + h)
    return out


def vec(name, direction, spec, parts, valid, fields=None, error=None,
        contains=None, context=(), note=None, max_payload=None, reencode=True,
        ambiguous=None):
    assert name not in [v[0] for v in VECTORS], name
    out = ["# %s" % name, "name: %s" % name, "direction: %s" % direction,
           "spec: %s" % spec]
    for n in (note if isinstance(note, (list, tuple)) else [note] if note else []):
        out.append("note: %s" % n)
    if ambiguous:
        out.append("ambiguous: %s" % ambiguous)
    for c in context:
        out.append("context: %s" % c)
    if max_payload is not None:
        out.append("max-payload: %d" % max_payload)
    out += hexlines(parts)
    if valid:
        out.append("valid: yes")
        if not reencode:
            out.append("reencode: no")
        hdr = parts[0].data
        out.append("field: type=%s" % TYPE_NAMES[hdr[0]])
        out.append("field: length=%d" % struct.unpack(">I", hdr[4:8])[0])
        for k, v in fields:
            out.append("field: %s=%s" % (k, v))
    else:
        assert error is not None
        out.append("valid: no")
        out.append("error: %s" % error)
        if contains:
            out.append("message-contains: %s" % contains)
    VECTORS.append((name, "\n".join(out) + "\n"))


def ok(name, direction, spec, msg, **kw):
    vec(name, direction, spec, msg.frame(), True, fields=msg.fields, **kw)


def bad(name, direction, spec, parts, error, **kw):
    vec(name, direction, spec, parts, False, error=error, **kw)


# ---- the cases ----------------------------------------------------------------------

def frame_header_cases():
    ping = seqmsg(14, 0x1122334455667788, "nonce")
    bad("hdr-type-0", "S2R", "3.2, 3.3", [header(0, 8)], "PROTO_TYPE",
        contains="type 0", note="type 0 is never valid")
    bad("hdr-type-21-unknown", "S2R", "3.3, 8", [header(21, 8)], "PROTO_TYPE",
        contains="type 21", note="one above the last defined type (HAVE = 20)")
    bad("hdr-type-255-unknown", "R2S", "3.3, 8", [header(255, 0)], "PROTO_TYPE",
        contains="type 255")
    bad("hdr-flags-01", "S2R", "3.2, 3.3", ping.frame(flags=1), "PROTO",
        note="a PING whose header has flags 0x01")
    bad("hdr-flags-80", "R2S", "3.2, 3.3", seqmsg(15, 7, "nonce").frame(flags=0x80), "PROTO")
    bad("hdr-reserved-0001", "S2R", "3.2, 3.3", ping.frame(reserved=1), "PROTO")
    bad("hdr-reserved-8000", "R2S", "3.2, 3.3", seqmsg(7, 1).frame(reserved=0x8000), "PROTO")
    full = b"".join(p.data for p in ping.frame())
    bad("hdr-short-7-bytes", "S2R", "3.2, 5.3", [Part(full[:7], "7 of the 8 header bytes")],
        "NEED_MORE", note="not an error: a header needs 8 bytes, the decoder asks for more")
    bad("hdr-payload-incomplete", "S2R", "3.2, 5.3", cut_parts(ping.frame(), 11), "NEED_MORE",
        note=["a PING header announcing 8 payload bytes followed by 3: the frame is not",
              "complete, so it is neither applied nor an error yet (5.3); the test reports",
              "NEED_MORE for a vector whose bytes end before the announced length"])
    bad("hdr-ping-length-7", "S2R", "3.3, 4", [header(14, 7)], "PROTO_LENGTH",
        contains="length 7", note="checked from the header alone, before the payload")
    bad("hdr-ping-length-9", "R2S", "3.3, 4", [header(14, 9)], "PROTO_LENGTH", contains="length 9")
    bad("hdr-accept-length-0", "R2S", "3.3, 4", [header(4, 0)], "PROTO_LENGTH")
    h = hello()
    bad("hdr-hello-length-23", "S2R", "3.3, 3.4, 4.1", [header(1, 23)] + cut_parts(h.parts, 23),
        "PROTO_LENGTH", note="a HELLO one byte short: the section 4 table says exactly 24")
    bad("hdr-hello-length-25", "S2R", "3.3, 3.4, 4.1",
        [header(1, 25)] + h.parts + [Part(b"\x00", "one byte over")], "PROTO_LENGTH")
    bad("hdr-manifest-length-13", "S2R", "3.3, 4", [header(3, 13)], "PROTO_LENGTH",
        note="MANIFEST is at least 14 bytes (ndev, state_size, state_name_len)")
    bad("hdr-pages-length-20", "S2R", "3.3, 4, 4.6", [header(6, 20)], "PROTO_LENGTH",
        note="PAGES is at least 25 bytes: a 20-byte header and one 5-byte entry")
    bad("hdr-pages-over-negotiated", "S2R", "3.3", [header(6, MAX_FRAME_DEFAULT + 1)],
        "PROTO_LENGTH", contains="1052673",
        note="one byte over the negotiated maximum payload (max-payload, 1 MiB + 4 KiB)")
    bad("hdr-state-over-limit", "S2R", "3.3", [header(8, MAX_FRAME_LIMIT + 1)], "PROTO_LENGTH",
        max_payload=MAX_FRAME_LIMIT, note="a STATE one byte over a negotiated 16 MiB")
    bad("hdr-state-length-ffffffff", "S2R", "3.3", [header(8, 0xFFFFFFFF)], "PROTO_LENGTH")
    bad("hdr-commit-length-1309", "S2R", "3.3, 4, 4.9", [header(9, 1309)], "PROTO_LENGTH",
        note="COMMIT is at most 12 + 64 x 20 + 16 = 1308 bytes")
    bad("hdr-refuse-length-1035", "R2S", "3.3, 4, 4.5", [header(5, 1035)], "PROTO_LENGTH",
        note="REFUSE is at most 10 + 1024 bytes")
    m = text_msg(11, 14, b"x" * (TEXT_MAX + 1))
    bad("hdr-error-text-1025", "S2R", "3.3, 4, 4.11", m.frame(), "PROTO_LENGTH",
        contains="1031", note=["an ERROR with text_len 1025 and its 1025 bytes: 1031 payload",
                              "bytes, over the table's 6..1030, refused from the header alone"])


def direction_cases():
    dev = Dev(1, b"mem")
    msgs = [
        ("hello", hello(), "R2S"),
        ("welcome", welcome(), "S2R"),
        ("manifest", manifest([dev]), "R2S"),
        ("accept", seqmsg(4, 1, "next_seq"), "S2R"),
        ("refuse", text_msg(5, 25, b"unit", device=1), "S2R"),
        ("pages", pages(dev, [Entry(0, 1)]), "R2S"),
        ("ack", seqmsg(7, 1), "S2R"),
        ("state", state(0, b"abc"), "R2S"),
        ("commit", commit(1, [(1, bytes(16))]), "R2S"),
        ("committed", seqmsg(10, 1), "S2R"),
        ("resume", resume(), "R2S"),
        ("resumed", resumed(1, 1, 0), "S2R"),
    ]
    for n, m, d in msgs:
        bad("dir-%s-%s" % (n, d.lower()), d, "3.3, 4", m.frame(), "PROTO_TYPE",
            contains="direction",
            note="a well-formed %s arriving %s: the section 4 table allows only %s" % (
                TYPE_NAMES[m.type], "at the receiver" if d == "S2R" else "at the sender",
                DIRS[TYPE_NAMES[m.type]]))


def hello_cases():
    ok("hello-basic", "S2R", "4.1", hello())
    ok("hello-max-frame-limit", "S2R", "3.3, 4.1",
       hello(max_frame=MAX_FRAME_LIMIT, seed=0xFFFFFFFFFFFFFFFF),
       note="max_frame at FERRY_MAX_FRAME_LIMIT (16 MiB), hash_seed all ones")
    ok("hello-max-frame-min", "S2R", "3.3, 4.1", hello(max_frame=MAX_FRAME_MIN, seed=0),
       note="max_frame at FERRY_MAX_FRAME_MIN, hash_seed 0")
    ok("hello-caps-unknown", "S2R", "4.1, 8", hello(caps=0xFFFFFFFF),
       note="unknown capability bits are ignored, not an error")
    bad("hello-bad-magic", "S2R", "4.1", hello(magic=0x46525932).frame(), "PROTO_VERSION",
        contains="magic")
    bad("hello-version-2", "S2R", "4.1, 8", hello(version=2).frame(), "PROTO_VERSION",
        contains="version 2")
    bad("hello-version-0", "S2R", "4.1, 8", hello(version=0).frame(), "PROTO_VERSION")
    bad("hello-reserved-set", "S2R", "4.1, 7", hello(reserved=1).frame(), "PROTO",
        note="reserved MUST be 0; section 7 gives PROTO for a malformed reserved field")
    amb = ("3.3 bounds max_frame to [FERRY_MAX_FRAME_MIN, FERRY_MAX_FRAME_LIMIT] but names no "
           "error code for a value outside; PROTO_RANGE is ferry's choice")
    bad("hello-max-frame-below-min", "S2R", "3.3, 4.1", hello(max_frame=MAX_FRAME_MIN - 1).frame(),
        "PROTO_RANGE", contains="max_frame", ambiguous=amb)
    bad("hello-max-frame-above-limit", "S2R", "3.3, 4.1",
        hello(max_frame=MAX_FRAME_LIMIT + 1).frame(), "PROTO_RANGE", contains="max_frame",
        ambiguous=amb)
    ok("welcome-basic", "R2S", "4.2", welcome())
    bad("welcome-bad-magic", "R2S", "4.2, 8", welcome(magic=0).frame(), "PROTO_VERSION")
    bad("welcome-version-2", "R2S", "4.2, 8", welcome(version=2).frame(), "PROTO_VERSION")
    bad("welcome-reserved-set", "R2S", "4.2, 7", welcome(reserved=0x0100).frame(), "PROTO")
    bad("welcome-max-frame-0", "R2S", "3.3, 4.2", welcome(max_frame=0).frame(), "PROTO_RANGE",
        ambiguous=amb)


def manifest_cases():
    mem = Dev(1, b"guest.mem", kind=1, unit=4096, size=64 * 1024 * 1024, src_dev=0x803,
              src_ino=131074)
    disk = Dev(7, b"disk0.img", kind=2, unit=65536, size=10 * 1024 * 1024 * 1024 + 512,
               src_dev=0xFD00, src_ino=0x0123456789)
    ok("manifest-one-memory", "S2R", "4.3", manifest([Dev(1, b"mem", size=16384)]))
    ok("manifest-memory-disk-state", "S2R", "4.3",
       manifest([mem, disk], state_size=123456, state_name=b"guest.state"),
       note="the disk's last unit is 512 bytes (short last unit)")
    ok("manifest-name-edges", "S2R", "4.3",
       manifest([Dev(1, b"..."), Dev(2, b"a b"), Dev(3, b".ferr"), Dev(4, b"~!\"#$%&'()*+,-.:;<=>?@[\\]^_`{|}"),
                 Dev(5, b" "), Dev(6, b".Ferry-x")]),
       note=["names that are allowed: '...' (not '.' or '..'), a space, '.ferr' and '.Ferry-x'",
             "(do not start with '.ferry'), printable punctuation including backslash"])
    ok("manifest-name-255", "S2R", "4.3", manifest([Dev(9, b"n" * 255)]),
       note="a name of exactly FERRY_NAME_MAX bytes")
    ok("manifest-unit-not-pow2", "S2R", "4.3",
       manifest([Dev(1, b"odd", unit=1000, size=10001)]),
       note=["unit 1000 decodes: 'a power of two from 4096 to 1 MiB' is a pre-flight check",
             "(REFUSE_UNIT), not a decoding rule; 11 units, the last one 1 byte"])
    ok("manifest-size-max", "S2R", "4.3",
       manifest([Dev(1, b"huge", kind=2, unit=1 << 22, size=DEVICE_SIZE_MAX)]),
       note=["size 2^46 (the maximum) with 4 MiB units: exactly 2^24 units, the total",
             "maximum; the unit size itself is a pre-flight matter"])
    ok("manifest-total-units-max", "S2R", "4.3",
       manifest([Dev(1, b"a", unit=4096, size=(1 << 23) * 4096),
                 Dev(2, b"b", unit=4096, size=(1 << 23) * 4096 - 4095)]),
       note="2^23 + 2^23 units = 2^24 (FERRY_MAX_TOTAL_UNITS), the second ending in a 1-byte unit")
    ok("manifest-state-size-max", "S2R", "4.3",
       manifest([Dev(1, b"mem")], state_size=STATE_SIZE_MAX, state_name=b"s"))
    devs = [Dev(i + 1, b"dev%02d" % i, kind=1 + i % 2, unit=4096, size=4096 * (i + 1))
            for i in range(64)]
    ok("manifest-64-devices", "S2R", "4.3", manifest(devs), note="ndev at FERRY_MAX_DEVICES")

    one = Dev(1, b"mem")
    bad("manifest-ndev-0", "S2R", "4.3", manifest([], ndev=0).frame(), "PROTO_RANGE",
        contains="ndev 0")
    devs65 = [Dev(i + 1, b"d%d" % i) for i in range(65)]
    bad("manifest-ndev-65", "S2R", "4.3", manifest(devs65).frame(), "PROTO_RANGE",
        contains="ndev 65", note="65 complete devices: only the count is wrong")
    bad("manifest-dup-id", "S2R", "4.3", manifest([Dev(3, b"a"), Dev(3, b"b")]).frame(),
        "PROTO_RANGE", contains="repeated")
    bad("manifest-dup-name", "S2R", "4.3", manifest([Dev(1, b"a"), Dev(2, b"a")]).frame(),
        "PROTO_RANGE", contains="repeated")
    bad("manifest-name-equals-state", "S2R", "4.3",
        manifest([Dev(1, b"vm")], state_size=10, state_name=b"vm").frame(), "PROTO_RANGE",
        note="names are unique across the manifest including state_name")
    for n, name in (("dot", b"."), ("dotdot", b".."), ("slash", b"a/b"),
                    ("slash-only", b"/"), ("ferry-prefix", b".ferry-x"),
                    ("ferry-exact", b".ferry"), ("ctrl", b"a\x01b"), ("tab", b"a\tb"),
                    ("nul", b"a\x00b"), ("del", b"a\x7fb"), ("non-ascii", b"caf\xc3\xa9"),
                    ("newline-end", b"disk\n")):
        bad("manifest-name-%s" % n, "S2R", "4.3", manifest([Dev(1, name)]).frame(),
            "PROTO_RANGE", contains="name invalid",
            note="device name %s breaks the name rules" % q(name))
    bad("manifest-name-empty", "S2R", "4.3", manifest([Dev(1, b"")]).frame(), "PROTO_RANGE",
        note="name_len 0 (names are 1..255 bytes)")
    bad("manifest-name-len-256", "S2R", "4.3", manifest([Dev(1, b"n" * 256)]).frame(),
        "PROTO_RANGE", note="name_len 256 with its 256 bytes present")
    bad("manifest-second-name-invalid", "S2R", "4.3",
        manifest([Dev(1, b"ok"), Dev(2, b"../x")]).frame(), "PROTO_RANGE",
        contains="device 2 name invalid")
    bad("manifest-id-0", "S2R", "4.3", manifest([Dev(0, b"mem")]).frame(), "PROTO_RANGE",
        contains="id 0")
    bad("manifest-kind-0", "S2R", "4.3", manifest([Dev(1, b"mem", kind=0)]).frame(),
        "PROTO_RANGE", contains="kind 0",
        ambiguous="4.3 lists kinds 1 and 2 but not among the decoding rules; PROTO_RANGE follows 'violations are PROTO_RANGE unless noted'")
    bad("manifest-kind-4", "S2R", "4.3", manifest([Dev(1, b"mem", kind=4)]).frame(),
        "PROTO_RANGE", contains="kind 4", note="kinds are 1 memory, 2 disk, 3 qemu")
    qd = Dev(1, b"web1", kind=3, unit=QPAGE, size=(1 << 30) + 4096)
    ok("manifest-qemu", "S2R", "4.3, 4.17", manifest([qd]),
       note=["one QEMU device (kind 3): unit 4096, size = the guest's RAM (informational,",
             "any size > 0), no state blob"])
    bad("manifest-qemu-two-devices", "S2R", "4.3", manifest([qd, Dev(2, b"mem")]).frame(),
        "PROTO_RANGE", contains="ndev 2", note="a QEMU device is the manifest's only device")
    bad("manifest-qemu-second-device", "S2R", "4.3", manifest([Dev(2, b"mem"), qd]).frame(),
        "PROTO_RANGE", contains="ndev 2", note="the same, with the QEMU device second")
    bad("manifest-qemu-unit-64k", "S2R", "4.3",
        manifest([Dev(1, b"web1", kind=3, unit=65536, size=1 << 30)]).frame(), "PROTO_RANGE",
        contains="unit 65536", note="a QEMU device's unit is FERRY_QPAGE_SIZE (4096)")
    bad("manifest-qemu-state", "S2R", "4.3", manifest([qd], state_size=100, state_name=b"s").frame(),
        "PROTO_RANGE", contains="state_size 100", note="a QEMU stream has no separate state blob")
    bad("manifest-qemu-size-0", "S2R", "4.3",
        manifest([Dev(1, b"web1", kind=3, unit=QPAGE, size=0)]).frame(), "PROTO_RANGE",
        contains="size 0")
    bad("manifest-reserved-set", "S2R", "4.3, 7", manifest([Dev(1, b"mem", reserved=1)]).frame(),
        "PROTO", note="a device's reserved byte MUST be 0; section 7: PROTO for reserved fields",
        ambiguous="4.3 says 'violations are PROTO_RANGE unless noted' for its decoding rules, while section 7 gives PROTO for reserved fields; ferry uses PROTO")
    bad("manifest-size-0", "S2R", "4.3", manifest([Dev(1, b"mem", size=0)]).frame(),
        "PROTO_RANGE", contains="size 0")
    bad("manifest-size-over-max", "S2R", "4.3",
        manifest([Dev(1, b"mem", unit=1 << 30, size=DEVICE_SIZE_MAX + 1)]).frame(),
        "PROTO_RANGE", note="size 2^46 + 1 with 1 GiB units (65537 units, within every unit limit)")
    bad("manifest-unit-0", "S2R", "4.3", manifest([Dev(1, b"mem", unit=0)]).frame(),
        "PROTO_RANGE", contains="unit 0")
    bad("manifest-units-over-u32", "S2R", "4.3",
        manifest([Dev(1, b"mem", unit=1, size=1 << 40)]).frame(), "PROTO_RANGE",
        note=["2^40 units of 1 byte: over the per-device 2^32 - 1 (and so necessarily also",
              "over the 2^24 total); either way PROTO_RANGE"])
    bad("manifest-units-over-total-one", "S2R", "4.3",
        manifest([Dev(1, b"mem", unit=4096, size=((1 << 24) + 1) * 4096)]).frame(),
        "PROTO_RANGE", note="one device of 2^24 + 1 units")
    bad("manifest-units-over-total-two", "S2R", "4.3",
        manifest([Dev(1, b"a", unit=4096, size=(1 << 23) * 4096),
                  Dev(2, b"b", unit=4096, size=(1 << 23) * 4096 + 1)]).frame(),
        "PROTO_RANGE", contains="units",
        note="2^23 + (2^23 + 1) units: each device fine, the sum one over 2^24")
    bad("manifest-state-size-no-name", "S2R", "4.3",
        manifest([one], state_size=100).frame(), "PROTO_RANGE",
        note="state_name_len is 0 if and only if state_size is 0")
    bad("manifest-state-name-no-size", "S2R", "4.3",
        manifest([one], state_size=0, state_name=b"st").frame(), "PROTO_RANGE")
    bad("manifest-state-size-over", "S2R", "4.3",
        manifest([one], state_size=STATE_SIZE_MAX + 1, state_name=b"st").frame(), "PROTO_RANGE",
        contains="state_size")
    for n, name in (("dotdot", b".."), ("slash", b"x/y"), ("ferry", b".ferry-state"),
                    ("ctrl", b"st\x1b")):
        bad("manifest-state-name-%s" % n, "S2R", "4.3",
            manifest([one], state_size=10, state_name=name).frame(), "PROTO_RANGE",
            contains="state_name", note="state_name %s breaks the name rules" % q(name))
    bad("manifest-state-name-len-256", "S2R", "4.3",
        manifest([one], state_size=10, state_name=b"s" * 256).frame(), "PROTO_RANGE")
    bad("manifest-trailing-byte", "S2R", "3.4, 4.3",
        manifest([one], trailing=b"\x00").frame(), "PROTO_LENGTH", contains="trailing")
    m = manifest([Dev(1, b"a"), Dev(2, b"b")])
    short = manifest([Dev(1, b"a"), Dev(2, b"b")], cut=plen(m.parts) - 1 - 36)
    bad("manifest-missing-device", "S2R", "3.4, 4.3", short.frame(), "PROTO_LENGTH",
        note="ndev 2 but the payload ends after the first device")
    m = manifest([Dev(1, b"abcdefgh")])
    bad("manifest-truncated-name", "S2R", "3.4, 4.3",
        manifest([Dev(1, b"abcdefgh")], cut=plen(m.parts) - 4).frame(), "PROTO_LENGTH",
        note="name_len 8, 4 name bytes present")
    m = manifest([Dev(1, b"abcdefgh")])
    bad("manifest-truncated-device-fields", "S2R", "3.4, 4.3",
        manifest([Dev(1, b"abcdefgh")], cut=14 + 20).frame(), "PROTO_LENGTH",
        note="the payload ends inside the first device's fixed fields")
    bad("manifest-truncated-state-name", "S2R", "3.4, 4.3",
        manifest([], state_size=10, state_name=b"statefile", ndev=1, cut=14 + 4).frame(),
        "PROTO_LENGTH", note="state_name_len 9, 4 bytes present, no device")


def simple_cases():
    ok("accept-basic", "R2S", "4.4", seqmsg(4, 1, "next_seq"))
    bad("accept-next-seq-0", "R2S", "4.4", seqmsg(4, 0, "next_seq").frame(), "PROTO_RANGE",
        ambiguous="4.4 says next_seq is 1 but names no code for another value; ferry rejects only 0, with PROTO_RANGE, and accepts 2 and above")
    ok("refuse-unit", "R2S", "4.5", text_msg(5, CODES["REFUSE_UNIT"],
       b"device 7 'disk0.img': unit 512 not a power of two from 4096 to 1 MiB", device=7))
    ok("refuse-no-text", "R2S", "4.5", text_msg(5, CODES["REFUSE_BUSY"], b"", device=0))
    ok("refuse-text-max", "R2S", "4.5", text_msg(5, CODES["REFUSE_SPACE"],
       (b"no space left; " * 69)[:TEXT_MAX], device=2), note="text_len 1024, payload 1034")
    vec("refuse-control-bytes", "R2S", "4.5",
        text_msg(5, CODES["REFUSE_SIZE"], b"\x00size\tdiffers\x1f", device=3).frame(), True,
        fields=[("code", CODES["REFUSE_SIZE"]), ("device", 3), ("text", q(b"?size?differs?"))],
        reencode=False,
        note=["control bytes in REFUSE text are replaced before display (4.5); ferry replaces",
              "them with '?' when decoding, first and last byte included (reencode: no)"])
    bad("refuse-code-0", "R2S", "4.5, 7", text_msg(5, 0, b"why", device=1).frame(),
        "PROTO_RANGE", contains="code 0",
        ambiguous="4.5 says the code is 'a refusal code (section 7)' and names no error for 0; ferry rejects 0 with PROTO_RANGE but accepts any other number, refusal class or not")
    bad("refuse-text-truncated", "R2S", "3.4, 4.5",
        text_msg(5, 25, b"abcde", device=1, text_len=10).frame(), "PROTO_LENGTH",
        note="text_len 10, 5 text bytes")
    bad("refuse-trailing-byte", "R2S", "3.4, 4.5",
        text_msg(5, 25, b"abc", device=1, trailing=b"!").frame(), "PROTO_LENGTH",
        contains="trailing")
    bad("refuse-text-len-1025", "R2S", "4.5",
        text_msg(5, 25, b"t" * TEXT_MAX, device=1, text_len=TEXT_MAX + 1).frame(), "PROTO_RANGE",
        contains="1025",
        ambiguous="text_len 1025 in a full 1034-byte payload breaks both 'text_len 0..1024' (no code named) and 3.4 'payload shorter than its fields' (PROTO_LENGTH); ferry checks text_len first: PROTO_RANGE")

    ok("ack-basic", "R2S", "4.7", seqmsg(7, 1))
    ok("ack-seq-max", "R2S", "4.7", seqmsg(7, 0xFFFFFFFFFFFFFFFF))
    ok("committed-basic", "R2S", "4.10", seqmsg(10, 4242))
    for t, n in ((14, "ping"), (15, "pong")):
        ok("%s-s2r" % n, "S2R", "4.14", seqmsg(t, 0x0102030405060708, "nonce"))
        ok("%s-r2s" % n, "R2S", "4.14", seqmsg(t, 0, "nonce"),
           note="%s is allowed in both directions; nonce may be any value" % n.upper())
    ok("ping-nonce-max", "S2R", "4.14", seqmsg(14, 0xFFFFFFFFFFFFFFFF, "nonce"))

    ok("state-basic", "S2R", "4.8", state(0, b"device state\x00\x01\x02\xff"))
    ok("state-at-max-end", "S2R", "4.3, 4.8", state(STATE_SIZE_MAX - 1, b"\x5a"),
       note="the last byte a 256 MiB state blob can have")
    bad("state-no-data", "S2R", "4.8", [header(8, 8), Part(u64(0), "offset")], "PROTO_LENGTH",
        contains="no data",
        note=["data is at least 1 byte, so an 8-byte STATE is short of its fields (the",
              "section 4 table's minimum of 8 does not count that byte)"])
    bad("state-past-max", "S2R", "4.3, 4.8", state(STATE_SIZE_MAX, b"\x5a").frame(),
        "PROTO_RANGE", note="offset 256 MiB: past any state_size a manifest may declare",
        ambiguous="4.8 says data MUST NOT go past state_size (a session check) and names no code; the codec bounds it by the 256 MiB maximum with PROTO_RANGE")
    bad("state-offset-huge", "S2R", "4.8", state(0xFFFFFFFFFFFFFFFF, b"ab").frame(),
        "PROTO_RANGE", note="offset + length wraps around 2^64: must not be accepted")

    ok("commit-one", "S2R", "4.9", commit(17, [(1, det_bytes("digest1", 16))]),
       note="no state blob: state_digest is zeros")
    ok("commit-two-state", "S2R", "4.9",
       commit(0x100000000, [(1, det_bytes("d1", 16)), (7, det_bytes("d7", 16))],
              state_digest=det_bytes("sd", 16)))
    ok("commit-64", "S2R", "4.9",
       commit(99, [(i + 1, det_bytes("dg%d" % i, 16)) for i in range(64)]),
       note="64 devices: payload 1308, the table's maximum")
    bad("commit-ndev-0", "S2R", "4.9", commit(1, []).frame(), "PROTO_RANGE",
        contains="ndev 0",
        ambiguous="a 28-byte COMMIT (the table's minimum) has ndev 0, which cannot 'equal the manifest's' (1..64); no code is named; ferry: PROTO_RANGE")
    m = commit(1, [(1, bytes(16)), (2, bytes(16))])
    bad("commit-missing-device", "S2R", "3.4, 4.9",
        [header(9, plen(m.parts) - 20)] + cut_parts(m.parts, plen(m.parts) - 20), "PROTO_LENGTH",
        note="ndev 2 but only one (id, digest) pair before the end")
    bad("commit-trailing-byte", "S2R", "3.4, 4.9",
        commit(1, [(1, bytes(16))], trailing=b"\x00").frame(), "PROTO_LENGTH", contains="trailing")

    ok("error-s2r", "S2R", "4.11", text_msg(11, CODES["ABORTED"], b"operator aborted"))
    ok("error-r2s", "R2S", "4.11",
       text_msg(11, CODES["PROTO_RANGE"], b"PAGES: device 1 index 7 >= 4 units"))
    ok("error-empty-text", "R2S", "4.11", text_msg(11, CODES["TIMEOUT"], b""))
    ok("error-text-max", "S2R", "4.11", text_msg(11, CODES["IO"], b"E" * TEXT_MAX),
       note="text_len 1024, payload 1030")
    ok("error-unknown-code", "R2S", "4.11", text_msg(11, 999, b"from a later version"),
       note="a code not in section 7 still decodes (only 0 is excluded)")
    vec("error-control-bytes", "R2S", "4.5, 4.11",
        text_msg(11, CODES["PROTO"], b"a\x01b\x7fc\x1b[2J").frame(), True,
        fields=[("code", CODES["PROTO"]), ("text", q(b"a?b?c?[2J"))], reencode=False,
        note=["control bytes in text are replaced before display: ferry's decoder replaces",
              "each byte below 0x20 and 0x7f with '?', so the decoded text does not re-encode",
              "to the same bytes (reencode: no)"],
        ambiguous="4.5 says control bytes in REFUSE text are replaced before display; 4.11 says nothing for ERROR text, nor which bytes count as control bytes (0x80-0x9f?)")
    bad("error-code-0", "S2R", "4.11", text_msg(11, 0, b"zero").frame(), "PROTO_RANGE",
        contains="code 0", ambiguous="4.11 says 'not 0' but names no code; ferry: PROTO_RANGE")
    bad("error-text-truncated", "R2S", "3.4, 4.11",
        text_msg(11, 14, b"abc", text_len=4).frame(), "PROTO_LENGTH")
    bad("error-trailing-byte", "S2R", "3.4, 4.11",
        text_msg(11, 14, b"abc", trailing=b"\x00").frame(), "PROTO_LENGTH", contains="trailing")
    bad("error-text-len-1025", "R2S", "4.11",
        text_msg(11, 14, b"t" * TEXT_MAX, text_len=TEXT_MAX + 1).frame(), "PROTO_RANGE",
        contains="1025",
        ambiguous="text_len 1025 in a full 1030-byte payload breaks both 'text_len 0..1024' (no code named) and 3.4 (PROTO_LENGTH); ferry checks text_len first: PROTO_RANGE")

    ok("resume-basic", "S2R", "4.12", resume())
    bad("resume-bad-magic", "S2R", "4.12", resume(magic=0x31595246).frame(), "PROTO_VERSION",
        note="the magic byte-swapped (little-endian)")
    bad("resume-version-2", "S2R", "4.12", resume(version=2).frame(), "PROTO_VERSION")
    bad("resume-reserved-set", "S2R", "4.12, 7", resume(reserved=0xFFFF).frame(), "PROTO")
    bad("resume-max-frame-over", "S2R", "3.3, 4.12", resume(max_frame=0xFFFFFFFF).frame(),
        "PROTO_RANGE", contains="max_frame",
        ambiguous="3.3 bounds max_frame but names no code; ferry: PROTO_RANGE")

    ok("resumed-receiving", "R2S", "4.13", resumed(1, 42, 0))
    ok("resumed-committed", "R2S", "4.13", resumed(2, 1000, 4096))
    ok("resumed-failed", "R2S", "4.13", resumed(3, 1, STATE_SIZE_MAX),
       note="state_offset at the 256 MiB maximum")
    amb = "4.13 lists statuses 1..3 but names no code for another value; ferry: PROTO_RANGE"
    bad("resumed-status-0", "R2S", "4.13", resumed(0, 1, 0).frame(), "PROTO_RANGE",
        contains="status 0", ambiguous=amb)
    bad("resumed-status-4", "R2S", "4.13", resumed(4, 1, 0).frame(), "PROTO_RANGE",
        contains="status 4", ambiguous=amb)
    bad("resumed-next-seq-0", "R2S", "4.13", resumed(1, 0, 0).frame(), "PROTO_RANGE",
        contains="next_seq 0", note="next_seq is last applied + 1, never 0")
    bad("resumed-state-offset-over", "R2S", "4.3, 4.13", resumed(1, 5, STATE_SIZE_MAX + 1).frame(),
        "PROTO_RANGE", contains="state_offset",
        ambiguous="4.13 does not bound state_offset; it cannot exceed a state_size (at most 256 MiB); ferry: PROTO_RANGE")


def pages_cases():
    d4 = Dev(1, b"mem", unit=4096, size=16384)          # 4 full units
    ds = Dev(2, b"disk", kind=2, unit=4096, size=10000)  # units 4096, 4096, 1808
    c4, cs = [d4.context()], [ds.context()]

    ok("pages-zero", "S2R", "4.6", pages(d4, [Entry(3, 1)], seq=1, round=1), context=c4)
    ok("pages-ref", "S2R", "4.6",
       pages(d4, [Entry(2, 2, src_device=1, src_index=0, hash=det_bytes("h0", 16))], seq=5,
             round=2), context=c4,
       note="REF source existence, length and hash are session checks, not decoding")
    ok("pages-ref-other-device", "S2R", "4.6",
       pages(d4, [Entry(0, 2, src_device=0xDEADBEEF, src_index=0xFFFFFFFF)], seq=9), context=c4,
       note=["src_device/src_index are not checked when decoding: a REF to a unit that",
             "does not exist is refused with PROTO_RANGE when applied (4.6)"])
    blk, unit = lz4_text_unit(4096, 0)
    ok("pages-lz4-basic", "S2R", "4.6",
       pages(d4, [Entry(1, 3, data=blk, unit=unit)], seq=2), context=c4,
       note="the lz4 block decodes to the unit's 4096 bytes")
    blk2, unit2 = lz4_exact(4096, 4095, "lz4max")
    ok("pages-lz4-clen-max", "S2R", "4.6",
       pages(d4, [Entry(0, 3, data=blk2, unit=unit2)], seq=3), context=c4,
       note="clen 4095 = unit length - 1, the largest allowed")
    blk3, unit3 = lz4_text_unit(1808, 5)
    ok("pages-lz4-short-last", "S2R", "4.3, 4.6",
       pages(ds, [Entry(2, 3, data=blk3, unit=unit3)], seq=4), context=cs,
       note="device of 10000 bytes in 4096-byte units: unit 2 is 1808 bytes")
    blk4, unit4 = lz4_exact(1808, 1807, "lz4shortmax")
    ok("pages-lz4-short-last-clen-max", "S2R", "4.3, 4.6",
       pages(ds, [Entry(2, 3, data=blk4, unit=unit4)], seq=4), context=cs,
       note="clen 1807 = the short last unit's length - 1")
    raw = det_bytes("raw4096", 4096)
    ok("pages-raw", "S2R", "4.6", pages(d4, [Entry(3, 4, data=raw)], seq=6), context=c4)
    raws = det_bytes("raw1808", 1808)
    ok("pages-raw-short-last", "S2R", "4.3, 4.6", pages(ds, [Entry(2, 4, data=raws)], seq=7),
       context=cs, note="RAW of the short last unit: exactly its 1808 bytes")
    blk5, unit5 = lz4_text_unit(4096, 11)
    ok("pages-mixed", "S2R", "4.6",
       pages(ds, [Entry(0, 4, data=det_bytes("mixed0", 4096)),
                  Entry(1, 2, src_device=2, src_index=0, hash=det_bytes("mh", 16)),
                  Entry(2, 1),
                  Entry(0, 3, data=blk5, unit=unit5),
                  Entry(2, 4, data=det_bytes("mixed2", 1808))], seq=8, round=3),
       context=cs,
       note=["all four kinds in one frame; the REF names a unit written earlier in the",
             "same frame, and units 0 and 2 appear twice (entries apply in order)"])
    n = MAX_PAGES
    d4096 = Dev(3, b"big", unit=4096, size=4096 * 4096)
    ok("pages-count-max", "S2R", "4.6",
       pages(d4096, [Entry(i, 1) for i in range(n)], seq=10, dense=True,
             range_fields=[("entry[0..4095].index", "{i}"), ("entry[0..4095].kind", "ZERO"),
                           ("entry[0..4095].len", 4096)]),
       context=[d4096.context()], note="count 4096 (the maximum), ZERO entries for units 0..4095")
    ok("pages-two-contexts", "S2R", "4.6",
       pages(ds, [Entry(2, 1)], seq=11), context=c4 + cs,
       note="two manifest devices: the frame's device field (2) selects the short one")

    def hdr20(seq=1, dev=1, rnd=1, count=1):
        return [Part(u64(seq), "seq"), Part(u32(dev), "device"), Part(u32(rnd), "round"),
                Part(u32(count), "count")]

    def fr(parts):
        return [header(6, plen(parts))] + parts

    zero = lambda i: Part(u32(i) + u8(1), "entry: index %d, ZERO" % i)
    bad("pages-count-0", "S2R", "4.6", fr(hdr20(count=0) + [zero(0)]), "PROTO_RANGE",
        context=c4, contains="count 0",
        ambiguous="count 0 in a 25-byte payload (the table's minimum) also leaves 5 bytes unread (3.4, PROTO_LENGTH); ferry checks count first: PROTO_RANGE")
    big = pages(d4096, [Entry(i % 4096, 1) for i in range(n + 1)], seq=1, dense=True)
    bad("pages-count-4097", "S2R", "4.6", big.frame(), "PROTO_RANGE", context=[d4096.context()],
        contains="count 4097", note="4097 complete ZERO entries: only the count is wrong")
    bad("pages-count-impossible", "S2R", "3.4, 4.6", fr(hdr20(count=4096) + [zero(0)]),
        "PROTO_LENGTH", context=c4, contains="does not fit",
        note="count 4096 with 5 bytes of entries: cannot hold more than one entry")
    bad("pages-count-ffffffff", "S2R", "4.6", fr(hdr20(count=0xFFFFFFFF) + [zero(0)]),
        "PROTO_RANGE", context=c4,
        ambiguous="also impossible in 5 bytes (PROTO_LENGTH); ferry checks the 4096 limit first")
    bad("pages-count-short", "S2R", "3.4, 4.6",
        fr(hdr20(count=2) + [Part(u32(0) + u8(4), "entry: index 0, RAW"),
                             Part(det_bytes("cs", 4096), "unit bytes")]),
        "PROTO_LENGTH", context=c4, note="count 2, one complete RAW entry, then the end")
    bad("pages-index-out-of-range", "S2R", "4.6", fr(hdr20() + [zero(4)]), "PROTO_RANGE",
        context=c4, contains="index 4", note="index 4 of a 4-unit device")
    bad("pages-index-short-device", "S2R", "4.3, 4.6",
        fr(hdr20(dev=2) + [zero(3)]), "PROTO_RANGE", context=cs, contains="index 3",
        note="index 3 of a 3-unit device (10000 bytes in 4096-byte units)")
    bad("pages-index-ffffffff", "S2R", "4.6", fr(hdr20() + [zero(0xFFFFFFFF)]), "PROTO_RANGE",
        context=c4, contains="index 4294967295")
    bad("pages-second-index-out-of-range", "S2R", "4.6",
        fr(hdr20(count=2) + [zero(0), zero(7)]), "PROTO_RANGE", context=c4, contains="index 7")
    bad("pages-kind-0", "S2R", "4.6",
        fr(hdr20() + [Part(u32(0) + u8(0), "entry: index 0, kind 0")]), "PROTO_RANGE",
        context=c4, contains="kind 0")
    bad("pages-kind-5", "S2R", "4.6",
        fr(hdr20() + [Part(u32(1) + u8(5), "entry: index 1, kind 5")]), "PROTO_RANGE",
        context=c4, contains="kind 5")
    bad("pages-seq-0", "S2R", "4.6", fr(hdr20(seq=0) + [zero(0)]), "PROTO_RANGE", context=c4,
        contains="seq 0", note="seq starts at 1")
    bad("pages-round-0", "S2R", "4.6", fr(hdr20(rnd=0) + [zero(0)]), "PROTO_RANGE", context=c4,
        contains="round 0", note="rounds count from 1")
    bad("pages-lz4-clen-0", "S2R", "4.6",
        fr(hdr20() + [Part(u32(0) + u8(3) + u32(0), "entry: index 0, LZ4, clen 0")]),
        "PROTO_CODEC", context=c4, contains="clen 0")
    bad("pages-lz4-clen-eq-unit", "S2R", "4.6",
        fr(hdr20() + [Part(u32(0) + u8(3) + u32(4096), "entry: index 0, LZ4, clen 4096"),
                      Part(det_bytes("eq", 4096), "4096 bytes")]),
        "PROTO_CODEC", context=c4, contains="clen 4096",
        note="clen equal to the unit length (4096 bytes present): must be below it")
    bad("pages-lz4-clen-eq-short-unit", "S2R", "4.3, 4.6",
        fr(hdr20(dev=2) + [Part(u32(2) + u8(3) + u32(1808), "entry: index 2, LZ4, clen 1808"),
                           Part(det_bytes("eqs", 1808), "1808 bytes")]),
        "PROTO_CODEC", context=cs, contains="clen 1808",
        note="clen equal to the short last unit's 1808 bytes (below the device's unit size)")
    bad("pages-lz4-clen-past-end", "S2R", "3.4, 4.6",
        fr(hdr20() + [Part(u32(0) + u8(3) + u32(100), "entry: index 0, LZ4, clen 100"),
                      Part(blk[:50], "50 bytes")]),
        "PROTO_LENGTH", context=c4, note="clen 100 with 50 bytes left in the frame")
    bad("pages-lz4-corrupt", "S2R", "4.6",
        fr(hdr20() + [Part(u32(0) + u8(3) + u32(3), "entry: index 0, LZ4, clen 3"),
                      Part(b"\x1f\x00\x00", "token 0x1f: 1 literal, then a match whose offset is cut off")]),
        "PROTO_CODEC", context=c4, note="not a valid lz4 block")
    small_blk, _ = lz4_text_unit(100, 1)
    bad("pages-lz4-wrong-size", "S2R", "4.6",
        fr(hdr20() + [Part(u32(0) + u8(3) + u32(len(small_blk)),
                           "entry: index 0, LZ4, clen %d" % len(small_blk)),
                      Part(small_blk, "a valid lz4 block of 100 bytes")]),
        "PROTO_CODEC", context=c4, note="a valid lz4 block that decodes to 100 bytes, not 4096")
    bad("pages-lz4-too-long", "S2R", "4.3, 4.6",
        fr(hdr20(dev=2) + [Part(u32(2) + u8(3) + u32(len(blk)),
                                "entry: index 2, LZ4, clen %d" % len(blk)),
                           Part(blk, "lz4 block decoding to 4096 bytes")]),
        "PROTO_CODEC", context=cs,
        note="a block decoding to 4096 bytes for the short last unit of 1808")
    bad("pages-lz4-empty-block", "S2R", "4.6",
        fr(hdr20() + [Part(u32(0) + u8(3) + u32(1), "entry: index 0, LZ4, clen 1"),
                      Part(b"\x00", "token: no literals, end")]),
        "PROTO_CODEC", context=c4, note="clen 1 is allowed, but this block decodes to 0 bytes")
    bad("pages-raw-truncated", "S2R", "3.4, 4.6",
        fr(hdr20() + [Part(u32(0) + u8(4), "entry: index 0, RAW"),
                      Part(det_bytes("rt", 4095), "4095 bytes")]),
        "PROTO_LENGTH", context=c4, note="a RAW entry one byte short of the unit")
    bad("pages-raw-short-unit-full-size", "S2R", "3.4, 4.3, 4.6",
        fr(hdr20(dev=2) + [Part(u32(2) + u8(4), "entry: index 2, RAW"),
                           Part(det_bytes("rf", 4096), "4096 bytes")]),
        "PROTO_LENGTH", context=cs,
        note=["RAW for the short last unit (1808 bytes) carrying 4096 bytes: the entry ends",
              "after 1808, leaving 2288 trailing bytes"])
    bad("pages-ref-truncated", "S2R", "3.4, 4.6",
        pages(d4, [Entry(0, 2, src_device=1, src_index=1, cut=20)]).frame(), "PROTO_LENGTH",
        context=c4, note="a REF entry of 20 of its 29 bytes")
    bad("pages-entry-truncated", "S2R", "3.4, 4.6",
        fr(hdr20(count=2) + [Part(u32(0) + u8(4), "entry: index 0, RAW"),
                             Part(det_bytes("et", 4096), "unit bytes"),
                             Part(u32(1), "entry: index 1, kind byte missing")]),
        "PROTO_LENGTH", context=c4)
    bad("pages-trailing-byte", "S2R", "3.4, 4.6", fr(hdr20() + [zero(0), Part(b"\x00", "trailing")]),
        "PROTO_LENGTH", context=c4)


def domain_cases():
    ok("domain-basic", "S2R", "4.15", domain(uuid=HOST_UUID),
       note="flags 0, arch x86_64, model and uuid set, nothing waived")
    ok("domain-check-only", "S2R", "4.15", domain(flags=DOMAIN_CHECK_ONLY, arch=b"aarch64", model=b""),
       note="CHECK_ONLY, model and uuid empty (unknown)")
    ok("domain-waivers", "S2R", "4.15",
       domain(uuid=HOST_UUID, waive=[b"disk-cache", b"cpu-model"]),
       note="two waived checks")
    ok("domain-limits", "S2R", "4.15",
       domain(flags=DOMAIN_CHECK_ONLY, arch=b"A" * HOST_TOKEN_MAX, model=b"~" * HOST_TOKEN_MAX,
              uuid=b"-" * UUID_LEN,
              waive=[(b"w%02d-" % i) + b"z" * (CHECK_NAME_MAX - 4) for i in range(WAIVE_MAX)]),
       note=["arch and model of 63 bytes (0x41, 0x7e), 16 waived names of 31 bytes; the uuid",
             "is 36 bytes of the allowed set (only its length and bytes are checked)"])
    ok("domain-xml-1-byte", "S2R", "3.3, 4.15", domain(arch=b"x", model=b"", xml=b"<"),
       note="the smallest DOMAIN: 14 bytes; the XML is not parsed by the decoder")
    ok("domain-xml-not-xml", "S2R", "4.15", domain(xml=b"\x00\xffnot xml at all\n"),
       note="the frame is well-formed; only the receiver's XML parser refuses it (VIRT_XML)")

    bad("domain-flags-2", "S2R", "4.15", domain(flags=2).frame(), "PROTO", contains="flags")
    bad("domain-flags-high", "S2R", "4.15", domain(flags=0x80000001).frame(), "PROTO",
        contains="flags")
    bad("domain-arch-empty", "S2R", "4.15", domain(arch=b"").frame(), "PROTO_RANGE",
        contains="arch")
    bad("domain-arch-64", "S2R", "4.15", domain(arch=b"a" * 64).frame(), "PROTO_RANGE",
        contains="arch")
    bad("domain-arch-space", "S2R", "4.15", domain(arch=b"x86 64").frame(), "PROTO_RANGE",
        contains="arch", note="0x20 is outside 0x21..0x7e")
    bad("domain-model-control", "S2R", "4.15", domain(model=b"Sky\nlake").frame(),
        "PROTO_RANGE", contains="model")
    bad("domain-model-8bit", "S2R", "4.15", domain(model=b"Sky\xc3\xa9").frame(),
        "PROTO_RANGE", contains="model")
    bad("domain-uuid-35", "S2R", "4.15", domain(uuid=HOST_UUID[:35]).frame(), "PROTO_RANGE",
        contains="uuid", note="0 or 36 bytes")
    bad("domain-uuid-37", "S2R", "4.15", domain(uuid=HOST_UUID + b"0").frame(), "PROTO_RANGE",
        contains="uuid")
    bad("domain-uuid-1", "S2R", "4.15", domain(uuid=b"0").frame(), "PROTO_RANGE",
        contains="uuid")
    bad("domain-uuid-upper", "S2R", "4.15",
        domain(uuid=HOST_UUID.upper()).frame(), "PROTO_RANGE", contains="uuid",
        note="upper-case hex digits are not in 0-9 a-f -")
    bad("domain-waive-upper", "S2R", "4.15", domain(waive=[b"Disk-cache"]).frame(),
        "PROTO_RANGE", contains="waived")
    bad("domain-waive-underscore", "S2R", "4.15", domain(waive=[b"cpu", b"disk_cache"]).frame(),
        "PROTO_RANGE", contains="byte 0x5f")
    bad("domain-waive-empty", "S2R", "4.15", domain(waive=[b""]).frame(), "PROTO_RANGE",
        contains="waived")
    bad("domain-waive-32", "S2R", "4.15", domain(waive=[b"n" * 32]).frame(), "PROTO_RANGE",
        contains="waived")
    bad("domain-waive-twice", "S2R", "4.15",
        domain(waive=[b"disk-cache", b"cpu-model", b"disk-cache"]).frame(), "PROTO_RANGE",
        contains="twice")
    bad("domain-nwaive-17", "S2R", "4.15",
        domain(waive=[b"c%d" % i for i in range(17)]).frame(), "PROTO_RANGE", contains="17")
    m = domain(waive=[b"cache"], nwaive=2)
    n = 4 + 7 + 15 + 1 + 1 + 6
    bad("domain-nwaive-past-end", "S2R", "3.4, 4.15", [header(16, n)] + cut_parts(m.parts, n),
        "PROTO_LENGTH", contains="truncated", note="nwaive 2, one name, then the payload ends")
    m = domain(waive=[b"cache", b"memory"])
    n = 4 + 7 + 15 + 1 + 1 + 6 + 1 + 3
    bad("domain-cut-in-name", "S2R", "3.4, 4.15", [header(16, n)] + cut_parts(m.parts, n),
        "PROTO_LENGTH", contains="truncated", note="the payload ends inside the second waived name")
    bad("domain-xml-len-0", "S2R", "4.15", domain(arch=b"ab", model=b"", xml=b"").frame(),
        "PROTO_RANGE", contains="xml_len 0",
        note="arch of 2 bytes makes the payload 14 bytes, the table's minimum")
    bad("domain-xml-len-over", "S2R", "4.15",
        domain(xml=b"<d/>", xml_len=DOMAIN_XML_MAX + 1).frame(), "PROTO_RANGE",
        contains="1048577")
    bad("domain-xml-truncated", "S2R", "3.4, 4.15", domain(xml_len=len(DOMAIN_XML) + 1).frame(),
        "PROTO_LENGTH", contains="xml truncated", note="xml_len one more than the bytes that follow")
    bad("domain-trailing-byte", "S2R", "3.4, 4.15", domain(trailing=b"\x00").frame(),
        "PROTO_LENGTH", contains="trailing")
    bad("hdr-domain-length-13", "S2R", "3.3, 4", [header(16, 13)], "PROTO_LENGTH",
        note="DOMAIN is at least 14 bytes")
    bad("hdr-domain-over-negotiated", "S2R", "3.3, 4", [header(16, MAX_FRAME_DEFAULT + 1)],
        "PROTO_LENGTH", contains="1052673", note="DOMAIN's maximum is the negotiated one")
    bad("dir-domain-r2s", "R2S", "3.3, 4", domain().frame(), "PROTO_TYPE", contains="direction",
        note="a well-formed DOMAIN arriving at the sender: the table allows only S->R")


def checks_cases():
    arch = Row(1, 0, b"arch", b"x86_64", b"x86_64")
    ok("checks-one-pass", "R2S", "4.16", checks([arch]), note="one row, status pass, code 0")
    ok("checks-each-status", "R2S", "4.16", checks([
        Row(1, CODES["VIRT_ARCH"], b"arch", b"x86_64", b"x86_64"),
        Row(2, CODES["VIRT_CPUS"], b"host-cpus", b"8 vcpus", b"4 cpus",
            b"the domain has 8 vCPUs, this host 4 CPUs"),
        Row(3, CODES["VIRT_CACHE"], b"disk-cache", b"vda: writeback", b"none",
            b"disk vda: cache mode writeback, not none")]),
       note="pass (with its check's code), fail, waived")
    big = []
    for i in range(CHECKS_MAX):
        st = 1 + i % 3
        big.append(Row(st, 0 if st == 1 and i % 2 else 51 + i % 12,
                       (b"check-%02d-" % i + b"x" * CHECK_NAME_MAX)[:CHECK_NAME_MAX],
                       det_bytes("src%d" % i, CHECK_VALUE_MAX // 2).hex().encode(),
                       (b"dst %d " % i * 40)[:CHECK_VALUE_MAX],
                       (b"why %d: the value differs; " % i * 40)[:CHECK_WHY_MAX]))
    m = checks(big)
    assert plen(m.parts) == CHECKS_PAYLOAD_MAX
    ok("checks-16-rows-max", "R2S", "3.3, 4, 4.16", m,
       note="16 rows with every field at its maximum: 14002 bytes, the table's maximum")
    ok("checks-empty-values", "R2S", "4.16", checks([Row(3, CODES["REFUSE_SPACE"], b"s")]),
       note="one row, waived, one-byte name, empty source/destination/why: 15 bytes")
    vec("checks-control-bytes", "R2S", "4.16",
        checks([Row(2, CODES["VIRT_XML"], b"xml", b"\x00src", b"dst\x7f",
                    b"line 1\nline 2\t\x1b[31m")]).frame(), True,
        fields=checks([Row(2, CODES["VIRT_XML"], b"xml", b"\x00src", b"dst\x7f",
                           b"line 1\nline 2\t\x1b[31m")]).fields, reencode=False,
        note=["text fields are shown with control bytes replaced (4.16); ferry replaces",
              "them with '?' when decoding (reencode: no)"])
    ok("checks-8bit-text", "R2S", "4.16",
       checks([Row(2, CODES["VIRT_CPU_MODEL"], b"cpu-model", b"Skyl\xc3\xa6ke", b"EPYC",
                   b"mod\xc3\xa8le")]),
       note="bytes 0x80..0xff in text are not control bytes: kept as they are")
    ok("checks-unknown-code", "R2S", "4.16, 7",
       checks([Row(2, 999, b"future-check", b"a", b"b", b"a check this version does not know")]),
       note="a row for a check the sender does not know is shown as reported")

    bad("checks-nrows-0", "R2S", "4.16", checks([arch], nrows=0).frame(), "PROTO_RANGE",
        contains="0 rows", note="nrows 0 followed by a row's bytes (the payload is 15+ bytes)")
    bad("checks-nrows-17", "R2S", "4.16",
        checks([Row(1, 0, b"c%d" % i) for i in range(17)]).frame(), "PROTO_RANGE",
        contains="17 rows")
    bad("checks-status-0", "R2S", "4.16", checks([Row(0, 58, b"arch")]).frame(), "PROTO_RANGE",
        contains="status 0")
    bad("checks-status-4", "R2S", "4.16", checks([arch, Row(4, 58, b"arch")]).frame(),
        "PROTO_RANGE", contains="row 1 status 4")
    bad("checks-fail-code-0", "R2S", "4.16", checks([Row(2, 0, b"arch")]).frame(), "PROTO_RANGE",
        contains="code 0")
    bad("checks-waived-code-0", "R2S", "4.16", checks([Row(3, 0, b"arch")]).frame(),
        "PROTO_RANGE", contains="code 0")
    bad("checks-name-upper", "R2S", "4.16", checks([Row(1, 0, b"Arch")]).frame(), "PROTO_RANGE",
        contains="name")
    bad("checks-name-empty", "R2S", "4.16", checks([Row(1, 0, b"", b"x86_64")]).frame(),
        "PROTO_RANGE", contains="name")
    bad("checks-name-32", "R2S", "4.16", checks([Row(1, 0, b"n" * 32)]).frame(), "PROTO_RANGE",
        contains="name")
    bad("checks-source-161", "R2S", "4.16", checks([Row(1, 0, b"a", b"s" * 161)]).frame(),
        "PROTO_RANGE", contains="source")
    bad("checks-destination-161", "R2S", "4.16", checks([Row(1, 0, b"a", b"", b"d" * 161)]).frame(),
        "PROTO_RANGE", contains="destination")
    bad("checks-why-513", "R2S", "4.16", checks([Row(2, 60, b"a", b"", b"", b"w" * 513)]).frame(),
        "PROTO_RANGE", contains="why")
    two = checks([arch, Row(2, 60, b"host-cpus", b"8", b"4", b"too few")])
    bad("checks-row-missing", "R2S", "3.4, 4.16", checks([arch], nrows=2).frame(), "PROTO_LENGTH",
        contains="row 1 truncated", note="nrows 2, one row")
    n = plen(two.parts) - 3
    bad("checks-row-truncated", "R2S", "3.4, 4.16",
        [header(17, n)] + cut_parts(two.parts, n), "PROTO_LENGTH", contains="why",
        note="the second row's why ends 3 bytes early")
    bad("checks-trailing-byte", "R2S", "3.4, 4.16", checks([arch], trailing=b"\x00").frame(),
        "PROTO_LENGTH", contains="trailing")
    bad("hdr-checks-length-14", "R2S", "3.3, 4", [header(17, 14)], "PROTO_LENGTH",
        note="CHECKS is at least 15 bytes")
    bad("hdr-checks-length-14003", "R2S", "3.3, 4", [header(17, CHECKS_PAYLOAD_MAX + 1)],
        "PROTO_LENGTH", contains="14003", note="CHECKS is at most 14002 bytes")
    bad("dir-checks-s2r", "S2R", "3.3, 4", checks([arch]).frame(), "PROTO_TYPE",
        contains="direction", note="a well-formed CHECKS arriving at the receiver")


QTAB = [(b"pc.ram", 16 * QPAGE), (b"vga.vram", 4 * QPAGE)]


def qstream_cases():
    """Sections 4.17 and 4.18."""
    c = qctx(QTAB)
    first = [(b"pc.ram", 32 * QPAGE), (b"/rom@etc/acpi/tables", 2 * QPAGE),
             (b"vga.vram", 4 * QPAGE)]
    qevm = b"QEVM\x00\x00\x00\x03\x07\x00\x00\x00\x0apc-q35-7.2"
    ok("qstream-opaque", "S2R", "4.17", qstream([qopaque(qevm)]),
       note="the stream's first bytes (file header, configuration) carried verbatim")
    ok("qstream-blocks", "S2R", "4.17", qstream([qblocks(first)], seq=2, stream_off=29),
       note="the RAM block list: 3 blocks; it rebuilds no bytes")
    raw = det_bytes("qraw", QPAGE)
    ok("qstream-page-raw", "S2R", "4.17", qstream([qpage(QREC_DATA, 0, 5 * QPAGE, 4, data=raw)],
                                                  seq=3, stream_off=1 << 20, table=QTAB),
       context=c, note="a data record with its block id: 8 + 1 + 6 + 4096 bytes rebuilt")
    blk, page = lz4_text_unit(QPAGE, 3)
    ok("qstream-page-lz4-cont", "S2R", "4.17",
       qstream([qpage(QREC_DATA | QREC_CONT, 0, 6 * QPAGE, 3, data=blk, page=page)], seq=4,
               table=QTAB), context=c,
       note="CONTINUE: no block id, 8 + 4096 bytes; the lz4 block decodes to the page")
    blk2, page2 = lz4_exact(QPAGE, QPAGE - 1, "qlz4max")
    ok("qstream-page-lz4-clen-max", "S2R", "4.17",
       qstream([qpage(QREC_DATA, 1, 3 * QPAGE, 3, data=blk2, page=page2)], table=QTAB), context=c,
       note="clen 4095, the largest allowed; the last page of vga.vram")
    ok("qstream-page-zero-record", "S2R", "4.17",
       qstream([qpage(0, 1, 2 * QPAGE, 1)], table=QTAB), context=c,
       note="a QEMU zero record: 8 + 1 + 8 + 1 bytes rebuilt")
    ok("qstream-page-zero-record-cont", "S2R", "4.17",
       qstream([qpage(QREC_CONT, 1, 3 * QPAGE, 1)], table=QTAB), context=c,
       note="a zero record with CONTINUE: 8 + 1 bytes")
    ok("qstream-page-data-zero", "S2R", "4.17",
       qstream([qpage(QREC_DATA | QREC_CONT, 0, 0, 1)], table=QTAB), context=c,
       note=["a data record whose page is all zeros, sent as ZERO: it stays a data record",
             "(8 + 4096 bytes rebuilt)"])
    ok("qstream-page-ref", "S2R", "4.17",
       qstream([qpage(QREC_DATA, 0, 15 * QPAGE, 2, src=(1, 0))], table=QTAB), context=c,
       note="REF to a page of another block; its content and hash are session checks")
    blk3, page3 = lz4_text_unit(QPAGE, 7)
    ok("qstream-first-frame", "S2R", "4.17",
       qstream([qopaque(qevm), qopaque(b"\x01\x00\x00\x00\x02\x03ram\x00\x00\x00\x00\x00\x00\x00\x04"),
                qblocks(first),
                qpage(QREC_DATA, 0, 0, 4, data=det_bytes("qff0", QPAGE)),
                qpage(QREC_DATA | QREC_CONT, 0, QPAGE, 3, data=blk3, page=page3),
                qpage(QREC_CONT, 0, 2 * QPAGE, 1),
                qpage(0, 1, QPAGE, 1),
                qpage(QREC_DATA, 2, 0, 2, src=(0, 0)),
                qopaque(b"\x10\x00\x00\x00\x00\x00\x00\x00\x7e\x00\x00\x00\x02")]),
       note=["a session's first QSTREAM: opaque header bytes, the block list, then pages",
             "naming it (items apply in order), every kind and rec, the REF naming a page",
             "of this frame"])
    longid = bytes(0x21 + i % 90 for i in range(QBLOCK_ID_MAX))
    many = [(b"b%03d" % i, QPAGE) for i in range(QBLOCKS_MAX - 2)] + \
        [(longid, QPAGE), (b"huge", DEVICE_SIZE_MAX)]
    ok("qstream-blocks-max", "S2R", "4.17", qstream([qblocks(many)]),
       note="256 blocks (the maximum), one id of 255 bytes, one block of 2^46 bytes")
    ok("qstream-count-max", "S2R", "4.17",
       qstream([qopaque(b"\x7e") for _ in range(MAX_PAGES)], dense=True,
               range_fields=[("item[0..4095].type", "OPAQUE"), ("item[0..4095].len", 1),
                             ("item[0..4095].data", "7e")]),
       note="count 4096 (the maximum) OPAQUE items of one byte")

    def fr(parts):
        return [header(18, plen(parts))] + parts

    def head(seq=1, off=0, count=1):
        return [Part(u64(seq), "seq"), Part(u64(off), "stream_off"), Part(u32(count), "count")]

    one = Part(u8(1) + u32(1) + b"\x00", "item: OPAQUE, len 1")
    bad("qstream-seq-0", "S2R", "4.17", fr(head(seq=0) + [one]), "PROTO_RANGE", contains="seq 0")
    bad("qstream-count-0", "S2R", "4.17", fr(head(count=0) + [one]), "PROTO_RANGE",
        contains="count 0",
        ambiguous="the 6 bytes after count 0 are also left over (PROTO_LENGTH); the count is checked first")
    bad("qstream-count-4097", "S2R", "4.17", fr(head(count=MAX_PAGES + 1) + [one]), "PROTO_RANGE",
        contains="count 4097",
        ambiguous="also impossible in 6 bytes (PROTO_LENGTH); the 4096 limit is checked first")
    bad("qstream-count-impossible", "S2R", "4.17", fr(head(count=2) + [one, Part(b"\x01\x00\x00\x00", "4 bytes")]),
        "PROTO_LENGTH", contains="does not fit", note="count 2 in 10 bytes: items take 6 bytes or more")
    bad("qstream-count-short", "S2R", "3.4, 4.17",
        fr(head(count=2) + [Part(u8(1) + u32(7) + b"opaque!", "item: OPAQUE, len 7")]),
        "PROTO_LENGTH", contains="truncated", note="count 2, one complete item, then the end")
    bad("qstream-trailing-byte", "S2R", "3.4, 4.17", fr(head() + [one, Part(b"\x00", "trailing")]),
        "PROTO_LENGTH", contains="after 1 items")
    bad("qstream-item-type-0", "S2R", "4.17",
        fr(head() + [Part(b"\x00\x00\x00\x00\x01\x00", "item: type 0")]), "PROTO_RANGE",
        contains="type 0")
    bad("qstream-item-type-4", "S2R", "4.17",
        fr(head() + [Part(b"\x04\x00\x00\x00\x01\x00", "item: type 4")]), "PROTO_RANGE",
        contains="type 4")
    bad("qstream-opaque-len-0", "S2R", "4.17",
        fr(head() + [Part(u8(1) + u32(0) + b"\x00", "item: OPAQUE, len 0, one more byte")]),
        "PROTO_LENGTH", contains="len 0")
    bad("qstream-opaque-past-end", "S2R", "3.4, 4.17",
        fr(head() + [Part(u8(1) + u32(9) + b"12345678", "item: OPAQUE, len 9, 8 bytes follow")]),
        "PROTO_LENGTH", contains="past")
    bad("qstream-blocks-second", "S2R", "4.17", qstream([qblocks(QTAB)], table=QTAB).frame(),
        "PROTO_STATE", context=c, contains="has a block table",
        note="the session already has a block table (context): one BLOCKS per session")
    bad("qstream-blocks-second-same-frame", "S2R", "4.17",
        qstream([qblocks(QTAB), qblocks(first)]).frame(), "PROTO_STATE",
        contains="has a block table", note="two BLOCKS items in one frame")
    bad("qstream-blocks-n-0", "S2R", "4.17",
        fr(head() + [Part(u8(2) + u16(0) + b"\x00\x00\x00", "item: BLOCKS, n 0, 3 more bytes")]),
        "PROTO_RANGE", contains="n 0")
    bad("qstream-blocks-n-257", "S2R", "4.17",
        qstream([qblocks([(b"b%03d" % i, QPAGE) for i in range(QBLOCKS_MAX + 1)])]).frame(),
        "PROTO_RANGE", contains="n 257", note="257 complete blocks: only n is wrong")
    bad("qstream-blocks-n-past-end", "S2R", "3.4, 4.17",
        qstream([qblocks(QTAB, n=3)]).frame(), "PROTO_LENGTH", note="n 3, two blocks")
    bad("qstream-blocks-id-empty", "S2R", "4.17",
        qstream([qblocks([(b"", QPAGE)])]).frame(), "PROTO_RANGE", contains="id_len 0")
    bad("qstream-blocks-id-nul", "S2R", "4.17",
        qstream([qblocks([(b"pc\x00ram", QPAGE)])]).frame(), "PROTO_RANGE", contains="NUL")
    bad("qstream-blocks-dup-id", "S2R", "4.17",
        qstream([qblocks([(b"pc.ram", QPAGE), (b"vga", QPAGE), (b"pc.ram", 2 * QPAGE)])]).frame(),
        "PROTO_RANGE", contains="repeats block 0")
    bad("qstream-blocks-len-0", "S2R", "4.17", qstream([qblocks([(b"pc.ram", 0)])]).frame(),
        "PROTO_RANGE", contains="len 0")
    bad("qstream-blocks-len-unaligned", "S2R", "4.17",
        qstream([qblocks([(b"pc.ram", QPAGE + 512)])]).frame(), "PROTO_RANGE", contains="len 4608")
    bad("qstream-blocks-len-over", "S2R", "4.17",
        qstream([qblocks([(b"pc.ram", DEVICE_SIZE_MAX + QPAGE)])]).frame(), "PROTO_RANGE",
        contains="len 70368744181760", note="2^46 + 4096: over FERRY_DEVICE_SIZE_MAX")
    bad("qstream-page-no-table", "S2R", "4.17", qstream([qpage(QREC_DATA, 0, 0, 1)]).frame(),
        "PROTO_RANGE", contains="no BLOCKS", note="a PAGE before any BLOCKS item")
    bad("qstream-page-rec-4", "S2R", "4.17", qstream([qpage(4 | QREC_DATA, 0, 0, 1)], table=QTAB).frame(),
        "PROTO", context=c, contains="rec 0x05")
    bad("qstream-page-block-2", "S2R", "4.17", qstream([qpage(QREC_DATA, 2, 0, 1)], table=QTAB).frame(),
        "PROTO_RANGE", context=c, contains="block 2 not in the block table")
    bad("qstream-page-offset-unaligned", "S2R", "4.17",
        qstream([qpage(QREC_DATA, 0, 100, 1)], table=QTAB).frame(), "PROTO_RANGE", context=c,
        contains="offset 100 not a multiple")
    bad("qstream-page-offset-past-block", "S2R", "4.17",
        qstream([qpage(QREC_DATA, 1, 4 * QPAGE, 1)], table=QTAB).frame(), "PROTO_RANGE", context=c,
        contains="offset 16384 >= length 16384", note="vga.vram has 4 pages: offset 16384 is past it")
    bad("qstream-page-kind-0", "S2R", "4.17", qstream([qpage(QREC_DATA, 0, 0, 0)], table=QTAB).frame(),
        "PROTO_RANGE", context=c, contains="kind 0")
    bad("qstream-page-kind-5", "S2R", "4.17",
        qstream([qpage(QREC_DATA, 0, 0, 5, raw=bytes(16))], table=QTAB).frame(), "PROTO_RANGE",
        context=c, contains="kind 5")
    bad("qstream-zero-record-raw", "S2R", "4.17",
        qstream([qpage(0, 0, 0, 4, data=raw)], table=QTAB).frame(), "PROTO_RANGE", context=c,
        contains="zero record", note="a zero record (rec without DATA) must be kind ZERO")
    bad("qstream-ref-src-block", "S2R", "4.17",
        qstream([qpage(QREC_DATA, 0, 0, 2, src=(9, 0))], table=QTAB).frame(), "PROTO_RANGE",
        context=c, contains="src_block 9")
    bad("qstream-ref-src-offset", "S2R", "4.17",
        qstream([qpage(QREC_DATA, 0, 0, 2, src=(0, 16 * QPAGE))], table=QTAB).frame(),
        "PROTO_RANGE", context=c, contains="src_offset 65536")
    bad("qstream-ref-truncated", "S2R", "3.4, 4.17",
        qstream([qpage(QREC_DATA, 0, 0, 2, raw=bytes(20))], table=QTAB).frame(), "PROTO_LENGTH",
        context=c, note="a REF's payload of 20 of its 26 bytes")
    bad("qstream-lz4-clen-0", "S2R", "4.17",
        qstream([qpage(QREC_DATA, 0, 0, 3, raw=u32(0) + b"\x00")], table=QTAB).frame(),
        "PROTO_CODEC", context=c, contains="clen 0")
    bad("qstream-lz4-clen-4096", "S2R", "4.17",
        qstream([qpage(QREC_DATA, 0, 0, 3, raw=u32(QPAGE) + det_bytes("q4096", QPAGE))],
                table=QTAB).frame(), "PROTO_CODEC", context=c, contains="clen 4096",
        note="clen must be below the page size")
    small, _ = lz4_text_unit(100, 2)
    bad("qstream-lz4-wrong-size", "S2R", "4.17",
        qstream([qpage(QREC_DATA, 0, 0, 3, data=small)], table=QTAB).frame(), "PROTO_CODEC",
        context=c, note="a valid lz4 block that decodes to 100 bytes, not 4096")
    bad("qstream-lz4-past-end", "S2R", "3.4, 4.17",
        qstream([qpage(QREC_DATA, 0, 0, 3, raw=u32(64) + bytes(10))], table=QTAB).frame(),
        "PROTO_LENGTH", context=c, contains="past")
    bad("qstream-raw-truncated", "S2R", "3.4, 4.17",
        qstream([qpage(QREC_DATA, 0, 0, 4, raw=raw[:QPAGE - 1])], table=QTAB).frame(),
        "PROTO_LENGTH", context=c, contains="RAW", note="a RAW page one byte short")
    bad("hdr-qstream-length-25", "S2R", "3.3, 4", [header(18, 25)], "PROTO_LENGTH",
        note="QSTREAM is at least 26 bytes: the 20-byte header and a 6-byte item")
    bad("dir-qstream-r2s", "R2S", "3.3, 4", qstream([qopaque(b"x")]).frame(), "PROTO_TYPE",
        contains="direction", note="a well-formed QSTREAM arriving at the sender")

    shut = b"\x00\x01\x00\x04\x00\x00\x00\x00"
    ok("qreturn-basic", "R2S", "4.18", qreturn(0, shut),
       note="QEMU's return-path SHUT message (u16 type 1, u16 len 4, u32 0) at offset 0")
    ok("qreturn-one-byte", "R2S", "4.18", qreturn(12345, b"\x02"), note="the least data: 1 byte")
    ok("qreturn-at-max", "R2S", "4.18", qreturn(QRETURN_MAX - 8, shut),
       note="offset + 8 bytes = 1048576 (FERRY_QRETURN_MAX), the most a return path holds")
    bad("qreturn-past-max", "R2S", "4.18", qreturn(QRETURN_MAX - 7, shut).frame(), "PROTO_RANGE",
        contains="offset 1048569", note="one byte past FERRY_QRETURN_MAX")
    bad("qreturn-offset-huge", "R2S", "4.18", qreturn(0xFFFFFFFFFFFFFFFF, b"\x00").frame(),
        "PROTO_RANGE", contains="offset")
    bad("hdr-qreturn-length-8", "R2S", "3.3, 4, 4.18", [header(19, 8)] + [Part(u64(0), "offset")],
        "PROTO_LENGTH", note="QRETURN carries at least 1 data byte: 9 bytes at least")
    bad("hdr-qreturn-length-1048585", "R2S", "3.3, 4, 4.18", [header(19, 8 + QRETURN_MAX + 1)],
        "PROTO_LENGTH", contains="1048585", note="QRETURN is at most 8 + 1048576 bytes")
    bad("dir-qreturn-s2r", "S2R", "3.3, 4", qreturn(0, shut).frame(), "PROTO_TYPE",
        contains="direction", note="a well-formed QRETURN arriving at the receiver")


def have_cases():
    """Section 4.19: HAVE (receiver to sender, CAP_REUSE).  Whether the
    device is in the manifest and the units follow on from the last HAVE
    are session checks, not decoding."""
    hs = [det_bytes("have/%d" % i, HASH_LEN) for i in range(3)]
    ok("have-one", "R2S", "4.19", have(1, 0, hs[:1]),
       note="the hash of unit 0 of device 1: the smallest HAVE, 28 bytes")
    ok("have-three", "R2S", "4.19", have(2, 4096, hs),
       note="units 4096..4098 of device 2, in order")
    ok("have-last-index", "R2S", "4.19", have(7, 0xFFFFFFFE, hs[:1]),
       note="unit 2^32 - 2, the last index a device can have: first + count = 2^32 - 1")
    bad("have-device-0", "R2S", "4.19", have(0, 0, hs[:1]).frame(), "PROTO_RANGE",
        contains="device 0", note="device ids are never 0 (4.3)")
    bad("have-count-0", "R2S", "4.19", have(1, 0, hs[:1], count=0).frame(), "PROTO_RANGE",
        contains="count 0", note="count 0 with one hash after it: the count is checked first",
        ambiguous="the 16 bytes after count 0 are also too many (PROTO_LENGTH); the count is checked first")
    bad("have-count-short", "R2S", "3.4, 4.19", have(1, 0, hs[:2], count=3).frame(), "PROTO_LENGTH",
        contains="count 3", note="count 3, two hashes: the payload is not 12 + 16 x count")
    bad("have-count-long", "R2S", "3.4, 4.19", have(1, 0, hs[:2], count=1).frame(), "PROTO_LENGTH",
        contains="count 1", note="count 1, two hashes")
    bad("have-hash-cut", "R2S", "3.4, 4.19", have(1, 0, hs[:1], trailing=b"\x00" * 5).frame(),
        "PROTO_LENGTH", note="count 1 and 21 bytes of hashes")
    bad("have-past-last-index", "R2S", "4.19", have(3, 0xFFFFFFFF, hs[:1]).frame(), "PROTO_RANGE",
        contains="first 4294967295", note="first 2^32 - 1 + count 1 is past any device's last unit")
    bad("have-count-overflow", "R2S", "4.19", have(3, 0x80000000, hs[:1], count=0x80000000).frame(),
        "PROTO_LENGTH", note="count 2^31 cannot fit: the length rule fires before the index one",
        ambiguous="first + count is also past 2^32 - 1 (PROTO_RANGE); the length is checked first")
    bad("hdr-have-length-27", "R2S", "3.3, 4, 4.19", [header(20, 27)], "PROTO_LENGTH",
        note="HAVE is at least 28 bytes: 12 and one hash")
    bad("hdr-have-over-negotiated", "R2S", "3.3, 4.19", [header(20, MAX_FRAME_DEFAULT + 1)],
        "PROTO_LENGTH", contains="1052673", note="one byte over the negotiated maximum payload")
    bad("dir-have-s2r", "S2R", "3.3, 4", have(1, 0, hs[:1]).frame(), "PROTO_TYPE",
        contains="direction", note="a well-formed HAVE arriving at the receiver")


def main():
    frame_header_cases()
    direction_cases()
    hello_cases()
    manifest_cases()
    simple_cases()
    pages_cases()
    domain_cases()
    checks_cases()
    qstream_cases()
    have_cases()
    check = "--check" in sys.argv[1:]
    want = {name + ".vec": text for name, text in VECTORS}
    have = {f for f in os.listdir(HERE) if f.endswith(".vec")}
    if check:
        bad_files = sorted(f for f in want if f not in have or
                           open(os.path.join(HERE, f)).read() != want[f])
        bad_files += sorted(have - set(want))
        for f in bad_files:
            print("differs: %s" % f)
        return 1 if bad_files else 0
    for f in have - set(want):
        os.unlink(os.path.join(HERE, f))
    for f, text in want.items():
        with open(os.path.join(HERE, f), "w") as fh:
            fh.write(text)
    print("%d vectors written to %s" % (len(want), HERE))
    return 0


if __name__ == "__main__":
    sys.exit(main())
