/* On-disk formats of the simulated guest: the memory image header page,
 * the disk image header block and the header every written ("dirtied")
 * unit carries.  Pure encode/decode over caller buffers, no I/O.
 *
 * All multi-byte numbers are big-endian.  Offsets are in bytes.
 *
 * Memory image: mem_size bytes, GUEST_PAGE_SIZE pages.  Page 0:
 *   0  u8[8] magic "FRYGMEM1"
 *   8  u32   version (1)
 *  12  u32   page size (4096)
 *  16  u64   seed
 *  24  u64   memory size in bytes
 *  32  u64   disk size in bytes (0: created without a disk)
 *  40  u32   disk block size (65536)
 *  44  u32   reserved, 0
 *  48  u64   XXH3_64bits of bytes 0..47
 *  56  u64   reserved, 0
 *  64  u64   in-flight slot: index + 1 of the page being written, 0 = none
 *  72  u64   last generation handed out (0 = none yet)
 *  80..4095  zero
 * Bytes 64..79 change while the guest runs; each is one aligned 8-byte
 * store, never torn.
 *
 * Disk image: disk_size bytes, GUEST_BLOCK_SIZE blocks.  Block 0:
 *   0  u8[8] magic "FRYGDSK1"
 *   8  u32   version (1)
 *  12  u32   block size (65536)
 *  16  u64   seed (same as the memory image's)
 *  24  u64   disk size in bytes
 *  32  u64   XXH3_64bits of bytes 0..31
 *  40..65535 zero
 *
 * Dirtied unit (a page of 4096 or a block of 65536 bytes):
 *   0  u8[8] magic FE 46 52 59 44 49 52 54 ("\xfe" "FRYDIRT")
 *   8  u64   index of the unit in its image
 *  16  u64   generation (from the memory header's counter, >= 1)
 *  24  u32   unit size in bytes
 *  28  u16   writer: 1 = run, 2 = mark
 *  30  u16   text length (mark: bytes of text at offset 40; run: 0)
 *  32  u64   checksum = XXH3_64bits_withSeed(bytes 40..end,
 *                                            seed = XXH3_64bits(bytes 0..31))
 *  40..end   payload
 * The 0xFE first byte never starts initial content that is text, and
 * zero content starts with 0, so initial content is never taken for a
 * dirtied unit (random content would need to match all 8 bytes). */
#ifndef FERRY_GUEST_LAYOUT_H
#define FERRY_GUEST_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define GUEST_VERSION          1u
#define GUEST_PAGE_SIZE        4096u              /* bytes */
#define GUEST_BLOCK_SIZE       65536u             /* bytes */
#define GUEST_MIN_PAGES        64u                /* pages, incl. header */
#define GUEST_MAX_MEM          (1ull << 40)       /* bytes: 1 TiB */
#define GUEST_MIN_BLOCKS       2u                 /* blocks, incl. header */
#define GUEST_MAX_DISK         (1ull << 46)       /* bytes: 64 TiB */

#define GUEST_MEM_MAGIC        "FRYGMEM1"
#define GUEST_DISK_MAGIC       "FRYGDSK1"
#define GUEST_MAGIC_LEN        8u

/* offsets in the memory header page */
#define MEMHDR_SUM_OFF         48u   /* the checksummed prefix ends here */
#define MEMHDR_INFLIGHT_OFF    64u
#define MEMHDR_GEN_OFF         72u
#define MEMHDR_END             80u   /* bytes after this are zero */
/* offsets in the disk header block */
#define DISKHDR_SUM_OFF        32u
#define DISKHDR_END            40u

#define UNIT_HDR_LEN           40u
#define UNIT_SUM_OFF           32u
#define UNIT_WRITER_RUN        1u
#define UNIT_WRITER_MARK       2u
#define UNIT_TEXT_MAX          (GUEST_PAGE_SIZE - UNIT_HDR_LEN)

struct mem_hdr {
	uint64_t seed;
	uint64_t mem_size;      /* bytes */
	uint64_t disk_size;     /* bytes, 0 = none */
	uint64_t inflight;      /* page index + 1, 0 = none */
	uint64_t last_gen;
};

struct disk_hdr {
	uint64_t seed;
	uint64_t disk_size;     /* bytes */
};

/* Write the header into page (GUEST_PAGE_SIZE bytes, all of it: the rest
 * is zeroed).  inflight and last_gen are written too. */
void memhdr_encode(const struct mem_hdr *h, uint8_t *page);

/* Decode and validate page 0: magic, version, unit sizes, checksum, size
 * limits, in-flight slot in range, bytes after MEMHDR_END zero.
 * FERR_PROTO_VERSION for a wrong magic or version, FERR_VERIFY for any
 * other mismatch; the message names the field. */
int memhdr_decode(const uint8_t *page, struct mem_hdr *h, struct ferr *e) FERRY_MUST_CHECK;

void diskhdr_encode(const struct disk_hdr *h, uint8_t *block);
int diskhdr_decode(const uint8_t *block, struct disk_hdr *h, struct ferr *e) FERRY_MUST_CHECK;

/* Size checks shared by create and the decoders; FERR_USAGE naming what. */
int layout_check_mem_size(uint64_t bytes, struct ferr *e) FERRY_MUST_CHECK;
int layout_check_disk_size(uint64_t bytes, struct ferr *e) FERRY_MUST_CHECK;

/* The in-flight slot and generation counter live in the mapped header
 * page; these do single aligned 8-byte accesses (page must be the
 * page-aligned mapping). */
void memhdr_store_u64(uint8_t *page, size_t off, uint64_t v);
uint64_t memhdr_load_u64(const uint8_t *page, size_t off);

/* Dirtied units. */
struct unit_info {
	uint64_t index;
	uint64_t gen;
	uint32_t size;
	uint16_t writer;
	uint16_t text_len;
};

enum unit_verdict {
	UNIT_NOT_DIRTY = 0,     /* no dirty magic: judge as initial content */
	UNIT_OK,
	UNIT_BAD_SUM,
	UNIT_BAD_INDEX,         /* valid checksum, another unit's index */
	UNIT_BAD_SIZE,          /* valid checksum, wrong unit size */
	UNIT_BAD_WRITER,        /* valid checksum, unknown writer or text length */
};

/* Fill unit (size bytes) as written by `run` at (index, gen): the payload
 * is half a repeating pattern of (index, gen), half pseudo-random from
 * (index, gen). */
void unit_build_run(uint8_t *unit, uint32_t size, uint64_t index, uint64_t gen);

/* Fill unit with text at offset 40 (len <= size - 40), zeros after it. */
void unit_build_mark(uint8_t *unit, uint32_t size, uint64_t index, uint64_t gen,
    const char *text, size_t len);

/* Judge unit (size bytes) expected at index; fills info when the magic
 * matched. */
enum unit_verdict unit_verify(const uint8_t *unit, uint32_t size, uint64_t index,
    struct unit_info *info);

const char *unit_verdict_str(enum unit_verdict v);

/* Big-endian 64-bit store into a byte buffer (used by the generators). */
static inline void
put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

#endif
