/* The receiver's half of a QEMU stream session (proto/PROTOCOL.md 4.17,
 * proto/QEMU.md section 4): apply QSTREAM items in order, rebuilding the
 * exact bytes the source QEMU wrote.
 *
 * Opaque items are passed on verbatim; page items are turned back into
 * page data (zero, reference to a page rebuilt earlier, lz4, raw), kept in
 * the sink's mirror of guest RAM (ops->write / ops->read, dev = block
 * index) so later references can find it, and re-encoded as QEMU records.
 * The rebuilt bytes go to ops->qemu_out in order, and into a digest that
 * COMMIT checks.  Sans-I/O like rsess.c, fuzzed through it. */
#ifndef FERRY_QREBUILD_H
#define FERRY_QREBUILD_H

#include <stdint.h>

#include "err.h"
#include "msg_qemu.h"
#include "rd.h"
#include "rsess.h"

struct qrebuild;

struct qrebuild_stats {
	uint64_t stream_bytes;      /* rebuilt so far (the next stream_off) */
	uint64_t opaque_bytes;
	uint64_t pages_zero, pages_dedup, pages_lz4, pages_raw;
	uint64_t page_bytes;        /* page data rebuilt (4096 per data record) */
};

/* NULL when out of memory. */
struct qrebuild *qrebuild_new(uint64_t seed, const struct rsess_sink_ops *ops, void *ctx);
void qrebuild_free(struct qrebuild *q);

/* Apply the items of one QSTREAM frame (r at the first item, after
 * msg_qstream_decode).  h->stream_off must equal the bytes rebuilt so far.
 * Errors name the item; on error the session is over (part of the frame
 * may already have been passed on). */
int qrebuild_frame(struct qrebuild *q, const struct msg_qstream *h, struct rd *r, struct ferr *e)
    FERRY_MUST_CHECK;

/* Digest of every byte rebuilt so far (XXH3-128 with the session seed). */
void qrebuild_digest(struct qrebuild *q, uint8_t out[FERRY_HASH_LEN]);
const struct qrebuild_stats *qrebuild_stats(const struct qrebuild *q);

#endif
