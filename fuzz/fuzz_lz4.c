/* Fuzz target: the lz4 page codec (codec_lz4_decode), with the unit length
 * declared by the input the way a MANIFEST declares it.
 *
 * Input layout:
 *   u8  mode     bit 0: also try declared sizes over INT32_MAX (must be
 *                refused before any byte is read or written)
 *   u24 len      unit length, folded into [0, FERRY_UNIT_MAX]
 *   bytes        the compressed block; clen is all of it
 *
 * The output buffer is exactly len bytes.  A successful decode is checked
 * twice over: decoding again into a buffer filled differently gives the
 * same bytes (every byte was written), and codec_lz4_encode of the result
 * decodes back to it. */
#include "fuzz_common.h"

#include "codec_lz4.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ferr e = { 0 };
	uint8_t mode, *src, *dst, *dst2 = NULL, *enc = NULL;
	uint32_t len, clen;
	int rc;

	if (size < 4 || size - 4 > FERRY_MAX_FRAME_LIMIT)
		return 0;
	mode = data[0];
	len = ((uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 | data[3]) % (FERRY_UNIT_MAX + 1);
	clen = (uint32_t)(size - 4);
	src = fz_dup(data + 4, clen);
	dst = malloc(len ? len : 1);
	FZ_CHECK(dst != NULL);

	rc = codec_lz4_decode(src, clen, dst, len, "fuzz", &e);
	FZ_CHECK(rc == 0 || (rc == FERR_PROTO_CODEC && e.code == rc && e.msg[0] != '\0'));
	if (rc == 0 && len > 0) {
		uint32_t n;

		dst2 = malloc(len);
		FZ_CHECK(dst2 != NULL);
		memset(dst2, ~dst[0], len);
		FZ_CHECK(codec_lz4_decode(src, clen, dst2, len, "again", &e) == 0);
		FZ_CHECK(memcmp(dst, dst2, len) == 0);

		/* Round trip through our own encoder, into a buffer of the size
		 * the sender uses (smaller than the unit, else it sends RAW). */
		enc = malloc(len);
		FZ_CHECK(enc != NULL);
		n = codec_lz4_encode(dst, len, enc, len - 1 ? len - 1 : 1);
		FZ_CHECK(n < len || len == 1);
		if (n != 0) {
			uint8_t *enc2 = fz_dup(enc, n);

			memset(dst2, ~dst[0], len);
			FZ_CHECK(codec_lz4_decode(enc2, n, dst2, len, "round trip", &e) == 0);
			FZ_CHECK(memcmp(dst, dst2, len) == 0);
			free(enc2);
		}
	}
	if (mode & 1) {
		/* Sizes no int can hold: refused up front, buffers untouched. */
		uint8_t one = 0x5a;

		FZ_CHECK(codec_lz4_decode(src, clen, &one, 0x80000000u | len, "big len", &e) ==
		    FERR_PROTO_CODEC);
		FZ_CHECK(codec_lz4_decode(src, 0x80000000u | clen, &one, 1, "big clen", &e) ==
		    FERR_PROTO_CODEC);
		FZ_CHECK(one == 0x5a);
	}
	free(enc);
	free(dst2);
	free(dst);
	free(src);
	return 0;
}
