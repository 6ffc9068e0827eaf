/* QEMU 7.2 migration stream parser: see qstream.h and proto/QEMU.md.
 *
 * Each state parses one record.  A record is gathered in `hold` (at most
 * QS_PAGE_RECORD_MAX bytes) as chunks arrive; its handler runs again from
 * the start of the record whenever more bytes came, and either asks for
 * more, or emits the whole record (OPAQUE or PAGE) and moves on, or falls
 * back.  `hold` only ever holds a prefix of the current record, so what it
 * holds is exactly the bytes fed but not yet emitted. */
#include "qstream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QS_NEED 1   /* handler result: input exhausted, record incomplete */

enum qs_state {
	ST_HEADER,
	ST_TOP,        /* a section type byte comes next */
	ST_CONF_NEXT,  /* a configuration subsection, or the first section */
	ST_CONF_CAP,   /* capability names of configuration/capabilities */
	ST_RAM_RECORD, /* a RAM record header (be64 offset | flags) */
	ST_RAM_BLOCK,  /* one entry of the block list */
	ST_FOOTER,     /* QEMU_VM_SECTION_FOOTER + section id */
};

static const char *const state_name[] = {
	[ST_HEADER] = "the file header",
	[ST_TOP] = "a section header",
	[ST_CONF_NEXT] = "a configuration subsection",
	[ST_CONF_CAP] = "a configuration capability",
	[ST_RAM_RECORD] = "a ram record",
	[ST_RAM_BLOCK] = "the ram block list",
	[ST_FOOTER] = "a section footer",
};

struct qstream {
	qs_event_fn fn;
	void *ctx;
	enum qs_mode mode;
	enum qs_state st;
	int dead;                      /* after an error or finish */

	uint8_t hold[QS_PAGE_RECORD_MAX];
	size_t held;
	uint64_t pos;                  /* stream offset of hold[0] */
	const uint8_t *in;             /* the rest of the current feed */
	size_t in_left;

	int seen_conf, seen_section;
	int have_ram;
	uint32_t ram_sid, cur_sid;
	int want_mem_size;
	uint64_t mem_total, mem_listed;
	struct qs_block blocks[QS_BLOCKS_MAX];
	uint32_t nblocks;
	int64_t last_block;            /* for CONTINUE; -1 before the first page */
	uint32_t caps_left;

	struct qs_stats stats;
};

/* ---- bytes ------------------------------------------------------------------ */

static uint32_t
be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t
be16_at(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint64_t
be64_at(const uint8_t *p)
{
	return (uint64_t)be32_at(p) << 32 | be32_at(p + 4);
}

/* Gather the first n bytes of the record; 1 when they are all held. */
static int
need(struct qstream *q, size_t n)
{
	size_t k;

	if (q->held >= n)
		return 1;
	k = n - q->held;
	if (k > q->in_left)
		k = q->in_left;
	memcpy(q->hold + q->held, q->in, k);
	q->held += k;
	q->in += k;
	q->in_left -= k;
	return q->held >= n;
}

/* An id for messages: printable bytes kept, others shown as '?'. */
static void
printable(char *out, size_t cap, const uint8_t *p, size_t n)
{
	size_t i;

	if (n >= cap)
		n = cap - 1;
	for (i = 0; i < n; i++)
		out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
	out[n] = '\0';
}

/* ---- events ------------------------------------------------------------------ */

static int
emit(struct qstream *q, struct qs_event *ev, struct ferr *e)
{
	ev->blocks = q->nblocks != 0 ? q->blocks : NULL;
	ev->nblocks = q->nblocks;
	return q->fn(q->ctx, ev, e);
}

static int
emit_opaque(struct qstream *q, const uint8_t *p, size_t n, struct ferr *e)
{
	struct qs_event ev;

	if (n == 0)
		return 0;
	memset(&ev, 0, sizeof(ev));
	ev.kind = QS_EV_OPAQUE;
	ev.off = q->pos;
	ev.len = n;
	ev.data = p;
	q->pos += n;
	q->stats.opaque_bytes += n;
	return emit(q, &ev, e);
}

/* Emit the whole held record as opaque bytes. */
static int
pass_record(struct qstream *q, struct ferr *e)
{
	size_t n = q->held;

	q->held = 0;
	return emit_opaque(q, q->hold, n, e);
}

/* Leave PARSE mode at the start of the held record: the event, then the
 * held bytes; the feed loop passes the rest. */
static int
switch_mode(struct qstream *q, enum qs_mode mode, struct ferr *e, const char *fmt, ...)
    FERRY_PRINTF(4, 5);

static int
switch_mode(struct qstream *q, enum qs_mode mode, struct ferr *e, const char *fmt, ...)
{
	struct qs_event ev;
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(q->stats.reason, sizeof(q->stats.reason), fmt, ap);
	va_end(ap);
	q->mode = mode;
	q->stats.mode = mode;
	q->stats.switched_at = q->pos;
	memset(&ev, 0, sizeof(ev));
	ev.kind = mode == QS_MODE_TAIL ? QS_EV_TAIL : QS_EV_FALLBACK;
	ev.off = q->pos;
	ev.reason = q->stats.reason;
	if ((rc = emit(q, &ev, e)) != 0)
		return rc;
	return pass_record(q, e);
}

#define fallback(q, e, ...) switch_mode((q), QS_MODE_FALLBACK, (e), __VA_ARGS__)
#define tail(q, e, ...) switch_mode((q), QS_MODE_TAIL, (e), __VA_ARGS__)

/* ---- file header and configuration -------------------------------------------- */

static int
parse_header(struct qstream *q, struct ferr *e)
{
	uint32_t magic, version;

	if (!need(q, 8))
		return QS_NEED;
	magic = be32_at(q->hold);
	version = be32_at(q->hold + 4);
	if (magic != QS_FILE_MAGIC)
		return fallback(q, e, "file magic 0x%08x at offset 0, not QEVM", magic);
	if (version != QS_FILE_VERSION)
		return fallback(q, e, "file version %u at offset 4, not %u", version, QS_FILE_VERSION);
	q->st = ST_TOP;
	return pass_record(q, e);
}

/* u8 type, be32 len, name[len] */
static int
parse_configuration(struct qstream *q, struct ferr *e)
{
	uint32_t len;

	if (q->seen_conf || q->seen_section)
		return fallback(q, e, "configuration at offset %llu after other sections",
		    (unsigned long long)q->pos);
	if (!need(q, 5))
		return QS_NEED;
	len = be32_at(q->hold + 1);
	if (len == 0 || len > QS_CONF_NAME_MAX)
		return fallback(q, e, "configuration: machine name of %u bytes (1..%u)", len,
		    QS_CONF_NAME_MAX);
	if (!need(q, 5 + (size_t)len))
		return QS_NEED;
	q->seen_conf = 1;
	q->st = ST_CONF_NEXT;
	return pass_record(q, e);
}

static int
name_is(const uint8_t *p, size_t n, const char *s)
{
	return n == strlen(s) && memcmp(p, s, n) == 0;
}

/* u8 QEMU_VM_SUBSECTION, u8 len, name[len], be32 version, fields */
static int
parse_conf_subsection(struct qstream *q, struct ferr *e)
{
	const uint8_t *name;
	char shown[QS_ID_MAX + 1];
	size_t n, at;
	uint32_t v;

	if (!need(q, 1))
		return QS_NEED;
	if (q->hold[0] != QS_VM_SUBSECTION) {
		q->st = ST_TOP;
		return 0;
	}
	if (!need(q, 2))
		return QS_NEED;
	n = q->hold[1];
	at = 2 + n + 4;
	if (!need(q, at))
		return QS_NEED;
	name = q->hold + 2;
	printable(shown, sizeof(shown), name, n);
	if ((v = be32_at(q->hold + 2 + n)) != 1)
		return fallback(q, e, "configuration subsection '%s' version %u, not 1", shown, v);
	if (name_is(name, n, "configuration/target-page-bits")) {
		if (!need(q, at + 4))
			return QS_NEED;
		if ((v = be32_at(q->hold + at)) != QS_PAGE_BITS)
			return fallback(q, e, "configuration: target page bits %u, not %u", v, QS_PAGE_BITS);
	} else if (name_is(name, n, "configuration/capabilities")) {
		if (!need(q, at + 4))
			return QS_NEED;
		if ((v = be32_at(q->hold + at)) > QS_CAPS_MAX)
			return fallback(q, e, "configuration: %u capabilities > %u", v, QS_CAPS_MAX);
		q->caps_left = v;
		q->st = ST_CONF_CAP;
	} else if (name_is(name, n, "configuration/uuid")) {
		if (!need(q, at + 16))
			return QS_NEED;
	} else {
		return fallback(q, e, "configuration subsection '%s' not understood", shown);
	}
	return pass_record(q, e);
}

/* u8 len, name[len] */
static int
parse_conf_capability(struct qstream *q, struct ferr *e)
{
	if (q->caps_left == 0) {
		q->st = ST_CONF_NEXT;
		return 0;
	}
	if (!need(q, 1) || !need(q, 1 + (size_t)q->hold[0]))
		return QS_NEED;
	q->caps_left--;
	return pass_record(q, e);
}

/* ---- sections ------------------------------------------------------------------- */

/* u8 type, be32 section id, u8 len, idstr[len], be32 instance, be32 version */
static int
parse_section_start(struct qstream *q, uint8_t type, struct ferr *e)
{
	char shown[QS_ID_MAX + 1];
	const uint8_t *id;
	uint32_t sid, inst, ver;
	size_t n;

	if (!need(q, 6))
		return QS_NEED;
	n = q->hold[5];
	if (!need(q, 6 + n + 8))
		return QS_NEED;
	sid = be32_at(q->hold + 1);
	id = q->hold + 6;
	inst = be32_at(q->hold + 6 + n);
	ver = be32_at(q->hold + 6 + n + 4);
	printable(shown, sizeof(shown), id, n);
	if (type == QS_VM_SECTION_FULL)
		return tail(q, e, "device state: section '%s' at offset %llu", shown,
		    (unsigned long long)q->pos);
	if (!name_is(id, n, "ram"))
		return fallback(q, e, "live section '%s' (only ram is understood)", shown);
	if (q->have_ram)
		return fallback(q, e, "a second ram section (id %u) at offset %llu", sid,
		    (unsigned long long)q->pos);
	if (ver != QS_RAM_VERSION || inst != 0)
		return fallback(q, e, "ram section version %u instance %u (expected %u, 0)", ver, inst,
		    QS_RAM_VERSION);
	q->have_ram = 1;
	q->seen_section = 1;
	q->ram_sid = q->cur_sid = sid;
	q->want_mem_size = 1;
	q->st = ST_RAM_RECORD;
	return pass_record(q, e);
}

/* u8 type, be32 section id */
static int
parse_section_part(struct qstream *q, uint8_t type, struct ferr *e)
{
	uint32_t sid;

	if (!need(q, 5))
		return QS_NEED;
	sid = be32_at(q->hold + 1);
	if (!q->have_ram || sid != q->ram_sid)
		return fallback(q, e, "section %s for id %u, not ram", type == QS_VM_SECTION_PART ? "PART" :
		    "END", sid);
	q->cur_sid = sid;
	q->st = ST_RAM_RECORD;
	return pass_record(q, e);
}

/* u8 QEMU_VM_COMMAND, be16 command, be16 len, data[len] */
static int
parse_command(struct qstream *q, struct ferr *e)
{
	uint16_t cmd, len;

	if (!need(q, 5))
		return QS_NEED;
	cmd = be16_at(q->hold + 1);
	len = be16_at(q->hold + 3);
	if (!(cmd == QS_CMD_OPEN_RETURN_PATH && len == 0) && !(cmd == QS_CMD_PING && len == QS_PING_LEN))
		return fallback(q, e, "command %u with %u bytes at offset %llu", cmd, len,
		    (unsigned long long)q->pos);
	if (!need(q, 5 + (size_t)len))
		return QS_NEED;
	return pass_record(q, e);
}

static int
parse_top(struct qstream *q, struct ferr *e)
{
	uint8_t t;

	if (!need(q, 1))
		return QS_NEED;
	t = q->hold[0];
	switch (t) {
	case QS_VM_CONFIGURATION:
		return parse_configuration(q, e);
	case QS_VM_SECTION_START:
	case QS_VM_SECTION_FULL:
		return parse_section_start(q, t, e);
	case QS_VM_SECTION_PART:
	case QS_VM_SECTION_END:
		return parse_section_part(q, t, e);
	case QS_VM_COMMAND:
		return parse_command(q, e);
	case QS_VM_EOF:
		return tail(q, e, "QEMU_VM_EOF at offset %llu", (unsigned long long)q->pos);
	default:
		return fallback(q, e, "section type 0x%02x at offset %llu", t, (unsigned long long)q->pos);
	}
}

/* u8 QEMU_VM_SECTION_FOOTER, be32 section id */
static int
parse_footer(struct qstream *q, struct ferr *e)
{
	if (!need(q, 5))
		return QS_NEED;
	if (q->hold[0] != QS_VM_SECTION_FOOTER || be32_at(q->hold + 1) != q->cur_sid)
		return fallback(q, e, "section %u: no footer at offset %llu", q->cur_sid,
		    (unsigned long long)q->pos);
	q->st = ST_TOP;
	return pass_record(q, e);
}

/* ---- ram ------------------------------------------------------------------------- */

/* u8 len, idstr[len], be64 used_length */
static int
parse_ram_block(struct qstream *q, struct ferr *e)
{
	struct qs_block *b;
	struct qs_event ev;
	char shown[QS_ID_MAX + 1];
	uint64_t len;
	size_t n;
	uint32_t i;
	int rc;

	if (!need(q, 1))
		return QS_NEED;
	n = q->hold[0];
	if (!need(q, 1 + n + 8))
		return QS_NEED;
	len = be64_at(q->hold + 1 + n);
	printable(shown, sizeof(shown), q->hold + 1, n);
	if (n == 0 || memchr(q->hold + 1, '\0', n) != NULL)
		return fallback(q, e, "ram: block id '%s' of %zu bytes", shown, n);
	if (q->nblocks == QS_BLOCKS_MAX)
		return fallback(q, e, "ram: more than %u blocks", QS_BLOCKS_MAX);
	if (len == 0 || len % QS_PAGE_SIZE != 0 || len > q->mem_total - q->mem_listed)
		return fallback(q, e, "ram: block '%s' of %llu bytes (page multiple, sum <= MEM_SIZE %llu)",
		    shown, (unsigned long long)len, (unsigned long long)q->mem_total);
	for (i = 0; i < q->nblocks; i++)
		if (q->blocks[i].id_len == n && memcmp(q->blocks[i].id, q->hold + 1, n) == 0)
			return fallback(q, e, "ram: block '%s' listed twice", shown);
	b = &q->blocks[q->nblocks++];
	memcpy(b->id, q->hold + 1, n);
	b->id[n] = '\0';
	b->id_len = (uint8_t)n;
	b->len = len;
	q->mem_listed += len;
	if (q->mem_listed < q->mem_total)
		return pass_record(q, e);
	q->st = ST_RAM_RECORD;
	if ((rc = pass_record(q, e)) != 0)
		return rc;
	memset(&ev, 0, sizeof(ev));
	ev.kind = QS_EV_BLOCKS;
	ev.off = q->pos;
	return emit(q, &ev, e);
}

static const char *
ram_flag_name(uint32_t fl)
{
	if (fl & QS_RAM_XBZRLE)
		return "XBZRLE (capability xbzrle)";
	if (fl & QS_RAM_COMPRESS_PAGE)
		return "COMPRESS_PAGE (capability compress)";
	if (fl & QS_RAM_MULTIFD_FLUSH)
		return "MULTIFD_FLUSH (capability multifd)";
	if (fl & QS_RAM_HOOK)
		return "HOOK (RDMA)";
	if (fl & QS_RAM_FULL)
		return "FULL (obsolete)";
	if (fl & QS_RAM_MEM_SIZE)
		return "MEM_SIZE after the block list";
	return "a combination not understood";
}

/* Which block a page record names: QS_NEED, 0 with *b and *hdr, or the
 * result of a fallback (the caller checks the mode). */
static int
page_block(struct qstream *q, uint32_t fl, uint32_t *b, size_t *hdr, struct ferr *e)
{
	char shown[QS_ID_MAX + 1];
	size_t n;
	uint32_t i;

	if (fl & QS_RAM_CONTINUE) {
		if (q->last_block < 0)
			return fallback(q, e, "ram: CONTINUE page at offset %llu before any block",
			    (unsigned long long)q->pos);
		*b = (uint32_t)q->last_block;
		*hdr = 8;
		return 0;
	}
	if (!need(q, 9))
		return QS_NEED;
	n = q->hold[8];
	if (!need(q, 9 + n))
		return QS_NEED;
	for (i = 0; i < q->nblocks; i++)
		if (q->blocks[i].id_len == n && memcmp(q->blocks[i].id, q->hold + 9, n) == 0) {
			*b = i;
			*hdr = 9 + n;
			return 0;
		}
	printable(shown, sizeof(shown), q->hold + 9, n);
	return fallback(q, e, "ram: page at offset %llu for unknown block '%s'",
	    (unsigned long long)q->pos, shown);
}

static int
parse_page(struct qstream *q, uint32_t fl, uint64_t addr, struct ferr *e)
{
	struct qs_event ev;
	uint32_t b = 0;
	size_t hdr = 0, total;
	int zero = (fl & ~(uint32_t)QS_RAM_CONTINUE) == QS_RAM_ZERO, rc;

	/* page_block may have fallen back (0 then, but no longer parsing). */
	if ((rc = page_block(q, fl, &b, &hdr, e)) != 0 || q->mode != QS_MODE_PARSE)
		return rc;
	if (addr >= q->blocks[b].len)
		return fallback(q, e, "ram: page at 0x%llx outside block '%s' of 0x%llx bytes",
		    (unsigned long long)addr, q->blocks[b].id, (unsigned long long)q->blocks[b].len);
	total = hdr + (zero ? 1 : QS_PAGE_SIZE);
	if (!need(q, total))
		return QS_NEED;
	if (zero && q->hold[hdr] != 0)
		return fallback(q, e, "ram: ZERO page with fill byte 0x%02x at offset %llu",
		    q->hold[hdr], (unsigned long long)q->pos);
	memset(&ev, 0, sizeof(ev));
	ev.kind = QS_EV_PAGE;
	ev.off = q->pos;
	ev.len = total;
	ev.page.kind = zero ? QS_PAGE_ZERO : QS_PAGE_DATA;
	ev.page.block = b;
	ev.page.offset = addr;
	ev.page.cont = (fl & QS_RAM_CONTINUE) != 0;
	ev.page.data = zero ? NULL : q->hold + hdr;
	q->last_block = b;
	if (zero)
		q->stats.zero_pages++;
	else
		q->stats.data_pages++;
	q->stats.page_record_bytes += total;
	q->pos += total;
	q->held = 0;
	return emit(q, &ev, e);
}

/* be64 (offset | flags), then what the flags say */
static int
parse_ram_record(struct qstream *q, struct ferr *e)
{
	uint64_t v, addr;
	uint32_t fl, base;

	if (!need(q, 8))
		return QS_NEED;
	v = be64_at(q->hold);
	fl = (uint32_t)(v & (QS_PAGE_SIZE - 1));
	addr = v & ~(uint64_t)(QS_PAGE_SIZE - 1);
	base = fl & ~(uint32_t)QS_RAM_CONTINUE;
	if (q->want_mem_size) {
		if (fl != QS_RAM_MEM_SIZE || addr == 0)
			return fallback(q, e, "ram: first record 0x%016llx is not MEM_SIZE",
			    (unsigned long long)v);
		q->want_mem_size = 0;
		q->mem_total = addr;
		q->st = ST_RAM_BLOCK;
		return pass_record(q, e);
	}
	if (base == QS_RAM_EOS) {
		q->st = ST_FOOTER;
		return pass_record(q, e);
	}
	if (base == QS_RAM_ZERO || base == QS_RAM_PAGE)
		return parse_page(q, fl, addr, e);
	return fallback(q, e, "ram: record flags 0x%03x at offset %llu: %s", fl,
	    (unsigned long long)q->pos, ram_flag_name(fl));
}

/* ---- driver ----------------------------------------------------------------------- */

static int
step(struct qstream *q, struct ferr *e)
{
	switch (q->st) {
	case ST_HEADER:
		return parse_header(q, e);
	case ST_TOP:
		return parse_top(q, e);
	case ST_CONF_NEXT:
		return parse_conf_subsection(q, e);
	case ST_CONF_CAP:
		return parse_conf_capability(q, e);
	case ST_RAM_RECORD:
		return parse_ram_record(q, e);
	case ST_RAM_BLOCK:
		return parse_ram_block(q, e);
	case ST_FOOTER:
		return parse_footer(q, e);
	}
	return ferr_set(e, FERR_INTERNAL, "qstream: state %d", (int)q->st);
}

struct qstream *
qstream_new(qs_event_fn fn, void *ctx)
{
	struct qstream *q = calloc(1, sizeof(*q));

	if (q == NULL)
		return NULL;
	q->fn = fn;
	q->ctx = ctx;
	q->mode = QS_MODE_PARSE;
	q->stats.mode = QS_MODE_PARSE;
	q->st = ST_HEADER;
	q->last_block = -1;
	return q;
}

void
qstream_free(struct qstream *q)
{
	if (q == NULL)
		return;
	/* The hold may contain guest memory. */
	memset(q->hold, 0, sizeof(q->hold));
	free(q);
}

int
qstream_feed(struct qstream *q, const uint8_t *p, size_t n, struct ferr *e)
{
	int rc = 0;

	if (q->dead)
		return ferr_set(e, FERR_PROTO_STATE, "qstream: fed after an error or the end");
	q->stats.bytes += n;
	q->in = p;
	q->in_left = n;
	while (rc == 0) {
		if (q->mode != QS_MODE_PARSE) {
			rc = emit_opaque(q, q->in, q->in_left, e);
			q->in_left = 0;
			break;
		}
		rc = step(q, e);
	}
	q->in = NULL;
	q->in_left = 0;
	if (rc == QS_NEED)
		return 0;
	if (rc != 0)
		q->dead = 1;
	return rc;
}

int
qstream_finish(struct qstream *q, struct ferr *e)
{
	struct qs_event ev;
	uint64_t at = q->pos;
	size_t held = q->held;
	int rc;

	if (q->dead)
		return ferr_set(e, FERR_PROTO_STATE, "qstream: finished after an error or the end");
	q->dead = 1;
	if (q->mode == QS_MODE_PARSE) {
		if (held != 0) {
			if ((rc = pass_record(q, e)) != 0)
				return rc;
			return ferr_set(e, FERR_PROTO_LENGTH,
			    "qemu stream: ends inside %s at offset %llu (%zu bytes of it)", state_name[q->st],
			    (unsigned long long)at, held);
		}
		return ferr_set(e, FERR_PROTO_LENGTH,
		    "qemu stream: ends at offset %llu, before %s, without device state",
		    (unsigned long long)at, state_name[q->st]);
	}
	memset(&ev, 0, sizeof(ev));
	ev.kind = QS_EV_END;
	ev.off = q->pos;
	return emit(q, &ev, e);
}

void
qstream_stats(const struct qstream *q, struct qs_stats *out)
{
	*out = q->stats;
}

const struct qs_block *
qstream_blocks(const struct qstream *q, uint32_t *n)
{
	*n = q->nblocks;
	return q->nblocks != 0 ? q->blocks : NULL;
}

/* ---- re-encoding --------------------------------------------------------------------- */

size_t
qs_page_record_len(const struct qs_page *pg, size_t id_len)
{
	size_t n = 8;

	if (pg->kind != QS_PAGE_DATA && pg->kind != QS_PAGE_ZERO)
		return 0;
	if (!pg->cont) {
		if (id_len == 0 || id_len > QS_ID_MAX)
			return 0;
		n += 1 + id_len;
	}
	return n + (pg->kind == QS_PAGE_DATA ? QS_PAGE_SIZE : 1);
}

int
qs_page_encode(struct wr *w, const struct qs_page *pg, const char *id, size_t id_len, struct ferr *e)
{
	uint64_t v;

	if (qs_page_record_len(pg, id_len) == 0)
		return ferr_set(e, FERR_USAGE, "qstream: page kind %d with a block id of %zu bytes",
		    (int)pg->kind, id_len);
	if (pg->offset % QS_PAGE_SIZE != 0)
		return ferr_set(e, FERR_USAGE, "qstream: page offset 0x%llx not page aligned",
		    (unsigned long long)pg->offset);
	if (pg->kind == QS_PAGE_DATA && pg->data == NULL)
		return ferr_set(e, FERR_USAGE, "qstream: data page without data");
	v = pg->offset | (pg->kind == QS_PAGE_DATA ? QS_RAM_PAGE : QS_RAM_ZERO) |
	    (pg->cont ? QS_RAM_CONTINUE : 0);
	wr_u64(w, v);
	if (!pg->cont) {
		wr_u8(w, (uint8_t)id_len);
		wr_bytes(w, id, id_len);
	}
	if (pg->kind == QS_PAGE_DATA)
		wr_bytes(w, pg->data, QS_PAGE_SIZE);
	else
		wr_u8(w, 0);
	if (w->err)
		return ferr_set(e, FERR_INTERNAL, "qstream: no room for a page record of %zu bytes",
		    qs_page_record_len(pg, id_len));
	return 0;
}
