#include "pagehash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void
page_hash(uint64_t seed, const void *p, size_t n, uint8_t out[FERRY_HASH_LEN])
{
	XXH128_hash_t h = XXH3_128bits_withSeed(p, n, seed);
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, h);
	memcpy(out, c.digest, FERRY_HASH_LEN);
}

int
page_is_zero(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t acc = 0, w;
	size_t i = 0;

	/* Check in 64-byte steps so the compiler can vectorise; stop early. */
	while (n - i >= 64) {
		size_t k;

		for (k = 0; k < 64; k += 8) {
			memcpy(&w, b + i + k, 8);
			acc |= w;
		}
		if (acc != 0)
			return 0;
		i += 64;
	}
	for (; i < n; i++)
		if (b[i] != 0)
			return 0;
	return acc == 0;
}

struct digest {
	XXH3_state_t *st;
};

struct digest *
digest_new(uint64_t seed)
{
	struct digest *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	d->st = XXH3_createState();
	if (d->st == NULL || XXH3_128bits_reset_withSeed(d->st, seed) != XXH_OK) {
		digest_free(d);
		return NULL;
	}
	return d;
}

void
digest_add(struct digest *d, const uint8_t hash[FERRY_HASH_LEN])
{
	(void)XXH3_128bits_update(d->st, hash, FERRY_HASH_LEN);
}

void
digest_update(struct digest *d, const void *p, size_t n)
{
	(void)XXH3_128bits_update(d->st, p, n);
}

void
digest_final(struct digest *d, uint8_t out[FERRY_HASH_LEN])
{
	XXH128_canonical_t c;

	XXH128_canonicalFromHash(&c, XXH3_128bits_digest(d->st));
	memcpy(out, c.digest, FERRY_HASH_LEN);
}

void
digest_free(struct digest *d)
{
	if (d == NULL)
		return;
	if (d->st != NULL)
		XXH3_freeState(d->st);
	free(d);
}

void
hash_hex(const uint8_t hash[FERRY_HASH_LEN], char out[2 * FERRY_HASH_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < FERRY_HASH_LEN; i++) {
		out[2 * i] = hex[hash[i] >> 4];
		out[2 * i + 1] = hex[hash[i] & 15];
	}
	out[2 * FERRY_HASH_LEN] = '\0';
}
