/* Readable forms of the `ctl SOCKET status` answers (ctl.h): aligned
 * "Key: value" lines and tables, sizes and rates with binary units.  Only
 * the fields present are shown, so an answer with more or fewer fields
 * (another version of the daemon) still prints. */
#include "ctl.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "units.h"

#define SHOW_COLS 10
#define SHOW_CELL 96
#define KEY_WIDTH 14            /* "Bandwidth cap:" */

struct table {
	char (*cell)[SHOW_COLS][SHOW_CELL];
	size_t nrows, ncols;
};

static int
get_i64(struct json_object *o, const char *k, int64_t *v)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, k, &x) || x == NULL)
		return 0;
	*v = json_object_get_int64(x);
	return 1;
}

static const char *
get_str(struct json_object *o, const char *k)
{
	struct json_object *x;

	if (!json_object_object_get_ex(o, k, &x) || x == NULL || !json_object_is_type(x, json_type_string))
		return NULL;
	return json_object_get_string(x);
}

void
ctl_fmt_duration(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	if (ms < 1000)
		snprintf(buf, len, "%llums", (unsigned long long)ms);
	else if (ms < 60000)
		snprintf(buf, len, "%.1fs", (double)ms / 1000.0);
	else if (s < 3600)
		snprintf(buf, len, "%llum%02llus", (unsigned long long)(s / 60),
		    (unsigned long long)(s % 60));
	else
		snprintf(buf, len, "%lluh%02llum", (unsigned long long)(s / 3600),
		    (unsigned long long)(s / 60 % 60));
}

void
ctl_fmt_rate(uint64_t bytes_per_sec, char *buf, size_t len)
{
	char s[32];

	fmt_size(bytes_per_sec, s, sizeof(s));
	snprintf(buf, len, "%s/s", s);
}

static void
key_line(FILE *out, const char *key, const char *fmt, ...) FERRY_PRINTF(3, 4);

static void
key_line(FILE *out, const char *key, const char *fmt, ...)
{
	char k[32];
	va_list ap;

	snprintf(k, sizeof(k), "%s:", key);
	fprintf(out, "%-*s ", KEY_WIDTH, k);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
}

static int
table_init(struct table *t, size_t nrows, size_t ncols)
{
	t->nrows = 0;
	t->ncols = ncols;
	t->cell = calloc(nrows + 1, sizeof(*t->cell));
	return t->cell != NULL ? 0 : -1;
}

/* Set cell (row, col) from a format. */
static void
cell(struct table *t, size_t row, size_t col, const char *fmt, ...) FERRY_PRINTF(4, 5);

static void
cell(struct table *t, size_t row, size_t col, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(t->cell[row][col], SHOW_CELL, fmt, ap);
	va_end(ap);
}

/* Row 0 is the header; columns two blanks apart, the last not padded. */
static void
table_print(const struct table *t, FILE *out, const char *indent)
{
	size_t w[SHOW_COLS] = { 0 }, r, c;

	for (r = 0; r <= t->nrows; r++)
		for (c = 0; c < t->ncols; c++)
			if (strlen(t->cell[r][c]) > w[c])
				w[c] = strlen(t->cell[r][c]);
	for (r = 0; r <= t->nrows; r++) {
		char line[SHOW_COLS * (SHOW_CELL + 2) + 1];
		size_t n = 0;

		line[0] = '\0';
		for (c = 0; c < t->ncols && n < sizeof(line) - 1; c++)
			n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%-*s",
			    c > 0 ? "  " : "", c + 1 < t->ncols ? (int)w[c] : 0, t->cell[r][c]);
		if (n > sizeof(line) - 1)
			n = sizeof(line) - 1;
		while (n > 0 && line[n - 1] == ' ')
			line[--n] = '\0';
		fprintf(out, "%s%s\n", indent, line);
	}
}

static void
size_cell(struct table *t, size_t row, size_t col, struct json_object *o, const char *k)
{
	int64_t v;
	char s[32];

	if (!get_i64(o, k, &v) || v < 0) {
		cell(t, row, col, "-");
		return;
	}
	fmt_size((uint64_t)v, s, sizeof(s));
	cell(t, row, col, "%s", s);
}

static void
dur_cell(struct table *t, size_t row, size_t col, struct json_object *o, const char *k)
{
	int64_t v;
	char s[32];

	if (!get_i64(o, k, &v) || v < 0) {
		cell(t, row, col, "-");
		return;
	}
	ctl_fmt_duration((uint64_t)v, s, sizeof(s));
	cell(t, row, col, "%s", s);
}

static void
str_cell(struct table *t, size_t row, size_t col, struct json_object *o, const char *k, int max)
{
	const char *s = get_str(o, k);

	cell(t, row, col, "%.*s", max, s != NULL && s[0] != '\0' ? s : "-");
}

/* ---- ferry-recv ------------------------------------------------------------ */

static void
show_sessions(struct json_object *a, FILE *out)
{
	static const char *const head[] = { "SESSION", "PEER", "NAME", "STATE", "BYTES", "RATE",
		"ROUND", "CUTS", "ELAPSED" };
	size_t i, n = json_object_array_length(a);
	struct table t;

	if (table_init(&t, n, 9) != 0)
		return;
	for (i = 0; i < 9; i++)
		cell(&t, 0, i, "%s", head[i]);
	for (i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(a, i);
		size_t r = i + 1;
		int64_t v;
		char b[32], d[32];

		str_cell(&t, r, 0, s, "session", 16);
		str_cell(&t, r, 1, s, "peer", 64);
		str_cell(&t, r, 2, s, "peer_name", 40);
		if (get_i64(s, "paused_ms", &v) && v >= 0) {
			ctl_fmt_duration((uint64_t)v, d, sizeof(d));
			cell(&t, r, 3, "paused %s", d);
		} else {
			str_cell(&t, r, 3, s, "state", 32);
		}
		size_cell(&t, r, 4, s, "logical_bytes");
		if (get_i64(s, "rate", &v) && v >= 0) {
			ctl_fmt_rate((uint64_t)v, b, sizeof(b));
			cell(&t, r, 5, "%s", b);
		} else {
			cell(&t, r, 5, "-");
		}
		cell(&t, r, 6, "%lld", get_i64(s, "round", &v) ? (long long)v : 0LL);
		cell(&t, r, 7, "%lld", get_i64(s, "cuts", &v) ? (long long)v : 0LL);
		dur_cell(&t, r, 8, s, "elapsed_ms");
		t.nrows = r;
	}
	table_print(&t, out, "  ");
	free(t.cell);
}

static void
show_history(struct json_object *a, FILE *out)
{
	static const char *const head[] = { "SESSION", "PEER", "RESULT", "BYTES", "DURATION", "CUTS",
		"ERROR" };
	size_t i, n = json_object_array_length(a);
	struct table t;

	if (table_init(&t, n, 7) != 0)
		return;
	for (i = 0; i < 7; i++)
		cell(&t, 0, i, "%s", head[i]);
	for (i = 0; i < n; i++) {
		struct json_object *h = json_object_array_get_idx(a, i);
		size_t r = i + 1;
		const char *err = get_str(h, "error");
		int64_t v;

		str_cell(&t, r, 0, h, "session", 16);
		str_cell(&t, r, 1, h, "peer", 64);
		str_cell(&t, r, 2, h, "result", 16);
		size_cell(&t, r, 3, h, "logical_bytes");
		dur_cell(&t, r, 4, h, "duration_ms");
		cell(&t, r, 5, "%lld", get_i64(h, "cuts", &v) ? (long long)v : 0LL);
		cell(&t, r, 6, "%.*s", SHOW_CELL - 1, err != NULL ? err : "");
		t.nrows = r;
	}
	table_print(&t, out, "  ");
	free(t.cell);
}

void
ctl_show_recv_status(struct json_object *r, FILE *out)
{
	struct json_object *a = NULL, *h = NULL;
	size_t ns = 0, nh = 0, i, paused = 0;
	int64_t active = -1;

	if (json_object_object_get_ex(r, "sessions", &a) && json_object_is_type(a, json_type_array))
		ns = json_object_array_length(a);
	else
		a = NULL;
	if (json_object_object_get_ex(r, "history", &h) && json_object_is_type(h, json_type_array))
		nh = json_object_array_length(h);
	else
		h = NULL;
	(void)get_i64(r, "active", &active);
	if (active < 0)
		active = (int64_t)ns;
	for (i = 0; i < ns; i++) {
		int64_t v;

		if (get_i64(json_object_array_get_idx(a, i), "paused_ms", &v))
			paused++;
	}
	if (active == 0)
		key_line(out, "State", "idle (no migration in progress)");
	else if (paused > 0)
		key_line(out, "State", "receiving (%lld active, %zu paused waiting for the sender)",
		    (long long)active, paused);
	else
		key_line(out, "State", "receiving (%lld active)", (long long)active);
	if (ns == 0) {
		key_line(out, "Sessions", "none");
	} else {
		key_line(out, "Sessions", "%zu", ns);
		show_sessions(a, out);
	}
	if (nh == 0) {
		key_line(out, "History", "none");
	} else {
		key_line(out, "History", "last %zu, newest first", nh);
		show_history(h, out);
	}
}

/* ---- ferry-send ------------------------------------------------------------ */

void
ctl_show_send_status(struct json_object *r, FILE *out)
{
	const char *s, *st = get_str(r, "state"), *back = get_str(r, "resume_to");
	int64_t v, el = -1, lb = -1, wb = -1, scanned, total;
	char a[32], b[32], c[32];

	s = get_str(r, "session");
	if (s != NULL) {
		size_t i;

		for (i = 0; s[i] == '0'; i++)
			;
		key_line(out, "Session", "%s", s[i] == '\0' ? "(not assigned yet)" : s);
	}
	if (st != NULL) {
		if (get_i64(r, "paused_ms", &v) && v >= 0) {
			ctl_fmt_duration((uint64_t)v, a, sizeof(a));
			key_line(out, "State", "%s %s (link down, reconnecting%s%s)", st, a,
			    back != NULL ? "; then " : "", back != NULL ? back : "");
		} else {
			key_line(out, "State", "%s", st);
		}
	}
	if (get_i64(r, "round", &v)) {
		if (get_i64(r, "round_units_scanned", &scanned) && get_i64(r, "total_units", &total) &&
		    total > 0)
			key_line(out, "Round", "%lld, %.1f%% scanned (%lld of %lld units)", (long long)v,
			    100.0 * (double)scanned / (double)total, (long long)scanned, (long long)total);
		else
			key_line(out, "Round", "%lld", (long long)v);
	}
	(void)get_i64(r, "elapsed_ms", &el);
	(void)get_i64(r, "logical_bytes", &lb);
	(void)get_i64(r, "wire_bytes", &wb);
	if (lb >= 0 || wb >= 0) {
		fmt_size(lb >= 0 ? (uint64_t)lb : 0, a, sizeof(a));
		fmt_size(wb >= 0 ? (uint64_t)wb : 0, b, sizeof(b));
		key_line(out, "Transferred", "%s logical, %s on the wire", a, b);
	}
	if (el > 0 && (lb >= 0 || wb >= 0)) {
		ctl_fmt_rate(lb >= 0 ? (uint64_t)(lb * 1000 / el) : 0, a, sizeof(a));
		ctl_fmt_rate(wb >= 0 ? (uint64_t)(wb * 1000 / el) : 0, b, sizeof(b));
		key_line(out, "Rate", "%s logical, %s wire (average)", a, b);
	}
	if (get_i64(r, "dirty_rate", &v) && v >= 0) {
		ctl_fmt_rate((uint64_t)v, a, sizeof(a));
		key_line(out, "Dirty rate", "%s", a);
	}
	if (get_i64(r, "bandwidth", &v)) {
		ctl_fmt_rate(v > 0 ? (uint64_t)v : 0, a, sizeof(a));
		key_line(out, "Bandwidth cap", "%s", v > 0 ? a : "none");
	}
	if (get_i64(r, "sent_seq", &v)) {
		int64_t acked = 0;

		(void)get_i64(r, "acked_seq", &acked);
		key_line(out, "Frames", "%lld sent, %lld acknowledged", (long long)v, (long long)acked);
	}
	if (get_i64(r, "cuts", &v))
		key_line(out, "Cuts", "%lld", (long long)v);
	if (el >= 0) {
		ctl_fmt_duration((uint64_t)el, c, sizeof(c));
		key_line(out, "Elapsed", "%s", c);
	}
}
