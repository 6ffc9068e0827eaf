#include "wr.h"

#include <string.h>

void
wr_init(struct wr *w, void *base, size_t cap)
{
	w->base = base;
	w->cap = base != NULL ? cap : 0;
	w->off = 0;
	w->err = 0;
}

uint8_t *
wr_reserve(struct wr *w, size_t n)
{
	uint8_t *p;

	if (w->err || n > w->cap - w->off) {
		w->err = 1;
		return NULL;
	}
	p = w->base + w->off;
	w->off += n;
	return p;
}

void
wr_unreserve(struct wr *w, size_t n)
{
	if (!w->err && n <= w->off)
		w->off -= n;
}

int
wr_u8(struct wr *w, uint8_t v)
{
	uint8_t *p = wr_reserve(w, 1);

	if (p == NULL)
		return -1;
	p[0] = v;
	return 0;
}

int
wr_u16(struct wr *w, uint16_t v)
{
	uint8_t *p = wr_reserve(w, 2);

	if (p == NULL)
		return -1;
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 0;
}

void
wr_put_u32_at(struct wr *w, size_t at, uint32_t v)
{
	if (w->err || at > w->off || 4 > w->off - at)
		return;
	w->base[at] = (uint8_t)(v >> 24);
	w->base[at + 1] = (uint8_t)(v >> 16);
	w->base[at + 2] = (uint8_t)(v >> 8);
	w->base[at + 3] = (uint8_t)v;
}

int
wr_u32(struct wr *w, uint32_t v)
{
	uint8_t *p = wr_reserve(w, 4);

	if (p == NULL)
		return -1;
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 0;
}

int
wr_u64(struct wr *w, uint64_t v)
{
	if (wr_u32(w, (uint32_t)(v >> 32)) != 0)
		return -1;
	return wr_u32(w, (uint32_t)v);
}

int
wr_bytes(struct wr *w, const void *src, size_t n)
{
	uint8_t *p = wr_reserve(w, n);

	if (p == NULL)
		return -1;
	if (n > 0)
		memcpy(p, src, n);
	return 0;
}
