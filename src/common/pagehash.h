/* Keyed page hashes and whole-image digests (proto/PROTOCOL.md 5.2).
 *
 * A unit's hash is XXH3-128 of its bytes with the session's 64-bit seed,
 * in canonical (big-endian) form.  A device's digest is XXH3-128, with the
 * same seed, over the concatenation of its units' hashes in index order. */
#ifndef FERRY_PAGEHASH_H
#define FERRY_PAGEHASH_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_proto.h"

void page_hash(uint64_t seed, const void *p, size_t n, uint8_t out[FERRY_HASH_LEN]);
/* 1 when all n bytes are zero (early exit on the first non-zero word). */
int page_is_zero(const void *p, size_t n);

struct digest;
struct digest *digest_new(uint64_t seed);      /* NULL on allocation failure */
void digest_add(struct digest *d, const uint8_t hash[FERRY_HASH_LEN]);
/* Any bytes: a QEMU stream's digest is XXH3-128 over the stream itself. */
void digest_update(struct digest *d, const void *p, size_t n);
void digest_final(struct digest *d, uint8_t out[FERRY_HASH_LEN]);
void digest_free(struct digest *d);

/* "0123abcd..." (32 hex digits + NUL) for logs. */
void hash_hex(const uint8_t hash[FERRY_HASH_LEN], char out[2 * FERRY_HASH_LEN + 1]);

#endif
