#include "migrate.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "converge.h"
#include "frame.h"
#include "msg.h"
#include "pagehash.h"
#include "pager.h"
#include "sockinfo.h"
#include "source.h"
#include "tls.h"
#include "units.h"

#define OUT_HIGH (4u << 20)     /* stop producing above this many queued bytes */
#define OUT_LOW (1u << 20)      /* resume producing below this */

enum mstate {
	MS_CONNECTING = 1,
	MS_HELLO,           /* HELLO sent, waiting for WELCOME */
	MS_MANIFEST,        /* MANIFEST sent, waiting for ACCEPT or REFUSE */
	MS_PRECOPY,         /* rounds while the guest runs */
	MS_FINAL,           /* guest paused: last round, state, COMMIT */
	MS_COMMIT_WAIT,     /* COMMIT sent, waiting for COMMITTED */
	MS_DONE,
};

struct mig {
	const struct send_opts *o;
	struct events *ev;
	struct migrate_result *res;
	struct event_base *base;
	struct tls_ctx *tls;
	struct bufferevent *bev;
	int fd;
	struct event *tick, *sigint, *sigterm, *hs_timer;
	enum mstate st;
	struct source_dev dev[FERRY_MAX_DEVICES];
	uint32_t ndev;
	uint64_t total_units;
	uint64_t seed;
	uint32_t max_payload;       /* negotiated */
	uint8_t session_id[16];
	struct pager pg;
	struct converge cv;
	uint64_t round_start_ms, round_scan_ms;
	uint64_t start_ms, pause_ms;
	uint64_t acked_seq;
	uint64_t state_size;
	uint8_t *state_buf;
	int commit_sent;
	int progress_shown;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *
mstate_name(enum mstate s)
{
	switch (s) {
	case MS_CONNECTING: return "connecting";
	case MS_HELLO: return "negotiating";
	case MS_MANIFEST: return "preflight";
	case MS_PRECOPY: return "precopy";
	case MS_FINAL: return "switchover";
	case MS_COMMIT_WAIT: return "commit";
	case MS_DONE: return "done";
	default: return "?";
	}
}

static void
set_state(struct mig *m, enum mstate s)
{
	struct json_object *o = json_object_new_object();

	m->st = s;
	json_object_object_add(o, "state", json_object_new_string(mstate_name(s)));
	ev_json(m->ev, "state", o);
}

static void
clear_progress(struct mig *m)
{
	if (m->progress_shown) {
		fprintf(stderr, "\r\033[K");
		m->progress_shown = 0;
	}
}

/* End the migration with code (0 = success). */
static void
finish(struct mig *m, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);

static void
finish(struct mig *m, int code, const char *fmt, ...)
{
	struct ferr e2 = { 0 };
	va_list ap;

	if (m->st == MS_DONE)
		return;
	if (code != 0) {
		va_start(ap, fmt);
		vsnprintf(m->res->err.msg, sizeof(m->res->err.msg), fmt, ap);
		va_end(ap);
		m->res->err.code = code;
		/* The source guest runs on unless the receiver may have
		 * committed (COMMIT sent, no answer): never resume on a guess. */
		if (m->o->guest.paused && !m->commit_sent) {
			if (guest_resume((struct guestctl *)&m->o->guest, &e2) != 0)
				ev_log(m->ev, "could not resume the guest: %s", e2.msg);
			else
				ev_log(m->ev, "guest resumed on the source");
		}
		if (m->commit_sent) {
			snprintf(m->res->err.msg + strlen(m->res->err.msg),
			    sizeof(m->res->err.msg) - strlen(m->res->err.msg),
			    " (COMMIT was sent but not confirmed: the guest stays paused; check the "
			    "receiver's log for this session and resume or discard the source by hand)");
		}
	}
	m->res->result = result_from_err(code);
	m->st = MS_DONE;
	event_base_loopexit(m->base, NULL);
}

static void
send_error_frame(struct mig *m, int code, const char *text)
{
	struct msg_text t;
	uint8_t buf[32 + FERRY_TEXT_MAX];
	struct wr w;

	if (m->bev == NULL)
		return;
	memset(&t, 0, sizeof(t));
	t.code = (uint32_t)-code;
	snprintf(t.text, sizeof(t.text), "%s", text);
	wr_init(&w, buf, sizeof(buf));
	if (msg_error_encode(&w, &t) == 0)
		bufferevent_write(m->bev, buf, w.off);
}

static int
out_frame(struct mig *m, int (*enc)(struct wr *, const void *), const void *msg, size_t max)
{
	struct evbuffer *out = bufferevent_get_output(m->bev);
	struct evbuffer_iovec v;
	struct wr w;

	if (evbuffer_reserve_space(out, (ev_ssize_t)max, &v, 1) < 1)
		return -1;
	wr_init(&w, v.iov_base, v.iov_len);
	if (enc(&w, msg) != 0)
		return -1;
	v.iov_len = w.off;
	return evbuffer_commit_space(out, &v, 1);
}

static int enc_hello(struct wr *w, const void *p) { return msg_hello_encode(w, p); }
static int enc_manifest(struct wr *w, const void *p) { return msg_manifest_encode(w, p); }
static int enc_commit(struct wr *w, const void *p) { return msg_commit_encode(w, p); }
static int enc_state(struct wr *w, const void *p) { return msg_state_encode(w, p); }

static void
emit_round(struct mig *m, const struct round_result *r)
{
	struct json_object *o = json_object_new_object();
	const struct pager_stats *s = &m->pg.round_st;

	json_object_object_add(o, "round", json_object_new_int((int)r->round));
	json_object_object_add(o, "logical_bytes", json_object_new_int64((int64_t)r->logical_bytes));
	json_object_object_add(o, "frame_bytes", json_object_new_int64((int64_t)r->wire_bytes));
	json_object_object_add(o, "duration_ms", json_object_new_int64((int64_t)r->duration_ms));
	json_object_object_add(o, "units_sent", json_object_new_int64((int64_t)s->units_sent));
	json_object_object_add(o, "dirty_rate", json_object_new_int64((int64_t)m->cv.dirty_rate));
	json_object_object_add(o, "predicted_downtime_ms",
	    json_object_new_int64((int64_t)m->cv.predicted_ms));
	ev_json(m->ev, "round", o);
}

static void
add_totals(struct mig *m)
{
	const struct pager_stats *s = &m->pg.round_st;

	m->res->logical_bytes += s->logical_bytes;
	m->res->frame_bytes += s->frame_bytes;
	m->res->pages_zero += s->zero;
	m->res->pages_dedup += s->dedup;
	m->res->pages_lz4 += s->lz4;
	m->res->pages_raw += s->raw;
	m->res->rounds = m->pg.round;
	if (m->pg.round == 1) {
		m->res->round1_logical = s->logical_bytes;
		m->res->round1_frame_bytes = s->frame_bytes;
	}
}

static void
begin_round(struct mig *m)
{
	pager_begin_round(&m->pg);
	m->round_start_ms = now_ms();
	m->round_scan_ms = 0;
}

static void
send_state_and_commit(struct mig *m)
{
	struct msg_commit c;
	struct msg_state s;
	struct ferr e = { 0 };
	uint64_t off, len = 0;
	uint8_t *buf = NULL;

	memset(&c, 0, sizeof(c));
	if (m->o->state_file != NULL) {
		/* Read at pause time: the pause command may have just written it. */
		if (source_read_file(m->o->state_file, FERRY_STATE_SIZE_MAX, &buf, &len, &e) != 0) {
			finish(m, e.code, "%s", e.msg);
			return;
		}
		if (len != m->state_size) {
			free(buf);
			finish(m, FERR_IO, "state file '%s' changed size from %llu to %llu bytes",
			    m->o->state_file, (unsigned long long)m->state_size, (unsigned long long)len);
			return;
		}
		for (off = 0; off < len; off += s.len) {
			uint64_t chunk = m->max_payload - 64;

			s.offset = off;
			s.data = buf + off;
			s.len = (uint32_t)(len - off < chunk ? len - off : chunk);
			if (out_frame(m, enc_state, &s, s.len + 32) != 0)
				break;
		}
		if (state_digest(m->seed, buf, len, c.state_digest, &e) != 0) {
			free(buf);
			finish(m, e.code, "%s", e.msg);
			return;
		}
		free(buf);
	}
	if (pager_digests(&m->pg, &c, &e) != 0) {
		finish(m, e.code, "%s", e.msg);
		return;
	}
	c.seq = m->pg.next_seq - 1;
	if (out_frame(m, enc_commit, &c, 64 + 20 * FERRY_MAX_DEVICES) != 0) {
		finish(m, FERR_INTERNAL, "could not queue COMMIT");
		return;
	}
	m->commit_sent = 1;
	set_state(m, MS_COMMIT_WAIT);
}

static void
round_done(struct mig *m)
{
	struct round_result r;
	enum converge_verdict v;
	struct ferr e = { 0 };

	r.round = m->pg.round;
	r.logical_bytes = m->pg.round_st.logical_bytes;
	r.wire_bytes = m->pg.round_st.frame_bytes;
	r.duration_ms = now_ms() - m->round_start_ms;
	r.scan_ms = m->round_scan_ms;
	add_totals(m);
	v = converge_round(&m->cv, &r);
	emit_round(m, &r);
	if (m->st == MS_FINAL) {
		send_state_and_commit(m);
		return;
	}
	if (v == CV_CONTINUE) {
		begin_round(m);
		return;
	}
	clear_progress(m);
	ev_log(m->ev, "switchover after round %u (%s; predicted pause %llu ms)", r.round,
	    v == CV_SWITCHOVER_CONVERGED ? "converged" : "max rounds reached",
	    (unsigned long long)m->cv.predicted_ms);
	m->pause_ms = now_ms();
	if (guest_pause((struct guestctl *)&m->o->guest, &e) != 0) {
		finish(m, e.code, "%s", e.msg);
		return;
	}
	set_state(m, MS_FINAL);
	begin_round(m);
}

/* Produce frames until the output queue is full or there is nothing to
 * send now. */
static void
pump(struct mig *m)
{
	struct evbuffer *out;

	if (m->bev == NULL)
		return;
	out = bufferevent_get_output(m->bev);
	while ((m->st == MS_PRECOPY || m->st == MS_FINAL) && evbuffer_get_length(out) < OUT_HIGH) {
		struct evbuffer_iovec v;
		struct wr w;
		uint64_t t0 = now_ms();
		int rc;

		if (evbuffer_reserve_space(out, (ev_ssize_t)m->max_payload + FERRY_FRAME_HDR_LEN, &v,
		    1) < 1) {
			finish(m, FERR_NOMEM, "output buffer");
			return;
		}
		wr_init(&w, v.iov_base, (size_t)m->max_payload + FERRY_FRAME_HDR_LEN);
		rc = pager_next_frame(&m->pg, &w, m->max_payload);
		m->round_scan_ms += now_ms() - t0;
		if (rc < 0) {
			finish(m, FERR_INTERNAL, "PAGES: a unit does not fit in a frame of %u bytes",
			    m->max_payload);
			return;
		}
		v.iov_len = w.off;
		evbuffer_commit_space(out, &v, 1);
		if (rc == 0)
			round_done(m);
	}
}

static void
send_manifest(struct mig *m)
{
	struct msg_manifest *man = calloc(1, sizeof(*man));
	const char *base;
	uint32_t i;

	if (man == NULL) {
		finish(m, FERR_NOMEM, "manifest");
		return;
	}
	man->ndev = m->ndev;
	for (i = 0; i < m->ndev; i++)
		man->dev[i] = m->dev[i].desc;
	man->state_size = m->state_size;
	if (m->o->state_file != NULL) {
		base = strrchr(m->o->state_file, '/');
		snprintf(man->state_name, sizeof(man->state_name), "%s", base ? base + 1 : m->o->state_file);
	}
	if (out_frame(m, enc_manifest, man, 64 + (size_t)m->ndev * (40 + FERRY_NAME_MAX)) != 0)
		finish(m, FERR_INTERNAL, "could not queue MANIFEST");
	else
		set_state(m, MS_MANIFEST);
	free(man);
}

static void
on_frame(struct mig *m, const struct frame_hdr *h, const uint8_t *p)
{
	struct ferr e = { 0 };
	struct msg_welcome wel;
	struct msg_accept acc;
	struct msg_text t;
	struct msg_seq sq;

	switch (h->type) {
	case FT_ERROR:
		if (msg_error_decode(p, h->len, &t, &e) != 0)
			break;
		finish(m, t.code == (uint32_t)-FERR_VERIFY ? FERR_VERIFY : FERR_NET,
		    "receiver: %s (%s)", t.text, ferr_name(-(int)t.code));
		return;
	case FT_WELCOME:
		if (m->st != MS_HELLO)
			goto state;
		if (msg_welcome_decode(p, h->len, &wel, &e) != 0)
			break;
		memcpy(m->session_id, wel.session_id, sizeof(m->session_id));
		m->max_payload = wel.max_frame < FERRY_MAX_FRAME_DEFAULT ? wel.max_frame
									  : FERRY_MAX_FRAME_DEFAULT;
		send_manifest(m);
		return;
	case FT_ACCEPT:
		if (m->st != MS_MANIFEST)
			goto state;
		if (msg_accept_decode(p, h->len, &acc, &e) != 0)
			break;
		set_state(m, MS_PRECOPY);
		begin_round(m);
		pump(m);
		return;
	case FT_REFUSE:
		if (m->st != MS_MANIFEST)
			goto state;
		if (msg_refuse_decode(p, h->len, &t, &e) != 0)
			break;
		finish(m, -(int)t.code <= FERR_REFUSED && -(int)t.code > -30 ? -(int)t.code : FERR_REFUSED,
		    "refused by receiver: %s", t.text);
		return;
	case FT_ACK:
		if (m->st < MS_PRECOPY)
			goto state;
		if (msg_seq_decode(h->type, p, h->len, &sq, &e) != 0)
			break;
		if (sq.seq >= m->pg.next_seq) {
			ferr_set(&e, FERR_PROTO_RANGE, "ACK: seq %llu beyond last sent %llu",
			    (unsigned long long)sq.seq, (unsigned long long)(m->pg.next_seq - 1));
			break;
		}
		m->acked_seq = sq.seq;
		return;
	case FT_COMMITTED:
		if (m->st != MS_COMMIT_WAIT)
			goto state;
		if (msg_seq_decode(h->type, p, h->len, &sq, &e) != 0)
			break;
		m->res->downtime_ms = now_ms() - m->pause_ms;
		if (guest_cleanup((struct guestctl *)&m->o->guest, &e) != 0)
			ev_log(m->ev, "committed, but cleaning up the source failed: %s", e.msg);
		finish(m, 0, "ok");
		return;
	default:
		break;
	}
	if (e.code == 0)
		ferr_set(&e, FERR_PROTO_TYPE, "%s: not expected by a sender", frame_name(h->type));
	send_error_frame(m, e.code, e.msg);
	finish(m, e.code, "%s", e.msg);
	return;
state:
	ferr_set(&e, FERR_PROTO_STATE, "%s: not allowed in state %s", frame_name(h->type),
	    mstate_name(m->st));
	send_error_frame(m, e.code, e.msg);
	finish(m, e.code, "%s", e.msg);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct mig *m = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct frame_hdr h;
	struct ferr e = { 0 };

	while (m->st != MS_DONE) {
		size_t have = evbuffer_get_length(in);
		const uint8_t *p;
		int rc;

		if (have < FERRY_FRAME_HDR_LEN)
			return;
		p = evbuffer_pullup(in, FERRY_FRAME_HDR_LEN);
		rc = frame_decode_hdr(p, have, FERRY_MAX_FRAME_DEFAULT, FDIR_R2S, &h, &e);
		if (rc != 0) {
			send_error_frame(m, rc, e.msg);
			finish(m, rc, "%s", e.msg);
			return;
		}
		if (have < FERRY_FRAME_HDR_LEN + (size_t)h.len)
			return;
		p = evbuffer_pullup(in, (ev_ssize_t)(FERRY_FRAME_HDR_LEN + h.len));
		on_frame(m, &h, p + FERRY_FRAME_HDR_LEN);
		evbuffer_drain(in, FERRY_FRAME_HDR_LEN + h.len);
	}
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	(void)bev;
	pump(arg);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct mig *m = arg;
	struct ferr e = { 0 };

	if (what & BEV_EVENT_CONNECTED) {
		struct msg_hello h = { FERRY_VERSION, 0, FERRY_MAX_FRAME_DEFAULT, m->seed };
		char peer[256] = "?";

		if (m->hs_timer != NULL)
			event_del(m->hs_timer);
		if (tls_bev_peer_name(bev, peer, sizeof(peer)) != 0)
			snprintf(peer, sizeof(peer), "?");
		ev_log(m->ev, "TLS 1.3 session with %s (%s:%u)", peer, m->o->to_host, m->o->to_port);
		set_state(m, MS_HELLO);
		if (out_frame(m, enc_hello, &h, 64) != 0)
			finish(m, FERR_INTERNAL, "could not queue HELLO");
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		int code = tls_bev_error(bev, &e);

		if (code == 0)
			code = FERR_NET;
		if (e.msg[0] == '\0')
			snprintf(e.msg, sizeof(e.msg), "connection closed by the receiver");
		finish(m, code, "%s (in state %s)", e.msg, mstate_name(m->st));
	}
}

static void
on_hs_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg, FERR_TIMEOUT, "TLS handshake with the receiver did not finish in time");
}

static void
show_progress(struct mig *m)
{
	const struct pager_stats *s = &m->pg.round_st;
	uint64_t el = now_ms() - m->round_start_ms, logical = m->res->logical_bytes + s->logical_bytes;
	double pct = m->total_units ? 100.0 * (double)s->units_scanned / (double)m->total_units : 0;
	double rate = el ? (double)s->logical_bytes / 1048576.0 / ((double)el / 1000.0) : 0;
	double wrate = el ? (double)s->frame_bytes / 1048576.0 / ((double)el / 1000.0) : 0;
	double eta = pct > 0 ? (double)el / 1000.0 * (100.0 - pct) / pct : 0;
	char tot[32];

	fmt_size(logical, tot, sizeof(tot));
	fprintf(stderr, "\r\033[K%-10s round %u %5.1f%% | %7.1f MiB/s logical %7.1f MiB/s wire | "
	    "dirty %5.1f MiB/s | sent %s | ETA %.0fs",
	    mstate_name(m->st), m->pg.round, pct, rate, wrate, (double)m->cv.dirty_rate / 1048576.0,
	    tot, eta);
	m->progress_shown = 1;
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct mig *m = arg;

	(void)fd;
	(void)what;
	if (m->o->progress && (m->st == MS_PRECOPY || m->st == MS_FINAL))
		show_progress(m);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct mig *m = arg;

	(void)what;
	if (m->commit_sent) {
		ev_log(m->ev, "signal %d ignored: COMMIT is already sent", (int)sig);
		return;
	}
	send_error_frame(m, FERR_ABORTED, "aborted by the sender's operator");
	if (m->bev != NULL)
		bufferevent_flush(m->bev, EV_WRITE, BEV_FLUSH);
	finish(m, FERR_ABORTED, "aborted by signal %d", (int)sig);
}

static int
connect_to(struct mig *m, struct ferr *e)
{
	const struct send_opts *o = m->o;
	struct addrinfo hints, *res = NULL, *ai;
	char port[8];
	int rc, fd = -1, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", o->to_port);
	if ((rc = getaddrinfo(o->to_host, port, &hints, &res)) != 0)
		return ferr_set(e, FERR_USAGE, "--to %s: %s", o->to_host, gai_strerror(rc));
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		struct pollfd pfd;
		int err = 0;
		socklen_t el = sizeof(err);

		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (o->bind_addr != NULL) {
			struct addrinfo bh, *br = NULL;

			memset(&bh, 0, sizeof(bh));
			bh.ai_family = ai->ai_family;
			bh.ai_socktype = SOCK_STREAM;
			bh.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
			if ((rc = getaddrinfo(o->bind_addr, NULL, &bh, &br)) != 0) {
				ferr_set(e, FERR_USAGE, "--bind %s: %s", o->bind_addr, gai_strerror(rc));
				goto next;
			}
			rc = bind(fd, br->ai_addr, br->ai_addrlen);
			freeaddrinfo(br);
			if (rc != 0) {
				ferr_set(e, FERR_NET, "--bind %s: %s", o->bind_addr, strerror(errno));
				goto next;
			}
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
			ferr_set(e, FERR_NET, "connect to %s:%u: %s", o->to_host, o->to_port, strerror(errno));
			goto next;
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		rc = poll(&pfd, 1, (int)o->connect_timeout_ms);
		if (rc == 0) {
			ferr_set(e, FERR_TIMEOUT, "connect to %s:%u: no answer in %llu ms", o->to_host,
			    o->to_port, (unsigned long long)o->connect_timeout_ms);
			goto next;
		}
		if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0) {
			ferr_set(e, FERR_NET, "connect to %s:%u: %s", o->to_host, o->to_port,
			    strerror(err ? err : errno));
			goto next;
		}
		freeaddrinfo(res);
		m->fd = fd;
		ferr_clear(e);
		return 0;
next:
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (e->code == 0)
		ferr_set(e, FERR_NET, "connect to %s:%u: no usable address", o->to_host, o->to_port);
	return e->code;
}

static int
open_sources(struct mig *m, struct ferr *e)
{
	const struct send_opts *o = m->o;
	uint32_t i, id = 1;
	int rc;

	if (o->mem != NULL) {
		if ((rc = source_dev_open(&m->dev[m->ndev], o->mem, id++, DK_MEMORY, o->mem_unit, e)) != 0)
			return rc;
		m->total_units += m->dev[m->ndev].nunits;
		m->ndev++;
	}
	for (i = 0; i < o->ndisks; i++) {
		if ((rc = source_dev_open(&m->dev[m->ndev], o->disks[i], id++, DK_DISK, o->disk_unit,
		    e)) != 0) {
			m->ndev++;  /* so it gets closed */
			return rc;
		}
		m->total_units += m->dev[m->ndev].nunits;
		m->ndev++;
	}
	for (i = 0; i < m->ndev; i++) {
		uint32_t j;

		for (j = 0; j < i; j++)
			if (strcmp(m->dev[i].desc.name, m->dev[j].desc.name) == 0)
				return ferr_set(e, FERR_USAGE,
				    "'%s' and '%s' have the same file name; the destination needs distinct names",
				    m->dev[j].path, m->dev[i].path);
	}
	if (o->state_file != NULL) {
		uint8_t *b;

		if ((rc = source_read_file(o->state_file, FERRY_STATE_SIZE_MAX, &b, &m->state_size, e)) != 0)
			return rc;
		free(b);
		if (m->state_size == 0)
			return ferr_set(e, FERR_USAGE, "--state '%s': empty file", o->state_file);
	}
	return 0;
}

static void
emit_done(struct mig *m)
{
	struct migrate_result *r = m->res;
	struct json_object *o = json_object_new_object();
	char sid[33];

	hash_hex(m->session_id, sid);
	json_object_object_add(o, "result", json_object_new_string(result_name(r->result)));
	if (r->result != RES_OK)
		json_object_object_add(o, "error", json_object_new_string(r->err.msg));
	json_object_object_add(o, "session", json_object_new_string(sid));
	json_object_object_add(o, "logical_bytes", json_object_new_int64((int64_t)r->logical_bytes));
	json_object_object_add(o, "wire_bytes", json_object_new_int64((int64_t)r->wire_bytes));
	json_object_object_add(o, "frame_bytes", json_object_new_int64((int64_t)r->frame_bytes));
	json_object_object_add(o, "round1_logical_bytes", json_object_new_int64((int64_t)r->round1_logical));
	json_object_object_add(o, "round1_frame_bytes",
	    json_object_new_int64((int64_t)r->round1_frame_bytes));
	json_object_object_add(o, "rounds", json_object_new_int((int)r->rounds));
	json_object_object_add(o, "downtime_ms", json_object_new_int64((int64_t)r->downtime_ms));
	json_object_object_add(o, "duration_ms", json_object_new_int64((int64_t)r->duration_ms));
	json_object_object_add(o, "pages_zero", json_object_new_int64((int64_t)r->pages_zero));
	json_object_object_add(o, "pages_dedup", json_object_new_int64((int64_t)r->pages_dedup));
	json_object_object_add(o, "pages_lz4", json_object_new_int64((int64_t)r->pages_lz4));
	json_object_object_add(o, "pages_raw", json_object_new_int64((int64_t)r->pages_raw));
	ev_json(m->ev, "done", o);
}

enum result
migrate_run(const struct send_opts *o, struct events *ev, struct migrate_result *res)
{
	struct mig m;
	struct tls_opts to;
	struct ferr e = { 0 };
	struct timeval tick = { 0, 250000 }, hs;
	uint32_t i;

	memset(&m, 0, sizeof(m));
	memset(res, 0, sizeof(*res));
	m.o = o;
	m.ev = ev;
	m.res = res;
	m.fd = -1;
	m.start_ms = now_ms();
	m.max_payload = FERRY_MAX_FRAME_DEFAULT;
	if (getrandom(&m.seed, sizeof(m.seed), 0) != sizeof(m.seed)) {
		ferr_set(&e, FERR_INTERNAL, "getrandom: %s", strerror(errno));
		goto fail;
	}
	if (open_sources(&m, &e) != 0)
		goto fail;
	if (pager_init(&m.pg, m.dev, m.ndev, m.seed, &e) != 0)
		goto fail;
	converge_init(&m.cv, o->downtime_ms, o->max_rounds);
	memset(&to, 0, sizeof(to));
	to.cert_file = o->cert;
	to.key_file = o->key;
	to.ca_file = o->ca;
	to.peer_name = o->peer_name;
	if (tls_ctx_new(0, &to, &m.tls, &e) != 0)
		goto fail;
	m.base = event_base_new();
	if (m.base == NULL) {
		ferr_set(&e, FERR_NOMEM, "event loop");
		goto fail;
	}
	m.st = MS_CONNECTING;
	ev_log(ev, "connecting to %s:%u%s%s", o->to_host, o->to_port, o->bind_addr ? " from " : "",
	    o->bind_addr ? o->bind_addr : "");
	if (connect_to(&m, &e) != 0)
		goto fail;
	m.bev = tls_bev_new(m.tls, m.base, m.fd, &e);
	if (m.bev == NULL) {
		close(m.fd);
		m.fd = -1;
		goto fail;
	}
	bufferevent_setcb(m.bev, on_read, on_write, on_event, &m);
	bufferevent_setwatermark(m.bev, EV_WRITE, OUT_LOW, 0);
	bufferevent_enable(m.bev, EV_READ | EV_WRITE);
	m.tick = event_new(m.base, -1, EV_PERSIST, on_tick, &m);
	event_add(m.tick, &tick);
	m.hs_timer = evtimer_new(m.base, on_hs_timeout, &m);
	hs.tv_sec = (time_t)(o->connect_timeout_ms / 1000);
	hs.tv_usec = (suseconds_t)(o->connect_timeout_ms % 1000) * 1000;
	evtimer_add(m.hs_timer, &hs);
	m.sigint = evsignal_new(m.base, SIGINT, on_signal, &m);
	m.sigterm = evsignal_new(m.base, SIGTERM, on_signal, &m);
	evsignal_add(m.sigint, NULL);
	evsignal_add(m.sigterm, NULL);
	event_base_dispatch(m.base);
	if (m.st != MS_DONE)
		finish(&m, FERR_INTERNAL, "event loop ended early");
	goto out;
fail:
	m.res->err = e;
	m.res->result = result_from_err(e.code);
out:
	clear_progress(&m);
	res->duration_ms = now_ms() - m.start_ms;
	res->wire_bytes = sock_bytes_acked(m.fd);
	if (res->wire_bytes == 0)
		res->wire_bytes = res->frame_bytes;
	if (res->result == RES_OK)
		ev_log(ev, "committed: %llu bytes logical, %llu on the wire, %u rounds, downtime %llu ms",
		    (unsigned long long)res->logical_bytes, (unsigned long long)res->wire_bytes,
		    res->rounds, (unsigned long long)res->downtime_ms);
	else
		ev_log(ev, "%s: %s", result_name(res->result), res->err.msg);
	emit_done(&m);
	if (m.hs_timer != NULL)
		event_free(m.hs_timer);
	if (m.tick != NULL)
		event_free(m.tick);
	if (m.sigint != NULL)
		event_free(m.sigint);
	if (m.sigterm != NULL)
		event_free(m.sigterm);
	if (m.bev != NULL)
		bufferevent_free(m.bev);
	if (m.base != NULL)
		event_base_free(m.base);
	tls_ctx_free(m.tls);
	pager_fini(&m.pg);
	for (i = 0; i < m.ndev; i++)
		source_dev_close(&m.dev[i]);
	return res->result;
}
