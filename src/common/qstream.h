/* An incremental parser of QEMU 7.2's migration stream (proto/QEMU.md).
 *
 * Pure: bytes in (qstream_feed, in chunks of any size), events out through
 * one callback; no I/O, no clock, no globals.  It understands the file
 * header, the configuration section, section records up to the first
 * device state, and inside the `ram` section every record: the block list
 * (MEM_SIZE), data pages (PAGE), zero pages (ZERO), CONTINUE, EOS.
 *
 * Every byte fed comes out exactly once, in order, either in an OPAQUE
 * event (carried verbatim) or as a PAGE event (whose record
 * qs_page_encode rebuilds byte for byte).  So the concatenation of the
 * events is the input, whatever the input is: bytes the parser does not
 * understand switch it to opaque carriage for the rest of the stream (one
 * FALLBACK event with the offset and the reason); they never make an error.
 * From the first device-state section (or QEMU_VM_EOF) on, the rest is
 * opaque by design (one TAIL event).
 *
 * Errors (returned by qstream_feed / qstream_finish) are only: the
 * callback's own error, stream truncated inside a record at
 * qstream_finish (FERR_PROTO_LENGTH, after the held bytes were emitted),
 * and use after an error or after finish (FERR_PROTO_STATE). */
#ifndef FERRY_QSTREAM_H
#define FERRY_QSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "wr.h"

/* QEMU's constants (migration/savevm.c, migration/ram.c of QEMU 7.2). */
#define QS_FILE_MAGIC 0x5145564du      /* "QEVM" */
#define QS_FILE_VERSION 3u
#define QS_RAM_VERSION 4u              /* version_id of the ram section */
#define QS_PAGE_SIZE 4096u             /* TARGET_PAGE_SIZE on x86 */
#define QS_PAGE_BITS 12u

enum qs_section_type {
	QS_VM_EOF = 0x00,
	QS_VM_SECTION_START = 0x01,
	QS_VM_SECTION_PART = 0x02,
	QS_VM_SECTION_END = 0x03,
	QS_VM_SECTION_FULL = 0x04,
	QS_VM_SUBSECTION = 0x05,
	QS_VM_VMDESCRIPTION = 0x06,
	QS_VM_CONFIGURATION = 0x07,
	QS_VM_COMMAND = 0x08,
	QS_VM_SECTION_FOOTER = 0x7e,
};

enum qs_vm_command {
	QS_CMD_OPEN_RETURN_PATH = 1,   /* no data */
	QS_CMD_PING = 2,               /* u32 */
};

/* RAM record flags: the low QS_PAGE_BITS of the record's be64 header. */
enum qs_ram_flag {
	QS_RAM_FULL = 0x01,            /* obsolete */
	QS_RAM_ZERO = 0x02,            /* a page filled with one byte */
	QS_RAM_MEM_SIZE = 0x04,        /* block list follows */
	QS_RAM_PAGE = 0x08,            /* a whole page follows */
	QS_RAM_EOS = 0x10,             /* end of this section's RAM records */
	QS_RAM_CONTINUE = 0x20,        /* same block as the previous page: no id */
	QS_RAM_XBZRLE = 0x40,
	QS_RAM_HOOK = 0x80,            /* RDMA */
	QS_RAM_COMPRESS_PAGE = 0x100,
	QS_RAM_MULTIFD_FLUSH = 0x200,
};

/* Limits of what the parser accepts before falling back. */
#define QS_BLOCKS_MAX 256              /* RAM blocks in the block list */
#define QS_ID_MAX 255                  /* block and section ids (a u8 length) */
#define QS_CONF_NAME_MAX 256           /* machine type name in the configuration */
#define QS_CAPS_MAX 64                 /* capabilities in configuration/capabilities */
#define QS_PING_LEN 4
/* A page record: header, id, data.  Also the longest record held. */
#define QS_PAGE_RECORD_MAX (8 + 1 + QS_ID_MAX + QS_PAGE_SIZE)

struct qs_block {
	char id[QS_ID_MAX + 1];        /* NUL-terminated */
	uint8_t id_len;                /* 1..255 */
	uint64_t len;                  /* used_length in bytes */
};

enum qs_page_kind {
	QS_PAGE_DATA = 1,              /* RAM_SAVE_FLAG_PAGE: QS_PAGE_SIZE bytes */
	QS_PAGE_ZERO = 2,              /* RAM_SAVE_FLAG_ZERO with fill byte 0 */
};

struct qs_page {
	enum qs_page_kind kind;
	uint32_t block;                /* index into the block list */
	uint64_t offset;               /* in the block, page aligned, < its len */
	int cont;                      /* the record had CONTINUE (no block id) */
	const uint8_t *data;           /* DATA: QS_PAGE_SIZE bytes, valid in the callback only */
};

enum qs_event_kind {
	QS_EV_OPAQUE = 1,   /* data[0..len) at stream offset off: carry verbatim */
	QS_EV_BLOCKS,       /* the ram block list is complete: blocks[0..nblocks) */
	QS_EV_PAGE,         /* one page record of len bytes at off */
	QS_EV_TAIL,         /* from off on, opaque by design: device state or EOF (reason) */
	QS_EV_FALLBACK,     /* from off on, opaque because not understood (reason) */
	QS_EV_END,          /* qstream_finish: the stream ended cleanly after off bytes */
};

struct qs_event {
	enum qs_event_kind kind;
	uint64_t off;
	size_t len;
	const uint8_t *data;           /* OPAQUE */
	struct qs_page page;           /* PAGE */
	const struct qs_block *blocks; /* BLOCKS (and valid for every later event) */
	uint32_t nblocks;
	const char *reason;            /* TAIL, FALLBACK */
};

/* The callback: 0 to go on, or an error (with e filled) that stops the
 * parser and is returned by qstream_feed. */
typedef int (*qs_event_fn)(void *ctx, const struct qs_event *ev, struct ferr *e);

enum qs_mode {
	QS_MODE_PARSE = 1,  /* understanding records */
	QS_MODE_TAIL,       /* device state reached: carrying the rest */
	QS_MODE_FALLBACK,   /* something not understood: carrying the rest */
};

struct qs_stats {
	enum qs_mode mode;
	uint64_t bytes;                /* fed so far */
	uint64_t opaque_bytes;
	uint64_t data_pages, zero_pages;
	uint64_t page_record_bytes;
	uint64_t switched_at;          /* TAIL/FALLBACK offset (0 in PARSE) */
	char reason[160];              /* TAIL/FALLBACK reason */
};

struct qstream;

/* NULL when out of memory. */
struct qstream *qstream_new(qs_event_fn fn, void *ctx);
void qstream_free(struct qstream *q);

/* Parse n more bytes (n may be 0).  Every byte is consumed: the parser
 * holds at most QS_PAGE_RECORD_MAX bytes of an unfinished record. */
int qstream_feed(struct qstream *q, const uint8_t *p, size_t n, struct ferr *e) FERRY_MUST_CHECK;

/* QEMU closed the stream.  In PARSE mode, a record cut short or a stream
 * that ends before its device state is FERR_PROTO_LENGTH (held bytes are
 * emitted as OPAQUE first); otherwise an END event. */
int qstream_finish(struct qstream *q, struct ferr *e) FERRY_MUST_CHECK;

void qstream_stats(const struct qstream *q, struct qs_stats *out);

/* The block list once known (NULL, 0 before). */
const struct qs_block *qstream_blocks(const struct qstream *q, uint32_t *n);

/* Re-encoding, for the receiver: the exact bytes of a page record, given
 * the id of its block.  qs_page_record_len is the size (0 when pg or
 * id_len is invalid); qs_page_encode writes it, FERR_USAGE on an invalid
 * page (kind, alignment, id length, missing data) or FERR_INTERNAL when w
 * has no room. */
size_t qs_page_record_len(const struct qs_page *pg, size_t id_len);
int qs_page_encode(struct wr *w, const struct qs_page *pg, const char *id, size_t id_len,
    struct ferr *e) FERRY_MUST_CHECK;

#endif
