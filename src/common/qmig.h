/* Migration commands of QMP that both daemons use (proto/QEMU.md section
 * 7), over the blocking client in qmp.c.  Every call has a timeout; QEMU's
 * error replies come back as FERR_REFUSED naming the command. */
#ifndef FERRY_QMIG_H
#define FERRY_QMIG_H

#include <stdint.h>

#include "err.h"
#include "qmp.h"

#define QMIG_TIMEOUT_MS 5000

struct qmig_info {
	char status[32];            /* "none" when QEMU has no migration yet */
	int64_t total_time_ms;      /* -1 when QEMU did not say */
	int64_t downtime_ms;        /* QEMU's own figure; -1 when not given */
	int64_t expected_downtime_ms;
	int64_t transferred;        /* ram.transferred, bytes; -1 when not given */
	int64_t remaining;          /* ram.remaining */
	int64_t dirty_rate;         /* ram.dirty-pages-rate x page size, bytes/s */
	int64_t mbps;               /* ram.mbps as QEMU measured it */
	char error[256];            /* error-desc, "" if none */
};

/* query-status: the run state ("running", "paused", "inmigrate",
 * "postmigrate", ...). */
int qmig_runstate(struct qmp *q, char *out, size_t n, struct ferr *e) FERRY_MUST_CHECK;
/* query-migrate. */
int qmig_query(struct qmp *q, struct qmig_info *out, struct ferr *e) FERRY_MUST_CHECK;
/* The same without blocking (qmp_start / qmp_collect): collect returns 1
 * with *out once the reply arrived, 0 while not yet. */
int qmig_query_start(struct qmp *q, struct ferr *e) FERRY_MUST_CHECK;
int qmig_query_collect(struct qmp *q, struct qmig_info *out, struct ferr *e) FERRY_MUST_CHECK;
/* One command with no arguments (cont, stop, quit, migrate_cancel). */
int qmig_simple(struct qmp *q, const char *cmd, struct ferr *e) FERRY_MUST_CHECK;
/* One command with one string argument: migrate {"uri"}, migrate-incoming. */
int qmig_uri(struct qmp *q, const char *cmd, const char *uri, struct ferr *e) FERRY_MUST_CHECK;
/* migrate-set-capabilities with one capability. */
int qmig_set_cap(struct qmp *q, const char *name, int on, struct ferr *e) FERRY_MUST_CHECK;
/* The capabilities that are on, as "a, b, c" among the names listed
 * (NULL-terminated); "" when none is. */
int qmig_caps_on(struct qmp *q, const char *const *names, char *out, size_t n, struct ferr *e)
    FERRY_MUST_CHECK;

#endif
