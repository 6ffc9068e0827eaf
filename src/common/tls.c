/* Mutual TLS 1.3 over libevent bufferevents; see tls.h for the contract
 * and RELIABILITY.md "TLS settings" for the policy.  The only file that
 * includes OpenSSL headers. */
#include "tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#define TLS_VERIFY_DEPTH 4        /* certificates above the leaf */
#define TLS_SECURITY_LEVEL 2      /* at least 112-bit keys, SHA-256 */
#define TLS_NAME_MAX 128          /* a name kept for messages, with NUL */
#define TLS_DATE_MAX 32
#define TLS_PEER_NAME_MAX 253     /* longest DNS name */
#define TLS_SNIFF_MAX 65536       /* bytes of a key file read to explain errors */

/* AES-128-GCM first: fastest where AES-NI exists, and strong enough. */
#define TLS_CIPHERSUITES \
	"TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:" \
	"TLS_CHACHA20_POLY1305_SHA256"

/* libevent 2.1 keeps SSL_get_error()'s result (SSL_ERROR_SSL,
 * SSL_ERROR_SYSCALL, ...) in the same list as real OpenSSL error codes.
 * Real codes always carry a library number above bit 23 (or the system
 * error flag), so anything below is one of those small values. */
#define TLS_PSEUDO_ERR_MAX (1UL << 23)

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
};

/* Per connection, hung off the SSL (freed with it): what the certificate
 * check saw, so tls_bev_error can name the certificate and the date after
 * libevent has reduced the failure to "certificate verify failed". */
struct tls_conn {
	int is_server;
	int handshake_done;       /* our side finished the handshake */
	int verify_err;           /* first X509_V_ERR_*, 0 if none */
	int verify_depth;         /* 0 is the peer's own certificate */
	char subject[TLS_NAME_MAX];   /* the certificate at that depth */
	char date[TLS_DATE_MAX];      /* its notBefore/notAfter, date errors */
	char expected[TLS_NAME_MAX];  /* the peer name we asked for, or "" */
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

static struct tls_conn *
conn_of(const SSL *ssl)
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

/* Copy n bytes of a name from a certificate (hostile input) into buf,
 * NUL-terminated, with anything but printable ASCII turned into '?'. */
static void
copy_printable(char *buf, size_t len, const unsigned char *s, size_t n)
{
	size_t i;

	if (len == 0)
		return;
	if (n > len - 1)
		n = len - 1;
	for (i = 0; i < n; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
	buf[n] = '\0';
}

/* The first DNS or IP subjectAltName of x, or "" if none. */
static void
first_san(X509 *x, char *buf, size_t len)
{
	GENERAL_NAMES *gens;
	char ip[INET6_ADDRSTRLEN];
	int i;

	buf[0] = '\0';
	gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	if (gens == NULL)
		return;
	for (i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s;

		if (g->type == GEN_DNS) {
			s = g->d.dNSName;
			copy_printable(buf, len, ASN1_STRING_get0_data(s),
			    (size_t)ASN1_STRING_length(s));
			break;
		}
		if (g->type == GEN_IPADD) {
			s = g->d.iPAddress;
			if (ASN1_STRING_length(s) == 4 &&
			    inet_ntop(AF_INET, ASN1_STRING_get0_data(s), ip, sizeof(ip)) != NULL)
				snprintf(buf, len, "%s", ip);
			else if (ASN1_STRING_length(s) == 16 &&
			    inet_ntop(AF_INET6, ASN1_STRING_get0_data(s), ip, sizeof(ip)) != NULL)
				snprintf(buf, len, "%s", ip);
			else
				continue;
			break;
		}
	}
	GENERAL_NAMES_free(gens);
}

/* A name for x in messages: its subject CN, else its first SAN. */
static void
cert_name(X509 *x, char *buf, size_t len)
{
	X509_NAME *subj = X509_get_subject_name(x);
	const X509_NAME_ENTRY *ent;
	const ASN1_STRING *s;
	int i;

	if (len == 0)
		return;
	buf[0] = '\0';
	i = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
	if (i >= 0 && (ent = X509_NAME_get_entry(subj, i)) != NULL &&
	    (s = X509_NAME_ENTRY_get_data(ent)) != NULL && ASN1_STRING_length(s) > 0) {
		copy_printable(buf, len, ASN1_STRING_get0_data(s),
		    (size_t)ASN1_STRING_length(s));
		return;
	}
	first_san(x, buf, len);
}

static void
format_date(const ASN1_TIME *t, char *buf, size_t len)
{
	struct tm tm;

	buf[0] = '\0';
	if (t != NULL && ASN1_TIME_to_tm(t, &tm) == 1)
		strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Record the first certificate failure; never changes the verdict. */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *tc = conn_of(ssl);
	X509 *cert;

	if (ok || tc == NULL || tc->verify_err != 0)
		return ok;
	tc->verify_err = X509_STORE_CTX_get_error(xs);
	tc->verify_depth = X509_STORE_CTX_get_error_depth(xs);
	cert = X509_STORE_CTX_get_current_cert(xs);
	if (cert == NULL)
		return ok;
	cert_name(cert, tc->subject, sizeof(tc->subject));
	if (tc->verify_err == X509_V_ERR_CERT_HAS_EXPIRED)
		format_date(X509_get0_notAfter(cert), tc->date, sizeof(tc->date));
	else if (tc->verify_err == X509_V_ERR_CERT_NOT_YET_VALID)
		format_date(X509_get0_notBefore(cert), tc->date, sizeof(tc->date));
	return ok;
}

static void
info_cb(const SSL *ssl, int where, int ret)
{
	struct tls_conn *tc = conn_of(ssl);

	(void)ret;
	if (tc != NULL && (where & SSL_CB_HANDSHAKE_DONE))
		tc->handshake_done = 1;
}

/* OpenSSL errors become fatal after the fact, so SSL_is_init_finished()
 * is false by the time tls_bev_error looks; remember the moment instead. */
static int
handshake_done(const SSL *ssl)
{
	const struct tls_conn *tc = conn_of(ssl);

	return tc != NULL ? tc->handshake_done : SSL_is_init_finished(ssl);
}

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

/* The most telling OpenSSL error left by a failed load: the first one, as
 * "reason" text. */
static const char *
ossl_reason(unsigned long *codep)
{
	unsigned long code = ERR_peek_error();
	const char *s;

	if (codep != NULL)
		*codep = code;
	if (code == 0)
		return "unknown error";
	s = ERR_reason_error_string(code);
	return s != NULL ? s : "unknown error";
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

/* Why a key file did not load, from its text: OpenSSL 3 reports most
 * cases as "DECODER routines::unsupported". */
static int
key_error(const char *path, struct ferr *e)
{
	char *buf = malloc(TLS_SNIFF_MAX + 1);
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int r;

	if (buf != NULL && f != NULL)
		n = fread(buf, 1, TLS_SNIFF_MAX, f);
	if (f != NULL)
		fclose(f);
	if (buf == NULL)
		return ferr_set(e, FERR_NOMEM, "TLS: out of memory");
	buf[n] = '\0';
	if (strstr(buf, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL ||
	    strstr(buf, "Proc-Type: 4,ENCRYPTED") != NULL)
		r = ferr_set(e, FERR_TLS, "TLS: key file '%s': the key is encrypted; "
		    "ferry needs an unencrypted key (mode 0600)", path);
	else if (strstr(buf, "PRIVATE KEY-----") == NULL)
		r = ferr_set(e, FERR_TLS, "TLS: key file '%s': no PEM private key in it%s",
		    path, strstr(buf, "-----BEGIN CERTIFICATE-----") != NULL ?
		    " (it holds a certificate)" : "");
	else
		r = ferr_set(e, FERR_TLS, "TLS: key file '%s': cannot load: %s", path,
		    ossl_reason(NULL));
	OPENSSL_cleanse(buf, n);  /* it may have held key bytes */
	free(buf);
	return r;
}

/* Describe a failure to load PEM content from path. */
static int
load_error(const char *what, const char *path, struct ferr *e)
{
	unsigned long code;
	const char *why = ossl_reason(&code);
	int lib = ERR_GET_LIB(code), reason = ERR_GET_REASON(code);

	if (lib == ERR_LIB_PEM && reason == PEM_R_NO_START_LINE)
		return ferr_set(e, FERR_TLS, "TLS: %s '%s': no PEM certificate in it",
		    what, path);
	if (lib == ERR_LIB_SSL && (reason == SSL_R_EE_KEY_TOO_SMALL ||
	    reason == SSL_R_CA_KEY_TOO_SMALL || reason == SSL_R_CA_MD_TOO_WEAK))
		return ferr_set(e, FERR_TLS, "TLS: %s '%s': key or signature too weak "
		    "for security level %d (%s)", what, path, TLS_SECURITY_LEVEL, why);
	return ferr_set(e, FERR_TLS, "TLS: %s '%s': cannot load: %s", what, path, why);
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
		return load_error("certificate file", o->cert_file, e);

	if (SSL_CTX_use_PrivateKey_file(c->ssl_ctx, o->key_file, SSL_FILETYPE_PEM) != 1) {
		const char *why = ossl_reason(&code);

		if (ERR_GET_LIB(code) == ERR_LIB_X509 &&
		    (ERR_GET_REASON(code) == X509_R_KEY_VALUES_MISMATCH ||
		    ERR_GET_REASON(code) == X509_R_KEY_TYPE_MISMATCH))
			return ferr_set(e, FERR_TLS, "TLS: key file '%s' does not match "
			    "certificate '%s' (%s)", o->key_file, o->cert_file, why);
		return key_error(o->key_file, e);
	}
	if (SSL_CTX_check_private_key(c->ssl_ctx) != 1)
		return ferr_set(e, FERR_TLS, "TLS: key file '%s' does not match "
		    "certificate '%s' (%s)", o->key_file, o->cert_file, ossl_reason(NULL));

	if (SSL_CTX_load_verify_locations(c->ssl_ctx, o->ca_file, NULL) != 1)
		return load_error("CA file", o->ca_file, e);
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
	    (c->is_server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), verify_cb);
	SSL_CTX_set_verify_depth(ctx, TLS_VERIFY_DEPTH);
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
	struct tls_ctx *c = NULL;
	int r = FERR_INTERNAL;

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

	ERR_clear_error();
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		r = ferr_set(e, FERR_NOMEM, "TLS: out of memory");
		goto out;
	}
	c->is_server = is_server != 0;
	if (!is_empty(o->peer_name) && (c->peer_name = strdup(o->peer_name)) == NULL) {
		r = ferr_set(e, FERR_NOMEM, "TLS: out of memory");
		goto out;
	}
	c->ssl_ctx = SSL_CTX_new(is_server ? TLS_server_method() : TLS_client_method());
	if (c->ssl_ctx == NULL) {
		r = ferr_set(e, FERR_TLS, "TLS: cannot make a context: %s", ossl_reason(NULL));
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
		ferr_set(e, FERR_NOMEM, "TLS: cannot make a connection: %s", ossl_reason(NULL));
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
	SSL_set_info_callback(ssl, info_cb);
	if (c->peer_name != NULL) {
		snprintf(tc->expected, sizeof(tc->expected), "%s", c->peer_name);
		if (!set_expected_name(ssl, c->peer_name) ||
		    (!c->is_server && !is_ip_literal(c->peer_name) &&
		    SSL_set_tlsext_host_name(ssl, c->peer_name) != 1)) {
			ferr_set(e, FERR_TLS, "TLS: cannot expect peer name '%s': %s",
			    c->peer_name, ossl_reason(NULL));
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

static const char *
peer_role(const struct tls_conn *tc, int is_server)
{
	return (tc != NULL ? tc->is_server : is_server) ? "client" : "server";
}

static const char *
version_name(int v)
{
	switch (v) {
	case TLS1_3_VERSION: return "TLS 1.3";
	case TLS1_2_VERSION: return "TLS 1.2";
	case TLS1_1_VERSION: return "TLS 1.1";
	case TLS1_VERSION: return "TLS 1.0";
	case SSL3_VERSION: return "SSL 3.0";
	default: return "an old SSL/TLS version";
	}
}

/* Our check of the peer's certificate failed: say which certificate and
 * why, from what verify_cb recorded (or the bare verify result). */
static int
verify_error(SSL *ssl, const char *pfx, struct ferr *e)
{
	const struct tls_conn *tc = conn_of(ssl);
	const char *role = peer_role(tc, SSL_is_server(ssl));
	int err = tc != NULL && tc->verify_err != 0 ? tc->verify_err :
	    (int)SSL_get_verify_result(ssl);
	const char *why = X509_verify_cert_error_string(err);
	char who[TLS_NAME_MAX + 48];

	if (tc == NULL || tc->subject[0] == '\0')
		snprintf(who, sizeof(who), "%s certificate", role);
	else if (tc->verify_depth == 0)
		snprintf(who, sizeof(who), "%s certificate '%s'", role, tc->subject);
	else
		snprintf(who, sizeof(who), "%s's CA certificate '%s'", role, tc->subject);

	switch (err) {
	case X509_V_ERR_HOSTNAME_MISMATCH:
	case X509_V_ERR_IP_ADDRESS_MISMATCH:
		return ferr_set(e, FERR_TLS, "%s: %s name '%s' does not match expected '%s'",
		    pfx, role, tc != NULL ? tc->subject : "?", tc != NULL ? tc->expected : "?");
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_SIGNATURE_FAILURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
		return ferr_set(e, FERR_TLS, "%s: %s is not signed by our CA (%s)", pfx, who, why);
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return ferr_set(e, FERR_TLS, "%s: %s has expired (not valid after %s)",
		    pfx, who, tc != NULL && tc->date[0] ? tc->date : "?");
	case X509_V_ERR_CERT_NOT_YET_VALID:
		return ferr_set(e, FERR_TLS, "%s: %s is not yet valid (not before %s; "
		    "check both clocks)", pfx, who, tc != NULL && tc->date[0] ? tc->date : "?");
	case X509_V_ERR_INVALID_PURPOSE:
		return ferr_set(e, FERR_TLS, "%s: %s is not for TLS %s use "
		    "(extendedKeyUsage)", pfx, who, role);
	case X509_V_ERR_CERT_CHAIN_TOO_LONG:
	case X509_V_ERR_PATH_LENGTH_EXCEEDED:
		return ferr_set(e, FERR_TLS, "%s: %s: chain longer than %d (%s)",
		    pfx, who, TLS_VERIFY_DEPTH, why);
	case X509_V_ERR_EE_KEY_TOO_SMALL:
	case X509_V_ERR_CA_KEY_TOO_SMALL:
	case X509_V_ERR_CA_MD_TOO_WEAK:
		return ferr_set(e, FERR_TLS, "%s: %s uses a key or signature too weak "
		    "for security level %d (%s)", pfx, who, TLS_SECURITY_LEVEL, why);
	default:
		return ferr_set(e, FERR_TLS, "%s: %s rejected: %s", pfx, who, why);
	}
}

/* RFC 8446 section 6 names; OpenSSL 3.0's own strings predate TLS 1.3
 * ("unknown" for certificate_required). */
static const struct {
	int alert;
	const char *name;
} alert_names[] = {
	{ 0, "close_notify" }, { 10, "unexpected_message" }, { 20, "bad_record_mac" },
	{ 22, "record_overflow" }, { 40, "handshake_failure" }, { 42, "bad_certificate" },
	{ 43, "unsupported_certificate" }, { 44, "certificate_revoked" },
	{ 45, "certificate_expired" }, { 46, "certificate_unknown" },
	{ 47, "illegal_parameter" }, { 48, "unknown_ca" }, { 49, "access_denied" },
	{ 50, "decode_error" }, { 51, "decrypt_error" }, { 70, "protocol_version" },
	{ 71, "insufficient_security" }, { 80, "internal_error" },
	{ 86, "inappropriate_fallback" }, { 90, "user_canceled" },
	{ 109, "missing_extension" }, { 110, "unsupported_extension" },
	{ 112, "unrecognized_name" }, { 116, "certificate_required" },
	{ 120, "no_application_protocol" },
};

static const char *
alert_name(int alert)
{
	size_t i;

	for (i = 0; i < sizeof(alert_names) / sizeof(alert_names[0]); i++)
		if (alert_names[i].alert == alert)
			return alert_names[i].name;
	return "unknown";
}

/* The peer refused us with a TLS alert (reason SSL_AD_REASON_OFFSET +
 * alert number): translate the common ones.  Certificate refusals are
 * handshake failures even when, in TLS 1.3, a client only hears of them
 * after its side of the handshake is done. */
static int
alert_error(SSL *ssl, int alert, const char *pfx, struct ferr *e)
{
	const char *role = peer_role(conn_of(ssl), SSL_is_server(ssl));
	const char *name = alert_name(alert);

	switch (alert) {
	case SSL_AD_UNKNOWN_CA:
		return ferr_set(e, FERR_TLS, "TLS handshake: %s rejected our certificate: "
		    "not signed by a CA it trusts (alert %s)", role, name);
	case SSL_AD_BAD_CERTIFICATE:
	case SSL_AD_UNSUPPORTED_CERTIFICATE:
	case SSL_AD_CERTIFICATE_REVOKED:
	case SSL_AD_CERTIFICATE_UNKNOWN:
		return ferr_set(e, FERR_TLS, "TLS handshake: %s rejected our certificate "
		    "(alert %s: wrong name, dates or usage; the %s's log says which)",
		    role, name, role);
	case SSL_AD_CERTIFICATE_EXPIRED:
		return ferr_set(e, FERR_TLS, "TLS handshake: %s rejected our certificate "
		    "as expired (alert %s)", role, name);
	case SSL_AD_CERTIFICATE_REQUIRED:
		return ferr_set(e, FERR_TLS, "TLS handshake: %s requires a certificate "
		    "and we sent none (alert %s)", role, name);
	case SSL_AD_PROTOCOL_VERSION:
		return ferr_set(e, FERR_TLS, "TLS handshake: %s refused our TLS version; "
		    "TLS 1.3 is required on both sides (alert %s)", role, name);
	case SSL_AD_HANDSHAKE_FAILURE:
	case SSL_AD_INSUFFICIENT_SECURITY:
		return ferr_set(e, FERR_TLS, "TLS handshake: %s found no cipher suite, "
		    "group or signature algorithm in common (alert %s)", role, name);
	case SSL_AD_DECRYPT_ERROR:
		return ferr_set(e, FERR_TLS, "TLS handshake: %s could not verify our "
		    "handshake signature (alert %s)", role, name);
	default:
		return ferr_set(e, FERR_TLS, "%s: %s sent alert %s", pfx, role, name);
	}
}

/* The connection ended without a close_notify. */
static int
eof_error(SSL *ssl, const char *pfx, struct ferr *e)
{
	BIO *rbio = SSL_get_rbio(ssl);

	if (rbio == NULL || BIO_number_read(rbio) == 0)
		return ferr_set(e, FERR_NET, "%s: connection closed by peer before it "
		    "sent anything", pfx);
	if (!handshake_done(ssl))
		return ferr_set(e, FERR_TLS, "%s: connection closed by peer mid-handshake", pfx);
	return ferr_set(e, FERR_TLS, "%s: connection closed by peer without "
	    "close_notify (stream truncated)", pfx);
}

/* One OpenSSL error code from the SSL library, in words. */
static int
ssl_reason_error(SSL *ssl, unsigned long code, const char *pfx, struct ferr *e)
{
	int reason = ERR_GET_REASON(code);
	const char *why = ERR_reason_error_string(code);
	const char *role = peer_role(conn_of(ssl), SSL_is_server(ssl));

	if (why == NULL)
		why = "unknown reason";
	if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
		return alert_error(ssl, reason - SSL_AD_REASON_OFFSET, pfx, e);

	switch (reason) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
		return verify_error(ssl, pfx, e);
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
		return ferr_set(e, FERR_TLS, "%s: %s sent no certificate", pfx, role);
	case SSL_R_UNSUPPORTED_PROTOCOL:
	case SSL_R_WRONG_SSL_VERSION:
	case SSL_R_UNSUPPORTED_SSL_VERSION:
	case SSL_R_VERSION_TOO_LOW:
		/* A TLS 1.3-only server that found no version in common knows
		 * the client's best offer was the legacy version field.  (A
		 * TLS 1.3 client also puts 1.2 there, so only then.) */
		if (SSL_is_server(ssl) && SSL_get_min_proto_version(ssl) == TLS1_3_VERSION &&
		    SSL_client_version(ssl) > 0 && SSL_client_version(ssl) < TLS1_3_VERSION)
			return ferr_set(e, FERR_TLS, "%s: client offered %s; TLS 1.3 is required",
			    pfx, version_name(SSL_client_version(ssl)));
		return ferr_set(e, FERR_TLS, "%s: %s does not support TLS 1.3, which is "
		    "required (%s)", pfx, role, why);
	case SSL_R_WRONG_VERSION_NUMBER:
	case SSL_R_HTTP_REQUEST:
	case SSL_R_HTTPS_PROXY_REQUEST:
	case SSL_R_UNKNOWN_PROTOCOL:
	case SSL_R_PACKET_LENGTH_TOO_LONG:
	case SSL_R_RECORD_LENGTH_MISMATCH:
		return ferr_set(e, FERR_TLS, "%s: %s does not speak TLS (%s)", pfx, role, why);
	case SSL_R_NO_SHARED_CIPHER:
	case SSL_R_NO_SUITABLE_KEY_SHARE:
	case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
	case SSL_R_NO_SHARED_GROUPS:
		return ferr_set(e, FERR_TLS, "%s: no cipher suite, group or signature "
		    "algorithm in common with the %s (%s)", pfx, role, why);
	case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
		return ferr_set(e, FERR_TLS, "%s: a record failed authentication: data "
		    "corrupted or altered in transit (%s)", pfx, why);
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
	case SSL_R_UNEXPECTED_EOF_WHILE_READING:
		return eof_error(ssl, pfx, e);
#endif
	default:
		return ferr_set(e, FERR_TLS, "%s: %s", pfx, why);
	}
}

int
tls_bev_error(struct bufferevent *bev, struct ferr *e)
{
	int sock_err = errno;     /* libevent restores it for deferred callbacks */
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	unsigned long popped[8], code = 0, x;
	int n = 0, i, saw_syscall = 0;
	const char *pfx;

	if (ssl == NULL)
		return ferr_set(e, FERR_NET, "connection error: %s",
		    sock_err != 0 ? strerror(sock_err) : "unknown");
	pfx = handshake_done(ssl) ? "TLS" : "TLS handshake";

	/* bufferevent_get_openssl_error pops the newest first; libevent keeps
	 * at most three, oldest first: SSL_get_error()'s value, then the
	 * queue.  The oldest real code is the cause; prefer the SSL library's. */
	while (n < (int)(sizeof(popped) / sizeof(popped[0])) &&
	    (x = bufferevent_get_openssl_error(bev)) != 0)
		popped[n++] = x;
	for (i = n - 1; i >= 0; i--) {
		x = popped[i];
		if (x < TLS_PSEUDO_ERR_MAX) {
			saw_syscall |= x == SSL_ERROR_SYSCALL;
			continue;
		}
		if (code == 0 || (ERR_GET_LIB(code) != ERR_LIB_SSL &&
		    ERR_GET_LIB(x) == ERR_LIB_SSL))
			code = x;
	}

	if (code == 0) {
		if (SSL_get_shutdown(ssl) & SSL_RECEIVED_SHUTDOWN)
			return ferr_set(e, FERR_NET, "TLS: connection closed by peer");
		if (saw_syscall && sock_err != 0)
			return ferr_set(e, FERR_NET, "%s: connection failed: %s", pfx,
			    strerror(sock_err));
		if (saw_syscall)      /* EOF, as OpenSSL 1.1 reports it */
			return eof_error(ssl, pfx, e);
		if (sock_err != 0)
			return ferr_set(e, FERR_NET, "%s: connection failed: %s", pfx,
			    strerror(sock_err));
		return ferr_set(e, FERR_TLS, "%s: connection failed (no reason recorded)", pfx);
	}
#ifdef ERR_SYSTEM_ERROR
	if (ERR_SYSTEM_ERROR(code))
		return ferr_set(e, FERR_NET, "%s: connection failed: %s", pfx,
		    strerror(ERR_GET_REASON(code)));
#endif
	if (ERR_GET_LIB(code) == ERR_LIB_SSL)
		return ssl_reason_error(ssl, code, pfx, e);
	return ferr_set(e, FERR_TLS, "%s: %s", pfx, ERR_reason_error_string(code) != NULL ?
	    ERR_reason_error_string(code) : "unknown OpenSSL error");
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
	cert_name(x, buf, len);
	X509_free(x);
	return buf[0] != '\0' ? 0 : FERR_TLS;
}

int
tls_bev_export(struct bufferevent *bev, const char *label, const void *context,
    size_t context_len, void *out, size_t out_len)
{
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	int ok;

	if (ssl == NULL || label == NULL || !SSL_is_init_finished(ssl))
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

	if (ssl == NULL || !SSL_is_init_finished(ssl))
		return FERR_TLS;
	if (evbuffer_get_length(bufferevent_get_output(bev)) != 0)
		return FERR_INTERNAL;
	ERR_clear_error();
	r = SSL_shutdown(ssl);
	if (r >= 0)
		return 0;
	r = SSL_get_error(ssl, r);
	ERR_clear_error();
	return r == SSL_ERROR_WANT_WRITE ? FERR_NEED_MORE : FERR_TLS;
}
