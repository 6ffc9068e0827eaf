/* lz4 page codec (proto/PROTOCOL.md 4.6): one unit compressed on its own
 * with lz4 block format, level 1. */
#ifndef FERRY_CODEC_LZ4_H
#define FERRY_CODEC_LZ4_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Compress len bytes into dst (cap bytes).  Returns the compressed length,
 * or 0 when the result would not be smaller than cap (send RAW then). */
uint32_t codec_lz4_encode(const uint8_t *src, uint32_t len, uint8_t *dst, uint32_t cap);

/* Decompress exactly `len` bytes into dst; anything else (garbage, short or
 * long output) is FERR_PROTO_CODEC naming `what`. */
int codec_lz4_decode(const uint8_t *src, uint32_t clen, uint8_t *dst, uint32_t len,
    const char *what, struct ferr *e) FERRY_MUST_CHECK;

#endif
