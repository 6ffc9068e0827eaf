/* Frame dump files (proto/PROTOCOL.md appendix A): the format written by
 * `--dump-frames DIR` and read by ferry-inspect.  Pure functions over
 * bytes, no I/O, no allocation.
 *
 * A file is a 32-byte header, then records back to back:
 *
 *   file header: bytes[8] magic "FRYDUMP\n", u16 version, u8 role,
 *                u8 reserved, u32 pid, u32 conn, u32 reserved, u64 start_us
 *   record:      u8 kind, u8 dir, u8 role, u8 flags, u32 length,
 *                u64 time_us, bytes[length] body
 *
 * Every integer is big-endian, as on the wire.  Zero is never a valid
 * kind, role, or (in a FRAME record) direction. */
#ifndef FERRY_DUMPFMT_H
#define FERRY_DUMPFMT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ferry_proto.h"
#include "wr.h"

#define DUMP_MAGIC "FRYDUMP\n"        /* 8 bytes, no NUL */
#define DUMP_MAGIC_LEN 8u
#define DUMP_VERSION 1u
#define DUMP_FILE_HDR_LEN 32u
#define DUMP_REC_HDR_LEN 16u
/* Largest FRAME body: a frame header and the largest payload any peer may
 * announce (section 3.3). */
#define DUMP_FRAME_MAX (FERRY_FRAME_HDR_LEN + FERRY_MAX_FRAME_LIMIT)
#define DUMP_SESSION_LEN FERRY_SESSION_ID_LEN
#define DUMP_END_LEN 32u

enum dump_role {
	DUMP_ROLE_SENDER = 1,     /* written by ferry-send */
	DUMP_ROLE_RECEIVER = 2,   /* written by ferry-recv */
};

enum dump_kind {
	DUMP_REC_FRAME = 1,       /* body: one frame, header + payload */
	DUMP_REC_SESSION = 2,     /* body: the session id, once known */
	DUMP_REC_END = 3,         /* body: counters; the connection ended */
};

enum dump_dir {               /* FRAME records, from the writer's view */
	DUMP_DIR_SENT = 1,
	DUMP_DIR_RECEIVED = 2,
};

/* FRAME: the connection ended (or the length was over DUMP_FRAME_MAX)
 * before the whole frame arrived; the body holds what did. */
#define DUMP_FLAG_PARTIAL 0x01u
#define DUMP_FLAGS_KNOWN DUMP_FLAG_PARTIAL

struct dump_file_hdr {
	uint16_t version;
	uint8_t role;             /* enum dump_role */
	uint32_t pid;             /* of the writer */
	uint32_t conn;            /* connection number in that process, from 1 */
	uint64_t start_us;        /* wall clock, microseconds since 1970 */
};

struct dump_rec {
	uint64_t at;              /* file offset of the record header */
	uint8_t kind;             /* enum dump_kind */
	uint8_t dir;              /* enum dump_dir for FRAME, else 0 */
	uint8_t role;             /* the writer's role, as in the file header */
	uint8_t flags;
	uint32_t len;             /* body bytes */
	uint64_t time_us;         /* wall clock, microseconds since 1970 */
	const uint8_t *body;      /* points into the input */
};

struct dump_end {             /* END body: frames and frame bytes recorded */
	uint64_t frames_sent, frames_received;
	uint64_t bytes_sent, bytes_received;
};

/* Encoders: append to w; 0, or -1 when w is too small. */
int dump_file_hdr_encode(struct wr *w, const struct dump_file_hdr *h);
/* The 16-byte record header only (r->body is not written). */
int dump_rec_hdr_encode(struct wr *w, const struct dump_rec *r);
int dump_end_encode(struct wr *w, const struct dump_end *end);   /* 32-byte body */

/* Decode the file header from p[0..n).  FERR_NEED_MORE when n < 32,
 * FERR_PROTO_VERSION for a wrong magic or version, FERR_PROTO_RANGE for an
 * unknown role, FERR_PROTO for reserved bytes; messages name the field. */
int dump_file_hdr_decode(const uint8_t *p, size_t n, struct dump_file_hdr *h,
    struct ferr *e) FERRY_MUST_CHECK;

/* Decode the record at p[0..n), which sits at file offset `at` (for the
 * messages).  `role` is the writer's role from the file header, or 0 to
 * accept either.  Returns 0 with *used = 16 + length; FERR_NEED_MORE when
 * the header or the body is cut off by the end of the input; else an error
 * naming the offset and field: unknown kind, direction, role or flags,
 * a length outside its kind's bounds, a FRAME body whose frame length
 * disagrees with the record length (or, with PARTIAL, does not). */
int dump_rec_decode(const uint8_t *p, size_t n, uint64_t at, uint8_t role,
    struct dump_rec *r, size_t *used, struct ferr *e) FERRY_MUST_CHECK;

int dump_end_decode(const struct dump_rec *r, struct dump_end *end,
    struct ferr *e) FERRY_MUST_CHECK;

/* Where to go on after a bad record: the first offset after `from` where
 * a record decodes and is followed by another that decodes (or is cut off
 * by the end, or ends exactly at the end).  Returns n when there is none. */
size_t dump_resync(const uint8_t *p, size_t n, size_t from, uint8_t role);

/* A reader over a whole file: the header, then one record per call. */
struct dump_reader {
	const uint8_t *p;
	size_t n;
	size_t off;               /* next record */
	uint8_t role;             /* 0 until known */
	struct dump_file_hdr hdr;
	int hdr_ok;
};

/* Decode the file header.  On an error the reader still goes on after the
 * 32 header bytes, learning the role from the first good record. */
int dump_reader_init(struct dump_reader *dr, const uint8_t *p, size_t n,
    struct ferr *e) FERRY_MUST_CHECK;
/* 1 and *r for the next record; 0 at the end; or an error (r->at says
 * where) after which the reader has skipped to the next good record, or to
 * the end.  Every call makes progress. */
int dump_reader_next(struct dump_reader *dr, struct dump_rec *r,
    struct ferr *e) FERRY_MUST_CHECK;

/* FDIR_S2R or FDIR_R2S for a FRAME written by `role` in direction `dir`,
 * 0 if either is invalid. */
uint8_t dump_frame_dir(uint8_t role, uint8_t dir);
const char *dump_role_name(uint8_t role);     /* "sender", "receiver", "?" */
const char *dump_kind_name(uint8_t kind);     /* "frame", "session", "end", "?" */

#endif
