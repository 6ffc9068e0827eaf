/* ferry-send --qemu-qmp: the source QEMU as what is migrated
 * (proto/QEMU.md).  QMP set-up and checks before anything is sent; QEMU
 * migrates into a unix socket in a private directory; its stream is parsed
 * (qstream.c) and sent as QSTREAM frames, RAM pages through the page kinds
 * (zero, reference, lz4, raw); QRETURN bytes go back into QEMU's socket.
 * Frames are kept until acknowledged so they can be sent again after a
 * cut; QEMU is not read further while more than the window is unacked. */
#ifndef FERRY_QSOURCE_H
#define FERRY_QSOURCE_H

#include <stdint.h>

#include "err.h"
#include "msg.h"

struct mig;
struct json_object;

/* Before connecting: QMP, state and capability checks (refusals name the
 * capability), then return-path on, QEMU's own cap lifted. */
int qsrc_open(struct mig *m, struct ferr *e) FERRY_MUST_CHECK;
void qsrc_free(struct mig *m);
/* The manifest's one DK_QEMU device. */
void qsrc_manifest(struct mig *m, struct msg_manifest *man);
/* ACCEPT arrived: listen, `migrate`. */
void qsrc_start(struct mig *m);
/* Send frames while the link has room. */
void qsrc_pump(struct mig *m);
void qsrc_ack(struct mig *m, uint64_t seq);
/* Last QSTREAM sequence number sent or built (for ACK checks). */
uint64_t qsrc_last_seq(const struct mig *m);
uint64_t qsrc_unacked(const struct mig *m);
/* RESUMED: send again from next_seq.  0, or -1 when outside the window. */
int qsrc_rollback(struct mig *m, uint64_t next_seq);
void qsrc_return(struct mig *m, const uint8_t *p, uint32_t n);
/* COMMITTED: the destination QEMU runs the guest's state now. */
void qsrc_committed(struct mig *m);
/* The migration failed with code: cancel QEMU's side and resume the guest,
 * unless QEMU already completed (then it stays paused). */
void qsrc_failed(struct mig *m, int code);
/* The result's byte and page counts. */
void qsrc_fill_result(struct mig *m);
/* Fields for the done event and ctl status. */
void qsrc_add_json(struct mig *m, struct json_object *o);
void qsrc_show_progress(struct mig *m);

#endif
