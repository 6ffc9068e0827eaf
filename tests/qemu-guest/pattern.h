/* The test guest's page pattern: kernel.c fills RAM with it, the tests
 * (test_qstream.c, qmp.py's expected_page) check it.  See kernel.c. */
#ifndef FERRY_GUEST_PATTERN_H
#define FERRY_GUEST_PATTERN_H

#include <stdint.h>

#define FG_PAGE 4096u
#define FG_PAGE_MAGIC 0x45474150u	/* "PAGE" */
#define FG_SAME_BASE 0x5a5a0000u

/* The page at physical p right after the fill (word 3, the generation, 0). */
static inline void
fg_pattern(uint32_t p, volatile uint32_t *w)
{
	uint32_t i, x = p | 1u, k = (p >> 12) & 3u;

	if (k == 1u) {
		for (i = 0; i < FG_PAGE / 4; i++)
			w[i] = FG_SAME_BASE | i;
		w[3] = 0;
		return;
	}
	w[0] = p;
	w[1] = FG_PAGE_MAGIC;
	w[2] = ~p;
	w[3] = 0;
	for (i = 4; i < FG_PAGE / 4; i++) {
		if (k == 0u) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			w[i] = x;
		} else {
			w[i] = p + 4 * (i % 16);
		}
	}
}

#endif
