/* QSTREAM and QRETURN payload codecs (proto/PROTOCOL.md sections 4.17 and
 * 4.18): a QEMU migration stream carried as items, used only when both
 * sides negotiated FERRY_CAP_QEMU.  Pure functions over bytes, like msg.c.
 *
 * An item's errors name it by the payload offset of its type byte ("item
 * at byte 45"): the decoder sees one item at a time and no count. */
#include "msg_qemu.h"

#include <string.h>

#include "frame.h"

#define QI_OPAQUE_HDR 5u                        /* u8 type, u32 len */
#define QI_PAGE_HDR 13u                         /* u8 type, u8 rec, u16 block, u64 offset, u8 kind */
#define QI_REF_LEN (2u + 8u + FERRY_HASH_LEN)   /* u16 src_block, u64 src_offset, hash */
#define QI_BLOCK_MIN 9u                         /* u8 id_len, u64 len: an entry without its id */

_Static_assert(FERRY_QITEM_MIN == QI_OPAQUE_HDR + 1, "the smallest item is an OPAQUE of 1 byte");
_Static_assert(FERRY_QBLOCKS_MAX <= UINT16_MAX, "BLOCKS n is a u16");

int
msg_qstream_decode(struct rd *r, struct msg_qstream *m, struct ferr *e)
{
	rd_u64(r, &m->seq);
	rd_u64(r, &m->stream_off);
	rd_u32(r, &m->count);
	if (r->err)
		return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: truncated header");
	if (m->seq == 0)
		return ferr_set(e, FERR_PROTO_RANGE, "QSTREAM: seq 0");
	if (m->count == 0 || m->count > FERRY_MAX_PAGES_PER_FRAME)
		return ferr_set(e, FERR_PROTO_RANGE, "QSTREAM: count %u outside [1, %u]", m->count,
		    FERRY_MAX_PAGES_PER_FRAME);
	/* Each item takes at least 6 bytes: reject impossible counts early. */
	if (rd_left(r) / FERRY_QITEM_MIN < m->count)
		return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: count %u does not fit in %zu bytes",
		    m->count, rd_left(r));
	return 0;
}

static int
opaque_next(struct rd *r, size_t at, struct qitem *it, struct ferr *e)
{
	rd_u32(r, &it->len);
	if (r->err)
		return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: item at byte %zu: OPAQUE len truncated", at);
	if (it->len == 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: item at byte %zu: OPAQUE len 0", at);
	if (rd_ptr(r, it->len, &it->data) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH,
		    "QSTREAM: item at byte %zu: OPAQUE len %u past the frame's end", at, it->len);
	return 0;
}

/* Section 4.17: ids of 1..255 bytes without NUL, unique; lengths non-zero
 * multiples of the page size, at most FERRY_DEVICE_SIZE_MAX. */
static int
blocks_next(struct rd *r, size_t at, uint32_t nblocks, struct qitem_block *out, struct qitem *it,
    struct ferr *e)
{
	uint16_t n;
	uint32_t i, j;

	if (nblocks != 0)
		return ferr_set(e, FERR_PROTO_STATE,
		    "QSTREAM: item at byte %zu: BLOCKS, but the session has a block table (%u blocks)", at,
		    nblocks);
	rd_u16(r, &n);
	if (r->err)
		return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: item at byte %zu: BLOCKS n truncated", at);
	if (n == 0 || n > FERRY_QBLOCKS_MAX)
		return ferr_set(e, FERR_PROTO_RANGE, "QSTREAM: item at byte %zu: BLOCKS n %u outside [1, %u]",
		    at, n, FERRY_QBLOCKS_MAX);
	if (rd_left(r) / QI_BLOCK_MIN < n)
		return ferr_set(e, FERR_PROTO_LENGTH,
		    "QSTREAM: item at byte %zu: BLOCKS n %u does not fit in %zu bytes", at, n, rd_left(r));
	for (i = 0; i < n; i++) {
		struct qitem_block *b = &out[i];

		rd_u8(r, &b->id_len);
		if (r->err)
			return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: item at byte %zu: block %u truncated",
			    at, i);
		if (b->id_len == 0)
			return ferr_set(e, FERR_PROTO_RANGE, "QSTREAM: item at byte %zu: block %u id_len 0", at,
			    i);
		if (rd_copy(r, b->id, b->id_len) != 0)
			return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: item at byte %zu: block %u id truncated",
			    at, i);
		b->id[b->id_len] = '\0';
		rd_u64(r, &b->len);
		if (r->err)
			return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: item at byte %zu: block %u len truncated",
			    at, i);
		if (memchr(b->id, '\0', b->id_len) != NULL)
			return ferr_set(e, FERR_PROTO_RANGE, "QSTREAM: item at byte %zu: block %u id has a NUL byte",
			    at, i);
		if (b->len == 0 || b->len % FERRY_QPAGE_SIZE != 0 || b->len > FERRY_DEVICE_SIZE_MAX)
			return ferr_set(e, FERR_PROTO_RANGE,
			    "QSTREAM: item at byte %zu: block %u '%s' len %llu not a multiple of %u in [%u, %llu]",
			    at, i, b->id, (unsigned long long)b->len, FERRY_QPAGE_SIZE, FERRY_QPAGE_SIZE,
			    (unsigned long long)FERRY_DEVICE_SIZE_MAX);
		for (j = 0; j < i; j++)
			if (out[j].id_len == b->id_len && memcmp(out[j].id, b->id, b->id_len) == 0)
				return ferr_set(e, FERR_PROTO_RANGE,
				    "QSTREAM: item at byte %zu: block %u id '%s' repeats block %u", at, i, b->id, j);
	}
	it->nblocks = n;
	it->len = 0;
	return 0;
}

/* A page of the block table: block listed, offset page aligned and inside
 * the block.  what is "" for the page itself, "src_" for a REF's source. */
static int
check_page(const struct qitem_block *blocks, uint32_t nblocks, uint16_t block, uint64_t offset,
    size_t at, const char *what, struct ferr *e)
{
	if (block >= nblocks)
		return ferr_set(e, FERR_PROTO_RANGE,
		    "QSTREAM: item at byte %zu: %sblock %u not in the block table (%u blocks)", at, what,
		    block, nblocks);
	if (offset % FERRY_QPAGE_SIZE != 0)
		return ferr_set(e, FERR_PROTO_RANGE,
		    "QSTREAM: item at byte %zu: %soffset %llu not a multiple of %u", at, what,
		    (unsigned long long)offset, FERRY_QPAGE_SIZE);
	if (offset >= blocks[block].len)
		return ferr_set(e, FERR_PROTO_RANGE,
		    "QSTREAM: item at byte %zu: %soffset %llu >= length %llu of block %u '%s'", at, what,
		    (unsigned long long)offset, (unsigned long long)blocks[block].len, block,
		    blocks[block].id);
	return 0;
}

static int
page_next(struct rd *r, size_t at, const struct qitem_block *blocks, uint32_t nblocks,
    struct qitem *it, struct ferr *e)
{
	int rc;

	rd_u8(r, &it->rec);
	rd_u16(r, &it->block);
	rd_u64(r, &it->offset);
	rd_u8(r, &it->kind);
	if (r->err)
		return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: item at byte %zu: PAGE truncated", at);
	if ((it->rec & ~FERRY_QREC_KNOWN) != 0)
		return ferr_set(e, FERR_PROTO, "QSTREAM: item at byte %zu: PAGE rec 0x%02x has unknown bits",
		    at, it->rec);
	if (nblocks == 0)
		return ferr_set(e, FERR_PROTO_RANGE,
		    "QSTREAM: item at byte %zu: PAGE names block %u, but no BLOCKS item came before", at,
		    it->block);
	if ((rc = check_page(blocks, nblocks, it->block, it->offset, at, "", e)) != 0)
		return rc;
	if (it->kind < PK_ZERO || it->kind > PK_RAW)
		return ferr_set(e, FERR_PROTO_RANGE, "QSTREAM: item at byte %zu: PAGE kind %u unknown", at,
		    it->kind);
	/* A QEMU zero record carries no data: only ferry's zero page fits it. */
	if ((it->rec & FERRY_QREC_DATA) == 0 && it->kind != PK_ZERO)
		return ferr_set(e, FERR_PROTO_RANGE,
		    "QSTREAM: item at byte %zu: PAGE rec 0x%02x is a zero record, kind %u is not ZERO", at,
		    it->rec, it->kind);
	switch (it->kind) {
	case PK_REF:
		rd_u16(r, &it->src_block);
		rd_u64(r, &it->src_offset);
		if (rd_copy(r, it->hash, FERRY_HASH_LEN) != 0)
			return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: item at byte %zu: REF truncated", at);
		if ((rc = check_page(blocks, nblocks, it->src_block, it->src_offset, at, "src_", e)) != 0)
			return rc;
		break;
	case PK_LZ4:
		rd_u32(r, &it->payload_len);
		if (r->err)
			return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: item at byte %zu: LZ4 clen truncated",
			    at);
		if (it->payload_len == 0 || it->payload_len >= FERRY_QPAGE_SIZE)
			return ferr_set(e, FERR_PROTO_CODEC,
			    "QSTREAM: item at byte %zu: LZ4 clen %u outside [1, %u)", at, it->payload_len,
			    FERRY_QPAGE_SIZE);
		if (rd_ptr(r, it->payload_len, &it->payload) != 0)
			return ferr_set(e, FERR_PROTO_LENGTH,
			    "QSTREAM: item at byte %zu: LZ4 clen %u past the frame's end", at, it->payload_len);
		break;
	case PK_RAW:
		it->payload_len = FERRY_QPAGE_SIZE;
		if (rd_ptr(r, it->payload_len, &it->payload) != 0)
			return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: item at byte %zu: RAW needs %u bytes",
			    at, FERRY_QPAGE_SIZE);
		break;
	default:
		break;
	}
	/* The QEMU record rebuilt (proto/QEMU.md 2.4): u64 header, the block
	 * id unless CONTINUE, then the page or the zero record's fill byte. */
	it->len = 8 + ((it->rec & FERRY_QREC_CONT) != 0 ? 0 : 1 + (uint32_t)blocks[it->block].id_len) +
	    ((it->rec & FERRY_QREC_DATA) != 0 ? FERRY_QPAGE_SIZE : 1);
	return 0;
}

int
msg_qitem_next(struct rd *r, const struct qitem_block *blocks, uint32_t nblocks,
    struct qitem_block *out_blocks, struct qitem *it, struct ferr *e)
{
	size_t at = r->off;

	memset(it, 0, sizeof(*it));
	rd_u8(r, &it->type);
	if (r->err)
		return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: item at byte %zu truncated", at);
	switch (it->type) {
	case QI_OPAQUE:
		return opaque_next(r, at, it, e);
	case QI_BLOCKS:
		return blocks_next(r, at, nblocks, out_blocks, it, e);
	case QI_PAGE:
		return page_next(r, at, blocks, nblocks, it, e);
	default:
		return ferr_set(e, FERR_PROTO_RANGE, "QSTREAM: item at byte %zu: type %u unknown", at,
		    it->type);
	}
}

int
msg_qreturn_decode(const uint8_t *p, size_t n, struct msg_qreturn *m, struct ferr *e)
{
	struct rd r;
	size_t left;

	memset(m, 0, sizeof(*m));
	rd_init(&r, p, n);
	rd_u64(&r, &m->offset);
	if (r.err)
		return ferr_set(e, FERR_PROTO_LENGTH, "QRETURN: truncated");
	left = rd_left(&r);
	if (left == 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "QRETURN: no data");
	if (left > FERRY_QRETURN_MAX)
		return ferr_set(e, FERR_PROTO_LENGTH, "QRETURN: %zu bytes of data > %u", left,
		    FERRY_QRETURN_MAX);
	/* The whole return path is at most FERRY_QRETURN_MAX bytes (4.18). */
	if (m->offset > FERRY_QRETURN_MAX - left)
		return ferr_set(e, FERR_PROTO_RANGE, "QRETURN: offset %llu + %zu bytes past the maximum %u",
		    (unsigned long long)m->offset, left, FERRY_QRETURN_MAX);
	m->len = (uint32_t)left;
	(void)rd_ptr(&r, left, &m->data);
	return 0;
}

/* ---- encoders ---- */

size_t
msg_qstream_begin(struct wr *w, const struct msg_qstream *m)
{
	size_t at = frame_begin(w, FT_QSTREAM);

	wr_u64(w, m->seq);
	wr_u64(w, m->stream_off);
	wr_u32(w, 0);
	return w->err ? SIZE_MAX : at;
}

/* Each put checks the room first, so a full w is left as it was and the
 * caller can end the frame and start the next one. */
int
msg_qitem_put_opaque(struct wr *w, const uint8_t *p, uint32_t len)
{
	if (wr_left(w) < QI_OPAQUE_HDR || wr_left(w) - QI_OPAQUE_HDR < len)
		return -1;
	wr_u8(w, QI_OPAQUE);
	wr_u32(w, len);
	wr_bytes(w, p, len);
	return w->err ? -1 : 0;
}

int
msg_qitem_put_blocks(struct wr *w, const struct qitem_block *b, uint32_t n)
{
	size_t need = 3;
	uint32_t i;

	if (n > FERRY_QBLOCKS_MAX)
		return -1;
	for (i = 0; i < n; i++)
		need += 1 + (size_t)b[i].id_len + 8;
	if (wr_left(w) < need)
		return -1;
	wr_u8(w, QI_BLOCKS);
	wr_u16(w, (uint16_t)n);
	for (i = 0; i < n; i++) {
		wr_u8(w, b[i].id_len);
		wr_bytes(w, b[i].id, b[i].id_len);
		wr_u64(w, b[i].len);
	}
	return w->err ? -1 : 0;
}

size_t
qitem_page_size(uint8_t kind, uint32_t payload_len)
{
	switch (kind) {
	case PK_REF:
		return QI_PAGE_HDR + QI_REF_LEN;
	case PK_LZ4:
		return QI_PAGE_HDR + 4 + (size_t)payload_len;
	case PK_RAW:
		return QI_PAGE_HDR + (size_t)payload_len;
	default:
		return QI_PAGE_HDR;
	}
}

int
msg_qitem_put_page(struct wr *w, const struct qitem *it)
{
	if (wr_left(w) < qitem_page_size(it->kind, it->payload_len))
		return -1;
	wr_u8(w, QI_PAGE);
	wr_u8(w, it->rec);
	wr_u16(w, it->block);
	wr_u64(w, it->offset);
	wr_u8(w, it->kind);
	switch (it->kind) {
	case PK_REF:
		wr_u16(w, it->src_block);
		wr_u64(w, it->src_offset);
		wr_bytes(w, it->hash, FERRY_HASH_LEN);
		break;
	case PK_LZ4:
		wr_u32(w, it->payload_len);
		wr_bytes(w, it->payload, it->payload_len);
		break;
	case PK_RAW:
		wr_bytes(w, it->payload, it->payload_len);
		break;
	default:
		break;
	}
	return w->err ? -1 : 0;
}

void
msg_qstream_end(struct wr *w, size_t at, uint32_t count)
{
	if (w->err || at == SIZE_MAX)
		return;
	/* count sits after frame header (8) + seq (8) + stream_off (8) */
	wr_put_u32_at(w, at + FERRY_FRAME_HDR_LEN + 16, count);
	frame_end(w, at);
}

int
msg_qreturn_encode(struct wr *w, const struct msg_qreturn *m)
{
	size_t at = frame_begin(w, FT_QRETURN);

	wr_u64(w, m->offset);
	wr_bytes(w, m->data, m->len);
	return frame_finish(w, at);
}
