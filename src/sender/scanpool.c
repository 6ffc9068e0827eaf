#include "scanpool.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "codec_lz4.h"
#include "pagehash.h"

void
scan_job_run(struct scan_job *j, uint64_t seed)
{
	uint32_t k;

	for (k = 0; k < j->n; k++) {
		struct scan_unit *u = &j->u[k];
		const uint8_t *live = j->map + (uint64_t)u->idx * j->unit;
		uint8_t *copy = j->copy + u->at;

		/* A unit the receiver holds is hashed in place first: most of a
		 * rescan is unchanged units, and they need neither a copy nor
		 * a zero test. */
		if (u->had) {
			page_hash(seed, live, u->len, u->hash);
			if (memcmp(u->hash, u->sent, FERRY_HASH_LEN) == 0) {
				u->kind = SU_UNCHANGED;
				continue;
			}
		}
		/* Copy, then hash and encode the copy: the guest may be writing
		 * the live unit, and what is sent must be what was hashed. */
		memcpy(copy, live, u->len);
		if (page_is_zero(copy, u->len)) {
			if (u->len == j->unit)
				memcpy(u->hash, j->zero_hash, FERRY_HASH_LEN);
			else
				page_hash(seed, copy, u->len, u->hash);
			u->kind = SU_ZERO;
		} else {
			page_hash(seed, copy, u->len, u->hash);
			u->kind = SU_DATA;
		}
		if (u->had && memcmp(u->hash, u->sent, FERRY_HASH_LEN) == 0) {
			u->kind = SU_UNCHANGED;
			continue;
		}
		/* Compressed whether or not the pager then finds an identical
		 * unit already sent (a reference): deciding that needs the
		 * pager's table, and duplicates are the few. */
		u->clen = u->kind == SU_DATA ? codec_lz4_encode(copy, u->len, j->lz4 + u->at, u->len - 1) : 0;
	}
}

static void *
worker(void *arg)
{
	struct scanpool *sp = arg;

	pthread_mutex_lock(&sp->mu);
	for (;;) {
		struct scan_job *j = NULL;
		uint32_t i;

		while (!sp->stop) {
			for (i = 0; i < sp->count; i++) {
				struct scan_job *c = &sp->job[(sp->head + i) % SCAN_JOBS];

				if (c->state == JOB_QUEUED) {
					j = c;
					break;
				}
			}
			if (j != NULL)
				break;
			pthread_cond_wait(&sp->work, &sp->mu);
		}
		if (sp->stop)
			break;
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&sp->mu);
		scan_job_run(j, sp->seed);
		pthread_mutex_lock(&sp->mu);
		j->state = JOB_DONE;
		pthread_cond_broadcast(&sp->done);
	}
	pthread_mutex_unlock(&sp->mu);
	return NULL;
}

static void
free_buffers(struct scanpool *sp)
{
	uint32_t i;

	for (i = 0; i < SCAN_JOBS; i++) {
		free(sp->job[i].copy);
		free(sp->job[i].lz4);
		sp->job[i].copy = sp->job[i].lz4 = NULL;
	}
}

int
scanpool_init(struct scanpool *sp, uint64_t seed, uint32_t job_bytes, struct ferr *e)
{
	uint32_t i;

	memset(sp, 0, sizeof(*sp));
	sp->seed = seed;
	sp->job_bytes = job_bytes;
	for (i = 0; i < SCAN_JOBS; i++) {
		sp->job[i].copy = malloc(job_bytes);
		sp->job[i].lz4 = malloc(job_bytes);
		if (sp->job[i].copy == NULL || sp->job[i].lz4 == NULL) {
			free_buffers(sp);
			return ferr_set(e, FERR_NOMEM, "scan pool: %u job buffers of %u KiB", SCAN_JOBS,
			    2 * job_bytes / 1024);
		}
	}
	if (pthread_mutex_init(&sp->mu, NULL) != 0) {
		free_buffers(sp);
		return ferr_set(e, FERR_NOMEM, "scan pool: mutex");
	}
	if (pthread_cond_init(&sp->work, NULL) != 0) {
		pthread_mutex_destroy(&sp->mu);
		free_buffers(sp);
		return ferr_set(e, FERR_NOMEM, "scan pool: condition variable");
	}
	if (pthread_cond_init(&sp->done, NULL) != 0) {
		pthread_cond_destroy(&sp->work);
		pthread_mutex_destroy(&sp->mu);
		free_buffers(sp);
		return ferr_set(e, FERR_NOMEM, "scan pool: condition variable");
	}
	return 0;
}

int
scanpool_start(struct scanpool *sp, uint32_t n, struct ferr *e)
{
	sigset_t all, old;
	int rc = 0;

	if (n > SCAN_MAX_THREADS)
		return ferr_set(e, FERR_USAGE, "--threads %u: at most %u", n, SCAN_MAX_THREADS);
	/* Workers take no signals: the event loop handles them. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (sp->nthr < n) {
		if ((rc = pthread_create(&sp->thr[sp->nthr], NULL, worker, sp)) != 0)
			break;
		sp->nthr++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return ferr_set(e, FERR_NOMEM, "scan pool: starting thread %u of %u: %s", sp->nthr + 1, n,
		    strerror(rc));
	return 0;
}

void
scanpool_fini(struct scanpool *sp)
{
	uint32_t i;

	pthread_mutex_lock(&sp->mu);
	sp->stop = 1;
	pthread_cond_broadcast(&sp->work);
	pthread_mutex_unlock(&sp->mu);
	for (i = 0; i < sp->nthr; i++)
		pthread_join(sp->thr[i], NULL);
	sp->nthr = 0;
	free_buffers(sp);
	pthread_cond_destroy(&sp->work);
	pthread_cond_destroy(&sp->done);
	pthread_mutex_destroy(&sp->mu);
}

struct scan_job *
scanpool_reserve(struct scanpool *sp)
{
	struct scan_job *j;

	if (sp->count == SCAN_JOBS)
		return NULL;
	j = &sp->job[(sp->head + sp->count) % SCAN_JOBS];
	j->n = 0;
	return j;
}

void
scanpool_submit(struct scanpool *sp, struct scan_job *j)
{
	uint32_t k, at = 0;

	for (k = 0; k < j->n; k++) {
		j->u[k].at = at;
		j->u[k].clen = 0;
		at += j->u[k].len;
	}
	pthread_mutex_lock(&sp->mu);
	j->state = JOB_QUEUED;
	sp->count++;
	if (sp->nthr > 0)
		pthread_cond_signal(&sp->work);
	pthread_mutex_unlock(&sp->mu);
}

struct scan_job *
scanpool_head(struct scanpool *sp)
{
	struct scan_job *j;
	int mine = 0;

	if (sp->count == 0)
		return NULL;
	j = &sp->job[sp->head];
	pthread_mutex_lock(&sp->mu);
	if (j->state == JOB_QUEUED) {
		j->state = JOB_RUNNING;
		mine = 1;
	} else {
		while (j->state != JOB_DONE)
			pthread_cond_wait(&sp->done, &sp->mu);
	}
	pthread_mutex_unlock(&sp->mu);
	if (mine) {
		scan_job_run(j, sp->seed);
		pthread_mutex_lock(&sp->mu);
		j->state = JOB_DONE;
		pthread_mutex_unlock(&sp->mu);
	}
	return j;
}

void
scanpool_pop(struct scanpool *sp)
{
	if (sp->count == 0)
		return;
	pthread_mutex_lock(&sp->mu);
	sp->job[sp->head].state = JOB_FREE;
	sp->head = (sp->head + 1) % SCAN_JOBS;
	sp->count--;
	pthread_mutex_unlock(&sp->mu);
}

void
scanpool_drop_all(struct scanpool *sp)
{
	uint32_t i;

	pthread_mutex_lock(&sp->mu);
	for (i = 0; i < sp->count; i++) {
		struct scan_job *j = &sp->job[(sp->head + i) % SCAN_JOBS];

		/* A queued job is taken back before any worker starts it. */
		if (j->state == JOB_QUEUED)
			j->state = JOB_FREE;
		while (j->state == JOB_RUNNING)
			pthread_cond_wait(&sp->done, &sp->mu);
		j->state = JOB_FREE;
	}
	sp->head = (sp->head + sp->count) % SCAN_JOBS;
	sp->count = 0;
	pthread_mutex_unlock(&sp->mu);
}
