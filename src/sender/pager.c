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
	p->copy = malloc(maxunit);
	p->undo_cap = PAGER_WINDOW_UNITS + FERRY_MAX_PAGES_PER_FRAME;
	p->undo = malloc(p->undo_cap * sizeof(*p->undo));
	p->zero_hash = calloc(ndev, FERRY_HASH_LEN);
	p->have = calloc(ndev, sizeof(*p->have));
	zero = calloc(1, maxunit);
	if (p->dd == NULL || p->copy == NULL || p->zero_hash == NULL || zero == NULL ||
	    p->undo == NULL || p->have == NULL) {
		free(zero);
		pager_fini(p);
		return ferr_set(e, FERR_NOMEM, "pager: tables for %llu units", (unsigned long long)units);
	}
	for (i = 0; i < ndev; i++)
		page_hash(seed, zero, dev[i].desc.unit, p->zero_hash[i]);
	free(zero);
	return 0;
}

void
pager_fini(struct pager *p)
{
	dedupe_free(p->dd);
	free(p->copy);
	free(p->zero_hash);
	free(p->undo);
	free(p->have);
	p->have = NULL;
	p->undo = NULL;
	p->dd = NULL;
	p->copy = NULL;
	p->zero_hash = NULL;
}

void
pager_begin_round(struct pager *p)
{
	p->round++;
	p->cur_dev = 0;
	p->cur_idx = 0;
	p->rel_idx = 0;
	memset(&p->round_st, 0, sizeof(p->round_st));
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
	while (p->undo_len > 0) {
		struct undo_ent *u = &p->undo[(p->undo_head + p->undo_len - 1) % p->undo_cap];
		struct source_dev *d = &p->dev[u->dev];

		/* Rescan from the earliest unit a lost frame carried. */
		if (u->dev < p->cur_dev || (u->dev == p->cur_dev && u->idx < p->cur_idx)) {
			p->cur_dev = u->dev;
			p->cur_idx = u->idx;
			p->rel_idx = u->idx;
		}

		memcpy(d->sent[u->idx], u->hash, FERRY_HASH_LEN);
		if (u->valid)
			d->sent_valid[u->idx / 8] |= (uint8_t)(1u << (u->idx % 8));
		else
			d->sent_valid[u->idx / 8] &= (uint8_t)~(1u << (u->idx % 8));
		p->undo_len--;
	}
	p->next_seq = next_seq;
	return 0;
}

/* Encode one unit at the writer's position; returns 0, or -1 when it does
 * not fit (the caller ends the frame). */
static int
encode_unit(struct pager *p, struct source_dev *d, uint32_t idx, uint32_t len, int zero,
    const uint8_t h[FERRY_HASH_LEN], struct wr *w, size_t limit)
{
	struct page_entry pe;
	size_t room = limit - w->off;

	if (room < page_entry_max(len))
		return -1;
	memset(&pe, 0, sizeof(pe));
	pe.index = idx;
	if (zero) {
		pe.kind = PK_ZERO;
		count(p, &p->round_st.zero, len);
	} else if (find_ref(p, h, len, &pe)) {
		count(p, &p->round_st.dedup, len);
	} else {
		/* Compress straight into the frame: index, kind, clen, data. */
		uint8_t *dst = w->base + w->off + 9;
		uint32_t clen = codec_lz4_encode(p->copy, len, dst, len - 1);

		if (clen > 0) {
			wr_u32(w, idx);
			wr_u8(w, PK_LZ4);
			wr_u32(w, clen);
			w->off += clen;
			count(p, &p->round_st.lz4, len);
			goto sent;
		}
		pe.kind = PK_RAW;
		pe.data = p->copy;
		pe.data_len = len;
		count(p, &p->round_st.raw, len);
	}
	if (msg_page_put(w, &pe) != 0)
		return -1;
sent:
	undo_push(p, (uint32_t)(d - p->dev), idx);
	source_set_sent(d, idx, h);
	if (!zero)
		dedupe_put(p->dd, h, d->desc.id, idx);
	return 0;
}

int
pager_next_frame(struct pager *p, struct wr *w, uint32_t max_payload)
{
	if (p->undo_len + FERRY_MAX_PAGES_PER_FRAME > p->undo_cap)
		return PAGER_WINDOW_FULL;
	while (p->cur_dev < p->ndev) {
		struct source_dev *d = &p->dev[p->cur_dev];
		struct msg_pages ph = { p->next_seq, d->desc.id, p->round, 0 };
		size_t start = w->off, at = SIZE_MAX, limit;
		uint32_t n = 0;

		limit = w->cap - w->off;
		if (limit > (size_t)max_payload + FERRY_FRAME_HDR_LEN)
			limit = (size_t)max_payload + FERRY_FRAME_HDR_LEN;
		limit += w->off;
		while (p->cur_idx < d->nunits && n < FERRY_MAX_PAGES_PER_FRAME) {
			uint32_t idx = (uint32_t)p->cur_idx;
			uint32_t len = dev_unit_len(&d->desc, idx);
			uint8_t h[FERRY_HASH_LEN];
			int zero;

			/* A later round may scan a whole image of unchanged units
			 * in this loop: release as it goes, not per frame. */
			if ((p->cur_idx - p->rel_idx) * d->desc.unit >= PAGER_RELEASE_BYTES) {
				source_release(d, p->rel_idx, p->cur_idx);
				p->rel_idx = p->cur_idx;
			}
			/* A unit the receiver holds is hashed in place first: most of
			 * a rescan is unchanged units, and they need neither a copy
			 * nor a zero test. */
			if (source_sent_valid(d, idx)) {
				page_hash(p->seed, d->map + (uint64_t)idx * d->desc.unit, len, h);
				if (memcmp(d->sent[idx], h, FERRY_HASH_LEN) == 0)
					goto unchanged;
			}
			/* Copy, then hash and encode the copy: the guest may be
			 * writing the live page, and what is sent must be what was
			 * hashed. */
			memcpy(p->copy, d->map + (uint64_t)idx * d->desc.unit, len);
			zero = page_is_zero(p->copy, len);
			if (zero && len == d->desc.unit)
				memcpy(h, p->zero_hash[p->cur_dev], FERRY_HASH_LEN);
			else
				page_hash(p->seed, p->copy, len, h);
			if (source_sent_valid(d, idx) && memcmp(d->sent[idx], h, FERRY_HASH_LEN) == 0) {
unchanged:
				/* In round 1 only units HAVE named can be there already;
				 * a rescan after a cut does not count them twice. */
				if (p->round == 1 && idx >= p->have[p->cur_dev].mark) {
					p->have[p->cur_dev].reused++;
					p->have[p->cur_dev].mark = (uint64_t)idx + 1;
				}
				p->round_st.units_scanned++;
				p->cur_idx++;
				continue;
			}
			if (at == SIZE_MAX) {
				at = msg_pages_begin(w, &ph);
				if (at == SIZE_MAX)
					return -1;
			}
			if (encode_unit(p, d, idx, len, zero, h, w, limit) != 0) {
				if (n == 0) {
					w->off = start;
					return -1;  /* not even one unit fits: caller bug */
				}
				break;
			}
			n++;
			p->round_st.units_scanned++;
			p->cur_idx++;
		}
		if (n > 0) {
			msg_pages_end(w, at, n);
			p->next_seq++;
			p->round_st.frame_bytes += w->off - start;
			return 1;
		}
		source_release(d, p->rel_idx, d->nunits);
		p->cur_dev++;
		p->cur_idx = 0;
		p->rel_idx = 0;
		}
	return 0;
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
