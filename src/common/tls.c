/* Mutual TLS 1.3 over libevent bufferevents; see tls.h for the contract
 * and RELIABILITY.md "TLS settings" for the policy.  This file sets up
 * contexts and connections and runs them (pins, key updates, exporter,
 * close_notify); tls_explain.c turns failures into words.  Only these two
 * files include OpenSSL headers. */
#include "tls_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define TLS_PEER_NAME_MAX 253     /* longest DNS name */
#define TLS_PIN_PREFIX "sha256:"
#define TLS_PIN_PREFIX_LEN 7

/* AES-128-GCM first: fastest where AES-NI exists, and strong enough. */
#define TLS_CIPHERSUITES \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:" \
	"TLS_CHACHA20_POLY1305_SHA256"

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#define tls_get1_peer_cert(ssl) SSL_get1_peer_certificate(ssl)
#else
#define tls_get1_peer_cert(ssl) SSL_get_peer_certificate(ssl)
#endif

struct tls_ctx {
	SSL_CTX *ssl_ctx;
	int is_server;
	char *peer_name;          /* NULL: a server accepting any name */
	FILE *keylog;             /* SSLKEYLOGFILE, normally NULL */
	int npins;
	unsigned char pins[TLS_PINS_MAX][TLS_PIN_HASH_LEN];
};

/* The SSL ex_data slot for struct tls_conn.  OpenSSL hands these out per
 * process; it is set once and never changes, so it is not session state. */
static CRYPTO_ONCE conn_once = CRYPTO_ONCE_STATIC_INIT;
static int conn_idx = -1;

static void
conn_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
    void *argp)
{
	(void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
	free(ptr);
}

static void
conn_idx_init(void)
{
	conn_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free_cb);
}

struct tls_conn *
tls_conn_of(const SSL *ssl)
{
	if (ssl == NULL || conn_idx < 0)
		return NULL;
	return SSL_get_ex_data(ssl, conn_idx);
}

static int
is_empty(const char *s)
{
	return s == NULL || s[0] == '\0';
}

static int
is_ip_literal(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* ---- public-key pins ---- */

static int
hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* "sha256:" and 64 hex digits into the 32 bytes they spell. */
static int
pin_parse(const char *s, unsigned char out[TLS_PIN_HASH_LEN])
{
	int i, hi, lo;

	if (strlen(s) != TLS_PIN_LEN || strncmp(s, TLS_PIN_PREFIX, TLS_PIN_PREFIX_LEN) != 0)
		return -1;
	s += TLS_PIN_PREFIX_LEN;
	for (i = 0; i < TLS_PIN_HASH_LEN; i++) {
		if ((hi = hex_value(s[2 * i])) < 0 || (lo = hex_value(s[2 * i + 1])) < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static void
pin_format(const unsigned char h[TLS_PIN_HASH_LEN], char out[TLS_PIN_BUFLEN])
{
	static const char digits[] = "0123456789abcdef";
	int i;

	memcpy(out, TLS_PIN_PREFIX, TLS_PIN_PREFIX_LEN);
	for (i = 0; i < TLS_PIN_HASH_LEN; i++) {
		out[TLS_PIN_PREFIX_LEN + 2 * i] = digits[h[i] >> 4];
		out[TLS_PIN_PREFIX_LEN + 2 * i + 1] = digits[h[i] & 15];
	}
	out[TLS_PIN_LEN] = '\0';
}

/* SHA-256 of x's SubjectPublicKeyInfo, DER: the whole structure, with the
 * algorithm, as HPKP and curl's pinnedpubkey hash it. */
static int
spki_sha256(X509 *x, unsigned char out[TLS_PIN_HASH_LEN])
{
	unsigned char *der = NULL;
	unsigned int n = 0;
	int len, ok;

	len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
	if (len <= 0)
		return -1;
	ok = EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL) == 1 &&
	    n == TLS_PIN_HASH_LEN;
	OPENSSL_free(der);
	return ok ? 0 : -1;
}

/* The whole-chain check: OpenSSL's (CA, dates, name), then the pins.  A
 * key matching no pin is reported as X509_V_ERR_CERT_REJECTED, which
 * OpenSSL sends to the peer as a bad_certificate alert. */
static int
cert_verify_cb(X509_STORE_CTX *xs, void *arg)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *tc = tls_conn_of(ssl);
	unsigned char h[TLS_PIN_HASH_LEN];
	int ok = X509_verify_cert(xs), i;

	(void)arg;
	if (ok != 1 || (tc != NULL && tc->npins == 0))
		return ok;
	if (tc == NULL || spki_sha256(X509_STORE_CTX_get0_cert(xs), h) != 0) {
		X509_STORE_CTX_set_error(xs, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	for (i = 0; i < tc->npins; i++)
		if (CRYPTO_memcmp(h, tc->pins[i], TLS_PIN_HASH_LEN) == 0)
			return 1;
	pin_format(h, tc->pin_refused);
	X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
	return 0;
}

/* ---- contexts ---- */

static void
keylog_cb(const SSL *ssl, const char *line)
{
	const struct tls_ctx *c = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));

	if (c == NULL || c->keylog == NULL)
		return;
	fprintf(c->keylog, "%s\n", line);
	fflush(c->keylog);
}

/* Encrypted keys are not supported: never prompt on a terminal. */
static int
no_passphrase_cb(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag; (void)u;
	return 0;
}

/* Fail early, with errno, when a file cannot be opened at all. */
static int
check_readable(const char *what, const char *path, struct ferr *e)
{
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return ferr_set(e, FERR_IO, "TLS: %s '%s': %s", what, path, strerror(errno));
	fclose(f);
	return 0;
}

static int
load_files(struct tls_ctx *c, const struct tls_opts *o, struct ferr *e)
{
	STACK_OF(X509_NAME) *names;
	unsigned long code;
	int r;

	if ((r = check_readable("certificate file", o->cert_file, e)) != 0 ||
	    (r = check_readable("key file", o->key_file, e)) != 0 ||
	    (r = check_readable("CA file", o->ca_file, e)) != 0)
		return r;

	if (SSL_CTX_use_certificate_chain_file(c->ssl_ctx, o->cert_file) != 1)
		return tls_load_error("certificate file", o->cert_file, e);

	if (SSL_CTX_use_PrivateKey_file(c->ssl_ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
		const char *why = tls_ossl_reason(&code);

		if (ERR_GET_LIB(code) == ERR_LIB_X509 &&
		    (ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH ||
		    ERR_GET_REASON(code) == X509_R_KEY_TYPE_MISMATCH))
			return ferr_set(e, FERR_TLS, "TLS: key file '%s' does not match "
			    "certificate '%s' (%s)", o->key_file, o->cert_file, why);
		return tls_key_error(o->key_file, e);
	}
	if (SSL_CTX_check_private_key(c->ssl_ctx) != 1)
		return ferr_set(e, FERR_TLS, "TLS: key file '%s' does not match "
		    "certificate '%s' (%s)", o->key_file, o->cert_file, tls_ossl_reason(NULL));

	if (SSL_CTX_load_verify_locations(c->ssl_ctx, o->ca_file, NULL) != 1)
		return tls_load_error("CA file", o->ca_file, e);
	if (c->is_server) {
		/* Tell clients which CA we accept (CertificateRequest). */
		names = SSL_load_client_CA_file(o->ca_file);
		if (names == NULL)
			return ferr_set(e, FERR_TLS, "TLS: CA file '%s': no certificate in it",
			    o->ca_file);
		SSL_CTX_set_client_CA_list(c->ssl_ctx, names);
	}
	return 0;
}

/* SSLKEYLOGFILE: a debugging aid that defeats TLS, so say so loudly. */
static void
keylog_open(struct tls_ctx *c)
{
	const char *path = getenv("SSLKEYLOGFILE");
	int fd;

	if (is_empty(path))
		return;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0 || (c->keylog = fdopen(fd, "a")) == NULL) {
		fprintf(stderr, "ferry: warning: SSLKEYLOGFILE '%s': %s; TLS keys "
		    "are not logged\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	SSL_CTX_set_keylog_callback(c->ssl_ctx, keylog_cb);
	fprintf(stderr, "ferry: warning: SSLKEYLOGFILE is set: TLS secrets are "
	    "appended to '%s'; anyone with that file can decrypt this traffic\n", path);
}

static int
configure(struct tls_ctx *c, struct ferr *e)
{
	SSL_CTX *ctx = c->ssl_ctx;

	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1)
		return ferr_set(e, FERR_TLS, "TLS: this OpenSSL cannot do TLS 1.3 only");
	if (SSL_CTX_set_ciphersuites(ctx, TLS_CIPHERSUITES) != 1)
		return ferr_set(e, FERR_TLS, "TLS: cipher suites '%s' not available",
		    TLS_CIPHERSUITES);
	if (SSL_CTX_get_security_level(ctx) < TLS_SECURITY_LEVEL)
		SSL_CTX_set_security_level(ctx, TLS_SECURITY_LEVEL);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_COMPRESSION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* A missing close_notify is a truncated stream, never a clean end. */
	SSL_CTX_clear_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	/* No resumption, hence no tickets and no 0-RTT. */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_set_num_tickets(ctx, 0) != 1 ||
	    SSL_CTX_set_max_early_data(ctx, 0) != 1 ||
	    SSL_CTX_set_recv_max_early_data(ctx, 0) != 1)
		return ferr_set(e, FERR_TLS, "TLS: cannot turn off tickets and early data");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER |
	    (c->is_server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), tls_verify_cb);
	SSL_CTX_set_verify_depth(ctx, TLS_VERIFY_DEPTH);
	SSL_CTX_set_cert_verify_callback(ctx, cert_verify_cb, NULL);
	X509_VERIFY_PARAM_set_hostflags(SSL_CTX_get0_param(ctx),
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	SSL_CTX_set_default_passwd_cb(ctx, no_passphrase_cb);
	SSL_CTX_set_app_data(ctx, c);
	return 0;
}

int
tls_ctx_new(int is_server, const struct tls_opts *o, struct tls_ctx **out,
    struct ferr *e)
{
	unsigned char pins[TLS_PINS_MAX][TLS_PIN_HASH_LEN];
	struct tls_ctx *c = NULL;
	int r = FERR_INTERNAL, npins = 0, i;

	*out = NULL;
	if (o == NULL || is_empty(o->cert_file))
		return ferr_set(e, FERR_USAGE, "TLS: no certificate file given");
	if (is_empty(o->key_file))
		return ferr_set(e, FERR_USAGE, "TLS: no key file given");
	if (is_empty(o->ca_file))
		return ferr_set(e, FERR_USAGE, "TLS: no CA file given");
	if (!is_server && is_empty(o->peer_name))
		return ferr_set(e, FERR_USAGE, "TLS: the client needs the server's "
		    "name to check its certificate against (peer name is empty)");
	if (o->peer_name != NULL && strlen(o->peer_name) > TLS_PEER_NAME_MAX)
		return ferr_set(e, FERR_USAGE, "TLS: peer name is %zu bytes, over %d",
		    strlen(o->peer_name), TLS_PEER_NAME_MAX);
	for (i = 0; i < TLS_PINS_MAX; i++) {
		if (o->pins[i] == NULL)
			continue;
		if (pin_parse(o->pins[i], pins[npins]) != 0)
			return ferr_set(e, FERR_USAGE, "TLS: pin '%.80s' is not '%s' and "
			    "64 hex digits", o->pins[i], TLS_PIN_PREFIX);
		npins++;
	}

	ERR_clear_error();
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		r = ferr_set(e, FERR_NOMEM, "TLS: out of memory");
		goto out;
	}
	c->is_server = is_server != 0;
	c->npins = npins;
	memcpy(c->pins, pins, sizeof(pins));
	if (!is_empty(o->peer_name) && (c->peer_name = strdup(o->peer_name)) == NULL) {
		r = ferr_set(e, FERR_NOMEM, "TLS: out of memory");
		goto out;
	}
	c->ssl_ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
	if (c->ssl_ctx == NULL) {
		r = ferr_set(e, FERR_TLS, "TLS: cannot make a context: %s", tls_ossl_reason(NULL));
		goto out;
	}
	if ((r = configure(c, e)) != 0 || (r = load_files(c, o, e)) != 0)
		goto out;
	keylog_open(c);
	*out = c;
	c = NULL;
	r = 0;
out:
	tls_ctx_free(c);
	ERR_clear_error();
	return r;
}

void
tls_ctx_free(struct tls_ctx *c)
{
	if (c == NULL)
		return;
	if (c->ssl_ctx != NULL) {
		/* Connections may outlive us; keylog_cb must not find c. */
		SSL_CTX_set_app_data(c->ssl_ctx, NULL);
		SSL_CTX_free(c->ssl_ctx);
	}
	if (c->keylog != NULL)
		fclose(c->keylog);
	free(c->peer_name);
	free(c);
}

/* ---- connections ---- */

/* Count KeyUpdate messages both ways (OpenSSL keeps no count).  Sent ones
 * are reported once wholly written, received ones once read. */
static void
msg_cb(int write_p, int version, int content_type, const void *buf, size_t len,
    SSL *ssl, void *arg)
{
	struct tls_conn *tc = tls_conn_of(ssl);

	(void)version; (void)arg;
	if (tc == NULL || content_type != SSL3_RT_HANDSHAKE || len < 1 ||
	    ((const unsigned char *)buf)[0] != SSL3_MT_KEY_UPDATE)
		return;
	if (write_p)
		tc->ku_sent++;
	else
		tc->ku_received++;
}

/* The name the peer's certificate must carry: SSL_set1_host for DNS
 * names (checked against the SAN by OpenSSL's verifier, on either side),
 * an IP SAN for addresses. */
static int
set_expected_name(SSL *ssl, const char *name)
{
	if (is_ip_literal(name))
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
	return SSL_set1_host(ssl, name) == 1;
}

struct bufferevent *
tls_bev_new(struct tls_ctx *c, struct event_base *base, int fd, struct ferr *e)
{
	struct bufferevent *bev = NULL;
	struct tls_conn *tc;
	SSL *ssl = NULL;

	if (CRYPTO_THREAD_run_once(&conn_once, conn_idx_init) != 1 || conn_idx < 0) {
		ferr_set(e, FERR_TLS, "TLS: cannot register connection data");
		return NULL;
	}
	ERR_clear_error();
	if ((ssl = SSL_new(c->ssl_ctx)) == NULL) {
		ferr_set(e, FERR_NOMEM, "TLS: cannot make a connection: %s", tls_ossl_reason(NULL));
		goto out;
	}
	if ((tc = calloc(1, sizeof(*tc))) == NULL) {
		ferr_set(e, FERR_NOMEM, "TLS: out of memory");
		goto out;
	}
	if (SSL_set_ex_data(ssl, conn_idx, tc) != 1) {
		free(tc);
		ferr_set(e, FERR_NOMEM, "TLS: out of memory");
		goto out;
	}
	tc->is_server = c->is_server;
	tc->npins = c->npins;
	memcpy(tc->pins, c->pins, sizeof(tc->pins));
	SSL_set_info_callback(ssl, tls_info_cb);
	SSL_set_msg_callback(ssl, msg_cb);
	if (c->peer_name != NULL) {
		snprintf(tc->expected, sizeof(tc->expected), "%s", c->peer_name);
		if (!set_expected_name(ssl, c->peer_name) ||
		    (!c->is_server && !is_ip_literal(c->peer_name) &&
		    SSL_set_tlsext_host_name(ssl, c->peer_name) != 1)) {
			ferr_set(e, FERR_TLS, "TLS: cannot expect peer name '%s': %s",
			    c->peer_name, tls_ossl_reason(NULL));
			goto out;
		}
	}
	/* With BEV_OPT_CLOSE_ON_FREE libevent owns ssl from here, and frees
	 * it (but not fd) if it fails. */
	bev = bufferevent_openssl_socket_new(base, fd, ssl,
	    c->is_server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	ssl = NULL;
	if (bev == NULL) {
		ferr_set(e, FERR_TLS, "TLS: cannot make a bufferevent for fd %d", fd);
		goto out;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 0);
out:
	SSL_free(ssl);
	ERR_clear_error();
	return bev;
}

int
tls_bev_peer_name(struct bufferevent *bev, char *buf, size_t len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	X509 *x;

	if (len == 0)
		return FERR_TLS;
	buf[0] = '\0';
	if (ssl == NULL || SSL_get_verify_result(ssl) != X509_V_OK ||
	    (x = tls_get1_peer_cert(ssl)) == NULL)
		return FERR_TLS;
	tls_cert_name(x, buf, len);
	X509_free(x);
	return buf[0] != '\0' ? 0 : FERR_TLS;
}

/* The handshake is over.  OpenSSL runs a KeyUpdate through its handshake
 * code, so SSL_is_init_finished() is also false while one waits to be
 * written; that is no reason to refuse the exporter or a close. */
static int
handshake_over(SSL *ssl)
{
	const struct tls_conn *tc = tls_conn_of(ssl);

	return SSL_is_init_finished(ssl) || (tc != NULL && tc->handshake_done &&
	    SSL_get_key_update_type(ssl) != SSL_KEY_UPDATE_NONE);
}

int
tls_bev_export(struct bufferevent *bev, const char *label, const void *context,
    size_t context_len, void *out, size_t out_len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	int ok;

	if (ssl == NULL || label == NULL || !handshake_over(ssl))
		return FERR_TLS;
	ok = SSL_export_keying_material(ssl, out, out_len, label, strlen(label),
	    context, context_len, 1);
	ERR_clear_error();
	return ok == 1 ? 0 : FERR_TLS;
}

int
tls_bev_close_notify(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	int r;

	if (ssl == NULL || !handshake_over(ssl))
		return FERR_TLS;
	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return FERR_INTERNAL;
	ERR_clear_error();
	/* A queued KeyUpdate goes first: SSL_shutdown refuses "in init". */
	if (SSL_is_init_finished(ssl) || (r = SSL_do_handshake(ssl)) == 1) {
		r = SSL_shutdown(ssl);
		if (r >= 0)
			return 0;
	}
	r = SSL_get_error(ssl, r);
	ERR_clear_error();
	return r == SSL_ERROR_WANT_WRITE ? FERR_NEED_MORE : FERR_TLS;
}

/* ---- key updates ---- */

/* One attempt: 0 when made (or one is already queued), FERR_NEED_MORE
 * when OpenSSL cannot take it now, FERR_TLS when it never will. */
static int
key_update_try(SSL *ssl)
{
	unsigned long code;

	if (SSL_get_key_update_type(ssl) == SSL_KEY_UPDATE_REQUESTED)
		return 0;
	ERR_clear_error();
	if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) == 1)
		return 0;
	code = ERR_peek_error();
	ERR_clear_error();
	if (ERR_GET_LIB(code) == ERR_LIB_SSL && (ERR_GET_REASON(code) == SSL_R_BAD_WRITE_RETRY ||
	    ERR_GET_REASON(code) == SSL_R_STILL_IN_INIT))
		return FERR_NEED_MORE;
	return FERR_TLS;
}

/* On the output buffer while a request waits.  libevent drains the buffer
 * only after SSL_write has returned success, so no record is half written
 * then unless a later SSL_write in the same pass blocked; OpenSSL says
 * which, and the next drain tries again. */
static void
key_update_retry_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
	SSL *ssl = bufferevent_openssl_get_ssl(arg);
	struct tls_conn *tc = tls_conn_of(ssl);

	if (tc == NULL || !tc->ku_wanted || info->n_deleted == 0)
		return;
	if (key_update_try(ssl) == FERR_NEED_MORE)
		return;
	tc->ku_wanted = 0;
	evbuffer_cb_clear_flags(buf, tc->ku_retry, EVBUFFER_CB_ENABLED);
}

int
tls_bev_key_update(struct bufferevent *bev)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	struct tls_conn *tc = tls_conn_of(ssl);
	struct evbuffer *out = bufferevent_get_output(bev);
	int r;

	if (tc == NULL || !tc->handshake_done || SSL_version(ssl) != TLS1_3_VERSION ||
	    SSL_get_shutdown(ssl) != 0)
		return FERR_TLS;
	if (tc->ku_wanted)
		return 0;
	if ((r = key_update_try(ssl)) != FERR_NEED_MORE)
		return r;
	if (tc->ku_retry == NULL &&
	    (tc->ku_retry = evbuffer_add_cb(out, key_update_retry_cb, bev)) == NULL)
		return FERR_NOMEM;
	evbuffer_cb_set_flags(out, tc->ku_retry, EVBUFFER_CB_ENABLED);
	tc->ku_wanted = 1;
	return 0;
}

uint64_t
tls_bev_key_updates(struct bufferevent *bev)
{
	const struct tls_conn *tc = tls_conn_of(bufferevent_openssl_get_ssl(bev));

	return tc != NULL ? tc->ku_sent : 0;
}

uint64_t
tls_bev_key_updates_received(struct bufferevent *bev)
{
	const struct tls_conn *tc = tls_conn_of(bufferevent_openssl_get_ssl(bev));

	return tc != NULL ? tc->ku_received : 0;
}

/* ---- helpers for operators and resume proofs ---- */

int
tls_pin_of_cert_file(const char *pem_path, char *out, size_t outlen, struct ferr *e)
{
	unsigned char h[TLS_PIN_HASH_LEN];
	X509 *x;
	FILE *f;
	int r;

	if (outlen > 0)
		out[0] = '\0';
	if (outlen < TLS_PIN_BUFLEN)
		return ferr_set(e, FERR_USAGE, "TLS: a pin needs %d bytes, not %zu",
		    TLS_PIN_BUFLEN, outlen);
	if (is_empty(pem_path))
		return ferr_set(e, FERR_USAGE, "TLS: no certificate file given");
	if ((f = fopen(pem_path, "r")) == NULL)
		return ferr_set(e, FERR_IO, "TLS: certificate file '%s': %s", pem_path,
		    strerror(errno));
	ERR_clear_error();
	x = PEM_read_X509(f, NULL, no_passphrase_cb, NULL);
	fclose(f);
	if (x == NULL)
		r = ferr_set(e, FERR_TLS, "TLS: certificate file '%s': no PEM certificate "
		    "in it", pem_path);
	else if (spki_sha256(x, h) != 0)
		r = ferr_set(e, FERR_NOMEM, "TLS: certificate file '%s': cannot hash its "
		    "key", pem_path);
	else {
		pin_format(h, out);
		r = 0;
	}
	X509_free(x);
	ERR_clear_error();
	return r;
}

int
tls_hmac_sha256(const void *key, size_t keylen, const void *msg, size_t msglen,
    uint8_t out[32])
{
	static const unsigned char none[1];
	unsigned int n = 0;

	if (keylen > INT_MAX || (key == NULL && keylen != 0) || (msg == NULL && msglen != 0))
		return FERR_INTERNAL;
	if (HMAC(EVP_sha256(), key != NULL ? key : none, (int)keylen,
	    msg != NULL ? msg : none, msglen, out, &n) == NULL || n != 32) {
		ERR_clear_error();
		return FERR_INTERNAL;
	}
	return 0;
}

int
tls_ct_equal(const void *a, const void *b, size_t n)
{
	return n == 0 || CRYPTO_memcmp(a, b, n) == 0;
}
