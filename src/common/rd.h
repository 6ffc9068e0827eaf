/* The one bounds-checked reader over untrusted bytes.
 *
 * A reader is {base, len, off} plus an error latch: after the first failed
 * read every later read fails too, so a decoder may read several fields and
 * check `r->err` once.  Length checks are written as `n > len - off` so they
 * cannot overflow.  No allocation, no I/O. */
#ifndef FERRY_RD_H
#define FERRY_RD_H

#include <stddef.h>
#include <stdint.h>

struct rd {
	const uint8_t *base;
	size_t len;
	size_t off;
	int err;          /* 0, or 1 once a read ran past the end */
};

void rd_init(struct rd *r, const void *base, size_t len);

static inline size_t rd_left(const struct rd *r) { return r->err ? 0 : r->len - r->off; }

/* Each returns 0, or -1 (and latches r->err) when fewer than the needed
 * bytes remain; on failure the output is set to zero. */
int rd_u8(struct rd *r, uint8_t *v);
int rd_u16(struct rd *r, uint16_t *v);   /* big-endian */
int rd_u32(struct rd *r, uint32_t *v);   /* big-endian */
int rd_u64(struct rd *r, uint64_t *v);   /* big-endian */
int rd_copy(struct rd *r, void *out, size_t n);
/* Zero-copy: point *p at the next n bytes and skip them. */
int rd_ptr(struct rd *r, size_t n, const uint8_t **p);
/* A bounded sub-reader over the next n bytes, which the parent skips. */
int rd_sub(struct rd *r, size_t n, struct rd *sub);
/* 0 when every byte was consumed and no read failed, else -1. */
int rd_end(const struct rd *r);

#endif
