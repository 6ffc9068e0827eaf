/* Prometheus metrics: a small fixed registry of counters, gauges and
 * histograms (at most one label per metric, a few values of it), a pure
 * renderer to the text exposition format 0.0.4, and an HTTP endpoint on
 * libevent's evhttp (GET /metrics).
 *
 * The daemons fill the registry at scrape time from their own state (a
 * collect callback), so nothing is counted twice and nothing is kept in
 * step by hand. */
#ifndef FERRY_METRICS_H
#define FERRY_METRICS_H

#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define METRICS_MAX 32          /* metrics in one registry */
#define METRIC_VALUES_MAX 12    /* values of a metric's label */
#define METRIC_BUCKETS_MAX 12   /* histogram upper bounds (+Inf implied) */

enum metric_type { METRIC_COUNTER = 1, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metric {
	const char *name, *help;
	enum metric_type type;
	const char *label;                      /* label name, or NULL */
	const char *values[METRIC_VALUES_MAX];  /* its values, one sample each */
	uint32_t nvalues;
	double v[METRIC_VALUES_MAX];            /* sample values (v[0] unlabelled) */
	double bounds[METRIC_BUCKETS_MAX];      /* histogram: ascending upper bounds */
	uint32_t nbounds;
	uint64_t buckets[METRIC_BUCKETS_MAX + 1]; /* per bucket, not cumulative; last: +Inf */
	uint64_t count;
	double sum;
};

struct metrics {
	struct metric m[METRICS_MAX];
	uint32_t n;
};

void metrics_reset(struct metrics *r);
/* Add a metric; NULL when the registry is full (a programming error the
 * renderer then shows as a missing metric, never a crash). */
struct metric *metrics_add(struct metrics *r, enum metric_type t, const char *name,
    const char *help);
/* Give a counter or gauge one label with these values (one sample each,
 * in this order, all 0). */
void metric_label(struct metric *m, const char *label, const char *const *values, uint32_t n);
/* Set the sample of label value i (0 when unlabelled). */
void metric_set(struct metric *m, uint32_t i, double v);
/* The sample whose label value is value (no-op for an unknown value). */
void metric_set_by(struct metric *m, const char *value, double v);
/* Histogram upper bounds, ascending (at most METRIC_BUCKETS_MAX). */
void metric_buckets(struct metric *m, const double *bounds, uint32_t n);
void metric_observe(struct metric *m, double x);

/* The registry in text exposition format 0.0.4. */
int metrics_render(const struct metrics *r, FILE *out);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The HTTP side: GET /metrics on ADDR:PORT (port 0: any free one). */
struct event_base;
struct metrics_server;
typedef void (*metrics_collect_fn)(void *ctx, struct metrics *r);

int metrics_serve(struct event_base *base, const char *addr_port, metrics_collect_fn collect,
    void *ctx, struct metrics_server **out, struct ferr *e) FERRY_MUST_CHECK;
/* "ADDR:PORT" actually bound (the port filled in when 0 was asked). */
const char *metrics_server_addr(const struct metrics_server *s);
void metrics_server_free(struct metrics_server *s);

#endif
