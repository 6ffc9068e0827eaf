/* units.c: sizes, rates, durations, integers and addresses from the
 * command line.  Every bad value is FERR_USAGE with a message that quotes
 * it; good values are checked to the byte. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "err.h"
#include "units.h"

static uint64_t
size_ok(const char *s)
{
	struct ferr e = { 0 };
	uint64_t v = 0xdeadbeef;

	if (parse_size(s, &v, &e) != 0)
		fail_msg("parse_size('%s') failed: %s", s, e.msg);
	return v;
}

static void
size_bad(const char *s)
{
	struct ferr e = { 0 };
	uint64_t v = 0;

	if (parse_size(s, &v, &e) != FERR_USAGE)
		fail_msg("parse_size('%s') accepted (%llu)", s, (unsigned long long)v);
	assert_int_equal(e.code, FERR_USAGE);
	assert_non_null(strstr(e.msg, s));
}

static uint64_t
rate_ok(const char *s)
{
	struct ferr e = { 0 };
	uint64_t v = 0xdeadbeef;

	if (parse_rate(s, &v, &e) != 0)
		fail_msg("parse_rate('%s') failed: %s", s, e.msg);
	return v;
}

static void
rate_bad(const char *s)
{
	struct ferr e = { 0 };
	uint64_t v = 0;

	if (parse_rate(s, &v, &e) != FERR_USAGE)
		fail_msg("parse_rate('%s') accepted (%llu)", s, (unsigned long long)v);
	assert_non_null(strstr(e.msg, s));
}

static uint64_t
dur_ok(const char *s, uint64_t bare)
{
	struct ferr e = { 0 };
	uint64_t v = 0xdeadbeef;

	if (parse_duration_ms(s, bare, &v, &e) != 0)
		fail_msg("parse_duration_ms('%s') failed: %s", s, e.msg);
	return v;
}

static void
dur_bad(const char *s)
{
	struct ferr e = { 0 };
	uint64_t v = 0;

	if (parse_duration_ms(s, 1000, &v, &e) != FERR_USAGE)
		fail_msg("parse_duration_ms('%s') accepted (%llu)", s, (unsigned long long)v);
	assert_non_null(strstr(e.msg, s));
}

/* ---- sizes ---- */

static void
test_size_bare_bytes(void **state)
{
	(void)state;
	assert_int_equal(size_ok("4096"), 4096);
	assert_int_equal(size_ok("0"), 0);
	assert_int_equal(size_ok("1"), 1);
}

static void
test_size_binary_units(void **state)
{
	(void)state;
	assert_int_equal(size_ok("64K"), 65536);
	assert_int_equal(size_ok("64KiB"), 65536);
	assert_int_equal(size_ok("64KB"), 65536);
	assert_int_equal(size_ok("64k"), 65536);
	assert_int_equal(size_ok("256M"), 256ull << 20);
	assert_int_equal(size_ok("2G"), 2ull << 30);
	assert_int_equal(size_ok("1T"), 1ull << 40);
	assert_int_equal(size_ok("1TiB"), 1ull << 40);
}

static void
test_size_fractions(void **state)
{
	(void)state;
	assert_int_equal(size_ok("1.5G"), 3ull << 29);
	assert_int_equal(size_ok("1.5K"), 1536);
	assert_int_equal(size_ok("0.5M"), 512 * 1024);
	/* Bytes come whole: "1.5" alone is not a size. */
	size_bad("1.5");
}

static void
test_size_bad_values(void **state)
{
	(void)state;
	size_bad("");
	size_bad("12X");
	size_bad("-1");
	size_bad("K");
	size_bad("64KiBx");
	size_bad("64 K");
	size_bad(" 64K");
	size_bad("64Kb/s");
	size_bad("1P");
}

static void
test_size_null_refused(void **state)
{
	struct ferr e = { 0 };
	uint64_t v;

	(void)state;
	assert_int_equal(parse_size(NULL, &v, &e), FERR_USAGE);
}

static void
test_size_overflow(void **state)
{
	(void)state;
	size_bad("99999999999T");
	/* 2^24 TiB is 2^64: one past the largest. */
	assert_int_equal(size_ok("16777215T"), 16777215ull << 40);
	size_bad("16777216T");
	size_bad("99999999999999999999");
}

/* ---- rates ---- */

static void
test_rate_bits(void **state)
{
	(void)state;
	assert_int_equal(rate_ok("800Mbit"), 100000000);
	assert_int_equal(rate_ok("1Gbit"), 125000000);
	assert_int_equal(rate_ok("100Kbit"), 12500);
	assert_int_equal(rate_ok("8bit"), 1);
	assert_int_equal(rate_ok("1.5Gbit"), 187500000);
	assert_int_equal(rate_ok("800mbit"), 100000000);
}

static void
test_rate_binary_bytes(void **state)
{
	(void)state;
	assert_int_equal(rate_ok("100MiB/s"), 104857600);
	assert_int_equal(rate_ok("100MiB"), 104857600);
	assert_int_equal(rate_ok("100M"), 104857600);
	assert_int_equal(rate_ok("1G"), 1073741824);
	assert_int_equal(rate_ok("64KiB/s"), 65536);
}

static void
test_rate_decimal_bytes(void **state)
{
	(void)state;
	assert_int_equal(rate_ok("20MB/s"), 20000000);
	assert_int_equal(rate_ok("20MB"), 20000000);
	assert_int_equal(rate_ok("1KB/s"), 1000);
	assert_int_equal(rate_ok("1000"), 1000);
	assert_int_equal(rate_ok("1000B/s"), 1000);
}

static void
test_rate_bad_units(void **state)
{
	(void)state;
	rate_bad("");
	rate_bad("100X");
	rate_bad("100Mx");
	rate_bad("100Mbitz");
	rate_bad("Mbit");
	rate_bad("100 Mbit");
	rate_bad("-100M");
	rate_bad("100Pbit");
	rate_bad("100Mit");
	rate_bad("99999999999999Tbit");
}

/* ---- durations ---- */

static void
test_duration_units(void **state)
{
	(void)state;
	assert_int_equal(dur_ok("300ms", 1000), 300);
	assert_int_equal(dur_ok("5s", 1000), 5000);
	assert_int_equal(dur_ok("2m", 1000), 120000);
	assert_int_equal(dur_ok("2min", 1000), 120000);
	assert_int_equal(dur_ok("1h", 1000), 3600000);
	assert_int_equal(dur_ok("1500us", 1000), 1);
	assert_int_equal(dur_ok("1.5s", 1000), 1500);
	assert_int_equal(dur_ok("0s", 1000), 0);
}

static void
test_duration_bare_numbers(void **state)
{
	(void)state;
	assert_int_equal(dur_ok("5", 1000), 5000);     /* bare seconds */
	assert_int_equal(dur_ok("5", 1), 5);           /* bare milliseconds */
	assert_int_equal(dur_ok("2.5", 1000), 2500);
	assert_int_equal(dur_ok("150", 60000), 9000000);
}

static void
test_duration_bad(void **state)
{
	(void)state;
	dur_bad("");
	dur_bad("5x");
	dur_bad("5 s");
	dur_bad("ms");
	dur_bad("-5s");
	dur_bad("5sec");
	dur_bad("5d");
	dur_bad("99999999999999h");
}

/* ---- integers ---- */

static void
test_uint_range(void **state)
{
	struct ferr e = { 0 };
	uint64_t v = 0;

	(void)state;
	assert_int_equal(parse_uint("0", 0, 10, &v, &e), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint("10", 0, 10, &v, &e), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_uint("11", 0, 10, &v, &e), FERR_USAGE);
	assert_non_null(strstr(e.msg, "11"));
	assert_int_equal(parse_uint("1", 2, 10, &v, &e), FERR_USAGE);
	assert_int_equal(parse_uint("2", 2, 10, &v, &e), 0);
	assert_int_equal(parse_uint("007", 0, 10, &v, &e), 0);
	assert_int_equal(v, 7);
}

static void
test_uint_extremes(void **state)
{
	struct ferr e = { 0 };
	uint64_t v = 0;

	(void)state;
	assert_int_equal(parse_uint("18446744073709551615", 0, UINT64_MAX, &v, &e), 0);
	assert_int_equal(v, UINT64_MAX);
	assert_int_equal(parse_uint("18446744073709551616", 0, UINT64_MAX, &v, &e), FERR_USAGE);
}

static void
test_uint_bad_text(void **state)
{
	static const char *bad[] = { "", "-1", "+1", " 1", "1 ", "1a", "0x10", "1.0" };
	struct ferr e;
	uint64_t v;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ferr_clear(&e);
		if (parse_uint(bad[i], 0, UINT64_MAX, &v, &e) != FERR_USAGE)
			fail_msg("parse_uint('%s') accepted", bad[i]);
	}
	assert_int_equal(parse_uint(NULL, 0, 1, &v, &e), FERR_USAGE);
}

/* ---- addresses ---- */

static void
test_hostport_ipv4(void **state)
{
	struct ferr e = { 0 };
	char host[64];
	uint16_t port = 0;

	(void)state;
	assert_int_equal(parse_hostport("127.0.0.1:80", host, sizeof(host), &port, &e), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 80);
	assert_int_equal(parse_hostport("recv.example:65535", host, sizeof(host), &port, &e), 0);
	assert_string_equal(host, "recv.example");
	assert_int_equal(port, 65535);
}

static void
test_hostport_ipv6(void **state)
{
	struct ferr e = { 0 };
	char host[64];
	uint16_t port = 0;

	(void)state;
	assert_int_equal(parse_hostport("[::1]:443", host, sizeof(host), &port, &e), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 443);
	assert_int_equal(parse_hostport("[fe80::1%eth0]:7000", host, sizeof(host), &port, &e), 0);
	assert_string_equal(host, "fe80::1%eth0");
	assert_int_equal(port, 7000);
}

static void
test_hostport_port_zero_allowed(void **state)
{
	struct ferr e = { 0 };
	char host[64];
	uint16_t port = 99;

	(void)state;
	assert_int_equal(parse_hostport("host:0", host, sizeof(host), &port, &e), 0);
	assert_string_equal(host, "host");
	assert_int_equal(port, 0);
}

static void
test_hostport_bad(void **state)
{
	static const char *bad[] = {
		"", "host", "host:", "host:65536", "host:-1", "host:80x", "host:http", ":80",
		"[::1]", "[::1]443", "[::1]:", "[]:80", "[::1:80", "host: 80",
	};
	struct ferr e;
	char host[64];
	uint16_t port;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ferr_clear(&e);
		if (parse_hostport(bad[i], host, sizeof(host), &port, &e) != FERR_USAGE)
			fail_msg("parse_hostport('%s') accepted", bad[i]);
		assert_int_equal(e.code, FERR_USAGE);
	}
	assert_int_equal(parse_hostport(NULL, host, sizeof(host), &port, &e), FERR_USAGE);
}

static void
test_hostport_ipv6_needs_brackets(void **state)
{
	struct ferr e = { 0 };
	char host[64];
	uint16_t port;

	(void)state;
	assert_int_equal(parse_hostport("::1:443", host, sizeof(host), &port, &e), FERR_USAGE);
	assert_non_null(strstr(e.msg, "[ADDR]:PORT"));
	assert_int_equal(parse_hostport("fe80::1:80", host, sizeof(host), &port, &e), FERR_USAGE);
}

static void
test_hostport_host_buffer(void **state)
{
	struct ferr e = { 0 };
	char host[10] = "unchanged";
	uint16_t port;

	(void)state;
	/* 9 characters need 10 bytes with the NUL. */
	assert_int_equal(parse_hostport("123456789:1", host, 10, &port, &e), 0);
	assert_string_equal(host, "123456789");
	assert_int_equal(parse_hostport("1234567890:1", host, 10, &port, &e), FERR_USAGE);
	assert_string_equal(host, "123456789");        /* left alone */
}

/* ---- formatting ---- */

static void
test_fmt_size(void **state)
{
	char buf[32];

	(void)state;
	fmt_size(0, buf, sizeof(buf));
	assert_string_equal(buf, "0 B");
	fmt_size(1023, buf, sizeof(buf));
	assert_string_equal(buf, "1023 B");
	fmt_size(1024, buf, sizeof(buf));
	assert_string_equal(buf, "1.0 KiB");
	fmt_size(1536, buf, sizeof(buf));
	assert_string_equal(buf, "1.5 KiB");
	fmt_size(3ull << 29, buf, sizeof(buf));
	assert_string_equal(buf, "1.5 GiB");
	fmt_size(5ull << 40, buf, sizeof(buf));
	assert_string_equal(buf, "5.0 TiB");
	fmt_size(2048ull << 40, buf, sizeof(buf));      /* no unit past TiB */
	assert_string_equal(buf, "2048.0 TiB");
}

static void
test_fmt_size_small_buffer(void **state)
{
	char buf[8];

	(void)state;
	memset(buf, 'x', sizeof(buf));
	fmt_size(3ull << 29, buf, 4);
	assert_string_equal(buf, "1.5");
	assert_int_equal(buf[4], 'x');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_bare_bytes),
		cmocka_unit_test(test_size_binary_units),
		cmocka_unit_test(test_size_fractions),
		cmocka_unit_test(test_size_bad_values),
		cmocka_unit_test(test_size_null_refused),
		cmocka_unit_test(test_size_overflow),
		cmocka_unit_test(test_rate_bits),
		cmocka_unit_test(test_rate_binary_bytes),
		cmocka_unit_test(test_rate_decimal_bytes),
		cmocka_unit_test(test_rate_bad_units),
		cmocka_unit_test(test_duration_units),
		cmocka_unit_test(test_duration_bare_numbers),
		cmocka_unit_test(test_duration_bad),
		cmocka_unit_test(test_uint_range),
		cmocka_unit_test(test_uint_extremes),
		cmocka_unit_test(test_uint_bad_text),
		cmocka_unit_test(test_hostport_ipv4),
		cmocka_unit_test(test_hostport_ipv6),
		cmocka_unit_test(test_hostport_port_zero_allowed),
		cmocka_unit_test(test_hostport_bad),
		cmocka_unit_test(test_hostport_ipv6_needs_brackets),
		cmocka_unit_test(test_hostport_host_buffer),
		cmocka_unit_test(test_fmt_size),
		cmocka_unit_test(test_fmt_size_small_buffer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
