/* Receiver session: the sans-I/O protocol state machine of ferry-recv
 * (proto/PROTOCOL.md section 6.2).
 *
 * The daemon feeds received bytes with rsess_feed and sends whatever
 * rsess_output holds.  Everything that touches files goes through the sink
 * ops (staging.c in the daemon, a fake in tests and fuzzers).  No sockets,
 * no clock, no globals. */
#ifndef FERRY_RSESS_H
#define FERRY_RSESS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"
#include "msg_qemu.h"

enum rsess_state {
	RS_INVALID = 0,
	RS_WAIT_HELLO,      /* nothing received yet */
	RS_WAIT_MANIFEST,   /* WELCOME sent */
	RS_REUSING,         /* MANIFEST accepted, CAP_REUSE: HAVE frames go out, then ACCEPT */
	RS_RECEIVING,       /* ACCEPT sent: PAGES, STATE, COMMIT allowed */
	RS_COMMITTED,       /* COMMITTED sent: session over, success */
	RS_FAILED,          /* REFUSE or ERROR sent or received: session over */
};

struct rsess_sink_ops {
	/* Pre-flight: check the manifest against local policy and create the
	 * staging files.  0 to accept, or a refusal code (FERR_REFUSE_*) with
	 * refusal->device and ->text filled.  Nothing may be written to the
	 * destination before this accepts. */
	int (*accept)(void *ctx, const struct msg_manifest *m, uint64_t seed,
	    const uint8_t session_id[16], struct msg_text *refusal);
	/* Write or read len bytes of device number dev (index into the
	 * manifest) at byte offset off of its staging file. */
	int (*write)(void *ctx, uint32_t dev, uint64_t off, const uint8_t *p, uint32_t len,
	    struct ferr *e);
	int (*read)(void *ctx, uint32_t dev, uint64_t off, uint8_t *p, uint32_t len,
	    struct ferr *e);
	int (*state)(void *ctx, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e);
	/* The session has already checked every device digest against the
	 * hashes of the units it applied (section 5.2).  Verify the state
	 * blob's digest (FERR_VERIFY on mismatch), make the staging files
	 * durable and rename them into place. */
	int (*commit)(void *ctx, const struct msg_commit *c, struct ferr *e);
	/* Remove every staging file.  Called once on any failure. */
	void (*abort)(void *ctx);
	/* Pre-flight of a libvirt domain (section 4.15), before accept and
	 * only when a DOMAIN arrived: fill out with one row per check (sent
	 * as CHECKS), and return 0 when every check passed or was waived,
	 * else the first failed check's code with refusal->text filled.
	 * NULL when this receiver takes no domains (it then never offers
	 * FERRY_CAP_DOMAIN). */
	int (*domain_check)(void *ctx, const struct msg_manifest *m, const struct msg_domain *d,
	    struct msg_checks *out, struct msg_text *refusal);
	/* A QEMU stream session (section 4.17; NULL when this receiver takes
	 * none: it then never offers FERRY_CAP_QEMU).  accept sees the
	 * manifest's one DK_QEMU device; qemu_blocks gives the RAM block list
	 * (once), after which write / read address the mirror of guest RAM
	 * (dev = block index, off = byte offset, 4096 bytes); qemu_out takes
	 * the rebuilt stream bytes for the destination QEMU, in order; commit
	 * (after the stream digest matched) confirms the destination QEMU
	 * completed. */
	int (*qemu_blocks)(void *ctx, const struct qitem_block *b, uint32_t n, struct ferr *e);
	int (*qemu_out)(void *ctx, const uint8_t *p, size_t n, struct ferr *e);
	/* Return trips (section 4.19; NULL when this receiver reuses nothing:
	 * it then never offers FERRY_CAP_REUSE).  With CAP_REUSE, after
	 * accept, for each device in turn (rsess_reuse_step): a first call
	 * with first 0 decides.  When the device's destination file exists (a
	 * regular file of the device's size, not the source file), copy its
	 * units [first, first + count) into the staging file, fill hash[0 ..
	 * count) with each unit's keyed hash (page_hash with the session
	 * seed) as copied, a short last unit over its real length, and return
	 * 1; later calls continue where the last ended, up to the device's
	 * last unit.  Return 0 (first 0 only) when there is nothing to reuse:
	 * the staging file stays zeros and the device gets no more calls.  An
	 * error fails the session (staging is removed). */
	int (*reuse)(void *ctx, uint32_t dev, uint64_t first, uint32_t count,
	    uint8_t (*hash)[FERRY_HASH_LEN], struct ferr *e);
};

struct rsess_config {
	uint32_t max_frame;                 /* payload bytes we accept */
	/* Fill buf with n random bytes (session id). */
	void (*random)(void *buf, size_t n);
	uint32_t caps;                      /* capabilities offered (FERRY_CAP_*) */
};

struct rsess_stats {
	uint64_t frames;
	uint64_t logical_bytes;             /* unit bytes applied */
	uint64_t pages_zero, pages_dedup, pages_lz4, pages_raw;
	uint64_t state_bytes;
	uint32_t round;
	uint64_t units_offered;             /* units whose hashes HAVE offered (section 4.19) */
};

struct rsess;

struct rsess *rsess_new(const struct rsess_config *cfg, const struct rsess_sink_ops *ops,
    void *ctx);
void rsess_free(struct rsess *s);   /* calls ops->abort if not committed */

/* Process every complete frame in buf[0..len).  *consumed says how many
 * bytes were used; the rest (a partial frame) must be fed again with more
 * bytes after it.  Returns 0, or the error that ended the session (an
 * ERROR or REFUSE frame is then queued in the output; staging was
 * removed).  A REFUSE returns the refusal code. */
int rsess_feed(struct rsess *s, const uint8_t *buf, size_t len, size_t *consumed,
    struct ferr *e) FERRY_MUST_CHECK;

/* In RS_REUSING (section 4.19): copy and hash about budget bytes more of
 * the existing destination files (at least one unit), queue their HAVE
 * frames, and after the last device ACCEPT (the state becomes
 * RS_RECEIVING).  The daemon calls it until the state changes, letting
 * other work run in between.  Returns 0, or the error that failed the
 * session (an ERROR frame is queued, staging removed); called in any other
 * state it changes nothing and returns FERR_INTERNAL. */
int rsess_reuse_step(struct rsess *s, uint64_t budget, struct ferr *e) FERRY_MUST_CHECK;

/* The peer's connection is gone, or the operator aborted: fail the
 * session (removes staging) unless it has committed. */
void rsess_fail(struct rsess *s, int code, const char *why);

/* The connection broke but the session may be resumed (section 4.12):
 * drop queued output; the session keeps its state and staging files. */
void rsess_detach(struct rsess *s);
/* 1 when a session in this state can be resumed on a new connection. */
int rsess_resumable(const struct rsess *s);
/* A sender proved it owns this session on a new connection: queue
 * RESUMED (status RECEIVING, COMMITTED or FAILED; next_seq, state_offset).
 * Returns 0, or FERR_PROTO_RESUME before the session was accepted. */
int rsess_resume(struct rsess *s, struct ferr *e) FERRY_MUST_CHECK;
/* Highest PAGES sequence number applied. */
uint64_t rsess_last_seq(const struct rsess *s);

/* 1 when the session carries a QEMU stream (a DK_QEMU manifest). */
int rsess_is_qemu(const struct rsess *s);
/* Bytes the destination QEMU wrote on its return path: kept (at most
 * FERRY_QRETURN_MAX for the session) and queued as QRETURN; after a
 * resume they are all sent again (section 4.18). */
int rsess_qreturn(struct rsess *s, const uint8_t *p, size_t n, struct ferr *e) FERRY_MUST_CHECK;

/* Bytes queued for the peer. */
const uint8_t *rsess_output(struct rsess *s, size_t *len);
void rsess_output_consume(struct rsess *s, size_t n);

enum rsess_state rsess_state(const struct rsess *s);
const char *rsess_state_name(enum rsess_state st);
const struct rsess_stats *rsess_stats(const struct rsess *s);
const struct msg_manifest *rsess_manifest(const struct rsess *s);  /* NULL before MANIFEST */
const uint8_t *rsess_session_id(const struct rsess *s);
/* The DOMAIN payload received (decode with msg_domain_decode), or NULL. */
const uint8_t *rsess_domain(const struct rsess *s, size_t *len);
/* The error that failed the session (code 0 if none). */
const struct ferr *rsess_error(const struct rsess *s);

#endif
