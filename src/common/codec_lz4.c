#include "codec_lz4.h"

#include <lz4.h>

uint32_t
codec_lz4_encode(const uint8_t *src, uint32_t len, uint8_t *dst, uint32_t cap)
{
	int n;

	if (len > (uint32_t)LZ4_MAX_INPUT_SIZE || cap == 0 || cap > (uint32_t)INT32_MAX)
		return 0;
	n = LZ4_compress_default((const char *)src, (char *)dst, (int)len, (int)cap);
	return n > 0 ? (uint32_t)n : 0;
}

int
codec_lz4_decode(const uint8_t *src, uint32_t clen, uint8_t *dst, uint32_t len, const char *what,
    struct ferr *e)
{
	int n;

	if (clen > (uint32_t)INT32_MAX || len > (uint32_t)INT32_MAX)
		return ferr_set(e, FERR_PROTO_CODEC, "%s: lz4 sizes out of range", what);
	n = LZ4_decompress_safe((const char *)src, (char *)dst, (int)clen, (int)len);
	if (n < 0)
		return ferr_set(e, FERR_PROTO_CODEC, "%s: lz4 payload of %u bytes is corrupt", what, clen);
	if ((uint32_t)n != len)
		return ferr_set(e, FERR_PROTO_CODEC, "%s: lz4 decoded to %d bytes, expected %u", what, n,
		    len);
	return 0;
}
