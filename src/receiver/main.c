/* ferry-recv: listens on the migration network, authenticates senders with
 * mutual TLS, and runs one receiver session (rsess + staging) per
 * connection.  This file only moves bytes between bufferevents and the
 * sans-I/O session. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <getopt.h>
#include <json-c/json.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "err.h"
#include "events.h"
#include "frame.h"
#include "pagehash.h"
#include "result.h"
#include "rsess.h"
#include "staging.h"
#include "tls.h"
#include "units.h"

struct recv_opts {
	char listen_host[256];
	uint16_t listen_port;
	const char *cert, *key, *ca, *peer_name;
	const char *dest_dir;
	const char *on_commit;
	uint32_t expect_disks;
	uint32_t max_sessions;
	uint64_t handshake_ms;
	int once;
	int json;
};

struct daemon;

struct conn {
	struct daemon *d;
	struct bufferevent *bev;
	struct rsess *sess;
	struct staging *stg;
	struct event *deadline;
	char peer[256];
	int closing;            /* flush output, then close */
	int finished;           /* done event emitted */
	uint64_t started_ms;
	struct conn *next, *prev;   /* daemon's list of connections */
};

struct daemon {
	struct recv_opts o;
	struct event_base *base;
	struct tls_ctx *tls;
	struct evconnlistener *lst;
	struct events ev;
	uint32_t active;
	struct conn *conns;
	int last_result;
	int served;
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
random_bytes(void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t k = getrandom(p, n, 0);

		if (k <= 0)
			continue;
		p += k;
		n -= (size_t)k;
	}
}

static void
run_on_commit(struct conn *c)
{
	const struct msg_manifest *m = rsess_manifest(c->sess);
	char key[32], sid[33];
	uint32_t i, n = staging_count(c->stg);
	pid_t pid;
	int status;

	if (c->d->o.on_commit == NULL || m == NULL)
		return;
	pid = fork();
	if (pid < 0) {
		ev_log(&c->d->ev, "on-commit: fork: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		hash_hex(rsess_session_id(c->sess), sid);
		setenv("FERRY_SESSION", sid, 1);
		setenv("FERRY_DEST_DIR", c->d->o.dest_dir, 1);
		snprintf(key, sizeof(key), "%u", n);
		setenv("FERRY_NFILES", key, 1);
		for (i = 0; i < n; i++) {
			snprintf(key, sizeof(key), "FERRY_PATH_%u", i);
			setenv(key, staging_final_path(c->stg, i), 1);
		}
		execl("/bin/sh", "sh", "-c", c->d->o.on_commit, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		ev_log(&c->d->ev, "on-commit command failed (status %d)", status);
}

static void
conn_done_event(struct conn *c, int code, const char *why)
{
	const struct rsess_stats *st = c->sess ? rsess_stats(c->sess) : NULL;
	enum result r = result_from_err(code);
	struct json_object *o = json_object_new_object();
	char sid[33] = "";

	if (c->finished)
		return;
	c->finished = 1;
	c->d->last_result = r;
	if (c->sess != NULL)
		hash_hex(rsess_session_id(c->sess), sid);
	if (r == RES_OK)
		ev_log(&c->d->ev, "session %.16s from %s: committed (%llu bytes, %llu ms)", sid, c->peer,
		    st ? (unsigned long long)st->logical_bytes : 0ULL,
		    (unsigned long long)(now_ms() - c->started_ms));
	else
		ev_log(&c->d->ev, "session %.16s from %s: %s: %s", sid, c->peer, result_name(r), why);
	json_object_object_add(o, "result", json_object_new_string(result_name(r)));
	if (r != RES_OK)
		json_object_object_add(o, "error", json_object_new_string(why));
	json_object_object_add(o, "session", json_object_new_string(sid));
	json_object_object_add(o, "peer", json_object_new_string(c->peer));
	if (st != NULL) {
		json_object_object_add(o, "logical_bytes", json_object_new_int64((int64_t)st->logical_bytes));
		json_object_object_add(o, "pages_zero", json_object_new_int64((int64_t)st->pages_zero));
		json_object_object_add(o, "pages_dedup", json_object_new_int64((int64_t)st->pages_dedup));
		json_object_object_add(o, "pages_lz4", json_object_new_int64((int64_t)st->pages_lz4));
		json_object_object_add(o, "pages_raw", json_object_new_int64((int64_t)st->pages_raw));
		json_object_object_add(o, "rounds", json_object_new_int((int)st->round));
	}
	json_object_object_add(o, "duration_ms", json_object_new_int64((int64_t)(now_ms() - c->started_ms)));
	ev_json(&c->d->ev, "done", o);
}

static void
conn_free(struct conn *c)
{
	struct daemon *d = c->d;

	if (c->sess != NULL && rsess_state(c->sess) != RS_COMMITTED && !c->finished) {
		rsess_fail(c->sess, FERR_NET, "connection closed");
		conn_done_event(c, FERR_NET, "connection closed before commit");
	}
	if (c->deadline != NULL)
		event_free(c->deadline);
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	rsess_free(c->sess);
	staging_free(c->stg);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	free(c);
	d->active--;
	d->served++;
	if (d->o.once)
		event_base_loopexit(d->base, NULL);
}

static void
flush_output(struct conn *c)
{
	const uint8_t *p;
	size_t n;

	p = rsess_output(c->sess, &n);
	if (n > 0) {
		bufferevent_write(c->bev, p, n);
		rsess_output_consume(c->sess, n);
	}
}

static void
conn_close_after_flush(struct conn *c)
{
	c->closing = 1;
	bufferevent_disable(c->bev, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	(void)bev;
	if (c->closing && evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		conn_free(c);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct ferr e = { 0 };

	while (!c->closing) {
		size_t have = evbuffer_get_length(in), need, used = 0;
		const uint8_t *p;
		uint32_t len;
		int rc;

		if (have < FERRY_FRAME_HDR_LEN)
			break;
		p = evbuffer_pullup(in, FERRY_FRAME_HDR_LEN);
		len = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
		need = (size_t)FERRY_FRAME_HDR_LEN + len;
		/* An oversized length is refused from the header alone, before
		 * waiting for (or buffering) its payload. */
		if (len > FERRY_MAX_FRAME_LIMIT)
			need = FERRY_FRAME_HDR_LEN;
		else if (have < need)
			break;
		p = evbuffer_pullup(in, (ssize_t)need);
		rc = rsess_feed(c->sess, p, need, &used, &e);
		evbuffer_drain(in, used);
		flush_output(c);
		if (rc != 0) {
			conn_done_event(c, rc, e.msg);
			conn_close_after_flush(c);
			return;
		}
		if (used == 0) {
			/* header said more than we have: wait */
			break;
		}
		if (rsess_state(c->sess) == RS_COMMITTED) {
			run_on_commit(c);
			conn_done_event(c, 0, "");
			conn_close_after_flush(c);
			return;
		}
		if (c->deadline != NULL && rsess_state(c->sess) != RS_WAIT_HELLO) {
			event_free(c->deadline);
			c->deadline = NULL;
		}
	}
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	struct ferr e = { 0 };

	if (what & BEV_EVENT_CONNECTED) {
		size_t n = strlen(c->peer);

		if (tls_bev_peer_name(bev, c->peer + n, sizeof(c->peer) - n) != 0)
			c->peer[n] = '\0';
		ev_log(&c->d->ev, "TLS session with %s", c->peer);
		return;
	}
	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		int code = tls_bev_error(bev, &e);

		if (c->sess != NULL && rsess_state(c->sess) != RS_COMMITTED) {
			if (rsess_state(c->sess) == RS_WAIT_HELLO && e.msg[0] != '\0')
				ev_log(&c->d->ev, "connection from %s refused: %s", c->peer, e.msg);
			rsess_fail(c->sess, code, e.msg);
			conn_done_event(c, code ? code : FERR_NET,
			    e.msg[0] ? e.msg : "connection closed by peer");
		}
		conn_free(c);
	}
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	rsess_fail(c->sess, FERR_TIMEOUT, "handshake deadline");
	conn_done_event(c, FERR_TIMEOUT, "no HELLO within the handshake deadline");
	conn_free(c);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
	struct daemon *d = arg;
	struct rsess_config rc = { FERRY_MAX_FRAME_DEFAULT, random_bytes };
	struct staging_opts so = { d->o.dest_dir, d->o.expect_disks };
	char host[INET6_ADDRSTRLEN + 8] = "?", port[8] = "";
	struct ferr e = { 0 };
	struct timeval tv;
	struct conn *c;

	(void)l;
	getnameinfo(sa, (socklen_t)salen, host, sizeof(host), port, sizeof(port),
	    NI_NUMERICHOST | NI_NUMERICSERV);
	if (d->active >= d->o.max_sessions) {
		ev_log(&d->ev, "connection from %s:%s refused: %u migrations already running", host, port,
		    d->active);
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		evutil_closesocket(fd);
		return;
	}
	c->d = d;
	c->started_ms = now_ms();
	snprintf(c->peer, sizeof(c->peer), "%s:%s ", host, port);
	c->stg = staging_new(&so);
	c->sess = c->stg ? rsess_new(&rc, &staging_sink_ops, c->stg) : NULL;
	c->bev = tls_bev_new(d->tls, d->base, fd, &e);
	d->active++;
	c->next = d->conns;
	if (d->conns != NULL)
		d->conns->prev = c;
	d->conns = c;
	if (c->sess == NULL || c->bev == NULL) {
		ev_log(&d->ev, "connection from %s: %s", c->peer, e.msg[0] ? e.msg : "out of memory");
		if (c->bev == NULL)
			evutil_closesocket(fd);
		c->finished = 1;
		conn_free(c);
		return;
	}
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	c->deadline = evtimer_new(d->base, on_deadline, c);
	tv.tv_sec = (time_t)(d->o.handshake_ms / 1000);
	tv.tv_usec = (suseconds_t)(d->o.handshake_ms % 1000) * 1000;
	evtimer_add(c->deadline, &tv);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;

	(void)what;
	ev_log(&d->ev, "signal %d: shutting down", (int)sig);
	event_base_loopexit(d->base, NULL);
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: ferry-recv --listen ADDR:PORT --cert FILE --key FILE --ca FILE --dest-dir DIR [options]\n"
	    "\n"
	    "Receive live migrations from ferry-send over mutual TLS 1.3.\n"
	    "\n"
	    "  --listen ADDR:PORT     address on the migration network to listen on\n"
	    "  --cert FILE            this host's certificate (PEM)\n"
	    "  --key FILE             its private key (PEM)\n"
	    "  --ca FILE              CA that signs sender certificates (PEM)\n"
	    "  --peer-name NAME       accept only senders whose certificate names NAME\n"
	    "  --dest-dir DIR         where images land (DIR/<source file name>)\n"
	    "  --expect-disks N       refuse a manifest whose disk count is not N\n"
	    "  --on-commit CMD        run CMD (sh -c) after commit; env FERRY_PATH_0.. hold\n"
	    "                         the final paths, FERRY_NFILES their count\n"
	    "  --max-sessions N       concurrent migrations (default 2)\n"
	    "  --handshake-timeout D  time for a new connection to send HELLO (default 10s)\n"
	    "  --once                 exit after one migration, with its result as status\n"
	    "  --json                 one JSON event per line on stdout\n"
	    "  -q, --quiet            no log lines on stderr\n"
	    "  -h, --help             this text\n"
	    "\n"
	    "Exit status (with --once): 0 ok, 1 error, 2 usage, 3 refused, 4 aborted,\n"
	    "5 timeout, 6 network, 7 verify.\n");
}

static int
parse_args(int argc, char **argv, struct daemon *d, struct ferr *e)
{
	static const struct option lo[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "ca", required_argument, NULL, 'a' },
		{ "peer-name", required_argument, NULL, 'p' },
		{ "dest-dir", required_argument, NULL, 'd' },
		{ "expect-disks", required_argument, NULL, 'x' },
		{ "on-commit", required_argument, NULL, 'o' },
		{ "max-sessions", required_argument, NULL, 'm' },
		{ "handshake-timeout", required_argument, NULL, 't' },
		{ "once", no_argument, NULL, '1' },
		{ "json", no_argument, NULL, 'j' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct recv_opts *o = &d->o;
	uint64_t v;
	int ch, rc;

	o->max_sessions = 2;
	o->handshake_ms = 10000;
	while ((ch = getopt_long(argc, argv, "qh", lo, NULL)) != -1) {
		switch (ch) {
		case 'l':
			if ((rc = parse_hostport(optarg, o->listen_host, sizeof(o->listen_host),
			    &o->listen_port, e)) != 0)
				return ferr_wrap(e, "--listen");
			break;
		case 'c': o->cert = optarg; break;
		case 'k': o->key = optarg; break;
		case 'a': o->ca = optarg; break;
		case 'p': o->peer_name = optarg; break;
		case 'd': o->dest_dir = optarg; break;
		case 'o': o->on_commit = optarg; break;
		case 'x':
			if (parse_uint(optarg, 1, FERRY_MAX_DEVICES, &v, e) != 0)
				return ferr_wrap(e, "--expect-disks");
			o->expect_disks = (uint32_t)v;
			break;
		case 'm':
			if (parse_uint(optarg, 1, 1024, &v, e) != 0)
				return ferr_wrap(e, "--max-sessions");
			o->max_sessions = (uint32_t)v;
			break;
		case 't':
			if (parse_duration_ms(optarg, 1000, &o->handshake_ms, e) != 0)
				return ferr_wrap(e, "--handshake-timeout");
			break;
		case '1': o->once = 1; break;
		case 'j': o->json = 1; break;
		case 'q': d->ev.quiet = 1; break;
		case 'h': usage(stdout); return 1;
		default: return ferr_set(e, FERR_USAGE, "see --help");
		}
	}
	if (optind < argc)
		return ferr_set(e, FERR_USAGE, "unexpected argument '%s'", argv[optind]);
	if (o->listen_host[0] == '\0')
		return ferr_set(e, FERR_USAGE, "--listen ADDR:PORT is required (port 0 picks a free one)");
	if (o->cert == NULL || o->key == NULL || o->ca == NULL)
		return ferr_set(e, FERR_USAGE, "--cert, --key and --ca are required (no plaintext mode)");
	if (o->dest_dir == NULL)
		return ferr_set(e, FERR_USAGE, "--dest-dir is required");
	return 0;
}

static int
listen_on(struct daemon *d, struct ferr *e)
{
	struct addrinfo hints, *res = NULL;
	char port[8];
	int rc;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%u", d->o.listen_port);
	if ((rc = getaddrinfo(d->o.listen_host, port, &hints, &res)) != 0)
		return ferr_set(e, FERR_USAGE, "--listen %s: %s", d->o.listen_host, gai_strerror(rc));
	d->lst = evconnlistener_new_bind(d->base, on_accept, d,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 16, res->ai_addr,
	    (int)res->ai_addrlen);
	freeaddrinfo(res);
	if (d->lst == NULL)
		return ferr_set(e, FERR_NET, "listen on %s:%u: %s", d->o.listen_host, d->o.listen_port,
		    strerror(errno));
	if (d->o.listen_port == 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		if (getsockname(evconnlistener_get_fd(d->lst), (struct sockaddr *)&ss, &sl) == 0)
			d->o.listen_port = ntohs(ss.ss_family == AF_INET6
			    ? ((struct sockaddr_in6 *)&ss)->sin6_port
			    : ((struct sockaddr_in *)&ss)->sin_port);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct daemon d;
	struct tls_opts to;
	struct ferr e = { 0 };
	struct event *sigint = NULL, *sigterm = NULL;
	int rc, status = RES_ERROR;

	memset(&d, 0, sizeof(d));
	d.ev.prog = "ferry-recv";
	d.ev.out = stdout;
	signal(SIGPIPE, SIG_IGN);
	rc = parse_args(argc, argv, &d, &e);
	if (rc == 1)
		return 0;
	if (rc != 0) {
		fprintf(stderr, "ferry-recv: %s\n", e.msg);
		return RES_USAGE;
	}
	d.ev.json = d.o.json;
	memset(&to, 0, sizeof(to));
	to.cert_file = d.o.cert;
	to.key_file = d.o.key;
	to.ca_file = d.o.ca;
	to.peer_name = d.o.peer_name;
	if (tls_ctx_new(1, &to, &d.tls, &e) != 0) {
		fprintf(stderr, "ferry-recv: %s\n", e.msg);
		return e.code == FERR_USAGE ? RES_USAGE : RES_ERROR;
	}
	d.base = event_base_new();
	if (d.base == NULL || listen_on(&d, &e) != 0) {
		fprintf(stderr, "ferry-recv: %s\n", e.msg[0] ? e.msg : "event loop");
		status = e.code == FERR_USAGE ? RES_USAGE : RES_ERROR;
		goto out;
	}
	sigint = evsignal_new(d.base, SIGINT, on_signal, &d);
	sigterm = evsignal_new(d.base, SIGTERM, on_signal, &d);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	ev_log(&d.ev, "listening on %s:%u, images land in %s", d.o.listen_host, d.o.listen_port,
	    d.o.dest_dir);
	{
		struct json_object *o = json_object_new_object();
		char addr[300];

		snprintf(addr, sizeof(addr), "%s:%u", d.o.listen_host, d.o.listen_port);
		json_object_object_add(o, "listen", json_object_new_string(addr));
		ev_json(&d.ev, "listening", o);
	}
	d.last_result = RES_OK;
	event_base_dispatch(d.base);
	/* Shutdown: every unfinished session is aborted and its staging
	 * files removed. */
	while (d.conns != NULL) {
		struct conn *c = d.conns;

		if (c->sess != NULL && rsess_state(c->sess) != RS_COMMITTED) {
			rsess_fail(c->sess, FERR_ABORTED, "receiver shutting down");
			conn_done_event(c, FERR_ABORTED, "receiver shutting down");
		}
		c->finished = 1;
		conn_free(c);
	}
	status = d.o.once ? (d.served > 0 ? d.last_result : RES_ABORTED) : RES_OK;
out:
	if (sigint != NULL)
		event_free(sigint);
	if (sigterm != NULL)
		event_free(sigterm);
	if (d.lst != NULL)
		evconnlistener_free(d.lst);
	if (d.base != NULL)
		event_base_free(d.base);
	tls_ctx_free(d.tls);
	return status;
}
