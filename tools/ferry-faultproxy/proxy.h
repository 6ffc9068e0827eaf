/* ferry-faultproxy: a userspace TCP relay that injects faults (latency,
 * rate limit, stall, drop, reset, close-after, slicing, bit flips,
 * refusal), switched at run time over a unix control socket or by
 * signals.  It only ever connects to the --to address. */
#ifndef FAULTPROXY_PROXY_H
#define FAULTPROXY_PROXY_H

#include "err.h"

struct proxy_opts {
	const char *listen;     /* HOST:PORT, port 0 picks a free one */
	const char *to;         /* HOST:PORT of the real server */
	const char *ctl;        /* unix socket path, or NULL */
	const char *port_file;  /* gets the listening port, or NULL */
	const char *log;        /* event log appended to, or NULL */
};

/* Listen, relay and serve the control socket until SIGTERM or SIGINT.
 * Returns 0 after a clean exit, or a negative code with e filled (bad
 * address, bind or socket failure). */
int proxy_run(const struct proxy_opts *o, struct ferr *e) FERRY_MUST_CHECK;

#endif
