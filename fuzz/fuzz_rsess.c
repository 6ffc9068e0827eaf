/* Fuzz target: the receiver session state machine (src/receiver/rsess.c),
 * fed a sender's byte stream in chunks, with an in-memory sink.
 *
 * Input layout:
 *   u8 flags     bit 0: rsess_resume at the end of the stream
 *                bit 1: detach and resume once, the first time the session
 *                       is RECEIVING after a feed (a reconnection)
 *                bit 2: rsess_fail (operator abort) at the end
 *                bit 3: announce FERRY_MAX_FRAME_LIMIT (else the default)
 *                bit 4: the sink's commit fails (FERR_IO)
 *                bit 5: the sink refuses the manifest
 *   u8 fail_at   the sink's Nth write/read/state call fails (0 = never)
 *   u8 chunking  0: the whole stream in one rsess_feed; else chunk sizes
 *                from 1 to 2^(chunking % 16) bytes, drawn from a PRNG
 *                seeded with this byte and the next
 *   u8 seed
 *   bytes        the stream: frames as a sender sends them
 *
 * The sink keeps devices in memory and accepts manifests of at most 1 MiB
 * of devices and 256 KiB of state with the real sink's unit rule (powers
 * of two from 4 KiB to 1 MiB); it refuses the rest, as a receiver short of
 * space would.
 *
 * Invariants checked (any violation aborts):
 * - the sink: accept at most once; write, read and state only between
 *   accept and the end, whole units inside a declared device (or inside
 *   the state blob); commit at most once, and only when the bytes the sink
 *   holds have the digests the session verified; abort at most once, only
 *   after accept, never after a successful commit, and exactly once by
 *   the time the session is freed unless it committed;
 * - rsess_feed: consumes at most what it was given; returns 0 or an error
 *   (never NEED_MORE) that it also reports in e; after an error the
 *   session is over (FAILED or COMMITTED), accepts nothing more and calls
 *   no sink op; with 0, what it left unconsumed is part of one frame whose
 *   header it accepted;
 * - output: whole frames, each decodes (header in the receiver-to-sender
 *   direction, within FERRY_MAX_FRAME_MIN, payload by its decoder) and
 *   they come in protocol order: WELCOME first, then ACCEPT or REFUSE, ACKs
 *   numbered 1, 2, 3..., COMMITTED for the last ACK, nothing after ERROR,
 *   REFUSE or COMMITTED but RESUMED; RESUMED tells the state as it is. */
#include "fuzz_common.h"

#include "pagehash.h"
#include "rsess.h"

#define FZ_DEV_TOTAL_MAX (1u << 20)
#define FZ_STATE_MAX (256u << 10)
#define FZ_MAX_FEEDS 4096

/* ---- the in-memory sink ---- */

struct fsink {
	/* behaviour */
	int refuse;
	int commit_fails;
	unsigned fail_at;

	/* what it holds */
	uint32_t ndev;
	uint8_t *dev[FERRY_MAX_DEVICES];
	uint64_t size[FERRY_MAX_DEVICES];
	uint32_t unit[FERRY_MAX_DEVICES];
	uint8_t *state;
	uint64_t state_size;
	uint64_t state_hwm;     /* state bytes received, in order */
	uint64_t seed;

	/* what happened */
	int accepted, committed, aborted;
	unsigned accept_calls, commit_calls, abort_calls, io_calls, ops, domain_calls;
	int domain_fails;
};

static int
unit_ok(uint32_t u)
{
	return u >= FERRY_UNIT_MIN && u <= FERRY_UNIT_MAX && (u & (u - 1)) == 0;
}

static int
fs_accept(void *ctx, const struct msg_manifest *m, uint64_t seed, const uint8_t sid[16],
    struct msg_text *refusal)
{
	struct fsink *f = ctx;
	uint64_t total = 0;
	uint32_t i;

	(void)sid;
	f->ops++;
	FZ_CHECK(f->accept_calls++ == 0);
	FZ_CHECK(!f->aborted && !f->committed);
	FZ_CHECK(m->ndev >= 1 && m->ndev <= FERRY_MAX_DEVICES);
	if (f->refuse) {
		refusal->device = m->dev[0].id;
		snprintf(refusal->text, sizeof(refusal->text), "fuzz sink: refused");
		return FERR_REFUSED;
	}
	for (i = 0; i < m->ndev; i++) {
		if (!unit_ok(m->dev[i].unit)) {
			refusal->device = m->dev[i].id;
			snprintf(refusal->text, sizeof(refusal->text), "unit %u", m->dev[i].unit);
			return FERR_REFUSE_UNIT;
		}
		total += m->dev[i].size;        /* each <= 2^46: no overflow */
	}
	if (total > FZ_DEV_TOTAL_MAX || m->state_size > FZ_STATE_MAX) {
		snprintf(refusal->text, sizeof(refusal->text), "too large for the fuzz sink");
		return FERR_REFUSE_SPACE;
	}
	f->ndev = m->ndev;
	for (i = 0; i < m->ndev; i++) {
		f->dev[i] = calloc(1, (size_t)m->dev[i].size);
		FZ_CHECK(f->dev[i] != NULL);
		f->size[i] = m->dev[i].size;
		f->unit[i] = m->dev[i].unit;
	}
	f->state_size = m->state_size;
	f->state = calloc(1, m->state_size ? (size_t)m->state_size : 1);
	FZ_CHECK(f->state != NULL);
	f->seed = seed;
	f->accepted = 1;
	return 0;
}

/* A unit-aligned range of whole units inside device dev. */
static void
check_unit_range(const struct fsink *f, uint32_t dev, uint64_t off, uint32_t len)
{
	FZ_CHECK(f->accepted && !f->aborted && !f->committed);
	FZ_CHECK(dev < f->ndev);
	FZ_CHECK(off <= f->size[dev] && len <= f->size[dev] - off);
	FZ_CHECK(len >= 1);
	FZ_CHECK(off % f->unit[dev] == 0);
	FZ_CHECK(len == f->unit[dev] || off + len == f->size[dev]);
}

static int
inject(struct fsink *f, const char *op, struct ferr *e)
{
	f->io_calls++;
	if (f->fail_at != 0 && f->io_calls == f->fail_at)
		return ferr_set(e, FERR_IO, "fuzz sink: %s %u fails", op, f->io_calls);
	return 0;
}

static int
fs_write(void *ctx, uint32_t dev, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e)
{
	struct fsink *f = ctx;
	int rc;

	f->ops++;
	check_unit_range(f, dev, off, len);
	if ((rc = inject(f, "write", e)) != 0)
		return rc;
	memcpy(f->dev[dev] + off, p, len);
	return 0;
}

static int
fs_read(void *ctx, uint32_t dev, uint64_t off, uint8_t *p, uint32_t len, struct ferr *e)
{
	struct fsink *f = ctx;
	int rc;

	f->ops++;
	check_unit_range(f, dev, off, len);
	if ((rc = inject(f, "read", e)) != 0)
		return rc;
	memcpy(p, f->dev[dev] + off, len);
	return 0;
}

static int
fs_state(void *ctx, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e)
{
	struct fsink *f = ctx;
	int rc;

	f->ops++;
	FZ_CHECK(f->accepted && !f->aborted && !f->committed);
	FZ_CHECK(off <= f->state_size && len <= f->state_size - off);
	FZ_CHECK(len >= 1 && off == f->state_hwm);        /* in order, no gaps */
	if ((rc = inject(f, "state", e)) != 0)
		return rc;
	memcpy(f->state + off, p, len);
	f->state_hwm = off + len;
	return 0;
}

/* Section 5.2 over a byte image cut into units of `unit` bytes. */
static void
image_digest(uint64_t seed, const uint8_t *p, uint64_t size, uint32_t unit,
    uint8_t out[FERRY_HASH_LEN])
{
	struct digest *d = digest_new(seed);
	uint8_t h[FERRY_HASH_LEN];
	uint64_t off;

	FZ_CHECK(d != NULL);
	for (off = 0; off < size; off += unit) {
		page_hash(seed, p + off, (size_t)(size - off < unit ? size - off : unit), h);
		digest_add(d, h);
	}
	digest_final(d, out);
	digest_free(d);
}

static int
fs_commit(void *ctx, const struct msg_commit *c, struct ferr *e)
{
	struct fsink *f = ctx;
	uint8_t got[FERRY_HASH_LEN];
	uint32_t i;

	f->ops++;
	FZ_CHECK(f->accepted && !f->aborted && !f->committed);
	FZ_CHECK(f->commit_calls++ == 0);
	FZ_CHECK(c->ndev == f->ndev);
	/* The session vouched for these digests from its own bookkeeping:
	 * the bytes it wrote must agree. */
	for (i = 0; i < f->ndev; i++) {
		image_digest(f->seed, f->dev[i], f->size[i], f->unit[i], got);
		FZ_CHECK(memcmp(got, c->dev[i].digest, FERRY_HASH_LEN) == 0);
	}
	/* The state blob is the sink's to check, as staging.c does. */
	FZ_CHECK(f->state_hwm == f->state_size);
	if (f->state_size != 0) {
		image_digest(f->seed, f->state, f->state_size, 1u << 20, got);
		if (memcmp(got, c->state_digest, FERRY_HASH_LEN) != 0)
			return ferr_set(e, FERR_VERIFY, "fuzz sink: state digest differs");
	}
	if (f->commit_fails)
		return ferr_set(e, FERR_IO, "fuzz sink: commit fails");
	f->committed = 1;
	return 0;
}

static void
fs_abort(void *ctx)
{
	struct fsink *f = ctx;

	f->ops++;
	FZ_CHECK(f->accepted && !f->committed);
	FZ_CHECK(f->abort_calls++ == 0);
	f->aborted = 1;
}

/* A domain's checks: before any staging, at most once per session; the
 * stream's flag 0x40 makes them fail. */
static int
fs_domain_check(void *ctx, const struct msg_manifest *m, const struct msg_domain *d,
    struct msg_checks *out, struct msg_text *refusal)
{
	struct fsink *f = ctx;

	(void)m;
	f->ops++;
	FZ_CHECK(!f->accepted && f->domain_calls++ == 0);
	FZ_CHECK(d->xml_len >= 1 && d->xml_len <= FERRY_DOMAIN_XML_MAX && d->nwaive <= FERRY_WAIVE_MAX);
	out->n = 1;
	out->row[0].status = f->domain_fails ? CS_FAIL : CS_PASS;
	out->row[0].code = (uint32_t)-FERR_VIRT_CPUS;
	snprintf(out->row[0].name, sizeof(out->row[0].name), "host-cpus");
	if (!f->domain_fails)
		return 0;
	snprintf(refusal->text, sizeof(refusal->text), "check host-cpus: fuzz");
	return FERR_VIRT_CPUS;
}

static const struct rsess_sink_ops fsink_ops = {
	.accept = fs_accept,
	.write = fs_write,
	.read = fs_read,
	.state = fs_state,
	.commit = fs_commit,
	.abort = fs_abort,
	.domain_check = fs_domain_check,
};

static void
fsink_release(struct fsink *f)
{
	uint32_t i;

	for (i = 0; i < f->ndev; i++)
		free(f->dev[i]);
	free(f->state);
}

/* Session ids: a fixed pattern, so runs are reproducible. */
static void
fz_random(void *buf, size_t n)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(0x3c + 7 * i);
}

/* ---- the sender's view of the output ---- */

struct peer {
	uint32_t max_frame;     /* what the session announced it accepts */
	int welcomed, answered, ended, resumes_asked, checked;
	uint64_t last_ack;
	uint64_t committed_seq;
};

static void
drain(struct rsess *s, struct peer *pr, const struct fsink *f, int expect_resumed)
{
	const uint8_t *p;
	size_t len;
	int resumed = 0;

	p = rsess_output(s, &len);
	while (len > 0) {
		struct frame_hdr h;
		struct ferr e = { 0 };
		uint8_t *payload;

		FZ_CHECK(frame_decode_hdr(p, len, FERRY_MAX_FRAME_MIN, FDIR_R2S, &h, &e) == 0);
		FZ_CHECK(h.len <= len - FERRY_FRAME_HDR_LEN);
		payload = fz_dup(p + FERRY_FRAME_HDR_LEN, h.len);
		FZ_CHECK(fz_check_payload(h.type, payload, h.len, &e) == 0);
		/* Order: RESUMED only when asked, as the first frame of the
		 * new connection; after an end only RESUMED. */
		if (h.type == FT_RESUMED) {
			struct msg_resumed r;
			enum rsess_state st = rsess_state(s);

			FZ_CHECK(expect_resumed && !resumed);
			resumed = 1;
			FZ_CHECK(msg_resumed_decode(payload, h.len, &r, &e) == 0);
			FZ_CHECK(r.status == (st == RS_COMMITTED ? RSM_COMMITTED
			    : st == RS_FAILED ? RSM_FAILED : RSM_RECEIVING));
			FZ_CHECK(st != RS_RECEIVING || r.status == RSM_RECEIVING);
			FZ_CHECK(r.next_seq == rsess_last_seq(s) + 1);
			FZ_CHECK(r.next_seq == pr->last_ack + 1 || st == RS_FAILED);
			FZ_CHECK(r.state_offset == f->state_hwm || !f->accepted);
		} else {
			FZ_CHECK(!pr->ended);
			FZ_CHECK(!expect_resumed || resumed);
		}
		switch (h.type) {
		case FT_WELCOME: {
			struct msg_welcome w;
			uint8_t sid[16];

			FZ_CHECK(!pr->welcomed);
			pr->welcomed = 1;
			FZ_CHECK(msg_welcome_decode(payload, h.len, &w, &e) == 0);
			/* Only what this version knows (and the harness offers). */
			FZ_CHECK(w.max_frame == pr->max_frame && (w.caps & ~FERRY_CAPS_KNOWN) == 0);
			fz_random(sid, sizeof(sid));
			FZ_CHECK(memcmp(sid, w.session_id, 16) == 0);
			FZ_CHECK(memcmp(sid, rsess_session_id(s), 16) == 0);
			break;
		}
		case FT_ACCEPT:
			FZ_CHECK(pr->welcomed && !pr->answered && f->accepted);
			pr->answered = 1;
			break;
		case FT_REFUSE:
			FZ_CHECK(pr->welcomed && !pr->answered && !f->accepted);
			pr->answered = 1;
			pr->ended = 1;
			break;
		case FT_ACK: {
			struct msg_seq a;

			FZ_CHECK(pr->answered && f->accepted);
			FZ_CHECK(msg_seq_decode(h.type, payload, h.len, &a, &e) == 0);
			FZ_CHECK(a.seq == pr->last_ack + 1);
			pr->last_ack = a.seq;
			break;
		}
		case FT_COMMITTED: {
			struct msg_seq a;

			FZ_CHECK(f->committed && rsess_state(s) == RS_COMMITTED);
			FZ_CHECK(msg_seq_decode(h.type, payload, h.len, &a, &e) == 0);
			FZ_CHECK(a.seq == pr->last_ack);
			pr->committed_seq = a.seq;
			pr->ended = 1;
			break;
		}
		case FT_ERROR:
			FZ_CHECK(rsess_state(s) == RS_FAILED);
			pr->ended = 1;
			break;
		case FT_CHECKS: {
			struct msg_checks *c = malloc(sizeof(*c));

			/* Once, after the domain's checks ran, before the answer. */
			FZ_CHECK(c != NULL);
			FZ_CHECK(pr->welcomed && !pr->answered && f->domain_calls == 1 && !pr->checked);
			pr->checked = 1;
			FZ_CHECK(msg_checks_decode(payload, h.len, c, &e) == 0 && c->n == 1);
			free(c);
			break;
		}
		case FT_PONG:
		case FT_RESUMED:
			break;
		default:
			FZ_CHECK(!"unexpected frame type from the receiver");
		}
		free(payload);
		rsess_output_consume(s, FERRY_FRAME_HDR_LEN + h.len);
		p = rsess_output(s, &len);
	}
	FZ_CHECK(!expect_resumed || resumed);
}

/* After a feed: the session and sink agree about how things stand. */
static void
check_state(struct rsess *s, const struct fsink *f)
{
	enum rsess_state st = rsess_state(s);

	FZ_CHECK(st >= RS_WAIT_HELLO && st <= RS_FAILED);
	FZ_CHECK((st == RS_COMMITTED) == (f->committed != 0));
	FZ_CHECK(st != RS_RECEIVING || (f->accepted && !f->aborted));
	if (f->aborted)
		FZ_CHECK(st == RS_FAILED);
	if (st == RS_FAILED)
		FZ_CHECK(rsess_error(s)->code < 0);
	FZ_CHECK((rsess_manifest(s) != NULL) == (f->accepted != 0));
	FZ_CHECK(rsess_last_seq(s) <= rsess_stats(s)->frames);
}

static void
resume_now(struct rsess *s, struct peer *pr, const struct fsink *f)
{
	struct ferr e = { 0 };
	size_t len;
	enum rsess_state st = rsess_state(s);
	int rc = rsess_resume(s, &e);

	if (st == RS_RECEIVING || st == RS_COMMITTED || st == RS_FAILED) {
		FZ_CHECK(rc == 0);
		drain(s, pr, f, 1);
	} else {
		FZ_CHECK(rc == FERR_PROTO_RESUME && e.code == rc);
		(void)rsess_output(s, &len);
		FZ_CHECK(len == 0);
	}
	FZ_CHECK(rsess_state(s) == st);
}

static uint32_t
xorshift32(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fsink f;
	struct peer pr;
	struct rsess_config cfg;
	struct rsess *s;
	const uint8_t *stream;
	size_t slen, pos = 0, avail = 0;
	uint8_t flags, chunking;
	uint32_t prng;
	int feeds = 0, rc = 0, detached = 0;

	if (size < 4)
		return 0;
	flags = data[0];
	chunking = data[2];
	prng = ((uint32_t)data[2] << 8 | data[3]) * 2654435761u + 1;
	stream = data + 4;
	slen = size - 4;

	memset(&f, 0, sizeof(f));
	f.refuse = (flags >> 5) & 1;
	f.commit_fails = (flags >> 4) & 1;
	f.fail_at = data[1];
	f.domain_fails = (flags >> 6) & 1;
	memset(&pr, 0, sizeof(pr));
	memset(&cfg, 0, sizeof(cfg));
	cfg.max_frame = (flags & 8) ? FERRY_MAX_FRAME_LIMIT : FERRY_MAX_FRAME_DEFAULT;
	cfg.random = fz_random;
	cfg.caps = FERRY_CAP_DOMAIN;
	pr.max_frame = cfg.max_frame;
	s = rsess_new(&cfg, &fsink_ops, &f);
	FZ_CHECK(s != NULL);
	FZ_CHECK(rsess_state(s) == RS_WAIT_HELLO);

	while (avail < slen) {
		size_t step, used = (size_t)-1, n;
		struct ferr e = { 0 };
		uint8_t *buf;

		if (chunking == 0 || ++feeds >= FZ_MAX_FEEDS)
			step = slen - avail;
		else
			step = 1 + xorshift32(&prng) % (1u << (chunking % 16));
		avail = step > slen - avail ? slen : avail + step;
		n = avail - pos;
		buf = fz_dup(stream + pos, n);
		rc = rsess_feed(s, buf, n, &used, &e);
		free(buf);
		FZ_CHECK(used <= n);
		FZ_CHECK(rc != FERR_NEED_MORE);
		drain(s, &pr, &f, 0);
		check_state(s, &f);
		pos += used;
		if (rc != 0) {
			FZ_CHECK(rc < 0 && e.code == rc);
			FZ_CHECK(rsess_state(s) == RS_FAILED || rsess_state(s) == RS_COMMITTED);
			break;
		}
		if ((flags & 2) && !detached && rsess_state(s) == RS_RECEIVING) {
			/* The connection breaks and the sender comes back. */
			detached = 1;
			rsess_detach(s);
			resume_now(s, &pr, &f);
		}
	}

	if (rc == 0) {
		/* Whatever is left over is the start of one frame, never a
		 * whole frame nor a header the session should have refused. */
		size_t left = slen - pos;

		if (left >= FERRY_FRAME_HDR_LEN) {
			struct frame_hdr h;
			struct ferr e = { 0 };

			FZ_CHECK(frame_decode_hdr(stream + pos, left, cfg.max_frame, FDIR_S2R, &h, &e) == 0);
			FZ_CHECK(h.len > left - FERRY_FRAME_HDR_LEN);
		}
	} else {
		/* The session is over: more bytes are refused, no sink op runs. */
		unsigned ops = f.ops;
		enum rsess_state st = rsess_state(s);
		struct ferr e = { 0 };
		size_t used = 0;
		static const uint8_t ping[16] = { FT_PING, 0, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };

		FZ_CHECK(rsess_feed(s, ping, sizeof(ping), &used, &e) != 0);
		FZ_CHECK(f.ops == ops && rsess_state(s) == st);
		drain(s, &pr, &f, 0);
	}

	if (flags & 1)
		resume_now(s, &pr, &f);
	if (flags & 4) {
		enum rsess_state st = rsess_state(s);

		rsess_fail(s, FERR_ABORTED, "operator abort (fuzz)");
		FZ_CHECK(rsess_state(s) == (st == RS_COMMITTED ? RS_COMMITTED : RS_FAILED));
		check_state(s, &f);
	}
	check_state(s, &f);
	rsess_free(s);
	FZ_CHECK(f.abort_calls == (f.accepted && !f.committed ? 1u : 0u));
	fsink_release(&f);
	return 0;
}
