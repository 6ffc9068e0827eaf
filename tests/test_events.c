/* events.c: the logfmt line of a log event (keys in order, quoting and
 * escaping, the message cut without breaking an escape), --log-level
 * parsing and filtering, the context callback, journald priorities. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "err.h"
#include "events.h"

static struct ev_ctx
ctx(const char *session, const char *peer, const char *state, const char *reason, const char *code)
{
	struct ev_ctx cx;

	memset(&cx, 0, sizeof(cx));
	snprintf(cx.session, sizeof(cx.session), "%s", session);
	snprintf(cx.peer, sizeof(cx.peer), "%s", peer);
	snprintf(cx.state, sizeof(cx.state), "%s", state);
	snprintf(cx.reason, sizeof(cx.reason), "%s", reason);
	snprintf(cx.code, sizeof(cx.code), "%s", code);
	return cx;
}

/* The line for msg with no context and no prefix. */
static const char *
fmt_msg(const char *msg)
{
	static char buf[512];

	ev_format(buf, sizeof(buf), NULL, EV_INFO, NULL, msg);
	return buf;
}

static void
test_plain_line(void **state)
{
	char buf[256];
	size_t n;

	(void)state;
	n = ev_format(buf, sizeof(buf), "ferry-recv", EV_INFO, NULL, "listening");
	assert_string_equal(buf, "ferry-recv: level=info msg=\"listening\"");
	assert_int_equal(n, strlen(buf));
	ev_format(buf, sizeof(buf), NULL, EV_DEBUG, NULL, "x");
	assert_string_equal(buf, "level=debug msg=\"x\"");
	ev_format(buf, sizeof(buf), "p", EV_ERROR, NULL, "");
	assert_string_equal(buf, "p: level=error msg=\"\"");
	ev_format(buf, sizeof(buf), "p", EV_WARN, NULL, "w");
	assert_string_equal(buf, "p: level=warn msg=\"w\"");
}

static void
test_context_keys_in_order(void **state)
{
	struct ev_ctx cx = ctx("8882d30b9a7e9dce1b5ad0f2b94d00a3", "10.10.0.1:41700", "RECEIVING",
	    "refused", "REFUSE_SIZE");
	char buf[512];

	(void)state;
	ev_format(buf, sizeof(buf), "ferry-recv", EV_ERROR, &cx, "session 8882d30b9a7e9dce: refused");
	/* session: the first 16 digits (the struct holds no more) */
	assert_string_equal(buf, "ferry-recv: level=error session=8882d30b9a7e9dce peer=10.10.0.1:41700 "
	    "state=RECEIVING reason=refused code=REFUSE_SIZE msg=\"session 8882d30b9a7e9dce: refused\"");
	/* empty fields are left out */
	cx = ctx("", "[::1]:7300", "", "", "");
	ev_format(buf, sizeof(buf), "s", EV_INFO, &cx, "m");
	assert_string_equal(buf, "s: level=info peer=[::1]:7300 msg=\"m\"");
	/* an all-zero session id means none yet */
	cx = ctx("0000000000000000", "", "connecting", "", "");
	ev_format(buf, sizeof(buf), "s", EV_INFO, &cx, "m");
	assert_string_equal(buf, "s: level=info state=connecting msg=\"m\"");
	cx = ctx("0000000000000001", "", "", "", "");
	ev_format(buf, sizeof(buf), "s", EV_INFO, &cx, "m");
	assert_string_equal(buf, "s: level=info session=0000000000000001 msg=\"m\"");
}

static void
test_quoting(void **state)
{
	char buf[128];

	(void)state;
	/* msg is always quoted */
	assert_string_equal(fmt_msg("plain"), "level=info msg=\"plain\"");
	assert_string_equal(fmt_msg("a \"b\" c"), "level=info msg=\"a \\\"b\\\" c\"");
	assert_string_equal(fmt_msg("C:\\dir"), "level=info msg=\"C:\\\\dir\"");
	assert_string_equal(fmt_msg("l1\nl2\r\tx"), "level=info msg=\"l1\\nl2\\r\\tx\"");
	assert_string_equal(fmt_msg("bell\x07" "del\x7f" "esc\x1b"),
	    "level=info msg=\"bell\\u0007del\\u007fesc\\u001b\"");
	/* UTF-8 and other bytes above 0x7f pass */
	assert_string_equal(fmt_msg("caf\xc3\xa9"), "level=info msg=\"caf\xc3\xa9\"");
	/* other values: quoted only when needed */
	buf[0] = '\0';
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "a", "b", 0), 0);
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "sp", "x y", 0), 0);
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "eq", "k=v", 0), 0);
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "e", "", 0), 0);
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "q", "\"", 0), 0);
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "bs", "\\", 0), 0);
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "t", "a\tb", 0), 0);
	assert_string_equal(buf, "a=b sp=\"x y\" eq=\"k=v\" e=\"\" q=\"\\\"\" bs=\"\\\\\" t=\"a\\tb\"");
	buf[0] = '\0';
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "f", "plain", 1), 0);
	assert_string_equal(buf, "f=\"plain\"");
}

static void
test_kv_append_bounds(void **state)
{
	char buf[16];

	(void)state;
	/* "k=1234567890123" is 15 bytes: fits exactly with the NUL */
	buf[0] = '\0';
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "k", "1234567890123", 0), 0);
	assert_string_equal(buf, "k=1234567890123");
	/* one more byte does not fit: buf unchanged */
	buf[0] = '\0';
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "k", "12345678901234", 0), -1);
	assert_string_equal(buf, "");
	/* a second pair needs its separator too */
	snprintf(buf, sizeof(buf), "a=1");
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "b", "12345678", 0), 0);
	assert_string_equal(buf, "a=1 b=12345678");
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "c", "", 0), -1);
	assert_string_equal(buf, "a=1 b=12345678");
	/* quoted: room for both quotes; an escape is not split */
	buf[0] = '\0';
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "k", "a b c d e f", 0), 0);
	assert_string_equal(buf, "k=\"a b c d e f\"");
	buf[0] = '\0';
	assert_int_equal(ev_kv_append(buf, sizeof(buf), "k", "a b c d e fg", 0), -1);
	assert_string_equal(buf, "");
}

static void
test_long_message_cut(void **state)
{
	char msg[200], buf[40];
	size_t n;

	(void)state;
	memset(msg, 'x', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	n = ev_format(buf, sizeof(buf), "p", EV_INFO, NULL, msg);
	assert_int_equal(n, sizeof(buf) - 1);
	assert_int_equal(strlen(buf), n);
	assert_memory_equal(buf, "p: level=info msg=\"xxx", 22);
	assert_int_equal(buf[n - 1], '"');
	/* cut where an escape would straddle the end: dropped whole */
	memset(msg, '"', 30);
	msg[30] = '\0';
	n = ev_format(buf, sizeof(buf), "p", EV_INFO, NULL, msg);
	assert_int_equal(buf[n - 1], '"');
	assert_int_equal(buf[n - 2], '"');     /* the last escape, \" */
	assert_int_equal(buf[n - 3], '\\');
	assert_true(n <= sizeof(buf) - 1);
	assert_int_equal((n - strlen("p: level=info msg=\"") - 1) % 2, 0);
	/* a tiny buffer: still NUL-terminated */
	n = ev_format(buf, 4, "prog", EV_INFO, NULL, "m");
	assert_int_equal(n, 3);
	assert_string_equal(buf, "pro");
	assert_int_equal(ev_format(buf, 0, "p", EV_INFO, NULL, "m"), 0);
}

static void
test_level_parse(void **state)
{
	static const struct { const char *s; int level; } good[] = {
		{ "error", EV_ERROR }, { "warn", EV_WARN }, { "warning", EV_WARN },
		{ "info", EV_INFO }, { "debug", EV_DEBUG },
	};
	static const char *const bad[] = { "", "INFO", "Info", "verbose", "3", "info ", "err" };
	struct ferr e;
	size_t i;
	int level;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		memset(&e, 0, sizeof(e));
		level = 0;
		assert_int_equal(ev_level_parse("--log-level", good[i].s, &level, &e), 0);
		assert_int_equal(level, good[i].level);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[64];

		memset(&e, 0, sizeof(e));
		level = 7;
		assert_int_equal(ev_level_parse("--log-level", bad[i], &level, &e), FERR_USAGE);
		assert_int_equal(level, 7);
		snprintf(want, sizeof(want), "--log-level '%s'", bad[i]);
		assert_non_null(strstr(e.msg, want));
	}
	assert_string_equal(ev_level_name(EV_ERROR), "error");
	assert_string_equal(ev_level_name(EV_DEBUG), "debug");
	assert_string_equal(ev_level_name(0), "info");
}

/* Run f with ev writing into a memory stream; the text written. */
static char *
capture(struct events *ev, void (*f)(struct events *))
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);

	assert_non_null(m);
	ev->err = m;
	f(ev);
	fclose(m);
	ev->err = NULL;
	return text;
}

static void
log_all_levels(struct events *ev)
{
	ev_debug(ev, "d%d", 1);
	ev_log(ev, "i%d", 2);
	ev_warn(ev, "w%d", 3);
	ev_logx(ev, EV_ERROR, NULL, "e%d", 4);
	ev_final(ev, EV_INFO, NULL, "summary");
	ev_error(ev, "failed: %s", "x");
}

static void
test_level_filter(void **state)
{
	struct events ev;
	char *t;

	(void)state;
	ev_init(&ev, "p");
	ev.journal = 0;
	assert_int_equal(ev.level, EV_INFO);
	t = capture(&ev, log_all_levels);
	assert_string_equal(t, "p: level=info msg=\"i2\"\np: level=warn msg=\"w3\"\n"
	    "p: level=error msg=\"e4\"\np: level=info msg=\"summary\"\np: level=error msg=\"failed: x\"\n");
	free(t);
	ev.level = EV_ERROR;    /* --quiet */
	t = capture(&ev, log_all_levels);
	assert_string_equal(t, "p: level=error msg=\"e4\"\np: level=info msg=\"summary\"\n"
	    "p: level=error msg=\"failed: x\"\n");
	free(t);
	ev.level = EV_WARN;
	t = capture(&ev, log_all_levels);
	assert_null(strstr(t, "i2"));
	assert_non_null(strstr(t, "w3"));
	free(t);
	ev.level = EV_DEBUG;
	t = capture(&ev, log_all_levels);
	{
		static const char want[] = "p: level=debug msg=\"d1\"\np: level=info msg=\"i2\"\n";

		assert_memory_equal(t, want, sizeof(want) - 1);
	}
	free(t);
	ev.level = 0;           /* zeroed struct: info */
	assert_int_equal(ev_enabled(&ev, EV_INFO), 1);
	assert_int_equal(ev_enabled(&ev, EV_DEBUG), 0);
}

struct fake_mig {
	int calls;
};

static void
fake_ctx(void *arg, struct ev_ctx *cx)
{
	struct fake_mig *m = arg;

	m->calls++;
	snprintf(cx->session, sizeof(cx->session), "abcdef0123456789");
	snprintf(cx->peer, sizeof(cx->peer), "10.0.0.2:7300");
	snprintf(cx->state, sizeof(cx->state), "precopy");
}

static void
log_with_ctx(struct events *ev)
{
	struct ev_ctx cx;

	ev_debug(ev, "hidden");
	ev_log(ev, "one");
	memset(&cx, 0, sizeof(cx));
	snprintf(cx.state, sizeof(cx.state), "paused");
	snprintf(cx.code, sizeof(cx.code), "NET");
	ev_logx(ev, EV_WARN, &cx, "two");
}

static void
test_context_callback(void **state)
{
	struct fake_mig m = { 0 };
	struct events ev;
	char *t;

	(void)state;
	ev_init(&ev, "ferry-send");
	ev.journal = 0;
	ev.ctx = fake_ctx;
	ev.ctx_arg = &m;
	t = capture(&ev, log_with_ctx);
	assert_string_equal(t,
	    "ferry-send: level=info session=abcdef0123456789 peer=10.0.0.2:7300 state=precopy msg=\"one\"\n"
	    "ferry-send: level=warn session=abcdef0123456789 peer=10.0.0.2:7300 state=paused code=NET "
	    "msg=\"two\"\n");
	/* called only for lines that are written */
	assert_int_equal(m.calls, 2);
	free(t);
}

static void
test_journal_priorities(void **state)
{
	struct events ev;
	char *t;

	(void)state;
	ev_init(&ev, "p");
	ev.journal = 1;
	ev.level = EV_DEBUG;
	t = capture(&ev, log_all_levels);
	assert_string_equal(t, "<7>level=debug msg=\"d1\"\n<6>level=info msg=\"i2\"\n<4>level=warn msg=\"w3\"\n"
	    "<3>level=error msg=\"e4\"\n<6>level=info msg=\"summary\"\n<3>level=error msg=\"failed: x\"\n");
	free(t);
}

static void
test_journal_stream_detection(void **state)
{
	struct stat st;
	char v[64];

	(void)state;
	assert_int_equal(fstat(2, &st), 0);
	unsetenv("JOURNAL_STREAM");
	assert_int_equal(ev_stderr_is_journal(), 0);
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
	assert_int_equal(ev_stderr_is_journal(), 1);
	/* another file: a child whose stderr was redirected */
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", v, 1);
	assert_int_equal(ev_stderr_is_journal(), 0);
	setenv("JOURNAL_STREAM", "garbage", 1);
	assert_int_equal(ev_stderr_is_journal(), 0);
	snprintf(v, sizeof(v), "%llu:%llux", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
	assert_int_equal(ev_stderr_is_journal(), 0);
	unsetenv("JOURNAL_STREAM");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_line),
		cmocka_unit_test(test_context_keys_in_order),
		cmocka_unit_test(test_quoting),
		cmocka_unit_test(test_kv_append_bounds),
		cmocka_unit_test(test_long_message_cut),
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test(test_level_filter),
		cmocka_unit_test(test_context_callback),
		cmocka_unit_test(test_journal_priorities),
		cmocka_unit_test(test_journal_stream_detection),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
