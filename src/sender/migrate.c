/* One migration from ferry-send's side: set-up, the event loop, and the
 * result.  The protocol is in phases.c, the connection in slink.c. */
#include "migrate.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ctl.h"
#include "metrics.h"
#include "mig.h"
#include "qsource.h"
#include "pagehash.h"
#include "tls.h"
#include "virt.h"

uint64_t
mig_now_ms(void)
{
	return clock_ms();
}

const char *
mstate_name(enum mstate s)
{
	switch (s) {
	case MS_CONNECTING: return "connecting";
	case MS_HELLO: return "negotiating";
	case MS_MANIFEST: return "preflight";
	case MS_PRECOPY: return "precopy";
	case MS_FINAL: return "switchover";
	case MS_COMMIT_WAIT: return "commit";
	case MS_PAUSED: return "paused";
	case MS_RESUMING: return "resuming";
	case MS_DONE: return "done";
	default: return "?";
	}
}

void
mig_set_state(struct mig *m, enum mstate s)
{
	struct json_object *o;

	if (m->st == s)
		return;
	m->st = s;
	o = json_object_new_object();
	json_object_object_add(o, "state", json_object_new_string(mstate_name(s)));
	ev_json(m->ev, "state", o);
}

void
mig_clear_progress(struct mig *m)
{
	if (m->progress_shown) {
		fprintf(stderr, "\r\033[K");
		m->progress_shown = 0;
	}
}

void
mig_finish(struct mig *m, int code, const char *fmt, ...)
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
		if (m->q != NULL)
			qsrc_failed(m, code);
		/* The source guest runs on unless the receiver may have
		 * committed (COMMIT sent, no answer): never resume on a guess. */
		if (m->o->guest.paused && !m->commit_sent) {
			if (guest_resume((struct guestctl *)&m->o->guest, &e2) != 0)
				ev_log(m->ev, "could not resume the guest: %s", e2.msg);
			else
				ev_log(m->ev, "guest resumed on the source");
		}
	}
	m->res->result = result_from_err(code);
	m->st = MS_DONE;
	event_base_loopexit(m->base, NULL);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	char why[64];

	(void)what;
	snprintf(why, sizeof(why), "aborted by signal %d", (int)sig);
	phase_abort(arg, why);
}

static void
on_drained(struct bufferevent *bev, void *arg)
{
	struct mig *m = arg;

	if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		event_base_loopbreak(m->base);
}

static void
on_drain_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	(void)what;
	event_base_loopbreak(((struct mig *)arg)->base);
}

/* Give a last ERROR frame (abort, failure) up to a second to leave. */
static void
drain_output(struct mig *m)
{
	struct timeval tv = { 2, 0 };

	if (m->bev == NULL || !m->tls_up || evbuffer_get_length(bufferevent_get_output(m->bev)) == 0)
		return;
	bufferevent_setcb(m->bev, NULL, on_drained, on_drain_event, m);
	bufferevent_setwatermark(m->bev, EV_WRITE, 0, 0);
	bufferevent_set_rate_limit(m->bev, NULL);  /* the cap no longer matters */
	bufferevent_disable(m->bev, EV_READ);
	if (m->tick != NULL)
		event_del(m->tick);
	event_base_loopexit(m->base, &tv);
	event_base_dispatch(m->base);
}

static int
open_sources(struct mig *m, struct ferr *e)
{
	const struct send_opts *o = m->o;
	uint32_t i, id = 1;
	int rc;

	if (o->mem != NULL) {
		if ((rc = source_dev_open(&m->dev[m->ndev], o->mem, id++, DK_MEMORY, o->mem_unit, e)) != 0) {
			m->ndev++;
			return rc;
		}
		m->ndev++;
	}
	for (i = 0; i < o->ndisks; i++) {
		if ((rc = source_dev_open(&m->dev[m->ndev], o->disks[i], id++, DK_DISK, o->disk_unit,
		    e)) != 0) {
			m->ndev++;  /* so it gets closed */
			return rc;
		}
		m->ndev++;
	}
	for (i = 0; i < m->ndev; i++) {
		uint32_t j;

		m->total_units += m->dev[i].nunits;
		m->total_bytes += m->dev[i].desc.size;
		for (j = 0; j < i; j++)
			if (strcmp(m->dev[i].desc.name, m->dev[j].desc.name) == 0)
				return ferr_set(e, FERR_USAGE,
				    "'%s' and '%s' have the same file name; the destination needs distinct names",
				    m->dev[j].path, m->dev[i].path);
	}
	if (m->total_units > FERRY_MAX_TOTAL_UNITS)
		return ferr_set(e, FERR_USAGE, "%llu pages and blocks in all; a session holds at most %llu "
		    "(use a larger --page-size or --block-size)", (unsigned long long)m->total_units,
		    (unsigned long long)FERRY_MAX_TOTAL_UNITS);
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

/* The source domain as libvirt sees it now: running (resumed after a
 * failure), shut off (destroyed after commit), undefined... */
static void
add_domain_state(struct mig *m, struct json_object *o)
{
	struct ferr e = { 0 };
	enum virt_state st;
	int exists = 0;
	const char *s;

	json_object_object_add(o, "domain", json_object_new_string(m->o->domain));
	if (virt_domain_exists(m->o->guest.virt, m->o->domain, &exists, &e) != 0)
		s = "unknown";
	else if (!exists)
		s = "undefined";
	else if (virt_state(m->o->guest.virt, m->o->domain, &st, &e) != 0)
		s = "unknown";
	else
		s = virt_state_name(st);
	json_object_object_add(o, "source_domain_state", json_object_new_string(s));
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
	qsrc_add_json(m, o);
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
	json_object_object_add(o, "units_reused", json_object_new_int64((int64_t)r->units_reused));
	json_object_object_add(o, "cuts", json_object_new_int((int)r->cuts));
	json_object_object_add(o, "rekeys", json_object_new_int((int)r->rekeys));
	json_object_object_add(o, "guest_paused", json_object_new_boolean(m->o->guest.paused));
	if (m->o->guest.virt != NULL)
		add_domain_state(m, o);
	ev_json(m->ev, "done", o);
}

enum result
migrate_run(const struct send_opts *o, struct events *ev, struct migrate_result *res)
{
	struct mig *m = calloc(1, sizeof(*m));
	struct tls_opts to;
	struct ferr e = { 0 };
	enum result r;
	uint32_t i;

	memset(res, 0, sizeof(*res));
	if (m == NULL) {
		ferr_set(&res->err, FERR_NOMEM, "out of memory");
		res->result = RES_ERROR;
		return res->result;
	}
	m->dl.fd = -1;
	m->o = o;
	m->ev = ev;
	m->res = res;
	mig_log_attach(m);
	m->fd = -1;
	m->start_ms = mig_now_ms();
	m->max_payload = FERRY_MAX_FRAME_DEFAULT;
	if (getrandom(&m->seed, sizeof(m->seed), 0) != sizeof(m->seed)) {
		ferr_set(&e, FERR_INTERNAL, "getrandom: %s", strerror(errno));
		goto fail;
	}
	if (o->qemu_qmp != NULL ? qsrc_open(m, &e) != 0 : open_sources(m, &e) != 0)
		goto fail;
	if (o->completion_per_gib_ms > 0) {
		/* Per GiB of guest memory + disks, as KubeVirt does. */
		((struct send_opts *)o)->completion_ms =
		    (uint64_t)((double)o->completion_per_gib_ms * (double)m->total_bytes / 1073741824.0);
		if (o->completion_ms == 0)
			((struct send_opts *)o)->completion_ms = 1;
	}
	if (o->qemu_qmp == NULL && (pager_init(&m->pg, m->dev, m->ndev, m->seed, &e) != 0 ||
	    pager_start_threads(&m->pg, o->threads, &e) != 0))
		goto fail;
	if (o->dirty_log != NULL && (dirtylog_open(&m->dl, o->dirty_log, &e) != 0 ||
	    pager_use_dirtylog(&m->pg, &m->dl, &e) != 0))
		goto fail;
	converge_init(&m->cv, o->downtime_ms, o->max_rounds);
	memset(&to, 0, sizeof(to));
	to.cert_file = o->cert;
	to.key_file = o->key;
	to.ca_file = o->ca;
	to.peer_name = o->peer_name;
	to.pins[0] = o->pins[0];
	to.pins[1] = o->pins[1];
	if (tls_ctx_new(0, &to, &m->tls, &e) != 0) {
		/* Certificates and keys are configuration: a usage error. */
		if (e.code != FERR_NOMEM)
			e.code = FERR_USAGE;
		goto fail;
	}
	m->base = event_base_new();
	if (m->base == NULL) {
		ferr_set(&e, FERR_NOMEM, "event loop");
		goto fail;
	}
	if (o->ctl_path != NULL && ctl_new(m->base, o->ctl_path, sctl_handle, m, &m->ctl, &e) != 0)
		goto fail;
	if (o->metrics_addr != NULL) {
		if (metrics_serve(m->base, o->metrics_addr, mig_metrics, m, &m->metrics, &e) != 0)
			goto fail;
		ev_log(ev, "metrics on http://%s/metrics", metrics_server_addr(m->metrics));
	}
	m->sigint = evsignal_new(m->base, SIGINT, on_signal, m);
	m->sigterm = evsignal_new(m->base, SIGTERM, on_signal, m);
	evsignal_add(m->sigint, NULL);
	evsignal_add(m->sigterm, NULL);
	mig_set_state(m, MS_CONNECTING);
	ev_log(ev, "connecting to %s:%u%s%s", o->to_host, o->to_port, o->bind_addr ? " from " : "",
	    o->bind_addr ? o->bind_addr : "");
	if (link_start(m, &e) != 0)
		goto fail;
	event_base_dispatch(m->base);
	if (m->st != MS_DONE)
		mig_finish(m, FERR_INTERNAL, "event loop ended early");
	drain_output(m);
	goto out;
fail:
	res->err = e;
	res->result = result_from_err(e.code);
out:
	mig_clear_progress(m);
	qsrc_fill_result(m);
	res->duration_ms = mig_now_ms() - m->start_ms;
	res->wire_bytes = link_wire_bytes(m);
	res->cuts = m->cuts;
	res->rekeys = m->rekeys;
	if (res->result == RES_OK && o->check_only)
		ev_log(ev, "check only: every check passed on both hosts; nothing was migrated");
	else if (res->result == RES_OK)
		ev_log(ev, "committed: %llu bytes logical, %llu on the wire, %u rounds, downtime %llu ms%s",
		    (unsigned long long)res->logical_bytes, (unsigned long long)res->wire_bytes,
		    res->rounds, (unsigned long long)res->downtime_ms, m->cuts ? " (resumed after cuts)" : "");
	else
		ev_error(ev, "%s: %s", result_name(res->result), res->err.msg);
	emit_done(m);
	link_close(m);
	link_stop_timers(m);
	mig_metrics_linger(m);
	qsrc_free(m);
	if (m->sigint != NULL)
		event_free(m->sigint);
	if (m->sigterm != NULL)
		event_free(m->sigterm);
	ctl_free(m->ctl);
	metrics_server_free(m->metrics);
	if (m->base != NULL)
		event_base_free(m->base);
	tls_ctx_free(m->tls);
	pager_fini(&m->pg);
	dirtylog_close(&m->dl);
	for (i = 0; i < m->ndev; i++)
		source_dev_close(&m->dev[i]);
	free(m->state_buf);
	r = res->result;
	mig_log_detach(m);
	free(m);
	return r;
}
