#include "pager.h"

#include <stdlib.h>
#include <string.h>

#include "codec_lz4.h"
#include "frame.h"
#include "pagehash.h"

int
pager_init(struct pager *p, struct source_dev *dev, uint32_t ndev, uint64_t seed, struct ferr *e)
{
	uint64_t units = 0;
	uint32_t maxunit = 0, i;
	uint8_t *zero;

	memset(p, 0, sizeof(*p));
	p->dev = dev;
	p->ndev = ndev;
	p->seed = seed;
	p->next_seq = 1;
	for (i = 0; i < ndev; i++) {
		units += dev[i].nunits;
		if (dev[i].desc.unit > maxunit)
			maxunit = dev[i].desc.unit;
	}
	p->dd = dedupe_new(units);
	p->undo_cap = PAGER_WINDOW_UNITS + FERRY_MAX_PAGES_PER_FRAME;
	p->undo = malloc(p->undo_cap * sizeof(*p->undo));
	p->zero_hash = calloc(ndev, FERRY_HASH_LEN);
	p->have = calloc(ndev, sizeof(*p->have));
	zero = calloc(1, maxunit);
	if (p->dd == NULL || p->zero_hash == NULL || zero == NULL ||
	    p->undo == NULL || p->have == NULL) {
		free(zero);
		pager_fini(p);
		return ferr_set(e, FERR_NOMEM, "pager: tables for %llu units", (unsigned long long)units);
	}
	for (i = 0; i < ndev; i++)
		page_hash(seed, zero, dev[i].desc.unit, p->zero_hash[i]);
	free(zero);
	if (scanpool_init(&p->sp, seed, maxunit > SCAN_JOB_BYTES ? maxunit : SCAN_JOB_BYTES, e) != 0) {
		pager_fini(p);
		return e->code;
	}
	p->sp_ready = 1;
	return 0;
}

int
pager_use_dirtylog(struct pager *p, struct dirtylog *dl, struct ferr *e)
{
	uint32_t i;

	if (dl->l.ndev != p->ndev)
		return ferr_set(e, FERR_USAGE, "dirty log '%s' describes %u devices, this migration has %u",
		    dl->path, dl->l.ndev, p->ndev);
	for (i = 0; i < p->ndev; i++) {
		const struct source_dev *d = &p->dev[i];

		if (dl->l.dev[i].unit != d->desc.unit || dl->l.dev[i].nunits != d->nunits)
			return ferr_set(e, FERR_USAGE, "dirty log '%s': device %u has %llu units of %u bytes, "
			    "'%s' has %llu of %u", dl->path, i, (unsigned long long)dl->l.dev[i].nunits,
			    dl->l.dev[i].unit, d->path, (unsigned long long)d->nunits, d->desc.unit);
	}
	p->scan = calloc(p->ndev, sizeof(*p->scan));
	if (p->scan == NULL)
		return ferr_set(e, FERR_NOMEM, "dirty log: scan tables");
	for (i = 0; i < p->ndev; i++)
		if ((p->scan[i] = calloc(dl->l.dev[i].nwords, sizeof(uint64_t))) == NULL)
			return ferr_set(e, FERR_NOMEM, "dirty log: scan table of device %u", i);
	p->dl = dl;
	return 0;
}

static inline void
scan_mark(struct pager *p, uint32_t di, uint64_t idx)
{
	p->scan[di][idx / 64] |= 1ull << (idx % 64);
}

/* The first unit at or after idx that the round must scan: with the dirty
 * log, the next one marked; else idx itself. */
static uint64_t
scan_next(const struct pager *p, uint32_t di, uint64_t idx)
{
	const uint64_t *w = p->scan[di];
	uint64_t n = p->dev[di].nunits, i = idx / 64, bits;

	if (idx >= n)
		return n;
	bits = w[i] & (~0ull << (idx % 64));
	while (bits == 0) {
		if (++i >= (n + 63) / 64)
			return n;
		bits = w[i];
	}
	idx = i * 64 + (uint64_t)__builtin_ctzll(bits);
	return idx < n ? idx : n;
}

int
pager_start_threads(struct pager *p, uint32_t n, struct ferr *e)
{
	return scanpool_start(&p->sp, n, e);
}

void
pager_fini(struct pager *p)
{
	if (p->sp_ready)
		scanpool_fini(&p->sp);
	p->sp_ready = 0;
	if (p->scan != NULL) {
		uint32_t i;

		for (i = 0; i < p->ndev; i++)
			free(p->scan[i]);
		free(p->scan);
		p->scan = NULL;
	}
	p->dl = NULL;
	dedupe_free(p->dd);
	free(p->zero_hash);
	free(p->undo);
	free(p->have);
	p->have = NULL;
	p->undo = NULL;
	p->dd = NULL;
	p->zero_hash = NULL;
}

void
pager_begin_round(struct pager *p)
{
	p->round++;
	scanpool_drop_all(&p->sp);
	p->jpos = 0;
	p->disp_dev = 0;
	p->disp_idx = 0;
	p->cur_dev = 0;
	p->cur_idx = 0;
	p->rel_idx = 0;
	memset(&p->round_st, 0, sizeof(p->round_st));
	if (p->dl != NULL) {
		uint32_t i;

		/* Round 1 reads every unit: marks made before it are moot.
		 * Later rounds scan what was marked since the last take. */
		for (i = 0; i < p->ndev; i++) {
			(void)dirtylog_take(p->dl, i, p->scan[i]);
			if (p->round == 1)
				memset(p->scan[i], 0, p->dl->l.dev[i].nwords * sizeof(uint64_t));
		}
	}
}

int
pager_have(struct pager *p, const struct msg_have *h, struct ferr *e)
{
	struct source_dev *d = NULL;
	struct pager_have *ph;
	uint32_t di, k;

	for (di = 0; di < p->ndev; di++) {
		if (p->dev[di].desc.id == h->device) {
			d = &p->dev[di];
			break;
		}
	}
	if (d == NULL)
		return ferr_set(e, FERR_PROTO_RANGE, "HAVE: device %u not in the manifest", h->device);
	ph = &p->have[di];
	if (h->first != ph->held)
		return ferr_set(e, FERR_PROTO_RANGE, "HAVE: device %u first %u, expected %llu (each unit "
		    "once, in order)", h->device, h->first, (unsigned long long)ph->held);
	if (h->count > d->nunits - ph->held)
		return ferr_set(e, FERR_PROTO_RANGE, "HAVE: device %u units %u..%llu past its %llu units",
		    h->device, h->first, (unsigned long long)h->first + h->count - 1,
		    (unsigned long long)d->nunits);
	for (k = 0; k < h->count; k++) {
		uint32_t idx = h->first + k;
		const uint8_t *hash = h->hashes + (size_t)k * FERRY_HASH_LEN;

		source_set_sent(d, idx, hash);
		/* The receiver's copy may serve as a reference (section 4.6):
		 * its content is checked against the hash before it is used. */
		if (memcmp(hash, p->zero_hash[di], FERRY_HASH_LEN) != 0)
			dedupe_put(p->dd, hash, d->desc.id, idx);
	}
	ph->held += h->count;
	return 0;
}

int
pager_have_complete(const struct pager *p, struct ferr *e)
{
	uint32_t di;

	for (di = 0; di < p->ndev; di++) {
		const struct source_dev *d = &p->dev[di];

		if (p->have[di].held != 0 && p->have[di].held != d->nunits)
			return ferr_set(e, FERR_PROTO_RANGE, "ACCEPT: HAVE covered %llu of the %llu units "
			    "of device %u", (unsigned long long)p->have[di].held,
			    (unsigned long long)d->nunits, d->desc.id);
	}
	return 0;
}

static void
count(struct pager *p, uint64_t *field, uint32_t len)
{
	(*field)++;
	p->round_st.units_sent++;
	p->round_st.logical_bytes += len;
}

/* A usable reference: some unit whose receiver copy holds hash now. */
static int
find_ref(struct pager *p, const uint8_t h[FERRY_HASH_LEN], uint32_t len, struct page_entry *pe)
{
	uint32_t devid, idx, k;

	if (!dedupe_find(p->dd, h, &devid, &idx))
		return 0;
	for (k = 0; k < p->ndev; k++) {
		struct source_dev *sd = &p->dev[k];

		if (sd->desc.id != devid)
			continue;
		if (idx >= sd->nunits || !source_sent_valid(sd, idx) ||
		    memcmp(sd->sent[idx], h, FERRY_HASH_LEN) != 0 || dev_unit_len(&sd->desc, idx) != len)
			return 0;
		pe->kind = PK_REF;
		pe->src_device = devid;
		pe->src_index = idx;
		memcpy(pe->hash, h, FERRY_HASH_LEN);
		return 1;
	}
	return 0;
}

static void
undo_push(struct pager *p, uint32_t di, uint32_t idx)
{
	struct source_dev *d = &p->dev[di];
	struct undo_ent *u = &p->undo[(p->undo_head + p->undo_len) % p->undo_cap];

	u->seq = p->next_seq;
	u->dev = di;
	u->idx = idx;
	u->valid = (uint8_t)source_sent_valid(d, idx);
	memcpy(u->hash, d->sent[idx], FERRY_HASH_LEN);
	p->undo_len++;
}

void
pager_ack(struct pager *p, uint64_t seq)
{
	if (seq > p->acked_seq)
		p->acked_seq = seq;
	while (p->undo_len > 0 && p->undo[p->undo_head].seq <= seq) {
		p->undo_head = (p->undo_head + 1) % p->undo_cap;
		p->undo_len--;
	}
}

int
pager_rollback(struct pager *p, uint64_t next_seq)
{
	if (next_seq == 0 || next_seq - 1 < p->acked_seq || next_seq > p->next_seq)
		return -1;
	pager_ack(p, next_seq - 1);
	/* Results made ahead describe units as the scan found them before
	 * the sent state goes back: made again from the scan's position
	 * (with the dirty log, their units are marked to scan again). */
	if (p->dl != NULL) {
		uint32_t i, k;

		for (i = 0; i < scanpool_pending(&p->sp); i++) {
			const struct scan_job *j = &p->sp.job[(p->sp.head + i) % SCAN_JOBS];

			for (k = i == 0 ? p->jpos : 0; k < j->n; k++)
				scan_mark(p, j->dev, j->u[k].idx);
		}
	}
	scanpool_drop_all(&p->sp);
	p->jpos = 0;
	while (p->undo_len > 0) {
		struct undo_ent *u = &p->undo[(p->undo_head + p->undo_len - 1) % p->undo_cap];
		struct source_dev *d = &p->dev[u->dev];

		/* Rescan from the earliest unit a lost frame carried. */
		if (u->dev < p->cur_dev || (u->dev == p->cur_dev && u->idx < p->cur_idx)) {
			p->cur_dev = u->dev;
			p->cur_idx = u->idx;
			p->rel_idx = u->idx;
		}

		if (p->dl != NULL)
			scan_mark(p, u->dev, u->idx);
		memcpy(d->sent[u->idx], u->hash, FERRY_HASH_LEN);
		if (u->valid)
			d->sent_valid[u->idx / 8] |= (uint8_t)(1u << (u->idx % 8));
		else
			d->sent_valid[u->idx / 8] &= (uint8_t)~(1u << (u->idx % 8));
		p->undo_len--;
	}
	p->next_seq = next_seq;
	p->disp_dev = p->cur_dev;
	p->disp_idx = p->cur_idx;
	return 0;
}

/* Encode one scanned unit at the writer's position; returns 0, or -1 when
 * it does not fit (the caller ends the frame). */
static int
encode_unit(struct pager *p, struct source_dev *d, const struct scan_job *j,
    const struct scan_unit *u, struct wr *w, size_t limit)
{
	struct page_entry pe;
	size_t room = limit - w->off;
	uint32_t len = u->len;

	if (room < page_entry_max(len))
		return -1;
	memset(&pe, 0, sizeof(pe));
	pe.index = u->idx;
	if (u->kind == SU_ZERO) {
		pe.kind = PK_ZERO;
		count(p, &p->round_st.zero, len);
	} else if (find_ref(p, u->hash, len, &pe)) {
		count(p, &p->round_st.dedup, len);
	} else if (u->clen > 0) {
		/* index, kind, clen, data */
		wr_u32(w, u->idx);
		wr_u8(w, PK_LZ4);
		wr_u32(w, u->clen);
		memcpy(w->base + w->off, j->lz4 + u->at, u->clen);
		w->off += u->clen;
		count(p, &p->round_st.lz4, len);
		goto sent;
	} else {
		pe.kind = PK_RAW;
		pe.data = j->copy + u->at;
		pe.data_len = len;
		count(p, &p->round_st.raw, len);
	}
	if (msg_page_put(w, &pe) != 0)
		return -1;
sent:
	undo_push(p, (uint32_t)(d - p->dev), u->idx);
	source_set_sent(d, u->idx, u->hash);
	if (u->kind != SU_ZERO)
		dedupe_put(p->dd, u->hash, d->desc.id, u->idx);
	return 0;
}

/* Hand the units still to scan to the pool, in scan order, while it has
 * room for jobs: with workers they are read, hashed and compressed while
 * this thread encrypts and sends. */
static void
dispatch(struct pager *p)
{
	int sparse = p->dl != NULL && p->round > 1;
	struct scan_job *j;

	while (p->disp_dev < p->ndev && (j = scanpool_reserve(&p->sp)) != NULL) {
		struct source_dev *d = &p->dev[p->disp_dev];
		uint64_t bytes = 0;

		j->map = d->map;
		j->dev = p->disp_dev;
		j->unit = d->desc.unit;
		j->zero_hash = p->zero_hash[p->disp_dev];
		while (j->n < SCAN_JOB_UNITS) {
			uint32_t idx, len;
			struct scan_unit *u;

			if (sparse)
				p->disp_idx = scan_next(p, p->disp_dev, p->disp_idx);
			if (p->disp_idx >= d->nunits)
				break;
			idx = (uint32_t)p->disp_idx;
			len = dev_unit_len(&d->desc, idx);
			if (j->n > 0 && bytes + len > p->sp.job_bytes)
				break;
			if (sparse)
				p->scan[p->disp_dev][idx / 64] &= ~(1ull << (idx % 64));
			u = &j->u[j->n++];
			u->idx = idx;
			u->len = len;
			u->had = (uint8_t)source_sent_valid(d, idx);
			if (u->had)
				memcpy(u->sent, d->sent[idx], FERRY_HASH_LEN);
			bytes += len;
			p->disp_idx++;
		}
		if (j->n > 0)
			scanpool_submit(&p->sp, j);
		if (p->disp_idx >= d->nunits) {
			p->disp_dev++;
			p->disp_idx = 0;
		}
	}
}

int
pager_next_frame(struct pager *p, struct wr *w, uint32_t max_payload)
{
	struct msg_pages ph;
	size_t start = w->off, at = SIZE_MAX, limit;
	uint32_t n = 0, fdev = 0;
	struct scan_job *j;

	if (p->undo_len + FERRY_MAX_PAGES_PER_FRAME > p->undo_cap)
		return PAGER_WINDOW_FULL;
	limit = w->cap - w->off;
	if (limit > (size_t)max_payload + FERRY_FRAME_HDR_LEN)
		limit = (size_t)max_payload + FERRY_FRAME_HDR_LEN;
	limit += w->off;
	for (;;) {
		struct source_dev *d;

		dispatch(p);
		if ((j = scanpool_head(&p->sp)) == NULL)
			break;
		if (n > 0 && j->dev != fdev)
			goto full;              /* a frame carries one device */
		if (j->dev != p->cur_dev) {
			source_release(&p->dev[p->cur_dev], p->rel_idx, p->dev[p->cur_dev].nunits);
			p->cur_dev = j->dev;
			p->cur_idx = 0;
			p->rel_idx = 0;
		}
		d = &p->dev[j->dev];
		while (p->jpos < j->n) {
			const struct scan_unit *u = &j->u[p->jpos];

			if (n == FERRY_MAX_PAGES_PER_FRAME)
				goto full;
			/* A later round may pass a whole image of unchanged units
			 * in this loop: release as it goes, not per frame. */
			if ((u->idx - p->rel_idx) * d->desc.unit >= PAGER_RELEASE_BYTES) {
				source_release(d, p->rel_idx, u->idx);
				p->rel_idx = u->idx;
			}
			if (u->kind != SU_UNCHANGED) {
				if (at == SIZE_MAX) {
					ph = (struct msg_pages){ p->next_seq, d->desc.id, p->round, 0 };
					if ((at = msg_pages_begin(w, &ph)) == SIZE_MAX)
						return -1;
					fdev = j->dev;
				}
				if (encode_unit(p, d, j, u, w, limit) != 0) {
					if (n == 0) {
						w->off = start;
						return -1;  /* not even one unit fits: caller bug */
					}
					goto full;
				}
				n++;
			} else if (p->round == 1 && u->idx >= p->have[j->dev].mark) {
				/* In round 1 only units HAVE named can be there already;
				 * a rescan after a cut does not count them twice. */
				p->have[j->dev].reused++;
				p->have[j->dev].mark = (uint64_t)u->idx + 1;
			}
			p->round_st.units_scanned++;
			p->jpos++;
			p->cur_idx = (uint64_t)u->idx + 1;
		}
		scanpool_pop(&p->sp);
		p->jpos = 0;
	}
	if (n == 0) {
		/* The round's scan is done. */
		if (p->cur_dev < p->ndev)
			source_release(&p->dev[p->cur_dev], p->rel_idx, p->dev[p->cur_dev].nunits);
		p->cur_dev = p->ndev;
		p->cur_idx = 0;
		return 0;
	}
full:
	msg_pages_end(w, at, n);
	p->next_seq++;
	p->round_st.frame_bytes += w->off - start;
	return 1;
}

int
pager_digests(struct pager *p, struct msg_commit *c, struct ferr *e)
{
	uint32_t i;
	uint64_t k;

	c->ndev = p->ndev;
	for (i = 0; i < p->ndev; i++) {
		struct source_dev *d = &p->dev[i];
		struct digest *dg = digest_new(p->seed);

		if (dg == NULL)
			return ferr_set(e, FERR_NOMEM, "digest");
		for (k = 0; k < d->nunits; k++) {
			if (!source_sent_valid(d, k)) {
				digest_free(dg);
				return ferr_set(e, FERR_INTERNAL, "digest of '%s': unit %llu never sent",
				    d->desc.name, (unsigned long long)k);
			}
			digest_add(dg, d->sent[k]);
		}
		c->dev[i].id = d->desc.id;
		digest_final(dg, c->dev[i].digest);
		digest_free(dg);
	}
	return 0;
}

int
state_digest(uint64_t seed, const uint8_t *p, uint64_t len, uint8_t out[FERRY_HASH_LEN],
    struct ferr *e)
{
	struct digest *dg = digest_new(seed);
	uint8_t h[FERRY_HASH_LEN];
	uint64_t off;

	if (dg == NULL)
		return ferr_set(e, FERR_NOMEM, "state digest");
	for (off = 0; off < len; off += FERRY_STATE_CHUNK) {
		uint64_t n = len - off < FERRY_STATE_CHUNK ? len - off : FERRY_STATE_CHUNK;

		page_hash(seed, p + off, (size_t)n, h);
		digest_add(dg, h);
	}
	digest_final(dg, out);
	digest_free(dg);
	return 0;
}
