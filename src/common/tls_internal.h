/* Private to tls.c and tls_explain.c, the only files that include OpenSSL
 * headers: the per-connection record both halves share, and what each
 * half offers the other.  tls.c sets connections up and runs them;
 * tls_explain.c records what the certificate check saw and turns
 * failures into words. */
#ifndef FERRY_TLS_INTERNAL_H
#define FERRY_TLS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "err.h"
#include "tls.h"

#define TLS_VERIFY_DEPTH 4        /* certificates above the leaf */
#define TLS_SECURITY_LEVEL 2      /* at least 112-bit keys, SHA-256 */
#define TLS_NAME_MAX 128          /* a name kept for messages, with NUL */
#define TLS_DATE_MAX 32
#define TLS_PIN_HASH_LEN 32       /* SHA-256 of a SubjectPublicKeyInfo */
#define TLS_PINS_MAX 2            /* struct tls_opts pins[] */

struct evbuffer_cb_entry;

/* Per connection, hung off the SSL (freed with it).  The first fields are
 * what the certificate check saw, so tls_bev_error can name the
 * certificate and the date after libevent has reduced the failure to
 * "certificate verify failed". */
struct tls_conn {
	int is_server;
	int handshake_done;       /* our side finished the handshake */
	int verify_err;           /* first X509_V_ERR_*, 0 if none */
	int verify_depth;         /* 0 is the peer's own certificate */
	char subject[TLS_NAME_MAX];   /* the certificate at that depth */
	char date[TLS_DATE_MAX];      /* its notBefore/notAfter, date errors */
	char expected[TLS_NAME_MAX];  /* the peer name we asked for, or "" */

	/* Pinning: the peer's leaf key must hash to one of these. */
	int npins;
	unsigned char pins[TLS_PINS_MAX][TLS_PIN_HASH_LEN];
	char pin_refused[TLS_PIN_BUFLEN]; /* the peer's pin when none matched */

	/* Key updates (KeyUpdate messages, counted by the message callback). */
	uint64_t ku_sent;
	uint64_t ku_received;
	int ku_wanted;            /* asked for; OpenSSL could not take it yet */
	struct evbuffer_cb_entry *ku_retry;   /* on the output buffer, or NULL */
};

/* tls.c */
struct tls_conn *tls_conn_of(const SSL *ssl);

/* tls_explain.c: callbacks that record for the explanations. */
int tls_verify_cb(int ok, X509_STORE_CTX *xs);
void tls_info_cb(const SSL *ssl, int where, int ret);

/* tls_explain.c: a name for x in messages (subject CN, else its first
 * subjectAltName), printable ASCII only. */
void tls_cert_name(X509 *x, char *buf, size_t len);

/* tls_explain.c: loading the files. */
const char *tls_ossl_reason(unsigned long *codep);
int tls_load_error(const char *what, const char *path, struct ferr *e);
int tls_key_error(const char *path, struct ferr *e);

#endif
