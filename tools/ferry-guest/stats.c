/* `ferry-guest stats`: what the images hold, measured from the bytes (not
 * from the generator), one "name value [percent]" line each, so tests can
 * check the mix create made and see what run changed.
 *
 * Memory counts cover the data pages 1..n-1 (page 0 is the header):
 *   zero, nonzero, duplicate (equal to an earlier non-zero page, by XXH3),
 *   compressible (lz4 output under 3/4 of a page), dirty (valid dirtied
 *   page), lz4_ratio (bytes in / lz4 bytes out over the non-zero pages). */
#include "guest.h"

#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "image.h"
#include "layout.h"

#define STATS_CHUNK (1024u * 1024u)   /* bytes per read */

struct counts {
	uint64_t units, zero, nonzero, dirty, dup, compressible;
	uint64_t lz4_in, lz4_out;
};

static int
is_zero(const uint8_t *p, size_t n)
{
	return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void
pct_line(const char *name, uint64_t n, uint64_t of)
{
	printf("%s %llu %.1f%%\n", name, (unsigned long long)n, of ? 100.0 * (double)n / (double)of : 0.0);
}

/* Count units 1..n-1 of a file; hashes (n entries) collects the hashes of
 * non-zero units when not NULL. */
static int
scan(int fd, const char *path, uint32_t unit, uint64_t n, uint8_t *chunk, char *lz,
    uint64_t *hashes, struct counts *c, struct ferr *e)
{
	const uint64_t per = STATS_CHUNK / unit;
	struct unit_info info;
	uint64_t base, i, k, nh = 0;
	int r;

	memset(c, 0, sizeof(*c));
	c->units = n - 1;
	for (base = 0; base < n; base += per) {
		k = n - base < per ? n - base : per;
		if ((r = img_pread_sparse(fd, path, chunk, k * unit, base * unit, e)) != 0)
			return r;
		for (i = base == 0 ? 1 : 0; i < k; i++) {
			const uint8_t *u = chunk + i * unit;
			int out;

			if (is_zero(u, unit)) {
				c->zero++;
				continue;
			}
			c->nonzero++;
			if (unit_verify(u, unit, base + i, &info) == UNIT_OK)
				c->dirty++;
			if (hashes != NULL)
				hashes[nh++] = XXH3_64bits(u, unit);
			out = LZ4_compress_default((const char *)u, lz, (int)unit, LZ4_compressBound((int)unit));
			if (out <= 0)
				out = (int)unit;
			c->lz4_in += unit;
			c->lz4_out += (uint64_t)out;
			if ((uint64_t)out * 4 < (uint64_t)unit * 3)
				c->compressible++;
		}
	}
	if (hashes != NULL) {
		qsort(hashes, nh, sizeof(*hashes), cmp_u64);
		for (i = 1; i < nh; i++)
			if (hashes[i] == hashes[i - 1])
				c->dup++;
	}
	return 0;
}

int
guest_stats(const struct stats_opts *o, struct ferr *e)
{
	struct mem_img m = { .fd = -1 };
	struct disk_img d = { .fd = -1 };
	uint64_t *hashes = NULL;
	uint8_t *chunk = NULL;
	char *lz = NULL;
	struct counts c;
	int r;

	if (o->mem == NULL && o->disk == NULL)
		return ferr_set(e, FERR_USAGE, "stats needs --mem or --disk");
	if ((chunk = malloc(STATS_CHUNK)) == NULL ||
	    (lz = malloc((size_t)LZ4_compressBound(GUEST_BLOCK_SIZE))) == NULL) {
		r = ferr_set(e, FERR_NOMEM, "stats: out of memory");
		goto out;
	}
	if (o->mem != NULL) {
		if ((r = mem_img_init(&m, o->mem, 0, e)) != 0)
			goto out;
		if ((hashes = malloc(m.npages * sizeof(*hashes))) == NULL) {
			r = ferr_set(e, FERR_NOMEM, "stats: out of memory for %llu page hashes",
			    (unsigned long long)m.npages);
			goto out;
		}
		if ((r = scan(m.fd, o->mem, GUEST_PAGE_SIZE, m.npages, chunk, lz, hashes, &c, e)) != 0)
			goto out;
		printf("mem.pages %llu\n", (unsigned long long)m.npages);
		printf("mem.data_pages %llu\n", (unsigned long long)c.units);
		pct_line("mem.zero", c.zero, c.units);
		pct_line("mem.nonzero", c.nonzero, c.units);
		pct_line("mem.duplicate", c.dup, c.units);
		pct_line("mem.compressible", c.compressible, c.units);
		pct_line("mem.dirty", c.dirty, c.units);
		printf("mem.lz4_ratio %.2f\n", c.lz4_out ? (double)c.lz4_in / (double)c.lz4_out : 0.0);
		printf("mem.generation %llu\n", (unsigned long long)m.hdr.last_gen);
		printf("mem.inflight %llu\n", (unsigned long long)m.hdr.inflight);
	}
	if (o->disk != NULL) {
		if ((r = disk_img_init(&d, o->disk, 0, e)) != 0)
			goto out;
		if ((r = scan(d.fd, o->disk, GUEST_BLOCK_SIZE, d.nblocks, chunk, lz, NULL, &c, e)) != 0)
			goto out;
		printf("disk.blocks %llu\n", (unsigned long long)d.nblocks);
		printf("disk.data_blocks %llu\n", (unsigned long long)c.units);
		pct_line("disk.zero", c.zero, c.units);
		pct_line("disk.nonzero", c.nonzero, c.units);
		pct_line("disk.compressible", c.compressible, c.units);
		pct_line("disk.dirty", c.dirty, c.units);
		printf("disk.lz4_ratio %.2f\n", c.lz4_out ? (double)c.lz4_in / (double)c.lz4_out : 0.0);
		printf("disk.allocated %llu\n", (unsigned long long)d.allocated);
	}
	r = 0;
out:
	disk_img_fini(&d);
	mem_img_fini(&m);
	free(hashes);
	free(chunk);
	free(lz);
	return r;
}
