/* Deterministic initial content of the simulated guest, shared by create
 * (which writes it) and check (which regenerates it to compare).
 *
 * Everything derives from the image seed through XXH3 (per-unit seeds)
 * and splitmix64 (the stream), so content is a pure function of
 * (seed, index) plus, for memory, the run map below.
 *
 * Memory pages 1..n-1 come in runs of 1-32 pages of one kind, drawn by a
 * stream seeded with (seed, GEN_DOMAIN_RUNS): 45% zero, 25% text, 10%
 * duplicate, 20% random runs.  A duplicate page copies the initial content
 * of an earlier text or random page chosen by the same stream.
 * Disk blocks 1..n-1 are each, from XXH3(seed, block): 30% written (half
 * text, half random), 70% zero.  Page 0 and block 0 are the headers. */
#ifndef FERRY_GUEST_GEN_H
#define FERRY_GUEST_GEN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Domains keep the per-unit seeds of different uses apart. */
#define GEN_DOMAIN_RUNS   0x72756e73u   /* "runs": the page kind map */
#define GEN_DOMAIN_PAGE   0x70616765u   /* "page": a page's content */
#define GEN_DOMAIN_BLOCK  0x626c6b00u   /* "blk": a disk block */

enum gen_kind {
	GEN_INVALID = 0,
	GEN_ZERO = 1,
	GEN_TEXT = 2,       /* words from a small vocabulary; lz4 ~2-4x */
	GEN_DUP = 3,        /* copy of an earlier text or random page */
	GEN_RANDOM = 4,     /* incompressible */
	GEN_HEADER = 5,     /* page 0 / block 0 */
};

/* splitmix64 stream. */
struct prng {
	uint64_t s;
};

/* Seed a stream with XXH3_64bits_withSeed(be64 domain || be64 index, seed). */
void prng_init(struct prng *g, uint64_t seed, uint64_t domain, uint64_t index);

static inline uint64_t
prng_next(struct prng *g)
{
	uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Fill len bytes with stream output (big-endian words; a short tail takes
 * the high bytes of one more word). */
void gen_random(struct prng *g, uint8_t *buf, size_t len);

/* Fill len bytes with text-like content. */
void gen_text(struct prng *g, uint8_t *buf, size_t len);

/* The memory run map: kind of every page, and the source of duplicates. */
struct gen_map {
	uint64_t seed;
	uint32_t npages;
	uint8_t *kind;          /* enum gen_kind, [npages] */
	uint32_t *src;          /* for GEN_DUP: source page, else 0 */
};

/* Build the map for npages pages (GUEST_MIN_PAGES..).  FERR_NOMEM. */
int gen_map_new(uint64_t seed, uint64_t npages, struct gen_map **out,
    struct ferr *e) FERRY_MUST_CHECK;
void gen_map_free(struct gen_map *m);

/* Initial content of page i (1 <= i < npages) into page[GUEST_PAGE_SIZE]. */
void gen_page(const struct gen_map *m, uint32_t i, uint8_t *page);

/* Kind of disk block b (>= 1) of a disk made with seed. */
enum gen_kind gen_block_kind(uint64_t seed, uint64_t b);

/* Initial content of disk block b (>= 1) into block[GUEST_BLOCK_SIZE];
 * returns its kind (GEN_ZERO leaves the block zeroed). */
enum gen_kind gen_block(uint64_t seed, uint64_t b, uint8_t *block);

#endif
