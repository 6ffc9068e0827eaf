/* The proxy object: listener, signals, control commands and the event
 * log.  Connections and their pipes live in conn.c and pipe.c. */
#include "proxy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "fproxy.h"
#include "units.h"

#define NSIGS 4

static uint64_t
mono_us(void *arg)
{
	struct timespec ts;

	(void)arg;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void
proxy_log(struct proxy *px, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char stamp[32];
	va_list ap;

	if (px->log == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(px->log, "%s.%03ld ", stamp, ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(px->log, fmt, ap);
	va_end(ap);
	fputc('\n', px->log);
	fflush(px->log);
}

static void
fmt_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(a->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(a->sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
	}
}

static unsigned
addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

/* HOST:PORT to one socket address.  A destination needs a real port. */
static int
resolve(const char *s, int passive, struct sockaddr_storage *ss, socklen_t *sslen, struct ferr *e)
{
	struct addrinfo hints, *res = NULL;
	char host[256], port_s[8];
	uint16_t port;
	int r, gai;

	if ((r = parse_hostport(s, host, sizeof(host), &port, e)) != 0)
		return r;
	if (!passive && port == 0)
		return ferr_set(e, FERR_USAGE, "address '%s': port 0 is not a destination", s);
	snprintf(port_s, sizeof(port_s), "%u", port);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	gai = getaddrinfo(host, port_s, &hints, &res);
	if (gai != 0)
		return ferr_set(e, FERR_USAGE, "address '%s': %s", s, gai_strerror(gai));
	if (res->ai_addrlen > sizeof(*ss)) {
		freeaddrinfo(res);
		return ferr_set(e, FERR_USAGE, "address '%s': unsupported family", s);
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct proxy *px = arg;
	struct ferr e = { 0 };
	char peer[80];

	(void)l;
	(void)salen;
	fmt_addr(sa, peer, sizeof(peer));
	if (px->f.refuse) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };

		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(fd);
		px->nrefused++;
		proxy_log(px, "refused connection from %s", peer);
		return;
	}
	if (conn_start(px, fd, peer, &e) != 0)
		proxy_log(px, "%s", e.msg);
}

static void
accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct proxy *px = arg;
	int err = EVUTIL_SOCKET_ERROR();

	(void)l;
	proxy_log(px, "accept: %s", evutil_socket_error_to_string(err));
	fprintf(stderr, "ferry-faultproxy: accept: %s\n", evutil_socket_error_to_string(err));
}

void
proxy_repump(struct proxy *px)
{
	struct conn *c, *next;

	for (c = px->conns; c != NULL; c = next) {
		next = c->next;
		for (int d = 0; d < FP_NDIR && !c->dead; d++)
			pipe_pump(&c->pipe[d]);
	}
}

unsigned
proxy_reset_all(struct proxy *px, const char *why)
{
	unsigned n = 0;

	while (px->conns != NULL) {
		conn_abort(px->conns, why);
		n++;
	}
	return n;
}

static void
clear_oneshots(struct proxy *px)
{
	px->next.close_left = -1;
	px->next.close_dirs = 0;
	for (int d = 0; d < FP_NDIR; d++)
		px->next.flip[d] = -1;
	for (struct conn *c = px->conns; c != NULL; c = c->next) {
		c->close_left = -1;
		for (int d = 0; d < FP_NDIR; d++)
			c->pipe[d].flip_left = -1;
	}
}

/* close-after and flip: on the newest open connection, or on the next one
 * when none is open or "next" was given. */
static void
arm_oneshot(struct proxy *px, const struct fp_cmd *cmd, const char *desc, char *reply, size_t len)
{
	struct conn *c = cmd->next ? NULL : px->conns_tail;
	char where[48];

	if (cmd->op == FP_OP_CLOSE_AFTER) {
		if (c != NULL) {
			c->close_left = (int64_t)cmd->value;
			c->close_dirs = cmd->dirs;
		} else {
			px->next.close_left = (int64_t)cmd->value;
			px->next.close_dirs = cmd->dirs;
		}
	} else {
		for (int d = 0; d < FP_NDIR; d++) {
			if (!(cmd->dirs & (1u << d)))
				continue;
			if (c != NULL)
				c->pipe[d].flip_left = (int64_t)cmd->value;
			else
				px->next.flip[d] = (int64_t)cmd->value;
		}
	}
	if (c != NULL)
		snprintf(where, sizeof(where), "conn %llu", (unsigned long long)c->id);
	else
		snprintf(where, sizeof(where), "next connection");
	proxy_log(px, "fault: %s on %s", desc, where);
	snprintf(reply, len, "ok %s on %s", desc, where);
}

void
proxy_command(struct proxy *px, const char *line, char *reply, size_t len)
{
	struct ferr e = { 0 };
	struct fp_cmd cmd;
	char desc[128], buf[200];
	unsigned n;

	if (fp_cmd_parse(line, &cmd, &e) != 0) {
		proxy_log(px, "ctl: %.80s: %s", line, e.msg);
		snprintf(reply, len, "error %s", e.msg);
		return;
	}
	fp_cmd_describe(&cmd, desc, sizeof(desc));
	switch (cmd.op) {
	case FP_OP_STATS:
		snprintf(reply, len, "ok conns=%llu up=%llu down=%llu active=%llu",
		    (unsigned long long)px->nconns, (unsigned long long)px->bytes[FP_UP],
		    (unsigned long long)px->bytes[FP_DOWN], (unsigned long long)px->active);
		return;
	case FP_OP_SHOW:
		fp_faults_describe(&px->f, buf, sizeof(buf));
		snprintf(reply, len, "ok %s refused=%llu", buf, (unsigned long long)px->nrefused);
		return;
	case FP_OP_RESET:
		n = proxy_reset_all(px, "reset command");
		proxy_log(px, "fault: reset %u connections", n);
		snprintf(reply, len, "ok reset %u connections", n);
		return;
	case FP_OP_CLOSE_AFTER:
	case FP_OP_FLIP:
		arm_oneshot(px, &cmd, desc, reply, len);
		return;
	default:
		break;
	}
	if (!fp_faults_apply(&px->f, &cmd)) {
		snprintf(reply, len, "error %s: not handled", desc);
		return;
	}
	if (cmd.op == FP_OP_CLEAR)
		clear_oneshots(px);
	if (cmd.op == FP_OP_RATE || cmd.op == FP_OP_CLEAR)
		for (struct conn *c = px->conns; c != NULL; c = c->next)
			for (int d = 0; d < FP_NDIR; d++)
				if (cmd.dirs & (1u << d))
					pipe_rate_reset(&c->pipe[d]);
	proxy_log(px, "fault: %s", desc);
	proxy_repump(px);
	snprintf(reply, len, "ok %s", desc);
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct proxy *px = arg;
	unsigned n;
	int on;

	(void)what;
	switch (sig) {
	case SIGUSR1:
		n = proxy_reset_all(px, "SIGUSR1");
		proxy_log(px, "SIGUSR1: reset %u connections", n);
		break;
	case SIGUSR2:
		on = !(px->f.stall[FP_UP] && px->f.stall[FP_DOWN]);
		px->f.stall[FP_UP] = px->f.stall[FP_DOWN] = on;
		proxy_log(px, "SIGUSR2: %s both", on ? "stall" : "unstall");
		proxy_repump(px);
		break;
	default:
		proxy_log(px, "signal %d: exiting", (int)sig);
		event_base_loopbreak(px->base);
		break;
	}
}

static void
reaper_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_reap(arg);
}

/* Written to a temporary name and renamed, so a reader never sees half. */
static int
write_port_file(const char *path, unsigned port, struct ferr *e)
{
	char tmp[PATH_MAX];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return ferr_set(e, FERR_USAGE, "--port-file %s: path too long", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return ferr_set(e, FERR_IO, "--port-file %s: %s", tmp, strerror(errno));
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		int err = errno;

		unlink(tmp);
		return ferr_set(e, FERR_IO, "--port-file %s: %s", path, strerror(err));
	}
	return 0;
}

int
proxy_run(const struct proxy_opts *o, struct ferr *e)
{
	static const int sigs[NSIGS] = { SIGUSR1, SIGUSR2, SIGTERM, SIGINT };
	struct sockaddr_storage lss;
	socklen_t llen = sizeof(lss);
	struct event_config *cfg = NULL;
	struct proxy px;
	char laddr[80];
	int r = FERR_INTERNAL;

	memset(&px, 0, sizeof(px));
	px.now_us = mono_us;
	px.next.close_left = -1;
	px.next.flip[FP_UP] = px.next.flip[FP_DOWN] = -1;
	if ((r = resolve(o->listen, 1, &lss, &llen, e)) != 0) {
		(void)ferr_wrap(e, "--listen");
		goto out;
	}
	if ((r = resolve(o->to, 0, &px.to, &px.tolen, e)) != 0) {
		(void)ferr_wrap(e, "--to");
		goto out;
	}
	fmt_addr((struct sockaddr *)&px.to, px.to_str, sizeof(px.to_str));
	if (o->log != NULL && (px.log = fopen(o->log, "a")) == NULL) {
		r = ferr_set(e, FERR_IO, "--log %s: %s", o->log, strerror(errno));
		goto out;
	}
	r = ferr_set(e, FERR_NOMEM, "cannot set up the event loop");
	if ((cfg = event_config_new()) == NULL)
		goto out;
	event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
	if ((px.base = event_base_new_with_config(cfg)) == NULL)
		goto out;
	if ((px.reaper = event_new(px.base, -1, 0, reaper_cb, &px)) == NULL)
		goto out;
	for (int i = 0; i < NSIGS; i++)
		if ((px.sigs[i] = evsignal_new(px.base, sigs[i], signal_cb, &px)) == NULL ||
		    event_add(px.sigs[i], NULL) != 0)
			goto out;
	px.lst = evconnlistener_new_bind(px.base, accept_cb, &px, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
	    128, (struct sockaddr *)&lss, (int)llen);
	if (px.lst == NULL) {
		r = ferr_set(e, FERR_NET, "--listen %s: %s", o->listen, strerror(errno));
		goto out;
	}
	evconnlistener_set_error_cb(px.lst, accept_error_cb);
	llen = sizeof(lss);
	if (getsockname(evconnlistener_get_fd(px.lst), (struct sockaddr *)&lss, &llen) != 0) {
		r = ferr_set(e, FERR_NET, "--listen %s: getsockname: %s", o->listen, strerror(errno));
		goto out;
	}
	fmt_addr((struct sockaddr *)&lss, laddr, sizeof(laddr));
	if (o->ctl != NULL && (r = ctl_server_new(&px, o->ctl, &px.ctl, e)) != 0)
		goto out;
	if (o->port_file != NULL &&
	    (r = write_port_file(o->port_file, addr_port((struct sockaddr *)&lss), e)) != 0)
		goto out;
	fprintf(stderr, "listening on %s\n", laddr);
	proxy_log(&px, "listening on %s, relaying to %s%s%s", laddr, px.to_str,
	    o->ctl != NULL ? ", control socket " : "", o->ctl != NULL ? o->ctl : "");
	if (event_base_dispatch(px.base) < 0) {
		r = ferr_set(e, FERR_INTERNAL, "event loop failed");
		goto out;
	}
	r = 0;
out:
	while (px.conns != NULL)
		conn_finish(px.conns, "proxy exiting");
	conn_reap(&px);
	ctl_server_free(px.ctl);
	if (px.lst != NULL)
		evconnlistener_free(px.lst);
	for (int i = 0; i < NSIGS; i++)
		if (px.sigs[i] != NULL)
			event_free(px.sigs[i]);
	if (px.reaper != NULL)
		event_free(px.reaper);
	if (px.base != NULL)
		event_base_free(px.base);
	if (cfg != NULL)
		event_config_free(cfg);
	if (px.log != NULL) {
		if (r == 0)
			proxy_log(&px, "exiting");
		fclose(px.log);
	}
	return r;
}
