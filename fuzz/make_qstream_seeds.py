#!/usr/bin/env python3
"""Write the seed corpus of fuzz/fuzz_qstream.c: fuzz/corpus/fuzz_qstream/seed-*.

Streams shaped like QEMU 7.2's (proto/QEMU.md), built record by record.
The input's length modulo 3 picks the harness's prefix, so each seed is
padded (with opaque bytes in its tail, or in a record the harness skips)
to the length its variant needs:
  0  the whole stream;  1  after a valid start up to a ram PART header;
  2  after that start, a ZERO page and 1024 bytes of a CONTINUE data page.
Deterministic; stdlib only.  Run from the repository root."""
import os
import struct

OUT = "fuzz/corpus/fuzz_qstream"
PAGE = 4096
HEAD = 1024  # FZQ_PAGE_HEAD


def u8(v): return struct.pack(">B", v)
def u16(v): return struct.pack(">H", v)
def u32(v): return struct.pack(">I", v)
def u64(v): return struct.pack(">Q", v)
def s8(s): return u8(len(s)) + s


def header(): return u32(0x5145564D) + u32(3)
def config(name=b"pc-q35-7.2"): return u8(7) + u32(len(name)) + name
def sub(name): return u8(5) + s8(name) + u32(1)
def start(sid, name, ver=4, t=1): return u8(t) + u32(sid) + s8(name) + u32(0) + u32(ver)
def part(sid, t=2): return u8(t) + u32(sid)
def footer(sid): return u8(0x7E) + u32(sid)
def eos(): return u64(0x10)
def page(off, bid, seed):
    data = bytes((seed + i * 7 + (i >> 8)) & 0xFF for i in range(PAGE))
    return u64(off | 0x08 | (0x20 if bid is None else 0)) + (b"" if bid is None else s8(bid)) + data
def zero(off, bid, fill=0):
    return u64(off | 0x02 | (0x20 if bid is None else 0)) + (b"" if bid is None else s8(bid)) + u8(fill)
def ram_setup(sid=2):
    return (start(sid, b"ram") + u64((1 << 20) + 8192 | 0x04) + s8(b"pc.ram") + u64(1 << 20)
            + s8(b"b") + u64(8192) + eos() + footer(sid))
def tail():
    desc = b'{"page_size": 4096, "devices": []}'
    return (start(3, b"timer", 2, 4) + u64(0x0123456789ABCDEF) + footer(3) + u8(0)
            + u8(6) + u32(len(desc)) + desc)


def pad(b, variant):
    """Append spaces (opaque in the tail) until len % 3 == variant."""
    while len(b) % 3 != variant:
        b += b" "
    return b


def seeds():
    s = {}
    # variant 0: whole streams
    s["whole"] = (header() + config() + u8(8) + u16(1) + u16(0) + ram_setup()
                  + part(2) + zero(0, b"pc.ram") + zero(0x1000, None) + zero(0, b"b")
                  + eos() + footer(2) + u8(8) + u16(2) + u16(4) + u32(7)
                  + part(2, 3) + zero(0x2000, b"pc.ram") + eos() + footer(2) + tail())
    s["config-subsections"] = (header() + config() + sub(b"configuration/target-page-bits") + u32(12)
                               + sub(b"configuration/capabilities") + u32(2) + s8(b"x-ignore-shared")
                               + s8(b"return-path") + sub(b"configuration/uuid") + bytes(range(16))
                               + ram_setup() + u8(0))
    s["bad-magic"] = b"QEVX" + u32(3) + b"anything"
    s["live-block"] = header() + config() + start(1, b"block", 1) + b"\0" * 16
    s["eof-only"] = header() + ram_setup() + u8(0)
    # variant 1: after the harness's start (ram PART header)
    s["zero-pages"] = (zero(0, b"pc.ram") + zero(0x1000, None) + zero(0x1000, b"b") + zero(0, None)
                       + eos() + footer(2) + part(2, 3) + zero(0xFF000, b"pc.ram") + eos()
                       + footer(2) + tail())
    for name, rec in (("xbzrle", u64(0x1000 | 0x40 | 0x20) + u8(1) + u16(4)),
                      ("compress", u64(0x1000 | 0x100) + s8(b"pc.ram") + u32(10)),
                      ("multifd", u64(0x200)),
                      ("fill", zero(0x1000, b"pc.ram", 0x55)),
                      ("unknown-block", zero(0, b"vga.vram")),
                      ("outside", zero(0x100000, b"pc.ram")),
                      ("command", eos() + footer(2) + u8(8) + u16(3) + u16(0)),
                      ("second-ram", eos() + footer(2) + start(9, b"ram"))):
        s["refuse-" + name] = zero(0, b"pc.ram") + rec + b"rest"
    # variant 2: inside a data page (1024 bytes given by the harness)
    rest = bytes((i * 13) & 0xFF for i in range(PAGE - HEAD))
    s["data-page"] = rest + zero(0x2000, None) + eos() + footer(2) + tail()
    variant = {"zero-pages": 1, "data-page": 2}
    out = {}
    for k, v in s.items():
        var = variant.get(k, 1 if k.startswith("refuse-") else 0)
        out[k] = pad(v, var)
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds().items():
        with open(os.path.join(OUT, "seed-" + name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
