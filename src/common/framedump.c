#include "framedump.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "dumpfmt.h"
#include "framesplit.h"
#include "msg.h"
#include "pagehash.h"

struct framedump_dir {
	char *path;
	uint8_t role;
	uint32_t pid;
	uint32_t next_conn;
	const struct events *ev;
	uint64_t (*now_us)(void);
};

struct framedump;

/* One direction: the buffer it watches and the frames it cuts out. */
struct tap {
	struct framedump *dump;
	struct evbuffer *buf;
	struct evbuffer_cb_entry *cb;
	struct fsplit split;
	uint8_t dir;                /* enum dump_dir */
	uint64_t frames, bytes;
};

struct framedump {
	struct framedump_dir *d;
	struct tap sent, received;
	int fd;                     /* -1 until the first bytes pass */
	int dead;                   /* an error ended this dump */
	int have_sid;
	uint32_t conn;
	uint64_t start_us;
	char base[96];              /* file name without ".fdump" */
	char path[PATH_MAX];
};

static uint64_t
wall_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int
framedump_dir_new(const char *path, uint8_t role, const struct events *ev,
    struct framedump_dir **out, struct ferr *e)
{
	struct framedump_dir *d;
	struct stat sb;

	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return ferr_set(e, FERR_USAGE, "--dump-frames: empty directory name");
	if (stat(path, &sb) != 0)
		return ferr_set(e, FERR_USAGE, "--dump-frames '%s': %s", path, strerror(errno));
	if (!S_ISDIR(sb.st_mode))
		return ferr_set(e, FERR_USAGE, "--dump-frames '%s': not a directory", path);
	if (access(path, W_OK | X_OK) != 0)
		return ferr_set(e, FERR_USAGE, "--dump-frames '%s': not writable: %s", path,
		    strerror(errno));
	if (role != DUMP_ROLE_SENDER && role != DUMP_ROLE_RECEIVER)
		return ferr_set(e, FERR_INTERNAL, "framedump: role %u", role);
	if ((d = calloc(1, sizeof(*d))) == NULL || (d->path = strdup(path)) == NULL) {
		free(d);
		return ferr_set(e, FERR_NOMEM, "--dump-frames: out of memory");
	}
	d->role = role;
	d->pid = (uint32_t)getpid();
	d->ev = ev;
	d->now_us = wall_us;
	*out = d;
	return 0;
}

void
framedump_dir_free(struct framedump_dir *d)
{
	if (d == NULL)
		return;
	free(d->path);
	free(d);
}

void
framedump_dir_set_clock(struct framedump_dir *d, uint64_t (*now_us)(void))
{
	d->now_us = now_us;
}

/* ---- the file ---- */

/* Stop watching; safe from inside the tap's own callback (the splitter
 * and its buffer live until tap_off). */
static void
tap_pause(struct tap *t)
{
	if (t->cb != NULL)
		evbuffer_cb_clear_flags(t->buf, t->cb, EVBUFFER_CB_ENABLED);
}

static void
tap_off(struct tap *t)
{
	if (t->cb != NULL)
		evbuffer_remove_cb_entry(t->buf, t->cb);
	t->cb = NULL;
	fsplit_fini(&t->split);
}

/* Log once and stop dumping this connection; the migration goes on. */
static void
dump_fail(struct framedump *dump, const char *what, int err)
{
	ev_warn(dump->d->ev, "--dump-frames: %s '%s': %s; no more frames are dumped for this "
	    "connection", what, dump->path, strerror(err));
	dump->dead = 1;
	if (dump->fd >= 0)
		close(dump->fd);
	dump->fd = -1;
	tap_pause(&dump->sent);
	tap_pause(&dump->received);
}

static int
write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

static void
name_file(struct framedump *dump)
{
	struct framedump_dir *d = dump->d;
	time_t t = (time_t)(dump->start_us / 1000000u);
	struct tm tm;
	char when[32] = "0";

	if (gmtime_r(&t, &tm) != NULL)
		strftime(when, sizeof(when), "%Y%m%dT%H%M%S", &tm);
	snprintf(dump->base, sizeof(dump->base), "%s-%s-%u-%u",
	    d->role == DUMP_ROLE_SENDER ? "send" : "recv", when, d->pid, dump->conn);
	snprintf(dump->path, sizeof(dump->path), "%s/%s.fdump", d->path, dump->base);
}

static int
open_file(struct framedump *dump)
{
	struct dump_file_hdr h = { DUMP_VERSION, dump->d->role, dump->d->pid, dump->conn,
		dump->start_us };
	uint8_t hb[DUMP_FILE_HDR_LEN];
	struct iovec iov = { hb, sizeof(hb) };
	struct wr w;

	name_file(dump);
	dump->fd = open(dump->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (dump->fd < 0) {
		dump_fail(dump, "cannot create", errno);
		return -1;
	}
	wr_init(&w, hb, sizeof(hb));
	(void)dump_file_hdr_encode(&w, &h);
	/* Exactly 0600 whatever the umask: it holds guest memory. */
	if (fchmod(dump->fd, 0600) != 0 || write_all(dump->fd, &iov, 1) != 0) {
		dump_fail(dump, "cannot write", errno);
		return -1;
	}
	return 0;
}

static void
put_record(struct framedump *dump, uint8_t kind, uint8_t dir, uint8_t flags, const uint8_t *body,
    size_t len)
{
	struct dump_rec r = { 0, kind, dir, dump->d->role, flags, (uint32_t)len, 0, NULL };
	uint8_t hb[DUMP_REC_HDR_LEN];
	struct iovec iov[2];
	struct wr w;

	if (dump->dead || (dump->fd < 0 && open_file(dump) != 0))
		return;
	r.time_us = dump->d->now_us();
	wr_init(&w, hb, sizeof(hb));
	(void)dump_rec_hdr_encode(&w, &r);
	iov[0].iov_base = hb;
	iov[0].iov_len = sizeof(hb);
	iov[1].iov_base = (void *)body;
	iov[1].iov_len = len;
	if (write_all(dump->fd, iov, len > 0 ? 2 : 1) != 0)
		dump_fail(dump, "cannot write", errno);
}

/* ---- the session id, from WELCOME or RESUME (either direction) ---- */

static int
frame_session_id(const uint8_t *p, size_t n, uint8_t sid[FERRY_SESSION_ID_LEN])
{
	if (n < FERRY_FRAME_HDR_LEN)
		return -1;
	if (p[0] == FT_WELCOME) {
		struct msg_welcome m;

		if (msg_welcome_decode(p + FERRY_FRAME_HDR_LEN, n - FERRY_FRAME_HDR_LEN, &m, NULL) != 0)
			return -1;
		memcpy(sid, m.session_id, FERRY_SESSION_ID_LEN);
		return 0;
	}
	if (p[0] == FT_RESUME) {
		struct msg_resume m;

		if (msg_resume_decode(p + FERRY_FRAME_HDR_LEN, n - FERRY_FRAME_HDR_LEN, &m, NULL) != 0)
			return -1;
		memcpy(sid, m.session_id, FERRY_SESSION_ID_LEN);
		return 0;
	}
	return -1;
}

/* Put the session id in the file name too, so `ls DIR/ *ID*` finds every
 * connection of a session.  A failed rename only costs the nicer name. */
static void
rename_for_session(struct framedump *dump, const uint8_t sid[FERRY_SESSION_ID_LEN])
{
	char hex[2 * FERRY_SESSION_ID_LEN + 1], to[PATH_MAX];

	hash_hex(sid, hex);
	snprintf(to, sizeof(to), "%s/%s-%s.fdump", dump->d->path, dump->base, hex);
	if (rename(dump->path, to) != 0) {
		ev_warn(dump->d->ev, "--dump-frames: cannot rename '%s' to '%s': %s", dump->path, to,
		    strerror(errno));
		return;
	}
	snprintf(dump->path, sizeof(dump->path), "%s", to);
}

static void
note_session(struct framedump *dump, const uint8_t *frame, size_t n)
{
	uint8_t sid[FERRY_SESSION_ID_LEN];

	if (dump->have_sid || frame_session_id(frame, n, sid) != 0)
		return;
	dump->have_sid = 1;
	put_record(dump, DUMP_REC_SESSION, 0, 0, sid, sizeof(sid));
	if (!dump->dead)
		rename_for_session(dump, sid);
}

/* ---- the taps ---- */

static void
on_frame(void *arg, const uint8_t *frame, size_t n, int partial)
{
	struct tap *t = arg;
	struct framedump *dump = t->dump;

	if (dump->dead)
		return;
	t->frames++;
	t->bytes += n;
	put_record(dump, DUMP_REC_FRAME, t->dir, partial ? DUMP_FLAG_PARTIAL : 0, frame, n);
	if (!partial)
		note_session(dump, frame, n);
}

/* The n bytes just added at the tail of the buffer (evbuffer callbacks
 * run right after each change, before anyone can drain them). */
static void
feed_added(struct tap *t, struct evbuffer *buf, size_t n)
{
	struct evbuffer_ptr pos;
	size_t left = n;

	if (evbuffer_ptr_set(buf, &pos, evbuffer_get_length(buf) - n, EVBUFFER_PTR_SET) != 0)
		return;
	while (left > 0 && !t->dump->dead) {
		struct evbuffer_iovec v[8];
		int k = evbuffer_peek(buf, (ev_ssize_t)left, &pos, v, 8), i;

		if (k <= 0)
			return;
		for (i = 0; i < k && i < 8 && left > 0 && !t->dump->dead; i++) {
			size_t len = v[i].iov_len < left ? v[i].iov_len : left;

			if (fsplit_feed(&t->split, v[i].iov_base, len, on_frame, t) != 0)
				ev_warn(t->dump->d->ev, "--dump-frames: out of memory; '%s' misses frames",
				    t->dump->path);
			left -= len;
			if (evbuffer_ptr_set(buf, &pos, len, EVBUFFER_PTR_ADD) != 0)
				return;
		}
	}
}

static void
on_tap(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	struct tap *t = arg;

	if (info->n_added == 0 || t->dump->dead || info->n_added > evbuffer_get_length(buf))
		return;
	feed_added(t, buf, info->n_added);
}

static int
tap_on(struct framedump *dump, struct tap *t, struct evbuffer *buf, uint8_t dir)
{
	t->dump = dump;
	t->buf = buf;
	t->dir = dir;
	fsplit_init(&t->split, DUMP_FRAME_MAX);
	t->cb = evbuffer_add_cb(buf, on_tap, t);
	return t->cb != NULL ? 0 : -1;
}

struct framedump *
framedump_new(struct framedump_dir *d, struct bufferevent *bev)
{
	struct framedump *dump;

	if (d == NULL || bev == NULL)
		return NULL;
	if ((dump = calloc(1, sizeof(*dump))) == NULL) {
		ev_warn(d->ev, "--dump-frames: out of memory; this connection is not dumped");
		return NULL;
	}
	dump->d = d;
	dump->fd = -1;
	dump->conn = ++d->next_conn;
	dump->start_us = d->now_us();
	if (tap_on(dump, &dump->sent, bufferevent_get_output(bev), DUMP_DIR_SENT) != 0 ||
	    tap_on(dump, &dump->received, bufferevent_get_input(bev), DUMP_DIR_RECEIVED) != 0) {
		ev_warn(d->ev, "--dump-frames: cannot watch connection %u; it is not dumped", dump->conn);
		framedump_free(dump);
		return NULL;
	}
	return dump;
}

void
framedump_free(struct framedump *dump)
{
	if (dump == NULL)
		return;
	if (!dump->dead) {
		fsplit_flush(&dump->sent.split, on_frame, &dump->sent);
		fsplit_flush(&dump->received.split, on_frame, &dump->received);
	}
	if (!dump->dead && dump->fd >= 0) {
		struct dump_end end = { dump->sent.frames, dump->received.frames, dump->sent.bytes,
			dump->received.bytes };
		uint8_t body[DUMP_END_LEN];
		struct wr w;

		wr_init(&w, body, sizeof(body));
		(void)dump_end_encode(&w, &end);
		put_record(dump, DUMP_REC_END, 0, 0, body, sizeof(body));
	}
	if (dump->fd >= 0 && close(dump->fd) != 0 && !dump->dead)
		ev_warn(dump->d->ev, "--dump-frames: closing '%s': %s", dump->path, strerror(errno));
	tap_off(&dump->sent);
	tap_off(&dump->received);
	free(dump);
}
