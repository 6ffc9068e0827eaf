#include "events.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define EV_MSG_MAX 4096         /* bytes of a message before escaping */
#define EV_LINE_MAX 8192        /* bytes of a whole line */

static const char *const level_names[] = { NULL, "error", "warn", "info", "debug" };

/* syslog priorities for journald's "<N>" prefix (sd-daemon(3)). */
static const char level_prio[] = { '6', '3', '4', '6', '7' };

void
ev_init(struct events *ev, const char *prog)
{
	memset(ev, 0, sizeof(*ev));
	ev->prog = prog;
	ev->out = stdout;
	ev->level = EV_INFO;
	ev->journal = ev_stderr_is_journal();
}

const char *
ev_level_name(int level)
{
	return level >= EV_ERROR && level <= EV_DEBUG ? level_names[level] : "info";
}

int
ev_level_parse(const char *flag, const char *s, int *level, struct ferr *e)
{
	int i;

	for (i = EV_ERROR; i <= EV_DEBUG; i++) {
		if (strcmp(s, level_names[i]) == 0) {
			*level = i;
			return 0;
		}
	}
	if (strcmp(s, "warning") == 0) {
		*level = EV_WARN;
		return 0;
	}
	return ferr_set(e, FERR_USAGE, "%s '%s': unknown level (use error, warn, info or debug)",
	    flag, s);
}

int
ev_stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (js == NULL || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return 0;
	if (fstat(2, &st) != 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static int
needs_quote(const char *v)
{
	const unsigned char *p;

	if (*v == '\0')
		return 1;
	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f)
			return 1;
	return 0;
}

/* The escaped form of one byte inside quotes, into out (at most 7 bytes). */
static size_t
escape_byte(unsigned char ch, char *out)
{
	switch (ch) {
	case '"': memcpy(out, "\\\"", 2); return 2;
	case '\\': memcpy(out, "\\\\", 2); return 2;
	case '\n': memcpy(out, "\\n", 2); return 2;
	case '\r': memcpy(out, "\\r", 2); return 2;
	case '\t': memcpy(out, "\\t", 2); return 2;
	default:
		break;
	}
	if (ch < ' ' || ch == 0x7f) {
		snprintf(out, 7, "\\u%04x", ch);
		return 6;
	}
	out[0] = (char)ch;
	return 1;
}

/* Append key=value at buf[*off] (size len, NUL kept).  With cut, a quoted
 * value that does not fit is cut (whole escapes only) and closed. */
static int
append_kv(char *buf, size_t len, size_t *off, const char *key, const char *value, int quote,
    int cut)
{
	size_t o = *off, klen = strlen(key);
	const unsigned char *p;
	char esc[8];

	quote = quote || needs_quote(value);
	/* separator, key, '=', two quotes, NUL */
	if (len < o + (o > 0) + klen + 1 + (quote ? 2 : 0) + 1)
		return -1;
	if (o > 0)
		buf[o++] = ' ';
	memcpy(buf + o, key, klen);
	o += klen;
	buf[o++] = '=';
	if (quote)
		buf[o++] = '"';
	for (p = (const unsigned char *)value; *p != '\0'; p++) {
		size_t n = quote ? escape_byte(*p, esc) : (esc[0] = (char)*p, 1);

		/* room for this, the closing quote and the NUL */
		if (o + n + (quote ? 1 : 0) + 1 > len) {
			if (!cut) {
				buf[*off] = '\0';
				return -1;
			}
			break;
		}
		memcpy(buf + o, esc, n);
		o += n;
	}
	if (quote)
		buf[o++] = '"';
	buf[o] = '\0';
	*off = o;
	return 0;
}

int
ev_kv_append(char *buf, size_t len, const char *key, const char *value, int quote)
{
	size_t off = strlen(buf);

	return append_kv(buf, len, &off, key, value, quote, 0);
}

/* A session id of zeros is "none yet". */
static int
is_zero_id(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s != '0')
			return 0;
	return 1;
}

size_t
ev_format(char *buf, size_t len, const char *prefix, enum ev_level lv, const struct ev_ctx *cx,
    const char *msg)
{
	size_t off = 0;

	if (len == 0)
		return 0;
	buf[0] = '\0';
	if (prefix != NULL) {
		off = (size_t)snprintf(buf, len, "%s:", prefix);
		if (off >= len) {
			off = len - 1;
			buf[off] = '\0';
			return off;
		}
	}
	(void)append_kv(buf, len, &off, "level", ev_level_name(lv), 0, 0);
	if (cx != NULL) {
		char sid[17];

		snprintf(sid, sizeof(sid), "%.16s", cx->session);
		if (sid[0] != '\0' && !is_zero_id(sid))
			(void)append_kv(buf, len, &off, "session", sid, 0, 0);
		if (cx->peer[0] != '\0')
			(void)append_kv(buf, len, &off, "peer", cx->peer, 0, 0);
		if (cx->state[0] != '\0')
			(void)append_kv(buf, len, &off, "state", cx->state, 0, 0);
		if (cx->reason[0] != '\0')
			(void)append_kv(buf, len, &off, "reason", cx->reason, 0, 0);
		if (cx->code[0] != '\0')
			(void)append_kv(buf, len, &off, "code", cx->code, 0, 0);
	}
	(void)append_kv(buf, len, &off, "msg", msg, 1, 1);
	return off;
}

static void
copy_field(char *dst, size_t n, const char *src)
{
	if (src[0] != '\0')
		snprintf(dst, n, "%s", src);
}

static void
write_line(const struct events *ev, enum ev_level lv, const struct ev_ctx *given, const char *fmt,
    va_list ap)
{
	char msg[EV_MSG_MAX], line[EV_LINE_MAX];
	struct ev_ctx cx;
	FILE *f = ev->err != NULL ? ev->err : stderr;
	size_t n;

	memset(&cx, 0, sizeof(cx));
	if (ev->ctx != NULL)
		ev->ctx(ev->ctx_arg, &cx);
	if (given != NULL) {
		copy_field(cx.session, sizeof(cx.session), given->session);
		copy_field(cx.peer, sizeof(cx.peer), given->peer);
		copy_field(cx.state, sizeof(cx.state), given->state);
		copy_field(cx.reason, sizeof(cx.reason), given->reason);
		copy_field(cx.code, sizeof(cx.code), given->code);
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = ev_format(line, sizeof(line), ev->journal ? NULL : ev->prog, lv, &cx, msg);
	/* One write per line, so lines of processes sharing stderr do not mix. */
	if (ev->journal)
		fprintf(f, "<%c>%.*s\n", level_prio[lv], (int)n, line);
	else
		fprintf(f, "%.*s\n", (int)n, line);
	fflush(f);
}

int
ev_enabled(const struct events *ev, enum ev_level lv)
{
	return (int)lv <= (ev->level != 0 ? ev->level : EV_INFO);
}



void
ev_logx(const struct events *ev, enum ev_level lv, const struct ev_ctx *cx, const char *fmt, ...)
{
	va_list ap;

	if (!ev_enabled(ev, lv))
		return;
	va_start(ap, fmt);
	write_line(ev, lv, cx, fmt, ap);
	va_end(ap);
}

void
ev_log(const struct events *ev, const char *fmt, ...)
{
	va_list ap;

	if (!ev_enabled(ev, EV_INFO))
		return;
	va_start(ap, fmt);
	write_line(ev, EV_INFO, NULL, fmt, ap);
	va_end(ap);
}

void
ev_warn(const struct events *ev, const char *fmt, ...)
{
	va_list ap;

	if (!ev_enabled(ev, EV_WARN))
		return;
	va_start(ap, fmt);
	write_line(ev, EV_WARN, NULL, fmt, ap);
	va_end(ap);
}

void
ev_debug(const struct events *ev, const char *fmt, ...)
{
	va_list ap;

	if (!ev_enabled(ev, EV_DEBUG))
		return;
	va_start(ap, fmt);
	write_line(ev, EV_DEBUG, NULL, fmt, ap);
	va_end(ap);
}

void
ev_final(const struct events *ev, enum ev_level lv, const struct ev_ctx *cx, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	write_line(ev, lv, cx, fmt, ap);
	va_end(ap);
}

void
ev_error(const struct events *ev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	write_line(ev, EV_ERROR, NULL, fmt, ap);
	va_end(ap);
}

void
ev_json(const struct events *ev, const char *name, struct json_object *fields)
{
	struct json_object *o;
	struct json_object_iterator it, end;
	struct timespec ts;

	if (!ev->json) {
		json_object_put(fields);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	o = json_object_new_object();
	json_object_object_add(o, "event", json_object_new_string(name));
	json_object_object_add(o, "ts_ms",
	    json_object_new_int64((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000));
	if (fields != NULL) {
		it = json_object_iter_begin(fields);
		end = json_object_iter_end(fields);
		while (!json_object_iter_equal(&it, &end)) {
			json_object_object_add(o, json_object_iter_peek_name(&it),
			    json_object_get(json_object_iter_peek_value(&it)));
			json_object_iter_next(&it);
		}
		json_object_put(fields);
	}
	fprintf(ev->out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	fflush(ev->out);
	json_object_put(o);
}
