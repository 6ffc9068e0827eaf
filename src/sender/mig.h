/* ferry-send internals: one migration's state, shared by migrate.c
 * (set-up, results), phases.c (protocol and pre-copy), slink.c (the
 * connection: connect, TLS, heartbeat, reconnect, rate limit) and sctl.c
 * (control socket).  Not a public header. */
#ifndef FERRY_MIG_H
#define FERRY_MIG_H

#include <stdint.h>

#include "converge.h"
#include "frame.h"
#include "migrate.h"
#include "pager.h"
#include "source.h"

struct event;
struct event_base;
struct bufferevent;
struct tls_ctx;
struct ev_token_bucket_cfg;
struct ctl;
struct metrics;
struct metrics_server;
struct framedump;

enum mstate {
	MS_CONNECTING = 1,
	MS_HELLO,           /* HELLO sent, waiting for WELCOME */
	MS_MANIFEST,        /* MANIFEST sent, waiting for ACCEPT or REFUSE */
	MS_PRECOPY,         /* rounds while the guest runs */
	MS_FINAL,           /* guest paused: last round, state, COMMIT */
	MS_COMMIT_WAIT,     /* COMMIT sent, waiting for COMMITTED */
	MS_PAUSED,          /* connection lost: reconnecting (see resume_to) */
	MS_RESUMING,        /* RESUME sent, waiting for RESUMED */
	MS_DONE,
};

struct mig {
	const struct send_opts *o;
	struct events *ev;
	struct migrate_result *res;
	struct event_base *base;
	struct tls_ctx *tls;
	struct ctl *ctl;
	struct metrics_server *metrics;  /* --metrics, or NULL */
	enum mstate st;
	enum mstate resume_to;      /* phase to return to after a cut */

	/* the connection (slink.c) */
	struct bufferevent *bev;
	struct framedump *dump;     /* --dump-frames of this connection, or NULL */
	int fd;                     /* while connecting, before bev owns it */
	struct event *conn_ev;      /* TCP connect in progress */
	struct event *tick;         /* heartbeat, progress, deadlines */
	struct event *retry;        /* reconnect after backoff */
	struct event *sigint, *sigterm;
	struct ev_token_bucket_cfg *rate_cfg;
	uint64_t bandwidth;         /* bytes/s, 0 = unlimited */
	uint64_t link_start_ms;     /* connect started */
	uint64_t last_rx_ms;        /* last byte from the receiver */
	uint64_t last_ack_ms;       /* last ACK that moved forward */
	uint64_t last_ping_ms;
	uint64_t ping_window_ms;     /* start of the current second of PINGs received */
	uint32_t pings_in_window;
	uint32_t attempts;          /* reconnects since the cut */
	uint32_t cuts;
	uint32_t resumes;           /* RESUMED received */
	uint32_t integrity_cuts;    /* TLS integrity failures since the last ACK progress */
	uint64_t cut_ms;
	uint64_t wire_done;         /* TCP bytes of closed connections */
	uint64_t since_rekey;       /* bytes written since the last key update */
	uint32_t rekeys;
	int tls_up;

	/* the migration (phases.c) */
	struct source_dev dev[FERRY_MAX_DEVICES];
	uint32_t ndev;
	uint64_t total_units;
	uint64_t total_bytes;
	uint64_t seed;
	uint32_t max_payload;
	uint32_t caps;              /* negotiated: WELCOME's, of those offered */
	uint8_t session_id[16];
	uint8_t resume_key[32];
	int have_key;
	struct pager pg;
	struct dirtylog dl;             /* --dirty-log (dl.fd -1 without) */
	struct converge cv;
	uint64_t round_start_ms, round_scan_ms;
	uint64_t start_ms, pause_ms;
	uint64_t state_size;
	uint8_t *state_buf;         /* read at pause time */
	uint64_t state_sent;        /* STATE bytes the receiver has or has queued */
	int final_scan_done;
	int commit_sent;
	int committed;              /* COMMITTED received */
	struct qsrc *q;             /* --qemu-qmp: the source QEMU (qsource.c), or NULL */
	int progress_shown;
};

uint64_t mig_now_ms(void);
const char *mstate_name(enum mstate s);
void mig_set_state(struct mig *m, enum mstate s);
/* End the migration with code (0 = success); message when not 0. */
void mig_finish(struct mig *m, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
void mig_clear_progress(struct mig *m);

/* phases.c */
void phase_link_up(struct mig *m);              /* TLS connected: HELLO or RESUME */
void phase_frame(struct mig *m, const struct frame_hdr *h, const uint8_t *p);
void phase_pump(struct mig *m);                 /* produce frames while there is room */
void phase_abort(struct mig *m, const char *why);
struct json_object *phase_status(struct mig *m);
void phase_show_progress(struct mig *m);

/* slink.c */
int link_start(struct mig *m, struct ferr *e) FERRY_MUST_CHECK;  /* first connect */
void link_down(struct mig *m, int code, const char *why);       /* cut: pause or fail */
void link_close(struct mig *m);                                   /* final, clean */
int link_send(struct mig *m, int (*enc)(struct wr *, const void *), const void *msg, size_t max);
/* Plaintext bytes the sender may queue for the link: 4 MiB, or 100 ms of
 * the bandwidth cap when that is less (at least 64 KiB).  A deeper queue
 * would make a round look finished long before its bytes are on the wire,
 * and hold heartbeats behind it. */
size_t link_out_high(const struct mig *m);
void link_send_error(struct mig *m, int code, const char *text);
int link_set_bandwidth(struct mig *m, uint64_t bps, struct ferr *e) FERRY_MUST_CHECK;
uint64_t link_wire_bytes(struct mig *m);
void link_stop_timers(struct mig *m);

/* sctl.c */
struct json_object *sctl_handle(void *ctx, int argc, char **argv);

/* smetrics.c: the --metrics collect callback (ctx: struct mig), and the
 * --metrics-linger wait after the end. */
void mig_metrics(void *ctx, struct metrics *r);
void mig_metrics_linger(struct mig *m);

#endif
