/* `ferry-guest run`: the running guest.  Maps the memory image shared and
 * rewrites random pages (and disk blocks) at the requested rates until
 * SIGTERM/SIGINT or the optional duration.
 *
 * A page write models a CPU store: the header page's in-flight slot names
 * the page (index + 1) before the page changes and is cleared after, so a
 * SIGSTOP in the middle of the copy leaves one torn page that check can
 * recognise.  The generation counter in the header is bumped before the
 * unit is written, so no unit is ever newer than the header says. */
#include "guest.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "dirtylog.h"
#include "gen.h"
#include "image.h"
#include "layout.h"
#include "pace.h"
#include "units.h"

#define RUN_SLICE_NS 5000000ull   /* 5 ms between refills */

/* The one piece of file-scope state: a signal handler can reach nothing
 * else.  It only asks the loop to stop after the current unit. */
static volatile sig_atomic_t run_stop_requested;

static void
on_stop_signal(int sig)
{
	(void)sig;
	run_stop_requested = 1;
}

struct runner {
	struct mem_img mem;
	struct disk_img disk;
	int have_disk;
	uint8_t *block;           /* GUEST_BLOCK_SIZE scratch */
	uint64_t gen;
	uint64_t pages, blocks;   /* written so far */
	struct prng pick;
	struct dirtylog dl;       /* --dirty-log: device 0 memory, 1 disk */
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* With --dirty-log, each change of one unit is named in slot 0 while it
 * happens and marked once done (proto/DIRTYLOG.md): a SIGSTOP anywhere
 * leaves every changed unit marked or named. */
static void
change_begin(struct runner *rn, uint32_t dev, uint64_t idx)
{
	dirtylog_begin(&rn->dl, 0, dev, idx);
}

static void
change_end(struct runner *rn, uint32_t dev, uint64_t idx)
{
	dirtylog_mark(&rn->dl, dev, idx);
	dirtylog_end(&rn->dl, 0);
}

/* The header page: the next generation and the in-flight slot. */
static void
header_update(struct runner *rn, uint64_t inflight)
{
	change_begin(rn, 0, 0);
	rn->gen = mem_img_next_gen(&rn->mem);
	memhdr_store_u64(rn->mem.map, MEMHDR_INFLIGHT_OFF, inflight);
	change_end(rn, 0, 0);
}

static void
write_page(struct runner *rn, uint64_t i)
{
	uint8_t page[GUEST_PAGE_SIZE];

	header_update(rn, i + 1);
	unit_build_run(page, GUEST_PAGE_SIZE, i, rn->gen);
	change_begin(rn, 0, i);
	memcpy(rn->mem.map + i * GUEST_PAGE_SIZE, page, GUEST_PAGE_SIZE);
	change_end(rn, 0, i);
	change_begin(rn, 0, 0);
	memhdr_store_u64(rn->mem.map, MEMHDR_INFLIGHT_OFF, 0);
	change_end(rn, 0, 0);
	rn->pages++;
}

static int
write_block(struct runner *rn, struct ferr *e)
{
	uint64_t b = 1 + prng_next(&rn->pick) % (rn->disk.nblocks - 1);
	int r;

	header_update(rn, 0);
	unit_build_run(rn->block, GUEST_BLOCK_SIZE, b, rn->gen);
	change_begin(rn, 1, b);
	r = img_pwrite(rn->disk.fd, rn->disk.path, rn->block, GUEST_BLOCK_SIZE, b * GUEST_BLOCK_SIZE, e);
	change_end(rn, 1, b);
	if (r != 0)
		return r;
	rn->blocks++;
	return 0;
}

static int
write_pidfile(const char *path, struct ferr *e)
{
	char tmp[4096];
	FILE *f;

	/* write then rename, so a reader never sees an empty file */
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return ferr_set(e, FERR_USAGE, "--pidfile %s: name too long", path);
	if ((f = fopen(tmp, "w")) == NULL)
		return ferr_set(e, FERR_IO, "--pidfile %s: %s", tmp, strerror(errno));
	fprintf(f, "%ld\n", (long)getpid());
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		ferr_set(e, FERR_IO, "--pidfile %s: %s", path, strerror(errno));
		unlink(tmp);
		return FERR_IO;
	}
	return 0;
}

static int
install_handlers(struct ferr *e)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: the sleep returns early and the loop sees the flag */
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
		return ferr_set(e, FERR_INTERNAL, "sigaction: %s", strerror(errno));
	return 0;
}

static int
run_loop(struct runner *rn, const struct run_opts *o, struct ferr *e)
{
	uint64_t start = now_ns(), t;
	struct pace mem_pace, disk_pace;
	struct timespec slice = { 0, (long)RUN_SLICE_NS };
	int r;

	pace_init(&mem_pace, o->dirty_rate, GUEST_PAGE_SIZE, start);
	pace_init(&disk_pace, rn->have_disk ? o->disk_rate : 0, GUEST_BLOCK_SIZE, start);
	while (!run_stop_requested) {
		t = now_ns();
		if (o->duration_ms > 0 && t - start >= o->duration_ms * 1000000ull)
			break;
		pace_refill(&mem_pace, t);
		pace_refill(&disk_pace, t);
		while (!run_stop_requested && pace_take(&mem_pace))
			write_page(rn, 1 + prng_next(&rn->pick) % (rn->mem.npages - 1));
		while (!run_stop_requested && pace_take(&disk_pace))
			if ((r = write_block(rn, e)) != 0)
				return r;
		(void)nanosleep(&slice, NULL);
	}
	return 0;
}

static int
finish(struct runner *rn, struct ferr *e)
{
	int r = 0;

	change_begin(rn, 0, 0);
	memhdr_store_u64(rn->mem.map, MEMHDR_INFLIGHT_OFF, 0);
	change_end(rn, 0, 0);
	if (msync(rn->mem.map, rn->mem.size, MS_SYNC) != 0)
		r = ferr_set(e, FERR_IO, "%s: msync: %s", rn->mem.path, strerror(errno));
	if (r == 0 && rn->have_disk && fsync(rn->disk.fd) != 0)
		r = ferr_set(e, FERR_IO, "%s: fsync: %s", rn->disk.path, strerror(errno));
	return r;
}

int
guest_run(const struct run_opts *o, struct ferr *e)
{
	struct runner rn;
	char rate[32], drate[32];
	uint64_t t0;
	int r, pid_written = 0;

	memset(&rn, 0, sizeof(rn));
	rn.mem.fd = rn.disk.fd = rn.dl.fd = -1;
	if (o->disk_rate > 0 && o->disk == NULL)
		return ferr_set(e, FERR_USAGE, "--disk-rate needs --disk");
	if ((r = mem_img_init(&rn.mem, o->mem, IMG_WRITE | IMG_MAP, e)) != 0)
		goto out;
	if (o->disk != NULL) {
		if ((r = disk_img_init(&rn.disk, o->disk, IMG_WRITE, e)) != 0)
			goto out;
		if (rn.disk.hdr.seed != rn.mem.hdr.seed) {
			r = ferr_set(e, FERR_USAGE, "%s: disk seed %llu differs from memory seed %llu in %s",
			    o->disk, (unsigned long long)rn.disk.hdr.seed,
			    (unsigned long long)rn.mem.hdr.seed, o->mem);
			goto out;
		}
		rn.have_disk = 1;
		if ((rn.block = malloc(GUEST_BLOCK_SIZE)) == NULL) {
			r = ferr_set(e, FERR_NOMEM, "run: out of memory");
			goto out;
		}
	}
	rn.gen = memhdr_load_u64(rn.mem.map, MEMHDR_GEN_OFF);
	t0 = now_ns();
	prng_init(&rn.pick, o->seed != 0 ? o->seed : t0 ^ (uint64_t)getpid(), 0, 0);
	/* a run killed in the middle of a page left the slot set and maybe a
	 * torn page: finish that store first, as the CPU would have */
	if (rn.mem.hdr.inflight != 0)
		write_page(&rn, rn.mem.hdr.inflight - 1);
	if ((r = install_handlers(e)) != 0)
		goto out;
	/* Before the pidfile: a reader that sees the pid finds the log. */
	if (o->dirty_log != NULL) {
		uint32_t unit[2] = { GUEST_PAGE_SIZE, GUEST_BLOCK_SIZE };
		uint64_t n[2] = { rn.mem.npages, rn.have_disk ? rn.disk.nblocks : 0 };

		if ((r = dirtylog_create(&rn.dl, o->dirty_log, rn.have_disk ? 2 : 1, unit, n, 1, e)) != 0)
			goto out;
	}
	if (o->pidfile != NULL) {
		if ((r = write_pidfile(o->pidfile, e)) != 0)
			goto out;
		pid_written = 1;
	}
	fmt_size(o->dirty_rate, rate, sizeof(rate));
	fmt_size(rn.have_disk ? o->disk_rate : 0, drate, sizeof(drate));
	fprintf(stderr, "ferry-guest run: pid %ld, %llu pages, dirtying %s/s of memory, %s/s of disk\n",
	    (long)getpid(), (unsigned long long)rn.mem.npages, rate, drate);
	r = run_loop(&rn, o, e);
	if (finish(&rn, r == 0 ? e : NULL) != 0 && r == 0)
		r = e->code;
	fprintf(stderr, "ferry-guest run: stopped after %.1f s: %llu pages and %llu blocks written, "
	    "last generation %llu\n", (double)(now_ns() - t0) / 1e9, (unsigned long long)rn.pages,
	    (unsigned long long)rn.blocks, (unsigned long long)rn.gen);
out:
	if (pid_written)
		unlink(o->pidfile);
	free(rn.block);
	dirtylog_close(&rn.dl);
	disk_img_fini(&rn.disk);
	mem_img_fini(&rn.mem);
	return r;
}
