/* Control sockets: a unix stream socket (mode 0600) on which an operator
 * tool sends one line -- words separated by spaces -- and gets one line of
 * JSON back: {"ok":true,...} or {"ok":false,"error":"..."}.  The client
 * (ctl_cli) prints that JSON with --json, and a readable form without. */
#ifndef FERRY_CTL_H
#define FERRY_CTL_H

#include <stddef.h>
#include <stdint.h>
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

/* Prints the readable form of a successful answer to "status". */
typedef void (*ctl_show_fn)(struct json_object *reply, FILE *out);

/* Client: send argv as one request, print the reply on out: with json one
 * line of JSON; else the readable form by show for a successful "status"
 * (when show is not NULL), pretty-printed JSON otherwise.  Returns 0 when
 * the reply says ok, 1 when not, 2 when the socket cannot be reached. */
int ctl_request(const char *path, int argc, char **argv, int json, ctl_show_fn show, FILE *out);

/* The "PROG ctl SOCKET COMMAND... [--json]" command line of a daemon:
 * argv[0] is the program, argv[1] "ctl"; show as for ctl_request.
 * Returns the exit status: 0 when the answer says ok, 1 when not, 2 for
 * usage or an unreachable socket. */
int ctl_cli(const char *usage, int argc, char **argv, ctl_show_fn show);

/* ctlshow.c: the readable "status" of ferry-recv (state, a table of the
 * sessions in progress: peer, state or "paused 3.2s", bytes, rate...; a
 * table of the history) and of ferry-send (aligned "Key: value" lines). */
void ctl_show_recv_status(struct json_object *reply, FILE *out);
void ctl_show_send_status(struct json_object *reply, FILE *out);

/* "850ms", "3.2s", "2m05s", "1h02m". */
void ctl_fmt_duration(uint64_t ms, char *buf, size_t len);
/* "45.3 MiB/s" (fmt_size per second). */
void ctl_fmt_rate(uint64_t bytes_per_sec, char *buf, size_t len);

/* Helpers for handlers. */
struct json_object *ctl_error(const char *fmt, ...) FERRY_PRINTF(1, 2);

#endif
