/* The per-unit work of a pre-copy round, off the event loop: copy a unit
 * out of the live mapping, test it for zeros, hash it, and lz4-compress a
 * changed one (`ferry-send --threads N`).  The pager hands out jobs of
 * consecutive units in scan order and takes the results back in the same
 * order, so the frames are the same bytes whatever the number of threads;
 * with none, the pager runs each job itself when it needs it.
 *
 * Only the pager's thread touches the ring; a worker touches only the job
 * it runs and the mapping it reads.  What the receiver holds of each unit
 * is copied into the job when it is made, so workers never read the
 * pager's tables, which the event loop changes. */
#ifndef FERRY_SCANPOOL_H
#define FERRY_SCANPOOL_H

#include <pthread.h>
#include <stdint.h>

#include "err.h"
#include "frame.h"

#define SCAN_JOB_BYTES (256u << 10)     /* logical bytes per job, for small units */
#define SCAN_JOB_UNITS 64u              /* units per job at most */
#define SCAN_JOBS 8u                    /* jobs made ahead of the pager at most */
#define SCAN_MAX_THREADS 64u

enum scan_kind {
	SU_UNCHANGED = 1,   /* same hash as what the receiver holds */
	SU_ZERO,            /* all zero bytes */
	SU_DATA,            /* changed: lz4 bytes when clen > 0, else raw */
};

struct scan_unit {
	uint32_t idx;
	uint32_t len;
	uint8_t had;                        /* in: the receiver holds sent */
	uint8_t kind;                       /* out: enum scan_kind */
	uint8_t sent[FERRY_HASH_LEN];       /* in */
	uint8_t hash[FERRY_HASH_LEN];       /* out */
	uint32_t clen;                      /* out, SU_DATA: lz4 bytes, 0 = raw */
	uint32_t at;                        /* offset of this unit in copy and lz4 */
};

enum scan_job_state { JOB_FREE, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct scan_job {
	const uint8_t *map;                 /* the device's mapping */
	uint32_t dev;                       /* index into the pager's devices */
	uint32_t unit;                      /* the device's unit size */
	const uint8_t *zero_hash;           /* hash of a whole zero unit */
	uint32_t n;
	struct scan_unit u[SCAN_JOB_UNITS];
	uint8_t *copy;                      /* job_bytes: units as hashed */
	uint8_t *lz4;                       /* job_bytes: compressed units */
	enum scan_job_state state;
};

struct scanpool {
	pthread_mutex_t mu;
	pthread_cond_t work;                /* a job was queued, or stop */
	pthread_cond_t done;                /* a job finished */
	pthread_t thr[SCAN_MAX_THREADS];
	uint32_t nthr;
	int stop;
	uint64_t seed;
	uint32_t job_bytes;                 /* logical bytes per job at most */
	struct scan_job job[SCAN_JOBS];
	uint32_t head, count;               /* the ring, in scan order */
};

/* Buffers for every job (job_bytes: at least the largest unit, usually
 * SCAN_JOB_BYTES); no threads yet. */
int scanpool_init(struct scanpool *sp, uint64_t seed, uint32_t job_bytes,
    struct ferr *e) FERRY_MUST_CHECK;
/* Start n worker threads (0: the caller runs every job). */
int scanpool_start(struct scanpool *sp, uint32_t n, struct ferr *e) FERRY_MUST_CHECK;
/* Stop and join the workers, free the buffers. */
void scanpool_fini(struct scanpool *sp);

/* The next free job at the ring's tail, to fill in (map, dev, unit,
 * zero_hash, n, u[].idx/len/had/sent), or NULL when SCAN_JOBS are out. */
struct scan_job *scanpool_reserve(struct scanpool *sp);
void scanpool_submit(struct scanpool *sp, struct scan_job *j);
/* The oldest job, finished (run here if no worker has started it), or
 * NULL when the ring is empty. */
struct scan_job *scanpool_head(struct scanpool *sp);
/* Free the oldest job. */
void scanpool_pop(struct scanpool *sp);
/* Wait for the jobs workers are running, then free every job: the
 * results are stale (the pager moved its scan back, or a round ended). */
void scanpool_drop_all(struct scanpool *sp);
static inline uint32_t scanpool_pending(const struct scanpool *sp) { return sp->count; }

/* The work itself, on one job (what a worker calls). */
void scan_job_run(struct scan_job *j, uint64_t seed);

#endif
