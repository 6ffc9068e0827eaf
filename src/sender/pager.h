/* Pre-copy rounds: scan source units, find those whose content differs
 * from what the receiver holds, and encode them into PAGES frames (zero
 * flag, reference to an identical unit already sent, lz4, or raw).
 * Pure over the mapped source: no sockets, no clock. */
#ifndef FERRY_PAGER_H
#define FERRY_PAGER_H

#include <stdint.h>

#include "dedupe.h"
#include "dirtylog.h"
#include "err.h"
#include "msg.h"
#include "scanpool.h"
#include "source.h"
#include "wr.h"

struct pager_stats {
	uint64_t units_scanned;
	uint64_t units_sent;
	uint64_t logical_bytes;     /* bytes of units sent */
	uint64_t frame_bytes;       /* PAGES bytes produced, headers included */
	uint64_t zero, dedup, lz4, raw;
};

/* What a unit's sent state was before a PAGES frame changed it: undone
 * when that frame is lost with a connection (never acknowledged). */
struct undo_ent {
	uint64_t seq;
	uint32_t dev;               /* index into dev[] */
	uint32_t idx;
	uint8_t hash[FERRY_HASH_LEN];
	uint8_t valid;
};

/* Per device: what HAVE said the receiver holds (section 4.19). */
struct pager_have {
	uint64_t held;              /* units [0, held) covered by HAVE so far */
	uint64_t reused;            /* units round 1 found already there */
	uint64_t mark;              /* round 1 counted units below this */
};

struct pager {
	struct source_dev *dev;
	uint32_t ndev;
	uint64_t seed;
	struct dedupe *dd;
	uint32_t round;             /* 0 before the first round */
	uint32_t cur_dev;
	uint64_t cur_idx;
	uint64_t rel_idx;           /* units of cur_dev before this are released */
	uint64_t next_seq;          /* PAGES sequence number to use next */
	struct scanpool sp;         /* per-unit work, maybe on worker threads */
	int sp_ready;
	uint32_t disp_dev;          /* the next unit to hand to the pool */
	uint64_t disp_idx;
	uint32_t jpos;              /* units of the pool's oldest job used so far */
	struct dirtylog *dl;        /* --dirty-log, or NULL: rescan every unit */
	uint64_t **scan;            /* with dl, per device: units rounds >= 2 scan */
	uint8_t (*zero_hash)[FERRY_HASH_LEN]; /* per device, of a full zero unit */
	struct pager_have *have;    /* per device */
	struct pager_stats round_st;
	struct pager_stats total;
	struct undo_ent *undo;      /* ring of unacknowledged unit changes */
	size_t undo_head, undo_len, undo_cap;
	uint64_t acked_seq;
};

/* Scanned source pages are dropped from the mapping every this many bytes. */
#define PAGER_RELEASE_BYTES (16u << 20)

/* Units that may be unacknowledged at once (the sender's window). */
#define PAGER_WINDOW_UNITS (256u * 1024u)

int pager_init(struct pager *p, struct source_dev *dev, uint32_t ndev, uint64_t seed,
    struct ferr *e) FERRY_MUST_CHECK;
void pager_fini(struct pager *p);
/* From now on, rounds after the first scan only the units the dirty log
 * marked (and those a lost frame carried), not every unit.  The log must
 * describe exactly these devices (count, unit sizes, unit counts), else
 * FERR_USAGE naming the first difference. */
int pager_use_dirtylog(struct pager *p, struct dirtylog *dl, struct ferr *e) FERRY_MUST_CHECK;
/* Scan on n worker threads from now on (`--threads`; 0: on the caller's). */
int pager_start_threads(struct pager *p, uint32_t n, struct ferr *e) FERRY_MUST_CHECK;

/* Start the next round: round 1 sends every unit the receiver does not
 * already hold (zeros, or what HAVE said), later ones the changed. */
void pager_begin_round(struct pager *p);

/* Section 4.19, before round 1: the receiver holds units [first, first +
 * count) of device id with these hashes (its staging file starts as a
 * copy of an existing file).  They become what was sent of those units,
 * so round 1 sends only the units whose content differs, and a unit with
 * the same content elsewhere may be sent as a reference to them.  Returns
 * 0, or PROTO_RANGE naming the field: a device not in the manifest, units
 * not following on from the device's last HAVE (each unit once, in
 * order), or past the device's end. */
int pager_have(struct pager *p, const struct msg_have *h, struct ferr *e) FERRY_MUST_CHECK;
/* At ACCEPT: 0 when every device HAVE named was covered to its end, else
 * PROTO_RANGE. */
int pager_have_complete(const struct pager *p, struct ferr *e) FERRY_MUST_CHECK;

/* Append at most one PAGES frame (payload at most max_payload) to w.
 * Returns 1 when a frame was written, 0 when the round has no more units
 * to send, PAGER_WINDOW_FULL when too many units are unacknowledged (wait
 * for ACK), -1 when not even one unit fits in w. */
#define PAGER_WINDOW_FULL 2
int pager_next_frame(struct pager *p, struct wr *w, uint32_t max_payload);

/* The receiver applied every PAGES up to seq: forget their undo records. */
void pager_ack(struct pager *p, uint64_t seq);
/* The connection was lost and the receiver expects next_seq next: undo
 * what frames >= next_seq did to the sent state, so those units are sent
 * again (re-read from the source), and move the round's scan back to the
 * earliest of them.  Returns
 * 0, or -1 when next_seq is outside (acked, next_seq] (a lying peer). */
int pager_rollback(struct pager *p, uint64_t next_seq);
/* Unacknowledged units. */
static inline size_t pager_unacked(const struct pager *p) { return p->undo_len; }

/* Per-device digests (section 5.2) of what the receiver holds, from the
 * sent hashes; call after a complete round with the guest paused. */
int pager_digests(struct pager *p, struct msg_commit *c, struct ferr *e) FERRY_MUST_CHECK;

/* Digest of a state blob: 1 MiB chunks, each hashed, then digested. */
int state_digest(uint64_t seed, const uint8_t *p, uint64_t len, uint8_t out[FERRY_HASH_LEN],
    struct ferr *e) FERRY_MUST_CHECK;
#define FERRY_STATE_CHUNK (1024u * 1024u)

#endif
