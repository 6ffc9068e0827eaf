#include "converge.h"

#include <string.h>

void
converge_init(struct converge *c, uint64_t downtime_ms, uint32_t max_rounds)
{
	memset(c, 0, sizeof(*c));
	c->downtime_ms = downtime_ms;
	c->max_rounds = max_rounds;
}

enum converge_verdict
converge_round(struct converge *c, const struct round_result *r)
{
	uint64_t dur = r->duration_ms ? r->duration_ms : 1;
	uint64_t scan = r->scan_ms < dur ? r->scan_ms : dur;
	uint64_t send = dur - scan;

	c->prev = c->last;
	c->last = *r;
	if (send > 0)
		c->wire_rate = r->wire_bytes * 1000 / send;
	/* What round k sent is what was dirtied while round k-1 ran. */
	if (r->round >= 2 && c->prev.duration_ms > 0)
		c->dirty_rate = r->logical_bytes * 1000 / c->prev.duration_ms;
	/* The final round sends what gets dirty while this round runs: this
	 * round's sending time scaled by T(k)/T(k-1), plus one more scan. */
	if (r->round >= 2 && c->prev.duration_ms > 0)
		c->predicted_ms = scan + send * dur / c->prev.duration_ms;
	else
		c->predicted_ms = dur;
	if (r->round >= 2) {
		if (c->best_ms == 0 || c->predicted_ms * 10 < c->best_ms * 9) {
			c->best_ms = c->predicted_ms;
			c->stalls = 0;
		} else {
			c->stalls++;
		}
	}
	if (r->round >= c->max_rounds)
		return CV_SWITCHOVER_MAX_ROUNDS;
	if (r->round < 2)
		return CV_CONTINUE;
	/* The pause is the final round and then the commit (the receiver's
	 * digest check and fsync, COMMITTED back): the final round gets half
	 * of the allowed pause, the commit the other half. */
	if (c->predicted_ms <= c->downtime_ms / 2)
		return CV_SWITCHOVER_CONVERGED;
	if (r->logical_bytes == 0 || c->stalls >= 2)
		return CV_SWITCHOVER_STALLED;
	return CV_CONTINUE;
}
