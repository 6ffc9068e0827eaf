/* When to stop pre-copy and switch over (DESIGN "Convergence").  Pure:
 * fed the measurements of each finished round. */
#ifndef FERRY_CONVERGE_H
#define FERRY_CONVERGE_H

#include <stdint.h>

struct round_result {
	uint32_t round;
	uint64_t logical_bytes;     /* bytes of units sent in the round */
	uint64_t wire_bytes;        /* frame bytes of the round */
	uint64_t duration_ms;       /* wall time of the round */
	uint64_t scan_ms;           /* of which spent reading, hashing, encoding */
};

struct converge {
	uint64_t downtime_ms;       /* allowed pause */
	uint32_t max_rounds;        /* switch over after this many rounds */
	struct round_result prev, last;
	uint64_t dirty_rate;        /* bytes/s, estimated */
	uint64_t wire_rate;         /* bytes/s, measured */
	uint64_t predicted_ms;      /* estimated final pause */
	uint64_t best_ms;           /* smallest prediction so far (round >= 2) */
	uint32_t stalls;            /* rounds in a row that did not beat it by 10% */
};

enum converge_verdict {
	CV_CONTINUE = 1,
	CV_SWITCHOVER_CONVERGED,
	CV_SWITCHOVER_MAX_ROUNDS,
	/* More rounds would not shorten the pause: nothing was left to send
	 * (the final round's scan bounds it), or two rounds in a row did
	 * not bring the prediction 10% below the best so far (the guest
	 * dirties as fast as the link sends). */
	CV_SWITCHOVER_STALLED,
};

void converge_init(struct converge *c, uint64_t downtime_ms, uint32_t max_rounds);
/* Record a finished round and decide. */
enum converge_verdict converge_round(struct converge *c, const struct round_result *r);

#endif
