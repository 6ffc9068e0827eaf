/* Fuzz target: the frame header codec (frame_decode_hdr) and, for each
 * header it accepts, the payload decoder of that type (src/common/msg.c,
 * src/common/msg_domain.c, src/common/msg_qemu.c).
 *
 * Input: a stream of frames, as on the wire in either direction.  Each
 * header is decoded as arriving at the receiver, at the sender, and with
 * both directions allowed, under three payload maxima; the answers must
 * agree with the frame table.  A whole payload is then decoded by its
 * type's decoder (every type 1..20: src/common/msg.c, HAVE included,
 * DOMAIN and CHECKS in src/common/msg_domain.c, QSTREAM and QRETURN in
 * src/common/msg_qemu.c, each QSTREAM without a block table) and, if it
 * decodes, re-encoded and compared (fz_check_payload).  Stops at the
 * first header error or incomplete frame, after 64 frames at most. */
#include "fuzz_common.h"

static const uint32_t maxima[3] = {
	FERRY_MAX_FRAME_MIN, FERRY_MAX_FRAME_DEFAULT, FERRY_MAX_FRAME_LIMIT,
};

/* Decode one header every way; return 0 and *h when it is acceptable in
 * some direction under the largest maximum. */
static int
check_header(const uint8_t *p, size_t n, struct frame_hdr *h)
{
	static const uint8_t dirs[3] = { FDIR_S2R, FDIR_R2S, FDIR_BOTH };
	uint8_t *copy = fz_dup(p, n < FERRY_FRAME_HDR_LEN ? n : FERRY_FRAME_HDR_LEN);
	size_t cn = n < FERRY_FRAME_HDR_LEN ? n : FERRY_FRAME_HDR_LEN;
	int rc[3][3];
	struct frame_hdr hh[3][3];
	size_t d, m;
	const struct frame_info *fi;

	for (d = 0; d < 3; d++) {
		for (m = 0; m < 3; m++) {
			struct ferr e = { 0 };

			memset(&hh[d][m], 0, sizeof(hh[d][m]));
			rc[d][m] = frame_decode_hdr(copy, cn, maxima[m], dirs[d], &hh[d][m], &e);
			if (cn < FERRY_FRAME_HDR_LEN) {
				FZ_CHECK(rc[d][m] == FERR_NEED_MORE);
				continue;
			}
			FZ_CHECK(rc[d][m] != FERR_NEED_MORE);
			if (rc[d][m] != 0) {
				FZ_CHECK(ferr_is_proto(rc[d][m]) && e.code == rc[d][m] && e.msg[0] != '\0');
				continue;
			}
			fi = frame_info(hh[d][m].type);
			FZ_CHECK(fi != NULL);
			FZ_CHECK((fi->dir & dirs[d]) != 0);
			FZ_CHECK(hh[d][m].flags == 0);
			FZ_CHECK(hh[d][m].len >= fi->min_len && hh[d][m].len <= maxima[m]);
			FZ_CHECK(fi->max_len == 0 || hh[d][m].len <= fi->max_len);
			FZ_CHECK(hh[d][m].type == copy[0] && hh[d][m].len == fz_be32(copy + 4));
		}
	}
	free(copy);
	if (cn < FERRY_FRAME_HDR_LEN)
		return FERR_NEED_MORE;
	for (m = 0; m < 3; m++) {
		/* BOTH accepts exactly what one of the directions accepts. */
		FZ_CHECK((rc[2][m] == 0) == (rc[0][m] == 0 || rc[1][m] == 0));
		/* A larger maximum never refuses what a smaller one accepts. */
		if (m > 0)
			for (d = 0; d < 3; d++)
				FZ_CHECK(rc[d][m - 1] != 0 || rc[d][m] == 0);
	}
	if (rc[2][2] != 0)
		return rc[2][2];
	*h = hh[2][2];
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0;
	int frames = 0;

	while (off < size && frames < 64) {
		struct frame_hdr h;
		struct ferr e = { 0 };
		uint8_t *payload;
		int rc;

		if (check_header(data + off, size - off, &h) != 0)
			break;
		if (h.len > size - off - FERRY_FRAME_HDR_LEN)
			break;
		payload = fz_dup(data + off + FERRY_FRAME_HDR_LEN, h.len);
		rc = fz_check_payload(h.type, payload, h.len, &e);
		if (rc != 0)
			FZ_CHECK(e.code == rc && e.msg[0] != '\0');
		free(payload);
		off += FERRY_FRAME_HDR_LEN + h.len;
		frames++;
	}
	return 0;
}
