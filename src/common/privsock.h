/* The private place of a local migration socket between ferry and QEMU:
 * a fresh /tmp/ferry-qemu-XXXXXX directory (mode 0700) holding one socket
 * path.  Only this user can reach the socket: it is the trust boundary of
 * QEMU's unencrypted stream (proto/QEMU.md section 5). */
#ifndef FERRY_PRIVSOCK_H
#define FERRY_PRIVSOCK_H

#include "err.h"

struct privsock {
	char dir[64];               /* "" when not made */
	char path[96];              /* dir/NAME, "" when removed */
};

/* Make the directory and the socket's path name in it (nothing is bound
 * or created there yet). */
int privsock_make(struct privsock *p, const char *name, struct ferr *e) FERRY_MUST_CHECK;
/* Remove the socket path (if it exists) and the directory.  Idempotent. */
void privsock_remove(struct privsock *p);

#endif
