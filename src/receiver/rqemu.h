/* ferry-recv with --qemu-qmp: the destination QEMU of a QEMU stream
 * session (proto/QEMU.md section 4).  At ACCEPT it checks that QEMU waits
 * for an incoming migration (-incoming defer), runs migrate-incoming on a
 * unix socket in a private directory and connects to it; the rebuilt
 * stream is written there, the bytes QEMU answers on its return path go
 * back to the sender, and a mirror of guest RAM (an unlinked file in the
 * destination directory) serves the stream's page references.  Commit =
 * the destination QEMU reports the incoming migration completed; on any
 * failure it is left not running. */
#ifndef FERRY_RQEMU_H
#define FERRY_RQEMU_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"
#include "msg_qemu.h"
#include "recvd.h"

/* Bytes queued for the destination QEMU above which frames wait (the
 * connection is not read further until they drain below RQEMU_LOW). */
#define RQEMU_HIGH (1024u * 1024u)
#define RQEMU_LOW (256u * 1024u)

/* The sink ops of a QEMU session (rsessions.c routes to these). */
int rqemu_accept(struct rsession *rs, const struct msg_manifest *m, struct msg_text *refusal);
int rqemu_blocks(struct rsession *rs, const struct qitem_block *b, uint32_t n, struct ferr *e)
    FERRY_MUST_CHECK;
int rqemu_write(struct rsession *rs, uint32_t block, uint64_t off, const uint8_t *p, uint32_t len,
    struct ferr *e) FERRY_MUST_CHECK;
int rqemu_read(struct rsession *rs, uint32_t block, uint64_t off, uint8_t *p, uint32_t len,
    struct ferr *e) FERRY_MUST_CHECK;
int rqemu_out(struct rsession *rs, const uint8_t *p, size_t n, struct ferr *e) FERRY_MUST_CHECK;
int rqemu_commit(struct rsession *rs, struct ferr *e) FERRY_MUST_CHECK;
void rqemu_abort(struct rsession *rs);
/* Free what is left (after commit or abort). */
void rqemu_free(struct rsession *rs);

/* 1 while more than RQEMU_HIGH bytes wait for the destination QEMU. */
int rqemu_backlogged(const struct rsession *rs);
/* For the done event: QEMU's own figures (NULL when not a QEMU session). */
struct json_object *rqemu_status(const struct rsession *rs);

#endif
