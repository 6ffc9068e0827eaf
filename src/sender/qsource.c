#include "qsource.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "codec_lz4.h"
#include "dedupe.h"
#include "mig.h"
#include "msg_qemu.h"
#include "pagehash.h"
#include "qmig.h"
#include "privsock.h"
#include "qmp.h"
#include "qstream.h"
#include "units.h"

/* QEMU's own cap is lifted (ferry enforces --bandwidth on the wire):
 * 100 GiB/s, far above any socket. */
#define QEMU_MAX_BANDWIDTH (100ull << 30)
#define QSRC_READ_CHUNK (256u * 1024u)     /* bytes parsed per step */
#define QSRC_POLL_MS 200                   /* query-migrate while iterating */
#define QSRC_POLL_FAST_MS 20               /* after the guest stopped */
#define QSRC_FRAME_MIN (128u * 1024u)
#define QSRC_FRAME_SMALL (64u * 1024u)     /* a smaller frame waits QSRC_FLUSH_US */
#define QSRC_FLUSH_US 2000

/* Capabilities that change the stream into something ferry cannot carry
 * page by page, or that need a second socket or a management step. */
static const char *const refused_caps[] = {
	"multifd", "postcopy-ram", "postcopy-preempt", "xbzrle", "compress", "block",
	"dirty-bitmaps", "x-ignore-shared", "pause-before-switchover", "background-snapshot", NULL,
};

struct qframe {
	struct qframe *next;
	uint64_t seq;
	uint32_t len;
	uint8_t b[];
};

struct qsrc {
	struct mig *m;
	struct qmp *qmp;
	char name[FERRY_NAME_MAX + 1];
	uint64_t ram_bytes;
	int was_running;
	struct privsock ps;         /* where ferry-send listens for QEMU: ps.path */
	int lfd;
	struct event *lev;          /* QEMU connecting to our socket */
	struct bufferevent *bev;    /* QEMU's migration connection */
	struct qstream *qs;
	struct event *poll;
	struct event *flush;        /* sends a small frame after QSRC_FLUSH_US */
	struct event *qmp_ev;       /* QMP readable */
	int query_pending, have_info;
	struct digest *dg;
	/* the frame being built */
	uint8_t *cur;
	size_t cur_cap;
	struct wr w;
	size_t hdr_at;
	uint32_t count;
	int open;
	uint64_t off_next;          /* stream offset after the last item built */
	/* frames kept until acknowledged */
	uint64_t next_seq, acked;
	struct qframe *head, *tail, *send;
	uint64_t retained;
	int read_held;
	/* RAM pages: what the receiver holds at each location (low 8 bytes of
	 * the page hash, 0 = nothing usable), and content -> location */
	struct qitem_block blocks[FERRY_QBLOCKS_MAX];
	uint32_t nblocks;
	uint64_t *loc[FERRY_QBLOCKS_MAX];
	struct dedupe *dd;
	uint8_t lz[FERRY_QPAGE_SIZE];
	/* progress */
	int migrating, got_eof, eof, tail_seen, completed, stopped;
	uint64_t stream_bytes, frame_bytes, ret_have;
	uint64_t zero, dedup, lz4, raw;
	struct qmig_info info;      /* last query-migrate */
	int64_t stop_wall_ms, done_wall_ms;
};

static struct qsrc *
qs_of(const struct mig *m)
{
	return m->q;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- set-up --------------------------------------------------------------- */

static int
qmp_fail(struct ferr *e, const char *what)
{
	char msg[FERR_MSG_MAX];

	snprintf(msg, sizeof(msg), "%s", e->msg);
	return ferr_set(e, e->code == FERR_REFUSED ? FERR_QEMU : e->code == 0 ? FERR_QEMU : e->code,
	    "source QEMU: %s: %s", what, msg);
}

static int
set_params(struct qsrc *q, uint64_t downtime_ms, struct ferr *e)
{
	json_object *args = json_object_new_object();
	int rc;

	if (args == NULL)
		return ferr_set(e, FERR_NOMEM, "migrate-set-parameters");
	json_object_object_add(args, "max-bandwidth", json_object_new_int64((int64_t)QEMU_MAX_BANDWIDTH));
	json_object_object_add(args, "downtime-limit", json_object_new_int64((int64_t)downtime_ms));
	json_object_object_add(args, "tls-creds", json_object_new_string(""));
	rc = qmp_execute(q->qmp, "migrate-set-parameters", args, QMIG_TIMEOUT_MS, NULL, e);
	json_object_put(args);
	return rc;
}

static void
query_identity(struct qsrc *q)
{
	json_object *ret = NULL, *v;
	struct ferr e = { 0 };

	snprintf(q->name, sizeof(q->name), "qemu");
	if (qmp_execute(q->qmp, "query-name", NULL, QMIG_TIMEOUT_MS, &ret, &e) == 0) {
		if (json_object_object_get_ex(ret, "name", &v) && json_object_get_string(v) != NULL &&
		    dev_name_valid(json_object_get_string(v), strlen(json_object_get_string(v))))
			snprintf(q->name, sizeof(q->name), "%s", json_object_get_string(v));
		json_object_put(ret);
	}
	ret = NULL;
	if (qmp_execute(q->qmp, "query-memory-size-summary", NULL, QMIG_TIMEOUT_MS, &ret, &e) == 0) {
		if (json_object_object_get_ex(ret, "base-memory", &v))
			q->ram_bytes = (uint64_t)json_object_get_int64(v);
		json_object_put(ret);
	}
	if (q->ram_bytes == 0)
		q->ram_bytes = FERRY_QPAGE_SIZE;
}

int
qsrc_open(struct mig *m, struct ferr *e)
{
	const char *path = m->o->qemu_qmp;
	struct qmig_info info;
	struct qsrc *q;
	char state[32], on[512];

	if ((q = calloc(1, sizeof(*q))) == NULL)
		return ferr_set(e, FERR_NOMEM, "QEMU source");
	m->q = q;
	q->m = m;
	q->lfd = -1;
	q->next_seq = 1;
	if ((q->dg = digest_new(m->seed)) == NULL)
		return ferr_set(e, FERR_NOMEM, "QEMU source");
	if (qmp_connect(path, QMIG_TIMEOUT_MS, &q->qmp, e) != 0)
		return ferr_set(e, FERR_QEMU, "source QEMU's QMP socket %s: %s", path, e->msg);
	if (qmig_runstate(q->qmp, state, sizeof(state), e) != 0)
		return qmp_fail(e, "query-status");
	if (strcmp(state, "running") != 0 && strcmp(state, "paused") != 0)
		return ferr_set(e, FERR_QEMU_STATE, "source QEMU at %s is '%s': only a running or paused "
		    "guest can be migrated", path, state);
	q->was_running = strcmp(state, "running") == 0;
	if (qmig_query(q->qmp, &info, e) != 0)
		return qmp_fail(e, "query-migrate");
	if (strcmp(info.status, "none") != 0 && strcmp(info.status, "completed") != 0 &&
	    strcmp(info.status, "failed") != 0 && strcmp(info.status, "cancelled") != 0)
		return ferr_set(e, FERR_QEMU_STATE, "source QEMU at %s already has a migration '%s'", path,
		    info.status);
	if (qmig_caps_on(q->qmp, refused_caps, on, sizeof(on), e) != 0)
		return qmp_fail(e, "query-migrate-capabilities");
	if (on[0] != '\0')
		return ferr_set(e, FERR_QEMU_CAP, "source QEMU has migration capabilities on that ferry "
		    "cannot carry: %s (ferry carries one plain pre-copy stream; turn them off with "
		    "migrate-set-capabilities)", on);
	if (qmig_set_cap(q->qmp, "return-path", 1, e) != 0)
		return qmp_fail(e, "turning return-path on");
	if (set_params(q, m->o->downtime_ms, e) != 0)
		return qmp_fail(e, "migrate-set-parameters");
	query_identity(q);
	m->total_bytes = q->ram_bytes;
	ev_log(m->ev, "source QEMU '%s' (%s, %llu MiB of RAM) at %s", q->name, state,
	    (unsigned long long)(q->ram_bytes >> 20), path);
	return 0;
}

static void
close_qemu_socket(struct qsrc *q)
{
	if (q->lev != NULL) {
		event_free(q->lev);
		q->lev = NULL;
	}
	if (q->lfd >= 0) {
		close(q->lfd);
		q->lfd = -1;
	}
	if (q->bev != NULL) {
		bufferevent_free(q->bev);
		q->bev = NULL;
	}
	privsock_remove(&q->ps);
}

void
qsrc_free(struct mig *m)
{
	struct qsrc *q = qs_of(m);
	struct qframe *f;
	uint32_t i;

	if (q == NULL)
		return;
	close_qemu_socket(q);
	if (q->poll != NULL)
		event_free(q->poll);
	if (q->flush != NULL)
		event_free(q->flush);
	if (q->qmp_ev != NULL)
		event_free(q->qmp_ev);
	qmp_free(q->qmp);
	qstream_free(q->qs);
	digest_free(q->dg);
	dedupe_free(q->dd);
	for (i = 0; i < q->nblocks; i++)
		free(q->loc[i]);
	while ((f = q->head) != NULL) {
		q->head = f->next;
		free(f);
	}
	free(q->cur);
	free(q);
	m->q = NULL;
}

void
qsrc_manifest(struct mig *m, struct msg_manifest *man)
{
	struct qsrc *q = qs_of(m);

	man->ndev = 1;
	man->dev[0].id = 1;
	man->dev[0].kind = DK_QEMU;
	man->dev[0].unit = FERRY_QPAGE_SIZE;
	man->dev[0].size = q->ram_bytes;
	snprintf(man->dev[0].name, sizeof(man->dev[0].name), "%s", q->name);
	man->state_size = 0;
}

/* ---- frames ----------------------------------------------------------------- */

/* Unacknowledged bytes allowed: as deep as the link's own queue (100 ms of
 * the cap, at most 4 MiB).  QEMU measures its bandwidth by how fast this
 * socket drains, so ferry must not read far ahead of the wire. */
static uint64_t
window(const struct mig *m)
{
	return link_out_high(m);
}

static size_t
frame_target(const struct mig *m)
{
	size_t t = (size_t)window(m) / 2;

	if (t < QSRC_FRAME_MIN)
		t = QSRC_FRAME_MIN;
	return t < m->max_payload ? t : m->max_payload;
}

static int
frame_open(struct qsrc *q)
{
	struct msg_qstream h;

	if (q->open)
		return 0;
	if (q->cur == NULL) {
		q->cur_cap = (size_t)FERRY_MAX_FRAME_DEFAULT + FERRY_FRAME_HDR_LEN;
		if ((q->cur = malloc(q->cur_cap)) == NULL)
			return -1;
	}
	wr_init(&q->w, q->cur, frame_target(q->m) + FERRY_FRAME_HDR_LEN);
	h.seq = q->next_seq;
	h.stream_off = q->off_next;
	h.count = 0;
	q->hdr_at = msg_qstream_begin(&q->w, &h);
	if (q->hdr_at == SIZE_MAX)
		return -1;
	q->count = 0;
	q->open = 1;
	return 0;
}

static int
frame_seal(struct qsrc *q)
{
	struct qframe *f;

	if (!q->open)
		return 0;
	q->open = 0;
	if (q->count == 0)
		return 0;
	msg_qstream_end(&q->w, q->hdr_at, q->count);
	if ((f = malloc(sizeof(*f) + q->w.off)) == NULL)
		return -1;
	f->next = NULL;
	f->seq = q->next_seq++;
	f->len = (uint32_t)q->w.off;
	memcpy(f->b, q->cur, q->w.off);
	if (q->tail != NULL)
		q->tail->next = f;
	else
		q->head = f;
	q->tail = f;
	if (q->send == NULL)
		q->send = f;
	q->retained += f->len;
	q->frame_bytes += f->len;
	return 0;
}

/* Room for an item: the open frame, or a fresh one. */
static int
item_done(struct qsrc *q, uint64_t stream_len)
{
	q->count++;
	q->off_next += stream_len;
	if (q->count == FERRY_MAX_PAGES_PER_FRAME)
		return frame_seal(q);
	return 0;
}

static int
put_opaque(struct qsrc *q, const uint8_t *p, size_t n, struct ferr *e)
{
	while (n > 0) {
		size_t room, k;

		if (frame_open(q) != 0)
			return ferr_set(e, FERR_NOMEM, "QSTREAM frame");
		room = wr_left(&q->w);
		if (room < 64) {
			if (frame_seal(q) != 0)
				return ferr_set(e, FERR_NOMEM, "QSTREAM frame");
			continue;
		}
		k = n < room - 5 ? n : room - 5;
		if (msg_qitem_put_opaque(&q->w, p, (uint32_t)k) != 0)
			return ferr_set(e, FERR_INTERNAL, "QSTREAM: opaque item of %zu bytes", k);
		p += k;
		n -= k;
		if (item_done(q, k) != 0)
			return ferr_set(e, FERR_NOMEM, "QSTREAM frame");
	}
	return 0;
}

/* Put with one retry in a fresh frame. */
static int
put_item(struct qsrc *q, int (*put)(struct wr *, const void *), const void *it, uint64_t stream_len,
    struct ferr *e)
{
	int tries;

	for (tries = 0; tries < 2; tries++) {
		if (frame_open(q) != 0)
			return ferr_set(e, FERR_NOMEM, "QSTREAM frame");
		if (put(&q->w, it) == 0)
			return item_done(q, stream_len) == 0 ? 0 : ferr_set(e, FERR_NOMEM, "QSTREAM frame");
		if (q->count == 0)
			break;
		if (frame_seal(q) != 0)
			return ferr_set(e, FERR_NOMEM, "QSTREAM frame");
	}
	return ferr_set(e, FERR_INTERNAL, "QSTREAM: an item does not fit in an empty frame");
}

struct blocks_arg {
	const struct qitem_block *b;
	uint32_t n;
};

static int
put_blocks_fn(struct wr *w, const void *p)
{
	const struct blocks_arg *a = p;

	return msg_qitem_put_blocks(w, a->b, a->n);
}

static int
put_page_fn(struct wr *w, const void *p)
{
	return msg_qitem_put_page(w, p);
}

static int
on_blocks(struct qsrc *q, const struct qs_event *ev, struct ferr *e)
{
	struct blocks_arg a;
	uint64_t pages = 0;
	uint32_t i;

	for (i = 0; i < ev->nblocks; i++) {
		snprintf(q->blocks[i].id, sizeof(q->blocks[i].id), "%s", ev->blocks[i].id);
		q->blocks[i].id_len = ev->blocks[i].id_len;
		q->blocks[i].len = ev->blocks[i].len;
		if ((q->loc[i] = calloc(ev->blocks[i].len / FERRY_QPAGE_SIZE, sizeof(uint64_t))) == NULL)
			return ferr_set(e, FERR_NOMEM, "page table of RAM block '%s'", ev->blocks[i].id);
		q->nblocks = i + 1;
		pages += ev->blocks[i].len / FERRY_QPAGE_SIZE;
	}
	if ((q->dd = dedupe_new(pages)) == NULL)
		return ferr_set(e, FERR_NOMEM, "dedupe table for %llu pages", (unsigned long long)pages);
	a.b = q->blocks;
	a.n = q->nblocks;
	return put_item(q, put_blocks_fn, &a, 0, e);
}

static uint64_t
h64(const uint8_t h[FERRY_HASH_LEN])
{
	uint64_t v = 0;
	unsigned i;

	for (i = 8; i < FERRY_HASH_LEN; i++)
		v = v << 8 | h[i];
	return v != 0 ? v : 1;
}

static int
on_page(struct qsrc *q, const struct qs_event *ev, struct ferr *e)
{
	const struct qs_page *pg = &ev->page;
	uint64_t idx = pg->offset / FERRY_QPAGE_SIZE;
	struct qitem it;
	uint32_t sdev, sidx;

	memset(&it, 0, sizeof(it));
	it.block = (uint16_t)pg->block;
	it.offset = pg->offset;
	it.rec = pg->cont ? FERRY_QREC_CONT : 0;
	q->loc[pg->block][idx] = 0;
	if (pg->kind == QS_PAGE_ZERO) {
		it.kind = PK_ZERO;
		q->zero++;
	} else if (page_is_zero(pg->data, FERRY_QPAGE_SIZE)) {
		/* A data record with zeros: the receiver writes zeros there. */
		it.rec |= FERRY_QREC_DATA;
		it.kind = PK_ZERO;
		q->zero++;
	} else {
		it.rec |= FERRY_QREC_DATA;
		page_hash(q->m->seed, pg->data, FERRY_QPAGE_SIZE, it.hash);
		if (dedupe_find(q->dd, it.hash, &sdev, &sidx) && sdev >= 1 && sdev <= q->nblocks &&
		    (uint64_t)sidx < q->blocks[sdev - 1].len / FERRY_QPAGE_SIZE &&
		    q->loc[sdev - 1][sidx] == h64(it.hash)) {
			it.kind = PK_REF;
			it.src_block = (uint16_t)(sdev - 1);
			it.src_offset = (uint64_t)sidx * FERRY_QPAGE_SIZE;
			q->dedup++;
		} else if ((it.payload_len = codec_lz4_encode(pg->data, FERRY_QPAGE_SIZE, q->lz,
		    FERRY_QPAGE_SIZE - 1)) > 0) {
			it.kind = PK_LZ4;
			it.payload = q->lz;
			q->lz4++;
		} else {
			it.kind = PK_RAW;
			it.payload = pg->data;
			it.payload_len = FERRY_QPAGE_SIZE;
			q->raw++;
		}
		q->loc[pg->block][idx] = h64(it.hash);
		dedupe_put(q->dd, it.hash, pg->block + 1, (uint32_t)idx);
	}
	return put_item(q, put_page_fn, &it, ev->len, e);
}

static int
on_stream_event(void *ctx, const struct qs_event *ev, struct ferr *e)
{
	struct qsrc *q = ctx;

	switch (ev->kind) {
	case QS_EV_OPAQUE:
		return put_opaque(q, ev->data, ev->len, e);
	case QS_EV_BLOCKS:
		return on_blocks(q, ev, e);
	case QS_EV_PAGE:
		return on_page(q, ev, e);
	case QS_EV_TAIL:
		q->tail_seen = 1;
		return 0;
	case QS_EV_FALLBACK:
		ev_log(q->m->ev, "QEMU stream: from byte %llu on carried as opaque bytes, no page "
		    "dedupe or lz4 (%s)", (unsigned long long)ev->off, ev->reason);
		return 0;
	default:
		return 0;
	}
}

/* ---- QEMU's socket ---------------------------------------------------------- */

static void try_commit(struct mig *m);

static void
read_qemu(struct qsrc *q)
{
	struct mig *m = q->m;
	struct evbuffer *in;
	struct ferr e = { 0 };

	if (q->bev == NULL || m->st == MS_DONE)
		return;
	in = bufferevent_get_input(q->bev);
	while (evbuffer_get_length(in) > 0 && q->retained < window(m)) {
		size_t n = evbuffer_get_length(in);
		const uint8_t *p;

		if (n > QSRC_READ_CHUNK)
			n = QSRC_READ_CHUNK;
		p = evbuffer_pullup(in, (ev_ssize_t)n);
		digest_update(q->dg, p, n);
		q->stream_bytes += n;
		if (qstream_feed(q->qs, p, n, &e) != 0) {
			evbuffer_drain(in, n);
			link_send_error(m, e.code, e.msg);
			mig_finish(m, e.code, "QEMU stream: %s", e.msg);
			return;
		}
		evbuffer_drain(in, n);
	}
	/* A small frame waits a moment for more of the stream: fewer, fuller
	 * frames.  A full window or a stopped guest sends it at once. */
	if (q->open && q->w.off < QSRC_FRAME_SMALL && q->retained < window(m) && !q->stopped &&
	    !q->tail_seen && !q->got_eof) {
		if (!evtimer_pending(q->flush, NULL)) {
			struct timeval tv = { 0, QSRC_FLUSH_US };

			evtimer_add(q->flush, &tv);
		}
	} else if (frame_seal(q) != 0) {
		mig_finish(m, FERR_NOMEM, "QSTREAM frame");
		return;
	}
	if (q->retained >= window(m) && !q->read_held) {
		q->read_held = 1;
		if (!q->got_eof)
			bufferevent_disable(q->bev, EV_READ);
	}
	qsrc_pump(m);
}

static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct qsrc *q = arg;

	(void)fd;
	(void)what;
	if (q->m->st == MS_DONE)
		return;
	if (frame_seal(q) != 0) {
		mig_finish(q->m, FERR_NOMEM, "QSTREAM frame");
		return;
	}
	qsrc_pump(q->m);
}

static void
on_qemu_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	read_qemu(arg);
}

/* QEMU closed the socket: parse what is still buffered (as the window
 * allows; the rest after ACKs), then end the stream. */
static void
finish_if_eof(struct qsrc *q)
{
	struct mig *m = q->m;
	struct ferr e = { 0 };

	if (!q->got_eof || q->eof || m->st == MS_DONE)
		return;
	read_qemu(q);
	if (m->st == MS_DONE || (q->bev != NULL && evbuffer_get_length(bufferevent_get_input(q->bev)) > 0))
		return;
	q->eof = 1;
	if (qstream_finish(q->qs, &e) != 0)
		ev_log(m->ev, "QEMU stream ended early (%s); QEMU decides whether that is a failure",
		    e.msg);
	if (frame_seal(q) != 0) {
		mig_finish(m, FERR_NOMEM, "QSTREAM frame");
		return;
	}
	ev_log(m->ev, "QEMU closed its migration socket after %llu bytes",
	    (unsigned long long)q->stream_bytes);
	qsrc_pump(m);
}

static void
on_qemu_event(struct bufferevent *bev, short what, void *arg)
{
	struct qsrc *q = arg;

	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	q->got_eof = 1;
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	finish_if_eof(q);
}

static void
on_qemu_connect(evutil_socket_t lfd, short what, void *arg)
{
	struct qsrc *q = arg;
	struct mig *m = q->m;
	int fd;

	(void)what;
	fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (q->bev != NULL) {
		close(fd);  /* one migration connection only */
		return;
	}
	q->bev = bufferevent_socket_new(m->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (q->bev == NULL) {
		close(fd);
		mig_finish(m, FERR_NOMEM, "QEMU connection");
		return;
	}
	bufferevent_set_max_single_read(q->bev, QSRC_READ_CHUNK);
	bufferevent_setcb(q->bev, on_qemu_read, NULL, on_qemu_event, q);
	bufferevent_enable(q->bev, EV_READ | EV_WRITE);
	/* Nobody else may connect now. */
	event_del(q->lev);
	close(q->lfd);
	q->lfd = -1;
	(void)unlink(q->ps.path);
}

static int
listen_unix(struct qsrc *q, struct ferr *e)
{
	struct sockaddr_un sa;
	mode_t old;

	if (privsock_make(&q->ps, "out.sock", e) != 0)
		return e->code;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", q->ps.path);
	if ((q->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return ferr_set(e, FERR_IO, "socket: %s", strerror(errno));
	old = umask(0177);
	if (bind(q->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(q->lfd, 1) != 0) {
		umask(old);
		return ferr_set(e, FERR_IO, "listening on %s: %s", q->ps.path, strerror(errno));
	}
	umask(old);
	q->lev = event_new(q->m->base, q->lfd, EV_READ | EV_PERSIST, on_qemu_connect, q);
	if (q->lev == NULL || event_add(q->lev, NULL) != 0)
		return ferr_set(e, FERR_NOMEM, "listener event");
	return 0;
}

/* ---- QMP while migrating ------------------------------------------------------ */

static void
schedule_poll(struct qsrc *q)
{
	struct timeval tv;
	int ms = q->stopped || q->tail_seen || q->eof ? QSRC_POLL_FAST_MS : QSRC_POLL_MS;

	tv.tv_sec = 0;
	tv.tv_usec = ms * 1000;
	evtimer_add(q->poll, &tv);
}

static void
qemu_status(struct qsrc *q)
{
	struct mig *m = q->m;
	struct qmp_event qe;

	while (qmp_event_pop(q->qmp, &qe)) {
		if (strcmp(qe.name, "STOP") == 0 && !q->stopped) {
			q->stopped = 1;
			q->stop_wall_ms = qe.ts_sec * 1000 + qe.ts_usec / 1000;
			if (q->stop_wall_ms <= 0)
				q->stop_wall_ms = wall_ms();
			ev_log(m->ev, "source QEMU paused the guest for switchover");
			if (m->st == MS_PRECOPY)
				mig_set_state(m, MS_FINAL);
		}
		qmp_event_fini(&qe);
	}
	if (q->completed || !q->have_info)
		return;
	if (strcmp(q->info.status, "failed") == 0 || strcmp(q->info.status, "cancelled") == 0) {
		char why[FERR_MSG_MAX];

		snprintf(why, sizeof(why), "source QEMU: migration %s%s%s", q->info.status,
		    q->info.error[0] ? ": " : "", q->info.error);
		link_send_error(m, FERR_QEMU, why);
		mig_finish(m, FERR_QEMU, "%s", why);
		return;
	}
	if (strcmp(q->info.status, "completed") == 0) {
		q->completed = 1;
		if (!q->stopped) {
			q->stopped = 1;
			q->stop_wall_ms = wall_ms();
		}
		if (m->st == MS_PRECOPY)
			mig_set_state(m, MS_FINAL);
		ev_log(m->ev, "source QEMU completed its side (QEMU: %lld ms in all, %lld ms downtime, "
		    "%lld bytes); the guest stays paused until the destination confirms",
		    (long long)q->info.total_time_ms, (long long)q->info.downtime_ms,
		    (long long)q->info.transferred);
		try_commit(m);
	}
}

static void
qmp_broken(struct qsrc *q, const struct ferr *e)
{
	char why[FERR_MSG_MAX];

	snprintf(why, sizeof(why), "source QEMU's QMP: %s", e->msg);
	link_send_error(q->m, FERR_QEMU, why);
	mig_finish(q->m, FERR_QEMU, "%s", why);
}

/* QMP is read only when it has something, and query-migrate never waits
 * for its reply: at switchover QEMU holds its big lock while it writes the
 * rest of the stream, which only this event loop drains. */
static void
on_qmp_readable(evutil_socket_t fd, short what, void *arg)
{
	struct qsrc *q = arg;
	struct ferr e = { 0 };
	int rc;

	(void)fd;
	(void)what;
	if (q->m->st == MS_DONE)
		return;
	if (q->query_pending) {
		rc = qmig_query_collect(q->qmp, &q->info, &e);
		if (rc < 0) {
			qmp_broken(q, &e);
			return;
		}
		if (rc == 1) {
			q->query_pending = 0;
			q->have_info = 1;
		}
	} else if (qmp_pump(q->qmp, 0, &e) != 0) {
		qmp_broken(q, &e);
		return;
	}
	qemu_status(q);
}

static void
on_poll(evutil_socket_t fd, short what, void *arg)
{
	struct qsrc *q = arg;
	struct ferr e = { 0 };

	(void)fd;
	(void)what;
	if (q->m->st == MS_DONE || q->completed)
		return;
	if (!q->query_pending) {
		if (qmig_query_start(q->qmp, &e) != 0) {
			qmp_broken(q, &e);
			return;
		}
		q->query_pending = 1;
	}
	schedule_poll(q);
}

void
qsrc_start(struct mig *m)
{
	struct qsrc *q = qs_of(m);
	struct ferr e = { 0 };
	char uri[128];

	if ((q->qs = qstream_new(on_stream_event, q)) == NULL ||
	    (q->poll = evtimer_new(m->base, on_poll, q)) == NULL ||
	    (q->flush = evtimer_new(m->base, on_flush, q)) == NULL ||
	    (q->qmp_ev = event_new(m->base, qmp_fd(q->qmp), EV_READ | EV_PERSIST, on_qmp_readable,
	    q)) == NULL || event_add(q->qmp_ev, NULL) != 0) {
		mig_finish(m, FERR_NOMEM, "QEMU stream");
		return;
	}
	if (listen_unix(q, &e) != 0) {
		link_send_error(m, e.code, e.msg);
		mig_finish(m, e.code, "%s", e.msg);
		return;
	}
	snprintf(uri, sizeof(uri), "unix:%s", q->ps.path);
	if (qmig_uri(q->qmp, "migrate", uri, &e) != 0) {
		char why[FERR_MSG_MAX];

		snprintf(why, sizeof(why), "source QEMU refused to migrate: %s", e.msg);
		link_send_error(m, FERR_QEMU, why);
		mig_finish(m, FERR_QEMU, "%s", why);
		return;
	}
	q->migrating = 1;
	ev_log(m->ev, "source QEMU migrating into %s", q->ps.path);
	schedule_poll(q);
}

/* ---- the link ------------------------------------------------------------------- */

static int
enc_commit(struct wr *w, const void *p)
{
	return msg_commit_encode(w, p);
}

/* Section 4.17: COMMIT once QEMU completed, its stream ended and every
 * frame is on its way. */
static void
try_commit(struct mig *m)
{
	struct qsrc *q = qs_of(m);
	struct msg_commit c;

	if (!q->completed || !q->eof || q->open || q->send != NULL || m->commit_sent ||
	    m->bev == NULL || !m->tls_up || (m->st != MS_PRECOPY && m->st != MS_FINAL))
		return;
	memset(&c, 0, sizeof(c));
	c.seq = q->next_seq - 1;
	c.ndev = 1;
	c.dev[0].id = 1;
	digest_final(q->dg, c.dev[0].digest);
	if (link_send(m, enc_commit, &c, 128) != 0) {
		mig_finish(m, FERR_INTERNAL, "could not queue COMMIT");
		return;
	}
	m->commit_sent = 1;
	mig_set_state(m, MS_COMMIT_WAIT);
}

void
qsrc_pump(struct mig *m)
{
	struct qsrc *q = qs_of(m);
	struct evbuffer *out;

	if (q == NULL || m->bev == NULL || !m->tls_up ||
	    (m->st != MS_PRECOPY && m->st != MS_FINAL && m->st != MS_COMMIT_WAIT))
		return;
	out = bufferevent_get_output(m->bev);
	while (q->send != NULL && evbuffer_get_length(out) < link_out_high(m)) {
		if (evbuffer_add(out, q->send->b, q->send->len) != 0) {
			mig_finish(m, FERR_NOMEM, "output buffer");
			return;
		}
		m->since_rekey += q->send->len;
		q->send = q->send->next;
	}
	try_commit(m);
}

void
qsrc_ack(struct mig *m, uint64_t seq)
{
	struct qsrc *q = qs_of(m);
	struct qframe *f;

	if (seq <= q->acked)
		return;
	q->acked = seq;
	while ((f = q->head) != NULL && f->seq <= seq) {
		if (q->send == f)
			q->send = f->next;
		q->head = f->next;
		q->retained -= f->len;
		free(f);
	}
	if (q->head == NULL)
		q->tail = NULL;
	if (q->read_held && q->retained < window(m) && q->bev != NULL) {
		q->read_held = 0;
		if (q->got_eof) {
			finish_if_eof(q);
		} else {
			bufferevent_enable(q->bev, EV_READ);
			read_qemu(q);
		}
	}
	qsrc_pump(m);
}

uint64_t
qsrc_last_seq(const struct mig *m)
{
	return qs_of(m)->next_seq - 1;
}

uint64_t
qsrc_unacked(const struct mig *m)
{
	return qs_of(m)->retained;
}

int
qsrc_rollback(struct mig *m, uint64_t next_seq)
{
	struct qsrc *q = qs_of(m);
	struct qframe *f;

	if (next_seq < q->acked + 1 || next_seq > q->next_seq)
		return -1;
	qsrc_ack(m, next_seq - 1);
	q->send = NULL;
	for (f = q->head; f != NULL; f = f->next)
		if (f->seq == next_seq) {
			q->send = f;
			break;
		}
	return 0;
}

void
qsrc_return(struct mig *m, const uint8_t *p, uint32_t n)
{
	struct qsrc *q = qs_of(m);
	struct ferr e = { 0 };
	struct msg_qreturn r;

	if (msg_qreturn_decode(p, n, &r, &e) != 0) {
		link_send_error(m, e.code, e.msg);
		mig_finish(m, e.code, "%s", e.msg);
		return;
	}
	if (r.offset > q->ret_have) {
		ferr_set(&e, FERR_PROTO_RANGE, "QRETURN: offset %llu, %llu bytes received so far (gap)",
		    (unsigned long long)r.offset, (unsigned long long)q->ret_have);
		link_send_error(m, e.code, e.msg);
		mig_finish(m, e.code, "%s", e.msg);
		return;
	}
	if (r.offset + r.len <= q->ret_have)
		return;     /* sent again after a resume: already delivered */
	if (q->bev == NULL || q->eof) {
		ev_log(m->ev, "QRETURN: %u bytes for a QEMU that is not connected; dropped", r.len);
		return;
	}
	{
		uint64_t skip = q->ret_have - r.offset;

		bufferevent_write(q->bev, r.data + skip, r.len - skip);
		q->ret_have += r.len - skip;
	}
}

void
qsrc_committed(struct mig *m)
{
	struct qsrc *q = qs_of(m);
	struct ferr e = { 0 };

	q->done_wall_ms = wall_ms();
	m->res->downtime_ms = q->stop_wall_ms > 0 && q->done_wall_ms > q->stop_wall_ms
	    ? (uint64_t)(q->done_wall_ms - q->stop_wall_ms) : 0;
	if (m->o->qemu_cleanup) {
		if (qmig_simple(q->qmp, "quit", &e) == 0)
			ev_log(m->ev, "committed: the source QEMU was told to quit (--cleanup)");
		else
			ev_log(m->ev, "committed, but quitting the source QEMU failed: %s", e.msg);
	} else {
		ev_log(m->ev, "committed: the source QEMU stays paused (postmigrate); --cleanup quits it");
	}
}

void
qsrc_failed(struct mig *m, int code)
{
	struct qsrc *q = qs_of(m);
	struct ferr e = { 0 };
	struct qmig_info info;
	char state[32];
	size_t n;
	int i;

	(void)code;
	if (q == NULL || !q->migrating || q->qmp == NULL)
		return;
	if (q->completed || m->commit_sent) {
		n = strlen(m->res->err.msg);
		snprintf(m->res->err.msg + n, sizeof(m->res->err.msg) - n,
		    "; the source QEMU completed its side and is left paused: resume it with 'cont' "
		    "only if the destination QEMU is not running");
		return;
	}
	if (q->qmp_ev != NULL)
		event_del(q->qmp_ev);
	/* While the guest runs, QMP answers: cancel first, so QEMU reports
	 * "cancelled" rather than a write error.  After it stopped the guest
	 * QEMU may hold its lock while blocked on our socket: close that first
	 * so the cancel can run. */
	if (q->stopped)
		close_qemu_socket(q);
	if (qmig_simple(q->qmp, "migrate_cancel", &e) != 0)
		ev_log(m->ev, "migrate_cancel: %s", e.msg);
	else
		ev_log(m->ev, "source QEMU: migration cancelled (migrate_cancel)");
	close_qemu_socket(q);
	for (i = 0; i < 250; i++) {
		struct timespec ts = { 0, 20 * 1000 * 1000 };

		if (qmig_query(q->qmp, &info, &e) != 0 ||
		    (strcmp(info.status, "active") != 0 && strcmp(info.status, "setup") != 0 &&
		    strcmp(info.status, "cancelling") != 0 && strcmp(info.status, "device") != 0))
			break;
		nanosleep(&ts, NULL);
	}
	if (!q->was_running)
		return;
	if (qmig_runstate(q->qmp, state, sizeof(state), &e) != 0) {
		ev_log(m->ev, "could not read the source QEMU's state: %s", e.msg);
		return;
	}
	if (strcmp(state, "running") == 0) {
		ev_log(m->ev, "the source QEMU runs on");
		return;
	}
	if (qmig_simple(q->qmp, "cont", &e) != 0)
		ev_log(m->ev, "could not resume the source QEMU ('%s'): %s", state, e.msg);
	else
		ev_log(m->ev, "source QEMU resumed ('cont')");
}

void
qsrc_add_json(struct mig *m, struct json_object *o)
{
	struct qsrc *q = qs_of(m);
	struct json_object *qo;

	if (q == NULL)
		return;
	qo = json_object_new_object();
	json_object_object_add(qo, "name", json_object_new_string(q->name));
	json_object_object_add(qo, "status", json_object_new_string(q->info.status[0] ? q->info.status : "none"));
	json_object_object_add(qo, "total_time_ms", json_object_new_int64(q->info.total_time_ms));
	json_object_object_add(qo, "downtime_ms", json_object_new_int64(q->info.downtime_ms));
	json_object_object_add(qo, "transferred", json_object_new_int64(q->info.transferred));
	json_object_object_add(qo, "stream_bytes", json_object_new_int64((int64_t)q->stream_bytes));
	json_object_object_add(o, "qemu", qo);
	if (q->done_wall_ms > 0 && q->stop_wall_ms > 0)
		json_object_object_add(o, "measured_downtime_ms",
		    json_object_new_int64(q->done_wall_ms - q->stop_wall_ms));
}

void
qsrc_fill_result(struct mig *m)
{
	struct qsrc *q = qs_of(m);

	if (q == NULL)
		return;
	m->res->logical_bytes = q->stream_bytes;
	m->res->frame_bytes = q->frame_bytes;
	m->res->pages_zero = q->zero;
	m->res->pages_dedup = q->dedup;
	m->res->pages_lz4 = q->lz4;
	m->res->pages_raw = q->raw;
}

void
qsrc_show_progress(struct mig *m)
{
	struct qsrc *q = qs_of(m);
	char tot[32], rem[32];

	fmt_size(q->stream_bytes, tot, sizeof(tot));
	fmt_size(q->info.remaining > 0 ? (uint64_t)q->info.remaining : 0, rem, sizeof(rem));
	fprintf(stderr, "\r\033[K%-10s QEMU %s | stream %s | remaining %s | wire %llu MiB",
	    mstate_name(m->st), q->info.status[0] ? q->info.status : "setup", tot, rem,
	    (unsigned long long)(link_wire_bytes(m) >> 20));
	m->progress_shown = 1;
}
