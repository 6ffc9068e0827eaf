/* Fuzz target: the command-line value parsers (src/common/units.c).
 *
 * Input: the bytes of one value; the harness adds the NUL (bytes after an
 * embedded NUL are simply not part of the string).  Every parser runs on
 * it, and what each returns is checked against what it promises:
 * parse_uint agrees with strtoull and the bounds, a host from
 * parse_hostport fits the buffer and is a prefix-free copy of the input,
 * a bare number means the same to parse_size, parse_uint and (as seconds)
 * parse_duration_ms when they all accept it. */
#include "fuzz_common.h"

#include <errno.h>

#include "units.h"

static void
check_err(int rc, const struct ferr *e)
{
	FZ_CHECK(rc == 0 || (rc == FERR_USAGE && e->code == FERR_USAGE && e->msg[0] != '\0'));
	FZ_CHECK(memchr(e->msg, '\0', sizeof(e->msg)) != NULL);
}

static void
check_hostport(const char *s, size_t hostlen)
{
	char *host = malloc(hostlen);   /* exact size: ASan sees an overrun */
	struct ferr e = { 0 };
	uint16_t port = 0;
	int rc;

	FZ_CHECK(host != NULL);
	rc = parse_hostport(s, host, hostlen, &port, &e);
	check_err(rc, &e);
	if (rc == 0) {
		size_t hl = strnlen(host, hostlen);

		FZ_CHECK(hl >= 1 && hl < hostlen);
		/* The host is the input's text before the port, without the
		 * brackets of an IPv6 literal. */
		if (s[0] == '[') {
			FZ_CHECK(strncmp(s + 1, host, hl) == 0 && s[hl + 1] == ']' && s[hl + 2] == ':');
		} else {
			FZ_CHECK(strncmp(s, host, hl) == 0 && s[hl] == ':');
			FZ_CHECK(memchr(host, ':', hl) == NULL);
		}
	}
	free(host);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;
	struct ferr e = { 0 };
	uint64_t v = 0, size_v = 0, uint_v = 0, dur_v = 0;
	int rc, rc_size, rc_uint, rc_dur;

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	FZ_CHECK(s != NULL);
	memcpy(s, data, size);
	s[size] = '\0';

	rc_size = parse_size(s, &size_v, &e);
	check_err(rc_size, &e);

	memset(&e, 0, sizeof(e));
	rc = parse_rate(s, &v, &e);
	check_err(rc, &e);

	memset(&e, 0, sizeof(e));
	rc_dur = parse_duration_ms(s, 1000, &dur_v, &e);
	check_err(rc_dur, &e);
	memset(&e, 0, sizeof(e));
	rc = parse_duration_ms(s, 1, &v, &e);
	check_err(rc, &e);
	/* With a unit, the bare-number unit does not matter. */
	if (rc == 0 && rc_dur == 0 && s[0] != '\0' && strspn(s, "0123456789.") != strlen(s))
		FZ_CHECK(v == dur_v);

	memset(&e, 0, sizeof(e));
	rc_uint = parse_uint(s, 0, UINT64_MAX, &uint_v, &e);
	check_err(rc_uint, &e);
	if (rc_uint == 0) {
		char *end;
		unsigned long long x;

		errno = 0;
		x = strtoull(s, &end, 10);
		FZ_CHECK(errno == 0 && *end == '\0' && x == uint_v);
		FZ_CHECK(s[0] >= '0' && s[0] <= '9');
		/* A whole number of bytes is the same size, unless too large
		 * for the size parser's fixed-point arithmetic. */
		if (rc_size == 0)
			FZ_CHECK(size_v == uint_v);
		else
			FZ_CHECK(uint_v > UINT64_MAX / 1000 / 10);
		/* And as a duration, bare numbers are seconds here. */
		if (rc_dur == 0)
			FZ_CHECK(dur_v == uint_v * 1000);
	}
	memset(&e, 0, sizeof(e));
	rc = parse_uint(s, 1, 65535, &v, &e);
	check_err(rc, &e);
	if (rc == 0)
		FZ_CHECK(v >= 1 && v <= 65535 && rc_uint == 0 && v == uint_v);
	else if (rc_uint == 0)
		FZ_CHECK(uint_v < 1 || uint_v > 65535);

	check_hostport(s, 256);
	check_hostport(s, 8);
	check_hostport(s, 1);

	free(s);
	return 0;
}
