#include "layout.h"

#include <endian.h>
#include <string.h>
#include <xxhash.h>

#include "gen.h"
#include "rd.h"
#include "wr.h"

static const uint8_t unit_magic[GUEST_MAGIC_LEN] = {
	0xfe, 'F', 'R', 'Y', 'D', 'I', 'R', 'T'
};

int
layout_check_mem_size(uint64_t bytes, struct ferr *e)
{
	if (bytes % GUEST_PAGE_SIZE != 0)
		return ferr_set(e, FERR_USAGE, "memory size %llu is not a multiple of the page size %u",
		    (unsigned long long)bytes, GUEST_PAGE_SIZE);
	if (bytes / GUEST_PAGE_SIZE < GUEST_MIN_PAGES)
		return ferr_set(e, FERR_USAGE, "memory size %llu is under the minimum of %u pages",
		    (unsigned long long)bytes, GUEST_MIN_PAGES);
	if (bytes > GUEST_MAX_MEM)
		return ferr_set(e, FERR_USAGE, "memory size %llu is over the maximum of %llu",
		    (unsigned long long)bytes, (unsigned long long)GUEST_MAX_MEM);
	return 0;
}

int
layout_check_disk_size(uint64_t bytes, struct ferr *e)
{
	if (bytes % GUEST_BLOCK_SIZE != 0)
		return ferr_set(e, FERR_USAGE, "disk size %llu is not a multiple of the block size %u",
		    (unsigned long long)bytes, GUEST_BLOCK_SIZE);
	if (bytes / GUEST_BLOCK_SIZE < GUEST_MIN_BLOCKS)
		return ferr_set(e, FERR_USAGE, "disk size %llu is under the minimum of %u blocks",
		    (unsigned long long)bytes, GUEST_MIN_BLOCKS);
	if (bytes > GUEST_MAX_DISK)
		return ferr_set(e, FERR_USAGE, "disk size %llu is over the maximum of %llu",
		    (unsigned long long)bytes, (unsigned long long)GUEST_MAX_DISK);
	return 0;
}

void
memhdr_encode(const struct mem_hdr *h, uint8_t *page)
{
	struct wr w;

	memset(page, 0, GUEST_PAGE_SIZE);
	wr_init(&w, page, GUEST_PAGE_SIZE);
	(void)wr_bytes(&w, GUEST_MEM_MAGIC, GUEST_MAGIC_LEN);
	(void)wr_u32(&w, GUEST_VERSION);
	(void)wr_u32(&w, GUEST_PAGE_SIZE);
	(void)wr_u64(&w, h->seed);
	(void)wr_u64(&w, h->mem_size);
	(void)wr_u64(&w, h->disk_size);
	(void)wr_u32(&w, GUEST_BLOCK_SIZE);
	(void)wr_u32(&w, 0);
	(void)wr_u64(&w, XXH3_64bits(page, MEMHDR_SUM_OFF));
	(void)wr_u64(&w, 0);
	(void)wr_u64(&w, h->inflight);
	(void)wr_u64(&w, h->last_gen);
}

static int
all_zero(const uint8_t *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

int
memhdr_decode(const uint8_t *page, struct mem_hdr *h, struct ferr *e)
{
	uint8_t magic[GUEST_MAGIC_LEN];
	uint32_t version, psize, bsize, rsv32;
	uint64_t sum, rsv64;
	struct rd r;

	rd_init(&r, page, MEMHDR_END);
	(void)rd_copy(&r, magic, sizeof(magic));
	(void)rd_u32(&r, &version);
	(void)rd_u32(&r, &psize);
	(void)rd_u64(&r, &h->seed);
	(void)rd_u64(&r, &h->mem_size);
	(void)rd_u64(&r, &h->disk_size);
	(void)rd_u32(&r, &bsize);
	(void)rd_u32(&r, &rsv32);
	(void)rd_u64(&r, &sum);
	(void)rd_u64(&r, &rsv64);
	(void)rd_u64(&r, &h->inflight);
	(void)rd_u64(&r, &h->last_gen);
	if (rd_end(&r) != 0)
		return ferr_set(e, FERR_INTERNAL, "memory header: decoder out of step");
	if (memcmp(magic, GUEST_MEM_MAGIC, GUEST_MAGIC_LEN) != 0)
		return ferr_set(e, FERR_PROTO_VERSION, "not a ferry-guest memory image (bad magic)");
	if (version != GUEST_VERSION)
		return ferr_set(e, FERR_PROTO_VERSION, "memory header: version %u, expected %u",
		    version, GUEST_VERSION);
	if (sum != XXH3_64bits(page, MEMHDR_SUM_OFF))
		return ferr_set(e, FERR_VERIFY, "memory header: bad checksum");
	if (psize != GUEST_PAGE_SIZE || bsize != GUEST_BLOCK_SIZE)
		return ferr_set(e, FERR_VERIFY, "memory header: page size %u / block size %u, expected %u / %u",
		    psize, bsize, GUEST_PAGE_SIZE, GUEST_BLOCK_SIZE);
	if (rsv32 != 0 || rsv64 != 0)
		return ferr_set(e, FERR_VERIFY, "memory header: reserved field not zero");
	if (layout_check_mem_size(h->mem_size, NULL) != 0)
		return ferr_set(e, FERR_VERIFY, "memory header: memory size %llu not valid",
		    (unsigned long long)h->mem_size);
	if (h->disk_size != 0 && layout_check_disk_size(h->disk_size, NULL) != 0)
		return ferr_set(e, FERR_VERIFY, "memory header: disk size %llu not valid",
		    (unsigned long long)h->disk_size);
	if (h->inflight == 1 || h->inflight > h->mem_size / GUEST_PAGE_SIZE)
		return ferr_set(e, FERR_VERIFY, "memory header: in-flight slot %llu out of range",
		    (unsigned long long)h->inflight);
	if (!all_zero(page + MEMHDR_END, GUEST_PAGE_SIZE - MEMHDR_END))
		return ferr_set(e, FERR_VERIFY, "memory header: bytes after offset %u not zero", MEMHDR_END);
	return 0;
}

void
diskhdr_encode(const struct disk_hdr *h, uint8_t *block)
{
	struct wr w;

	memset(block, 0, GUEST_BLOCK_SIZE);
	wr_init(&w, block, GUEST_BLOCK_SIZE);
	(void)wr_bytes(&w, GUEST_DISK_MAGIC, GUEST_MAGIC_LEN);
	(void)wr_u32(&w, GUEST_VERSION);
	(void)wr_u32(&w, GUEST_BLOCK_SIZE);
	(void)wr_u64(&w, h->seed);
	(void)wr_u64(&w, h->disk_size);
	(void)wr_u64(&w, XXH3_64bits(block, DISKHDR_SUM_OFF));
}

int
diskhdr_decode(const uint8_t *block, struct disk_hdr *h, struct ferr *e)
{
	uint8_t magic[GUEST_MAGIC_LEN];
	uint32_t version, bsize;
	uint64_t sum;
	struct rd r;

	rd_init(&r, block, DISKHDR_END);
	(void)rd_copy(&r, magic, sizeof(magic));
	(void)rd_u32(&r, &version);
	(void)rd_u32(&r, &bsize);
	(void)rd_u64(&r, &h->seed);
	(void)rd_u64(&r, &h->disk_size);
	(void)rd_u64(&r, &sum);
	if (rd_end(&r) != 0)
		return ferr_set(e, FERR_INTERNAL, "disk header: decoder out of step");
	if (memcmp(magic, GUEST_DISK_MAGIC, GUEST_MAGIC_LEN) != 0)
		return ferr_set(e, FERR_PROTO_VERSION, "not a ferry-guest disk image (bad magic)");
	if (version != GUEST_VERSION)
		return ferr_set(e, FERR_PROTO_VERSION, "disk header: version %u, expected %u",
		    version, GUEST_VERSION);
	if (sum != XXH3_64bits(block, DISKHDR_SUM_OFF))
		return ferr_set(e, FERR_VERIFY, "disk header: bad checksum");
	if (bsize != GUEST_BLOCK_SIZE)
		return ferr_set(e, FERR_VERIFY, "disk header: block size %u, expected %u",
		    bsize, GUEST_BLOCK_SIZE);
	if (layout_check_disk_size(h->disk_size, NULL) != 0)
		return ferr_set(e, FERR_VERIFY, "disk header: disk size %llu not valid",
		    (unsigned long long)h->disk_size);
	if (!all_zero(block + DISKHDR_END, GUEST_BLOCK_SIZE - DISKHDR_END))
		return ferr_set(e, FERR_VERIFY, "disk header: bytes after offset %u not zero", DISKHDR_END);
	return 0;
}

/* Why volatile and fences: the slot models a CPU store that must be
 * visible (to a SIGSTOP snapshot or a reader of the shared file) before
 * the page it names changes, and cleared only after the page is whole. */
void
memhdr_store_u64(uint8_t *page, size_t off, uint64_t v)
{
	volatile uint64_t *slot = (volatile uint64_t *)(void *)(page + off);

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	*slot = htobe64(v);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

uint64_t
memhdr_load_u64(const uint8_t *page, size_t off)
{
	const volatile uint64_t *slot = (const volatile uint64_t *)(const void *)(page + off);

	return be64toh(*slot);
}

static uint64_t
unit_sum(const uint8_t *unit, uint32_t size)
{
	uint64_t seed = XXH3_64bits(unit, UNIT_SUM_OFF);

	return XXH3_64bits_withSeed(unit + UNIT_HDR_LEN, size - UNIT_HDR_LEN, seed);
}

static void
unit_header(uint8_t *unit, uint32_t size, uint64_t index, uint64_t gen,
    uint16_t writer, uint16_t text_len)
{
	struct wr w;

	wr_init(&w, unit, UNIT_HDR_LEN);
	(void)wr_bytes(&w, unit_magic, sizeof(unit_magic));
	(void)wr_u64(&w, index);
	(void)wr_u64(&w, gen);
	(void)wr_u32(&w, size);
	(void)wr_u16(&w, writer);
	(void)wr_u16(&w, text_len);
	(void)wr_u64(&w, unit_sum(unit, size));
}

void
unit_build_run(uint8_t *unit, uint32_t size, uint64_t index, uint64_t gen)
{
	uint8_t *p = unit + UNIT_HDR_LEN;
	uint8_t *half = unit + size / 2;
	uint8_t *end = unit + size;
	struct prng g;

	/* first half: (index, gen) repeated, which lz4 shrinks to a few bytes */
	for (; p + 16 <= half; p += 16) {
		put_be64(p, index);
		put_be64(p + 8, gen);
	}
	/* second half: pseudo-random, incompressible */
	prng_init(&g, gen, 0x72756e00u, index);
	gen_random(&g, p, (size_t)(end - p));
	unit_header(unit, size, index, gen, UNIT_WRITER_RUN, 0);
}

void
unit_build_mark(uint8_t *unit, uint32_t size, uint64_t index, uint64_t gen,
    const char *text, size_t len)
{
	memset(unit + UNIT_HDR_LEN, 0, size - UNIT_HDR_LEN);
	memcpy(unit + UNIT_HDR_LEN, text, len);
	unit_header(unit, size, index, gen, UNIT_WRITER_MARK, (uint16_t)len);
}

enum unit_verdict
unit_verify(const uint8_t *unit, uint32_t size, uint64_t index, struct unit_info *info)
{
	uint64_t sum;
	struct rd r;

	if (memcmp(unit, unit_magic, sizeof(unit_magic)) != 0)
		return UNIT_NOT_DIRTY;
	rd_init(&r, unit + GUEST_MAGIC_LEN, UNIT_HDR_LEN - GUEST_MAGIC_LEN);
	(void)rd_u64(&r, &info->index);
	(void)rd_u64(&r, &info->gen);
	(void)rd_u32(&r, &info->size);
	(void)rd_u16(&r, &info->writer);
	(void)rd_u16(&r, &info->text_len);
	(void)rd_u64(&r, &sum);
	if (sum != unit_sum(unit, size))
		return UNIT_BAD_SUM;
	if (info->index != index)
		return UNIT_BAD_INDEX;
	if (info->size != size)
		return UNIT_BAD_SIZE;
	if (info->writer == UNIT_WRITER_RUN && info->text_len == 0)
		return UNIT_OK;
	if (info->writer == UNIT_WRITER_MARK && info->text_len <= size - UNIT_HDR_LEN)
		return UNIT_OK;
	return UNIT_BAD_WRITER;
}

const char *
unit_verdict_str(enum unit_verdict v)
{
	switch (v) {
	case UNIT_NOT_DIRTY: return "not a dirtied unit";
	case UNIT_OK: return "ok";
	case UNIT_BAD_SUM: return "bad checksum";
	case UNIT_BAD_INDEX: return "index mismatch";
	case UNIT_BAD_SIZE: return "wrong unit size";
	case UNIT_BAD_WRITER: return "unknown writer";
	}
	return "?";
}
