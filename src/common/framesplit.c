#include "framesplit.h"

#include <stdlib.h>
#include <string.h>

#include "ferry_proto.h"
#include "rd.h"

void
fsplit_init(struct fsplit *s, size_t limit)
{
	memset(s, 0, sizeof(*s));
	s->limit = limit < FERRY_FRAME_HDR_LEN ? FERRY_FRAME_HDR_LEN : limit;
}

void
fsplit_fini(struct fsplit *s)
{
	if (s->buf != NULL) {
		/* It held guest memory. */
		memset(s->buf, 0, s->cap);
		free(s->buf);
	}
	s->buf = NULL;
	s->len = s->cap = 0;
}

/* Whole frame size from a complete header, or 0 when over the limit. */
static size_t
frame_size(const struct fsplit *s, const uint8_t *hdr)
{
	struct rd r;
	uint32_t len;

	rd_init(&r, hdr + 4, 4);
	(void)rd_u32(&r, &len);
	if ((uint64_t)len > s->limit - FERRY_FRAME_HDR_LEN)
		return 0;
	return FERRY_FRAME_HDR_LEN + (size_t)len;
}

static int
reserve(struct fsplit *s, size_t want)
{
	uint8_t *nb;
	size_t cap = s->cap ? s->cap : 4096, len = s->len;

	if (want <= s->cap)
		return 0;
	while (cap < want)
		cap = cap > SIZE_MAX / 2 ? want : cap * 2;
	if ((nb = malloc(cap)) == NULL)
		return FERR_NOMEM;
	if (len > 0)
		memcpy(nb, s->buf, len);
	fsplit_fini(s);
	s->buf = nb;
	s->cap = cap;
	s->len = len;
	return 0;
}

/* Append up to `want` total bytes to the buffer from p; returns bytes taken. */
static size_t
take(struct fsplit *s, const uint8_t *p, size_t n, size_t want)
{
	size_t k = want - s->len;

	if (k > n)
		k = n;
	memcpy(s->buf + s->len, p, k);
	s->len += k;
	return k;
}

static void
go_desync(struct fsplit *s, const uint8_t *hdr, fsplit_cb cb, void *arg)
{
	s->desync = 1;
	cb(arg, hdr, FERRY_FRAME_HDR_LEN, 1);
	s->len = 0;
}

/* Continue the frame in the buffer; returns bytes of p used. */
static size_t
feed_buffered(struct fsplit *s, const uint8_t *p, size_t n, fsplit_cb cb, void *arg, int *rc)
{
	size_t used = 0, size;

	if (s->len < FERRY_FRAME_HDR_LEN) {
		used += take(s, p, n, FERRY_FRAME_HDR_LEN);
		if (s->len < FERRY_FRAME_HDR_LEN)
			return used;
	}
	if ((size = frame_size(s, s->buf)) == 0) {
		go_desync(s, s->buf, cb, arg);
		return used;
	}
	if (reserve(s, size) != 0) {
		*rc = FERR_NOMEM;
		cb(arg, s->buf, s->len, 1);
		s->len = 0;
		s->desync = 1;
		return used;
	}
	used += take(s, p + used, n - used, size);
	if (s->len == size) {
		cb(arg, s->buf, size, 0);
		s->len = 0;
	}
	return used;
}

int
fsplit_feed(struct fsplit *s, const uint8_t *p, size_t n, fsplit_cb cb, void *arg)
{
	size_t off = 0, size;
	int rc = 0;

	while (off < n) {
		if (s->desync) {
			s->lost += n - off;
			return rc;
		}
		if (s->len > 0) {
			off += feed_buffered(s, p + off, n - off, cb, arg, &rc);
			continue;
		}
		/* Zero-copy path: whole frames straight from p. */
		if (n - off >= FERRY_FRAME_HDR_LEN) {
			if ((size = frame_size(s, p + off)) == 0) {
				s->desync = 1;
				cb(arg, p + off, FERRY_FRAME_HDR_LEN, 1);
				off += FERRY_FRAME_HDR_LEN;
				continue;
			}
			if (size <= n - off) {
				cb(arg, p + off, size, 0);
				off += size;
				continue;
			}
		}
		if (reserve(s, FERRY_FRAME_HDR_LEN) != 0) {
			cb(arg, p + off, n - off < FERRY_FRAME_HDR_LEN ? n - off : FERRY_FRAME_HDR_LEN, 1);
			s->desync = 1;
			rc = FERR_NOMEM;
			continue;
		}
		off += feed_buffered(s, p + off, n - off, cb, arg, &rc);
	}
	return rc;
}

void
fsplit_flush(struct fsplit *s, fsplit_cb cb, void *arg)
{
	if (s->len > 0)
		cb(arg, s->buf, s->len, 1);
	s->len = 0;
}
