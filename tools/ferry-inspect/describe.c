/* Decode each frame type's payload into named fields with the project's own
 * decoders (src/common/msg.c, msg_domain.c, msg_qemu.c): ferry-inspect shows what ferry
 * itself would accept, and a payload ferry would refuse shows ferry's error. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domxml.h"
#include "err.h"
#include "frame.h"
#include "inspect.h"
#include "msg.h"
#include "rd.h"

static void
put_u64(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void
put_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, json_object_new_string(v));
}

static void
put_hex(struct json_object *o, const char *k, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	char buf[2 * 64 + 1];
	size_t i;

	if (n > 64)
		n = 64;
	for (i = 0; i < n; i++) {
		buf[2 * i] = digits[p[i] >> 4];
		buf[2 * i + 1] = digits[p[i] & 15];
	}
	buf[2 * n] = '\0';
	put_str(o, k, buf);
}

static void
put_hex64(struct json_object *o, const char *k, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "0x%016llx", (unsigned long long)v);
	put_str(o, k, buf);
}

static void
put_code(struct json_object *o, uint32_t code)
{
	put_u64(o, "code", code);
	put_str(o, "code_name", code <= 1000 ? ferr_name(-(int)code) : "?");
}

static void
learn_session(struct flow *f, const uint8_t sid[FERRY_SESSION_ID_LEN])
{
	if (f->have_sid)
		return;
	memcpy(f->sid, sid, FERRY_SESSION_ID_LEN);
	f->have_sid = 1;
}

static int
describe_hello(const uint8_t *p, size_t n, struct json_object *o, struct ferr *e)
{
	struct msg_hello m;
	int rc = msg_hello_decode(p, n, &m, e);

	if (rc != 0)
		return rc;
	put_u64(o, "version", m.version);
	put_u64(o, "caps", m.caps);
	put_u64(o, "max_frame", m.max_frame);
	put_hex64(o, "hash_seed", m.hash_seed);
	return 0;
}

static int
describe_welcome(struct flow *f, const uint8_t *p, size_t n, struct json_object *o, struct ferr *e)
{
	struct msg_welcome m;
	int rc = msg_welcome_decode(p, n, &m, e);

	if (rc != 0)
		return rc;
	put_u64(o, "version", m.version);
	put_u64(o, "caps", m.caps);
	put_u64(o, "max_frame", m.max_frame);
	put_hex(o, "session", m.session_id, sizeof(m.session_id));
	learn_session(f, m.session_id);
	return 0;
}

static const char *
dev_kind_name(uint8_t kind)
{
	return kind == DK_MEMORY ? "memory" : kind == DK_DISK ? "disk" : kind == DK_QEMU ? "qemu" : "?";
}

static int
describe_manifest(struct inspector *in, struct flow *f, const uint8_t *p, size_t n,
    struct json_object *o, struct ferr *e)
{
	struct msg_manifest *m = calloc(1, sizeof(*m));
	struct json_object *devs;
	uint32_t i;
	int rc;

	if (m == NULL)
		return ferr_set(e, FERR_NOMEM, "MANIFEST: out of memory");
	if ((rc = msg_manifest_decode(p, n, m, e)) != 0) {
		free(m);
		return rc;
	}
	put_u64(o, "ndev", m->ndev);
	put_u64(o, "state_size", m->state_size);
	if (m->state_size != 0)
		put_str(o, "state_name", m->state_name);
	devs = json_object_new_array();
	for (i = 0; i < m->ndev; i++) {
		const struct dev_desc *d = &m->dev[i];
		struct json_object *jd = json_object_new_object();

		put_u64(jd, "id", d->id);
		put_str(jd, "kind", dev_kind_name(d->kind));
		put_u64(jd, "unit", d->unit);
		put_u64(jd, "size", d->size);
		put_u64(jd, "units", dev_units(d));
		put_str(jd, "name", d->name);
		json_object_array_add(devs, jd);
	}
	json_object_object_add(o, "devices", devs);
	insp_keep_manifest(in, f, m);
	free(m);
	return 0;
}

static const struct dev_desc *
find_dev(const struct msg_manifest *m, uint32_t id)
{
	uint32_t i;

	for (i = 0; m != NULL && i < m->ndev; i++)
		if (m->dev[i].id == id)
			return &m->dev[i];
	return NULL;
}

static struct json_object *
entry_json(const struct page_entry *pe)
{
	static const char *const names[] = { "?", "zero", "ref", "lz4", "raw" };
	struct json_object *je = json_object_new_object();

	put_u64(je, "index", pe->index);
	put_str(je, "kind", pe->kind <= PK_RAW ? names[pe->kind] : "?");
	if (pe->kind == PK_REF) {
		put_u64(je, "src_device", pe->src_device);
		put_u64(je, "src_index", pe->src_index);
		put_hex(je, "hash", pe->hash, sizeof(pe->hash));
	} else if (pe->kind == PK_LZ4) {
		put_u64(je, "clen", pe->data_len);
	}
	return je;
}

/* Every entry, with the device from the session's MANIFEST. */
static int
describe_entries(struct inspector *in, struct rd *r, const struct msg_pages *h,
    const struct dev_desc *d, struct json_object *o, struct ferr *e)
{
	uint64_t kinds[PK_RAW + 1] = { 0 }, data = 0;
	struct json_object *list = in->verbose ? json_object_new_array() : NULL;
	struct page_entry pe;
	uint32_t i, lo = UINT32_MAX, hi = 0;
	int rc = 0;

	for (i = 0; i < h->count; i++) {
		if ((rc = msg_page_next(r, d, &pe, e)) != 0)
			break;
		kinds[pe.kind]++;
		data += pe.data_len;
		lo = pe.index < lo ? pe.index : lo;
		hi = pe.index > hi ? pe.index : hi;
		if (list != NULL)
			json_object_array_add(list, entry_json(&pe));
	}
	if (rc == 0 && rd_end(r) != 0)
		rc = ferr_set(e, FERR_PROTO_LENGTH, "PAGES: %zu bytes after %u entries", rd_left(r),
		    h->count);
	put_u64(o, "zero", kinds[PK_ZERO]);
	put_u64(o, "ref", kinds[PK_REF]);
	put_u64(o, "lz4", kinds[PK_LZ4]);
	put_u64(o, "raw", kinds[PK_RAW]);
	if (lo <= hi) {
		put_u64(o, "first_index", lo);
		put_u64(o, "last_index", hi);
	}
	put_u64(o, "data_bytes", data);
	if (list != NULL)
		json_object_object_add(o, "entries", list);
	return rc;
}

static int
describe_pages(struct inspector *in, struct flow *f, const uint8_t *p, size_t n,
    struct json_object *o, struct ferr *e)
{
	const struct dev_desc *d;
	struct msg_pages h;
	struct rd r;
	int rc;

	rd_init(&r, p, n);
	if ((rc = msg_pages_decode(&r, &h, e)) != 0)
		return rc;
	put_u64(o, "seq", h.seq);
	put_u64(o, "device", h.device);
	put_u64(o, "round", h.round);
	put_u64(o, "count", h.count);
	if ((d = find_dev(insp_manifest(in, f), h.device)) == NULL) {
		put_str(o, "entries", insp_manifest(in, f) == NULL
		    ? "not decoded: no MANIFEST of this session in the input"
		    : "not decoded: device not in the MANIFEST");
		return insp_manifest(in, f) == NULL ? 0
		    : ferr_set(e, FERR_PROTO_RANGE, "PAGES: device %u not in the MANIFEST", h.device);
	}
	return describe_entries(in, &r, &h, d, o, e);
}

/* HAVE (4.19): which units of which device the receiver already holds;
 * the name and the device's units when the session's MANIFEST is known. */
static int
describe_have(struct inspector *in, struct flow *f, const uint8_t *p, size_t n,
    struct json_object *o, struct ferr *e)
{
	const struct dev_desc *d;
	struct msg_have h;
	int rc;

	if ((rc = msg_have_decode(p, n, &h, e)) != 0)
		return rc;
	put_u64(o, "device", h.device);
	put_u64(o, "first", h.first);
	put_u64(o, "count", h.count);
	if (insp_manifest(in, f) == NULL)
		return 0;
	if ((d = find_dev(insp_manifest(in, f), h.device)) == NULL)
		return ferr_set(e, FERR_PROTO_RANGE, "HAVE: device %u not in the MANIFEST", h.device);
	put_str(o, "name", d->name);
	put_u64(o, "units", dev_units(d));
	if ((uint64_t)h.first + h.count > dev_units(d))
		return ferr_set(e, FERR_PROTO_RANGE, "HAVE: device %u units %u..%llu past its %llu units",
		    h.device, h.first, (unsigned long long)h.first + h.count - 1,
		    (unsigned long long)dev_units(d));
	return 0;
}

static int
describe_text(uint8_t type, const uint8_t *p, size_t n, struct json_object *o, struct ferr *e)
{
	struct msg_text m;
	int rc;

	memset(&m, 0, sizeof(m));
	rc = type == FT_REFUSE ? msg_refuse_decode(p, n, &m, e) : msg_error_decode(p, n, &m, e);
	if (rc != 0)
		return rc;
	put_code(o, m.code);
	if (type == FT_REFUSE)
		put_u64(o, "device", m.device);
	put_str(o, "text", m.text);
	return 0;
}

static int
describe_commit(const uint8_t *p, size_t n, struct json_object *o, struct ferr *e)
{
	struct msg_commit m;
	struct json_object *devs;
	uint32_t i;
	int rc;

	if ((rc = msg_commit_decode(p, n, &m, e)) != 0)
		return rc;
	put_u64(o, "seq", m.seq);
	put_u64(o, "ndev", m.ndev);
	devs = json_object_new_array();
	for (i = 0; i < m.ndev; i++) {
		struct json_object *jd = json_object_new_object();

		put_u64(jd, "id", m.dev[i].id);
		put_hex(jd, "digest", m.dev[i].digest, FERRY_HASH_LEN);
		json_object_array_add(devs, jd);
	}
	json_object_object_add(o, "devices", devs);
	put_hex(o, "state_digest", m.state_digest, FERRY_HASH_LEN);
	return 0;
}

static int
describe_resume(struct flow *f, const uint8_t *p, size_t n, struct json_object *o, struct ferr *e)
{
	struct msg_resume m;
	int rc = msg_resume_decode(p, n, &m, e);

	if (rc != 0)
		return rc;
	put_u64(o, "version", m.version);
	put_u64(o, "max_frame", m.max_frame);
	put_hex(o, "session", m.session_id, sizeof(m.session_id));
	put_hex(o, "proof", m.proof, sizeof(m.proof));
	learn_session(f, m.session_id);
	return 0;
}

static int
describe_resumed(const uint8_t *p, size_t n, struct json_object *o, struct ferr *e)
{
	static const char *const names[] = { "?", "receiving", "committed", "failed" };
	struct msg_resumed m;
	int rc = msg_resumed_decode(p, n, &m, e);

	if (rc != 0)
		return rc;
	put_str(o, "status", m.status <= RSM_FAILED ? names[m.status] : "?");
	put_u64(o, "next_seq", m.next_seq);
	put_u64(o, "state_offset", m.state_offset);
	return 0;
}

/* DOMAIN (4.15): the host facts, the waived checks, and the XML's length,
 * first bytes and the domain's name (through the project's own hardened
 * parser, src/common/domxml.c; an XML it refuses is shown, not an error of
 * the frame: refusing it is the receiver's VIRT_XML, after MANIFEST). */
static int
describe_domain(const uint8_t *p, size_t n, struct json_object *o, struct ferr *e)
{
	struct msg_domain *m = calloc(1, sizeof(*m));
	struct json_object *waived;
	struct domxml *dx = NULL;
	struct ferr xe = { 0 };
	char head[49];
	uint32_t i;
	int rc;

	if (m == NULL)
		return ferr_set(e, FERR_NOMEM, "DOMAIN: out of memory");
	if ((rc = msg_domain_decode(p, n, m, e)) != 0) {
		free(m);
		return rc;
	}
	put_u64(o, "flags", m->flags);
	json_object_object_add(o, "check_only",
	    json_object_new_boolean((m->flags & FERRY_DOMAIN_CHECK_ONLY) != 0));
	put_str(o, "arch", m->arch);
	put_str(o, "model", m->model);
	put_str(o, "uuid", m->uuid);
	waived = json_object_new_array();
	for (i = 0; i < m->nwaive; i++)
		json_object_array_add(waived, json_object_new_string(m->waive[i]));
	json_object_object_add(o, "waived", waived);
	put_u64(o, "xml_len", m->xml_len);
	for (i = 0; i < m->xml_len && i < sizeof(head) - 1; i++)
		head[i] = m->xml[i] >= 0x20 && m->xml[i] < 0x7f ? (char)m->xml[i] : '.';
	head[i] = '\0';
	put_str(o, "xml_head", head);
	if (domxml_parse((const char *)m->xml, m->xml_len, &dx, &xe) == 0) {
		put_str(o, "domain", dx->name);
		put_u64(o, "disks", dx->ndisks);
		domxml_free(dx);
	} else {
		put_str(o, "xml_error", xe.msg);
	}
	free(m);
	return 0;
}

static const char *
check_status_name(uint8_t st)
{
	static const char *const names[] = { "?", "pass", "fail", "waived" };

	return st <= CS_WAIVED ? names[st] : "?";
}

/* CHECKS (4.16): counts per status, and each row (text: a line per row). */
static int
describe_checks(const uint8_t *p, size_t n, struct json_object *o, struct ferr *e)
{
	struct msg_checks *m = calloc(1, sizeof(*m));
	struct json_object *rows;
	uint64_t count[CS_WAIVED + 1] = { 0 };
	uint32_t i;
	int rc;

	if (m == NULL)
		return ferr_set(e, FERR_NOMEM, "CHECKS: out of memory");
	if ((rc = msg_checks_decode(p, n, m, e)) != 0) {
		free(m);
		return rc;
	}
	rows = json_object_new_array();
	for (i = 0; i < m->n; i++) {
		const struct check_row *c = &m->row[i];
		struct json_object *jr = json_object_new_object();

		count[c->status]++;
		put_str(jr, "status", check_status_name(c->status));
		put_str(jr, "name", c->name);
		put_str(jr, "code_name", c->code == 0 ? "-" : c->code <= 1000 ? ferr_name(-(int)c->code) : "?");
		put_u64(jr, "code", c->code);
		put_str(jr, "source", c->src);
		put_str(jr, "destination", c->dst);
		put_str(jr, "why", c->why);
		json_object_array_add(rows, jr);
	}
	put_u64(o, "nrows", m->n);
	put_u64(o, "pass", count[CS_PASS]);
	put_u64(o, "fail", count[CS_FAIL]);
	put_u64(o, "waived", count[CS_WAIVED]);
	json_object_object_add(o, "rows", rows);
	free(m);
	return 0;
}

static struct json_object *
qitem_json(const struct qitem *it, const struct qitem_block *tab)
{
	static const char *const types[] = { "?", "opaque", "blocks", "page" };
	static const char *const kinds[] = { "?", "zero", "ref", "lz4", "raw" };
	struct json_object *j = json_object_new_object();

	put_str(j, "type", it->type <= QI_PAGE ? types[it->type] : "?");
	if (it->type == QI_OPAQUE) {
		put_u64(j, "len", it->len);
	} else if (it->type == QI_BLOCKS) {
		struct json_object *bl = json_object_new_array();
		uint32_t i;

		for (i = 0; i < it->nblocks; i++) {
			struct json_object *b = json_object_new_object();

			put_str(b, "id", tab[i].id);
			put_u64(b, "len", tab[i].len);
			json_object_array_add(bl, b);
		}
		json_object_object_add(j, "blocks", bl);
	} else if (it->type == QI_PAGE) {
		put_str(j, "record", (it->rec & FERRY_QREC_DATA) != 0 ? "data" : "zero");
		json_object_object_add(j, "cont", json_object_new_boolean((it->rec & FERRY_QREC_CONT) != 0));
		put_str(j, "block", tab[it->block].id);
		put_u64(j, "offset", it->offset);
		put_str(j, "kind", it->kind <= PK_RAW ? kinds[it->kind] : "?");
		put_u64(j, "record_len", it->len);
		if (it->kind == PK_REF) {
			put_str(j, "src_block", tab[it->src_block].id);
			put_u64(j, "src_offset", it->src_offset);
			put_hex(j, "hash", it->hash, sizeof(it->hash));
		} else if (it->kind == PK_LZ4) {
			put_u64(j, "clen", it->payload_len);
		}
	}
	return j;
}

/* QSTREAM (4.17): the header, counts of items and page kinds, the stream
 * bytes the frame rebuilds, and (verbose) each item.  PAGE items need the
 * session's block table: from a BLOCKS item earlier in the input (kept per
 * session) or in this frame; without it they are counted, not decoded. */
static int
describe_qstream(struct inspector *in, struct flow *f, const uint8_t *p, size_t n,
    struct json_object *o, struct ferr *e)
{
	struct json_object *list = in->verbose ? json_object_new_array() : NULL;
	struct qitem_block *tab = calloc(FERRY_QBLOCKS_MAX, sizeof(*tab));
	const struct qitem_block *known;
	uint64_t items[QI_PAGE + 1] = { 0 }, kinds[PK_RAW + 1] = { 0 }, bytes = 0;
	struct msg_qstream h;
	struct qitem it;
	struct rd r;
	uint32_t i, nb;
	int rc = 0, undecoded = 0;

	if (tab == NULL) {
		json_object_put(list);
		return ferr_set(e, FERR_NOMEM, "QSTREAM: out of memory");
	}
	if ((known = insp_qblocks(in, f, &nb)) != NULL)
		memcpy(tab, known, nb * sizeof(*tab));
	rd_init(&r, p, n);
	if ((rc = msg_qstream_decode(&r, &h, e)) != 0)
		goto out;
	put_u64(o, "seq", h.seq);
	put_u64(o, "stream_off", h.stream_off);
	put_u64(o, "count", h.count);
	for (i = 0; i < h.count; i++) {
		/* A PAGE with no table in sight: the BLOCKS item is not in the
		 * input, which is no error of the frame. */
		if (nb == 0 && !undecoded) {
			struct rd peek = r;
			uint8_t t = 0;

			if (rd_u8(&peek, &t) == 0 && t == QI_PAGE) {
				undecoded = 1;
				break;
			}
		}
		if ((rc = msg_qitem_next(&r, tab, nb, tab, &it, e)) != 0)
			break;
		items[it.type]++;
		bytes += it.len;
		if (it.type == QI_BLOCKS) {
			nb = it.nblocks;
			insp_keep_qblocks(in, f, tab, nb);
		}
		if (it.type == QI_PAGE)
			kinds[it.kind]++;
		if (list != NULL)
			json_object_array_add(list, qitem_json(&it, tab));
	}
	if (rc == 0 && !undecoded && rd_end(&r) != 0)
		rc = ferr_set(e, FERR_PROTO_LENGTH, "QSTREAM: %zu bytes after %u items", rd_left(&r),
		    h.count);
	put_u64(o, "opaque", items[QI_OPAQUE]);
	put_u64(o, "blocks", items[QI_BLOCKS]);
	put_u64(o, "zero", kinds[PK_ZERO]);
	put_u64(o, "ref", kinds[PK_REF]);
	put_u64(o, "lz4", kinds[PK_LZ4]);
	put_u64(o, "raw", kinds[PK_RAW]);
	if (undecoded)
		put_str(o, "items", "not all decoded: no BLOCKS of this session in the input");
	else
		put_u64(o, "stream_bytes", bytes);
	if (list != NULL) {
		json_object_object_add(o, "entries", list);
		list = NULL;
	}
out:
	json_object_put(list);
	free(tab);
	return rc;
}

static int
describe_seq(uint8_t type, const uint8_t *p, size_t n, struct json_object *o, struct ferr *e)
{
	struct msg_seq m;
	int rc = msg_seq_decode(type, p, n, &m, e);

	if (rc != 0)
		return rc;
	put_u64(o, type == FT_PING || type == FT_PONG ? "nonce" : "seq", m.seq);
	return 0;
}

int
describe_frame(struct inspector *in, struct flow *f, uint8_t type, const uint8_t *p, size_t n,
    struct json_object *o, struct ferr *e)
{
	switch (type) {
	case FT_HELLO: return describe_hello(p, n, o, e);
	case FT_WELCOME: return describe_welcome(f, p, n, o, e);
	case FT_MANIFEST: return describe_manifest(in, f, p, n, o, e);
	case FT_ACCEPT: {
		struct msg_accept m;
		int rc = msg_accept_decode(p, n, &m, e);

		if (rc == 0)
			put_u64(o, "next_seq", m.next_seq);
		return rc;
	}
	case FT_REFUSE:
	case FT_ERROR: return describe_text(type, p, n, o, e);
	case FT_PAGES: return describe_pages(in, f, p, n, o, e);
	case FT_ACK:
	case FT_COMMITTED:
	case FT_PING:
	case FT_PONG: return describe_seq(type, p, n, o, e);
	case FT_STATE: {
		struct msg_state m;
		int rc = msg_state_decode(p, n, &m, e);

		if (rc == 0) {
			put_u64(o, "offset", m.offset);
			put_u64(o, "data_bytes", m.len);
		}
		return rc;
	}
	case FT_COMMIT: return describe_commit(p, n, o, e);
	case FT_RESUME: return describe_resume(f, p, n, o, e);
	case FT_RESUMED: return describe_resumed(p, n, o, e);
	case FT_DOMAIN: return describe_domain(p, n, o, e);
	case FT_CHECKS: return describe_checks(p, n, o, e);
	case FT_QSTREAM: return describe_qstream(in, f, p, n, o, e);
	case FT_QRETURN: {
		struct msg_qreturn m;
		int rc = msg_qreturn_decode(p, n, &m, e);

		if (rc == 0) {
			put_u64(o, "offset", m.offset);
			put_u64(o, "data_bytes", m.len);
		}
		return rc;
	}
	case FT_HAVE: return describe_have(in, f, p, n, o, e);
	default: return ferr_set(e, FERR_PROTO_TYPE, "frame type %u unknown", type);
	}
}

/* ---- text rendering of fields ---- */

static void print_value(FILE *out, struct json_object *v);

static int
needs_quotes(const char *s)
{
	if (*s == '\0')
		return 1;
	for (; *s != '\0'; s++)
		if (*s <= ' ' || *s == '"' || *s == '=' || *s == '\\' || (unsigned char)*s >= 0x7f)
			return 1;
	return 0;
}

static void
print_string(FILE *out, const char *s)
{
	if (!needs_quotes(s)) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void
print_object(FILE *out, struct json_object *o, int braces)
{
	int first = 1;

	if (braces)
		fputc('{', out);
	json_object_object_foreach(o, k, v) {
		if (!first)
			fputc(' ', out);
		first = 0;
		fprintf(out, "%s=", k);
		print_value(out, v);
	}
	if (braces)
		fputc('}', out);
}

static void
print_value(FILE *out, struct json_object *v)
{
	size_t i, n;

	switch (json_object_get_type(v)) {
	case json_type_object:
		print_object(out, v, 1);
		break;
	case json_type_array:
		n = json_object_array_length(v);
		fputc('[', out);
		for (i = 0; i < n; i++) {
			if (i > 0)
				fputc(' ', out);
			print_value(out, json_object_array_get_idx(v, i));
		}
		fputc(']', out);
		break;
	case json_type_string:
		print_string(out, json_object_get_string(v));
		break;
	case json_type_null:
		fputs("null", out);
		break;
	default:
		fputs(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), out);
		break;
	}
}

void
print_fields_text(FILE *out, struct json_object *fields)
{
	print_object(out, fields, 0);
}
