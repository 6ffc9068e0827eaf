#include "rsess.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bbuf.h"
#include "codec_lz4.h"
#include "frame.h"
#include "pagehash.h"
#include "qrebuild.h"

struct rsess {
	struct rsess_config cfg;
	const struct rsess_sink_ops *ops;
	void *ctx;
	enum rsess_state state;
	uint32_t max_frame;             /* the sender's announced maximum */
	uint64_t seed;
	uint8_t session_id[16];
	struct msg_manifest *man;
	uint8_t **written;              /* per device: bit per unit ever written */
	uint8_t (**hash)[FERRY_HASH_LEN]; /* per device: hash of each unit as applied */
	uint8_t (*zero_hash)[FERRY_HASH_LEN]; /* per device: hash of a zero unit */
	uint8_t *scratch;               /* one unit, for lz4 and references */
	uint8_t *scratch2;
	uint64_t last_seq;              /* last PAGES applied */
	uint64_t state_got;
	struct bbuf out;
	struct rsess_stats stats;
	struct ferr err;
	int aborted;
	uint32_t caps;                  /* negotiated in HELLO/WELCOME */
	uint8_t *domain;                /* DOMAIN payload, kept for pre-flight and commit */
	size_t domain_len;
	struct qrebuild *q;             /* a QEMU stream session, else NULL */
	uint32_t reuse_dev;             /* RS_REUSING: device being copied, */
	uint64_t reuse_next;            /* and its next unit */
	struct bbuf ret;                /* QEMU return path so far (section 4.18) */
};

struct rsess *
rsess_new(const struct rsess_config *cfg, const struct rsess_sink_ops *ops, void *ctx)
{
	struct rsess *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->cfg = *cfg;
	s->ops = ops;
	s->ctx = ctx;
	s->state = RS_WAIT_HELLO;
	return s;
}

static void
staging_abort_once(struct rsess *s)
{
	if (s->man != NULL && !s->aborted && s->state != RS_COMMITTED) {
		s->aborted = 1;
		s->ops->abort(s->ctx);
	}
}

void
rsess_free(struct rsess *s)
{
	uint32_t i;

	if (s == NULL)
		return;
	staging_abort_once(s);
	if (s->written != NULL && s->man != NULL)
		for (i = 0; i < s->man->ndev; i++)
			free(s->written[i]);
	if (s->hash != NULL && s->man != NULL)
		for (i = 0; i < s->man->ndev; i++)
			free(s->hash[i]);
	free(s->written);
	free(s->hash);
	free(s->zero_hash);
	free(s->man);
	free(s->scratch);
	free(s->scratch2);
	free(s->domain);
	qrebuild_free(s->q);
	bbuf_fini(&s->ret);
	bbuf_fini(&s->out);
	free(s);
}

/* Queue an ERROR frame carrying e and fail the session. */
static int
fail_with(struct rsess *s, const struct ferr *e)
{
	struct msg_text t;
	struct wr w;

	if (s->state != RS_FAILED && s->state != RS_COMMITTED) {
		memset(&t, 0, sizeof(t));
		t.code = (uint32_t)-e->code;
		strncpy(t.text, e->msg, FERRY_TEXT_MAX);
		if (bbuf_reserve(&s->out, 16 + FERRY_TEXT_MAX) == 0) {
			bbuf_tail(&s->out, &w);
			if (msg_error_encode(&w, &t) == 0)
				bbuf_commit(&s->out, &w);
		}
		s->state = RS_FAILED;
		staging_abort_once(s);
	}
	if (s->err.code == 0)
		s->err = *e;
	return e->code;
}

void
rsess_fail(struct rsess *s, int code, const char *why)
{
	if (s->state == RS_FAILED || s->state == RS_COMMITTED)
		return;
	ferr_set(&s->err, code, "%s", why);
	s->state = RS_FAILED;
	staging_abort_once(s);
}

static int
queue_frame(struct rsess *s, int (*enc)(struct wr *, const void *), const void *m, size_t max,
    struct ferr *e)
{
	struct wr w;

	if (bbuf_reserve(&s->out, max) != 0)
		return ferr_set(e, FERR_NOMEM, "output buffer");
	bbuf_tail(&s->out, &w);
	if (enc(&w, m) != 0)
		return ferr_set(e, FERR_INTERNAL, "encoding a reply frame");
	bbuf_commit(&s->out, &w);
	return 0;
}

static int enc_welcome(struct wr *w, const void *m) { return msg_welcome_encode(w, m); }
static int enc_accept(struct wr *w, const void *m) { return msg_accept_encode(w, m); }
static int enc_refuse(struct wr *w, const void *m) { return msg_refuse_encode(w, m); }
static int enc_ack(struct wr *w, const void *m) { return msg_seq_encode(w, FT_ACK, m); }
static int enc_committed(struct wr *w, const void *m) { return msg_seq_encode(w, FT_COMMITTED, m); }
static int enc_pong(struct wr *w, const void *m) { return msg_seq_encode(w, FT_PONG, m); }
static int enc_resumed(struct wr *w, const void *m) { return msg_resumed_encode(w, m); }
static int enc_checks(struct wr *w, const void *m) { return msg_checks_encode(w, m); }
static int enc_have(struct wr *w, const void *m) { return msg_have_encode(w, m); }

static int
on_hello(struct rsess *s, const uint8_t *p, uint32_t n, struct ferr *e)
{
	struct msg_hello h;
	struct msg_welcome w;
	int rc;

	if ((rc = msg_hello_decode(p, n, &h, e)) != 0)
		return rc;
	s->seed = h.hash_seed;
	s->max_frame = h.max_frame;     /* what we may send */
	memset(&w, 0, sizeof(w));
	w.version = FERRY_VERSION;
	w.caps = h.caps & FERRY_CAPS_KNOWN & s->cfg.caps;
	if (s->ops->domain_check == NULL)
		w.caps &= ~FERRY_CAP_DOMAIN;
	if (s->ops->qemu_out == NULL)
		w.caps &= ~FERRY_CAP_QEMU;
	if (s->ops->reuse == NULL)
		w.caps &= ~FERRY_CAP_REUSE;
	s->caps = w.caps;
	w.max_frame = s->cfg.max_frame;
	s->cfg.random(s->session_id, sizeof(s->session_id));
	memcpy(w.session_id, s->session_id, sizeof(w.session_id));
	if ((rc = queue_frame(s, enc_welcome, &w, 64, e)) != 0)
		return rc;
	s->state = RS_WAIT_MANIFEST;
	return 0;
}

static int
on_domain(struct rsess *s, const uint8_t *p, uint32_t n, struct ferr *e)
{
	struct msg_domain d;
	int rc;

	if (!(s->caps & FERRY_CAP_DOMAIN))
		return ferr_set(e, FERR_PROTO_STATE, "DOMAIN: capability DOMAIN was not negotiated");
	if (s->domain != NULL)
		return ferr_set(e, FERR_PROTO_STATE, "DOMAIN: received twice");
	if ((rc = msg_domain_decode(p, n, &d, e)) != 0)
		return rc;
	if ((s->domain = malloc(n)) == NULL)
		return ferr_set(e, FERR_NOMEM, "DOMAIN: %u bytes", n);
	memcpy(s->domain, p, n);
	s->domain_len = n;
	return 0;
}

/* Section 4.15: the domain's checks answer with CHECKS, then either the
 * first failure's refusal, or (check only) a refusal that ends the
 * session with nothing written, or 0 to go on to the usual pre-flight. */
static int
domain_preflight(struct rsess *s, const struct msg_manifest *m, struct msg_text *refusal,
    struct ferr *e)
{
	struct msg_domain d;
	struct msg_checks *out;
	int rc;

	if (msg_domain_decode(s->domain, s->domain_len, &d, e) != 0)
		return ferr_set(e, FERR_INTERNAL, "DOMAIN: stored payload no longer decodes");
	if ((out = calloc(1, sizeof(*out))) == NULL)
		return ferr_set(e, FERR_NOMEM, "CHECKS");
	rc = s->ops->domain_check(s->ctx, m, &d, out, refusal);
	if (out->n > 0 && queue_frame(s, enc_checks, out, 16 + sizeof(*out), e) != 0) {
		free(out);
		return e->code;
	}
	free(out);
	if (rc == 0 && (d.flags & FERRY_DOMAIN_CHECK_ONLY)) {
		snprintf(refusal->text, sizeof(refusal->text),
		    "check only: every check ran, nothing was migrated");
		rc = FERR_REFUSED;
	}
	return rc;
}

/* Section 4.19: with CAP_REUSE, the staging file of a device may start as
 * a copy of the existing destination file.  Its units then count as
 * written (a ZERO entry must really write zeros over them) and hold the
 * hash of what was copied (the digest at COMMIT is built from these), and
 * the sender learns those hashes from HAVE frames, each at most the
 * maximum it announced, all queued before ACCEPT.  The copying is done a
 * piece at a time (rsess_reuse_step), so that the daemon keeps serving
 * heartbeats and other sessions meanwhile. */
int
rsess_reuse_step(struct rsess *s, uint64_t budget, struct ferr *e)
{
	uint32_t per = msg_have_max_count(s->max_frame);
	struct msg_accept acc = { 1 };
	int rc, did = 0;

	if (s->state != RS_REUSING)
		return ferr_set(e, FERR_INTERNAL, "reuse step in state %s", rsess_state_name(s->state));
	while (s->reuse_dev < s->man->ndev) {
		uint32_t di = s->reuse_dev;
		const struct dev_desc *d = &s->man->dev[di];
		uint64_t nu = dev_units(d), first = s->reuse_next, k;
		uint64_t fit = budget / d->unit;
		struct msg_have h;

		/* At least one unit per step, so that every step moves on. */
		if (fit == 0) {
			if (did)
				return 0;
			fit = 1;
		}
		h.device = d->id;
		h.first = (uint32_t)first;
		h.count = (uint32_t)(nu - first < per ? nu - first : per);
		if (h.count > fit)
			h.count = (uint32_t)fit;
		if ((rc = s->ops->reuse(s->ctx, di, first, h.count, s->hash[di] + first, e)) < 0)
			return fail_with(s, e);
		if (rc == 0) {
			/* Nothing to reuse: the staging file stays zeros. */
			if (first != 0) {
				ferr_set(e, FERR_INTERNAL, "reuse: device %u stopped at unit %llu", d->id,
				    (unsigned long long)first);
				return fail_with(s, e);
			}
			s->reuse_dev++;
			s->reuse_next = 0;
			continue;
		}
		for (k = first; k < first + h.count; k++)
			s->written[di][k / 8] |= (uint8_t)(1u << (k % 8));
		h.hashes = s->hash[di][first];
		if (queue_frame(s, enc_have, &h, 64 + (size_t)h.count * FERRY_HASH_LEN, e) != 0)
			return fail_with(s, e);
		s->stats.units_offered += h.count;
		s->reuse_next = first + h.count;
		did = 1;
		budget -= budget < (uint64_t)h.count * d->unit ? budget : (uint64_t)h.count * d->unit;
		if (s->reuse_next == nu) {
			s->reuse_dev++;
			s->reuse_next = 0;
		}
	}
	if (queue_frame(s, enc_accept, &acc, 32, e) != 0)
		return fail_with(s, e);
	s->state = RS_RECEIVING;
	return 0;
}

static int
on_manifest(struct rsess *s, const uint8_t *p, uint32_t n, struct ferr *e)
{
	struct msg_manifest *m;
	struct msg_text refusal;
	struct msg_accept acc = { 1 };
	uint32_t i, maxunit = 0;
	int rc;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return ferr_set(e, FERR_NOMEM, "MANIFEST");
	if ((rc = msg_manifest_decode(p, n, m, e)) != 0) {
		free(m);
		return rc;
	}
	if (m->dev[0].kind == DK_QEMU && !(s->caps & FERRY_CAP_QEMU)) {
		free(m);
		return ferr_set(e, FERR_PROTO_STATE, "MANIFEST: a QEMU device without capability QEMU");
	}
	memset(&refusal, 0, sizeof(refusal));
	rc = s->domain != NULL ? domain_preflight(s, m, &refusal, e) : 0;
	if (rc == 0)
		rc = s->ops->accept(s->ctx, m, s->seed, s->session_id, &refusal);
	if (rc != 0) {
		free(m);
		refusal.code = (uint32_t)-rc;
		(void)queue_frame(s, enc_refuse, &refusal, 32 + FERRY_TEXT_MAX, e);
		s->state = RS_FAILED;
		ferr_set(&s->err, rc, "%s", refusal.text);
		ferr_set(e, rc, "%s", refusal.text);
		return rc;
	}
	s->man = m;
	if (m->dev[0].kind == DK_QEMU) {
		/* From here on the sink holds the destination QEMU: failures abort. */
		if ((s->q = qrebuild_new(s->seed, s->ops, s->ctx)) == NULL)
			return ferr_set(e, FERR_NOMEM, "MANIFEST: QEMU stream");
		if ((rc = queue_frame(s, enc_accept, &acc, 32, e)) != 0)
			return rc;
		s->state = RS_RECEIVING;
		return 0;
	}
	/* From here on the sink holds staging files: failures must abort. */
	for (i = 0; i < m->ndev; i++)
		if (m->dev[i].unit > maxunit)
			maxunit = m->dev[i].unit;
	s->written = calloc(m->ndev, sizeof(*s->written));
	s->hash = calloc(m->ndev, sizeof(*s->hash));
	s->zero_hash = calloc(m->ndev, sizeof(*s->zero_hash));
	s->scratch = calloc(1, maxunit);
	s->scratch2 = malloc(maxunit);
	if (s->written == NULL || s->hash == NULL || s->zero_hash == NULL || s->scratch == NULL ||
	    s->scratch2 == NULL)
		return ferr_set(e, FERR_NOMEM, "MANIFEST: unit buffers");
	for (i = 0; i < m->ndev; i++) {
		uint64_t k, nu = dev_units(&m->dev[i]);

		s->written[i] = calloc(nu / 8 + 1, 1);
		s->hash[i] = malloc(nu * FERRY_HASH_LEN);
		if (s->written[i] == NULL || s->hash[i] == NULL)
			return ferr_set(e, FERR_NOMEM, "MANIFEST: device %u tables", m->dev[i].id);
		/* Staging starts as zeros: every unit holds the zero hash. */
		page_hash(s->seed, s->scratch, m->dev[i].unit, s->zero_hash[i]);
		for (k = 0; k < nu; k++)
			memcpy(s->hash[i][k], s->zero_hash[i], FERRY_HASH_LEN);
		if (m->dev[i].size % m->dev[i].unit != 0)
			page_hash(s->seed, s->scratch, dev_unit_len(&m->dev[i], nu - 1), s->hash[i][nu - 1]);
	}
	if ((s->caps & FERRY_CAP_REUSE) && s->ops->reuse != NULL) {
		/* HAVE frames, then ACCEPT: rsess_reuse_step (section 4.19). */
		s->state = RS_REUSING;
		return 0;
	}
	if ((rc = queue_frame(s, enc_accept, &acc, 32, e)) != 0)
		return rc;
	s->state = RS_RECEIVING;
	return 0;
}

static int
dev_lookup(const struct msg_manifest *m, uint32_t id, uint32_t *idx)
{
	uint32_t i;

	for (i = 0; i < m->ndev; i++) {
		if (m->dev[i].id == id) {
			*idx = i;
			return 0;
		}
	}
	return -1;
}

static int
apply_entry(struct rsess *s, uint32_t di, const struct page_entry *pe, struct ferr *e)
{
	const struct dev_desc *d = &s->man->dev[di];
	uint64_t off = (uint64_t)pe->index * d->unit;
	uint8_t *bits = s->written[di];
	int was = (bits[pe->index / 8] >> (pe->index % 8)) & 1;
	uint8_t h[FERRY_HASH_LEN];
	uint32_t si;
	int rc;

	switch (pe->kind) {
	case PK_ZERO:
		s->stats.pages_zero++;
		memset(s->scratch, 0, pe->len);
		if (pe->len == d->unit)
			memcpy(s->hash[di][pe->index], s->zero_hash[di], FERRY_HASH_LEN);
		else
			page_hash(s->seed, s->scratch, pe->len, s->hash[di][pe->index]);
		/* Staging starts as zeros (section 5.1): only overwrite. */
		if (!was) {
			s->stats.logical_bytes += pe->len;
			return 0;
		}
		rc = s->ops->write(s->ctx, di, off, s->scratch, pe->len, e);
		break;
	case PK_REF: {
		const struct dev_desc *sd;

		if (dev_lookup(s->man, pe->src_device, &si) != 0)
			return ferr_set(e, FERR_PROTO_RANGE, "PAGES: REF entry %u src_device %u unknown",
			    pe->index, pe->src_device);
		sd = &s->man->dev[si];
		if ((uint64_t)pe->src_index >= dev_units(sd))
			return ferr_set(e, FERR_PROTO_RANGE, "PAGES: REF entry %u src_index %u >= %llu",
			    pe->index, pe->src_index, (unsigned long long)dev_units(sd));
		if (dev_unit_len(sd, pe->src_index) != pe->len)
			return ferr_set(e, FERR_PROTO_RANGE,
			    "PAGES: REF entry %u source unit is %u bytes, target %u", pe->index,
			    dev_unit_len(sd, pe->src_index), pe->len);
		if ((rc = s->ops->read(s->ctx, si, (uint64_t)pe->src_index * sd->unit, s->scratch,
		    pe->len, e)) != 0)
			return rc;
		page_hash(s->seed, s->scratch, pe->len, h);
		if (memcmp(h, pe->hash, FERRY_HASH_LEN) != 0)
			return ferr_set(e, FERR_PROTO_HASH,
			    "PAGES: REF entry %u: unit %u of device %u does not hold that hash", pe->index,
			    pe->src_index, pe->src_device);
		s->stats.pages_dedup++;
		memcpy(s->hash[di][pe->index], h, FERRY_HASH_LEN);
		rc = s->ops->write(s->ctx, di, off, s->scratch, pe->len, e);
		break;
	}
	case PK_LZ4: {
		char what[64];

		snprintf(what, sizeof(what), "PAGES: LZ4 entry %u", pe->index);
		if ((rc = codec_lz4_decode(pe->data, pe->data_len, s->scratch2, pe->len, what, e)) != 0)
			return rc;
		s->stats.pages_lz4++;
		page_hash(s->seed, s->scratch2, pe->len, s->hash[di][pe->index]);
		rc = s->ops->write(s->ctx, di, off, s->scratch2, pe->len, e);
		break;
	}
	case PK_RAW:
		s->stats.pages_raw++;
		page_hash(s->seed, pe->data, pe->len, s->hash[di][pe->index]);
		rc = s->ops->write(s->ctx, di, off, pe->data, pe->len, e);
		break;
	default:
		return ferr_set(e, FERR_INTERNAL, "PAGES: kind %u", pe->kind);
	}
	if (rc != 0)
		return rc;
	bits[pe->index / 8] |= (uint8_t)(1u << (pe->index % 8));
	s->stats.logical_bytes += pe->len;
	return 0;
}

static int
on_pages(struct rsess *s, const uint8_t *p, uint32_t n, struct ferr *e)
{
	struct msg_pages ph;
	struct page_entry pe;
	struct msg_seq ack;
	struct rd r;
	uint32_t di, i;
	int rc;

	rd_init(&r, p, n);
	if ((rc = msg_pages_decode(&r, &ph, e)) != 0)
		return rc;
	if (ph.seq <= s->last_seq)
		return 0;       /* a duplicate: already applied, harmless */
	if (ph.seq != s->last_seq + 1)
		return ferr_set(e, FERR_PROTO_RANGE, "PAGES: seq %llu, expected %llu (gap)",
		    (unsigned long long)ph.seq, (unsigned long long)(s->last_seq + 1));
	if (dev_lookup(s->man, ph.device, &di) != 0)
		return ferr_set(e, FERR_PROTO_RANGE, "PAGES: device %u not in manifest", ph.device);
	for (i = 0; i < ph.count; i++) {
		memset(&pe, 0, sizeof(pe));
		if ((rc = msg_page_next(&r, &s->man->dev[di], &pe, e)) != 0)
			return rc;
		if ((rc = apply_entry(s, di, &pe, e)) != 0)
			return rc;
	}
	if (rd_end(&r) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "PAGES: %zu bytes after %u entries", rd_left(&r),
		    ph.count);
	s->last_seq = ph.seq;
	s->stats.round = ph.round;
	ack.seq = ph.seq;
	return queue_frame(s, enc_ack, &ack, 32, e);
}

static int
on_qstream(struct rsess *s, const uint8_t *p, uint32_t n, struct ferr *e)
{
	const struct qrebuild_stats *qs;
	struct msg_qstream h;
	struct msg_seq ack;
	struct rd r;
	int rc;

	rd_init(&r, p, n);
	if ((rc = msg_qstream_decode(&r, &h, e)) != 0)
		return rc;
	if (h.seq <= s->last_seq)
		return 0;       /* a duplicate: already applied, harmless */
	if (h.seq != s->last_seq + 1)
		return ferr_set(e, FERR_PROTO_RANGE, "QSTREAM: seq %llu, expected %llu (gap)",
		    (unsigned long long)h.seq, (unsigned long long)(s->last_seq + 1));
	if ((rc = qrebuild_frame(s->q, &h, &r, e)) != 0)
		return rc;
	s->last_seq = h.seq;
	qs = qrebuild_stats(s->q);
	s->stats.logical_bytes = qs->stream_bytes;
	s->stats.pages_zero = qs->pages_zero;
	s->stats.pages_dedup = qs->pages_dedup;
	s->stats.pages_lz4 = qs->pages_lz4;
	s->stats.pages_raw = qs->pages_raw;
	ack.seq = h.seq;
	return queue_frame(s, enc_ack, &ack, 32, e);
}

static int enc_qreturn(struct wr *w, const void *m) { return msg_qreturn_encode(w, m); }

/* Queue QRETURN frames for the return path from byte `from` on. */
static int
queue_qreturn(struct rsess *s, size_t from, struct ferr *e)
{
	size_t chunk = s->max_frame > 64 ? s->max_frame - 64 : 64;
	struct msg_qreturn m;
	int rc;

	while (from < s->ret.len) {
		m.offset = from;
		m.data = s->ret.p + from;
		m.len = (uint32_t)(s->ret.len - from < chunk ? s->ret.len - from : chunk);
		if ((rc = queue_frame(s, enc_qreturn, &m, (size_t)m.len + 32, e)) != 0)
			return rc;
		from += m.len;
	}
	return 0;
}

int
rsess_qreturn(struct rsess *s, const uint8_t *p, size_t n, struct ferr *e)
{
	size_t from = s->ret.len;
	struct wr w;
	int rc;

	if (s->q == NULL || s->state != RS_RECEIVING)
		return ferr_set(e, FERR_PROTO_STATE, "QEMU return path outside a receiving QEMU session");
	if (n == 0)
		return 0;
	if (n > FERRY_QRETURN_MAX - s->ret.len) {
		ferr_set(e, FERR_PROTO_LENGTH, "QEMU return path: more than %u bytes", FERRY_QRETURN_MAX);
		return fail_with(s, e);
	}
	if (bbuf_reserve(&s->ret, n) != 0) {
		ferr_set(e, FERR_NOMEM, "QEMU return path");
		return fail_with(s, e);
	}
	bbuf_tail(&s->ret, &w);
	(void)wr_bytes(&w, p, n);
	bbuf_commit(&s->ret, &w);
	if ((rc = queue_qreturn(s, from, e)) != 0)
		return fail_with(s, e);
	return 0;
}

int
rsess_is_qemu(const struct rsess *s)
{
	return s->q != NULL;
}

static int
on_state(struct rsess *s, const uint8_t *p, uint32_t n, struct ferr *e)
{
	struct msg_state st;
	int rc;

	if ((rc = msg_state_decode(p, n, &st, e)) != 0)
		return rc;
	if (st.offset != s->state_got)
		return ferr_set(e, FERR_PROTO_RANGE, "STATE: offset %llu, expected %llu",
		    (unsigned long long)st.offset, (unsigned long long)s->state_got);
	if (st.len > s->man->state_size - s->state_got)
		return ferr_set(e, FERR_PROTO_RANGE, "STATE: %u bytes at %llu past state_size %llu",
		    st.len, (unsigned long long)st.offset, (unsigned long long)s->man->state_size);
	if ((rc = s->ops->state(s->ctx, st.offset, st.data, st.len, e)) != 0)
		return rc;
	s->state_got += st.len;
	s->stats.state_bytes = s->state_got;
	return 0;
}

/* Section 5.2: each device's digest over the hashes of its units as the
 * session applied them. */
static int
verify_digests(struct rsess *s, const struct msg_commit *c, struct ferr *e)
{
	uint8_t got[FERRY_HASH_LEN];
	char a[2 * FERRY_HASH_LEN + 1], b[2 * FERRY_HASH_LEN + 1];
	uint32_t i;
	uint64_t k;

	for (i = 0; i < c->ndev; i++) {
		const struct dev_desc *d = &s->man->dev[i];
		struct digest *dg = digest_new(s->seed);

		if (dg == NULL)
			return ferr_set(e, FERR_NOMEM, "COMMIT: digest");
		for (k = 0; k < dev_units(d); k++)
			digest_add(dg, s->hash[i][k]);
		digest_final(dg, got);
		digest_free(dg);
		if (memcmp(got, c->dev[i].digest, FERRY_HASH_LEN) != 0) {
			hash_hex(got, a);
			hash_hex(c->dev[i].digest, b);
			return ferr_set(e, FERR_VERIFY, "COMMIT: device %u '%s' digest %s, sender's %s",
			    d->id, d->name, a, b);
		}
	}
	return 0;
}

/* Section 4.17: the stream's digest, then the sink confirms that the
 * destination QEMU completed. */
static int
qemu_commit(struct rsess *s, const struct msg_commit *c, struct ferr *e)
{
	uint8_t got[FERRY_HASH_LEN];
	char a[2 * FERRY_HASH_LEN + 1], b[2 * FERRY_HASH_LEN + 1];
	struct msg_seq done;
	uint32_t i;
	int rc;

	if (c->seq != s->last_seq)
		return ferr_set(e, FERR_PROTO_RANGE, "COMMIT: seq %llu, but last QSTREAM applied is %llu",
		    (unsigned long long)c->seq, (unsigned long long)s->last_seq);
	if (c->ndev != 1 || c->dev[0].id != s->man->dev[0].id)
		return ferr_set(e, FERR_PROTO_RANGE, "COMMIT: a QEMU session commits its one device %u",
		    s->man->dev[0].id);
	for (i = 0; i < FERRY_HASH_LEN; i++)
		if (c->state_digest[i] != 0)
			return ferr_set(e, FERR_PROTO_RANGE, "COMMIT: a QEMU session has no state: "
			    "state_digest must be zero");
	qrebuild_digest(s->q, got);
	if (memcmp(got, c->dev[0].digest, FERRY_HASH_LEN) != 0) {
		hash_hex(got, a);
		hash_hex(c->dev[0].digest, b);
		return ferr_set(e, FERR_VERIFY, "COMMIT: QEMU stream of %llu bytes has digest %s, sender's %s",
		    (unsigned long long)qrebuild_stats(s->q)->stream_bytes, a, b);
	}
	if ((rc = s->ops->commit(s->ctx, c, e)) != 0)
		return rc;
	s->state = RS_COMMITTED;
	done.seq = c->seq;
	return queue_frame(s, enc_committed, &done, 32, e);
}

static int
on_commit(struct rsess *s, const uint8_t *p, uint32_t n, struct ferr *e)
{
	struct msg_commit c;
	struct msg_seq done;
	uint32_t i, di;
	int rc;

	if ((rc = msg_commit_decode(p, n, &c, e)) != 0)
		return rc;
	if (s->q != NULL)
		return qemu_commit(s, &c, e);
	if (c.seq != s->last_seq)
		return ferr_set(e, FERR_PROTO_RANGE, "COMMIT: seq %llu, but last PAGES applied is %llu",
		    (unsigned long long)c.seq, (unsigned long long)s->last_seq);
	if (c.ndev != s->man->ndev)
		return ferr_set(e, FERR_PROTO_RANGE, "COMMIT: ndev %u, manifest has %u", c.ndev,
		    s->man->ndev);
	for (i = 0; i < c.ndev; i++) {
		if (dev_lookup(s->man, c.dev[i].id, &di) != 0 || di != i)
			return ferr_set(e, FERR_PROTO_RANGE, "COMMIT: device %u out of manifest order",
			    c.dev[i].id);
	}
	if (s->state_got != s->man->state_size)
		return ferr_set(e, FERR_PROTO_RANGE, "COMMIT: state has %llu of %llu bytes",
		    (unsigned long long)s->state_got, (unsigned long long)s->man->state_size);
	if ((rc = verify_digests(s, &c, e)) != 0)
		return rc;
	if ((rc = s->ops->commit(s->ctx, &c, e)) != 0)
		return rc;
	s->state = RS_COMMITTED;
	done.seq = c.seq;
	return queue_frame(s, enc_committed, &done, 32, e);
}

static int
on_peer_error(struct rsess *s, const uint8_t *p, uint32_t n, struct ferr *e)
{
	struct msg_text t;
	int rc;

	if ((rc = msg_error_decode(p, n, &t, e)) != 0)
		return rc;
	/* The peer ended the session: nothing to answer. */
	/* Its abort or timeout is ours too; any other reason is a failure of
	 * the link between us. */
	if (t.code == (uint32_t)-FERR_ABORTED || t.code == (uint32_t)-FERR_TIMEOUT)
		rc = -(int)t.code;
	else
		rc = FERR_NET;
	ferr_set(&s->err, rc, "sender: %s", t.text);
	ferr_set(e, rc, "sender: %s", t.text);
	s->state = RS_FAILED;
	staging_abort_once(s);
	return rc;
}

static int
on_ping(struct rsess *s, const struct frame_hdr *h, const uint8_t *p, struct ferr *e)
{
	struct msg_seq ping;
	int rc;

	if ((rc = msg_seq_decode(h->type, p, h->len, &ping, e)) != 0)
		return rc;
	if (h->type == FT_PONG)
		return 0;
	return queue_frame(s, enc_pong, &ping, 32, e);
}

static int
dispatch(struct rsess *s, const struct frame_hdr *h, const uint8_t *p, struct ferr *e)
{
	if (h->type == FT_ERROR)
		return on_peer_error(s, p, h->len, e);
	if (h->type == FT_PING || h->type == FT_PONG)
		return on_ping(s, h, p, e);
	switch (s->state) {
	case RS_WAIT_HELLO:
		if (h->type == FT_HELLO)
			return on_hello(s, p, h->len, e);
		break;
	case RS_WAIT_MANIFEST:
		if (h->type == FT_MANIFEST)
			return on_manifest(s, p, h->len, e);
		if (h->type == FT_DOMAIN)
			return on_domain(s, p, h->len, e);
		break;
	case RS_RECEIVING:
		if (h->type == FT_QSTREAM && s->q != NULL)
			return on_qstream(s, p, h->len, e);
		if (h->type == FT_COMMIT)
			return on_commit(s, p, h->len, e);
		if (s->q != NULL)
			break;      /* a QEMU session has no PAGES or STATE */
		if (h->type == FT_PAGES)
			return on_pages(s, p, h->len, e);
		if (h->type == FT_STATE)
			return on_state(s, p, h->len, e);
		break;
	default:
		break;
	}
	return ferr_set(e, FERR_PROTO_STATE, "%s: not allowed in state %s", frame_name(h->type),
	    rsess_state_name(s->state));
}

int
rsess_feed(struct rsess *s, const uint8_t *buf, size_t len, size_t *consumed, struct ferr *e)
{
	struct frame_hdr h;
	size_t off = 0;
	int rc;

	*consumed = 0;
	while (off < len) {
		/* Section 3.3: the sender may send up to what we announced. */
		uint32_t max = s->cfg.max_frame;

		if (s->state == RS_FAILED || s->state == RS_COMMITTED) {
			/* Nothing more is accepted after the end of a session. */
			struct ferr tmp = { 0 };

			ferr_set(&tmp, FERR_PROTO_STATE, "%s: frame after the session ended",
			    frame_name(buf[off]));
			if (e != NULL)
				*e = tmp;
			if (s->err.code == 0)
				s->err = tmp;
			return tmp.code;
		}
		rc = frame_decode_hdr(buf + off, len - off, max, FDIR_S2R, &h, e);
		if (rc == FERR_NEED_MORE)
			break;
		if (rc != 0)
			return fail_with(s, e);
		if (h.len > len - off - FERRY_FRAME_HDR_LEN)
			break;  /* wait for the whole frame */
		rc = dispatch(s, &h, buf + off + FERRY_FRAME_HDR_LEN, e);
		if (rc != 0) {
			if (s->state == RS_FAILED) {  /* refusal or peer error already handled */
				off += FERRY_FRAME_HDR_LEN + h.len;
				*consumed = off;
				return rc;
			}
			return fail_with(s, e);
		}
		s->stats.frames++;
		off += FERRY_FRAME_HDR_LEN + h.len;
		*consumed = off;
	}
	return 0;
}

const uint8_t *
rsess_output(struct rsess *s, size_t *len)
{
	*len = s->out.len;
	return s->out.p;
}

void
rsess_output_consume(struct rsess *s, size_t n)
{
	bbuf_consume(&s->out, n);
}

void
rsess_detach(struct rsess *s)
{
	s->out.len = 0;
}

int
rsess_resumable(const struct rsess *s)
{
	return s->state == RS_RECEIVING || s->state == RS_COMMITTED;
}

int
rsess_resume(struct rsess *s, struct ferr *e)
{
	struct msg_resumed r;
	int rc;

	if (!rsess_resumable(s) && s->state != RS_FAILED)
		return ferr_set(e, FERR_PROTO_RESUME, "RESUME: session is %s, not resumable",
		    rsess_state_name(s->state));
	s->out.len = 0;
	r.status = s->state == RS_COMMITTED ? RSM_COMMITTED
	    : s->state == RS_FAILED ? RSM_FAILED : RSM_RECEIVING;
	r.next_seq = s->last_seq + 1;
	r.state_offset = s->state_got;
	if ((rc = queue_frame(s, enc_resumed, &r, 48, e)) != 0)
		return rc;
	/* The return path may have been lost with the connection: all again. */
	if (s->q != NULL && s->state == RS_RECEIVING)
		return queue_qreturn(s, 0, e);
	return 0;
}

uint64_t
rsess_last_seq(const struct rsess *s)
{
	return s->last_seq;
}

enum rsess_state
rsess_state(const struct rsess *s)
{
	return s->state;
}

const char *
rsess_state_name(enum rsess_state st)
{
	switch (st) {
	case RS_WAIT_HELLO: return "WAIT_HELLO";
	case RS_WAIT_MANIFEST: return "WAIT_MANIFEST";
	case RS_REUSING: return "REUSING";
	case RS_RECEIVING: return "RECEIVING";
	case RS_COMMITTED: return "COMMITTED";
	case RS_FAILED: return "FAILED";
	default: return "INVALID";
	}
}

const struct rsess_stats *
rsess_stats(const struct rsess *s)
{
	return &s->stats;
}

const struct msg_manifest *
rsess_manifest(const struct rsess *s)
{
	return s->man;
}

const uint8_t *
rsess_session_id(const struct rsess *s)
{
	return s->session_id;
}

const struct ferr *
rsess_error(const struct rsess *s)
{
	return &s->err;
}

const uint8_t *
rsess_domain(const struct rsess *s, size_t *len)
{
	*len = s->domain_len;
	return s->domain;
}
