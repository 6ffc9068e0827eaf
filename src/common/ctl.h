/* Control sockets: a unix stream socket (mode 0600) on which an operator
 * tool sends one line -- words separated by spaces -- and gets one line of
 * JSON back: {"ok":true,...} or {"ok":false,"error":"..."}. */
#ifndef FERRY_CTL_H
#define FERRY_CTL_H

#include <stdio.h>

#include "err.h"

struct event_base;
struct json_object;

/* Answer one request: argv[0] is the command.  Return a JSON object (the
 * handler owns nothing afterwards); "ok" is added when absent. */
typedef struct json_object *(*ctl_handler)(void *ctx, int argc, char **argv);

struct ctl;

/* Listen on path (a stale socket file is replaced; an existing non-socket
 * file is an error). */
int ctl_new(struct event_base *base, const char *path, ctl_handler h, void *ctx, struct ctl **out,
    struct ferr *e) FERRY_MUST_CHECK;
void ctl_free(struct ctl *c);       /* closes and unlinks; NULL ok */

/* Client: send argv as one request, print the reply (pretty unless json)
 * on out.  Returns 0 when the reply says ok, 1 when not, 2 when the socket
 * cannot be reached. */
int ctl_request(const char *path, int argc, char **argv, int json, FILE *out);

/* The "PROG ctl SOCKET COMMAND... [--json]" command line of a daemon:
 * argv[0] is the program, argv[1] "ctl".  Returns the exit status: 0 when
 * the answer says ok, 1 when not, 2 for usage or an unreachable socket. */
int ctl_cli(const char *usage, int argc, char **argv);

/* Helpers for handlers. */
struct json_object *ctl_error(const char *fmt, ...) FERRY_PRINTF(1, 2);

#endif
