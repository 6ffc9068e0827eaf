/* The one writer of wire bytes: a cursor over caller storage with an error
 * latch (set when the storage is too small).  Big-endian integers. */
#ifndef FERRY_WR_H
#define FERRY_WR_H

#include <stddef.h>
#include <stdint.h>

struct wr {
	uint8_t *base;
	size_t cap;
	size_t off;
	int err;
};

void wr_init(struct wr *w, void *base, size_t cap);
static inline size_t wr_left(const struct wr *w) { return w->err ? 0 : w->cap - w->off; }

int wr_u8(struct wr *w, uint8_t v);
int wr_u16(struct wr *w, uint16_t v);
int wr_u32(struct wr *w, uint32_t v);
int wr_u64(struct wr *w, uint64_t v);
int wr_bytes(struct wr *w, const void *p, size_t n);
/* Reserve n bytes and return where they start (NULL when they do not fit),
 * for callers that fill them in place, e.g. lz4 output. */
uint8_t *wr_reserve(struct wr *w, size_t n);
/* Give back the unused tail of the last reservation. */
void wr_unreserve(struct wr *w, size_t n);
/* Store a big-endian u32 at an earlier offset (e.g. a length field). */
void wr_put_u32_at(struct wr *w, size_t at, uint32_t v);

#endif
