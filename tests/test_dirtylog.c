/* The dirty log (src/common/dirtylog.c, proto/DIRTYLOG.md):
 *
 * - a header written by hand from the text of the format parses to the
 *   layout the text gives; dirtylog_create writes the same header;
 * - each header rule broken once, with its code and the field named;
 * - mark then take returns the marks and clears them; devices are
 *   separate; out-of-range marks and slots are ignored; a slot's unit is
 *   returned by every take while the slot names it;
 * - two threads: one changes units with the writer rules while the other
 *   takes, and at the end every unit changed was taken (none lost);
 * - the pager with a dirty log scans, after round 1, only the units the
 *   log marked, and what it sends keeps the receiver equal to the file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dirtylog.h"

/* Big-endian header bytes, as proto/DIRTYLOG.md lays them out. */
static size_t
put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
	return 4;
}

static size_t
put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)(v >> 32));
	return 4 + put32(p + 4, (uint32_t)v);
}

/* Two devices (4096 x 100, 65536 x 3), 2 slots. */
static size_t
hand_header(uint8_t *h)
{
	size_t n = 0;

	memcpy(h, "FERRYDL1", 8);
	n = 8;
	n += put32(h + n, 1);
	n += put32(h + n, 2);
	n += put32(h + n, 2);
	n += put32(h + n, 0);
	n += put32(h + n, 4096);
	n += put32(h + n, 0);
	n += put64(h + n, 100);
	n += put32(h + n, 65536);
	n += put32(h + n, 0);
	n += put64(h + n, 3);
	return n;       /* 56 */
}

static void
test_layout_from_the_text(void **state)
{
	uint8_t h[64];
	struct dirtylog_layout l;
	struct ferr e = { 0 };

	(void)state;
	assert_int_equal(hand_header(h), 56);
	/* header 56 -> slots at 64 (16 bytes) -> device 0 at 128 (2 words)
	 * -> device 1 at 192 (1 word) -> size 256 */
	assert_int_equal(dirtylog_parse(h, 56, 256, &l, &e), 0);
	assert_int_equal(l.ndev, 2);
	assert_int_equal(l.nslots, 2);
	assert_int_equal(l.slots_off, 64);
	assert_int_equal(l.dev[0].off, 128);
	assert_int_equal(l.dev[0].nwords, 2);
	assert_int_equal(l.dev[1].off, 192);
	assert_int_equal(l.dev[1].nwords, 1);
	assert_int_equal(l.size, 256);
}

static void
expect_refused(const uint8_t *h, size_t n, uint64_t size, int code, const char *field)
{
	struct dirtylog_layout l;
	struct ferr e = { 0 };

	assert_int_equal(dirtylog_parse(h, n, size, &l, &e), code);
	if (strstr(e.msg, field) == NULL)
		fail_msg("message '%s' does not name '%s'", e.msg, field);
}

static void
test_header_rules(void **state)
{
	uint8_t h[64], b[64];
	size_t n;

	(void)state;
	n = hand_header(h);
	memcpy(b, h, n);
	b[0] = 'X';
	expect_refused(b, n, 256, FERR_PROTO_VERSION, "magic");
	memcpy(b, h, n);
	put32(b + 8, 2);
	expect_refused(b, n, 256, FERR_PROTO_VERSION, "version");
	memcpy(b, h, n);
	put32(b + 12, 0);
	expect_refused(b, n, 256, FERR_PROTO_RANGE, "ndev");
	put32(b + 12, 65);
	expect_refused(b, n, 256, FERR_PROTO_RANGE, "ndev");
	memcpy(b, h, n);
	put32(b + 16, 0);
	expect_refused(b, n, 256, FERR_PROTO_RANGE, "nslots");
	put32(b + 16, 257);
	expect_refused(b, n, 256, FERR_PROTO_RANGE, "nslots");
	memcpy(b, h, n);
	put32(b + 20, 1);
	expect_refused(b, n, 256, FERR_PROTO_RANGE, "reserved");
	memcpy(b, h, n);
	put32(b + 24, 3000);
	expect_refused(b, n, 256, FERR_PROTO_RANGE, "device 0 unit 3000");
	put32(b + 24, 256);
	expect_refused(b, n, 256, FERR_PROTO_RANGE, "device 0 unit 256");
	memcpy(b, h, n);
	put32(b + 44, 7);
	expect_refused(b, n, 256, FERR_PROTO_RANGE, "device 1 reserved");
	memcpy(b, h, n);
	put64(b + 48, 0);
	expect_refused(b, n, 256, FERR_PROTO_RANGE, "device 1 nunits");
	expect_refused(h, n, 256 + 64, FERR_PROTO_LENGTH, "file size");
	expect_refused(h, n, 192, FERR_PROTO_LENGTH, "file size");
	expect_refused(h, 20, 256, FERR_PROTO_LENGTH, "header");
	expect_refused(h, 50, 256, FERR_PROTO_LENGTH, "device 1");
}

struct tmpfile {
	char dir[64];
	char path[96];
};

static void
tmp_make(struct tmpfile *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/ferry-test-dirtylog-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->path, sizeof(t->path), "%s/dirty.log", t->dir);
}

static void
tmp_drop(struct tmpfile *t)
{
	unlink(t->path);
	rmdir(t->dir);
}

static void
test_create_writes_the_same_header(void **state)
{
	static const uint32_t unit[2] = { 4096, 65536 };
	static const uint64_t nunits[2] = { 100, 3 };
	struct tmpfile t;
	struct dirtylog w, r;
	struct ferr e = { 0 };
	uint8_t h[64];
	struct stat sb;

	(void)state;
	tmp_make(&t);
	assert_int_equal(dirtylog_create(&w, t.path, 2, unit, nunits, 2, &e), 0);
	assert_int_equal(stat(t.path, &sb), 0);
	assert_int_equal(sb.st_size, 256);
	hand_header(h);
	assert_memory_equal(w.map, h, 56);
	assert_int_equal(dirtylog_open(&r, t.path, &e), 0);
	assert_int_equal(r.l.size, 256);
	assert_int_equal(r.l.dev[1].off, 192);
	dirtylog_close(&r);
	dirtylog_close(&w);
	/* a file that is not a dirty log */
	assert_int_equal(truncate(t.path, 100), 0);
	assert_int_not_equal(dirtylog_open(&r, t.path, &e), 0);
	assert_non_null(strstr(e.msg, t.path));
	assert_int_equal(r.fd, -1);
	tmp_drop(&t);
	assert_int_equal(dirtylog_open(&r, t.path, &e), FERR_IO);
}

static void
test_mark_take_slots(void **state)
{
	static const uint32_t unit[2] = { 4096, 65536 };
	static const uint64_t nunits[2] = { 200, 3 };
	struct tmpfile t;
	struct dirtylog w, r;
	struct ferr e = { 0 };
	uint64_t out0[4] = { 0 }, out1[1] = { 0 };

	(void)state;
	tmp_make(&t);
	assert_int_equal(dirtylog_create(&w, t.path, 2, unit, nunits, 2, &e), 0);
	assert_int_equal(dirtylog_open(&r, t.path, &e), 0);
	dirtylog_mark(&w, 0, 0);
	dirtylog_mark(&w, 0, 63);
	dirtylog_mark(&w, 0, 64);
	dirtylog_mark(&w, 0, 199);
	dirtylog_mark(&w, 0, 200);      /* out of range: ignored */
	dirtylog_mark(&w, 1, 2);
	dirtylog_mark(&w, 2, 0);        /* no device 2 */
	assert_int_equal(dirtylog_take(&r, 0, out0), 4);
	assert_true(out0[0] == (1ull | 1ull << 63) && out0[1] == 1 && out0[3] == 1ull << 7);
	assert_true(out0[2] == 0);
	assert_int_equal(dirtylog_take(&r, 1, out1), 1);
	assert_true(out1[0] == 1ull << 2);
	memset(out0, 0, sizeof(out0));
	assert_int_equal(dirtylog_take(&r, 0, out0), 0);        /* cleared */
	/* a slot names its unit until it ends */
	dirtylog_begin(&w, 1, 0, 150);
	dirtylog_begin(&w, 2, 0, 10);   /* no slot 2: ignored */
	dirtylog_begin(&w, 0, 0, 999);  /* out of range: ignored */
	assert_int_equal(dirtylog_take(&r, 0, out0), 1);
	assert_true(out0[2] == 1ull << (150 - 128));
	memset(out0, 0, sizeof(out0));
	assert_int_equal(dirtylog_take(&r, 1, out1), 0 + 0);    /* slot is device 0's */
	assert_int_equal(dirtylog_take(&r, 0, out0), 1);
	dirtylog_end(&w, 1);
	memset(out0, 0, sizeof(out0));
	assert_int_equal(dirtylog_take(&r, 0, out0), 0);
	dirtylog_close(&r);
	dirtylog_close(&w);
	tmp_drop(&t);
}

#define RACE_UNITS 20000u

struct race {
	struct dirtylog *w;
	uint8_t *data;          /* the "unit" bytes: 1 when changed */
};

static void *
writer(void *arg)
{
	struct race *rc = arg;
	uint32_t i;

	for (i = 0; i < RACE_UNITS; i++) {
		dirtylog_begin(rc->w, 0, 0, i);
		__atomic_store_n(&rc->data[i], 1, __ATOMIC_RELAXED);
		dirtylog_mark(rc->w, 0, i);
		dirtylog_end(rc->w, 0);
	}
	return NULL;
}

/* The reader takes while the writer changes every unit once; each unit
 * it sees changed is "sent".  After the writer ends, one last take: every
 * unit must have been sent after it changed. */
static void
test_no_change_lost(void **state)
{
	static const uint32_t unit[1] = { 4096 };
	static const uint64_t nunits[1] = { RACE_UNITS };
	struct tmpfile t;
	struct dirtylog w, r;
	struct ferr e = { 0 };
	struct race rc;
	pthread_t th;
	uint64_t words[(RACE_UNITS + 63) / 64];
	uint8_t *sent = calloc(RACE_UNITS, 1);
	uint32_t i;
	int last = 0;

	(void)state;
	tmp_make(&t);
	assert_int_equal(dirtylog_create(&w, t.path, 1, unit, nunits, 1, &e), 0);
	assert_int_equal(dirtylog_open(&r, t.path, &e), 0);
	rc.w = &w;
	rc.data = calloc(RACE_UNITS, 1);
	assert_non_null(rc.data);
	assert_non_null(sent);
	assert_int_equal(pthread_create(&th, NULL, writer, &rc), 0);
	for (;;) {
		int done = __atomic_load_n(&rc.data[RACE_UNITS - 1], __ATOMIC_RELAXED) &&
		    __atomic_load_n((uint64_t *)(void *)(r.map + r.l.slots_off), __ATOMIC_ACQUIRE) == 0;

		memset(words, 0, sizeof(words));
		(void)dirtylog_take(&r, 0, words);
		for (i = 0; i < RACE_UNITS; i++)
			if (words[i / 64] & (1ull << (i % 64)))
				sent[i] = __atomic_load_n(&rc.data[i], __ATOMIC_RELAXED);
		if (last)
			break;
		if (done) {
			pthread_join(th, NULL);
			last = 1;
		}
	}
	for (i = 0; i < RACE_UNITS; i++)
		if (sent[i] != 1)
			fail_msg("unit %u changed but never taken after its change", i);
	free(rc.data);
	free(sent);
	dirtylog_close(&r);
	dirtylog_close(&w);
	tmp_drop(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_from_the_text),
		cmocka_unit_test(test_header_rules),
		cmocka_unit_test(test_create_writes_the_same_header),
		cmocka_unit_test(test_mark_take_slots),
		cmocka_unit_test(test_no_change_lost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
