/* The QMP client (src/common/qmp.c): the pure line splitter and message
 * parser at their boundaries, and the client against a fake QMP server (a
 * thread on the other end of a socketpair playing a script): greeting and
 * capabilities, a command that returns, one that fails, events before,
 * between and after replies, oversized and garbage lines, a wrong id, a
 * silent server (timeout) and a closed one. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "qmp.h"

#define GREETING "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, " \
	"\"package\": \"Debian\"}, \"capabilities\": [\"oob\"]}}\r\n"
#define EV_STOP "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 42}, \"event\": \"STOP\"}\r\n"
#define EV_RESUME "{\"timestamp\": {\"seconds\": 1700000001, \"microseconds\": 7}, \"event\": \"RESUME\"}\r\n"
#define EV_MIG(s) "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"" s "\"}}\r\n"

/* ---- the pure parts ---- */

static void
test_line_split(void **state)
{
	struct ferr e = { 0 };
	size_t n, used;
	uint8_t buf[16];

	(void)state;
	memcpy(buf, "abc\r\nxyz", 8);
	assert_int_equal(qmp_line_split(buf, 8, 8, &n, &used, &e), 0);
	assert_int_equal(n, 3);
	assert_int_equal(used, 5);
	/* No newline yet: need more, up to max + 1 bytes ('\r' may follow). */
	assert_int_equal(qmp_line_split(buf + 5, 3, 8, &n, &used, &e), FERR_NEED_MORE);
	memcpy(buf, "123456789", 9);
	assert_int_equal(qmp_line_split(buf, 9, 8, &n, &used, &e), FERR_NEED_MORE);
	assert_int_equal(qmp_line_split(buf, 10, 8, &n, &used, &e), FERR_PROTO_LENGTH);
	assert_non_null(strstr(e.msg, "longer than 8"));
	/* Exactly max bytes, with "\r\n" and with "\n". */
	memcpy(buf, "12345678\r\n", 10);
	assert_int_equal(qmp_line_split(buf, 10, 8, &n, &used, &e), 0);
	assert_int_equal(n, 8);
	assert_int_equal(used, 10);
	memcpy(buf, "12345678\n", 9);
	assert_int_equal(qmp_line_split(buf, 9, 8, &n, &used, &e), 0);
	assert_int_equal(n, 8);
	/* One over. */
	memcpy(buf, "123456789\n", 10);
	assert_int_equal(qmp_line_split(buf, 10, 8, &n, &used, &e), FERR_PROTO_LENGTH);
	assert_int_equal(qmp_line_split(buf, 0, 8, &n, &used, &e), FERR_NEED_MORE);
}

static int
parse_str(const char *s, struct qmp_msg *m, struct ferr *e)
{
	return qmp_msg_parse((const uint8_t *)s, strlen(s), m, e);
}

static void
test_msg_kinds(void **state)
{
	struct ferr e = { 0 };
	struct qmp_msg m;

	(void)state;
	assert_int_equal(qmp_msg_parse((const uint8_t *)GREETING, strlen(GREETING) - 2, &m, &e), 0);
	assert_int_equal(m.kind, QMP_GREETING);
	qmp_msg_fini(&m);

	assert_int_equal(parse_str("{\"return\": {}, \"id\": \"ferry-1\"}", &m, &e), 0);
	assert_int_equal(m.kind, QMP_RETURN);
	assert_string_equal(m.id, "ferry-1");
	qmp_msg_fini(&m);

	assert_int_equal(parse_str("{\"return\": [1, 2]}", &m, &e), 0);
	assert_int_equal(m.kind, QMP_RETURN);
	assert_false(m.has_id);
	qmp_msg_fini(&m);

	assert_int_equal(parse_str("{\"id\": 5, \"error\": {\"class\": \"GenericError\", \"desc\": \"no\"}}",
	    &m, &e), 0);
	assert_int_equal(m.kind, QMP_ERROR);
	assert_string_equal(m.name, "GenericError");
	assert_string_equal(m.desc, "no");
	assert_true(m.has_id);
	assert_null(m.id);
	qmp_msg_fini(&m);

	assert_int_equal(qmp_msg_parse((const uint8_t *)EV_STOP, strlen(EV_STOP) - 2, &m, &e), 0);
	assert_int_equal(m.kind, QMP_EVENT);
	assert_string_equal(m.name, "STOP");
	assert_null(m.value);
	assert_int_equal(m.ts_sec, 1700000000);
	assert_int_equal(m.ts_usec, 42);
	qmp_msg_fini(&m);

	assert_int_equal(parse_str(EV_MIG("active"), &m, &e), 0);
	assert_int_equal(m.kind, QMP_EVENT);
	assert_non_null(m.value);
	qmp_msg_fini(&m);
}

static void
expect_bad(const char *line, int code, const char *words)
{
	struct ferr e = { 0 };
	struct qmp_msg m;
	int rc = parse_str(line, &m, &e);

	if (rc != code)
		fail_msg("'%s': %s (%s), expected %s", line, ferr_name(rc), e.msg, ferr_name(code));
	if (strstr(e.msg, words) == NULL)
		fail_msg("'%s': message '%s' lacks '%s'", line, e.msg, words);
	assert_null(m.obj);
}

static void
test_msg_garbage(void **state)
{
	char deep[200];
	struct ferr e = { 0 };
	struct qmp_msg m;
	char *big;
	int i;

	(void)state;
	expect_bad("hello world", FERR_PROTO, "not JSON");
	expect_bad("{\"return\": {}", FERR_PROTO, "incomplete");
	expect_bad("{\"return\": {}} x", FERR_PROTO, "bytes after");
	expect_bad("{\"return\": {}}{}", FERR_PROTO, "bytes after");
	expect_bad("[1, 2]", FERR_PROTO, "array");
	expect_bad("42", FERR_PROTO, "");
	expect_bad("\"s\"", FERR_PROTO, "string");
	expect_bad("   ", FERR_PROTO, "blank");
	expect_bad("{}", FERR_PROTO, "0 of the members");
	expect_bad("{\"return\": 1, \"event\": \"X\"}", FERR_PROTO, "2 of the members");
	expect_bad("{\"event\": 3}", FERR_PROTO, "event name is not a string");
	expect_bad("{\"event\": \"\"}", FERR_PROTO_LENGTH, "event name of 0 bytes");
	expect_bad("{\"event\": \"A B\"}", FERR_PROTO, "byte 0x20");
	expect_bad("{\"event\": \"X\", \"data\": 1}", FERR_PROTO, "data is not an object");
	expect_bad("{\"error\": \"x\"}", FERR_PROTO, "error is not an object");
	expect_bad("{\"error\": {\"class\": \"C\"}}", FERR_PROTO, "no desc");
	expect_bad("{\"error\": {\"desc\": \"d\"}}", FERR_PROTO, "error class is not a string");
	expect_bad("{\"QMP\": 1}", FERR_PROTO, "greeting");
	expect_bad("{\"event\": \"XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\"}",
	    FERR_PROTO_LENGTH, "event name of");

	/* A NUL byte inside the line. */
	assert_int_equal(qmp_msg_parse((const uint8_t *)"{\"return\"\0: {}}", 15, &m, &e), FERR_PROTO);
	assert_non_null(strstr(e.msg, "NUL byte at 9"));

	/* Nesting deeper than QMP_JSON_DEPTH. */
	memcpy(deep, "{\"return\": ", 11);
	for (i = 0; i < 80; i++) {
		deep[11 + i] = '[';
		deep[91 + i] = ']';
	}
	memcpy(deep + 171, "}", 2);
	assert_int_equal(parse_str(deep, &m, &e), FERR_PROTO);

	/* Over the line limit, even if it were valid JSON. */
	big = malloc(QMP_LINE_MAX + 1);
	assert_non_null(big);
	memset(big, ' ', QMP_LINE_MAX + 1);
	memcpy(big, "{\"return\": {}}", 14);
	assert_int_equal(qmp_msg_parse((const uint8_t *)big, QMP_LINE_MAX, &m, &e), 0);
	qmp_msg_fini(&m);
	assert_int_equal(qmp_msg_parse((const uint8_t *)big, QMP_LINE_MAX + 1, &m, &e), FERR_PROTO_LENGTH);
	free(big);
}

/* ---- the fake server ---- */

enum step_kind { SEND, CMD, REPLY, HOLD, END };

/* SEND text; CMD name: read one command line, check its name, keep its
 * id; REPLY text with %s for that id; HOLD: read until the client closes;
 * END: close. */
struct step {
	enum step_kind kind;
	const char *text;
};

struct fake_server {
	int fd;
	const struct step *script;
	pthread_t thread;
	char failed[256];        /* first failure, "" when none */
	char last_id[64];
	char last_args[512];     /* arguments of the last command, as JSON */
	int commands;
};

static void
server_fail(struct fake_server *s, const char *what)
{
	if (s->failed[0] == '\0')
		snprintf(s->failed, sizeof(s->failed), "%s", what);
}

static int
server_send(struct fake_server *s, const char *p, size_t n)
{
	ssize_t k;

	while (n > 0) {
		k = send(s->fd, p, n, MSG_NOSIGNAL);
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static int
server_read_line(struct fake_server *s, char *line, size_t cap)
{
	size_t n = 0;
	char c;

	while (n + 1 < cap) {
		if (recv(s->fd, &c, 1, 0) != 1)
			return -1;
		if (c == '\n')
			break;
		line[n++] = c;
	}
	line[n] = '\0';
	return 0;
}

static void
server_command(struct fake_server *s, const char *name)
{
	char line[4096];
	json_object *o, *v;

	if (server_read_line(s, line, sizeof(line)) != 0) {
		server_fail(s, "client closed before a command");
		return;
	}
	o = json_tokener_parse(line);
	if (o == NULL || !json_object_object_get_ex(o, "execute", &v) ||
	    strcmp(json_object_get_string(v), name) != 0)
		server_fail(s, "unexpected command");
	if (o != NULL && json_object_object_get_ex(o, "id", &v))
		snprintf(s->last_id, sizeof(s->last_id), "%s", json_object_get_string(v));
	s->last_args[0] = '\0';
	if (o != NULL && json_object_object_get_ex(o, "arguments", &v))
		snprintf(s->last_args, sizeof(s->last_args), "%s",
		    json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
	s->commands++;
	json_object_put(o);
}

static void *
server_main(void *arg)
{
	struct fake_server *s = arg;
	const struct step *st;
	char buf[1024];

	for (st = s->script; st->kind != END; st++) {
		switch (st->kind) {
		case SEND:
			(void)server_send(s, st->text, strlen(st->text));
			break;
		case CMD:
			server_command(s, st->text);
			break;
		case REPLY:
			snprintf(buf, sizeof(buf), st->text, s->last_id);
			(void)server_send(s, buf, strlen(buf));
			break;
		case HOLD:
			while (recv(s->fd, buf, sizeof(buf), 0) > 0)
				;
			break;
		case END:
			break;
		}
	}
	close(s->fd);
	return NULL;
}

/* Start a server playing script; returns the client's end. */
static int
server_start(struct fake_server *s, const struct step *script)
{
	int sv[2];

	memset(s, 0, sizeof(*s));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	s->fd = sv[1];
	s->script = script;
	assert_int_equal(pthread_create(&s->thread, NULL, server_main, s), 0);
	return sv[0];
}

static void
server_join(struct fake_server *s)
{
	assert_int_equal(pthread_join(s->thread, NULL), 0);
	if (s->failed[0] != '\0')
		fail_msg("fake server: %s", s->failed);
}

#define HELLO { SEND, GREETING }, { CMD, "qmp_capabilities" }, { REPLY, "{\"return\": {}, \"id\": \"%s\"}\r\n" }

/* ---- the client ---- */

static void
test_greeting_and_command(void **state)
{
	static const struct step script[] = {
		HELLO,
		{ CMD, "query-status" },
		{ REPLY, "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": \"%s\"}\r\n" },
		{ CMD, "migrate-set-capabilities" },
		{ REPLY, "{\"id\": \"%s\", \"return\": {}}\n" },
		{ HOLD, NULL },
		{ END, NULL },
	};
	struct fake_server s;
	struct ferr e = { 0 };
	struct qmp *q = NULL;
	json_object *ret = NULL, *v, *args, *caps, *cap;
	int major, minor, micro;

	(void)state;
	assert_int_equal(qmp_open_fd(server_start(&s, script), 2000, &q, &e), 0);
	qmp_qemu_version(q, &major, &minor, &micro);
	assert_int_equal(major, 7);
	assert_int_equal(minor, 2);
	assert_int_equal(micro, 0);

	assert_int_equal(qmp_execute(q, "query-status", NULL, 2000, &ret, &e), 0);
	assert_non_null(ret);
	assert_true(json_object_object_get_ex(ret, "status", &v));
	assert_string_equal(json_object_get_string(v), "running");
	json_object_put(ret);

	args = json_object_new_object();
	caps = json_object_new_array();
	cap = json_object_new_object();
	json_object_object_add(cap, "capability", json_object_new_string("return-path"));
	json_object_object_add(cap, "state", json_object_new_boolean(1));
	json_object_array_add(caps, cap);
	json_object_object_add(args, "capabilities", caps);
	assert_int_equal(qmp_execute(q, "migrate-set-capabilities", args, 2000, NULL, &e), 0);
	json_object_put(args);
	qmp_free(q);
	server_join(&s);
	assert_int_equal(s.commands, 3);
	assert_string_equal(s.last_id, "ferry-3");
	assert_string_equal(s.last_args, "{\"capabilities\":[{\"capability\":\"return-path\",\"state\":true}]}");
}

static void
test_command_error(void **state)
{
	static const struct step script[] = {
		HELLO,
		{ CMD, "migrate" },
		{ REPLY, "{\"id\": \"%s\", \"error\": {\"class\": \"GenericError\", "
			 "\"desc\": \"Migration is disabled\"}}\r\n" },
		{ CMD, "query-migrate" },
		{ REPLY, "{\"return\": {}, \"id\": \"%s\"}\r\n" },
		{ HOLD, NULL },
		{ END, NULL },
	};
	struct fake_server s;
	struct ferr e = { 0 };
	struct qmp *q = NULL;
	json_object *args = json_object_new_object();

	(void)state;
	json_object_object_add(args, "uri", json_object_new_string("unix:/x"));
	assert_int_equal(qmp_open_fd(server_start(&s, script), 2000, &q, &e), 0);
	assert_int_equal(qmp_execute(q, "migrate", args, 2000, NULL, &e), FERR_REFUSED);
	assert_string_equal(e.msg, "migrate: GenericError: Migration is disabled");
	/* An error reply leaves the connection usable. */
	assert_int_equal(qmp_execute(q, "query-migrate", NULL, 2000, NULL, &e), 0);
	json_object_put(args);
	qmp_free(q);
	server_join(&s);
}

static void
test_events_interleaved(void **state)
{
	static const struct step script[] = {
		{ SEND, GREETING },
		{ SEND, EV_STOP },  /* before the capabilities reply */
		{ CMD, "qmp_capabilities" },
		{ SEND, EV_MIG("setup") },
		{ REPLY, "{\"return\": {}, \"id\": \"%s\"}\r\n" },
		{ CMD, "migrate" },
		{ SEND, EV_MIG("active") },
		{ REPLY, "{\"return\": {}, \"id\": \"%s\"}\r\n" EV_RESUME EV_MIG("completed") },
		{ HOLD, NULL },
		{ END, NULL },
	};
	struct fake_server s;
	struct ferr e = { 0 };
	struct qmp *q = NULL;
	struct qmp_event ev;
	json_object *v;

	(void)state;
	assert_int_equal(qmp_open_fd(server_start(&s, script), 2000, &q, &e), 0);
	assert_int_equal(qmp_events_queued(q), 2);
	assert_int_equal(qmp_execute(q, "migrate", NULL, 2000, NULL, &e), 0);
	assert_int_equal(qmp_events_queued(q), 3);
	/* Waiting for a later event reads past the queue, keeping the rest. */
	assert_int_equal(qmp_wait_event(q, "MIGRATION", 2000, &ev, &e), 0);
	assert_true(json_object_object_get_ex(ev.data, "status", &v));
	assert_string_equal(json_object_get_string(v), "setup");
	qmp_event_fini(&ev);
	assert_int_equal(qmp_wait_event(q, "RESUME", 2000, &ev, &e), 0);
	assert_int_equal(ev.ts_sec, 1700000001);
	qmp_event_fini(&ev);
	/* In arrival order: STOP, MIGRATION active, then completed. */
	assert_int_equal(qmp_event_pop(q, &ev), 1);
	assert_string_equal(ev.name, "STOP");
	assert_null(ev.data);
	qmp_event_fini(&ev);
	assert_int_equal(qmp_event_pop(q, &ev), 1);
	assert_true(json_object_object_get_ex(ev.data, "status", &v));
	assert_string_equal(json_object_get_string(v), "active");
	qmp_event_fini(&ev);
	assert_int_equal(qmp_pump(q, 0, &e), 0);
	assert_int_equal(qmp_wait_event(q, NULL, 2000, &ev, &e), 0);
	assert_true(json_object_object_get_ex(ev.data, "status", &v));
	assert_string_equal(json_object_get_string(v), "completed");
	qmp_event_fini(&ev);
	assert_int_equal(qmp_event_pop(q, &ev), 0);
	/* Nothing more comes: a timeout, which leaves the client usable. */
	assert_int_equal(qmp_wait_event(q, "SHUTDOWN", 50, &ev, &e), FERR_TIMEOUT);
	assert_non_null(strstr(e.msg, "SHUTDOWN"));
	assert_int_equal(qmp_pump(q, 20, &e), 0);
	qmp_free(q);
	server_join(&s);
}

static void
test_event_queue_overflow(void **state)
{
	static char burst[(QMP_EVENTS_MAX + 5) * sizeof(EV_STOP)];
	static struct step script[] = {
		HELLO,
		{ SEND, burst },
		{ HOLD, NULL },
		{ END, NULL },
	};
	struct fake_server s;
	struct ferr e = { 0 };
	struct qmp *q = NULL;
	size_t i;

	(void)state;
	burst[0] = '\0';
	for (i = 0; i < QMP_EVENTS_MAX + 5; i++)
		strcat(burst, EV_STOP);
	assert_int_equal(qmp_open_fd(server_start(&s, script), 2000, &q, &e), 0);
	assert_int_equal(qmp_pump(q, 300, &e), 0);
	assert_int_equal(qmp_events_queued(q), QMP_EVENTS_MAX);
	assert_int_equal(qmp_events_dropped(q), 5);
	qmp_free(q);
	server_join(&s);
}

/* Run a script whose reply to "query-status" is bad; expect code and words,
 * and that the client refuses further use. */
static void
expect_broken_reply(const struct step *script, int code, const char *words)
{
	struct fake_server s;
	struct ferr e = { 0 };
	struct qmp *q = NULL;
	int rc;

	assert_int_equal(qmp_open_fd(server_start(&s, script), 2000, &q, &e), 0);
	rc = qmp_execute(q, "query-status", NULL, 300, NULL, &e);
	if (rc != code || strstr(e.msg, words) == NULL)
		fail_msg("got %s '%s', expected %s with '%s'", ferr_name(rc), e.msg, ferr_name(code), words);
	assert_non_null(strstr(e.msg, "query-status"));
	assert_int_equal(qmp_execute(q, "query-status", NULL, 300, NULL, &e), FERR_PROTO_STATE);
	qmp_free(q);
	server_join(&s);
}

static void
test_garbage_reply(void **state)
{
	static const struct step script[] = {
		HELLO, { CMD, "query-status" }, { SEND, "this is not json\r\n" }, { HOLD, NULL }, { END, NULL },
	};

	(void)state;
	expect_broken_reply(script, FERR_PROTO, "not JSON");
}

static void
test_oversized_reply(void **state)
{
	static char big[QMP_LINE_MAX + 64];
	static struct step script[] = {
		HELLO, { CMD, "query-status" }, { SEND, big }, { HOLD, NULL }, { END, NULL },
	};

	(void)state;
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	expect_broken_reply(script, FERR_PROTO_LENGTH, "longer than");
}

static void
test_wrong_id(void **state)
{
	static const struct step script[] = {
		HELLO, { CMD, "query-status" }, { SEND, "{\"return\": {}, \"id\": \"other\"}\r\n" },
		{ HOLD, NULL }, { END, NULL },
	};

	(void)state;
	expect_broken_reply(script, FERR_PROTO, "id other");
}

static void
test_silent_server(void **state)
{
	static const struct step script[] = {
		HELLO, { CMD, "query-status" }, { HOLD, NULL }, { END, NULL },
	};

	(void)state;
	expect_broken_reply(script, FERR_TIMEOUT, "timed out");
}

static void
test_closed_server(void **state)
{
	static const struct step script[] = {
		HELLO, { CMD, "query-status" }, { SEND, "{\"return\": " }, { END, NULL },
	};

	(void)state;
	expect_broken_reply(script, FERR_NET, "closed");
}

static void
test_bad_greeting(void **state)
{
	static const struct step not_greeting[] = {
		{ SEND, "{\"return\": {}}\r\n" }, { HOLD, NULL }, { END, NULL },
	};
	static const struct step no_caps[] = {
		{ SEND, GREETING }, { CMD, "qmp_capabilities" },
		{ REPLY, "{\"error\": {\"class\": \"CommandNotFound\", \"desc\": \"nope\"}, \"id\": \"%s\"}\n" },
		{ HOLD, NULL }, { END, NULL },
	};
	static const struct step silent[] = { { HOLD, NULL }, { END, NULL } };
	struct fake_server s;
	struct ferr e = { 0 };
	struct qmp *q = NULL;

	(void)state;
	assert_int_equal(qmp_open_fd(server_start(&s, not_greeting), 2000, &q, &e), FERR_PROTO);
	assert_null(q);
	assert_non_null(strstr(e.msg, "not a greeting"));
	server_join(&s);

	assert_int_equal(qmp_open_fd(server_start(&s, no_caps), 2000, &q, &e), FERR_REFUSED);
	assert_string_equal(e.msg, "qmp_capabilities: CommandNotFound: nope");
	server_join(&s);

	assert_int_equal(qmp_open_fd(server_start(&s, silent), 100, &q, &e), FERR_TIMEOUT);
	assert_non_null(strstr(e.msg, "greeting"));
	server_join(&s);
}

static void
test_bad_arguments(void **state)
{
	static const struct step script[] = { HELLO, { HOLD, NULL }, { END, NULL } };
	struct fake_server s;
	struct ferr e = { 0 };
	struct qmp *q = NULL;
	json_object *arr = json_object_new_array();

	(void)state;
	assert_int_equal(qmp_connect("/nonexistent/qmp.sock", 100, &q, &e), FERR_NET);
	assert_non_null(strstr(e.msg, "/nonexistent/qmp.sock"));
	assert_int_equal(qmp_open_fd(server_start(&s, script), 2000, &q, &e), 0);
	assert_int_equal(qmp_execute(q, "", NULL, 100, NULL, &e), FERR_USAGE);
	assert_int_equal(qmp_execute(q, "x", arr, 100, NULL, &e), FERR_USAGE);
	json_object_put(arr);
	qmp_free(q);
	qmp_free(NULL);
	server_join(&s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_split),
		cmocka_unit_test(test_msg_kinds),
		cmocka_unit_test(test_msg_garbage),
		cmocka_unit_test(test_greeting_and_command),
		cmocka_unit_test(test_command_error),
		cmocka_unit_test(test_events_interleaved),
		cmocka_unit_test(test_event_queue_overflow),
		cmocka_unit_test(test_garbage_reply),
		cmocka_unit_test(test_oversized_reply),
		cmocka_unit_test(test_wrong_id),
		cmocka_unit_test(test_silent_server),
		cmocka_unit_test(test_closed_server),
		cmocka_unit_test(test_bad_greeting),
		cmocka_unit_test(test_bad_arguments),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
