/* Structured output: log lines on stderr, and with --json one JSON object
 * per line on stdout (json-c), each with "event" and "ts_ms".
 *
 * A log line is one event in logfmt, `key=value` pairs separated by one
 * space, after the program's name:
 *
 *     ferry-recv: level=info session=8882d30b9a7e9dce peer=10.10.0.1:41234 state=RECEIVING msg="..."
 *
 * Keys, in this order, each left out when unknown: level (error, warn,
 * info, debug), session (the first 16 hex digits of the session id),
 * peer (ADDR:PORT of the other host), state (the session's state, as the
 * side names it in ctl status), reason (the result of a failure: refused,
 * timeout, ...), code (the error code's name: REFUSE_SIZE, ...), and last
 * msg, the human text, always quoted.  A value is quoted when it is empty
 * or holds a blank, '=', '"', '\' or a control byte; inside quotes '"' and
 * '\' are escaped with '\', newline, CR and tab as \n \r \t, other control
 * bytes as \u00XX, so an event is always one line.  When stderr is the
 * systemd journal (JOURNAL_STREAM names it), each line starts with the
 * syslog priority, "<3>" to "<7>", instead of the program's name. */
#ifndef FERRY_EVENTS_H
#define FERRY_EVENTS_H

#include <stddef.h>
#include <stdio.h>

#include "err.h"

struct json_object;

/* Log levels (--log-level): a line is written when its level is at most
 * the configured one. */
enum ev_level {
	EV_ERROR = 1,
	EV_WARN = 2,
	EV_INFO = 3,
	EV_DEBUG = 4,
};

/* What a line is about.  Empty strings are left out of the line. */
struct ev_ctx {
	char session[17];       /* hex digits of the session id (at most 16) */
	char peer[272];         /* ADDR:PORT of the other host */
	char state[24];
	char reason[16];        /* result name of a failure */
	char code[32];          /* error code name */
};

struct events {
	const char *prog;       /* "ferry-send" */
	int json;               /* emit JSON lines on out */
	FILE *out;              /* stdout */
	int level;              /* enum ev_level; 0 means EV_INFO */
	int journal;            /* stderr is the journal: "<N>" priority prefixes */
	FILE *err;              /* log lines go here; NULL: stderr */
	/* Optional, called before each line that is written: fills what the
	 * program knows about its current work (ferry-send: its migration),
	 * and may clear a live progress line.  Fields already set by the
	 * caller of ev_logx win. */
	void (*ctx)(void *arg, struct ev_ctx *cx);
	void *ctx_arg;
};

/* Zero *ev and set prog, out = stdout, level EV_INFO and journal. */
void ev_init(struct events *ev, const char *prog);

/* 1 when a line at level lv would be written. */
int ev_enabled(const struct events *ev, enum ev_level lv);

/* Log lines by level.  ev_log is info. */
void ev_log(const struct events *ev, const char *fmt, ...) FERRY_PRINTF(2, 3);
void ev_warn(const struct events *ev, const char *fmt, ...) FERRY_PRINTF(2, 3);
void ev_debug(const struct events *ev, const char *fmt, ...) FERRY_PRINTF(2, 3);

/* A line at level lv with context cx (may be NULL) over ev->ctx's. */
void ev_logx(const struct events *ev, enum ev_level lv, const struct ev_ctx *cx,
    const char *fmt, ...) FERRY_PRINTF(4, 5);

/* The line that ends a run, at level lv with context cx (may be NULL),
 * written at every --log-level (also with --quiet): a final error, a
 * plan's summary. */
void ev_final(const struct events *ev, enum ev_level lv, const struct ev_ctx *cx, const char *fmt,
    ...) FERRY_PRINTF(4, 5);

/* ev_final at level error. */
void ev_error(const struct events *ev, const char *fmt, ...) FERRY_PRINTF(2, 3);

/* Emit {"event": name, "ts_ms": ..., ...fields} when json is on.  Takes
 * ownership of fields (may be NULL). */
void ev_json(const struct events *ev, const char *name, struct json_object *fields);

/* --log-level: "error", "warn" (or "warning"), "info", "debug".  Returns
 * 0, or FERR_USAGE with a message naming flag and the value. */
int ev_level_parse(const char *flag, const char *s, int *level, struct ferr *e) FERRY_MUST_CHECK;
const char *ev_level_name(int level);

/* 1 when stderr is the systemd journal: JOURNAL_STREAM holds the
 * "DEVICE:INODE" of file descriptor 2 (systemd.exec(5)). */
int ev_stderr_is_journal(void);

/* Pure formatter of one line, without the trailing newline: prefix (the
 * program's name, or NULL for none) then "level=... [keys] msg=...".
 * Writes at most len bytes with the NUL (a longer line is cut inside msg,
 * still ending with '"'); returns the line's length. */
size_t ev_format(char *buf, size_t len, const char *prefix, enum ev_level lv,
    const struct ev_ctx *cx, const char *msg);

/* Append " key=value" (or "key=value" at the start) to buf of size len,
 * holding a NUL-terminated string; quoted as described above when
 * `quote` or when the value needs it.  Returns 0, or -1 when it did not
 * fit (buf then ends where it was). */
int ev_kv_append(char *buf, size_t len, const char *key, const char *value, int quote);

#endif
