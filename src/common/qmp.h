/* A small blocking QMP client (QEMU Machine Protocol) over a unix socket,
 * and the pure parser under it.
 *
 * QMP is one JSON object per line.  The server's bytes are untrusted: a
 * line longer than QMP_LINE_MAX, a line that is not one JSON object, or an
 * object that is none of greeting / return / error / event is a protocol
 * error naming what was wrong.  json-c does the JSON (depth-limited).
 *
 * Pure part (no I/O, no allocation except json-c's objects):
 *   qmp_line_split  finds the next complete line in a buffer;
 *   qmp_msg_parse   turns one line into a classified message.
 * Client part: qmp_connect / qmp_open_fd read the greeting and negotiate
 * capabilities; qmp_execute runs one command and waits for its reply,
 * queueing any asynchronous event that arrives meanwhile; qmp_wait_event
 * and qmp_event_pop take events from that queue.  Every wait has a
 * timeout in milliseconds.  After a protocol, network or timeout error the
 * connection is unusable and every later call fails (FERR_PROTO_STATE).
 *
 * Errors: FERR_NET (connect, read, write, EOF), FERR_TIMEOUT, FERR_PROTO /
 * FERR_PROTO_LENGTH (bad server bytes), FERR_REFUSED (QEMU answered a
 * command with an error: the message is "CMD: CLASS: DESC"), FERR_NOMEM,
 * FERR_USAGE (bad arguments). */
#ifndef FERRY_QMP_H
#define FERRY_QMP_H

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "err.h"

#define QMP_LINE_MAX (256u * 1024u)  /* bytes in one message, terminator excluded */
#define QMP_JSON_DEPTH 32            /* nesting limit handed to json-c */
#define QMP_EVENTS_MAX 128           /* queued events; the oldest is dropped beyond */
#define QMP_NAME_MAX 64              /* event names, error classes, bytes incl. NUL */

/* ---- pure: lines and messages ------------------------------------------ */

/* Find the first line in buf[0..len): bytes up to '\n', with one '\r'
 * before it dropped.  Returns 0 with *line_len (terminator excluded) and
 * *used (terminator included); FERR_NEED_MORE when there is no '\n' yet
 * and len <= max + 1; FERR_PROTO_LENGTH when the line is longer than max. */
int qmp_line_split(const uint8_t *buf, size_t len, size_t max, size_t *line_len, size_t *used,
    struct ferr *e) FERRY_MUST_CHECK;

enum qmp_kind {
	QMP_INVALID = 0,
	QMP_GREETING,   /* {"QMP": {...}} */
	QMP_RETURN,     /* {"return": ..., "id": ...} */
	QMP_ERROR,      /* {"error": {"class": ..., "desc": ...}, "id": ...} */
	QMP_EVENT,      /* {"event": NAME, "data": {...}, "timestamp": {...}} */
};

struct qmp_msg {
	enum qmp_kind kind;
	json_object *obj;    /* owned: the whole message (qmp_msg_fini puts it) */
	json_object *value;  /* borrowed from obj: "QMP", "return", "error" or "data" (may be NULL for events) */
	const char *id;      /* borrowed: the "id" member when it is a string, else NULL */
	int has_id;          /* the message had an "id" member (of any type) */
	char name[QMP_NAME_MAX];   /* EVENT: event name; ERROR: error class */
	const char *desc;    /* ERROR: borrowed description */
	int64_t ts_sec, ts_usec;   /* EVENT: timestamp (0 when absent) */
};

/* Parse one line (terminator excluded; need not be NUL-terminated).
 * On success m holds an owned object; on failure m is left empty.  Blank
 * lines are errors: the caller skips them before asking. */
int qmp_msg_parse(const uint8_t *line, size_t len, struct qmp_msg *m, struct ferr *e)
    FERRY_MUST_CHECK;
void qmp_msg_fini(struct qmp_msg *m);

/* ---- the client ----------------------------------------------------------- */

struct qmp;

struct qmp_event {
	char name[QMP_NAME_MAX];
	json_object *data;         /* owned reference, may be NULL */
	int64_t ts_sec, ts_usec;
};

/* Put the event's data (if any) and clear it. */
void qmp_event_fini(struct qmp_event *ev);

/* Connect to the QMP unix socket at path, read the greeting and send
 * qmp_capabilities, all within timeout_ms.  *out is set only on success. */
int qmp_connect(const char *path, int timeout_ms, struct qmp **out, struct ferr *e) FERRY_MUST_CHECK;

/* The same over an already connected stream socket, which *out owns from
 * here on (closed by qmp_free, or at once when this fails). */
int qmp_open_fd(int fd, int timeout_ms, struct qmp **out, struct ferr *e) FERRY_MUST_CHECK;

/* Close the connection and drop queued events.  qmp_free(NULL) is a no-op. */
void qmp_free(struct qmp *q);

/* Run cmd with args (borrowed; NULL for none) and wait up to timeout_ms for
 * its reply.  On success *ret (when ret is not NULL) holds an owned
 * reference to the "return" value (json_object_put it).  An "error" reply
 * is FERR_REFUSED with "CMD: CLASS: DESC"; the connection stays usable. */
int qmp_execute(struct qmp *q, const char *cmd, json_object *args, int timeout_ms, json_object **ret,
    struct ferr *e) FERRY_MUST_CHECK;

/* Take the oldest queued event into *ev (the caller finishes it with
 * qmp_event_fini).  Returns 1 when one was taken, 0 when the queue is
 * empty.  Never reads the socket. */
int qmp_event_pop(struct qmp *q, struct qmp_event *ev);

/* Wait up to timeout_ms for an event named name (any event when NULL):
 * the oldest matching queued one, else the next one read (others are
 * queued in order).  FERR_TIMEOUT when none came. */
int qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, struct qmp_event *ev,
    struct ferr *e) FERRY_MUST_CHECK;

/* From an event loop, without blocking on QEMU (which may hold its big
 * lock while it writes a migration stream that only this process drains):
 * qmp_start sends cmd; qmp_collect reads only what is already there and
 * returns 1 with *ret (as qmp_execute) once the reply arrived, 0 while it
 * has not.  One such command at a time; qmp_execute first waits for it.
 * qmp_fd is the socket to watch for readability. */
int qmp_start(struct qmp *q, const char *cmd, json_object *args, struct ferr *e) FERRY_MUST_CHECK;
int qmp_collect(struct qmp *q, json_object **ret, struct ferr *e) FERRY_MUST_CHECK;
int qmp_fd(const struct qmp *q);

/* Read whatever arrives within timeout_ms (0: only what is already there)
 * and queue its events.  A reply nobody waits for is a protocol error. */
int qmp_pump(struct qmp *q, int timeout_ms, struct ferr *e) FERRY_MUST_CHECK;

/* Queued events, and events dropped because the queue was full. */
size_t qmp_events_queued(const struct qmp *q);
uint64_t qmp_events_dropped(const struct qmp *q);

/* QEMU's version from the greeting (0.0.0 when it gave none). */
void qmp_qemu_version(const struct qmp *q, int *major, int *minor, int *micro);

#endif
