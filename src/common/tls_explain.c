/* The error-explaining half of tls.c: what the certificate check saw,
 * and every failure (loading files, the handshake, a connection) in words
 * that name the certificate, the peer and the reason.  See tls.h for the
 * messages promised and tls_internal.h for what is shared. */
#include "tls_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#define TLS_SNIFF_MAX 65536       /* bytes of a key file read to explain errors */

/* libevent 2.1 keeps SSL_get_error()'s result (SSL_ERROR_SSL,
 * SSL_ERROR_SYSCALL, ...) in the same list as real OpenSSL error codes.
 * Real codes always carry a library number above bit 23 (or the system
 * error flag), so anything below is one of those small values. */
#define TLS_PSEUDO_ERR_MAX (1UL << 23)

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
void
tls_cert_name(X509 *x, char *buf, size_t len)
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
int
tls_verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct tls_conn *tc = tls_conn_of(ssl);
	X509 *cert;

	if (ok || tc == NULL || tc->verify_err != 0)
		return ok;
	tc->verify_err = X509_STORE_CTX_get_error(xs);
	tc->verify_depth = X509_STORE_CTX_get_error_depth(xs);
	cert = X509_STORE_CTX_get_current_cert(xs);
	if (cert == NULL)
		return ok;
	tls_cert_name(cert, tc->subject, sizeof(tc->subject));
	if (tc->verify_err == X509_V_ERR_CERT_HAS_EXPIRED)
		format_date(X509_get0_notAfter(cert), tc->date, sizeof(tc->date));
	else if (tc->verify_err == X509_V_ERR_CERT_NOT_YET_VALID)
		format_date(X509_get0_notBefore(cert), tc->date, sizeof(tc->date));
	return ok;
}

void
tls_info_cb(const SSL *ssl, int where, int ret)
{
	struct tls_conn *tc = tls_conn_of(ssl);

	(void)ret;
	if (tc != NULL && (where & SSL_CB_HANDSHAKE_DONE))
		tc->handshake_done = 1;
}

/* OpenSSL errors become fatal after the fact, so SSL_is_init_finished()
 * is false by the time tls_bev_error looks; remember the moment instead. */
static int
handshake_done(const SSL *ssl)
{
	const struct tls_conn *tc = tls_conn_of(ssl);

	return tc != NULL ? tc->handshake_done : SSL_is_init_finished(ssl);
}

/* The most telling OpenSSL error left by a failed load: the first one, as
 * "reason" text. */
const char *
tls_ossl_reason(unsigned long *codep)
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

/* Why a key file did not load, from its text: OpenSSL 3 reports most
 * cases as "DECODER routines::unsupported". */
int
tls_key_error(const char *path, struct ferr *e)
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
		    tls_ossl_reason(NULL));
	OPENSSL_cleanse(buf, n);  /* it may have held key bytes */
	free(buf);
	return r;
}

/* Describe a failure to load PEM content from path. */
int
tls_load_error(const char *what, const char *path, struct ferr *e)
{
	unsigned long code;
	const char *why = tls_ossl_reason(&code);
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
 * why, from what tls_verify_cb or the pin check recorded (or the bare
 * verify result). */
static int
verify_error(SSL *ssl, const char *pfx, struct ferr *e)
{
	const struct tls_conn *tc = tls_conn_of(ssl);
	const char *role = peer_role(tc, SSL_is_server(ssl));
	int err = tc != NULL && tc->verify_err != 0 ? tc->verify_err :
	    (int)SSL_get_verify_result(ssl);
	const char *why = X509_verify_cert_error_string(err);
	char who[TLS_NAME_MAX + 48];

	/* The chain was good; the pin check after it was not. */
	if (tc != NULL && tc->pin_refused[0] != '\0')
		return ferr_set(e, FERR_TLS, "%s: %s public key %s matches no pinned key",
		    pfx, role, tc->pin_refused);
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
	const char *role = peer_role(tls_conn_of(ssl), SSL_is_server(ssl));
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
		    "(alert %s: wrong name, dates, usage or pinned key; the %s's log "
		    "says which)",
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
	case SSL_AD_BAD_RECORD_MAC:
		return ferr_set(e, FERR_TLS_INTEGRITY, "%s: %s found a record that failed "
		    "authentication: data corrupted or altered in transit (alert %s)", pfx, role, name);
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
	const char *role = peer_role(tls_conn_of(ssl), SSL_is_server(ssl));

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
		return ferr_set(e, FERR_TLS_INTEGRITY, "%s: a record failed authentication: data "
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
