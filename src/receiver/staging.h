/* Staging files on the destination (proto/PROTOCOL.md 5.1, README
 * "Nothing half-written"): pre-flight checks of a manifest against the
 * destination directory, writes into DIR/.ferry-<session>-<name>.part,
 * and at commit: verify digests, fsync, rename into DIR/<name>, fsync DIR.
 * On abort every staging file is removed.  With CAP_REUSE (section 4.19)
 * a staging file may start as a copy of the existing DIR/<name> instead
 * of zeros (the reuse op).  Implements rsess_sink_ops. */
#ifndef FERRY_STAGING_H
#define FERRY_STAGING_H

#include <stdint.h>

#include "rsess.h"

struct staging_opts {
	const char *dest_dir;
	uint32_t expect_disks;      /* 0 = any number */
};

struct staging;

struct staging *staging_new(const struct staging_opts *o);
void staging_free(struct staging *st);     /* aborts if not committed */

/* The sink ops for rsess, with a struct staging * as ctx. */
extern const struct rsess_sink_ops staging_sink_ops;

/* After commit: final path of device i (or of the state blob with
 * i == ndev), NULL when out of range. */
const char *staging_final_path(const struct staging *st, uint32_t i);
uint32_t staging_count(const struct staging *st);

/* A commit's follow-up failed (the libvirt domain could not be defined or
 * started): remove the files the commit renamed into place, so the
 * failure leaves nothing behind.  No-op before a commit. */
void staging_unpublish(struct staging *st);

#endif
