/* The sender's protocol: HELLO/MANIFEST negotiation, pre-copy rounds,
 * switchover, STATE and COMMIT, and continuing after a reconnect
 * (RESUME/RESUMED, proto/PROTOCOL.md 4.12). */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mig.h"
#include "qsource.h"
#include "msg.h"
#include "pagehash.h"
#include "resume.h"
#include "svirt.h"
#include "units.h"


static int enc_hello(struct wr *w, const void *p) { return msg_hello_encode(w, p); }
static int enc_resume(struct wr *w, const void *p) { return msg_resume_encode(w, p); }
static int enc_manifest(struct wr *w, const void *p) { return msg_manifest_encode(w, p); }
static int enc_commit(struct wr *w, const void *p) { return msg_commit_encode(w, p); }
static int enc_state(struct wr *w, const void *p) { return msg_state_encode(w, p); }
static int enc_pong(struct wr *w, const void *p) { return msg_seq_encode(w, FT_PONG, p); }
static int enc_domain(struct wr *w, const void *p) { return msg_domain_encode(w, p); }

/* Section 4.15: a libvirt domain goes first, so the receiver can check it
 * against its host before it accepts the manifest. */
static int
send_domain(struct mig *m, const struct msg_welcome *wel)
{
	struct msg_domain d;

	if (!(wel->caps & FERRY_CAP_DOMAIN)) {
		mig_finish(m, FERR_REFUSED, "the receiver takes no libvirt domains (start ferry-recv "
		    "with --libvirt-uri to migrate --domain %s)", m->o->domain);
		return -1;
	}
	svirt_domain_msg(m->o->virt, m->o, &d);
	if (link_send(m, enc_domain, &d, (size_t)d.xml_len + 4096) != 0) {
		mig_finish(m, FERR_INTERNAL, "could not queue DOMAIN (%u bytes of XML)", d.xml_len);
		return -1;
	}
	return 0;
}

/* The receiver's checks; with --check-only, its REFUSE that follows ends
 * the run with the outcome of the whole table. */
static void
on_checks(struct mig *m, const uint8_t *p, uint32_t n, struct ferr *e)
{
	struct msg_checks *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		mig_finish(m, FERR_NOMEM, "CHECKS");
		return;
	}
	if (msg_checks_decode(p, n, c, e) == 0)
		svirt_add_checks(m->o->virt, c, m->ev);
	free(c);
}

static void
check_only_done(struct mig *m)
{
	struct ferr e = { 0 };
	int rc;

	svirt_report(m->o->virt, m->ev, m->o->json);
	rc = svirt_result(m->o->virt, &e);
	if (rc == 0)
		mig_finish(m, 0, "ok");
	else
		mig_finish(m, rc, "%s", e.msg);
}

/* Capabilities this sender offers in HELLO: images can always start from
 * what the receiver already holds (section 4.19); a QEMU stream cannot. */
static uint32_t
offered_caps(const struct mig *m)
{
	return (m->o->virt != NULL ? FERRY_CAP_DOMAIN : 0) |
	    (m->q != NULL ? FERRY_CAP_QEMU : FERRY_CAP_REUSE);
}

void
phase_link_up(struct mig *m)
{
	struct ferr e = { 0 };

	if (m->st == MS_CONNECTING) {
		struct msg_hello h = { FERRY_VERSION, offered_caps(m), FERRY_MAX_FRAME_DEFAULT, m->seed };

		mig_set_state(m, MS_HELLO);
		if (link_send(m, enc_hello, &h, 64) != 0)
			mig_finish(m, FERR_INTERNAL, "could not queue HELLO");
		return;
	}
	if (m->st == MS_PAUSED) {
		struct msg_resume r;

		memset(&r, 0, sizeof(r));
		r.version = FERRY_VERSION;
		r.max_frame = FERRY_MAX_FRAME_DEFAULT;
		memcpy(r.session_id, m->session_id, sizeof(r.session_id));
		if (resume_proof(m->bev, m->resume_key, m->session_id, r.proof, &e) != 0) {
			link_down(m, e.code, e.msg);
			return;
		}
		mig_set_state(m, MS_RESUMING);
		if (link_send(m, enc_resume, &r, 96) != 0)
			mig_finish(m, FERR_INTERNAL, "could not queue RESUME");
	}
}

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
	json_object_object_add(o, "units_scanned", json_object_new_int64((int64_t)s->units_scanned));
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
	memset(&m->pg.round_st, 0, sizeof(m->pg.round_st));
}

static void
begin_round(struct mig *m)
{
	pager_begin_round(&m->pg);
	m->round_start_ms = mig_now_ms();
	m->round_scan_ms = 0;
}

/* Queue STATE from m->state_sent on, then COMMIT. */
static void
send_state_and_commit(struct mig *m)
{
	struct msg_commit c;
	struct msg_state s;
	struct ferr e = { 0 };
	uint64_t off;

	memset(&c, 0, sizeof(c));
	for (off = m->state_sent; off < m->state_size; off += s.len) {
		uint64_t chunk = m->max_payload - 64;

		s.offset = off;
		s.data = m->state_buf + off;
		s.len = (uint32_t)(m->state_size - off < chunk ? m->state_size - off : chunk);
		if (link_send(m, enc_state, &s, s.len + 32) != 0) {
			mig_finish(m, FERR_INTERNAL, "could not queue STATE");
			return;
		}
	}
	m->state_sent = m->state_size;
	if (m->state_size > 0 && state_digest(m->seed, m->state_buf, m->state_size, c.state_digest, &e) != 0) {
		mig_finish(m, e.code, "%s", e.msg);
		return;
	}
	if (pager_digests(&m->pg, &c, &e) != 0) {
		mig_finish(m, e.code, "%s", e.msg);
		return;
	}
	c.seq = m->pg.next_seq - 1;
	if (link_send(m, enc_commit, &c, 64 + 20 * FERRY_MAX_DEVICES) != 0) {
		mig_finish(m, FERR_INTERNAL, "could not queue COMMIT");
		return;
	}
	m->commit_sent = 1;
	mig_set_state(m, MS_COMMIT_WAIT);
}

static int
read_state(struct mig *m, struct ferr *e)
{
	uint64_t len = 0;

	if (m->o->state_file == NULL || m->state_buf != NULL)
		return 0;
	/* Read at pause time: the pause command may have just written it. */
	if (source_read_file(m->o->state_file, FERRY_STATE_SIZE_MAX, &m->state_buf, &len, e) != 0)
		return e->code;
	if (len != m->state_size)
		return ferr_set(e, FERR_IO, "state file '%s' changed size from %llu to %llu bytes",
		    m->o->state_file, (unsigned long long)m->state_size, (unsigned long long)len);
	return 0;
}

/* After round 1: what HAVE saved, per device (section 4.19). */
static void
log_reuse(struct mig *m)
{
	uint32_t i;

	for (i = 0; i < m->ndev; i++) {
		const struct source_dev *d = &m->dev[i];
		const struct pager_have *h = &m->pg.have[i];

		if (h->held == 0)
			continue;
		m->res->units_reused += h->reused;
		ev_log(m->ev, "reuse: %s: %llu of %llu %s already at the destination", d->desc.name,
		    (unsigned long long)h->reused, (unsigned long long)d->nunits,
		    d->desc.kind == DK_MEMORY ? "pages" : "blocks");
	}
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
	r.duration_ms = mig_now_ms() - m->round_start_ms;
	r.scan_ms = m->round_scan_ms;
	v = converge_round(&m->cv, &r);
	emit_round(m, &r);
	add_totals(m);
	if (r.round == 1)
		log_reuse(m);
	if (m->st == MS_FINAL) {
		if (read_state(m, &e) != 0) {
			mig_finish(m, e.code, "%s", e.msg);
			return;
		}
		send_state_and_commit(m);
		return;
	}
	if (v == CV_CONTINUE) {
		begin_round(m);
		return;
	}
	mig_clear_progress(m);
	if (r.round >= 2 && m->pg.round_st.units_sent == 0 && !guest_can_pause(&m->o->guest)) {
		/* Nothing to pause, and this round found nothing changed: a
		 * final round would be the same scan once more. */
		ev_log(m->ev, "switchover after round %u (nothing changed; no guest to pause)", r.round);
		m->pause_ms = mig_now_ms();
		mig_set_state(m, MS_FINAL);
		if (read_state(m, &e) != 0) {
			mig_finish(m, e.code, "%s", e.msg);
			return;
		}
		send_state_and_commit(m);
		return;
	}
	ev_log(m->ev, "switchover after round %u (%s; predicted pause %llu ms)", r.round,
	    v == CV_SWITCHOVER_CONVERGED ? "converged" :
	    v == CV_SWITCHOVER_STALLED ? "more rounds would not shorten the pause" :
	    "max rounds reached",
	    (unsigned long long)m->cv.predicted_ms);
	m->pause_ms = mig_now_ms();
	if (guest_pause((struct guestctl *)&m->o->guest, &e) != 0) {
		mig_finish(m, e.code, "%s", e.msg);
		return;
	}
	mig_set_state(m, MS_FINAL);
	begin_round(m);
}

/* Payload bytes for the next PAGES frame: what is left of the queue's
 * bound (so a capped link never has more than its moment of data queued),
 * but always room for one whole unit, and never over the negotiated
 * maximum. */
static uint32_t
frame_budget(const struct mig *m, size_t queued)
{
	size_t high = link_out_high(m), want = high > queued ? high - queued : 0;
	size_t least = 64;
	uint32_t i;

	for (i = 0; i < m->ndev; i++)
		if ((size_t)m->dev[i].desc.unit + 64 > least)
			least = (size_t)m->dev[i].desc.unit + 64;
	if (want < least)
		want = least;
	return want < m->max_payload ? (uint32_t)want : m->max_payload;
}

void
phase_pump(struct mig *m)
{
	struct evbuffer *out;

	if (m->q != NULL) {
		qsrc_pump(m);
		return;
	}
	if (m->bev == NULL)
		return;
	out = bufferevent_get_output(m->bev);
	while ((m->st == MS_PRECOPY || m->st == MS_FINAL) && evbuffer_get_length(out) < link_out_high(m)) {
		struct evbuffer_iovec v;
		struct wr w;
		uint64_t t0 = mig_now_ms();
		uint32_t budget = frame_budget(m, evbuffer_get_length(out));
		int rc;

		if (evbuffer_reserve_space(out, (ev_ssize_t)budget + FERRY_FRAME_HDR_LEN, &v, 1) < 1) {
			mig_finish(m, FERR_NOMEM, "output buffer");
			return;
		}
		wr_init(&w, v.iov_base, (size_t)budget + FERRY_FRAME_HDR_LEN);
		rc = pager_next_frame(&m->pg, &w, budget);
		m->round_scan_ms += mig_now_ms() - t0;
		if (rc < 0) {
			mig_finish(m, FERR_INTERNAL, "PAGES: a unit does not fit in a frame of %u bytes",
			    m->max_payload);
			return;
		}
		v.iov_len = w.off;
		evbuffer_commit_space(out, &v, 1);
		m->since_rekey += w.off;
		if (rc == PAGER_WINDOW_FULL)
			return;     /* wait for ACKs */
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
		mig_finish(m, FERR_NOMEM, "manifest");
		return;
	}
	man->ndev = m->ndev;
	for (i = 0; i < m->ndev; i++)
		man->dev[i] = m->dev[i].desc;
	if (m->q != NULL)
		qsrc_manifest(m, man);
	man->state_size = m->state_size;
	if (m->o->state_file != NULL) {
		base = strrchr(m->o->state_file, '/');
		snprintf(man->state_name, sizeof(man->state_name), "%s", base ? base + 1 : m->o->state_file);
	}
	if (link_send(m, enc_manifest, man, 64 + (size_t)m->ndev * (40 + FERRY_NAME_MAX)) != 0)
		mig_finish(m, FERR_INTERNAL, "could not queue MANIFEST");
	else
		mig_set_state(m, MS_MANIFEST);
	free(man);
}

/* The receiver broke the protocol: tell it why (ERROR), then fail. */
static void FERRY_PRINTF(3, 4)
peer_broke(struct mig *m, int code, const char *fmt, ...)
{
	char why[FERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	link_send_error(m, code, why);
	mig_finish(m, code, "%s", why);
}

static void
committed(struct mig *m)
{
	struct ferr e = { 0 };

	m->committed = 1;
	if (m->q != NULL) {
		qsrc_committed(m);
		mig_finish(m, 0, "ok");
		return;
	}
	m->res->downtime_ms = mig_now_ms() - m->pause_ms;
	if (guest_cleanup((struct guestctl *)&m->o->guest, &e) != 0)
		ev_log(m->ev, "committed, but cleaning up the source failed: %s", e.msg);
	mig_finish(m, 0, "ok");
}

static void
on_resumed(struct mig *m, const struct msg_resumed *r)
{
	enum mstate to = m->resume_to;

	ev_log(m->ev, "resumed session after %llu ms; receiver expects frame %llu",
	    (unsigned long long)(mig_now_ms() - m->cut_ms), (unsigned long long)r->next_seq);
	{
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "next_seq", json_object_new_int64((int64_t)r->next_seq));
		json_object_object_add(o, "outage_ms", json_object_new_int64((int64_t)(mig_now_ms() - m->cut_ms)));
		ev_json(m->ev, "resumed", o);
	}
	m->attempts = 0;
	m->resumes++;
	if (r->status == RSM_FAILED) {
		/* Known not committed: the guest runs on here. */
		m->commit_sent = 0;
		mig_finish(m, FERR_NET, "the receiver failed the session while the connection was down "
		    "(see its log)");
		return;
	}
	if (r->status == RSM_COMMITTED) {
		if (to != MS_COMMIT_WAIT) {
			peer_broke(m, FERR_PROTO_RANGE, "RESUMED: receiver says committed before COMMIT was sent");
			return;
		}
		committed(m);
		return;
	}
	if (to == MS_COMMIT_WAIT) {
		/* The receiver has not committed: COMMIT (or frames before it)
		 * was lost with the connection.  The guest is still paused, so
		 * finish the final round again from what the receiver holds and
		 * send COMMIT once more (section 6.1). */
		ev_log(m->ev, "receiver had not committed: sending the rest and COMMIT again");
		m->commit_sent = 0;
		to = MS_FINAL;
	}
	if (m->q != NULL ? qsrc_rollback(m, r->next_seq) != 0 : pager_rollback(&m->pg, r->next_seq) != 0) {
		peer_broke(m, FERR_PROTO_RANGE, "RESUMED: next_seq %llu outside the unacknowledged window",
		    (unsigned long long)r->next_seq);
		return;
	}
	if (r->state_offset > m->state_sent) {
		peer_broke(m, FERR_PROTO_RANGE, "RESUMED: state_offset %llu beyond what was sent",
		    (unsigned long long)r->state_offset);
		return;
	}
	m->state_sent = r->state_offset;
	m->last_ack_ms = mig_now_ms();
	mig_set_state(m, to);
	phase_pump(m);
}

void
phase_frame(struct mig *m, const struct frame_hdr *h, const uint8_t *p)
{
	struct ferr e = { 0 };
	struct msg_welcome wel;
	struct msg_accept acc;
	struct msg_resumed rsm;
	struct msg_text t;
	struct msg_seq sq;

	switch (h->type) {
	case FT_ERROR: {
		int code;

		if (msg_error_decode(p, h->len, &t, &e) != 0)
			break;
		code = -(int)t.code;
		if (m->st == MS_RESUMING && code == FERR_PROTO_RESUME && m->resume_to == MS_COMMIT_WAIT) {
			/* The receiver does not know the session: the outcome of
			 * COMMIT cannot be learned.  Never resume on a guess. */
			mig_finish(m, FERR_INDOUBT, "COMMIT was sent, and the receiver no longer knows the "
			    "session (%s); the guest is left paused: check the destination's log and "
			    "images, then resume or stop the source by hand", t.text);
			return;
		}
		if (code != FERR_VERIFY && code != FERR_ABORTED && code != FERR_TIMEOUT &&
		    code != FERR_IO && code != FERR_NOMEM && code != FERR_VIRT && code != FERR_QEMU &&
		    !ferr_is_refusal(code))
			code = FERR_NET;
		/* A receiver that sends ERROR has failed the session and removed
		 * its staging files: it did not commit, so the guest may run on
		 * here even if COMMIT was sent. */
		m->commit_sent = 0;
		mig_finish(m, code, "receiver: %s (%s)", t.text, ferr_name(-(int)t.code));
		return;
	}
	case FT_PING: {
		uint64_t now = mig_now_ms();

		if (msg_seq_decode(h->type, p, h->len, &sq, &e) != 0)
			break;
		if (now - m->ping_window_ms >= 1000) {
			m->ping_window_ms = now;
			m->pings_in_window = 0;
		}
		if (++m->pings_in_window > FERRY_PING_FLOOD_PER_SEC) {
			ferr_set(&e, FERR_PROTO_FLOOD, "PING: more than %u per second",
			    FERRY_PING_FLOOD_PER_SEC);
			break;
		}
		(void)link_send(m, enc_pong, &sq, 32);
		return;
	}
	case FT_PONG:
		if (msg_seq_decode(h->type, p, h->len, &sq, &e) != 0)
			break;
		return;
	case FT_WELCOME:
		if (m->st != MS_HELLO)
			goto state;
		if (msg_welcome_decode(p, h->len, &wel, &e) != 0)
			break;
		memcpy(m->session_id, wel.session_id, sizeof(m->session_id));
		/* Bits this side never offered are not ours to use (4.1). */
		m->caps = wel.caps & offered_caps(m);
		m->max_payload = wel.max_frame < FERRY_MAX_FRAME_DEFAULT ? wel.max_frame
									  : FERRY_MAX_FRAME_DEFAULT;
		if (resume_key_derive(m->bev, m->session_id, m->resume_key, &e) == 0)
			m->have_key = 1;
		else
			ev_log(m->ev, "%s: this session cannot resume after a cut", e.msg);
		if (m->q != NULL && !(wel.caps & FERRY_CAP_QEMU)) {
			mig_finish(m, FERR_REFUSED, "the receiver takes no QEMU streams (start ferry-recv "
			    "with --qemu-qmp PATH of the destination QEMU)");
			return;
		}
		if (m->o->virt != NULL && send_domain(m, &wel) != 0)
			return;
		send_manifest(m);
		return;
	case FT_CHECKS:
		if (m->st != MS_MANIFEST || m->o->virt == NULL)
			goto state;
		on_checks(m, p, h->len, &e);
		if (e.code != 0)
			break;
		return;
	case FT_ACCEPT:
		if (m->st != MS_MANIFEST)
			goto state;
		if (msg_accept_decode(p, h->len, &acc, &e) != 0)
			break;
		if (acc.next_seq != 1) {
			ferr_set(&e, FERR_PROTO_RANGE, "ACCEPT: next_seq %llu, a new session starts at 1",
			    (unsigned long long)acc.next_seq);
			break;
		}
		if (m->q == NULL && pager_have_complete(&m->pg, &e) != 0)
			break;
		mig_set_state(m, MS_PRECOPY);
		m->last_ack_ms = mig_now_ms();
		if (m->q != NULL) {
			qsrc_start(m);
			return;
		}
		begin_round(m);
		phase_pump(m);
		return;
	case FT_REFUSE:
		if (m->st != MS_MANIFEST)
			goto state;
		if (msg_refuse_decode(p, h->len, &t, &e) != 0)
			break;
		if (m->o->check_only && m->o->virt->have_dest) {
			check_only_done(m);
			return;
		}
		mig_finish(m, ferr_is_refusal(-(int)t.code) ? -(int)t.code : FERR_REFUSED,
		    "refused by receiver: %s (%s)", t.text, ferr_name(-(int)t.code));
		return;
	case FT_RESUMED:
		if (m->st != MS_RESUMING)
			goto state;
		if (msg_resumed_decode(p, h->len, &rsm, &e) != 0)
			break;
		on_resumed(m, &rsm);
		return;
	case FT_ACK:
		if (m->st != MS_PRECOPY && m->st != MS_FINAL && m->st != MS_COMMIT_WAIT)
			goto state;
		if (msg_seq_decode(h->type, p, h->len, &sq, &e) != 0)
			break;
		if (m->q != NULL) {
			if (sq.seq > qsrc_last_seq(m)) {
				ferr_set(&e, FERR_PROTO_RANGE, "ACK: seq %llu beyond last sent %llu",
				    (unsigned long long)sq.seq, (unsigned long long)qsrc_last_seq(m));
				break;
			}
			m->last_ack_ms = mig_now_ms();
			m->integrity_cuts = 0;
			qsrc_ack(m, sq.seq);
			return;
		}
		if (sq.seq >= m->pg.next_seq) {
			ferr_set(&e, FERR_PROTO_RANGE, "ACK: seq %llu beyond last sent %llu",
			    (unsigned long long)sq.seq, (unsigned long long)(m->pg.next_seq - 1));
			break;
		}
		if (sq.seq > m->pg.acked_seq) {
			m->last_ack_ms = mig_now_ms();
			m->integrity_cuts = 0;
		}
		pager_ack(&m->pg, sq.seq);
		phase_pump(m);
		return;
	case FT_HAVE: {
		struct msg_have hv;

		/* Section 4.19: only with CAP_REUSE, between MANIFEST and ACCEPT. */
		if (m->st != MS_MANIFEST)
			goto state;
		if (!(m->caps & FERRY_CAP_REUSE) || m->q != NULL) {
			ferr_set(&e, FERR_PROTO_STATE, "HAVE: capability REUSE was not negotiated");
			break;
		}
		if (msg_have_decode(p, h->len, &hv, &e) != 0 || pager_have(&m->pg, &hv, &e) != 0)
			break;
		return;
	}
	case FT_QRETURN:
		if (m->q == NULL || (m->st != MS_PRECOPY && m->st != MS_FINAL && m->st != MS_COMMIT_WAIT))
			goto state;
		qsrc_return(m, p, h->len);
		return;
	case FT_COMMITTED:
		if (m->st != MS_COMMIT_WAIT)
			goto state;
		if (msg_seq_decode(h->type, p, h->len, &sq, &e) != 0)
			break;
		committed(m);
		return;
	default:
		break;
	}
	if (e.code == 0)
		ferr_set(&e, FERR_PROTO_TYPE, "%s: not expected by a sender", frame_name(h->type));
	link_send_error(m, e.code, e.msg);
	mig_finish(m, e.code, "%s", e.msg);
	return;
state:
	ferr_set(&e, FERR_PROTO_STATE, "%s: not allowed in state %s", frame_name(h->type),
	    mstate_name(m->st));
	link_send_error(m, e.code, e.msg);
	mig_finish(m, e.code, "%s", e.msg);
}

void
phase_abort(struct mig *m, const char *why)
{
	if (m->commit_sent) {
		ev_log(m->ev, "abort refused: COMMIT is already sent (%s)", why);
		return;
	}
	link_send_error(m, FERR_ABORTED, why);
	if (m->bev != NULL)
		bufferevent_flush(m->bev, EV_WRITE, BEV_FLUSH);
	mig_finish(m, FERR_ABORTED, "%s", why);
}

struct json_object *
phase_status(struct mig *m)
{
	const struct pager_stats *s = &m->pg.round_st;
	struct json_object *o = json_object_new_object();
	char sid[33];

	hash_hex(m->session_id, sid);
	json_object_object_add(o, "session", json_object_new_string(sid));
	json_object_object_add(o, "state", json_object_new_string(mstate_name(m->st)));
	qsrc_add_json(m, o);
	if (m->st == MS_PAUSED || m->st == MS_RESUMING) {
		json_object_object_add(o, "resume_to", json_object_new_string(mstate_name(m->resume_to)));
		json_object_object_add(o, "paused_ms", json_object_new_int64((int64_t)(mig_now_ms() - m->cut_ms)));
	}
	json_object_object_add(o, "round", json_object_new_int((int)m->pg.round));
	json_object_object_add(o, "round_units_scanned", json_object_new_int64((int64_t)s->units_scanned));
	json_object_object_add(o, "total_units", json_object_new_int64((int64_t)m->total_units));
	json_object_object_add(o, "logical_bytes",
	    json_object_new_int64((int64_t)(m->res->logical_bytes + s->logical_bytes)));
	json_object_object_add(o, "wire_bytes", json_object_new_int64((int64_t)link_wire_bytes(m)));
	json_object_object_add(o, "acked_seq", json_object_new_int64((int64_t)m->pg.acked_seq));
	json_object_object_add(o, "sent_seq", json_object_new_int64((int64_t)(m->pg.next_seq - 1)));
	json_object_object_add(o, "dirty_rate", json_object_new_int64((int64_t)m->cv.dirty_rate));
	json_object_object_add(o, "bandwidth", json_object_new_int64((int64_t)m->bandwidth));
	json_object_object_add(o, "cuts", json_object_new_int((int)m->cuts));
	json_object_object_add(o, "elapsed_ms", json_object_new_int64((int64_t)(mig_now_ms() - m->start_ms)));
	return o;
}

void
phase_show_progress(struct mig *m)
{
	const struct pager_stats *s = &m->pg.round_st;
	uint64_t el = mig_now_ms() - m->round_start_ms, logical = m->res->logical_bytes + s->logical_bytes;
	double pct = m->total_units ? 100.0 * (double)s->units_scanned / (double)m->total_units : 0;
	double rate = el ? (double)s->logical_bytes / 1048576.0 / ((double)el / 1000.0) : 0;
	double wrate = el ? (double)s->frame_bytes / 1048576.0 / ((double)el / 1000.0) : 0;
	double eta = pct > 0 ? (double)el / 1000.0 * (100.0 - pct) / pct : 0;
	char tot[32];

	if (m->q != NULL && m->st != MS_PAUSED && m->st != MS_RESUMING) {
		qsrc_show_progress(m);
		return;
	}
	fmt_size(logical, tot, sizeof(tot));
	if (m->st == MS_PAUSED || m->st == MS_RESUMING)
		fprintf(stderr, "\r\033[K%-10s link down for %.1fs, reconnecting (attempt %u) | sent %s",
		    mstate_name(m->st), (double)(mig_now_ms() - m->cut_ms) / 1000.0, m->attempts, tot);
	else
		fprintf(stderr, "\r\033[K%-10s round %u %5.1f%% | %7.1f MiB/s logical %7.1f MiB/s wire | "
		    "dirty %5.1f MiB/s | sent %s | ETA %.0fs",
		    mstate_name(m->st), m->pg.round, pct, rate, wrate, (double)m->cv.dirty_rate / 1048576.0,
		    tot, eta);
	m->progress_shown = 1;
}
