/* metrics.c: the registry rendered in Prometheus text format 0.0.4,
 * compared with the expected text byte for byte (HELP/TYPE lines, label
 * escaping, cumulative histogram buckets, number formats). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *
render(const struct metrics *r)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	assert_non_null(f);
	assert_int_equal(metrics_render(r, f), 0);
	assert_int_equal(fclose(f), 0);
	return text;
}

static void
expect_text(const struct metrics *r, const char *want)
{
	char *got = render(r);

	if (strcmp(got, want) != 0)
		fail_msg("rendered:\n%s\nexpected:\n%s", got, want);
	free(got);
}

static void
test_counter_and_gauge(void **state)
{
	static struct metrics r;
	struct metric *m;

	(void)state;
	metrics_reset(&r);
	m = metrics_add(&r, METRIC_COUNTER, "ferry_x_bytes_total", "Bytes moved.");
	metric_set(m, 0, 67108864);
	m = metrics_add(&r, METRIC_GAUGE, "ferry_x_rate", "A rate.");
	metric_set(m, 0, 1.5);
	expect_text(&r,
	    "# HELP ferry_x_bytes_total Bytes moved.\n"
	    "# TYPE ferry_x_bytes_total counter\n"
	    "ferry_x_bytes_total 67108864\n"
	    "# HELP ferry_x_rate A rate.\n"
	    "# TYPE ferry_x_rate gauge\n"
	    "ferry_x_rate 1.5\n");
}

static void
test_labels_and_escaping(void **state)
{
	static const char *const kinds[] = { "zero", "a\"b", "c\\d", "e\nf" };
	static struct metrics r;
	struct metric *m;

	(void)state;
	metrics_reset(&r);
	m = metrics_add(&r, METRIC_COUNTER, "ferry_pages_total", "Pages \\ by kind\nsent.");
	metric_label(m, "kind", kinds, 4);
	metric_set(m, 0, 7);
	metric_set_by(m, "c\\d", 3);
	metric_set_by(m, "nope", 99);
	metric_set(m, 9, 99);
	expect_text(&r,
	    "# HELP ferry_pages_total Pages \\\\ by kind\\nsent.\n"
	    "# TYPE ferry_pages_total counter\n"
	    "ferry_pages_total{kind=\"zero\"} 7\n"
	    "ferry_pages_total{kind=\"a\\\"b\"} 0\n"
	    "ferry_pages_total{kind=\"c\\\\d\"} 3\n"
	    "ferry_pages_total{kind=\"e\\nf\"} 0\n");
}

static void
test_histogram(void **state)
{
	static const double b[] = { 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5 };
	static struct metrics r;
	struct metric *m;

	(void)state;
	metrics_reset(&r);
	m = metrics_add(&r, METRIC_HISTOGRAM, "ferry_downtime_seconds", "Pause.");
	metric_buckets(m, b, 8);
	metric_observe(m, 0.05);    /* on a bound: in that bucket (le) */
	metric_observe(m, 0.25);
	metric_observe(m, 0.25);
	metric_observe(m, 7);       /* only in +Inf */
	expect_text(&r,
	    "# HELP ferry_downtime_seconds Pause.\n"
	    "# TYPE ferry_downtime_seconds histogram\n"
	    "ferry_downtime_seconds_bucket{le=\"0.05\"} 1\n"
	    "ferry_downtime_seconds_bucket{le=\"0.1\"} 1\n"
	    "ferry_downtime_seconds_bucket{le=\"0.2\"} 1\n"
	    "ferry_downtime_seconds_bucket{le=\"0.3\"} 3\n"
	    "ferry_downtime_seconds_bucket{le=\"0.5\"} 3\n"
	    "ferry_downtime_seconds_bucket{le=\"1\"} 3\n"
	    "ferry_downtime_seconds_bucket{le=\"2\"} 3\n"
	    "ferry_downtime_seconds_bucket{le=\"5\"} 3\n"
	    "ferry_downtime_seconds_bucket{le=\"+Inf\"} 4\n"
	    "ferry_downtime_seconds_sum 7.55\n"
	    "ferry_downtime_seconds_count 4\n");
}

static void
test_empty_histogram_and_full_registry(void **state)
{
	static struct metrics r;
	uint32_t i;

	(void)state;
	metrics_reset(&r);
	metrics_add(&r, METRIC_HISTOGRAM, "h", "H.");
	expect_text(&r,
	    "# HELP h H.\n"
	    "# TYPE h histogram\n"
	    "h_bucket{le=\"+Inf\"} 0\n"
	    "h_sum 0\n"
	    "h_count 0\n");
	for (i = 1; i < METRICS_MAX; i++)
		assert_non_null(metrics_add(&r, METRIC_GAUGE, "g", "G."));
	assert_null(metrics_add(&r, METRIC_GAUGE, "g", "G."));
	metric_set(NULL, 0, 1);         /* a full registry's NULL is harmless */
	metric_observe(NULL, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counter_and_gauge),
		cmocka_unit_test(test_labels_and_escaping),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_empty_histogram_and_full_registry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
