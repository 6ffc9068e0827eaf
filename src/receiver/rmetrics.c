/* ferry-recv --metrics: the registry filled at scrape time from the
 * totals of finished sessions and closed connections plus the live ones,
 * so the counters move while a migration runs. */
#include <event2/bufferevent.h>
#include <stdint.h>

#include "metrics.h"
#include "recvd.h"
#include "result.h"
#include "sockinfo.h"

#define NRESULTS (RES_INDOUBT + 1)

static const char *const page_kinds[] = { "zero", "dedup", "lz4", "raw" };

/* Totals plus what the live sessions and connections have so far. */
static void
sum_live(const struct recvd *d, struct recv_totals *t, uint32_t *active)
{
	const struct rsession *rs;
	const struct rconn *c;

	*t = d->totals;
	*active = 0;
	for (rs = d->sessions; rs != NULL; rs = rs->next) {
		if (rs->finished)
			continue;   /* already in the totals */
		(*active)++;
		recv_totals_add(t, rs);
	}
	for (c = d->conns; c != NULL; c = c->next)
		if (c->bev != NULL)
			t->wire_bytes += sock_bytes_received(bufferevent_getfd(c->bev));
}

static void
add_counter(struct metrics *r, const char *name, const char *help, uint64_t v)
{
	metric_set(metrics_add(r, METRIC_COUNTER, name, help), 0, (double)v);
}

static void
add_results(struct metrics *r, const struct recv_totals *t)
{
	static const char *names[NRESULTS];
	struct metric *m;
	uint32_t i;

	for (i = 0; i < NRESULTS; i++)
		names[i] = result_name((enum result)i);
	m = metrics_add(r, METRIC_COUNTER, "ferry_recv_sessions_total",
	    "Sessions that ended, by result (as in the JSON done event).");
	metric_label(m, "result", names, NRESULTS);
	for (i = 0; i < NRESULTS; i++)
		metric_set(m, i, (double)t->by_result[i]);
}

static void
add_pages(struct metrics *r, const struct recv_totals *t)
{
	struct metric *m = metrics_add(r, METRIC_COUNTER, "ferry_recv_pages_total",
	    "Pages and disk blocks applied, by encoding.");

	metric_label(m, "kind", page_kinds, 4);
	metric_set(m, 0, (double)t->pages_zero);
	metric_set(m, 1, (double)t->pages_dedup);
	metric_set(m, 2, (double)t->pages_lz4);
	metric_set(m, 3, (double)t->pages_raw);
}

void
recvd_metrics(void *ctx, struct metrics *r)
{
	const struct recvd *d = ctx;
	struct recv_totals t;
	uint32_t active;

	sum_live(d, &t, &active);
	metric_set(metrics_add(r, METRIC_GAUGE, "ferry_recv_sessions_active",
	    "Sessions not finished (receiving or waiting for a resume)."), 0, active);
	add_results(r, &t);
	add_counter(r, "ferry_recv_logical_bytes_total",
	    "Bytes of pages and blocks applied (before encoding).", t.logical_bytes);
	add_counter(r, "ferry_recv_wire_bytes_total",
	    "TCP bytes received on migration connections (TLS included).", t.wire_bytes);
	add_pages(r, &t);
	add_counter(r, "ferry_recv_pauses_total",
	    "Network cuts that left a session waiting for the sender to resume.", t.cuts);
	add_counter(r, "ferry_recv_resumes_total", "Sessions resumed on a new connection.",
	    t.resumes);
}
