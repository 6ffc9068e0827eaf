/* ferry-guest subcommands.  Each takes parsed options and returns 0 or a
 * negative FERR_ code with e filled (the message names the file or flag);
 * main turns codes into exit statuses.  Results go to stdout, progress and
 * diagnostics to stderr. */
#ifndef FERRY_GUEST_H
#define FERRY_GUEST_H

#include <stdint.h>

#include "err.h"

struct create_opts {
	const char *mem;          /* required */
	const char *disk;         /* NULL: no disk */
	uint64_t mem_size;        /* bytes */
	uint64_t disk_size;       /* bytes */
	uint64_t seed;
	int force;                /* overwrite existing files */
};

struct run_opts {
	const char *mem;          /* required */
	const char *disk;         /* required when disk_rate > 0 */
	const char *pidfile;      /* NULL: none */
	uint64_t dirty_rate;      /* bytes/s of pages */
	uint64_t disk_rate;       /* bytes/s of blocks */
	uint64_t duration_ms;     /* 0: until SIGTERM/SIGINT */
	uint64_t seed;            /* which pages; 0: from the clock and pid */
	const char *dirty_log;    /* NULL: none */
};

struct check_opts {
	const char *mem;          /* at least one of mem, disk */
	const char *disk;
};

struct mark_opts {
	const char *mem;
	const char *text;
	uint64_t page;
};

struct stats_opts {
	const char *mem;          /* at least one of mem, disk */
	const char *disk;
};

int guest_create(const struct create_opts *o, struct ferr *e) FERRY_MUST_CHECK;
int guest_run(const struct run_opts *o, struct ferr *e) FERRY_MUST_CHECK;

/* Sets *bad to the number of units that failed (0: image ok).  Returns an
 * error only when the check could not be done (I/O, not an image). */
int guest_check(const struct check_opts *o, uint64_t *bad, struct ferr *e) FERRY_MUST_CHECK;

int guest_mark(const struct mark_opts *o, struct ferr *e) FERRY_MUST_CHECK;
int guest_stats(const struct stats_opts *o, struct ferr *e) FERRY_MUST_CHECK;

#endif
