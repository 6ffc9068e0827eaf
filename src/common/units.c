#include "units.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Leading unsigned decimal with optional fraction ("1.5").  Returns the
 * value scaled by 1000 (milli-units) so "1.5G" stays exact enough, and
 * sets *end past the digits. */
static int
parse_milli(const char *s, uint64_t *milli, const char **end)
{
	uint64_t whole = 0, frac = 0, scale = 1000;
	const char *p = s;
	int digits = 0;

	while (isdigit((unsigned char)*p)) {
		if (whole > (UINT64_MAX / 1000 - 9) / 10)
			return -1;
		whole = whole * 10 + (uint64_t)(*p - '0');
		p++;
		digits++;
	}
	if (*p == '.') {
		p++;
		while (isdigit((unsigned char)*p)) {
			if (scale > 1) {
				scale /= 10;
				frac += (uint64_t)(*p - '0') * scale;
			}
			p++;
			digits++;
		}
	}
	if (digits == 0)
		return -1;
	*milli = whole * 1000 + frac;
	*end = p;
	return 0;
}

/* milli * mult / 1000 with overflow check. */
static int
scale_milli(uint64_t milli, uint64_t mult, uint64_t *out)
{
	unsigned __int128 v = (unsigned __int128)milli * mult / 1000;

	if (v > UINT64_MAX)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

static int
prefix_mult(char c, uint64_t base, uint64_t *mult)
{
	switch (toupper((unsigned char)c)) {
	case 'K': *mult = base; return 0;
	case 'M': *mult = base * base; return 0;
	case 'G': *mult = base * base * base; return 0;
	case 'T': *mult = base * base * base * base; return 0;
	default: return -1;
	}
}

int
parse_size(const char *s, uint64_t *bytes, struct ferr *e)
{
	uint64_t milli, mult = 1;
	const char *p;

	if (s == NULL || parse_milli(s, &milli, &p) != 0)
		return ferr_set(e, FERR_USAGE, "size '%s': expected a number with an optional unit (K, M, G, T)",
		    s ? s : "");
	if (*p != '\0') {
		if (prefix_mult(*p, 1024, &mult) != 0)
			goto bad;
		p++;
		if (strcasecmp(p, "") != 0 && strcasecmp(p, "B") != 0 && strcasecmp(p, "iB") != 0)
			goto bad;
	} else if (milli % 1000 != 0) {
		goto bad;
	}
	if (scale_milli(milli, mult, bytes) != 0)
		return ferr_set(e, FERR_USAGE, "size '%s': too large", s);
	return 0;
bad:
	return ferr_set(e, FERR_USAGE, "size '%s': unknown unit (use K, M, G, T, e.g. 256M)", s);
}

int
parse_rate(const char *s, uint64_t *bps, struct ferr *e)
{
	uint64_t milli, mult = 1, v;
	const char *p, *u;
	int bits = 0;

	if (s == NULL || parse_milli(s, &milli, &p) != 0)
		return ferr_set(e, FERR_USAGE, "rate '%s': expected a number with a unit (e.g. 800Mbit, 100MiB/s)",
		    s ? s : "");
	u = p;
	if (*u == '\0') {
		mult = 1;
	} else if (strcasecmp(u, "bit") == 0 || strcasecmp(u, "bps") == 0) {
		bits = 1;
	} else if (strcasecmp(u, "B") == 0 || strcasecmp(u, "B/s") == 0) {
		mult = 1;
	} else {
		const char *t = u + 1;
		int binary = 0;

		if (prefix_mult(*u, 1000, &mult) != 0)
			goto bad;
		if (strncasecmp(t, "i", 1) == 0 && t[1] != '\0' && t[1] != 't') {
			binary = 1;
			t++;
		}
		if (strcasecmp(t, "bit") == 0 || strcmp(t, "b") == 0 || strcasecmp(t, "bit/s") == 0 ||
		    strcasecmp(t, "bps") == 0) {
			bits = 1;
			if (binary)
				(void)prefix_mult(*u, 1024, &mult);
		} else if (strcmp(t, "") == 0) {
			/* "100M" alone: binary bytes per second, like QEMU */
			(void)prefix_mult(*u, 1024, &mult);
		} else if (strcmp(t, "B") == 0 || strcasecmp(t, "B/s") == 0) {
			if (binary)
				(void)prefix_mult(*u, 1024, &mult);
		} else {
			goto bad;
		}
	}
	if (scale_milli(milli, mult, &v) != 0)
		return ferr_set(e, FERR_USAGE, "rate '%s': too large", s);
	*bps = bits ? v / 8 : v;
	return 0;
bad:
	return ferr_set(e, FERR_USAGE,
	    "rate '%s': unknown unit (use bit, Kbit, Mbit, Gbit for bits/s or KiB/s, MiB/s, MB/s for bytes/s)", s);
}

int
parse_duration_ms(const char *s, uint64_t bare_unit_ms, uint64_t *ms, struct ferr *e)
{
	uint64_t milli, v;
	const char *p;

	if (s == NULL || parse_milli(s, &milli, &p) != 0)
		return ferr_set(e, FERR_USAGE, "duration '%s': expected a number with a unit (ms, s, m, h)",
		    s ? s : "");
	if (*p == '\0') {
		if (scale_milli(milli, bare_unit_ms, &v) != 0)
			goto big;
	} else if (strcmp(p, "us") == 0) {
		v = milli / 1000 / 1000;
	} else if (strcmp(p, "ms") == 0) {
		v = milli / 1000;
	} else if (strcmp(p, "s") == 0) {
		if (scale_milli(milli, 1000, &v) != 0)
			goto big;
	} else if (strcmp(p, "m") == 0 || strcmp(p, "min") == 0) {
		if (scale_milli(milli, 60000, &v) != 0)
			goto big;
	} else if (strcmp(p, "h") == 0) {
		if (scale_milli(milli, 3600000, &v) != 0)
			goto big;
	} else {
		return ferr_set(e, FERR_USAGE, "duration '%s': unknown unit (use ms, s, m, h)", s);
	}
	*ms = v;
	return 0;
big:
	return ferr_set(e, FERR_USAGE, "duration '%s': too large", s);
}

int
parse_timeout_flag(const char *flag, const char *s, uint64_t *ms, struct ferr *e)
{
	if (parse_duration_ms(s, 1000, ms, e) != 0)
		return ferr_wrap(e, "%s", flag);
	if (*ms == 0)
		return ferr_set(e, FERR_USAGE, "%s: must be more than 0", flag);
	return 0;
}

int
parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *v, struct ferr *e)
{
	char *end;
	unsigned long long x;

	if (s == NULL || !isdigit((unsigned char)*s))
		return ferr_set(e, FERR_USAGE, "'%s': expected a whole number", s ? s : "");
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return ferr_set(e, FERR_USAGE, "'%s': expected a whole number", s);
	if (x < min || x > max)
		return ferr_set(e, FERR_USAGE, "'%s': must be between %llu and %llu", s,
		    (unsigned long long)min, (unsigned long long)max);
	*v = x;
	return 0;
}

int
parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port, struct ferr *e)
{
	const char *colon, *h = s;
	size_t n;
	uint64_t p;

	if (s == NULL || *s == '\0')
		return ferr_set(e, FERR_USAGE, "address '': expected HOST:PORT");
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return ferr_set(e, FERR_USAGE, "address '%s': expected [IPV6]:PORT", s);
		h = s + 1;
		n = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return ferr_set(e, FERR_USAGE, "address '%s': missing :PORT", s);
		n = (size_t)(colon - s);
		if (memchr(s, ':', n) != NULL)
			return ferr_set(e, FERR_USAGE, "address '%s': write IPv6 as [ADDR]:PORT", s);
	}
	if (n == 0 || n >= hostlen)
		return ferr_set(e, FERR_USAGE, "address '%s': bad host", s);
	if (parse_uint(colon + 1, 0, 65535, &p, NULL) != 0)
		return ferr_set(e, FERR_USAGE, "address '%s': port must be 0-65535", s);
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (uint16_t)p;
	return 0;
}

void
fmt_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)bytes;
	int i = 0;

	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		snprintf(buf, len, "%llu B", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f %s", v, unit[i]);
}
