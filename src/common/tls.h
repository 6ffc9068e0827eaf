/* Mutual TLS 1.3 for ferry connections, over libevent bufferevents.
 *
 * This is the one place that knows about OpenSSL: tls.c and tls_explain.c
 * are the only files that include its headers.  The settings follow
 * RELIABILITY.md "TLS settings": TLS 1.3 only; both sides present a
 * certificate from the shared CA (the server requires one); the client
 * checks the server's name and refuses to start without one; optional
 * SHA-256 pins of the peer's public key (two, for rotation); no session
 * tickets, no 0-RTT; an EOF without a TLS close_notify is an error (a
 * truncated stream); security level 2 or more; verify depth 4.
 *
 * Debugging: when the SSLKEYLOGFILE environment variable is set,
 * tls_ctx_new appends the session secrets to that file (NSS key log
 * format, for Wireshark) and prints a warning to stderr.  It is off
 * otherwise. */
#ifndef FERRY_TLS_H
#define FERRY_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct bufferevent;
struct event_base;

/* Opaque: an OpenSSL context with the files loaded and checked. */
struct tls_ctx;

/* A pin is "sha256:" and 64 hex digits (either case; printed in lower
 * case): the SHA-256 of the DER SubjectPublicKeyInfo of a certificate's
 * key, the same as
 *   openssl x509 -in CERT.pem -noout -pubkey |
 *       openssl pkey -pubin -outform DER | sha256sum
 * TLS_PIN_LEN is its length; a buffer for one needs TLS_PIN_BUFLEN. */
#define TLS_PIN_LEN 71
#define TLS_PIN_BUFLEN (TLS_PIN_LEN + 1)

struct tls_opts {
	const char *cert_file;  /* PEM: our certificate (chain), required */
	const char *key_file;   /* PEM: its private key, unencrypted, required */
	const char *ca_file;    /* PEM: the CA(s) the peer's certificate must
	                         * chain to, required */
	/* Client: the name the server's certificate must carry (a DNS name
	 * matched against its subjectAltName, or an IP address); required.
	 * Server: if not NULL, the name the client's certificate must carry;
	 * NULL accepts any certificate from the CA. */
	const char *peer_name;
	/* Each NULL or a pin (see above).  With at least one set, the peer's
	 * own (leaf) certificate must, besides chaining to the CA and
	 * carrying the name, hold a key matching one of them; two allow a
	 * key rotation (old and new).  Either side may pin the other.
	 * Zero-initialise the struct so unused pins are NULL. */
	const char *pins[2];
};

/* Make a context for ferry-recv (is_server = 1) or ferry-send (0).
 * Loads and checks the three files; o and its strings are copied, so they
 * need not outlive the call.  On success *out owns the context; on failure
 * *out is NULL and e names the file and what is wrong with it.
 * Errors: FERR_USAGE (a file name missing, client without peer_name, a
 * malformed pin: "TLS: pin 'sha256:12' is not 'sha256:' and 64 hex
 * digits"; an empty string is malformed, not unset), FERR_IO (a file
 * cannot be read: "TLS: certificate file '/x.pem': No such file or
 * directory"), FERR_TLS (a file's contents: not PEM, key does not
 * match the certificate, key too weak, encrypted key), FERR_NOMEM. */
int tls_ctx_new(int is_server, const struct tls_opts *o, struct tls_ctx **out,
    struct ferr *e) FERRY_MUST_CHECK;

/* Release a context; NULL is a no-op.  Connections already made from it
 * keep working (OpenSSL counts references), but stop key logging. */
void tls_ctx_free(struct tls_ctx *c);

/* Wrap a connected (client) or accepted (server) socket in an OpenSSL
 * bufferevent on base and start the handshake.  Options are
 * BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS: on success the
 * bufferevent owns fd and bufferevent_free closes it.  The event callback
 * gets BEV_EVENT_CONNECTED when the handshake is done, or BEV_EVENT_ERROR
 * (then call tls_bev_error).  Returns NULL with e set on failure, leaving
 * fd open for the caller to close.
 *
 * OpenSSL writes with write(2): a process using this must ignore SIGPIPE,
 * or a peer that goes away kills it instead of giving BEV_EVENT_ERROR.
 *
 * Note (TLS 1.3): the client's handshake completes before the server has
 * checked the client's certificate, so a client may see
 * BEV_EVENT_CONNECTED and then, on its first read, BEV_EVENT_ERROR for the
 * server's refusal ("server rejected our certificate ...").  Do not treat
 * CONNECTED as "the server accepted us" until the server has spoken. */
struct bufferevent *tls_bev_new(struct tls_ctx *c, struct event_base *base,
    int fd, struct ferr *e);

/* After BEV_EVENT_ERROR or BEV_EVENT_EOF on a bufferevent from
 * tls_bev_new: fill e with why, in words, and return e->code.  Call it
 * first thing in the event callback (it reads errno for socket errors),
 * and only once per event (it consumes the bufferevent's saved errors).
 * Messages start "TLS handshake: " or "TLS: ", for example
 *   "TLS handshake: server certificate 'receiver' is not signed by our CA
 *    (unable to get local issuer certificate)"
 *   "TLS handshake: server name 'receiver' does not match expected 'other'"
 *   "TLS handshake: client sent no certificate"
 *   "TLS handshake: server rejected our certificate: not signed by a CA it
 *    trusts (alert unknown_ca)"
 *   "TLS handshake: server requires a certificate and we sent none (alert
 *    certificate_required)"
 *   "TLS handshake: server certificate 'receiver' has expired (not valid
 *    after 2020-02-01 00:00:00 UTC)"
 *   "TLS handshake: client offered TLS 1.2; TLS 1.3 is required"
 *   "TLS handshake: server public key sha256:5d41...9c2a matches no
 *    pinned key" (the full pin of the key it has)
 *   "TLS: connection closed by peer without close_notify (stream truncated)"
 * Returns FERR_TLS, or FERR_NET for a socket error, for a connection that
 * ended before the peer sent any byte, and for a clean close (the peer
 * sent close_notify; libevent reports that one as BEV_EVENT_EOF). */
int tls_bev_error(struct bufferevent *bev, struct ferr *e);

/* After BEV_EVENT_CONNECTED: the peer certificate's subject CN (or its
 * first subjectAltName when it has no CN), for logs.  Unprintable bytes
 * become '?'.  Returns 0, or FERR_TLS (buf set to "") when there is no
 * verified peer certificate or bev is not a TLS bufferevent. */
int tls_bev_peer_name(struct bufferevent *bev, char *buf, size_t len);

/* After BEV_EVENT_CONNECTED: out_len bytes of keying material bound to
 * this connection (RFC 8446 section 7.5 exporter, with context), the same
 * on both ends.  For binding resume proofs to the connection.  Returns 0,
 * or FERR_TLS before the handshake is done or on failure. */
int tls_bev_export(struct bufferevent *bev, const char *label,
    const void *context, size_t context_len, void *out, size_t out_len)
    FERRY_MUST_CHECK;

/* Send the TLS close_notify, so the peer sees a clean end of stream
 * (BEV_EVENT_EOF) rather than a truncation error.  libevent does not send
 * it on bufferevent_free, so call this once the output buffer is empty
 * (all frames handed to the socket), then free the bufferevent.  A key
 * update asked for and not yet sent goes out first.  Returns 0 when sent;
 * FERR_INTERNAL if output is still queued (nothing is sent: a
 * close_notify ahead of queued data would hide that data's loss);
 * FERR_NEED_MORE if the socket is full (try again shortly); FERR_TLS if
 * the connection is not open. */
int tls_bev_close_notify(struct bufferevent *bev) FERRY_MUST_CHECK;

/* Ask for a TLS 1.3 key update (RFC 8446 section 4.6.3) on a connected
 * bufferevent: this side sends a KeyUpdate (update_requested) before its
 * next record, switching its sending keys, and the peer answers with its
 * own KeyUpdate when it next writes.  Bytes already queued are neither
 * lost nor reordered; those written after the KeyUpdate use the new keys.
 * It is sent with the next write, or when this side next reads (OpenSSL
 * goes through its handshake code then); with nothing to write and
 * nothing arriving it waits.  OpenSSL refuses a request while a record is
 * half written on a full socket, or while a KeyUpdate is in progress;
 * then the request is kept and made as soon as the output buffer drains
 * past that record.  Requests made before the last one went out are
 * merged into it.  Returns 0; FERR_TLS if bev is not a TLS bufferevent
 * whose handshake is done, or the connection is closing (close_notify
 * sent or received); FERR_NOMEM. */
int tls_bev_key_update(struct bufferevent *bev) FERRY_MUST_CHECK;

/* KeyUpdate messages this side has sent on bev (its own requests and its
 * answers to the peer's) and received from the peer, since the handshake.
 * 0 for a bufferevent that is not from tls_bev_new. */
uint64_t tls_bev_key_updates(struct bufferevent *bev);
uint64_t tls_bev_key_updates_received(struct bufferevent *bev);

/* The pin (see TLS_PIN_LEN) of the first certificate in a PEM file, for
 * operators to put in a peer's configuration.  out gets the NUL-terminated
 * pin ("" on failure).  Returns 0; FERR_USAGE (outlen under
 * TLS_PIN_BUFLEN), FERR_IO (cannot open the file), FERR_TLS (no PEM
 * certificate in it), FERR_NOMEM. */
int tls_pin_of_cert_file(const char *pem_path, char *out, size_t outlen,
    struct ferr *e) FERRY_MUST_CHECK;

/* HMAC-SHA256 (RFC 2104) of msg under key, into out; for resume proofs.
 * key or msg may be NULL when its length is 0.  Returns 0, or
 * FERR_INTERNAL (a length over INT_MAX, or OpenSSL failed). */
int tls_hmac_sha256(const void *key, size_t keylen, const void *msg,
    size_t msglen, uint8_t out[32]) FERRY_MUST_CHECK;

/* 1 if the n bytes at a and b are equal, else 0, in time that depends
 * only on n (for MACs and proofs; never memcmp those).  n = 0 gives 1. */
int tls_ct_equal(const void *a, const void *b, size_t n) FERRY_MUST_CHECK;

#endif
