/* The control socket: a unix stream socket where each line is one command
 * and gets one reply line.  Also the client mode that sends one command. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "fproxy.h"

#define CTL_IN_MAX     (4 * FP_LINE_MAX)  /* input held while looking for a newline */
#define CTL_OUT_MAX    (64u << 10)        /* replies a client has not read yet */
#define CTL_REPLY_MAX  512
#define CTL_TIMEOUT_S  10

struct ctl_conn {
	struct ctl_conn *prev, *next;
	struct ctl_server *s;
	struct bufferevent *bev;
	int closing;                /* free once the output drained */
};

struct ctl_server {
	struct proxy *px;
	struct evconnlistener *lst;
	struct ctl_conn *conns;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static void
cc_free(struct ctl_conn *cc)
{
	struct ctl_server *s = cc->s;

	if (cc->prev != NULL)
		cc->prev->next = cc->next;
	else
		s->conns = cc->next;
	if (cc->next != NULL)
		cc->next->prev = cc->prev;
	bufferevent_free(cc->bev);
	free(cc);
}

static void
cc_close_when_flushed(struct ctl_conn *cc)
{
	cc->closing = 1;
	bufferevent_disable(cc->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(cc->bev)) == 0)
		cc_free(cc);
}

static void
cc_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cc = arg;
	struct evbuffer *in = bufferevent_get_input(bev), *out = bufferevent_get_output(bev);
	char reply[CTL_REPLY_MAX], *line;
	size_t n;

	while (!cc->closing && (line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF)) != NULL) {
		if (n > FP_LINE_MAX || memchr(line, '\0', n) != NULL)
			snprintf(reply, sizeof(reply), "error command longer than %d bytes or not text",
			    FP_LINE_MAX);
		else
			proxy_command(cc->s->px, line, reply, sizeof(reply));
		free(line);
		evbuffer_add_printf(out, "%s\n", reply);
		if (evbuffer_get_length(out) > CTL_OUT_MAX)
			cc->closing = 1;    /* a client that does not read its replies */
	}
	if (!cc->closing && evbuffer_get_length(in) > FP_LINE_MAX) {
		evbuffer_add_printf(out, "error command longer than %d bytes\n", FP_LINE_MAX);
		cc->closing = 1;
	}
	if (cc->closing)
		cc_close_when_flushed(cc);
}

static void
cc_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl_conn *cc = arg;

	(void)bev;
	if (cc->closing)
		cc_free(cc);
}

static void
cc_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl_conn *cc = arg;

	(void)bev;
	if (what & BEV_EVENT_ERROR)
		cc_free(cc);
	else if (what & BEV_EVENT_EOF)
		cc_close_when_flushed(cc);
}

static void
ctl_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct ctl_server *s = arg;
	struct ctl_conn *cc;

	(void)l;
	(void)sa;
	(void)salen;
	cc = calloc(1, sizeof(*cc));
	if (cc == NULL) {
		close(fd);
		return;
	}
	cc->s = s;
	cc->bev = bufferevent_socket_new(s->px->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (cc->bev == NULL) {
		close(fd);
		free(cc);
		return;
	}
	cc->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = cc;
	s->conns = cc;
	bufferevent_setwatermark(cc->bev, EV_READ, 0, CTL_IN_MAX);
	bufferevent_setcb(cc->bev, cc_read_cb, cc_write_cb, cc_event_cb, cc);
	bufferevent_enable(cc->bev, EV_READ);
}

/* A socket file nobody listens on (left by a killed proxy). */
static int
is_stale_socket(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, r;

	if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode))
		return 0;
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	r = r != 0 && errno == ECONNREFUSED;
	close(fd);
	return r;
}

int
ctl_server_new(struct proxy *px, const char *path, struct ctl_server **out, struct ferr *e)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct ctl_server *s = NULL;
	mode_t old;
	int fd = -1, r, rc;

	*out = NULL;
	if (strlen(path) >= sizeof(sun.sun_path))
		return ferr_set(e, FERR_USAGE, "--ctl %s: longer than %zu bytes", path, sizeof(sun.sun_path) - 1);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = ferr_set(e, FERR_NET, "--ctl %s: socket: %s", path, strerror(errno));
		goto out;
	}
	/* only the owner may send faults */
	old = umask(077);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (rc != 0 && errno == EADDRINUSE && is_stale_socket(path) && unlink(path) == 0)
		rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	umask(old);
	if (rc != 0) {
		r = ferr_set(e, FERR_NET, "--ctl %s: %s", path,
		    errno == EADDRINUSE ? "in use (another proxy, or not a socket)" : strerror(errno));
		goto out;
	}
	if (listen(fd, 16) != 0) {
		r = ferr_set(e, FERR_NET, "--ctl %s: listen: %s", path, strerror(errno));
		unlink(path);
		goto out;
	}
	r = ferr_set(e, FERR_NOMEM, "--ctl %s: out of memory", path);
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		unlink(path);
		goto out;
	}
	s->px = px;
	memcpy(s->path, path, strlen(path) + 1);
	s->lst = evconnlistener_new(px->base, ctl_accept_cb, s, LEV_OPT_CLOSE_ON_FREE, 0, fd);
	if (s->lst == NULL) {
		unlink(path);
		goto out;
	}
	fd = -1;
	*out = s;
	s = NULL;
	r = 0;
	ferr_clear(e);
out:
	if (fd >= 0)
		close(fd);
	free(s);
	return r;
}

void
ctl_server_free(struct ctl_server *s)
{
	if (s == NULL)
		return;
	while (s->conns != NULL)
		cc_free(s->conns);
	evconnlistener_free(s->lst);
	unlink(s->path);
	free(s);
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int
ctl_client(const char *path, int nwords, char **words)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CTL_TIMEOUT_S };
	char line[FP_LINE_MAX + 2], reply[CTL_REPLY_MAX];
	size_t off = 0, got = 0;
	int fd = -1, status = 1;

	for (int i = 0; i < nwords; i++) {
		size_t n = strlen(words[i]);

		if (strchr(words[i], '\n') != NULL || off + n + 1 > FP_LINE_MAX) {
			fprintf(stderr, "ferry-faultproxy ctl: command too long or has a newline\n");
			return 1;
		}
		if (i > 0)
			line[off++] = ' ';
		memcpy(line + off, words[i], n);
		off += n;
	}
	line[off++] = '\n';
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "ferry-faultproxy ctl: %s: path too long\n", path);
		return 1;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "ferry-faultproxy ctl: %s: %s\n", path, strerror(errno));
		goto out;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (write_all(fd, line, off) != 0) {
		fprintf(stderr, "ferry-faultproxy ctl: %s: send: %s\n", path, strerror(errno));
		goto out;
	}
	while (got < sizeof(reply) - 1) {
		ssize_t n = read(fd, reply + got, sizeof(reply) - 1 - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "ferry-faultproxy ctl: %s: no reply: %s\n", path,
			    errno == EAGAIN ? "timed out" : strerror(errno));
			goto out;
		}
		if (n == 0 || memchr(reply + got, '\n', (size_t)n) != NULL) {
			got += (size_t)n;
			break;
		}
		got += (size_t)n;
	}
	reply[got] = '\0';
	reply[strcspn(reply, "\n")] = '\0';
	if (got == 0) {
		fprintf(stderr, "ferry-faultproxy ctl: %s: closed without a reply\n", path);
		goto out;
	}
	printf("%s\n", reply);
	if (strncmp(reply, "ok", 2) == 0 && (reply[2] == '\0' || reply[2] == ' '))
		status = 0;
out:
	if (fd >= 0)
		close(fd);
	return status;
}
