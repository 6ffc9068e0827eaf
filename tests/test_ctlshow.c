/* ctlshow.c: the readable `ctl SOCKET status` of both daemons, from the
 * JSON answers they send (as in src/sender/phases.c phase_status and
 * src/receiver/rsessions.c recvd_ctl): durations, rates, the sessions and
 * history tables, a paused session, fields missing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static char *
show(void (*f)(struct json_object *, FILE *), const char *json)
{
	struct json_object *o = json_tokener_parse(json);
	char *text = NULL;
	size_t len = 0;
	FILE *m;

	assert_non_null(o);
	m = open_memstream(&text, &len);
	assert_non_null(m);
	f(o, m);
	fclose(m);
	json_object_put(o);
	return text;
}

static int
has_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
			return 1;
	return 0;
}

#define assert_line(text, line) do { \
	if (!has_line((text), (line))) \
		fail_msg("no line '%s' in:\n%s", (line), (text)); \
} while (0)

static void
test_durations_and_rates(void **state)
{
	char b[32];

	(void)state;
	ctl_fmt_duration(0, b, sizeof(b));
	assert_string_equal(b, "0ms");
	ctl_fmt_duration(999, b, sizeof(b));
	assert_string_equal(b, "999ms");
	ctl_fmt_duration(1000, b, sizeof(b));
	assert_string_equal(b, "1.0s");
	ctl_fmt_duration(3249, b, sizeof(b));
	assert_string_equal(b, "3.2s");
	ctl_fmt_duration(59999, b, sizeof(b));
	assert_string_equal(b, "60.0s");
	ctl_fmt_duration(60000, b, sizeof(b));
	assert_string_equal(b, "1m00s");
	ctl_fmt_duration(125000, b, sizeof(b));
	assert_string_equal(b, "2m05s");
	ctl_fmt_duration(3600000 + 2 * 60000 + 59000, b, sizeof(b));
	assert_string_equal(b, "1h02m");
	ctl_fmt_rate(0, b, sizeof(b));
	assert_string_equal(b, "0 B/s");
	ctl_fmt_rate(47500000, b, sizeof(b));
	assert_string_equal(b, "45.3 MiB/s");
	ctl_fmt_rate(1288490189, b, sizeof(b));
	assert_string_equal(b, "1.2 GiB/s");
}

static void
test_send_status(void **state)
{
	char *t;

	(void)state;
	t = show(ctl_show_send_status, "{\"session\":\"8882d30b9a7e9dce1b5ad0f2b94d00a3\","
	    "\"state\":\"precopy\",\"round\":3,\"round_units_scanned\":27720,\"total_units\":65536,"
	    "\"logical_bytes\":1288490189,\"wire_bytes\":362387865,\"acked_seq\":1234,"
	    "\"sent_seq\":1240,\"dirty_rate\":8703180,\"bandwidth\":20971520,\"cuts\":1,"
	    "\"elapsed_ms\":12300,\"ok\":true}");
	assert_line(t, "Session:       8882d30b9a7e9dce1b5ad0f2b94d00a3");
	assert_line(t, "State:         precopy");
	assert_line(t, "Round:         3, 42.3% scanned (27720 of 65536 units)");
	assert_line(t, "Transferred:   1.2 GiB logical, 345.6 MiB on the wire");
	assert_line(t, "Rate:          99.9 MiB/s logical, 28.1 MiB/s wire (average)");
	assert_line(t, "Dirty rate:    8.3 MiB/s");
	assert_line(t, "Bandwidth cap: 20.0 MiB/s");
	assert_line(t, "Frames:        1240 sent, 1234 acknowledged");
	assert_line(t, "Cuts:          1");
	assert_line(t, "Elapsed:       12.3s");
	assert_null(strstr(t, "\"ok\""));
	free(t);
}

static void
test_send_status_paused_and_sparse(void **state)
{
	char *t;

	(void)state;
	t = show(ctl_show_send_status, "{\"session\":\"00000000000000000000000000000000\","
	    "\"state\":\"paused\",\"resume_to\":\"precopy\",\"paused_ms\":3200,\"bandwidth\":0,"
	    "\"ok\":true}");
	assert_line(t, "Session:       (not assigned yet)");
	assert_line(t, "State:         paused 3.2s (link down, reconnecting; then precopy)");
	assert_line(t, "Bandwidth cap: none");
	/* absent fields are not shown */
	assert_null(strstr(t, "Round:"));
	assert_null(strstr(t, "Elapsed:"));
	free(t);
	t = show(ctl_show_send_status, "{\"ok\":true}");
	assert_string_equal(t, "");
	free(t);
}

static void
test_recv_status(void **state)
{
	char *t;

	(void)state;
	t = show(ctl_show_recv_status, "{\"sessions\":["
	    "{\"session\":\"8882d30b9a7e9dce1b5ad0f2b94d00a3\",\"peer\":\"10.10.0.1:41700\","
	    "\"peer_name\":\"hosta\",\"state\":\"RECEIVING\",\"logical_bytes\":1288490189,"
	    "\"rate\":47500000,\"round\":2,\"applied_seq\":99,\"cuts\":0,\"elapsed_ms\":27100},"
	    "{\"session\":\"3bee00b7aaaaaaaabbbbbbbbcccccccc\",\"peer\":\"10.10.0.3:50000\","
	    "\"peer_name\":\"hostc\",\"state\":\"paused\",\"logical_bytes\":1024,\"rate\":10,"
	    "\"round\":1,\"applied_seq\":1,\"cuts\":1,\"paused_ms\":3200,\"elapsed_ms\":65000}],"
	    "\"history\":[{\"session\":\"0123456789abcdef0123456789abcdef\",\"peer\":\"10.10.0.1:41000\","
	    "\"result\":\"refused\",\"error\":\"disk count: source has 1 disks, destination expects 2\","
	    "\"logical_bytes\":0,\"duration_ms\":12,\"cuts\":0}],\"active\":2,\"ok\":true}");
	assert_line(t, "State:         receiving (2 active, 1 paused waiting for the sender)");
	assert_line(t, "Sessions:      2");
	assert_line(t, "  SESSION           PEER             NAME   STATE        BYTES    RATE        "
	    "ROUND  CUTS  ELAPSED");
	assert_line(t, "  8882d30b9a7e9dce  10.10.0.1:41700  hosta  RECEIVING    1.2 GiB  45.3 MiB/s  "
	    "2      0     27.1s");
	assert_line(t, "  3bee00b7aaaaaaaa  10.10.0.3:50000  hostc  paused 3.2s  1.0 KiB  10 B/s      "
	    "1      1     1m05s");
	assert_line(t, "History:       last 1, newest first");
	assert_line(t, "  SESSION           PEER             RESULT   BYTES  DURATION  CUTS  ERROR");
	assert_line(t, "  0123456789abcdef  10.10.0.1:41000  refused  0 B    12ms      0     "
	    "disk count: source has 1 disks, destination expects 2");
	free(t);
}

static void
test_recv_status_idle(void **state)
{
	char *t;

	(void)state;
	t = show(ctl_show_recv_status, "{\"sessions\":[],\"history\":[],\"active\":0,\"ok\":true}");
	assert_string_equal(t, "State:         idle (no migration in progress)\n"
	    "Sessions:      none\nHistory:       none\n");
	free(t);
	/* a committed session: no error column text, no trailing blanks */
	t = show(ctl_show_recv_status, "{\"sessions\":[],\"history\":[{\"session\":\"ab\","
	    "\"peer\":\"p:1\",\"result\":\"ok\",\"logical_bytes\":58720256,\"duration_ms\":2267,"
	    "\"cuts\":0}],\"active\":0,\"ok\":true}");
	assert_line(t, "  ab       p:1   ok      56.0 MiB  2.3s      0");
	assert_null(strstr(t, " \n"));
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations_and_rates),
		cmocka_unit_test(test_send_status),
		cmocka_unit_test(test_send_status_paused_and_sparse),
		cmocka_unit_test(test_recv_status),
		cmocka_unit_test(test_recv_status_idle),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
