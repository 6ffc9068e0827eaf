/* Fuzz target: resume (proto/PROTOCOL.md 4.12, 4.13): the RESUME and
 * RESUMED payload decoders, the proof construction resume_proof_from (over
 * tls_hmac_sha256) and the constant-time comparisons.
 *
 * Input layout:
 *   u8 l1, u8 l2     lengths of the two payloads (cut to what is there)
 *   bytes[l1]        a RESUME payload
 *   bytes[l2]        a RESUMED payload
 *   bytes            key material: the first 32 bytes are the resume key,
 *                    the next 32 the connection binding (zero-padded);
 *                    all of it is also used as an HMAC key of any length
 *
 * Checks: the decoders' promises and round trips; the proof is what the
 * spec builds (HMAC-SHA256 over "ferry resume v1" || session_id || bind,
 * assembled here independently); it changes with any bit of the session
 * id or binding; a received proof is accepted exactly when it equals the
 * computed one; tls_ct_equal agrees with memcmp for every length. */
#include "fuzz_common.h"

#include "resume.h"
#include "tls.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct msg_resume rm;
	struct msg_resumed rd;
	struct ferr e = { 0 };
	uint8_t key[32] = { 0 }, bind[32] = { 0 }, proof[FERRY_PROOF_LEN], again[FERRY_PROOF_LEN];
	uint8_t *p1, *p2, *rest;
	size_t l1, l2, nrest;
	int rc1, rc2;

	if (size < 2)
		return 0;
	l1 = data[0];
	l2 = data[1];
	data += 2;
	size -= 2;
	if (l1 > size)
		l1 = size;
	if (l2 > size - l1)
		l2 = size - l1;
	p1 = fz_dup(data, l1);
	p2 = fz_dup(data + l1, l2);
	nrest = size - l1 - l2;
	rest = fz_dup(data + l1 + l2, nrest);
	memcpy(key, rest, nrest < 32 ? nrest : 32);
	if (nrest > 32)
		memcpy(bind, rest + 32, nrest - 32 < 32 ? nrest - 32 : 32);

	/* RESUMED */
	rc2 = fz_check_payload(FT_RESUMED, p2, l2, &e);
	memset(&rd, 0, sizeof(rd));
	FZ_CHECK(msg_resumed_decode(p2, l2, &rd, &e) == rc2);
	if (rc2 == 0)
		FZ_CHECK(rd.state_offset <= FERRY_STATE_SIZE_MAX && l2 == 20);

	/* RESUME, then its proof */
	rc1 = fz_check_payload(FT_RESUME, p1, l1, &e);
	memset(&rm, 0, sizeof(rm));
	FZ_CHECK(msg_resume_decode(p1, l1, &rm, &e) == rc1);
	if (rc1 == 0) {
		static const char prefix[] = FERRY_RESUME_PROOF_PREFIX;
		uint8_t msg[sizeof(prefix) - 1 + FERRY_SESSION_ID_LEN + 32], ref[32];
		size_t pl = sizeof(prefix) - 1;
		int equal;

		FZ_CHECK(l1 == 60);
		FZ_CHECK(rm.max_frame >= FERRY_MAX_FRAME_MIN && rm.max_frame <= FERRY_MAX_FRAME_LIMIT);
		FZ_CHECK(resume_proof_from(key, rm.session_id, bind, proof) == 0);
		FZ_CHECK(resume_proof_from(key, rm.session_id, bind, again) == 0);
		FZ_CHECK(memcmp(proof, again, sizeof(proof)) == 0);

		memcpy(msg, prefix, pl);
		memcpy(msg + pl, rm.session_id, FERRY_SESSION_ID_LEN);
		memcpy(msg + pl + FERRY_SESSION_ID_LEN, bind, 32);
		FZ_CHECK(tls_hmac_sha256(key, sizeof(key), msg, sizeof(msg), ref) == 0);
		FZ_CHECK(memcmp(ref, proof, sizeof(ref)) == 0);

		/* The receiver's decision on the proof it was sent. */
		equal = resume_proof_equal(proof, rm.proof);
		FZ_CHECK(equal == (memcmp(proof, rm.proof, FERRY_PROOF_LEN) == 0));
		FZ_CHECK(resume_proof_equal(proof, again) == 1);

		/* Bound to the session and the connection: flip one bit of
		 * each (chosen by the input) and the proof changes. */
		{
			uint8_t sid2[FERRY_SESSION_ID_LEN], bind2[32];
			unsigned bit = rm.proof[0];

			memcpy(sid2, rm.session_id, sizeof(sid2));
			sid2[(bit / 8) % sizeof(sid2)] ^= (uint8_t)(1u << (bit % 8));
			FZ_CHECK(resume_proof_from(key, sid2, bind, again) == 0);
			FZ_CHECK(resume_proof_equal(proof, again) == 0);
			memcpy(bind2, bind, sizeof(bind2));
			bind2[(bit / 8) % sizeof(bind2)] ^= (uint8_t)(1u << (bit % 8));
			FZ_CHECK(resume_proof_from(key, rm.session_id, bind2, again) == 0);
			FZ_CHECK(resume_proof_equal(proof, again) == 0);
		}
	}

	/* HMAC with a key of any length (longer than a block is hashed
	 * first) is deterministic; an empty message is allowed. */
	{
		uint8_t h1[32], h2[32];

		FZ_CHECK(tls_hmac_sha256(rest, nrest, p1, l1, h1) == 0);
		FZ_CHECK(tls_hmac_sha256(rest, nrest, p1, l1, h2) == 0);
		FZ_CHECK(memcmp(h1, h2, 32) == 0);
		FZ_CHECK(tls_hmac_sha256(nrest ? rest : NULL, nrest, NULL, 0, h1) == 0);
	}

	/* tls_ct_equal agrees with memcmp at every length. */
	{
		size_t n = l1 < l2 ? l1 : l2, k;

		for (k = 0; k <= n; k++)
			FZ_CHECK(tls_ct_equal(p1, p2, k) == (k == 0 || memcmp(p1, p2, k) == 0));
		FZ_CHECK(tls_ct_equal(p1, p1, l1) == 1);
	}

	free(rest);
	free(p2);
	free(p1);
	return 0;
}
