/* ferry-faultproxy internals: the proxy object, its connections and the
 * two pipes (directions) of each connection.
 *
 * Data path of one pipe:  src bufferevent input
 *   -> ingress (drop, close-after, flip)  -> queue (evbuffer + due marks)
 *   -> pump (latency, stall, rate, slice) -> dst bufferevent output.
 * Memory stays bounded: the source is read only while the queue plus the
 * destination's output hold less than PIPE_HIGH bytes and the direction is
 * not stalled; otherwise TCP flow control pushes back on the sender.
 *
 * Everything hangs off struct proxy; no file-scope mutable state. */
#ifndef FAULTPROXY_FPROXY_H
#define FAULTPROXY_FPROXY_H

#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "err.h"
#include "fault.h"

struct event_base;
struct event;
struct evbuffer;
struct bufferevent;
struct evconnlistener;
struct ctl_server;

#define PIPE_HIGH      (4u << 20)   /* stop reading the source at this many held bytes */
#define PIPE_LOW       (2u << 20)   /* read again below this */
#define OUT_HIGH       (256u << 10) /* bytes handed to the destination's output at once */
#define PIPE_MARKS     1024         /* latency marks per pipe (one per ms at most) */
#define READ_MAX       (64u << 10)  /* bytes per read from a socket */
#define RATE_BURST_DIV 20           /* token bucket depth: 1/20 s of the rate */
#define RATE_QUANTUM   (16u << 10)  /* least bytes a rate-limited pipe moves at once */

/* A run of queued bytes that may leave at due_us (0: at once). */
struct mark {
	uint64_t due_us;
	size_t len;
};

struct conn;

struct pipe {
	struct conn *conn;
	int dir;                    /* FP_UP or FP_DOWN */
	struct bufferevent *src, *dst;
	struct evbuffer *q;         /* bytes read, not yet handed to dst */
	struct mark marks[PIPE_MARKS]; /* ring over q, oldest first */
	unsigned mhead, mcount;
	struct event *timer;        /* next due mark or token refill */
	uint64_t credit;            /* token bucket, in byte-microseconds */
	uint64_t refill_us;
	int64_t flip_left;          /* bytes before the byte to flip; -1: none */
	uint64_t dropped;
	int reading;                /* EV_READ enabled on src */
	int eof;                    /* src sent FIN */
	int eof_lost;               /* that FIN came while dropping: never passed on */
	int shut;                   /* FIN sent to dst */
	int last;                   /* close-after fired here: close once drained */
};

struct conn {
	struct conn *prev, *next;   /* proxy's active list, or its dead list */
	struct proxy *px;
	uint64_t id;
	struct bufferevent *cli, *srv;
	int connected;              /* upstream connect finished */
	int closing;                /* close-after fired: read nothing more */
	int dead;                   /* sockets gone, struct freed by the reaper */
	int64_t close_left;         /* close-after budget; -1: none */
	unsigned close_dirs;
	struct pipe pipe[FP_NDIR];
	uint64_t bytes[FP_NDIR];    /* forwarded */
	char peer[64];
};

/* One-shots waiting for the next connection. */
struct pending {
	int64_t close_left;
	unsigned close_dirs;
	int64_t flip[FP_NDIR];
};

struct proxy {
	struct event_base *base;
	struct evconnlistener *lst;
	struct sockaddr_storage to;
	socklen_t tolen;
	char to_str[80];
	struct fp_faults f;
	struct pending next;
	struct conn *conns, *conns_tail;  /* active, oldest first */
	struct conn *dead;
	struct event *reaper;
	struct event *sigs[4];
	struct ctl_server *ctl;
	FILE *log;
	uint64_t (*now_us)(void *clock_arg);
	void *clock_arg;
	uint64_t next_id;
	uint64_t nconns, nrefused, active;
	uint64_t bytes[FP_NDIR];
};

/* proxy.c */
void proxy_log(struct proxy *px, const char *fmt, ...) FERRY_PRINTF(2, 3);
/* Run one control command line; the reply ("ok ..." / "error ...", no
 * newline) goes to reply. */
void proxy_command(struct proxy *px, const char *line, char *reply, size_t len);
/* Pump every pipe of every connection (after a fault changed). */
void proxy_repump(struct proxy *px);
/* Abort every connection with RST; returns how many. */
unsigned proxy_reset_all(struct proxy *px, const char *why);

/* conn.c */
/* Take the accepted socket fd (closed on failure) and start connecting to
 * px->to.  Returns 0 or a negative code with e filled. */
int conn_start(struct proxy *px, int fd, const char *peer, struct ferr *e) FERRY_MUST_CHECK;
/* Close both sockets with RST (SO_LINGER 0). */
void conn_abort(struct conn *c, const char *why);
/* Close both sockets with FIN. */
void conn_finish(struct conn *c, const char *why);
/* Free connections killed since the last call. */
void conn_reap(struct proxy *px);

/* pipe.c */
int pipe_init(struct pipe *p, struct conn *c, int dir) FERRY_MUST_CHECK;
void pipe_fini(struct pipe *p);
/* src has bytes: apply drop / close-after / flip and queue them. */
void pipe_ingress(struct pipe *p);
/* src sent FIN. */
void pipe_eof(struct pipe *p);
/* Move what the faults allow from the queue to dst; pass on FIN; re-arm
 * reading.  May kill the connection (check conn->dead after). */
void pipe_pump(struct pipe *p);
/* Forget rate credit (the rate changed). */
void pipe_rate_reset(struct pipe *p);

/* ctl.c */
/* Listen on a unix socket at path (a stale socket file is replaced). */
int ctl_server_new(struct proxy *px, const char *path, struct ctl_server **out,
    struct ferr *e) FERRY_MUST_CHECK;
void ctl_server_free(struct ctl_server *s);
/* Client mode: send words joined by spaces, print the reply line.
 * Returns the exit status: 0 on "ok", 1 otherwise. */
int ctl_client(const char *path, int nwords, char **words);

#endif
