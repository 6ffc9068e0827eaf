/* Fuzz target: the receiver session state machine (src/receiver/rsess.c),
 * fed a sender's byte stream in chunks, with an in-memory sink; with flag
 * 0x80 also its QEMU stream mode (src/receiver/qrebuild.c, PROTOCOL.md
 * 4.17, 4.18); with the reuse bit its return trips (CAP_REUSE, HAVE,
 * rsess_reuse_step: PROTOCOL.md 4.19).
 *
 * Input layout:
 *   u8 flags     bit 0: rsess_resume at the end of the stream
 *                bit 1: detach and resume once, the first time the session
 *                       is RECEIVING after a feed (a reconnection)
 *                bit 2: rsess_fail (operator abort) at the end
 *                bit 3: announce FERRY_MAX_FRAME_LIMIT (else the default)
 *                bit 4: the sink's commit fails (FERR_IO)
 *                bit 5: the sink refuses the manifest
 *                bit 6: the domain's checks fail
 *                bit 7: the sink takes QEMU streams (qemu_blocks and
 *                       qemu_out set, FERRY_CAP_QEMU offered)
 *   u8 fail_at   without bit 7: bits 0-6 the sink's Nth write/read/state/
 *                reuse call fails (0 = never), bit 7 the reuse bit; with
 *                bit 7: bits 0-4 the Nth write/read/state/reuse/
 *                qemu_blocks/qemu_out call fails (0 = never), bit 5 the
 *                reuse bit, bits 6-7 the return path: after each feed
 *                that leaves the session RECEIVING, rsess_qreturn gets
 *                1..16 bytes (1), 0..4096 bytes (2; 0 only once some were
 *                given: 0 first is UB in rsess_qreturn, reported), or (3)
 *                first FERRY_QRETURN_MAX - 32 + seed % 64 bytes (up to 31
 *                past the limit), then 1..16; the byte at return-path
 *                offset i is a function of i and the seed byte
 *   u8 chunking  0: the whole stream in one rsess_feed; else chunk sizes
 *                from 1 to 2^(chunking % 16) bytes, drawn from a PRNG
 *                seeded with this byte and the next
 *   u8 seed      with the reuse bit: bits 0-3 which devices have an
 *                existing destination file (manifest index i when bit
 *                i % 4 is set), whose bytes are a function of the seed
 *                byte, the index and the offset (old_byte, and
 *                old_unit in make_seeds.py); bits 4-6 the budget of each
 *                rsess_reuse_step: 0 none (one unit a step), 1-6 drawn
 *                from [0, 2^(10 + 2 * b)) by a PRNG seeded with this byte
 *                and chunking, 7 unlimited; bit 7: one step after each
 *                feed (the REUSING state then spans feeds), else steps
 *                until the state changes
 *   bytes        the stream: frames as a sender sends them
 *
 * The sink keeps devices in memory and accepts manifests of at most 1 MiB
 * of devices and 256 KiB of state with the real sink's unit rule (powers
 * of two from 4 KiB to 1 MiB); it refuses the rest, as a receiver short of
 * space would.  In QEMU mode it takes a manifest of one DK_QEMU device, a
 * block list of at most 1 MiB (its RAM mirror, in memory; more is an
 * FERR_IO from qemu_blocks, as a receiver short of space), and keeps of
 * the rebuilt stream only its length and XXH3-128 digest (session seed).
 * CAP_REUSE is always in the session's configuration, but the sink has the
 * reuse op (and so the capability is negotiated) only with the reuse
 * bit.  Its reuse op then behaves as staging.c's: for a device with an
 * existing file, copy units [first, first + count) of it into the staging
 * bytes and give their keyed hashes (a short last unit over its real
 * length), else 0 on the first call.  With the reuse bit, while the
 * session is before RECEIVING the stream is fed one frame at a time, as
 * the daemon (rconn.c) does, with reuse steps between frames; the steps
 * left when the stream ends are run then (unless flag bit 2 aborts the
 * session first).
 *
 * Invariants checked (any violation aborts):
 * - the sink: accept at most once; write, read and state only between
 *   accept and the end, in RECEIVING, whole units inside a declared
 *   device (or inside the state blob); commit at most once, and only when
 *   the bytes the sink holds have the digests the session verified; abort
 *   at most once, only after accept, never after a successful commit, and
 *   exactly once by the time the session is freed unless it committed; an
 *   error from any sink op ends the session (FAILED, rsess_feed or
 *   rsess_reuse_step returns that error);
 * - reuse: the reuse op only in REUSING (so only with CAP_REUSE
 *   negotiated, never in a QEMU session), devices in manifest order, each
 *   asked from unit 0 and then continued where the last call ended, up to
 *   its last unit, never again after answering 0; each step that leaves
 *   the session REUSING offers at least one unit, and a step offers at
 *   most its budget (units x unit bytes) or a single unit; ACCEPT only
 *   once every device was asked and each one reused is covered; the units
 *   of a reused device count as written (a ZERO entry writes zeros over
 *   them: the sink's digest check at commit sees it otherwise), and
 *   rsess_reuse_step outside REUSING is refused with nothing changed;
 * - QEMU mode: a DK_QEMU manifest only when the sink offered the
 *   capability, with one device of unit 4096 and no state; qemu_blocks
 *   once, qemu_out only between accept and the end, and only in a QEMU
 *   session; no STATE op; write and read of whole 4096-byte pages inside
 *   a block, only after qemu_blocks; each page written is followed by its
 *   rebuilt data record (4.17: header, block id unless CONTINUE, the
 *   page); commit only when the digest of everything qemu_out received is
 *   the COMMIT's, with ndev 1 and the COMMIT's seq the last one applied;
 *   rsess_qreturn refused (PROTO_STATE, nothing changed) outside a
 *   RECEIVING QEMU session, failing the session only past
 *   FERRY_QRETURN_MAX;
 * - rsess_feed: consumes at most what it was given; returns 0 or an error
 *   (never NEED_MORE) that it also reports in e; after an error the
 *   session is over (FAILED or COMMITTED), accepts nothing more and calls
 *   no sink op; with 0, what it left unconsumed is part of one frame whose
 *   header it accepted;
 * - output: whole frames, each decodes (header in the receiver-to-sender
 *   direction, within FERRY_MAX_FRAME_MIN, HAVE within the maximum the
 *   sender's HELLO announced, payload by its decoder) and they come in
 *   protocol order: WELCOME first (capabilities: those of the HELLO that
 *   the sink offers), then ACCEPT or REFUSE, ACKs numbered 1, 2, 3...,
 *   COMMITTED for the last ACK, nothing after ERROR, REFUSE or COMMITTED
 *   but RESUMED; RESUMED tells the state as it is; QRETURN only in a QEMU
 *   session, contiguous from offset 0 on each connection (again from 0
 *   after RESUMED), carrying the bytes given to rsess_qreturn, all of
 *   them by the end of each drain while RECEIVING; HAVE only with
 *   CAP_REUSE, between WELCOME (and CHECKS, when there is one) and
 *   ACCEPT, for devices the sink reused, in manifest order, each device's
 *   units in order and each once, with hashes equal to page_hash (session
 *   seed) of what the sink holds and to what its reuse op gave, their
 *   count the session's units_offered. */
#include "fuzz_common.h"

#include "pagehash.h"
#include "rsess.h"

#define FZ_DEV_TOTAL_MAX (1u << 20)
#define FZ_STATE_MAX (256u << 10)
#define FZ_MAX_FEEDS 4096
#define FZ_QMIRROR_MAX (1u << 20)       /* QEMU mode: RAM blocks the sink mirrors */

/* ---- the in-memory sink ---- */

/* Reuse mode: where the reuse op stands with a device. */
enum reuse_dev {
	RD_NONE = 0,            /* not asked yet */
	RD_DECLINED,            /* no existing file: answered 0 */
	RD_COPYING,             /* copied up to rnext */
	RD_DONE,                /* copied to the last unit */
};

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
	int op_failed;          /* a sink op returned an error: the session must end */
	int fail_code;          /* the first such error */

	/* QEMU mode (flag 0x80) */
	int qemu_ops;           /* qemu_blocks and qemu_out are in the ops */
	int qsession;           /* accepted a DK_QEMU manifest */
	uint32_t qdev_id;
	unsigned blocks_calls;
	uint32_t nblocks;       /* the mirror, after qemu_blocks */
	struct qitem_block *blocks;
	uint8_t *mirror[FERRY_QBLOCKS_MAX];
	struct digest *qdg;     /* of everything qemu_out took */
	uint64_t qlen;
	int pend;               /* a page written, its data record not yet out */
	uint32_t pend_blk;
	uint64_t pend_off;
	const struct rsess *sess;

	/* reuse (the reuse bit): existing destination files */
	int reuse;              /* the reuse op is in the ops */
	uint8_t old_salt;       /* the seed byte: which devices, what bytes */
	unsigned reuse_calls;
	uint32_t rcur;          /* device the reuse op works on */
	enum reuse_dev rstate[FERRY_MAX_DEVICES];
	uint64_t rnext[FERRY_MAX_DEVICES];      /* next unit to copy */
	uint8_t (*rhash[FERRY_MAX_DEVICES])[FERRY_HASH_LEN]; /* hashes given */
};

static int
unit_ok(uint32_t u)
{
	return u >= FERRY_UNIT_MIN && u <= FERRY_UNIT_MAX && (u & (u - 1)) == 0;
}

/* Note an error a sink op returns: the session must end with it. */
static int
sink_err(struct fsink *f, int rc)
{
	if (rc != 0 && !f->op_failed) {
		f->op_failed = 1;
		f->fail_code = rc;
	}
	return rc;
}

static int
accept_qemu(struct fsink *f, const struct msg_manifest *m, uint64_t seed)
{
	f->qsession = 1;
	f->qdev_id = m->dev[0].id;
	f->qdg = digest_new(seed);
	FZ_CHECK(f->qdg != NULL);
	f->seed = seed;
	f->accepted = 1;
	return 0;
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
	/* Section 4.17: a QEMU stream (only with the capability, which only
	 * a sink with the QEMU ops offers) is the session's one device, of
	 * 4 KiB units, with no state blob. */
	for (i = 1; i < m->ndev; i++)
		FZ_CHECK(m->dev[i].kind != DK_QEMU);
	if (m->dev[0].kind == DK_QEMU)
		FZ_CHECK(f->qemu_ops && m->ndev == 1 && m->dev[0].unit == FERRY_QPAGE_SIZE &&
		    m->state_size == 0);
	if (f->refuse) {
		refusal->device = m->dev[0].id;
		snprintf(refusal->text, sizeof(refusal->text), "fuzz sink: refused");
		return sink_err(f, FERR_REFUSED);
	}
	if (m->dev[0].kind == DK_QEMU)
		return accept_qemu(f, m, seed);
	for (i = 0; i < m->ndev; i++) {
		if (!unit_ok(m->dev[i].unit)) {
			refusal->device = m->dev[i].id;
			snprintf(refusal->text, sizeof(refusal->text), "unit %u", m->dev[i].unit);
			return sink_err(f, FERR_REFUSE_UNIT);
		}
		total += m->dev[i].size;        /* each <= 2^46: no overflow */
	}
	if (total > FZ_DEV_TOTAL_MAX || m->state_size > FZ_STATE_MAX) {
		snprintf(refusal->text, sizeof(refusal->text), "too large for the fuzz sink");
		return sink_err(f, FERR_REFUSE_SPACE);
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
	FZ_CHECK(rsess_state(f->sess) == RS_RECEIVING);
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
		return sink_err(f, ferr_set(e, FERR_IO, "fuzz sink: %s %u fails", op, f->io_calls));
	return 0;
}

/* QEMU mode: one whole page of a block of the mirror, after qemu_blocks. */
static void
check_mirror_page(const struct fsink *f, uint32_t blk, uint64_t off, uint32_t len)
{
	FZ_CHECK(f->accepted && !f->aborted && !f->committed);
	FZ_CHECK(f->nblocks >= 1 && blk < f->nblocks);
	FZ_CHECK(len == FERRY_QPAGE_SIZE && off % FERRY_QPAGE_SIZE == 0 && off < f->blocks[blk].len);
	FZ_CHECK(!f->pend);
}

static int
fs_write(void *ctx, uint32_t dev, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e)
{
	struct fsink *f = ctx;
	int rc;

	f->ops++;
	if (f->qsession) {
		check_mirror_page(f, dev, off, len);
		if ((rc = inject(f, "mirror write", e)) != 0)
			return rc;
		memcpy(f->mirror[dev] + off, p, len);
		f->pend = 1;
		f->pend_blk = dev;
		f->pend_off = off;
		return 0;
	}
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
	if (f->qsession) {
		check_mirror_page(f, dev, off, len);
		if ((rc = inject(f, "mirror read", e)) != 0)
			return rc;
		memcpy(p, f->mirror[dev] + off, len);
		return 0;
	}
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
	FZ_CHECK(f->accepted && !f->aborted && !f->committed && !f->qsession);
	FZ_CHECK(rsess_state(f->sess) == RS_RECEIVING);
	FZ_CHECK(off <= f->state_size && len <= f->state_size - off);
	FZ_CHECK(len >= 1 && off == f->state_hwm);        /* in order, no gaps */
	if ((rc = inject(f, "state", e)) != 0)
		return rc;
	memcpy(f->state + off, p, len);
	f->state_hwm = off + len;
	return 0;
}

/* Reuse mode: byte j of unit u of the existing destination file of
 * device index dev, for seed byte salt (old_unit in make_seeds.py is the
 * same function).  Units of one device differ; one in five is zeros. */
static uint8_t
old_byte(uint8_t salt, uint32_t dev, uint64_t u, uint32_t j)
{
	uint32_t k = (uint32_t)u * 7u + dev * 13u + salt;

	if (k % 5 == 0)
		return 0;
	return (uint8_t)(j * (2 * (k % 16) + 1) + k);
}

/* Section 4.19, as staging.c's sink_reuse: for a device with an existing
 * file, copy its units [first, first + count) into the staging bytes and
 * give their keyed hashes as copied; 0 on the first call for a device
 * without one. */
static int
fs_reuse(void *ctx, uint32_t dev, uint64_t first, uint32_t count,
    uint8_t (*hash)[FERRY_HASH_LEN], struct ferr *e)
{
	struct fsink *f = ctx;
	uint64_t nu, u;
	uint32_t j, k;
	int rc;

	f->ops++;
	f->reuse_calls++;
	FZ_CHECK(f->reuse && f->accepted && !f->aborted && !f->committed && !f->qsession);
	FZ_CHECK(rsess_state(f->sess) == RS_REUSING);
	/* Devices in manifest order: all before this one are finished. */
	FZ_CHECK(dev < f->ndev && dev >= f->rcur);
	for (; f->rcur < dev; f->rcur++)
		FZ_CHECK(f->rstate[f->rcur] == RD_DECLINED || f->rstate[f->rcur] == RD_DONE);
	nu = f->size[dev] / f->unit[dev] + (f->size[dev] % f->unit[dev] != 0);
	FZ_CHECK(count >= 1 && first < nu && count <= nu - first);
	if (f->rstate[dev] == RD_NONE)
		FZ_CHECK(first == 0);
	else
		FZ_CHECK(f->rstate[dev] == RD_COPYING && first == f->rnext[dev]);
	if ((rc = inject(f, "reuse", e)) != 0)
		return rc;
	if (f->rstate[dev] == RD_NONE && !((f->old_salt >> (dev % 4)) & 1)) {
		f->rstate[dev] = RD_DECLINED;
		return 0;
	}
	if (f->rhash[dev] == NULL) {
		f->rhash[dev] = calloc((size_t)nu, FERRY_HASH_LEN);
		FZ_CHECK(f->rhash[dev] != NULL);
	}
	for (k = 0; k < count; k++) {
		uint8_t *p;
		uint32_t len;

		u = first + k;
		p = f->dev[dev] + u * f->unit[dev];
		len = f->size[dev] - u * f->unit[dev] < f->unit[dev]
		    ? (uint32_t)(f->size[dev] - u * f->unit[dev]) : f->unit[dev];
		for (j = 0; j < len; j++) {
			FZ_CHECK(p[j] == 0);    /* nothing wrote staging before */
			p[j] = old_byte(f->old_salt, dev, u, j);
		}
		page_hash(f->seed, p, len, hash[k]);
		memcpy(f->rhash[dev][u], hash[k], FERRY_HASH_LEN);
	}
	f->rnext[dev] = first + count;
	f->rstate[dev] = f->rnext[dev] == nu ? RD_DONE : RD_COPYING;
	return 1;
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

/* Section 4.17: the session checked the stream's digest and the COMMIT's
 * seq; the bytes the sink took must agree. */
static int
qemu_commit(struct fsink *f, const struct msg_commit *c, struct ferr *e)
{
	uint8_t got[FERRY_HASH_LEN];

	FZ_CHECK(c->ndev == 1 && c->dev[0].id == f->qdev_id);
	FZ_CHECK(c->seq == rsess_last_seq(f->sess));
	FZ_CHECK(f->qlen == rsess_stats(f->sess)->logical_bytes);
	FZ_CHECK(!f->pend);
	digest_final(f->qdg, got);
	FZ_CHECK(memcmp(got, c->dev[0].digest, FERRY_HASH_LEN) == 0);
	if (f->commit_fails)
		return sink_err(f, ferr_set(e, FERR_IO, "fuzz sink: QEMU did not complete"));
	f->committed = 1;
	return 0;
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
	if (f->qsession)
		return qemu_commit(f, c, e);
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
			return sink_err(f, ferr_set(e, FERR_VERIFY, "fuzz sink: state digest differs"));
	}
	if (f->commit_fails)
		return sink_err(f, ferr_set(e, FERR_IO, "fuzz sink: commit fails"));
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
	return sink_err(f, FERR_VIRT_CPUS);
}

/* The RAM block list, once per QEMU session: an in-memory mirror, at
 * most FZ_QMIRROR_MAX bytes in all. */
static int
fs_qemu_blocks(void *ctx, const struct qitem_block *b, uint32_t n, struct ferr *e)
{
	struct fsink *f = ctx;
	uint64_t total = 0;
	uint32_t i, j;
	int rc;

	f->ops++;
	FZ_CHECK(f->qsession && f->accepted && !f->aborted && !f->committed);
	FZ_CHECK(f->blocks_calls++ == 0 && !f->pend);
	FZ_CHECK(n >= 1 && n <= FERRY_QBLOCKS_MAX);
	for (i = 0; i < n; i++) {
		FZ_CHECK(b[i].id_len >= 1 && strnlen(b[i].id, sizeof(b[i].id)) == b[i].id_len);
		FZ_CHECK(b[i].len != 0 && b[i].len % FERRY_QPAGE_SIZE == 0 &&
		    b[i].len <= FERRY_DEVICE_SIZE_MAX);
		for (j = 0; j < i; j++)
			FZ_CHECK(strcmp(b[i].id, b[j].id) != 0);
		total += b[i].len;      /* at most 256 * 2^46: no overflow */
	}
	if ((rc = inject(f, "qemu_blocks", e)) != 0)
		return rc;
	if (total > FZ_QMIRROR_MAX)
		return sink_err(f, ferr_set(e, FERR_IO, "fuzz sink: RAM mirror of %llu bytes > %u",
		    (unsigned long long)total, FZ_QMIRROR_MAX));
	f->blocks = malloc(n * sizeof(*b));
	FZ_CHECK(f->blocks != NULL);
	memcpy(f->blocks, b, n * sizeof(*b));
	for (i = 0; i < n; i++) {
		f->mirror[i] = calloc(1, (size_t)b[i].len);
		FZ_CHECK(f->mirror[i] != NULL);
	}
	f->nblocks = n;
	return 0;
}

/* A page written to the mirror comes out next as its QEMU data record
 * (4.17): u64 offset | 0x08 (| 0x20 with CONTINUE), the str8 block id
 * unless CONTINUE, the page. */
static void
check_data_record(const struct fsink *f, const uint8_t *p, size_t n)
{
	const struct qitem_block *b = &f->blocks[f->pend_blk];
	uint64_t h;
	int cont;

	FZ_CHECK(n >= 8);
	h = fz_be64(p);
	cont = (h & 0x20) != 0;
	FZ_CHECK((h & ~(uint64_t)0x20) == (f->pend_off | 0x08));
	FZ_CHECK(n == 8 + (cont ? 0 : 1 + (size_t)b->id_len) + FERRY_QPAGE_SIZE);
	FZ_CHECK(cont || (p[8] == b->id_len && memcmp(p + 9, b->id, b->id_len) == 0));
	FZ_CHECK(memcmp(p + n - FERRY_QPAGE_SIZE, f->mirror[f->pend_blk] + f->pend_off,
	    FERRY_QPAGE_SIZE) == 0);
}

static int
fs_qemu_out(void *ctx, const uint8_t *p, size_t n, struct ferr *e)
{
	struct fsink *f = ctx;
	int rc;

	f->ops++;
	FZ_CHECK(f->qsession && f->accepted && !f->aborted && !f->committed);
	FZ_CHECK(n >= 1);
	(void)fz_touch(p, n);
	if (f->pend)
		check_data_record(f, p, n);
	f->pend = 0;
	if ((rc = inject(f, "qemu_out", e)) != 0)
		return rc;
	digest_update(f->qdg, p, n);
	f->qlen += n;
	return 0;
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

static const struct rsess_sink_ops fsink_qemu_ops = {
	.accept = fs_accept,
	.write = fs_write,
	.read = fs_read,
	.state = fs_state,
	.commit = fs_commit,
	.abort = fs_abort,
	.domain_check = fs_domain_check,
	.qemu_blocks = fs_qemu_blocks,
	.qemu_out = fs_qemu_out,
};

static void
fsink_release(struct fsink *f)
{
	uint32_t i;

	for (i = 0; i < f->ndev; i++)
		free(f->dev[i]);
	free(f->state);
	for (i = 0; i < f->nblocks; i++)
		free(f->mirror[i]);
	for (i = 0; i < FERRY_MAX_DEVICES; i++)
		free(f->rhash[i]);
	free(f->blocks);
	digest_free(f->qdg);
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
	uint32_t caps_offered;  /* the harness's config */
	uint32_t caps;          /* from WELCOME */
	int welcomed, answered, ended, resumes_asked, checked;
	uint64_t last_ack;
	uint64_t committed_seq;
	/* the QEMU return path */
	uint8_t qr_salt;        /* the seed byte */
	uint64_t qr_given;      /* bytes rsess_qreturn took */
	uint64_t qret_off;      /* next QRETURN offset on this connection */
	/* the HELLO and the return trips */
	const uint8_t *stream;  /* the sender's bytes, */
	size_t fed;             /* how many of them rsess_feed was given */
	uint32_t sender_max;    /* max_frame of the sender's HELLO */
	uint32_t have_dev;      /* device index of the last HAVE */
	uint64_t have_next[FERRY_MAX_DEVICES];  /* units HAVE covered */
	uint64_t have_units, have_bytes;        /* all HAVE: units, units x unit */
};

/* The HELLO the session answered: the first one in the stream, since
 * before it only PING and PONG are accepted. */
static void
sender_hello(struct peer *pr, struct msg_hello *h)
{
	size_t off = 0;

	while (pr->fed - off >= FERRY_FRAME_HDR_LEN) {
		uint32_t len = fz_be32(pr->stream + off + 4);
		struct ferr e = { 0 };

		FZ_CHECK(len <= pr->fed - off - FERRY_FRAME_HDR_LEN);
		if (pr->stream[off] == FT_HELLO) {
			FZ_CHECK(msg_hello_decode(pr->stream + off + FERRY_FRAME_HDR_LEN, len, h, &e) == 0);
			return;
		}
		FZ_CHECK(pr->stream[off] == FT_PING || pr->stream[off] == FT_PONG);
		off += FERRY_FRAME_HDR_LEN + (size_t)len;
	}
	FZ_CHECK(!"WELCOME without a HELLO");
}

/* HAVE (4.19): with CAP_REUSE, after WELCOME (and CHECKS) and before
 * ACCEPT, within the sender's maximum, for a device the sink reused:
 * devices in manifest order, units in order and each once, each hash the
 * keyed hash of what the sink holds, as its reuse op gave it. */
static void
check_have(struct rsess *s, struct peer *pr, const struct fsink *f, const uint8_t *p,
    uint32_t n)
{
	const struct msg_manifest *m = rsess_manifest(s);
	struct msg_have hv;
	struct ferr e = { 0 };
	uint32_t di, unit, k;
	uint64_t nu;

	FZ_CHECK(pr->welcomed && !pr->answered && (pr->caps & FERRY_CAP_REUSE));
	FZ_CHECK(f->accepted && !f->qsession && m != NULL && m->ndev == f->ndev);
	FZ_CHECK(f->domain_calls == 0 || pr->checked);
	FZ_CHECK(n <= pr->sender_max);
	FZ_CHECK(msg_have_decode(p, n, &hv, &e) == 0);
	for (di = 0; di < m->ndev && m->dev[di].id != hv.device; di++)
		;
	FZ_CHECK(di < m->ndev);
	FZ_CHECK(f->rstate[di] == RD_COPYING || f->rstate[di] == RD_DONE);
	nu = dev_units(&m->dev[di]);
	unit = m->dev[di].unit;
	/* One device after the other, in manifest order. */
	FZ_CHECK(di >= pr->have_dev);
	if (di != pr->have_dev)
		FZ_CHECK(pr->have_next[pr->have_dev] == 0 ||
		    pr->have_next[pr->have_dev] == dev_units(&m->dev[pr->have_dev]));
	pr->have_dev = di;
	FZ_CHECK(hv.first == pr->have_next[di] && hv.count <= nu - hv.first);
	FZ_CHECK(hv.count <= msg_have_max_count(pr->sender_max));
	for (k = 0; k < hv.count; k++) {
		uint64_t u = (uint64_t)hv.first + k;
		uint8_t h[FERRY_HASH_LEN];

		page_hash(f->seed, f->dev[di] + u * unit, dev_unit_len(&m->dev[di], u), h);
		FZ_CHECK(memcmp(h, hv.hashes + (size_t)k * FERRY_HASH_LEN, FERRY_HASH_LEN) == 0);
		FZ_CHECK(memcmp(f->rhash[di][u], h, FERRY_HASH_LEN) == 0);
	}
	pr->have_next[di] += hv.count;
	pr->have_units += hv.count;
	pr->have_bytes += (uint64_t)hv.count * unit;
}

/* ACCEPT: with CAP_REUSE (an image session), every device was asked and
 * each one reused is covered to its last unit; else no HAVE. */
static void
check_covered(const struct peer *pr, const struct fsink *f)
{
	uint32_t i;

	if (!(pr->caps & FERRY_CAP_REUSE) || f->qsession) {
		FZ_CHECK(pr->have_units == 0 && f->reuse_calls == 0);
		return;
	}
	for (i = 0; i < f->ndev; i++) {
		uint64_t nu = f->size[i] / f->unit[i] + (f->size[i] % f->unit[i] != 0);

		FZ_CHECK(f->rstate[i] == RD_DECLINED || f->rstate[i] == RD_DONE);
		FZ_CHECK(pr->have_next[i] == (f->rstate[i] == RD_DONE ? nu : 0));
	}
}

/* The byte at return-path offset i. */
static uint8_t
qr_byte(uint64_t i, uint8_t salt)
{
	return (uint8_t)(i * 0x9d ^ i >> 7 ^ salt);
}

/* QRETURN (4.18): in a QEMU session after ACCEPT, each where the one
 * before on this connection ended, with the bytes the harness gave. */
static void
check_qreturn(struct rsess *s, struct peer *pr, const struct fsink *f, const uint8_t *p,
    uint32_t n)
{
	struct msg_qreturn q;
	struct ferr e = { 0 };
	uint32_t i;

	FZ_CHECK(rsess_is_qemu(s) && f->qsession && pr->answered && (pr->caps & FERRY_CAP_QEMU));
	FZ_CHECK(msg_qreturn_decode(p, n, &q, &e) == 0);
	FZ_CHECK(q.offset == pr->qret_off && q.len <= pr->qr_given - q.offset);
	for (i = 0; i < q.len; i++)
		FZ_CHECK(q.data[i] == qr_byte(q.offset + i, pr->qr_salt));
	pr->qret_off += q.len;
}

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

		FZ_CHECK(frame_decode_hdr(p, len, FERRY_MAX_FRAME_LIMIT, FDIR_R2S, &h, &e) == 0);
		FZ_CHECK(h.len <= len - FERRY_FRAME_HDR_LEN);
		/* HAVE may be as long as the sender accepts (check_have). */
		FZ_CHECK(h.type == FT_HAVE || h.len <= FERRY_MAX_FRAME_MIN);
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
			pr->qret_off = 0;       /* the return path again from 0 */
		} else {
			FZ_CHECK(!pr->ended);
			FZ_CHECK(!expect_resumed || resumed);
		}
		switch (h.type) {
		case FT_WELCOME: {
			struct msg_welcome w;
			struct msg_hello hello;
			uint8_t sid[16];

			FZ_CHECK(!pr->welcomed);
			pr->welcomed = 1;
			FZ_CHECK(msg_welcome_decode(payload, h.len, &w, &e) == 0);
			/* Only what this version knows (and the harness offers):
			 * what the HELLO asked for and the sink can do. */
			FZ_CHECK(w.max_frame == pr->max_frame && (w.caps & ~FERRY_CAPS_KNOWN) == 0);
			FZ_CHECK((w.caps & ~pr->caps_offered) == 0);
			sender_hello(pr, &hello);
			FZ_CHECK(w.caps == (hello.caps & pr->caps_offered));
			pr->sender_max = hello.max_frame;
			pr->caps = w.caps;
			fz_random(sid, sizeof(sid));
			FZ_CHECK(memcmp(sid, w.session_id, 16) == 0);
			FZ_CHECK(memcmp(sid, rsess_session_id(s), 16) == 0);
			break;
		}
		case FT_ACCEPT:
			FZ_CHECK(pr->welcomed && !pr->answered && f->accepted);
			FZ_CHECK(!f->qsession || (pr->caps & FERRY_CAP_QEMU));
			FZ_CHECK(rsess_state(s) != RS_REUSING);
			check_covered(pr, f);
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
		case FT_QRETURN:
			check_qreturn(s, pr, f, payload, h.len);
			break;
		case FT_HAVE:
			check_have(s, pr, f, payload, h.len);
			break;
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
	/* Nothing of the return path is held back. */
	if (rsess_state(s) == RS_RECEIVING)
		FZ_CHECK(pr->qret_off == pr->qr_given);
}

/* After a feed: the session and sink agree about how things stand. */
static void
check_state(struct rsess *s, const struct peer *pr, const struct fsink *f)
{
	enum rsess_state st = rsess_state(s);

	FZ_CHECK(st >= RS_WAIT_HELLO && st <= RS_FAILED);
	FZ_CHECK((st == RS_COMMITTED) == (f->committed != 0));
	FZ_CHECK(st != RS_RECEIVING || (f->accepted && !f->aborted));
	/* REUSING: an accepted image session with CAP_REUSE, before ACCEPT. */
	if (st == RS_REUSING)
		FZ_CHECK(f->reuse && f->accepted && !f->aborted && !f->qsession &&
		    (pr->caps & FERRY_CAP_REUSE) && pr->welcomed && !pr->answered);
	FZ_CHECK(rsess_stats(s)->units_offered == pr->have_units);
	if (f->aborted)
		FZ_CHECK(st == RS_FAILED);
	if (st == RS_FAILED)
		FZ_CHECK(rsess_error(s)->code < 0);
	FZ_CHECK((rsess_manifest(s) != NULL) == (f->accepted != 0));
	FZ_CHECK(rsess_last_seq(s) <= rsess_stats(s)->frames);
	/* An error from the sink ends the session. */
	FZ_CHECK(!f->op_failed || st == RS_FAILED);
	FZ_CHECK((rsess_is_qemu(s) != 0) == (f->qsession != 0));
	if (f->qsession && st != RS_FAILED)
		FZ_CHECK(rsess_stats(s)->logical_bytes == f->qlen && !f->pend);
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

/* rsess_qreturn outside a RECEIVING QEMU session: refused, nothing
 * changes, nothing is queued, no sink op runs. */
static void
qreturn_refused(struct rsess *s, const struct fsink *f)
{
	static const uint8_t b[3] = { 1, 2, 3 };
	enum rsess_state st = rsess_state(s);
	unsigned ops = f->ops;
	struct ferr e = { 0 };
	size_t len;

	FZ_CHECK(rsess_qreturn(s, b, sizeof(b), &e) == FERR_PROTO_STATE && e.code == FERR_PROTO_STATE);
	(void)rsess_output(s, &len);
	FZ_CHECK(len == 0 && rsess_state(s) == st && f->ops == ops);
}

/* Return-path bytes from the destination QEMU, after a feed that left the
 * session RECEIVING (mode from the fail_at byte).  Returns 0, or the
 * error that ended the session (past FERRY_QRETURN_MAX). */
static int
qreturn_now(struct rsess *s, struct peer *pr, struct fsink *f, unsigned mode, unsigned k)
{
	struct ferr e = { 0 };
	unsigned abort_calls = f->abort_calls;
	size_t i, n;
	uint8_t *buf;
	int rc, over;

	if (!rsess_is_qemu(s)) {
		qreturn_refused(s, f);
		return 0;
	}
	if (mode == 1 || (mode == 3 && k > 0))
		n = 1 + (pr->qr_salt + 7u * k) % 16;
	else if (mode == 2)     /* 0 now and then (nothing to send), once some were */
		n = (pr->qr_salt * 31u + 977u * k) % 4097 + (pr->qr_given == 0);
	else    /* around the limit: at most FERRY_QRETURN_MAX + 31 bytes */
		n = FERRY_QRETURN_MAX - 32 + pr->qr_salt % 64;
	over = pr->qr_given + n > FERRY_QRETURN_MAX;
	buf = malloc(n ? n : 1);
	FZ_CHECK(buf != NULL);
	/* Bytes past the limit are refused unread: not worth filling. */
	for (i = 0; i < n && !over; i++)
		buf[i] = qr_byte(pr->qr_given + i, pr->qr_salt);
	rc = rsess_qreturn(s, buf, n, &e);
	free(buf);
	if (over) {
		/* Section 4.18: too much fails the session. */
		FZ_CHECK(rc == FERR_PROTO_LENGTH && e.code == rc);
		FZ_CHECK(rsess_state(s) == RS_FAILED && f->abort_calls == abort_calls + 1);
	} else {
		FZ_CHECK(rc == 0 && rsess_state(s) == RS_RECEIVING && f->abort_calls == abort_calls);
		pr->qr_given += n;
	}
	drain(s, pr, f, 0);
	check_state(s, pr, f);
	return rc;
}

static uint32_t
xorshift32(uint32_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 17;
	*x ^= *x << 5;
	return *x;
}

/* rsess_reuse_step outside REUSING: refused, nothing changes, nothing is
 * queued, no sink op runs. */
static void
reuse_refused(struct rsess *s, const struct fsink *f)
{
	enum rsess_state st = rsess_state(s);
	unsigned ops = f->ops;
	struct ferr e = { 0 };
	size_t len, before;
	int rc;

	(void)rsess_output(s, &before);
	rc = rsess_reuse_step(s, UINT64_MAX, &e);
	FZ_CHECK(rc < 0 && e.code == rc);
	(void)rsess_output(s, &len);
	FZ_CHECK(len == before && rsess_state(s) == st && f->ops == ops);
}

/* Section 4.19: the daemon's reuse steps while the session is REUSING,
 * each with a budget from the seed byte's bits 4-6; all of them until the
 * state changes, or one.  Returns 0, or the error that failed the
 * session. */
static int
reuse_steps(struct rsess *s, struct peer *pr, struct fsink *f, uint32_t *prng, int all)
{
	unsigned mode = (f->old_salt >> 4) & 7;

	do {
		struct ferr e = { 0 };
		uint64_t budget, units = pr->have_units, bytes = pr->have_bytes;
		unsigned aborts = f->abort_calls;
		enum rsess_state st;
		int rc;

		budget = mode == 0 ? 0 : mode == 7 ? UINT64_MAX
		    : xorshift32(prng) % (1u << (10 + 2 * mode));
		rc = rsess_reuse_step(s, budget, &e);
		drain(s, pr, f, 0);
		check_state(s, pr, f);
		st = rsess_state(s);
		if (rc != 0) {
			FZ_CHECK(rc < 0 && e.code == rc && st == RS_FAILED);
			FZ_CHECK(f->abort_calls == aborts + 1);
			/* A sink's error is the one the session ends with. */
			FZ_CHECK(!f->op_failed || rc == f->fail_code);
			return rc;
		}
		FZ_CHECK(!f->op_failed && f->abort_calls == aborts);
		FZ_CHECK(st == RS_REUSING || st == RS_RECEIVING);
		/* Every step moves on: at least one unit, about its budget. */
		FZ_CHECK(st == RS_RECEIVING || pr->have_units > units);
		FZ_CHECK(pr->have_bytes - bytes <= budget || pr->have_units - units == 1);
	} while (all && rsess_state(s) == RS_REUSING);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fsink f;
	struct peer pr;
	struct rsess_config cfg;
	struct rsess_sink_ops ops;
	struct rsess *s;
	const uint8_t *stream;
	size_t slen, pos = 0, avail = 0;
	uint8_t flags, chunking;
	uint32_t prng, rprng;
	int feeds = 0, rc = 0, detached = 0;
	unsigned qr_mode = 0, qr_calls = 0;

	if (size < 4)
		return 0;
	flags = data[0];
	chunking = data[2];
	prng = ((uint32_t)data[2] << 8 | data[3]) * 2654435761u + 1;
	rprng = ((uint32_t)data[3] << 8 | data[2]) * 2246822519u | 1;
	stream = data + 4;
	slen = size - 4;

	memset(&f, 0, sizeof(f));
	f.refuse = (flags >> 5) & 1;
	f.commit_fails = (flags >> 4) & 1;
	f.fail_at = data[1] & 0x7f;
	f.reuse = data[1] >> 7;
	f.domain_fails = (flags >> 6) & 1;
	f.qemu_ops = (flags >> 7) & 1;
	if (f.qemu_ops) {
		f.fail_at = data[1] & 0x1f;
		f.reuse = (data[1] >> 5) & 1;
		qr_mode = data[1] >> 6;
	}
	f.old_salt = data[3];
	memset(&pr, 0, sizeof(pr));
	memset(&cfg, 0, sizeof(cfg));
	cfg.max_frame = (flags & 8) ? FERRY_MAX_FRAME_LIMIT : FERRY_MAX_FRAME_DEFAULT;
	cfg.random = fz_random;
	/* Every capability: the session offers only those its ops allow. */
	cfg.caps = FERRY_CAP_DOMAIN | FERRY_CAP_QEMU | FERRY_CAP_REUSE;
	ops = f.qemu_ops ? fsink_qemu_ops : fsink_ops;
	if (f.reuse)
		ops.reuse = fs_reuse;
	pr.max_frame = cfg.max_frame;
	pr.caps_offered = FERRY_CAP_DOMAIN | (f.qemu_ops ? FERRY_CAP_QEMU : 0) |
	    (f.reuse ? FERRY_CAP_REUSE : 0);
	pr.qr_salt = data[3];
	pr.stream = stream;
	s = rsess_new(&cfg, &ops, &f);
	FZ_CHECK(s != NULL);
	f.sess = s;
	FZ_CHECK(rsess_state(s) == RS_WAIT_HELLO);
	if (qr_mode != 0)
		qreturn_refused(s, &f);
	if (f.reuse)
		reuse_refused(s, &f);

	while (avail < slen) {
		size_t step, used, n;
		int cut;

		if (chunking == 0 || ++feeds >= FZ_MAX_FEEDS)
			step = slen - avail;
		else
			step = 1 + xorshift32(&prng) % (1u << (chunking % 16));
		avail = step > slen - avail ? slen : avail + step;
		/* Feed what has arrived.  With the reuse bit, before ACCEPT one
		 * frame at a time, as the daemon does, with reuse steps in
		 * between. */
		do {
			struct ferr e = { 0 };
			enum rsess_state st = rsess_state(s);
			uint8_t *buf;

			n = avail - pos;
			cut = 0;
			used = (size_t)-1;
			if (f.reuse && n >= FERRY_FRAME_HDR_LEN &&
			    (st == RS_WAIT_HELLO || st == RS_WAIT_MANIFEST || st == RS_REUSING)) {
				size_t whole = FERRY_FRAME_HDR_LEN + (size_t)fz_be32(stream + pos + 4);

				if (whole < n) {
					n = whole;
					cut = 1;
				}
			}
			buf = fz_dup(stream + pos, n);
			pr.fed = pos + n;
			rc = rsess_feed(s, buf, n, &used, &e);
			free(buf);
			FZ_CHECK(used <= n);
			FZ_CHECK(rc != FERR_NEED_MORE);
			drain(s, &pr, &f, 0);
			check_state(s, &pr, &f);
			pos += used;
			if (rc != 0) {
				FZ_CHECK(rc < 0 && e.code == rc);
				FZ_CHECK(rsess_state(s) == RS_FAILED || rsess_state(s) == RS_COMMITTED);
				/* A sink's error is the one the session ends with. */
				FZ_CHECK(!f.op_failed || rc == f.fail_code);
				break;
			}
			FZ_CHECK(!f.op_failed);
			if (rsess_state(s) == RS_REUSING &&
			    (rc = reuse_steps(s, &pr, &f, &rprng, !(f.old_salt & 0x80))) != 0)
				break;
			if (qr_mode != 0 && rsess_state(s) == RS_RECEIVING &&
			    (rc = qreturn_now(s, &pr, &f, qr_mode, qr_calls++)) != 0)
				break;
			if ((flags & 2) && !detached && rsess_state(s) == RS_RECEIVING) {
				/* The connection breaks and the sender comes back. */
				detached = 1;
				rsess_detach(s);
				resume_now(s, &pr, &f);
			}
		} while (cut && used == n && pos < avail);
		if (rc != 0)
			break;
	}
	/* The stream has ended; the daemon's steps go on (unless the
	 * session is aborted first, flag bit 2). */
	if (rc == 0 && rsess_state(s) == RS_REUSING && !(flags & 4))
		rc = reuse_steps(s, &pr, &f, &rprng, 1);

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
		unsigned nops = f.ops;
		enum rsess_state st = rsess_state(s);
		struct ferr e = { 0 };
		size_t used = 0;
		static const uint8_t ping[16] = { FT_PING, 0, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };

		FZ_CHECK(rsess_feed(s, ping, sizeof(ping), &used, &e) != 0);
		FZ_CHECK(f.ops == nops && rsess_state(s) == st);
		drain(s, &pr, &f, 0);
	}

	if (flags & 1)
		resume_now(s, &pr, &f);
	if (flags & 4) {
		enum rsess_state st = rsess_state(s);

		rsess_fail(s, FERR_ABORTED, "operator abort (fuzz)");
		FZ_CHECK(rsess_state(s) == (st == RS_COMMITTED ? RS_COMMITTED : RS_FAILED));
		check_state(s, &pr, &f);
	}
	if (qr_mode != 0 && (rsess_state(s) != RS_RECEIVING || !rsess_is_qemu(s)))
		qreturn_refused(s, &f);
	if (f.reuse && rsess_state(s) != RS_REUSING)
		reuse_refused(s, &f);
	check_state(s, &pr, &f);
	rsess_free(s);
	FZ_CHECK(f.abort_calls == (f.accepted && !f.committed ? 1u : 0u));
	fsink_release(&f);
	return 0;
}
