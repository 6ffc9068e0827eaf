/* Source devices of ferry-send: image files mapped read-only and shared,
 * so the sender reads what the running guest writes (file-backed RAM and
 * raw disk images), plus what has been sent of each unit. */
#ifndef FERRY_SOURCE_H
#define FERRY_SOURCE_H

#include <stdint.h>

#include "err.h"
#include "msg.h"

struct source_dev {
	struct dev_desc desc;           /* id, kind, unit, size, name, st_dev/ino */
	char path[4096];
	int fd;
	const uint8_t *map;
	uint64_t nunits;
	uint8_t (*sent)[FERRY_HASH_LEN]; /* hash of what the receiver holds */
	uint8_t *sent_valid;            /* bit per unit: sent[] is meaningful */
};

/* Open and map path as device `id` of `kind` with unit size `unit`.  The
 * name sent in the manifest is the file's basename. */
int source_dev_open(struct source_dev *d, const char *path, uint32_t id, uint8_t kind,
    uint32_t unit, struct ferr *e) FERRY_MUST_CHECK;
void source_dev_close(struct source_dev *d);

static inline int source_sent_valid(const struct source_dev *d, uint64_t i)
{
	return (d->sent_valid[i / 8] >> (i % 8)) & 1;
}
static inline void source_set_sent(struct source_dev *d, uint64_t i, const uint8_t h[FERRY_HASH_LEN])
{
	__builtin_memcpy(d->sent[i], h, FERRY_HASH_LEN);
	d->sent_valid[i / 8] |= (uint8_t)(1u << (i % 8));
}

/* The scan is done with units [from, to): drop their pages from this
 * process's mapping (the page cache keeps them; a later read faults them
 * back in), so the sender's resident memory stays small whatever the
 * image size. */
void source_release(const struct source_dev *d, uint64_t from, uint64_t to);

/* Read a whole (state) file, at most max bytes.  *buf is malloc'd. */
int source_read_file(const char *path, uint64_t max, uint8_t **buf, uint64_t *len,
    struct ferr *e) FERRY_MUST_CHECK;

#endif
