#include "rd.h"

#include <string.h>

void
rd_init(struct rd *r, const void *base, size_t len)
{
	r->base = base;
	r->len = base != NULL ? len : 0;
	r->off = 0;
	r->err = 0;
}

/* The only length check: n > len - off cannot overflow since off <= len. */
static int
rd_need(struct rd *r, size_t n)
{
	if (r->err || n > r->len - r->off) {
		r->err = 1;
		return -1;
	}
	return 0;
}

int
rd_u8(struct rd *r, uint8_t *v)
{
	if (rd_need(r, 1) != 0) {
		*v = 0;
		return -1;
	}
	*v = r->base[r->off++];
	return 0;
}

int
rd_u16(struct rd *r, uint16_t *v)
{
	const uint8_t *p;

	if (rd_need(r, 2) != 0) {
		*v = 0;
		return -1;
	}
	p = r->base + r->off;
	*v = (uint16_t)((p[0] << 8) | p[1]);
	r->off += 2;
	return 0;
}

int
rd_u32(struct rd *r, uint32_t *v)
{
	const uint8_t *p;

	if (rd_need(r, 4) != 0) {
		*v = 0;
		return -1;
	}
	p = r->base + r->off;
	*v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	    ((uint32_t)p[2] << 8) | p[3];
	r->off += 4;
	return 0;
}

int
rd_u64(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;

	if (rd_need(r, 8) != 0) {
		*v = 0;
		return -1;
	}
	(void)rd_u32(r, &hi);
	(void)rd_u32(r, &lo);
	*v = ((uint64_t)hi << 32) | lo;
	return 0;
}

int
rd_copy(struct rd *r, void *out, size_t n)
{
	if (rd_need(r, n) != 0) {
		if (n > 0)
			memset(out, 0, n);
		return -1;
	}
	if (n > 0)
		memcpy(out, r->base + r->off, n);
	r->off += n;
	return 0;
}

int
rd_ptr(struct rd *r, size_t n, const uint8_t **p)
{
	if (rd_need(r, n) != 0) {
		*p = NULL;
		return -1;
	}
	*p = r->base + r->off;
	r->off += n;
	return 0;
}

int
rd_sub(struct rd *r, size_t n, struct rd *sub)
{
	if (rd_need(r, n) != 0) {
		rd_init(sub, NULL, 0);
		sub->err = 1;
		return -1;
	}
	rd_init(sub, r->base + r->off, n);
	r->off += n;
	return 0;
}

int
rd_end(const struct rd *r)
{
	return (r->err || r->off != r->len) ? -1 : 0;
}
