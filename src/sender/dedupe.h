/* Sender's dedupe index: content hash -> the last unit sent with that
 * content.  A hit is only usable while the receiver still holds that
 * content there, which the caller checks against source sent hashes. */
#ifndef FERRY_DEDUPE_H
#define FERRY_DEDUPE_H

#include <stdint.h>

#include "ferry_proto.h"

struct dedupe;

/* Sized for about `units` distinct contents. NULL on allocation failure. */
struct dedupe *dedupe_new(uint64_t units);
void dedupe_free(struct dedupe *t);
/* 1 and the location when a unit with this hash was put (only 64 bits of
 * it are kept: the caller compares the full hash of what is there), else 0. */
int dedupe_find(const struct dedupe *t, const uint8_t hash[FERRY_HASH_LEN], uint32_t *dev,
    uint32_t *idx);
/* Remember that unit (dev, idx) now holds hash.  When the table fills up it
 * is emptied (dedupe is an optimisation; correctness never depends on it). */
void dedupe_put(struct dedupe *t, const uint8_t hash[FERRY_HASH_LEN], uint32_t dev, uint32_t idx);

#endif
