/* The HAVE codec (PROTOCOL.md 4.19, capability REUSE) in src/common/msg.c,
 * and what the sender makes of HAVE frames (src/sender/pager.c):
 *
 * - frames written by hand from the text of 4.19 decode, and encode back
 *   to the same bytes; the largest HAVE that fits the default maximum;
 * - each decode rule broken once, with its code and the field its
 *   message names; truncation at every byte; a writer without room;
 * - the pager: HAVE seeds what the receiver holds, so round 1 sends only
 *   the units that differ (and may REF a unit HAVE named); each session
 *   rule (unknown device, out of order, overlap, past the end, partial
 *   cover at ACCEPT) fails once; the per-device count of units found
 *   already there, counted once even when a cut makes round 1 rescan. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "err.h"
#include "frame.h"
#include "msg.h"
#include "pagehash.h"
#include "pager.h"
#include "source.h"

#include "testutil.h"

#define SEED 0x1d2c3b4a59687766ull

/* A HAVE payload written field by field: device, first, count, then n
 * hashes (byte i of hash k is k * 16 + i + 1). */
static size_t
raw_have(uint8_t *buf, size_t cap, uint32_t device, uint32_t first, uint32_t count, uint32_t n)
{
	struct wr w;
	uint32_t k, i;

	wr_init(&w, buf, cap);
	wr_u32(&w, device);
	wr_u32(&w, first);
	wr_u32(&w, count);
	for (k = 0; k < n; k++)
		for (i = 0; i < FERRY_HASH_LEN; i++)
			wr_u8(&w, (uint8_t)(k * FERRY_HASH_LEN + i + 1));
	assert_int_equal(w.err, 0);
	return w.off;
}

static void
test_frame_table(void **state)
{
	const struct frame_info *fi = frame_info(FT_HAVE);
	uint8_t hdr[8] = { FT_HAVE, 0, 0, 0, 0, 0, 0, 28 };
	struct frame_hdr h;
	struct ferr e = { 0 };

	(void)state;
	assert_non_null(fi);
	assert_string_equal(fi->name, "HAVE");
	assert_int_equal(fi->min_len, FERRY_HAVE_HDR_LEN + FERRY_HASH_LEN);
	assert_int_equal(fi->max_len, 0);
	assert_int_equal(fi->dir, FDIR_R2S);
	assert_int_equal(FT_COUNT, FT_HAVE + 1);
	assert_int_equal(FERRY_CAPS_KNOWN, FERRY_CAP_DOMAIN | FERRY_CAP_QEMU | FERRY_CAP_REUSE);
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e), 0);
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &h, &e),
	    FERR_PROTO_TYPE);
	hdr[7] = 27;            /* one under the minimum */
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e),
	    FERR_PROTO_LENGTH);
	/* The maximum is the negotiated one. */
	hdr[4] = 0, hdr[5] = 0x10, hdr[6] = 0x10, hdr[7] = 0x00;       /* 1052672 */
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e), 0);
	hdr[7] = 0x01;
	assert_int_equal(frame_decode_hdr(hdr, 8, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e),
	    FERR_PROTO_LENGTH);
	assert_string_equal(frame_name(FT_HAVE), "HAVE");
}

static void
test_round_trip(void **state)
{
	uint8_t p[12 + 3 * 16], out[8 + sizeof(p)];
	struct msg_have m;
	struct ferr e = { 0 };
	struct wr w;
	size_t n = raw_have(p, sizeof(p), 7, 4096, 3, 3);

	(void)state;
	assert_int_equal(n, sizeof(p));
	assert_int_equal(msg_have_decode(p, n, &m, &e), 0);
	assert_int_equal(m.device, 7);
	assert_int_equal(m.first, 4096);
	assert_int_equal(m.count, 3);
	assert_ptr_equal(m.hashes, p + 12);
	assert_int_equal(m.hashes[0], 1);
	assert_int_equal(m.hashes[47], 48);
	wr_init(&w, out, sizeof(out));
	assert_int_equal(msg_have_encode(&w, &m), 0);
	assert_int_equal(w.off, sizeof(out));
	assert_int_equal(out[0], FT_HAVE);
	assert_int_equal(out[7], sizeof(p));
	assert_memory_equal(out + 8, p, sizeof(p));
}

/* The largest HAVE under the default maximum: 65791 hashes. */
static void
test_largest_frame(void **state)
{
	uint32_t per = msg_have_max_count(FERRY_MAX_FRAME_DEFAULT);
	size_t cap = 12 + (size_t)(per + 1) * 16;
	uint8_t *p = malloc(cap), *out = malloc(cap + 8);
	struct msg_have m;
	struct frame_hdr h;
	struct ferr e = { 0 };
	struct wr w;
	size_t n;

	(void)state;
	assert_non_null(p);
	assert_non_null(out);
	assert_int_equal(per, 65791);
	assert_true(12 + (size_t)per * 16 <= FERRY_MAX_FRAME_DEFAULT);
	assert_true(12 + (size_t)(per + 1) * 16 > FERRY_MAX_FRAME_DEFAULT);
	assert_int_equal(msg_have_max_count(FERRY_MAX_FRAME_LIMIT), (FERRY_MAX_FRAME_LIMIT - 12) / 16);
	assert_int_equal(msg_have_max_count(12), 0);
	n = raw_have(p, cap, 1, 0, per, per);
	assert_int_equal(msg_have_decode(p, n, &m, &e), 0);
	wr_init(&w, out, cap + 8);
	assert_int_equal(msg_have_encode(&w, &m), 0);
	assert_int_equal(frame_decode_hdr(out, w.off, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e), 0);
	assert_int_equal(h.len, n);
	/* One more hash is over the maximum, from the header alone. */
	n = raw_have(p, cap, 1, 0, per + 1, per + 1);
	assert_int_equal(msg_have_decode(p, n, &m, &e), 0);
	wr_init(&w, out, cap + 8);
	assert_int_equal(msg_have_encode(&w, &m), 0);
	assert_int_equal(frame_decode_hdr(out, w.off, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e),
	    FERR_PROTO_LENGTH);
	free(p);
	free(out);
}

/* Each rule of 4.19 broken once. */
static void
test_decode_rules(void **state)
{
	uint8_t p[12 + 3 * 16];
	struct msg_have m;
	struct ferr e;
	size_t n;

	(void)state;
	memset(&e, 0, sizeof(e));
	n = raw_have(p, sizeof(p), 0, 0, 1, 1);
	assert_int_equal(msg_have_decode(p, n, &m, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "HAVE: device 0"));

	memset(&e, 0, sizeof(e));
	n = raw_have(p, sizeof(p), 3, 0, 0, 1);
	assert_int_equal(msg_have_decode(p, n, &m, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "count 0"));

	memset(&e, 0, sizeof(e));
	n = raw_have(p, sizeof(p), 3, 0, 3, 2);         /* one hash short */
	assert_int_equal(msg_have_decode(p, n, &m, &e), FERR_PROTO_LENGTH);
	assert_non_null(strstr(e.msg, "count 3 needs 48 bytes of hashes, 32 follow"));

	memset(&e, 0, sizeof(e));
	n = raw_have(p, sizeof(p), 3, 0, 1, 2);         /* one hash over */
	assert_int_equal(msg_have_decode(p, n, &m, &e), FERR_PROTO_LENGTH);
	assert_non_null(strstr(e.msg, "count 1 needs 16 bytes of hashes, 32 follow"));

	memset(&e, 0, sizeof(e));
	n = raw_have(p, sizeof(p), 3, 0, 1, 1) + 1;     /* a stray byte */
	p[n - 1] = 0;
	assert_int_equal(msg_have_decode(p, n, &m, &e), FERR_PROTO_LENGTH);

	memset(&e, 0, sizeof(e));
	n = raw_have(p, sizeof(p), 3, UINT32_MAX, 1, 1);        /* past unit 2^32 - 2 */
	assert_int_equal(msg_have_decode(p, n, &m, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "first 4294967295 + count 1"));

	memset(&e, 0, sizeof(e));
	n = raw_have(p, sizeof(p), 3, UINT32_MAX - 1, 1, 1);    /* the last index: fine */
	assert_int_equal(msg_have_decode(p, n, &m, &e), 0);
	assert_int_equal(m.first, UINT32_MAX - 1);
}

/* Cut short anywhere: always an error, never a read past the end. */
static void
test_truncated_everywhere(void **state)
{
	uint8_t p[12 + 2 * 16];
	size_t n = raw_have(p, sizeof(p), 9, 10, 2, 2), k;

	(void)state;
	for (k = 0; k < n; k++) {
		uint8_t *cut = malloc(k ? k : 1);
		struct msg_have m;
		struct ferr e = { 0 };

		assert_non_null(cut);
		memcpy(cut, p, k);
		assert_int_equal(msg_have_decode(cut, k, &m, &e), FERR_PROTO_LENGTH);
		assert_int_equal(e.code, FERR_PROTO_LENGTH);
		free(cut);
	}
}

static void
test_encode_without_room(void **state)
{
	uint8_t p[12 + 16], out[8 + sizeof(p)];
	struct msg_have m;
	struct ferr e = { 0 };
	struct wr w;

	(void)state;
	raw_have(p, sizeof(p), 1, 0, 1, 1);
	assert_int_equal(msg_have_decode(p, sizeof(p), &m, &e), 0);
	wr_init(&w, out, sizeof(out) - 1);
	assert_int_equal(msg_have_encode(&w, &m), -1);
}

/* ---- the sender's side: pager_have ---- */

#define UNIT 4096u
#define UNITS 64u

struct hfx {
	char dir[64];
	char path[128];
	struct source_dev dev;
	struct pager pg;
	uint8_t *img;           /* the source file */
	uint8_t *buf;
};

static int
hsetup(void **state)
{
	struct hfx *f = calloc(1, sizeof(*f));
	struct tprng g = { 5 };
	struct ferr e = { 0 };
	uint32_t i;
	int fd;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/ferry-test-have.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/disk.img", f->dir);
	f->img = malloc(UNITS * UNIT);
	f->buf = malloc(FERRY_MAX_FRAME_DEFAULT + FERRY_FRAME_HDR_LEN);
	assert_non_null(f->img);
	assert_non_null(f->buf);
	/* Units 0, 8, 16, ... zero; the rest random. */
	for (i = 0; i < UNITS; i++) {
		if (i % 8 == 0)
			memset(f->img + (size_t)i * UNIT, 0, UNIT);
		else
			tprng_fill(&g, f->img + (size_t)i * UNIT, UNIT);
	}
	fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, f->img, UNITS * UNIT), (ssize_t)(UNITS * UNIT));
	close(fd);
	f->dev.fd = -1;
	assert_int_equal(source_dev_open(&f->dev, f->path, 3, DK_DISK, UNIT, &e), 0);
	assert_int_equal(pager_init(&f->pg, &f->dev, 1, SEED, &e), 0);
	*state = f;
	return 0;
}

static int
hteardown(void **state)
{
	struct hfx *f = *state;

	pager_fini(&f->pg);
	source_dev_close(&f->dev);
	unlink(f->path);
	rmdir(f->dir);
	free(f->img);
	free(f->buf);
	free(f);
	return 0;
}

/* The hashes of what the receiver holds: the source, except the units in
 * `differ` (a list ending in UINT32_MAX), which hold other bytes. */
static uint8_t *
held_hashes(struct hfx *f, const uint32_t *differ)
{
	uint8_t *h = malloc((size_t)UNITS * FERRY_HASH_LEN), other[UNIT];
	uint32_t i;

	assert_non_null(h);
	memset(other, 0xee, sizeof(other));
	for (i = 0; i < UNITS; i++)
		page_hash(SEED, f->img + (size_t)i * UNIT, UNIT, h + (size_t)i * FERRY_HASH_LEN);
	for (; *differ != UINT32_MAX; differ++)
		page_hash(SEED, other, UNIT, h + (size_t)*differ * FERRY_HASH_LEN);
	return h;
}

static int
have(struct hfx *f, uint32_t device, uint32_t first, uint32_t count, const uint8_t *hashes,
    struct ferr *e)
{
	struct msg_have m = { device, first, count, hashes + (size_t)first * FERRY_HASH_LEN };

	return pager_have(&f->pg, &m, e);
}

/* One round; returns the units sent, and the indexes in sent[]. */
static uint32_t
hround(struct hfx *f, uint8_t *sent, uint32_t *refs)
{
	uint32_t n = 0;
	struct wr w;
	int rc;

	memset(sent, 0, UNITS);
	*refs = 0;
	pager_begin_round(&f->pg);
	for (;;) {
		struct frame_hdr h;
		struct msg_pages ph;
		struct page_entry pe;
		struct ferr e = { 0 };
		struct rd r;
		uint32_t i;

		wr_init(&w, f->buf, FERRY_MAX_FRAME_DEFAULT + FERRY_FRAME_HDR_LEN);
		rc = pager_next_frame(&f->pg, &w, FERRY_MAX_FRAME_DEFAULT);
		if (rc == 0)
			break;
		assert_int_equal(rc, 1);
		assert_int_equal(frame_decode_hdr(f->buf, w.off, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &h,
		    &e), 0);
		rd_init(&r, f->buf + FERRY_FRAME_HDR_LEN, h.len);
		assert_int_equal(msg_pages_decode(&r, &ph, &e), 0);
		for (i = 0; i < ph.count; i++) {
			assert_int_equal(msg_page_next(&r, &f->dev.desc, &pe, &e), 0);
			sent[pe.index] = 1;
			*refs += pe.kind == PK_REF;
			n++;
		}
		pager_ack(&f->pg, ph.seq);
	}
	return n;
}

static void
test_pager_sends_only_what_differs(void **state)
{
	struct hfx *f = *state;
	static const uint32_t differ[] = { 1, 8, 30, 63, UINT32_MAX };
	uint8_t *h = held_hashes(f, differ), sent[UNITS];
	struct ferr e = { 0 };
	uint32_t refs, i;

	assert_int_equal(have(f, 3, 0, 40, h, &e), 0);
	assert_int_equal(have(f, 3, 40, UNITS - 40, h, &e), 0);
	assert_int_equal(pager_have_complete(&f->pg, &e), 0);
	assert_int_equal(f->pg.have[0].held, UNITS);
	assert_int_equal(hround(f, sent, &refs), 4);
	for (i = 0; differ[i] != UINT32_MAX; i++)
		assert_true(sent[differ[i]]);
	assert_int_equal(f->pg.have[0].reused, UNITS - 4);
	/* What the receiver holds is now the source: digests as if all sent. */
	{
		struct msg_commit c;
		uint8_t want[FERRY_HASH_LEN];

		memset(&c, 0, sizeof(c));
		assert_int_equal(pager_digests(&f->pg, &c, &e), 0);
		image_digest(SEED, f->img, UNITS * UNIT, UNIT, want);
		assert_memory_equal(c.dev[0].digest, want, FERRY_HASH_LEN);
	}
	/* A later round finds nothing, and does not count again. */
	assert_int_equal(hround(f, sent, &refs), 0);
	assert_int_equal(f->pg.have[0].reused, UNITS - 4);
	free(h);
}

/* A unit whose content the receiver holds elsewhere (HAVE named it) goes
 * as a reference to it. */
static void
test_pager_refs_a_unit_have_named(void **state)
{
	struct hfx *f = *state;
	static const uint32_t none[] = { UINT32_MAX };
	uint8_t *h = held_hashes(f, none), sent[UNITS];
	struct ferr e = { 0 };
	uint32_t refs;

	/* The source's unit 6 now holds unit 5's bytes, which the receiver
	 * holds at unit 5 (HAVE named it); its unit 6 holds something else. */
	memcpy(f->img + 6 * UNIT, f->img + 5 * UNIT, UNIT);
	{
		int fd = open(f->path, O_WRONLY | O_CLOEXEC);

		assert_true(fd >= 0);
		assert_int_equal(pwrite(fd, f->img + 6 * UNIT, UNIT, 6 * UNIT), (ssize_t)UNIT);
		close(fd);
	}
	memset(h + 6 * FERRY_HASH_LEN, 0x77, FERRY_HASH_LEN);   /* whatever it held */
	assert_int_equal(have(f, 3, 0, UNITS, h, &e), 0);
	assert_int_equal(hround(f, sent, &refs), 1);
	assert_true(sent[6]);
	assert_int_equal(refs, 1);
	free(h);
}

static void
test_pager_have_rules(void **state)
{
	struct hfx *f = *state;
	static const uint32_t none[] = { UINT32_MAX };
	uint8_t *h = held_hashes(f, none);
	struct ferr e;

	memset(&e, 0, sizeof(e));
	assert_int_equal(have(f, 9, 0, 1, h, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "HAVE: device 9 not in the manifest"));

	memset(&e, 0, sizeof(e));
	assert_int_equal(have(f, 3, 1, 1, h, &e), FERR_PROTO_RANGE);        /* a gap */
	assert_non_null(strstr(e.msg, "first 1, expected 0"));

	memset(&e, 0, sizeof(e));
	assert_int_equal(have(f, 3, 0, UNITS, h, &e), 0);
	assert_int_equal(have(f, 3, 0, 1, h, &e), FERR_PROTO_RANGE);        /* twice */
	assert_non_null(strstr(e.msg, "first 0, expected 64"));
	free(h);
}

static void
test_pager_have_past_end_and_partial(void **state)
{
	struct hfx *f = *state;
	uint8_t *h = calloc(UNITS + 1, FERRY_HASH_LEN);
	struct ferr e;

	assert_non_null(h);
	memset(&e, 0, sizeof(e));
	assert_int_equal(have(f, 3, 0, UNITS + 1, h, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "units 0..64 past its 64 units"));
	/* Nothing was taken from the refused frame. */
	assert_int_equal(f->pg.have[0].held, 0);
	assert_false(source_sent_valid(&f->dev, 0));

	memset(&e, 0, sizeof(e));
	assert_int_equal(pager_have_complete(&f->pg, &e), 0);   /* none at all is fine */
	assert_int_equal(have(f, 3, 0, 10, h, &e), 0);
	assert_int_equal(pager_have_complete(&f->pg, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "ACCEPT: HAVE covered 10 of the 64 units of device 3"));
	free(h);
}

/* A cut in round 1 makes the pager rescan from the first lost unit: the
 * units found already there are still counted once. */
static void
test_pager_reused_counted_once_after_rollback(void **state)
{
	struct hfx *f = *state;
	static const uint32_t differ[] = { 2, 50, UINT32_MAX };
	uint8_t *h = held_hashes(f, differ), sent[UNITS];
	struct ferr e = { 0 };
	struct wr w;
	uint32_t refs, n = 0;

	assert_int_equal(have(f, 3, 0, UNITS, h, &e), 0);
	pager_begin_round(&f->pg);
	wr_init(&w, f->buf, FERRY_MAX_FRAME_DEFAULT + FERRY_FRAME_HDR_LEN);
	assert_int_equal(pager_next_frame(&f->pg, &w, FERRY_MAX_FRAME_DEFAULT), 1);
	/* The frame (units 2 and 50) is lost with the connection. */
	assert_int_equal(pager_rollback(&f->pg, 1), 0);
	assert_true(f->pg.cur_idx <= 2);
	for (;;) {
		wr_init(&w, f->buf, FERRY_MAX_FRAME_DEFAULT + FERRY_FRAME_HDR_LEN);
		if (pager_next_frame(&f->pg, &w, FERRY_MAX_FRAME_DEFAULT) == 0)
			break;
		n++;
		pager_ack(&f->pg, f->pg.next_seq - 1);
	}
	assert_int_equal(n, 1);
	assert_int_equal(f->pg.have[0].reused, UNITS - 2);
	assert_int_equal(hround(f, sent, &refs), 0);
	free(h);
}

#define H(name) cmocka_unit_test_setup_teardown(name, hsetup, hteardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_table),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_largest_frame),
		cmocka_unit_test(test_decode_rules),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_encode_without_room),
		H(test_pager_sends_only_what_differs),
		H(test_pager_refs_a_unit_have_named),
		H(test_pager_have_rules),
		H(test_pager_have_past_end_and_partial),
		H(test_pager_reused_counted_once_after_rollback),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
