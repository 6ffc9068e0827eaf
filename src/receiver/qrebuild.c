#include "qrebuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec_lz4.h"
#include "pagehash.h"
#include "qstream.h"

struct qrebuild {
	uint64_t seed;
	const struct rsess_sink_ops *ops;
	void *ctx;
	struct qitem_block blocks[FERRY_QBLOCKS_MAX];
	uint32_t nblocks;
	struct digest *dg;
	struct qrebuild_stats st;
	uint8_t page[FERRY_QPAGE_SIZE];
	uint8_t rec[QS_PAGE_RECORD_MAX];
};

struct qrebuild *
qrebuild_new(uint64_t seed, const struct rsess_sink_ops *ops, void *ctx)
{
	struct qrebuild *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	if ((q->dg = digest_new(seed)) == NULL) {
		free(q);
		return NULL;
	}
	q->seed = seed;
	q->ops = ops;
	q->ctx = ctx;
	return q;
}

void
qrebuild_free(struct qrebuild *q)
{
	if (q == NULL)
		return;
	digest_free(q->dg);
	free(q);
}

static int
emit(struct qrebuild *q, const uint8_t *p, size_t n, struct ferr *e)
{
	int rc;

	if ((rc = q->ops->qemu_out(q->ctx, p, n, e)) != 0)
		return rc;
	digest_update(q->dg, p, n);
	q->st.stream_bytes += n;
	return 0;
}

/* The page's 4096 bytes, from its kind. */
static int
page_data(struct qrebuild *q, uint32_t i, const struct qitem *it, const uint8_t **data, struct ferr *e)
{
	uint8_t h[FERRY_HASH_LEN];
	char what[64];
	int rc;

	switch (it->kind) {
	case PK_ZERO:
		memset(q->page, 0, sizeof(q->page));
		q->st.pages_zero++;
		*data = q->page;
		return 0;
	case PK_RAW:
		q->st.pages_raw++;
		*data = it->payload;
		return 0;
	case PK_LZ4:
		snprintf(what, sizeof(what), "QSTREAM: item %u LZ4", i);
		if ((rc = codec_lz4_decode(it->payload, it->payload_len, q->page, FERRY_QPAGE_SIZE, what,
		    e)) != 0)
			return rc;
		q->st.pages_lz4++;
		*data = q->page;
		return 0;
	case PK_REF:
		if ((rc = q->ops->read(q->ctx, it->src_block, it->src_offset, q->page, FERRY_QPAGE_SIZE,
		    e)) != 0)
			return rc;
		page_hash(q->seed, q->page, FERRY_QPAGE_SIZE, h);
		if (memcmp(h, it->hash, FERRY_HASH_LEN) != 0)
			return ferr_set(e, FERR_PROTO_HASH,
			    "QSTREAM: item %u REF: block '%s' offset %llu does not hold that hash", i,
			    q->blocks[it->src_block].id, (unsigned long long)it->src_offset);
		q->st.pages_dedup++;
		*data = q->page;
		return 0;
	default:
		return ferr_set(e, FERR_INTERNAL, "QSTREAM: item %u page kind %u", i, it->kind);
	}
}

static int
apply_page(struct qrebuild *q, uint32_t i, const struct qitem *it, struct ferr *e)
{
	const struct qitem_block *b = &q->blocks[it->block];
	struct qs_page pg;
	struct wr w;
	int rc;

	memset(&pg, 0, sizeof(pg));
	pg.block = it->block;
	pg.offset = it->offset;
	pg.cont = (it->rec & FERRY_QREC_CONT) != 0;
	if (it->rec & FERRY_QREC_DATA) {
		pg.kind = QS_PAGE_DATA;
		if ((rc = page_data(q, i, it, &pg.data, e)) != 0)
			return rc;
		/* The mirror holds what later references may name. */
		if ((rc = q->ops->write(q->ctx, it->block, it->offset, pg.data, FERRY_QPAGE_SIZE, e)) != 0)
			return rc;
		q->st.page_bytes += FERRY_QPAGE_SIZE;
	} else {
		pg.kind = QS_PAGE_ZERO;
		q->st.pages_zero++;
	}
	wr_init(&w, q->rec, sizeof(q->rec));
	if ((rc = qs_page_encode(&w, &pg, b->id, b->id_len, e)) != 0)
		return rc;
	return emit(q, q->rec, w.off, e);
}

int
qrebuild_frame(struct qrebuild *q, const struct msg_qstream *h, struct rd *r, struct ferr *e)
{
	struct qitem it;
	uint32_t i;
	int rc;

	if (h->stream_off != q->st.stream_bytes)
		return ferr_set(e, FERR_PROTO_RANGE, "QSTREAM: stream_off %llu, %llu bytes rebuilt so far",
		    (unsigned long long)h->stream_off, (unsigned long long)q->st.stream_bytes);
	for (i = 0; i < h->count; i++) {
		memset(&it, 0, sizeof(it));
		if ((rc = msg_qitem_next(r, q->blocks, q->nblocks, q->blocks, &it, e)) != 0)
			return rc;
		switch (it.type) {
		case QI_OPAQUE:
			if ((rc = emit(q, it.data, it.len, e)) != 0)
				return rc;
			q->st.opaque_bytes += it.len;
			break;
		case QI_BLOCKS:
			q->nblocks = it.nblocks;
			if ((rc = q->ops->qemu_blocks(q->ctx, q->blocks, q->nblocks, e)) != 0)
				return rc;
			break;
		case QI_PAGE:
			if ((rc = apply_page(q, i, &it, e)) != 0)
				return rc;
			break;
		default:
			return ferr_set(e, FERR_INTERNAL, "QSTREAM: item %u type %u", i, it.type);
		}
	}
	if (rd_end(r) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: %zu bytes after %u items", rd_left(r),
		    h->count);
	return 0;
}

void
qrebuild_digest(struct qrebuild *q, uint8_t out[FERRY_HASH_LEN])
{
	digest_final(q->dg, out);
}

const struct qrebuild_stats *
qrebuild_stats(const struct qrebuild *q)
{
	return &q->st;
}
