/* Parsers for command-line and config values with units.  Pure functions
 * over a NUL-terminated string; every value from a user is untrusted.
 * Each returns 0, or FERR_USAGE with a message naming the value. */
#ifndef FERRY_UNITS_H
#define FERRY_UNITS_H

#include <stdint.h>

#include "err.h"

/* Sizes: "4096", "64K", "64KiB", "256M", "2G", "1T" (binary multiples,
 * K/M/G/T with optional "iB" or "B"); a bare number is bytes. */
int parse_size(const char *s, uint64_t *bytes, struct ferr *e) FERRY_MUST_CHECK;

/* Rates in bytes per second: "800Mbit" (bits, decimal: 1 Mbit = 10^6 bit),
 * "100MiB/s", "100M" (binary bytes per second), "20MB/s" (decimal bytes). */
int parse_rate(const char *s, uint64_t *bytes_per_sec, struct ferr *e) FERRY_MUST_CHECK;

/* Durations: "300ms", "5s", "2m", "1h", "1500us"; a bare number is
 * `bare_unit_ms` milliseconds each (1000 for seconds, 1 for ms). */
int parse_duration_ms(const char *s, uint64_t bare_unit_ms, uint64_t *ms,
    struct ferr *e) FERRY_MUST_CHECK;

/* A timeout flag's value: a duration (bare number = seconds) above 0;
 * errors name the flag. */
int parse_timeout_flag(const char *flag, const char *s, uint64_t *ms, struct ferr *e) FERRY_MUST_CHECK;

/* Unsigned decimal integer in [min, max]. */
int parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *v,
    struct ferr *e) FERRY_MUST_CHECK;

/* "HOST:PORT", "[v6]:PORT" (port 0-65535; callers that connect reject 0);
 * host copied into host (size hostlen). */
int parse_hostport(const char *s, char *host, size_t hostlen, uint16_t *port,
    struct ferr *e) FERRY_MUST_CHECK;

/* Human formatting: "1.5 GiB", "12.3 MiB/s". */
void fmt_size(uint64_t bytes, char *buf, size_t len);

#endif
