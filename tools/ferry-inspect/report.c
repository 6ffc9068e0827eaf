/* Output of ferry-inspect: one line per frame (text or JSON), errors at
 * their offset, notes, and the summary per frame type. */
#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "frame.h"
#include "inspect.h"

void
insp_init(struct inspector *in, FILE *out, int json, int verbose)
{
	memset(in, 0, sizeof(*in));
	in->out = out;
	in->json = json;
	in->verbose = verbose;
}

void
insp_fini(struct inspector *in)
{
	uint32_t i;

	for (i = 0; i < in->nsessions; i++) {
		free(in->sessions[i].man);
		free(in->sessions[i].qblocks);
	}
	free(in->orphan);
	free(in->orphan_qblocks);
	in->nsessions = 0;
	in->orphan = NULL;
	in->orphan_qblocks = NULL;
}

static struct session_man *
session_slot(struct inspector *in, const uint8_t sid[FERRY_SESSION_ID_LEN], int add)
{
	uint32_t i;

	for (i = 0; i < in->nsessions; i++)
		if (memcmp(in->sessions[i].sid, sid, FERRY_SESSION_ID_LEN) == 0)
			return &in->sessions[i];
	if (!add || in->nsessions >= INSP_MAX_SESSIONS)
		return NULL;
	memcpy(in->sessions[in->nsessions].sid, sid, FERRY_SESSION_ID_LEN);
	in->sessions[in->nsessions].man = NULL;
	in->sessions[in->nsessions].qblocks = NULL;
	in->sessions[in->nsessions].nqblocks = 0;
	return &in->sessions[in->nsessions++];
}

const struct msg_manifest *
insp_manifest(const struct inspector *in, const struct flow *f)
{
	uint32_t i;

	if (f->have_sid)
		for (i = 0; i < in->nsessions; i++)
			if (memcmp(in->sessions[i].sid, f->sid, FERRY_SESSION_ID_LEN) == 0 &&
			    in->sessions[i].man != NULL)
				return in->sessions[i].man;
	return in->orphan;
}

void
insp_keep_manifest(struct inspector *in, const struct flow *f, const struct msg_manifest *m)
{
	struct msg_manifest **slot = &in->orphan;
	struct session_man *s;

	if (f->have_sid && (s = session_slot(in, f->sid, 1)) != NULL)
		slot = &s->man;
	if (*slot == NULL && (*slot = malloc(sizeof(**slot))) == NULL)
		return;     /* PAGES of this session then go undecoded */
	memcpy(*slot, m, sizeof(*m));
}

const struct qitem_block *
insp_qblocks(const struct inspector *in, const struct flow *f, uint32_t *n)
{
	uint32_t i;

	if (f->have_sid)
		for (i = 0; i < in->nsessions; i++)
			if (memcmp(in->sessions[i].sid, f->sid, FERRY_SESSION_ID_LEN) == 0 &&
			    in->sessions[i].qblocks != NULL) {
				*n = in->sessions[i].nqblocks;
				return in->sessions[i].qblocks;
			}
	*n = in->orphan_qblocks != NULL ? in->orphan_nqblocks : 0;
	return in->orphan_qblocks;
}

void
insp_keep_qblocks(struct inspector *in, const struct flow *f, const struct qitem_block *b,
    uint32_t n)
{
	struct qitem_block **slot = &in->orphan_qblocks;
	uint32_t *nslot = &in->orphan_nqblocks;
	struct session_man *s;

	if (n > FERRY_QBLOCKS_MAX)
		return;
	if (f->have_sid && (s = session_slot(in, f->sid, 1)) != NULL) {
		slot = &s->qblocks;
		nslot = &s->nqblocks;
	}
	if (*slot == NULL && (*slot = calloc(FERRY_QBLOCKS_MAX, sizeof(**slot))) == NULL)
		return;     /* PAGE items of this session then go undecoded */
	memcpy(*slot, b, n * sizeof(*b));
	*nslot = n;
}

/* ---- lines ---- */

static void
where_text(FILE *out, const struct where *w)
{
	char loc[48];

	if (w->capture)
		snprintf(loc, sizeof(loc), "tcp%u#%llu", w->stream, (unsigned long long)w->packet);
	else
		snprintf(loc, sizeof(loc), "@%llu", (unsigned long long)w->offset);
	fprintf(out, "%-12s", loc);
}

static struct json_object *
where_json(const struct where *w, const char *record)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "record", json_object_new_string(record));
	json_object_object_add(o, "src", json_object_new_string(w->src));
	if (w->capture) {
		json_object_object_add(o, "stream", json_object_new_uint64(w->stream));
		json_object_object_add(o, "packet", json_object_new_uint64(w->packet));
	} else {
		json_object_object_add(o, "offset", json_object_new_uint64(w->offset));
	}
	return o;
}

static void
emit_json(struct inspector *in, struct json_object *o)
{
	fprintf(in->out, "%s\n",
	    json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static double
rel_seconds(const struct flow *f, uint64_t t)
{
	return t >= f->t0_us ? (double)(t - f->t0_us) / 1e6 : -(double)(f->t0_us - t) / 1e6;
}

static void
count_frame(struct inspector *in, const uint8_t *p, size_t n, int partial)
{
	uint8_t type = n > 0 ? p[0] : 0;
	struct type_stats *ts = &in->types[frame_info(type) != NULL ? type : FT_COUNT];

	ts->count++;
	ts->bytes += n;
	in->frames++;
	in->frame_bytes += n;
	in->partial += partial != 0;
}

/* Text: the fields on the frame's line; PAGES entries and QSTREAM items (--verbose) and
 * CHECKS rows below it, one line each. */
static void
print_frame_text(struct inspector *in, const struct where *w, const struct flow *f,
    const char *dir_word, uint8_t fdir, uint64_t time_us, const char *name, uint64_t len,
    struct json_object *fields, const char *err)
{
	static const char *const below[] = { "entries", "rows" };
	struct json_object *entries = NULL;
	size_t k;

	where_text(in->out, w);
	fprintf(in->out, " %11.6f  %-4s %s  %-9s %8llu ", rel_seconds(f, time_us),
	    dir_word != NULL ? dir_word : "", fdir == FDIR_S2R ? "S->R" : "R->S", name,
	    (unsigned long long)len);
	for (k = 0; k < sizeof(below) / sizeof(below[0]) && entries == NULL; k++) {
		if (json_object_object_get_ex(fields, below[k], &entries) &&
		    json_object_is_type(entries, json_type_array)) {
			json_object_get(entries);
			json_object_object_del(fields, below[k]);
		} else {
			entries = NULL;
		}
	}
	print_fields_text(in->out, fields);
	if (err != NULL)
		fprintf(in->out, "%sERROR: %s", json_object_object_length(fields) ? "  " : "", err);
	fputc('\n', in->out);
	if (entries != NULL) {
		size_t i, n = json_object_array_length(entries);

		for (i = 0; i < n; i++) {
			fprintf(in->out, "%-12s   ", "");
			print_fields_text(in->out, json_object_array_get_idx(entries, i));
			fputc('\n', in->out);
		}
		json_object_put(entries);
	}
}

void
insp_frame(struct inspector *in, struct flow *f, const struct where *w, uint8_t fdir,
    const char *dir_word, uint64_t time_us, const uint8_t *p, size_t n, int partial)
{
	struct json_object *fields = json_object_new_object();
	struct frame_hdr h = { 0, 0, 0 };
	struct ferr e = { 0 };
	const char *name = n > 0 ? frame_name(p[0]) : "-";
	char partial_msg[128];
	const char *err = NULL;
	int rc;

	count_frame(in, p, n, partial);
	if (partial) {
		snprintf(partial_msg, sizeof(partial_msg), "%zu bytes", n);
		json_object_object_add(fields, "partial", json_object_new_string(partial_msg));
		if (n >= FERRY_FRAME_HDR_LEN)
			h.len = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
		json_object_object_add(fields, "note", json_object_new_string(
		    "the connection ended (or the length was over the limit) before the frame was complete"));
	} else if ((rc = frame_decode_hdr(p, n, FERRY_MAX_FRAME_LIMIT, fdir, &h, &e)) != 0) {
		err = rc == FERR_NEED_MORE ? "frame header truncated" : e.msg;
	} else if (n - FERRY_FRAME_HDR_LEN != h.len) {
		snprintf(e.msg, sizeof(e.msg), "%s: %zu payload bytes, header says %u", name,
		    n - FERRY_FRAME_HDR_LEN, h.len);
		err = e.msg;
	} else if (describe_frame(in, f, h.type, p + FERRY_FRAME_HDR_LEN, h.len, fields, &e) != 0) {
		err = e.msg;
	}
	if (err != NULL)
		in->errors++;
	if (in->json) {
		struct json_object *o = where_json(w, "frame");

		json_object_object_add(o, "time_us", json_object_new_uint64(time_us));
		snprintf(partial_msg, sizeof(partial_msg), "%.6f", rel_seconds(f, time_us));
		json_object_object_add(o, "t", json_object_new_double_s(rel_seconds(f, time_us), partial_msg));
		if (dir_word != NULL)
			json_object_object_add(o, "dir", json_object_new_string(dir_word));
		json_object_object_add(o, "flow", json_object_new_string(fdir == FDIR_S2R ? "S->R" : "R->S"));
		json_object_object_add(o, "type", json_object_new_string(name));
		json_object_object_add(o, "length", json_object_new_uint64(
		    n >= FERRY_FRAME_HDR_LEN ? (partial ? h.len : n - FERRY_FRAME_HDR_LEN) : 0));
		json_object_object_add(o, "fields", fields);
		if (err != NULL)
			json_object_object_add(o, "error", json_object_new_string(err));
		emit_json(in, o);
		return;
	}
	print_frame_text(in, w, f, dir_word, fdir, time_us, name,
	    n >= FERRY_FRAME_HDR_LEN ? (partial ? h.len : n - FERRY_FRAME_HDR_LEN) : 0, fields, err);
	json_object_put(fields);
}

void
insp_session(struct inspector *in, struct flow *f, const struct where *w, uint64_t time_us,
    const uint8_t sid[FERRY_SESSION_ID_LEN])
{
	struct json_object *o = json_object_new_object();
	char hex[2 * FERRY_SESSION_ID_LEN + 1];
	size_t i;

	for (i = 0; i < FERRY_SESSION_ID_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", sid[i]);
	if (!f->have_sid) {
		memcpy(f->sid, sid, FERRY_SESSION_ID_LEN);
		f->have_sid = 1;
	}
	json_object_object_add(o, "session", json_object_new_string(hex));
	json_object_object_add(o, "time_us", json_object_new_uint64(time_us));
	insp_note(in, w, "session", o);
}

void
insp_note(struct inspector *in, const struct where *w, const char *kind, struct json_object *fields)
{
	in->records++;
	if (in->json) {
		struct json_object *o = where_json(w, kind);

		json_object_object_foreach(fields, k, v)
			json_object_object_add(o, k, json_object_get(v));
		json_object_put(fields);
		emit_json(in, o);
		return;
	}
	where_text(in->out, w);
	fprintf(in->out, " %s ", kind);
	print_fields_text(in->out, fields);
	fputc('\n', in->out);
	json_object_put(fields);
}

void
insp_error(struct inspector *in, const struct where *w, const char *fmt, ...)
{
	char msg[FERR_MSG_MAX + 128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	in->errors++;
	if (in->json) {
		struct json_object *o = where_json(w, "error");

		json_object_object_add(o, "error", json_object_new_string(msg));
		emit_json(in, o);
		return;
	}
	where_text(in->out, w);
	fprintf(in->out, " ERROR: %s\n", msg);
}

void
insp_summary(struct inspector *in)
{
	struct json_object *types = json_object_new_object(), *o;
	unsigned t;

	for (t = 1; t <= FT_COUNT; t++) {
		const char *name = t < FT_COUNT ? frame_name((uint8_t)t) : "UNKNOWN";

		if (in->types[t].count == 0)
			continue;
		o = json_object_new_object();
		json_object_object_add(o, "count", json_object_new_uint64(in->types[t].count));
		json_object_object_add(o, "bytes", json_object_new_uint64(in->types[t].bytes));
		json_object_object_add(types, name, o);
	}
	if (in->json) {
		o = json_object_new_object();
		json_object_object_add(o, "record", json_object_new_string("summary"));
		json_object_object_add(o, "frames", json_object_new_uint64(in->frames));
		json_object_object_add(o, "bytes", json_object_new_uint64(in->frame_bytes));
		json_object_object_add(o, "partial", json_object_new_uint64(in->partial));
		json_object_object_add(o, "errors", json_object_new_uint64(in->errors));
		json_object_object_add(o, "types", types);
		emit_json(in, o);
		return;
	}
	fprintf(in->out, "\nsummary: %llu frames, %llu bytes (headers included), %llu partial, "
	    "%llu errors\n", (unsigned long long)in->frames, (unsigned long long)in->frame_bytes,
	    (unsigned long long)in->partial, (unsigned long long)in->errors);
	fprintf(in->out, "  %-10s %10s %14s\n", "type", "frames", "bytes");
	json_object_object_foreach(types, k, v) {
		struct json_object *c, *b;

		json_object_object_get_ex(v, "count", &c);
		json_object_object_get_ex(v, "bytes", &b);
		fprintf(in->out, "  %-10s %10llu %14llu\n", k,
		    (unsigned long long)json_object_get_uint64(c), (unsigned long long)json_object_get_uint64(b));
	}
	json_object_put(types);
}
