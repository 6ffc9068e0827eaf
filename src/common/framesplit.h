/* Cut a byte stream into frames (8-byte header + `length` payload bytes,
 * proto/PROTOCOL.md section 3.2) without judging them: the frame dump
 * writer uses it on the bytes going into and coming out of TLS, and
 * ferry-inspect on a decrypted TCP stream.  Pure: no I/O; the only
 * allocation is the buffer for a frame that arrives in pieces.
 *
 * Whole frames inside one fed chunk are passed on without a copy.  A
 * header whose length is over the limit is passed on alone as a partial
 * frame, and the rest of the stream is counted in `lost` (there is no way
 * to find the next frame). */
#ifndef FERRY_FRAMESPLIT_H
#define FERRY_FRAMESPLIT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* A frame (partial = 0) or the start of one that never completed
 * (partial = 1: n bytes, fewer than its header says or than a header). */
typedef void (*fsplit_cb)(void *arg, const uint8_t *frame, size_t n, int partial);

struct fsplit {
	uint8_t *buf;         /* the frame being assembled */
	size_t len, cap;
	size_t limit;         /* largest frame, header included */
	uint64_t lost;        /* bytes after an over-limit header */
	int desync;           /* an over-limit header was seen */
};

void fsplit_init(struct fsplit *s, size_t limit);
/* Free the buffer (any incomplete frame is dropped: flush first). */
void fsplit_fini(struct fsplit *s);

/* Feed n bytes; cb gets every frame they complete, in order.  Returns 0,
 * or FERR_NOMEM when a piece could not be buffered (the frame is then
 * passed on as partial and the stream is treated as lost). */
int fsplit_feed(struct fsplit *s, const uint8_t *p, size_t n, fsplit_cb cb, void *arg)
    FERRY_MUST_CHECK;

/* End of stream: pass on an incomplete frame, if any, as partial. */
void fsplit_flush(struct fsplit *s, fsplit_cb cb, void *arg);

/* Bytes of an incomplete frame held now. */
static inline size_t fsplit_pending(const struct fsplit *s) { return s->len; }

#endif
