/* The QEMU migration stream parser (src/common/qstream.c).
 *
 * Synthetic streams built record by record: every RAM flag, configuration
 * subsections, commands, the device-state tail; each refused or not
 * understood record falls back at its own offset with a reason; a stream
 * cut at every offset; every chunking.  Whatever happens, the events
 * rebuild the input byte for byte (OPAQUE verbatim, PAGE through
 * qs_page_encode).
 *
 * With arguments it checks a real stream instead (tests/e2e_qemu_stream.sh):
 *   test_qstream --stream FILE [--guest] [--out REBUILT]
 * parses FILE in pseudo-random chunks, rebuilds it, applies the pages to
 * per-block images and, with --guest, checks the test guest's pattern
 * (tests/qemu-guest/kernel.c) in pc.ram; --out writes the rebuilt stream
 * (for cmp); prints TAP. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "qstream.h"
#include "qemu-guest/pattern.h"
#include "wr.h"

/* ---- a growable byte buffer ---- */

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void
buf_put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;

		while (cap < b->len + n)
			cap *= 2;
		b->p = realloc(b->p, cap);
		if (b->p == NULL)
			abort();
		b->cap = cap;
	}
	if (n != 0)
		memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void
put_u8(struct buf *b, uint8_t v)
{
	buf_put(b, &v, 1);
}

static void
put_u16(struct buf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	buf_put(b, x, 2);
}

static void
put_u32(struct buf *b, uint32_t v)
{
	uint8_t x[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	buf_put(b, x, 4);
}

static void
put_u64(struct buf *b, uint64_t v)
{
	put_u32(b, (uint32_t)(v >> 32));
	put_u32(b, (uint32_t)v);
}

static void
put_str8(struct buf *b, const char *s)
{
	put_u8(b, (uint8_t)strlen(s));
	buf_put(b, s, strlen(s));
}

/* ---- stream records, as QEMU 7.2 writes them ---- */

static void
rec_header(struct buf *b)
{
	put_u32(b, QS_FILE_MAGIC);
	put_u32(b, QS_FILE_VERSION);
}

static void
rec_config(struct buf *b, const char *machine)
{
	put_u8(b, QS_VM_CONFIGURATION);
	put_u32(b, (uint32_t)strlen(machine));
	buf_put(b, machine, strlen(machine));
}

static void
rec_subsection(struct buf *b, const char *name)
{
	put_u8(b, QS_VM_SUBSECTION);
	put_str8(b, name);
	put_u32(b, 1);
}

static void
rec_start(struct buf *b, uint8_t type, uint32_t sid, const char *id, uint32_t inst, uint32_t ver)
{
	put_u8(b, type);
	put_u32(b, sid);
	put_str8(b, id);
	put_u32(b, inst);
	put_u32(b, ver);
}

static void
rec_part(struct buf *b, uint8_t type, uint32_t sid)
{
	put_u8(b, type);
	put_u32(b, sid);
}

static void
rec_footer(struct buf *b, uint32_t sid)
{
	put_u8(b, QS_VM_SECTION_FOOTER);
	put_u32(b, sid);
}

static void
rec_eos(struct buf *b)
{
	put_u64(b, QS_RAM_EOS);
}

/* A page record: id NULL means CONTINUE. */
static void
rec_page(struct buf *b, uint64_t off, const char *id, uint8_t seed)
{
	uint8_t page[QS_PAGE_SIZE];
	size_t i;

	put_u64(b, off | QS_RAM_PAGE | (id == NULL ? QS_RAM_CONTINUE : 0));
	if (id != NULL)
		put_str8(b, id);
	for (i = 0; i < sizeof(page); i++)
		page[i] = (uint8_t)(seed + i * 7 + (i >> 8));
	buf_put(b, page, sizeof(page));
}

static void
rec_zero(struct buf *b, uint64_t off, const char *id, uint8_t fill)
{
	put_u64(b, off | QS_RAM_ZERO | (id == NULL ? QS_RAM_CONTINUE : 0));
	if (id != NULL)
		put_str8(b, id);
	put_u8(b, fill);
}

/* START of ram with the block list pc.ram (64 KiB) + pc.bios (8 KiB), EOS,
 * footer: what QEMU's ram setup sends. */
static void
rec_ram_setup(struct buf *b, uint32_t sid)
{
	rec_start(b, QS_VM_SECTION_START, sid, "ram", 0, QS_RAM_VERSION);
	put_u64(b, (64 + 8) * 1024 | QS_RAM_MEM_SIZE);
	put_str8(b, "pc.ram");
	put_u64(b, 64 * 1024);
	put_str8(b, "pc.bios");
	put_u64(b, 8 * 1024);
	rec_eos(b);
	rec_footer(b, sid);
}

/* Device state and the end: a FULL section, EOF, a description. */
static void
rec_device_tail(struct buf *b)
{
	static const char desc[] = "{\"page_size\": 4096, \"devices\": []}";

	rec_start(b, QS_VM_SECTION_FULL, 3, "timer", 0, 2);
	put_u64(b, 0x0123456789abcdefull);
	rec_footer(b, 3);
	put_u8(b, QS_VM_EOF);
	put_u8(b, QS_VM_VMDESCRIPTION);
	put_u32(b, (uint32_t)strlen(desc));
	buf_put(b, desc, strlen(desc));
}

/* A stream with every understood record: 4 data pages, 3 zero pages. */
static void
build_full_stream(struct buf *b)
{
	rec_header(b);
	rec_config(b, "pc-q35-7.2");
	put_u8(b, QS_VM_COMMAND);
	put_u16(b, QS_CMD_OPEN_RETURN_PATH);
	put_u16(b, 0);
	rec_ram_setup(b, 2);
	rec_part(b, QS_VM_SECTION_PART, 2);
	rec_page(b, 0, "pc.ram", 1);
	rec_page(b, 0x1000, NULL, 2);
	rec_zero(b, 0x2000, NULL, 0);
	rec_zero(b, 0x1000, "pc.bios", 0);
	rec_page(b, 0xf000, "pc.ram", 3);
	rec_eos(b);
	rec_footer(b, 2);
	put_u8(b, QS_VM_COMMAND);
	put_u16(b, QS_CMD_PING);
	put_u16(b, 4);
	put_u32(b, 7);
	rec_part(b, QS_VM_SECTION_END, 2);
	rec_zero(b, 0x3000, NULL, 0);
	rec_page(b, 0x1000, "pc.bios", 4);
	rec_eos(b);
	rec_footer(b, 2);
	rec_device_tail(b);
}

/* ---- the collector: rebuilds the stream from the events ---- */

struct collect {
	struct buf out;
	uint32_t data_pages, zero_pages, blocks_events, tails, fallbacks, ends;
	uint32_t nblocks;
	uint64_t mode_at;
	char reason[200];
	int fail_at;             /* return an error at this event (1-based), 0 never */
	int events;
	int after_end;           /* events after END */
};

static int
collect_event(void *ctx, const struct qs_event *ev, struct ferr *e)
{
	struct collect *c = ctx;
	uint8_t rec[QS_PAGE_RECORD_MAX];
	struct wr w;
	const struct qs_block *b;

	c->events++;
	if (c->ends)
		c->after_end++;
	if (c->fail_at != 0 && c->events == c->fail_at)
		return ferr_set(e, FERR_IO, "collector: event %d fails", c->events);
	switch (ev->kind) {
	case QS_EV_OPAQUE:
		assert_int_equal(ev->off, c->out.len);
		assert_true(ev->len > 0);
		buf_put(&c->out, ev->data, ev->len);
		break;
	case QS_EV_PAGE:
		assert_int_equal(ev->off, c->out.len);
		assert_true(ev->page.block < ev->nblocks);
		b = &ev->blocks[ev->page.block];
		assert_true(ev->page.offset < b->len && ev->page.offset % QS_PAGE_SIZE == 0);
		assert_int_equal(qs_page_record_len(&ev->page, b->id_len), ev->len);
		wr_init(&w, rec, sizeof(rec));
		assert_int_equal(qs_page_encode(&w, &ev->page, b->id, b->id_len, e), 0);
		assert_int_equal(w.off, ev->len);
		buf_put(&c->out, rec, w.off);
		if (ev->page.kind == QS_PAGE_DATA)
			c->data_pages++;
		else
			c->zero_pages++;
		break;
	case QS_EV_BLOCKS:
		c->blocks_events++;
		c->nblocks = ev->nblocks;
		break;
	case QS_EV_TAIL:
	case QS_EV_FALLBACK:
		assert_int_equal(ev->off, c->out.len);
		if (ev->kind == QS_EV_TAIL)
			c->tails++;
		else
			c->fallbacks++;
		c->mode_at = ev->off;
		snprintf(c->reason, sizeof(c->reason), "%s", ev->reason);
		break;
	case QS_EV_END:
		assert_int_equal(ev->off, c->out.len);
		c->ends++;
		break;
	}
	return 0;
}

static void
collect_fini(struct collect *c)
{
	free(c->out.p);
	memset(c, 0, sizeof(*c));
}

/* Feed p in chunks of `chunk` bytes (0: all at once), then finish.
 * Returns finish's result; checks the rebuild equals the input. */
static int
run_stream(const uint8_t *p, size_t n, size_t chunk, struct collect *c, struct ferr *e)
{
	struct qstream *q = qstream_new(collect_event, c);
	size_t off = 0, k;
	int rc;

	assert_non_null(q);
	if (chunk == 0)
		chunk = n ? n : 1;
	while (off < n) {
		k = n - off < chunk ? n - off : chunk;
		assert_int_equal(qstream_feed(q, p + off, k, e), 0);
		off += k;
	}
	rc = qstream_finish(q, e);
	assert_int_equal(c->out.len, n);
	assert_true(n == 0 || memcmp(c->out.p, p, n) == 0);
	assert_int_equal(c->after_end, 0);
	qstream_free(q);
	return rc;
}

/* ---- tests ---- */

static void
test_full_stream(void **state)
{
	struct buf b = { 0 };
	struct collect c = { 0 };
	struct ferr e = { 0 };
	size_t chunk, tail_at;

	(void)state;
	build_full_stream(&b);
	/* Where the FULL section starts. */
	tail_at = b.len;
	{
		struct buf t = { 0 };

		rec_device_tail(&t);
		tail_at -= t.len;
		free(t.p);
	}
	for (chunk = 0; chunk <= 64; chunk = chunk < 20 ? chunk + 1 : chunk * 2) {
		memset(&c, 0, sizeof(c));
		assert_int_equal(run_stream(b.p, b.len, chunk, &c, &e), 0);
		assert_int_equal(c.data_pages, 4);
		assert_int_equal(c.zero_pages, 3);
		assert_int_equal(c.blocks_events, 1);
		assert_int_equal(c.nblocks, 2);
		assert_int_equal(c.tails, 1);
		assert_int_equal(c.fallbacks, 0);
		assert_int_equal(c.ends, 1);
		assert_int_equal(c.mode_at, tail_at);
		assert_non_null(strstr(c.reason, "device state: section 'timer'"));
		collect_fini(&c);
	}
	free(b.p);
}

static void
test_stats_and_blocks(void **state)
{
	struct buf b = { 0 };
	struct collect c = { 0 };
	struct ferr e = { 0 };
	struct qstream *q = qstream_new(collect_event, &c);
	const struct qs_block *bl;
	struct qs_stats st;
	uint32_t n;

	(void)state;
	build_full_stream(&b);
	assert_null(qstream_blocks(q, &n));
	assert_int_equal(n, 0);
	assert_int_equal(qstream_feed(q, b.p, b.len, &e), 0);
	bl = qstream_blocks(q, &n);
	assert_int_equal(n, 2);
	assert_string_equal(bl[0].id, "pc.ram");
	assert_int_equal(bl[0].len, 65536);
	assert_string_equal(bl[1].id, "pc.bios");
	assert_int_equal(bl[1].id_len, 7);
	qstream_stats(q, &st);
	assert_int_equal(st.mode, QS_MODE_TAIL);
	assert_int_equal(st.bytes, b.len);
	assert_int_equal(st.data_pages, 4);
	assert_int_equal(st.zero_pages, 3);
	assert_int_equal(st.opaque_bytes + st.page_record_bytes, b.len);
	assert_int_equal(qstream_finish(q, &e), 0);
	/* Nothing after the end. */
	assert_int_equal(qstream_feed(q, b.p, 1, &e), FERR_PROTO_STATE);
	assert_int_equal(qstream_finish(q, &e), FERR_PROTO_STATE);
	qstream_free(q);
	qstream_free(NULL);
	collect_fini(&c);
	free(b.p);
}

/* Every prefix: events rebuild it; finish says truncated unless the cut is
 * in the opaque tail. */
static void
test_truncated_everywhere(void **state)
{
	struct buf b = { 0 };
	struct collect c;
	struct ferr e = { 0 };
	size_t k, tail_at = 0;
	uint8_t *copy;
	int rc;

	(void)state;
	build_full_stream(&b);
	memset(&c, 0, sizeof(c));
	assert_int_equal(run_stream(b.p, b.len, 0, &c, &e), 0);
	tail_at = c.mode_at;
	collect_fini(&c);
	for (k = 0; k < b.len; k++) {
		copy = malloc(k ? k : 1);
		assert_non_null(copy);
		memcpy(copy, b.p, k);
		memset(&c, 0, sizeof(c));
		ferr_clear(&e);
		rc = run_stream(copy, k, k % 3 == 0 ? 0 : 1 + k % 4097, &c, &e);
		/* The tail's first record (the FULL section header) must be
		 * whole before the parser knows it is device state. */
		if (k >= tail_at + 1 + 4 + 1 + 5 + 8) {
			if (rc != 0)
				fail_msg("cut at %zu (tail at %zu): %s", k, tail_at, e.msg);
		} else if (rc != FERR_PROTO_LENGTH) {
			fail_msg("cut at %zu: %s, expected PROTO_LENGTH", k, ferr_name(rc));
		} else {
			assert_non_null(strstr(e.msg, "qemu stream: ends"));
		}
		collect_fini(&c);
		free(copy);
	}
	free(b.p);
}

/* The prefix of a stream up to the first data page of the PART, for the
 * refusal tests: header, config, ram setup, PART, one page. */
static void
build_prefix(struct buf *b)
{
	rec_header(b);
	rec_config(b, "pc-i440fx-7.2");
	rec_ram_setup(b, 2);
	rec_part(b, QS_VM_SECTION_PART, 2);
	rec_page(b, 0, "pc.ram", 9);
}

/* Build the prefix (when with_prefix), append what `bad` writes and some
 * trailing bytes; the parser must fall back exactly where `bad` says the
 * bad record starts, with a reason containing `words` (after one data page
 * with the prefix). */
static void
expect_fallback(size_t (*bad)(struct buf *), const char *words, int with_prefix)
{
	struct buf b = { 0 };
	struct collect c = { 0 };
	struct ferr e = { 0 };
	size_t at;

	if (with_prefix)
		build_prefix(&b);
	at = bad(&b);
	rec_page(&b, 0x2000, "pc.ram", 5);   /* opaque after the fallback */
	assert_int_equal(run_stream(b.p, b.len, 0, &c, &e), 0);
	if (c.fallbacks != 1 || c.mode_at != at || strstr(c.reason, words) == NULL)
		fail_msg("expected a fallback at %zu with '%s'; got %u at %llu: '%s'", at, words,
		    c.fallbacks, (unsigned long long)c.mode_at, c.reason);
	assert_int_equal(c.data_pages, with_prefix ? 1 : 0);
	collect_fini(&c);
	/* And byte by byte. */
	assert_int_equal(run_stream(b.p, b.len, 1, &c, &e), 0);
	assert_int_equal(c.mode_at, at);
	collect_fini(&c);
	free(b.p);
}

static size_t
bad_xbzrle(struct buf *b)
{
	size_t at;

	at = b->len;
	put_u64(b, 0x3000 | QS_RAM_XBZRLE | QS_RAM_CONTINUE);
	put_u8(b, 0);
	return at;
}

static size_t
bad_compress(struct buf *b)
{
	size_t at;

	at = b->len;
	put_u64(b, 0x3000 | QS_RAM_COMPRESS_PAGE);
	put_str8(b, "pc.ram");
	return at;
}

static size_t
bad_multifd(struct buf *b)
{
	size_t at;

	at = b->len;
	put_u64(b, QS_RAM_MULTIFD_FLUSH);
	return at;
}

static size_t
bad_hook(struct buf *b)
{
	size_t at;

	at = b->len;
	put_u64(b, QS_RAM_HOOK);
	return at;
}

static size_t
bad_full(struct buf *b)
{
	size_t at;

	at = b->len;
	put_u64(b, 0x3000 | QS_RAM_FULL);
	return at;
}

static size_t
bad_mem_size(struct buf *b)
{
	size_t at;

	at = b->len;
	put_u64(b, 0x12000 | QS_RAM_MEM_SIZE);
	return at;
}

static size_t
bad_page_zero(struct buf *b)
{
	size_t at;

	at = b->len;
	put_u64(b, 0x3000 | QS_RAM_PAGE | QS_RAM_ZERO);
	return at;
}

static size_t
bad_unknown_flag(struct buf *b)
{
	size_t at;

	at = b->len;
	put_u64(b, 0x3000 | 0x400 | QS_RAM_PAGE);
	return at;
}

static size_t
bad_fill(struct buf *b)
{
	size_t at;

	at = b->len;
	rec_zero(b, 0x3000, NULL, 0x55);
	return at;
}

static size_t
bad_block(struct buf *b)
{
	size_t at;

	at = b->len;
	rec_page(b, 0x3000, "vga.vram", 1);
	return at;
}

static size_t
bad_offset(struct buf *b)
{
	size_t at;

	at = b->len;
	rec_page(b, 0x10000, NULL, 1);
	return at;
}

static size_t
bad_offset_far(struct buf *b)
{
	size_t at;

	at = b->len;
	rec_zero(b, 0xfffffffffffff000ull, "pc.bios", 0);
	return at;
}


static void
test_refused_ram_flags(void **state)
{
	(void)state;
	expect_fallback(bad_xbzrle, "XBZRLE", 1);
	expect_fallback(bad_compress, "COMPRESS_PAGE", 1);
	expect_fallback(bad_multifd, "MULTIFD_FLUSH", 1);
	expect_fallback(bad_hook, "HOOK", 1);
	expect_fallback(bad_full, "FULL", 1);
	expect_fallback(bad_mem_size, "MEM_SIZE after the block list", 1);
	expect_fallback(bad_page_zero, "flags 0x00a", 1);
	expect_fallback(bad_unknown_flag, "flags 0x408", 1);
	expect_fallback(bad_fill, "fill byte 0x55", 1);
	expect_fallback(bad_block, "unknown block 'vga.vram'", 1);
	expect_fallback(bad_offset, "outside block 'pc.ram'", 1);
	expect_fallback(bad_offset_far, "outside block 'pc.bios'", 1);
}

static size_t
bad_magic(struct buf *b)
{
	size_t at;

	at = b->len;
	put_u32(b, 0x51455600);
	put_u32(b, 3);
	return at;
}

static size_t
bad_version(struct buf *b)
{
	size_t at;

	at = b->len;
	put_u32(b, QS_FILE_MAGIC);
	put_u32(b, 2);
	return at;
}


static size_t
bad_subsection(struct buf *b)
{
	size_t at;

	rec_header(b);
	rec_config(b, "pc");
	at = b->len;
	rec_subsection(b, "configuration/shiny");
	return at;
}

static size_t
bad_page_bits(struct buf *b)
{
	size_t at;

	rec_header(b);
	rec_config(b, "pc");
	at = b->len;
	rec_subsection(b, "configuration/target-page-bits");
	put_u32(b, 16);
	return at;
}

static size_t
bad_sub_version(struct buf *b)
{
	size_t at;

	rec_header(b);
	rec_config(b, "pc");
	at = b->len;
	put_u8(b, QS_VM_SUBSECTION);
	put_str8(b, "configuration/uuid");
	put_u32(b, 2);
	return at;
}

static size_t
bad_caps(struct buf *b)
{
	size_t at;

	rec_header(b);
	rec_config(b, "pc");
	at = b->len;
	rec_subsection(b, "configuration/capabilities");
	put_u32(b, QS_CAPS_MAX + 1);
	return at;
}

static size_t
bad_conf_len(struct buf *b)
{
	size_t at;

	rec_header(b);
	at = b->len;
	put_u8(b, QS_VM_CONFIGURATION);
	put_u32(b, QS_CONF_NAME_MAX + 1);
	return at;
}

static size_t
bad_live_section(struct buf *b)
{
	size_t at;

	rec_header(b);
	rec_config(b, "pc");
	at = b->len;
	rec_start(b, QS_VM_SECTION_START, 1, "block", 0, 1);
	return at;
}

static size_t
bad_ram_version(struct buf *b)
{
	size_t at;

	rec_header(b);
	at = b->len;
	rec_start(b, QS_VM_SECTION_START, 1, "ram", 0, 3);
	return at;
}

static size_t
bad_first_record(struct buf *b)
{
	size_t at;

	rec_header(b);
	rec_start(b, QS_VM_SECTION_START, 1, "ram", 0, 4);
	at = b->len;
	rec_page(b, 0, "pc.ram", 1);
	return at;
}

/* Each of these is appended after a valid ram START header. */
static void
ram_start(struct buf *b, uint64_t total)
{
	rec_header(b);
	rec_start(b, QS_VM_SECTION_START, 1, "ram", 0, 4);
	put_u64(b, total | QS_RAM_MEM_SIZE);
}

static size_t
bad_block_sum(struct buf *b)
{
	size_t at;

	ram_start(b, 0x2000);
	put_str8(b, "a");
	put_u64(b, 0x1000);
	at = b->len;
	put_str8(b, "b");
	put_u64(b, 0x2000);
	return at;
}

static size_t
bad_block_dup(struct buf *b)
{
	size_t at;

	ram_start(b, 0x2000);
	put_str8(b, "a");
	put_u64(b, 0x1000);
	at = b->len;
	put_str8(b, "a");
	put_u64(b, 0x1000);
	return at;
}

static size_t
bad_block_unaligned(struct buf *b)
{
	size_t at;

	ram_start(b, 0x2000);
	at = b->len;
	put_str8(b, "a");
	put_u64(b, 0x1800);
	return at;
}

static size_t
bad_block_nul(struct buf *b)
{
	size_t at;

	ram_start(b, 0x2000);
	at = b->len;
	put_u8(b, 2);
	buf_put(b, "a\0", 2);
	put_u64(b, 0x1000);
	return at;
}

static size_t
bad_too_many_blocks(struct buf *b)
{
	char id[16];
	size_t at = 0;
	int i;

	ram_start(b, (uint64_t)(QS_BLOCKS_MAX + 1) * 0x1000);
	for (i = 0; i <= QS_BLOCKS_MAX; i++) {
		at = b->len;
		snprintf(id, sizeof(id), "b%d", i);
		put_str8(b, id);
		put_u64(b, 0x1000);
	}
	return at;
}

static size_t
bad_second_ram(struct buf *b)
{
	size_t at;

	at = b->len;
	rec_start(b, QS_VM_SECTION_START, 9, "ram", 0, 4);
	return at;
}

static size_t
bad_part_id(struct buf *b)
{
	size_t at;

	rec_eos(b);
	rec_footer(b, 2);
	at = b->len;
	rec_part(b, QS_VM_SECTION_PART, 5);
	return at;
}

static size_t
bad_footer(struct buf *b)
{
	size_t at;

	rec_eos(b);
	at = b->len;
	rec_footer(b, 3);
	return at;
}

static size_t
bad_no_footer(struct buf *b)
{
	size_t at;

	rec_eos(b);
	at = b->len;
	rec_part(b, QS_VM_SECTION_PART, 2);
	return at;
}

static size_t
bad_command(struct buf *b)
{
	size_t at;

	rec_eos(b);
	rec_footer(b, 2);
	at = b->len;
	put_u8(b, QS_VM_COMMAND);
	put_u16(b, 3);
	put_u16(b, 0);
	return at;
}

static size_t
bad_ping_len(struct buf *b)
{
	size_t at;

	rec_eos(b);
	rec_footer(b, 2);
	at = b->len;
	put_u8(b, QS_VM_COMMAND);
	put_u16(b, 2);
	put_u16(b, 8);
	return at;
}

static size_t
bad_type(struct buf *b)
{
	size_t at;

	rec_eos(b);
	rec_footer(b, 2);
	at = b->len;
	put_u8(b, QS_VM_VMDESCRIPTION);
	return at;
}

static size_t
bad_late_config(struct buf *b)
{
	size_t at;

	rec_eos(b);
	rec_footer(b, 2);
	at = b->len;
	rec_config(b, "pc");
	return at;
}


static void
test_fallback_records(void **state)
{
	(void)state;
	expect_fallback(bad_magic, "file magic 0x51455600", 0);
	expect_fallback(bad_version, "file version 2", 0);
	expect_fallback(bad_subsection, "'configuration/shiny' not understood", 0);
	expect_fallback(bad_page_bits, "target page bits 16", 0);
	expect_fallback(bad_sub_version, "version 2", 0);
	expect_fallback(bad_caps, "65 capabilities", 0);
	expect_fallback(bad_conf_len, "machine name of 257 bytes", 0);
	expect_fallback(bad_live_section, "live section 'block'", 0);
	expect_fallback(bad_ram_version, "ram section version 3", 0);
	expect_fallback(bad_first_record, "not MEM_SIZE", 0);
	expect_fallback(bad_block_sum, "block 'b' of 8192 bytes", 0);
	expect_fallback(bad_block_dup, "'a' listed twice", 0);
	expect_fallback(bad_block_unaligned, "block 'a' of 6144 bytes", 0);
	expect_fallback(bad_block_nul, "block id 'a?'", 0);
	expect_fallback(bad_too_many_blocks, "more than 256 blocks", 0);
	expect_fallback(bad_second_ram, "ram: record flags", 1);
	expect_fallback(bad_part_id, "PART for id 5", 1);
	expect_fallback(bad_footer, "section 2: no footer", 1);
	expect_fallback(bad_no_footer, "no footer", 1);
	expect_fallback(bad_command, "command 3 with 0 bytes", 1);
	expect_fallback(bad_ping_len, "command 2 with 8 bytes", 1);
	expect_fallback(bad_type, "section type 0x06", 1);
	expect_fallback(bad_late_config, "configuration at offset", 1);
}

/* The fallback offsets of records that start mid-way: the bad record's
 * start, not the start of the bytes appended (they hold good records). */
static void
test_fallback_offsets(void **state)
{
	struct buf b = { 0 };
	struct collect c = { 0 };
	struct ferr e = { 0 };
	size_t at;

	(void)state;
	build_prefix(&b);
	rec_eos(&b);
	rec_footer(&b, 2);
	at = b.len;
	rec_start(&b, QS_VM_SECTION_START, 9, "ram", 0, 4);
	assert_int_equal(run_stream(b.p, b.len, 7, &c, &e), 0);
	assert_int_equal(c.fallbacks, 1);
	assert_int_equal(c.mode_at, at);
	assert_non_null(strstr(c.reason, "a second ram section (id 9)"));
	collect_fini(&c);
	free(b.p);
}

static void
test_config_subsections(void **state)
{
	struct buf b = { 0 };
	struct collect c = { 0 };
	struct ferr e = { 0 };
	uint8_t uuid[16] = { 1, 2, 3 };

	(void)state;
	rec_header(&b);
	rec_config(&b, "pc-q35-7.2");
	rec_subsection(&b, "configuration/target-page-bits");
	put_u32(&b, 12);
	rec_subsection(&b, "configuration/capabilities");
	put_u32(&b, 2);
	put_str8(&b, "x-ignore-shared");
	put_str8(&b, "return-path");
	rec_subsection(&b, "configuration/uuid");
	buf_put(&b, uuid, sizeof(uuid));
	rec_ram_setup(&b, 2);
	rec_part(&b, QS_VM_SECTION_PART, 2);
	rec_page(&b, 0x4000, "pc.ram", 1);
	rec_zero(&b, 0x5000, NULL, 0);
	rec_eos(&b);
	rec_footer(&b, 2);
	rec_device_tail(&b);
	assert_int_equal(run_stream(b.p, b.len, 3, &c, &e), 0);
	assert_int_equal(c.fallbacks, 0);
	assert_int_equal(c.data_pages, 1);
	assert_int_equal(c.zero_pages, 1);
	assert_int_equal(c.tails, 1);
	collect_fini(&c);
	free(b.p);
}

/* QEMU_VM_EOF right after RAM (no device state) is also the tail. */
static void
test_eof_tail(void **state)
{
	struct buf b = { 0 };
	struct collect c = { 0 };
	struct ferr e = { 0 };

	(void)state;
	rec_header(&b);
	rec_ram_setup(&b, 0);
	put_u8(&b, QS_VM_EOF);
	assert_int_equal(run_stream(b.p, b.len, 0, &c, &e), 0);
	assert_int_equal(c.tails, 1);
	assert_non_null(strstr(c.reason, "QEMU_VM_EOF"));
	collect_fini(&c);

	/* An empty stream and a stream that stops between records. */
	assert_int_equal(run_stream(b.p, 0, 0, &c, &e), FERR_PROTO_LENGTH);
	assert_non_null(strstr(e.msg, "ends at offset 0"));
	collect_fini(&c);
	assert_int_equal(run_stream(b.p, b.len - 1, 0, &c, &e), FERR_PROTO_LENGTH);
	assert_non_null(strstr(e.msg, "without device state"));
	collect_fini(&c);
	free(b.p);
}

static void
test_callback_error(void **state)
{
	struct buf b = { 0 };
	struct collect c = { 0 };
	struct ferr e = { 0 };
	struct qstream *q;
	int n, events, rc;

	(void)state;
	build_full_stream(&b);
	assert_int_equal(run_stream(b.p, b.len, 0, &c, &e), 0);
	events = c.events;
	collect_fini(&c);
	for (n = 1; n <= events; n++) {
		memset(&c, 0, sizeof(c));
		c.fail_at = n;
		q = qstream_new(collect_event, &c);
		assert_non_null(q);
		ferr_clear(&e);
		/* The last event (END) comes from qstream_finish. */
		rc = qstream_feed(q, b.p, b.len, &e);
		if (n == events) {
			assert_int_equal(rc, 0);
			rc = qstream_finish(q, &e);
		}
		assert_int_equal(rc, FERR_IO);
		assert_non_null(strstr(e.msg, "collector"));
		assert_int_equal(qstream_feed(q, b.p, 1, &e), FERR_PROTO_STATE);
		assert_int_equal(qstream_finish(q, &e), FERR_PROTO_STATE);
		qstream_free(q);
		collect_fini(&c);
	}
	free(b.p);
}

static void
test_page_encode(void **state)
{
	uint8_t data[QS_PAGE_SIZE], out[QS_PAGE_RECORD_MAX + 1];
	char id[QS_ID_MAX + 2];
	struct qs_page pg = { QS_PAGE_DATA, 0, 0x5000, 0, data };
	struct ferr e = { 0 };
	struct wr w;
	size_t n;

	(void)state;
	memset(data, 0xab, sizeof(data));
	memset(id, 'i', sizeof(id));
	assert_int_equal(qs_page_record_len(&pg, 6), 8 + 1 + 6 + QS_PAGE_SIZE);
	assert_int_equal(qs_page_record_len(&pg, 0), 0);
	assert_int_equal(qs_page_record_len(&pg, QS_ID_MAX), QS_PAGE_RECORD_MAX);
	assert_int_equal(qs_page_record_len(&pg, QS_ID_MAX + 1), 0);
	/* Exactly the room it needs, and one byte less. */
	n = qs_page_record_len(&pg, QS_ID_MAX);
	wr_init(&w, out, n);
	assert_int_equal(qs_page_encode(&w, &pg, id, QS_ID_MAX, &e), 0);
	assert_int_equal(w.off, n);
	assert_int_equal(out[7], QS_RAM_PAGE);
	assert_int_equal(out[6], 0x50);
	assert_int_equal(out[8], QS_ID_MAX);
	wr_init(&w, out, n - 1);
	assert_int_equal(qs_page_encode(&w, &pg, id, QS_ID_MAX, &e), FERR_INTERNAL);
	assert_int_equal(qs_page_encode(&w, &pg, id, 0, &e), FERR_USAGE);
	/* CONTINUE: no id. */
	pg.cont = 1;
	pg.kind = QS_PAGE_ZERO;
	assert_int_equal(qs_page_record_len(&pg, 0), 9);
	wr_init(&w, out, sizeof(out));
	assert_int_equal(qs_page_encode(&w, &pg, NULL, 0, &e), 0);
	assert_int_equal(w.off, 9);
	assert_int_equal(out[7], QS_RAM_ZERO | QS_RAM_CONTINUE);
	assert_int_equal(out[8], 0);
	/* Invalid pages. */
	pg.offset = 0x5001;
	assert_int_equal(qs_page_encode(&w, &pg, NULL, 0, &e), FERR_USAGE);
	assert_non_null(strstr(e.msg, "not page aligned"));
	pg.offset = 0;
	pg.kind = QS_PAGE_DATA;
	pg.data = NULL;
	assert_int_equal(qs_page_encode(&w, &pg, NULL, 0, &e), FERR_USAGE);
	pg.kind = 0;
	assert_int_equal(qs_page_record_len(&pg, 3), 0);
	assert_int_equal(qs_page_encode(&w, &pg, "abc", 3, &e), FERR_USAGE);
}

/* ---- a real stream (tests/e2e_qemu_stream.sh) ---- */

#define FG_STATUS_ADDR 0x180000u
#define FG_STATUS_MAGIC 0x47595246u

struct real {
	struct buf out;
	uint32_t nblocks;
	struct qs_block blocks[QS_BLOCKS_MAX];
	uint8_t *image[QS_BLOCKS_MAX];     /* pages applied in order */
	uint8_t *seen[QS_BLOCKS_MAX];      /* one byte per page: sent at least once */
	uint64_t data_pages, zero_pages, records_cont;
	int tails, fallbacks, ends, bad;
	uint64_t tail_at;
	char reason[200];
};

static int
real_event(void *ctx, const struct qs_event *ev, struct ferr *e)
{
	struct real *r = ctx;
	uint8_t rec[QS_PAGE_RECORD_MAX];
	const struct qs_block *b;
	struct wr w;
	uint32_t i;

	if (ev->off != r->out.len)
		r->bad++;
	switch (ev->kind) {
	case QS_EV_OPAQUE:
		buf_put(&r->out, ev->data, ev->len);
		break;
	case QS_EV_BLOCKS:
		r->nblocks = ev->nblocks;
		for (i = 0; i < ev->nblocks; i++) {
			r->blocks[i] = ev->blocks[i];
			r->image[i] = calloc(1, ev->blocks[i].len);
			r->seen[i] = calloc(1, ev->blocks[i].len / QS_PAGE_SIZE);
			if (r->image[i] == NULL || r->seen[i] == NULL)
				return ferr_set(e, FERR_NOMEM, "block %u", i);
		}
		break;
	case QS_EV_PAGE:
		b = &r->blocks[ev->page.block];
		wr_init(&w, rec, sizeof(rec));
		if (qs_page_encode(&w, &ev->page, b->id, b->id_len, e) != 0)
			return e->code;
		buf_put(&r->out, rec, w.off);
		if (ev->page.kind == QS_PAGE_DATA) {
			memcpy(r->image[ev->page.block] + ev->page.offset, ev->page.data, QS_PAGE_SIZE);
			r->data_pages++;
		} else {
			memset(r->image[ev->page.block] + ev->page.offset, 0, QS_PAGE_SIZE);
			r->zero_pages++;
		}
		r->seen[ev->page.block][ev->page.offset / QS_PAGE_SIZE] = 1;
		r->records_cont += ev->page.cont != 0;
		break;
	case QS_EV_TAIL:
	case QS_EV_FALLBACK:
		if (ev->kind == QS_EV_TAIL)
			r->tails++;
		else
			r->fallbacks++;
		r->tail_at = ev->off;
		snprintf(r->reason, sizeof(r->reason), "%s", ev->reason);
		break;
	case QS_EV_END:
		r->ends++;
		break;
	}
	return 0;
}

static uint32_t
le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int tap_n, tap_failed;

static void
tap(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s %d - ", ok ? "ok" : "not ok", ++tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok)
		tap_failed = 1;
}

/* The test guest's pattern in pc.ram (tests/qemu-guest/kernel.c). */
static void
check_guest(const struct real *r)
{
	const uint8_t *ram = NULL, *st, *pg;
	uint64_t ram_len = 0, p, bad = 0, rewritten = 0, first_bad = 0;
	uint32_t i, start, end, counter, w3, k;

	for (i = 0; i < r->nblocks; i++)
		if (strcmp(r->blocks[i].id, "pc.ram") == 0) {
			ram = r->image[i];
			ram_len = r->blocks[i].len;
		}
	tap(ram != NULL && ram_len > FG_STATUS_ADDR + 64, "the stream has a pc.ram block (%llu bytes)",
	    (unsigned long long)ram_len);
	if (ram == NULL || ram_len <= FG_STATUS_ADDR + 64)
		return;
	st = ram + FG_STATUS_ADDR;
	start = le32_at(st + 12);
	end = le32_at(st + 16);
	counter = le32_at(st + 8);
	tap(le32_at(st) == FG_STATUS_MAGIC && le32_at(st + 4) == 2 && start < end && end <= ram_len,
	    "guest status block: state %u, fill 0x%x..0x%x, counter %u", le32_at(st + 4), start, end,
	    counter);
	if (!(start < end && end <= ram_len))
		return;
	for (p = start; p < end; p += QS_PAGE_SIZE) {
		int ok;

		uint32_t exp[FG_PAGE / 4];

		pg = ram + p;
		w3 = le32_at(pg + 12);
		fg_pattern((uint32_t)p, exp);
		ok = w3 <= counter;
		for (k = 0; ok && k < QS_PAGE_SIZE / 4; k++)
			ok = k == 3 || le32_at(pg + 4 * k) == exp[k];
		if (!ok && bad++ == 0)
			first_bad = p;
		rewritten += w3 != 0;
	}
	tap(bad == 0, "every guest page 0x%x..0x%x holds its pattern in the rebuilt RAM (%llu bad, first 0x%llx)",
	    start, end, (unsigned long long)bad, (unsigned long long)first_bad);
	tap(rewritten > 0 && counter > 0, "the guest had rewritten %llu pages (counter %u)",
	    (unsigned long long)rewritten, counter);
}

/* Write the rebuilt stream for an outside comparison (cmp). */
static void
write_rebuilt(const struct real *r, const char *out)
{
	FILE *f = fopen(out, "wb");
	int ok = f != NULL && fwrite(r->out.p, 1, r->out.len, f) == r->out.len;

	if (f != NULL && fclose(f) != 0)
		ok = 0;
	tap(ok, "rebuilt stream written to %s", out);
}

static int
check_real_stream(const char *path, int guest, const char *out)
{
	struct real *r = calloc(1, sizeof(*r));
	struct qstream *q = qstream_new(real_event, r);
	struct ferr e = { 0 };
	uint64_t total_pages = 0, unseen = 0, seed = 0x9e3779b97f4a7c15ull;
	uint8_t *file = NULL;
	size_t len = 0, off = 0, k;
	uint32_t i, j;
	FILE *f;
	int rc = 0;
	long sz;

	if (r == NULL || q == NULL || (f = fopen(path, "rb")) == NULL) {
		printf("not ok 1 - cannot open %s\n1..1\n", path);
		return 1;
	}
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	file = malloc(sz > 0 ? (size_t)sz : 1);
	if (file != NULL && sz > 0)
		len = fread(file, 1, (size_t)sz, f);
	fclose(f);
	tap(file != NULL && sz > 0 && len == (size_t)sz, "read %s (%zu bytes)", path, len);
	/* Pseudo-random chunks of 1 byte to 256 KiB. */
	while (rc == 0 && off < len) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		k = (size_t)(seed % (seed & 1 ? 64 : 262144)) + 1;
		if (k > len - off)
			k = len - off;
		rc = qstream_feed(q, file + off, k, &e);
		off += k;
	}
	if (rc == 0)
		rc = qstream_finish(q, &e);
	tap(rc == 0, "parsed in random chunks: %s", rc == 0 ? "ok" : e.msg);
	tap(r->fallbacks == 0 && r->tails == 1 && r->ends == 1 && r->bad == 0,
	    "no fallback; opaque tail from offset %llu: %s", (unsigned long long)r->tail_at, r->reason);
	tap(r->out.len == len && memcmp(r->out.p, file, len) == 0,
	    "re-encoded stream is byte-identical (%zu of %zu bytes)", r->out.len, len);
	for (i = 0; i < r->nblocks; i++) {
		total_pages += r->blocks[i].len / QS_PAGE_SIZE;
		for (j = 0; j < r->blocks[i].len / QS_PAGE_SIZE; j++)
			unseen += r->seen[i][j] == 0;
	}
	tap(r->nblocks > 0 && unseen == 0,
	    "%u blocks, %llu pages: every page sent at least once (%llu data + %llu zero records, %llu with CONTINUE)",
	    r->nblocks, (unsigned long long)total_pages, (unsigned long long)r->data_pages,
	    (unsigned long long)r->zero_pages, (unsigned long long)r->records_cont);
	if (guest)
		check_guest(r);
	if (out != NULL)
		write_rebuilt(r, out);
	printf("1..%d\n", tap_n);
	for (i = 0; i < r->nblocks; i++) {
		free(r->image[i]);
		free(r->seen[i]);
	}
	qstream_free(q);
	free(r->out.p);
	free(r);
	free(file);
	return tap_failed;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_stream),
		cmocka_unit_test(test_stats_and_blocks),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_refused_ram_flags),
		cmocka_unit_test(test_fallback_records),
		cmocka_unit_test(test_fallback_offsets),
		cmocka_unit_test(test_config_subsections),
		cmocka_unit_test(test_eof_tail),
		cmocka_unit_test(test_callback_error),
		cmocka_unit_test(test_page_encode),
	};

	const char *stream = NULL, *out = NULL;
	int i, guest = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--stream") == 0 && i + 1 < argc)
			stream = argv[++i];
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			out = argv[++i];
		else if (strcmp(argv[i], "--guest") == 0)
			guest = 1;
		else {
			fprintf(stderr, "usage: %s [--stream FILE [--guest] [--out REBUILT]]\n", argv[0]);
			return 2;
		}
	}
	if (stream != NULL)
		return check_real_stream(stream, guest, out);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
