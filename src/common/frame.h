/* Frame header codec and the one frame table (proto/PROTOCOL.md section 3).
 *
 * A frame is an 8-byte header -- u8 type, u8 flags, u16 reserved, u32
 * length -- followed by `length` payload bytes.  Pure functions, no I/O. */
#ifndef FERRY_FRAME_H
#define FERRY_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ferry_proto.h"
#include "wr.h"

enum frame_dir {
	FDIR_S2R = 1,   /* sender to receiver */
	FDIR_R2S = 2,   /* receiver to sender */
	FDIR_BOTH = 3,
};

struct frame_info {
	const char *name;
	uint32_t min_len;   /* payload bytes */
	uint32_t max_len;   /* payload bytes; 0 = the negotiated maximum */
	uint8_t dir;        /* enum frame_dir: who may send it */
};

struct frame_hdr {
	uint8_t type;
	uint8_t flags;
	uint32_t len;       /* payload length */
};

/* Table entry for a type, or NULL for 0 and unknown types. */
const struct frame_info *frame_info(uint8_t type);
/* Name for logs ("PAGES"), "UNKNOWN(n)" style for unknown types. */
const char *frame_name(uint8_t type);

/* Decode and check a header received by `receiver_dir` (FDIR_S2R when we
 * are the receiver).  Returns 0, FERR_NEED_MORE if n < 8, or a protocol
 * error naming the field: unknown type, wrong direction, flags or reserved
 * bits set, length under the type's minimum or over its maximum or over
 * max_payload. */
int frame_decode_hdr(const uint8_t *p, size_t n, uint32_t max_payload,
    uint8_t arriving_dir, struct frame_hdr *h, struct ferr *e) FERRY_MUST_CHECK;

/* Start a frame in w: writes a header with length 0 and returns its offset
 * (or SIZE_MAX when it does not fit).  frame_end patches the length. */
size_t frame_begin(struct wr *w, uint8_t type);
void frame_end(struct wr *w, size_t hdr_off);
/* frame_end, then 0, or -1 when anything did not fit in w. */
int frame_finish(struct wr *w, size_t hdr_off);

#endif
