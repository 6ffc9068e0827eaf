/* converge.c: when pre-copy stops.  Pure arithmetic fed literal round
 * measurements (no clock), so every estimate is checked to the unit:
 *   wire_rate    = wire_bytes * 1000 / (duration - scan)
 *   dirty_rate   = logical_bytes(k) * 1000 / duration(k-1)   (round >= 2)
 *   predicted_ms = scan + send * duration(k) / duration(k-1)  (round >= 2)
 *                = duration                                   (round 1)
 * and switch over when predicted_ms <= downtime / 2 (the commit gets the
 * other half of the allowed pause). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "converge.h"

#define MIB (1024ull * 1024ull)

static struct round_result
rr(uint32_t round, uint64_t logical, uint64_t wire, uint64_t dur, uint64_t scan)
{
	struct round_result r = { round, logical, wire, dur, scan };

	return r;
}

static void
test_init(void **state)
{
	struct converge c;

	(void)state;
	memset(&c, 0xff, sizeof(c));
	converge_init(&c, 300, 30);
	assert_int_equal(c.downtime_ms, 300);
	assert_int_equal(c.max_rounds, 30);
	assert_int_equal(c.dirty_rate, 0);
	assert_int_equal(c.wire_rate, 0);
	assert_int_equal(c.predicted_ms, 0);
	assert_int_equal(c.last.round, 0);
}

static void
test_round1_always_continues(void **state)
{
	struct converge c;
	struct round_result r = rr(1, 4096, 100, 10, 5);

	(void)state;
	converge_init(&c, 300, 30);
	/* Even a tiny first round: round 1 only measures. */
	assert_int_equal(converge_round(&c, &r), CV_CONTINUE);
	assert_int_equal(c.predicted_ms, 10);
	assert_int_equal(c.dirty_rate, 0);
}

static void
test_static_guest_switches_at_round2(void **state)
{
	struct converge c;
	struct round_result r1 = rr(1, 1024 * MIB, 400 * MIB, 2000, 300);
	struct round_result r2 = rr(2, 0, 0, 150, 150);

	(void)state;
	converge_init(&c, 300, 30);
	assert_int_equal(converge_round(&c, &r1), CV_CONTINUE);
	assert_int_equal(converge_round(&c, &r2), CV_SWITCHOVER_CONVERGED);
	assert_int_equal(c.dirty_rate, 0);
	assert_int_equal(c.predicted_ms, 150);  /* one more scan, nothing to send */
}

static void
test_shrinking_rounds_converge(void **state)
{
	struct converge c;
	struct round_result r[] = {
		rr(1, 1024 * MIB, 512 * MIB, 4000, 400),
		rr(2, 200 * MIB, 100 * MIB, 1000, 100),
		rr(3, 40 * MIB, 20 * MIB, 400, 100),
		rr(4, 8 * MIB, 4 * MIB, 150, 100),
	};

	(void)state;
	converge_init(&c, 240, 30);     /* the final round may take 120 ms */
	assert_int_equal(converge_round(&c, &r[0]), CV_CONTINUE);
	assert_int_equal(converge_round(&c, &r[1]), CV_CONTINUE);
	assert_int_equal(c.predicted_ms, 100 + 900 * 1000 / 4000);     /* 325 */
	assert_int_equal(converge_round(&c, &r[2]), CV_CONTINUE);
	assert_int_equal(c.predicted_ms, 100 + 300 * 400 / 1000);      /* 220 */
	assert_int_equal(converge_round(&c, &r[3]), CV_SWITCHOVER_CONVERGED);
	assert_int_equal(c.predicted_ms, 100 + 50 * 150 / 400);        /* 118 */
}

/* The guest dirties as fast as the link sends: the prediction stays at
 * 1000 ms; after two rounds that do not beat the best, switch over (at
 * round 4, not at max rounds). */
static void
test_never_shrinking_stalls(void **state)
{
	struct converge c;
	uint32_t k;

	(void)state;
	converge_init(&c, 300, 30);
	for (k = 1; k <= 3; k++) {
		struct round_result r = rr(k, 500 * MIB, 500 * MIB, 1000, 100);

		assert_int_equal(converge_round(&c, &r), CV_CONTINUE);
		if (k >= 2)
			assert_int_equal(c.predicted_ms, 1000);
	}
	{
		struct round_result r = rr(4, 500 * MIB, 500 * MIB, 1000, 100);

		assert_int_equal(converge_round(&c, &r), CV_SWITCHOVER_STALLED);
		assert_int_equal(c.stalls, 2);
		assert_int_equal(c.best_ms, 1000);
	}
}

/* Slowly shrinking by more than 10% a round: keeps going until the
 * maximum. */
static void
test_slow_shrinking_stops_at_max_rounds(void **state)
{
	struct converge c;
	uint64_t dur = 2000;
	uint32_t k;

	(void)state;
	converge_init(&c, 100, 6);
	for (k = 1; k <= 6; k++) {
		struct round_result r = rr(k, 100 * MIB, 100 * MIB, dur, 100);
		enum converge_verdict v = converge_round(&c, &r);

		assert_int_equal(v, k < 6 ? CV_CONTINUE : CV_SWITCHOVER_MAX_ROUNDS);
		dur = dur * 8 / 10;
	}
}

/* A large static image: the rescan alone (700 ms) is over the allowed
 * pause, and nothing changed: another round cannot help. */
static void
test_static_large_guest_stalls_at_round2(void **state)
{
	struct converge c;
	struct round_result r1 = rr(1, 3072 * MIB, 700 * MIB, 6000, 700);
	struct round_result r2 = rr(2, 0, 0, 700, 700);

	(void)state;
	converge_init(&c, 300, 30);
	assert_int_equal(converge_round(&c, &r1), CV_CONTINUE);
	assert_int_equal(converge_round(&c, &r2), CV_SWITCHOVER_STALLED);
	assert_int_equal(c.predicted_ms, 700);
}

static void
test_max_rounds_wins_over_converged(void **state)
{
	struct converge c;
	struct round_result r1 = rr(1, MIB, MIB, 100, 10);
	struct round_result r2 = rr(2, 0, 0, 10, 10);

	(void)state;
	converge_init(&c, 300, 2);
	assert_int_equal(converge_round(&c, &r1), CV_CONTINUE);
	assert_int_equal(converge_round(&c, &r2), CV_SWITCHOVER_MAX_ROUNDS);
}

static void
test_max_rounds_one(void **state)
{
	struct converge c;
	struct round_result r1 = rr(1, 1024 * MIB, 1024 * MIB, 5000, 500);

	(void)state;
	converge_init(&c, 300, 1);
	assert_int_equal(converge_round(&c, &r1), CV_SWITCHOVER_MAX_ROUNDS);
}

static void
test_dirty_rate(void **state)
{
	struct converge c;
	struct round_result r1 = rr(1, 1024 * MIB, 300 * MIB, 2000, 200);
	struct round_result r2 = rr(2, 10 * MIB, 5 * MIB, 500, 100);
	struct round_result r3 = rr(3, 3 * MIB, 2 * MIB, 250, 50);

	(void)state;
	converge_init(&c, 10, 30);
	assert_int_equal(converge_round(&c, &r1), CV_CONTINUE);
	assert_int_equal(c.dirty_rate, 0);              /* unknown after round 1 */
	assert_int_equal(converge_round(&c, &r2), CV_CONTINUE);
	/* round 2 sent what was dirtied during round 1's 2 s: 5 MiB/s */
	assert_int_equal(c.dirty_rate, 5 * MIB);
	assert_int_equal(converge_round(&c, &r3), CV_CONTINUE);
	/* 3 MiB over round 2's 500 ms: 6 MiB/s */
	assert_int_equal(c.dirty_rate, 6 * MIB);
	assert_int_equal(c.prev.round, 2);
	assert_int_equal(c.last.round, 3);
}

static void
test_wire_rate_excludes_scan_time(void **state)
{
	struct converge c;
	struct round_result r1 = rr(1, 200 * MIB, 100 * MIB, 1500, 500);

	(void)state;
	converge_init(&c, 300, 30);
	(void)converge_round(&c, &r1);
	assert_int_equal(c.wire_rate, 100 * MIB);       /* 100 MiB in 1000 ms */
}

static void
test_zero_durations_do_not_divide_by_zero(void **state)
{
	struct converge c;
	struct round_result r1 = rr(1, 0, 0, 0, 0);
	struct round_result r2 = rr(2, MIB, MIB, 0, 0);

	(void)state;
	converge_init(&c, 300, 30);
	assert_int_equal(converge_round(&c, &r1), CV_CONTINUE);
	/* The previous round lasted 0 ms: no rate can be derived from it. */
	assert_int_equal(converge_round(&c, &r2), CV_SWITCHOVER_CONVERGED);
	assert_int_equal(c.dirty_rate, 0);
	assert_int_equal(c.predicted_ms, 1);
}

static void
test_scan_longer_than_round_is_clamped(void **state)
{
	struct converge c;
	struct round_result r1 = rr(1, MIB, MIB, 1000, 100);
	struct round_result r2 = rr(2, MIB, MIB, 200, 500);   /* scan > duration */

	(void)state;
	converge_init(&c, 400, 30);
	(void)converge_round(&c, &r1);
	assert_int_equal(converge_round(&c, &r2), CV_SWITCHOVER_CONVERGED);
	assert_int_equal(c.predicted_ms, 200);          /* all scan, nothing to send */
}

/* A final round predicted to fit the allowed pause but not half of it
 * goes on: the commit needs the other half. */
static void
test_half_the_pause_for_the_final_round(void **state)
{
	struct converge c;
	struct round_result r1 = rr(1, 1024 * MIB, 400 * MIB, 2000, 300);
	struct round_result r2 = rr(2, 0, 0, 200, 200);
	struct round_result r3 = rr(3, 0, 0, 140, 140);

	(void)state;
	converge_init(&c, 300, 30);
	assert_int_equal(converge_round(&c, &r1), CV_CONTINUE);
	assert_int_equal(converge_round(&c, &r2), CV_SWITCHOVER_STALLED);  /* nothing left */
	converge_init(&c, 300, 30);
	r2.logical_bytes = MIB;
	r2.wire_bytes = MIB;
	r2.scan_ms = 190;
	assert_int_equal(converge_round(&c, &r1), CV_CONTINUE);
	assert_int_equal(converge_round(&c, &r2), CV_CONTINUE);
	assert_int_equal(c.predicted_ms, 190 + 10 * 200 / 2000);  /* 191: <= 300 but > 150 */
	assert_int_equal(converge_round(&c, &r3), CV_SWITCHOVER_CONVERGED);
	assert_int_equal(c.predicted_ms, 140);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_round1_always_continues),
		cmocka_unit_test(test_static_guest_switches_at_round2),
		cmocka_unit_test(test_shrinking_rounds_converge),
		cmocka_unit_test(test_never_shrinking_stalls),
		cmocka_unit_test(test_slow_shrinking_stops_at_max_rounds),
		cmocka_unit_test(test_static_large_guest_stalls_at_round2),
		cmocka_unit_test(test_max_rounds_wins_over_converged),
		cmocka_unit_test(test_max_rounds_one),
		cmocka_unit_test(test_dirty_rate),
		cmocka_unit_test(test_wire_rate_excludes_scan_time),
		cmocka_unit_test(test_zero_durations_do_not_divide_by_zero),
		cmocka_unit_test(test_scan_longer_than_round_is_clamped),
		cmocka_unit_test(test_half_the_pause_for_the_final_round),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
