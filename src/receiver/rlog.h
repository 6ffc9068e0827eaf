/* ferry-recv's log lines about one session or one connection: each
 * carries session, peer and state (and for a failed session reason and
 * code) as logfmt fields (events.h). */
#ifndef FERRY_RLOG_H
#define FERRY_RLOG_H

#include "events.h"

struct rsession;
struct rconn;

/* A line about session rs at level lv. */
void rs_log(const struct rsession *rs, enum ev_level lv, const char *fmt, ...) FERRY_PRINTF(3, 4);

/* The same with the error code of its failure (reason and code fields). */
void rs_log_code(const struct rsession *rs, enum ev_level lv, int code, const char *fmt, ...)
    FERRY_PRINTF(4, 5);

/* A line about connection c: its peer, and its session once it has one. */
void rc_log(const struct rconn *c, enum ev_level lv, const char *fmt, ...) FERRY_PRINTF(3, 4);

/* Fill cx with what is known of rs. */
void rs_log_ctx(const struct rsession *rs, struct ev_ctx *cx);

#endif
