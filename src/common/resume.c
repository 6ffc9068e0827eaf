#include "resume.h"

#include <string.h>

#include "tls.h"

int
resume_key_derive(struct bufferevent *bev, const uint8_t sid[FERRY_SESSION_ID_LEN], uint8_t key[32],
    struct ferr *e)
{
	if (tls_bev_export(bev, FERRY_RESUME_KEY_LABEL, sid, FERRY_SESSION_ID_LEN, key, 32) != 0)
		return ferr_set(e, FERR_TLS, "resume key: TLS exporter failed");
	return 0;
}

int
resume_proof_from(const uint8_t key[32], const uint8_t sid[FERRY_SESSION_ID_LEN],
    const uint8_t bind[32], uint8_t proof[FERRY_PROOF_LEN])
{
	uint8_t msg[sizeof(FERRY_RESUME_PROOF_PREFIX) - 1 + FERRY_SESSION_ID_LEN + 32];
	size_t pl = sizeof(FERRY_RESUME_PROOF_PREFIX) - 1;

	memcpy(msg, FERRY_RESUME_PROOF_PREFIX, pl);
	memcpy(msg + pl, sid, FERRY_SESSION_ID_LEN);
	memcpy(msg + pl + FERRY_SESSION_ID_LEN, bind, 32);
	return tls_hmac_sha256(key, 32, msg, sizeof(msg), proof);
}

int
resume_proof(struct bufferevent *bev, const uint8_t key[32], const uint8_t sid[FERRY_SESSION_ID_LEN],
    uint8_t proof[FERRY_PROOF_LEN], struct ferr *e)
{
	uint8_t bind[32];

	if (tls_bev_export(bev, FERRY_RESUME_BIND_LABEL, sid, FERRY_SESSION_ID_LEN, bind, 32) != 0)
		return ferr_set(e, FERR_TLS, "resume proof: TLS exporter failed");
	if (resume_proof_from(key, sid, bind, proof) != 0)
		return ferr_set(e, FERR_TLS, "resume proof: HMAC failed");
	return 0;
}

int
resume_proof_equal(const uint8_t a[FERRY_PROOF_LEN], const uint8_t b[FERRY_PROOF_LEN])
{
	return tls_ct_equal(a, b, FERRY_PROOF_LEN);
}
