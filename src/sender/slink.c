/* The sender's connection: asynchronous TCP connect (from --bind, on
 * --interface), TLS, frames in, heartbeat and dead-peer detection, the
 * progress and completion deadlines, the bandwidth cap, periodic TLS key
 * updates, and reconnecting with capped exponential backoff after a cut
 * until --outage-timeout. */
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "framedump.h"
#include "mig.h"
#include "qsource.h"
#include "msg.h"
#include "sockinfo.h"
#include "sockopt.h"
#include "tls.h"

#define OUT_HIGH_MAX (4u << 20)
#define OUT_HIGH_MIN (64u << 10)
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 2000
/* This many TLS integrity failures with no acknowledged progress between
 * them mean the path corrupts data: fail instead of resuming forever. */
#define INTEGRITY_CUTS_MAX 3

uint64_t
link_wire_bytes(struct mig *m)
{
	return m->wire_done + (m->bev != NULL ? sock_bytes_acked(bufferevent_getfd(m->bev)) : 0);
}

static void
link_drop(struct mig *m)
{
	if (m->conn_ev != NULL) {
		event_free(m->conn_ev);
		m->conn_ev = NULL;
	}
	if (m->fd >= 0) {
		close(m->fd);
		m->fd = -1;
	}
	if (m->bev != NULL) {
		m->wire_done += sock_bytes_acked(bufferevent_getfd(m->bev));
		framedump_free(m->dump);
		m->dump = NULL;
		bufferevent_free(m->bev);
		m->bev = NULL;
	}
	m->tls_up = 0;
}

void
link_close(struct mig *m)
{
	int fd, dfd = -1;

	if (m->bev != NULL && evbuffer_get_length(bufferevent_get_output(m->bev)) == 0)
		if (tls_bev_close_notify(m->bev) != 0)
			m->tls_up = 0;  /* peer sees a truncation; nothing to do */
	if (m->bev != NULL && (fd = bufferevent_getfd(m->bev)) >= 0)
		dfd = dup(fd);
	link_drop(m);
	/* Let our last frames reach the receiver instead of a reset. */
	if (dfd >= 0)
		sock_drain_close(dfd, 500);
}

int
link_send(struct mig *m, int (*enc)(struct wr *, const void *), const void *msg, size_t max)
{
	struct evbuffer *out;
	struct evbuffer_iovec v;
	struct wr w;

	if (m->bev == NULL)
		return -1;
	out = bufferevent_get_output(m->bev);
	if (evbuffer_reserve_space(out, (ev_ssize_t)max, &v, 1) < 1)
		return -1;
	wr_init(&w, v.iov_base, v.iov_len);
	if (enc(&w, msg) != 0)
		return -1;
	v.iov_len = w.off;
	m->since_rekey += w.off;
	return evbuffer_commit_space(out, &v, 1);
}

static int enc_error(struct wr *w, const void *p) { return msg_error_encode(w, p); }
static int enc_ping(struct wr *w, const void *p) { return msg_seq_encode(w, FT_PING, p); }

void
link_send_error(struct mig *m, int code, const char *text)
{
	struct msg_text t;

	memset(&t, 0, sizeof(t));
	t.code = (uint32_t)-code;
	snprintf(t.text, sizeof(t.text), "%s", text);
	(void)link_send(m, enc_error, &t, 32 + FERRY_TEXT_MAX);
}

size_t
link_out_high(const struct mig *m)
{
	uint64_t b = m->bandwidth / 10;

	if (m->bandwidth == 0 || b > OUT_HIGH_MAX)
		return OUT_HIGH_MAX;
	return b < OUT_HIGH_MIN ? OUT_HIGH_MIN : (size_t)b;
}

static int
apply_rate(struct mig *m, struct ferr *e)
{
	struct ev_token_bucket_cfg *old = m->rate_cfg;
	struct timeval tick = { 0, 100000 };   /* 10 refills per second */

	if (m->bandwidth == 0) {
		if (m->bev != NULL)
			bufferevent_set_rate_limit(m->bev, NULL);
		m->rate_cfg = NULL;
	} else {
		size_t per_tick = (size_t)(m->bandwidth / 10);

		if (per_tick < 1)
			per_tick = 1;
		if (per_tick > EV_RATE_LIMIT_MAX)
			per_tick = EV_RATE_LIMIT_MAX;
		/* A burst of four ticks: when the loop runs late (a busy host),
		 * the tokens of the ticks it missed are not lost, so the long-run
		 * rate stays at the cap; the burst bounds how far over it a
		 * moment can go. */
		m->rate_cfg = ev_token_bucket_cfg_new(1u << 30, 1u << 30, per_tick,
		    per_tick > EV_RATE_LIMIT_MAX / 4 ? EV_RATE_LIMIT_MAX : per_tick * 4, &tick);
		if (m->rate_cfg == NULL) {
			m->rate_cfg = old;
			return ferr_set(e, FERR_NOMEM, "bandwidth limit");
		}
		if (m->bev != NULL && bufferevent_set_rate_limit(m->bev, m->rate_cfg) != 0) {
			ev_token_bucket_cfg_free(m->rate_cfg);
			m->rate_cfg = old;
			return ferr_set(e, FERR_INTERNAL, "bandwidth limit could not be applied");
		}
	}
	if (old != NULL)
		ev_token_bucket_cfg_free(old);
	/* Writable again (more frames produced) below a quarter of the queue. */
	if (m->bev != NULL)
		bufferevent_setwatermark(m->bev, EV_WRITE, link_out_high(m) / 4, 0);
	return 0;
}

int
link_set_bandwidth(struct mig *m, uint64_t bps, struct ferr *e)
{
	m->bandwidth = bps;
	return apply_rate(m, e);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct mig *m = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct frame_hdr h;
	struct ferr e = { 0 };

	m->last_rx_ms = mig_now_ms();
	while (m->st != MS_DONE && m->bev == bev) {
		size_t have = evbuffer_get_length(in);
		const uint8_t *p;
		int rc;

		if (have < FERRY_FRAME_HDR_LEN)
			return;
		p = evbuffer_pullup(in, FERRY_FRAME_HDR_LEN);
		rc = frame_decode_hdr(p, have, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e);
		if (rc != 0) {
			link_send_error(m, rc, e.msg);
			mig_finish(m, rc, "%s", e.msg);
			return;
		}
		if (have < FERRY_FRAME_HDR_LEN + (size_t)h.len)
			return;
		p = evbuffer_pullup(in, (ev_ssize_t)(FERRY_FRAME_HDR_LEN + h.len));
		phase_frame(m, &h, p + FERRY_FRAME_HDR_LEN);
		if (m->bev != bev)
			return;     /* the frame ended the connection */
		evbuffer_drain(in, FERRY_FRAME_HDR_LEN + h.len);
	}
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	phase_pump(arg);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct mig *m = arg;
	struct ferr e = { 0 };

	if (what & BEV_EVENT_CONNECTED) {
		char peer[256] = "?";

		m->tls_up = 1;
		m->last_rx_ms = mig_now_ms();
		if (tls_bev_peer_name(bev, peer, sizeof(peer)) != 0)
			snprintf(peer, sizeof(peer), "?");
		ev_log(m->ev, "TLS 1.3 session with %s (%s:%u)", peer, m->o->to_host, m->o->to_port);
		phase_link_up(m);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		int code = tls_bev_error(bev, &e);

		if (code == 0)
			code = FERR_NET;
		if (e.msg[0] == '\0')
			snprintf(e.msg, sizeof(e.msg), "connection closed by the receiver");
		if (m->st == MS_HELLO && m->cuts == 0) {
			/* In TLS 1.3 the client finishes its handshake before the
			 * server has checked the client's certificate; a reset now
			 * usually means the receiver refused it. */
			char why[FERR_MSG_MAX + 160];

			snprintf(why, sizeof(why), "%s: the receiver closed the connection right after the "
			    "TLS handshake; it probably refused our certificate (not signed by a CA it "
			    "trusts, wrong name or expired: see its log)", e.msg);
			mig_finish(m, FERR_TLS, "%s", why);
			return;
		}
		link_down(m, code, e.msg);
	}
}

static void
tls_start(struct mig *m)
{
	struct ferr e = { 0 };
	int fd = m->fd;

	m->bev = tls_bev_new(m->tls, m->base, fd, &e);
	if (m->bev == NULL) {
		link_down(m, e.code, e.msg);
		return;
	}
	m->fd = -1;     /* the bufferevent owns it now */
	m->dump = framedump_new(m->o->dump, m->bev);
	bufferevent_setcb(m->bev, on_read, on_write, on_event, m);
	bufferevent_enable(m->bev, EV_READ | EV_WRITE);
	if (apply_rate(m, &e) != 0)
		ev_log(m->ev, "%s", e.msg);
}

static void
on_connected(evutil_socket_t fd, short what, void *arg)
{
	struct mig *m = arg;
	int err = 0;
	socklen_t el = sizeof(err);
	char why[300];

	event_free(m->conn_ev);
	m->conn_ev = NULL;
	if (what & EV_TIMEOUT) {
		snprintf(why, sizeof(why), "connect to %s:%u: no answer in %llu ms", m->o->to_host,
		    m->o->to_port, (unsigned long long)m->o->connect_timeout_ms);
		link_down(m, FERR_TIMEOUT, why);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
		snprintf(why, sizeof(why), "connect to %s:%u: %s", m->o->to_host, m->o->to_port,
		    strerror(err ? err : errno));
		link_down(m, FERR_NET, why);
		return;
	}
	tls_start(m);
}

/* Start a TCP connect; 0 or an error (usage errors are final). */
static int
connect_start(struct mig *m, struct ferr *e)
{
	const struct send_opts *o = m->o;
	struct addrinfo hints, *res = NULL;
	struct timeval tv;
	char port[8];
	int rc, fd;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", o->to_port);
	if ((rc = getaddrinfo(o->to_host, port, &hints, &res)) != 0)
		return ferr_set(e, FERR_USAGE, "--to %s: %s", o->to_host, gai_strerror(rc));
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(res);
		return ferr_set(e, FERR_NET, "socket: %s", strerror(errno));
	}
	sock_tune(fd, o->keepalive_ms, o->dead_ms);
	if (o->interface != NULL && (rc = sock_bind_device(fd, o->interface, e)) != 0)
		goto fail;
	if (o->bind_addr != NULL) {
		struct addrinfo bh, *br = NULL;

		memset(&bh, 0, sizeof(bh));
		bh.ai_family = res->ai_family;
		bh.ai_socktype = SOCK_STREAM;
		bh.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
		if ((rc = getaddrinfo(o->bind_addr, NULL, &bh, &br)) != 0) {
			rc = ferr_set(e, FERR_USAGE, "--bind %s: %s", o->bind_addr, gai_strerror(rc));
			goto fail;
		}
		rc = bind(fd, br->ai_addr, br->ai_addrlen);
		freeaddrinfo(br);
		if (rc != 0) {
			rc = ferr_set(e, FERR_USAGE, "--bind %s: %s", o->bind_addr, strerror(errno));
			goto fail;
		}
	}
	if (connect(fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
		rc = ferr_set(e, FERR_NET, "connect to %s:%u: %s", o->to_host, o->to_port, strerror(errno));
		goto fail;
	}
	freeaddrinfo(res);
	m->fd = fd;
	m->link_start_ms = mig_now_ms();
	m->conn_ev = event_new(m->base, fd, EV_WRITE, on_connected, m);
	ms_to_timeval(&tv, o->connect_timeout_ms);
	event_add(m->conn_ev, &tv);
	return 0;
fail:
	freeaddrinfo(res);
	close(fd);
	return rc;
}

static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct mig *m = arg;
	struct ferr e = { 0 };

	(void)fd;
	(void)what;
	if (m->st != MS_PAUSED)
		return;
	m->attempts++;
	if (connect_start(m, &e) != 0) {
		if (e.code == FERR_USAGE)
			mig_finish(m, e.code, "%s", e.msg);
		else
			link_down(m, e.code, e.msg);
	}
}

static uint64_t
outage_left(struct mig *m)
{
	uint64_t end = m->last_rx_ms + m->o->outage_ms, now = mig_now_ms();

	return end > now ? end - now : 0;
}

static void
outage_failed(struct mig *m, const char *why)
{
	if (m->resume_to == MS_COMMIT_WAIT)
		mig_finish(m, FERR_INDOUBT,
		    "COMMIT was sent but the receiver could not be reached within --outage-timeout to "
		    "learn the outcome (%s); the guest is left paused. Run 'ferry-recv ctl SOCKET status' "
		    "on the destination: if this session committed, stop the source; if not, resume it",
		    why);
	else
		mig_finish(m, FERR_TIMEOUT, "network outage longer than --outage-timeout (%llu ms): %s",
		    (unsigned long long)m->o->outage_ms, why);
}

void
link_down(struct mig *m, int code, const char *why)
{
	struct timeval tv;
	uint64_t delay, left;
	int was_up = m->tls_up, first_cut;

	if (m->st == MS_DONE)
		return;
	link_drop(m);
	/* Before ACCEPT there is no session to resume; a TLS refusal of the
	 * first connection is final too.  A TLS error on an established
	 * connection (a corrupted record, a truncation) is a cut. */
	if (m->st == MS_CONNECTING || m->st == MS_HELLO || m->st == MS_MANIFEST || !m->have_key ||
	    (code == FERR_TLS && !was_up && m->cuts == 0)) {
		mig_finish(m, code, "%s (in state %s)", why, mstate_name(m->st));
		return;
	}
	if (code == FERR_TLS_INTEGRITY && ++m->integrity_cuts >= INTEGRITY_CUTS_MAX &&
	    !m->commit_sent) {
		mig_finish(m, FERR_TLS_INTEGRITY, "%u TLS integrity failures with no progress between "
		    "them: the network path corrupts data (check NICs, cables, middleboxes); last: %s",
		    m->integrity_cuts, why);
		return;
	}
	first_cut = m->st != MS_PAUSED && m->st != MS_RESUMING;
	if (first_cut) {
		m->resume_to = m->st;
		m->cuts++;
		m->cut_ms = mig_now_ms();
		mig_clear_progress(m);
		ev_log(m->ev, "connection lost in %s: %s; reconnecting (guest %s)", mstate_name(m->st), why,
		    m->o->guest.paused ? "stays paused" : "keeps running");
		{
			struct json_object *o = json_object_new_object();

			json_object_object_add(o, "reason", json_object_new_string(why));
			json_object_object_add(o, "phase", json_object_new_string(mstate_name(m->st)));
			json_object_object_add(o, "acked_seq", json_object_new_int64((int64_t)m->pg.acked_seq));
			ev_json(m->ev, "paused", o);
		}
	}
	mig_set_state(m, MS_PAUSED);
	left = outage_left(m);
	if (left == 0) {
		outage_failed(m, why);
		return;
	}
	/* The first attempt after a cut goes at once (a reset or a flipped
	 * record leaves the path usable, and every millisecond paused lets
	 * the guest dirty more); failed attempts back off 250 ms .. 2 s. */
	if (m->attempts == 0)
		delay = 0;
	else
		delay = (uint64_t)BACKOFF_MIN_MS << (m->attempts - 1 < 4 ? m->attempts - 1 : 4);
	if (delay > BACKOFF_MAX_MS)
		delay = BACKOFF_MAX_MS;
	if (delay > left)
		delay = left;
	if (!first_cut)
		ev_log(m->ev, "reconnect attempt %u failed: %s; next in %llu ms, %llu ms of "
		    "--outage-timeout left", m->attempts, why, (unsigned long long)delay,
		    (unsigned long long)left);
	ms_to_timeval(&tv, delay);
	evtimer_add(m->retry, &tv);
}

/* Every keepalive interval: heartbeat, dead peer, deadlines, rekey. */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct mig *m = arg;
	const struct send_opts *o = m->o;
	uint64_t now = mig_now_ms();
	char why[200];

	(void)fd;
	(void)what;
	if (m->st == MS_DONE)
		return;
	if (o->completion_ms > 0 && now - m->start_ms > o->completion_ms) {
		if (m->commit_sent)
			return;     /* the outcome decides now, not the clock */
		snprintf(why, sizeof(why), "migration not complete after %llu ms "
		    "(--completion-timeout-per-gib)", (unsigned long long)o->completion_ms);
		link_send_error(m, FERR_TIMEOUT, why);
		mig_finish(m, FERR_TIMEOUT, "%s", why);
		return;
	}
	if (m->st == MS_PAUSED && m->bev != NULL && !m->tls_up &&
	    now - m->link_start_ms > o->connect_timeout_ms) {
		link_down(m, FERR_TIMEOUT, "TLS handshake did not finish (--connect-timeout)");
		return;
	}
	if (m->st == MS_PAUSED || m->st == MS_RESUMING) {
		if (outage_left(m) == 0) {
			link_drop(m);
			outage_failed(m, "no answer");
			return;
		}
		if (o->progress)
			phase_show_progress(m);
		return;
	}
	if (m->st == MS_CONNECTING || (m->bev != NULL && !m->tls_up)) {
		if (m->bev != NULL && !m->tls_up && now - m->link_start_ms > o->connect_timeout_ms) {
			snprintf(why, sizeof(why), "TLS handshake with %s:%u did not finish in %llu ms "
			    "(--connect-timeout)", o->to_host, o->to_port,
			    (unsigned long long)o->connect_timeout_ms);
			if (m->st == MS_CONNECTING)
				mig_finish(m, FERR_TIMEOUT, "%s", why);
			else
				link_down(m, FERR_TIMEOUT, why);
		}
		return;
	}
	if (m->tls_up && now - m->last_rx_ms > o->dead_ms) {
		snprintf(why, sizeof(why), "no data from the receiver for %llu ms (dead peer)",
		    (unsigned long long)(now - m->last_rx_ms));
		link_down(m, FERR_NET, why);
		return;
	}
	if ((m->st == MS_PRECOPY || m->st == MS_FINAL || m->st == MS_COMMIT_WAIT) &&
	    now - m->last_ack_ms > o->progress_ms &&
	    ((m->q != NULL ? qsrc_unacked(m) : pager_unacked(&m->pg)) > 0 || m->st == MS_COMMIT_WAIT)) {
		if (m->st == MS_COMMIT_WAIT) {
			link_down(m, FERR_TIMEOUT, "no answer to COMMIT within --progress-timeout");
			return;
		}
		snprintf(why, sizeof(why), "no progress for %llu ms (--progress-timeout): the "
		    "receiver acknowledged nothing", (unsigned long long)(now - m->last_ack_ms));
		link_send_error(m, FERR_TIMEOUT, why);
		mig_finish(m, FERR_TIMEOUT, "%s", why);
		return;
	}
	if (m->bev != NULL && m->tls_up && now - m->last_ping_ms >= o->keepalive_ms) {
		struct msg_seq ping = { now };

		m->last_ping_ms = now;
		(void)link_send(m, enc_ping, &ping, 32);
	}
	if (m->bev != NULL && m->tls_up) {
		if (o->rekey_bytes > 0 && m->since_rekey >= o->rekey_bytes) {
			if (tls_bev_key_update(m->bev) == 0)
				m->rekeys++;
			m->since_rekey = 0;
		}
	}
	if (o->progress)
		phase_show_progress(m);
}

int
link_start(struct mig *m, struct ferr *e)
{
	struct timeval tv;

	m->tick = event_new(m->base, -1, EV_PERSIST, on_tick, m);
	m->retry = evtimer_new(m->base, on_retry, m);
	if (m->tick == NULL || m->retry == NULL)
		return ferr_set(e, FERR_NOMEM, "timers");
	/* Four ticks a second keep deadlines and the progress line current;
	 * PINGs go out every keepalive interval from it. */
	ms_to_timeval(&tv, 250);
	event_add(m->tick, &tv);
	m->bandwidth = m->o->bandwidth;
	return connect_start(m, e);
}

void
link_stop_timers(struct mig *m)
{
	if (m->tick != NULL)
		event_free(m->tick);
	if (m->retry != NULL)
		event_free(m->retry);
	m->tick = m->retry = NULL;
	if (m->rate_cfg != NULL)
		ev_token_bucket_cfg_free(m->rate_cfg);
	m->rate_cfg = NULL;
}
