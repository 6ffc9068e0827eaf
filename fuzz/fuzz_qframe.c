/* Fuzz target: the QEMU stream frame codecs (src/common/msg_qemu.c,
 * proto/PROTOCOL.md 4.17 QSTREAM and 4.18 QRETURN): msg_qstream_decode,
 * msg_qitem_next with the session's block table, msg_qreturn_decode, and
 * the encoders, which must give back the bytes of every frame that
 * decoded (fz_walk_qstream, fz_check_qreturn in fuzz_common.h).
 *
 * Input layout:
 *   u8 sel    bit 0 clear: the rest is one payload (no frame header),
 *                decoded as a QSTREAM and as a QRETURN;
 *             bit 0 set: the rest is a stream of frames (8-byte headers)
 *                as a session carries them, QSTREAM and QRETURN decoded
 *                in order (other types skipped, after their header
 *                check), the block table kept from frame to frame, at
 *                most 64 frames, stopping at the first header error or
 *                incomplete frame;
 *             bit 1: the session starts with a block table (pc.ram of 16
 *                pages, vga.vram of 4, a 255-byte id of 1), so PAGE items
 *                decode without a BLOCKS item and a BLOCKS item is the
 *                "second table" error.
 * Invariants beyond no sanitizer report: see fz_walk_qstream; errors come
 * with their code and a message naming the frame. */
#include "fuzz_common.h"

static void
preset_table(struct qitem_block *tab, uint32_t *n)
{
	memset(tab, 0, FERRY_QBLOCKS_MAX * sizeof(*tab));
	memcpy(tab[0].id, "pc.ram", 7);
	tab[0].id_len = 6;
	tab[0].len = 16 * FERRY_QPAGE_SIZE;
	memcpy(tab[1].id, "vga.vram", 9);
	tab[1].id_len = 8;
	tab[1].len = 4 * FERRY_QPAGE_SIZE;
	memset(tab[2].id, 'r', FERRY_QBLOCK_ID_MAX);
	tab[2].id_len = FERRY_QBLOCK_ID_MAX;
	tab[2].len = FERRY_QPAGE_SIZE;
	*n = 3;
}

static void
check_error(int rc, const struct ferr *e, const char *frame)
{
	if (rc == 0)
		return;
	FZ_CHECK(rc < 0 && rc != FERR_NEED_MORE && e->code == rc);
	FZ_CHECK(strncmp(e->msg, frame, strlen(frame)) == 0);
}

static void
one_payload(const uint8_t *data, size_t size, struct qitem_block *tab, uint32_t nblocks)
{
	uint8_t *p = fz_dup(data, size);
	struct ferr e = { 0 };
	uint32_t had = nblocks;
	int rc;

	rc = fz_walk_qstream(p, size, tab, &nblocks, &e);
	check_error(rc, &e, "QSTREAM");
	FZ_CHECK(had == 0 || nblocks == had);
	memset(&e, 0, sizeof(e));
	rc = fz_check_qreturn(p, size, &e);
	check_error(rc, &e, "QRETURN");
	free(p);
}

static void
frames(const uint8_t *data, size_t size, struct qitem_block *tab, uint32_t nblocks)
{
	size_t off = 0;
	int count = 0;

	while (off < size && count < 64) {
		struct frame_hdr h;
		struct ferr e = { 0 };
		uint8_t *p;
		int rc;

		rc = frame_decode_hdr(data + off, size - off, FERRY_MAX_FRAME_LIMIT, FDIR_BOTH, &h, &e);
		if (rc != 0 || h.len > size - off - FERRY_FRAME_HDR_LEN)
			break;
		p = fz_dup(data + off + FERRY_FRAME_HDR_LEN, h.len);
		if (h.type == FT_QSTREAM) {
			uint32_t had = nblocks;

			rc = fz_walk_qstream(p, h.len, tab, &nblocks, &e);
			check_error(rc, &e, "QSTREAM");
			/* A table, once there, stays (a second BLOCKS is refused). */
			FZ_CHECK(had == 0 || nblocks == had);
		} else if (h.type == FT_QRETURN) {
			rc = fz_check_qreturn(p, h.len, &e);
			check_error(rc, &e, "QRETURN");
		}
		free(p);
		off += FERRY_FRAME_HDR_LEN + h.len;
		count++;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qitem_block *tab;
	uint32_t nblocks = 0;
	uint8_t sel;

	if (size < 1)
		return 0;
	sel = data[0];
	data++;
	size--;
	tab = calloc(FERRY_QBLOCKS_MAX, sizeof(*tab));
	FZ_CHECK(tab != NULL);
	if (sel & 2)
		preset_table(tab, &nblocks);
	if (sel & 1)
		frames(data, size, tab, nblocks);
	else
		one_payload(data, size, tab, nblocks);
	free(tab);
	return 0;
}
