/* Socket options for migration connections (RELIABILITY.md "Facts"):
 * TCP hides short outages and stalled peers, so ferry's own heartbeat
 * does the real work; SO_KEEPALIVE and TCP_USER_TIMEOUT back it up. */
#ifndef FERRY_SOCKOPT_H
#define FERRY_SOCKOPT_H

#include <stdint.h>

#include "err.h"

/* TCP_NODELAY, SO_KEEPALIVE (idle/interval from keepalive_ms, 3 probes)
 * and TCP_USER_TIMEOUT = dead_ms.  Failures are ignored (best effort). */
void sock_tune(int fd, uint64_t keepalive_ms, uint64_t dead_ms);

/* SO_BINDTODEVICE: keep the socket on one interface. */
int sock_bind_device(int fd, const char *ifname, struct ferr *e) FERRY_MUST_CHECK;

/* Close a socket gracefully: shut down our sending side and discard what
 * the peer still sends until it closes too (or timeout_ms passes).
 * Closing a socket with unread bytes makes the kernel send a reset, which
 * can destroy our last frames before the peer reads them.
 * sock_drain_close: blocking, for the end of a program.
 * sock_drain_close_async: on an event loop; takes ownership of fd. */
void sock_drain_close(int fd, unsigned int timeout_ms);
struct event_base;
void sock_drain_close_async(struct event_base *base, int fd, unsigned int timeout_ms);
/* Close the drains still running on base (before event_base_free). */
void sock_drain_finish(struct event_base *base);

#endif
