/* Helpers shared by the unit tests (header-only, include after cmocka.h):
 * a deterministic random source, frame building into heap buffers, a
 * reader of the frames an rsess queued, and a FAKE rsess sink that keeps
 * every device in memory and records the calls made to it.
 *
 * The fake sink's commit checks digests the way section 5.2 defines them
 * (and staging.c computes them): each unit hashed with page_hash(seed),
 * the hashes added to a digest in index order. */
#ifndef FERRY_TESTUTIL_H
#define FERRY_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "msg.h"
#include "pagehash.h"
#include "rsess.h"
#include "wr.h"

/* ---- deterministic pseudo-random bytes (xorshift64*) ---- */

struct tprng {
	uint64_t s;
};

static inline uint64_t
tprng_next(struct tprng *g)
{
	g->s ^= g->s >> 12;
	g->s ^= g->s << 25;
	g->s ^= g->s >> 27;
	return g->s * 0x2545F4914F6CDD1Dull;
}

static inline void
tprng_fill(struct tprng *g, void *buf, size_t n)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < n; i++) {
		if (i % 8 == 0) {
			uint64_t v = tprng_next(g);

			memcpy(p + i, &v, n - i < 8 ? n - i : 8);
		}
	}
}

/* A page lz4 compresses well but that is not all zeros. */
static inline void
fill_text(void *buf, size_t n, unsigned salt)
{
	static const char words[] = "mov rax, rbx\ncall memcpy\nthe page buffer count ";
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)words[(i + salt) % (sizeof(words) - 1)];
	if (n > 0)
		p[0] = (uint8_t)('A' + salt % 26);
}

/* Session id source for rsess_config: fixed bytes 0xA0, 0xA1, ... */
static inline void
test_random(void *buf, size_t n)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(0xA0 + i);
}

/* ---- building frames ---- */

/* A heap buffer that frames are appended to. */
struct fbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

static inline void
fbuf_init(struct fbuf *b, size_t cap)
{
	b->p = malloc(cap);
	b->len = 0;
	b->cap = cap;
	assert_non_null(b->p);
}

static inline void
fbuf_fini(struct fbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* A writer over the free tail; fbuf_done adds what it wrote. */
static inline void
fbuf_wr(struct fbuf *b, struct wr *w)
{
	wr_init(w, b->p + b->len, b->cap - b->len);
}

static inline void
fbuf_done(struct fbuf *b, const struct wr *w)
{
	assert_int_equal(w->err, 0);
	b->len += w->off;
}

static inline void
put_hello(struct fbuf *b, uint64_t seed, uint32_t max_frame)
{
	struct msg_hello h = { FERRY_VERSION, 0, max_frame, seed };
	struct wr w;

	fbuf_wr(b, &w);
	assert_int_equal(msg_hello_encode(&w, &h), 0);
	fbuf_done(b, &w);
}

static inline void
put_hello_with_caps(struct fbuf *b, uint64_t seed, uint32_t max_frame, uint32_t caps)
{
	struct msg_hello h = { FERRY_VERSION, caps, max_frame, seed };
	struct wr w;

	fbuf_wr(b, &w);
	assert_int_equal(msg_hello_encode(&w, &h), 0);
	fbuf_done(b, &w);
}

static inline void
put_manifest(struct fbuf *b, const struct msg_manifest *m)
{
	struct wr w;

	fbuf_wr(b, &w);
	assert_int_equal(msg_manifest_encode(&w, m), 0);
	fbuf_done(b, &w);
}

static inline void
put_seq(struct fbuf *b, uint8_t type, uint64_t seq)
{
	struct msg_seq s = { seq };
	struct wr w;

	fbuf_wr(b, &w);
	assert_int_equal(msg_seq_encode(&w, type, &s), 0);
	fbuf_done(b, &w);
}

static inline void
put_state(struct fbuf *b, uint64_t off, const void *p, uint32_t len)
{
	struct msg_state s = { off, p, len };
	struct wr w;

	fbuf_wr(b, &w);
	assert_int_equal(msg_state_encode(&w, &s), 0);
	fbuf_done(b, &w);
}

static inline void
put_commit(struct fbuf *b, const struct msg_commit *c)
{
	struct wr w;

	fbuf_wr(b, &w);
	assert_int_equal(msg_commit_encode(&w, c), 0);
	fbuf_done(b, &w);
}

static inline void
put_error(struct fbuf *b, int code, const char *text)
{
	struct msg_text t;
	struct wr w;

	memset(&t, 0, sizeof(t));
	t.code = (uint32_t)-code;
	snprintf(t.text, sizeof(t.text), "%s", text);
	fbuf_wr(b, &w);
	assert_int_equal(msg_error_encode(&w, &t), 0);
	fbuf_done(b, &w);
}

/* One PAGES frame with n entries. */
static inline void
put_pages(struct fbuf *b, uint64_t seq, uint32_t device, uint32_t round,
    const struct page_entry *pe, uint32_t n)
{
	struct msg_pages ph = { seq, device, round, 0 };
	struct wr w;
	size_t at;
	uint32_t i;

	fbuf_wr(b, &w);
	at = msg_pages_begin(&w, &ph);
	assert_true(at != SIZE_MAX);
	for (i = 0; i < n; i++)
		assert_int_equal(msg_page_put(&w, &pe[i]), 0);
	msg_pages_end(&w, at, n);
	fbuf_done(b, &w);
}

/* ---- reading what an rsess queued ---- */

struct outframe {
	struct frame_hdr h;
	uint8_t payload[64 + FERRY_TEXT_MAX];
};

/* Pop the first queued frame; 0 when there is one, -1 when the output is
 * empty.  Fails the test on a malformed or oversized frame. */
static inline int
out_pop(struct rsess *s, struct outframe *f)
{
	const uint8_t *p;
	size_t len;
	struct ferr e = { 0 };

	p = rsess_output(s, &len);
	if (len == 0)
		return -1;
	assert_int_equal(frame_decode_hdr(p, len, FERRY_MAX_FRAME_LIMIT, FDIR_R2S, &f->h, &e), 0);
	assert_true(f->h.len <= sizeof(f->payload));
	assert_true(len - FERRY_FRAME_HDR_LEN >= f->h.len);
	memcpy(f->payload, p + FERRY_FRAME_HDR_LEN, f->h.len);
	rsess_output_consume(s, FERRY_FRAME_HDR_LEN + f->h.len);
	return 0;
}

/* Pop the first queued frame whatever its size: the payload is copied to
 * *payload (malloc'd; free it).  0, or -1 when the output is empty. */
static inline int
out_pop_big(struct rsess *s, struct frame_hdr *h, uint8_t **payload)
{
	const uint8_t *p;
	size_t len;
	struct ferr e = { 0 };

	p = rsess_output(s, &len);
	if (len == 0)
		return -1;
	assert_int_equal(frame_decode_hdr(p, len, FERRY_MAX_FRAME_LIMIT, FDIR_R2S, h, &e), 0);
	assert_true(len - FERRY_FRAME_HDR_LEN >= h->len);
	*payload = malloc(h->len ? h->len : 1);
	assert_non_null(*payload);
	memcpy(*payload, p + FERRY_FRAME_HDR_LEN, h->len);
	rsess_output_consume(s, FERRY_FRAME_HDR_LEN + h->len);
	return 0;
}

static inline size_t
out_len(struct rsess *s)
{
	size_t len;

	(void)rsess_output(s, &len);
	return len;
}

/* ---- the fake sink ---- */

struct fake_sink {
	/* behaviour */
	int accept_rc;                  /* returned by accept (0 = accept) */
	uint32_t refuse_device;
	const char *refuse_text;
	int write_fail_at;              /* fail the Nth write (1-based), 0 = never */
	int verify;                     /* commit checks digests */
	int domain_rc;                  /* returned by domain_check (0 = every check passed) */
	/* reuse (section 4.19): what each device's existing destination file
	 * holds (its declared size), NULL = no such file; reuse_fail_at fails
	 * the Nth call (1-based), 0 = never. */
	const uint8_t *reuse_img[FERRY_MAX_DEVICES];
	int reuse_zeros;                /* reuse_img NULL: an existing file of zeros */
	int reuse_fail_at;

	/* what it holds */
	uint32_t ndev;
	uint8_t *dev[FERRY_MAX_DEVICES];
	uint64_t size[FERRY_MAX_DEVICES];
	uint32_t unit[FERRY_MAX_DEVICES];
	uint8_t *state;
	uint64_t state_size;
	uint64_t seed;
	uint8_t sid[16];

	/* calls */
	int accept_calls, write_calls, read_calls, state_calls, commit_calls, abort_calls;
	int domain_calls;
	int reuse_calls;
	uint64_t reuse_units[FERRY_MAX_DEVICES];    /* units copied per device */
	uint32_t domain_flags, domain_xml_len, domain_nwaive;
	uint32_t last_write_dev;
	uint64_t last_write_off;
	uint32_t last_write_len;
	struct msg_commit last_commit;
};

static inline void
fake_release(struct fake_sink *f)
{
	uint32_t i;

	for (i = 0; i < f->ndev; i++) {
		free(f->dev[i]);
		f->dev[i] = NULL;
	}
	free(f->state);
	f->state = NULL;
	f->ndev = 0;
}

static inline int
fake_accept(void *ctx, const struct msg_manifest *m, uint64_t seed, const uint8_t sid[16],
    struct msg_text *refusal)
{
	struct fake_sink *f = ctx;
	uint32_t i;

	f->accept_calls++;
	if (f->accept_rc != 0) {
		refusal->device = f->refuse_device;
		snprintf(refusal->text, sizeof(refusal->text), "%s",
		    f->refuse_text ? f->refuse_text : "refused");
		return f->accept_rc;
	}
	f->seed = seed;
	memcpy(f->sid, sid, 16);
	f->ndev = m->ndev;
	for (i = 0; i < m->ndev; i++) {
		f->dev[i] = calloc(1, (size_t)m->dev[i].size);
		assert_non_null(f->dev[i]);
		f->size[i] = m->dev[i].size;
		f->unit[i] = m->dev[i].unit;
	}
	f->state_size = m->state_size;
	f->state = calloc(1, m->state_size ? (size_t)m->state_size : 1);
	assert_non_null(f->state);
	return 0;
}

static inline int
fake_write(void *ctx, uint32_t dev, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e)
{
	struct fake_sink *f = ctx;

	f->write_calls++;
	if (f->write_fail_at != 0 && f->write_calls == f->write_fail_at)
		return ferr_set(e, FERR_IO, "fake: write %d fails", f->write_calls);
	/* The session must never write outside a device. */
	assert_true(dev < f->ndev);
	assert_true(off <= f->size[dev] && len <= f->size[dev] - off);
	memcpy(f->dev[dev] + off, p, len);
	f->last_write_dev = dev;
	f->last_write_off = off;
	f->last_write_len = len;
	return 0;
}

static inline int
fake_read(void *ctx, uint32_t dev, uint64_t off, uint8_t *p, uint32_t len, struct ferr *e)
{
	struct fake_sink *f = ctx;

	(void)e;
	f->read_calls++;
	assert_true(dev < f->ndev);
	assert_true(off <= f->size[dev] && len <= f->size[dev] - off);
	memcpy(p, f->dev[dev] + off, len);
	return 0;
}

static inline int
fake_state(void *ctx, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e)
{
	struct fake_sink *f = ctx;

	(void)e;
	f->state_calls++;
	assert_true(off <= f->state_size && len <= f->state_size - off);
	memcpy(f->state + off, p, len);
	return 0;
}

/* Digest of a byte image cut into units (section 5.2). */
static inline void
image_digest(uint64_t seed, const uint8_t *p, uint64_t size, uint32_t unit,
    uint8_t out[FERRY_HASH_LEN])
{
	struct digest *d = digest_new(seed);
	uint8_t h[FERRY_HASH_LEN];
	uint64_t off;

	assert_non_null(d);
	for (off = 0; off < size; off += unit) {
		uint64_t n = size - off < unit ? size - off : unit;

		page_hash(seed, p + off, (size_t)n, h);
		digest_add(d, h);
	}
	digest_final(d, out);
	digest_free(d);
}

static inline int
fake_commit(void *ctx, const struct msg_commit *c, struct ferr *e)
{
	struct fake_sink *f = ctx;
	uint8_t got[FERRY_HASH_LEN];
	uint32_t i;

	f->commit_calls++;
	f->last_commit = *c;
	if (!f->verify)
		return 0;
	for (i = 0; i < f->ndev; i++) {
		image_digest(f->seed, f->dev[i], f->size[i], f->unit[i], got);
		if (memcmp(got, c->dev[i].digest, FERRY_HASH_LEN) != 0)
			return ferr_set(e, FERR_VERIFY, "fake: device %u digest differs", i);
	}
	return 0;
}

static inline void
fake_abort(void *ctx)
{
	struct fake_sink *f = ctx;

	f->abort_calls++;
}

/* One row per call: "cpu-arch", passing unless domain_rc says otherwise. */
static inline int
fake_domain_check(void *ctx, const struct msg_manifest *m, const struct msg_domain *d,
    struct msg_checks *out, struct msg_text *refusal)
{
	struct fake_sink *f = ctx;

	(void)m;
	f->domain_calls++;
	f->domain_flags = d->flags;
	f->domain_xml_len = d->xml_len;
	f->domain_nwaive = d->nwaive;
	out->n = 1;
	out->row[0].status = f->domain_rc ? CS_FAIL : CS_PASS;
	out->row[0].code = (uint32_t)-FERR_VIRT_ARCH;
	snprintf(out->row[0].name, sizeof(out->row[0].name), "cpu-arch");
	snprintf(out->row[0].src, sizeof(out->row[0].src), "%s", d->arch);
	snprintf(out->row[0].dst, sizeof(out->row[0].dst), "x86_64");
	if (f->domain_rc) {
		snprintf(out->row[0].why, sizeof(out->row[0].why), "source %s, destination x86_64",
		    d->arch);
		snprintf(refusal->text, sizeof(refusal->text), "check cpu-arch: %s", out->row[0].why);
	}
	return f->domain_rc;
}

/* Copy units [first, first + count) of reuse_img[dev] into the device and
 * hash them (section 5.2), as staging.c does with the existing file. */
static inline int
fake_reuse(void *ctx, uint32_t dev, uint64_t first, uint32_t count,
    uint8_t (*hash)[FERRY_HASH_LEN], struct ferr *e)
{
	struct fake_sink *f = ctx;
	uint64_t off = first * f->unit[dev], end = (first + count) * (uint64_t)f->unit[dev];
	uint32_t k;

	f->reuse_calls++;
	if (f->reuse_fail_at != 0 && f->reuse_calls == f->reuse_fail_at)
		return ferr_set(e, FERR_IO, "fake: reuse %d fails", f->reuse_calls);
	assert_true(dev < f->ndev);
	if (f->reuse_img[dev] == NULL && !f->reuse_zeros) {
		assert_int_equal(first, 0);     /* asked once, never again */
		return 0;
	}
	assert_true(count >= 1 && off < f->size[dev]);
	if (end > f->size[dev])
		end = f->size[dev];
	assert_true(end - off <= (uint64_t)count * f->unit[dev]);
	if (f->reuse_img[dev] == NULL) {
		/* Zeros: the device already is; hash without touching it. */
		uint8_t *z = calloc(1, f->unit[dev]);

		assert_non_null(z);
		for (k = 0; k < count; k++) {
			uint64_t u = off + (uint64_t)k * f->unit[dev];

			page_hash(f->seed, z, (size_t)(f->size[dev] - u < f->unit[dev] ?
			    f->size[dev] - u : f->unit[dev]), hash[k]);
		}
		free(z);
		f->reuse_units[dev] += count;
		return 1;
	}
	memcpy(f->dev[dev] + off, f->reuse_img[dev] + off, (size_t)(end - off));
	for (k = 0; k < count; k++) {
		uint64_t u = off + (uint64_t)k * f->unit[dev];
		uint64_t l = f->size[dev] - u < f->unit[dev] ? f->size[dev] - u : f->unit[dev];

		page_hash(f->seed, f->dev[dev] + u, (size_t)l, hash[k]);
	}
	f->reuse_units[dev] += count;
	return 1;
}

static const struct rsess_sink_ops fake_sink_ops = {
	.accept = fake_accept,
	.write = fake_write,
	.read = fake_read,
	.state = fake_state,
	.commit = fake_commit,
	.abort = fake_abort,
	.domain_check = fake_domain_check,
	.reuse = fake_reuse,
};

/* A session offering caps (FERRY_CAP_*). */
static inline struct rsess *
fake_rsess_new_caps(struct fake_sink *f, uint32_t max_frame, uint32_t caps)
{
	struct rsess_config cfg = { max_frame, test_random, caps };
	struct rsess *s = rsess_new(&cfg, &fake_sink_ops, f);

	assert_non_null(s);
	return s;
}

static inline struct rsess *
fake_rsess_new(struct fake_sink *f, uint32_t max_frame)
{
	return fake_rsess_new_caps(f, max_frame, FERRY_CAP_DOMAIN);
}

/* Run rsess_reuse_step (budget bytes each) while the session is in
 * RS_REUSING; returns how many steps it took, or -1 when one failed. */
static inline int
drive_reuse(struct rsess *s, uint64_t budget, struct ferr *e)
{
	int steps = 0;

	while (rsess_state(s) == RS_REUSING) {
		if (rsess_reuse_step(s, budget, e) != 0)
			return -1;
		steps++;
	}
	return steps;
}

/* Feed a whole buffer in one call and expect every byte consumed. */
static inline int
feed_all(struct rsess *s, const uint8_t *p, size_t len, struct ferr *e)
{
	size_t used = 0;
	int rc = rsess_feed(s, p, len, &used, e);

	if (rc == 0)
		assert_int_equal(used, len);
	return rc;
}

#endif
