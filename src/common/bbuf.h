/* A growable byte buffer for frames a session queues to send.  The
 * session writes with a struct wr over bbuf_tail(); the daemon drains. */
#ifndef FERRY_BBUF_H
#define FERRY_BBUF_H

#include <stddef.h>
#include <stdint.h>

#include "wr.h"

struct bbuf {
	uint8_t *p;
	size_t len;     /* bytes queued */
	size_t cap;
};

/* Make room for at least n more bytes; 0 or -1 on allocation failure. */
int bbuf_reserve(struct bbuf *b, size_t n);
/* A writer over the free tail (after bbuf_reserve); bbuf_commit adds what
 * it wrote. */
void bbuf_tail(struct bbuf *b, struct wr *w);
void bbuf_commit(struct bbuf *b, const struct wr *w);
/* Drop n bytes from the front. */
void bbuf_consume(struct bbuf *b, size_t n);
void bbuf_fini(struct bbuf *b);

#endif
