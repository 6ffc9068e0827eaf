/* rsess.c: the receiver state machine driven with frames built by the msg
 * encoders and a FAKE sink that keeps devices in memory and counts calls
 * (tests/testutil.h).  The test keeps its own copy of what each device
 * should hold, so COMMIT digests and the final bytes are checked against
 * an independent expectation. */
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
#include "rsess.h"

#include "testutil.h"

#define SEED 0x5eed5eed12345678ull
#define UNIT 4096u
#define MEM_ID 11u
#define DISK_ID 22u
#define MEM_UNITS 8u
#define DISK_SIZE (2 * UNIT + 100)      /* 3 units, the last of 100 bytes */
#define STATE_SIZE 300u

struct fx {
	struct fake_sink sink;
	struct rsess *s;
	struct msg_manifest *man;
	struct fbuf in;                 /* frames about to be fed */
	uint8_t *exp[2];                /* what each device should hold */
	uint8_t state[STATE_SIZE];
	struct ferr e;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->s = fake_rsess_new(&f->sink, FERRY_MAX_FRAME_DEFAULT);
	f->man = calloc(1, sizeof(*f->man));
	f->man->ndev = 2;
	f->man->state_size = STATE_SIZE;
	snprintf(f->man->state_name, sizeof(f->man->state_name), "vm.state");
	f->man->dev[0] = (struct dev_desc){ .id = MEM_ID, .kind = DK_MEMORY, .unit = UNIT,
		.size = MEM_UNITS * UNIT };
	snprintf(f->man->dev[0].name, sizeof(f->man->dev[0].name), "mem");
	f->man->dev[1] = (struct dev_desc){ .id = DISK_ID, .kind = DK_DISK, .unit = UNIT,
		.size = DISK_SIZE };
	snprintf(f->man->dev[1].name, sizeof(f->man->dev[1].name), "disk");
	f->exp[0] = calloc(1, MEM_UNITS * UNIT);
	f->exp[1] = calloc(1, DISK_SIZE);
	fbuf_init(&f->in, 2 * FERRY_MAX_FRAME_DEFAULT);
	fill_text(f->state, sizeof(f->state), 4);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	rsess_free(f->s);
	fake_release(&f->sink);
	fbuf_fini(&f->in);
	free(f->exp[0]);
	free(f->exp[1]);
	free(f->man);
	free(f);
	return 0;
}

/* Feed whatever was built into f->in, in one call. */
static int
fx_feed(struct fx *f)
{
	int rc;

	ferr_clear(&f->e);
	rc = feed_all(f->s, f->in.p, f->in.len, &f->e);
	f->in.len = 0;
	return rc;
}

static void
expect_frame(struct fx *f, uint8_t type, struct outframe *o)
{
	if (out_pop(f->s, o) != 0)
		fail_msg("expected a %s frame, output is empty", frame_name(type));
	if (o->h.type != type)
		fail_msg("expected a %s frame, got %s", frame_name(type), frame_name(o->h.type));
}

/* The next output frame is ERROR with this code, naming `what`. */
static void
expect_error(struct fx *f, int code, const char *what)
{
	struct outframe o;
	struct msg_text t;
	struct ferr e = { 0 };

	expect_frame(f, FT_ERROR, &o);
	assert_int_equal(msg_error_decode(o.payload, o.h.len, &t, &e), 0);
	assert_int_equal(t.code, (uint32_t)-code);
	if (what != NULL && strstr(t.text, what) == NULL)
		fail_msg("ERROR text '%s' does not name '%s'", t.text, what);
}

static void
expect_ack(struct fx *f, uint64_t seq)
{
	struct outframe o;
	struct msg_seq m;
	struct ferr e = { 0 };

	expect_frame(f, FT_ACK, &o);
	assert_int_equal(msg_seq_decode(FT_ACK, o.payload, o.h.len, &m, &e), 0);
	assert_int_equal(m.seq, seq);
}

/* HELLO and MANIFEST, WELCOME and ACCEPT taken from the output. */
static void
fx_start(struct fx *f)
{
	struct outframe o;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	put_manifest(&f->in, f->man);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_WELCOME, &o);
	expect_frame(f, FT_ACCEPT, &o);
	assert_int_equal(out_len(f->s), 0);
	assert_int_equal(rsess_state(f->s), RS_RECEIVING);
}

static uint32_t
unit_len(struct fx *f, uint32_t di, uint32_t idx)
{
	return dev_unit_len(&f->man->dev[di], idx);
}

static uint8_t *
exp_unit(struct fx *f, uint32_t di, uint32_t idx)
{
	return f->exp[di] + (uint64_t)idx * UNIT;
}

static uint8_t *
sink_unit(struct fx *f, uint32_t di, uint32_t idx)
{
	return f->sink.dev[di] + (uint64_t)idx * UNIT;
}

static struct page_entry
raw_entry(struct fx *f, uint32_t di, uint32_t idx, uint64_t rnd)
{
	struct tprng g = { rnd };
	struct page_entry pe;

	memset(&pe, 0, sizeof(pe));
	tprng_fill(&g, exp_unit(f, di, idx), unit_len(f, di, idx));
	pe.index = idx;
	pe.kind = PK_RAW;
	pe.data = exp_unit(f, di, idx);
	pe.data_len = unit_len(f, di, idx);
	return pe;
}

static struct page_entry
zero_entry(struct fx *f, uint32_t di, uint32_t idx)
{
	struct page_entry pe;

	memset(exp_unit(f, di, idx), 0, unit_len(f, di, idx));
	memset(&pe, 0, sizeof(pe));
	pe.index = idx;
	pe.kind = PK_ZERO;
	return pe;
}

/* A REF to (src_di, src_idx) as the test expects the receiver holds it. */
static struct page_entry
ref_entry(struct fx *f, uint32_t di, uint32_t idx, uint32_t src_di, uint32_t src_idx)
{
	struct page_entry pe;
	uint32_t len = unit_len(f, src_di, src_idx);

	memset(&pe, 0, sizeof(pe));
	pe.index = idx;
	pe.kind = PK_REF;
	pe.src_device = f->man->dev[src_di].id;
	pe.src_index = src_idx;
	page_hash(SEED, exp_unit(f, src_di, src_idx), len, pe.hash);
	memmove(exp_unit(f, di, idx), exp_unit(f, src_di, src_idx), len);
	return pe;
}

/* An LZ4 entry; comp must outlive the frame build. */
static struct page_entry
lz4_entry(struct fx *f, uint32_t di, uint32_t idx, unsigned salt, uint8_t *comp)
{
	struct page_entry pe;
	uint32_t len = unit_len(f, di, idx);

	fill_text(exp_unit(f, di, idx), len, salt);
	memset(&pe, 0, sizeof(pe));
	pe.index = idx;
	pe.kind = PK_LZ4;
	pe.data_len = codec_lz4_encode(exp_unit(f, di, idx), len, comp, len - 1);
	assert_true(pe.data_len > 0);
	pe.data = comp;
	return pe;
}

/* A COMMIT for seq with digests of what the test expects. */
static void
fx_commit(struct fx *f, uint64_t seq, struct msg_commit *c)
{
	uint32_t i;

	memset(c, 0, sizeof(*c));
	c->seq = seq;
	c->ndev = f->man->ndev;
	for (i = 0; i < c->ndev; i++) {
		c->dev[i].id = f->man->dev[i].id;
		image_digest(SEED, f->exp[i], f->man->dev[i].size, f->man->dev[i].unit,
		    c->dev[i].digest);
	}
}

static void
fx_send_state(struct fx *f)
{
	put_state(&f->in, 0, f->state, 200);
	put_state(&f->in, 200, f->state + 200, STATE_SIZE - 200);
	assert_int_equal(fx_feed(f), 0);
}

/* ================= the happy path ================= */

static void
test_hello_queues_welcome(void **state)
{
	struct fx *f = *state;
	struct outframe o;
	struct msg_welcome w;
	struct ferr e = { 0 };
	uint8_t sid[16];

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	assert_int_equal(fx_feed(f), 0);
	assert_int_equal(rsess_state(f->s), RS_WAIT_MANIFEST);
	expect_frame(f, FT_WELCOME, &o);
	assert_int_equal(msg_welcome_decode(o.payload, o.h.len, &w, &e), 0);
	assert_int_equal(w.version, FERRY_VERSION);
	assert_int_equal(w.caps, 0);
	assert_int_equal(w.max_frame, FERRY_MAX_FRAME_DEFAULT);
	test_random(sid, sizeof(sid));
	assert_memory_equal(w.session_id, sid, 16);
	assert_memory_equal(rsess_session_id(f->s), sid, 16);
	assert_int_equal(out_len(f->s), 0);
}

static void
test_unknown_caps_not_echoed(void **state)
{
	struct fx *f = *state;
	struct msg_hello h = { FERRY_VERSION, 0xffffffffu, FERRY_MAX_FRAME_DEFAULT, SEED };
	struct outframe o;
	struct msg_welcome w;
	struct ferr e = { 0 };
	struct wr wr;

	fbuf_wr(&f->in, &wr);
	assert_int_equal(msg_hello_encode(&wr, &h), 0);
	fbuf_done(&f->in, &wr);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_WELCOME, &o);
	assert_int_equal(msg_welcome_decode(o.payload, o.h.len, &w, &e), 0);
	/* Only what both know and this receiver offers (the fake: DOMAIN). */
	assert_int_equal(w.caps, FERRY_CAP_DOMAIN);
}

static void
test_manifest_queues_accept(void **state)
{
	struct fx *f = *state;
	struct outframe o;
	struct msg_accept a;
	struct ferr e = { 0 };
	uint8_t sid[16];

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	put_manifest(&f->in, f->man);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_WELCOME, &o);
	expect_frame(f, FT_ACCEPT, &o);
	assert_int_equal(msg_accept_decode(o.payload, o.h.len, &a, &e), 0);
	assert_int_equal(a.next_seq, 1);
	assert_int_equal(rsess_state(f->s), RS_RECEIVING);
	/* The sink saw the manifest, the seed and the session id. */
	assert_int_equal(f->sink.accept_calls, 1);
	assert_int_equal(f->sink.seed, SEED);
	test_random(sid, sizeof(sid));
	assert_memory_equal(f->sink.sid, sid, 16);
	assert_int_equal(f->sink.ndev, 2);
	assert_int_equal(f->sink.size[1], DISK_SIZE);
	assert_non_null(rsess_manifest(f->s));
	assert_string_equal(rsess_manifest(f->s)->dev[1].name, "disk");
}

static void
test_pages_of_each_kind_applied(void **state)
{
	struct fx *f = *state;
	uint8_t comp[UNIT];
	struct page_entry pe[4];
	const struct rsess_stats *st;

	fx_start(f);
	pe[0] = raw_entry(f, 0, 0, 1);
	pe[1] = lz4_entry(f, 0, 1, 2, comp);
	pe[2] = zero_entry(f, 0, 2);
	pe[3] = ref_entry(f, 0, 3, 0, 0);       /* written earlier in this frame */
	put_pages(&f->in, 1, MEM_ID, 1, pe, 4);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	assert_memory_equal(f->sink.dev[0], f->exp[0], MEM_UNITS * UNIT);
	assert_memory_equal(sink_unit(f, 0, 3), sink_unit(f, 0, 0), UNIT);
	st = rsess_stats(f->s);
	assert_int_equal(st->pages_raw, 1);
	assert_int_equal(st->pages_lz4, 1);
	assert_int_equal(st->pages_zero, 1);
	assert_int_equal(st->pages_dedup, 1);
	assert_int_equal(st->round, 1);
	assert_int_equal(rsess_last_seq(f->s), 1);
}

static void
test_zero_on_fresh_unit_writes_nothing(void **state)
{
	struct fx *f = *state;
	struct page_entry pe[2];

	fx_start(f);
	pe[0] = zero_entry(f, 0, 5);
	pe[1] = zero_entry(f, 1, 2);
	put_pages(&f->in, 1, MEM_ID, 1, pe, 1);
	put_pages(&f->in, 2, DISK_ID, 1, pe + 1, 1);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	expect_ack(f, 2);
	assert_int_equal(f->sink.write_calls, 0);
	assert_int_equal(rsess_stats(f->s)->pages_zero, 2);
}

static void
test_zero_overwrites_written_unit(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = raw_entry(f, 0, 6, 7);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	pe = zero_entry(f, 0, 6);
	put_pages(&f->in, 2, MEM_ID, 2, &pe, 1);
	assert_int_equal(fx_feed(f), 0);
	assert_int_equal(f->sink.write_calls, 2);
	assert_int_equal(f->sink.last_write_off, 6 * UNIT);
	assert_int_equal(f->sink.last_write_len, UNIT);
	assert_true(page_is_zero(sink_unit(f, 0, 6), UNIT));
}

static void
test_raw_last_partial_unit(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = raw_entry(f, 1, 2, 3);
	assert_int_equal(pe.data_len, 100);
	put_pages(&f->in, 1, DISK_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	assert_int_equal(f->sink.last_write_dev, 1);
	assert_int_equal(f->sink.last_write_off, 2 * UNIT);
	assert_int_equal(f->sink.last_write_len, 100);
	assert_memory_equal(sink_unit(f, 1, 2), exp_unit(f, 1, 2), 100);
	assert_int_equal(rsess_stats(f->s)->logical_bytes, 100);
}

static void
test_ref_across_devices(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = raw_entry(f, 1, 0, 11);
	put_pages(&f->in, 1, DISK_ID, 1, &pe, 1);
	pe = ref_entry(f, 0, 7, 1, 0);
	put_pages(&f->in, 2, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	expect_ack(f, 2);
	assert_memory_equal(sink_unit(f, 0, 7), exp_unit(f, 1, 0), UNIT);
	assert_int_equal(f->sink.read_calls, 1);
}

static void
test_ref_to_never_written_unit_is_zero(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = ref_entry(f, 0, 1, 0, 4);          /* unit 4 still all zeros */
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	assert_true(page_is_zero(sink_unit(f, 0, 1), UNIT));
}

static void
test_state_written_in_order(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	fx_send_state(f);
	assert_int_equal(out_len(f->s), 0);     /* STATE is not acknowledged */
	assert_int_equal(f->sink.state_calls, 2);
	assert_memory_equal(f->sink.state, f->state, STATE_SIZE);
	assert_int_equal(rsess_stats(f->s)->state_bytes, STATE_SIZE);
}

static void
test_commit_queues_committed(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;
	struct msg_commit c;
	struct outframe o;
	struct msg_seq m;
	struct ferr e = { 0 };

	fx_start(f);
	pe = raw_entry(f, 0, 0, 5);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	fx_send_state(f);
	fx_commit(f, 1, &c);
	put_commit(&f->in, &c);
	f->sink.verify = 1;
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_COMMITTED, &o);
	assert_int_equal(msg_seq_decode(FT_COMMITTED, o.payload, o.h.len, &m, &e), 0);
	assert_int_equal(m.seq, 1);
	assert_int_equal(rsess_state(f->s), RS_COMMITTED);
	assert_int_equal(f->sink.commit_calls, 1);
	assert_int_equal(f->sink.last_commit.ndev, 2);
	assert_int_equal(f->sink.abort_calls, 0);
	rsess_free(f->s);                       /* committed: nothing to remove */
	f->s = NULL;
	assert_int_equal(f->sink.abort_calls, 0);
}

/* Everything together: every kind on both devices over two rounds, the
 * state, the commit; the sink ends up holding exactly the images. */
static void
test_full_session(void **state)
{
	struct fx *f = *state;
	uint8_t comp[2][UNIT];
	struct page_entry pe[MEM_UNITS];
	struct msg_commit c;
	struct outframe o;
	uint32_t i;

	fx_start(f);
	/* round 1: every unit */
	for (i = 0; i < MEM_UNITS; i++) {
		switch (i % 4) {
		case 0: pe[i] = raw_entry(f, 0, i, 100 + i); break;
		case 1: pe[i] = lz4_entry(f, 0, i, i, comp[i / 4]); break;
		case 2: pe[i] = zero_entry(f, 0, i); break;
		default: pe[i] = ref_entry(f, 0, i, 0, i - 3); break;
		}
	}
	put_pages(&f->in, 1, MEM_ID, 1, pe, MEM_UNITS);
	pe[0] = raw_entry(f, 1, 0, 200);
	pe[1] = zero_entry(f, 1, 1);
	pe[2] = raw_entry(f, 1, 2, 201);
	put_pages(&f->in, 2, DISK_ID, 1, pe, 3);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	expect_ack(f, 2);
	/* round 2: a few changed units */
	pe[0] = raw_entry(f, 0, 2, 300);
	pe[1] = zero_entry(f, 0, 0);
	pe[2] = ref_entry(f, 0, 4, 1, 0);
	put_pages(&f->in, 3, MEM_ID, 2, pe, 3);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 3);
	fx_send_state(f);
	fx_commit(f, 3, &c);
	put_commit(&f->in, &c);
	f->sink.verify = 1;
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_COMMITTED, &o);
	assert_int_equal(out_len(f->s), 0);
	assert_int_equal(rsess_state(f->s), RS_COMMITTED);
	assert_memory_equal(f->sink.dev[0], f->exp[0], MEM_UNITS * UNIT);
	assert_memory_equal(f->sink.dev[1], f->exp[1], DISK_SIZE);
	assert_memory_equal(f->sink.state, f->state, STATE_SIZE);
	assert_int_equal(f->sink.commit_calls, 1);
	assert_int_equal(f->sink.abort_calls, 0);
	assert_int_equal(rsess_stats(f->s)->round, 2);
	assert_int_equal(rsess_error(f->s)->code, 0);
}

/* ================= frames out of order ================= */

static void
test_pages_before_manifest(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;
	struct outframe o;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	pe = zero_entry(f, 0, 0);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	assert_int_equal(f->e.code, FERR_PROTO_STATE);
	expect_frame(f, FT_WELCOME, &o);
	expect_error(f, FERR_PROTO_STATE, "PAGES");
	assert_int_equal(rsess_state(f->s), RS_FAILED);
	assert_int_equal(rsess_error(f->s)->code, FERR_PROTO_STATE);
	assert_int_equal(f->sink.accept_calls, 0);
	assert_int_equal(f->sink.abort_calls, 0);       /* nothing was staged */
}

static void
test_pages_before_hello(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	pe = zero_entry(f, 0, 0);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	expect_error(f, FERR_PROTO_STATE, "WAIT_HELLO");
}

static void
test_manifest_twice(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	put_manifest(&f->in, f->man);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	expect_error(f, FERR_PROTO_STATE, "MANIFEST");
	assert_int_equal(f->sink.accept_calls, 1);
	assert_int_equal(f->sink.abort_calls, 1);       /* staging removed */
	assert_int_equal(rsess_state(f->s), RS_FAILED);
}

static void
test_commit_before_manifest(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;
	struct outframe o;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	fx_commit(f, 0, &c);
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	expect_frame(f, FT_WELCOME, &o);
	expect_error(f, FERR_PROTO_STATE, "COMMIT");
	assert_int_equal(f->sink.commit_calls, 0);
}

static void
test_hello_twice(void **state)
{
	struct fx *f = *state;
	struct outframe o;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	put_hello(&f->in, SEED + 1, FERRY_MAX_FRAME_DEFAULT);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	expect_frame(f, FT_WELCOME, &o);
	expect_error(f, FERR_PROTO_STATE, "HELLO");
}

static void
test_bad_hello_version(void **state)
{
	struct fx *f = *state;
	struct msg_hello h = { 2, 0, FERRY_MAX_FRAME_DEFAULT, SEED };
	struct wr w;

	fbuf_wr(&f->in, &w);
	assert_int_equal(msg_hello_encode(&w, &h), 0);
	fbuf_done(&f->in, &w);
	assert_int_equal(fx_feed(f), FERR_PROTO_VERSION);
	expect_error(f, FERR_PROTO_VERSION, "HELLO");
	assert_int_equal(rsess_state(f->s), RS_FAILED);
}

/* ================= bad PAGES ================= */

static void
test_ref_wrong_hash(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = raw_entry(f, 0, 0, 9);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	pe = ref_entry(f, 0, 1, 0, 0);
	pe.hash[5] ^= 0x40;
	put_pages(&f->in, 2, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_HASH);
	expect_error(f, FERR_PROTO_HASH, "PAGES");
	assert_int_equal(out_len(f->s), 0);             /* no ACK 2 */
	assert_int_equal(f->sink.abort_calls, 1);
	assert_true(page_is_zero(sink_unit(f, 0, 1), UNIT));    /* nothing copied */
	rsess_free(f->s);
	f->s = NULL;
	assert_int_equal(f->sink.abort_calls, 1);       /* exactly once */
}

static void
test_ref_unknown_device(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = ref_entry(f, 0, 1, 0, 0);
	pe.src_device = 99;
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "src_device");
	assert_int_equal(f->sink.read_calls, 0);
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_ref_index_out_of_range(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = ref_entry(f, 0, 1, 0, 0);
	pe.src_device = DISK_ID;
	pe.src_index = 3;                       /* the disk has 3 units */
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "src_index");
	assert_int_equal(f->sink.read_calls, 0);
}

static void
test_ref_length_mismatch(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = ref_entry(f, 0, 1, 0, 0);
	pe.src_device = DISK_ID;
	pe.src_index = 2;                       /* 100 bytes, the target is 4096 */
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	assert_int_equal(f->sink.read_calls, 0);
}

static void
test_pages_unknown_device(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = zero_entry(f, 0, 0);
	put_pages(&f->in, 1, 33, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "device 33");
}

static void
test_pages_index_out_of_range(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = zero_entry(f, 1, 0);
	pe.index = 3;
	put_pages(&f->in, 1, DISK_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "index 3");
	assert_int_equal(f->sink.write_calls, 0);
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_pages_seq_gap(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = raw_entry(f, 0, 0, 1);
	put_pages(&f->in, 2, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "gap");
	assert_int_equal(f->sink.write_calls, 0);
}

static void
test_pages_duplicate_ignored(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;
	uint8_t first[UNIT];

	fx_start(f);
	pe = raw_entry(f, 0, 0, 1);
	memcpy(first, exp_unit(f, 0, 0), UNIT);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	pe = raw_entry(f, 0, 0, 2);             /* same seq, other content */
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), 0);
	assert_int_equal(out_len(f->s), 0);
	assert_int_equal(f->sink.write_calls, 1);
	assert_memory_equal(sink_unit(f, 0, 0), first, UNIT);
	assert_int_equal(rsess_state(f->s), RS_RECEIVING);
	/* and the next one in sequence still applies */
	pe = raw_entry(f, 0, 1, 3);
	put_pages(&f->in, 2, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 2);
}

static void
test_lz4_wrong_size(void **state)
{
	struct fx *f = *state;
	uint8_t src[2048], comp[2048];
	struct page_entry pe;

	fx_start(f);
	fill_text(src, sizeof(src), 1);
	memset(&pe, 0, sizeof(pe));
	pe.index = 0;
	pe.kind = PK_LZ4;
	pe.data = comp;
	pe.data_len = codec_lz4_encode(src, sizeof(src), comp, sizeof(comp) - 1);
	assert_true(pe.data_len > 0);           /* decodes to 2 KiB, not 4 */
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_CODEC);
	expect_error(f, FERR_PROTO_CODEC, "LZ4");
	assert_int_equal(f->sink.write_calls, 0);
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_pages_trailing_bytes(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = zero_entry(f, 0, 0);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	/* One byte more in the payload than the one entry uses. */
	f->in.p[f->in.len] = 0;
	f->in.len++;
	f->in.p[7]++;
	assert_int_equal(fx_feed(f), FERR_PROTO_LENGTH);
	expect_error(f, FERR_PROTO_LENGTH, "PAGES");
}

/* ================= bad STATE and COMMIT ================= */

static void
test_state_wrong_offset(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	put_state(&f->in, 10, f->state, 10);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "STATE");
	assert_int_equal(f->sink.state_calls, 0);
}

static void
test_state_past_size(void **state)
{
	struct fx *f = *state;
	uint8_t big[STATE_SIZE + 1] = { 0 };

	fx_start(f);
	put_state(&f->in, 0, big, sizeof(big));
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "state_size");
	assert_int_equal(f->sink.state_calls, 0);
}

static void
test_commit_wrong_seq(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;
	struct msg_commit c;

	fx_start(f);
	pe = raw_entry(f, 0, 0, 1);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	fx_send_state(f);
	fx_commit(f, 2, &c);
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "COMMIT");
	assert_int_equal(f->sink.commit_calls, 0);
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_commit_wrong_ndev(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;

	fx_start(f);
	fx_send_state(f);
	fx_commit(f, 0, &c);
	c.ndev = 1;
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "ndev");
	assert_int_equal(f->sink.commit_calls, 0);
}

static void
test_commit_devices_out_of_order(void **state)
{
	struct fx *f = *state;
	struct commit_dev tmp;
	struct msg_commit c;

	fx_start(f);
	fx_send_state(f);
	fx_commit(f, 0, &c);
	tmp = c.dev[0];
	c.dev[0] = c.dev[1];
	c.dev[1] = tmp;
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	assert_int_equal(f->sink.commit_calls, 0);
}

static void
test_commit_before_all_state(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;

	fx_start(f);
	put_state(&f->in, 0, f->state, 200);
	fx_commit(f, 0, &c);
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "state");
	assert_int_equal(f->sink.commit_calls, 0);
}

static void
test_commit_digest_mismatch(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;
	struct msg_commit c;

	fx_start(f);
	pe = raw_entry(f, 1, 1, 1);
	put_pages(&f->in, 1, DISK_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	fx_send_state(f);
	fx_commit(f, 1, &c);
	c.dev[1].digest[0] ^= 1;
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), FERR_VERIFY);
	expect_error(f, FERR_VERIFY, "disk");
	assert_int_equal(f->sink.commit_calls, 0);
	assert_int_equal(f->sink.abort_calls, 1);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
}

/* ================= the sink says no or fails ================= */

static void
test_sink_refusal(void **state)
{
	struct fx *f = *state;
	struct outframe o;
	struct msg_text t;
	struct ferr e = { 0 };
	size_t used = 0, total;

	f->sink.accept_rc = FERR_REFUSE_SPACE;
	f->sink.refuse_device = DISK_ID;
	f->sink.refuse_text = "disk: needs 8292 bytes, 0 free";
	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	put_manifest(&f->in, f->man);
	total = f->in.len;
	assert_int_equal(rsess_feed(f->s, f->in.p, f->in.len, &used, &f->e), FERR_REFUSE_SPACE);
	assert_int_equal(used, total);          /* the MANIFEST was consumed */
	assert_int_equal(f->e.code, FERR_REFUSE_SPACE);
	expect_frame(f, FT_WELCOME, &o);
	expect_frame(f, FT_REFUSE, &o);
	assert_int_equal(msg_refuse_decode(o.payload, o.h.len, &t, &e), 0);
	assert_int_equal(t.code, 24);
	assert_int_equal(t.device, DISK_ID);
	assert_string_equal(t.text, "disk: needs 8292 bytes, 0 free");
	assert_int_equal(out_len(f->s), 0);             /* no ERROR after it */
	assert_int_equal(rsess_state(f->s), RS_FAILED);
	assert_int_equal(rsess_error(f->s)->code, FERR_REFUSE_SPACE);
	assert_int_equal(f->sink.abort_calls, 0);
	rsess_free(f->s);
	f->s = NULL;
	assert_int_equal(f->sink.abort_calls, 0);       /* nothing was staged */
}

static void
test_sink_write_failure(void **state)
{
	struct fx *f = *state;
	struct page_entry pe[2];

	fx_start(f);
	f->sink.write_fail_at = 2;
	pe[0] = raw_entry(f, 0, 0, 1);
	pe[1] = raw_entry(f, 0, 1, 2);
	put_pages(&f->in, 1, MEM_ID, 1, pe, 2);
	assert_int_equal(fx_feed(f), FERR_IO);
	expect_error(f, FERR_IO, "fake");
	assert_int_equal(out_len(f->s), 0);
	assert_int_equal(f->sink.abort_calls, 1);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
}

/* ================= feeding bytes ================= */

static void
test_frame_fed_one_byte_at_a_time(void **state)
{
	struct fx *f = *state;
	size_t k, used;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	for (k = 0; k < f->in.len; k++) {
		used = 99;
		assert_int_equal(rsess_feed(f->s, f->in.p, k, &used, &f->e), 0);
		assert_int_equal(used, 0);
		assert_int_equal(out_len(f->s), 0);
		assert_int_equal(rsess_state(f->s), RS_WAIT_HELLO);
	}
	assert_int_equal(rsess_feed(f->s, f->in.p, f->in.len, &used, &f->e), 0);
	assert_int_equal(used, f->in.len);
	assert_int_equal(rsess_state(f->s), RS_WAIT_MANIFEST);
	assert_true(out_len(f->s) > 0);
}

/* A whole session arriving one byte per read, the way a daemon keeps the
 * unconsumed tail and appends the next read to it. */
static void
test_session_in_single_bytes(void **state)
{
	struct fx *f = *state;
	struct page_entry pe[3];
	struct msg_commit c;
	uint8_t *pend;
	size_t npend = 0, k, used;
	int acks = 0, committed = 0;
	struct outframe o;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	put_manifest(&f->in, f->man);
	pe[0] = raw_entry(f, 0, 0, 1);
	pe[1] = zero_entry(f, 0, 1);
	pe[2] = ref_entry(f, 0, 2, 0, 0);
	put_pages(&f->in, 1, MEM_ID, 1, pe, 3);
	pe[0] = raw_entry(f, 1, 2, 2);
	put_pages(&f->in, 2, DISK_ID, 1, pe, 1);
	put_state(&f->in, 0, f->state, STATE_SIZE);
	fx_commit(f, 2, &c);
	put_commit(&f->in, &c);
	pend = malloc(f->in.len);
	assert_non_null(pend);
	for (k = 0; k < f->in.len; k++) {
		pend[npend++] = f->in.p[k];
		assert_int_equal(rsess_feed(f->s, pend, npend, &used, &f->e), 0);
		memmove(pend, pend + used, npend - used);
		npend -= used;
	}
	assert_int_equal(npend, 0);
	free(pend);
	while (out_pop(f->s, &o) == 0) {
		acks += o.h.type == FT_ACK;
		committed += o.h.type == FT_COMMITTED;
	}
	assert_int_equal(acks, 2);
	assert_int_equal(committed, 1);
	assert_int_equal(rsess_state(f->s), RS_COMMITTED);
	assert_memory_equal(f->sink.dev[0], f->exp[0], MEM_UNITS * UNIT);
	assert_memory_equal(f->sink.dev[1], f->exp[1], DISK_SIZE);
	assert_int_equal(rsess_stats(f->s)->frames, 6);
	f->in.len = 0;
}

static void
test_several_frames_in_one_feed(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;
	struct outframe o;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	put_manifest(&f->in, f->man);
	pe = raw_entry(f, 0, 3, 1);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	pe = raw_entry(f, 0, 4, 2);
	put_pages(&f->in, 2, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), 0);        /* checks every byte consumed */
	expect_frame(f, FT_WELCOME, &o);
	expect_frame(f, FT_ACCEPT, &o);
	expect_ack(f, 1);
	expect_ack(f, 2);
	assert_int_equal(out_len(f->s), 0);
	assert_int_equal(rsess_stats(f->s)->frames, 4);
}

static void
test_partial_frame_left_unconsumed(void **state)
{
	struct fx *f = *state;
	size_t hello_len, used = 0;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	hello_len = f->in.len;
	put_manifest(&f->in, f->man);
	assert_int_equal(rsess_feed(f->s, f->in.p, f->in.len - 1, &used, &f->e), 0);
	assert_int_equal(used, hello_len);
	assert_int_equal(rsess_state(f->s), RS_WAIT_MANIFEST);
	assert_int_equal(f->sink.accept_calls, 0);
	assert_int_equal(rsess_feed(f->s, f->in.p + used, f->in.len - used, &used, &f->e), 0);
	assert_int_equal(rsess_state(f->s), RS_RECEIVING);
	f->in.len = 0;
}

static void
test_frames_after_commit_refused(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;
	struct outframe o;
	struct page_entry pe;

	fx_start(f);
	fx_send_state(f);
	fx_commit(f, 0, &c);
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_COMMITTED, &o);
	pe = zero_entry(f, 0, 0);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	assert_non_null(strstr(f->e.msg, "PAGES"));
	assert_int_equal(out_len(f->s), 0);
	assert_int_equal(rsess_state(f->s), RS_COMMITTED);
	assert_int_equal(f->sink.commit_calls, 1);
	assert_int_equal(f->sink.abort_calls, 0);
	assert_int_equal(f->sink.write_calls, 0);
}

static void
test_frames_after_failure_refused(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	pe = zero_entry(f, 0, 0);
	put_pages(&f->in, 5, MEM_ID, 1, &pe, 1);        /* gap: fails */
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, NULL);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	assert_int_equal(out_len(f->s), 0);             /* no second ERROR */
	assert_int_equal(f->sink.abort_calls, 1);
	assert_int_equal(rsess_error(f->s)->code, FERR_PROTO_RANGE);   /* the first */
}

/* ================= headers ================= */

static void
test_oversized_length_refused_from_header(void **state)
{
	struct fx *f = *state;
	static const uint8_t hdr[8] = { FT_PAGES, 0, 0, 0, 0xff, 0xff, 0xff, 0xff };
	size_t used = 1;

	fx_start(f);
	/* Only the header has arrived: refused now, not after 4 GiB. */
	assert_int_equal(rsess_feed(f->s, hdr, sizeof(hdr), &used, &f->e), FERR_PROTO_LENGTH);
	assert_int_equal(used, 0);
	expect_error(f, FERR_PROTO_LENGTH, "PAGES");
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_over_own_max_refused(void **state)
{
	struct fx *f = *state;
	uint8_t hdr[8] = { FT_STATE, 0, 0, 0, 0, 0, 0, 0 };
	uint32_t len = FERRY_MAX_FRAME_DEFAULT + 1;
	size_t used;

	fx_start(f);
	hdr[4] = (uint8_t)(len >> 24);
	hdr[5] = (uint8_t)(len >> 16);
	hdr[6] = (uint8_t)(len >> 8);
	hdr[7] = (uint8_t)len;
	assert_int_equal(rsess_feed(f->s, hdr, sizeof(hdr), &used, &f->e), FERR_PROTO_LENGTH);
}

static void
test_unknown_type(void **state)
{
	struct fx *f = *state;
	static const uint8_t hdr[8] = { 200, 0, 0, 0, 0, 0, 0, 8 };
	size_t used;

	assert_int_equal(rsess_feed(f->s, hdr, sizeof(hdr), &used, &f->e), FERR_PROTO_TYPE);
	expect_error(f, FERR_PROTO_TYPE, "200");
	assert_int_equal(rsess_state(f->s), RS_FAILED);
}

static void
test_receiver_frame_type_refused(void **state)
{
	struct fx *f = *state;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	assert_int_equal(fx_feed(f), 0);
	put_seq(&f->in, FT_ACK, 1);             /* R->S only */
	assert_int_equal(fx_feed(f), FERR_PROTO_TYPE);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
}

static void
test_header_flags_refused(void **state)
{
	struct fx *f = *state;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	f->in.p[1] = 0x01;
	assert_int_equal(fx_feed(f), FERR_PROTO);
	expect_error(f, FERR_PROTO, "flags");
}

/* Section 3.3: a receiver accepts frames up to the max_frame it announced
 * in WELCOME, even when the sender announced a smaller one in HELLO. */
static void
test_frame_up_to_own_announced_max_accepted(void **state)
{
	struct fx *f = *state;
	struct page_entry pe[300];
	struct outframe o;
	uint32_t i;

	rsess_free(f->s);
	f->s = fake_rsess_new(&f->sink, 2 * FERRY_MAX_FRAME_MIN);
	put_hello(&f->in, SEED, FERRY_MAX_FRAME_MIN);   /* the sender's minimum */
	put_manifest(&f->in, f->man);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_WELCOME, &o);
	expect_frame(f, FT_ACCEPT, &o);
	for (i = 0; i < MEM_UNITS; i++)
		pe[i] = raw_entry(f, 0, i, 40 + i);
	for (i = MEM_UNITS; i < 300; i++)
		pe[i] = raw_entry(f, 0, i % MEM_UNITS, 40 + i % MEM_UNITS);
	put_pages(&f->in, 1, MEM_ID, 1, pe, 300);
	assert_true(f->in.len - FERRY_FRAME_HDR_LEN > FERRY_MAX_FRAME_MIN);
	assert_true(f->in.len - FERRY_FRAME_HDR_LEN <= 2 * FERRY_MAX_FRAME_MIN);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
}

/* ================= DOMAIN and CHECKS (section 4.15) ================= */

static void
put_hello_domain(struct fbuf *b)
{
	struct msg_hello h = { FERRY_VERSION, FERRY_CAP_DOMAIN, FERRY_MAX_FRAME_DEFAULT, SEED };
	struct wr w;

	fbuf_wr(b, &w);
	assert_int_equal(msg_hello_encode(&w, &h), 0);
	fbuf_done(b, &w);
}

static void
put_domain(struct fbuf *b, uint32_t flags)
{
	static const char xml[] = "<domain type='test'><name>vm1</name></domain>";
	struct msg_domain d;
	struct wr w;

	memset(&d, 0, sizeof(d));
	d.flags = flags;
	snprintf(d.arch, sizeof(d.arch), "x86_64");
	d.nwaive = 1;
	snprintf(d.waive[0], sizeof(d.waive[0]), "cache");
	d.xml = (const uint8_t *)xml;
	d.xml_len = sizeof(xml) - 1;
	fbuf_wr(b, &w);
	assert_int_equal(msg_domain_encode(&w, &d), 0);
	fbuf_done(b, &w);
}

static void
expect_checks(struct fx *f, uint8_t status)
{
	struct outframe o;
	struct msg_checks *c = calloc(1, sizeof(*c));
	struct ferr e = { 0 };

	assert_non_null(c);
	expect_frame(f, FT_CHECKS, &o);
	assert_int_equal(msg_checks_decode(o.payload, o.h.len, c, &e), 0);
	assert_int_equal(c->n, 1);
	assert_string_equal(c->row[0].name, "cpu-arch");
	assert_int_equal(c->row[0].status, status);
	assert_string_equal(c->row[0].src, "x86_64");
	free(c);
}

static void
test_domain_welcome_offers_cap(void **state)
{
	struct fx *f = *state;
	struct outframe o;
	struct msg_welcome w;
	struct ferr e = { 0 };

	put_hello_domain(&f->in);
	put_domain(&f->in, 0);
	put_manifest(&f->in, f->man);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_WELCOME, &o);
	assert_int_equal(msg_welcome_decode(o.payload, o.h.len, &w, &e), 0);
	assert_int_equal(w.caps, FERRY_CAP_DOMAIN);
	expect_checks(f, CS_PASS);
	expect_frame(f, FT_ACCEPT, &o);
	assert_int_equal(f->sink.domain_calls, 1);
	assert_int_equal(f->sink.domain_nwaive, 1);
	assert_int_equal(f->sink.accept_calls, 1);
	assert_int_equal(rsess_state(f->s), RS_RECEIVING);
}

static void
test_domain_without_cap_refused(void **state)
{
	struct fx *f = *state;
	struct outframe o;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);   /* caps 0 */
	put_domain(&f->in, 0);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	expect_frame(f, FT_WELCOME, &o);
	expect_error(f, FERR_PROTO_STATE, "DOMAIN");
	assert_int_equal(f->sink.domain_calls, 0);
}

static void
test_domain_twice_refused(void **state)
{
	struct fx *f = *state;
	struct outframe o;

	put_hello_domain(&f->in);
	put_domain(&f->in, 0);
	put_domain(&f->in, 0);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	expect_frame(f, FT_WELCOME, &o);
	expect_error(f, FERR_PROTO_STATE, "twice");
}

static void
test_domain_failed_check_refuses_before_staging(void **state)
{
	struct fx *f = *state;
	struct outframe o;
	struct msg_text t;
	struct ferr e = { 0 };

	f->sink.domain_rc = FERR_VIRT_ARCH;
	put_hello_domain(&f->in);
	put_domain(&f->in, 0);
	put_manifest(&f->in, f->man);
	assert_int_equal(fx_feed(f), FERR_VIRT_ARCH);
	expect_frame(f, FT_WELCOME, &o);
	expect_checks(f, CS_FAIL);
	expect_frame(f, FT_REFUSE, &o);
	assert_int_equal(msg_refuse_decode(o.payload, o.h.len, &t, &e), 0);
	assert_int_equal(t.code, (uint32_t)-FERR_VIRT_ARCH);
	assert_non_null(strstr(t.text, "cpu-arch"));
	assert_int_equal(f->sink.accept_calls, 0);       /* nothing staged */
	assert_int_equal(rsess_state(f->s), RS_FAILED);
}

static void
test_domain_check_only_migrates_nothing(void **state)
{
	struct fx *f = *state;
	struct outframe o;
	struct msg_text t;
	struct ferr e = { 0 };

	put_hello_domain(&f->in);
	put_domain(&f->in, FERRY_DOMAIN_CHECK_ONLY);
	put_manifest(&f->in, f->man);
	assert_int_equal(fx_feed(f), FERR_REFUSED);
	expect_frame(f, FT_WELCOME, &o);
	expect_checks(f, CS_PASS);
	expect_frame(f, FT_REFUSE, &o);
	assert_int_equal(msg_refuse_decode(o.payload, o.h.len, &t, &e), 0);
	assert_int_equal(t.code, (uint32_t)-FERR_REFUSED);
	assert_non_null(strstr(t.text, "check only"));
	assert_int_equal(f->sink.domain_flags, FERRY_DOMAIN_CHECK_ONLY);
	assert_int_equal(f->sink.accept_calls, 0);
}

/* ================= ending ================= */

static void
test_peer_error_ends_session(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	put_error(&f->in, FERR_ABORTED, "operator abort");
	assert_int_equal(fx_feed(f), FERR_ABORTED);
	assert_non_null(strstr(f->e.msg, "operator abort"));
	assert_int_equal(out_len(f->s), 0);             /* nothing to answer */
	assert_int_equal(rsess_state(f->s), RS_FAILED);
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_peer_error_timeout_stays_timeout(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	put_error(&f->in, FERR_TIMEOUT, "migration not complete after 3000 ms");
	assert_int_equal(fx_feed(f), FERR_TIMEOUT);
	assert_non_null(strstr(f->e.msg, "sender: migration not complete"));
	assert_int_equal(rsess_state(f->s), RS_FAILED);
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_peer_error_other_code_is_net(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	put_error(&f->in, FERR_IO, "disk gone");
	assert_int_equal(fx_feed(f), FERR_NET);
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_fail_aborts_once(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	rsess_fail(f->s, FERR_NET, "connection lost");
	assert_int_equal(rsess_state(f->s), RS_FAILED);
	assert_int_equal(rsess_error(f->s)->code, FERR_NET);
	assert_int_equal(f->sink.abort_calls, 1);
	rsess_fail(f->s, FERR_TIMEOUT, "again");
	rsess_free(f->s);
	f->s = NULL;
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_fail_after_commit_keeps_files(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;

	fx_start(f);
	fx_send_state(f);
	fx_commit(f, 0, &c);
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), 0);
	rsess_fail(f->s, FERR_NET, "connection lost after COMMITTED");
	assert_int_equal(rsess_state(f->s), RS_COMMITTED);
	assert_int_equal(f->sink.abort_calls, 0);
}

static void
test_free_before_commit_aborts(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	rsess_free(f->s);
	f->s = NULL;
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_free_before_manifest_does_not_abort(void **state)
{
	struct fx *f = *state;

	put_hello(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT);
	assert_int_equal(fx_feed(f), 0);
	rsess_free(f->s);
	f->s = NULL;
	assert_int_equal(f->sink.abort_calls, 0);
	rsess_free(NULL);
}

/* ================= return trips: HAVE (section 4.19) ================= */

/* A session that offers CAP_REUSE instead of the fixture's. */
static void
fx_reuse_session(struct fx *f)
{
	rsess_free(f->s);
	f->s = fake_rsess_new_caps(&f->sink, FERRY_MAX_FRAME_DEFAULT, FERRY_CAP_REUSE);
}

/* HELLO with CAP_REUSE and the MANIFEST: WELCOME grants it, and the
 * session waits in REUSING with nothing more queued. */
static void
fx_reuse_start(struct fx *f)
{
	struct outframe o;
	struct msg_welcome w;
	struct ferr e = { 0 };

	put_hello_with_caps(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT, FERRY_CAP_REUSE);
	put_manifest(&f->in, f->man);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_WELCOME, &o);
	assert_int_equal(msg_welcome_decode(o.payload, o.h.len, &w, &e), 0);
	assert_int_equal(w.caps, FERRY_CAP_REUSE);
	assert_int_equal(rsess_state(f->s), RS_REUSING);
	assert_int_equal(out_len(f->s), 0);
	assert_int_equal(f->sink.reuse_calls, 0);
}

/* The next output frame is HAVE for units [first, first + count) of
 * device di, with the hashes of img (what the existing file holds). */
static void
expect_have(struct fx *f, const struct msg_manifest *man, uint32_t di, uint32_t first,
    uint32_t count, const uint8_t *img)
{
	const struct dev_desc *d = &man->dev[di];
	struct frame_hdr h;
	struct msg_have m;
	struct ferr e = { 0 };
	uint8_t *p = NULL, want[FERRY_HASH_LEN], *zero = calloc(1, d->unit);
	uint32_t k;

	assert_non_null(zero);
	if (out_pop_big(f->s, &h, &p) != 0)
		fail_msg("expected HAVE, output is empty");
	if (h.type != FT_HAVE)
		fail_msg("expected HAVE, got %s", frame_name(h.type));
	assert_true(h.len <= FERRY_MAX_FRAME_DEFAULT);
	assert_int_equal(msg_have_decode(p, h.len, &m, &e), 0);
	assert_int_equal(m.device, d->id);
	assert_int_equal(m.first, first);
	assert_int_equal(m.count, count);
	for (k = 0; k < count; k++) {
		uint64_t idx = (uint64_t)first + k;

		page_hash(SEED, img ? img + idx * d->unit : zero, dev_unit_len(d, idx), want);
		if (memcmp(want, m.hashes + (size_t)k * FERRY_HASH_LEN, FERRY_HASH_LEN) != 0)
			fail_msg("HAVE device %u unit %llu: wrong hash", d->id, (unsigned long long)idx);
	}
	free(p);
	free(zero);
}

/* A memory image the "existing file" holds: text, not zeros. */
static void
fx_old_mem(struct fx *f, uint8_t *img)
{
	uint32_t i;

	for (i = 0; i < MEM_UNITS; i++)
		fill_text(img + (size_t)i * UNIT, UNIT, 50 + i);
	f->sink.reuse_img[0] = img;
	memcpy(f->exp[0], img, MEM_UNITS * UNIT);
}

static void
test_reuse_have_then_accept(void **state)
{
	struct fx *f = *state;
	static uint8_t img[MEM_UNITS * UNIT];
	struct outframe o;
	struct msg_commit c;

	fx_reuse_session(f);
	fx_old_mem(f, img);
	fx_reuse_start(f);
	assert_int_equal(drive_reuse(f->s, 1ull << 30, &f->e), 1);
	/* HAVE for the memory image, none for the disk (no file), then ACCEPT. */
	expect_have(f, f->man, 0, 0, MEM_UNITS, img);
	expect_frame(f, FT_ACCEPT, &o);
	assert_int_equal(out_len(f->s), 0);
	assert_int_equal(rsess_state(f->s), RS_RECEIVING);
	assert_int_equal(f->sink.reuse_calls, 2);
	assert_int_equal(f->sink.reuse_units[0], MEM_UNITS);
	assert_int_equal(f->sink.reuse_units[1], 0);
	assert_int_equal(rsess_stats(f->s)->units_offered, MEM_UNITS);
	/* Staging starts from the existing content. */
	assert_memory_equal(f->sink.dev[0], img, sizeof(img));
	assert_true(page_is_zero(f->sink.dev[1], DISK_SIZE));
	/* No PAGES at all: the digests cover the copied units. */
	fx_send_state(f);
	fx_commit(f, 0, &c);
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_COMMITTED, &o);
	assert_int_equal(rsess_state(f->s), RS_COMMITTED);
	assert_int_equal(f->sink.write_calls, 0);
}

/* A step does about its budget, at least one unit: one unit per step
 * gives one HAVE per unit, in order, and the short last unit of the disk
 * is hashed over its 100 bytes. */
static void
test_reuse_steps_one_unit_each(void **state)
{
	struct fx *f = *state;
	static uint8_t img[MEM_UNITS * UNIT], dimg[DISK_SIZE];
	struct tprng g = { 91 };
	struct outframe o;
	uint32_t k;

	fx_reuse_session(f);
	fx_old_mem(f, img);
	tprng_fill(&g, dimg, sizeof(dimg));
	f->sink.reuse_img[1] = dimg;
	fx_reuse_start(f);
	assert_int_equal(drive_reuse(f->s, 1, &f->e), MEM_UNITS + 3);
	for (k = 0; k < MEM_UNITS; k++)
		expect_have(f, f->man, 0, k, 1, img);
	for (k = 0; k < 3; k++)
		expect_have(f, f->man, 1, k, 1, dimg);
	expect_frame(f, FT_ACCEPT, &o);
	assert_memory_equal(f->sink.dev[1], dimg, DISK_SIZE);
	assert_int_equal(rsess_stats(f->s)->units_offered, MEM_UNITS + 3);
}

/* Every copied unit counts as written: a ZERO entry writes zeros over it
 * (on a fresh staging file it would write nothing), and REF may name a
 * copied unit; the COMMIT digest is then over the mix. */
static void
test_reuse_pages_over_copied_units(void **state)
{
	struct fx *f = *state;
	static uint8_t img[MEM_UNITS * UNIT];
	struct page_entry pe[3];
	struct outframe o;
	struct msg_commit c;

	fx_reuse_session(f);
	fx_old_mem(f, img);
	fx_reuse_start(f);
	assert_int_equal(drive_reuse(f->s, 1ull << 30, &f->e), 1);
	expect_have(f, f->man, 0, 0, MEM_UNITS, img);
	expect_frame(f, FT_ACCEPT, &o);
	pe[0] = zero_entry(f, 0, 2);
	pe[1] = raw_entry(f, 0, 5, 7);
	pe[2] = ref_entry(f, 0, 6, 0, 3);      /* unit 3 as copied */
	put_pages(&f->in, 1, MEM_ID, 1, pe, 3);
	assert_int_equal(fx_feed(f), 0);
	expect_ack(f, 1);
	assert_int_equal(f->sink.write_calls, 3);
	assert_memory_equal(f->sink.dev[0], f->exp[0], MEM_UNITS * UNIT);
	assert_true(page_is_zero(sink_unit(f, 0, 2), UNIT));
	fx_send_state(f);
	fx_commit(f, 1, &c);
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_COMMITTED, &o);
}

/* The receiver's digests are built from the copied units' hashes: a
 * COMMIT computed as if the staging file had started as zeros fails. */
static void
test_reuse_digest_covers_copied_units(void **state)
{
	struct fx *f = *state;
	static uint8_t img[MEM_UNITS * UNIT];
	struct outframe o;
	struct msg_commit c;

	fx_reuse_session(f);
	fx_old_mem(f, img);
	fx_reuse_start(f);
	assert_int_equal(drive_reuse(f->s, 1ull << 30, &f->e), 1);
	expect_have(f, f->man, 0, 0, MEM_UNITS, img);
	expect_frame(f, FT_ACCEPT, &o);
	fx_send_state(f);
	memset(f->exp[0], 0, MEM_UNITS * UNIT);
	fx_commit(f, 0, &c);
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), FERR_VERIFY);
	expect_error(f, FERR_VERIFY, "digest");
	assert_int_equal(f->sink.abort_calls, 1);
}

/* CAP_REUSE needs both sides: a receiver that does not offer it, or a
 * sender that does not, gets the old pre-flight (ACCEPT at once). */
static void
test_reuse_not_negotiated(void **state)
{
	struct fx *f = *state;
	static uint8_t img[MEM_UNITS * UNIT];
	struct outframe o;
	struct msg_welcome w;
	struct ferr e = { 0 };
	int pass;

	for (pass = 0; pass < 2; pass++) {
		rsess_free(f->s);
		fake_release(&f->sink);
		memset(&f->sink, 0, sizeof(f->sink));
		f->s = fake_rsess_new_caps(&f->sink, FERRY_MAX_FRAME_DEFAULT,
		    pass == 0 ? FERRY_CAP_DOMAIN : FERRY_CAP_REUSE);
		fx_old_mem(f, img);
		put_hello_with_caps(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT, pass == 0 ? FERRY_CAP_REUSE : 0);
		put_manifest(&f->in, f->man);
		assert_int_equal(fx_feed(f), 0);
		expect_frame(f, FT_WELCOME, &o);
		assert_int_equal(msg_welcome_decode(o.payload, o.h.len, &w, &e), 0);
		assert_int_equal(w.caps, 0);
		expect_frame(f, FT_ACCEPT, &o);
		assert_int_equal(rsess_state(f->s), RS_RECEIVING);
		assert_int_equal(f->sink.reuse_calls, 0);
		assert_true(page_is_zero(f->sink.dev[0], MEM_UNITS * UNIT));
	}
}

/* A copy that fails (the existing file unreadable) fails the session:
 * ERROR, staging removed, no ACCEPT. */
static void
test_reuse_sink_failure(void **state)
{
	struct fx *f = *state;
	static uint8_t img[MEM_UNITS * UNIT];

	fx_reuse_session(f);
	fx_old_mem(f, img);
	f->sink.reuse_fail_at = 2;
	fx_reuse_start(f);
	assert_int_equal(drive_reuse(f->s, UNIT, &f->e), -1);
	assert_int_equal(f->e.code, FERR_IO);
	expect_have(f, f->man, 0, 0, 1, img);   /* the first step went out */
	expect_error(f, FERR_IO, "reuse");
	assert_int_equal(out_len(f->s), 0);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
	assert_int_equal(f->sink.abort_calls, 1);
	assert_int_equal(rsess_reuse_step(f->s, UNIT, &f->e), FERR_INTERNAL);
}

/* While the files are being copied only PING, PONG and ERROR are taken. */
static void
test_reuse_frames_while_reusing(void **state)
{
	struct fx *f = *state;
	static uint8_t img[MEM_UNITS * UNIT];
	struct page_entry pe;
	struct outframe o;

	fx_reuse_session(f);
	fx_old_mem(f, img);
	fx_reuse_start(f);
	put_seq(&f->in, FT_PING, 42);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_PONG, &o);
	assert_int_equal(rsess_state(f->s), RS_REUSING);
	pe = zero_entry(f, 0, 0);
	put_pages(&f->in, 1, MEM_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	expect_error(f, FERR_PROTO_STATE, "REUSING");
	assert_int_equal(f->sink.abort_calls, 1);
	assert_int_equal(f->sink.reuse_calls, 0);
}

/* A HAVE never exceeds what the sender announced: (max_frame - 12) / 16
 * hashes, so a device of more units than that needs a second frame. */
static void
test_reuse_have_split_at_max_frame(void **state)
{
	struct fx *f = *state;
	uint32_t per = msg_have_max_count(FERRY_MAX_FRAME_DEFAULT);
	struct msg_manifest *man = calloc(1, sizeof(*man));
	struct outframe o;

	assert_non_null(man);
	assert_int_equal(per, 65791);
	man->ndev = 1;
	man->dev[0] = (struct dev_desc){ .id = 5, .kind = DK_MEMORY, .unit = UNIT,
		.size = (uint64_t)(per + 10) * UNIT };
	snprintf(man->dev[0].name, sizeof(man->dev[0].name), "big");
	fx_reuse_session(f);
	f->sink.reuse_zeros = 1;
	put_hello_with_caps(&f->in, SEED, FERRY_MAX_FRAME_DEFAULT, FERRY_CAP_REUSE);
	put_manifest(&f->in, man);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_WELCOME, &o);
	assert_int_equal(drive_reuse(f->s, 1ull << 40, &f->e), 1);
	expect_have(f, man, 0, 0, per, NULL);
	expect_have(f, man, 0, per, 10, NULL);
	expect_frame(f, FT_ACCEPT, &o);
	free(man);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_hello_queues_welcome),
		T(test_unknown_caps_not_echoed),
		T(test_manifest_queues_accept),
		T(test_pages_of_each_kind_applied),
		T(test_zero_on_fresh_unit_writes_nothing),
		T(test_zero_overwrites_written_unit),
		T(test_raw_last_partial_unit),
		T(test_ref_across_devices),
		T(test_ref_to_never_written_unit_is_zero),
		T(test_state_written_in_order),
		T(test_commit_queues_committed),
		T(test_full_session),
		T(test_pages_before_manifest),
		T(test_pages_before_hello),
		T(test_manifest_twice),
		T(test_commit_before_manifest),
		T(test_hello_twice),
		T(test_bad_hello_version),
		T(test_ref_wrong_hash),
		T(test_ref_unknown_device),
		T(test_ref_index_out_of_range),
		T(test_ref_length_mismatch),
		T(test_pages_unknown_device),
		T(test_pages_index_out_of_range),
		T(test_pages_seq_gap),
		T(test_pages_duplicate_ignored),
		T(test_lz4_wrong_size),
		T(test_pages_trailing_bytes),
		T(test_state_wrong_offset),
		T(test_state_past_size),
		T(test_commit_wrong_seq),
		T(test_commit_wrong_ndev),
		T(test_commit_devices_out_of_order),
		T(test_commit_before_all_state),
		T(test_commit_digest_mismatch),
		T(test_sink_refusal),
		T(test_sink_write_failure),
		T(test_frame_fed_one_byte_at_a_time),
		T(test_session_in_single_bytes),
		T(test_several_frames_in_one_feed),
		T(test_partial_frame_left_unconsumed),
		T(test_frames_after_commit_refused),
		T(test_frames_after_failure_refused),
		T(test_oversized_length_refused_from_header),
		T(test_over_own_max_refused),
		T(test_unknown_type),
		T(test_receiver_frame_type_refused),
		T(test_header_flags_refused),
		T(test_frame_up_to_own_announced_max_accepted),
		T(test_domain_welcome_offers_cap),
		T(test_domain_without_cap_refused),
		T(test_domain_twice_refused),
		T(test_domain_failed_check_refuses_before_staging),
		T(test_domain_check_only_migrates_nothing),
		T(test_peer_error_ends_session),
		T(test_peer_error_timeout_stays_timeout),
		T(test_peer_error_other_code_is_net),
		T(test_fail_aborts_once),
		T(test_fail_after_commit_keeps_files),
		T(test_free_before_commit_aborts),
		T(test_free_before_manifest_does_not_abort),
		T(test_reuse_have_then_accept),
		T(test_reuse_steps_one_unit_each),
		T(test_reuse_pages_over_copied_units),
		T(test_reuse_digest_covers_copied_units),
		T(test_reuse_not_negotiated),
		T(test_reuse_sink_failure),
		T(test_reuse_frames_while_reusing),
		T(test_reuse_have_split_at_max_frame),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
