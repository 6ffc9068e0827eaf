/* ferry-recv daemon internals: options, sessions that outlive their
 * connections (so a sender can resume after a network cut), and the
 * connections that carry them.  Only moves bytes between bufferevents and
 * the sans-I/O session (rsess.c); files are staging.c's. */
#ifndef FERRY_RECVD_H
#define FERRY_RECVD_H

#include <stdint.h>

#include "events.h"
#include "ferry_proto.h"
#include "result.h"
#include "rsess.h"
#include "staging.h"

struct event;
struct event_base;
struct bufferevent;
struct evconnlistener;
struct tls_ctx;
struct ctl;
struct metrics_server;
struct framedump;
struct framedump_dir;
struct virt;

struct recv_opts {
	char listen_host[256];
	uint16_t listen_port;
	const char *interface;
	const char *cert, *key, *ca, *peer_name;
	const char *pins[2];
	const char *dest_dir;
	const char *on_commit;
	const char *ctl_path;
	const char *dump_dir;       /* --dump-frames DIR, or NULL */
	const char *libvirt_uri;    /* --libvirt-uri: take domains (DOMAIN frames) */
	const char *metrics_addr;   /* --metrics ADDR:PORT, or NULL */
	const char *qemu_qmp;       /* --qemu-qmp: the destination QEMU's QMP socket */
	uint32_t expect_disks;
	uint32_t max_sessions;
	uint64_t handshake_ms;      /* new connection: TLS + HELLO/RESUME */
	uint64_t keepalive_ms;      /* PING interval */
	uint64_t dead_ms;           /* nothing received for this long: link is cut */
	uint64_t outage_ms;         /* a cut session waits this long for RESUME */
	uint64_t progress_ms;       /* no PAGES applied for this long: fail */
	uint32_t history;           /* finished sessions kept for ctl status */
	int once;
	int json;
	int reuse;                  /* --reuse: offer CAP_REUSE (section 4.19) */
};

struct rconn;

/* A migration session on the receiving side. */
struct rsession {
	struct recvd *d;
	struct rsess *sess;
	struct staging *stg;
	uint8_t id[FERRY_SESSION_ID_LEN];
	char idhex[2 * FERRY_SESSION_ID_LEN + 1];
	uint8_t resume_key[32];
	int have_key;
	char peer_name[256];        /* TLS identity that owns the session */
	char peer_addr[80];
	struct rconn *conn;         /* attached connection, or NULL while cut */
	struct event *outage;       /* armed while cut; fires: session fails */
	uint64_t started_ms;
	uint64_t last_rx_ms;        /* last byte from the sender */
	uint64_t last_progress_ms;  /* last PAGES applied */
	uint64_t last_seq;
	uint64_t cut_ms;            /* when the current outage began, 0 if none */
	char cut_reason[FERR_MSG_MAX + 96];
	uint32_t cuts;
	uint32_t resumes;
	int finished;               /* done event emitted */
	int delivered;              /* the sender closed cleanly after the end */
	int result;                 /* enum result, when finished */
	char error[FERR_MSG_MAX];
	uint64_t reuse_ms;          /* when the copy of the device being reused began */
	char domain[256];           /* libvirt domain of the session, "" if none */
	char domain_state[16];      /* its state here after commit, "" if not defined */
	struct rqemu *rq;           /* a QEMU stream session's destination QEMU (rqemu.c) */
	struct rsession *next, *prev;
};

/* One TLS connection. */
struct rconn {
	struct recvd *d;
	struct bufferevent *bev;
	struct framedump *dump;     /* --dump-frames of this connection, or NULL */
	struct rsession *rs;        /* NULL until HELLO or RESUME */
	struct event *deadline;     /* handshake deadline */
	struct event *tick;         /* heartbeat and liveness */
	struct event *reuse;        /* next step of a session in RS_REUSING, or NULL */
	char addr[80];
	char peer_name[256];
	int tls_up;
	int closing;
	uint64_t last_rx_ms;
	uint64_t ping_window_ms;
	uint32_t pings_in_window;
	struct rconn *next, *prev;
};

struct history_ent {
	char idhex[2 * FERRY_SESSION_ID_LEN + 1];
	char peer[256];
	int result;
	char error[FERR_MSG_MAX];
	uint64_t bytes;
	uint64_t duration_ms;
	uint32_t cuts;
};

/* What finished sessions and closed connections add up to; the metrics
 * endpoint adds the live ones at scrape time (rmetrics.c). */
struct recv_totals {
	uint64_t logical_bytes;
	uint64_t wire_bytes;        /* TCP bytes received on closed connections */
	uint64_t pages_zero, pages_dedup, pages_lz4, pages_raw;
	uint64_t cuts, resumes;
	uint64_t by_result[RES_INDOUBT + 1];
};

/* Add a session's counters (bytes, pages by kind, cuts, resumes). */
void recv_totals_add(struct recv_totals *t, const struct rsession *rs);

struct recvd {
	struct recv_opts o;
	struct event_base *base;
	struct tls_ctx *tls;
	struct evconnlistener *lst;
	struct ctl *ctl;
	struct metrics_server *metrics;  /* --metrics, or NULL */
	struct framedump_dir *dump;  /* --dump-frames, or NULL */
	struct virt *virt;          /* --libvirt-uri connection, or NULL */
	struct rsession *qemu_owner; /* the session feeding --qemu-qmp's QEMU, or NULL */
	struct events ev;
	struct rconn *conns;
	struct rsession *sessions;
	uint32_t active;            /* sessions not finished */
	struct history_ent *hist;
	uint32_t nhist;             /* ring of o.history entries */
	uint64_t served;
	struct recv_totals totals;
	int last_result;
	int stopping;
};

void recvd_maybe_exit(struct recvd *d);

/* rconn.c */
void rconn_accept(struct recvd *d, int fd, const char *addr);
void rconn_free(struct rconn *c);
/* Queue an ERROR frame (the caller closes afterwards). */
void rconn_send_error(struct rconn *c, int code, const char *text);
/* Close after the output drains. */
void rconn_close_after_flush(struct rconn *c);
/* Send what the session has queued (e.g. QRETURN from the QEMU side). */
void rconn_flush(struct rconn *c);
/* Process frames that waited in the input (the QEMU backlog drained). */
void rconn_kick(struct rconn *c);

/* rsessions.c */
struct rsession *rsession_new(struct recvd *d, struct rconn *c, struct ferr *e);
struct rsession *rsession_find(struct recvd *d, const uint8_t id[FERRY_SESSION_ID_LEN]);
/* The connection of a session broke: keep it for resume, or end it. */
void rsession_cut(struct rsession *rs, const char *why);
/* The session ended (committed or failed): emit done, record history,
 * run the on-commit hook; it lingers for in-doubt senders. */
void rsession_finish(struct rsession *rs, int code, const char *why);
void rsession_free(struct rsession *rs);
/* Operator abort. */
void rsession_abort(struct rsession *rs, const char *why);
struct json_object *rsession_status(const struct rsession *rs);
struct json_object *recvd_ctl(void *ctx, int argc, char **argv);

/* rmetrics.c: the --metrics collect callback (ctx: struct recvd). */
struct metrics;
void recvd_metrics(void *ctx, struct metrics *r);

#endif
