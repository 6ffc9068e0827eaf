/* The receiver's staging files (src/receiver/staging.c) driven through
 * their sink ops, against a model of each device kept in memory:
 *
 * - writes are gathered into runs of consecutive units (sink_write) and
 *   written later: whatever order the writes come in (runs, gaps, another
 *   device, a run longer than the buffer, a unit as large as it), every
 *   read sees the last bytes written, whether they are still gathered,
 *   half gathered or already in the file, and the committed files equal
 *   the model byte for byte;
 * - a memory image is reserved whole (fallocate), a disk image stays
 *   sparse;
 * - an abort with writes still gathered leaves no file behind. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "staging.h"

#include "testutil.h"

#define MEM_UNITS 512u          /* 2 MiB of 4 KiB pages */
#define DISK_UNIT 65536u
#define DISK_UNITS 64u          /* 4 MiB */
#define BIG_UNIT (1u << 20)     /* one unit as large as the gathering buffer */
#define BIG_UNITS 4u

struct fixture {
	char dir[64];
	struct staging *st;
	uint8_t *model[3];
	uint64_t size[3];
	uint32_t unit[3];
};

static void
manifest_for(struct fixture *f, struct msg_manifest *m)
{
	static const char *names[3] = { "mem.img", "disk.img", "big.img" };
	static const uint8_t kinds[3] = { DK_MEMORY, DK_DISK, DK_DISK };
	uint32_t i;

	memset(m, 0, sizeof(*m));
	m->ndev = 3;
	for (i = 0; i < 3; i++) {
		m->dev[i].id = i + 1;
		m->dev[i].kind = kinds[i];
		m->dev[i].unit = f->unit[i];
		m->dev[i].size = f->size[i];
		snprintf(m->dev[i].name, sizeof(m->dev[i].name), "%s", names[i]);
	}
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct staging_opts o = { 0 };
	struct msg_manifest m;
	struct msg_text r;
	uint8_t sid[16] = { 1, 2, 3 };
	uint32_t i;

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/ferry-test-staging-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->unit[0] = 4096;
	f->unit[1] = DISK_UNIT;
	f->unit[2] = BIG_UNIT;
	f->size[0] = (uint64_t)MEM_UNITS * 4096;
	f->size[1] = (uint64_t)DISK_UNITS * DISK_UNIT;
	f->size[2] = (uint64_t)BIG_UNITS * BIG_UNIT;
	for (i = 0; i < 3; i++)
		assert_non_null(f->model[i] = calloc(1, f->size[i]));
	o.dest_dir = f->dir;
	assert_non_null(f->st = staging_new(&o));
	manifest_for(f, &m);
	memset(&r, 0, sizeof(r));
	assert_int_equal(staging_sink_ops.accept(f->st, &m, 77, sid, &r), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	uint32_t i;

	staging_free(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	for (i = 0; i < 3; i++)
		free(f->model[i]);
	free(f);
	return 0;
}

static void
put(struct fixture *f, uint32_t dev, uint64_t idx, struct tprng *g)
{
	uint32_t len = f->unit[dev];
	uint8_t *p = f->model[dev] + idx * len;
	struct ferr e = { 0 };

	tprng_fill(g, p, len);
	assert_int_equal(staging_sink_ops.write(f->st, dev, idx * len, p, len, &e), 0);
}

static void
expect_unit(struct fixture *f, uint32_t dev, uint64_t idx)
{
	uint32_t len = f->unit[dev];
	uint8_t *got = malloc(len);
	struct ferr e = { 0 };

	assert_non_null(got);
	assert_int_equal(staging_sink_ops.read(f->st, dev, idx * len, got, len, &e), 0);
	assert_memory_equal(got, f->model[dev] + idx * len, len);
	free(got);
}

/* Reads of any range: inside what is gathered, across its start or its
 * end, or outside it. */
static void
expect_range(struct fixture *f, uint32_t dev, uint64_t off, uint32_t len)
{
	uint8_t *got = malloc(len);
	struct ferr e = { 0 };

	assert_non_null(got);
	assert_int_equal(staging_sink_ops.read(f->st, dev, off, got, len, &e), 0);
	assert_memory_equal(got, f->model[dev] + off, len);
	free(got);
}

static void
expect_file(struct fixture *f, uint32_t dev, const char *name)
{
	char path[128];
	uint8_t *got = malloc(f->size[dev]);
	int fd;

	assert_non_null(got);
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	assert_true((fd = open(path, O_RDONLY)) >= 0);
	assert_int_equal(pread(fd, got, f->size[dev], 0), (ssize_t)f->size[dev]);
	close(fd);
	assert_memory_equal(got, f->model[dev], f->size[dev]);
	free(got);
}

static void
commit(struct fixture *f)
{
	struct msg_commit c;
	struct ferr e = { 0 };

	memset(&c, 0, sizeof(c));
	assert_int_equal(staging_sink_ops.commit(f->st, &c, &e), 0);
}

static void
test_gathered_writes_read_back(void **state)
{
	struct fixture *f = *state;
	struct tprng g = { 0x5eed };
	uint64_t i;

	/* A run of consecutive pages longer than the buffer (2 MiB). */
	for (i = 0; i < MEM_UNITS; i++) {
		put(f, 0, i, &g);
		if (i % 37 == 5)
			expect_unit(f, 0, i);         /* the last one, still gathered */
		if (i % 101 == 7)
			expect_unit(f, 0, i / 2);     /* one written or gathered earlier */
	}
	/* Overwrites with gaps, then reads across the gathered run's edges. */
	for (i = 10; i < 40; i += 3)
		put(f, 0, i, &g);
	put(f, 0, 100, &g);
	put(f, 0, 101, &g);
	put(f, 0, 102, &g);
	expect_range(f, 0, 99 * 4096, 2 * 4096);     /* across its start */
	put(f, 0, 103, &g);
	expect_range(f, 0, 103 * 4096, 2 * 4096);    /* across its end */
	expect_range(f, 0, 101 * 4096 + 100, 900);    /* inside, unaligned */
	/* Another device in between, and back. */
	put(f, 1, 3, &g);
	put(f, 0, 104, &g);
	put(f, 1, 4, &g);
	put(f, 1, 5, &g);
	expect_unit(f, 0, 104);
	expect_unit(f, 1, 4);
	/* Units as large as the buffer go straight to the file. */
	put(f, 2, 1, &g);
	put(f, 1, 6, &g);
	put(f, 2, 2, &g);
	expect_unit(f, 2, 1);
	expect_unit(f, 1, 6);
	for (i = 0; i < MEM_UNITS; i += 61)
		expect_unit(f, 0, i);
	commit(f);
	expect_file(f, 0, "mem.img");
	expect_file(f, 1, "disk.img");
	expect_file(f, 2, "big.img");
}

static void
test_memory_reserved_disk_sparse(void **state)
{
	struct fixture *f = *state;
	struct tprng g = { 0xabc };
	char path[128];
	struct stat sb;

	put(f, 0, 0, &g);
	put(f, 1, 0, &g);
	commit(f);
	snprintf(path, sizeof(path), "%s/mem.img", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_true((uint64_t)sb.st_blocks * 512 >= f->size[0]);
	snprintf(path, sizeof(path), "%s/disk.img", f->dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_true((uint64_t)sb.st_blocks * 512 < f->size[1] / 2);
	expect_file(f, 0, "mem.img");
	expect_file(f, 1, "disk.img");
}

static void
test_abort_with_gathered_writes(void **state)
{
	struct fixture *f = *state;
	struct tprng g = { 0x77 };
	struct dirent *de;
	DIR *d;
	int files = 0;

	put(f, 0, 5, &g);
	put(f, 0, 6, &g);
	staging_sink_ops.abort(f->st);
	assert_non_null(d = opendir(f->dir));
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.' || strncmp(de->d_name, ".ferry-", 7) == 0)
			files++;
	closedir(d);
	assert_int_equal(files, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gathered_writes_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_memory_reserved_disk_sparse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_with_gathered_writes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
