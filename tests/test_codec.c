/* The pure codecs: rd/wr, the frame header and table, every message's
 * encoder and decoder, the lz4 page codec and the page hashes.
 *
 * Boundaries are spelled out (one byte short, exact, one over; length at
 * its maximum) and every decoder is fed every truncation of a valid
 * payload, each copied into a buffer of exactly that size so ASan sees any
 * read past it. */
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
#include "frame.h"
#include "msg.h"
#include "pagehash.h"
#include "rd.h"
#include "wr.h"

#include "testutil.h"

/* ---- helpers ---- */

/* Check the frame in b is exactly one frame of `type` acceptable in
 * direction `dir`, and return its payload. */
static const uint8_t *
payload_of(const struct fbuf *b, uint8_t type, uint8_t dir, size_t *n)
{
	struct frame_hdr h;
	struct ferr e = { 0 };

	assert_int_equal(frame_decode_hdr(b->p, b->len, FERRY_MAX_FRAME_LIMIT, dir, &h, &e), 0);
	assert_int_equal(h.type, type);
	assert_int_equal(b->len, FERRY_FRAME_HDR_LEN + h.len);
	*n = h.len;
	return b->p + FERRY_FRAME_HDR_LEN;
}

typedef int (*decode_fn)(const uint8_t *p, size_t n, struct ferr *e);

/* Every proper prefix of a valid payload, and the payload plus one byte,
 * must be refused with PROTO_LENGTH (section 3.4). */
static void
check_truncations(decode_fn dec, const uint8_t *payload, size_t n)
{
	struct ferr e = { 0 };
	uint8_t *copy;
	size_t k;
	int rc;

	assert_int_equal(dec(payload, n, &e), 0);
	for (k = 0; k < n; k++) {
		copy = malloc(k ? k : 1);
		assert_non_null(copy);
		memcpy(copy, payload, k);
		ferr_clear(&e);
		rc = dec(k ? copy : NULL, k, &e);
		if (rc == 0)
			fail_msg("a %zu-byte prefix of a %zu-byte payload decoded", k, n);
		/* Section 3.4: a payload shorter than its fields is PROTO_LENGTH. */
		if (rc != FERR_PROTO_LENGTH)
			fail_msg("a %zu-byte prefix of a %zu-byte payload: %s (%s), not PROTO_LENGTH",
			    k, n, ferr_name(rc), e.msg);
		assert_int_equal(e.code, rc);
		free(copy);
	}
	copy = malloc(n + 1);
	assert_non_null(copy);
	memcpy(copy, payload, n);
	copy[n] = 0;
	rc = dec(copy, n + 1, &e);
	assert_int_equal(rc, FERR_PROTO_LENGTH);
	free(copy);
}

static int dec_hello(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_hello m;

	return msg_hello_decode(p, n, &m, e);
}

static int dec_welcome(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_welcome m;

	return msg_welcome_decode(p, n, &m, e);
}

static int dec_manifest(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_manifest *m = calloc(1, sizeof(*m));
	int rc;

	assert_non_null(m);
	rc = msg_manifest_decode(p, n, m, e);
	free(m);
	return rc;
}

static int dec_accept(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_accept m;

	return msg_accept_decode(p, n, &m, e);
}

static int dec_refuse(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_text m;

	return msg_refuse_decode(p, n, &m, e);
}

static int dec_error(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_text m;

	return msg_error_decode(p, n, &m, e);
}

static int dec_ack(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_seq m;

	return msg_seq_decode(FT_ACK, p, n, &m, e);
}

static int dec_state(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_state m;

	return msg_state_decode(p, n, &m, e);
}

static int dec_commit(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_commit m;

	return msg_commit_decode(p, n, &m, e);
}

/* The PAGES test device: 3 full 4 KiB units and a last one of 100 bytes. */
static const struct dev_desc pdev = {
	.id = 7, .kind = DK_MEMORY, .unit = 4096, .size = 3 * 4096 + 100, .name = "mem",
};

/* Decode a whole PAGES payload as the receiver does: header, count
 * entries, nothing left over.  Entries go to pe[0..maxpe). */
static int
decode_pages_all(const uint8_t *p, size_t n, struct msg_pages *ph, struct page_entry *pe,
    uint32_t maxpe, struct ferr *e)
{
	struct page_entry tmp;
	struct rd r;
	uint32_t i;
	int rc;

	rd_init(&r, p, n);
	if ((rc = msg_pages_decode(&r, ph, e)) != 0)
		return rc;
	for (i = 0; i < ph->count; i++) {
		memset(&tmp, 0, sizeof(tmp));
		if ((rc = msg_page_next(&r, &pdev, &tmp, e)) != 0)
			return rc;
		if (i < maxpe)
			pe[i] = tmp;
	}
	if (rd_end(&r) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "PAGES: trailing bytes");
	return 0;
}

static int dec_pages(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_pages ph;

	return decode_pages_all(p, n, &ph, NULL, 0, e);
}

/* A raw PAGES payload header (no frame header). */
static void
raw_pages_hdr(struct wr *w, uint64_t seq, uint32_t dev, uint32_t round, uint32_t count)
{
	wr_u64(w, seq);
	wr_u32(w, dev);
	wr_u32(w, round);
	wr_u32(w, count);
}

/* Decode one entry of a raw PAGES payload built in buf. */
static int
one_entry(const uint8_t *buf, size_t n, struct page_entry *pe, struct ferr *e)
{
	struct msg_pages ph;
	struct rd r;
	int rc;

	rd_init(&r, buf, n);
	if ((rc = msg_pages_decode(&r, &ph, e)) != 0)
		return rc;
	return msg_page_next(&r, &pdev, pe, e);
}

/* A manifest written field by field, so tests can set what the encoder
 * would never produce. */
struct rawdev {
	uint32_t id;
	uint8_t kind;
	uint8_t rsv;
	uint16_t name_len;
	uint32_t unit;
	uint64_t size;
	const char *name;       /* at least name_len bytes */
};

static struct rawdev
good_dev(uint32_t id, const char *name)
{
	struct rawdev d = { id, DK_MEMORY, 0, (uint16_t)strlen(name), 4096, 1u << 20, name };

	return d;
}

static size_t
raw_manifest(uint8_t *buf, size_t cap, uint32_t ndev, uint64_t state_size, uint16_t snl,
    const char *sname, const struct rawdev *d, uint32_t nd)
{
	struct wr w;
	uint32_t i;

	wr_init(&w, buf, cap);
	wr_u32(&w, ndev);
	wr_u64(&w, state_size);
	wr_u16(&w, snl);
	wr_bytes(&w, sname, snl);
	for (i = 0; i < nd; i++) {
		wr_u32(&w, d[i].id);
		wr_u8(&w, d[i].kind);
		wr_u8(&w, d[i].rsv);
		wr_u16(&w, d[i].name_len);
		wr_u32(&w, d[i].unit);
		wr_u64(&w, d[i].size);
		wr_u64(&w, 0);
		wr_u64(&w, 0);
		wr_bytes(&w, d[i].name, d[i].name_len);
	}
	assert_int_equal(w.err, 0);
	return w.off;
}

/* Decode a one-device raw manifest and return the code. */
static int
man_one(struct rawdev d, struct ferr *e)
{
	uint8_t buf[1024];
	size_t n = raw_manifest(buf, sizeof(buf), 1, 0, 0, "", &d, 1);

	return dec_manifest(buf, n, e);
}

/* ================= rd ================= */

static void
test_rd_reads_big_endian(void **state)
{
	static const uint8_t b[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a,
		0x0b, 0x0c, 0x0d, 0x0e, 0x0f };
	struct rd r;
	uint8_t v8;
	uint16_t v16;
	uint32_t v32;
	uint64_t v64;

	(void)state;
	rd_init(&r, b, sizeof(b));
	assert_int_equal(rd_u8(&r, &v8), 0);
	assert_int_equal(v8, 0x01);
	assert_int_equal(rd_u16(&r, &v16), 0);
	assert_int_equal(v16, 0x0203);
	assert_int_equal(rd_u32(&r, &v32), 0);
	assert_int_equal(v32, 0x04050607);
	assert_int_equal(rd_u64(&r, &v64), 0);
	assert_int_equal(v64, 0x08090a0b0c0d0e0full);
	assert_int_equal(rd_left(&r), 0);
	assert_int_equal(rd_end(&r), 0);
}

static void
test_rd_one_byte_short_latches(void **state)
{
	static const uint8_t b[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct rd r;
	uint16_t v16 = 0xffff;
	uint32_t v32 = 0xffffffff;
	uint64_t v64 = ~0ull;
	uint8_t v8 = 0xff;

	(void)state;
	rd_init(&r, b, 1);
	assert_int_equal(rd_u16(&r, &v16), -1);
	assert_int_equal(v16, 0);
	assert_int_equal(r.err, 1);
	/* The byte that is there cannot be read after the latch. */
	assert_int_equal(rd_u8(&r, &v8), -1);
	assert_int_equal(v8, 0);
	assert_int_equal(rd_left(&r), 0);
	assert_int_equal(rd_end(&r), -1);

	rd_init(&r, b, 3);
	assert_int_equal(rd_u32(&r, &v32), -1);
	assert_int_equal(v32, 0);
	assert_int_equal(r.off, 0);

	rd_init(&r, b, 7);
	assert_int_equal(rd_u64(&r, &v64), -1);
	assert_int_equal(v64, 0);
	assert_int_equal(r.off, 0);
}

static void
test_rd_exact_and_one_over(void **state)
{
	static const uint8_t b[5] = { 0xde, 0xad, 0xbe, 0xef, 0x99 };
	struct rd r;
	uint32_t v;

	(void)state;
	rd_init(&r, b, 4);      /* exact */
	assert_int_equal(rd_u32(&r, &v), 0);
	assert_int_equal(v, 0xdeadbeef);
	assert_int_equal(rd_end(&r), 0);

	rd_init(&r, b, 5);      /* one over: a byte is left */
	assert_int_equal(rd_u32(&r, &v), 0);
	assert_int_equal(rd_left(&r), 1);
	assert_int_equal(rd_end(&r), -1);
	assert_int_equal(r.err, 0);
}

static void
test_rd_sub_is_bounded(void **state)
{
	static const uint8_t b[] = { 0, 0, 0, 1, 0, 0, 0, 2, 0xaa };
	struct rd r, sub;
	uint32_t v;
	uint8_t x;

	(void)state;
	rd_init(&r, b, sizeof(b));
	assert_int_equal(rd_sub(&r, 4, &sub), 0);
	assert_int_equal(r.off, 4);             /* the parent skipped the block */
	assert_int_equal(rd_left(&sub), 4);
	assert_int_equal(rd_u32(&sub, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(rd_end(&sub), 0);
	/* Reading past the block fails although the parent has more bytes. */
	assert_int_equal(rd_u8(&sub, &x), -1);
	assert_int_equal(sub.err, 1);
	assert_int_equal(r.err, 0);
	assert_int_equal(rd_u32(&r, &v), 0);
	assert_int_equal(v, 2);
}

static void
test_rd_sub_past_end(void **state)
{
	static const uint8_t b[4] = { 1, 2, 3, 4 };
	struct rd r, sub;
	uint8_t x;

	(void)state;
	rd_init(&r, b, sizeof(b));
	assert_int_equal(rd_sub(&r, 5, &sub), -1);     /* one over */
	assert_int_equal(r.err, 1);
	assert_int_equal(sub.err, 1);
	assert_int_equal(rd_u8(&sub, &x), -1);
	assert_int_equal(rd_left(&sub), 0);

	rd_init(&r, b, sizeof(b));
	assert_int_equal(rd_sub(&r, 4, &sub), 0);      /* exact */
	assert_int_equal(rd_end(&r), 0);
	assert_int_equal(rd_left(&sub), 4);
}

static void
test_rd_copy_and_ptr_failures_clear_outputs(void **state)
{
	static const uint8_t b[3] = { 7, 8, 9 };
	uint8_t out[4] = { 1, 1, 1, 1 }, zero[4] = { 0 };
	const uint8_t *p = b;
	struct rd r;

	(void)state;
	rd_init(&r, b, sizeof(b));
	assert_int_equal(rd_copy(&r, out, 4), -1);
	assert_memory_equal(out, zero, 4);

	rd_init(&r, b, sizeof(b));
	assert_int_equal(rd_ptr(&r, 4, &p), -1);
	assert_null(p);

	rd_init(&r, b, sizeof(b));
	assert_int_equal(rd_ptr(&r, 3, &p), 0);
	assert_ptr_equal(p, b);
	assert_int_equal(rd_copy(&r, out, 0), 0);      /* zero bytes at the end */
	assert_int_equal(rd_end(&r), 0);
}

static void
test_rd_huge_lengths_do_not_wrap(void **state)
{
	static const uint8_t b[16] = { 0 };
	const uint8_t *p;
	struct rd r, sub;
	uint8_t x;

	(void)state;
	rd_init(&r, b, sizeof(b));
	assert_int_equal(rd_u8(&r, &x), 0);
	assert_int_equal(rd_ptr(&r, SIZE_MAX, &p), -1);
	rd_init(&r, b, sizeof(b));
	assert_int_equal(rd_u8(&r, &x), 0);
	assert_int_equal(rd_sub(&r, SIZE_MAX, &sub), -1);
	rd_init(&r, b, sizeof(b));
	assert_int_equal(rd_u8(&r, &x), 0);
	assert_int_equal(rd_u8(&r, &x), 0);
	assert_int_equal(rd_ptr(&r, SIZE_MAX - 1, &p), -1);  /* off + n would wrap to 0 */
	assert_null(p);
}

static void
test_rd_null_base_is_empty(void **state)
{
	struct rd r;
	uint8_t x;

	(void)state;
	rd_init(&r, NULL, 100);
	assert_int_equal(r.len, 0);
	assert_int_equal(rd_u8(&r, &x), -1);
	assert_int_equal(rd_end(&r), -1);
}

/* ================= wr ================= */

static void
test_wr_writes_big_endian(void **state)
{
	static const uint8_t want[] = { 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09,
		0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0xaa, 0xbb };
	uint8_t buf[sizeof(want)];
	struct wr w;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(wr_u8(&w, 0x01), 0);
	assert_int_equal(wr_u16(&w, 0x0203), 0);
	assert_int_equal(wr_u32(&w, 0x04050607), 0);
	assert_int_equal(wr_u64(&w, 0x08090a0b0c0d0e0full), 0);
	assert_int_equal(wr_bytes(&w, "\xaa\xbb", 2), 0);
	assert_int_equal(w.off, sizeof(want));
	assert_int_equal(wr_left(&w), 0);
	assert_memory_equal(buf, want, sizeof(want));
}

static void
test_wr_exact_and_one_over(void **state)
{
	uint8_t buf[8];
	struct wr w;

	(void)state;
	wr_init(&w, buf, 4);
	assert_int_equal(wr_u32(&w, 1), 0);             /* exact */
	assert_int_equal(w.err, 0);
	assert_int_equal(wr_u8(&w, 1), -1);             /* one over */
	assert_int_equal(w.err, 1);
	assert_int_equal(w.off, 4);

	wr_init(&w, buf, 7);
	assert_int_equal(wr_u64(&w, 1), -1);            /* one short */
	assert_int_equal(w.err, 1);
	/* Latched: even a write that would fit fails now. */
	assert_int_equal(wr_u8(&w, 1), -1);
	assert_int_equal(wr_left(&w), 0);

	wr_init(&w, buf, 8);
	assert_int_equal(wr_u8(&w, 1), 0);
	assert_int_equal(wr_bytes(&w, buf, SIZE_MAX), -1);   /* cannot wrap */
	assert_null(wr_reserve(&w, SIZE_MAX));
}

static void
test_wr_reserve_unreserve_put_at(void **state)
{
	uint8_t buf[12] = { 0 };
	uint8_t *p;
	struct wr w;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(wr_u32(&w, 0), 0);
	p = wr_reserve(&w, 6);
	assert_ptr_equal(p, buf + 4);
	assert_int_equal(w.off, 10);
	wr_unreserve(&w, 2);
	assert_int_equal(w.off, 8);
	wr_put_u32_at(&w, 0, 0x11223344);
	assert_memory_equal(buf, "\x11\x22\x33\x44", 4);
	/* A patch that would reach past what was written is ignored. */
	wr_put_u32_at(&w, 5, 0xffffffff);
	assert_int_equal(buf[5], 0);
	assert_int_equal(buf[8], 0);
	wr_put_u32_at(&w, 4, 0x55667788);               /* exactly at the end */
	assert_memory_equal(buf + 4, "\x55\x66\x77\x88", 4);
	assert_null(wr_reserve(&w, 5));                 /* 4 left */
}

/* ================= frame header ================= */

static void
put_hdr(uint8_t *p, uint8_t type, uint8_t flags, uint16_t rsv, uint32_t len)
{
	struct wr w;

	wr_init(&w, p, FERRY_FRAME_HDR_LEN);
	wr_u8(&w, type);
	wr_u8(&w, flags);
	wr_u16(&w, rsv);
	wr_u32(&w, len);
}

static int
hdr(uint8_t type, uint8_t flags, uint16_t rsv, uint32_t len, uint32_t max, uint8_t dir,
    struct ferr *e)
{
	uint8_t p[FERRY_FRAME_HDR_LEN];
	struct frame_hdr h;

	put_hdr(p, type, flags, rsv, len);
	ferr_clear(e);
	return frame_decode_hdr(p, sizeof(p), max, dir, &h, e);
}

static void
test_frame_table(void **state)
{
	/* The version-1 core types (section 4); later types only need an entry. */
	static const char *names[] = { NULL, "HELLO", "WELCOME", "MANIFEST", "ACCEPT",
		"REFUSE", "PAGES", "ACK", "STATE", "COMMIT", "COMMITTED", "ERROR" };
	const struct frame_info *fi;
	unsigned t;

	(void)state;
	assert_null(frame_info(FT_INVALID));
	assert_null(frame_info(FT_COUNT));
	assert_null(frame_info(255));
	assert_string_equal(frame_name(0), "UNKNOWN");
	assert_string_equal(frame_name(255), "UNKNOWN");
	for (t = 1; t < FT_COUNT; t++) {
		fi = frame_info((uint8_t)t);
		assert_non_null(fi);
		assert_non_null(fi->name);
		assert_string_equal(frame_name((uint8_t)t), fi->name);
		if (t < sizeof(names) / sizeof(names[0]))
			assert_string_equal(fi->name, names[t]);
		assert_true(fi->max_len == 0 || fi->min_len <= fi->max_len);
		assert_true(fi->dir == FDIR_S2R || fi->dir == FDIR_R2S || fi->dir == FDIR_BOTH);
	}
	assert_int_equal(frame_info(FT_ERROR)->dir, FDIR_BOTH);
	assert_int_equal(frame_info(FT_PAGES)->dir, FDIR_S2R);
	assert_int_equal(frame_info(FT_ACK)->dir, FDIR_R2S);
	/* Section 4's table of payload sizes. */
	assert_int_equal(frame_info(FT_HELLO)->min_len, 24);
	assert_int_equal(frame_info(FT_WELCOME)->max_len, 32);
	assert_int_equal(frame_info(FT_REFUSE)->max_len, 1034);
	assert_int_equal(frame_info(FT_PAGES)->min_len, 25);
	assert_int_equal(frame_info(FT_COMMIT)->max_len, 1308);
	assert_int_equal(frame_info(FT_ERROR)->max_len, 1030);
}

static void
test_frame_hdr_need_more(void **state)
{
	uint8_t p[FERRY_FRAME_HDR_LEN];
	struct frame_hdr h;
	struct ferr e = { 0 };
	size_t n;

	(void)state;
	put_hdr(p, FT_HELLO, 0, 0, 24);
	for (n = 0; n < FERRY_FRAME_HDR_LEN; n++)
		assert_int_equal(frame_decode_hdr(p, n, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &h, &e),
		    FERR_NEED_MORE);
	assert_int_equal(frame_decode_hdr(p, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &h, &e), 0);
	assert_int_equal(h.type, FT_HELLO);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.len, 24);
}

static void
test_frame_hdr_bad_types(void **state)
{
	struct ferr e;

	(void)state;
	assert_int_equal(hdr(0, 0, 0, 0, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e), FERR_PROTO_TYPE);
	assert_int_equal(e.code, FERR_PROTO_TYPE);
	assert_int_equal(hdr(FT_COUNT, 0, 0, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e),
	    FERR_PROTO_TYPE);
	assert_int_equal(hdr(255, 0, 0, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &e), FERR_PROTO_TYPE);
	assert_non_null(strstr(e.msg, "255"));
}

static void
test_frame_hdr_wrong_direction(void **state)
{
	struct ferr e;

	(void)state;
	/* Receiver-to-sender frames arriving at the receiver. */
	assert_int_equal(hdr(FT_WELCOME, 0, 0, 32, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e),
	    FERR_PROTO_TYPE);
	assert_non_null(strstr(e.msg, "WELCOME"));
	assert_int_equal(hdr(FT_ACK, 0, 0, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e), FERR_PROTO_TYPE);
	/* Sender-to-receiver frames arriving at the sender. */
	assert_int_equal(hdr(FT_HELLO, 0, 0, 24, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &e),
	    FERR_PROTO_TYPE);
	assert_int_equal(hdr(FT_PAGES, 0, 0, 100, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &e),
	    FERR_PROTO_TYPE);
	/* ERROR goes both ways. */
	assert_int_equal(hdr(FT_ERROR, 0, 0, 6, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e), 0);
	assert_int_equal(hdr(FT_ERROR, 0, 0, 6, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &e), 0);
}

static void
test_frame_hdr_flags_and_reserved(void **state)
{
	struct ferr e;

	(void)state;
	assert_int_equal(hdr(FT_HELLO, 0x01, 0, 24, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e), FERR_PROTO);
	assert_non_null(strstr(e.msg, "flags"));
	assert_int_equal(hdr(FT_HELLO, 0x80, 0, 24, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e), FERR_PROTO);
	assert_int_equal(hdr(FT_HELLO, 0, 0x0001, 24, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e),
	    FERR_PROTO);
	assert_non_null(strstr(e.msg, "reserved"));
	assert_int_equal(hdr(FT_HELLO, 0, 0x8000, 24, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e),
	    FERR_PROTO);
}

static void
test_frame_hdr_fixed_length(void **state)
{
	struct ferr e;

	(void)state;
	assert_int_equal(hdr(FT_HELLO, 0, 0, 23, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e),
	    FERR_PROTO_LENGTH);
	assert_non_null(strstr(e.msg, "HELLO"));
	assert_int_equal(hdr(FT_HELLO, 0, 0, 24, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e), 0);
	assert_int_equal(hdr(FT_HELLO, 0, 0, 25, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e),
	    FERR_PROTO_LENGTH);
	assert_int_equal(hdr(FT_ACCEPT, 0, 0, 7, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &e),
	    FERR_PROTO_LENGTH);
	assert_int_equal(hdr(FT_ACCEPT, 0, 0, 9, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &e),
	    FERR_PROTO_LENGTH);
	assert_int_equal(hdr(FT_REFUSE, 0, 0, 10 + FERRY_TEXT_MAX, FERRY_MAX_FRAME_DEFAULT,
	    FDIR_R2S, &e), 0);
	assert_int_equal(hdr(FT_REFUSE, 0, 0, 10 + FERRY_TEXT_MAX + 1, FERRY_MAX_FRAME_DEFAULT,
	    FDIR_R2S, &e), FERR_PROTO_LENGTH);
	assert_int_equal(hdr(FT_ERROR, 0, 0, 5, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e),
	    FERR_PROTO_LENGTH);
	assert_int_equal(hdr(FT_COMMIT, 0, 0, 12 + 20 * FERRY_MAX_DEVICES + 16 + 1,
	    FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &e), FERR_PROTO_LENGTH);
}

static void
test_frame_hdr_negotiated_max(void **state)
{
	const uint32_t max = 70000;
	struct ferr e;

	(void)state;
	assert_int_equal(hdr(FT_PAGES, 0, 0, max, max, FDIR_S2R, &e), 0);
	assert_int_equal(hdr(FT_PAGES, 0, 0, max + 1, max, FDIR_S2R, &e), FERR_PROTO_LENGTH);
	assert_non_null(strstr(e.msg, "PAGES"));
	assert_int_equal(hdr(FT_PAGES, 0, 0, 0xffffffffu, max, FDIR_S2R, &e), FERR_PROTO_LENGTH);
	assert_int_equal(hdr(FT_STATE, 0, 0, max + 1, max, FDIR_S2R, &e), FERR_PROTO_LENGTH);
	assert_int_equal(hdr(FT_MANIFEST, 0, 0, 13, max, FDIR_S2R, &e), FERR_PROTO_LENGTH);
	assert_int_equal(hdr(FT_PAGES, 0, 0, 24, max, FDIR_S2R, &e), FERR_PROTO_LENGTH);
	assert_int_equal(hdr(FT_PAGES, 0, 0, 25, max, FDIR_S2R, &e), 0);
	/* A fixed-maximum type is still capped by a smaller negotiated max. */
	assert_int_equal(hdr(FT_REFUSE, 0, 0, 500, 100, FDIR_R2S, &e), FERR_PROTO_LENGTH);
}

static void
test_frame_begin_end(void **state)
{
	uint8_t buf[32];
	struct wr w;
	size_t at;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	assert_int_equal(wr_u8(&w, 0xee), 0);
	at = frame_begin(&w, FT_STATE);
	assert_int_equal(at, 1);
	assert_int_equal(wr_bytes(&w, "abcdefghij", 10), 0);
	frame_end(&w, at);
	assert_memory_equal(buf + 1, "\x08\x00\x00\x00\x00\x00\x00\x0a", 8);

	wr_init(&w, buf, 7);
	assert_int_equal(frame_begin(&w, FT_STATE), SIZE_MAX);
}

/* ================= round trips ================= */

static void
test_hello_round_trip(void **state)
{
	struct msg_hello in = { FERRY_VERSION, 0, FERRY_MAX_FRAME_DEFAULT, 0x0123456789abcdefull };
	struct msg_hello out;
	struct ferr e = { 0 };
	struct fbuf b;
	const uint8_t *p;
	size_t n;

	(void)state;
	fbuf_init(&b, 256);
	put_hello(&b, in.hash_seed, in.max_frame);
	p = payload_of(&b, FT_HELLO, FDIR_S2R, &n);
	assert_int_equal(n, 24);
	assert_memory_equal(p, "FRY1", 4);
	memset(&out, 0xff, sizeof(out));
	assert_int_equal(msg_hello_decode(p, n, &out, &e), 0);
	assert_int_equal(out.version, FERRY_VERSION);
	assert_int_equal(out.caps, 0);
	assert_int_equal(out.max_frame, FERRY_MAX_FRAME_DEFAULT);
	assert_int_equal(out.hash_seed, 0x0123456789abcdefull);
	fbuf_fini(&b);
}

static void
test_welcome_round_trip(void **state)
{
	struct msg_welcome in, out;
	struct ferr e = { 0 };
	struct fbuf b;
	struct wr w;
	const uint8_t *p;
	size_t n;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.version = FERRY_VERSION;
	in.caps = 0;
	in.max_frame = FERRY_MAX_FRAME_LIMIT;
	test_random(in.session_id, sizeof(in.session_id));
	fbuf_init(&b, 256);
	fbuf_wr(&b, &w);
	assert_int_equal(msg_welcome_encode(&w, &in), 0);
	fbuf_done(&b, &w);
	p = payload_of(&b, FT_WELCOME, FDIR_R2S, &n);
	assert_int_equal(n, 32);
	assert_int_equal(msg_welcome_decode(p, n, &out, &e), 0);
	assert_int_equal(out.version, FERRY_VERSION);
	assert_int_equal(out.max_frame, FERRY_MAX_FRAME_LIMIT);
	assert_memory_equal(out.session_id, in.session_id, 16);
	fbuf_fini(&b);
}

static struct msg_manifest *
sample_manifest(void)
{
	struct msg_manifest *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	m->ndev = 3;
	m->state_size = 12345;
	snprintf(m->state_name, sizeof(m->state_name), "vm.state");
	m->dev[0] = (struct dev_desc){ .id = 1, .kind = DK_MEMORY, .unit = 4096,
		.size = 1u << 30, .src_dev = 0x801, .src_ino = 42 };
	snprintf(m->dev[0].name, sizeof(m->dev[0].name), "mem.img");
	m->dev[1] = (struct dev_desc){ .id = 2, .kind = DK_DISK, .unit = 65536,
		.size = 3ull * 1024 * 1024 + 1000, .src_dev = 0x802, .src_ino = 43 };
	snprintf(m->dev[1].name, sizeof(m->dev[1].name), "disk0.raw");
	m->dev[2] = (struct dev_desc){ .id = 0xfffffffe, .kind = DK_DISK, .unit = 1u << 20,
		.size = 8ull << 30 };
	memset(m->dev[2].name, 'n', FERRY_NAME_MAX);     /* longest name */
	m->dev[2].name[FERRY_NAME_MAX] = '\0';
	return m;
}

static void
test_manifest_round_trip(void **state)
{
	struct msg_manifest *in = sample_manifest();
	struct msg_manifest *out = calloc(1, sizeof(*out));
	struct ferr e = { 0 };
	struct fbuf b;
	const uint8_t *p;
	size_t n;
	uint32_t i;

	(void)state;
	assert_non_null(out);
	fbuf_init(&b, 4096);
	put_manifest(&b, in);
	p = payload_of(&b, FT_MANIFEST, FDIR_S2R, &n);
	assert_int_equal(n, 14 + 8 + 3 * 36 + 7 + 9 + FERRY_NAME_MAX);
	assert_int_equal(msg_manifest_decode(p, n, out, &e), 0);
	assert_int_equal(out->ndev, 3);
	assert_int_equal(out->state_size, 12345);
	assert_string_equal(out->state_name, "vm.state");
	for (i = 0; i < 3; i++) {
		assert_int_equal(out->dev[i].id, in->dev[i].id);
		assert_int_equal(out->dev[i].kind, in->dev[i].kind);
		assert_int_equal(out->dev[i].unit, in->dev[i].unit);
		assert_int_equal(out->dev[i].size, in->dev[i].size);
		assert_int_equal(out->dev[i].src_dev, in->dev[i].src_dev);
		assert_int_equal(out->dev[i].src_ino, in->dev[i].src_ino);
		assert_string_equal(out->dev[i].name, in->dev[i].name);
	}
	fbuf_fini(&b);
	free(in);
	free(out);
}

static void
test_manifest_round_trip_no_state(void **state)
{
	struct msg_manifest *in = sample_manifest();
	struct msg_manifest *out = calloc(1, sizeof(*out));
	struct ferr e = { 0 };
	struct fbuf b;
	const uint8_t *p;
	size_t n;

	(void)state;
	assert_non_null(out);
	in->ndev = 1;
	in->state_size = 0;     /* the encoder drops the name with the size */
	fbuf_init(&b, 4096);
	put_manifest(&b, in);
	p = payload_of(&b, FT_MANIFEST, FDIR_S2R, &n);
	assert_int_equal(n, 14 + 36 + 7);
	assert_int_equal(msg_manifest_decode(p, n, out, &e), 0);
	assert_int_equal(out->state_size, 0);
	assert_string_equal(out->state_name, "");
	assert_int_equal(out->ndev, 1);
	fbuf_fini(&b);
	free(in);
	free(out);
}

static void
test_accept_round_trip(void **state)
{
	struct msg_accept in = { 0x1122334455667788ull }, out;
	struct ferr e = { 0 };
	struct fbuf b;
	struct wr w;
	const uint8_t *p;
	size_t n;

	(void)state;
	fbuf_init(&b, 64);
	fbuf_wr(&b, &w);
	assert_int_equal(msg_accept_encode(&w, &in), 0);
	fbuf_done(&b, &w);
	p = payload_of(&b, FT_ACCEPT, FDIR_R2S, &n);
	assert_int_equal(n, 8);
	assert_int_equal(msg_accept_decode(p, n, &out, &e), 0);
	assert_int_equal(out.next_seq, 0x1122334455667788ull);
	fbuf_fini(&b);
}

static void
test_refuse_round_trip(void **state)
{
	struct msg_text in, out;
	struct ferr e = { 0 };
	struct fbuf b;
	struct wr w;
	const uint8_t *p;
	size_t n;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.code = (uint32_t)-FERR_REFUSE_SIZE;
	in.device = 9;
	snprintf(in.text, sizeof(in.text), "disk0: size differs");
	fbuf_init(&b, 2048);
	fbuf_wr(&b, &w);
	assert_int_equal(msg_refuse_encode(&w, &in), 0);
	fbuf_done(&b, &w);
	p = payload_of(&b, FT_REFUSE, FDIR_R2S, &n);
	assert_int_equal(n, 10 + strlen(in.text));
	assert_int_equal(msg_refuse_decode(p, n, &out, &e), 0);
	assert_int_equal(out.code, 21);
	assert_int_equal(out.device, 9);
	assert_string_equal(out.text, "disk0: size differs");
	fbuf_fini(&b);
}

static void
test_refuse_text_at_max(void **state)
{
	struct msg_text in, out;
	struct ferr e = { 0 };
	struct fbuf b;
	struct wr w;
	const uint8_t *p;
	size_t n;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.code = 20;
	memset(in.text, 'x', FERRY_TEXT_MAX);
	fbuf_init(&b, 2048);
	fbuf_wr(&b, &w);
	assert_int_equal(msg_refuse_encode(&w, &in), 0);
	fbuf_done(&b, &w);
	p = payload_of(&b, FT_REFUSE, FDIR_R2S, &n);
	assert_int_equal(n, 10 + FERRY_TEXT_MAX);       /* the table's maximum */
	assert_int_equal(msg_refuse_decode(p, n, &out, &e), 0);
	assert_int_equal(strlen(out.text), FERRY_TEXT_MAX);
	fbuf_fini(&b);
}

static void
test_error_round_trip(void **state)
{
	struct msg_text out;
	struct ferr e = { 0 };
	struct fbuf b;
	const uint8_t *p;
	size_t n;

	(void)state;
	fbuf_init(&b, 2048);
	put_error(&b, FERR_PROTO_HASH, "PAGES: REF entry 3: hash");
	p = payload_of(&b, FT_ERROR, FDIR_S2R, &n);
	assert_int_equal(n, 6 + strlen("PAGES: REF entry 3: hash"));
	memset(&out, 0xff, sizeof(out));
	assert_int_equal(msg_error_decode(p, n, &out, &e), 0);
	assert_int_equal(out.code, 16);
	assert_int_equal(out.device, 0);
	assert_string_equal(out.text, "PAGES: REF entry 3: hash");
	fbuf_fini(&b);
}

static void
test_seq_round_trip(void **state)
{
	struct msg_seq out;
	struct ferr e = { 0 };
	struct fbuf b;
	const uint8_t *p;
	size_t n;

	(void)state;
	fbuf_init(&b, 64);
	put_seq(&b, FT_ACK, 77);
	p = payload_of(&b, FT_ACK, FDIR_R2S, &n);
	assert_int_equal(n, 8);
	assert_int_equal(msg_seq_decode(FT_ACK, p, n, &out, &e), 0);
	assert_int_equal(out.seq, 77);
	b.len = 0;
	put_seq(&b, FT_COMMITTED, UINT64_MAX);
	p = payload_of(&b, FT_COMMITTED, FDIR_R2S, &n);
	assert_int_equal(msg_seq_decode(FT_COMMITTED, p, n, &out, &e), 0);
	assert_int_equal(out.seq, UINT64_MAX);
	fbuf_fini(&b);
}

static void
test_state_round_trip(void **state)
{
	uint8_t data[300];
	struct msg_state out;
	struct ferr e = { 0 };
	struct fbuf b;
	const uint8_t *p;
	size_t n;

	(void)state;
	fill_text(data, sizeof(data), 3);
	fbuf_init(&b, 1024);
	put_state(&b, 4096, data, sizeof(data));
	p = payload_of(&b, FT_STATE, FDIR_S2R, &n);
	assert_int_equal(n, 8 + sizeof(data));
	assert_int_equal(msg_state_decode(p, n, &out, &e), 0);
	assert_int_equal(out.offset, 4096);
	assert_int_equal(out.len, sizeof(data));
	assert_memory_equal(out.data, data, sizeof(data));
	assert_ptr_equal(out.data, p + 8);              /* points into the frame */
	fbuf_fini(&b);
}

static void
test_commit_round_trip(void **state)
{
	struct msg_commit in, out;
	struct ferr e = { 0 };
	struct fbuf b;
	const uint8_t *p;
	size_t n;
	uint32_t i;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.seq = 1234;
	in.ndev = 3;
	for (i = 0; i < 3; i++) {
		in.dev[i].id = 10 + i;
		memset(in.dev[i].digest, (int)(0x10 * (i + 1)), FERRY_HASH_LEN);
	}
	memset(in.state_digest, 0xee, FERRY_HASH_LEN);
	fbuf_init(&b, 2048);
	put_commit(&b, &in);
	p = payload_of(&b, FT_COMMIT, FDIR_S2R, &n);
	assert_int_equal(n, 12 + 3 * 20 + 16);
	assert_int_equal(msg_commit_decode(p, n, &out, &e), 0);
	assert_int_equal(out.seq, 1234);
	assert_int_equal(out.ndev, 3);
	for (i = 0; i < 3; i++) {
		assert_int_equal(out.dev[i].id, 10 + i);
		assert_memory_equal(out.dev[i].digest, in.dev[i].digest, FERRY_HASH_LEN);
	}
	assert_memory_equal(out.state_digest, in.state_digest, FERRY_HASH_LEN);
	fbuf_fini(&b);
}

static void
test_commit_max_devices_at_table_max(void **state)
{
	struct msg_commit in, out;
	struct ferr e = { 0 };
	struct fbuf b;
	const uint8_t *p;
	size_t n;
	uint32_t i;

	(void)state;
	memset(&in, 0, sizeof(in));
	in.seq = 1;
	in.ndev = FERRY_MAX_DEVICES;
	for (i = 0; i < FERRY_MAX_DEVICES; i++)
		in.dev[i].id = i + 1;
	fbuf_init(&b, 4096);
	put_commit(&b, &in);
	p = payload_of(&b, FT_COMMIT, FDIR_S2R, &n);
	assert_int_equal(n, frame_info(FT_COMMIT)->max_len);
	assert_int_equal(msg_commit_decode(p, n, &out, &e), 0);
	assert_int_equal(out.ndev, FERRY_MAX_DEVICES);
	assert_int_equal(out.dev[63].id, 64);
	fbuf_fini(&b);
}

/* ZERO, REF, LZ4 and RAW (the last, partial unit) in one frame. */
static void
build_sample_pages(struct fbuf *b, uint8_t *page, uint8_t *comp, uint32_t *clen,
    uint8_t *tail)
{
	struct page_entry pe[4];

	fill_text(page, 4096, 1);
	*clen = codec_lz4_encode(page, 4096, comp, 4095);
	assert_true(*clen > 0 && *clen < 4096);
	for (uint32_t i = 0; i < 100; i++)
		tail[i] = (uint8_t)(i * 7 + 1);
	memset(pe, 0, sizeof(pe));
	pe[0].index = 0;
	pe[0].kind = PK_ZERO;
	pe[1].index = 1;
	pe[1].kind = PK_REF;
	pe[1].src_device = 7;
	pe[1].src_index = 2;
	for (uint32_t i = 0; i < FERRY_HASH_LEN; i++)
		pe[1].hash[i] = (uint8_t)(0xf0 + i);
	pe[2].index = 2;
	pe[2].kind = PK_LZ4;
	pe[2].data = comp;
	pe[2].data_len = *clen;
	pe[3].index = 3;
	pe[3].kind = PK_RAW;
	pe[3].data = tail;
	pe[3].data_len = 100;
	put_pages(b, 5, 7, 2, pe, 4);
}

static void
test_pages_round_trip(void **state)
{
	uint8_t page[4096], comp[4096], tail[100];
	struct page_entry pe[4];
	struct msg_pages ph;
	struct ferr e = { 0 };
	struct fbuf b;
	const uint8_t *p;
	uint32_t clen, i;
	size_t n;

	(void)state;
	fbuf_init(&b, 16384);
	build_sample_pages(&b, page, comp, &clen, tail);
	p = payload_of(&b, FT_PAGES, FDIR_S2R, &n);
	assert_int_equal(n, 20 + 5 + (5 + 24) + (9 + clen) + (5 + 100));
	memset(pe, 0, sizeof(pe));
	assert_int_equal(decode_pages_all(p, n, &ph, pe, 4, &e), 0);
	assert_int_equal(ph.seq, 5);
	assert_int_equal(ph.device, 7);
	assert_int_equal(ph.round, 2);
	assert_int_equal(ph.count, 4);

	assert_int_equal(pe[0].kind, PK_ZERO);
	assert_int_equal(pe[0].index, 0);
	assert_int_equal(pe[0].len, 4096);
	assert_null(pe[0].data);

	assert_int_equal(pe[1].kind, PK_REF);
	assert_int_equal(pe[1].src_device, 7);
	assert_int_equal(pe[1].src_index, 2);
	for (i = 0; i < FERRY_HASH_LEN; i++)
		assert_int_equal(pe[1].hash[i], 0xf0 + i);

	assert_int_equal(pe[2].kind, PK_LZ4);
	assert_int_equal(pe[2].len, 4096);
	assert_int_equal(pe[2].data_len, clen);
	assert_memory_equal(pe[2].data, comp, clen);

	assert_int_equal(pe[3].kind, PK_RAW);
	assert_int_equal(pe[3].index, 3);
	assert_int_equal(pe[3].len, 100);               /* the short last unit */
	assert_int_equal(pe[3].data_len, 100);
	assert_memory_equal(pe[3].data, tail, 100);
	fbuf_fini(&b);
}

static void
test_encoders_need_exact_room(void **state)
{
	struct msg_hello h = { FERRY_VERSION, 0, FERRY_MAX_FRAME_DEFAULT, 1 };
	struct msg_seq s = { 1 };
	uint8_t buf[64];
	struct wr w;

	(void)state;
	wr_init(&w, buf, 8 + 24);
	assert_int_equal(msg_hello_encode(&w, &h), 0);
	assert_int_equal(w.off, 32);
	wr_init(&w, buf, 8 + 23);
	assert_int_equal(msg_hello_encode(&w, &h), -1);
	wr_init(&w, buf, 16);
	assert_int_equal(msg_seq_encode(&w, FT_ACK, &s), 0);
	wr_init(&w, buf, 15);
	assert_int_equal(msg_seq_encode(&w, FT_ACK, &s), -1);
}

/* ================= truncations ================= */

static void
test_hello_truncations(void **state)
{
	struct fbuf b;
	const uint8_t *p;
	size_t n;

	(void)state;
	fbuf_init(&b, 64);
	put_hello(&b, 99, FERRY_MAX_FRAME_DEFAULT);
	p = payload_of(&b, FT_HELLO, FDIR_S2R, &n);
	check_truncations(dec_hello, p, n);
	fbuf_fini(&b);
}

static void
test_welcome_truncations(void **state)
{
	struct msg_welcome m = { FERRY_VERSION, 0, FERRY_MAX_FRAME_MIN, { 1, 2, 3 } };
	struct fbuf b;
	struct wr w;
	const uint8_t *p;
	size_t n;

	(void)state;
	fbuf_init(&b, 64);
	fbuf_wr(&b, &w);
	assert_int_equal(msg_welcome_encode(&w, &m), 0);
	fbuf_done(&b, &w);
	p = payload_of(&b, FT_WELCOME, FDIR_R2S, &n);
	check_truncations(dec_welcome, p, n);
	fbuf_fini(&b);
}

static void
test_manifest_truncations(void **state)
{
	struct msg_manifest *m = sample_manifest();
	struct fbuf b;
	const uint8_t *p;
	size_t n;

	(void)state;
	fbuf_init(&b, 4096);
	put_manifest(&b, m);
	p = payload_of(&b, FT_MANIFEST, FDIR_S2R, &n);
	check_truncations(dec_manifest, p, n);
	fbuf_fini(&b);
	free(m);
}

static void
test_accept_truncations(void **state)
{
	struct msg_accept a = { 1 };
	struct fbuf b;
	struct wr w;
	const uint8_t *p;
	size_t n;

	(void)state;
	fbuf_init(&b, 64);
	fbuf_wr(&b, &w);
	assert_int_equal(msg_accept_encode(&w, &a), 0);
	fbuf_done(&b, &w);
	p = payload_of(&b, FT_ACCEPT, FDIR_R2S, &n);
	check_truncations(dec_accept, p, n);
	fbuf_fini(&b);
}

static void
test_refuse_truncations(void **state)
{
	struct msg_text t;
	struct fbuf b;
	struct wr w;
	const uint8_t *p;
	size_t n;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.code = 24;
	t.device = 3;
	snprintf(t.text, sizeof(t.text), "no space");
	fbuf_init(&b, 2048);
	fbuf_wr(&b, &w);
	assert_int_equal(msg_refuse_encode(&w, &t), 0);
	fbuf_done(&b, &w);
	p = payload_of(&b, FT_REFUSE, FDIR_R2S, &n);
	check_truncations(dec_refuse, p, n);
	fbuf_fini(&b);
}

static void
test_error_truncations(void **state)
{
	struct fbuf b;
	const uint8_t *p;
	size_t n;

	(void)state;
	fbuf_init(&b, 2048);
	put_error(&b, FERR_ABORTED, "operator abort");
	p = payload_of(&b, FT_ERROR, FDIR_R2S, &n);
	check_truncations(dec_error, p, n);
	fbuf_fini(&b);
}

static void
test_seq_truncations(void **state)
{
	struct fbuf b;
	const uint8_t *p;
	size_t n;

	(void)state;
	fbuf_init(&b, 64);
	put_seq(&b, FT_ACK, 3);
	p = payload_of(&b, FT_ACK, FDIR_R2S, &n);
	check_truncations(dec_ack, p, n);
	fbuf_fini(&b);
}

/* STATE carries the rest of the frame as data, so only a cut into the
 * offset or an empty body can be detected. */
static void
test_state_truncations(void **state)
{
	uint8_t data[16] = { 1 };
	struct ferr e = { 0 };
	struct fbuf b;
	const uint8_t *p;
	size_t n, k;

	(void)state;
	fbuf_init(&b, 64);
	put_state(&b, 0, data, sizeof(data));
	p = payload_of(&b, FT_STATE, FDIR_S2R, &n);
	for (k = 0; k <= 8; k++) {
		uint8_t *copy = malloc(k ? k : 1);

		memcpy(copy, p, k);
		assert_int_equal(dec_state(copy, k, &e), FERR_PROTO_LENGTH);
		free(copy);
	}
	fbuf_fini(&b);
}

static void
test_commit_truncations(void **state)
{
	struct msg_commit c;
	struct fbuf b;
	const uint8_t *p;
	size_t n;

	(void)state;
	memset(&c, 0, sizeof(c));
	c.seq = 9;
	c.ndev = 2;
	c.dev[0].id = 1;
	c.dev[1].id = 2;
	fbuf_init(&b, 256);
	put_commit(&b, &c);
	p = payload_of(&b, FT_COMMIT, FDIR_S2R, &n);
	check_truncations(dec_commit, p, n);
	fbuf_fini(&b);
}

static void
test_pages_truncations(void **state)
{
	uint8_t page[4096], comp[4096], tail[100];
	struct fbuf b;
	const uint8_t *p;
	uint32_t clen;
	size_t n;

	(void)state;
	fbuf_init(&b, 16384);
	build_sample_pages(&b, page, comp, &clen, tail);
	p = payload_of(&b, FT_PAGES, FDIR_S2R, &n);
	check_truncations(dec_pages, p, n);
	fbuf_fini(&b);
}

/* ================= field checks ================= */

/* Patch a big-endian field of a HELLO payload and decode it. */
static int
hello_with(size_t off, unsigned width, uint32_t v, struct ferr *e)
{
	struct fbuf b;
	uint8_t pl[24];
	const uint8_t *p;
	size_t n;
	unsigned i;

	fbuf_init(&b, 64);
	put_hello(&b, 5, FERRY_MAX_FRAME_DEFAULT);
	p = payload_of(&b, FT_HELLO, FDIR_S2R, &n);
	memcpy(pl, p, sizeof(pl));
	fbuf_fini(&b);
	for (i = 0; i < width; i++)
		pl[off + i] = (uint8_t)(v >> (8 * (width - 1 - i)));
	ferr_clear(e);
	return dec_hello(pl, sizeof(pl), e);
}

static void
test_hello_bad_magic(void **state)
{
	struct ferr e;

	(void)state;
	assert_int_equal(hello_with(0, 4, 0x46525932, &e), FERR_PROTO_VERSION);
	assert_non_null(strstr(e.msg, "magic"));
	assert_int_equal(hello_with(0, 4, 0, &e), FERR_PROTO_VERSION);
}

static void
test_hello_bad_version(void **state)
{
	struct ferr e;

	(void)state;
	assert_int_equal(hello_with(4, 2, 2, &e), FERR_PROTO_VERSION);
	assert_non_null(strstr(e.msg, "version"));
	assert_int_equal(hello_with(4, 2, 0, &e), FERR_PROTO_VERSION);
	assert_int_equal(hello_with(4, 2, 1, &e), 0);
}

static void
test_hello_reserved_set(void **state)
{
	struct ferr e;

	(void)state;
	assert_int_equal(hello_with(6, 2, 1, &e), FERR_PROTO);
}

static void
test_hello_max_frame_range(void **state)
{
	struct ferr e;

	(void)state;
	assert_int_equal(hello_with(12, 4, FERRY_MAX_FRAME_MIN - 1, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "max_frame"));
	assert_int_equal(hello_with(12, 4, FERRY_MAX_FRAME_MIN, &e), 0);
	assert_int_equal(hello_with(12, 4, FERRY_MAX_FRAME_LIMIT, &e), 0);
	assert_int_equal(hello_with(12, 4, FERRY_MAX_FRAME_LIMIT + 1, &e), FERR_PROTO_RANGE);
	assert_int_equal(hello_with(12, 4, 0, &e), FERR_PROTO_RANGE);
}

static void
test_welcome_field_checks(void **state)
{
	struct msg_welcome m = { FERRY_VERSION, 0, FERRY_MAX_FRAME_DEFAULT, { 0 } };
	struct ferr e = { 0 };
	struct fbuf b;
	struct wr w;
	uint8_t pl[32];
	const uint8_t *p;
	size_t n;

	(void)state;
	fbuf_init(&b, 64);
	fbuf_wr(&b, &w);
	assert_int_equal(msg_welcome_encode(&w, &m), 0);
	fbuf_done(&b, &w);
	p = payload_of(&b, FT_WELCOME, FDIR_R2S, &n);
	memcpy(pl, p, sizeof(pl));
	pl[0] = 'X';
	assert_int_equal(dec_welcome(pl, 32, &e), FERR_PROTO_VERSION);
	memcpy(pl, p, sizeof(pl));
	pl[5] = 9;                                      /* version 9 */
	assert_int_equal(dec_welcome(pl, 32, &e), FERR_PROTO_VERSION);
	memcpy(pl, p, sizeof(pl));
	pl[7] = 1;                                      /* reserved */
	assert_int_equal(dec_welcome(pl, 32, &e), FERR_PROTO);
	memcpy(pl, p, sizeof(pl));
	pl[12] = 0x01;                                  /* max_frame 16 MiB + ... */
	pl[13] = 0x00;
	pl[14] = 0x00;
	pl[15] = 0x01;
	assert_int_equal(dec_welcome(pl, 32, &e), FERR_PROTO_RANGE);
	fbuf_fini(&b);
}

static void
test_manifest_ndev_range(void **state)
{
	char names[FERRY_MAX_DEVICES + 1][8];
	struct rawdev d[FERRY_MAX_DEVICES + 1];
	uint8_t *buf = malloc(65536);
	struct ferr e = { 0 };
	uint32_t i;
	size_t n;

	(void)state;
	assert_non_null(buf);
	for (i = 0; i <= FERRY_MAX_DEVICES; i++) {
		snprintf(names[i], sizeof(names[i]), "d%u", i);
		d[i] = good_dev(i + 1, names[i]);
	}
	n = raw_manifest(buf, 65536, 0, 0, 0, "", d, 0);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "ndev"));
	n = raw_manifest(buf, 65536, FERRY_MAX_DEVICES, 0, 0, "", d, FERRY_MAX_DEVICES);
	assert_int_equal(dec_manifest(buf, n, &e), 0);
	n = raw_manifest(buf, 65536, FERRY_MAX_DEVICES + 1, 0, 0, "", d, FERRY_MAX_DEVICES + 1);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	/* A huge count is refused before anything else is read. */
	n = raw_manifest(buf, 65536, 0xffffffffu, 0, 0, "", d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	free(buf);
}

static void
test_manifest_duplicate_ids(void **state)
{
	struct rawdev d[3] = { good_dev(1, "a"), good_dev(2, "b"), good_dev(1, "c") };
	struct ferr e = { 0 };
	uint8_t buf[1024];
	size_t n;

	(void)state;
	n = raw_manifest(buf, sizeof(buf), 3, 0, 0, "", d, 3);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "repeated"));
}

static void
test_manifest_duplicate_names(void **state)
{
	struct rawdev d[3] = { good_dev(1, "a"), good_dev(2, "disk"), good_dev(3, "disk") };
	struct ferr e = { 0 };
	uint8_t buf[1024];
	size_t n;

	(void)state;
	n = raw_manifest(buf, sizeof(buf), 3, 0, 0, "", d, 3);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "disk"));
}

static void
test_manifest_bad_names(void **state)
{
	static const struct {
		const char *name;
		uint16_t len;
	} bad[] = {
		{ "..", 2 }, { ".", 1 }, { "a/b", 3 }, { "/etc", 4 }, { ".ferry-x", 8 },
		{ ".ferry", 6 }, { "a\x01z", 3 }, { "a\nb", 3 }, { "tab\t", 4 }, { "del\x7f", 4 },
		{ "hi\x80", 3 }, { "a\0b", 3 }, { "", 0 },
	};
	struct ferr e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rawdev d = good_dev(1, "x");

		d.name = bad[i].name;
		d.name_len = bad[i].len;
		ferr_clear(&e);
		if (man_one(d, &e) != FERR_PROTO_RANGE)
			fail_msg("device name #%zu ('%s') was not refused", i, bad[i].name);
	}
}

static void
test_manifest_name_length_limits(void **state)
{
	char name[FERRY_NAME_MAX + 2];
	struct rawdev d = good_dev(1, "x");
	struct ferr e;

	(void)state;
	memset(name, 'a', sizeof(name));
	d.name = name;
	d.name_len = FERRY_NAME_MAX;
	assert_int_equal(man_one(d, &e), 0);
	d.name_len = FERRY_NAME_MAX + 1;
	assert_int_equal(man_one(d, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "name_len"));
}

static void
test_manifest_names_that_are_fine(void **state)
{
	static const char *good[] = { "...", "..a", "a..", ".ferr", ".hidden", "ferry-x",
		"a b~{}", "disk.0.raw" };
	struct ferr e;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ferr_clear(&e);
		if (man_one(good_dev(1, good[i]), &e) != 0)
			fail_msg("device name '%s' refused: %s", good[i], e.msg);
	}
	assert_int_equal(dev_name_valid("ok", 2), 1);
	assert_int_equal(dev_name_valid(".ferryfoo", 9), 0);
}

static void
test_manifest_bad_device_fields(void **state)
{
	struct rawdev d;
	struct ferr e;

	(void)state;
	d = good_dev(0, "a");                           /* id 0 */
	assert_int_equal(man_one(d, &e), FERR_PROTO_RANGE);
	d = good_dev(1, "a");
	d.kind = DK_INVALID;
	assert_int_equal(man_one(d, &e), FERR_PROTO_RANGE);
	d.kind = 4;             /* 3 is DK_QEMU: tests/test_msg_qemu.c */
	assert_int_equal(man_one(d, &e), FERR_PROTO_RANGE);
	d = good_dev(1, "a");
	d.rsv = 1;
	assert_int_equal(man_one(d, &e), FERR_PROTO);
	d = good_dev(1, "a");
	d.unit = 0;
	assert_int_equal(man_one(d, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "unit"));
	d = good_dev(1, "a");
	d.kind = DK_DISK;
	assert_int_equal(man_one(d, &e), 0);
}

static void
test_manifest_size_range(void **state)
{
	struct rawdev d = good_dev(1, "a");
	struct ferr e;

	(void)state;
	d.size = 0;
	assert_int_equal(man_one(d, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "size"));
	d.size = 1;
	assert_int_equal(man_one(d, &e), 0);
	/* 2^46 bytes in 2^24 units of 4 MiB: at both limits.  (The decoder
	 * does not judge the unit size; pre-flight does.) */
	d.unit = 1u << 22;
	d.size = FERRY_DEVICE_SIZE_MAX;
	assert_int_equal(man_one(d, &e), 0);
	d.size = FERRY_DEVICE_SIZE_MAX + 1;
	assert_int_equal(man_one(d, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "size"));
	d.size = UINT64_MAX;
	assert_int_equal(man_one(d, &e), FERR_PROTO_RANGE);
}

static void
test_manifest_units_over_u32(void **state)
{
	struct rawdev d = good_dev(1, "a");
	struct ferr e;

	(void)state;
	d.unit = 4096;
	d.size = (uint64_t)UINT32_MAX * 4096 + 1;      /* 2^32 units */
	assert_int_equal(man_one(d, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "units"));
	d.unit = 1;
	d.size = 1ull << 40;
	assert_int_equal(man_one(d, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "units"));
}

static void
test_manifest_total_units_limit(void **state)
{
	struct rawdev d[2] = { good_dev(1, "a"), good_dev(2, "b") };
	struct ferr e = { 0 };
	uint8_t buf[1024];
	size_t n;

	(void)state;
	d[0].size = FERRY_MAX_TOTAL_UNITS * 4096;       /* exactly the limit */
	n = raw_manifest(buf, sizeof(buf), 1, 0, 0, "", d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), 0);
	d[0].size++;                                    /* one partial unit more */
	n = raw_manifest(buf, sizeof(buf), 1, 0, 0, "", d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	/* The limit is over all devices together. */
	d[0].size = (FERRY_MAX_TOTAL_UNITS - 1) * 4096;
	d[1].size = 2 * 4096;
	n = raw_manifest(buf, sizeof(buf), 2, 0, 0, "", d, 2);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "units"));
	d[1].size = 4096;
	n = raw_manifest(buf, sizeof(buf), 2, 0, 0, "", d, 2);
	assert_int_equal(dec_manifest(buf, n, &e), 0);
}

static void
test_manifest_state_name_rules(void **state)
{
	struct rawdev d = good_dev(1, "mem");
	struct ferr e = { 0 };
	uint8_t buf[1024];
	size_t n;

	(void)state;
	n = raw_manifest(buf, sizeof(buf), 1, 100, 5, "state", &d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), 0);
	/* size without a name, a name without a size */
	n = raw_manifest(buf, sizeof(buf), 1, 100, 0, "", &d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	n = raw_manifest(buf, sizeof(buf), 1, 0, 5, "state", &d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	/* same rules as device names */
	n = raw_manifest(buf, sizeof(buf), 1, 100, 2, "..", &d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	n = raw_manifest(buf, sizeof(buf), 1, 100, 5, "a/../", &d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	n = raw_manifest(buf, sizeof(buf), 1, 100, 8, ".ferry-s", &d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	/* not a device's name */
	n = raw_manifest(buf, sizeof(buf), 1, 100, 3, "mem", &d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	/* size limit */
	n = raw_manifest(buf, sizeof(buf), 1, FERRY_STATE_SIZE_MAX, 5, "state", &d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), 0);
	n = raw_manifest(buf, sizeof(buf), 1, FERRY_STATE_SIZE_MAX + 1, 5, "state", &d, 1);
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
	/* length over the name maximum */
	n = raw_manifest(buf, sizeof(buf), 1, 100, 0, "", &d, 1);
	buf[12] = 0x01;                                 /* state_name_len 256 */
	buf[13] = 0x00;
	assert_int_equal(dec_manifest(buf, n, &e), FERR_PROTO_RANGE);
}

static void
test_accept_next_seq_zero(void **state)
{
	static const uint8_t zero[8] = { 0 };
	struct msg_accept a;
	struct ferr e = { 0 };

	(void)state;
	assert_int_equal(msg_accept_decode(zero, 8, &a, &e), FERR_PROTO_RANGE);
}

static void
test_text_field_checks(void **state)
{
	uint8_t buf[2048];
	struct msg_text t;
	struct ferr e = { 0 };
	struct wr w;

	(void)state;
	/* code 0 */
	wr_init(&w, buf, sizeof(buf));
	wr_u32(&w, 0);
	wr_u16(&w, 2);
	wr_bytes(&w, "hi", 2);
	assert_int_equal(msg_error_decode(buf, w.off, &t, &e), FERR_PROTO_RANGE);
	/* text longer than the maximum, with the bytes present */
	wr_init(&w, buf, sizeof(buf));
	wr_u32(&w, 10);
	wr_u32(&w, 0);
	wr_u16(&w, FERRY_TEXT_MAX + 1);
	memset(buf + w.off, 'a', FERRY_TEXT_MAX + 1);
	w.off += FERRY_TEXT_MAX + 1;
	assert_int_equal(msg_refuse_decode(buf, w.off, &t, &e), FERR_PROTO_RANGE);
	/* control bytes are replaced: text ends up in logs and terminals */
	wr_init(&w, buf, sizeof(buf));
	wr_u32(&w, 10);
	wr_u16(&w, 6);
	wr_bytes(&w, "a\x1b[2J\x7f", 6);
	assert_int_equal(msg_error_decode(buf, w.off, &t, &e), 0);
	assert_string_equal(t.text, "a?[2J?");
}

static void
test_state_offset_range(void **state)
{
	uint8_t buf[16];
	struct msg_state s;
	struct ferr e = { 0 };
	struct wr w;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	wr_u64(&w, FERRY_STATE_SIZE_MAX - 1);
	wr_u8(&w, 0xaa);
	assert_int_equal(msg_state_decode(buf, w.off, &s, &e), 0);     /* last byte */
	assert_int_equal(s.len, 1);
	wr_u8(&w, 0xbb);
	assert_int_equal(msg_state_decode(buf, w.off, &s, &e), FERR_PROTO_RANGE);
	wr_init(&w, buf, sizeof(buf));
	wr_u64(&w, UINT64_MAX);
	wr_u8(&w, 0xaa);
	assert_int_equal(msg_state_decode(buf, w.off, &s, &e), FERR_PROTO_RANGE);
}

static void
test_commit_ndev_range(void **state)
{
	uint8_t buf[2048] = { 0 };
	struct msg_commit c;
	struct ferr e = { 0 };
	struct wr w;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	wr_u64(&w, 1);
	wr_u32(&w, 0);
	w.off += 16;
	assert_int_equal(msg_commit_decode(buf, w.off, &c, &e), FERR_PROTO_RANGE);
	wr_init(&w, buf, sizeof(buf));
	wr_u64(&w, 1);
	wr_u32(&w, FERRY_MAX_DEVICES + 1);
	w.off += 20 * (FERRY_MAX_DEVICES + 1) + 16;
	assert_int_equal(msg_commit_decode(buf, w.off, &c, &e), FERR_PROTO_RANGE);
}

static void
test_pages_header_checks(void **state)
{
	uint8_t buf[64] = { 0 };
	struct msg_pages ph;
	struct ferr e = { 0 };
	struct rd r;
	struct wr w;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	raw_pages_hdr(&w, 0, 7, 1, 1);                  /* seq 0 */
	w.off += 5;
	rd_init(&r, buf, w.off);
	assert_int_equal(msg_pages_decode(&r, &ph, &e), FERR_PROTO_RANGE);
	wr_init(&w, buf, sizeof(buf));
	raw_pages_hdr(&w, 1, 7, 0, 1);                  /* round 0 */
	w.off += 5;
	rd_init(&r, buf, w.off);
	assert_int_equal(msg_pages_decode(&r, &ph, &e), FERR_PROTO_RANGE);
	wr_init(&w, buf, sizeof(buf));
	raw_pages_hdr(&w, 1, 7, 1, 0);                  /* count 0 */
	w.off += 5;
	rd_init(&r, buf, w.off);
	assert_int_equal(msg_pages_decode(&r, &ph, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "count"));
	wr_init(&w, buf, sizeof(buf));
	raw_pages_hdr(&w, 1, 7, 1, FERRY_MAX_PAGES_PER_FRAME + 1);
	w.off += 5;
	rd_init(&r, buf, w.off);
	assert_int_equal(msg_pages_decode(&r, &ph, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "4097"));
}

static void
test_pages_count_must_fit(void **state)
{
	uint8_t buf[128] = { 0 };
	struct msg_pages ph;
	struct ferr e = { 0 };
	struct rd r;
	struct wr w;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	raw_pages_hdr(&w, 1, 7, 1, 5);
	rd_init(&r, buf, w.off + 5 * FERRY_PAGE_ENTRY_MIN - 1);         /* one short */
	assert_int_equal(msg_pages_decode(&r, &ph, &e), FERR_PROTO_LENGTH);
	rd_init(&r, buf, w.off + 5 * FERRY_PAGE_ENTRY_MIN);             /* exact */
	assert_int_equal(msg_pages_decode(&r, &ph, &e), 0);
	assert_int_equal(ph.count, 5);
	assert_int_equal(r.off, 20);
}

static void
test_pages_max_count(void **state)
{
	struct dev_desc big = { .id = 7, .kind = DK_MEMORY, .unit = 4096,
		.size = 4096ull * FERRY_MAX_PAGES_PER_FRAME, .name = "m" };
	size_t cap = 20 + FERRY_MAX_PAGES_PER_FRAME * 5;
	uint8_t *buf = malloc(cap);
	struct page_entry pe;
	struct msg_pages ph;
	struct ferr e = { 0 };
	struct rd r;
	struct wr w;
	uint32_t i;

	(void)state;
	assert_non_null(buf);
	wr_init(&w, buf, cap);
	raw_pages_hdr(&w, 1, 7, 1, FERRY_MAX_PAGES_PER_FRAME);
	for (i = 0; i < FERRY_MAX_PAGES_PER_FRAME; i++) {
		wr_u32(&w, i);
		wr_u8(&w, PK_ZERO);
	}
	assert_int_equal(w.err, 0);
	rd_init(&r, buf, w.off);
	assert_int_equal(msg_pages_decode(&r, &ph, &e), 0);
	for (i = 0; i < ph.count; i++)
		assert_int_equal(msg_page_next(&r, &big, &pe, &e), 0);
	assert_int_equal(pe.index, FERRY_MAX_PAGES_PER_FRAME - 1);
	assert_int_equal(rd_end(&r), 0);
	free(buf);
}

static void
test_pages_index_range(void **state)
{
	uint8_t buf[64] = { 0 };
	struct page_entry pe;
	struct ferr e = { 0 };
	struct wr w;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	raw_pages_hdr(&w, 1, 7, 1, 1);
	wr_u32(&w, 3);                                  /* the last unit */
	wr_u8(&w, PK_ZERO);
	assert_int_equal(one_entry(buf, w.off, &pe, &e), 0);
	assert_int_equal(pe.len, 100);

	wr_init(&w, buf, sizeof(buf));
	raw_pages_hdr(&w, 1, 7, 1, 1);
	wr_u32(&w, 4);                                  /* == units */
	wr_u8(&w, PK_ZERO);
	assert_int_equal(one_entry(buf, w.off, &pe, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "index 4"));

	wr_init(&w, buf, sizeof(buf));
	raw_pages_hdr(&w, 1, 7, 1, 1);
	wr_u32(&w, UINT32_MAX);
	wr_u8(&w, PK_ZERO);
	assert_int_equal(one_entry(buf, w.off, &pe, &e), FERR_PROTO_RANGE);
}

static int
lz4_entry(uint32_t index, uint32_t clen, uint32_t present, struct ferr *e)
{
	uint8_t *buf = calloc(1, 64 + 8192);
	struct page_entry pe;
	struct wr w;
	int rc;

	assert_non_null(buf);
	wr_init(&w, buf, 64 + 8192);
	raw_pages_hdr(&w, 1, 7, 1, 1);
	wr_u32(&w, index);
	wr_u8(&w, PK_LZ4);
	wr_u32(&w, clen);
	w.off += present;
	ferr_clear(e);
	rc = one_entry(buf, w.off, &pe, e);
	free(buf);
	return rc;
}

static void
test_pages_lz4_clen(void **state)
{
	struct ferr e;

	(void)state;
	assert_int_equal(lz4_entry(0, 0, 10, &e), FERR_PROTO_CODEC);
	assert_int_equal(lz4_entry(0, 4096, 4096, &e), FERR_PROTO_CODEC);     /* == unit */
	assert_int_equal(lz4_entry(0, 5000, 5000, &e), FERR_PROTO_CODEC);
	assert_int_equal(lz4_entry(0, 4095, 4095, &e), 0);                     /* one under */
	assert_int_equal(lz4_entry(0, 4095, 4094, &e), FERR_PROTO_LENGTH);     /* past the end */
	/* The short last unit is 100 bytes: clen must be under that. */
	assert_int_equal(lz4_entry(3, 100, 100, &e), FERR_PROTO_CODEC);
	assert_int_equal(lz4_entry(3, 99, 99, &e), 0);
	assert_int_equal(lz4_entry(0, UINT32_MAX, 0, &e), FERR_PROTO_CODEC);
}

static void
test_pages_unknown_kind(void **state)
{
	static const uint8_t kinds[] = { PK_INVALID, PK_RAW + 1, 0xff };
	uint8_t buf[8192] = { 0 };
	struct page_entry pe;
	struct ferr e = { 0 };
	struct wr w;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(kinds); i++) {
		wr_init(&w, buf, sizeof(buf));
		raw_pages_hdr(&w, 1, 7, 1, 1);
		wr_u32(&w, 0);
		wr_u8(&w, kinds[i]);
		w.off += 4096;
		ferr_clear(&e);
		assert_int_equal(one_entry(buf, w.off, &pe, &e), FERR_PROTO_RANGE);
		assert_non_null(strstr(e.msg, "kind"));
	}
}

static void
test_pages_raw_needs_unit_bytes(void **state)
{
	uint8_t buf[8192] = { 0 };
	struct page_entry pe;
	struct ferr e = { 0 };
	struct wr w;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	raw_pages_hdr(&w, 1, 7, 1, 1);
	wr_u32(&w, 3);
	wr_u8(&w, PK_RAW);
	assert_int_equal(one_entry(buf, w.off + 99, &pe, &e), FERR_PROTO_LENGTH);
	assert_int_equal(one_entry(buf, w.off + 100, &pe, &e), 0);
	assert_int_equal(pe.data_len, 100);
	wr_init(&w, buf, sizeof(buf));
	raw_pages_hdr(&w, 1, 7, 1, 1);
	wr_u32(&w, 2);
	wr_u8(&w, PK_RAW);
	assert_int_equal(one_entry(buf, w.off + 4095, &pe, &e), FERR_PROTO_LENGTH);
	assert_int_equal(one_entry(buf, w.off + 4096, &pe, &e), 0);
	assert_int_equal(pe.data_len, 4096);
}

static void
test_pages_ref_truncated(void **state)
{
	uint8_t buf[128] = { 0 };
	struct page_entry pe;
	struct ferr e = { 0 };
	struct wr w;

	(void)state;
	wr_init(&w, buf, sizeof(buf));
	raw_pages_hdr(&w, 1, 7, 1, 1);
	wr_u32(&w, 0);
	wr_u8(&w, PK_REF);
	assert_int_equal(one_entry(buf, w.off + 23, &pe, &e), FERR_PROTO_LENGTH);
	assert_int_equal(one_entry(buf, w.off + 24, &pe, &e), 0);
}

static void
test_dev_units_and_unit_len(void **state)
{
	struct dev_desc d = { .unit = 65536, .size = 3ull * 1024 * 1024 + 1000 };

	(void)state;
	assert_int_equal(dev_units(&d), 49);
	assert_int_equal(dev_unit_len(&d, 0), 65536);
	assert_int_equal(dev_unit_len(&d, 47), 65536);
	assert_int_equal(dev_unit_len(&d, 48), 1000);
	d.size = 3ull * 1024 * 1024;
	assert_int_equal(dev_units(&d), 48);
	assert_int_equal(dev_unit_len(&d, 47), 65536);
	d.size = 1;
	assert_int_equal(dev_units(&d), 1);
	assert_int_equal(dev_unit_len(&d, 0), 1);
}

/* ================= lz4 ================= */

static void
test_lz4_round_trip(void **state)
{
	uint8_t page[4096], comp[4096], out[4096];
	struct ferr e = { 0 };
	uint32_t clen;

	(void)state;
	fill_text(page, sizeof(page), 5);
	clen = codec_lz4_encode(page, 4096, comp, 4095);
	assert_true(clen > 0 && clen < 1024);
	memset(out, 0, sizeof(out));
	assert_int_equal(codec_lz4_decode(comp, clen, out, 4096, "t", &e), 0);
	assert_memory_equal(out, page, 4096);
}

static void
test_lz4_incompressible_gives_zero(void **state)
{
	uint8_t page[4096], comp[4096];
	struct tprng g = { 0x1234 };

	(void)state;
	tprng_fill(&g, page, sizeof(page));
	assert_int_equal(codec_lz4_encode(page, 4096, comp, 4095), 0);
	assert_int_equal(codec_lz4_encode(page, 4096, comp, 0), 0);
}

static void
test_lz4_garbage(void **state)
{
	uint8_t junk[64], out[4096];
	struct tprng g = { 99 };
	struct ferr e = { 0 };

	(void)state;
	tprng_fill(&g, junk, sizeof(junk));
	assert_int_equal(codec_lz4_decode(junk, sizeof(junk), out, 4096, "PAGES: entry 3", &e),
	    FERR_PROTO_CODEC);
	assert_non_null(strstr(e.msg, "PAGES: entry 3"));
	assert_int_equal(codec_lz4_decode(junk, 0, out, 4096, "x", &e), FERR_PROTO_CODEC);
}

static void
test_lz4_decodes_short(void **state)
{
	uint8_t page[4096], comp[4096], out[4096];
	struct ferr e = { 0 };
	uint32_t clen;

	(void)state;
	fill_text(page, 2048, 2);
	clen = codec_lz4_encode(page, 2048, comp, 2047);     /* a 2 KiB stream */
	assert_true(clen > 0);
	assert_int_equal(codec_lz4_decode(comp, clen, out, 4096, "t", &e), FERR_PROTO_CODEC);
	assert_non_null(strstr(e.msg, "2048"));
}

static void
test_lz4_decodes_long(void **state)
{
	uint8_t page[8192], comp[8192], *out = malloc(4096);
	struct ferr e = { 0 };
	uint32_t clen;

	(void)state;
	assert_non_null(out);
	fill_text(page, 8192, 2);
	clen = codec_lz4_encode(page, 8192, comp, 8191);     /* an 8 KiB stream */
	assert_true(clen > 0);
	/* Into a 4 KiB unit: must stop at the buffer, not write past it. */
	assert_int_equal(codec_lz4_decode(comp, clen, out, 4096, "t", &e), FERR_PROTO_CODEC);
	free(out);
}

/* ================= page hashes ================= */

static void
test_page_is_zero_full_page(void **state)
{
	uint8_t *p = calloc(1, 4096);

	(void)state;
	assert_non_null(p);
	assert_int_equal(page_is_zero(p, 4096), 1);
	p[4095] = 1;
	assert_int_equal(page_is_zero(p, 4096), 0);
	p[4095] = 0;
	p[0] = 0x80;
	assert_int_equal(page_is_zero(p, 4096), 0);
	assert_int_equal(page_is_zero(p, 0), 1);
	free(p);
}

static void
test_page_is_zero_every_position(void **state)
{
	uint8_t p[200];
	size_t i;

	(void)state;
	memset(p, 0, sizeof(p));
	for (i = 0; i < sizeof(p); i++) {
		p[i] = 1;
		if (page_is_zero(p, sizeof(p)) != 0)
			fail_msg("byte %zu set but page reported zero", i);
		p[i] = 0;
	}
	assert_int_equal(page_is_zero(p, sizeof(p)), 1);
}

static void
test_page_is_zero_odd_lengths(void **state)
{
	static const size_t lens[] = { 1, 7, 8, 9, 63, 64, 65, 127, 129, 1000, 4097 };
	uint8_t *p = calloc(1, 4097);
	size_t i;

	(void)state;
	assert_non_null(p);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		size_t n = lens[i];
		uint8_t *q = malloc(n);                 /* exact size for ASan */

		memset(q, 0, n);
		assert_int_equal(page_is_zero(q, n), 1);
		q[n - 1] = 0x01;
		assert_int_equal(page_is_zero(q, n), 0);
		q[n - 1] = 0;
		q[0] = 0x01;
		assert_int_equal(page_is_zero(q, n), 0);
		free(q);
	}
	/* A set byte just past n is not looked at. */
	p[100] = 1;
	assert_int_equal(page_is_zero(p, 100), 1);
	free(p);
}

static void
test_page_hash_depends_on_seed(void **state)
{
	uint8_t page[4096], a[16], b[16], c[16];

	(void)state;
	fill_text(page, sizeof(page), 9);
	page_hash(1, page, sizeof(page), a);
	page_hash(2, page, sizeof(page), b);
	page_hash(1, page, sizeof(page), c);
	assert_memory_not_equal(a, b, 16);
	assert_memory_equal(a, c, 16);
}

static void
test_page_hash_depends_on_content_and_length(void **state)
{
	uint8_t page[4096], a[16], b[16], z1[16], z2[16];
	uint8_t *zero = calloc(1, 4096);

	(void)state;
	assert_non_null(zero);
	fill_text(page, sizeof(page), 9);
	page_hash(7, page, sizeof(page), a);
	page[4095] ^= 1;
	page_hash(7, page, sizeof(page), b);
	assert_memory_not_equal(a, b, 16);
	page_hash(7, zero, 4096, z1);
	page_hash(7, zero, 4095, z2);
	assert_memory_not_equal(z1, z2, 16);
	free(zero);
}

static void
test_digest_order_matters(void **state)
{
	uint8_t h1[16], h2[16], d12[16], d21[16], again[16];
	struct digest *d;

	(void)state;
	memset(h1, 0x11, 16);
	memset(h2, 0x22, 16);
	d = digest_new(5);
	assert_non_null(d);
	digest_add(d, h1);
	digest_add(d, h2);
	digest_final(d, d12);
	digest_free(d);
	d = digest_new(5);
	digest_add(d, h2);
	digest_add(d, h1);
	digest_final(d, d21);
	digest_free(d);
	d = digest_new(5);
	digest_add(d, h1);
	digest_add(d, h2);
	digest_final(d, again);
	digest_free(d);
	assert_memory_not_equal(d12, d21, 16);
	assert_memory_equal(d12, again, 16);
	digest_free(NULL);
}

static void
test_digest_depends_on_seed(void **state)
{
	uint8_t h[16], a[16], b[16];
	struct digest *d;

	(void)state;
	memset(h, 0x33, 16);
	d = digest_new(1);
	digest_add(d, h);
	digest_final(d, a);
	digest_free(d);
	d = digest_new(2);
	digest_add(d, h);
	digest_final(d, b);
	digest_free(d);
	assert_memory_not_equal(a, b, 16);
}

static void
test_hash_hex(void **state)
{
	uint8_t h[16];
	char out[33];
	unsigned i;

	(void)state;
	for (i = 0; i < 16; i++)
		h[i] = (uint8_t)(i * 0x11);
	h[15] = 0xab;
	hash_hex(h, out);
	assert_string_equal(out, "00112233445566778899aabbccddeeab");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rd_reads_big_endian),
		cmocka_unit_test(test_rd_one_byte_short_latches),
		cmocka_unit_test(test_rd_exact_and_one_over),
		cmocka_unit_test(test_rd_sub_is_bounded),
		cmocka_unit_test(test_rd_sub_past_end),
		cmocka_unit_test(test_rd_copy_and_ptr_failures_clear_outputs),
		cmocka_unit_test(test_rd_huge_lengths_do_not_wrap),
		cmocka_unit_test(test_rd_null_base_is_empty),
		cmocka_unit_test(test_wr_writes_big_endian),
		cmocka_unit_test(test_wr_exact_and_one_over),
		cmocka_unit_test(test_wr_reserve_unreserve_put_at),
		cmocka_unit_test(test_frame_table),
		cmocka_unit_test(test_frame_hdr_need_more),
		cmocka_unit_test(test_frame_hdr_bad_types),
		cmocka_unit_test(test_frame_hdr_wrong_direction),
		cmocka_unit_test(test_frame_hdr_flags_and_reserved),
		cmocka_unit_test(test_frame_hdr_fixed_length),
		cmocka_unit_test(test_frame_hdr_negotiated_max),
		cmocka_unit_test(test_frame_begin_end),
		cmocka_unit_test(test_hello_round_trip),
		cmocka_unit_test(test_welcome_round_trip),
		cmocka_unit_test(test_manifest_round_trip),
		cmocka_unit_test(test_manifest_round_trip_no_state),
		cmocka_unit_test(test_accept_round_trip),
		cmocka_unit_test(test_refuse_round_trip),
		cmocka_unit_test(test_refuse_text_at_max),
		cmocka_unit_test(test_error_round_trip),
		cmocka_unit_test(test_seq_round_trip),
		cmocka_unit_test(test_state_round_trip),
		cmocka_unit_test(test_commit_round_trip),
		cmocka_unit_test(test_commit_max_devices_at_table_max),
		cmocka_unit_test(test_pages_round_trip),
		cmocka_unit_test(test_encoders_need_exact_room),
		cmocka_unit_test(test_hello_truncations),
		cmocka_unit_test(test_welcome_truncations),
		cmocka_unit_test(test_manifest_truncations),
		cmocka_unit_test(test_accept_truncations),
		cmocka_unit_test(test_refuse_truncations),
		cmocka_unit_test(test_error_truncations),
		cmocka_unit_test(test_seq_truncations),
		cmocka_unit_test(test_state_truncations),
		cmocka_unit_test(test_commit_truncations),
		cmocka_unit_test(test_pages_truncations),
		cmocka_unit_test(test_hello_bad_magic),
		cmocka_unit_test(test_hello_bad_version),
		cmocka_unit_test(test_hello_reserved_set),
		cmocka_unit_test(test_hello_max_frame_range),
		cmocka_unit_test(test_welcome_field_checks),
		cmocka_unit_test(test_manifest_ndev_range),
		cmocka_unit_test(test_manifest_duplicate_ids),
		cmocka_unit_test(test_manifest_duplicate_names),
		cmocka_unit_test(test_manifest_bad_names),
		cmocka_unit_test(test_manifest_name_length_limits),
		cmocka_unit_test(test_manifest_names_that_are_fine),
		cmocka_unit_test(test_manifest_bad_device_fields),
		cmocka_unit_test(test_manifest_size_range),
		cmocka_unit_test(test_manifest_units_over_u32),
		cmocka_unit_test(test_manifest_total_units_limit),
		cmocka_unit_test(test_manifest_state_name_rules),
		cmocka_unit_test(test_accept_next_seq_zero),
		cmocka_unit_test(test_text_field_checks),
		cmocka_unit_test(test_state_offset_range),
		cmocka_unit_test(test_commit_ndev_range),
		cmocka_unit_test(test_pages_header_checks),
		cmocka_unit_test(test_pages_count_must_fit),
		cmocka_unit_test(test_pages_max_count),
		cmocka_unit_test(test_pages_index_range),
		cmocka_unit_test(test_pages_lz4_clen),
		cmocka_unit_test(test_pages_unknown_kind),
		cmocka_unit_test(test_pages_raw_needs_unit_bytes),
		cmocka_unit_test(test_pages_ref_truncated),
		cmocka_unit_test(test_dev_units_and_unit_len),
		cmocka_unit_test(test_lz4_round_trip),
		cmocka_unit_test(test_lz4_incompressible_gives_zero),
		cmocka_unit_test(test_lz4_garbage),
		cmocka_unit_test(test_lz4_decodes_short),
		cmocka_unit_test(test_lz4_decodes_long),
		cmocka_unit_test(test_page_is_zero_full_page),
		cmocka_unit_test(test_page_is_zero_every_position),
		cmocka_unit_test(test_page_is_zero_odd_lengths),
		cmocka_unit_test(test_page_hash_depends_on_seed),
		cmocka_unit_test(test_page_hash_depends_on_content_and_length),
		cmocka_unit_test(test_digest_order_matters),
		cmocka_unit_test(test_digest_depends_on_seed),
		cmocka_unit_test(test_hash_hex),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
