#!/usr/bin/env python3
"""Write the seed corpora of the fuzz harnesses: fuzz/corpus/<harness>/.

Every seed is a valid input built from proto/PROTOCOL.md (frames of each
type, PAGES entries of each kind, manifests, lz4 blocks, CLI values, resume
proofs, whole receiver sessions that commit), so the fuzzers start from
the deep end of each decoder.  The output is deterministic: running the
script again rewrites the same bytes.  Files it did not write (crash-*
inputs kept so replay checks they stay fixed) are left alone.

Standard library only.  Page hashes (XXH3-128, section 5.2) come from the
system libxxhash through ctypes, which the project already needs to
build; without it, REF hashes and COMMIT digests are written as zeros (the
seeds then stop at those checks) and a warning is printed.  lz4 blocks
come from a small compressor written here (lz4 block format: token,
literals, little-endian offset, match length).

Usage: python3 fuzz/make_seeds.py [CORPUS_DIR]   (default fuzz/corpus)
"""
import ctypes
import ctypes.util
import hashlib
import hmac
import os
import struct
import sys

# ---- protocol constants (proto/PROTOCOL.md sections 3, 4) ------------------

MAGIC = 0x46525931
VERSION = 1
MAX_FRAME_DEFAULT = 1024 * 1024 + 4096
MAX_FRAME_LIMIT = 16 * 1024 * 1024
(HELLO, WELCOME, MANIFEST, ACCEPT, REFUSE, PAGES, ACK, STATE, COMMIT,
 COMMITTED, ERROR, RESUME, RESUMED, PING, PONG, DOMAIN, CHECKS, QSTREAM,
 QRETURN, HAVE) = range(1, 21)
CAP_DOMAIN, CAP_QEMU, CAP_REUSE = 1, 2, 4
DOMAIN_CHECK_ONLY = 1
CS_PASS, CS_FAIL, CS_WAIVED = 1, 2, 3
ZERO, REF, LZ4, RAW = 1, 2, 3, 4
MEMORY, DISK, QEMU = 1, 2, 3
# Sections 4.17, 4.18: QSTREAM items and page records
QI_OPAQUE, QI_BLOCKS, QI_PAGE = 1, 2, 3
QREC_DATA, QREC_CONT = 1, 2
QPAGE = 4096
RSM_RECEIVING, RSM_COMMITTED, RSM_FAILED = 1, 2, 3
PROOF_PREFIX = b"ferry resume v1"

# ---- XXH3-128 through libxxhash ---------------------------------------------


class _XXH128(ctypes.Structure):
    _fields_ = [("low64", ctypes.c_uint64), ("high64", ctypes.c_uint64)]


def _load_xxh():
    name = ctypes.util.find_library("xxhash")
    for cand in ([name] if name else []) + ["libxxhash.so.0", "libxxhash.so"]:
        try:
            lib = ctypes.CDLL(cand)
            fn = lib.XXH3_128bits_withSeed
        except (OSError, AttributeError):
            continue
        fn.restype = _XXH128
        fn.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64]
        return fn
    return None


_XXH = _load_xxh()


def xxh128(seed, data):
    """XXH3-128 with seed, canonical (big-endian high then low) form."""
    if _XXH is None:
        return bytes(16)
    h = _XXH(bytes(data), len(data), seed)
    return struct.pack(">QQ", h.high64, h.low64)


def det_bytes(tag, n):
    """n deterministic bytes named by tag (SHA-256 counter), as
    proto/vectors/make_vectors.py makes its session ids and hashes."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(("%s/%d" % (tag, i)).encode()).digest()
        i += 1
    return bytes(out[:n])


def image_digest(seed, image, unit):
    """Section 5.2: XXH3-128 over the hashes of the units in order."""
    hashes = b"".join(xxh128(seed, image[o:o + unit]) for o in range(0, len(image), unit))
    return xxh128(seed, hashes)


# ---- lz4 block compressor ---------------------------------------------------


def _lz4_len(out, v):
    while v >= 255:
        out.append(255)
        v -= 255
    out.append(v)


def _lz4_seq(out, lit, off=0, mlen=0):
    ll = len(lit)
    ml = mlen - 4 if off else 0
    out.append((min(ll, 15) << 4) | (min(ml, 15) if off else 0))
    if ll >= 15:
        _lz4_len(out, ll - 15)
    out += lit
    if off:
        out += struct.pack("<H", off)
        if ml >= 15:
            _lz4_len(out, ml - 15)


def lz4_block(src):
    """Greedy lz4 block: a match starts at least 12 bytes before the end
    and ends at least 5 before it (the format's end-of-block rules)."""
    src = bytes(src)
    n = len(src)
    out = bytearray()
    table = {}
    anchor = i = 0
    while i < n - 12:
        key = src[i:i + 4]
        cand = table.get(key)
        table[key] = i
        if cand is None or i - cand > 65535:
            i += 1
            continue
        mlen = 4
        while i + mlen < n - 5 and src[cand + mlen] == src[i + mlen]:
            mlen += 1
        _lz4_seq(out, src[anchor:i], i - cand, mlen)
        i += mlen
        anchor = i
    _lz4_seq(out, src[anchor:])
    return bytes(out)


# ---- frame encoders ---------------------------------------------------------


def frame(ftype, payload):
    return struct.pack(">BBHI", ftype, 0, 0, len(payload)) + payload


def hello(seed, max_frame=MAX_FRAME_DEFAULT, caps=0):
    return frame(HELLO, struct.pack(">IHHIIQ", MAGIC, VERSION, 0, caps, max_frame, seed))


def welcome(sid, max_frame=MAX_FRAME_DEFAULT):
    return frame(WELCOME, struct.pack(">IHHII", MAGIC, VERSION, 0, 0, max_frame) + sid)


def manifest_payload(devs, state_size=0, state_name=b""):
    """devs: (id, kind, unit, size, name[, src_dev, src_ino])."""
    p = struct.pack(">IQH", len(devs), state_size, len(state_name)) + state_name
    for d in devs:
        did, kind, unit, size, name = d[:5]
        sdev, sino = (d[5], d[6]) if len(d) > 5 else (0, 0)
        p += struct.pack(">IBBHIQQQ", did, kind, 0, len(name), unit, size, sdev, sino) + name
    return p


def manifest(devs, state_size=0, state_name=b""):
    return frame(MANIFEST, manifest_payload(devs, state_size, state_name))


def text_payload(code, text, device=None):
    p = struct.pack(">I", code)
    if device is not None:
        p += struct.pack(">I", device)
    return p + struct.pack(">H", len(text)) + text


def entry(index, kind, data=b"", src=(0, 0), hsh=bytes(16)):
    e = struct.pack(">IB", index, kind)
    if kind == REF:
        e += struct.pack(">II", src[0], src[1]) + hsh
    elif kind == LZ4:
        e += struct.pack(">I", len(data)) + data
    elif kind == RAW:
        e += data
    return e


def pages_payload(seq, device, rnd, entries):
    return struct.pack(">QIII", seq, device, rnd, len(entries)) + b"".join(entries)


def pages(seq, device, rnd, entries):
    return frame(PAGES, pages_payload(seq, device, rnd, entries))


def have(device, first, hashes):
    """Section 4.19: HAVE, the hashes of units first.. of a device."""
    return frame(HAVE, struct.pack(">III", device, first, len(hashes)) + b"".join(hashes))


def seqmsg(ftype, v):
    return frame(ftype, struct.pack(">Q", v))


def state(off, data):
    return frame(STATE, struct.pack(">Q", off) + data)


def commit(seq, digests, state_digest=bytes(16)):
    p = struct.pack(">QI", seq, len(digests))
    for did, dg in digests:
        p += struct.pack(">I", did) + dg
    return frame(COMMIT, p + state_digest)


def domain(xml, flags=0, arch=b"x86_64", model=b"Skylake-Client", uuid=b"", waive=()):
    """Section 4.15: flags, u8-prefixed arch/model/uuid, waived names, xml."""
    p = struct.pack(">I", flags)
    for v in (arch, model, uuid):
        p += struct.pack(">B", len(v)) + v
    p += struct.pack(">B", len(waive)) + b"".join(struct.pack(">B", len(w)) + w for w in waive)
    return frame(DOMAIN, p + struct.pack(">I", len(xml)) + xml)


def checks(rows):
    """Section 4.16: rows of (status, code, name, source, destination, why)."""
    p = struct.pack(">H", len(rows))
    for st, code, name, src, dst, why in rows:
        p += struct.pack(">BIB", st, code, len(name)) + name
        for v in (src, dst, why):
            p += struct.pack(">H", len(v)) + v
    return frame(CHECKS, p)


DOMAIN_XML = (b"<domain type='kvm'>\n  <name>web1</name>\n  <memory unit='MiB'>512</memory>\n"
              b"  <vcpu>2</vcpu>\n  <os><type arch='x86_64'>hvm</type></os>\n  <devices>\n"
              b"    <disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/>"
              b"<source file='/images/disk.img'/><target dev='vda'/></disk>\n"
              b"  </devices>\n</domain>\n")
HOST_UUID = b"4c4c4544-0051-3010-8052-b4c04f4e3332"
CHECK_ROWS = [
    (CS_PASS, 58, b"arch", b"x86_64", b"x86_64", b""),
    (CS_FAIL, 60, b"host-cpus", b"8 vcpus", b"4 cpus", b"the domain has 8 vCPUs, this host 4"),
    (CS_WAIVED, 57, b"disk-cache", b"vda: writeback", b"none", b"disk vda: cache writeback"),
]


def resume_payload(sid, proof, max_frame=MAX_FRAME_DEFAULT):
    return struct.pack(">IHHI", MAGIC, VERSION, 0, max_frame) + sid + proof


def resumed_payload(status, next_seq, state_off):
    return struct.pack(">IQQ", status, next_seq, state_off)


def q_opaque(data):
    return struct.pack(">BI", QI_OPAQUE, len(data)) + data


def q_blocks(blocks):
    """blocks: (id bytes, length in bytes)."""
    return struct.pack(">BH", QI_BLOCKS, len(blocks)) + b"".join(
        struct.pack(">B", len(i)) + i + struct.pack(">Q", n) for i, n in blocks)


def q_page(rec, block, offset, kind, payload=b"", src=(0, 0), hsh=bytes(16)):
    """A PAGE item: ZERO nothing; REF src (block, offset) and hash; LZ4 the
    block; RAW the 4096 bytes."""
    b = struct.pack(">BBHQB", QI_PAGE, rec, block, offset, kind)
    if kind == REF:
        b += struct.pack(">HQ", *src) + hsh
    elif kind == LZ4:
        b += struct.pack(">I", len(payload)) + payload
    elif kind == RAW:
        b += payload
    return b


def qstream_payload(seq, stream_off, items):
    return struct.pack(">QQI", seq, stream_off, len(items)) + b"".join(items)


def qstream(seq, stream_off, items):
    return frame(QSTREAM, qstream_payload(seq, stream_off, items))


def qreturn_payload(off, data):
    return struct.pack(">Q", off) + data


def qreturn(off, data):
    return frame(QRETURN, qreturn_payload(off, data))


# ---- content ----------------------------------------------------------------


def text_page(n, salt):
    words = b"mov rax, [rbp-8]\ncall page_fault\n; dirty bitmap sweep "
    b = bytearray(words[(i + salt) % len(words)] for i in range(n))
    if n:
        b[0] = 0x41 + salt % 26
    return bytes(b)


def noise(n, salt):
    out = bytearray()
    x = 0x9E3779B9 ^ salt
    while len(out) < n:
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
        out.append(x >> 24)
    return bytes(out)


# ---- a receiver session -----------------------------------------------------


def old_unit(salt, idx, u, n):
    """fuzz_rsess's reuse mode: unit u (n bytes) of the existing
    destination file of device index idx, for seed byte salt (old_byte in
    fuzz_rsess.c)."""
    k = (u * 7 + idx * 13 + salt) & 0xFFFFFFFF
    if k % 5 == 0:
        return bytes(n)
    m = 2 * (k % 16) + 1
    ramp = bytes((j * m + k) & 0xFF for j in range(256))
    return (ramp * (n // 256 + 1))[:n]


def old_image(salt, idx, unit, size):
    """The whole existing file, or None when fuzz_rsess gives device index
    idx none (bit idx % 4 of the seed byte clear)."""
    if not (salt >> (idx % 4)) & 1:
        return None
    return b"".join(old_unit(salt, idx, u, min(unit, size - u * unit))
                    for u in range((size + unit - 1) // unit))


class Session:
    """Builds a sender's byte stream and tracks what the receiver should
    hold, so COMMIT carries the right digests.  With old_salt (fuzz_rsess's
    reuse mode, HELLO with CAP_REUSE) the devices the receiver reuses
    start as their existing files, whose hashes HAVE gave the sender."""

    def __init__(self, seed, devs, state_size=0, state_name=b"", caps=0, old_salt=None):
        self.seed = seed
        self.devs = devs          # (id, kind, unit, size, name)
        self.img = {d[0]: bytearray(d[3]) for d in devs}
        if old_salt is not None:
            for idx, (did, _, unit, size, _) in enumerate(d[:5] for d in devs):
                old = old_image(old_salt, idx, unit, size)
                if old is not None:
                    self.img[did] = bytearray(old)
        self.state_size = state_size
        self.state_blob = bytearray()
        self.seq = 0
        self.out = hello(seed, caps=caps) + manifest(devs, state_size, state_name)

    def dev(self, did):
        return next(d for d in self.devs if d[0] == did)

    def unit(self, did, idx):
        _, _, unit, size, _ = self.dev(did)
        return self.img[did][idx * unit:min(size, (idx + 1) * unit)]

    def put(self, did, idx, data):
        unit = self.dev(did)[2]
        self.img[did][idx * unit:idx * unit + len(data)] = data

    def pages(self, did, rnd, ops):
        """ops: (kind, index, payload) with payload the unit's new bytes
        (ZERO: None; REF: (src_device, src_index))."""
        ents = []
        for kind, idx, arg in ops:
            n = len(self.unit(did, idx))
            if kind == ZERO:
                ents.append(entry(idx, ZERO))
                self.put(did, idx, bytes(n))
            elif kind == REF:
                src = bytes(self.unit(*arg))
                ents.append(entry(idx, REF, src=arg, hsh=xxh128(self.seed, src)))
                self.put(did, idx, src)
            elif kind == LZ4:
                blk = lz4_block(arg)
                assert len(arg) == n and 0 < len(blk) < n, (len(arg), n, len(blk))
                ents.append(entry(idx, LZ4, blk))
                self.put(did, idx, arg)
            else:
                assert len(arg) == n
                ents.append(entry(idx, RAW, arg))
                self.put(did, idx, arg)
        self.seq += 1
        self.out += pages(self.seq, did, rnd, ents)

    def holds_data(self, did, idx):
        """The unit is not all zeros (so a ZERO entry has to write)."""
        return any(self.unit(did, idx))

    def state(self, data):
        self.out += state(len(self.state_blob), data)
        self.state_blob += data

    def commit(self):
        dg = [(d[0], image_digest(self.seed, bytes(self.img[d[0]]), d[2])) for d in self.devs]
        sd = image_digest(self.seed, bytes(self.state_blob), 1 << 20) if self.state_size else bytes(16)
        self.out += commit(self.seq, dg, sd)
        return self.out


SEED = 0x5EED0F00D1234567
MEM, DSK = 11, 22


def base_session():
    s = Session(SEED, [(MEM, MEMORY, 4096, 4 * 4096, b"mem"),
                       (DSK, DISK, 4096, 2 * 4096 + 100, b"disk.img")],
                300, b"vm.state")
    s.pages(MEM, 1, [(RAW, 0, noise(4096, 1)), (LZ4, 1, text_page(4096, 2)),
                     (ZERO, 2, None), (REF, 3, (MEM, 0))])
    s.pages(DSK, 1, [(RAW, 2, noise(100, 3)), (LZ4, 0, text_page(4096, 4)),
                     (REF, 1, (MEM, 1))])
    s.out += seqmsg(PING, 0x0102030405060708)
    s.pages(MEM, 2, [(ZERO, 0, None), (LZ4, 2, text_page(4096, 5))])
    s.pages(DSK, 2, [(ZERO, 2, None), (REF, 2, (DSK, 2))])   # the short last unit
    return s


def full_session():
    s = base_session()
    blob = text_page(300, 9)
    s.state(blob[:120])
    s.state(blob[120:])
    return s.commit()


# ---- corpora ----------------------------------------------------------------


def domain_session():
    """The full session with CAP_DOMAIN in HELLO and a DOMAIN before
    MANIFEST (section 4.15)."""
    full = full_session()
    d = domain(DOMAIN_XML, uuid=HOST_UUID, waive=[b"disk-cache"])
    return hello(SEED, caps=CAP_DOMAIN) + d + full[len(hello(SEED)):]


def seeds_frame():
    sid = bytes(range(0xA0, 0xB0))
    # PAGES here are checked against the harness's default device: 17
    # units of 4096 bytes, the last one 100 bytes.
    out = {
        "hello": hello(SEED),
        "hello-limit": hello(SEED, MAX_FRAME_LIMIT),
        "welcome": welcome(sid),
        "manifest": manifest([(1, MEMORY, 4096, 1 << 30, b"mem"),
                              (2, DISK, 4096, 10 * 4096 + 7, b"disk0.img", 2049, 123456)],
                             4096, b"vm.state"),
        "accept": seqmsg(ACCEPT, 1),
        "refuse": frame(REFUSE, text_payload(21, b"device 'disk0.img': destination exists with size 4096", 2)),
        "pages-zero": pages(1, 1, 1, [entry(0, ZERO), entry(16, ZERO)]),
        "pages-ref": pages(2, 1, 1, [entry(5, REF, src=(1, 4), hsh=bytes(range(16)))]),
        "pages-lz4": pages(3, 1, 2, [entry(1, LZ4, lz4_block(text_page(4096, 1)))]),
        "pages-raw": pages(4, 1, 2, [entry(16, RAW, noise(100, 2))]),
        "pages-mixed": pages(5, 1, 3, [entry(0, ZERO), entry(2, REF, src=(1, 0)),
                                       entry(3, LZ4, lz4_block(bytes(4096))),
                                       entry(16, RAW, noise(100, 3))]),
        "ack": seqmsg(ACK, 7),
        "state": state(0, text_page(64, 3)),
        "commit": commit(9, [(1, bytes(16)), (2, bytes(range(16)))], bytes(16)),
        "committed": seqmsg(COMMITTED, 9),
        "error": frame(ERROR, text_payload(14, b"PAGES: device 1 index 7 >= 3 units")),
        "error-control-bytes": frame(ERROR, text_payload(36, b"aborted\n\x1b[31mred\x00")),
        "resume": frame(RESUME, resume_payload(sid, bytes(32))),
        "resumed": frame(RESUMED, resumed_payload(RSM_RECEIVING, 12, 300)),
        "ping": seqmsg(PING, 1),
        "pong": seqmsg(PONG, 1),
        "domain": domain(DOMAIN_XML, uuid=HOST_UUID),
        "domain-check-only-waivers": domain(b"<domain/>", DOMAIN_CHECK_ONLY, b"aarch64", b"", b"",
                                            [b"disk-cache", b"cpu-model", b"host-memory"]),
        "checks": checks(CHECK_ROWS),
        "checks-16-rows": checks([(1 + i % 3, 51 + i % 12, b"check-%d" % i, b"s" * (i * 10),
                                   b"d\x00\x1b" * i, b"why \xc3\xa9 " * (i * 4))
                                  for i in range(16)]),
    }
    out["qstream"] = qstream(1, 0, QSTREAM_FIRST)
    out["qstream-pages"] = qstream(2, 4096, [q_opaque(b"\x02\x00\x00\x00\x01"),
                                             q_blocks([(b"pc.ram", 8 * QPAGE)]),
                                             q_page(QREC_DATA | QREC_CONT, 0, QPAGE, REF,
                                                    src=(0, 0), hsh=bytes(range(16)))])
    out["qreturn"] = qreturn(0, b"\x00\x01\x00\x04\x00\x00\x00\x00")
    out["stream-s2r"] = full_session()
    out["stream-r2s"] = (welcome(sid) + seqmsg(ACCEPT, 1) + seqmsg(ACK, 1) + seqmsg(ACK, 2)
                         + seqmsg(PONG, 5) + seqmsg(COMMITTED, 2))
    out["stream-s2r-domain"] = domain_session()
    out["stream-r2s-checks"] = (welcome(sid) + checks(CHECK_ROWS[:1]) + seqmsg(ACCEPT, 1)
                                + seqmsg(ACK, 1) + seqmsg(COMMITTED, 1))
    # HAVE (4.19) as the vectors have-one and have-three: the vectors'
    # hashes and session id (their WELCOME, welcome-basic, says caps 0;
    # fuzz_frame does not check capabilities).
    hs = [det_bytes("have/%d" % i, 16) for i in range(3)]
    out["have"] = have(2, 4096, hs)
    out["stream-r2s-have"] = (welcome(det_bytes("session", 16)) + have(1, 0, hs[:1])
                              + have(2, 4096, hs) + seqmsg(ACCEPT, 1))
    return out


# The start of a QEMU stream (proto/QEMU.md 2): file header and the
# configuration as opaque bytes, the ram block list, then one page record of
# each kind.
QSTREAM_FIRST = [
    q_opaque(b"QEVM\x00\x00\x00\x03\x07\x00\x00\x00\x0apc-q35-7.2"),
    q_blocks([(b"pc.ram", 16 * QPAGE), (b"vga.vram", 4 * QPAGE), (b"/rom@etc/acpi/tables", QPAGE)]),
    q_page(QREC_DATA, 0, 0, RAW, noise(QPAGE, 7)),
    q_page(QREC_DATA | QREC_CONT, 0, QPAGE, LZ4, lz4_block(text_page(QPAGE, 4))),
    q_page(0, 1, 3 * QPAGE, ZERO),
    q_page(QREC_DATA | QREC_CONT, 1, 0, ZERO),
    q_page(QREC_DATA, 2, 0, REF, src=(0, 0), hsh=bytes(range(16, 32))),
]


def seeds_qframe():
    """fuzz_qframe: u8 sel (bit 0: a stream of frames, else one payload;
    bit 1: the session starts with a 3-block table), then the bytes."""
    tab_pages = [q_page(QREC_DATA, 0, 15 * QPAGE, RAW, noise(QPAGE, 9)),
                 q_page(QREC_CONT, 1, 0, ZERO),
                 q_page(QREC_DATA, 2, 0, LZ4, lz4_block(bytes(QPAGE))),
                 q_page(QREC_DATA | QREC_CONT, 2, 0, REF, src=(1, 3 * QPAGE), hsh=bytes(16))]
    return {
        "payload-first": b"\x00" + qstream_payload(1, 0, QSTREAM_FIRST),
        "payload-opaque": b"\x00" + qstream_payload(7, 1 << 40, [q_opaque(b"\x00"),
                                                                 q_opaque(text_page(300, 1))]),
        "payload-table": b"\x02" + qstream_payload(3, 123456, tab_pages),
        "payload-qreturn": b"\x00" + qreturn_payload(8, b"\x00\x01\x00\x04\x00\x00\x00\x00"),
        "frames-session": b"\x01" + (
            qstream(1, 0, QSTREAM_FIRST[:2]) + qreturn(0, b"\x00\x03\x00\x04\x00\x00\x00\x01")
            + qstream(2, 0, QSTREAM_FIRST[2:]) + seqmsg(PING, 1)
            + qstream(3, 0, [q_page(QREC_DATA, 0, 2 * QPAGE, REF, src=(0, 0), hsh=bytes(16)),
                             q_opaque(b"\x00")])
            + qreturn(8, b"\x00\x01\x00\x04\x00\x00\x00\x00")),
        "frames-table": b"\x03" + qstream(1, 0, tab_pages) + qstream(2, 0, [q_opaque(b"\x7e\x00\x00\x00\x02")]),
    }


def seeds_pages():
    def sel(i, payload):
        return bytes([i]) + payload

    t = text_page
    out = {
        "mem-zero": sel(0, pages_payload(1, 1, 1, [entry(0, ZERO), entry(15, ZERO)])),
        "mem-ref": sel(0, pages_payload(1, 1, 1, [entry(3, REF, src=(1, 0), hsh=bytes(16))])),
        "mem-lz4": sel(0, pages_payload(1, 1, 1, [entry(1, LZ4, lz4_block(t(4096, 7)))])),
        "mem-raw": sel(0, pages_payload(1, 1, 1, [entry(2, RAW, noise(4096, 1))])),
        "mem-mixed": sel(0, pages_payload(2, 1, 4, [
            entry(0, ZERO), entry(1, LZ4, lz4_block(bytes(4096))), entry(2, REF, src=(1, 1)),
            entry(3, LZ4, lz4_block(t(4096, 3))), entry(15, ZERO)])),
        "disk-short-raw": sel(1, pages_payload(1, 7, 1, [entry(2, RAW, noise(100, 5))])),
        "disk-short-lz4": sel(1, pages_payload(1, 7, 1, [entry(2, LZ4, lz4_block(t(100, 5)))])),
        "u64k-lz4": sel(2, pages_payload(1, 7, 1, [entry(15, LZ4, lz4_block(t(65536, 6)))])),
        "u1m-lz4-last": sel(3, pages_payload(1, 7, 1, [entry(0, LZ4, lz4_block(bytes(1 << 20))),
                                                      entry(1, RAW, b"\x01")])),
        "one-byte": sel(4, pages_payload(1, 7, 1, [entry(0, RAW, b"x"), entry(0, ZERO)])),
        "u3000": sel(5, pages_payload(1, 7, 1, [entry(3, RAW, noise(10000 - 9000, 2)),
                                               entry(1, LZ4, lz4_block(t(3000, 1)))])),
        "unit1": sel(6, pages_payload(1, 7, 1, [entry(99, RAW, b"z"), entry(0, ZERO)])),
        "max-index": sel(7, pages_payload(1, 7, 1, [entry((1 << 24) - 1, ZERO)])),
        # raw selector: unit 8192, size 3 * 8192 - 1
        "custom-dev": b"\xf0" + struct.pack(">IQ", 8191, 3 * 8192 - 2)
        + pages_payload(1, 7, 1, [entry(2, LZ4, lz4_block(t(8191, 2))), entry(1, ZERO)]),
    }
    return out


def seeds_manifest():
    many = [(i + 1, MEMORY if i % 2 else DISK, 4096, 4096 * (i + 1), b"d%02d" % i) for i in range(64)]
    return {
        "one-device": manifest_payload([(1, MEMORY, 4096, 1 << 30, b"mem")]),
        "two-with-state": manifest_payload([(11, MEMORY, 4096, 4 * 4096, b"mem"),
                                            (22, DISK, 4096, 2 * 4096 + 100, b"disk.img")],
                                           300, b"vm.state"),
        "sixty-four": manifest_payload(many, 1, b"s"),
        "long-names": manifest_payload([(1, DISK, 65536, (1 << 40) - 65536, b"n" * 255),
                                        (2, DISK, 512, 512, b"~ !\"#$%&'()*+,-.09:;<=>?@AZ[\\]^_`az{|}")],
                                       256 << 20, b"x" * 255),
        "max-units": manifest_payload([(9, MEMORY, 1 << 20, (1 << 24) * (1 << 20) - 1, b"big")]),
        "odd-unit": manifest_payload([(3, DISK, 3000, 10000, b"odd"),
                                      (4, DISK, 1, 100, b"tiny", 2049, 77)]),
        "max-size": manifest_payload([(5, DISK, 1 << 22, 1 << 46, b"huge")]),
        "qemu": manifest_payload([(1, QEMU, QPAGE, 4 << 30, b"web1")]),
    }


def seeds_lz4():
    def s(mode, data, blk=None):
        blk = lz4_block(data) if blk is None else blk
        return bytes([mode]) + struct.pack(">I", len(data))[1:] + blk

    return {
        "zeros-4k": s(0, bytes(4096)),
        "text-4k": s(0, text_page(4096, 1)),
        "text-short": s(0, text_page(100, 2)),
        "noise-literals": s(0, noise(300, 3)),
        "zeros-1m": s(0, bytes(1 << 20)),
        "big-sizes": s(1, text_page(4096, 4)),
        "empty": bytes([0, 0, 0, 0, 0]),        # one token: no literals, no match
        "wrong-len": bytes([0]) + struct.pack(">I", 4000)[1:] + lz4_block(bytes(4096)),
        "overlap-match": s(0, b"ab" * 2048),
    }


def seeds_units():
    vals = ["4096", "64K", "64KiB", "256M", "2G", "1T", "1.5G", ".5K", "10B",
            "800Mbit", "1Gbit/s", "100MiB/s", "20MB/s", "100M", "8Kibit", "1000bps",
            "300ms", "5s", "2m", "1min", "1h", "1500us", "0.25s",
            "0", "65535", "18446744073709551615", "99999999999999999999",
            "127.0.0.1:7000", "[::1]:7000", "[fe80::1%eth0]:0", "recv.example:65535",
            "a:b:7000", "host:65536", "999999999999999m", "99999999999999999h",
            "18446744073709551s"]
    return {"v%02d" % i: v.encode() for i, v in enumerate(vals)}


def seeds_resume():
    sid = bytes(range(0x10, 0x20))
    key = hashlib.sha256(b"key").digest()
    bind = hashlib.sha256(b"bind").digest()
    proof = hmac.new(key, PROOF_PREFIX + sid + bind, hashlib.sha256).digest()

    def s(resume, resumed, tail=key + bind):
        return bytes([len(resume), len(resumed)]) + resume + resumed + tail

    return {
        "valid-proof": s(resume_payload(sid, proof), resumed_payload(RSM_RECEIVING, 3, 0)),
        "wrong-proof": s(resume_payload(sid, proof[:31] + b"\x00"), resumed_payload(RSM_COMMITTED, 9, 300)),
        "limit-frame": s(resume_payload(sid, bytes(32), MAX_FRAME_LIMIT), resumed_payload(RSM_FAILED, 1, 0)),
        "long-key": s(resume_payload(sid, proof), resumed_payload(RSM_RECEIVING, 1, 256 << 20),
                      key + bind + bytes(100)),
        "short": s(b"", b"", b""),
    }


class QSession:
    """A QEMU stream session (sections 4.17, 4.18): HELLO with CAP_QEMU, a
    MANIFEST of one DK_QEMU device, QSTREAM frames; tracks the stream the
    receiver rebuilds (for COMMIT's digest) and its RAM mirror (for REF
    hashes)."""

    def __init__(self, seed, ram=1 << 30, name=b"web1", caps=CAP_QEMU):
        self.seed = seed
        self.blocks = []          # (id, len)
        self.mirror = {}          # (block, offset) -> the page last rebuilt from a DATA record
        self.stream = bytearray()
        self.seq = 0
        self.out = hello(seed, caps=caps) + manifest([(1, QEMU, QPAGE, ram, name)])

    def opaque(self, data):
        self.stream += data
        return q_opaque(data)

    def table(self, blocks):
        self.blocks = blocks
        return q_blocks(blocks)

    def page(self, rec, block, offset, kind, data=None, src=(0, 0), hsh=None):
        """data: the page's 4096 bytes (ZERO: zeros; REF: the source's)."""
        if kind == REF:
            data = self.mirror.get(src, bytes(QPAGE))
            item = q_page(rec, block, offset, REF, src=src,
                          hsh=xxh128(self.seed, data) if hsh is None else hsh)
        elif kind == ZERO:
            data = bytes(QPAGE)
            item = q_page(rec, block, offset, ZERO)
        elif kind == LZ4:
            item = q_page(rec, block, offset, LZ4, lz4_block(data))
        else:
            item = q_page(rec, block, offset, RAW, data)
        bid = self.blocks[block][0]
        hdr = offset | (0x08 if rec & QREC_DATA else 0x02) | (0x20 if rec & QREC_CONT else 0)
        self.stream += struct.pack(">Q", hdr)
        if not rec & QREC_CONT:
            self.stream += struct.pack(">B", len(bid)) + bid
        if rec & QREC_DATA:
            self.stream += data
            self.mirror[(block, offset)] = bytes(data)
        else:
            self.stream += b"\x00"
        return item

    def frame(self, items, stream_off=None):
        """items: built with opaque/table/page before this call, so
        stream_off is where the stream stood before them."""
        self.seq += 1
        self.out += qstream(self.seq, self._off if stream_off is None else stream_off, items)
        self._off = len(self.stream)
        return self.out

    def mark(self):
        self._off = len(self.stream)

    def commit(self, digest=None):
        dg = xxh128(self.seed, bytes(self.stream)) if digest is None else digest
        self.out += commit(self.seq, [(1, dg)])
        return self.out


QSEED = 0x0E5EED0F0DDBA11


def qemu_session(commit_it=True, caps=CAP_QEMU):
    """A QEMU stream in two QSTREAM frames: the file header and config as
    opaque bytes, the block list, a page of each kind and record shape
    (RAW with id, LZ4 with CONTINUE, a zero record, a data record sent as
    ZERO, a REF to an earlier page in the same frame and one to a page of
    the first frame), then the end of the stream; COMMIT with its digest."""
    q = QSession(QSEED, caps=caps)
    q.mark()
    f1 = [q.opaque(b"QEVM\x00\x00\x00\x03\x07\x00\x00\x00\x0apc-q35-7.2"),
          q.table([(b"pc.ram", 16 * QPAGE), (b"vga.vram", 4 * QPAGE), (b"/rom@etc/acpi/tables", QPAGE)]),
          q.opaque(b"\x02\x00\x00\x00\x01\x00\x00\x00\x03ram\x00\x00\x00\x04\x00\x00\x00\x00\x00\x15\x00\x04"),
          q.page(QREC_DATA, 0, 0, RAW, noise(QPAGE, 7)),
          q.page(QREC_DATA | QREC_CONT, 0, QPAGE, LZ4, text_page(QPAGE, 4)),
          q.page(0, 1, 3 * QPAGE, ZERO),
          q.page(QREC_DATA | QREC_CONT, 1, 0, ZERO),
          q.page(QREC_DATA, 2, 0, REF, src=(0, 0)),
          q.opaque(b"\x00\x00\x00\x00\x00\x00\x00\x10")]
    q.frame(f1)
    q.out += seqmsg(PING, 0x51)
    f2 = [q.opaque(b"\x03\x00\x00\x00\x01"),
          q.page(QREC_DATA, 0, 2 * QPAGE, REF, src=(0, QPAGE)),
          q.page(QREC_DATA | QREC_CONT, 0, 5 * QPAGE, LZ4, text_page(QPAGE, 11)),
          q.page(QREC_DATA | QREC_CONT, 0, 6 * QPAGE, REF, src=(2, 0)),
          q.page(QREC_DATA, 1, QPAGE, REF, src=(1, 0)),
          q.opaque(b"\x00\x00\x00\x00\x00\x00\x00\x10\x04\x00\x00\x00\x01\x1f")]
    q.frame(f2)
    if commit_it:
        q.commit()
    return q


def seeds_rsess_qemu(hdr):
    """fuzz_rsess in QEMU mode (flag 0x80; fail_at bits 6-7: the return
    path)."""
    full = qemu_session().out
    unfinished = qemu_session(False)
    # The same first frame again: a harmless duplicate.
    dup = qemu_session(False)
    first = dup.out[len(hello(QSEED, caps=CAP_QEMU)) + len(manifest([(1, QEMU, QPAGE, 1 << 30, b"web1")])):]
    dup.out += first[:8 + struct.unpack(">I", first[4:8])[0]]
    dup = dup.commit()
    # Refused by the session: a REF whose hash is not the page's, a
    # stream_off with a gap, a wrong digest, a second block list.
    bad_ref = qemu_session(False)
    bad_ref.mark()
    bad_ref.frame([bad_ref.page(QREC_DATA, 0, 7 * QPAGE, REF, src=(0, 0), hsh=bytes(16))])
    gap = qemu_session(False)
    gap.mark()
    gap.frame([gap.opaque(b"\x00")], stream_off=len(gap.stream) + 1)
    bad_digest = qemu_session(False).commit(bytes(range(16)))
    twice = qemu_session(False)
    twice.mark()
    twice.frame([twice.table([(b"pc.ram", QPAGE)])])
    # Blocks the sink cannot mirror (2 MiB > its 1 MiB): qemu_blocks fails.
    big = QSession(QSEED)
    big.mark()
    big.frame([big.opaque(b"QEVM\x00\x00\x00\x03"), big.table([(b"pc.ram", 2 << 20)]),
               big.page(QREC_DATA, 0, 0, ZERO)])
    # A QEMU device without the capability in HELLO.
    nocap = QSession(QSEED, caps=0)
    return {
        "qemu-full": hdr(0x80) + full,
        "qemu-chunks": hdr(0x80, 0, 7, 9) + full,
        "qemu-bytewise": hdr(0x80, 0, 16, 10) + full,
        "qemu-reconnect-qreturn": hdr(0x80 | 2, 0x40, 6, 11) + full,
        "qemu-qreturn-4k-resume-end": hdr(0x80 | 1, 0x80, 9, 12) + unfinished.out,
        "qemu-qreturn-overflow": hdr(0x80, 0xc0, 4, 13) + full,
        # The return path at exactly FERRY_QRETURN_MAX (sent again after
        # the resume), and one byte over it.
        "qemu-qreturn-at-limit": hdr(0x80 | 1, 0xc0, 0, 32) + unfinished.out,
        "qemu-qreturn-over-limit": hdr(0x80, 0xc0, 0, 33) + unfinished.out,
        "qemu-commit-fails": hdr(0x80 | 16) + full,
        "qemu-refused": hdr(0x80 | 32) + full,
        "qemu-mirror-write-fails": hdr(0x80, 4) + full,
        "qemu-blocks-fail": hdr(0x80, 2) + full,
        "qemu-abort": hdr(0x80 | 4 | 1, 0x40, 10, 14) + unfinished.out,
        "qemu-dup-qstream": hdr(0x80, 0, 8, 15) + dup,
        "qemu-ref-hash": hdr(0x80) + bad_ref.out,
        "qemu-stream-gap": hdr(0x80) + gap.out,
        "qemu-bad-digest": hdr(0x80) + bad_digest,
        "qemu-blocks-twice": hdr(0x80) + twice.out,
        "qemu-blocks-too-big": hdr(0x80) + big.out,
        "qemu-without-cap": hdr(0x80) + nocap.out,
        "qemu-sink-without-qemu": hdr(0, 0x40) + full,
        "qemu-image-session": hdr(0x80 | 2, 0x40, 7, 16) + full_session(),
        "qemu-pages-in-qemu-session": hdr(0x80) + unfinished.out + pages(3, 1, 1, [entry(0, ZERO)]),
    }


# fuzz_rsess's reuse mode (section 4.19): the reuse bit of fail_at (0x80;
# 0x20 with flag 0x80) and the seed byte: bits 0-3 which devices have an
# existing file, bits 4-6 the budget of each reuse step (0: one unit a
# step, 7: unlimited), bit 7 one step after each feed.
REUSE_BIT, REUSE_BIT_QEMU = 0x80, 0x20
RB_ONE_UNIT, RB_16K, RB_64K, RB_1M, RB_ALL = 0x00, 0x20, 0x30, 0x50, 0x70
R_STEP_PER_FEED = 0x80
REUSE_DEVS = [(MEM, MEMORY, 4096, 4 * 4096, b"mem"), (DSK, DISK, 4096, 2 * 4096 + 100, b"disk.img")]


def reuse_session(salt, caps=CAP_REUSE, commit_it=True):
    """The base session's devices and state, the receiver starting the
    devices the seed byte names from their existing files: PAGES change
    some units (RAW and LZ4 over reused units, ZERO over a reused unit that
    holds data, a REF to a reused unit no PAGES touched, ZERO over the
    short last unit), then the state and COMMIT."""
    s = Session(SEED, REUSE_DEVS, 300, b"vm.state", caps=caps, old_salt=salt)
    s.pages(MEM, 1, [(RAW, 0, noise(4096, 21)), (REF, 3, (DSK, 1))]
            + [(ZERO, i, None) for i in (1, 2) if s.holds_data(MEM, i)])
    s.pages(DSK, 1, [(LZ4, 0, text_page(4096, 22)), (ZERO, 2, None)])
    s.out += seqmsg(PING, 0x4A)
    s.pages(MEM, 2, [(LZ4, 1, text_page(4096, 23))])
    if commit_it:
        blob = text_page(300, 24)
        s.state(blob[:200])
        s.state(blob[200:])
        s.commit()
    return s


def seeds_rsess_reuse(hdr):
    """fuzz_rsess in reuse mode: HELLO with CAP_REUSE, a manifest, HAVE
    for the devices with an existing file, then PAGES that change some of
    their units and COMMIT with the digests of the result."""
    both = RB_ALL | 0x3
    mem_steps = R_STEP_PER_FEED | RB_ONE_UNIT | 0x1
    both_steps = R_STEP_PER_FEED | RB_ONE_UNIT | 0x3
    full = reuse_session(both).out
    head = hello(SEED, caps=CAP_REUSE) + manifest(REUSE_DEVS, 300, b"vm.state")
    # One step a frame: MEM's 4 units and DSK declined take 5 steps, the
    # MANIFEST and four PINGs.
    pings = reuse_session(mem_steps).out
    pings = head + b"".join(seqmsg(PING, 0x100 + i) for i in range(4)) + pings[len(head):]
    # Big units: a 1 MiB-unit device shorter than its unit and a 64 KiB-unit
    # disk with a 1-byte last unit, budgets up to 1 MiB.
    big = Session(SEED ^ 2, [(1, MEMORY, 1 << 20, 768 << 10, b"ram"),
                             (2, DISK, 65536, 65536 * 3 + 1, b"d")],
                  caps=CAP_REUSE, old_salt=RB_1M | 0x3)
    big.pages(2, 1, [(RAW, 3, b"\x7f"), (ZERO, 1, None), (LZ4, 2, text_page(65536, 25))])
    big.pages(1, 1, [(ZERO, 0, None)])
    big = big.commit()
    # Eight devices of two or three units, every other one reused (mask
    # 0x5), budgets below 64 KiB.
    many_devs = [(30 + i, DISK, 4096, 2 * 4096 + (i % 2) * 4096, b"disk%d" % i) for i in range(8)]
    many = Session(SEED, many_devs, caps=CAP_REUSE, old_salt=RB_64K | 0x5)
    for i in (0, 3, 4):
        many.pages(30 + i, 1, [(RAW, 1, noise(4096, 30 + i)), (REF, 0, (30 + (i + 2) % 8, 1))])
    many = many.commit()
    # A libvirt domain too: CHECKS, then HAVE, then ACCEPT.
    dom = reuse_session(both, caps=CAP_REUSE | CAP_DOMAIN).out
    dom = (hello(SEED, caps=CAP_REUSE | CAP_DOMAIN)
           + domain(DOMAIN_XML, uuid=HOST_UUID, waive=[b"disk-cache"])
           + dom[len(hello(SEED)):])
    # A QEMU-capable sink that also reuses: an image session reuses, a
    # QEMU stream session (CAP_REUSE asked for too) does not.
    q_stream = qemu_session(caps=CAP_QEMU | CAP_REUSE).out
    image_q = reuse_session(both, caps=CAP_REUSE | CAP_QEMU).out
    return {
        "reuse-full": hdr(0, REUSE_BIT, 0, both) + full,
        "reuse-chunks": hdr(0, REUSE_BIT, 7, both) + full,
        "reuse-unit-steps": hdr(0, REUSE_BIT, 3, mem_steps) + reuse_session(mem_steps).out,
        "reuse-random-budgets": hdr(0, REUSE_BIT, 9, RB_16K | 0x2)
        + reuse_session(RB_16K | 0x2).out,
        "reuse-none-existing": hdr(0, REUSE_BIT, 0, RB_ALL) + reuse_session(RB_ALL).out,
        "reuse-not-offered": hdr(0, 0, 0, RB_ALL) + reuse_session(RB_ALL).out,
        "reuse-pings": hdr(0, REUSE_BIT, 0, mem_steps) + pings,
        # PAGES while the receiver is still REUSING: PROTO_STATE.
        "reuse-early-pages": hdr(0, REUSE_BIT, 0, both_steps) + reuse_session(both_steps).out,
        "reuse-big-units": hdr(0, REUSE_BIT, 12, RB_1M | 0x3) + big,
        "reuse-many-devices": hdr(0, REUSE_BIT, 6, RB_64K | 0x5) + many,
        "reuse-domain": hdr(0, REUSE_BIT, 0, both) + dom,
        "reuse-reconnect": hdr(2 | 1, REUSE_BIT, 7, both) + full,
        "reuse-io-fails": hdr(0, REUSE_BIT | 3, 0, RB_ONE_UNIT | 0x3) + reuse_session(0x3).out,
        "reuse-refused": hdr(32, REUSE_BIT, 0, both) + full,
        # The stream ends in REUSING: RESUME refused, then an abort; or
        # the sender's ERROR.
        "reuse-abort-reusing": hdr(4 | 1, REUSE_BIT, 0, both_steps) + head,
        "reuse-peer-error": hdr(0, REUSE_BIT, 0, both_steps) + head
        + frame(ERROR, text_payload(36, b"operator abort")),
        "reuse-qemu-image": hdr(0x80, REUSE_BIT_QEMU, 0, both) + image_q,
        "reuse-qemu-stream": hdr(0x80, REUSE_BIT_QEMU | 0x40, 5, both) + q_stream,
    }


def seeds_rsess():
    def hdr(flags=0, fail_at=0, chunking=0, seed=0):
        return bytes([flags, fail_at, chunking, seed])

    full = full_session()
    unfinished = base_session().out
    # Big units (within the fuzz sink's 1 MiB): a 1 MiB-unit device
    # shorter than its unit, and a 64 KiB-unit disk.
    big = Session(SEED ^ 1, [(1, MEMORY, 1 << 20, 768 << 10, b"ram"),
                             (2, DISK, 65536, 65536 * 2 + 1, b"d")])
    big.pages(1, 1, [(LZ4, 0, text_page(768 << 10, 1))])
    big.pages(2, 1, [(LZ4, 1, bytes(65536)), (RAW, 2, b"\x7f"), (ZERO, 0, None)])
    big = big.commit()
    # A duplicate PAGES and a PONG between pages; state in three parts.
    s = base_session()
    first_pages = s.out[len(hello(SEED)) + len(manifest(s.devs, 300, b"vm.state")):]
    first_pages = first_pages[:8 + struct.unpack(">I", first_pages[4:8])[0]]
    s.out += first_pages            # seq 1 again: a harmless duplicate
    s.out += seqmsg(PONG, 1)
    blob = noise(300, 4)
    for a, b in ((0, 1), (1, 299), (299, 300)):
        s.state(blob[a:b])
    dup_session = s.commit()

    # ZERO over a unit written before: the one ZERO that must be written.
    zo = Session(SEED, [(1, MEMORY, 4096, 2 * 4096, b"mem")])
    zo.pages(1, 1, [(RAW, 0, noise(4096, 1))])
    zo.pages(1, 2, [(ZERO, 0, None)])
    zero_over = zo.commit()

    one = Session(SEED, [(5, DISK, 4096, 4096, b"only")])
    one.pages(5, 1, [(RAW, 0, text_page(4096, 3))])
    one = one.commit()

    return {
        "full": hdr() + full,
        "full-chunks-8": hdr(0, 0, 3, 1) + full,
        "full-chunks-512": hdr(0, 0, 9, 2) + full,
        "full-bytewise": hdr(0, 0, 16, 3) + full,
        "full-reconnect": hdr(2, 0, 7, 4) + full,
        "full-resume-end": hdr(1) + full,
        "full-limit": hdr(8) + full,
        "commit-fails": hdr(16) + full,
        "refused": hdr(32) + full,
        "io-fails-3": hdr(0, 3) + full,
        "abort-midway": hdr(4 | 1, 0, 10, 5) + unfinished,
        "big-units": hdr(0, 0, 12, 6) + big,
        "dup-and-state": hdr(0) + dup_session,
        "one-unit": hdr(1) + one,
        "zero-over-written": hdr(0, 0, 5, 7) + zero_over,
        "peer-error": hdr(1) + unfinished + frame(ERROR, text_payload(36, b"operator abort")),
        "pages-before-manifest": hdr() + hello(SEED) + pages(1, 11, 1, [entry(0, ZERO)]),
        "ping-first": hdr() + seqmsg(PING, 9) + hello(SEED),
        # Refused by the session: a REF across unit lengths, COMMIT before
        # the whole state, COMMIT naming too few devices.
        "ref-length-mismatch": hdr() + unfinished
        + pages(5, DSK, 3, [entry(2, REF, src=(MEM, 0), hsh=xxh128(SEED, noise(4096, 1)))]),
        "commit-early": hdr() + unfinished + state(0, b"x" * 10) + commit(4, [(MEM, bytes(16)), (DSK, bytes(16))]),
        "commit-ndev": hdr() + unfinished + commit(4, [(MEM, bytes(16))]),
        # A libvirt domain (CAP_DOMAIN): checks pass, fail (flag 0x40), or
        # run alone (check only); DOMAIN twice; DOMAIN without the cap.
        "domain-full": hdr() + domain_session(),
        "domain-check-fails": hdr(64) + domain_session(),
        "domain-check-only": hdr() + hello(SEED, caps=CAP_DOMAIN)
        + domain(b"<domain/>", flags=1) + full[len(hello(SEED)):],
        "domain-twice": hdr() + hello(SEED, caps=CAP_DOMAIN) + domain(b"<a/>") + domain(b"<a/>"),
        "domain-without-cap": hdr() + hello(SEED) + domain(b"<a/>"),
        **seeds_rsess_qemu(hdr),
        **seeds_rsess_reuse(hdr),
    }


def seeds_domxml():
    """Domain XML as ferry-recv would receive it: each domain of the test
    driver's source node (tests/data/libvirt/src-node.xml, one per failing
    check, with a UUID added and @DIR@ made absolute), a domain with every
    kind of disk and host device, and a host's capabilities."""
    import re
    here = os.path.dirname(os.path.abspath(__file__))
    node = open(os.path.join(here, "..", "tests", "data", "libvirt", "src-node.xml")).read()
    out = {}
    for i, m in enumerate(re.finditer(r"<domain type='test'>.*?</domain>", node, re.S)):
        dom = m.group(0).replace("@DIR@", "/var/lib/ferry")
        name = re.search(r"<name>([^<]+)</name>", dom).group(1)
        dom = dom.replace("</name>", "</name>\n    <uuid>5eed0000-0000-4000-8000-%012x</uuid>" % i, 1)
        out["node-" + name] = dom.encode() + b"\n"
    out["every-disk-kind"] = (
        "<domain type='kvm' id='3'>\n  <name>mixed</name>\n"
        "  <uuid>5eed0000-0000-4000-8000-0000000000ff</uuid>\n"
        "  <memory unit='GiB'>4</memory>\n  <vcpu current='2'>4</vcpu>\n"
        "  <os><type arch='x86_64' machine='q35'>hvm</type></os>\n"
        "  <cpu mode='host-passthrough' check='none'/>\n  <devices>\n"
        "    <disk type='file' device='disk'><driver name='qemu' type='raw' cache='none'/>"
        "<source file='/images/a.img'/><target dev='vda' bus='virtio'/></disk>\n"
        "    <disk type='block' device='lun'><driver cache='directsync'/><source dev='/dev/sdc'/>"
        "<target dev='sdc' bus='scsi'/><shareable/></disk>\n"
        "    <disk type='network' device='disk'><source protocol='nbd' name='exp'><host name='h'/></source>"
        "<target dev='vdb'/><readonly/></disk>\n"
        "    <disk type='volume' device='disk'><source pool='p' volume='v'/><target dev='vdc'/></disk>\n"
        "    <disk type='dir' device='floppy'><source dir='/floppy'/><target dev='fda'/></disk>\n"
        "    <disk type='file' device='cdrom'><source file='/iso/a.iso'/><target dev='hdc'/><readonly/></disk>\n"
        "    <hostdev mode='subsystem' type='usb'><source><vendor id='0x1d6b'/><product id='0x0002'/></source></hostdev>\n"
        "    <hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x3b' slot='0x00' function='0x1'/></source></hostdev>\n"
        "    <interface type='hostdev'><source><address type='pci' domain='0x0000' bus='0x04' slot='0x10' function='0x2'/></source></interface>\n"
        "  </devices>\n</domain>\n").encode()
    out["capabilities"] = (
        "<capabilities>\n  <host>\n    <uuid>5eed0000-0000-4000-8000-000000000100</uuid>\n"
        "    <cpu>\n      <arch>x86_64</arch>\n      <model>Skylake-Client-IBRS</model>\n"
        "      <vendor>Intel</vendor>\n      <topology sockets='1' dies='1' cores='4' threads='2'/>\n"
        "    </cpu>\n  </host>\n  <guest><os_type>hvm</os_type><arch name='x86_64'/></guest>\n"
        "</capabilities>\n").encode()
    return out


CORPORA = {
    "fuzz_frame": seeds_frame,
    "fuzz_pages": seeds_pages,
    "fuzz_manifest": seeds_manifest,
    "fuzz_lz4": seeds_lz4,
    "fuzz_units": seeds_units,
    "fuzz_resume": seeds_resume,
    "fuzz_rsess": seeds_rsess,
    "fuzz_domxml": seeds_domxml,
    "fuzz_qframe": seeds_qframe,
}


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    if _XXH is None:
        print("make_seeds: libxxhash not found: REF hashes and COMMIT digests are zeros",
              file=sys.stderr)
    total = 0
    for harness, make in CORPORA.items():
        d = os.path.join(root, harness)
        os.makedirs(d, exist_ok=True)
        seeds = make()
        for name, data in seeds.items():
            with open(os.path.join(d, "seed-" + name), "wb") as f:
                f.write(data)
        total += len(seeds)
        print("%-14s %3d seeds, %7d bytes" % (harness, len(seeds), sum(len(v) for v in seeds.values())))
    print("%d seeds in %s" % (total, root))


if __name__ == "__main__":
    main()
