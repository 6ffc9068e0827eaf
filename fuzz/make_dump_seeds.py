#!/usr/bin/env python3
"""Write the seed corpus of fuzz_dump: fuzz/corpus/fuzz_dump/seed-*.

Each seed is a frame dump file as `--dump-frames` writes it
(proto/PROTOCOL.md appendix A): a 32-byte header, then records.  The
frames come from make_seeds.py's builders, so they decode.  Besides whole
sessions seen from either side, the seeds hold what ferry-inspect must
survive: a partial frame, a truncated last record, a damaged record in the
middle, a wrong magic.  Deterministic; files it did not write are left.

Usage: python3 fuzz/make_dump_seeds.py [CORPUS_DIR]   (default fuzz/corpus)
"""
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_seeds as ms  # noqa: E402

MAGIC = b"FRYDUMP\n"
SENDER, RECEIVER = 1, 2
FRAME, SESSION, END = 1, 2, 3
SENT, RECEIVED = 1, 2
PARTIAL = 1
T0 = 1795300000000000


def file_header(role, pid=4242, conn=1):
    return MAGIC + struct.pack(">HBBIIIQ", 1, role, 0, pid, conn, 0, T0)


def record(kind, direction, role, body, flags=0, t=0):
    return struct.pack(">BBBBIQ", kind, direction, role, flags, len(body), T0 + t) + body


def dump(role, items):
    """items: (dir, frame) for frames from the writer's view, ("sid", id),
    ("partial", dir, bytes); an END record with the counts is added."""
    out = file_header(role)
    counts = {SENT: [0, 0], RECEIVED: [0, 0]}
    for t, it in enumerate(items):
        if it[0] == "sid":
            out += record(SESSION, 0, role, it[1], t=t)
        elif it[0] == "partial":
            out += record(FRAME, it[1], role, it[2], PARTIAL, t)
            counts[it[1]][0] += 1
            counts[it[1]][1] += len(it[2])
        else:
            out += record(FRAME, it[0], role, it[1], t=t)
            counts[it[0]][0] += 1
            counts[it[0]][1] += len(it[1])
    end = struct.pack(">QQQQ", counts[SENT][0], counts[RECEIVED][0], counts[SENT][1],
                      counts[RECEIVED][1])
    return out + record(END, 0, role, end, t=len(items))


def session_frames():
    """(S->R?, frame) of a short session, and its session id."""
    sid = bytes(range(0xA0, 0xB0))
    devs = [(ms.MEM, ms.MEMORY, 4096, 4 * 4096, b"mem"), (ms.DSK, ms.DISK, 4096, 2 * 4096 + 100, b"disk")]
    frames = [
        (True, ms.hello(ms.SEED)),
        (False, ms.welcome(sid)),
        (True, ms.manifest(devs)),
        (False, ms.frame(ms.ACCEPT, struct.pack(">Q", 1))),
        (True, ms.pages(1, ms.MEM, 1, [ms.entry(0, ms.ZERO), ms.entry(1, ms.RAW, ms.noise(4096, 1)),
                                      ms.entry(2, ms.LZ4, ms.lz4_block(ms.text_page(4096, 2))),
                                      ms.entry(3, ms.REF, src=(ms.MEM, 1))])),
        (False, ms.seqmsg(ms.ACK, 1)),
        (True, ms.seqmsg(ms.PING, 77)),
        (False, ms.seqmsg(ms.PONG, 77)),
        (True, ms.state(0, b"state")),
        (True, ms.commit(1, [(ms.MEM, bytes(16)), (ms.DSK, bytes(16))])),
        (False, ms.seqmsg(ms.COMMITTED, 1)),
    ]
    return sid, frames


def as_writer(role, frames, sid):
    items = []
    for s2r, f in frames:
        sent = s2r == (role == SENDER)
        items.append((SENT if sent else RECEIVED, f))
        if f[0] == ms.WELCOME:
            items.append(("sid", sid))
    return items


def seeds():
    sid, frames = session_frames()
    send = dump(SENDER, as_writer(SENDER, frames, sid))
    recv = dump(RECEIVER, as_writer(RECEIVER, frames, sid))
    resumed = dump(SENDER, [(SENT, ms.frame(ms.RESUME, ms.resume_payload(sid, bytes(32)))), ("sid", sid),
                            (RECEIVED, ms.frame(ms.RESUMED, ms.resumed_payload(1, 2, 0))),
                            (SENT, ms.pages(2, ms.MEM, 2, [ms.entry(0, ms.ZERO)])),
                            ("partial", SENT, ms.pages(3, ms.MEM, 2, [ms.entry(1, ms.ZERO)])[:13])])
    refused = dump(RECEIVER, [(RECEIVED, ms.hello(ms.SEED)), (SENT, ms.welcome(sid)), ("sid", sid),
                              (RECEIVED, ms.manifest([(1, ms.DISK, 3000, 9000, b"odd")])),
                              (SENT, ms.frame(ms.REFUSE, ms.text_payload(25, b"unit 3000", 1))),
                              (SENT, ms.frame(ms.ERROR, ms.text_payload(12, b"bad \x01 text")))])
    damaged = bytearray(send)
    damaged[32 + 16 + 32 + 4] = 0x77          # the WELCOME record's length
    badframe = bytearray(recv)
    badframe[32 + 16] = 0x63                  # HELLO's frame type byte
    return {
        "sender-session": send,
        "receiver-session": recv,
        "resumed-partial": resumed,
        "refused": refused,
        "truncated-last": send[:-20],
        "damaged-record": bytes(damaged),
        "bad-frame-type": bytes(badframe),
        "wrong-magic": b"FRYDUMQ\n" + send[8:200],
        "header-only": file_header(RECEIVER),
    }


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    d = os.path.join(root, "fuzz_dump")
    os.makedirs(d, exist_ok=True)
    s = seeds()
    for name, data in s.items():
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(data)
    print("%-14s %3d seeds, %7d bytes" % ("fuzz_dump", len(s), sum(len(v) for v in s.values())))


if __name__ == "__main__":
    main()
