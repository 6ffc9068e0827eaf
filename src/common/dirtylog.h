/* Dirty log: a file shared between a guest (the writer, e.g. `ferry-guest
 * run --dirty-log`) and ferry-send (the reader, `--dirty-log`), with one
 * bit per unit of each device saying "changed since the reader last
 * looked".  It replaces the hash rescan of every unit in pre-copy rounds
 * after the first, the way a hypervisor's dirty log (KVM's dirty bitmap,
 * QEMU's block dirty bitmaps) does.  Format and rules: proto/DIRTYLOG.md.
 *
 * Writer rule, for each change of one unit: dirtylog_begin names the unit
 * in the writer's slot, the bytes change, dirtylog_mark sets its bit (an
 * atomic OR with release order), dirtylog_end clears the slot.  Reader
 * rule: dirtylog_take (an atomic exchange with zero, acquire order, then
 * the units the slots name) before reading the units it returns.  A unit
 * changed after a take is marked again and seen by the next take; a
 * writer stopped at any point (SIGSTOP at switchover) has every unit it
 * changed since the reader's last take either marked or in its slot. */
#ifndef FERRY_DIRTYLOG_H
#define FERRY_DIRTYLOG_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define DIRTYLOG_MAGIC "FERRYDL1"       /* 8 bytes, no NUL in the file */
#define DIRTYLOG_VERSION 1u
#define DIRTYLOG_MAX_DEV 64u
#define DIRTYLOG_MAX_SLOTS 256u         /* writer threads */
#define DIRTYLOG_HDR_FIXED 24u          /* magic, version, ndev, nslots, reserved */
#define DIRTYLOG_HDR_PER_DEV 16u        /* unit, reserved, nunits */
#define DIRTYLOG_ALIGN 64u              /* bitmaps and file size: multiples of this */

struct dirtylog_dev {
	uint32_t unit;          /* bytes per unit: a power of two, 512..1 MiB */
	uint64_t nunits;        /* 1..2^32 */
	uint64_t off;           /* byte offset of the bitmap in the file */
	uint64_t nwords;        /* 64-bit words of the bitmap: ceil(nunits / 64) */
};

struct dirtylog_layout {
	uint32_t ndev;
	uint32_t nslots;        /* 1..DIRTYLOG_MAX_SLOTS, one per writer thread */
	uint64_t slots_off;     /* byte offset of the slots: nslots 64-bit words */
	struct dirtylog_dev dev[DIRTYLOG_MAX_DEV];
	uint64_t size;          /* total file size in bytes */
};

/* Pure: parse and check the header of a dirty log whose first len bytes
 * are p and whose file size is file_size.  Every field is checked (magic,
 * version, ndev, nslots, unit, nunits, reserved zero, file size equal to the
 * layout's); the error names the field.  Returns 0 or a negative FERR_
 * code (FERR_PROTO_VERSION for magic/version, FERR_PROTO_RANGE or
 * FERR_PROTO_LENGTH for the rest). */
int dirtylog_parse(const uint8_t *p, size_t len, uint64_t file_size, struct dirtylog_layout *l,
    struct ferr *e) FERRY_MUST_CHECK;

/* Layout for ndev devices (same checks as dirtylog_parse). */
int dirtylog_layout_for(uint32_t ndev, const uint32_t *unit, const uint64_t *nunits,
    uint32_t nslots, struct dirtylog_layout *l, struct ferr *e) FERRY_MUST_CHECK;

struct dirtylog {
	int fd;                 /* -1 when closed */
	uint8_t *map;           /* the whole file, shared, read-write */
	struct dirtylog_layout l;
	char path[4096];
};

/* Writer: create path (replacing an existing file atomically: write a
 * temporary beside it, then rename), with every bit clear, and map it. */
int dirtylog_create(struct dirtylog *dl, const char *path, uint32_t ndev, const uint32_t *unit,
    const uint64_t *nunits, uint32_t nslots, struct ferr *e) FERRY_MUST_CHECK;

/* Reader: open and map an existing log, checking its header.  Errors name
 * the path (FERR_IO when it cannot be opened or mapped). */
int dirtylog_open(struct dirtylog *dl, const char *path, struct ferr *e) FERRY_MUST_CHECK;

void dirtylog_close(struct dirtylog *dl);

/* Writer (slot: its own, < nslots; anything out of range is ignored):
 * about to change unit idx of device dev; it changed; done. */
void dirtylog_begin(struct dirtylog *dl, uint32_t slot, uint32_t dev, uint64_t idx);
void dirtylog_mark(struct dirtylog *dl, uint32_t dev, uint64_t idx);
void dirtylog_end(struct dirtylog *dl, uint32_t slot);

/* Reader: take the marks of device dev, clearing them in the file, and OR
 * them and the units of dev that slots name into out (l.dev[dev].nwords
 * words).  A slot naming a unit out of range is ignored.  Returns how many
 * bits were set in what was taken. */
uint64_t dirtylog_take(struct dirtylog *dl, uint32_t dev, uint64_t *out);

#endif
