/* Message payload codecs (proto/PROTOCOL.md section 4): host structs,
 * decoded field by field from a bounded reader, every field checked
 * against the limits in ferry_proto.h.  Pure functions, no I/O, no
 * allocation (except none: callers own every struct). */
#ifndef FERRY_MSG_H
#define FERRY_MSG_H

#include <stdint.h>

#include "err.h"
#include "ferry_proto.h"
#include "rd.h"
#include "wr.h"

struct msg_hello {              /* 4.1 HELLO, sender -> receiver */
	uint16_t version;
	uint32_t caps;
	uint32_t max_frame;         /* largest payload the sender accepts */
	uint64_t hash_seed;         /* key for every page hash of the session */
};

struct msg_welcome {            /* 4.2 WELCOME, receiver -> sender */
	uint16_t version;
	uint32_t caps;
	uint32_t max_frame;
	uint8_t session_id[16];
};

struct dev_desc {
	uint32_t id;                /* unique in the manifest, not 0 */
	uint8_t kind;               /* enum ferry_device_kind */
	uint32_t unit;              /* page or block size in bytes */
	uint64_t size;              /* bytes */
	uint64_t src_dev;           /* st_dev and st_ino of the source file, */
	uint64_t src_ino;           /* for the same-file check (0 = unknown) */
	char name[FERRY_NAME_MAX + 1];
};

/* Number of units (pages or blocks) in a device, and the length of one. */
static inline uint64_t dev_units(const struct dev_desc *d)
{
	return d->size / d->unit + (d->size % d->unit != 0);
}
static inline uint32_t dev_unit_len(const struct dev_desc *d, uint64_t index)
{
	uint64_t off = index * d->unit;

	return d->size - off < d->unit ? (uint32_t)(d->size - off) : d->unit;
}

struct msg_manifest {           /* 4.3 MANIFEST */
	uint32_t ndev;
	uint64_t state_size;        /* bytes of device state sent at switchover */
	char state_name[FERRY_NAME_MAX + 1]; /* "" when state_size is 0 */
	struct dev_desc dev[FERRY_MAX_DEVICES];
};

struct msg_accept {             /* 4.4 ACCEPT */
	uint64_t next_seq;          /* sequence number expected next */
};

struct msg_text {               /* 4.5 REFUSE (with device) and 4.12 ERROR */
	uint32_t code;              /* wire code: -ferr_code */
	uint32_t device;            /* REFUSE only: device id or 0 */
	char text[FERRY_TEXT_MAX + 1];
};

struct msg_pages {              /* 4.6 PAGES header; entries follow */
	uint64_t seq;
	uint32_t device;
	uint32_t round;
	uint32_t count;
};

struct page_entry {
	uint32_t index;
	uint8_t kind;               /* enum ferry_page_kind */
	uint32_t len;               /* the unit's length (from the manifest) */
	/* PK_REF */
	uint32_t src_device;
	uint32_t src_index;
	uint8_t hash[FERRY_HASH_LEN];
	/* PK_LZ4: compressed bytes; PK_RAW: len bytes. Points into the frame. */
	const uint8_t *data;
	uint32_t data_len;
};

struct msg_seq {                /* 4.7 ACK, 4.10 COMMITTED */
	uint64_t seq;
};

struct msg_state {              /* 4.8 STATE */
	uint64_t offset;
	const uint8_t *data;        /* points into the frame */
	uint32_t len;
};

struct commit_dev {
	uint32_t id;
	uint8_t digest[FERRY_HASH_LEN];
};

struct msg_commit {             /* 4.9 COMMIT */
	uint64_t seq;               /* last PAGES sequence number sent */
	uint32_t ndev;
	struct commit_dev dev[FERRY_MAX_DEVICES];
	uint8_t state_digest[FERRY_HASH_LEN];
};

struct msg_resume {             /* 4.12 RESUME */
	uint16_t version;
	uint32_t max_frame;
	uint8_t session_id[FERRY_SESSION_ID_LEN];
	uint8_t proof[FERRY_PROOF_LEN];
};

struct msg_resumed {            /* 4.13 RESUMED */
	uint32_t status;            /* enum ferry_resume_status */
	uint64_t next_seq;          /* PAGES sequence number expected next */
	uint64_t state_offset;      /* STATE bytes already received */
};

struct msg_domain {             /* 4.15 DOMAIN, sender -> receiver */
	uint32_t flags;             /* FERRY_DOMAIN_CHECK_ONLY */
	char arch[FERRY_HOST_TOKEN_MAX + 1];   /* the source host's CPU arch */
	char model[FERRY_HOST_TOKEN_MAX + 1];  /* and model, "" if unknown */
	char uuid[FERRY_UUID_LEN + 1];         /* and UUID, "" if unknown */
	uint32_t nwaive;
	char waive[FERRY_WAIVE_MAX][FERRY_CHECK_NAME_MAX + 1];
	const uint8_t *xml;         /* the domain XML; points into the frame */
	uint32_t xml_len;
};

struct check_row {
	uint8_t status;             /* enum ferry_check_status */
	uint32_t code;              /* wire code of the check (section 7) */
	char name[FERRY_CHECK_NAME_MAX + 1];
	char src[FERRY_CHECK_VALUE_MAX + 1];
	char dst[FERRY_CHECK_VALUE_MAX + 1];
	char why[FERRY_CHECK_WHY_MAX + 1];
};

struct msg_checks {             /* 4.16 CHECKS, receiver -> sender */
	uint32_t n;
	struct check_row row[FERRY_CHECKS_MAX];
};

struct msg_have {               /* 4.19 HAVE, receiver -> sender (CAP_REUSE) */
	uint32_t device;            /* device id from the manifest, not 0 */
	uint32_t first;             /* index of the first unit covered */
	uint32_t count;             /* units covered, 1.. */
	const uint8_t *hashes;      /* count x FERRY_HASH_LEN bytes; points into the frame */
};

/* Decoders: consume the whole payload (leftover bytes are an error) and
 * check every field; errors name the frame and field. */
int msg_hello_decode(const uint8_t *p, size_t n, struct msg_hello *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_welcome_decode(const uint8_t *p, size_t n, struct msg_welcome *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_manifest_decode(const uint8_t *p, size_t n, struct msg_manifest *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_accept_decode(const uint8_t *p, size_t n, struct msg_accept *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_refuse_decode(const uint8_t *p, size_t n, struct msg_text *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_error_decode(const uint8_t *p, size_t n, struct msg_text *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_seq_decode(uint8_t type, const uint8_t *p, size_t n, struct msg_seq *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_state_decode(const uint8_t *p, size_t n, struct msg_state *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_commit_decode(const uint8_t *p, size_t n, struct msg_commit *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_resume_decode(const uint8_t *p, size_t n, struct msg_resume *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_resumed_decode(const uint8_t *p, size_t n, struct msg_resumed *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_domain_decode(const uint8_t *p, size_t n, struct msg_domain *m, struct ferr *e) FERRY_MUST_CHECK;
int msg_checks_decode(const uint8_t *p, size_t n, struct msg_checks *m, struct ferr *e) FERRY_MUST_CHECK;
/* HAVE: device not 0 (PROTO_RANGE), count at least 1 (PROTO_RANGE), the
 * payload exactly 12 + 16 x count bytes (PROTO_LENGTH), first + count at
 * most 2^32 - 1 (PROTO_RANGE).  Whether the device is in the manifest and
 * the units follow on from the ones before is the session's check. */
int msg_have_decode(const uint8_t *p, size_t n, struct msg_have *m, struct ferr *e) FERRY_MUST_CHECK;

/* PAGES: decode the 20-byte header, leaving r at the first entry. */
int msg_pages_decode(struct rd *r, struct msg_pages *m, struct ferr *e) FERRY_MUST_CHECK;
/* Decode the next entry for device d.  Checks the index against the
 * device's unit count and sets len; for PK_LZ4 checks 0 < clen < len. */
int msg_page_next(struct rd *r, const struct dev_desc *d, struct page_entry *pe,
    struct ferr *e) FERRY_MUST_CHECK;

/* Encoders: append a whole frame (header + payload) to w.  Return 0, or
 * -1 when w is too small. */
int msg_hello_encode(struct wr *w, const struct msg_hello *m);
int msg_welcome_encode(struct wr *w, const struct msg_welcome *m);
int msg_manifest_encode(struct wr *w, const struct msg_manifest *m);
int msg_accept_encode(struct wr *w, const struct msg_accept *m);
int msg_refuse_encode(struct wr *w, const struct msg_text *m);
int msg_error_encode(struct wr *w, const struct msg_text *m);
int msg_seq_encode(struct wr *w, uint8_t type, const struct msg_seq *m);
int msg_state_encode(struct wr *w, const struct msg_state *m);
int msg_commit_encode(struct wr *w, const struct msg_commit *m);
int msg_resume_encode(struct wr *w, const struct msg_resume *m);
int msg_resumed_encode(struct wr *w, const struct msg_resumed *m);
int msg_domain_encode(struct wr *w, const struct msg_domain *m);
int msg_checks_encode(struct wr *w, const struct msg_checks *m);
int msg_have_encode(struct wr *w, const struct msg_have *m);
/* Most hashes one HAVE carries when the peer accepts max_payload bytes. */
static inline uint32_t msg_have_max_count(uint32_t max_payload)
{
	return max_payload > FERRY_HAVE_HDR_LEN ? (max_payload - FERRY_HAVE_HDR_LEN) / FERRY_HASH_LEN : 0;
}
/* PING and PONG carry a u64 nonce: use msg_seq_encode/decode with
 * FT_PING / FT_PONG. */
/* PAGES is built in place: begin writes the frame and PAGES headers with
 * count 0; entries are appended with msg_page_put; end patches count and
 * length. */
size_t msg_pages_begin(struct wr *w, const struct msg_pages *m);
int msg_page_put(struct wr *w, const struct page_entry *pe);
void msg_pages_end(struct wr *w, size_t at, uint32_t count);

/* Upper bound of one encoded entry for a unit of len bytes. */
static inline size_t page_entry_max(uint32_t len) { return 5 + 4 + (size_t)len; }

/* Device name rules (section 4.3): 1..255 bytes of printable ASCII, no
 * '/', not "." or "..", not starting with ".ferry". */
int dev_name_valid(const char *name, size_t len);

#endif
