/* The QEMU stream frame codecs (src/common/msg_qemu.c; proto/PROTOCOL.md
 * 4.17 QSTREAM, 4.18 QRETURN) and MANIFEST's rule for a DK_QEMU device
 * (4.3, src/common/msg.c).
 *
 * Frames are written two ways: with ferry's encoders (msg_qstream_begin,
 * the put functions, msg_qstream_end) and field by field here, from the
 * text of PROTOCOL.md; both must give the same bytes.  A QSTREAM payload
 * is decoded the way the receiver consumes one (like PAGES): the header,
 * count items against the block table, then nothing may be left over.
 *
 * Covered: every item kind round trip; each rule broken once, its error
 * code and the field its message names; limits at their maximum and one
 * over; truncation at every byte of a valid frame; a full writer left
 * unchanged by the put functions. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_lz4.h"
#include "err.h"
#include "ferry_proto.h"
#include "frame.h"
#include "msg.h"
#include "msg_qemu.h"
#include "rd.h"
#include "wr.h"

#define PG FERRY_QPAGE_SIZE
#define BUF_CAP (256u * 1024u)

/* ---- a payload written field by field ---- */

struct pb {
	uint8_t *p;
	struct wr w;
};

static void
pb_init(struct pb *b)
{
	b->p = calloc(1, BUF_CAP);
	assert_non_null(b->p);
	wr_init(&b->w, b->p, BUF_CAP);
}

static void
pb_fini(struct pb *b)
{
	free(b->p);
}

static size_t
pb_len(const struct pb *b)
{
	assert_int_equal(b->w.err, 0);
	return b->w.off;
}

/* QSTREAM header: u64 seq, u64 stream_off, u32 count. */
static void
pb_head(struct pb *b, uint64_t seq, uint64_t off, uint32_t count)
{
	wr_u64(&b->w, seq);
	wr_u64(&b->w, off);
	wr_u32(&b->w, count);
}

static void
pb_opaque(struct pb *b, const void *p, uint32_t len)
{
	wr_u8(&b->w, QI_OPAQUE);
	wr_u32(&b->w, len);
	wr_bytes(&b->w, p, len);
}

/* A BLOCKS entry: u8 id_len, id, u64 len. */
static void
pb_block(struct pb *b, const char *id, size_t id_len, uint64_t len)
{
	wr_u8(&b->w, (uint8_t)id_len);
	wr_bytes(&b->w, id, id_len);
	wr_u64(&b->w, len);
}

/* The PAGE item's fixed part: u8 3, u8 rec, u16 block, u64 offset, u8 kind. */
static void
pb_page(struct pb *b, uint8_t rec, uint16_t block, uint64_t offset, uint8_t kind)
{
	wr_u8(&b->w, QI_PAGE);
	wr_u8(&b->w, rec);
	wr_u16(&b->w, block);
	wr_u64(&b->w, offset);
	wr_u8(&b->w, kind);
}

/* ---- decoding as the receiver consumes a QSTREAM ---- */

#define WALK_ITEMS 64

struct walk {
	struct msg_qstream h;
	struct qitem_block tab[FERRY_QBLOCKS_MAX];
	uint32_t nblocks;
	struct qitem it[WALK_ITEMS];
	uint32_t nit;
};

static struct walk *
walk_new(void)
{
	struct walk *wk = calloc(1, sizeof(*wk));

	assert_non_null(wk);
	return wk;
}

/* The session's table: pc.ram of 16 pages, vga.vram of 4. */
static void
walk_table(struct walk *wk)
{
	memset(wk->tab, 0, sizeof(wk->tab));
	memcpy(wk->tab[0].id, "pc.ram", 7);
	wk->tab[0].id_len = 6;
	wk->tab[0].len = 16 * PG;
	memcpy(wk->tab[1].id, "vga.vram", 9);
	wk->tab[1].id_len = 8;
	wk->tab[1].len = 4 * PG;
	wk->nblocks = 2;
}

/* Header, count items, nothing left over (PROTOCOL.md 3.4, 4.17).  The
 * payload is copied to a heap block of exactly n bytes: a read past it is
 * an ASan error.  Items whose pointers matter are checked by the caller
 * before the next walk (they point into the copy, which is kept in wk). */
static int
walk_run(struct walk *wk, const uint8_t *p, size_t n, uint8_t **keep, struct ferr *e)
{
	uint8_t *copy = malloc(n ? n : 1);
	struct rd r;
	uint32_t i;
	int rc;

	assert_non_null(copy);
	if (n)
		memcpy(copy, p, n);
	*keep = copy;
	wk->nit = 0;
	rd_init(&r, copy, n);
	if ((rc = msg_qstream_decode(&r, &wk->h, e)) != 0)
		return rc;
	for (i = 0; i < wk->h.count; i++) {
		struct qitem it;

		if ((rc = msg_qitem_next(&r, wk->tab, wk->nblocks, wk->tab, &it, e)) != 0)
			return rc;
		if (it.type == QI_BLOCKS)
			wk->nblocks = it.nblocks;
		if (wk->nit < WALK_ITEMS)
			wk->it[wk->nit++] = it;
	}
	if (rd_end(&r) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: %zu bytes after %u items", rd_left(&r),
		    wk->h.count);
	return 0;
}

/* Decode p and expect code, with a message naming what. */
static void
expect_fail(struct walk *wk, const uint8_t *p, size_t n, int code, const char *what)
{
	struct ferr e;
	uint8_t *keep;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = walk_run(wk, p, n, &keep, &e);
	free(keep);
	if (rc != code)
		fail_msg("expected %s, got %s (\"%s\")", ferr_name(code), ferr_name(rc), e.msg);
	assert_int_equal(e.code, code);
	if (strstr(e.msg, what) == NULL)
		fail_msg("message \"%s\" does not name \"%s\"", e.msg, what);
	if (strncmp(e.msg, "QSTREAM", 7) != 0)
		fail_msg("message \"%s\" does not name the frame", e.msg);
}

/* One item after a header of count 1, decoded against wk's table. */
static void
expect_item_fail(struct walk *wk, struct pb *b, int code, const char *what)
{
	expect_fail(wk, b->p, pb_len(b), code, what);
	pb_fini(b);
}

static void
page_data(uint8_t *p, unsigned salt)
{
	unsigned i;

	for (i = 0; i < PG; i++)
		p[i] = (uint8_t)(i * 7 + salt * 13 + (i >> 8));
}

/* ---- the frame table ---- */

static void
test_frame_table(void **state)
{
	const struct frame_info *q = frame_info(FT_QSTREAM), *r = frame_info(FT_QRETURN);
	struct frame_hdr h;
	struct ferr e;
	uint8_t hdr[8] = { FT_QSTREAM, 0, 0, 0, 0, 0, 0, 26 };

	(void)state;
	assert_non_null(q);
	assert_non_null(r);
	assert_string_equal(q->name, "QSTREAM");
	assert_string_equal(r->name, "QRETURN");
	assert_int_equal(q->min_len, 20 + FERRY_QITEM_MIN);
	assert_int_equal(q->max_len, 0);
	assert_int_equal(q->dir, FDIR_S2R);
	assert_int_equal(r->min_len, 9);
	assert_int_equal(r->max_len, 8 + FERRY_QRETURN_MAX);
	assert_int_equal(r->dir, FDIR_R2S);
	memset(&e, 0, sizeof(e));
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &h, &e), 0);
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e),
	    FERR_PROTO_TYPE);
	hdr[7] = 25;            /* one under the minimum */
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &h, &e),
	    FERR_PROTO_LENGTH);
	/* QRETURN: 9 .. 8 + 1 MiB, receiver to sender */
	hdr[0] = FT_QRETURN;
	hdr[4] = 0, hdr[5] = 0x10, hdr[6] = 0, hdr[7] = 8;      /* 8 + 1048576 */
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e), 0);
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &h, &e),
	    FERR_PROTO_TYPE);
	hdr[7] = 9;
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e),
	    FERR_PROTO_LENGTH);
	hdr[5] = 0, hdr[7] = 8;
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e),
	    FERR_PROTO_LENGTH);
}

/* ---- round trips ---- */

/* Every item kind in one frame, written by the encoders and by hand: the
 * same bytes; decoded: the same fields; encoded again: the same bytes. */
static void
test_every_item_round_trip(void **state)
{
	static const uint8_t opaque[10] = { 'Q', 'E', 'V', 'M', 0, 0, 0, 3, 7, 0 };
	struct qitem_block blocks[2];
	struct msg_qstream h = { 5, 123456789, 0 };
	uint8_t *raw = malloc(PG), *lz = malloc(PG), hash[FERRY_HASH_LEN];
	uint32_t clen;
	struct qitem pages[5];
	struct pb b;
	struct walk *wk = walk_new();
	uint8_t *enc = malloc(BUF_CAP), *enc2 = malloc(BUF_CAP), *keep;
	struct wr w;
	struct ferr e;
	size_t at, n, i;

	(void)state;
	assert_non_null(raw);
	assert_non_null(lz);
	assert_non_null(enc);
	assert_non_null(enc2);
	page_data(raw, 1);
	memset(lz, 'a', PG);
	memcpy(lz + 100, "a little text in the middle", 27);
	for (i = 0; i < FERRY_HASH_LEN; i++)
		hash[i] = (uint8_t)(0xf0 + i);
	memset(blocks, 0, sizeof(blocks));
	memcpy(blocks[0].id, "pc.ram", 7);
	blocks[0].id_len = 6;
	blocks[0].len = 16 * PG;
	memcpy(blocks[1].id, "/rom@etc/acpi/tables", 21);
	blocks[1].id_len = 20;
	blocks[1].len = 32 * PG;
	{
		/* an lz4 block of the text page, compressed with ferry's codec
		 * only to get valid bytes: the codec does not look inside */
		static uint8_t cbuf[PG];

		clen = codec_lz4_encode(lz, PG, cbuf, sizeof(cbuf));
		assert_true(clen > 0 && clen < PG);
		memcpy(lz, cbuf, clen);
	}
	memset(pages, 0, sizeof(pages));
	/* a data record with the block id, sent RAW */
	pages[0] = (struct qitem){ .type = QI_PAGE, .rec = FERRY_QREC_DATA, .block = 0, .offset = 3 * PG,
		.kind = PK_RAW, .payload = raw, .payload_len = PG };
	/* CONTINUE, the next page, LZ4 */
	pages[1] = (struct qitem){ .type = QI_PAGE, .rec = FERRY_QREC_DATA | FERRY_QREC_CONT, .block = 0,
		.offset = 4 * PG, .kind = PK_LZ4, .payload = lz, .payload_len = clen };
	/* a QEMU zero record: ferry's ZERO */
	pages[2] = (struct qitem){ .type = QI_PAGE, .rec = 0, .block = 1, .offset = 31 * PG,
		.kind = PK_ZERO };
	/* a data record of zeros: stays a data record, sent as ZERO */
	pages[3] = (struct qitem){ .type = QI_PAGE, .rec = FERRY_QREC_DATA | FERRY_QREC_CONT, .block = 1,
		.offset = 0, .kind = PK_ZERO };
	/* a reference to the RAW page above */
	pages[4] = (struct qitem){ .type = QI_PAGE, .rec = FERRY_QREC_DATA, .block = 0, .offset = 15 * PG,
		.kind = PK_REF, .src_block = 0, .src_offset = 3 * PG };
	memcpy(pages[4].hash, hash, FERRY_HASH_LEN);

	/* ferry's encoders */
	wr_init(&w, enc, BUF_CAP);
	at = msg_qstream_begin(&w, &h);
	assert_int_equal(at, 0);
	assert_int_equal(msg_qitem_put_blocks(&w, blocks, 2), 0);
	assert_int_equal(msg_qitem_put_opaque(&w, opaque, sizeof(opaque)), 0);
	for (i = 0; i < 5; i++)
		assert_int_equal(msg_qitem_put_page(&w, &pages[i]), 0);
	msg_qstream_end(&w, at, 7);
	assert_int_equal(w.err, 0);
	n = w.off;

	/* by hand, from 4.17 */
	pb_init(&b);
	pb_head(&b, 5, 123456789, 7);
	wr_u8(&b.w, QI_BLOCKS);
	wr_u16(&b.w, 2);
	pb_block(&b, "pc.ram", 6, 16 * PG);
	pb_block(&b, "/rom@etc/acpi/tables", 20, 32 * PG);
	pb_opaque(&b, opaque, sizeof(opaque));
	pb_page(&b, 1, 0, 3 * PG, PK_RAW);
	wr_bytes(&b.w, raw, PG);
	pb_page(&b, 3, 0, 4 * PG, PK_LZ4);
	wr_u32(&b.w, clen);
	wr_bytes(&b.w, lz, clen);
	pb_page(&b, 0, 1, 31 * PG, PK_ZERO);
	pb_page(&b, 3, 1, 0, PK_ZERO);
	pb_page(&b, 1, 0, 15 * PG, PK_REF);
	wr_u16(&b.w, 0);
	wr_u64(&b.w, 3 * PG);
	wr_bytes(&b.w, hash, FERRY_HASH_LEN);
	assert_int_equal(n, FERRY_FRAME_HDR_LEN + pb_len(&b));
	assert_int_equal(enc[0], FT_QSTREAM);
	assert_int_equal(enc[4] << 24 | enc[5] << 16 | enc[6] << 8 | enc[7], pb_len(&b));
	assert_memory_equal(enc + FERRY_FRAME_HDR_LEN, b.p, pb_len(&b));
	/* sizes the sender plans with */
	assert_int_equal(qitem_page_size(PK_ZERO, 0), 13);
	assert_int_equal(qitem_page_size(PK_REF, 0), 13 + 2 + 8 + 16);
	assert_int_equal(qitem_page_size(PK_LZ4, clen), 13 + 4 + clen);
	assert_int_equal(qitem_page_size(PK_RAW, PG), 13 + PG);

	/* decoded */
	memset(&e, 0, sizeof(e));
	assert_int_equal(walk_run(wk, b.p, pb_len(&b), &keep, &e), 0);
	assert_int_equal(wk->h.seq, 5);
	assert_int_equal(wk->h.stream_off, 123456789);
	assert_int_equal(wk->h.count, 7);
	assert_int_equal(wk->nit, 7);
	assert_int_equal(wk->nblocks, 2);
	assert_string_equal(wk->tab[0].id, "pc.ram");
	assert_int_equal(wk->tab[0].len, 16 * PG);
	assert_string_equal(wk->tab[1].id, "/rom@etc/acpi/tables");
	assert_int_equal(wk->tab[1].id_len, 20);
	assert_int_equal(wk->it[0].type, QI_BLOCKS);
	assert_int_equal(wk->it[0].nblocks, 2);
	assert_int_equal(wk->it[0].len, 0);
	assert_int_equal(wk->it[1].type, QI_OPAQUE);
	assert_int_equal(wk->it[1].len, sizeof(opaque));
	assert_memory_equal(wk->it[1].data, opaque, sizeof(opaque));
	for (i = 0; i < 5; i++) {
		const struct qitem *a = &wk->it[2 + i], *x = &pages[i];

		assert_int_equal(a->type, QI_PAGE);
		assert_int_equal(a->rec, x->rec);
		assert_int_equal(a->block, x->block);
		assert_int_equal(a->offset, x->offset);
		assert_int_equal(a->kind, x->kind);
		assert_int_equal(a->payload_len, x->payload_len);
		if (x->payload_len)
			assert_memory_equal(a->payload, x->payload, x->payload_len);
		else
			assert_null(a->payload);
	}
	assert_int_equal(wk->it[6].src_block, 0);
	assert_int_equal(wk->it[6].src_offset, 3 * PG);
	assert_memory_equal(wk->it[6].hash, hash, FERRY_HASH_LEN);
	/* record lengths: 8 + id (1 + len) unless CONTINUE + 4096 or 1 */
	assert_int_equal(wk->it[2].len, 8 + 1 + 6 + PG);
	assert_int_equal(wk->it[3].len, 8 + PG);
	assert_int_equal(wk->it[4].len, 8 + 1 + 20 + 1);
	assert_int_equal(wk->it[5].len, 8 + PG);
	assert_int_equal(wk->it[6].len, 8 + 1 + 6 + PG);

	/* encoded again from what decoded */
	wr_init(&w, enc2, BUF_CAP);
	at = msg_qstream_begin(&w, &wk->h);
	assert_int_equal(msg_qitem_put_blocks(&w, wk->tab, wk->it[0].nblocks), 0);
	assert_int_equal(msg_qitem_put_opaque(&w, wk->it[1].data, wk->it[1].len), 0);
	for (i = 2; i < 7; i++)
		assert_int_equal(msg_qitem_put_page(&w, &wk->it[i]), 0);
	msg_qstream_end(&w, at, wk->h.count);
	assert_int_equal(w.err, 0);
	assert_int_equal(w.off, n);
	assert_memory_equal(enc2, enc, n);

	free(keep);
	pb_fini(&b);
	free(wk);
	free(enc);
	free(enc2);
	free(raw);
	free(lz);
}

/* The record length for each rec and id length (proto/QEMU.md 2.4). */
static void
test_record_lengths(void **state)
{
	static const uint8_t recs[4] = { 0, FERRY_QREC_DATA, FERRY_QREC_CONT,
		FERRY_QREC_DATA | FERRY_QREC_CONT };
	static const size_t ids[3] = { 1, 6, 255 };
	char id[256];
	unsigned r, k;

	(void)state;
	memset(id, 'x', sizeof(id));
	for (k = 0; k < 3; k++) {
		for (r = 0; r < 4; r++) {
			struct walk *wk = walk_new();
			struct pb b;
			struct ferr e;
			uint8_t *keep;
			uint32_t want;

			pb_init(&b);
			pb_head(&b, 1, 0, 2);
			wr_u8(&b.w, QI_BLOCKS);
			wr_u16(&b.w, 1);
			pb_block(&b, id, ids[k], PG);
			pb_page(&b, recs[r], 0, 0, PK_ZERO);
			memset(&e, 0, sizeof(e));
			assert_int_equal(walk_run(wk, b.p, pb_len(&b), &keep, &e), 0);
			want = 8 + ((recs[r] & FERRY_QREC_CONT) ? 0 : 1 + (uint32_t)ids[k]) +
			    ((recs[r] & FERRY_QREC_DATA) ? PG : 1);
			assert_int_equal(wk->it[1].len, want);
			free(keep);
			pb_fini(&b);
			free(wk);
		}
	}
}

/* Limits at their maximum: 4096 items; 256 blocks of 255-byte ids; a
 * block of FERRY_DEVICE_SIZE_MAX; the last page of a block; LZ4 clen
 * 4095; an OPAQUE filling the frame. */
static void
test_limits_accepted(void **state)
{
	struct walk *wk = walk_new();
	struct pb b;
	struct ferr e;
	uint8_t *keep, *buf = calloc(1, PG);
	char id[255];
	uint32_t i;

	(void)state;
	assert_non_null(buf);
	/* 4096 items */
	pb_init(&b);
	pb_head(&b, UINT64_MAX, UINT64_MAX - 1, FERRY_MAX_PAGES_PER_FRAME);
	for (i = 0; i < FERRY_MAX_PAGES_PER_FRAME; i++)
		pb_opaque(&b, "z", 1);
	memset(&e, 0, sizeof(e));
	assert_int_equal(walk_run(wk, b.p, pb_len(&b), &keep, &e), 0);
	assert_int_equal(wk->h.count, FERRY_MAX_PAGES_PER_FRAME);
	assert_int_equal(wk->h.seq, UINT64_MAX);
	free(keep);
	pb_fini(&b);

	/* 256 blocks with 255-byte ids, the last of 2^46 bytes */
	pb_init(&b);
	pb_head(&b, 1, 0, 2);
	wr_u8(&b.w, QI_BLOCKS);
	wr_u16(&b.w, FERRY_QBLOCKS_MAX);
	memset(id, 'b', sizeof(id));
	for (i = 0; i < FERRY_QBLOCKS_MAX; i++) {
		id[0] = (char)(1 + i % 255);        /* any byte but NUL */
		id[1] = (char)('a' + i / 255);
		pb_block(&b, id, sizeof(id), i + 1 == FERRY_QBLOCKS_MAX ? FERRY_DEVICE_SIZE_MAX : PG);
	}
	pb_page(&b, FERRY_QREC_DATA, FERRY_QBLOCKS_MAX - 1, FERRY_DEVICE_SIZE_MAX - PG, PK_LZ4);
	wr_u32(&b.w, PG - 1);
	wr_bytes(&b.w, buf, PG - 1);
	wk->nblocks = 0;
	memset(&e, 0, sizeof(e));
	if (walk_run(wk, b.p, pb_len(&b), &keep, &e) != 0)
		fail_msg("%s", e.msg);
	assert_int_equal(wk->nblocks, FERRY_QBLOCKS_MAX);
	assert_int_equal(wk->tab[FERRY_QBLOCKS_MAX - 1].len, FERRY_DEVICE_SIZE_MAX);
	assert_int_equal(wk->it[1].payload_len, PG - 1);
	assert_int_equal(wk->it[1].len, 8 + 1 + 255 + PG);
	free(keep);
	pb_fini(&b);

	/* an OPAQUE of every byte left in a 1 MiB + 4 KiB payload */
	pb_init(&b);
	free(b.p);
	b.p = calloc(1, FERRY_MAX_FRAME_DEFAULT);
	assert_non_null(b.p);
	wr_init(&b.w, b.p, FERRY_MAX_FRAME_DEFAULT);
	pb_head(&b, 1, 0, 1);
	wr_u8(&b.w, QI_OPAQUE);
	wr_u32(&b.w, FERRY_MAX_FRAME_DEFAULT - 20 - 5);
	b.w.off = FERRY_MAX_FRAME_DEFAULT;
	wk->nblocks = 0;
	assert_int_equal(walk_run(wk, b.p, pb_len(&b), &keep, &e), 0);
	assert_int_equal(wk->it[0].len, FERRY_MAX_FRAME_DEFAULT - 25);
	free(keep);
	pb_fini(&b);
	free(buf);
	free(wk);
}

/* ---- QSTREAM header ---- */

static void
test_header_rules(void **state)
{
	struct walk *wk = walk_new();
	struct pb b;

	(void)state;
	pb_init(&b);
	pb_head(&b, 0, 0, 1);
	pb_opaque(&b, "x", 1);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "seq 0");

	pb_init(&b);
	pb_head(&b, 1, 0, 0);
	pb_opaque(&b, "x", 1);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "count 0");

	pb_init(&b);
	pb_head(&b, 1, 0, FERRY_MAX_PAGES_PER_FRAME + 1);
	{
		uint32_t i;

		for (i = 0; i <= FERRY_MAX_PAGES_PER_FRAME; i++)
			pb_opaque(&b, "x", 1);
	}
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "count 4097");

	/* count 2, room for one 6-byte item and 5 bytes */
	pb_init(&b);
	pb_head(&b, 1, 0, 2);
	pb_opaque(&b, "x", 1);
	wr_bytes(&b.w, "\1\0\0\0\1", 5);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "count 2 does not fit");

	pb_init(&b);
	pb_head(&b, 1, 0, 1);
	b.w.off = 19;
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "truncated header");

	/* one byte left over after the last item */
	pb_init(&b);
	pb_head(&b, 1, 0, 1);
	pb_opaque(&b, "x", 1);
	wr_u8(&b.w, 0);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "1 bytes after 1 items");

	/* count 1 but two items */
	pb_init(&b);
	pb_head(&b, 1, 0, 1);
	pb_opaque(&b, "x", 1);
	pb_opaque(&b, "y", 1);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "6 bytes after 1 items");
	free(wk);
}

static void
test_item_type_unknown(void **state)
{
	static const uint8_t types[] = { QI_INVALID, 4, 0xff };
	struct walk *wk = walk_new();
	struct pb b;
	char what[64];
	unsigned i;

	(void)state;
	for (i = 0; i < sizeof(types); i++) {
		pb_init(&b);
		pb_head(&b, 1, 0, 1);
		wr_u8(&b.w, types[i]);
		wr_bytes(&b.w, "\0\0\0\0\1", 5);
		snprintf(what, sizeof(what), "item at byte 20: type %u unknown", types[i]);
		expect_item_fail(wk, &b, FERR_PROTO_RANGE, what);
	}
	free(wk);
}

/* ---- OPAQUE ---- */

static void
test_opaque_rules(void **state)
{
	struct walk *wk = walk_new();
	struct pb b;

	(void)state;
	pb_init(&b);
	pb_head(&b, 1, 0, 1);
	wr_u8(&b.w, QI_OPAQUE);
	wr_u32(&b.w, 0);
	wr_u8(&b.w, 0);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "OPAQUE len 0");

	/* len one past the end of the frame */
	pb_init(&b);
	pb_head(&b, 1, 0, 1);
	wr_u8(&b.w, QI_OPAQUE);
	wr_u32(&b.w, 4);
	wr_bytes(&b.w, "abc", 3);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "OPAQUE len 4 past");

	pb_init(&b);
	pb_head(&b, 1, 0, 1);
	wr_u8(&b.w, QI_OPAQUE);
	wr_u32(&b.w, UINT32_MAX);
	wr_u8(&b.w, 0);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "OPAQUE len 4294967295");

	/* the second of two items is bad: named by its offset, 20 + 6 */
	pb_init(&b);
	pb_head(&b, 1, 0, 2);
	pb_opaque(&b, "x", 1);
	wr_u8(&b.w, QI_OPAQUE);
	wr_u32(&b.w, 0);
	wr_u8(&b.w, 0);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "item at byte 26: OPAQUE len 0");
	free(wk);
}

/* ---- BLOCKS ---- */

/* A frame of one BLOCKS item with n entries from ids/lens. */
static void
blocks_frame(struct pb *b, uint16_t n, const char *const *ids, const uint64_t *lens, uint16_t nent)
{
	uint16_t i;

	pb_init(b);
	pb_head(b, 1, 0, 1);
	wr_u8(&b->w, QI_BLOCKS);
	wr_u16(&b->w, n);
	for (i = 0; i < nent; i++)
		pb_block(b, ids[i], strlen(ids[i]), lens[i]);
}

static void
test_blocks_rules(void **state)
{
	static const char *const two[] = { "pc.ram", "vga.vram" };
	static const char *const dup[] = { "pc.ram", "pc.ram" };
	const uint64_t ok2[] = { 16 * PG, 4 * PG };
	struct walk *wk = walk_new();
	struct pb b;
	uint64_t len;
	uint32_t i;

	(void)state;
	/* the session already has a table */
	walk_table(wk);
	blocks_frame(&b, 2, two, ok2, 2);
	expect_item_fail(wk, &b, FERR_PROTO_STATE, "has a block table (2 blocks)");
	/* and the table is unchanged */
	assert_string_equal(wk->tab[1].id, "vga.vram");
	wk->nblocks = 0;

	blocks_frame(&b, 0, two, ok2, 0);
	wr_bytes(&b.w, "\0\0\0", 3);        /* room enough to be a count problem only */
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "BLOCKS n 0");

	pb_init(&b);
	pb_head(&b, 1, 0, 1);
	wr_u8(&b.w, QI_BLOCKS);
	wr_u16(&b.w, FERRY_QBLOCKS_MAX + 1);
	for (i = 0; i <= FERRY_QBLOCKS_MAX; i++) {
		char id[8];

		snprintf(id, sizeof(id), "b%u", i);
		pb_block(&b, id, strlen(id), PG);
	}
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "BLOCKS n 257");

	/* n 2, one entry */
	blocks_frame(&b, 2, two, ok2, 1);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "BLOCKS n 2 does not fit");

	/* id_len 0 */
	pb_init(&b);
	pb_head(&b, 1, 0, 1);
	wr_u8(&b.w, QI_BLOCKS);
	wr_u16(&b.w, 1);
	wr_u8(&b.w, 0);
	wr_u64(&b.w, PG);
	wr_u8(&b.w, 0);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "block 0 id_len 0");

	/* a NUL byte inside the id */
	pb_init(&b);
	pb_head(&b, 1, 0, 1);
	wr_u8(&b.w, QI_BLOCKS);
	wr_u16(&b.w, 2);
	pb_block(&b, "pc.ram", 6, PG);
	pb_block(&b, "pc\0ram", 6, PG);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "block 1 id has a NUL byte");

	/* lengths: 0, not page aligned, over 2^46, 2^64 - 4096 */
	{
		static const uint64_t bad[] = { 0, PG + 1, PG - 1, FERRY_DEVICE_SIZE_MAX + PG,
			UINT64_MAX - PG + 1 };
		static const char *const one[] = { "pc.ram" };

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			char what[64];

			len = bad[i];
			blocks_frame(&b, 1, one, &len, 1);
			snprintf(what, sizeof(what), "block 0 'pc.ram' len %llu", (unsigned long long)len);
			expect_item_fail(wk, &b, FERR_PROTO_RANGE, what);
		}
	}

	blocks_frame(&b, 2, dup, ok2, 2);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "block 1 id 'pc.ram' repeats block 0");

	/* ids that differ only in length are different */
	{
		static const char *const pre[] = { "pc.ram", "pc.ra" };

		blocks_frame(&b, 2, pre, ok2, 2);
		assert_int_equal(pb_len(&b), 20 + 3 + 15 + 14);
		{
			struct ferr e;
			uint8_t *keep;

			memset(&e, 0, sizeof(e));
			wk->nblocks = 0;
			assert_int_equal(walk_run(wk, b.p, pb_len(&b), &keep, &e), 0);
			assert_string_equal(wk->tab[1].id, "pc.ra");
			free(keep);
		}
		pb_fini(&b);
	}
	free(wk);
}

/* ---- PAGE ---- */

/* One PAGE item against the walk_table blocks. */
static void
page_frame(struct pb *b, uint8_t rec, uint16_t block, uint64_t offset, uint8_t kind)
{
	pb_init(b);
	pb_head(b, 1, 0, 1);
	pb_page(b, rec, block, offset, kind);
}

static void
test_page_rules(void **state)
{
	struct walk *wk = walk_new();
	struct pb b;
	uint8_t zeros[PG];

	(void)state;
	memset(zeros, 0, sizeof(zeros));
	/* no block table yet */
	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_ZERO);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "no BLOCKS item came before");

	walk_table(wk);
	page_frame(&b, 4, 0, 0, PK_ZERO);
	expect_item_fail(wk, &b, FERR_PROTO, "rec 0x04 has unknown bits");
	page_frame(&b, 0x80 | FERRY_QREC_DATA, 0, 0, PK_ZERO);
	expect_item_fail(wk, &b, FERR_PROTO, "rec 0x81");

	page_frame(&b, FERRY_QREC_DATA, 2, 0, PK_ZERO);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "block 2 not in the block table (2 blocks)");
	page_frame(&b, FERRY_QREC_DATA, 0xffff, 0, PK_ZERO);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "block 65535 not in the block table");

	page_frame(&b, FERRY_QREC_DATA, 0, PG + 1, PK_ZERO);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "offset 4097 not a multiple of 4096");
	page_frame(&b, FERRY_QREC_DATA, 0, 16 * PG, PK_ZERO);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "offset 65536 >= length 65536 of block 0 'pc.ram'");
	page_frame(&b, FERRY_QREC_DATA, 1, UINT64_MAX - PG + 1, PK_ZERO);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "'vga.vram'");

	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_INVALID);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "kind 0 unknown");
	page_frame(&b, FERRY_QREC_DATA, 0, 0, 5);
	wr_bytes(&b.w, zeros, 64);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "kind 5 unknown");

	/* a zero record must be ZERO */
	page_frame(&b, 0, 0, 0, PK_RAW);
	wr_bytes(&b.w, zeros, PG);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "zero record, kind 4 is not ZERO");
	page_frame(&b, FERRY_QREC_CONT, 0, 0, PK_LZ4);
	wr_u32(&b.w, 10);
	wr_bytes(&b.w, zeros, 10);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "zero record, kind 3");
	page_frame(&b, 0, 0, 0, PK_REF);
	wr_u16(&b.w, 0);
	wr_u64(&b.w, PG);
	wr_bytes(&b.w, zeros, FERRY_HASH_LEN);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "zero record, kind 2");

	/* REF source */
	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_REF);
	wr_u16(&b.w, 7);
	wr_u64(&b.w, 0);
	wr_bytes(&b.w, zeros, FERRY_HASH_LEN);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "src_block 7 not in the block table");
	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_REF);
	wr_u16(&b.w, 1);
	wr_u64(&b.w, 100);
	wr_bytes(&b.w, zeros, FERRY_HASH_LEN);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "src_offset 100 not a multiple");
	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_REF);
	wr_u16(&b.w, 1);
	wr_u64(&b.w, 4 * PG);
	wr_bytes(&b.w, zeros, FERRY_HASH_LEN);
	expect_item_fail(wk, &b, FERR_PROTO_RANGE, "src_offset 16384 >= length 16384 of block 1");
	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_REF);
	wr_u16(&b.w, 1);
	wr_u64(&b.w, 0);
	wr_bytes(&b.w, zeros, FERRY_HASH_LEN - 1);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "REF truncated");

	/* LZ4: 0 < clen < 4096 */
	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_LZ4);
	wr_u32(&b.w, 0);
	wr_u8(&b.w, 0);
	expect_item_fail(wk, &b, FERR_PROTO_CODEC, "LZ4 clen 0 outside [1, 4096)");
	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_LZ4);
	wr_u32(&b.w, PG);
	wr_bytes(&b.w, zeros, PG);
	expect_item_fail(wk, &b, FERR_PROTO_CODEC, "LZ4 clen 4096");
	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_LZ4);
	wr_u32(&b.w, 100);
	wr_bytes(&b.w, zeros, 99);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "LZ4 clen 100 past the frame's end");
	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_LZ4);
	wr_bytes(&b.w, "\0\0", 2);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "LZ4 clen truncated");

	/* RAW: exactly 4096 bytes */
	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_RAW);
	wr_bytes(&b.w, zeros, PG - 1);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "RAW needs 4096 bytes");
	page_frame(&b, FERRY_QREC_DATA, 0, 0, PK_RAW);
	wr_bytes(&b.w, zeros, PG);
	wr_u8(&b.w, 0);
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "1 bytes after 1 items");

	/* the PAGE's fixed part cut short (count fits: 20 + 12 bytes) */
	pb_init(&b);
	pb_head(&b, 1, 0, 1);
	pb_page(&b, FERRY_QREC_DATA, 0, 0, PK_ZERO);
	b.w.off -= 1;
	expect_item_fail(wk, &b, FERR_PROTO_LENGTH, "PAGE truncated");

	/* the last page of each block is fine */
	{
		struct ferr e;
		uint8_t *keep;

		page_frame(&b, FERRY_QREC_DATA, 1, 3 * PG, PK_RAW);
		wr_bytes(&b.w, zeros, PG);
		memset(&e, 0, sizeof(e));
		assert_int_equal(walk_run(wk, b.p, pb_len(&b), &keep, &e), 0);
		assert_int_equal(wk->it[0].len, 8 + 1 + 8 + PG);
		free(keep);
		pb_fini(&b);
	}
	free(wk);
}

/* A BLOCKS item and pages naming it in the same frame; a table in
 * out_blocks distinct from blocks. */
static void
test_blocks_then_pages_one_frame(void **state)
{
	struct qitem_block *in = calloc(FERRY_QBLOCKS_MAX, sizeof(*in));
	struct qitem_block *out = calloc(FERRY_QBLOCKS_MAX, sizeof(*out));
	struct msg_qstream h;
	struct qitem it;
	struct pb b;
	struct rd r;
	struct ferr e;
	uint32_t nblocks = 0;

	(void)state;
	assert_non_null(in);
	assert_non_null(out);
	pb_init(&b);
	pb_head(&b, 9, 0, 1);
	pb_page(&b, 0, 0, 0, PK_ZERO);                  /* before BLOCKS: refused */
	rd_init(&r, b.p, pb_len(&b));
	memset(&e, 0, sizeof(e));
	assert_int_equal(msg_qstream_decode(&r, &h, &e), 0);
	assert_int_equal(msg_qitem_next(&r, in, nblocks, out, &it, &e), FERR_PROTO_RANGE);
	pb_fini(&b);

	pb_init(&b);
	pb_head(&b, 9, 0, 3);
	wr_u8(&b.w, QI_BLOCKS);
	wr_u16(&b.w, 1);
	pb_block(&b, "pc.ram", 6, 2 * PG);
	pb_page(&b, 0, 0, PG, PK_ZERO);
	pb_page(&b, FERRY_QREC_CONT, 0, 0, PK_ZERO);
	rd_init(&r, b.p, pb_len(&b));
	assert_int_equal(msg_qstream_decode(&r, &h, &e), 0);
	assert_int_equal(msg_qitem_next(&r, in, nblocks, out, &it, &e), 0);
	assert_int_equal(it.type, QI_BLOCKS);
	assert_int_equal(it.nblocks, 1);
	assert_string_equal(out[0].id, "pc.ram");
	assert_int_equal(in[0].id_len, 0);             /* only out_blocks was written */
	nblocks = it.nblocks;
	assert_int_equal(msg_qitem_next(&r, out, nblocks, out, &it, &e), 0);
	assert_int_equal(it.len, 8 + 7 + 1);
	assert_int_equal(msg_qitem_next(&r, out, nblocks, out, &it, &e), 0);
	assert_int_equal(it.len, 8 + 1);
	assert_int_equal(rd_end(&r), 0);
	/* a second BLOCKS, in a later frame: the session has a table */
	pb_fini(&b);
	pb_init(&b);
	wr_u8(&b.w, QI_BLOCKS);
	wr_u16(&b.w, 1);
	pb_block(&b, "pc.ram", 6, 2 * PG);
	rd_init(&r, b.p, pb_len(&b));
	assert_int_equal(msg_qitem_next(&r, out, nblocks, out, &it, &e), FERR_PROTO_STATE);
	assert_non_null(strstr(e.msg, "BLOCKS"));
	pb_fini(&b);
	free(in);
	free(out);
}

/* ---- truncation at every byte ---- */

static void
test_truncated_everywhere(void **state)
{
	struct walk *wk = walk_new();
	uint8_t raw[PG], hash[FERRY_HASH_LEN];
	struct frame_hdr fh;
	struct pb b;
	struct wr w;
	size_t n, full, at;
	uint8_t *frame = malloc(BUF_CAP);

	(void)state;
	assert_non_null(frame);
	page_data(raw, 3);
	memset(hash, 0x5a, sizeof(hash));
	pb_init(&b);
	pb_head(&b, 2, 4096, 6);
	wr_u8(&b.w, QI_BLOCKS);
	wr_u16(&b.w, 2);
	pb_block(&b, "pc.ram", 6, 4 * PG);
	pb_block(&b, "vga", 3, PG);
	pb_opaque(&b, "\x08\x00\x01", 3);
	pb_page(&b, FERRY_QREC_DATA, 0, PG, PK_RAW);
	wr_bytes(&b.w, raw, PG);
	pb_page(&b, FERRY_QREC_DATA | FERRY_QREC_CONT, 0, 2 * PG, PK_LZ4);
	wr_u32(&b.w, 7);
	wr_bytes(&b.w, "\x70\x61\x62\x63\x64\x65\x66", 7);
	pb_page(&b, 0, 1, 0, PK_ZERO);
	pb_page(&b, FERRY_QREC_DATA, 0, 3 * PG, PK_REF);
	wr_u16(&b.w, 0);
	wr_u64(&b.w, PG);
	wr_bytes(&b.w, hash, sizeof(hash));
	full = pb_len(&b);
	{
		struct ferr e;
		uint8_t *keep;

		memset(&e, 0, sizeof(e));
		wk->nblocks = 0;
		assert_int_equal(walk_run(wk, b.p, full, &keep, &e), 0);
		free(keep);
	}
	for (n = 0; n < full; n++) {
		struct ferr e;
		uint8_t *keep;
		int rc;

		memset(&e, 0, sizeof(e));
		wk->nblocks = 0;
		rc = walk_run(wk, b.p, n, &keep, &e);
		free(keep);
		if (rc >= 0 || rc == FERR_NEED_MORE || e.code != rc || e.msg[0] == '\0' ||
		    strncmp(e.msg, "QSTREAM", 7) != 0)
			fail_msg("cut at %zu of %zu: rc %d (%s) \"%s\"", n, full, rc, ferr_name(rc), e.msg);
	}
	/* the whole frame cut anywhere: the header asks for more */
	wr_init(&w, frame, BUF_CAP);
	at = frame_begin(&w, FT_QSTREAM);
	wr_bytes(&w, b.p, full);
	frame_end(&w, at);
	for (n = 0; n < FERRY_FRAME_HDR_LEN; n++) {
		struct ferr e;

		memset(&e, 0, sizeof(e));
		assert_int_equal(frame_decode_hdr(frame, n, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &fh, &e),
		    FERR_NEED_MORE);
	}
	{
		struct ferr e;

		memset(&e, 0, sizeof(e));
		assert_int_equal(frame_decode_hdr(frame, w.off, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &fh, &e), 0);
		assert_int_equal(fh.len, full);
	}
	free(frame);
	pb_fini(&b);
	free(wk);
}

/* ---- encoders with no room ---- */

static void
test_put_without_room(void **state)
{
	uint8_t buf[64], page[PG];
	struct qitem_block blk[3];
	struct qitem it;
	struct msg_qstream h = { 1, 0, 0 };
	struct wr w;
	size_t at, off;

	(void)state;
	memset(page, 1, sizeof(page));
	memset(blk, 0, sizeof(blk));
	memcpy(blk[0].id, "pc.ram", 7);
	blk[0].id_len = 6;
	blk[0].len = PG;
	blk[1] = blk[0];
	blk[1].id[0] = 'P';
	blk[2] = blk[0];
	blk[2].id[1] = 'C';
	wr_init(&w, buf, sizeof(buf));
	at = msg_qstream_begin(&w, &h);
	assert_int_equal(at, 0);
	off = w.off;
	assert_int_equal(off, 28);
	/* 64 - 28 = 36 bytes left */
	assert_int_equal(msg_qitem_put_opaque(&w, page, 32), -1);
	assert_int_equal(w.off, off);
	assert_int_equal(w.err, 0);
	assert_int_equal(msg_qitem_put_blocks(&w, blk, 3), -1);     /* 3 + 3 * 15 = 48 */
	assert_int_equal(w.off, off);
	memset(&it, 0, sizeof(it));
	it.type = QI_PAGE;
	it.kind = PK_RAW;
	it.payload = page;
	it.payload_len = PG;
	assert_int_equal(msg_qitem_put_page(&w, &it), -1);
	assert_int_equal(w.off, off);
	it.kind = PK_REF;
	it.payload = NULL;
	it.payload_len = 0;
	assert_int_equal(msg_qitem_put_page(&w, &it), -1);          /* 39 > 36 */
	assert_int_equal(w.off, off);
	assert_int_equal(w.err, 0);
	/* what fits still goes in, exactly to the last byte */
	assert_int_equal(msg_qitem_put_opaque(&w, page, 31), 0);
	assert_int_equal(w.off, sizeof(buf));
	assert_int_equal(msg_qitem_put_opaque(&w, page, 1), -1);
	assert_int_equal(w.err, 0);
	msg_qstream_end(&w, at, 1);
	assert_int_equal(buf[27], 1);
	assert_int_equal(buf[7], sizeof(buf) - 8);
	/* more blocks than a BLOCKS item holds */
	{
		struct qitem_block *many = calloc(FERRY_QBLOCKS_MAX + 1, sizeof(*many));
		uint8_t *big = malloc(BUF_CAP);
		uint32_t i;

		assert_non_null(many);
		assert_non_null(big);
		for (i = 0; i <= FERRY_QBLOCKS_MAX; i++) {
			many[i].id_len = 1;
			many[i].id[0] = 'a';
			many[i].len = PG;
		}
		wr_init(&w, big, BUF_CAP);
		assert_int_equal(msg_qitem_put_blocks(&w, many, FERRY_QBLOCKS_MAX + 1), -1);
		assert_int_equal(w.off, 0);
		free(many);
		free(big);
	}
	/* begin without room for the headers */
	wr_init(&w, buf, 27);
	assert_int_equal(msg_qstream_begin(&w, &h), SIZE_MAX);
}

/* Blocks that fit to the byte are written. */
static void
test_put_blocks_exact_room(void **state)
{
	uint8_t buf[33];
	struct qitem_block blk[2];
	struct wr w;

	(void)state;
	memset(blk, 0, sizeof(blk));
	memcpy(blk[0].id, "pc.ram", 7);
	blk[0].id_len = 6;
	blk[0].len = PG;
	memcpy(blk[1].id, "pc.rom", 7);
	blk[1].id_len = 6;
	blk[1].len = 2 * PG;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_qitem_put_blocks(&w, blk, 2), 0);
	assert_int_equal(w.off, 33);
	wr_init(&w, buf, sizeof(buf) - 1);
	assert_int_equal(msg_qitem_put_blocks(&w, blk, 2), -1);
	assert_int_equal(w.off, 0);
	assert_int_equal(w.err, 0);
}

/* ---- QRETURN ---- */

static void
test_qreturn_round_trip(void **state)
{
	static const uint8_t shut[6] = { 0, 1, 0, 4, 0, 0 };   /* QEMU's SHUT, a u16 type, u16 len */
	uint8_t buf[64], *big = malloc(FERRY_QRETURN_MAX + 64), *data = calloc(1, FERRY_QRETURN_MAX);
	struct msg_qreturn m = { 0, shut, sizeof(shut) }, d;
	struct ferr e;
	struct wr w;

	(void)state;
	assert_non_null(big);
	assert_non_null(data);
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_qreturn_encode(&w, &m), 0);
	assert_int_equal(w.off, 8 + 8 + 6);
	assert_int_equal(buf[0], FT_QRETURN);
	assert_int_equal(buf[7], 14);
	assert_memory_equal(buf + 16, shut, 6);
	memset(&e, 0, sizeof(e));
	assert_int_equal(msg_qreturn_decode(buf + 8, 14, &d, &e), 0);
	assert_int_equal(d.offset, 0);
	assert_int_equal(d.len, 6);
	assert_ptr_equal(d.data, buf + 16);

	/* at the maximum: offset + len = 1 MiB */
	m.offset = FERRY_QRETURN_MAX - 6;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_qreturn_encode(&w, &m), 0);
	assert_int_equal(msg_qreturn_decode(buf + 8, 14, &d, &e), 0);
	assert_int_equal(d.offset, FERRY_QRETURN_MAX - 6);
	/* one over */
	m.offset++;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_qreturn_encode(&w, &m), 0);
	assert_int_equal(msg_qreturn_decode(buf + 8, 14, &d, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "QRETURN: offset 1048571"));
	m.offset = UINT64_MAX;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(msg_qreturn_encode(&w, &m), 0);
	assert_int_equal(msg_qreturn_decode(buf + 8, 14, &d, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "offset"));

	/* the whole return path in one frame */
	m.offset = 0;
	m.data = data;
	m.len = FERRY_QRETURN_MAX;
	wr_init(&w, big, FERRY_QRETURN_MAX + 64);
	assert_int_equal(msg_qreturn_encode(&w, &m), 0);
	assert_int_equal(msg_qreturn_decode(big + 8, 8 + FERRY_QRETURN_MAX, &d, &e), 0);
	assert_int_equal(d.len, FERRY_QRETURN_MAX);
	/* one byte more data than a return path holds */
	assert_int_equal(msg_qreturn_decode(big + 8, 8 + FERRY_QRETURN_MAX + 1, &d, &e),
	    FERR_PROTO_LENGTH);
	assert_non_null(strstr(e.msg, "QRETURN: 1048577 bytes of data"));
	free(big);
	free(data);
}

static void
test_qreturn_rules(void **state)
{
	static const uint8_t p[9] = { 0, 0, 0, 0, 0, 0, 0, 5, 0x42 };
	struct msg_qreturn d;
	struct ferr e;
	size_t n;

	(void)state;
	memset(&e, 0, sizeof(e));
	assert_int_equal(msg_qreturn_decode(p, 8, &d, &e), FERR_PROTO_LENGTH);
	assert_non_null(strstr(e.msg, "QRETURN: no data"));
	for (n = 0; n < 8; n++) {
		uint8_t *cut = malloc(n ? n : 1);

		assert_non_null(cut);
		memcpy(cut, p, n);
		memset(&e, 0, sizeof(e));
		assert_int_equal(msg_qreturn_decode(cut, n, &d, &e), FERR_PROTO_LENGTH);
		assert_int_equal(e.code, FERR_PROTO_LENGTH);
		assert_non_null(strstr(e.msg, "QRETURN: truncated"));
		free(cut);
	}
	assert_int_equal(msg_qreturn_decode(p, 9, &d, &e), 0);
	assert_int_equal(d.offset, 5);
	assert_int_equal(d.len, 1);
	assert_int_equal(d.data[0], 0x42);
}

/* ---- MANIFEST with a QEMU device (4.3) ---- */

struct rawdev {
	uint32_t id;
	uint8_t kind;
	uint32_t unit;
	uint64_t size;
	const char *name;
};

static size_t
raw_manifest(uint8_t *buf, size_t cap, uint64_t state_size, const char *sname,
    const struct rawdev *d, uint32_t nd)
{
	struct wr w;
	uint32_t i;

	wr_init(&w, buf, cap);
	wr_u32(&w, nd);
	wr_u64(&w, state_size);
	wr_u16(&w, (uint16_t)strlen(sname));
	wr_bytes(&w, sname, strlen(sname));
	for (i = 0; i < nd; i++) {
		wr_u32(&w, d[i].id);
		wr_u8(&w, d[i].kind);
		wr_u8(&w, 0);
		wr_u16(&w, (uint16_t)strlen(d[i].name));
		wr_u32(&w, d[i].unit);
		wr_u64(&w, d[i].size);
		wr_u64(&w, 0);
		wr_u64(&w, 0);
		wr_bytes(&w, d[i].name, strlen(d[i].name));
	}
	assert_int_equal(w.err, 0);
	return w.off;
}

static void
expect_manifest(const struct rawdev *d, uint32_t nd, uint64_t state_size, const char *sname,
    int code, const char *what)
{
	static uint8_t buf[4096];
	struct msg_manifest *m = calloc(1, sizeof(*m));
	struct ferr e;
	size_t n = raw_manifest(buf, sizeof(buf), state_size, sname, d, nd);
	int rc;

	assert_non_null(m);
	memset(&e, 0, sizeof(e));
	rc = msg_manifest_decode(buf, n, m, &e);
	if (rc != code)
		fail_msg("MANIFEST: expected %s, got %s (\"%s\")", ferr_name(code), ferr_name(rc), e.msg);
	if (code == 0) {
		assert_int_equal(m->ndev, nd);
		assert_int_equal(m->dev[0].kind, d[0].kind);
	} else if (strstr(e.msg, what) == NULL) {
		fail_msg("message \"%s\" does not name \"%s\"", e.msg, what);
	}
	free(m);
}

static void
test_manifest_qemu_device(void **state)
{
	struct rawdev q = { 1, DK_QEMU, PG, 1ull << 30, "vm" };
	struct rawdev mem = { 2, DK_MEMORY, PG, 1u << 20, "mem" };
	struct rawdev two[2];

	(void)state;
	expect_manifest(&q, 1, 0, "", 0, NULL);
	q.size = 1;                     /* informational: any size > 0 */
	expect_manifest(&q, 1, 0, "", 0, NULL);
	/* A guest larger than the 2^24-unit total of image sessions (64 GiB
	 * of 4 KiB pages): the receiver keeps no per-unit tables for it. */
	q.size = 256ull << 30;
	expect_manifest(&q, 1, 0, "", 0, NULL);
	q.size = (uint64_t)UINT32_MAX * PG + PG;    /* 2^32 units: over the per-device limit */
	expect_manifest(&q, 1, 0, "", FERR_PROTO_RANGE, "units");
	q.size = 0;
	expect_manifest(&q, 1, 0, "", FERR_PROTO_RANGE, "size 0");
	q.size = 1ull << 30;
	q.unit = 65536;
	expect_manifest(&q, 1, 0, "", FERR_PROTO_RANGE, "unit 65536, must be 4096");
	q.unit = PG;
	expect_manifest(&q, 1, 100, "vm.state", FERR_PROTO_RANGE, "state_size 100");
	two[0] = q;
	two[1] = mem;
	expect_manifest(two, 2, 0, "", FERR_PROTO_RANGE, "ndev 2");
	two[0] = mem;
	two[1] = q;
	two[1].id = 3;
	expect_manifest(two, 2, 0, "", FERR_PROTO_RANGE, "device 3 kind 3 (QEMU) with ndev 2");
	q.kind = 4;
	expect_manifest(&q, 1, 0, "", FERR_PROTO_RANGE, "kind 4 unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_table),
		cmocka_unit_test(test_every_item_round_trip),
		cmocka_unit_test(test_record_lengths),
		cmocka_unit_test(test_limits_accepted),
		cmocka_unit_test(test_header_rules),
		cmocka_unit_test(test_item_type_unknown),
		cmocka_unit_test(test_opaque_rules),
		cmocka_unit_test(test_blocks_rules),
		cmocka_unit_test(test_page_rules),
		cmocka_unit_test(test_blocks_then_pages_one_frame),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_put_without_room),
		cmocka_unit_test(test_put_blocks_exact_room),
		cmocka_unit_test(test_qreturn_round_trip),
		cmocka_unit_test(test_qreturn_rules),
		cmocka_unit_test(test_manifest_qemu_device),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
