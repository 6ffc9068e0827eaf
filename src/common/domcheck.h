/* The libvirt migration checks: can this domain move to that host?
 *
 * Each check is a pure function of a parsed domain (domxml.h) and of facts
 * about the hosts and files; it adds one row to a table: the check's name,
 * the source and destination values, pass / fail / waived, why, and the
 * check's own error code.  One code per check (err.h, PROTOCOL.md
 * section 7).  An operator may waive any check by name before running
 * the checks (--force-check NAME), except "same-file".
 *
 * Source side (ferry-send, from the live domain XML):
 *   cdrom        no CD-ROM or floppy with media         FERR_VIRT_CDROM
 *   hostdev      no host device passthrough             FERR_VIRT_HOSTDEV
 *   shareable    no shareable disk                      FERR_VIRT_SHAREABLE
 *   readonly     no read-only disk to migrate           FERR_VIRT_READONLY
 *   file-backed  every disk to migrate is a file        FERR_VIRT_NOTFILE
 *   cache        cache mode 'none' on every disk        FERR_VIRT_CACHE
 * Destination side (ferry-recv, at pre-flight):
 *   same-file    destination file is not the source     FERR_REFUSE_SAMEFILE
 *   cpu-arch     same CPU architecture                  FERR_VIRT_ARCH
 *   cpu-model    same CPU model (homogeneous only)      FERR_VIRT_CPU_MODEL
 *   host-cpus    host CPUs >= the domain's vCPUs        FERR_VIRT_CPUS
 *   memory       free memory >= the domain's memory     FERR_VIRT_MEMORY
 *   disk-space   free space for every disk              FERR_REFUSE_SPACE
 *   name-free    no domain of that name defined there   FERR_VIRT_EXISTS
 * After the copy (ferry-recv, before defining the domain):
 *   disk-images  same number and sizes of disk images   FERR_VIRT_IMAGES */
#ifndef FERRY_DOMCHECK_H
#define FERRY_DOMCHECK_H

#include <stdint.h>
#include <stdio.h>

#include "domxml.h"
#include "err.h"

struct json_object;

enum dc_status {
	DC_INVALID = 0,
	DC_PASS = 1,
	DC_FAIL = 2,
	DC_WAIVED = 3,        /* failed, but the operator waived it */
};

#define DC_MAX_ROWS    16u
#define DC_VALUE_MAX   160u

struct dc_row {
	const char *check;            /* the check's name (static) */
	char src[DC_VALUE_MAX];       /* source value, "" = not applicable */
	char dst[DC_VALUE_MAX];       /* destination value, "" = not applicable */
	enum dc_status status;
	int code;                     /* the check's code, whatever the status */
	char why[FERR_MSG_MAX];       /* names the device or value */
};

struct dc_table {
	uint32_t n;
	struct dc_row row[DC_MAX_ROWS];
	uint32_t waive;               /* bit i: check i of dc_check_names waived */
};

/* Facts about one disk to migrate, gathered by the caller (or by the
 * dc_disk_stat_* helpers below).  Paths are borrowed for the call. */
struct dc_disk {
	const char *target;           /* "vda" */
	const char *src_path;         /* source image */
	const char *dst_path;         /* destination file */
	uint64_t size;                /* source image size, bytes */
	uint64_t src_dev, src_ino;    /* source identity; both 0 = unknown */
	int dst_exists;
	uint64_t dst_dev, dst_ino;
	uint64_t dst_size;
	uint64_t dir_dev;             /* st_dev of the destination directory */
	uint64_t dir_free;            /* free bytes there */
};

/* Check names in table order, and how many. */
extern const char *const dc_check_names[];
extern const unsigned dc_check_count;

/* The code of a named check; 0 if there is no such check. */
int dc_check_code(const char *check);

void dc_table_init(struct dc_table *t);

/* Waive the named check in every later run on t.  FERR_USAGE for an
 * unknown name (the message lists the names) and for "same-file". */
int dc_table_waive(struct dc_table *t, const char *check, struct ferr *e) FERRY_MUST_CHECK;

/* Each adds (or replaces) its rows; they cannot fail. */
void domcheck_source(struct dc_table *t, const struct domxml *d);
/* src may be NULL; it gives the CPU model of a host-passthrough /
 * host-model domain and tells, by host UUID, whether both sides are one
 * host (then equal paths are the same file). */
void domcheck_destination(struct dc_table *t, const struct domxml *d, const struct domxml_host *src,
    const struct domxml_host *dst, const struct dc_disk *disks, uint32_t n);
/* The destination has (exists) a domain of the same name, in state. */
void domcheck_name_free(struct dc_table *t, const struct domxml *d, int exists, const char *state);
/* disks: the destination's images, dst_* filled after the copy. */
void domcheck_after_copy(struct dc_table *t, const struct domxml *d, const struct dc_disk *disks,
    uint32_t n);

/* 0 when no row failed (waived rows do not fail); else the first failed
 * row's code, with "CHECK: why" in e and how many more failed. */
int dc_table_result(const struct dc_table *t, struct ferr *e) FERRY_MUST_CHECK;

/* The row of a check, or NULL. */
const struct dc_row *dc_table_find(const struct dc_table *t, const char *check);

const char *dc_status_name(enum dc_status s);   /* "pass", "fail", "waived" */

/* A table for people: one line per check, aligned columns, a header. */
void dc_table_print(const struct dc_table *t, FILE *f);
/* {"ok": bool, "checks": [{"check","source","destination","result",
 * "code","why"}...]}: a new object (json_object_put it), NULL when out of
 * memory.  dc_table_print_json prints it as one line. */
struct json_object *dc_table_json(const struct dc_table *t);
int dc_table_print_json(const struct dc_table *t, FILE *f, struct ferr *e) FERRY_MUST_CHECK;

/* ---- on the wire (CHECKS, proto/PROTOCOL.md 4.16) ---- */

struct msg_checks;

/* The table's rows as CHECKS rows (at most FERRY_CHECKS_MAX). */
void dc_table_to_checks(const struct dc_table *t, struct msg_checks *out);
/* Add (or replace) rows received in CHECKS; rows naming a check this
 * side does not know are skipped and counted in the return value. */
unsigned dc_table_add_checks(struct dc_table *t, const struct msg_checks *in);

/* ---- facts from this host's file system (the only I/O here) ---- */

/* stat k->src_path: size, src_dev, src_ino.  FERR_IO naming the path
 * (also when it is not a regular file). */
int dc_disk_stat_source(struct dc_disk *k, struct ferr *e) FERRY_MUST_CHECK;
/* stat k->dst_path (absence is a fact, not an error) and statvfs its
 * directory: dst_*, dir_dev, dir_free.  FERR_IO naming the directory. */
int dc_disk_stat_dest(struct dc_disk *k, struct ferr *e) FERRY_MUST_CHECK;

#endif
