#include "rqemu.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "failpoint.h"
#include "qmig.h"
#include "privsock.h"
#include "qmp.h"
#include "rlog.h"

/* How long commit waits for the destination QEMU to report completed.
 * With the return path on, the source completes only after the
 * destination's SHUT, which QEMU sends once it has loaded everything: the
 * status is normally "completed" when COMMIT arrives. */
#define RQEMU_CONFIRM_MS 10000

struct rqemu {
	struct rsession *rs;
	struct qmp *qmp;
	struct privsock ps;         /* where QEMU listens: ps.path */
	struct bufferevent *bev;    /* the migration socket of the destination QEMU */
	int mirror;                 /* unlinked file: guest RAM as rebuilt */
	uint64_t mirror_len;
	uint64_t base[FERRY_QBLOCKS_MAX];
	uint64_t len[FERRY_QBLOCKS_MAX];
	uint32_t nblocks;
	int eof;                    /* QEMU closed the migration socket */
	int held;                   /* frames wait for the backlog to drain */
	int have_info;
	struct qmig_info info;      /* the destination's figures at commit */
	uint64_t completed_ms;
};

static struct rqemu *
rq_of(const struct rsession *rs)
{
	return rs->rq;
}

static void FERRY_PRINTF(3, 4)
refuse(struct msg_text *r, int code, const char *fmt, ...)
{
	va_list ap;

	r->code = (uint32_t)-code;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

static void
rq_close(struct rqemu *q)
{
	if (q->bev != NULL) {
		bufferevent_free(q->bev);
		q->bev = NULL;
	}
	privsock_remove(&q->ps);
	if (q->mirror >= 0) {
		close(q->mirror);
		q->mirror = -1;
	}
}

void
rqemu_free(struct rsession *rs)
{
	struct rqemu *q = rq_of(rs);

	if (q == NULL)
		return;
	rq_close(q);
	qmp_free(q->qmp);
	if (rs->d->qemu_owner == rs)
		rs->d->qemu_owner = NULL;
	free(q);
	rs->rq = NULL;
}

/* Return path: whatever the destination QEMU writes goes to the sender. */
static void
on_qemu_read(struct bufferevent *bev, void *arg)
{
	struct rsession *rs = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct ferr e = { 0 };
	size_t n = evbuffer_get_length(in);
	const uint8_t *p = evbuffer_pullup(in, (ev_ssize_t)n);

	if (n == 0)
		return;
	if (rsess_qreturn(rs->sess, p, n, &e) != 0) {
		evbuffer_drain(in, n);
		rsession_finish(rs, e.code, e.msg);
		if (rs->conn != NULL)
			rconn_close_after_flush(rs->conn);
		return;
	}
	evbuffer_drain(in, n);
	if (rs->conn != NULL)
		rconn_flush(rs->conn);
}

static void
on_qemu_write(struct bufferevent *bev, void *arg)
{
	struct rsession *rs = arg;
	struct rqemu *q = rq_of(rs);

	(void)bev;
	if (q != NULL && q->held && rs->conn != NULL) {
		q->held = 0;
		rconn_kick(rs->conn);
	}
}

/* The destination QEMU closed its migration socket: after a complete
 * stream that is normal (it loaded everything); before, it failed. */
static void
on_qemu_event(struct bufferevent *bev, short what, void *arg)
{
	struct rsession *rs = arg;
	struct rqemu *q = rq_of(rs);
	struct qmig_info info;
	struct ferr e = { 0 };
	char why[FERR_MSG_MAX];

	(void)bev;
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) || q == NULL)
		return;
	q->eof = 1;
	bufferevent_disable(q->bev, EV_READ | EV_WRITE);
	if (rs->finished || rsess_state(rs->sess) != RS_RECEIVING)
		return;
	if (qmig_query(q->qmp, &info, &e) == 0 && (strcmp(info.status, "completed") == 0 ||
	    strcmp(info.status, "active") == 0))
		return;     /* loaded (or still finishing): commit decides */
	if (e.code != 0)
		snprintf(why, sizeof(why), "destination QEMU closed the migration socket and its QMP "
		    "socket failed (%s): QEMU probably exited; see its log", e.msg);
	else
		snprintf(why, sizeof(why), "destination QEMU closed the migration socket: migration %s%s%s",
		    info.status, info.error[0] ? ": " : "", info.error);
	rsess_fail(rs->sess, FERR_QEMU, why);
	rsession_finish(rs, FERR_QEMU, why);
	if (rs->conn != NULL) {
		rconn_send_error(rs->conn, FERR_QEMU, why);
		rconn_close_after_flush(rs->conn);
	}
}

static int
connect_unix(const char *path, int *out)
{
	struct sockaddr_un sa;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	*out = fd;
	return 0;
}

int
rqemu_accept(struct rsession *rs, const struct msg_manifest *m, struct msg_text *r)
{
	struct recvd *d = rs->d;
	struct rqemu *q;
	struct qmig_info info;
	struct ferr e = { 0 };
	char state[32], uri[128];
	int fd = -1, i;

	if (d->o.qemu_qmp == NULL) {
		refuse(r, FERR_REFUSED, "this receiver takes no QEMU streams (--qemu-qmp)");
		return FERR_REFUSED;
	}
	if (d->qemu_owner != NULL) {
		refuse(r, FERR_REFUSE_BUSY, "a QEMU migration into %s is already running (session %.16s)",
		    d->o.qemu_qmp, d->qemu_owner->idhex);
		return FERR_REFUSE_BUSY;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		refuse(r, FERR_NOMEM, "out of memory");
		return FERR_NOMEM;
	}
	q->rs = rs;
	q->mirror = -1;
	rs->rq = q;
	d->qemu_owner = rs;
	if (qmp_connect(d->o.qemu_qmp, QMIG_TIMEOUT_MS, &q->qmp, &e) != 0) {
		refuse(r, FERR_QEMU, "destination QEMU at %s: %s", d->o.qemu_qmp, e.msg);
		goto fail;
	}
	if (qmig_runstate(q->qmp, state, sizeof(state), &e) != 0) {
		refuse(r, FERR_QEMU, "destination QEMU at %s: %s", d->o.qemu_qmp, e.msg);
		goto fail;
	}
	if (strcmp(state, "inmigrate") != 0) {
		refuse(r, FERR_QEMU_STATE, "destination QEMU at %s is '%s', not waiting for a migration "
		    "(start it with -incoming defer)", d->o.qemu_qmp, state);
		goto fail;
	}
	if (qmig_query(q->qmp, &info, &e) != 0) {
		refuse(r, FERR_QEMU, "destination QEMU at %s: %s", d->o.qemu_qmp, e.msg);
		goto fail;
	}
	if (strcmp(info.status, "none") != 0) {
		refuse(r, FERR_QEMU_STATE, "destination QEMU at %s already has an incoming migration (%s); "
		    "start a fresh one with -incoming defer", d->o.qemu_qmp, info.status);
		goto fail;
	}
	if (privsock_make(&q->ps, "in.sock", &e) != 0) {
		refuse(r, FERR_IO, "%s", e.msg);
		goto fail;
	}
	snprintf(uri, sizeof(uri), "unix:%s", q->ps.path);
	if (qmig_uri(q->qmp, "migrate-incoming", uri, &e) != 0) {
		refuse(r, FERR_QEMU, "destination QEMU: %s", e.msg);
		goto fail;
	}
	(void)chmod(q->ps.path, 0600);
	/* QEMU listens before migrate-incoming returns; allow it a moment. */
	for (i = 0; i < 200 && connect_unix(q->ps.path, &fd) != 0; i++) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		nanosleep(&ts, NULL);
	}
	if (fd < 0) {
		refuse(r, FERR_QEMU, "could not connect to the destination QEMU's socket %s: %s", q->ps.path,
		    strerror(errno));
		goto fail;
	}
	evutil_make_socket_nonblocking(fd);
	q->bev = bufferevent_socket_new(d->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (q->bev == NULL) {
		close(fd);
		refuse(r, FERR_NOMEM, "out of memory (bufferevent)");
		goto fail;
	}
	bufferevent_setcb(q->bev, on_qemu_read, on_qemu_write, on_qemu_event, rs);
	bufferevent_setwatermark(q->bev, EV_WRITE, RQEMU_LOW, 0);
	bufferevent_enable(q->bev, EV_READ | EV_WRITE);
	rs_log(rs, EV_INFO, "session %.16s: QEMU stream for '%s' (%llu MiB of RAM) into the destination QEMU "
	    "at %s", rs->idhex, m->dev[0].name, (unsigned long long)(m->dev[0].size >> 20), d->o.qemu_qmp);
	return 0;
fail:
	/* Nothing started in QEMU yet (or the incoming side fails and QEMU exits
	 * when the socket closes): only our own pieces to remove. */
	{
		int code = -(int)r->code;

		rqemu_free(rs);
		return code;
	}
}

int
rqemu_blocks(struct rsession *rs, const struct qitem_block *b, uint32_t n, struct ferr *e)
{
	struct rqemu *q = rq_of(rs);
	uint64_t total = 0;
	uint32_t i;

	if (q == NULL || q->mirror >= 0)
		return ferr_set(e, FERR_PROTO_STATE, "QSTREAM: a second block list");
	for (i = 0; i < n; i++) {
		q->base[i] = total;
		q->len[i] = b[i].len;
		total += b[i].len;
	}
	q->nblocks = n;
	q->mirror = open(rs->d->o.dest_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (q->mirror < 0)
		return ferr_set(e, FERR_IO, "RAM mirror (an unnamed file in %s): %s", rs->d->o.dest_dir,
		    strerror(errno));
	/* Reserved, not sparse: a full disk must be an error here, not a
	 * SIGBUS when a mapped page is written back. */
	if ((errno = posix_fallocate(q->mirror, 0, (off_t)total)) != 0)
		return ferr_set(e, FERR_IO, "RAM mirror of %llu bytes in %s: %s", (unsigned long long)total,
		    rs->d->o.dest_dir, strerror(errno));
	/* Written and read with pwrite/pread, not mapped: a write fault on a
	 * mapped page of a reserved file first reads (zero-fills) the page and
	 * its neighbours, which cost the receiver half its time (perf, Q1);
	 * a whole-page pwrite needs no read. */
	q->mirror_len = total;
	return 0;
}

static int
mirror_at(struct rqemu *q, uint32_t block, uint64_t off, uint32_t len, uint64_t *pos, struct ferr *e)
{
	if (q == NULL || q->mirror < 0 || block >= q->nblocks || off > q->len[block] ||
	    len > q->len[block] - off)
		return ferr_set(e, FERR_PROTO_RANGE, "QSTREAM: block %u offset %llu outside the block list",
		    block, (unsigned long long)off);
	*pos = q->base[block] + off;
	return 0;
}

static int
mirror_io(struct rqemu *q, int write, uint64_t pos, uint8_t *p, uint32_t len, struct ferr *e)
{
	uint32_t done = 0;

	while (done < len) {
		ssize_t n = write ? pwrite(q->mirror, p + done, len - done, (off_t)(pos + done))
				  : pread(q->mirror, p + done, len - done, (off_t)(pos + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return ferr_set(e, FERR_IO, "RAM mirror: %s %u bytes at %llu: %s",
			    write ? "writing" : "reading", len - done, (unsigned long long)(pos + done),
			    n < 0 ? strerror(errno) : "end of file");
		done += (uint32_t)n;
	}
	return 0;
}

int
rqemu_write(struct rsession *rs, uint32_t block, uint64_t off, const uint8_t *p, uint32_t len,
    struct ferr *e)
{
	struct rqemu *q = rq_of(rs);
	uint64_t pos = 0;

	if (mirror_at(q, block, off, len, &pos, e) != 0)
		return e->code;
	return mirror_io(q, 1, pos, (uint8_t *)(uintptr_t)p, len, e);
}

int
rqemu_read(struct rsession *rs, uint32_t block, uint64_t off, uint8_t *p, uint32_t len,
    struct ferr *e)
{
	struct rqemu *q = rq_of(rs);
	uint64_t pos = 0;

	if (mirror_at(q, block, off, len, &pos, e) != 0)
		return e->code;
	return mirror_io(q, 0, pos, p, len, e);
}

int
rqemu_out(struct rsession *rs, const uint8_t *p, size_t n, struct ferr *e)
{
	struct rqemu *q = rq_of(rs);

	if (q == NULL || q->bev == NULL || q->eof)
		return ferr_set(e, FERR_QEMU, "destination QEMU closed its migration socket before the "
		    "end of the stream");
	if (bufferevent_write(q->bev, p, n) != 0)
		return ferr_set(e, FERR_NOMEM, "buffer for the destination QEMU");
	return 0;
}

int
rqemu_backlogged(const struct rsession *rs)
{
	struct rqemu *q = rq_of(rs);

	if (q == NULL || q->bev == NULL)
		return 0;
	if (evbuffer_get_length(bufferevent_get_output(q->bev)) <= RQEMU_HIGH)
		return 0;
	q->held = 1;
	return 1;
}

/* Write out what is still queued for QEMU (normally nothing: QEMU read it
 * all before the source could complete). */
static void
drain_to_qemu(struct rqemu *q)
{
	struct evbuffer *out;

	if (q->bev == NULL || q->eof)
		return;
	out = bufferevent_get_output(q->bev);
	while (evbuffer_get_length(out) > 0)
		if (evbuffer_write(out, bufferevent_getfd(q->bev)) < 0 && errno != EAGAIN &&
		    errno != EINTR)
			break;
}

int
rqemu_commit(struct rsession *rs, struct ferr *e)
{
	struct rqemu *q = rq_of(rs);
	uint64_t start = clock_ms();
	int rc;

	if (q == NULL)
		return ferr_set(e, FERR_INTERNAL, "QEMU commit without a destination QEMU");
	for (;;) {
		drain_to_qemu(q);
		if ((rc = qmig_query(q->qmp, &q->info, e)) != 0)
			return ferr_set(e, FERR_QEMU, "destination QEMU at commit: %s", e->msg);
		if (strcmp(q->info.status, "completed") == 0)
			break;
		if (strcmp(q->info.status, "failed") == 0 || strcmp(q->info.status, "cancelled") == 0)
			return ferr_set(e, FERR_QEMU, "destination QEMU: incoming migration %s%s%s",
			    q->info.status, q->info.error[0] ? ": " : "", q->info.error);
		if (clock_ms() - start > RQEMU_CONFIRM_MS)
			return ferr_set(e, FERR_TIMEOUT, "destination QEMU still '%s' %u ms after the whole "
			    "stream arrived", q->info.status, RQEMU_CONFIRM_MS);
		{
			struct timespec ts = { 0, 20 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
	}
	q->have_info = 1;
	q->completed_ms = clock_ms();
	/* Test hook (tests/e2e_qemu_migrate.sh): fail after the destination
	 * completed, before confirming. */
	if (failpoint("qemu-confirm-error"))
		return ferr_set(e, FERR_QEMU, "failpoint qemu-confirm-error: not confirming the "
		    "destination QEMU's completed migration");
	rq_close(q);
	rs_log(rs, EV_INFO, "session %.16s: destination QEMU completed the incoming migration", rs->idhex);
	return 0;
}

void
rqemu_abort(struct rsession *rs)
{
	struct rqemu *q = rq_of(rs);
	struct ferr e = { 0 };
	char state[32];

	if (q == NULL)
		return;
	/* Closing the socket makes an unfinished incoming migration fail, and
	 * QEMU then exits.  A QEMU that already loaded everything would run the
	 * guest on `cont`: quit it, so the source is the only one. */
	rq_close(q);
	if (q->qmp != NULL && qmig_runstate(q->qmp, state, sizeof(state), &e) == 0 &&
	    strcmp(state, "inmigrate") != 0) {
		if (qmig_simple(q->qmp, "quit", &e) == 0)
			rs_log(rs, EV_WARN, "session %.16s: failed after the destination QEMU loaded the "
			    "guest ('%s'): quit it", rs->idhex, state);
		else
			rs_log(rs, EV_ERROR, "session %.16s: could not quit the destination QEMU: %s",
			    rs->idhex, e.msg);
	}
	qmp_free(q->qmp);
	q->qmp = NULL;
}

struct json_object *
rqemu_status(const struct rsession *rs)
{
	struct rqemu *q = rq_of(rs);
	struct json_object *o;

	if (q == NULL || !q->have_info)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "status", json_object_new_string(q->info.status));
	json_object_object_add(o, "total_time_ms", json_object_new_int64(q->info.total_time_ms));
	return o;
}
