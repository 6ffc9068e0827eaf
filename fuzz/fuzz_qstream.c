/* Fuzz target: the QEMU migration stream parser (src/common/qstream.c:
 * qstream_feed, qstream_finish, qs_page_encode).
 *
 * Input: the stream bytes.  size % 3 picks what the harness puts before
 * them, so short inputs reach deep states: 0 nothing (the input is the
 * whole stream); 1 a valid start (file header, configuration, ram setup
 * with blocks "pc.ram" 1 MiB and "b" 8 KiB, EOS, footer, a PART header);
 * 2 that start, a ZERO page, the header of a CONTINUE data page and the
 * first FZQ_PAGE_HEAD bytes of its data, so the input begins inside page
 * data (a whole page fits libFuzzer's default 4096-byte inputs).  Seeds:
 * fuzz/make_qstream_seeds.py.  The bytes are fed in chunks whose
 * sizes come from the bytes themselves (an odd byte at the cut: 1 + its
 * value % 64; an even one: 4096), then qstream_finish.
 *
 * Checked: events are contiguous from offset 0; OPAQUE bytes and PAGE
 * records re-encoded with qs_page_encode rebuild the fed stream exactly;
 * each page lies inside a listed block, page aligned, with its record
 * length; BLOCKS at most once, before any page, with ids unique, 1..255
 * bytes, NUL-terminated, lengths adding up; at most one TAIL or FALLBACK,
 * with a reason, after which only OPAQUE and END come; END only from
 * finish, only outside PARSE mode, last; errors only PROTO_LENGTH at
 * finish in PARSE mode, with a message; stats agree with the events. */
#include "fuzz_common.h"
#include "qstream.h"

#define FZQ_PAGE_HEAD 1024u   /* page data bytes in the variant 2 prefix */

struct fz_q {
	uint8_t *out;
	size_t len, cap;
	int blocks, switched, ended, pages;
	uint64_t data_pages, zero_pages, opaque;
};

static void
fzq_put(struct fz_q *c, const void *p, size_t n)
{
	if (c->len + n > c->cap) {
		c->cap = (c->len + n) * 2;
		c->out = realloc(c->out, c->cap);
		FZ_CHECK(c->out != NULL);
	}
	memcpy(c->out + c->len, p, n);
	c->len += n;
}

static void
check_blocks(const struct qs_event *ev)
{
	uint32_t i, j;

	FZ_CHECK(ev->nblocks >= 1 && ev->nblocks <= QS_BLOCKS_MAX && ev->blocks != NULL);
	for (i = 0; i < ev->nblocks; i++) {
		const struct qs_block *b = &ev->blocks[i];

		FZ_CHECK(b->id_len >= 1 && strlen(b->id) == b->id_len);
		FZ_CHECK(b->len != 0 && b->len % QS_PAGE_SIZE == 0);
		for (j = 0; j < i; j++)
			FZ_CHECK(strcmp(ev->blocks[j].id, b->id) != 0);
	}
}

static int
on_event(void *ctx, const struct qs_event *ev, struct ferr *e)
{
	struct fz_q *c = ctx;
	uint8_t rec[QS_PAGE_RECORD_MAX];
	const struct qs_block *b;
	struct wr w;

	FZ_CHECK(!c->ended);
	FZ_CHECK(ev->off == c->len);
	switch (ev->kind) {
	case QS_EV_OPAQUE:
		FZ_CHECK(ev->len >= 1 && ev->data != NULL);
		fzq_put(c, ev->data, ev->len);
		c->opaque += ev->len;
		break;
	case QS_EV_BLOCKS:
		FZ_CHECK(!c->switched && c->blocks == 0 && c->pages == 0);
		c->blocks++;
		check_blocks(ev);
		break;
	case QS_EV_PAGE:
		FZ_CHECK(!c->switched && c->blocks == 1);
		FZ_CHECK(ev->page.block < ev->nblocks);
		b = &ev->blocks[ev->page.block];
		FZ_CHECK(ev->page.offset % QS_PAGE_SIZE == 0 && ev->page.offset < b->len);
		FZ_CHECK(ev->page.kind == QS_PAGE_DATA || ev->page.kind == QS_PAGE_ZERO);
		FZ_CHECK((ev->page.data != NULL) == (ev->page.kind == QS_PAGE_DATA));
		FZ_CHECK(qs_page_record_len(&ev->page, b->id_len) == ev->len);
		wr_init(&w, rec, sizeof(rec));
		FZ_CHECK(qs_page_encode(&w, &ev->page, b->id, b->id_len, e) == 0);
		FZ_CHECK(w.off == ev->len);
		fzq_put(c, rec, w.off);
		c->pages++;
		if (ev->page.kind == QS_PAGE_DATA)
			c->data_pages++;
		else
			c->zero_pages++;
		break;
	case QS_EV_TAIL:
	case QS_EV_FALLBACK:
		FZ_CHECK(!c->switched && ev->reason != NULL && ev->reason[0] != '\0');
		c->switched = ev->kind;
		break;
	case QS_EV_END:
		FZ_CHECK(c->switched);
		c->ended = 1;
		break;
	default:
		FZ_CHECK(!"unknown event kind");
	}
	return 0;
}

static void
put_be(struct fz_q *s, uint64_t v, int n)
{
	uint8_t b[8];
	int i;

	for (i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	fzq_put(s, b, (size_t)n);
}

static void
put_id(struct fz_q *s, const char *id)
{
	put_be(s, strlen(id), 1);
	fzq_put(s, id, strlen(id));
}

/* The harness's prefix for variants 1 and 2 (see the header). */
static void
build_prefix(struct fz_q *s, int variant)
{
	unsigned i;

	put_be(s, QS_FILE_MAGIC, 4);
	put_be(s, QS_FILE_VERSION, 4);
	put_be(s, QS_VM_CONFIGURATION, 1);
	put_be(s, 10, 4);
	fzq_put(s, "pc-q35-7.2", 10);
	put_be(s, QS_VM_SECTION_START, 1);
	put_be(s, 2, 4);
	put_id(s, "ram");
	put_be(s, 0, 4);
	put_be(s, QS_RAM_VERSION, 4);
	put_be(s, (1u << 20) + 8192 + QS_RAM_MEM_SIZE, 8);
	put_id(s, "pc.ram");
	put_be(s, 1u << 20, 8);
	put_id(s, "b");
	put_be(s, 8192, 8);
	put_be(s, QS_RAM_EOS, 8);
	put_be(s, QS_VM_SECTION_FOOTER, 1);
	put_be(s, 2, 4);
	put_be(s, QS_VM_SECTION_PART, 1);
	put_be(s, 2, 4);
	if (variant == 2) {
		put_be(s, QS_RAM_ZERO, 8);
		put_id(s, "pc.ram");
		put_be(s, 0, 1);
		put_be(s, 0x1000 | QS_RAM_PAGE | QS_RAM_CONTINUE, 8);
		for (i = 0; i < FZQ_PAGE_HEAD; i++)
			put_be(s, i, 1);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_q c, in;
	struct qstream *q;
	struct qs_stats st;
	struct ferr e = { 0 };
	size_t off = 0, k;
	uint8_t *chunk;
	int rc;

	memset(&c, 0, sizeof(c));
	memset(&in, 0, sizeof(in));
	if (size % 3 != 0)
		build_prefix(&in, (int)(size % 3));
	if (size != 0)
		fzq_put(&in, data, size);
	q = qstream_new(on_event, &c);
	FZ_CHECK(q != NULL);
	while (off < in.len) {
		uint8_t b = in.out[off];

		k = (b & 1) ? 1 + (size_t)(b % 64) : 4096;
		if (k > in.len - off)
			k = in.len - off;
		/* Each chunk in its own exact-size block, for ASan. */
		chunk = fz_dup(in.out + off, k);
		rc = qstream_feed(q, chunk, k, &e);
		free(chunk);
		FZ_CHECK(rc == 0);
		off += k;
	}
	rc = qstream_finish(q, &e);
	qstream_stats(q, &st);
	FZ_CHECK(c.len == in.len && (in.len == 0 || memcmp(c.out, in.out, in.len) == 0));
	FZ_CHECK(st.bytes == in.len && st.opaque_bytes + st.page_record_bytes == in.len);
	FZ_CHECK(st.data_pages == c.data_pages && st.zero_pages == c.zero_pages);
	if (st.mode == QS_MODE_PARSE) {
		FZ_CHECK(rc == FERR_PROTO_LENGTH && e.code == rc && e.msg[0] != '\0' && !c.ended);
		FZ_CHECK(!c.switched);
	} else {
		FZ_CHECK(rc == 0 && c.ended && c.switched);
		FZ_CHECK((st.mode == QS_MODE_TAIL) == (c.switched == QS_EV_TAIL));
		FZ_CHECK(st.reason[0] != '\0' && st.switched_at <= in.len);
	}
	FZ_CHECK(qstream_feed(q, data, 0, &e) == FERR_PROTO_STATE);
	qstream_free(q);
	free(c.out);
	free(in.out);
	return 0;
}
