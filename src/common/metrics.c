#include "metrics.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <math.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "units.h"

/* ---- the registry ------------------------------------------------------- */

void
metrics_reset(struct metrics *r)
{
	memset(r, 0, sizeof(*r));
}

struct metric *
metrics_add(struct metrics *r, enum metric_type t, const char *name, const char *help)
{
	struct metric *m;

	if (r->n >= METRICS_MAX)
		return NULL;
	m = &r->m[r->n++];
	memset(m, 0, sizeof(*m));
	m->type = t;
	m->name = name;
	m->help = help;
	return m;
}

void
metric_label(struct metric *m, const char *label, const char *const *values, uint32_t n)
{
	uint32_t i;

	if (m == NULL || m->type == METRIC_HISTOGRAM)
		return;
	if (n > METRIC_VALUES_MAX)
		n = METRIC_VALUES_MAX;
	m->label = label;
	for (i = 0; i < n; i++) {
		m->values[i] = values[i];
		m->v[i] = 0;
	}
	m->nvalues = n;
}

void
metric_set(struct metric *m, uint32_t i, double v)
{
	if (m == NULL || i >= (m->label != NULL ? m->nvalues : 1))
		return;
	m->v[i] = v;
}

void
metric_set_by(struct metric *m, const char *value, double v)
{
	uint32_t i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nvalues; i++)
		if (strcmp(m->values[i], value) == 0)
			m->v[i] = v;
}

void
metric_buckets(struct metric *m, const double *bounds, uint32_t n)
{
	if (m == NULL || m->type != METRIC_HISTOGRAM)
		return;
	if (n > METRIC_BUCKETS_MAX)
		n = METRIC_BUCKETS_MAX;
	memcpy(m->bounds, bounds, n * sizeof(*bounds));
	m->nbounds = n;
}

void
metric_observe(struct metric *m, double x)
{
	uint32_t i;

	if (m == NULL || m->type != METRIC_HISTOGRAM)
		return;
	for (i = 0; i < m->nbounds && x > m->bounds[i]; i++)
		;
	m->buckets[i]++;
	m->count++;
	m->sum += x;
}

/* ---- the text format ---------------------------------------------------- */

static const char *
type_name(enum metric_type t)
{
	switch (t) {
	case METRIC_COUNTER: return "counter";
	case METRIC_GAUGE: return "gauge";
	case METRIC_HISTOGRAM: return "histogram";
	default: return "untyped";
	}
}

/* Integers as integers, the rest in the shortest form that reads back. */
static const char *
fmt_number(double v, char *buf, size_t len)
{
	int prec;

	if (isnan(v))
		return "NaN";
	if (isinf(v))
		return v > 0 ? "+Inf" : "-Inf";
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(buf, len, "%.0f", v);
		return buf;
	}
	for (prec = 1; prec < 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return buf;
	}
	snprintf(buf, len, "%.17g", v);
	return buf;
}

static void
put_number(FILE *out, double v)
{
	char buf[40];

	fputs(fmt_number(v, buf, sizeof(buf)), out);
}

/* HELP text: backslash and newline escaped; label values also '"'. */
static void
put_escaped(FILE *out, const char *s, int quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else if (quote && *s == '"')
			fputs("\\\"", out);
		else
			fputc(*s, out);
	}
}

static void
put_labelled(FILE *out, const char *name, const char *suffix, const char *label,
    const char *value, double v)
{
	fprintf(out, "%s%s", name, suffix);
	if (label != NULL) {
		fprintf(out, "{%s=\"", label);
		put_escaped(out, value, 1);
		fputs("\"}", out);
	}
	fputc(' ', out);
	put_number(out, v);
	fputc('\n', out);
}

static void
put_histogram(FILE *out, const struct metric *m)
{
	uint64_t cum = 0;
	uint32_t i;
	char le[40];

	for (i = 0; i <= m->nbounds; i++) {
		cum += m->buckets[i];
		fprintf(out, "%s_bucket{le=\"", m->name);
		fputs(i < m->nbounds ? fmt_number(m->bounds[i], le, sizeof(le)) : "+Inf", out);
		fprintf(out, "\"} %llu\n", (unsigned long long)cum);
	}
	put_labelled(out, m->name, "_sum", NULL, "", m->sum);
	put_labelled(out, m->name, "_count", NULL, "", (double)m->count);
}

static void
put_metric(FILE *out, const struct metric *m)
{
	uint32_t i;

	fprintf(out, "# HELP %s ", m->name);
	put_escaped(out, m->help, 0);
	fprintf(out, "\n# TYPE %s %s\n", m->name, type_name(m->type));
	if (m->type == METRIC_HISTOGRAM) {
		put_histogram(out, m);
		return;
	}
	if (m->label == NULL) {
		put_labelled(out, m->name, "", NULL, "", m->v[0]);
		return;
	}
	for (i = 0; i < m->nvalues; i++)
		put_labelled(out, m->name, "", m->label, m->values[i], m->v[i]);
}

int
metrics_render(const struct metrics *r, FILE *out)
{
	uint32_t i;

	for (i = 0; i < r->n; i++)
		put_metric(out, &r->m[i]);
	return ferror(out) ? -1 : 0;
}

/* ---- HTTP --------------------------------------------------------------- */

struct metrics_server {
	struct evhttp *http;
	metrics_collect_fn collect;
	void *ctx;
	struct metrics reg;
	char addr[300];
};

static void
reply_text(struct evhttp_request *req, int code, const char *reason, const char *text, size_t len)
{
	struct evbuffer *b = evbuffer_new();

	if (b == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	evbuffer_add(b, text, len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
	    code == HTTP_OK ? METRICS_CONTENT_TYPE : "text/plain; charset=utf-8");
	evhttp_send_reply(req, code, reason, b);
	evbuffer_free(b);
}

static void
on_metrics(struct evhttp_request *req, void *arg)
{
	struct metrics_server *s = arg;
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	metrics_reset(&s->reg);
	s->collect(s->ctx, &s->reg);
	f = open_memstream(&text, &len);
	if (f == NULL) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	if (metrics_render(&s->reg, f) != 0 || fclose(f) != 0) {
		free(text);
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	reply_text(req, HTTP_OK, "OK", text, len);
	free(text);
}

static void
on_other(struct evhttp_request *req, void *arg)
{
	static const char msg[] = "not found: metrics are at /metrics\n";

	(void)arg;
	reply_text(req, HTTP_NOTFOUND, "Not Found", msg, sizeof(msg) - 1);
}

/* The port the kernel gave (for port 0). */
static uint16_t
bound_port(struct evhttp_bound_socket *h)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char port[8];

	if (getsockname(evhttp_bound_socket_get_fd(h), (struct sockaddr *)&ss, &sl) != 0 ||
	    getnameinfo((struct sockaddr *)&ss, sl, NULL, 0, port, sizeof(port), NI_NUMERICSERV) != 0)
		return 0;
	return (uint16_t)atoi(port);
}

int
metrics_serve(struct event_base *base, const char *addr_port, metrics_collect_fn collect,
    void *ctx, struct metrics_server **out, struct ferr *e)
{
	struct metrics_server *s;
	struct evhttp_bound_socket *h;
	char host[256];
	uint16_t port;
	int rc;

	*out = NULL;
	if ((rc = parse_hostport(addr_port, host, sizeof(host), &port, e)) != 0)
		return ferr_wrap(e, "--metrics");
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->http = evhttp_new(base)) == NULL) {
		free(s);
		return ferr_set(e, FERR_NOMEM, "--metrics: HTTP server");
	}
	s->collect = collect;
	s->ctx = ctx;
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
	evhttp_set_max_headers_size(s->http, 8192);
	evhttp_set_timeout(s->http, 10);
	evhttp_set_cb(s->http, "/metrics", on_metrics, s);
	evhttp_set_gencb(s->http, on_other, s);
	errno = 0;
	if ((h = evhttp_bind_socket_with_handle(s->http, host, port)) == NULL) {
		rc = errno;
		metrics_server_free(s);
		return ferr_set(e, FERR_USAGE, "--metrics %s: cannot listen: %s", addr_port,
		    rc != 0 ? strerror(rc) : "bad address");
	}
	snprintf(s->addr, sizeof(s->addr), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host,
	    (unsigned)bound_port(h));
	*out = s;
	return 0;
}

const char *
metrics_server_addr(const struct metrics_server *s)
{
	return s->addr;
}

void
metrics_server_free(struct metrics_server *s)
{
	if (s == NULL)
		return;
	if (s->http != NULL)
		evhttp_free(s->http);
	free(s);
}
