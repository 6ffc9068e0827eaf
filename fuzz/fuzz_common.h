/* Helpers shared by the fuzz harnesses (header-only; each harness is one
 * .c file that includes this).
 *
 * - FZ_CHECK: an invariant the code under test must keep.  A violation
 *   prints where and aborts, which libFuzzer (and the replay driver, run
 *   under ASan) report as a crash with a stack.
 * - fz_dup: copy bytes into a heap block of exactly that size, so ASan
 *   catches a read one byte past what a function was given.
 * - fz_check_payload: decode one frame payload with the decoder of its
 *   type (src/common/msg.c, msg_domain.c for DOMAIN and CHECKS,
 *   msg_qemu.c for QSTREAM and QRETURN, msg.c for HAVE) and,
 *   when it decodes, check that encoding the result gives the same bytes
 *   back (the wire format has one encoding per value; ERROR, REFUSE and
 *   CHECKS text with control bytes: same length, stable after one pass).
 *
 * No file-scope mutable state: every harness run is independent, so runs
 * are deterministic and replayable. */
#ifndef FERRY_FUZZ_COMMON_H
#define FERRY_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "msg.h"
#include "msg_qemu.h"
#include "rd.h"
#include "wr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond) \
	do { \
		if (!(cond)) \
			fz_fail(__FILE__, __LINE__, #cond); \
	} while (0)

static inline void
fz_fail(const char *file, int line, const char *what)
{
	fprintf(stderr, "fuzz invariant violated at %s:%d: %s\n", file, line, what);
	fflush(stderr);
	abort();
}

/* Exact-size heap copy (n may be 0: malloc(0) still gives a block that ASan
 * treats as zero bytes long).  Free with free(). */
static inline uint8_t *
fz_dup(const uint8_t *p, size_t n)
{
	uint8_t *q = malloc(n);

	if (q == NULL && n == 0)
		q = malloc(1);
	FZ_CHECK(q != NULL);
	if (n != 0)
		memcpy(q, p, n);
	return q;
}

/* Big-endian readers for harness input layout (not for protocol bytes:
 * those only go through the code under test). */
static inline uint32_t
fz_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t
fz_be64(const uint8_t *p)
{
	return (uint64_t)fz_be32(p) << 32 | fz_be32(p + 4);
}

/* A sum over n bytes: reads every byte, so ASan checks the whole range a
 * decoder pointed at. */
static inline unsigned
fz_touch(const uint8_t *p, size_t n)
{
	unsigned s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		s += p[i];
	return s;
}

/* A well-formed NUL-terminated text field (as every decoder must leave
 * it): at most max bytes, no control bytes. */
static inline void
fz_check_text(const char *t, size_t max)
{
	size_t i, n = strnlen(t, max + 1);

	FZ_CHECK(n <= max);
	for (i = 0; i < n; i++)
		FZ_CHECK((unsigned char)t[i] >= 0x20 && (unsigned char)t[i] != 0x7f);
}

/* Encode with enc into a buffer sized for the original frame (+ slack) and
 * return the encoded length, or SIZE_MAX when the encoder refused. */
struct fz_out {
	uint8_t *p;
	size_t cap;
	size_t len;
};

static inline void
fz_out_init(struct fz_out *o, size_t cap)
{
	o->p = malloc(cap);
	FZ_CHECK(o->p != NULL);
	o->cap = cap;
	o->len = 0;
}

/* Compare an encoder's output with the frame it was decoded from. */
static inline void
fz_same_frame(const struct fz_out *o, uint8_t type, const uint8_t *payload, size_t n)
{
	FZ_CHECK(o->len == FERRY_FRAME_HDR_LEN + n);
	FZ_CHECK(o->p[0] == type && o->p[1] == 0 && o->p[2] == 0 && o->p[3] == 0);
	FZ_CHECK(fz_be32(o->p + 4) == n);
	FZ_CHECK(n == 0 || memcmp(o->p + FERRY_FRAME_HDR_LEN, payload, n) == 0);
}

/* The generic device PAGES payloads are checked against when no manifest
 * says otherwise: 17 units of 4096 bytes, the last one 100 bytes. */
static inline void
fz_default_device(struct dev_desc *d)
{
	memset(d, 0, sizeof(*d));
	d->id = 1;
	d->kind = DK_MEMORY;
	d->unit = 4096;
	d->size = 16 * 4096 + 100;
	memcpy(d->name, "mem", 4);
}

/* Walk a PAGES payload for device d: header, then every entry, then the
 * end of the payload.  Checks what msg_page_next promises of each entry it
 * accepts.  Returns 0 when the whole payload decoded. */
static inline int
fz_walk_pages(const uint8_t *p, size_t n, const struct dev_desc *d, struct ferr *e)
{
	struct msg_pages ph;
	struct page_entry pe;
	struct rd r;
	uint32_t i;
	int rc;

	rd_init(&r, p, n);
	if ((rc = msg_pages_decode(&r, &ph, e)) != 0) {
		FZ_CHECK(rc < 0 && rc != FERR_NEED_MORE);
		return rc;
	}
	FZ_CHECK(ph.seq != 0 && ph.round != 0);
	FZ_CHECK(ph.count >= 1 && ph.count <= FERRY_MAX_PAGES_PER_FRAME);
	FZ_CHECK(rd_left(&r) / FERRY_PAGE_ENTRY_MIN >= ph.count);
	for (i = 0; i < ph.count; i++) {
		size_t before = r.off;

		memset(&pe, 0, sizeof(pe));
		if ((rc = msg_page_next(&r, d, &pe, e)) != 0) {
			FZ_CHECK(rc < 0 && rc != FERR_NEED_MORE);
			return rc;
		}
		FZ_CHECK(r.err == 0 && r.off > before && r.off <= n);
		FZ_CHECK((uint64_t)pe.index < dev_units(d));
		FZ_CHECK(pe.len == dev_unit_len(d, pe.index));
		FZ_CHECK(pe.len >= 1 && pe.len <= d->unit);
		switch (pe.kind) {
		case PK_ZERO:
		case PK_REF:
			FZ_CHECK(pe.data == NULL && pe.data_len == 0);
			break;
		case PK_LZ4:
			FZ_CHECK(pe.data_len >= 1 && pe.data_len < pe.len);
			/* fallthrough */
		case PK_RAW:
			if (pe.kind == PK_RAW)
				FZ_CHECK(pe.data_len == pe.len);
			FZ_CHECK(pe.data >= p && pe.data_len <= n && (size_t)(pe.data - p) <= n - pe.data_len);
			(void)fz_touch(pe.data, pe.data_len);
			break;
		default:
			FZ_CHECK(!"msg_page_next accepted an unknown kind");
		}
	}
	if (rd_end(&r) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "PAGES: %zu bytes after %u entries", rd_left(&r),
		    ph.count);
	return 0;
}

/* Walk a QSTREAM payload as the receiver consumes it (PROTOCOL.md 4.17):
 * the header, count items against the block table tab / *nblocks (room
 * for FERRY_QBLOCKS_MAX; a BLOCKS item fills it and sets *nblocks), then
 * the end of the payload.  Checks what msg_qitem_next promises of each
 * item it accepts (written again here from 4.17, not with the decoder's
 * code), puts each item again with the msg_qitem_put_* functions and,
 * when the whole payload decoded, compares that frame with the input: one
 * encoding per value.  Returns 0 when the whole payload decoded. */
static inline int
fz_walk_qstream(const uint8_t *p, size_t n, struct qitem_block *tab, uint32_t *nblocks,
    struct ferr *e)
{
	struct msg_qstream h;
	struct qitem it;
	struct fz_out o;
	struct rd r;
	struct wr w;
	size_t at;
	uint32_t i, j;
	int rc;

	rd_init(&r, p, n);
	if ((rc = msg_qstream_decode(&r, &h, e)) != 0) {
		FZ_CHECK(rc < 0 && rc != FERR_NEED_MORE);
		return rc;
	}
	FZ_CHECK(h.seq != 0 && h.count >= 1 && h.count <= FERRY_MAX_PAGES_PER_FRAME);
	FZ_CHECK(r.off == 20 && rd_left(&r) / FERRY_QITEM_MIN >= h.count);
	fz_out_init(&o, FERRY_FRAME_HDR_LEN + n + 64);
	wr_init(&w, o.p, o.cap);
	at = msg_qstream_begin(&w, &h);
	FZ_CHECK(at == 0);
	for (i = 0; i < h.count; i++) {
		size_t before = r.off, wbefore = w.off;
		uint32_t had = *nblocks;

		if ((rc = msg_qitem_next(&r, tab, *nblocks, tab, &it, e)) != 0) {
			FZ_CHECK(rc < 0 && rc != FERR_NEED_MORE);
			if (rc == FERR_PROTO_STATE)
				FZ_CHECK(had != 0 && *nblocks == had);
			goto out;
		}
		FZ_CHECK(r.err == 0 && r.off > before && r.off <= n);
		switch (it.type) {
		case QI_OPAQUE:
			FZ_CHECK(it.len >= 1 && it.data == p + before + 5 && r.off - before == 5 + (size_t)it.len);
			(void)fz_touch(it.data, it.len);
			FZ_CHECK(msg_qitem_put_opaque(&w, it.data, it.len) == 0);
			break;
		case QI_BLOCKS:
			FZ_CHECK(had == 0 && it.len == 0);
			FZ_CHECK(it.nblocks >= 1 && it.nblocks <= FERRY_QBLOCKS_MAX);
			for (j = 0; j < it.nblocks; j++) {
				uint32_t k;

				FZ_CHECK(tab[j].id_len >= 1 && strnlen(tab[j].id, sizeof(tab[j].id)) == tab[j].id_len);
				FZ_CHECK(tab[j].len != 0 && tab[j].len % FERRY_QPAGE_SIZE == 0 &&
				    tab[j].len <= FERRY_DEVICE_SIZE_MAX);
				for (k = 0; k < j; k++)
					FZ_CHECK(strcmp(tab[j].id, tab[k].id) != 0);
			}
			*nblocks = it.nblocks;
			FZ_CHECK(msg_qitem_put_blocks(&w, tab, it.nblocks) == 0);
			break;
		case QI_PAGE: {
			const struct qitem_block *b;

			FZ_CHECK(had >= 1 && it.block < had && (it.rec & ~FERRY_QREC_KNOWN) == 0);
			b = &tab[it.block];
			FZ_CHECK(it.offset % FERRY_QPAGE_SIZE == 0 && it.offset < b->len);
			FZ_CHECK(it.kind >= PK_ZERO && it.kind <= PK_RAW);
			FZ_CHECK((it.rec & FERRY_QREC_DATA) != 0 || it.kind == PK_ZERO);
			FZ_CHECK(it.len == 8 + ((it.rec & FERRY_QREC_CONT) ? 0 : 1 + (uint32_t)b->id_len) +
			    ((it.rec & FERRY_QREC_DATA) ? FERRY_QPAGE_SIZE : 1));
			if (it.kind == PK_ZERO || it.kind == PK_REF)
				FZ_CHECK(it.payload == NULL && it.payload_len == 0);
			if (it.kind == PK_REF)
				FZ_CHECK(it.src_block < had && it.src_offset % FERRY_QPAGE_SIZE == 0 &&
				    it.src_offset < tab[it.src_block].len);
			if (it.kind == PK_LZ4)
				FZ_CHECK(it.payload_len >= 1 && it.payload_len < FERRY_QPAGE_SIZE);
			if (it.kind == PK_RAW)
				FZ_CHECK(it.payload_len == FERRY_QPAGE_SIZE);
			if (it.kind == PK_LZ4 || it.kind == PK_RAW) {
				FZ_CHECK(it.payload >= p && (size_t)(it.payload - p) <= n - it.payload_len);
				FZ_CHECK(it.payload + it.payload_len == p + r.off);
				(void)fz_touch(it.payload, it.payload_len);
			}
			FZ_CHECK(r.off - before == qitem_page_size(it.kind, it.payload_len));
			FZ_CHECK(msg_qitem_put_page(&w, &it) == 0);
			break;
		}
		default:
			FZ_CHECK(!"msg_qitem_next accepted an unknown item type");
		}
		/* Each item is put back in as many bytes as it took. */
		FZ_CHECK(w.off - wbefore == r.off - before);
	}
	if (rd_end(&r) != 0) {
		rc = ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: %zu bytes after %u items", rd_left(&r),
		    h.count);
		goto out;
	}
	msg_qstream_end(&w, at, h.count);
	FZ_CHECK(w.err == 0);
	o.len = w.off;
	fz_same_frame(&o, FT_QSTREAM, p, n);
	rc = 0;
out:
	free(o.p);
	return rc;
}

/* QRETURN (4.18): decode, check, encode again to the same frame. */
static inline int
fz_check_qreturn(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_qreturn m;
	struct fz_out o;
	struct wr w;
	int rc;

	if ((rc = msg_qreturn_decode(p, n, &m, e)) != 0) {
		FZ_CHECK(rc < 0 && rc != FERR_NEED_MORE);
		return rc;
	}
	FZ_CHECK(n > 8 && m.len == n - 8 && m.data == p + 8);
	FZ_CHECK(m.len <= FERRY_QRETURN_MAX && m.offset <= FERRY_QRETURN_MAX - m.len);
	(void)fz_touch(m.data, m.len);
	fz_out_init(&o, FERRY_FRAME_HDR_LEN + n + 64);
	wr_init(&w, o.p, o.cap);
	FZ_CHECK(msg_qreturn_encode(&w, &m) == 0);
	o.len = w.off;
	fz_same_frame(&o, FT_QRETURN, p, n);
	free(o.p);
	return 0;
}

/* HAVE (4.19): decode, check, encode again to the same frame. */
static inline int
fz_check_have(const uint8_t *p, size_t n, struct ferr *e)
{
	struct msg_have m;
	struct fz_out o;
	struct wr w;
	int rc;

	if ((rc = msg_have_decode(p, n, &m, e)) != 0) {
		FZ_CHECK(rc < 0 && rc != FERR_NEED_MORE);
		return rc;
	}
	FZ_CHECK(m.device != 0 && m.count >= 1 && m.count <= UINT32_MAX - m.first);
	FZ_CHECK(n == FERRY_HAVE_HDR_LEN + (size_t)m.count * FERRY_HASH_LEN);
	FZ_CHECK(m.hashes == p + FERRY_HAVE_HDR_LEN);
	(void)fz_touch(m.hashes, (size_t)m.count * FERRY_HASH_LEN);
	fz_out_init(&o, FERRY_FRAME_HDR_LEN + n + 64);
	wr_init(&w, o.p, o.cap);
	FZ_CHECK(msg_have_encode(&w, &m) == 0);
	o.len = w.off;
	fz_same_frame(&o, FT_HAVE, p, n);
	free(o.p);
	return 0;
}

/* DOMAIN and CHECKS strings as their decoder must leave them (written
 * again here from PROTOCOL.md 4.15/4.16, not with the decoder's tables):
 * NUL-terminated, within [min, max] bytes, every byte in the field's set. */
enum fz_set { FZ_HOST, FZ_UUID, FZ_NAME };

static inline void
fz_check_token(const char *t, size_t min, size_t max, enum fz_set set)
{
	size_t i, n = strnlen(t, max + 1);

	FZ_CHECK(n >= min && n <= max);
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];

		if (set == FZ_HOST)
			FZ_CHECK(c >= 0x21 && c <= 0x7e);
		else if (set == FZ_UUID)
			FZ_CHECK((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-');
		else
			FZ_CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-');
	}
}

/* CHECKS text: at most max bytes, no control byte left (bytes >= 0x80 stay). */
static inline void
fz_check_row_text(const char *t, size_t max)
{
	size_t i, n = strnlen(t, max + 1);

	FZ_CHECK(n <= max);
	for (i = 0; i < n; i++)
		FZ_CHECK((unsigned char)t[i] >= 0x20 && (unsigned char)t[i] != 0x7f);
}

static inline int
fz_checks_equal(const struct msg_checks *a, const struct msg_checks *b)
{
	uint32_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++) {
		const struct check_row *x = &a->row[i], *y = &b->row[i];

		if (x->status != y->status || x->code != y->code || strcmp(x->name, y->name) != 0 ||
		    strcmp(x->src, y->src) != 0 || strcmp(x->dst, y->dst) != 0 ||
		    strcmp(x->why, y->why) != 0)
			return 0;
	}
	return 1;
}

/* Decode a payload of a frame of `type` (already length-checked by
 * frame_decode_hdr) and check the round trip.  Returns the decoder's
 * result. */
static inline int
fz_check_payload(uint8_t type, const uint8_t *p, size_t n, struct ferr *e)
{
	struct fz_out o, o2;
	struct wr w;
	int rc = FERR_INTERNAL;

	fz_out_init(&o, FERRY_FRAME_HDR_LEN + n + 64);
	fz_out_init(&o2, FERRY_FRAME_HDR_LEN + n + 64);
	wr_init(&w, o.p, o.cap);
	switch (type) {
	case FT_HELLO: {
		struct msg_hello m;

		if ((rc = msg_hello_decode(p, n, &m, e)) != 0)
			break;
		FZ_CHECK(m.version == FERRY_VERSION);
		FZ_CHECK(m.max_frame >= FERRY_MAX_FRAME_MIN && m.max_frame <= FERRY_MAX_FRAME_LIMIT);
		FZ_CHECK(msg_hello_encode(&w, &m) == 0);
		o.len = w.off;
		fz_same_frame(&o, type, p, n);
		break;
	}
	case FT_WELCOME: {
		struct msg_welcome m;

		if ((rc = msg_welcome_decode(p, n, &m, e)) != 0)
			break;
		FZ_CHECK(m.version == FERRY_VERSION);
		FZ_CHECK(m.max_frame >= FERRY_MAX_FRAME_MIN && m.max_frame <= FERRY_MAX_FRAME_LIMIT);
		FZ_CHECK(msg_welcome_encode(&w, &m) == 0);
		o.len = w.off;
		fz_same_frame(&o, type, p, n);
		break;
	}
	case FT_MANIFEST: {
		struct msg_manifest *m = calloc(1, sizeof(*m));

		FZ_CHECK(m != NULL);
		if ((rc = msg_manifest_decode(p, n, m, e)) == 0) {
			FZ_CHECK(m->ndev >= 1 && m->ndev <= FERRY_MAX_DEVICES);
			FZ_CHECK(msg_manifest_encode(&w, m) == 0);
			o.len = w.off;
			fz_same_frame(&o, type, p, n);
		}
		free(m);
		break;
	}
	case FT_ACCEPT: {
		struct msg_accept m;

		if ((rc = msg_accept_decode(p, n, &m, e)) != 0)
			break;
		FZ_CHECK(m.next_seq != 0);
		FZ_CHECK(msg_accept_encode(&w, &m) == 0);
		o.len = w.off;
		fz_same_frame(&o, type, p, n);
		break;
	}
	case FT_REFUSE:
	case FT_ERROR: {
		struct msg_text m, m2;
		struct wr w2;

		memset(&m, 0, sizeof(m));
		rc = type == FT_REFUSE ? msg_refuse_decode(p, n, &m, e) : msg_error_decode(p, n, &m, e);
		if (rc != 0)
			break;
		FZ_CHECK(m.code != 0);
		fz_check_text(m.text, FERRY_TEXT_MAX);
		FZ_CHECK((type == FT_REFUSE ? msg_refuse_encode(&w, &m) : msg_error_encode(&w, &m)) == 0);
		o.len = w.off;
		/* Control bytes became '?': same length, and stable from here. */
		FZ_CHECK(o.len == FERRY_FRAME_HDR_LEN + n);
		memset(&m2, 0, sizeof(m2));
		FZ_CHECK((type == FT_REFUSE ? msg_refuse_decode(o.p + 8, o.len - 8, &m2, e)
		    : msg_error_decode(o.p + 8, o.len - 8, &m2, e)) == 0);
		FZ_CHECK(m2.code == m.code && m2.device == m.device && strcmp(m2.text, m.text) == 0);
		wr_init(&w2, o2.p, o2.cap);
		FZ_CHECK((type == FT_REFUSE ? msg_refuse_encode(&w2, &m2) : msg_error_encode(&w2, &m2)) == 0);
		FZ_CHECK(w2.off == o.len && memcmp(o2.p, o.p, o.len) == 0);
		break;
	}
	case FT_PAGES: {
		struct dev_desc d;

		fz_default_device(&d);
		rc = fz_walk_pages(p, n, &d, e);
		break;
	}
	case FT_ACK:
	case FT_COMMITTED:
	case FT_PING:
	case FT_PONG: {
		struct msg_seq m;

		if ((rc = msg_seq_decode(type, p, n, &m, e)) != 0)
			break;
		FZ_CHECK(msg_seq_encode(&w, type, &m) == 0);
		o.len = w.off;
		fz_same_frame(&o, type, p, n);
		break;
	}
	case FT_STATE: {
		struct msg_state m;

		if ((rc = msg_state_decode(p, n, &m, e)) != 0)
			break;
		FZ_CHECK(m.len >= 1 && m.len == n - 8 && m.data == p + 8);
		FZ_CHECK(m.offset <= FERRY_STATE_SIZE_MAX && m.len <= FERRY_STATE_SIZE_MAX - m.offset);
		FZ_CHECK(msg_state_encode(&w, &m) == 0);
		o.len = w.off;
		fz_same_frame(&o, type, p, n);
		break;
	}
	case FT_COMMIT: {
		struct msg_commit m;

		if ((rc = msg_commit_decode(p, n, &m, e)) != 0)
			break;
		FZ_CHECK(m.ndev >= 1 && m.ndev <= FERRY_MAX_DEVICES);
		FZ_CHECK(msg_commit_encode(&w, &m) == 0);
		o.len = w.off;
		fz_same_frame(&o, type, p, n);
		break;
	}
	case FT_RESUME: {
		struct msg_resume m;

		if ((rc = msg_resume_decode(p, n, &m, e)) != 0)
			break;
		FZ_CHECK(m.version == FERRY_VERSION);
		FZ_CHECK(msg_resume_encode(&w, &m) == 0);
		o.len = w.off;
		fz_same_frame(&o, type, p, n);
		break;
	}
	case FT_RESUMED: {
		struct msg_resumed m;

		if ((rc = msg_resumed_decode(p, n, &m, e)) != 0)
			break;
		FZ_CHECK(m.status >= RSM_RECEIVING && m.status <= RSM_FAILED && m.next_seq != 0);
		FZ_CHECK(msg_resumed_encode(&w, &m) == 0);
		o.len = w.off;
		fz_same_frame(&o, type, p, n);
		break;
	}
	case FT_DOMAIN: {
		struct msg_domain *m = calloc(1, sizeof(*m));
		uint32_t i, j;

		FZ_CHECK(m != NULL);
		if ((rc = msg_domain_decode(p, n, m, e)) == 0) {
			FZ_CHECK((m->flags & ~FERRY_DOMAIN_CHECK_ONLY) == 0);
			fz_check_token(m->arch, 1, FERRY_HOST_TOKEN_MAX, FZ_HOST);
			fz_check_token(m->model, 0, FERRY_HOST_TOKEN_MAX, FZ_HOST);
			fz_check_token(m->uuid, 0, FERRY_UUID_LEN, FZ_UUID);
			FZ_CHECK(m->uuid[0] == '\0' || strlen(m->uuid) == FERRY_UUID_LEN);
			FZ_CHECK(m->nwaive <= FERRY_WAIVE_MAX);
			for (i = 0; i < m->nwaive; i++) {
				fz_check_token(m->waive[i], 1, FERRY_CHECK_NAME_MAX, FZ_NAME);
				for (j = 0; j < i; j++)
					FZ_CHECK(strcmp(m->waive[i], m->waive[j]) != 0);
			}
			FZ_CHECK(m->xml_len >= 1 && m->xml_len <= FERRY_DOMAIN_XML_MAX);
			/* The XML is the end of the payload, pointed at in place. */
			FZ_CHECK(m->xml >= p && m->xml_len <= n && m->xml == p + n - m->xml_len);
			(void)fz_touch(m->xml, m->xml_len);
			FZ_CHECK(msg_domain_encode(&w, m) == 0);
			o.len = w.off;
			fz_same_frame(&o, type, p, n);
		}
		free(m);
		break;
	}
	case FT_CHECKS: {
		struct msg_checks *m = calloc(1, sizeof(*m)), *m2 = calloc(1, sizeof(*m2));
		struct wr w2;
		uint32_t i;

		FZ_CHECK(m != NULL && m2 != NULL);
		if ((rc = msg_checks_decode(p, n, m, e)) == 0) {
			FZ_CHECK(m->n >= 1 && m->n <= FERRY_CHECKS_MAX);
			for (i = 0; i < m->n; i++) {
				const struct check_row *c = &m->row[i];

				FZ_CHECK(c->status >= CS_PASS && c->status <= CS_WAIVED);
				FZ_CHECK(c->status == CS_PASS || c->code != 0);
				fz_check_token(c->name, 1, FERRY_CHECK_NAME_MAX, FZ_NAME);
				fz_check_row_text(c->src, FERRY_CHECK_VALUE_MAX);
				fz_check_row_text(c->dst, FERRY_CHECK_VALUE_MAX);
				fz_check_row_text(c->why, FERRY_CHECK_WHY_MAX);
			}
			FZ_CHECK(msg_checks_encode(&w, m) == 0);
			o.len = w.off;
			/* Control bytes became '?': same length, and stable from here;
			 * without control bytes, the same bytes. */
			FZ_CHECK(o.len == FERRY_FRAME_HDR_LEN + n);
			FZ_CHECK(msg_checks_decode(o.p + 8, o.len - 8, m2, e) == 0);
			FZ_CHECK(fz_checks_equal(m, m2));
			wr_init(&w2, o2.p, o2.cap);
			FZ_CHECK(msg_checks_encode(&w2, m2) == 0);
			FZ_CHECK(w2.off == o.len && memcmp(o2.p, o.p, o.len) == 0);
		}
		free(m);
		free(m2);
		break;
	}
	case FT_QSTREAM: {
		/* A frame on its own: no block table yet. */
		struct qitem_block *tab = calloc(FERRY_QBLOCKS_MAX, sizeof(*tab));
		uint32_t nb = 0;

		FZ_CHECK(tab != NULL);
		rc = fz_walk_qstream(p, n, tab, &nb, e);
		free(tab);
		break;
	}
	case FT_QRETURN:
		rc = fz_check_qreturn(p, n, e);
		break;
	case FT_HAVE:
		rc = fz_check_have(p, n, e);
		break;
	default:
		FZ_CHECK(!"frame_decode_hdr accepted an unknown type");
	}
	/* A decoder either succeeds or returns a real error with a message. */
	FZ_CHECK(rc == 0 || (rc < 0 && rc != FERR_NEED_MORE));
	free(o.p);
	free(o2.p);
	return rc;
}

#endif
