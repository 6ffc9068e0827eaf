#include "bbuf.h"

#include <stdlib.h>
#include <string.h>

int
bbuf_reserve(struct bbuf *b, size_t n)
{
	size_t want, cap;
	uint8_t *np;

	if (n <= b->cap - b->len)
		return 0;
	if (n > SIZE_MAX / 2 - b->len)
		return -1;
	want = b->len + n;
	cap = b->cap ? b->cap : 4096;
	while (cap < want)
		cap *= 2;
	np = realloc(b->p, cap);
	if (np == NULL)
		return -1;
	b->p = np;
	b->cap = cap;
	return 0;
}

void
bbuf_tail(struct bbuf *b, struct wr *w)
{
	wr_init(w, b->p != NULL ? b->p + b->len : NULL, b->cap - b->len);
}

void
bbuf_commit(struct bbuf *b, const struct wr *w)
{
	if (!w->err)
		b->len += w->off;
}

void
bbuf_consume(struct bbuf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
}

void
bbuf_fini(struct bbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}
