/* ferry-send --metrics: the registry filled at scrape time from the
 * migration's state (finished rounds plus the one in progress), and the
 * --metrics-linger wait that lets a scraper read the final values. */
#include <event2/event.h>
#include <signal.h>

#include "clock.h"
#include "metrics.h"
#include "mig.h"
#include "result.h"

#define NRESULTS (RES_INDOUBT + 1)

static const char *const page_kinds[] = { "zero", "dedup", "lz4", "raw" };
static const double downtime_buckets[] = { 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5 };

static void
add_value(struct metrics *r, enum metric_type t, const char *name, const char *help, double v)
{
	metric_set(metrics_add(r, t, name, help), 0, v);
}

static void
add_pages(struct metrics *r, const struct mig *m)
{
	const struct pager_stats *s = &m->pg.round_st;
	struct metric *x = metrics_add(r, METRIC_COUNTER, "ferry_send_pages_total",
	    "Pages and disk blocks sent, by encoding.");

	metric_label(x, "kind", page_kinds, 4);
	metric_set(x, 0, (double)(m->res->pages_zero + s->zero));
	metric_set(x, 1, (double)(m->res->pages_dedup + s->dedup));
	metric_set(x, 2, (double)(m->res->pages_lz4 + s->lz4));
	metric_set(x, 3, (double)(m->res->pages_raw + s->raw));
}

static void
add_downtime(struct metrics *r, const struct mig *m)
{
	struct metric *x = metrics_add(r, METRIC_HISTOGRAM, "ferry_send_downtime_seconds",
	    "Guest pause at switchover, observed at commit.");

	metric_buckets(x, downtime_buckets, sizeof(downtime_buckets) / sizeof(downtime_buckets[0]));
	if (m->committed)
		metric_observe(x, (double)m->res->downtime_ms / 1000.0);
}

/* 1 for the result once the migration ended, else all 0. */
static void
add_result(struct metrics *r, const struct mig *m)
{
	static const char *names[NRESULTS];
	struct metric *x;
	uint32_t i;

	for (i = 0; i < NRESULTS; i++)
		names[i] = result_name((enum result)i);
	x = metrics_add(r, METRIC_GAUGE, "ferry_send_result",
	    "1 for the migration's result once it ended (as in the JSON done event).");
	metric_label(x, "result", names, NRESULTS);
	if (m->st == MS_DONE)
		metric_set(x, (uint32_t)m->res->result, 1);
}

static void
add_state(struct metrics *r, const struct mig *m)
{
	static const char *names[MS_DONE];
	struct metric *x;
	uint32_t i;

	for (i = 0; i < MS_DONE; i++)
		names[i] = mstate_name((enum mstate)(i + 1));
	x = metrics_add(r, METRIC_GAUGE, "ferry_send_state",
	    "1 for the migration's current state (as in the JSON state event).");
	metric_label(x, "state", names, MS_DONE);
	metric_set_by(x, mstate_name(m->st), 1);
}

void
mig_metrics(void *ctx, struct metrics *r)
{
	struct mig *m = ctx;

	add_value(r, METRIC_COUNTER, "ferry_send_logical_bytes_total",
	    "Bytes of pages and blocks sent (before encoding).",
	    (double)(m->res->logical_bytes + m->pg.round_st.logical_bytes));
	add_value(r, METRIC_COUNTER, "ferry_send_wire_bytes_total",
	    "TCP bytes the receiver acknowledged (TLS included).", (double)link_wire_bytes(m));
	add_pages(r, m);
	add_value(r, METRIC_GAUGE, "ferry_send_rounds",
	    "Rounds completed (pre-copy and the final one).", (double)m->res->rounds);
	add_value(r, METRIC_GAUGE, "ferry_send_dirty_rate_bytes_per_second",
	    "Guest dirty rate estimated from the last round.", (double)m->cv.dirty_rate);
	add_value(r, METRIC_COUNTER, "ferry_send_pauses_total",
	    "Network cuts that paused the migration.", (double)m->cuts);
	add_value(r, METRIC_COUNTER, "ferry_send_resumes_total",
	    "Sessions resumed after a cut.", (double)m->resumes);
	add_downtime(r, m);
	add_result(r, m);
	add_state(r, m);
}

static void
on_linger_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

/* Keep serving /metrics for --metrics-linger after the end (SIGINT or
 * SIGTERM ends the wait). */
void
mig_metrics_linger(struct mig *m)
{
	struct event *si, *st;
	struct timeval tv;

	if (m->metrics == NULL || m->o->metrics_linger_ms == 0)
		return;
	if (m->sigint != NULL)
		event_del(m->sigint);
	if (m->sigterm != NULL)
		event_del(m->sigterm);
	si = evsignal_new(m->base, SIGINT, on_linger_signal, m->base);
	st = evsignal_new(m->base, SIGTERM, on_linger_signal, m->base);
	if (si != NULL && st != NULL) {
		evsignal_add(si, NULL);
		evsignal_add(st, NULL);
		ev_log(m->ev, "serving metrics for %llu ms more (--metrics-linger)",
		    (unsigned long long)m->o->metrics_linger_ms);
		ms_to_timeval(&tv, m->o->metrics_linger_ms);
		event_base_loopexit(m->base, &tv);
		event_base_dispatch(m->base);
	}
	if (si != NULL)
		event_free(si);
	if (st != NULL)
		event_free(st);
}
