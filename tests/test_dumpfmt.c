/* dumpfmt.c and framesplit.c: the frame dump format (proto/PROTOCOL.md
 * appendix A) and cutting a byte stream into frames.  A file of every
 * record kind round-trips; cut at every offset it reads back the whole
 * records before the cut and then exactly one "truncated" error at the
 * cut record's offset; each bad field is named with its offset; a damaged
 * record is skipped to the next good one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dumpfmt.h"
#include "framesplit.h"
#include "testutil.h"

#define T0 1795300000000000ull

/* A dump written by a sender: HELLO sent, WELCOME received, SESSION,
 * PING sent, a partial PAGES sent, END.  offs[] gets each record's offset. */
static size_t
build_dump(uint8_t *buf, size_t cap, size_t offs[8], size_t *nrec)
{
	struct dump_file_hdr h = { DUMP_VERSION, DUMP_ROLE_SENDER, 4242, 1, T0 };
	struct msg_welcome wm = { FERRY_VERSION, 0, FERRY_MAX_FRAME_DEFAULT, { 0 } };
	struct dump_end end = { 3, 1, 0, 0 };
	struct fbuf f;
	struct wr w;
	size_t i;
	uint8_t body[64];

	for (i = 0; i < 16; i++)
		wm.session_id[i] = (uint8_t)(0xA0 + i);
	fbuf_init(&f, 4096);
	put_hello(&f, 7, FERRY_MAX_FRAME_DEFAULT);                  /* [0, 32) */
	fbuf_wr(&f, &w);
	assert_int_equal(msg_welcome_encode(&w, &wm), 0);           /* [32, 72) */
	fbuf_done(&f, &w);
	put_seq(&f, FT_PING, 99);                                    /* [72, 88) */
	wr_init(&w, buf, cap);
	assert_int_equal(dump_file_hdr_encode(&w, &h), 0);
	*nrec = 0;
	{
		struct { uint8_t kind, dir, flags; const uint8_t *p; size_t n; } recs[] = {
			{ DUMP_REC_FRAME, DUMP_DIR_SENT, 0, f.p, 32 },
			{ DUMP_REC_FRAME, DUMP_DIR_RECEIVED, 0, f.p + 32, 40 },
			{ DUMP_REC_SESSION, 0, 0, wm.session_id, 16 },
			{ DUMP_REC_FRAME, DUMP_DIR_SENT, 0, f.p + 72, 16 },
			{ DUMP_REC_FRAME, DUMP_DIR_SENT, DUMP_FLAG_PARTIAL, NULL, 12 },
			{ DUMP_REC_END, 0, 0, NULL, DUMP_END_LEN },
		};

		/* A PAGES header that says 100 payload bytes; 4 arrived. */
		memcpy(body, "\x06\x00\x00\x00\x00\x00\x00\x64\x00\x00\x00\x01", 12);
		recs[4].p = body;
		for (i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
			struct dump_rec r = { 0, recs[i].kind, recs[i].dir, DUMP_ROLE_SENDER, recs[i].flags,
				(uint32_t)recs[i].n, T0 + i, NULL };

			offs[(*nrec)++] = w.off;
			assert_int_equal(dump_rec_hdr_encode(&w, &r), 0);
			if (recs[i].kind == DUMP_REC_END)
				assert_int_equal(dump_end_encode(&w, &end), 0);
			else
				assert_int_equal(wr_bytes(&w, recs[i].p, recs[i].n), 0);
		}
	}
	fbuf_fini(&f);
	return w.off;
}

static void
test_round_trip(void **state)
{
	uint8_t buf[1024];
	size_t offs[8], nrec, n = build_dump(buf, sizeof(buf), offs, &nrec), k = 0;
	struct dump_reader dr;
	struct dump_rec r;
	struct dump_end end;
	struct ferr e = { 0 };
	int rc;

	(void)state;
	assert_int_equal(dump_reader_init(&dr, buf, n, &e), 0);
	assert_int_equal(dr.hdr.role, DUMP_ROLE_SENDER);
	assert_int_equal(dr.hdr.pid, 4242);
	assert_int_equal(dr.hdr.conn, 1);
	assert_true(dr.hdr.start_us == T0);
	while ((rc = dump_reader_next(&dr, &r, &e)) == 1) {
		assert_int_equal(r.at, offs[k]);
		assert_true(r.time_us == T0 + k);
		k++;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(k, nrec);
	assert_int_equal(r.at, n);
	/* The last record is END with its counters. */
	assert_int_equal(dump_rec_decode(buf + offs[5], n - offs[5], offs[5], 1, &r, &k, &e), 0);
	assert_int_equal(dump_end_decode(&r, &end, &e), 0);
	assert_true(end.frames_sent == 3 && end.frames_received == 1);
	/* Directions: the sender's sent frames go S->R. */
	assert_int_equal(dump_frame_dir(DUMP_ROLE_SENDER, DUMP_DIR_SENT), FDIR_S2R);
	assert_int_equal(dump_frame_dir(DUMP_ROLE_RECEIVER, DUMP_DIR_SENT), FDIR_R2S);
	assert_int_equal(dump_frame_dir(DUMP_ROLE_RECEIVER, DUMP_DIR_RECEIVED), FDIR_S2R);
	assert_int_equal(dump_frame_dir(DUMP_ROLE_SENDER, 0), 0);
}

/* Cut at every offset: whole records before the cut, then one error at
 * the offset of the record the cut falls in (none at a record boundary). */
static void
test_truncated_everywhere(void **state)
{
	uint8_t buf[1024];
	size_t offs[8], nrec, n = build_dump(buf, sizeof(buf), offs, &nrec), cut;

	(void)state;
	for (cut = 0; cut <= n; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		struct dump_reader dr;
		struct dump_rec r;
		struct ferr e = { 0 };
		size_t good = 0, errors = 0, i, want_good = 0, err_at = 0;
		int rc, boundary = cut == DUMP_FILE_HDR_LEN;

		assert_non_null(copy);
		memcpy(copy, buf, cut);
		for (i = 0; i < nrec; i++) {
			if (offs[i] == cut)
				boundary = 1;
			if (i + 1 < nrec ? offs[i + 1] <= cut : n <= cut)
				want_good++;
			else if (offs[i] < cut && err_at == 0)
				err_at = offs[i];
		}
		rc = dump_reader_init(&dr, copy, cut, &e);
		if (cut < DUMP_FILE_HDR_LEN) {
			assert_int_equal(rc, FERR_NEED_MORE);
			assert_non_null(strstr(e.msg, "file header"));
			free(copy);
			continue;
		}
		assert_int_equal(rc, 0);
		while ((rc = dump_reader_next(&dr, &r, &e)) != 0) {
			if (rc == 1) {
				good++;
				continue;
			}
			errors++;
			assert_int_equal(rc, FERR_PROTO_LENGTH);
			assert_int_equal(r.at, err_at);
			assert_non_null(strstr(e.msg, "truncated"));
		}
		assert_int_equal(good, want_good);
		assert_int_equal(errors, boundary || cut == n ? 0 : 1);
		free(copy);
	}
}

static void
expect_bad(const uint8_t *buf, size_t n, size_t at, int code, const char *words)
{
	struct dump_rec r;
	struct ferr e = { 0 };
	size_t used;
	int rc = dump_rec_decode(buf + at, n - at, at, DUMP_ROLE_SENDER, &r, &used, &e);
	char where[32];

	if (rc != code)
		fail_msg("expected %d, got %d (%s)", code, rc, e.msg);
	snprintf(where, sizeof(where), "offset %zu:", at);
	assert_non_null(strstr(e.msg, where));
	if (strstr(e.msg, words) == NULL)
		fail_msg("'%s' not in '%s'", words, e.msg);
}

static void
test_bad_fields(void **state)
{
	uint8_t buf[1024], bad[1024];
	size_t offs[8], nrec, n = build_dump(buf, sizeof(buf), offs, &nrec);
	struct dump_file_hdr h;
	struct ferr e = { 0 };
	size_t a = offs[0], s = offs[2];

	(void)state;
#define RESET() memcpy(bad, buf, n)
	RESET(); bad[0] = 'X';
	assert_int_equal(dump_file_hdr_decode(bad, n, &h, &e), FERR_PROTO_VERSION);
	assert_non_null(strstr(e.msg, "magic"));
	RESET(); bad[9] = 2;
	assert_int_equal(dump_file_hdr_decode(bad, n, &h, &e), FERR_PROTO_VERSION);
	assert_non_null(strstr(e.msg, "version 2"));
	RESET(); bad[10] = 0;
	assert_int_equal(dump_file_hdr_decode(bad, n, &h, &e), FERR_PROTO_RANGE);
	assert_non_null(strstr(e.msg, "role 0"));
	RESET(); bad[20] = 1;
	assert_int_equal(dump_file_hdr_decode(bad, n, &h, &e), FERR_PROTO);

	RESET(); bad[a] = 0;
	expect_bad(bad, n, a, FERR_PROTO_RANGE, "kind 0 unknown");
	RESET(); bad[a] = 9;
	expect_bad(bad, n, a, FERR_PROTO_RANGE, "kind 9 unknown");
	RESET(); bad[a + 1] = 3;
	expect_bad(bad, n, a, FERR_PROTO_RANGE, "dir 3");
	RESET(); bad[a + 2] = DUMP_ROLE_RECEIVER;
	expect_bad(bad, n, a, FERR_PROTO_RANGE, "role 2, the file's is 1");
	RESET(); bad[a + 3] = 0x80;
	expect_bad(bad, n, a, FERR_PROTO, "flags 0x80");
	RESET(); bad[a + 3] = DUMP_FLAG_PARTIAL;
	expect_bad(bad, n, a, FERR_PROTO_LENGTH, "PARTIAL, but its frame (8 + 24) is complete");
	RESET(); bad[a + 7] = 31;      /* record 31 bytes, frame says 8 + 24 */
	expect_bad(bad, n, a, FERR_PROTO_LENGTH, "says 8 + 24");
	RESET(); bad[a + 4] = 0x7f;    /* length past DUMP_FRAME_MAX */
	expect_bad(bad, n, a, FERR_PROTO_LENGTH, "> max");
	RESET(); bad[s + 7] = 15;
	expect_bad(bad, n, s, FERR_PROTO_LENGTH, "SESSION record length 15, must be 16");
	RESET(); bad[s + 1] = 1;
	expect_bad(bad, n, s, FERR_PROTO, "SESSION record dir 1");
#undef RESET
}

/* A damaged record header: one error at its offset, then every record
 * after it reads as before. */
static void
test_resync(void **state)
{
	uint8_t buf[1024];
	size_t offs[8], nrec, n = build_dump(buf, sizeof(buf), offs, &nrec), k;
	struct dump_reader dr;
	struct dump_rec r;
	struct ferr e = { 0 };
	size_t seen[8], ns = 0, errs = 0;
	int rc;

	(void)state;
	buf[offs[1] + 4] = 0x55;       /* WELCOME record: absurd length */
	assert_int_equal(dump_reader_init(&dr, buf, n, &e), 0);
	while ((rc = dump_reader_next(&dr, &r, &e)) != 0) {
		if (rc < 0) {
			errs++;
			assert_int_equal(r.at, offs[1]);
			continue;
		}
		seen[ns++] = r.at;
	}
	assert_int_equal(errs, 1);
	assert_int_equal(ns, nrec - 1);
	assert_int_equal(seen[0], offs[0]);
	for (k = 1; k < ns; k++)
		assert_int_equal(seen[k], offs[k + 1]);
	/* Nothing good after the damage: the reader ends. */
	assert_int_equal(dump_resync(buf, n, offs[nrec - 1], DUMP_ROLE_SENDER), n);
}

/* ---- framesplit ---- */

struct got {
	size_t n;
	size_t len[16];
	int partial[16];
	uint8_t first[16];
};

static void
collect(void *arg, const uint8_t *p, size_t n, int partial)
{
	struct got *g = arg;

	assert_true(g->n < 16);
	g->len[g->n] = n;
	g->partial[g->n] = partial;
	g->first[g->n] = n > 0 ? p[0] : 0;
	g->n++;
}

static void
test_split_chunks(void **state)
{
	struct fbuf f;
	size_t chunk, off;

	(void)state;
	fbuf_init(&f, 4096);
	put_hello(&f, 1, FERRY_MAX_FRAME_DEFAULT);
	put_seq(&f, FT_PING, 5);
	put_error(&f, FERR_ABORTED, "operator abort");
	for (chunk = 1; chunk <= f.len; chunk++) {
		struct fsplit s;
		struct got g = { 0 };

		fsplit_init(&s, DUMP_FRAME_MAX);
		for (off = 0; off < f.len; off += chunk)
			assert_int_equal(fsplit_feed(&s, f.p + off, f.len - off < chunk ? f.len - off : chunk,
			    collect, &g), 0);
		fsplit_flush(&s, collect, &g);
		assert_int_equal(g.n, 3);
		assert_int_equal(g.len[0], 32);
		assert_int_equal(g.len[1], 16);
		assert_int_equal(g.first[2], FT_ERROR);
		assert_int_equal(g.partial[0] | g.partial[1] | g.partial[2], 0);
		fsplit_fini(&s);
	}
	fbuf_fini(&f);
}

static void
test_split_partial_and_limit(void **state)
{
	static const uint8_t big[8] = { FT_PAGES, 0, 0, 0, 0x10, 0, 0, 1 };  /* 256 MiB + 1 */
	struct fsplit s;
	struct got g = { 0 };
	struct fbuf f;

	(void)state;
	fbuf_init(&f, 256);
	put_seq(&f, FT_ACK, 3);
	fsplit_init(&s, DUMP_FRAME_MAX);
	assert_int_equal(fsplit_feed(&s, f.p, 11, collect, &g), 0);    /* header + 3 */
	assert_int_equal(g.n, 0);
	assert_int_equal(fsplit_pending(&s), 11);
	fsplit_flush(&s, collect, &g);
	assert_int_equal(g.n, 1);
	assert_int_equal(g.len[0], 11);
	assert_int_equal(g.partial[0], 1);
	/* Over the limit: the header alone, partial; the rest is lost. */
	assert_int_equal(fsplit_feed(&s, big, sizeof(big), collect, &g), 0);
	assert_int_equal(fsplit_feed(&s, f.p, f.len, collect, &g), 0);
	assert_int_equal(g.n, 2);
	assert_int_equal(g.len[1], 8);
	assert_int_equal(g.partial[1], 1);
	assert_true(s.lost == f.len);
	fsplit_fini(&s);
	fbuf_fini(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_resync),
		cmocka_unit_test(test_split_chunks),
		cmocka_unit_test(test_split_partial_and_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
