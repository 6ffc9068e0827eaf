/* Log lines of ferry-recv with the session's fields (rlog.h). */
#include "rlog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "recvd.h"
#include "result.h"

void
rs_log_ctx(const struct rsession *rs, struct ev_ctx *cx)
{
	memset(cx, 0, sizeof(*cx));
	snprintf(cx->session, sizeof(cx->session), "%.16s", rs->idhex);
	snprintf(cx->peer, sizeof(cx->peer), "%s", rs->peer_addr);
	if (rs->sess != NULL)
		snprintf(cx->state, sizeof(cx->state), "%s", rs->conn == NULL && !rs->finished
		    ? "paused" : rsess_state_name(rsess_state(rs->sess)));
	if (rs->finished && rs->result != RES_OK)
		snprintf(cx->reason, sizeof(cx->reason), "%s", result_name((enum result)rs->result));
}

static void
vlog(const struct rsession *rs, enum ev_level lv, int code, const char *fmt, va_list ap)
{
	struct ev_ctx cx;
	char msg[FERR_MSG_MAX + 512];

	if (!ev_enabled(&rs->d->ev, lv))
		return;
	rs_log_ctx(rs, &cx);
	if (code != 0) {
		snprintf(cx.reason, sizeof(cx.reason), "%s", result_name(result_from_err(code)));
		snprintf(cx.code, sizeof(cx.code), "%s", ferr_name(code));
	}
	vsnprintf(msg, sizeof(msg), fmt, ap);
	ev_logx(&rs->d->ev, lv, &cx, "%s", msg);
}

void
rs_log(const struct rsession *rs, enum ev_level lv, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(rs, lv, 0, fmt, ap);
	va_end(ap);
}

void
rs_log_code(const struct rsession *rs, enum ev_level lv, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(rs, lv, code, fmt, ap);
	va_end(ap);
}

void
rc_log(const struct rconn *c, enum ev_level lv, const char *fmt, ...)
{
	struct ev_ctx cx;
	char msg[FERR_MSG_MAX + 512];
	va_list ap;

	if (!ev_enabled(&c->d->ev, lv))
		return;
	if (c->rs != NULL)
		rs_log_ctx(c->rs, &cx);
	else
		memset(&cx, 0, sizeof(cx));
	snprintf(cx.peer, sizeof(cx.peer), "%s", c->addr);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ev_logx(&c->d->ev, lv, &cx, "%s", msg);
}
