/* ferry-send's log context: every log line of a migration carries its
 * session, the receiver's address, the state and, once it failed, the
 * reason (events.h). */
#include <stdio.h>
#include <string.h>

#include "mig.h"
#include "pagehash.h"

static void
mig_log_ctx(void *arg, struct ev_ctx *cx)
{
	struct mig *m = arg;
	const struct send_opts *o = m->o;
	char sid[33];

	/* A log line must not land behind the live progress line. */
	mig_clear_progress(m);
	hash_hex(m->session_id, sid);
	snprintf(cx->session, sizeof(cx->session), "%.16s", sid);
	if (o->to_port != 0)
		snprintf(cx->peer, sizeof(cx->peer), strchr(o->to_host, ':') != NULL ? "[%s]:%u" : "%s:%u",
		    o->to_host, o->to_port);
	if (m->st != 0)
		snprintf(cx->state, sizeof(cx->state), "%s", mstate_name(m->st));
	if (m->res->err.code != 0) {
		snprintf(cx->reason, sizeof(cx->reason), "%s",
		    result_name(result_from_err(m->res->err.code)));
		snprintf(cx->code, sizeof(cx->code), "%s", ferr_name(m->res->err.code));
	}
}

void
mig_log_attach(struct mig *m)
{
	m->ev->ctx = mig_log_ctx;
	m->ev->ctx_arg = m;
}

void
mig_log_detach(struct mig *m)
{
	if (m->ev->ctx_arg == m) {
		m->ev->ctx = NULL;
		m->ev->ctx_arg = NULL;
	}
}
