/* tls.c and tls_explain.c: real handshakes over a socketpair on one
 * event_base, with certificates made by tools/ferry-certs.  Each failure
 * case checks which side failed and that the message names the reason.
 * Also: public-key pins (checked against the openssl tool), key updates
 * during a 64 MiB transfer, the HMAC and compare helpers (RFC 4231), and
 * the settings RELIABILITY.md "TLS settings" asks for. */
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
#include <xxhash.h>

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
ctx_make_pinned(void **state, int is_server, const char *cert_dir, const char *name,
    const char *ca_dir, const char *peer_name, const char *pin0, const char *pin1)
{
	char cert[64], key[64], ca[64];
	struct tls_opts o = { 0 };
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
	o.pins[0] = pin0;
	o.pins[1] = pin1;
	r = tls_ctx_new(is_server, &o, &c, &e);
	if (r != 0)
		fail_msg("tls_ctx_new: %s", e.msg);
	assert_non_null(c);
	return c;
}

static struct tls_ctx *
ctx_make(void **state, int is_server, const char *cert_dir, const char *name,
    const char *ca_dir, const char *peer_name)
{
	return ctx_make_pinned(state, is_server, cert_dir, name, ca_dir, peer_name,
	    NULL, NULL);
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

/* ---- public-key pins ---- */

static void
pin_of(void **state, const char *rel, char pin[TLS_PIN_BUFLEN])
{
	struct ferr e = { 0 };

	if (tls_pin_of_cert_file(cpath(state, rel), pin, TLS_PIN_BUFLEN, &e) != 0)
		fail_msg("tls_pin_of_cert_file: %s", e.msg);
	assert_int_equal(strlen(pin), TLS_PIN_LEN);
}

/* One handshake; returns 1 when both sides connected. */
static int
pinned_pair(struct tls_ctx *srv, struct tls_ctx *cli, struct pair *p)
{
	pair_init(p);
	p->srv.send_len = 10;     /* so the client hears of a refusal */
	p->cli.send_len = 10;
	pair_start(p, srv, cli);
	pair_run(p, UNTIL_EXCHANGED);
	if (p->srv.done || p->cli.done)
		pair_run(p, UNTIL_BOTH_DONE);
	return p->srv.connected && p->cli.connected && !p->srv.done && !p->cli.done;
}

static void
test_pin_of_cert_file(void **state)
{
	char pin[TLS_PIN_BUFLEN], other[TLS_PIN_BUFLEN], cmd[600], want[128];
	struct ferr e = { 0 };
	FILE *f;

	/* the same as a tool ferry did not write computes */
	pin_of(state, "good/receiver.pem", pin);
	snprintf(cmd, sizeof(cmd), "openssl x509 -in %s -noout -pubkey | openssl pkey "
	    "-pubin -outform DER | sha256sum", cpath(state, "good/receiver.pem"));
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_non_null(fgets(want, sizeof(want), f));
	assert_int_equal(pclose(f), 0);
	want[64] = '\0';
	print_message("# receiver pin %s\n", pin);
	assert_memory_equal(pin, "sha256:", 7);
	assert_string_equal(pin + 7, want);

	/* another key, another pin; the CA-independent key of one name */
	pin_of(state, "good/sender.pem", other);
	assert_string_not_equal(pin, other);

	/* errors */
	assert_int_equal(tls_pin_of_cert_file(cpath(state, "good/receiver.pem"), pin,
	    TLS_PIN_LEN, &e), FERR_USAGE);
	assert_string_equal(pin, "");
	assert_int_equal(tls_pin_of_cert_file(cpath(state, "good/nobody.pem"), pin,
	    sizeof(pin), &e), FERR_IO);
	assert_contains(e.msg, "nobody.pem': No such file or directory");
	assert_int_equal(tls_pin_of_cert_file(cpath(state, "good/receiver.key"), pin,
	    sizeof(pin), &e), FERR_TLS);
	assert_contains(e.msg, "receiver.key': no PEM certificate in it");
	assert_string_equal(pin, "");
}

static void
test_pins(void **state)
{
	char rcv[TLS_PIN_BUFLEN], snd[TLS_PIN_BUFLEN], oth[TLS_PIN_BUFLEN];
	char evil[TLS_PIN_BUFLEN], want[160];
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli;
	struct pair p;

	pin_of(state, "good/receiver.pem", rcv);
	pin_of(state, "good/sender.pem", snd);
	pin_of(state, "good/other.pem", oth);
	pin_of(state, "evil/receiver.pem", evil);

	/* the right pin */
	cli = ctx_make_pinned(state, 0, "good", "sender", "good", "receiver", rcv, NULL);
	assert_true(pinned_pair(srv, cli, &p));
	pair_fini(&p);
	tls_ctx_free(cli);

	/* rotation: the second pin matches, or only the second is set */
	cli = ctx_make_pinned(state, 0, "good", "sender", "good", "receiver", oth, rcv);
	assert_true(pinned_pair(srv, cli, &p));
	pair_fini(&p);
	tls_ctx_free(cli);
	cli = ctx_make_pinned(state, 0, "good", "sender", "good", "receiver", NULL, rcv);
	assert_true(pinned_pair(srv, cli, &p));
	pair_fini(&p);
	tls_ctx_free(cli);

	/* hex digits in upper case are the same pin */
	for (size_t i = 7; i < TLS_PIN_LEN; i++)
		want[i] = (rcv[i] >= 'a' && rcv[i] <= 'f') ? (char)(rcv[i] - 32) : rcv[i];
	memcpy(want, rcv, 7);
	want[TLS_PIN_LEN] = '\0';
	cli = ctx_make_pinned(state, 0, "good", "sender", "good", "receiver", want, NULL);
	assert_true(pinned_pair(srv, cli, &p));
	pair_fini(&p);
	tls_ctx_free(cli);

	/* no pin matches: refused, naming the key the server has */
	cli = ctx_make_pinned(state, 0, "good", "sender", "good", "receiver", snd, oth);
	assert_false(pinned_pair(srv, cli, &p));
	snprintf(want, sizeof(want), "TLS handshake: server public key %s matches no "
	    "pinned key", rcv);
	assert_failed(&p.cli, FERR_TLS, want);
	assert_false(p.cli.connected);
	assert_failed(&p.srv, FERR_TLS, "client rejected our certificate");
	pair_fini(&p);
	tls_ctx_free(cli);

	/* a pin does not replace the CA: the other CA's key, pinned, is
	 * still refused for its CA */
	tls_ctx_free(srv);
	srv = ctx_make(state, 1, "evil", "receiver", "good", NULL);
	cli = ctx_make_pinned(state, 0, "good", "sender", "good", "receiver", evil, NULL);
	assert_false(pinned_pair(srv, cli, &p));
	assert_failed(&p.cli, FERR_TLS, "server certificate 'receiver' is not signed "
	    "by our CA");
	pair_fini(&p);
	tls_ctx_free(cli);
	tls_ctx_free(srv);

	/* the server pins clients */
	cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	srv = ctx_make_pinned(state, 1, "good", "receiver", "good", NULL, snd, NULL);
	assert_true(pinned_pair(srv, cli, &p));
	pair_fini(&p);
	tls_ctx_free(srv);
	srv = ctx_make_pinned(state, 1, "good", "receiver", "good", NULL, oth, rcv);
	assert_false(pinned_pair(srv, cli, &p));
	snprintf(want, sizeof(want), "TLS handshake: client public key %s matches no "
	    "pinned key", snd);
	assert_failed(&p.srv, FERR_TLS, want);
	assert_failed(&p.cli, FERR_TLS, "server rejected our certificate");
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

static int
ctx_try_pin(void **state, const char *pin0, const char *pin1, struct ferr *e)
{
	struct tls_opts o = {
		.cert_file = cpath(state, "good/sender.pem"),
		.key_file = cpath(state, "good/sender.key"),
		.ca_file = cpath(state, "good/ca.pem"),
		.peer_name = "receiver",
		.pins = { pin0, pin1 },
	};
	struct tls_ctx *c = NULL;
	int r;

	memset(e, 0, sizeof(*e));
	r = tls_ctx_new(0, &o, &c, e);
	print_message("# tls_ctx_new: %s (%s)\n", r == 0 ? "ok" : e->msg, ferr_name(r));
	if (r == 0)
		assert_non_null(c);
	else
		assert_null(c);
	tls_ctx_free(c);
	return r;
}

static void
test_pin_syntax(void **state)
{
	static const char hex64[] =
	    "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef";
	static const char *bad[] = {
		"",
		"sha256:",
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0",
		"sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg",
		"sha256: 123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"sha1:0123456789abcdef0123456789abcdef01234567",
		"SHA256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"sha256:ASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4mrze8=",  /* base64 */
	};
	char good[TLS_PIN_BUFLEN];
	struct ferr e;
	size_t i;

	snprintf(good, sizeof(good), "sha256:%s", hex64);
	assert_int_equal(ctx_try_pin(state, good, NULL, &e), 0);
	assert_int_equal(ctx_try_pin(state, NULL, good, &e), 0);
	assert_int_equal(ctx_try_pin(state, good, good, &e), 0);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[160];

		snprintf(want, sizeof(want), "TLS: pin '%s' is not 'sha256:' and 64 hex "
		    "digits", bad[i]);
		assert_int_equal(ctx_try_pin(state, bad[i], NULL, &e), FERR_USAGE);
		assert_string_equal(e.msg, want);
		/* the second slot is checked too, and named */
		assert_int_equal(ctx_try_pin(state, good, bad[i], &e), FERR_USAGE);
		assert_string_equal(e.msg, want);
	}
}

/* ---- key updates over a bulk transfer ---- */

#define KU_CHUNK (1u << 20)
#define KU_QUEUE (4 * KU_CHUNK)   /* kept queued; topped up below 3/4 of it */
#define KU_GUARD_SECONDS 120

/* One direction of a transfer: the side that writes it and the hashes of
 * what was written and what arrived. */
struct flow {
	struct side *s;           /* the writing side (events go to event_cb) */
	struct flow *peer;        /* the flow the same side reads */
	uint64_t to_send, sent;
	uint64_t ku_every, ku_next;   /* request an update every ku_every bytes */
	unsigned ku_requests;
	unsigned ku_blocked;      /* requests made while a record was blocked */
	int wr_blocked;           /* the last socket write would block */
	uint64_t recvd;           /* of the peer's flow, by this side */
	uint64_t gen;             /* xorshift state of what is written */
	XXH64_state_t *tx, *rx;
	unsigned char *chunk;
	int *stop;                /* set, with a loop break, when all arrived */
};

static int
flows_finished(const struct flow *a)
{
	const struct flow *b = a->peer;

	return (a->recvd >= b->to_send && b->recvd >= a->to_send) ||
	    a->s->done || b->s->done;
}

static void
flow_check_end(struct flow *f)
{
	if (flows_finished(f))
		event_base_loopbreak(f->s->p->base);
}

/* Watches the writer's socket writes: while the last one would block,
 * OpenSSL holds a half-written record and refuses SSL_key_update, the
 * case tls_bev_key_update must carry over. */
static long
flow_bio_cb(BIO *b, int oper, const char *argp, size_t len, int argi, long argl,
    int ret, size_t *processed)
{
	struct flow *f = (struct flow *)BIO_get_callback_arg(b);

	(void)argp; (void)len; (void)argi; (void)argl; (void)processed;
	if (oper == (BIO_CB_WRITE | BIO_CB_RETURN))
		f->wr_blocked = ret <= 0;
	return ret;
}

/* Keep KU_QUEUE bytes queued in 1 MiB writes, asking for a key update
 * every ku_every bytes.  libevent calls back below 3/4 of it, so while
 * the rest is being written (libevent drains its 2 MiB buffer chains
 * whole): requests then often meet a blocked record. */
static void
flow_fill(struct flow *f)
{
	struct bufferevent *bev = f->s->bev;

	while (f->sent < f->to_send &&
	    evbuffer_get_length(bufferevent_get_output(bev)) < KU_QUEUE) {
		size_t n = f->to_send - f->sent < KU_CHUNK ? f->to_send - f->sent : KU_CHUNK;

		for (size_t i = 0; i < n; i += 8) {
			f->gen ^= f->gen << 13;
			f->gen ^= f->gen >> 7;
			f->gen ^= f->gen << 17;
			memcpy(f->chunk + i, &f->gen, 8);
		}
		assert_int_equal(XXH64_update(f->tx, f->chunk, n), XXH_OK);
		assert_int_equal(bufferevent_write(bev, f->chunk, n), 0);
		f->sent += n;
		if (f->ku_every != 0 && f->sent >= f->ku_next) {
			assert_int_equal(tls_bev_key_update(bev), 0);
			f->ku_requests++;
			f->ku_blocked += f->wr_blocked;
			f->ku_next += f->ku_every;
		}
	}
}

static void
flow_read_cb(struct bufferevent *bev, void *arg)
{
	struct flow *f = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_iovec v[16];
	int n;

	while ((n = evbuffer_peek(in, -1, NULL, v, 16)) > 0) {
		size_t got = 0;

		if (n > 16)
			n = 16;
		for (int i = 0; i < n; i++) {
			assert_int_equal(XXH64_update(f->rx, v[i].iov_base, v[i].iov_len), XXH_OK);
			got += v[i].iov_len;
		}
		f->recvd += got;
		assert_int_equal(evbuffer_drain(in, got), 0);
	}
	flow_check_end(f);
}

static void
flow_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	flow_fill(arg);
}

static void
flow_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct flow *f = arg;

	event_cb(bev, what, f->s);
	if (what & BEV_EVENT_CONNECTED)
		flow_fill(f);
	flow_check_end(f);
}

static void
flow_init(struct flow *f, struct side *s, struct flow *peer, uint64_t seed)
{
	memset(f, 0, sizeof(*f));
	f->s = s;
	f->peer = peer;
	f->gen = seed;
	f->tx = XXH64_createState();
	f->rx = XXH64_createState();
	f->chunk = malloc(KU_CHUNK);
	assert_non_null(f->tx);
	assert_non_null(f->rx);
	assert_non_null(f->chunk);
	assert_int_equal(XXH64_reset(f->tx, 0), XXH_OK);
	assert_int_equal(XXH64_reset(f->rx, 0), XXH_OK);
}

static void
flow_fini(struct flow *f)
{
	XXH64_freeState(f->tx);
	XXH64_freeState(f->rx);
	free(f->chunk);
}

/* Send to_send bytes each way (a from the client, b from the server) with
 * the given update spacing, then check every byte arrived, in order. */
static void
flows_run(struct flow *a, struct flow *b, uint64_t a_bytes, uint64_t a_every,
    uint64_t b_bytes, uint64_t b_every)
{
	struct timeval guard = { KU_GUARD_SECONDS, 0 };
	struct event_base *base = a->s->p->base;

	a->to_send += a_bytes;
	a->ku_every = a_every;
	a->ku_next = a->sent + a_every;
	b->to_send += b_bytes;
	b->ku_every = b_every;
	b->ku_next = b->sent + b_every;
	if (a->s->connected)
		flow_fill(a);
	if (b->s->connected)
		flow_fill(b);
	if (!flows_finished(a)) {
		assert_int_equal(event_base_loopexit(base, &guard), 0);
		assert_int_equal(event_base_dispatch(base), 0);
	}
	if (a->s->done || b->s->done)
		fail_msg("a side failed: %s / %s", a->s->err.msg, b->s->err.msg);
	if (!flows_finished(a))
		fail_msg("timed out: %llu of %llu and %llu of %llu bytes arrived",
		    (unsigned long long)b->recvd, (unsigned long long)a->to_send,
		    (unsigned long long)a->recvd, (unsigned long long)b->to_send);
	/* all arrived, intact: the hash of what each wrote is the hash of
	 * what the other read */
	assert_int_equal(b->recvd, a->to_send);
	assert_int_equal(a->recvd, b->to_send);
	assert_true(XXH64_digest(a->tx) == XXH64_digest(b->rx));
	assert_true(XXH64_digest(b->tx) == XXH64_digest(a->rx));
}

static void
flows_attach(struct pair *p, struct flow *cf, struct flow *sf)
{
	p->until = UNTIL_BOTH_DONE;      /* event_cb's own check: errors only */
	bufferevent_setcb(p->cli.bev, flow_read_cb, flow_write_cb, flow_event_cb, cf);
	bufferevent_setcb(p->srv.bev, flow_read_cb, flow_write_cb, flow_event_cb, sf);
	bufferevent_setwatermark(p->cli.bev, EV_WRITE, KU_QUEUE / 4 * 3, 0);
	bufferevent_setwatermark(p->srv.bev, EV_WRITE, KU_QUEUE / 4 * 3, 0);
	BIO_set_callback_ex(SSL_get_wbio(bufferevent_openssl_get_ssl(p->cli.bev)),
	    flow_bio_cb);
	BIO_set_callback_arg(SSL_get_wbio(bufferevent_openssl_get_ssl(p->cli.bev)),
	    (char *)cf);
	BIO_set_callback_ex(SSL_get_wbio(bufferevent_openssl_get_ssl(p->srv.bev)),
	    flow_bio_cb);
	BIO_set_callback_arg(SSL_get_wbio(bufferevent_openssl_get_ssl(p->srv.bev)),
	    (char *)sf);
}

static void
print_updates(const char *when, struct pair *p, const struct flow *cf,
    const struct flow *sf)
{
	print_message("# %s: client asked %u (%u while a write was blocked), sent %llu, "
	    "received %llu; server asked %u (%u), sent %llu, received %llu\n", when,
	    cf->ku_requests, cf->ku_blocked,
	    (unsigned long long)tls_bev_key_updates(p->cli.bev),
	    (unsigned long long)tls_bev_key_updates_received(p->cli.bev), sf->ku_requests,
	    sf->ku_blocked,
	    (unsigned long long)tls_bev_key_updates(p->srv.bev),
	    (unsigned long long)tls_bev_key_updates_received(p->srv.bev));
}

static void
test_key_update_bulk(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	struct flow cf, sf;
	uint64_t cli_sent, srv_sent;
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	flow_init(&cf, &p.cli, &sf, 0x9e3779b97f4a7c15ull);
	flow_init(&sf, &p.srv, &cf, 0x0123456789abcdefull);
	flows_attach(&p, &cf, &sf);

	/* 64 MiB one way in 1 MiB writes, an update asked for every 4 MiB */
	flows_run(&cf, &sf, 64 * (uint64_t)KU_CHUNK, 4 * (uint64_t)KU_CHUNK, 0, 0);
	print_updates("one way", &p, &cf, &sf);
	assert_int_equal(cf.ku_requests, 16);
	assert_true(cf.ku_blocked > 0);   /* the carried-over case was met */
	assert_true(tls_bev_key_updates(p.cli.bev) >= 10);
	assert_true(tls_bev_key_updates_received(p.srv.bev) >= 10);
	assert_true(tls_bev_key_updates_received(p.srv.bev) <=
	    tls_bev_key_updates(p.cli.bev));
	cli_sent = tls_bev_key_updates(p.cli.bev);

	/* both ways at once afterwards, both asking for updates; the server
	 * answers the client's requests when it writes */
	flows_run(&cf, &sf, 8 * (uint64_t)KU_CHUNK, 2 * (uint64_t)KU_CHUNK,
	    8 * (uint64_t)KU_CHUNK, (uint64_t)KU_CHUNK);
	print_updates("both ways", &p, &cf, &sf);
	srv_sent = tls_bev_key_updates(p.srv.bev);
	assert_true(srv_sent >= 1);
	assert_true(tls_bev_key_updates_received(p.cli.bev) >= 1);
	assert_true(tls_bev_key_updates(p.cli.bev) > cli_sent);

	/* and a little more each way after the last update */
	flows_run(&cf, &sf, 1000, 0, 1001, 0);
	print_updates("after", &p, &cf, &sf);
	assert_int_equal(tls_bev_key_updates_received(p.cli.bev),
	    tls_bev_key_updates(p.srv.bev));
	assert_int_equal(tls_bev_key_updates_received(p.srv.bev),
	    tls_bev_key_updates(p.cli.bev));
	assert_false(p.srv.done || p.cli.done);

	flow_fini(&cf);
	flow_fini(&sf);
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

/* An update asked for on an idle connection goes out with the next write,
 * and several asked for before it merge into one. */
static void
test_key_update_idle(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	struct bufferevent *plain;
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	/* not before the handshake */
	assert_int_equal(tls_bev_key_update(p.cli.bev), FERR_TLS);
	pair_run(&p, UNTIL_BOTH_CONNECTED);
	assert_true(p.srv.connected && p.cli.connected);
	assert_int_equal(tls_bev_key_updates(p.cli.bev), 0);

	assert_int_equal(tls_bev_key_update(p.cli.bev), 0);
	assert_int_equal(tls_bev_key_update(p.cli.bev), 0);
	assert_int_equal(tls_bev_key_update(p.cli.bev), 0);
	p.cli.send_len = 0;
	assert_int_equal(bufferevent_write(p.cli.bev, "ping", 4), 0);
	p.srv.send_len = 0;
	p.cli.send_len = 4;       /* wait for the 4 bytes */
	pair_run(&p, UNTIL_EXCHANGED);
	assert_int_equal(evbuffer_get_length(p.srv.rx), 4);
	assert_int_equal(tls_bev_key_updates(p.cli.bev), 1);
	assert_int_equal(tls_bev_key_updates_received(p.srv.bev), 1);

	/* the server answers when it writes */
	assert_int_equal(bufferevent_write(p.srv.bev, "pong", 4), 0);
	p.srv.send_len = 4;
	pair_run(&p, UNTIL_EXCHANGED);
	assert_int_equal(evbuffer_get_length(p.cli.rx), 4);
	assert_int_equal(tls_bev_key_updates(p.srv.bev), 1);
	assert_int_equal(tls_bev_key_updates_received(p.cli.bev), 1);

	/* not once closing, and not on a bufferevent that is not TLS */
	assert_int_equal(tls_bev_close_notify(p.cli.bev), 0);
	assert_int_equal(tls_bev_key_update(p.cli.bev), FERR_TLS);
	plain = bufferevent_socket_new(p.base, -1, 0);
	assert_non_null(plain);
	assert_int_equal(tls_bev_key_update(plain), FERR_TLS);
	assert_int_equal(tls_bev_key_updates(plain), 0);
	assert_int_equal(tls_bev_key_updates_received(plain), 0);
	bufferevent_free(plain);

	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

/* An update still queued (nothing written since it was asked for) does not
 * stop the exporter or a clean close: it goes out before the close_notify. */
static void
test_key_update_then_close(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	unsigned char k1[32], k2[32];
	struct pair p;

	pair_init(&p);
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_BOTH_CONNECTED);
	assert_true(p.srv.connected && p.cli.connected);
	assert_int_equal(tls_bev_key_update(p.srv.bev), 0);
	assert_int_equal(tls_bev_key_updates(p.srv.bev), 0);
	/* the exporter is bound to the handshake, not to the current keys */
	assert_int_equal(tls_bev_export(p.srv.bev, "EXPORTER-ferry-test", NULL, 0,
	    k1, sizeof(k1)), 0);
	assert_int_equal(tls_bev_export(p.cli.bev, "EXPORTER-ferry-test", NULL, 0,
	    k2, sizeof(k2)), 0);
	assert_memory_equal(k1, k2, sizeof(k1));

	assert_int_equal(tls_bev_close_notify(p.srv.bev), 0);
	assert_int_equal(tls_bev_key_updates(p.srv.bev), 1);
	bufferevent_free(p.srv.bev);
	p.srv.bev = NULL;
	pair_run(&p, UNTIL_CLIENT_DONE);
	assert_true(p.cli.what & BEV_EVENT_EOF);
	assert_false(p.cli.what & BEV_EVENT_ERROR);
	assert_int_equal(p.cli.rc, FERR_NET);
	assert_contains(p.cli.err.msg, "TLS: connection closed by peer");
	assert_int_equal(tls_bev_key_updates_received(p.cli.bev), 1);
	pair_fini(&p);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
}

/* ---- resume-proof helpers ---- */

static void
hex_to_bytes(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void
test_hmac_sha256(void **state)
{
	static const char tc2[] = "what do ya want for nothing?";
	uint8_t key1[20], mac[32], want[32];

	(void)state;
	/* RFC 4231 test case 2 */
	assert_int_equal(tls_hmac_sha256("Jefe", 4, tc2, strlen(tc2), mac), 0);
	hex_to_bytes("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
	    want, 32);
	assert_memory_equal(mac, want, 32);
	/* RFC 4231 test case 1 */
	memset(key1, 0x0b, sizeof(key1));
	assert_int_equal(tls_hmac_sha256(key1, sizeof(key1), "Hi There", 8, mac), 0);
	hex_to_bytes("b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
	    want, 32);
	assert_memory_equal(mac, want, 32);
	/* empty key and message */
	assert_int_equal(tls_hmac_sha256(NULL, 0, NULL, 0, mac), 0);
	hex_to_bytes("b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad",
	    want, 32);
	assert_memory_equal(mac, want, 32);
	assert_int_equal(tls_hmac_sha256(NULL, 1, "x", 1, mac), FERR_INTERNAL);
	assert_int_equal(tls_hmac_sha256("k", 1, NULL, 1, mac), FERR_INTERNAL);
}

static void
test_ct_equal(void **state)
{
	uint8_t a[32], b[32];

	(void)state;
	for (int i = 0; i < 32; i++)
		a[i] = b[i] = (uint8_t)(i * 7);
	assert_int_equal(tls_ct_equal(a, b, 32), 1);
	assert_int_equal(tls_ct_equal(a, b, 0), 1);
	b[0] ^= 1;
	assert_int_equal(tls_ct_equal(a, b, 32), 0);
	assert_int_equal(tls_ct_equal(a + 1, b + 1, 31), 1);
	b[0] ^= 1;
	b[31] ^= 0x80;
	assert_int_equal(tls_ct_equal(a, b, 32), 0);
	assert_int_equal(tls_ct_equal(a, b, 31), 1);
}

/* ---- the settings of RELIABILITY.md "TLS settings" ---- */

static void
tickets_cb(int write_p, int version, int content_type, const void *buf, size_t len,
    SSL *ssl, void *arg)
{
	(void)version; (void)ssl;
	if (!write_p && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
	    ((const unsigned char *)buf)[0] == SSL3_MT_NEWSESSION_TICKET)
		(*(int *)arg)++;
}

static void
assert_ctx_settings(SSL *ssl, int is_server)
{
	SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);

	assert_int_equal(SSL_version(ssl), TLS1_3_VERSION);
	assert_int_equal(SSL_CTX_get_min_proto_version(ctx), TLS1_3_VERSION);
	assert_int_equal(SSL_CTX_get_max_proto_version(ctx), TLS1_3_VERSION);
	assert_true(SSL_CTX_get_security_level(ctx) >= 2);
	assert_true(SSL_get_security_level(ssl) >= 2);
	assert_int_equal(SSL_CTX_get_verify_depth(ctx), 4);
	assert_int_equal(SSL_CTX_get_verify_mode(ctx), SSL_VERIFY_PEER |
	    (is_server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0));
	assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_TICKET);
	assert_true(SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	assert_false(SSL_CTX_get_options(ctx) & SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	assert_int_equal(SSL_CTX_get_session_cache_mode(ctx), SSL_SESS_CACHE_OFF);
	assert_int_equal(SSL_CTX_get_num_tickets(ctx), 0);
	assert_int_equal(SSL_CTX_get_max_early_data(ctx), 0);
	assert_int_equal(SSL_CTX_get_recv_max_early_data(ctx), 0);
	assert_int_equal(SSL_CTX_sess_number(ctx), 0);
}

static void
test_settings(void **state)
{
	struct tls_ctx *srv = ctx_make(state, 1, "good", "receiver", "good", NULL);
	struct tls_ctx *cli = ctx_make(state, 0, "good", "sender", "good", "receiver");
	SSL_SESSION *first = NULL;
	int tickets = 0, round;
	struct pair p;

	/* ferry to ferry: TLS 1.3, the settings in force, nothing resumable */
	pair_init(&p);
	p.srv.send_len = 100;
	p.cli.send_len = 100;
	pair_start(&p, srv, cli);
	pair_run(&p, UNTIL_EXCHANGED);
	assert_true(p.srv.connected && p.cli.connected);
	assert_ctx_settings(bufferevent_openssl_get_ssl(p.srv.bev), 1);
	assert_ctx_settings(bufferevent_openssl_get_ssl(p.cli.bev), 0);
	assert_false(SSL_SESSION_is_resumable(SSL_get0_session(
	    bufferevent_openssl_get_ssl(p.cli.bev))));
	pair_fini(&p);

	/* a stock OpenSSL client that would take tickets, connecting twice
	 * and offering the first session the second time, gets none */
	for (round = 0; round < 2; round++) {
		SSL *ssl;

		pair_init(&p);
		p.srv.send_len = 100;
		pair_start(&p, srv, NULL);
		side_attach(&p.cli, raw_bev(p.base, p.fds[1], 0,
		    cpath(state, "good/sender.pem"), cpath(state, "good/sender.key"),
		    cpath(state, "good/ca.pem"), TLS1_3_VERSION));
		p.fds[1] = -1;
		ssl = bufferevent_openssl_get_ssl(p.cli.bev);
		SSL_set_msg_callback(ssl, tickets_cb);
		SSL_set_msg_callback_arg(ssl, &tickets);
		if (first != NULL)
			assert_int_equal(SSL_set_session(ssl, first), 1);
		pair_run(&p, UNTIL_EXCHANGED);
		assert_true(p.srv.connected && p.cli.connected);
		assert_int_equal(evbuffer_get_length(p.cli.rx), 100);
		assert_false(SSL_session_reused(ssl));
		if (first == NULL) {
			first = SSL_get1_session(ssl);
			assert_non_null(first);
			assert_false(SSL_SESSION_is_resumable(first));
		}
		assert_int_equal(SSL_CTX_sess_number(SSL_get_SSL_CTX(
		    bufferevent_openssl_get_ssl(p.srv.bev))), 0);
		pair_fini(&p);
	}
	assert_int_equal(tickets, 0);
	SSL_SESSION_free(first);
	tls_ctx_free(srv);
	tls_ctx_free(cli);
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
		cmocka_unit_test(test_pin_of_cert_file),
		cmocka_unit_test(test_pins),
		cmocka_unit_test(test_pin_syntax),
		cmocka_unit_test(test_key_update_idle),
		cmocka_unit_test(test_key_update_bulk),
		cmocka_unit_test(test_key_update_then_close),
		cmocka_unit_test(test_hmac_sha256),
		cmocka_unit_test(test_ct_equal),
		cmocka_unit_test(test_settings),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
