/* Readiness for systemd's Type=notify, without libsystemd: the protocol
 * of sd_notify(3) is one datagram of "VAR=value" lines sent to the unix
 * socket named by $NOTIFY_SOCKET (a path, or "@name" for the abstract
 * namespace).  tools/systemd/ferry-recv.service uses it. */
#ifndef FERRY_SDNOTIFY_H
#define FERRY_SDNOTIFY_H

#include "err.h"

/* Send "READY=1" and "STATUS=<status>" to the socket `sock` (the value of
 * $NOTIFY_SOCKET, passed in by main).  A NULL or empty `sock` means "not
 * started by systemd": nothing is sent and 0 is returned.  FERR_USAGE for
 * a malformed socket name, FERR_IO when the datagram cannot be sent. */
int sd_notify_ready(const char *sock, const char *status, struct ferr *e) FERRY_MUST_CHECK;

#endif
