/* Rate pacing for `run`: a credit of bytes refilled from the elapsed time
 * and spent one unit at a time.  Pure: the caller passes the clock.
 *
 * The credit is capped at PACE_BURST_NS worth of the rate (at least one
 * unit), so after a long stop (SIGSTOP) the writer does not burst to make
 * up for the lost time. */
#ifndef FERRY_GUEST_PACE_H
#define FERRY_GUEST_PACE_H

#include <stdint.h>

#define PACE_BURST_NS 100000000ull   /* 100 ms */

struct pace {
	double rate;            /* bytes per second; 0 = never */
	double unit;            /* bytes per take */
	double cap;             /* bytes */
	double credit;          /* bytes */
	uint64_t last_ns;
};

void pace_init(struct pace *p, uint64_t rate, uint32_t unit, uint64_t now_ns);

/* Add the credit earned since the last refill. */
void pace_refill(struct pace *p, uint64_t now_ns);

/* 1 (and the unit is charged) when a unit may be written now, else 0. */
int pace_take(struct pace *p);

#endif
