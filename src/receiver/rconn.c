/* Receiver connections: TLS, the first frame (HELLO starts a session,
 * RESUME re-attaches one), feeding frames to the session, heartbeat and
 * dead-peer detection. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "frame.h"
#include "framedump.h"
#include "msg.h"
#include "pagehash.h"
#include "recvd.h"
#include "result.h"
#include "resume.h"
#include "rlog.h"
#include "rqemu.h"
#include "sockinfo.h"
#include "sockopt.h"
#include "tls.h"


void
rconn_free(struct rconn *c)
{
	struct recvd *d = c->d;

	if (c->rs != NULL) {
		struct rsession *rs = c->rs;

		c->rs = NULL;
		rsession_cut(rs, "connection closed");
	}
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->tick != NULL)
		event_free(c->tick);
	if (c->reuse != NULL)
		event_free(c->reuse);
	framedump_free(c->dump);
	if (c->bev != NULL) {
		d->totals.wire_bytes += sock_bytes_received(bufferevent_getfd(c->bev));
		bufferevent_free(c->bev);
	}
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c);
	recvd_maybe_exit(d);
}

void
rconn_send_error(struct rconn *c, int code, const char *text)
{
	struct msg_text t;
	uint8_t buf[32 + FERRY_TEXT_MAX];
	struct wr w;

	memset(&t, 0, sizeof(t));
	t.code = (uint32_t)-code;
	snprintf(t.text, sizeof(t.text), "%s", text);
	wr_init(&w, buf, sizeof(buf));
	if (msg_error_encode(&w, &t) == 0)
		bufferevent_write(c->bev, buf, w.off);
}

void
rconn_flush(struct rconn *c)
{
	const uint8_t *p;
	size_t n;

	if (c->rs == NULL)
		return;
	p = rsess_output(c->rs->sess, &n);
	if (n > 0) {
		bufferevent_write(c->bev, p, n);
		rsess_output_consume(c->rs->sess, n);
	}
}

/* After a refused handshake or the end of a session, keep the socket open
 * briefly and discard what the peer still sends, so our last bytes (a TLS
 * alert, an ERROR frame) are not destroyed by a reset. */
static void
drain_and_close(struct rconn *c)
{
	int fd = bufferevent_getfd(c->bev), dfd;

	if (fd < 0 || (dfd = dup(fd)) < 0)
		return;
	sock_drain_close_async(c->d->base, dfd, 1000);
}

static void
try_close_notify_and_free(struct rconn *c)
{
	/* A clean end of stream tells the peer nothing was truncated. */
	if (tls_bev_close_notify(c->bev) != 0)
		c->tls_up = 0;  /* the peer then sees a truncation */
	drain_and_close(c);
	rconn_free(c);
}

void
rconn_close_after_flush(struct rconn *c)
{
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		try_close_notify_and_free(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct rconn *c = arg;

	if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		try_close_notify_and_free(c);
}

/* RESUME on a fresh connection (section 4.12). */
static int
handle_resume(struct rconn *c, const uint8_t *p, uint32_t n, struct ferr *e)
{
	struct recvd *d = c->d;
	struct msg_resume m;
	struct rsession *rs;
	uint8_t want[FERRY_PROOF_LEN];
	int rc;

	if ((rc = msg_resume_decode(p, n, &m, e)) != 0)
		return rc;
	rs = rsession_find(d, m.session_id);
	if (rs == NULL)
		return ferr_set(e, FERR_PROTO_RESUME,
		    "RESUME: unknown session (never here, or forgotten --outage-timeout after it ended)");
	if (strcmp(rs->peer_name, c->peer_name) != 0)
		return ferr_set(e, FERR_PROTO_RESUME,
		    "RESUME: session belongs to '%s', this connection is '%s'", rs->peer_name,
		    c->peer_name);
	if ((rc = resume_proof(c->bev, rs->resume_key, rs->id, want, e)) != 0)
		return rc;
	if (!resume_proof_equal(want, m.proof))
		return ferr_set(e, FERR_PROTO_RESUME, "RESUME: proof does not match this connection");
	if (rs->conn != NULL) {
		/* The old connection is half-open: the sender proved ownership,
		 * so the new one takes over. */
		struct rconn *old = rs->conn;

		rs_log(rs, EV_WARN, "session %.16s: resumed while the old connection looked alive; closing it",
		    rs->idhex);
		old->rs = NULL;
		rs->conn = NULL;
		rconn_free(old);
	}
	evtimer_del(rs->outage);
	rs->conn = c;
	c->rs = rs;
	rs->last_rx_ms = rs->last_progress_ms = clock_ms();
	if ((rc = rsess_resume(rs->sess, e)) != 0)
		return rc;
	rs_log(rs, EV_INFO, "session %.16s: resumed by %s after %llu ms; continuing from frame %llu",
	    rs->idhex, c->addr, (unsigned long long)(rs->cut_ms ? clock_ms() - rs->cut_ms : 0),
	    (unsigned long long)(rsess_last_seq(rs->sess) + 1));
	{
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "session", json_object_new_string(rs->idhex));
		json_object_object_add(o, "next_seq", json_object_new_int64((int64_t)(rsess_last_seq(rs->sess) + 1)));
		ev_json(&d->ev, "resumed", o);
	}
	rs->cut_ms = 0;
	rs->resumes++;
	return 0;
}

/* First frame on a connection: HELLO or RESUME. */
static int
first_frame(struct rconn *c, const uint8_t *p, size_t have, size_t *used, struct ferr *e)
{
	struct recvd *d = c->d;
	struct frame_hdr h;
	int rc;

	rc = frame_decode_hdr(p, have, FERRY_MAX_FRAME_DEFAULT, FDIR_S2R, &h, e);
	if (rc != 0)
		return rc;
	if (h.type == FT_RESUME) {
		if (have < FERRY_FRAME_HDR_LEN + (size_t)h.len)
			return FERR_NEED_MORE;
		*used = FERRY_FRAME_HDR_LEN + h.len;
		return handle_resume(c, p + FERRY_FRAME_HDR_LEN, h.len, e);
	}
	if (h.type != FT_HELLO)
		return ferr_set(e, FERR_PROTO_STATE, "%s: not allowed before HELLO or RESUME",
		    frame_name(h.type));
	if (d->active >= d->o.max_sessions)
		return ferr_set(e, FERR_REFUSE_BUSY, "HELLO: %u migrations already running (--max-sessions %u)",
		    d->active, d->o.max_sessions);
	if (rsession_new(d, c, e) == NULL)
		return e->code;
	*used = 0;      /* the session decodes HELLO itself */
	return 0;
}

/* Section 4.19: a session in RS_REUSING copies and hashes the existing
 * destination files this much at a time, from a zero timer, so that
 * heartbeats, the sender's PINGs and other sessions are served between
 * steps (a large image takes minutes). */
#define REUSE_STEP_BYTES (32u << 20)

static void on_reuse_step(evutil_socket_t fd, short what, void *arg);

/* After a frame or a reuse step: the handshake is over once the session
 * is past MANIFEST; a session in RS_REUSING gets its next step.  -1 when
 * the connection is closing (it may be freed: do not touch it). */
static int
after_progress(struct rconn *c)
{
	static const struct timeval now0 = { 0, 0 };
	enum rsess_state st = rsess_state(c->rs->sess);

	if (c->deadline != NULL && (st == RS_RECEIVING || st == RS_REUSING))
		evtimer_del(c->deadline);
	if (st != RS_REUSING)
		return 0;
	if (c->reuse == NULL && (c->reuse = evtimer_new(c->d->base, on_reuse_step, c)) == NULL) {
		rsess_fail(c->rs->sess, FERR_NOMEM, "reuse: timer");
		rsession_finish(c->rs, FERR_NOMEM, "reuse: timer");
		rconn_send_error(c, FERR_NOMEM, "receiver out of memory");
		rconn_close_after_flush(c);
		return -1;
	}
	if (!evtimer_pending(c->reuse, NULL))
		evtimer_add(c->reuse, &now0);
	return 0;
}

static void
on_reuse_step(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *c = arg;
	struct ferr e = { 0 };
	int rc;

	(void)fd;
	(void)what;
	if (c->closing || c->rs == NULL || c->rs->finished || rsess_state(c->rs->sess) != RS_REUSING)
		return;
	rc = rsess_reuse_step(c->rs->sess, REUSE_STEP_BYTES, &e);
	rconn_flush(c);
	if (rc != 0) {
		rsession_finish(c->rs, rc, e.msg);
		rconn_close_after_flush(c);
		return;
	}
	/* The progress timeout counts from ACCEPT, not from the MANIFEST. */
	c->rs->last_progress_ms = clock_ms();
	(void)after_progress(c);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct rconn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct ferr e = { 0 };
	uint64_t now = clock_ms();

	c->last_rx_ms = now;
	if (c->rs != NULL)
		c->rs->last_rx_ms = now;
	if (c->rs != NULL && c->rs->finished) {
		/* Session over: nothing more is applied; wait for the close. */
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	while (!c->closing) {
		size_t have = evbuffer_get_length(in), need, used = 0;
		const uint8_t *p;
		uint32_t len;
		int rc;

		if (have < FERRY_FRAME_HDR_LEN)
			break;
		p = evbuffer_pullup(in, FERRY_FRAME_HDR_LEN);
		len = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
		need = (size_t)FERRY_FRAME_HDR_LEN + len;
		/* A length over what we announced is refused from the header
		 * alone, before waiting for (or buffering) its payload. */
		if (len > FERRY_MAX_FRAME_DEFAULT)
			need = FERRY_FRAME_HDR_LEN;
		else if (have < need)
			break;
		/* A QEMU stream waits while the destination QEMU is behind: the
		 * sender's window then fills and it stops reading its QEMU. */
		if (c->rs != NULL && c->rs->rq != NULL && rqemu_backlogged(c->rs))
			break;
		p = evbuffer_pullup(in, (ev_ssize_t)need);
		if (p[0] == FT_PING) {
			if (now - c->ping_window_ms >= 1000) {
				c->ping_window_ms = now;
				c->pings_in_window = 0;
			}
			if (++c->pings_in_window > FERRY_PING_FLOOD_PER_SEC) {
				ferr_set(&e, FERR_PROTO_FLOOD, "PING: more than %u per second",
				    FERRY_PING_FLOOD_PER_SEC);
				goto fail;
			}
		}
		if (c->rs == NULL) {
			rc = first_frame(c, p, need, &used, &e);
			if (rc == FERR_NEED_MORE)
				break;
			if (rc != 0)
				goto fail;
			evbuffer_drain(in, used);
			if (used > 0) {     /* RESUME handled */
				if (c->deadline != NULL)
					evtimer_del(c->deadline);
				rconn_flush(c);
				if (c->rs != NULL && c->rs->finished)
					return;     /* told the outcome: wait for the close */
				continue;
			}
		}
		rc = rsess_feed(c->rs->sess, p, need, &used, &e);
		evbuffer_drain(in, used);
		rconn_flush(c);
		if (rc != 0) {
			struct rsession *rs = c->rs;

			if (!rs->finished)
				rsession_finish(rs, rc, e.msg);
			rconn_close_after_flush(c);
			return;
		}
		if (used == 0)
			break;
		if (after_progress(c) != 0)
			return;
		if (!c->rs->have_key && rsess_state(c->rs->sess) == RS_WAIT_MANIFEST) {
			struct rsession *rs = c->rs;

			memcpy(rs->id, rsess_session_id(rs->sess), FERRY_SESSION_ID_LEN);
			hash_hex(rs->id, rs->idhex);
			rs_log(rs, EV_DEBUG, "session %.16s: started by %s (%s)", rs->idhex, c->addr,
			    c->peer_name);
			if (resume_key_derive(c->bev, rs->id, rs->resume_key, &e) == 0)
				rs->have_key = 1;
			else
				rs_log(rs, EV_WARN, "session %.16s: %s; it cannot be resumed", rs->idhex, e.msg);
		}
		if (rsess_last_seq(c->rs->sess) != c->rs->last_seq) {
			c->rs->last_seq = rsess_last_seq(c->rs->sess);
			c->rs->last_progress_ms = now;
		}
		if (rsess_state(c->rs->sess) == RS_COMMITTED) {
			/* Wait for the sender to close: its close_notify tells us
			 * it heard COMMITTED (else it may come back and ask). */
			rsession_finish(c->rs, 0, "");
			return;
		}
	}
	return;
fail:
	if (c->rs == NULL || !c->rs->finished) {
		if (c->rs != NULL) {
			rsess_fail(c->rs->sess, e.code, e.msg);
			rsession_finish(c->rs, e.code, e.msg);
		} else {
			rc_log(c, EV_WARN, "connection from %s (%s) refused: %s", c->addr, c->peer_name, e.msg);
		}
	}
	rconn_send_error(c, e.code, e.msg);
	rconn_close_after_flush(c);
}

void
rconn_kick(struct rconn *c)
{
	if (!c->closing && c->bev != NULL)
		on_read(c->bev, c);
}

static void
emit_refused(struct rconn *c, const char *why)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "peer", json_object_new_string(c->addr));
	json_object_object_add(o, "error", json_object_new_string(why));
	ev_json(&c->d->ev, "refused", o);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct rconn *c = arg;
	struct ferr e = { 0 };

	if (what & BEV_EVENT_CONNECTED) {
		c->tls_up = 1;
		if (tls_bev_peer_name(bev, c->peer_name, sizeof(c->peer_name)) != 0)
			snprintf(c->peer_name, sizeof(c->peer_name), "?");
		rc_log(c, EV_INFO, "TLS session with %s (%s)", c->addr, c->peer_name);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		size_t pending = evbuffer_get_length(bufferevent_get_input(bev));
		char why[FERR_MSG_MAX + 96];

		(void)tls_bev_error(bev, &e);
		if (e.msg[0] == '\0')
			snprintf(e.msg, sizeof(e.msg), "connection closed by the sender");
		if (!c->tls_up) {
			rc_log(c, EV_WARN, "connection from %s refused: %s", c->addr, e.msg);
			emit_refused(c, e.msg);
			if (what & BEV_EVENT_ERROR)
				drain_and_close(c);
		} else if (c->rs != NULL && !c->rs->finished) {
			rc_log(c, EV_WARN, "connection from %s: %s", c->addr, e.msg);
		}
		snprintf(why, sizeof(why), "%s", e.msg);
		if (pending > 0 && pending >= FERRY_FRAME_HDR_LEN) {
			const uint8_t *p = evbuffer_pullup(bufferevent_get_input(bev), FERRY_FRAME_HDR_LEN);
			uint32_t len = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) |
			    ((uint32_t)p[6] << 8) | p[7];

			snprintf(why, sizeof(why), "%s: %s frame truncated at %zu of %u payload bytes",
			    e.msg, frame_name(p[0]), pending - FERRY_FRAME_HDR_LEN, len);
		} else if (pending > 0) {
			snprintf(why, sizeof(why), "%s: frame header truncated at %zu of 8 bytes", e.msg,
			    pending);
		}
		if (c->rs != NULL) {
			struct rsession *rs = c->rs;

			c->rs = NULL;
			if ((what & BEV_EVENT_EOF) && rs->finished) {
				/* The sender heard the outcome and closed: answer its
				 * close_notify with ours. */
				rs->delivered = 1;
				if (tls_bev_close_notify(bev) != 0)
					c->tls_up = 0;
			}
			if ((what & BEV_EVENT_EOF) && !rs->finished) {
				/* A clean TLS close: the sender ended the session on
				 * purpose, so there is nothing to wait for.  Detach
				 * first: the session lingers (for a RESUME asking its
				 * outcome) without this connection. */
				rs->conn = NULL;
				rsess_fail(rs->sess, FERR_NET, why);
				rsession_finish(rs, pending ? FERR_PROTO_LENGTH : FERR_NET, why);
			} else {
				rsession_cut(rs, why);
			}
		}
		rconn_free(c);
	}
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *c = arg;

	(void)fd;
	(void)what;
	rc_log(c, EV_WARN, "connection from %s: no %s within the handshake timeout (%llu ms); closed",
	    c->addr, c->tls_up ? "HELLO or RESUME" : "TLS handshake",
	    (unsigned long long)c->d->o.handshake_ms);
	if (c->rs != NULL && !c->rs->finished) {
		rsess_fail(c->rs->sess, FERR_TIMEOUT, "handshake timeout");
		rsession_finish(c->rs, FERR_TIMEOUT, "no MANIFEST within the handshake timeout");
	}
	rconn_free(c);
}

/* Heartbeat: send PING, notice a dead peer, enforce the progress timeout. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct rconn *c = arg;
	struct recvd *d = c->d;
	uint64_t now = clock_ms();
	struct msg_seq ping = { now };
	uint8_t buf[32];
	struct wr w;

	(void)fd;
	(void)what;
	if (c->closing || !c->tls_up)
		return;
	if (c->rs != NULL && now - c->last_rx_ms > d->o.dead_ms) {
		char why[128];

		snprintf(why, sizeof(why), "no data from the sender for %llu ms (dead peer)",
		    (unsigned long long)(now - c->last_rx_ms));
		rc_log(c, EV_WARN, "connection from %s: %s", c->addr, why);
		{
			struct rsession *rs = c->rs;

			c->rs = NULL;
			rsession_cut(rs, why);
		}
		rconn_free(c);
		return;
	}
	if (c->rs != NULL && !c->rs->finished && rsess_state(c->rs->sess) == RS_RECEIVING &&
	    now - c->rs->last_progress_ms > d->o.progress_ms) {
		char why[128];

		snprintf(why, sizeof(why), "no pages applied for %llu ms (--progress-timeout)",
		    (unsigned long long)(now - c->rs->last_progress_ms));
		rsess_fail(c->rs->sess, FERR_TIMEOUT, why);
		rsession_finish(c->rs, FERR_TIMEOUT, why);
		rconn_send_error(c, FERR_TIMEOUT, why);
		rconn_close_after_flush(c);
		return;
	}
	wr_init(&w, buf, sizeof(buf));
	if (msg_seq_encode(&w, FT_PING, &ping) == 0)
		bufferevent_write(c->bev, buf, w.off);
}

void
rconn_accept(struct recvd *d, int fd, const char *addr)
{
	struct ferr e = { 0 };
	struct timeval tv;
	struct rconn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		return;
	}
	c->d = d;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	rc_log(c, EV_DEBUG, "connection from %s accepted", addr);
	c->last_rx_ms = clock_ms();
	sock_tune(fd, d->o.keepalive_ms, d->o.dead_ms);
	c->bev = tls_bev_new(d->tls, d->base, fd, &e);
	if (c->bev == NULL) {
		ev_logx(&d->ev, EV_WARN, NULL, "connection from %s: %s", addr, e.msg);
		close(fd);
		free(c);
		return;
	}
	c->next = d->conns;
	if (d->conns != NULL)
		d->conns->prev = c;
	d->conns = c;
	c->dump = framedump_new(d->dump, c->bev);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->deadline = evtimer_new(d->base, on_deadline, c);
	ms_to_timeval(&tv, d->o.handshake_ms);
	evtimer_add(c->deadline, &tv);
	c->tick = event_new(d->base, -1, EV_PERSIST, on_tick, c);
	ms_to_timeval(&tv, d->o.keepalive_ms);
	event_add(c->tick, &tv);
}
