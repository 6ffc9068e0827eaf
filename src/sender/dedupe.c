#include "dedupe.h"

#include <stdlib.h>
#include <string.h>

/* 16 bytes a slot: the slot's position comes from hash bytes 8..15, the
 * tag keeps bytes 0..7.  Callers check a hit against the full hash of what
 * the receiver holds there, so the table need not keep it. */
struct slot {
	uint64_t tag;
	uint32_t dev;       /* device id; 0 = empty slot */
	uint32_t idx;
};

struct dedupe {
	struct slot *s;
	uint64_t mask;
	uint64_t used;
	uint64_t limit;
};

struct dedupe *
dedupe_new(uint64_t units)
{
	struct dedupe *t = calloc(1, sizeof(*t));
	uint64_t cap = 1024;

	if (t == NULL)
		return NULL;
	while (cap < units * 2 && cap < (1ull << 30))
		cap <<= 1;
	t->s = calloc(cap, sizeof(*t->s));
	if (t->s == NULL) {
		free(t);
		return NULL;
	}
	t->mask = cap - 1;
	t->limit = cap - cap / 4;
	return t;
}

void
dedupe_free(struct dedupe *t)
{
	if (t == NULL)
		return;
	free(t->s);
	free(t);
}

static uint64_t
slot_of(const uint8_t h[FERRY_HASH_LEN])
{
	uint64_t v;

	memcpy(&v, h + 8, sizeof(v));   /* keyed hash bits are uniform */
	return v;
}

static uint64_t
tag_of(const uint8_t h[FERRY_HASH_LEN])
{
	uint64_t v;

	memcpy(&v, h, sizeof(v));
	return v;
}

int
dedupe_find(const struct dedupe *t, const uint8_t hash[FERRY_HASH_LEN], uint32_t *dev,
    uint32_t *idx)
{
	uint64_t i = slot_of(hash) & t->mask;

	while (t->s[i].dev != 0) {
		if (t->s[i].tag == tag_of(hash)) {
			*dev = t->s[i].dev;
			*idx = t->s[i].idx;
			return 1;
		}
		i = (i + 1) & t->mask;
	}
	return 0;
}

void
dedupe_put(struct dedupe *t, const uint8_t hash[FERRY_HASH_LEN], uint32_t dev, uint32_t idx)
{
	uint64_t i = slot_of(hash) & t->mask;

	while (t->s[i].dev != 0) {
		if (t->s[i].tag == tag_of(hash)) {
			t->s[i].dev = dev;
			t->s[i].idx = idx;
			return;
		}
		i = (i + 1) & t->mask;
	}
	if (t->used >= t->limit) {
		memset(t->s, 0, (t->mask + 1) * sizeof(*t->s));
		t->used = 0;
		i = slot_of(hash) & t->mask;
	}
	t->s[i].tag = tag_of(hash);
	t->s[i].dev = dev;
	t->s[i].idx = idx;
	t->used++;
}
