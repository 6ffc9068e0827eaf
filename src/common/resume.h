/* Resume proofs (proto/PROTOCOL.md 4.12): a sender proves on a new TLS
 * connection that it owns a session, without the secret ever crossing the
 * wire and without a proof being reusable on another connection.
 *
 *   key   = TLS exporter of the session's first connection,
 *           label FERRY_RESUME_KEY_LABEL, context session_id, 32 bytes
 *   bind  = TLS exporter of the new connection,
 *           label FERRY_RESUME_BIND_LABEL, context session_id, 32 bytes
 *   proof = HMAC-SHA256(key, FERRY_RESUME_PROOF_PREFIX || session_id || bind)
 */
#ifndef FERRY_RESUME_H
#define FERRY_RESUME_H

#include <stdint.h>

#include "err.h"
#include "ferry_proto.h"

struct bufferevent;

/* Both sides, on the first connection once the session id is known. */
int resume_key_derive(struct bufferevent *bev, const uint8_t sid[FERRY_SESSION_ID_LEN],
    uint8_t key[32], struct ferr *e) FERRY_MUST_CHECK;
/* The proof for this connection (sender: to send; receiver: to compare). */
int resume_proof(struct bufferevent *bev, const uint8_t key[32],
    const uint8_t sid[FERRY_SESSION_ID_LEN], uint8_t proof[FERRY_PROOF_LEN],
    struct ferr *e) FERRY_MUST_CHECK;
/* Pure part, for tests and fuzzing: proof from key, session id and the
 * connection's binding value. */
int resume_proof_from(const uint8_t key[32], const uint8_t sid[FERRY_SESSION_ID_LEN],
    const uint8_t bind[32], uint8_t proof[FERRY_PROOF_LEN]) FERRY_MUST_CHECK;
/* Constant-time comparison of two proofs: 1 when equal. */
int resume_proof_equal(const uint8_t a[FERRY_PROOF_LEN], const uint8_t b[FERRY_PROOF_LEN]);

#endif
