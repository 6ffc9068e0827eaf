/* rsess.c in QEMU stream mode (proto/PROTOCOL.md 4.17 QSTREAM, 4.18
 * QRETURN; proto/QEMU.md sections 4 and 9), with qrebuild.c and the
 * msg_qemu.c codecs behind it.
 *
 * Frames come from the real encoders (HELLO with CAP_QEMU, a MANIFEST with
 * one DK_QEMU device, QSTREAM through msg_qstream_begin / the put functions
 * / msg_qstream_end, COMMIT); a FAKE sink keeps the RAM mirror in memory
 * and appends what the destination QEMU would get to a growable buffer.
 *
 * The test builds a synthetic QEMU stream item by item and writes the
 * bytes the destination QEMU must receive by hand, from PROTOCOL.md 4.17
 * (each page record also compared with qs_page_encode), so the rebuilt
 * stream is checked (memcmp) against an expectation made without
 * qrebuild.c, however the items are cut into frames and the frames into
 * feeds.  The COMMIT digest is computed over those expected bytes. */
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
#include "msg_qemu.h"
#include "pagehash.h"
#include "qstream.h"
#include "rsess.h"

#include "testutil.h"

#define SEED 0x0ddba11c0ffee123ull
#define PG FERRY_QPAGE_SIZE
#define QDEV_ID 5u
#define RAM_LEN (64u * 1024u)           /* block 0, "pc.ram" */
#define VGA_LEN (8u * 1024u)            /* block 1, "vga" */
#define GUEST_RAM (RAM_LEN + VGA_LEN)
#define MAX_ITEMS 64
#define MAX_FRAMES 64
#define OUT_PAYLOAD_MAX (2u * 1024u * 1024u)

enum { B_RAM = 0, B_VGA = 1 };

/* ---- a growable byte buffer ---- */

struct gbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

static void
gbuf_put(struct gbuf *b, const void *p, size_t n)
{
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 4096;
		uint8_t *np;

		while (cap - b->len < n)
			cap *= 2;
		np = realloc(b->p, cap);
		assert_non_null(np);
		b->p = np;
		b->cap = cap;
	}
	if (n > 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
gbuf_fini(struct gbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- the fake QEMU sink ---- */

struct qsink {
	/* behaviour */
	int commit_rc;                  /* returned by commit (0 = the destination completed) */
	int out_fail_at;                /* fail the Nth qemu_out call (1-based), 0 = never */

	/* what it holds */
	struct msg_manifest man;        /* as accepted */
	uint64_t seed;
	uint32_t nblocks;
	struct qitem_block blocks[FERRY_QBLOCKS_MAX];
	uint8_t *mirror[FERRY_QBLOCKS_MAX];
	struct gbuf out;                /* what the destination QEMU got, in order */

	/* calls */
	int accept_calls, blocks_calls, write_calls, read_calls, state_calls, out_calls;
	int commit_calls, abort_calls;
	struct msg_commit last_commit;
};

static int
qs_accept(void *ctx, const struct msg_manifest *m, uint64_t seed, const uint8_t sid[16],
    struct msg_text *refusal)
{
	struct qsink *k = ctx;

	(void)sid;
	(void)refusal;
	k->accept_calls++;
	k->man = *m;
	k->seed = seed;
	return 0;
}

static int
qs_blocks(void *ctx, const struct qitem_block *b, uint32_t n, struct ferr *e)
{
	struct qsink *k = ctx;
	uint32_t i;

	(void)e;
	k->blocks_calls++;
	assert_int_equal(k->blocks_calls, 1);   /* the block list comes once */
	assert_true(n >= 1 && n <= FERRY_QBLOCKS_MAX);
	k->nblocks = n;
	for (i = 0; i < n; i++) {
		k->blocks[i] = b[i];
		k->mirror[i] = calloc(1, (size_t)b[i].len);
		assert_non_null(k->mirror[i]);
	}
	return 0;
}

/* The session only ever addresses whole pages inside a listed block. */
static void
qs_check_page(struct qsink *k, uint32_t dev, uint64_t off, uint32_t len)
{
	assert_true(dev < k->nblocks);
	assert_int_equal(len, PG);
	assert_int_equal(off % PG, 0);
	assert_true(off < k->blocks[dev].len);
}

static int
qs_write(void *ctx, uint32_t dev, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e)
{
	struct qsink *k = ctx;

	(void)e;
	k->write_calls++;
	qs_check_page(k, dev, off, len);
	memcpy(k->mirror[dev] + off, p, len);
	return 0;
}

static int
qs_read(void *ctx, uint32_t dev, uint64_t off, uint8_t *p, uint32_t len, struct ferr *e)
{
	struct qsink *k = ctx;

	(void)e;
	k->read_calls++;
	qs_check_page(k, dev, off, len);
	memcpy(p, k->mirror[dev] + off, len);
	return 0;
}

static int
qs_state(void *ctx, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e)
{
	struct qsink *k = ctx;

	(void)off;
	(void)p;
	(void)len;
	k->state_calls++;
	return ferr_set(e, FERR_INTERNAL, "fake: state blob in a QEMU session");
}

static int
qs_out(void *ctx, const uint8_t *p, size_t n, struct ferr *e)
{
	struct qsink *k = ctx;

	k->out_calls++;
	if (k->out_fail_at != 0 && k->out_calls == k->out_fail_at)
		return ferr_set(e, FERR_IO, "fake: destination QEMU socket write %d fails", k->out_calls);
	assert_true(n > 0);
	gbuf_put(&k->out, p, n);
	return 0;
}

static int
qs_commit(void *ctx, const struct msg_commit *c, struct ferr *e)
{
	struct qsink *k = ctx;

	k->commit_calls++;
	k->last_commit = *c;
	if (k->commit_rc != 0)
		return ferr_set(e, k->commit_rc, "fake: destination QEMU did not complete");
	return 0;
}

static void
qs_abort(void *ctx)
{
	struct qsink *k = ctx;

	k->abort_calls++;
}

static const struct rsess_sink_ops qsink_ops = {
	.accept = qs_accept,
	.write = qs_write,
	.read = qs_read,
	.state = qs_state,
	.commit = qs_commit,
	.abort = qs_abort,
	.domain_check = NULL,
	.qemu_blocks = qs_blocks,
	.qemu_out = qs_out,
};

static void
qsink_release(struct qsink *k)
{
	uint32_t i;

	for (i = 0; i < k->nblocks; i++) {
		free(k->mirror[i]);
		k->mirror[i] = NULL;
	}
	k->nblocks = 0;
	gbuf_fini(&k->out);
}

/* ---- the stream: items and what they rebuild ---- */

struct sitem {
	uint8_t type;                   /* QI_* */
	uint8_t *buf;                   /* owned: OPAQUE data or PAGE payload */
	uint32_t len;                   /* OPAQUE */
	struct qitem it;                /* PAGE */
	size_t rebuilt;                 /* stream bytes the item rebuilds */
};

struct fx {
	struct qsink sink;
	struct fake_sink isink;         /* an image sink (testutil.h), for the non-QEMU cases */
	struct rsess *s;
	struct msg_manifest *man;
	struct fbuf in;                 /* frames about to be fed */
	struct ferr e;
	uint8_t *opay;                  /* a popped output frame's payload */
	struct frame_hdr oh;

	struct qitem_block blocks[2];
	struct sitem item[MAX_ITEMS];
	uint32_t nitem;
	struct gbuf exp;                /* the bytes the destination QEMU must get */
	uint8_t *img[2];                /* per block: the last DATA content of each page */

	struct fbuf fr;                 /* QSTREAM frames, seq 1..nframes */
	size_t foff[MAX_FRAMES + 1];    /* frame seq k is fr.p[foff[k-1] .. foff[k]) */
	size_t fexp[MAX_FRAMES + 1];    /* expected stream bytes after frame k */
	uint32_t nframes;
};

static struct rsess *
qemu_rsess_new(struct qsink *k, uint32_t caps)
{
	struct rsess_config cfg = { FERRY_MAX_FRAME_DEFAULT, test_random, caps };
	struct rsess *s = rsess_new(&cfg, &qsink_ops, k);

	assert_non_null(s);
	return s;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	f->s = qemu_rsess_new(&f->sink, FERRY_CAP_QEMU);
	f->man = calloc(1, sizeof(*f->man));
	assert_non_null(f->man);
	f->man->ndev = 1;
	f->man->dev[0] = (struct dev_desc){ .id = QDEV_ID, .kind = DK_QEMU, .unit = PG,
		.size = GUEST_RAM };
	snprintf(f->man->dev[0].name, sizeof(f->man->dev[0].name), "guest1");
	fbuf_init(&f->in, 2 * FERRY_MAX_FRAME_DEFAULT);
	fbuf_init(&f->fr, 2 * FERRY_MAX_FRAME_DEFAULT);
	f->opay = malloc(OUT_PAYLOAD_MAX);
	assert_non_null(f->opay);
	snprintf(f->blocks[B_RAM].id, sizeof(f->blocks[B_RAM].id), "pc.ram");
	f->blocks[B_RAM].id_len = 6;
	f->blocks[B_RAM].len = RAM_LEN;
	snprintf(f->blocks[B_VGA].id, sizeof(f->blocks[B_VGA].id), "vga");
	f->blocks[B_VGA].id_len = 3;
	f->blocks[B_VGA].len = VGA_LEN;
	f->img[B_RAM] = calloc(1, RAM_LEN);
	f->img[B_VGA] = calloc(1, VGA_LEN);
	assert_non_null(f->img[B_RAM]);
	assert_non_null(f->img[B_VGA]);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	uint32_t i;

	rsess_free(f->s);
	qsink_release(&f->sink);
	fake_release(&f->isink);
	fbuf_fini(&f->in);
	fbuf_fini(&f->fr);
	for (i = 0; i < f->nitem; i++)
		free(f->item[i].buf);
	gbuf_fini(&f->exp);
	free(f->img[0]);
	free(f->img[1]);
	free(f->opay);
	free(f->man);
	free(f);
	return 0;
}

/* ---- reading what the session queued ---- */

/* Pop the first queued frame into f->oh / f->opay; -1 when empty. */
static int
qpop(struct fx *f)
{
	const uint8_t *p;
	size_t len;
	struct ferr e = { 0 };

	p = rsess_output(f->s, &len);
	if (len == 0)
		return -1;
	assert_int_equal(frame_decode_hdr(p, len, FERRY_MAX_FRAME_LIMIT, FDIR_R2S, &f->oh, &e), 0);
	assert_true(f->oh.len <= OUT_PAYLOAD_MAX);
	assert_true(len - FERRY_FRAME_HDR_LEN >= f->oh.len);
	memcpy(f->opay, p + FERRY_FRAME_HDR_LEN, f->oh.len);
	rsess_output_consume(f->s, FERRY_FRAME_HDR_LEN + f->oh.len);
	return 0;
}

static size_t
qout_len(struct fx *f)
{
	size_t len;

	(void)rsess_output(f->s, &len);
	return len;
}

static void
expect_frame(struct fx *f, uint8_t type)
{
	if (qpop(f) != 0)
		fail_msg("expected a %s frame, output is empty", frame_name(type));
	if (f->oh.type != type)
		fail_msg("expected a %s frame, got %s", frame_name(type), frame_name(f->oh.type));
}

static void
expect_seq(struct fx *f, uint8_t type, uint64_t seq)
{
	struct msg_seq m;
	struct ferr e = { 0 };

	expect_frame(f, type);
	assert_int_equal(msg_seq_decode(type, f->opay, f->oh.len, &m, &e), 0);
	assert_int_equal(m.seq, seq);
}

/* The next frame is ERROR with this code and a text naming each of a, b. */
static void
expect_error(struct fx *f, int code, const char *a, const char *b)
{
	struct msg_text t;
	struct ferr e = { 0 };

	expect_frame(f, FT_ERROR);
	assert_int_equal(msg_error_decode(f->opay, f->oh.len, &t, &e), 0);
	assert_int_equal(t.code, (uint32_t)-code);
	if (a != NULL && strstr(t.text, a) == NULL)
		fail_msg("ERROR text '%s' does not name '%s'", t.text, a);
	if (b != NULL && strstr(t.text, b) == NULL)
		fail_msg("ERROR text '%s' does not name '%s'", t.text, b);
}

static void
expect_qreturn(struct fx *f, uint64_t off, const uint8_t *data, size_t len)
{
	struct msg_qreturn m;
	struct ferr e = { 0 };

	expect_frame(f, FT_QRETURN);
	assert_int_equal(msg_qreturn_decode(f->opay, f->oh.len, &m, &e), 0);
	assert_int_equal(m.offset, off);
	assert_int_equal(m.len, len);
	assert_memory_equal(m.data, data, len);
}

static void
expect_resumed(struct fx *f, uint32_t status, uint64_t next_seq)
{
	struct msg_resumed r;
	struct ferr e = { 0 };

	expect_frame(f, FT_RESUMED);
	assert_int_equal(msg_resumed_decode(f->opay, f->oh.len, &r, &e), 0);
	assert_int_equal(r.status, status);
	assert_int_equal(r.next_seq, next_seq);
	assert_int_equal(r.state_offset, 0);
}

/* ---- feeding ---- */

/* Feed p[0..len) in pieces of `chunk` bytes (0: all at once), giving the
 * session back what it did not consume.  Returns the first error. */
static int
feed_chunks(struct fx *f, const uint8_t *p, size_t len, size_t chunk, struct ferr *e)
{
	size_t pos = 0, avail = 0, used;
	int rc;

	ferr_clear(e);
	if (chunk == 0)
		chunk = len;
	while (avail < len) {
		avail = len - avail < chunk ? len : avail + chunk;
		used = SIZE_MAX;
		rc = rsess_feed(f->s, p + pos, avail - pos, &used, e);
		if (rc != 0)
			return rc;
		assert_true(used <= avail - pos);
		pos += used;
	}
	assert_int_equal(pos, len);
	return 0;
}

/* Feed whatever was built into f->in, in one call. */
static int
fx_feed(struct fx *f)
{
	int rc = feed_chunks(f, f->in.p, f->in.len, 0, &f->e);

	f->in.len = 0;
	return rc;
}

/* Feed frames first..last (seq numbers) of f->fr. */
static int
feed_frames(struct fx *f, uint32_t first, uint32_t last, size_t chunk)
{
	assert_true(first >= 1 && first <= last && last <= f->nframes);
	return feed_chunks(f, f->fr.p + f->foff[first - 1], f->foff[last] - f->foff[first - 1], chunk,
	    &f->e);
}

/* ---- building frames ---- */

static void
put_hello_caps(struct fbuf *b, uint32_t caps)
{
	struct msg_hello h = { FERRY_VERSION, caps, FERRY_MAX_FRAME_DEFAULT, SEED };
	struct wr w;

	fbuf_wr(b, &w);
	assert_int_equal(msg_hello_encode(&w, &h), 0);
	fbuf_done(b, &w);
}

static uint32_t
welcome_caps(struct fx *f)
{
	struct msg_welcome w;
	struct ferr e = { 0 };

	expect_frame(f, FT_WELCOME);
	assert_int_equal(msg_welcome_decode(f->opay, f->oh.len, &w, &e), 0);
	return w.caps;
}

/* HELLO with CAP_QEMU and the DK_QEMU MANIFEST; WELCOME and ACCEPT taken. */
static void
fx_start(struct fx *f)
{
	struct msg_accept a;
	struct ferr e = { 0 };

	put_hello_caps(&f->in, FERRY_CAP_QEMU);
	put_manifest(&f->in, f->man);
	assert_int_equal(fx_feed(f), 0);
	assert_int_equal(welcome_caps(f), FERRY_CAP_QEMU);
	expect_frame(f, FT_ACCEPT);
	assert_int_equal(msg_accept_decode(f->opay, f->oh.len, &a, &e), 0);
	assert_int_equal(a.next_seq, 1);
	assert_int_equal(qout_len(f), 0);
	assert_int_equal(rsess_state(f->s), RS_RECEIVING);
	assert_int_equal(rsess_is_qemu(f->s), 1);
}

/* One QSTREAM frame of items first..first+count-1. */
static void
put_qstream(struct fx *f, struct fbuf *b, uint64_t seq, uint64_t stream_off, uint32_t first,
    uint32_t count)
{
	struct msg_qstream h = { seq, stream_off, 0 };
	struct wr w;
	size_t at;
	uint32_t i;

	fbuf_wr(b, &w);
	at = msg_qstream_begin(&w, &h);
	assert_true(at != SIZE_MAX);
	for (i = first; i < first + count; i++) {
		const struct sitem *si = &f->item[i];

		assert_true(i < f->nitem);
		switch (si->type) {
		case QI_OPAQUE:
			assert_int_equal(msg_qitem_put_opaque(&w, si->buf, si->len), 0);
			break;
		case QI_BLOCKS:
			assert_int_equal(msg_qitem_put_blocks(&w, f->blocks, 2), 0);
			break;
		default:
			assert_int_equal(msg_qitem_put_page(&w, &si->it), 0);
			break;
		}
	}
	msg_qstream_end(&w, at, count);
	fbuf_done(b, &w);
}

/* Stream bytes the items before `first` rebuild. */
static uint64_t
stream_off_of(struct fx *f, uint32_t first)
{
	uint64_t off = 0;
	uint32_t i;

	for (i = 0; i < first; i++)
		off += f->item[i].rebuilt;
	return off;
}

/* Cut the items into frames of `per` items (0: one frame), seq 1..n. */
static uint32_t
build_frames(struct fx *f, uint32_t per)
{
	uint32_t first = 0, n;

	if (per == 0)
		per = f->nitem;
	f->fr.len = 0;
	f->nframes = 0;
	f->foff[0] = 0;
	f->fexp[0] = 0;
	while (first < f->nitem) {
		n = f->nitem - first < per ? f->nitem - first : per;
		assert_true(f->nframes < MAX_FRAMES);
		put_qstream(f, &f->fr, f->nframes + 1, stream_off_of(f, first), first, n);
		first += n;
		f->nframes++;
		f->foff[f->nframes] = f->fr.len;
		f->fexp[f->nframes] = stream_off_of(f, first);
	}
	return f->nframes;
}

/* ---- building the stream ---- */

static struct sitem *
new_item(struct fx *f, uint8_t type)
{
	struct sitem *si;

	assert_true(f->nitem < MAX_ITEMS);
	si = &f->item[f->nitem++];
	memset(si, 0, sizeof(*si));
	si->type = type;
	return si;
}

static void
add_opaque(struct fx *f, const void *p, uint32_t len)
{
	struct sitem *si = new_item(f, QI_OPAQUE);

	si->buf = malloc(len);
	assert_non_null(si->buf);
	memcpy(si->buf, p, len);
	si->len = len;
	si->rebuilt = len;
	gbuf_put(&f->exp, p, len);
}

static void
add_blocks(struct fx *f)
{
	(void)new_item(f, QI_BLOCKS);
}

/* The QEMU record, written from PROTOCOL.md 4.17: u64 offset | (DATA ? 0x08
 * : 0x02) | (CONT ? 0x20 : 0), str8 id unless CONT, then the 4096 bytes or
 * one 0 byte.  Checked against qs_page_encode, appended to the expected
 * stream; returns its length. */
static size_t
exp_record(struct fx *f, uint8_t rec, uint16_t block, uint64_t off, const uint8_t *data)
{
	static uint8_t r[QS_PAGE_RECORD_MAX], chk[QS_PAGE_RECORD_MAX];
	const struct qitem_block *b = &f->blocks[block];
	uint64_t h = off | ((rec & FERRY_QREC_DATA) ? 0x08u : 0x02u) | ((rec & FERRY_QREC_CONT) ? 0x20u : 0);
	struct qs_page pg;
	struct ferr e = { 0 };
	struct wr w;
	size_t n = 0;
	int k;

	for (k = 0; k < 8; k++)
		r[n++] = (uint8_t)(h >> (56 - 8 * k));
	if (!(rec & FERRY_QREC_CONT)) {
		r[n++] = b->id_len;
		memcpy(r + n, b->id, b->id_len);
		n += b->id_len;
	}
	if (rec & FERRY_QREC_DATA) {
		memcpy(r + n, data, PG);
		n += PG;
	} else {
		r[n++] = 0;
	}
	memset(&pg, 0, sizeof(pg));
	pg.kind = (rec & FERRY_QREC_DATA) ? QS_PAGE_DATA : QS_PAGE_ZERO;
	pg.block = block;
	pg.offset = off;
	pg.cont = (rec & FERRY_QREC_CONT) != 0;
	pg.data = (rec & FERRY_QREC_DATA) ? data : NULL;
	wr_init(&w, chk, sizeof(chk));
	assert_int_equal(qs_page_encode(&w, &pg, b->id, b->id_len, &e), 0);
	assert_int_equal(w.off, n);
	assert_memory_equal(chk, r, n);
	gbuf_put(&f->exp, r, n);
	return n;
}

static const uint8_t zero_page[PG];

/* A PAGE item: a data record (rec has DATA) holding `content`, sent as
 * `kind` (a REF names src_block / src_off, whose last DATA content must be
 * `content`), or a zero record (rec without DATA, kind ZERO). */
static struct sitem *
add_page(struct fx *f, uint8_t rec, uint16_t block, uint64_t off, uint8_t kind,
    const uint8_t *content, uint16_t src_block, uint64_t src_off)
{
	struct sitem *si = new_item(f, QI_PAGE);
	struct qitem *it = &si->it;

	it->type = QI_PAGE;
	it->rec = rec;
	it->block = block;
	it->offset = off;
	it->kind = kind;
	switch (kind) {
	case PK_RAW:
		si->buf = malloc(PG);
		assert_non_null(si->buf);
		memcpy(si->buf, content, PG);
		it->payload = si->buf;
		it->payload_len = PG;
		break;
	case PK_LZ4:
		si->buf = malloc(PG);
		assert_non_null(si->buf);
		it->payload_len = codec_lz4_encode(content, PG, si->buf, PG - 1);
		assert_true(it->payload_len > 0);
		it->payload = si->buf;
		break;
	case PK_REF:
		it->src_block = src_block;
		it->src_offset = src_off;
		assert_memory_equal(f->img[src_block] + src_off, content, PG);
		page_hash(SEED, f->img[src_block] + src_off, PG, it->hash);
		break;
	default:
		assert_int_equal(kind, PK_ZERO);
		if (rec & FERRY_QREC_DATA)
			assert_memory_equal(content, zero_page, PG);
		break;
	}
	if (rec & FERRY_QREC_DATA)
		memcpy(f->img[block] + off, content, PG);
	si->rebuilt = exp_record(f, rec, block, off, (rec & FERRY_QREC_DATA) ? content : NULL);
	return si;
}

/* File header, configuration, the ram section's START and its MEM_SIZE
 * record with the block list: opaque on the wire (QEMU.md 3). */
static void
add_stream_head(struct fx *f)
{
	uint8_t b[256];
	struct wr w;

	wr_init(&w, b, sizeof(b));
	wr_u32(&w, QS_FILE_MAGIC);
	wr_u32(&w, QS_FILE_VERSION);
	wr_u8(&w, QS_VM_CONFIGURATION);
	wr_u32(&w, 13);
	wr_bytes(&w, "pc-i440fx-7.2", 13);
	wr_u8(&w, QS_VM_SECTION_START);
	wr_u32(&w, 2);                          /* section id */
	wr_u8(&w, 3);
	wr_bytes(&w, "ram", 3);
	wr_u32(&w, 0);                          /* instance */
	wr_u32(&w, QS_RAM_VERSION);
	wr_u64(&w, (uint64_t)GUEST_RAM | QS_RAM_MEM_SIZE);
	wr_u8(&w, 6);
	wr_bytes(&w, "pc.ram", 6);
	wr_u64(&w, RAM_LEN);
	wr_u8(&w, 3);
	wr_bytes(&w, "vga", 3);
	wr_u64(&w, VGA_LEN);
	assert_int_equal(w.err, 0);
	add_opaque(f, b, (uint32_t)w.off);
	add_blocks(f);
}

/* EOS and the section footer, then `next` (SECTION_PART or, for the
 * tail, SECTION_FULL) of section id 2, without the rest of its header. */
static void
add_section_break(struct fx *f, uint8_t next)
{
	uint8_t b[32];
	struct wr w;

	wr_init(&w, b, sizeof(b));
	wr_u64(&w, QS_RAM_EOS);
	wr_u8(&w, QS_VM_SECTION_FOOTER);
	wr_u32(&w, 2);
	wr_u8(&w, next);
	wr_u32(&w, next == QS_VM_SECTION_PART ? 2 : 3);
	assert_int_equal(w.err, 0);
	add_opaque(f, b, (uint32_t)w.off);
}

/* Pages the tests name. */
struct pages {
	uint8_t a[PG], b[PG], t1[PG], t2[PG];
};

static void
make_pages(struct pages *p)
{
	struct tprng g = { 0x1234 };

	tprng_fill(&g, p->a, PG);
	tprng_fill(&g, p->b, PG);
	fill_text(p->t1, PG, 3);
	fill_text(p->t2, PG, 9);
}

/* The synthetic stream: every record and page kind, CONTINUE and not,
 * references within a frame and across frames, an opaque tail in two
 * items. */
static void
build_stream(struct fx *f)
{
	struct pages pg;
	struct tprng g = { 0xfeed };
	uint8_t *tail = malloc(8192);

	assert_non_null(tail);
	make_pages(&pg);
	add_stream_head(f);
	add_page(f, FERRY_QREC_DATA, B_RAM, 0, PK_RAW, pg.a, 0, 0);
	add_page(f, FERRY_QREC_DATA | FERRY_QREC_CONT, B_RAM, 1 * PG, PK_LZ4, pg.t1, 0, 0);
	add_page(f, FERRY_QREC_DATA | FERRY_QREC_CONT, B_RAM, 2 * PG, PK_ZERO, zero_page, 0, 0);
	add_page(f, FERRY_QREC_CONT, B_RAM, 3 * PG, PK_ZERO, NULL, 0, 0);   /* QEMU zero record */
	add_page(f, FERRY_QREC_DATA, B_VGA, 0, PK_REF, pg.a, B_RAM, 0);
	add_page(f, FERRY_QREC_DATA | FERRY_QREC_CONT, B_VGA, 1 * PG, PK_RAW, pg.b, 0, 0);
	add_section_break(f, QS_VM_SECTION_PART);
	/* pc.ram page 1 dirtied again: now holds vga page 1's content */
	add_page(f, FERRY_QREC_DATA, B_RAM, 1 * PG, PK_REF, pg.b, B_VGA, 1 * PG);
	add_page(f, 0, B_VGA, 0, PK_ZERO, NULL, 0, 0);                      /* zero record, with id */
	add_page(f, FERRY_QREC_DATA, B_RAM, 5 * PG, PK_LZ4, pg.t2, 0, 0);
	add_page(f, FERRY_QREC_DATA | FERRY_QREC_CONT, B_RAM, 15 * PG, PK_REF, pg.t2, B_RAM, 5 * PG);
	/* pc.ram page 0 (content a) now all zeros: the mirror must follow */
	add_page(f, FERRY_QREC_DATA | FERRY_QREC_CONT, B_RAM, 0, PK_ZERO, zero_page, 0, 0);
	add_section_break(f, QS_VM_SECTION_FULL);
	tprng_fill(&g, tail, 8192);
	add_opaque(f, tail, 3000);              /* device state: opaque by design */
	tail[8191] = QS_VM_EOF;
	add_opaque(f, tail + 3000, 8192 - 3000);
	free(tail);
	assert_int_equal(f->nitem, 17);
}

/* What the sink must hold after frames 1..upto were applied. */
static void
check_rebuilt(struct fx *f, uint32_t upto)
{
	assert_int_equal(f->sink.out.len, f->fexp[upto]);
	if (f->fexp[upto] > 0)
		assert_memory_equal(f->sink.out.p, f->exp.p, f->fexp[upto]);
}

/* After the whole stream: every byte, the acknowledgements 1..n in order
 * and nothing else, the block list, the mirror, the statistics. */
static void
check_whole_stream(struct fx *f)
{
	const struct rsess_stats *st = rsess_stats(f->s);
	uint32_t k;

	assert_int_equal(f->sink.out.len, f->exp.len);
	assert_memory_equal(f->sink.out.p, f->exp.p, f->exp.len);
	for (k = 1; k <= f->nframes; k++)
		expect_seq(f, FT_ACK, k);
	assert_int_equal(qout_len(f), 0);
	assert_int_equal(rsess_state(f->s), RS_RECEIVING);
	assert_int_equal(rsess_last_seq(f->s), f->nframes);
	assert_int_equal(f->sink.blocks_calls, 1);
	assert_int_equal(f->sink.nblocks, 2);
	assert_string_equal(f->sink.blocks[B_RAM].id, "pc.ram");
	assert_int_equal(f->sink.blocks[B_RAM].len, RAM_LEN);
	assert_string_equal(f->sink.blocks[B_VGA].id, "vga");
	assert_int_equal(f->sink.blocks[B_VGA].len, VGA_LEN);
	assert_memory_equal(f->sink.mirror[B_RAM], f->img[B_RAM], RAM_LEN);
	assert_memory_equal(f->sink.mirror[B_VGA], f->img[B_VGA], VGA_LEN);
	assert_int_equal(f->sink.state_calls, 0);
	assert_int_equal(f->sink.abort_calls, 0);
	assert_int_equal(st->logical_bytes, f->exp.len);
	assert_int_equal(st->pages_zero, 4);    /* two all-zero DATA, two zero records */
	assert_int_equal(st->pages_dedup, 3);
	assert_int_equal(st->pages_lz4, 2);
	assert_int_equal(st->pages_raw, 2);
}

/* XXH3-128 (session seed) of the expected stream, two ways. */
static void
exp_digest(struct fx *f, size_t len, uint8_t out[FERRY_HASH_LEN])
{
	struct digest *d = digest_new(SEED);
	uint8_t one[FERRY_HASH_LEN];

	assert_non_null(d);
	digest_update(d, f->exp.p, len / 2);
	digest_update(d, f->exp.p + len / 2, len - len / 2);
	digest_final(d, out);
	digest_free(d);
	page_hash(SEED, f->exp.p, len, one);    /* one-shot XXH3-128 with the seed */
	assert_memory_equal(one, out, FERRY_HASH_LEN);
}

static void
put_qcommit(struct fx *f, uint64_t seq, struct msg_commit *c)
{
	memset(c, 0, sizeof(*c));
	c->seq = seq;
	c->ndev = 1;
	c->dev[0].id = QDEV_ID;
	exp_digest(f, f->exp.len, c->dev[0].digest);
	put_commit(&f->in, c);
}

/* The whole stream in frames of `per` items, applied and checked. */
static void
run_stream(struct fx *f, uint32_t per, size_t chunk)
{
	uint32_t n;

	fx_start(f);
	build_stream(f);
	n = build_frames(f, per);
	assert_int_equal(feed_frames(f, 1, n, chunk), 0);
	check_whole_stream(f);
}

/* ================= 1. negotiation ================= */

static void
test_welcome_offers_qemu(void **state)
{
	struct fx *f = *state;

	put_hello_caps(&f->in, FERRY_CAP_QEMU | FERRY_CAP_DOMAIN);
	assert_int_equal(fx_feed(f), 0);
	/* DOMAIN is not offered: this sink has no domain_check. */
	assert_int_equal(welcome_caps(f), FERRY_CAP_QEMU);
	assert_int_equal(rsess_state(f->s), RS_WAIT_MANIFEST);
}

static void
test_welcome_no_qemu_without_qemu_out(void **state)
{
	struct fx *f = *state;
	struct rsess_config cfg = { FERRY_MAX_FRAME_DEFAULT, test_random,
		FERRY_CAP_QEMU | FERRY_CAP_DOMAIN };

	rsess_free(f->s);
	f->s = rsess_new(&cfg, &fake_sink_ops, &f->isink);     /* no qemu_out */
	assert_non_null(f->s);
	put_hello_caps(&f->in, FERRY_CAP_QEMU | FERRY_CAP_DOMAIN);
	assert_int_equal(fx_feed(f), 0);
	assert_int_equal(welcome_caps(f), FERRY_CAP_DOMAIN);
}

static void
test_welcome_no_qemu_without_config(void **state)
{
	struct fx *f = *state;

	rsess_free(f->s);
	f->s = qemu_rsess_new(&f->sink, 0);
	put_hello_caps(&f->in, FERRY_CAP_QEMU);
	assert_int_equal(fx_feed(f), 0);
	assert_int_equal(welcome_caps(f), 0);
}

static void
test_welcome_no_qemu_when_sender_lacks_it(void **state)
{
	struct fx *f = *state;

	put_hello_caps(&f->in, FERRY_CAP_DOMAIN);
	assert_int_equal(fx_feed(f), 0);
	assert_int_equal(welcome_caps(f), 0);
}

/* A DK_QEMU MANIFEST after a HELLO without CAP_QEMU. */
static void
test_qemu_manifest_without_cap(void **state)
{
	struct fx *f = *state;

	put_hello_caps(&f->in, 0);
	put_manifest(&f->in, f->man);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	assert_int_equal(welcome_caps(f), 0);
	expect_error(f, FERR_PROTO_STATE, "MANIFEST", "QEMU");
	assert_int_equal(qout_len(f), 0);
	assert_int_equal(f->sink.accept_calls, 0);
	assert_int_equal(f->sink.abort_calls, 0);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
	assert_int_equal(rsess_is_qemu(f->s), 0);
	assert_null(rsess_manifest(f->s));
}

/* The sender asked for QEMU, the receiver (no qemu_out) did not offer it. */
static void
test_qemu_manifest_receiver_without_qemu(void **state)
{
	struct fx *f = *state;
	struct rsess_config cfg = { FERRY_MAX_FRAME_DEFAULT, test_random, FERRY_CAP_QEMU };

	rsess_free(f->s);
	f->s = rsess_new(&cfg, &fake_sink_ops, &f->isink);
	assert_non_null(f->s);
	put_hello_caps(&f->in, FERRY_CAP_QEMU);
	put_manifest(&f->in, f->man);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	assert_int_equal(welcome_caps(f), 0);
	expect_error(f, FERR_PROTO_STATE, "QEMU", NULL);
	assert_int_equal(f->isink.accept_calls, 0);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
}

static void
test_qemu_manifest_accepted(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	assert_int_equal(f->sink.accept_calls, 1);
	assert_int_equal(f->sink.seed, SEED);
	assert_int_equal(f->sink.man.ndev, 1);
	assert_int_equal(f->sink.man.dev[0].kind, DK_QEMU);
	assert_int_equal(f->sink.man.dev[0].id, QDEV_ID);
	assert_int_equal(f->sink.man.dev[0].size, GUEST_RAM);
	assert_int_equal(f->sink.man.dev[0].unit, PG);
	assert_string_equal(f->sink.man.dev[0].name, "guest1");
	assert_non_null(rsess_manifest(f->s));
	assert_int_equal(rsess_manifest(f->s)->dev[0].kind, DK_QEMU);
	/* nothing reaches the destination QEMU before a QSTREAM */
	assert_int_equal(f->sink.out_calls, 0);
	assert_int_equal(f->sink.blocks_calls, 0);
}

/* ================= 2. the rebuilt stream ================= */

static void
test_stream_one_frame(void **state)
{
	struct fx *f = *state;

	run_stream(f, 0, 0);
	assert_int_equal(f->nframes, 1);
}

static void
test_stream_frame_per_item(void **state)
{
	struct fx *f = *state;

	run_stream(f, 1, 0);
	assert_int_equal(f->nframes, 17);
}

static void
test_stream_frames_of_three(void **state)
{
	struct fx *f = *state;

	run_stream(f, 3, 0);
	assert_int_equal(f->nframes, 6);
}

static void
test_stream_fed_byte_by_byte(void **state)
{
	struct fx *f = *state;

	run_stream(f, 4, 1);
	assert_int_equal(f->nframes, 5);
}

static void
test_stream_fed_in_odd_chunks(void **state)
{
	struct fx *f = *state;

	run_stream(f, 2, 777);
	assert_int_equal(f->nframes, 9);
}

/* Each frame, fed alone, passes on exactly its own bytes. */
static void
test_stream_bytes_per_frame(void **state)
{
	struct fx *f = *state;
	uint32_t k, n;

	fx_start(f);
	build_stream(f);
	n = build_frames(f, 1);
	for (k = 1; k <= n; k++) {
		assert_int_equal(feed_frames(f, k, k, 0), 0);
		check_rebuilt(f, k);
		expect_seq(f, FT_ACK, k);
		assert_int_equal(qout_len(f), 0);
	}
	assert_int_equal(f->sink.out.len, f->exp.len);
}

/* PROTOCOL.md 4.17: a REF's content is what the receiver last rebuilt at
 * the source from a DATA record; a zero record there does not change it. */
static void
test_ref_source_is_last_data_record(void **state)
{
	struct fx *f = *state;
	struct pages pg;

	make_pages(&pg);
	fx_start(f);
	add_stream_head(f);
	add_page(f, FERRY_QREC_DATA, B_RAM, 0, PK_RAW, pg.a, 0, 0);
	add_page(f, FERRY_QREC_CONT, B_RAM, 0, PK_ZERO, NULL, 0, 0);
	add_page(f, FERRY_QREC_DATA, B_VGA, 0, PK_REF, pg.a, B_RAM, 0);
	build_frames(f, 2);
	assert_int_equal(feed_frames(f, 1, f->nframes, 0), 0);
	check_rebuilt(f, f->nframes);
	assert_memory_equal(f->sink.mirror[B_VGA], pg.a, PG);
}

/* ================= 3. COMMIT ================= */

static void
test_commit_right_digest(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;

	run_stream(f, 1, 0);
	put_qcommit(f, f->nframes, &c);
	assert_int_equal(fx_feed(f), 0);
	expect_seq(f, FT_COMMITTED, f->nframes);
	assert_int_equal(qout_len(f), 0);
	assert_int_equal(f->sink.commit_calls, 1);
	assert_int_equal(f->sink.last_commit.ndev, 1);
	assert_int_equal(f->sink.last_commit.dev[0].id, QDEV_ID);
	assert_memory_equal(f->sink.last_commit.dev[0].digest, c.dev[0].digest, FERRY_HASH_LEN);
	assert_int_equal(f->sink.abort_calls, 0);
	assert_int_equal(rsess_state(f->s), RS_COMMITTED);
	rsess_free(f->s);
	f->s = NULL;
	assert_int_equal(f->sink.abort_calls, 0);
}

static void
test_commit_wrong_digest(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;
	char theirs[2 * FERRY_HASH_LEN + 1], ours[2 * FERRY_HASH_LEN + 1];

	run_stream(f, 3, 0);
	put_qcommit(f, f->nframes, &c);
	f->in.len = 0;
	hash_hex(c.dev[0].digest, ours);
	c.dev[0].digest[FERRY_HASH_LEN - 1] ^= 0x40;
	hash_hex(c.dev[0].digest, theirs);
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), FERR_VERIFY);
	assert_non_null(strstr(f->e.msg, "digest"));
	expect_error(f, FERR_VERIFY, theirs, ours);
	assert_int_equal(qout_len(f), 0);
	assert_int_equal(f->sink.commit_calls, 0);
	assert_int_equal(f->sink.abort_calls, 1);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
	assert_int_equal(rsess_error(f->s)->code, FERR_VERIFY);
	rsess_free(f->s);
	f->s = NULL;
	assert_int_equal(f->sink.abort_calls, 1);
}

/* The sender's digest of the whole stream, after only part of it. */
static void
test_commit_after_part_of_stream(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;

	fx_start(f);
	build_stream(f);
	build_frames(f, 1);
	assert_int_equal(feed_frames(f, 1, 10, 0), 0);
	put_qcommit(f, 10, &c);
	assert_int_equal(fx_feed(f), FERR_VERIFY);
	check_rebuilt(f, 10);
	assert_int_equal(f->sink.commit_calls, 0);
	assert_int_equal(f->sink.abort_calls, 1);
}

/* The digest matched, but the destination QEMU did not complete. */
static void
test_commit_sink_fails(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;

	run_stream(f, 0, 0);
	f->sink.commit_rc = FERR_QEMU;
	put_qcommit(f, 1, &c);
	assert_int_equal(fx_feed(f), FERR_QEMU);
	expect_error(f, FERR_QEMU, "fake", NULL);
	assert_int_equal(f->sink.commit_calls, 1);
	assert_int_equal(f->sink.abort_calls, 1);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
}

static void
test_commit_wrong_seq(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;

	run_stream(f, 1, 0);
	put_qcommit(f, f->nframes - 1, &c);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "seq", NULL);
	assert_int_equal(f->sink.commit_calls, 0);
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_commit_wrong_device(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;

	run_stream(f, 0, 0);
	put_qcommit(f, 1, &c);
	f->in.len = 0;
	c.dev[0].id = QDEV_ID + 1;
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "device", NULL);
	assert_int_equal(f->sink.commit_calls, 0);
}

/* Section 4.17: a QEMU session has no state blob; its digest is zero. */
static void
test_commit_state_digest_not_zero(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;

	run_stream(f, 0, 0);
	put_qcommit(f, 1, &c);
	f->in.len = 0;
	c.state_digest[5] = 1;
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "state_digest", NULL);
	assert_int_equal(f->sink.commit_calls, 0);
}

static void
test_commit_two_devices(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;

	run_stream(f, 0, 0);
	put_qcommit(f, 1, &c);
	f->in.len = 0;
	c.ndev = 2;
	c.dev[1] = c.dev[0];
	c.dev[1].id = QDEV_ID + 1;
	put_commit(&f->in, &c);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	assert_int_equal(f->sink.commit_calls, 0);
}

/* ================= 4. refused input ================= */

/* Frame 1: head, blocks, a RAW page at pc.ram 0.  Frame 2: one REF item,
 * patched by the caller. */
static struct sitem *
ref_case(struct fx *f, const uint8_t *a)
{
	struct sitem *ref;

	fx_start(f);
	add_stream_head(f);
	add_page(f, FERRY_QREC_DATA, B_RAM, 0, PK_RAW, a, 0, 0);
	ref = add_page(f, FERRY_QREC_DATA, B_VGA, 0, PK_REF, a, B_RAM, 0);
	return ref;
}

static void
test_ref_wrong_hash(void **state)
{
	struct fx *f = *state;
	struct pages pg;
	struct sitem *ref;

	make_pages(&pg);
	ref = ref_case(f, pg.a);
	ref->it.hash[3] ^= 1;
	build_frames(f, 3);
	assert_int_equal(feed_frames(f, 1, 2, 0), FERR_PROTO_HASH);
	expect_seq(f, FT_ACK, 1);
	expect_error(f, FERR_PROTO_HASH, "REF", "pc.ram");
	check_rebuilt(f, 1);                    /* nothing of frame 2 */
	assert_int_equal(f->sink.abort_calls, 1);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
}

/* A REF to a page no DATA record ever rebuilt (the mirror holds zeros). */
static void
test_ref_to_page_never_written(void **state)
{
	struct fx *f = *state;
	struct pages pg;
	struct sitem *ref;

	make_pages(&pg);
	ref = ref_case(f, pg.a);
	ref->it.src_block = B_VGA;
	ref->it.src_offset = PG;
	build_frames(f, 3);
	assert_int_equal(feed_frames(f, 1, 2, 0), FERR_PROTO_HASH);
	expect_seq(f, FT_ACK, 1);
	expect_error(f, FERR_PROTO_HASH, "vga", NULL);
	check_rebuilt(f, 1);
}

static void
test_stream_off_ahead(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	build_stream(f);
	build_frames(f, 1);
	assert_int_equal(feed_frames(f, 1, 2, 0), 0);
	put_qstream(f, &f->in, 3, stream_off_of(f, 2) + 1, 2, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	assert_non_null(strstr(f->e.msg, "stream_off"));
	expect_seq(f, FT_ACK, 1);
	expect_seq(f, FT_ACK, 2);
	expect_error(f, FERR_PROTO_RANGE, "stream_off", NULL);
	check_rebuilt(f, 2);
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_stream_off_behind(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	build_stream(f);
	build_frames(f, 1);
	assert_int_equal(feed_frames(f, 1, 2, 0), 0);
	/* frame 3 claiming to start one byte before the end of frame 2 */
	put_qstream(f, &f->in, 3, stream_off_of(f, 2) - 1, 2, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	check_rebuilt(f, 2);
}

static void
test_first_frame_stream_off_not_zero(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	build_stream(f);
	put_qstream(f, &f->in, 1, 1, 0, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "stream_off 1", NULL);
	assert_int_equal(f->sink.out.len, 0);
}

/* A frame sent again (after a resume, say) is ignored, however it looks. */
static void
test_duplicate_seq_ignored(void **state)
{
	struct fx *f = *state;
	int calls;

	fx_start(f);
	build_stream(f);
	build_frames(f, 1);
	assert_int_equal(feed_frames(f, 1, 3, 0), 0);
	expect_seq(f, FT_ACK, 1);
	expect_seq(f, FT_ACK, 2);
	expect_seq(f, FT_ACK, 3);
	calls = f->sink.out_calls;
	assert_int_equal(feed_frames(f, 3, 3, 0), 0);           /* the same frame */
	assert_int_equal(feed_frames(f, 1, 3, 0), 0);
	put_qstream(f, &f->in, 2, 12345, 7, 2);                 /* seq 2, other items */
	assert_int_equal(fx_feed(f), 0);
	assert_int_equal(qout_len(f), 0);                       /* no ACK, no ERROR */
	assert_int_equal(f->sink.out_calls, calls);
	check_rebuilt(f, 3);
	assert_int_equal(rsess_state(f->s), RS_RECEIVING);
	/* and the rest still applies */
	assert_int_equal(feed_frames(f, 4, f->nframes, 0), 0);
	assert_int_equal(f->sink.out.len, f->exp.len);
	assert_memory_equal(f->sink.out.p, f->exp.p, f->exp.len);
	expect_seq(f, FT_ACK, 4);
}

static void
test_seq_gap(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	build_stream(f);
	build_frames(f, 1);
	assert_int_equal(feed_frames(f, 1, 1, 0), 0);
	assert_int_equal(feed_frames(f, 3, 3, 0), FERR_PROTO_RANGE);
	expect_seq(f, FT_ACK, 1);
	expect_error(f, FERR_PROTO_RANGE, "gap", NULL);
	check_rebuilt(f, 1);
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_first_seq_two(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	build_stream(f);
	put_qstream(f, &f->in, 2, 0, 0, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "gap", NULL);
	assert_int_equal(f->sink.out_calls, 0);
}

static void
test_pages_in_qemu_session(void **state)
{
	struct fx *f = *state;
	struct page_entry pe;

	fx_start(f);
	memset(&pe, 0, sizeof(pe));
	pe.kind = PK_ZERO;
	put_pages(&f->in, 1, QDEV_ID, 1, &pe, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	expect_error(f, FERR_PROTO_STATE, "PAGES", NULL);
	assert_int_equal(f->sink.write_calls, 0);
	assert_int_equal(f->sink.abort_calls, 1);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
}

static void
test_state_in_qemu_session(void **state)
{
	struct fx *f = *state;
	uint8_t blob[16] = { 1, 2, 3 };

	fx_start(f);
	put_state(&f->in, 0, blob, sizeof(blob));
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	expect_error(f, FERR_PROTO_STATE, "STATE", NULL);
	assert_int_equal(f->sink.state_calls, 0);
	assert_int_equal(f->sink.abort_calls, 1);
}

static void
test_qstream_before_manifest(void **state)
{
	struct fx *f = *state;

	build_stream(f);
	put_hello_caps(&f->in, FERRY_CAP_QEMU);
	put_qstream(f, &f->in, 1, 0, 0, 2);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	assert_int_equal(welcome_caps(f), FERRY_CAP_QEMU);
	expect_error(f, FERR_PROTO_STATE, "QSTREAM", "WAIT_MANIFEST");
	assert_int_equal(f->sink.out_calls, 0);
}

/* An image session (CAP_QEMU negotiated, but a DK_MEMORY manifest). */
static void
test_qstream_in_image_session(void **state)
{
	struct fx *f = *state;
	struct rsess_config cfg = { FERRY_MAX_FRAME_DEFAULT, test_random, 0 };
	struct msg_manifest *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	rsess_free(f->s);
	f->s = rsess_new(&cfg, &fake_sink_ops, &f->isink);
	assert_non_null(f->s);
	m->ndev = 1;
	m->dev[0] = (struct dev_desc){ .id = 9, .kind = DK_MEMORY, .unit = PG, .size = 4 * PG };
	snprintf(m->dev[0].name, sizeof(m->dev[0].name), "mem");
	build_stream(f);
	put_hello_caps(&f->in, 0);
	put_manifest(&f->in, m);
	free(m);
	assert_int_equal(fx_feed(f), 0);
	assert_int_equal(welcome_caps(f), 0);
	expect_frame(f, FT_ACCEPT);
	assert_int_equal(rsess_is_qemu(f->s), 0);
	put_qstream(f, &f->in, 1, 0, 0, 2);
	assert_int_equal(fx_feed(f), FERR_PROTO_STATE);
	expect_error(f, FERR_PROTO_STATE, "QSTREAM", NULL);
	assert_int_equal(f->isink.abort_calls, 1);
}

static void
test_page_before_blocks(void **state)
{
	struct fx *f = *state;
	struct pages pg;

	make_pages(&pg);
	fx_start(f);
	add_page(f, FERRY_QREC_DATA, B_RAM, 0, PK_RAW, pg.a, 0, 0);
	put_qstream(f, &f->in, 1, 0, 0, 1);
	assert_int_equal(fx_feed(f), FERR_PROTO_RANGE);
	expect_error(f, FERR_PROTO_RANGE, "BLOCKS", NULL);
	assert_int_equal(f->sink.out_calls, 0);
	assert_int_equal(f->sink.write_calls, 0);
}

static void
test_blocks_twice(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	add_stream_head(f);
	add_blocks(f);
	build_frames(f, 2);
	assert_int_equal(feed_frames(f, 1, 2, 0), FERR_PROTO_STATE);
	expect_seq(f, FT_ACK, 1);
	expect_error(f, FERR_PROTO_STATE, "BLOCKS", NULL);
	assert_int_equal(f->sink.blocks_calls, 1);
}

static void
test_trailing_bytes_after_items(void **state)
{
	struct fx *f = *state;
	struct msg_qstream h = { 1, 0, 0 };
	struct wr w;
	size_t at;

	fx_start(f);
	add_stream_head(f);
	fbuf_wr(&f->in, &w);
	at = msg_qstream_begin(&w, &h);
	assert_int_equal(msg_qitem_put_opaque(&w, f->item[0].buf, f->item[0].len), 0);
	wr_u8(&w, 0);                           /* one byte after the last item */
	msg_qstream_end(&w, at, 1);
	fbuf_done(&f->in, &w);
	assert_int_equal(fx_feed(f), FERR_PROTO_LENGTH);
	expect_error(f, FERR_PROTO_LENGTH, "after 1 items", NULL);
	assert_int_equal(rsess_last_seq(f->s), 0);
}

/* The destination QEMU's socket fails. */
static void
test_qemu_out_failure(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	build_stream(f);
	build_frames(f, 0);
	f->sink.out_fail_at = 3;
	assert_int_equal(feed_frames(f, 1, 1, 0), FERR_IO);
	expect_error(f, FERR_IO, "fake", NULL);
	assert_int_equal(qout_len(f), 0);               /* no ACK for the frame */
	assert_int_equal(f->sink.abort_calls, 1);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
	assert_int_equal(rsess_last_seq(f->s), 0);
}

/* ================= 5. the return path ================= */

static const uint8_t ret_a[] = "\x00\x01\x00\x04SHUT";
static const uint8_t ret_b[] = "\x00\x03\x00\x04PONG+more";

static void
test_qreturn_queued_in_order(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	build_stream(f);
	build_frames(f, 1);
	assert_int_equal(feed_frames(f, 1, 1, 0), 0);
	assert_int_equal(rsess_qreturn(f->s, ret_a, sizeof(ret_a), &f->e), 0);
	assert_int_equal(feed_frames(f, 2, 2, 0), 0);
	assert_int_equal(rsess_qreturn(f->s, ret_b, sizeof(ret_b), &f->e), 0);
	assert_int_equal(rsess_qreturn(f->s, ret_b, 0, &f->e), 0);      /* nothing: no frame */
	expect_seq(f, FT_ACK, 1);
	expect_qreturn(f, 0, ret_a, sizeof(ret_a));
	expect_seq(f, FT_ACK, 2);
	expect_qreturn(f, sizeof(ret_a), ret_b, sizeof(ret_b));
	assert_int_equal(qout_len(f), 0);
	assert_int_equal(rsess_state(f->s), RS_RECEIVING);
}

/* After a cut: RESUMED with next_seq = last applied + 1, then the whole
 * return path from offset 0; the stream then goes on and commits. */
static void
test_resume_sends_whole_return_path(void **state)
{
	struct fx *f = *state;
	uint8_t all[sizeof(ret_a) + 2 * sizeof(ret_b)];
	struct msg_commit c;
	uint32_t k;

	fx_start(f);
	build_stream(f);
	build_frames(f, 1);
	assert_int_equal(feed_frames(f, 1, 6, 0), 0);
	assert_int_equal(rsess_qreturn(f->s, ret_a, sizeof(ret_a), &f->e), 0);
	assert_int_equal(rsess_qreturn(f->s, ret_b, sizeof(ret_b), &f->e), 0);
	rsess_detach(f->s);
	assert_int_equal(qout_len(f), 0);
	/* the destination QEMU writes more while the sender is away */
	assert_int_equal(rsess_qreturn(f->s, ret_b, sizeof(ret_b), &f->e), 0);
	assert_int_equal(rsess_resumable(f->s), 1);
	assert_int_equal(rsess_resume(f->s, &f->e), 0);
	memcpy(all, ret_a, sizeof(ret_a));
	memcpy(all + sizeof(ret_a), ret_b, sizeof(ret_b));
	memcpy(all + sizeof(ret_a) + sizeof(ret_b), ret_b, sizeof(ret_b));
	expect_resumed(f, RSM_RECEIVING, 7);
	expect_qreturn(f, 0, all, sizeof(all));
	assert_int_equal(qout_len(f), 0);
	/* the sender sends again from next_seq, with one frame it had sent */
	assert_int_equal(feed_frames(f, 6, f->nframes, 0), 0);
	for (k = 7; k <= f->nframes; k++)
		expect_seq(f, FT_ACK, k);
	assert_int_equal(f->sink.out.len, f->exp.len);
	assert_memory_equal(f->sink.out.p, f->exp.p, f->exp.len);
	put_qcommit(f, f->nframes, &c);
	assert_int_equal(fx_feed(f), 0);
	expect_seq(f, FT_COMMITTED, f->nframes);
	assert_int_equal(f->sink.abort_calls, 0);
}

static void
test_resume_without_return_path(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	build_stream(f);
	build_frames(f, 1);
	assert_int_equal(feed_frames(f, 1, 2, 0), 0);
	assert_int_equal(rsess_qreturn(f->s, ret_a, 0, &f->e), 0);     /* nothing yet */
	rsess_detach(f->s);
	assert_int_equal(rsess_resume(f->s, &f->e), 0);
	expect_resumed(f, RSM_RECEIVING, 3);
	assert_int_equal(qout_len(f), 0);
}

/* A committed session reports it; the return path is not sent again. */
static void
test_resume_after_commit(void **state)
{
	struct fx *f = *state;
	struct msg_commit c;

	run_stream(f, 0, 0);
	assert_int_equal(rsess_qreturn(f->s, ret_a, sizeof(ret_a), &f->e), 0);
	put_qcommit(f, 1, &c);
	assert_int_equal(fx_feed(f), 0);
	rsess_detach(f->s);
	assert_int_equal(rsess_resume(f->s, &f->e), 0);
	expect_resumed(f, RSM_COMMITTED, 2);
	assert_int_equal(qout_len(f), 0);
	/* and no more return path after COMMITTED */
	assert_int_equal(rsess_qreturn(f->s, ret_b, sizeof(ret_b), &f->e), FERR_PROTO_STATE);
	assert_int_equal(rsess_state(f->s), RS_COMMITTED);
	assert_int_equal(f->sink.abort_calls, 0);
}

/* Exactly FERRY_QRETURN_MAX bytes are carried (and resent whole); one more
 * fails the session. */
static void
test_qreturn_max_then_one_more(void **state)
{
	struct fx *f = *state;
	uint8_t *big = malloc(FERRY_QRETURN_MAX);
	struct tprng g = { 77 };

	assert_non_null(big);
	tprng_fill(&g, big, FERRY_QRETURN_MAX);
	fx_start(f);
	assert_int_equal(rsess_qreturn(f->s, big, FERRY_QRETURN_MAX - 100, &f->e), 0);
	assert_int_equal(rsess_qreturn(f->s, big + FERRY_QRETURN_MAX - 100, 100, &f->e), 0);
	expect_qreturn(f, 0, big, FERRY_QRETURN_MAX - 100);
	expect_qreturn(f, FERRY_QRETURN_MAX - 100, big + FERRY_QRETURN_MAX - 100, 100);
	rsess_detach(f->s);
	assert_int_equal(rsess_resume(f->s, &f->e), 0);
	expect_resumed(f, RSM_RECEIVING, 1);
	expect_qreturn(f, 0, big, FERRY_QRETURN_MAX);
	assert_int_equal(qout_len(f), 0);
	assert_int_equal(rsess_qreturn(f->s, big, 1, &f->e), FERR_PROTO_LENGTH);
	assert_non_null(strstr(f->e.msg, "return path"));
	expect_error(f, FERR_PROTO_LENGTH, "return path", NULL);
	assert_int_equal(qout_len(f), 0);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
	assert_int_equal(f->sink.abort_calls, 1);
	free(big);
}

static void
test_qreturn_one_call_over_max(void **state)
{
	struct fx *f = *state;
	uint8_t *big = calloc(1, FERRY_QRETURN_MAX + 1);

	assert_non_null(big);
	fx_start(f);
	assert_int_equal(rsess_qreturn(f->s, big, FERRY_QRETURN_MAX + 1, &f->e), FERR_PROTO_LENGTH);
	expect_error(f, FERR_PROTO_LENGTH, "return path", NULL);
	assert_int_equal(rsess_state(f->s), RS_FAILED);
	assert_int_equal(f->sink.abort_calls, 1);
	free(big);
}

/* Return-path bytes with no QEMU session to carry them: refused, and the
 * session is left as it was. */
static void
test_qreturn_outside_qemu_session(void **state)
{
	struct fx *f = *state;
	struct rsess_config cfg = { FERRY_MAX_FRAME_DEFAULT, test_random, 0 };
	struct msg_manifest *m = calloc(1, sizeof(*m));

	assert_non_null(m);
	/* before MANIFEST */
	assert_int_equal(rsess_qreturn(f->s, ret_a, sizeof(ret_a), &f->e), FERR_PROTO_STATE);
	put_hello_caps(&f->in, FERRY_CAP_QEMU);
	assert_int_equal(fx_feed(f), 0);
	assert_int_equal(rsess_qreturn(f->s, ret_a, sizeof(ret_a), &f->e), FERR_PROTO_STATE);
	assert_int_equal(rsess_state(f->s), RS_WAIT_MANIFEST);
	/* an image session */
	rsess_free(f->s);
	f->s = rsess_new(&cfg, &fake_sink_ops, &f->isink);
	assert_non_null(f->s);
	m->ndev = 1;
	m->dev[0] = (struct dev_desc){ .id = 9, .kind = DK_MEMORY, .unit = PG, .size = 4 * PG };
	snprintf(m->dev[0].name, sizeof(m->dev[0].name), "mem");
	put_hello_caps(&f->in, 0);
	put_manifest(&f->in, m);
	free(m);
	assert_int_equal(fx_feed(f), 0);
	expect_frame(f, FT_WELCOME);
	expect_frame(f, FT_ACCEPT);
	assert_int_equal(rsess_qreturn(f->s, ret_a, sizeof(ret_a), &f->e), FERR_PROTO_STATE);
	assert_int_equal(qout_len(f), 0);
	assert_int_equal(rsess_state(f->s), RS_RECEIVING);
	assert_int_equal(f->isink.abort_calls, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		/* 1. negotiation */
		T(test_welcome_offers_qemu),
		T(test_welcome_no_qemu_without_qemu_out),
		T(test_welcome_no_qemu_without_config),
		T(test_welcome_no_qemu_when_sender_lacks_it),
		T(test_qemu_manifest_without_cap),
		T(test_qemu_manifest_receiver_without_qemu),
		T(test_qemu_manifest_accepted),
		/* 2. the rebuilt stream */
		T(test_stream_one_frame),
		T(test_stream_frame_per_item),
		T(test_stream_frames_of_three),
		T(test_stream_fed_byte_by_byte),
		T(test_stream_fed_in_odd_chunks),
		T(test_stream_bytes_per_frame),
		T(test_ref_source_is_last_data_record),
		/* 3. COMMIT */
		T(test_commit_right_digest),
		T(test_commit_wrong_digest),
		T(test_commit_after_part_of_stream),
		T(test_commit_sink_fails),
		T(test_commit_wrong_seq),
		T(test_commit_wrong_device),
		T(test_commit_state_digest_not_zero),
		T(test_commit_two_devices),
		/* 4. refused input */
		T(test_ref_wrong_hash),
		T(test_ref_to_page_never_written),
		T(test_stream_off_ahead),
		T(test_stream_off_behind),
		T(test_first_frame_stream_off_not_zero),
		T(test_duplicate_seq_ignored),
		T(test_seq_gap),
		T(test_first_seq_two),
		T(test_pages_in_qemu_session),
		T(test_state_in_qemu_session),
		T(test_qstream_before_manifest),
		T(test_qstream_in_image_session),
		T(test_page_before_blocks),
		T(test_blocks_twice),
		T(test_trailing_bytes_after_items),
		T(test_qemu_out_failure),
		/* 5. the return path */
		T(test_qreturn_queued_in_order),
		T(test_resume_sends_whole_return_path),
		T(test_resume_without_return_path),
		T(test_resume_after_commit),
		T(test_qreturn_max_then_one_more),
		T(test_qreturn_one_call_over_max),
		T(test_qreturn_outside_qemu_session),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
