/* tls.c: real handshakes over a socketpair on one event_base, with
 * certificates made by tools/ferry-certs.  Each failure case checks which
 * side failed and that the message names the reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/ssl.h>

#include "err.h"
#include "tls.h"

#define GUARD_SECONDS 5
#define CLI_TO_SRV_BYTES 30000
#define SRV_TO_CLI_BYTES 20011

/* The certificates, made once for the whole group:
 *   good/   CA A: sender, receiver, other, 127.0.0.1
 *   evil/   CA B: sender, receiver
 *   old/    CA A, expired: receiver
 *   future/ CA A, not yet valid: sender */
struct certs {
	char dir[64];
};

static char *
cpath(void **state, const char *rel)
{
	static char buf[4][256];  /* a few live at once in one expression */
	static int next;
	const struct certs *c = *state;
	char *b = buf[next++ % 4];

	snprintf(b, sizeof(buf[0]), "%s/%s", c->dir, rel);
	return b;
}

static int
run_certs(const char *args)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "tools/ferry-certs %s >/dev/null", args);
	return system(cmd);
}

static int
group_setup(void **state)
{
	static struct certs c;
	char args[256];

	/* Writing to a peer that has gone must be an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	snprintf(c.dir, sizeof(c.dir), "/tmp/ferry-test-tls.XXXXXX");
	if (mkdtemp(c.dir) == NULL)
		return -1;
	*state = &c;
	snprintf(args, sizeof(args), "%s/good sender receiver other 127.0.0.1", c.dir);
	if (run_certs(args) != 0)
		return -1;
	snprintf(args, sizeof(args), "%s/evil sender receiver", c.dir);
	if (run_certs(args) != 0)
		return -1;
	snprintf(args, sizeof(args), "--ca-from %s/good --not-before 20200101000000Z "
	    "--not-after 20200201000000Z %s/old receiver", c.dir, c.dir);
	if (run_certs(args) != 0)
		return -1;
	snprintf(args, sizeof(args), "--ca-from %s/good --not-before 20900101000000Z "
	    "--not-after 20900201000000Z %s/future sender", c.dir, c.dir);
	if (run_certs(args) != 0)
		return -1;
	return 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st; (void)flag; (void)ftw;
	return remove(path);
}

static int
group_teardown(void **state)
{
	const struct certs *c = *state;

	return nftw(c->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- one connection: a server and a client side on one base ---- */

struct pair;

struct side {
	const char *tag;
	struct pair *p;
	struct bufferevent *bev;
	int connected;
	int done;                 /* saw ERROR or EOF */
	short what;               /* the ERROR/EOF event flags */
	int rc;                   /* tls_bev_error's result */
	struct ferr err;
	struct evbuffer *rx;
	size_t send_len;          /* bytes to send once connected */
	unsigned seed;
};

enum until {
	UNTIL_BOTH_CONNECTED = 1,
	UNTIL_BOTH_DONE,
	UNTIL_CLIENT_DONE,
	UNTIL_SERVER_DONE,
	UNTIL_EXCHANGED,
};

struct pair {
	struct event_base *base;
	struct side srv, cli;
	int fds[2];               /* [0] server end, [1] client end */
	enum until until;
};

static void
fill(unsigned char *buf, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		buf[i] = (unsigned char)(seed >> 16);
	}
}

static int
finished(const struct pair *p)
{
	switch (p->until) {
	case UNTIL_BOTH_CONNECTED:
		return (p->srv.connected && p->cli.connected) || p->srv.done || p->cli.done;
	case UNTIL_BOTH_DONE:
		return p->srv.done && p->cli.done;
	case UNTIL_CLIENT_DONE:
		return p->cli.done;
	case UNTIL_SERVER_DONE:
		return p->srv.done;
	case UNTIL_EXCHANGED:
		return (evbuffer_get_length(p->srv.rx) >= p->cli.send_len &&
		    evbuffer_get_length(p->cli.rx) >= p->srv.send_len) ||
		    p->srv.done || p->cli.done;
	}
	return 1;
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct side *s = arg;

	evbuffer_add_buffer(s->rx, bufferevent_get_input(bev));
	if (finished(s->p))
		event_base_loopbreak(s->p->base);
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct side *s = arg;

	if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
		s->rc = tls_bev_error(bev, &s->err);
		s->what = what;
		s->done = 1;
		print_message("# %s: %s%s (%s): %s\n", s->tag,
		    (what & BEV_EVENT_ERROR) ? "ERROR" : "EOF",
		    s->connected ? " after CONNECTED" : "", ferr_name(s->rc), s->err.msg);
	}
	if (what & BEV_EVENT_CONNECTED) {
		s->connected = 1;
		if (s->send_len > 0) {
			unsigned char *buf = malloc(s->send_len);

			assert_non_null(buf);
			fill(buf, s->send_len, s->seed);
			assert_int_equal(bufferevent_write(bev, buf, s->send_len), 0);
			free(buf);
		}
	}
	if (finished(s->p))
		event_base_loopbreak(s->p->base);
}

static void
pair_init(struct pair *p)
{
	memset(p, 0, sizeof(*p));
	p->base = event_base_new();
	assert_non_null(p->base);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0, p->fds), 0);
	p->srv.tag = "server";
	p->cli.tag = "client";
	p->srv.p = p->cli.p = p;
	p->srv.rx = evbuffer_new();
	p->cli.rx = evbuffer_new();
	assert_non_null(p->srv.rx);
	assert_non_null(p->cli.rx);
	p->srv.seed = 1;
	p->cli.seed = 2;
}

static void
side_attach(struct side *s, struct bufferevent *bev)
{
	assert_non_null(bev);
	s->bev = bev;
	bufferevent_setcb(bev, read_cb, NULL, event_cb, s);
	assert_int_equal(bufferevent_enable(bev, EV_READ | EV_WRITE), 0);
}

/* Wrap fds[0]/fds[1] with our tls_bev_new; a NULL ctx leaves that end
 * for the test to drive by hand. */
static void
pair_start(struct pair *p, struct tls_ctx *srv, struct tls_ctx *cli)
{
	struct ferr e = { 0 };

	if (srv != NULL) {
		side_attach(&p->srv, tls_bev_new(srv, p->base, p->fds[0], &e));
		p->fds[0] = -1;
	}
	if (cli != NULL) {
		side_attach(&p->cli, tls_bev_new(cli, p->base, p->fds[1], &e));
		p->fds[1] = -1;
	}
}

static void
pair_run(struct pair *p, enum until until)
{
	struct timeval guard = { GUARD_SECONDS, 0 };

	p->until = until;
	if (finished(p))
		return;
	assert_int_equal(event_base_loopexit(p->base, &guard), 0);
	assert_int_equal(event_base_dispatch(p->base), 0);
	if (!finished(p))
		fail_msg("timed out after %d s (server connected %d done %d, client "
		    "connected %d done %d)", GUARD_SECONDS, p->srv.connected,
		    p->srv.done, p->cli.connected, p->cli.done);
}

static void
pair_fini(struct pair *p)
{
	if (p->srv.bev != NULL)
		bufferevent_free(p->srv.bev);
	if (p->cli.bev != NULL)
		bufferevent_free(p->cli.bev);
	for (int i = 0; i < 2; i++)
		if (p->fds[i] >= 0)
			close(p->fds[i]);
	/* let deferred callbacks and finalizers of the freed bufferevents run */
	event_base_loop(p->base, EVLOOP_NONBLOCK);
	evbuffer_free(p->srv.rx);
	evbuffer_free(p->cli.rx);
	event_base_free(p->base);
}

static struct tls_ctx *
ctx_make(void **state, int is_server, const char *cert_dir, const char *name,
    const char *ca_dir, const char *peer_name)
{
	char cert[64], key[64], ca[64];
	struct tls_opts o;
	struct tls_ctx *c = NULL;
	struct ferr e = { 0 };
	int r;

	snprintf(cert, sizeof(cert), "%s/%s.pem", cert_dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", cert_dir, name);
	snprintf(ca, sizeof(ca), "%s/ca.pem", ca_dir);
	o.cert_file = cpath(state, cert);
	o.key_file = cpath(state, key);
	o.ca_file = cpath(state, ca);
	o.peer_name = peer_name;
	r = tls_ctx_new(is_server, &o, &c, &e);
	if (r != 0)
		fail_msg("tls_ctx_new: %s", e.msg);
	assert_non_null(c);
	return c;
}

/* A client or server built from raw OpenSSL, to be a peer ferry would
 * never be: no certificate, or an old TLS version. */
static struct bufferevent *
raw_bev(struct event_base *base, int fd, int is_server, const char *cert,
    const char *key, const char *ca, int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
	struct bufferevent *bev;
	SSL *ssl;

	assert_non_null(ctx);
	assert_int_equal(SSL_CTX_set_max_proto_version(ctx, max_version), 1);
	if (cert != NULL) {
		assert_int_equal(SSL_CTX_use_certificate_chain_file(ctx, cert), 1);
		assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
	}
	if (ca != NULL) {
		assert_int_equal(SSL_CTX_load_verify_locations(ctx, ca, NULL), 1);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	ssl = SSL_new(ctx);
	assert_non_null(ssl);
	SSL_CTX_free(ctx);        /* ssl keeps its own reference */
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    is_server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	assert_non_null(bev);
	return bev;
}

static void
assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("'%s' does not contain '%s'", hay, needle);
}

static void
assert_failed(const struct side *s, int code, const char *needle)
{
	if (!s->done)
		fail_msg("%s did not fail", s->tag);
	assert_true(s->what & BEV_EVENT_ERROR);
	if (s->rc != code || s->err.code != code)
		fail_msg("%s: got %s, want %s (%s)", s->tag, ferr_name(s->rc),
		    ferr_name(code), s->err.msg);
	assert_contains(s->err.msg, needle);
}

/* ---- tests ---- */

static void
test_good_handshake_and_data(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", "sender");
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	unsigned char *want, *got;
	unsigned char k1[32], k2[32];
	char name[64];
	struct pair p;

	pair_init(&p);
	p.cli.send_len = CLI_TO_SRV_BYTES;
	p.srv.send_len = SRV_TO_CLI_BYTES;
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_EXCHANGED);
	assert_true(p.srv.connected);
	assert_true(p.cli.connected);
	assert_false(p.srv.done);
	assert_false(p.cli.done);

	/* bytes arrive intact, both ways */
	assert_int_equal(evbuffer_get_length(p.srv.rx), CLI_TO_SRV_BYTES);
	assert_int_equal(evbuffer_get_length(p.cli.rx), SRV_TO_CLI_BYTES);
	want = malloc(CLI_TO_SRV_BYTES);
	assert_non_null(want);
	fill(want, CLI_TO_SRV_BYTES, p.cli.seed);
	got = evbuffer_pullup(p.srv.rx, -1);
	assert_memory_equal(got, want, CLI_TO_SRV_BYTES);
	fill(want, SRV_TO_CLI_BYTES, p.srv.seed);
	got = evbuffer_pullup(p.cli.rx, -1);
	assert_memory_equal(got, want, SRV_TO_CLI_BYTES);
	free(want);

	/* each side names the other */
	assert_int_equal(tls_bev_peer_name(p.srv.bev, name, sizeof(name)), 0);
	assert_string_equal(name, "sender");
	assert_int_equal(tls_bev_peer_name(p.cli.bev, name, sizeof(name)), 0);
	assert_string_equal(name, "receiver");
	/* truncated to fit */
	assert_int_equal(tls_bev_peer_name(p.cli.bev, name, 4), 0);
	assert_string_equal(name, "rec");

	/* the exporter agrees on both ends, and depends on the label */
	assert_int_equal(tls_bev_export(p.srv.bev, "EXPORTER-ferry-test", "ctx", 3,
	    k1, sizeof(k1)), 0);
	assert_int_equal(tls_bev_export(p.cli.bev, "EXPORTER-ferry-test", "ctx", 3,
	    k2, sizeof(k2)), 0);
	assert_memory_equal(k1, k2, sizeof(k1));
	assert_int_equal(tls_bev_export(p.cli.bev, "EXPORTER-ferry-other", "ctx", 3,
	    k2, sizeof(k2)), 0);
	assert_memory_not_equal(k1, k2, sizeof(k1));

	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void
test_server_accepts_any_name_from_ca(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "other", "good", "receiver");
	char name[64];
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_BOTH_CONNECTED);
	assert_true(p.srv.connected && p.cli.connected);
	assert_int_equal(tls_bev_peer_name(p.srv.bev, name, sizeof(name)), 0);
	assert_string_equal(name, "other");
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void
test_ip_address_peer_name(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "127.0.0.1", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "127.0.0.1");
	struct tls_ctx *cli2 = ctx_make(state, 0, "good", "sender", "good", "127.0.0.2");
	char name[64];
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_BOTH_CONNECTED);
	assert_true(p.srv.connected && p.cli.connected);
	assert_int_equal(tls_bev_peer_name(p.cli.bev, name, sizeof(name)), 0);
	assert_string_equal(name, "127.0.0.1");
	pair_fini(&p);

	pair_init(&p);
	pair_start(&p, srv, cli2);
	pair_run(&p, UNTIL_BOTH_DONE);
	assert_failed(&p.cli, FERR_TLS, "server name '127.0.0.1' does not match "
	    "expected '127.0.0.2'");
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
	tls_ctx_free(cli2);
}

static void
test_client_cert_from_other_ca(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "evil", "sender", "good", "receiver");
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_BOTH_DONE);
	assert_false(p.srv.connected);
	assert_failed(&p.srv, FERR_TLS, "TLS handshake: client certificate 'sender' "
	    "is not signed by our CA (unable to get local issuer certificate)");
	/* TLS 1.3: the client finished first, and hears of it on reading */
	assert_failed(&p.cli, FERR_TLS, "server rejected our certificate: not signed "
	    "by a CA it trusts");
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void
test_server_cert_from_other_ca(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "evil", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_BOTH_DONE);
	assert_false(p.cli.connected);
	assert_false(p.srv.connected);
	assert_failed(&p.cli, FERR_TLS, "TLS handshake: server certificate 'receiver' "
	    "is not signed by our CA (unable to get local issuer certificate)");
	assert_failed(&p.srv, FERR_TLS, "client rejected our certificate: not signed "
	    "by a CA it trusts");
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void
test_client_without_cert(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, NULL);
	side_attach(&p.cli, raw_bev(p.base, p.fds[1], 0, NULL, NULL,
	    cpath(state, "good/ca.pem"), TLS1_3_VERSION));
	p.fds[1] = -1;
	pair_run(&p, UNTIL_BOTH_DONE);
	assert_failed(&p.srv, FERR_TLS, "TLS handshake: client sent no certificate");
	assert_failed(&p.cli, FERR_TLS, "server requires a certificate and we sent none");
	pair_fini(&p);
	tls_ctx_free(srv);
}

static void
test_server_name_mismatch(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "other");
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_BOTH_DONE);
	assert_false(p.cli.connected);
	assert_failed(&p.cli, FERR_TLS, "TLS handshake: server name 'receiver' does "
	    "not match expected 'other'");
	assert_failed(&p.srv, FERR_TLS, "client rejected our certificate");
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void
test_client_name_mismatch(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", "sender");
	struct tls_ctx *cli = ctx_make(state, 0, "good", "other", "good", "receiver");
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_BOTH_DONE);
	assert_false(p.srv.connected);
	assert_failed(&p.srv, FERR_TLS, "TLS handshake: client name 'other' does not "
	    "match expected 'sender'");
	assert_failed(&p.cli, FERR_TLS, "server rejected our certificate");
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void
test_expired_server_cert(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "old", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_BOTH_DONE);
	assert_failed(&p.cli, FERR_TLS, "TLS handshake: server certificate 'receiver' "
	    "has expired (not valid after 2020-02-01 00:00:00 UTC)");
	assert_failed(&p.srv, FERR_TLS, "client rejected our certificate as expired");
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void
test_future_client_cert(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "future", "sender", "good", "receiver");
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_BOTH_DONE);
	assert_failed(&p.srv, FERR_TLS, "TLS handshake: client certificate 'sender' "
	    "is not yet valid (not before 2090-01-01 00:00:00 UTC");
	assert_failed(&p.cli, FERR_TLS, "server rejected our certificate");
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void
test_tls12_client_refused(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, NULL);
	side_attach(&p.cli, raw_bev(p.base, p.fds[1], 0, cpath(state, "good/sender.pem"),
	    cpath(state, "good/sender.key"), cpath(state, "good/ca.pem"), TLS1_2_VERSION));
	p.fds[1] = -1;
	pair_run(&p, UNTIL_BOTH_DONE);
	assert_failed(&p.srv, FERR_TLS, "TLS handshake: client offered TLS 1.2; "
	    "TLS 1.3 is required");
	assert_failed(&p.cli, FERR_TLS, "server refused our TLS version");
	pair_fini(&p);
	tls_ctx_free(srv);
}

static void
test_tls12_server_refused(void **state)
{
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	struct pair p;

	pair_init(&p);
	pair_start(&p, NULL, cli);
	side_attach(&p.srv, raw_bev(p.base, p.fds[0], 1, cpath(state, "good/receiver.pem"),
	    cpath(state, "good/receiver.key"), NULL, TLS1_2_VERSION));
	p.fds[0] = -1;
	pair_run(&p, UNTIL_BOTH_DONE);
	/* the old server decides, and says so with an alert */
	assert_failed(&p.cli, FERR_TLS, "TLS handshake: server refused our TLS "
	    "version; TLS 1.3 is required on both sides (alert protocol_version)");
	assert_true(p.srv.done && (p.srv.what & BEV_EVENT_ERROR));
	pair_fini(&p);
	tls_ctx_free(cli);
}

/* The peer's socket goes away after the handshake, with no close_notify. */
static void
test_truncation_is_an_error(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	struct pair p;

	pair_init(&p);
	p.srv.send_len = 100;
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_EXCHANGED);   /* the 100 bytes are out of the bufferevent */
	assert_true(p.srv.connected && p.cli.connected);
	assert_int_equal(shutdown(bufferevent_getfd(p.srv.bev), SHUT_WR), 0);
	pair_run(&p, UNTIL_CLIENT_DONE);
	assert_failed(&p.cli, FERR_TLS, "TLS: connection closed by peer without "
	    "close_notify (stream truncated)");
	/* what was sent before the cut still arrived */
	assert_int_equal(evbuffer_get_length(p.cli.rx), 100);
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void
test_close_notify_is_a_clean_eof(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_BOTH_CONNECTED);
	assert_true(p.srv.connected && p.cli.connected);

	/* refused while data is still queued */
	assert_int_equal(bufferevent_write(p.srv.bev, "x", 1), 0);
	assert_int_equal(tls_bev_close_notify(p.srv.bev), FERR_INTERNAL);
	evbuffer_drain(bufferevent_get_output(p.srv.bev), 1);

	assert_int_equal(tls_bev_close_notify(p.srv.bev), 0);
	bufferevent_free(p.srv.bev);
	p.srv.bev = NULL;
	pair_run(&p, UNTIL_CLIENT_DONE);
	assert_true(p.cli.what & BEV_EVENT_EOF);
	assert_false(p.cli.what & BEV_EVENT_ERROR);
	assert_int_equal(p.cli.rc, FERR_NET);
	assert_contains(p.cli.err.msg, "TLS: connection closed by peer");
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static void
test_eof_before_any_byte(void **state)
{
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	struct pair p;

	pair_init(&p);
	pair_start(&p, NULL, cli);
	assert_int_equal(shutdown(p.fds[0], SHUT_WR), 0);
	pair_run(&p, UNTIL_CLIENT_DONE);
	assert_failed(&p.cli, FERR_NET, "TLS handshake: connection closed by peer "
	    "before it sent anything");
	pair_fini(&p);
	tls_ctx_free(cli);
}

static void
test_peer_reset(void **state)
{
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	struct pair p;

	pair_init(&p);
	pair_start(&p, NULL, cli);
	close(p.fds[0]);
	p.fds[0] = -1;
	pair_run(&p, UNTIL_CLIENT_DONE);
	/* ClientHello hits a closed socket: EPIPE (SIGPIPE is ignored) */
	assert_failed(&p.cli, FERR_NET, "TLS handshake: connection failed: ");
	pair_fini(&p);
	tls_ctx_free(cli);
}

static void
test_plaintext_peers(void **state)
{
	static const char junk[] = "FERRY/1 HELLO\r\n\r\n";
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	struct pair p;

	/* a client that is not speaking TLS */
	pair_init(&p);
	pair_start(&p, srv, NULL);
	assert_int_equal(write(p.fds[1], http, sizeof(http) - 1), (ssize_t)sizeof(http) - 1);
	pair_run(&p, UNTIL_SERVER_DONE);
	assert_failed(&p.srv, FERR_TLS, "TLS handshake: client does not speak TLS");
	pair_fini(&p);

	/* a server that is not speaking TLS */
	pair_init(&p);
	pair_start(&p, NULL, cli);
	assert_int_equal(write(p.fds[0], junk, sizeof(junk) - 1), (ssize_t)sizeof(junk) - 1);
	pair_run(&p, UNTIL_CLIENT_DONE);
	assert_failed(&p.cli, FERR_TLS, "TLS handshake: server does not speak TLS");
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static int
ctx_try(void **state, int is_server, const char *cert, const char *key,
    const char *ca, const char *peer, struct ferr *e)
{
	struct tls_opts o = {
		.cert_file = cert != NULL ? cpath(state, cert) : NULL,
		.key_file = key != NULL ? cpath(state, key) : NULL,
		.ca_file = ca != NULL ? cpath(state, ca) : NULL,
		.peer_name = peer,
	};
	struct tls_ctx *c = (struct tls_ctx *)&o;  /* must be reset to NULL */
	int r;

	memset(e, 0, sizeof(*e));
	r = tls_ctx_new(is_server, &o, &c, e);
	print_message("# tls_ctx_new: %s (%s)\n", r == 0 ? "ok" : e->msg, ferr_name(r));
	if (r == 0)
		assert_non_null(c);
	else
		assert_null(c);
	tls_ctx_free(c);
	return r;
}

static void
write_file(void **state, const char *rel, const char *text)
{
	FILE *f = fopen(cpath(state, rel), "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void
test_ctx_errors(void **state)
{
	char cmd[600];
	struct ferr e;

	/* the good case works with and without a server peer name */
	assert_int_equal(ctx_try(state, 0, "good/sender.pem", "good/sender.key",
	    "good/ca.pem", "receiver", &e), 0);
	assert_int_equal(ctx_try(state, 1, "good/receiver.pem", "good/receiver.key",
	    "good/ca.pem", NULL, &e), 0);

	/* a client must know whom it is talking to */
	assert_int_equal(ctx_try(state, 0, "good/sender.pem", "good/sender.key",
	    "good/ca.pem", "", &e), FERR_USAGE);
	assert_contains(e.msg, "peer name is empty");
	assert_int_equal(ctx_try(state, 0, "good/sender.pem", "good/sender.key",
	    "good/ca.pem", NULL, &e), FERR_USAGE);
	assert_int_equal(ctx_try(state, 1, NULL, "good/sender.key",
	    "good/ca.pem", NULL, &e), FERR_USAGE);
	assert_contains(e.msg, "no certificate file");

	/* missing files are named */
	assert_int_equal(ctx_try(state, 0, "good/nobody.pem", "good/sender.key",
	    "good/ca.pem", "receiver", &e), FERR_IO);
	assert_contains(e.msg, "certificate file '");
	assert_contains(e.msg, "good/nobody.pem': No such file or directory");
	assert_int_equal(ctx_try(state, 0, "good/sender.pem", "good/nobody.key",
	    "good/ca.pem", "receiver", &e), FERR_IO);
	assert_contains(e.msg, "key file '");
	assert_contains(e.msg, "good/nobody.key': No such file or directory");
	assert_int_equal(ctx_try(state, 0, "good/sender.pem", "good/sender.key",
	    "good/noca.pem", "receiver", &e), FERR_IO);
	assert_contains(e.msg, "CA file '");

	/* the key of another certificate */
	assert_int_equal(ctx_try(state, 0, "good/sender.pem", "good/receiver.key",
	    "good/ca.pem", "receiver", &e), FERR_TLS);
	assert_contains(e.msg, "good/receiver.key' does not match certificate '");

	/* files that are not PEM, or the wrong PEM */
	write_file(state, "junk.pem", "this is not a certificate\n");
	assert_int_equal(ctx_try(state, 0, "junk.pem", "good/sender.key",
	    "good/ca.pem", "receiver", &e), FERR_TLS);
	assert_contains(e.msg, "junk.pem': no PEM certificate in it");
	assert_int_equal(ctx_try(state, 0, "good/sender.pem", "junk.pem",
	    "good/ca.pem", "receiver", &e), FERR_TLS);
	assert_contains(e.msg, "key file '");
	assert_contains(e.msg, "junk.pem': no PEM private key in it");
	assert_int_equal(ctx_try(state, 0, "good/sender.pem", "good/sender.pem",
	    "good/ca.pem", "receiver", &e), FERR_TLS);
	assert_contains(e.msg, "sender.pem': no PEM private key in it (it holds a "
	    "certificate)");
	assert_int_equal(ctx_try(state, 0, "good/sender.key", "good/sender.key",
	    "good/ca.pem", "receiver", &e), FERR_TLS);
	assert_contains(e.msg, "no PEM certificate in it");
	assert_int_equal(ctx_try(state, 0, "good/sender.pem", "good/sender.key",
	    "junk.pem", "receiver", &e), FERR_TLS);
	assert_contains(e.msg, "CA file '");

	/* an encrypted key is refused, without asking for a passphrase */
	snprintf(cmd, sizeof(cmd), "openssl pkey -in %s -aes256 -passout pass:x "
	    "-out %s", cpath(state, "good/sender.key"), cpath(state, "enc.key"));
	assert_int_equal(system(cmd), 0);
	assert_int_equal(ctx_try(state, 0, "good/sender.pem", "enc.key",
	    "good/ca.pem", "receiver", &e), FERR_TLS);
	assert_contains(e.msg, "enc.key': the key is encrypted");
}

static void
test_keylog(void **state)
{
	struct tls_ctx *srv, *cli;
	char path[256];
	char buf[4096];
	struct pair p;
	struct stat st;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s", cpath(state, "keys.log"));
	assert_int_equal(setenv("SSLKEYLOGFILE", path, 1), 0);
	srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	unsetenv("SSLKEYLOGFILE");
	cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	pair_init(&p);
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_BOTH_CONNECTED);
	assert_true(p.srv.connected && p.cli.connected);
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);

	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_contains(buf, "CLIENT_HANDSHAKE_TRAFFIC_SECRET ");
	assert_contains(buf, "SERVER_TRAFFIC_SECRET_0 ");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_handshake_and_data),
		cmocka_unit_test(test_server_accepts_any_name_from_ca),
		cmocka_unit_test(test_ip_address_peer_name),
		cmocka_unit_test(test_client_cert_from_other_ca),
		cmocka_unit_test(test_server_cert_from_other_ca),
		cmocka_unit_test(test_client_without_cert),
		cmocka_unit_test(test_server_name_mismatch),
		cmocka_unit_test(test_client_name_mismatch),
		cmocka_unit_test(test_expired_server_cert),
		cmocka_unit_test(test_future_client_cert),
		cmocka_unit_test(test_tls12_client_refused),
		cmocka_unit_test(test_tls12_server_refused),
		cmocka_unit_test(test_truncation_is_an_error),
		cmocka_unit_test(test_close_notify_is_a_clean_eof),
		cmocka_unit_test(test_eof_before_any_byte),
		cmocka_unit_test(test_peer_reset),
		cmocka_unit_test(test_plaintext_peers),
		cmocka_unit_test(test_ctx_errors),
		cmocka_unit_test(test_keylog),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
