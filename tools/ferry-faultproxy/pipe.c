/* One direction of a relayed connection: ingress faults, the delay queue
 * and the pump that hands bytes to the destination.  See fproxy.h for the
 * data path. */
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "fproxy.h"

#define USEC 1000000ull

static void
pipe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct pipe *p = arg;

	(void)fd;
	(void)what;
	pipe_pump(p);
}

int
pipe_init(struct pipe *p, struct conn *c, int dir)
{
	struct proxy *px = c->px;

	p->conn = c;
	p->dir = dir;
	p->src = dir == FP_UP ? c->cli : c->srv;
	p->dst = dir == FP_UP ? c->srv : c->cli;
	p->flip_left = -1;
	p->refill_us = px->now_us(px->clock_arg);
	p->q = evbuffer_new();
	p->timer = evtimer_new(px->base, pipe_timer_cb, p);
	if (p->q == NULL || p->timer == NULL)
		return FERR_NOMEM;
	return 0;
}

void
pipe_fini(struct pipe *p)
{
	if (p->timer != NULL)
		event_free(p->timer);
	if (p->q != NULL)
		evbuffer_free(p->q);
	p->timer = NULL;
	p->q = NULL;
	p->mcount = 0;
}

void
pipe_rate_reset(struct pipe *p)
{
	struct proxy *px = p->conn->px;

	p->credit = 0;
	p->refill_us = px->now_us(px->clock_arg);
}

static size_t
out_len(const struct pipe *p)
{
	return evbuffer_get_length(bufferevent_get_output(p->dst));
}

/* Enable or disable reading the source so that held bytes stay under
 * PIPE_HIGH (with hysteresis), and nothing is read while stalled, after
 * FIN, after close-after fired, or before the upstream side exists. */
static void
pipe_update_read(struct pipe *p)
{
	struct conn *c = p->conn;
	const struct fp_faults *f = &c->px->f;
	size_t held = evbuffer_get_length(p->q) + out_len(p);
	int want = held < (p->reading ? PIPE_HIGH : PIPE_LOW);

	if (p->eof || c->closing || f->stall[p->dir] || p->mcount == PIPE_MARKS)
		want = 0;
	if (p->dir == FP_DOWN && !c->connected)
		want = 0;
	if (want == p->reading)
		return;
	if (want)
		bufferevent_enable(p->src, EV_READ);
	else
		bufferevent_disable(p->src, EV_READ);
	p->reading = want;
}

static void
arm_timer(struct pipe *p, uint64_t wait_us)
{
	struct timeval tv;

	if (wait_us < 200)
		wait_us = 200;
	tv.tv_sec = (time_t)(wait_us / USEC);
	tv.tv_usec = (suseconds_t)(wait_us % USEC);
	evtimer_add(p->timer, &tv);
}

/* Token bucket depth: 1/RATE_BURST_DIV s of the rate, at least a byte. */
static uint64_t
bucket_depth(uint64_t rate)
{
	uint64_t burst = rate / RATE_BURST_DIV;

	return burst > 0 ? burst : 1;
}

/* Token bucket: bytes that may leave now at `rate` bytes per second. */
static uint64_t
bucket_avail(struct pipe *p, uint64_t now, uint64_t rate)
{
	uint64_t burst = bucket_depth(rate), elapsed;

	elapsed = now > p->refill_us ? now - p->refill_us : 0;
	if (elapsed > USEC)
		elapsed = USEC;
	p->refill_us = now;
	p->credit += elapsed * rate;
	if (p->credit > burst * USEC)
		p->credit = burst * USEC;
	return p->credit / USEC;
}

/* Microseconds until the bucket holds `want` bytes (capped at its depth). */
static uint64_t
bucket_wait(const struct pipe *p, uint64_t rate, uint64_t want)
{
	uint64_t burst = bucket_depth(rate), need;

	if (want > burst)
		want = burst;
	need = want * USEC;
	if (need <= p->credit)
		return 0;
	return (need - p->credit + rate - 1) / rate;
}

static void
pipe_pass_fin(struct pipe *p)
{
	struct conn *c = p->conn;
	struct pipe *other = &c->pipe[!p->dir];

	shutdown(bufferevent_getfd(p->dst), SHUT_WR);
	p->shut = 1;
	proxy_log(c->px, "conn %llu: FIN passed %s", (unsigned long long)c->id,
	    fp_dirs_name(1u << p->dir));
	if (other->shut)
		conn_finish(c, "both sides closed");
}

void
pipe_pump(struct pipe *p)
{
	struct conn *c = p->conn;
	struct proxy *px = c->px;
	const struct fp_faults *f = &px->f;
	struct evbuffer *out;
	uint64_t now, rate = f->rate[p->dir];

	if (c->dead)
		return;
	if (!c->connected) {
		pipe_update_read(p);
		return;
	}
	out = bufferevent_get_output(p->dst);
	while (p->mcount > 0 && !f->stall[p->dir]) {
		struct mark *m = &p->marks[p->mhead];
		size_t olen = evbuffer_get_length(out), n = m->len;

		/* With slicing each write waits for the previous one to leave,
		 * so the peer sees many small segments. */
		if (f->slice ? olen > 0 : olen >= OUT_HIGH)
			break;
		now = px->now_us(px->clock_arg);
		if (m->due_us > now) {
			arm_timer(p, m->due_us - now);
			break;
		}
		if (f->slice && n > f->slice)
			n = (size_t)f->slice;
		if (!f->slice && n > OUT_HIGH - olen)
			n = OUT_HIGH - olen;
		if (rate != 0) {
			uint64_t avail = bucket_avail(p, now, rate);
			uint64_t need = n < RATE_QUANTUM ? n : RATE_QUANTUM;

			/* Wait for a quantum (or the bucket's depth, if smaller)
			 * rather than trickle a few bytes on every event. */
			if (avail < need && avail < bucket_depth(rate)) {
				arm_timer(p, bucket_wait(p, rate, need));
				break;
			}
			if (n > avail)
				n = (size_t)avail;
			p->credit -= (uint64_t)n * USEC;
		}
		if (evbuffer_remove_buffer(p->q, out, n) != (int)n) {
			conn_abort(c, "internal: queue shorter than its marks");
			return;
		}
		c->bytes[p->dir] += n;
		px->bytes[p->dir] += n;
		m->len -= n;
		if (m->len == 0) {
			p->mhead = (p->mhead + 1) % PIPE_MARKS;
			p->mcount--;
		}
	}
	if (p->mcount == 0 && evbuffer_get_length(out) == 0) {
		if (p->last) {
			conn_finish(c, "close-after");
			return;
		}
		if (p->eof && !p->eof_lost && !p->shut) {
			pipe_pass_fin(p);
			if (c->dead)
				return;
		}
	}
	pipe_update_read(p);
}

/* Queue len bytes from in, due after the current latency.  Marks are
 * merged per millisecond, so a pipe holds at most one per ms of latency. */
static void
enqueue(struct pipe *p, struct evbuffer *in, size_t len)
{
	struct proxy *px = p->conn->px;
	uint64_t lat = px->f.latency_ms[p->dir], due = 0;
	struct mark *tail = NULL;

	if (lat != 0) {
		uint64_t now = px->now_us(px->clock_arg);

		due = (now + lat * 1000 + 999) / 1000 * 1000;
	}
	if (p->mcount > 0)
		tail = &p->marks[(p->mhead + p->mcount - 1) % PIPE_MARKS];
	/* Order is kept even when the latency drops: a later mark never
	 * leaves before an earlier one (the pump only looks at the head). */
	if (tail != NULL && tail->due_us >= due) {
		tail->len += len;
	} else {
		struct mark *m = &p->marks[(p->mhead + p->mcount) % PIPE_MARKS];

		m->due_us = due;
		m->len = len;
		p->mcount++;
	}
	evbuffer_remove_buffer(in, p->q, len);
}

static void
flip_byte(struct pipe *p, struct evbuffer *in, size_t off)
{
	struct conn *c = p->conn;
	struct evbuffer_ptr ptr;
	struct evbuffer_iovec v;
	unsigned char *b, old;

	if (evbuffer_ptr_set(in, &ptr, off, EVBUFFER_PTR_SET) != 0 ||
	    evbuffer_peek(in, 1, &ptr, &v, 1) < 1 || v.iov_len < 1) {
		proxy_log(c->px, "conn %llu: flip at %zu failed", (unsigned long long)c->id, off);
		return;
	}
	b = v.iov_base;
	old = b[0];
	b[0] ^= 0x01;
	proxy_log(c->px, "conn %llu: flipped bit 0 of byte %llu %s: 0x%02x -> 0x%02x",
	    (unsigned long long)c->id, (unsigned long long)(c->bytes[p->dir] + evbuffer_get_length(p->q) + off),
	    fp_dirs_name(1u << p->dir), old, b[0]);
}

void
pipe_ingress(struct pipe *p)
{
	struct conn *c = p->conn;
	struct proxy *px = c->px;
	struct evbuffer *in = bufferevent_get_input(p->src);
	size_t len = evbuffer_get_length(in);

	if (c->dead || len == 0)
		return;
	if (c->closing) {
		evbuffer_drain(in, len);
		return;
	}
	if (px->f.drop[p->dir]) {
		p->dropped += len;
		evbuffer_drain(in, len);
		pipe_update_read(p);
		return;
	}
	if (c->close_left >= 0 && (c->close_dirs & (1u << p->dir))) {
		if ((uint64_t)c->close_left <= len) {
			len = (size_t)c->close_left;
			c->close_left = -1;
			c->closing = 1;
			p->last = 1;
			proxy_log(px, "conn %llu: close-after fired %s, closing after %zu more bytes",
			    (unsigned long long)c->id, fp_dirs_name(1u << p->dir), len);
		} else {
			c->close_left -= (int64_t)len;
		}
	}
	if (p->flip_left >= 0) {
		if ((uint64_t)p->flip_left < len) {
			flip_byte(p, in, (size_t)p->flip_left);
			p->flip_left = -1;
		} else {
			p->flip_left -= (int64_t)len;
		}
	}
	if (len > 0)
		enqueue(p, in, len);
	/* close-after: whatever follows the budget is discarded */
	evbuffer_drain(in, evbuffer_get_length(in));
	if (c->closing) {
		struct pipe *other = &c->pipe[!p->dir];

		pipe_update_read(other);
	}
	pipe_pump(p);
}

void
pipe_eof(struct pipe *p)
{
	struct conn *c = p->conn;

	if (c->dead)
		return;
	p->eof = 1;
	p->reading = 0;     /* libevent stopped reading at EOF */
	if (c->px->f.drop[p->dir] && !c->closing) {
		p->eof_lost = 1;
		proxy_log(c->px, "conn %llu: FIN dropped %s", (unsigned long long)c->id,
		    fp_dirs_name(1u << p->dir));
	}
	pipe_pump(p);
}
