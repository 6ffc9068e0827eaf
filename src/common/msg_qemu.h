/* Codecs of the QEMU stream frames (proto/PROTOCOL.md 4.17 QSTREAM and
 * 4.18 QRETURN, capability FERRY_CAP_QEMU; proto/QEMU.md section 4).
 *
 * QSTREAM carries a consecutive piece of a source QEMU's migration stream
 * as items: opaque bytes, the RAM block list, and page records whose data
 * goes through ferry's page kinds (zero, reference, lz4, raw).  QRETURN
 * carries bytes of QEMU's return path, destination to source.
 *
 * Pure functions over a bounded reader / writer, like msg.h: every field
 * is checked against ferry_proto.h's limits and errors name the frame,
 * item and field.  Nothing is allocated. */
#ifndef FERRY_MSG_QEMU_H
#define FERRY_MSG_QEMU_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "ferry_proto.h"
#include "rd.h"
#include "wr.h"

struct msg_qstream {            /* QSTREAM header; items follow */
	uint64_t seq;               /* shares PAGES' sequence space: ACK, RESUMED */
	uint64_t stream_off;        /* stream offset of the first byte this frame rebuilds */
	uint32_t count;             /* items, 1..FERRY_MAX_PAGES_PER_FRAME */
};

struct qitem_block {
	char id[FERRY_QBLOCK_ID_MAX + 1];  /* NUL-terminated */
	uint8_t id_len;             /* 1..255, no NUL byte inside */
	uint64_t len;               /* bytes, a non-zero multiple of FERRY_QPAGE_SIZE */
};

struct qitem {
	uint8_t type;               /* enum ferry_qitem_type */
	/* QI_OPAQUE */
	const uint8_t *data;        /* points into the frame */
	uint32_t len;               /* OPAQUE: 1..; PAGE: stream bytes the record rebuilds */
	/* QI_BLOCKS: decoded into the caller's table (see msg_qitem_next) */
	uint32_t nblocks;
	/* QI_PAGE */
	uint8_t rec;                /* FERRY_QREC_DATA / FERRY_QREC_CONT bits */
	uint16_t block;             /* index into the session's block table */
	uint64_t offset;            /* bytes, page aligned, below the block's length */
	uint8_t kind;               /* enum ferry_page_kind; a ZERO record has PK_ZERO */
	uint16_t src_block;         /* PK_REF */
	uint64_t src_offset;        /* PK_REF */
	uint8_t hash[FERRY_HASH_LEN];  /* PK_REF: keyed hash of the page's content */
	const uint8_t *payload;     /* PK_LZ4: clen bytes; PK_RAW: FERRY_QPAGE_SIZE bytes */
	uint32_t payload_len;
};

/* QSTREAM: decode the 20-byte header, leaving r at the first item.  Checks
 * seq >= 1, count in [1, FERRY_MAX_PAGES_PER_FRAME] and that count items of
 * at least FERRY_QITEM_MIN bytes fit in what is left.
 *
 * The payload is then consumed like PAGES: count calls of msg_qitem_next,
 * then the caller checks rd_end(r) (bytes left over are PROTO_LENGTH,
 * "QSTREAM: N bytes after C items"). */
int msg_qstream_decode(struct rd *r, struct msg_qstream *m, struct ferr *e) FERRY_MUST_CHECK;

/* Decode the next item.  blocks / nblocks is the session's block table so
 * far (nblocks 0 before the BLOCKS item): a PAGE must name a block in it
 * with a page-aligned offset below its length (src_block and src_offset
 * too, for PK_REF).  A BLOCKS item is decoded into out_blocks (room for
 * FERRY_QBLOCKS_MAX entries; it may be the same array as blocks; on an
 * error it may hold part of a table) and is an error (PROTO_STATE) when
 * nblocks is already non-zero; the caller then sets its nblocks to
 * it->nblocks.  Sets it->len to the stream bytes the item rebuilds: the
 * OPAQUE length, 0 for BLOCKS, and for a PAGE the length of the QEMU
 * record, given the block id length and CONTINUE.  Pointers (data,
 * payload) point into r's bytes.  Errors name the item by the payload
 * offset of its type byte: "QSTREAM: item at byte 45: block 7 not in the
 * block table (3 blocks)". */
int msg_qitem_next(struct rd *r, const struct qitem_block *blocks, uint32_t nblocks,
    struct qitem_block *out_blocks, struct qitem *it, struct ferr *e) FERRY_MUST_CHECK;

/* QSTREAM is built in place, like PAGES: begin writes the frame and
 * QSTREAM headers with count 0 and returns the frame's offset in w (or
 * SIZE_MAX when it does not fit); items are appended with the put
 * functions (0, or -1 when w has no room, w unchanged then; put_blocks
 * also refuses n > FERRY_QBLOCKS_MAX); end patches count and length.  The
 * put functions write what they are given: the caller keeps to the rules
 * msg_qitem_next checks. */
size_t msg_qstream_begin(struct wr *w, const struct msg_qstream *m);
int msg_qitem_put_opaque(struct wr *w, const uint8_t *p, uint32_t len);
int msg_qitem_put_blocks(struct wr *w, const struct qitem_block *b, uint32_t n);
int msg_qitem_put_page(struct wr *w, const struct qitem *it);
void msg_qstream_end(struct wr *w, size_t at, uint32_t count);

/* Encoded size of a PAGE item with payload_len bytes of payload. */
size_t qitem_page_size(uint8_t kind, uint32_t payload_len);

struct msg_qreturn {            /* QRETURN, receiver -> sender */
	uint64_t offset;            /* return-path offset of data[0] */
	const uint8_t *data;        /* points into the frame */
	uint32_t len;               /* 1.. */
};

/* QRETURN: u64 offset, then the rest of the payload is data: 1 or more
 * bytes, and offset + len at most FERRY_QRETURN_MAX (PROTO_RANGE). */
int msg_qreturn_decode(const uint8_t *p, size_t n, struct msg_qreturn *m, struct ferr *e) FERRY_MUST_CHECK;
/* Append a whole QRETURN frame: 0, or -1 when w is too small. */
int msg_qreturn_encode(struct wr *w, const struct msg_qreturn *m);

#endif
