#include "sockopt.h"

#include <errno.h>
#include <event2/event.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

void
sock_tune(int fd, uint64_t keepalive_ms, uint64_t dead_ms)
{
	int one = 1, idle, cnt = 3;
	unsigned int uto;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	idle = (int)(keepalive_ms / 1000);
	if (idle < 1)
		idle = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	uto = dead_ms > 0xffffffffu ? 0xffffffffu : (unsigned int)dead_ms;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
}

int
sock_bind_device(int fd, const char *ifname, struct ferr *e)
{
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) != 0)
		return ferr_set(e, FERR_USAGE, "--interface %s: %s", ifname, strerror(errno));
	return 0;
}

void
sock_drain_close(int fd, unsigned int timeout_ms)
{
	struct pollfd p = { fd, POLLIN, 0 };
	char buf[16384];
	int left = (int)timeout_ms;

	(void)shutdown(fd, SHUT_WR);
	while (left > 0 && poll(&p, 1, left > 50 ? 50 : left) >= 0) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
		left -= 50;
	}
	close(fd);
}

struct drain {
	struct event *ev;
	struct event_base *base;
	int fd;
	struct drain *next, *prev;
};

/* Drains in progress, so that a program that ends before they time out
 * can close them (sock_drain_finish). */
static struct drain *drains;

static void
drain_free(struct drain *dr)
{
	if (dr->prev != NULL)
		dr->prev->next = dr->next;
	else
		drains = dr->next;
	if (dr->next != NULL)
		dr->next->prev = dr->prev;
	event_free(dr->ev);
	close(dr->fd);
	free(dr);
}

void
sock_drain_finish(struct event_base *base)
{
	struct drain *dr = drains, *next;

	for (; dr != NULL; dr = next) {
		next = dr->next;
		if (dr->base == base)
			drain_free(dr);
	}
}

static void
on_drain(evutil_socket_t fd, short what, void *arg)
{
	struct drain *dr = arg;
	char buf[16384];
	ssize_t n = 0;

	if (what & EV_READ) {
		while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
			;
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;     /* more may come: keep draining until EOF or timeout */
	}
	drain_free(dr);
}

void
sock_drain_close_async(struct event_base *base, int fd, unsigned int timeout_ms)
{
	struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000 };
	struct drain *dr = malloc(sizeof(*dr));

	(void)shutdown(fd, SHUT_WR);
	if (dr == NULL) {
		close(fd);
		return;
	}
	dr->fd = fd;
	dr->base = base;
	dr->ev = event_new(base, fd, EV_READ | EV_PERSIST | EV_TIMEOUT, on_drain, dr);
	if (dr->ev == NULL) {
		close(fd);
		free(dr);
		return;
	}
	dr->prev = NULL;
	dr->next = drains;
	if (drains != NULL)
		drains->prev = dr;
	drains = dr;
	event_add(dr->ev, &tv);
}
