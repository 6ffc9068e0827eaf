/* Connection lifecycle: accept -> connect upstream -> relay -> close.
 * A killed connection loses its sockets at once; its struct lives on the
 * proxy's dead list until the reaper runs, so callers that still hold the
 * pointer can test c->dead. */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "fproxy.h"

static void
set_nodelay(int fd)
{
	int one = 1;

	if (fd >= 0)
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
set_rst(struct bufferevent *bev)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	int fd = bev != NULL ? bufferevent_getfd(bev) : -1;

	if (fd >= 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

static void
list_remove(struct proxy *px, struct conn *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		px->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		px->conns_tail = c->prev;
	c->prev = c->next = NULL;
}

/* Release sockets, timers and queues; park the struct for the reaper. */
static void
conn_kill(struct conn *c, const char *how, const char *why)
{
	struct proxy *px = c->px;

	if (c->dead)
		return;
	c->dead = 1;
	proxy_log(px, "conn %llu: %s (%s) up=%llu down=%llu dropped=%llu/%llu",
	    (unsigned long long)c->id, how, why, (unsigned long long)c->bytes[FP_UP],
	    (unsigned long long)c->bytes[FP_DOWN], (unsigned long long)c->pipe[FP_UP].dropped,
	    (unsigned long long)c->pipe[FP_DOWN].dropped);
	for (int d = 0; d < FP_NDIR; d++)
		pipe_fini(&c->pipe[d]);
	if (c->cli != NULL)
		bufferevent_free(c->cli);
	if (c->srv != NULL)
		bufferevent_free(c->srv);
	c->cli = c->srv = NULL;
	list_remove(px, c);
	px->active--;
	c->next = px->dead;
	px->dead = c;
	event_active(px->reaper, EV_TIMEOUT, 1);
}

void
conn_abort(struct conn *c, const char *why)
{
	if (c->dead)
		return;
	set_rst(c->cli);
	set_rst(c->srv);
	conn_kill(c, "reset", why);
}

void
conn_finish(struct conn *c, const char *why)
{
	int fd;

	if (c->dead)
		return;
	/* FIN first, so a peer still holding unread bytes of ours sees the
	 * end of the stream before any RST the close may cause. */
	for (int d = 0; d < FP_NDIR; d++) {
		if (c->pipe[d].shut)
			continue;
		fd = bufferevent_getfd(c->pipe[d].dst);
		if (fd >= 0 && (d == FP_DOWN || c->connected))
			(void)shutdown(fd, SHUT_WR);
	}
	conn_kill(c, "closed", why);
}

void
conn_reap(struct proxy *px)
{
	while (px->dead != NULL) {
		struct conn *c = px->dead;

		px->dead = c->next;
		free(c);
	}
}

static struct pipe *
src_pipe(struct conn *c, struct bufferevent *bev)
{
	return bev == c->cli ? &c->pipe[FP_UP] : &c->pipe[FP_DOWN];
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (!c->dead)
		pipe_ingress(src_pipe(c, bev));
}

/* The output of bev drained: pump the pipe that writes into it. */
static void
write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (!c->dead)
		pipe_pump(bev == c->cli ? &c->pipe[FP_DOWN] : &c->pipe[FP_UP]);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	const char *side = bev == c->cli ? "client" : "server";
	char why[160];

	if (c->dead)
		return;
	if (what & BEV_EVENT_CONNECTED) {
		c->connected = 1;
		set_nodelay(bufferevent_getfd(c->srv));
		proxy_log(c->px, "conn %llu: connected to %s", (unsigned long long)c->id, c->px->to_str);
		pipe_pump(&c->pipe[FP_UP]);
		if (!c->dead)
			pipe_pump(&c->pipe[FP_DOWN]);
		return;
	}
	if (what & BEV_EVENT_ERROR) {
		int err = EVUTIL_SOCKET_ERROR();

		if (bev == c->srv && !c->connected)
			snprintf(why, sizeof(why), "connect to %s: %s", c->px->to_str,
			    evutil_socket_error_to_string(err));
		else
			snprintf(why, sizeof(why), "%s %s: %s", side,
			    (what & BEV_EVENT_READING) ? "read" : "write", evutil_socket_error_to_string(err));
		conn_abort(c, why);
		return;
	}
	if (what & BEV_EVENT_EOF)
		pipe_eof(src_pipe(c, bev));
}

int
conn_start(struct proxy *px, int fd, const char *peer, struct ferr *e)
{
	struct conn *c;
	int r = FERR_NOMEM;

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		close(fd);
		return ferr_set(e, FERR_NOMEM, "out of memory for a connection");
	}
	c->px = px;
	c->id = ++px->next_id;
	c->close_left = -1;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->cli = bufferevent_socket_new(px->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->cli == NULL) {
		close(fd);
		free(c);
		return ferr_set(e, FERR_NOMEM, "bufferevent for %s", peer);
	}
	/* From here on conn_kill releases everything. */
	c->prev = px->conns_tail;
	if (px->conns_tail != NULL)
		px->conns_tail->next = c;
	else
		px->conns = c;
	px->conns_tail = c;
	px->active++;
	px->nconns++;
	c->srv = bufferevent_socket_new(px->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (c->srv == NULL)
		goto fail;
	for (int d = 0; d < FP_NDIR; d++)
		if ((r = pipe_init(&c->pipe[d], c, d)) != 0)
			goto fail;
	/* one-shots armed for "the next connection" */
	c->close_left = px->next.close_left;
	c->close_dirs = px->next.close_dirs;
	px->next.close_left = -1;
	for (int d = 0; d < FP_NDIR; d++) {
		c->pipe[d].flip_left = px->next.flip[d];
		px->next.flip[d] = -1;
	}
	set_nodelay(fd);
	bufferevent_set_max_single_read(c->cli, READ_MAX);
	bufferevent_set_max_single_read(c->srv, READ_MAX);
	bufferevent_setcb(c->cli, read_cb, write_cb, event_cb, c);
	bufferevent_setcb(c->srv, read_cb, write_cb, event_cb, c);
	proxy_log(px, "conn %llu: accepted from %s", (unsigned long long)c->id, peer);
	if (bufferevent_socket_connect(c->srv, (struct sockaddr *)&px->to, (int)px->tolen) != 0) {
		r = FERR_NET;
		goto fail;
	}
	pipe_pump(&c->pipe[FP_UP]);   /* starts reading the client */
	return 0;
fail:
	ferr_set(e, r, "conn %llu from %s: cannot start relaying to %s", (unsigned long long)c->id,
	    peer, px->to_str);
	conn_abort(c, e != NULL ? e->msg : "setup failed");
	return r;
}
