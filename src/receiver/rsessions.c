/* Receiver sessions: created by HELLO, kept through network cuts for
 * --outage-timeout so the sender can RESUME, failed (staging removed) when
 * the outage lasts longer, and kept a little after they end so a sender
 * that did not hear COMMITTED can learn the outcome. */
#include <errno.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"
#include "pagehash.h"
#include "recvd.h"
#include "result.h"
#include "rlog.h"
#include "rqemu.h"
#include "rvirt.h"

static void
random_bytes(void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t k = getrandom(p, n, 0);

		if (k <= 0)
			continue;
		p += k;
		n -= (size_t)k;
	}
}

static void
on_outage(evutil_socket_t fd, short what, void *arg)
{
	struct rsession *rs = arg;
	char why[FERR_MSG_MAX + 128];

	(void)fd;
	(void)what;
	if (rs->finished) {
		/* A finished session lingered for in-doubt senders: forget it. */
		struct recvd *d = rs->d;

		rsession_free(rs);
		recvd_maybe_exit(d);
		return;
	}
	snprintf(why, sizeof(why), "sender did not resume within the outage timeout (%llu ms) after: %s",
	    (unsigned long long)rs->d->o.outage_ms, rs->cut_reason);
	rsess_fail(rs->sess, FERR_TIMEOUT, why);
	rsession_finish(rs, FERR_TIMEOUT, why);
}

/* The session's sink: staging.c's files, plus the libvirt domain when the
 * sender named one (--libvirt-uri here). */
static int
sink_accept(void *ctx, const struct msg_manifest *m, uint64_t seed, const uint8_t sid[16],
    struct msg_text *refusal)
{
	if (m->ndev > 0 && m->dev[0].kind == DK_QEMU)
		return rqemu_accept(ctx, m, refusal);
	return staging_sink_ops.accept(((struct rsession *)ctx)->stg, m, seed, sid, refusal);
}

static int
sink_write(void *ctx, uint32_t dev, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e)
{
	if (((struct rsession *)ctx)->rq != NULL)
		return rqemu_write(ctx, dev, off, p, len, e);
	return staging_sink_ops.write(((struct rsession *)ctx)->stg, dev, off, p, len, e);
}

static int
sink_read(void *ctx, uint32_t dev, uint64_t off, uint8_t *p, uint32_t len, struct ferr *e)
{
	if (((struct rsession *)ctx)->rq != NULL)
		return rqemu_read(ctx, dev, off, p, len, e);
	return staging_sink_ops.read(((struct rsession *)ctx)->stg, dev, off, p, len, e);
}

static int
sink_qemu_blocks(void *ctx, const struct qitem_block *b, uint32_t n, struct ferr *e)
{
	return rqemu_blocks(ctx, b, n, e);
}

static int
sink_qemu_out(void *ctx, const uint8_t *p, size_t n, struct ferr *e)
{
	return rqemu_out(ctx, p, n, e);
}

static int
sink_state(void *ctx, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e)
{
	return staging_sink_ops.state(((struct rsession *)ctx)->stg, off, p, len, e);
}

static int
sink_commit(void *ctx, const struct msg_commit *c, struct ferr *e)
{
	struct rsession *rs = ctx;
	size_t len;
	int rc;

	if (rs->rq != NULL)
		return rqemu_commit(rs, e);
	if ((rc = staging_sink_ops.commit(rs->stg, c, e)) != 0)
		return rc;
	if (rsess_domain(rs->sess, &len) == NULL)
		return 0;
	if ((rc = rvirt_commit(rs, e)) != 0) {
		/* Nothing of the domain may stay: the sender resumes its source. */
		staging_unpublish(rs->stg);
		rs_log(rs, EV_ERROR, "session %.16s: %s; the committed images were removed", rs->idhex,
		    e->msg);
	}
	return rc;
}

static void
sink_abort(void *ctx)
{
	if (((struct rsession *)ctx)->rq != NULL) {
		rqemu_abort(ctx);
		return;
	}
	staging_sink_ops.abort(((struct rsession *)ctx)->stg);
}

/* Section 4.19: the existing destination file as the staging file's
 * starting point (--reuse), a range of units per call. */
static int
sink_reuse(void *ctx, uint32_t dev, uint64_t first, uint32_t count,
    uint8_t (*hash)[FERRY_HASH_LEN], struct ferr *e)
{
	struct rsession *rs = ctx;
	const struct msg_manifest *m = rsess_manifest(rs->sess);
	const struct dev_desc *d;
	uint64_t now = clock_ms();
	int rc;

	if (rs->rq != NULL || m == NULL || dev >= m->ndev)
		return 0;
	d = &m->dev[dev];
	rc = staging_sink_ops.reuse(rs->stg, dev, first, count, hash, e);
	if (rc == 1 && first == 0) {
		rs->reuse_ms = now;
		rs_log(rs, EV_INFO, "reuse: %s: the staging file starts from the existing destination "
		    "file (%llu %s to copy and hash)", d->name, (unsigned long long)dev_units(d),
		    d->kind == DK_MEMORY ? "pages" : "blocks");
	}
	if (rc == 1 && first + count == dev_units(d))
		rs_log(rs, EV_INFO, "reuse: %s: hashes of its %llu %s offered to the sender (%llu ms)",
		    d->name, (unsigned long long)dev_units(d), d->kind == DK_MEMORY ? "pages" : "blocks",
		    (unsigned long long)(clock_ms() - rs->reuse_ms));
	return rc;
}

static int
sink_domain_check(void *ctx, const struct msg_manifest *m, const struct msg_domain *dom,
    struct msg_checks *out, struct msg_text *refusal)
{
	return rvirt_check(ctx, m, dom, out, refusal);
}

static const struct rsess_sink_ops session_sink_ops = {
	.accept = sink_accept,
	.write = sink_write,
	.read = sink_read,
	.state = sink_state,
	.commit = sink_commit,
	.abort = sink_abort,
	.domain_check = sink_domain_check,
	.qemu_blocks = sink_qemu_blocks,
	.qemu_out = sink_qemu_out,
	.reuse = sink_reuse,
};

struct rsession *
rsession_new(struct recvd *d, struct rconn *c, struct ferr *e)
{
	struct rsess_config rc = { FERRY_MAX_FRAME_DEFAULT, random_bytes,
	    (d->virt != NULL ? FERRY_CAP_DOMAIN : 0) | (d->o.qemu_qmp != NULL ? FERRY_CAP_QEMU : 0) |
	    (d->o.reuse ? FERRY_CAP_REUSE : 0) };
	struct staging_opts so = { d->o.dest_dir, d->o.expect_disks };
	struct rsession *rs = calloc(1, sizeof(*rs));

	if (rs == NULL) {
		ferr_set(e, FERR_NOMEM, "session");
		return NULL;
	}
	rs->d = d;
	rs->stg = staging_new(&so);
	rs->sess = rs->stg ? rsess_new(&rc, &session_sink_ops, rs) : NULL;
	rs->outage = evtimer_new(d->base, on_outage, rs);
	if (rs->sess == NULL || rs->outage == NULL) {
		rsess_free(rs->sess);
		staging_free(rs->stg);
		if (rs->outage != NULL)
			event_free(rs->outage);
		free(rs);
		ferr_set(e, FERR_NOMEM, "session");
		return NULL;
	}
	rs->started_ms = rs->last_rx_ms = rs->last_progress_ms = clock_ms();
	snprintf(rs->peer_name, sizeof(rs->peer_name), "%s", c->peer_name);
	snprintf(rs->peer_addr, sizeof(rs->peer_addr), "%s", c->addr);
	rs->conn = c;
	c->rs = rs;
	rs->next = d->sessions;
	if (d->sessions != NULL)
		d->sessions->prev = rs;
	d->sessions = rs;
	d->active++;
	return rs;
}

struct rsession *
rsession_find(struct recvd *d, const uint8_t id[FERRY_SESSION_ID_LEN])
{
	struct rsession *rs;

	for (rs = d->sessions; rs != NULL; rs = rs->next)
		if (rs->have_key && memcmp(rs->id, id, FERRY_SESSION_ID_LEN) == 0)
			return rs;
	return NULL;
}

void
rsession_free(struct rsession *rs)
{
	struct recvd *d;

	if (rs == NULL)
		return;
	d = rs->d;
	if (!rs->finished) {
		rsess_fail(rs->sess, FERR_ABORTED, "receiver shutting down");
		rsession_finish(rs, FERR_ABORTED, "receiver shutting down");
	}
	if (rs->conn != NULL) {
		rs->conn->rs = NULL;
		rs->conn = NULL;
	}
	event_free(rs->outage);
	rsess_free(rs->sess);
	rqemu_free(rs);
	staging_free(rs->stg);
	if (rs->prev != NULL)
		rs->prev->next = rs->next;
	else
		d->sessions = rs->next;
	if (rs->next != NULL)
		rs->next->prev = rs->prev;
	free(rs);
}

void
rsession_cut(struct rsession *rs, const char *why)
{
	struct recvd *d = rs->d;
	enum rsess_state st = rsess_state(rs->sess);
	struct timeval tv;
	uint64_t now = clock_ms(), left;

	rs->conn = NULL;
	if (rs->finished) {
		/* Ended already: linger only so a sender in doubt can ask. */
		if (!evtimer_pending(rs->outage, NULL)) {
			ms_to_timeval(&tv, rs->have_key && !rs->delivered ? d->o.outage_ms : 0);
			evtimer_add(rs->outage, &tv);
		}
		return;
	}
	if (!rsess_resumable(rs->sess) || st != RS_RECEIVING || !rs->have_key) {
		rsess_fail(rs->sess, FERR_NET, why);
		rsession_finish(rs, FERR_NET, why);
		return;
	}
	rsess_detach(rs->sess);
	snprintf(rs->cut_reason, sizeof(rs->cut_reason), "%s", why);
	rs->cut_ms = now;
	rs->cuts++;
	/* The outage counts from the last byte the sender got through. */
	left = rs->last_rx_ms + d->o.outage_ms > now ? rs->last_rx_ms + d->o.outage_ms - now : 0;
	ms_to_timeval(&tv, left);
	evtimer_add(rs->outage, &tv);
	rs_log(rs, EV_WARN, "session %.16s: connection lost (%s); waiting up to %llu ms for the sender to resume",
	    rs->idhex, why, (unsigned long long)left);
	{
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "session", json_object_new_string(rs->idhex));
		json_object_object_add(o, "reason", json_object_new_string(why));
		json_object_object_add(o, "applied_seq", json_object_new_int64((int64_t)rs->last_seq));
		ev_json(&d->ev, "paused", o);
	}
}

static void
run_on_commit(struct rsession *rs)
{
	struct recvd *d = rs->d;
	char key[32];
	uint32_t i, n = staging_count(rs->stg);
	pid_t pid;

	if (d->o.on_commit == NULL)
		return;
	pid = fork();
	if (pid < 0) {
		rs_log(rs, EV_ERROR, "on-commit: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		setenv("FERRY_SESSION", rs->idhex, 1);
		setenv("FERRY_DEST_DIR", d->o.dest_dir, 1);
		snprintf(key, sizeof(key), "%u", n);
		setenv("FERRY_NFILES", key, 1);
		for (i = 0; i < n; i++) {
			snprintf(key, sizeof(key), "FERRY_PATH_%u", i);
			setenv(key, staging_final_path(rs->stg, i), 1);
		}
		execl("/bin/sh", "sh", "-c", d->o.on_commit, (char *)NULL);
		_exit(127);
	}
	/* Not waited for here: the daemon keeps serving (and COMMITTED goes
	 * out) while the hook runs; main.c reaps it on SIGCHLD. */
	rs_log(rs, EV_INFO, "session %.16s: on-commit command started (pid %d)", rs->idhex, (int)pid);
}

void
recv_totals_add(struct recv_totals *t, const struct rsession *rs)
{
	const struct rsess_stats *st = rsess_stats(rs->sess);

	t->logical_bytes += st->logical_bytes;
	t->pages_zero += st->pages_zero;
	t->pages_dedup += st->pages_dedup;
	t->pages_lz4 += st->pages_lz4;
	t->pages_raw += st->pages_raw;
	t->cuts += rs->cuts;
	t->resumes += rs->resumes;
}

void
rsession_finish(struct rsession *rs, int code, const char *why)
{
	struct recvd *d = rs->d;
	const struct rsess_stats *st = rsess_stats(rs->sess);
	enum result r = result_from_err(code);
	struct json_object *o;
	struct history_ent *h;
	uint64_t dur = clock_ms() - rs->started_ms;
	struct timeval tv;

	if (rs->finished)
		return;
	rs->finished = 1;
	rs->result = r;
	snprintf(rs->error, sizeof(rs->error), "%s", r == RES_OK ? "" : why);
	d->active--;
	d->served++;
	d->last_result = r;
	/* A finished session's counters move from the live ones to the totals. */
	recv_totals_add(&d->totals, rs);
	if ((unsigned)r < sizeof(d->totals.by_result) / sizeof(d->totals.by_result[0]))
		d->totals.by_result[r]++;
	if (r == RES_OK) {
		run_on_commit(rs);
		rs_log(rs, EV_INFO, "session %.16s from %s: committed (%llu bytes applied, %llu ms, %u cuts)",
		    rs->idhex, rs->peer_addr, (unsigned long long)st->logical_bytes,
		    (unsigned long long)dur, rs->cuts);
	} else {
		rs_log_code(rs, EV_ERROR, code, "session %.16s from %s: %s: %s", rs->idhex[0] ? rs->idhex : "(new)",
		    rs->peer_addr, result_name(r), why);
	}
	o = json_object_new_object();
	json_object_object_add(o, "result", json_object_new_string(result_name(r)));
	if (r != RES_OK) {
		json_object_object_add(o, "error", json_object_new_string(why));
		json_object_object_add(o, "code", json_object_new_string(ferr_name(code)));
	}
	json_object_object_add(o, "session", json_object_new_string(rs->idhex));
	json_object_object_add(o, "peer", json_object_new_string(rs->peer_addr));
	json_object_object_add(o, "peer_name", json_object_new_string(rs->peer_name));
	json_object_object_add(o, "logical_bytes", json_object_new_int64((int64_t)st->logical_bytes));
	json_object_object_add(o, "pages_zero", json_object_new_int64((int64_t)st->pages_zero));
	json_object_object_add(o, "pages_dedup", json_object_new_int64((int64_t)st->pages_dedup));
	json_object_object_add(o, "pages_lz4", json_object_new_int64((int64_t)st->pages_lz4));
	json_object_object_add(o, "pages_raw", json_object_new_int64((int64_t)st->pages_raw));
	json_object_object_add(o, "rounds", json_object_new_int((int)st->round));
	json_object_object_add(o, "units_offered", json_object_new_int64((int64_t)st->units_offered));
	json_object_object_add(o, "cuts", json_object_new_int((int)rs->cuts));
	json_object_object_add(o, "duration_ms", json_object_new_int64((int64_t)dur));
	if (rs->domain[0] != '\0') {
		json_object_object_add(o, "domain", json_object_new_string(rs->domain));
		json_object_object_add(o, "domain_state", json_object_new_string(
		    rs->domain_state[0] != '\0' ? rs->domain_state : "not defined"));
	}
	{
		struct json_object *qo = rqemu_status(rs);

		if (qo != NULL)
			json_object_object_add(o, "qemu", qo);
	}
	ev_json(&d->ev, "done", o);
	if (d->qemu_owner == rs)
		d->qemu_owner = NULL;   /* the destination QEMU is free for the next one */
	if (d->o.history > 0) {
		h = &d->hist[d->nhist % d->o.history];
		memset(h, 0, sizeof(*h));
		snprintf(h->idhex, sizeof(h->idhex), "%s", rs->idhex);
		snprintf(h->peer, sizeof(h->peer), "%s", rs->peer_addr);
		h->result = r;
		snprintf(h->error, sizeof(h->error), "%s", rs->error);
		h->bytes = st->logical_bytes;
		h->duration_ms = dur;
		h->cuts = rs->cuts;
		d->nhist++;
	}
	/* Linger so that a sender which lost the outcome (COMMITTED, or the
	 * ERROR) with the connection can ask for it when it comes back. */
	if (rs->conn == NULL) {
		evtimer_del(rs->outage);
		ms_to_timeval(&tv, rs->have_key ? d->o.outage_ms : 0);
		evtimer_add(rs->outage, &tv);
	}
	recvd_maybe_exit(d);
}

void
recvd_maybe_exit(struct recvd *d)
{
	/* --once: done when the session has ended and its connection has
	 * flushed the last frame and closed. */
	struct rsession *rs;

	if (d->conns != NULL)
		return;
	if (d->stopping) {
		event_base_loopexit(d->base, NULL);
		return;
	}
	if (!d->o.once || d->served == 0)
		return;
	/* A committed session whose sender has not confirmed the end may
	 * still be asked for the outcome (in-doubt COMMIT): wait for it. */
	for (rs = d->sessions; rs != NULL; rs = rs->next)
		if (rs->finished && rs->result == RES_OK && rs->have_key && !rs->delivered &&
		    evtimer_pending(rs->outage, NULL))
			return;
	event_base_loopexit(d->base, NULL);
}

void
rsession_abort(struct rsession *rs, const char *why)
{
	if (rs->finished)
		return;
	rsess_fail(rs->sess, FERR_ABORTED, why);
	if (rs->conn != NULL) {
		struct rconn *c = rs->conn;

		/* Tell the sender why before closing. */
		rconn_send_error(c, FERR_ABORTED, why);
		rsession_finish(rs, FERR_ABORTED, why);
		rconn_close_after_flush(c);
		return;
	}
	rsession_finish(rs, FERR_ABORTED, why);
}

struct json_object *
rsession_status(const struct rsession *rs)
{
	const struct rsess_stats *st = rsess_stats(rs->sess);
	struct json_object *o = json_object_new_object();
	uint64_t now = clock_ms();
	uint64_t el = now - rs->started_ms;

	json_object_object_add(o, "session", json_object_new_string(rs->idhex));
	json_object_object_add(o, "peer", json_object_new_string(rs->peer_addr));
	json_object_object_add(o, "peer_name", json_object_new_string(rs->peer_name));
	json_object_object_add(o, "state", json_object_new_string(
	    rs->conn == NULL && !rs->finished ? "paused" : rsess_state_name(rsess_state(rs->sess))));
	json_object_object_add(o, "logical_bytes", json_object_new_int64((int64_t)st->logical_bytes));
	json_object_object_add(o, "rate", json_object_new_int64(el ? (int64_t)(st->logical_bytes * 1000 / el) : 0));
	json_object_object_add(o, "round", json_object_new_int((int)st->round));
	json_object_object_add(o, "applied_seq", json_object_new_int64((int64_t)rs->last_seq));
	json_object_object_add(o, "cuts", json_object_new_int((int)rs->cuts));
	if (rs->conn == NULL && !rs->finished)
		json_object_object_add(o, "paused_ms", json_object_new_int64((int64_t)(now - rs->cut_ms)));
	json_object_object_add(o, "elapsed_ms", json_object_new_int64((int64_t)el));
	return o;
}

struct json_object *
recvd_ctl(void *ctx, int argc, char **argv)
{
	struct recvd *d = ctx;
	struct rsession *rs, *hit = NULL;
	struct json_object *o, *a;
	uint32_t i, n;

	if (strcmp(argv[0], "status") == 0) {
		o = json_object_new_object();
		a = json_object_new_array();
		for (rs = d->sessions; rs != NULL; rs = rs->next)
			if (!rs->finished)
				json_object_array_add(a, rsession_status(rs));
		json_object_object_add(o, "sessions", a);
		a = json_object_new_array();
		n = d->nhist < d->o.history ? d->nhist : d->o.history;
		for (i = 0; i < n; i++) {
			const struct history_ent *h = &d->hist[(d->nhist - 1 - i) % d->o.history];
			struct json_object *x = json_object_new_object();

			json_object_object_add(x, "session", json_object_new_string(h->idhex));
			json_object_object_add(x, "peer", json_object_new_string(h->peer));
			json_object_object_add(x, "result", json_object_new_string(result_name((enum result)h->result)));
			if (h->error[0])
				json_object_object_add(x, "error", json_object_new_string(h->error));
			json_object_object_add(x, "logical_bytes", json_object_new_int64((int64_t)h->bytes));
			json_object_object_add(x, "duration_ms", json_object_new_int64((int64_t)h->duration_ms));
			json_object_object_add(x, "cuts", json_object_new_int((int)h->cuts));
			json_object_array_add(a, x);
		}
		json_object_object_add(o, "history", a);
		json_object_object_add(o, "active", json_object_new_int((int)d->active));
		return o;
	}
	if (strcmp(argv[0], "abort") == 0) {
		if (argc != 2)
			return ctl_error("usage: abort SESSION (a session id or a unique prefix of it)");
		for (rs = d->sessions; rs != NULL; rs = rs->next) {
			if (rs->finished || strncmp(rs->idhex, argv[1], strlen(argv[1])) != 0)
				continue;
			if (hit != NULL)
				return ctl_error("session prefix '%s' is ambiguous", argv[1]);
			hit = rs;
		}
		if (hit == NULL)
			return ctl_error("no running session '%s'", argv[1]);
		rsession_abort(hit, "aborted by the receiver's operator");
		o = json_object_new_object();
		json_object_object_add(o, "aborted", json_object_new_string(hit->idhex));
		return o;
	}
	return ctl_error("unknown command '%s' (status, abort SESSION)", argv[0]);
}
