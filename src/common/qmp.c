/* QMP client: see qmp.h.  The parser half is pure; the client half does
 * blocking I/O with poll() deadlines, for the daemons' setup code. */
#include "qmp.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"

#define QMP_CMD_MAX 128   /* bytes of a command name we send */

/* Writing one command never waits longer than this. */
#define QMP_SEND_MS 2000

struct qmp {
	int fd;
	uint8_t *buf;             /* received bytes not yet parsed */
	size_t len, cap;
	uint64_t next_id;
	int broken;               /* set after an error that desynchronises the stream */
	char pend_id[32];         /* qmp_start: the command whose reply qmp_collect waits for */
	char pend_cmd[QMP_NAME_MAX];
	struct qmp_event ev[QMP_EVENTS_MAX];
	size_t nev;
	uint64_t dropped;
	int ver[3];
};

/* ---- pure: lines ------------------------------------------------------------ */

int
qmp_line_split(const uint8_t *buf, size_t len, size_t max, size_t *line_len, size_t *used,
    struct ferr *e)
{
	size_t scan = len, n;
	const uint8_t *nl;

	*line_len = 0;
	*used = 0;
	/* A full line is at most max bytes, one '\r' and the '\n'. */
	if (max <= SIZE_MAX - 2 && scan > max + 2)
		scan = max + 2;
	nl = scan != 0 ? memchr(buf, '\n', scan) : NULL;
	if (nl == NULL) {
		if (len > max + 1)
			return ferr_set(e, FERR_PROTO_LENGTH, "qmp: line longer than %zu bytes", max);
		return FERR_NEED_MORE;
	}
	n = (size_t)(nl - buf);
	*used = n + 1;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n > max)
		return ferr_set(e, FERR_PROTO_LENGTH, "qmp: line of %zu bytes > %zu", n, max);
	*line_len = n;
	return 0;
}

/* ---- pure: messages ----------------------------------------------------------- */

static int
is_blank(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r' && p[i] != '\n')
			return 0;
	return 1;
}

/* A name (event, error class): 1..QMP_NAME_MAX-1 printable bytes, no space. */
static int
copy_name(char out[QMP_NAME_MAX], json_object *v, const char *what, struct ferr *e)
{
	const char *s;
	size_t i, n;

	if (v == NULL || !json_object_is_type(v, json_type_string))
		return ferr_set(e, FERR_PROTO, "qmp: %s is not a string", what);
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0 || n >= QMP_NAME_MAX)
		return ferr_set(e, FERR_PROTO_LENGTH, "qmp: %s of %zu bytes (1..%u)", what, n,
		    QMP_NAME_MAX - 1);
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
			return ferr_set(e, FERR_PROTO, "qmp: %s has byte 0x%02x at %zu", what,
			    (unsigned char)s[i], i);
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

static json_object *
parse_json_object(const uint8_t *line, size_t len, struct ferr *e, int *rc)
{
	json_tokener *tok;
	json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	*rc = 0;
	tok = json_tokener_new_ex(QMP_JSON_DEPTH);
	if (tok == NULL) {
		*rc = ferr_set(e, FERR_NOMEM, "qmp: json_tokener_new_ex");
		return NULL;
	}
	obj = json_tokener_parse_ex(tok, (const char *)line, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (obj == NULL || jerr != json_tokener_success) {
		json_object_put(obj);
		*rc = ferr_set(e, FERR_PROTO, "qmp: not JSON at byte %zu of %zu: %s", end, len,
		    jerr == json_tokener_continue ? "incomplete" : json_tokener_error_desc(jerr));
		return NULL;
	}
	if (end > len || !is_blank(line + end, len - end)) {
		json_object_put(obj);
		*rc = ferr_set(e, FERR_PROTO, "qmp: bytes after the JSON value at byte %zu of %zu", end,
		    len);
		return NULL;
	}
	if (!json_object_is_type(obj, json_type_object)) {
		*rc = ferr_set(e, FERR_PROTO, "qmp: message is a JSON %s, not an object",
		    json_type_to_name(json_object_get_type(obj)));
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

static int
classify_error(struct qmp_msg *m, json_object *err, struct ferr *e)
{
	json_object *cls = NULL, *desc = NULL;
	int rc;

	if (!json_object_is_type(err, json_type_object))
		return ferr_set(e, FERR_PROTO, "qmp: error is not an object");
	json_object_object_get_ex(err, "class", &cls);
	json_object_object_get_ex(err, "desc", &desc);
	if ((rc = copy_name(m->name, cls, "error class", e)) != 0)
		return rc;
	if (desc == NULL || !json_object_is_type(desc, json_type_string))
		return ferr_set(e, FERR_PROTO, "qmp: error %s has no desc string", m->name);
	m->desc = json_object_get_string(desc);
	m->kind = QMP_ERROR;
	m->value = err;
	return 0;
}

static int
classify_event(struct qmp_msg *m, json_object *name, struct ferr *e)
{
	json_object *data = NULL, *ts = NULL, *v;
	int rc;

	if ((rc = copy_name(m->name, name, "event name", e)) != 0)
		return rc;
	if (json_object_object_get_ex(m->obj, "data", &data) && data != NULL &&
	    !json_object_is_type(data, json_type_object))
		return ferr_set(e, FERR_PROTO, "qmp: event %s: data is not an object", m->name);
	if (json_object_object_get_ex(m->obj, "timestamp", &ts) &&
	    json_object_is_type(ts, json_type_object)) {
		if (json_object_object_get_ex(ts, "seconds", &v) && json_object_is_type(v, json_type_int))
			m->ts_sec = json_object_get_int64(v);
		if (json_object_object_get_ex(ts, "microseconds", &v) &&
		    json_object_is_type(v, json_type_int))
			m->ts_usec = json_object_get_int64(v);
	}
	m->kind = QMP_EVENT;
	m->value = data;
	return 0;
}

/* Exactly one of "QMP", "return", "error", "event" says what it is. */
static int
classify(struct qmp_msg *m, struct ferr *e)
{
	json_object *greet = NULL, *ret = NULL, *err = NULL, *ev = NULL, *id = NULL;
	int n;

	n = json_object_object_get_ex(m->obj, "QMP", &greet) +
	    json_object_object_get_ex(m->obj, "return", &ret) +
	    json_object_object_get_ex(m->obj, "error", &err) +
	    json_object_object_get_ex(m->obj, "event", &ev);
	if (n != 1)
		return ferr_set(e, FERR_PROTO,
		    "qmp: message has %d of the members QMP, return, error, event (needs 1)", n);
	if (json_object_object_get_ex(m->obj, "id", &id)) {
		m->has_id = 1;
		if (json_object_is_type(id, json_type_string))
			m->id = json_object_get_string(id);
	}
	if (greet != NULL || json_object_object_get_ex(m->obj, "QMP", NULL)) {
		if (!json_object_is_type(greet, json_type_object))
			return ferr_set(e, FERR_PROTO, "qmp: greeting QMP is not an object");
		m->kind = QMP_GREETING;
		m->value = greet;
		return 0;
	}
	if (json_object_object_get_ex(m->obj, "return", NULL)) {
		m->kind = QMP_RETURN;
		m->value = ret;
		return 0;
	}
	if (json_object_object_get_ex(m->obj, "error", NULL))
		return classify_error(m, err, e);
	return classify_event(m, ev, e);
}

int
qmp_msg_parse(const uint8_t *line, size_t len, struct qmp_msg *m, struct ferr *e)
{
	const uint8_t *nul;
	int rc;

	memset(m, 0, sizeof(*m));
	if (len > QMP_LINE_MAX || len > INT_MAX)
		return ferr_set(e, FERR_PROTO_LENGTH, "qmp: line of %zu bytes > %u", len, QMP_LINE_MAX);
	if (len == 0 || is_blank(line, len))
		return ferr_set(e, FERR_PROTO, "qmp: blank line");
	if ((nul = memchr(line, '\0', len)) != NULL)
		return ferr_set(e, FERR_PROTO, "qmp: NUL byte at %zu", (size_t)(nul - line));
	if ((m->obj = parse_json_object(line, len, e, &rc)) == NULL)
		return rc;
	if ((rc = classify(m, e)) != 0) {
		qmp_msg_fini(m);
		return rc;
	}
	return 0;
}

void
qmp_msg_fini(struct qmp_msg *m)
{
	if (m == NULL)
		return;
	json_object_put(m->obj);
	memset(m, 0, sizeof(*m));
}

/* ---- events queue ------------------------------------------------------------- */

void
qmp_event_fini(struct qmp_event *ev)
{
	if (ev == NULL)
		return;
	json_object_put(ev->data);
	memset(ev, 0, sizeof(*ev));
}

static void
queue_event(struct qmp *q, const struct qmp_msg *m)
{
	struct qmp_event *ev;

	if (q->nev == QMP_EVENTS_MAX) {
		qmp_event_fini(&q->ev[0]);
		memmove(&q->ev[0], &q->ev[1], (QMP_EVENTS_MAX - 1) * sizeof(q->ev[0]));
		q->nev--;
		q->dropped++;
	}
	ev = &q->ev[q->nev++];
	memcpy(ev->name, m->name, sizeof(ev->name));
	ev->data = m->value != NULL ? json_object_get(m->value) : NULL;
	ev->ts_sec = m->ts_sec;
	ev->ts_usec = m->ts_usec;
}

/* Move queued event i into *out and close the gap. */
static void
take_event(struct qmp *q, size_t i, struct qmp_event *out)
{
	*out = q->ev[i];
	memmove(&q->ev[i], &q->ev[i + 1], (q->nev - i - 1) * sizeof(q->ev[0]));
	q->nev--;
	memset(&q->ev[q->nev], 0, sizeof(q->ev[0]));
}

static int
find_event(const struct qmp *q, const char *name, size_t *at)
{
	size_t i;

	for (i = 0; i < q->nev; i++)
		if (name == NULL || strcmp(q->ev[i].name, name) == 0) {
			*at = i;
			return 1;
		}
	return 0;
}

int
qmp_event_pop(struct qmp *q, struct qmp_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	if (q->nev == 0)
		return 0;
	take_event(q, 0, ev);
	return 1;
}

size_t
qmp_events_queued(const struct qmp *q)
{
	return q->nev;
}

uint64_t
qmp_events_dropped(const struct qmp *q)
{
	return q->dropped;
}

void
qmp_qemu_version(const struct qmp *q, int *major, int *minor, int *micro)
{
	*major = q->ver[0];
	*minor = q->ver[1];
	*micro = q->ver[2];
}

/* ---- I/O ------------------------------------------------------------------------ */

static int
ms_left(uint64_t deadline)
{
	uint64_t now = clock_ms();

	if (now >= deadline)
		return 0;
	return deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now);
}

static uint64_t
deadline_in(int timeout_ms)
{
	return clock_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
}

/* Wait until fd is ready for `events` or the deadline passes. */
static int
wait_fd(int fd, short events, uint64_t deadline, const char *what, struct ferr *e)
{
	struct pollfd p = { fd, events, 0 };
	int n;

	for (;;) {
		n = poll(&p, 1, ms_left(deadline));
		if (n > 0)
			return 0;
		if (n == 0)
			return ferr_set(e, FERR_TIMEOUT, "qmp: timed out %s", what);
		if (errno != EINTR)
			return ferr_set(e, FERR_NET, "qmp: poll: %s", strerror(errno));
	}
}

static int
write_all(struct qmp *q, const char *p, size_t n, uint64_t deadline, struct ferr *e)
{
	ssize_t k;
	int rc;

	while (n > 0) {
		k = send(q->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0) {
			p += k;
			n -= (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((rc = wait_fd(q->fd, POLLOUT, deadline, "writing a command", e)) != 0)
				return rc;
			continue;
		}
		return ferr_set(e, FERR_NET, "qmp: send: %s", k < 0 ? strerror(errno) : "wrote 0 bytes");
	}
	return 0;
}

/* Read more bytes into the buffer, waiting until the deadline. */
static int
read_more(struct qmp *q, uint64_t deadline, const char *what, struct ferr *e)
{
	ssize_t k;
	int rc;

	for (;;) {
		if (q->len == q->cap)
			return ferr_set(e, FERR_PROTO_LENGTH, "qmp: line longer than %u bytes", QMP_LINE_MAX);
		k = recv(q->fd, q->buf + q->len, q->cap - q->len, MSG_DONTWAIT);
		if (k > 0) {
			q->len += (size_t)k;
			return 0;
		}
		if (k == 0)
			return ferr_set(e, FERR_NET, "qmp: connection closed by QEMU %s", what);
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return ferr_set(e, FERR_NET, "qmp: recv: %s", strerror(errno));
		if ((rc = wait_fd(q->fd, POLLIN, deadline, what, e)) != 0)
			return rc;
	}
}

static void
consume(struct qmp *q, size_t n)
{
	memmove(q->buf, q->buf + n, q->len - n);
	q->len -= n;
}

/* The next message, reading until the deadline.  Blank lines are skipped. */
static int
read_msg(struct qmp *q, uint64_t deadline, const char *what, struct qmp_msg *m, struct ferr *e)
{
	size_t line_len, used;
	int rc;

	for (;;) {
		rc = qmp_line_split(q->buf, q->len, QMP_LINE_MAX, &line_len, &used, e);
		if (rc == 0 && is_blank(q->buf, line_len)) {
			consume(q, used);
			continue;
		}
		if (rc == 0) {
			rc = qmp_msg_parse(q->buf, line_len, m, e);
			consume(q, used);
			return rc;
		}
		if (rc != FERR_NEED_MORE)
			return rc;
		if ((rc = read_more(q, deadline, what, e)) != 0)
			return rc;
	}
}

/* Errors after which the byte stream cannot be trusted to line up. */
static int
broke(struct qmp *q, int rc)
{
	if (rc != 0 && rc != FERR_REFUSED)
		q->broken = 1;
	return rc;
}

static int
check_usable(const struct qmp *q, struct ferr *e)
{
	if (q->broken)
		return ferr_set(e, FERR_PROTO_STATE, "qmp: connection unusable after an earlier error");
	return 0;
}

/* ---- commands ---------------------------------------------------------------- */

static json_object *
build_command(const char *cmd, json_object *args, const char *id)
{
	json_object *o = json_object_new_object();

	if (o == NULL)
		return NULL;
	if (json_object_object_add(o, "execute", json_object_new_string(cmd)) != 0 ||
	    (args != NULL && json_object_object_add(o, "arguments", json_object_get(args)) != 0) ||
	    json_object_object_add(o, "id", json_object_new_string(id)) != 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

static int
send_command(struct qmp *q, const char *cmd, json_object *args, const char *id, uint64_t deadline,
    struct ferr *e)
{
	json_object *o = build_command(cmd, args, id);
	const char *s;
	char *line;
	size_t n;
	int rc;

	if (o == NULL)
		return ferr_set(e, FERR_NOMEM, "qmp: %s: building the command", cmd);
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	n = s != NULL ? strlen(s) : 0;
	line = s != NULL ? malloc(n + 1) : NULL;
	if (line == NULL) {
		json_object_put(o);
		return ferr_set(e, FERR_NOMEM, "qmp: %s: serialising the command", cmd);
	}
	memcpy(line, s, n);
	line[n] = '\n';
	json_object_put(o);
	rc = write_all(q, line, n + 1, deadline, e);
	free(line);
	return rc;
}

static int
check_command_args(const char *cmd, json_object *args, struct ferr *e)
{
	size_t n = cmd != NULL ? strlen(cmd) : 0;

	if (n == 0 || n >= QMP_CMD_MAX)
		return ferr_set(e, FERR_USAGE, "qmp: command name of %zu bytes (1..%d)", n, QMP_CMD_MAX - 1);
	if (args != NULL && !json_object_is_type(args, json_type_object))
		return ferr_set(e, FERR_USAGE, "qmp: %s: arguments must be a JSON object", cmd);
	return 0;
}

/* A reply for us: with our id, or with none (QEMU omits it only when it
 * could not read the request at all). */
static int
reply_is_ours(const struct qmp_msg *m, const char *id, const char *cmd, struct ferr *e)
{
	if (!m->has_id)
		return 0;
	if (m->id == NULL || strcmp(m->id, id) != 0)
		return ferr_set(e, FERR_PROTO, "qmp: %s: reply with id %s, expected %s", cmd,
		    m->id != NULL ? m->id : "(not a string)", id);
	return 0;
}

/* m is the reply to command cmd with id: its return value, or its error. */
static int
take_reply(struct qmp_msg *m, const char *cmd, const char *id, json_object **ret, struct ferr *e)
{
	int rc;

	if (m->kind == QMP_GREETING)
		rc = ferr_set(e, FERR_PROTO, "qmp: %s: a greeting instead of a reply", cmd);
	else
		rc = reply_is_ours(m, id, cmd, e);
	if (rc == 0 && m->kind == QMP_ERROR)
		rc = ferr_set(e, FERR_REFUSED, "%s: %s: %s", cmd, m->name, m->desc);
	else if (rc == 0 && ret != NULL)
		*ret = json_object_get(m->value);
	qmp_msg_fini(m);
	return rc;
}

static int
await_reply(struct qmp *q, const char *cmd, const char *id, uint64_t deadline, json_object **ret,
    struct ferr *e)
{
	struct qmp_msg m;
	int rc;

	for (;;) {
		if ((rc = read_msg(q, deadline, "waiting for the reply", &m, e)) != 0)
			return ferr_wrap(e, "%s", cmd);
		if (m.kind == QMP_EVENT) {
			queue_event(q, &m);
			qmp_msg_fini(&m);
			continue;
		}
		break;
	}
	return take_reply(&m, cmd, id, ret, e);
}

int
qmp_execute(struct qmp *q, const char *cmd, json_object *args, int timeout_ms, json_object **ret,
    struct ferr *e)
{
	uint64_t deadline = deadline_in(timeout_ms);
	char id[32];
	int rc;

	if (ret != NULL)
		*ret = NULL;
	if ((rc = check_usable(q, e)) != 0 || (rc = check_command_args(cmd, args, e)) != 0)
		return rc;
	if (q->pend_id[0] != '\0') {
		/* A command started with qmp_start is answered first. */
		rc = await_reply(q, q->pend_cmd, q->pend_id, deadline, NULL, e);
		q->pend_id[0] = '\0';
		if (rc != 0 && rc != FERR_REFUSED)
			return broke(q, rc);
		ferr_clear(e);
	}
	snprintf(id, sizeof(id), "ferry-%llu", (unsigned long long)++q->next_id);
	if ((rc = send_command(q, cmd, args, id, deadline, e)) != 0)
		return broke(q, ferr_wrap(e, "%s", cmd));
	return broke(q, await_reply(q, cmd, id, deadline, ret, e));
}

/* ---- events --------------------------------------------------------------------- */

/* Read one message and queue it; anything but an event is an error. */
static int
read_event(struct qmp *q, uint64_t deadline, struct ferr *e)
{
	struct qmp_msg m;
	int rc;

	if ((rc = read_msg(q, deadline, "waiting for an event", &m, e)) != 0)
		return rc;
	if (m.kind != QMP_EVENT)
		rc = ferr_set(e, FERR_PROTO, "qmp: a %s nobody asked for",
		    m.kind == QMP_GREETING ? "greeting" : "reply");
	else
		queue_event(q, &m);
	qmp_msg_fini(&m);
	return rc;
}

int
qmp_wait_event(struct qmp *q, const char *name, int timeout_ms, struct qmp_event *ev,
    struct ferr *e)
{
	uint64_t deadline = deadline_in(timeout_ms);
	size_t at;
	int rc;

	memset(ev, 0, sizeof(*ev));
	for (;;) {
		if (find_event(q, name, &at)) {
			take_event(q, at, ev);
			return 0;
		}
		if ((rc = check_usable(q, e)) != 0)
			return rc;
		rc = read_event(q, deadline, e);
		if (rc == FERR_TIMEOUT)
			return ferr_set(e, FERR_TIMEOUT, "qmp: no event %s within %d ms",
			    name != NULL ? name : "(any)", timeout_ms);
		if (rc != 0)
			return broke(q, rc);
	}
}

int
qmp_pump(struct qmp *q, int timeout_ms, struct ferr *e)
{
	uint64_t deadline = deadline_in(timeout_ms);
	int rc;

	if ((rc = check_usable(q, e)) != 0)
		return rc;
	for (;;) {
		rc = read_event(q, deadline, e);
		if (rc == FERR_TIMEOUT) {
			ferr_clear(e);
			return 0;
		}
		if (rc != 0)
			return broke(q, rc);
	}
}

/* ---- connection --------------------------------------------------------------- */

static void
read_version(struct qmp *q, json_object *greet)
{
	static const char *const part[3] = { "major", "minor", "micro" };
	json_object *v = NULL, *qemu = NULL, *x;
	int i;

	if (!json_object_object_get_ex(greet, "version", &v) ||
	    !json_object_object_get_ex(v, "qemu", &qemu) ||
	    !json_object_is_type(qemu, json_type_object))
		return;
	for (i = 0; i < 3; i++)
		if (json_object_object_get_ex(qemu, part[i], &x) && json_object_is_type(x, json_type_int))
			q->ver[i] = json_object_get_int(x);
}

static int
handshake(struct qmp *q, uint64_t deadline, struct ferr *e)
{
	struct qmp_msg m;
	int rc, left;

	if ((rc = read_msg(q, deadline, "waiting for the greeting", &m, e)) != 0)
		return rc;
	if (m.kind != QMP_GREETING) {
		qmp_msg_fini(&m);
		return ferr_set(e, FERR_PROTO, "qmp: first message is not a greeting");
	}
	read_version(q, m.value);
	qmp_msg_fini(&m);
	left = ms_left(deadline);
	return qmp_execute(q, "qmp_capabilities", NULL, left, NULL, e);
}

int
qmp_open_fd(int fd, int timeout_ms, struct qmp **out, struct ferr *e)
{
	uint64_t deadline = deadline_in(timeout_ms);
	struct qmp *q;
	int rc;

	*out = NULL;
	q = calloc(1, sizeof(*q));
	if (q == NULL || (q->buf = malloc(QMP_LINE_MAX + 2)) == NULL) {
		free(q);
		close(fd);
		return ferr_set(e, FERR_NOMEM, "qmp: client of %u bytes", QMP_LINE_MAX);
	}
	q->fd = fd;
	q->cap = QMP_LINE_MAX + 2;
	if ((rc = handshake(q, deadline, e)) != 0) {
		qmp_free(q);
		return rc;
	}
	*out = q;
	return 0;
}

int
qmp_connect(const char *path, int timeout_ms, struct qmp **out, struct ferr *e)
{
	struct sockaddr_un sa;
	size_t n = strlen(path);
	int fd, rc;

	*out = NULL;
	memset(&sa, 0, sizeof(sa));
	if (n == 0 || n >= sizeof(sa.sun_path))
		return ferr_set(e, FERR_USAGE, "qmp: socket path of %zu bytes (1..%zu)", n,
		    sizeof(sa.sun_path) - 1);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, n);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return ferr_set(e, FERR_NET, "qmp: socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		rc = ferr_set(e, FERR_NET, "qmp: connect %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	if ((rc = qmp_open_fd(fd, timeout_ms, out, e)) != 0)
		return ferr_wrap(e, "%s", path);
	return 0;
}

void
qmp_free(struct qmp *q)
{
	struct qmp_event ev;

	if (q == NULL)
		return;
	while (qmp_event_pop(q, &ev))
		qmp_event_fini(&ev);
	if (q->fd >= 0)
		close(q->fd);
	free(q->buf);
	free(q);
}

int
qmp_fd(const struct qmp *q)
{
	return q->fd;
}

int
qmp_start(struct qmp *q, const char *cmd, json_object *args, struct ferr *e)
{
	int rc;

	if ((rc = check_usable(q, e)) != 0 || (rc = check_command_args(cmd, args, e)) != 0)
		return rc;
	if (q->pend_id[0] != '\0')
		return ferr_set(e, FERR_USAGE, "qmp: %s: %s still waits for its reply", cmd, q->pend_cmd);
	if (strlen(cmd) >= sizeof(q->pend_cmd))
		return ferr_set(e, FERR_USAGE, "qmp: command name longer than %zu bytes",
		    sizeof(q->pend_cmd) - 1);
	snprintf(q->pend_id, sizeof(q->pend_id), "ferry-%llu", (unsigned long long)++q->next_id);
	snprintf(q->pend_cmd, sizeof(q->pend_cmd), "%s", cmd);
	if ((rc = send_command(q, cmd, args, q->pend_id, deadline_in(QMP_SEND_MS), e)) != 0) {
		q->pend_id[0] = '\0';
		return broke(q, ferr_wrap(e, "%s", cmd));
	}
	return 0;
}

int
qmp_collect(struct qmp *q, json_object **ret, struct ferr *e)
{
	struct qmp_msg m;
	char cmd[QMP_NAME_MAX], id[32];
	int rc;

	if (ret != NULL)
		*ret = NULL;
	if ((rc = check_usable(q, e)) != 0)
		return rc;
	if (q->pend_id[0] == '\0')
		return ferr_set(e, FERR_USAGE, "qmp: no command waits for a reply");
	for (;;) {
		rc = read_msg(q, deadline_in(0), "collecting a reply", &m, e);
		if (rc == FERR_TIMEOUT) {
			ferr_clear(e);
			return 0;
		}
		if (rc != 0)
			return broke(q, rc);
		if (m.kind != QMP_EVENT)
			break;
		queue_event(q, &m);
		qmp_msg_fini(&m);
	}
	snprintf(cmd, sizeof(cmd), "%s", q->pend_cmd);
	snprintf(id, sizeof(id), "%s", q->pend_id);
	q->pend_id[0] = '\0';
	rc = broke(q, take_reply(&m, cmd, id, ret, e));
	return rc == 0 ? 1 : rc;
}
