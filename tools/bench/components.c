/* bench-components: single-core speeds of the per-unit work ferry has to
 * do on a workload, measured on the workload's own files.  Used by
 * tools/bench/bench.py to compute the component limit (tools/bench/RESULTS.md
 * explains the arithmetic).
 *
 * Usage: bench-components [--reps N] [--seed N] FILE:UNIT [FILE:UNIT]...
 *
 * For each FILE, cut into UNIT-byte units (4096 for a memory image, 65536
 * for a disk image), it:
 *   1. classifies every unit as ferry's sender does: zero test, keyed
 *      XXH3-128 of the non-zero units (the same page_hash() ferry uses),
 *      dedupe by hash within the run (all files together);
 *   2. times, over the unique non-zero units only, a pass of keyed XXH3-128,
 *      lz4 compression with the sender's codec (codec_lz4_encode, kept only
 *      when it shrinks), and lz4 decompression of those that shrank
 *      (codec_lz4_decode, the receiver's codec);
 *   3. times a memory copy (memcpy of 64 MiB buffers).
 * Each timed pass runs --reps times (default 3); the median is reported.
 * Times are thread CPU time (CLOCK_THREAD_CPUTIME_ID), so other load on a
 * shared machine slows the figures less than wall time would.
 *
 * Output: one JSON object on stdout. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codec_lz4.h"
#include "err.h"
#include "pagehash.h"

#define MAX_FILES 16
#define BATCH (16u << 20)       /* compressed bytes kept for a decompress pass */
#define BATCH_UNITS 4096u       /* and at most this many units per batch */

struct file {
	char *path;
	uint32_t unit;
	const uint8_t *base;
	uint64_t size;
	uint64_t nunits;
	uint64_t nzero, ndup, nuniq;
	uint32_t *uniq;         /* indices of the unique non-zero units */
};

struct table {
	uint8_t (*slot)[FERRY_HASH_LEN];
	uint8_t *used;
	uint64_t mask;
};

static double
cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL) {
		fprintf(stderr, "bench-components: out of memory (%zu bytes)\n", n);
		exit(2);
	}
	return p;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* 1 when the hash was new (inserted), 0 when already present. */
static int
table_insert(struct table *t, const uint8_t h[FERRY_HASH_LEN])
{
	uint64_t i;

	memcpy(&i, h, sizeof(i));
	for (i &= t->mask;; i = (i + 1) & t->mask) {
		if (!t->used[i]) {
			t->used[i] = 1;
			memcpy(t->slot[i], h, FERRY_HASH_LEN);
			return 1;
		}
		if (memcmp(t->slot[i], h, FERRY_HASH_LEN) == 0)
			return 0;
	}
}

static void
open_file(struct file *f, const char *arg)
{
	char *colon = strrchr(arg, ':');
	struct stat st;
	int fd;

	if (colon == NULL || colon == arg) {
		fprintf(stderr, "bench-components: '%s' is not FILE:UNIT\n", arg);
		exit(2);
	}
	f->path = strndup(arg, (size_t)(colon - arg));
	f->unit = (uint32_t)strtoul(colon + 1, NULL, 10);
	if (f->path == NULL || f->unit < 512 || f->unit > (1u << 20) || (f->unit & (f->unit - 1))) {
		fprintf(stderr, "bench-components: bad unit in '%s' (a power of two, 512..1M)\n", arg);
		exit(2);
	}
	fd = open(f->path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "bench-components: %s: %s\n", f->path, strerror(errno));
		exit(2);
	}
	f->size = (uint64_t)st.st_size;
	f->nunits = f->size / f->unit;  /* a short tail is ignored */
	if (f->nunits == 0) {
		fprintf(stderr, "bench-components: %s: smaller than one unit\n", f->path);
		exit(2);
	}
	/* Populated up front: the timed passes measure computing, not faults. */
	f->base = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
	if (f->base == MAP_FAILED) {
		fprintf(stderr, "bench-components: mmap %s: %s\n", f->path, strerror(errno));
		exit(2);
	}
	close(fd);
	f->uniq = xmalloc(f->nunits * sizeof(*f->uniq));
}

int
main(int argc, char **argv)
{
	struct file files[MAX_FILES];
	int nf = 0, reps = 3, i, r;
	uint64_t seed = 0x62656e6368ULL, total_units = 0, cap;
	struct table t;
	double t_classify[32], t_hash[32], t_lz4c[32], t_lz4d[32], t_copy[32];
	uint64_t bytes_total = 0, bytes_uniq = 0, lz4_units = 0, lz4_in = 0, lz4_out = 0;
	uint64_t payload = 0, zero_units = 0, dup_units = 0, uniq_units = 0, bytes_nonzero = 0;
	uint8_t *cbuf, *dbuf, *src, *dst;
	uint32_t *clen_batch;
	const size_t copy_len = 64u << 20;
	volatile uint64_t sink = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
			reps = atoi(argv[++i]);
			if (reps < 1 || reps > 32) {
				fprintf(stderr, "bench-components: --reps 1..32\n");
				return 2;
			}
		} else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
			seed = strtoull(argv[++i], NULL, 0);
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			printf("usage: bench-components [--reps N] [--seed N] FILE:UNIT [FILE:UNIT]...\n");
			return 0;
		} else {
			if (nf == MAX_FILES) {
				fprintf(stderr, "bench-components: at most %d files\n", MAX_FILES);
				return 2;
			}
			open_file(&files[nf++], argv[i]);
		}
	}
	if (nf == 0) {
		fprintf(stderr, "usage: bench-components [--reps N] [--seed N] FILE:UNIT [FILE:UNIT]...\n");
		return 2;
	}
	for (i = 0; i < nf; i++)
		total_units += files[i].nunits;
	for (cap = 1024; cap < 2 * total_units; cap <<= 1)
		;
	t.slot = xmalloc(cap * sizeof(*t.slot));
	t.used = xmalloc(cap);
	t.mask = cap - 1;

	/* Classification: zero test, hash of non-zero units, dedupe lookup. */
	for (r = 0; r < reps; r++) {
		double t0;

		memset(t.used, 0, cap);
		zero_units = dup_units = uniq_units = bytes_uniq = bytes_total = bytes_nonzero = 0;
		t0 = cpu_now();
		for (i = 0; i < nf; i++) {
			struct file *f = &files[i];
			uint64_t u;

			f->nzero = f->ndup = f->nuniq = 0;
			for (u = 0; u < f->nunits; u++) {
				const uint8_t *p = f->base + u * f->unit;
				uint8_t h[FERRY_HASH_LEN];

				if (page_is_zero(p, f->unit)) {
					f->nzero++;
					continue;
				}
				page_hash(seed, p, f->unit, h);
				if (table_insert(&t, h))
					f->uniq[f->nuniq++] = (uint32_t)u;
				else
					f->ndup++;
			}
			zero_units += f->nzero;
			dup_units += f->ndup;
			uniq_units += f->nuniq;
			bytes_uniq += f->nuniq * f->unit;
			bytes_total += f->nunits * f->unit;
			bytes_nonzero += (f->nunits - f->nzero) * f->unit;
		}
		t_classify[r] = cpu_now() - t0;
	}

	/* XXH3-128 alone over the unique non-zero units. */
	for (r = 0; r < reps; r++) {
		double t0 = cpu_now();

		for (i = 0; i < nf; i++) {
			struct file *f = &files[i];
			uint64_t k;

			for (k = 0; k < f->nuniq; k++) {
				uint8_t h[FERRY_HASH_LEN];

				page_hash(seed, f->base + (uint64_t)f->uniq[k] * f->unit, f->unit, h);
				sink += h[0];
			}
		}
		t_hash[r] = cpu_now() - t0;
	}

	/* lz4 both ways, in batches of BATCH compressed bytes. */
	cbuf = xmalloc(BATCH + (1u << 20));
	dbuf = xmalloc(1u << 20);
	clen_batch = xmalloc(BATCH_UNITS * sizeof(*clen_batch));
	for (r = 0; r < reps; r++) {
		double tc = 0, td = 0;

		lz4_units = lz4_in = lz4_out = payload = 0;
		for (i = 0; i < nf; i++) {
			struct file *f = &files[i];
			uint64_t k = 0;

			while (k < f->nuniq) {
				uint64_t first = k, off = 0, j;
				double t0 = cpu_now();
				struct ferr e = { 0 };

				/* Compress until the batch could overflow. */
				for (; k < f->nuniq && off + f->unit <= BATCH && k - first < BATCH_UNITS;
				    k++) {
					const uint8_t *p = f->base + (uint64_t)f->uniq[k] * f->unit;
					uint32_t n = codec_lz4_encode(p, f->unit, cbuf + off, f->unit - 1);

					clen_batch[k - first] = n;
					off += n;
					payload += n ? n : f->unit;
				}
				tc += cpu_now() - t0;
				t0 = cpu_now();
				off = 0;
				for (j = first; j < k; j++) {
					uint32_t n = clen_batch[j - first];

					if (n == 0)
						continue;
					if (codec_lz4_decode(cbuf + off, n, dbuf, f->unit, "unit", &e) != 0) {
						fprintf(stderr, "bench-components: %s\n", e.msg);
						return 1;
					}
					sink += dbuf[0];
					off += n;
					lz4_units++;
					lz4_in += f->unit;
					lz4_out += n;
				}
				td += cpu_now() - t0;
			}
		}
		t_lz4c[r] = tc;
		t_lz4d[r] = td;
	}

	/* Memory copy: 64 MiB, buffers touched first. */
	src = xmalloc(copy_len);
	dst = xmalloc(copy_len);
	memset(src, 0x5a, copy_len);
	memset(dst, 0, copy_len);
	for (r = 0; r < reps; r++) {
		double t0 = cpu_now();
		int k;

		for (k = 0; k < 4; k++) {
			src[k] = (uint8_t)r;
			memcpy(dst, src, copy_len);
			sink += dst[k * 4096];
		}
		t_copy[r] = cpu_now() - t0;
	}

	{
		double mc = median(t_classify, reps), mh = median(t_hash, reps);
		double mlc = median(t_lz4c, reps), mld = median(t_lz4d, reps);
		double mcp = median(t_copy, reps);

		printf("{\"reps\":%d,\"bytes_total\":%llu,\"units_total\":%llu,\"units_zero\":%llu,"
		    "\"units_dup\":%llu,\"units_unique\":%llu,\"bytes_nonzero\":%llu,\"bytes_unique\":%llu,"
		    "\"lz4_units\":%llu,\"lz4_in_bytes\":%llu,\"lz4_out_bytes\":%llu,"
		    "\"payload_bytes\":%llu,"
		    "\"classify_s\":%.6f,\"hash_s\":%.6f,\"lz4c_s\":%.6f,\"lz4d_s\":%.6f,"
		    "\"hash_Bps\":%.0f,\"lz4c_Bps\":%.0f,\"lz4d_Bps\":%.0f,\"memcpy_Bps\":%.0f,"
		    "\"sink\":%llu}\n",
		    reps, (unsigned long long)bytes_total, (unsigned long long)total_units,
		    (unsigned long long)zero_units, (unsigned long long)dup_units,
		    (unsigned long long)uniq_units, (unsigned long long)bytes_nonzero,
		    (unsigned long long)bytes_uniq,
		    (unsigned long long)lz4_units, (unsigned long long)lz4_in,
		    (unsigned long long)lz4_out, (unsigned long long)payload,
		    mc, mh, mlc, mld,
		    mh > 0 ? (double)bytes_uniq / mh : 0,
		    mlc > 0 ? (double)bytes_uniq / mlc : 0,
		    mld > 0 ? (double)lz4_in / mld : 0,
		    mcp > 0 ? 4.0 * (double)copy_len / mcp : 0,
		    (unsigned long long)(sink & 1));
	}
	/* Everything back, so a sanitizer build has no leak to report. */
	for (i = 0; i < nf; i++) {
		munmap((void *)(uintptr_t)files[i].base, files[i].size);
		free(files[i].uniq);
		free(files[i].path);
	}
	free(t.slot);
	free(t.used);
	free(cbuf);
	free(dbuf);
	free(clen_batch);
	free(src);
	free(dst);
	return 0;
}
