/* ferry wire protocol constants: the one C header the code uses.
 * Every value here is defined in proto/PROTOCOL.md; keep the two in sync. */
#ifndef FERRY_PROTO_H
#define FERRY_PROTO_H

/* Section 3: framing */
#define FERRY_MAGIC            0x46525931u   /* "FRY1" */
#define FERRY_VERSION          1u
#define FERRY_FRAME_HDR_LEN    8u            /* u8 type, u8 flags, u16 rsv, u32 length */
/* The smallest max a peer may offer holds one entry of the largest unit. */
#define FERRY_MAX_FRAME_MIN    (1024u * 1024u + 4096u) /* payload bytes */
#define FERRY_MAX_FRAME_DEFAULT (1024u * 1024u + 4096u) /* payload bytes */
#define FERRY_MAX_FRAME_LIMIT  (16u * 1024u * 1024u)  /* largest max a peer may offer */

/* Section 4: frame types (0 is never valid) */
enum ferry_frame_type {
	FT_INVALID = 0,
	FT_HELLO = 1,      /* S->R */
	FT_WELCOME = 2,    /* R->S */
	FT_MANIFEST = 3,   /* S->R */
	FT_ACCEPT = 4,     /* R->S */
	FT_REFUSE = 5,     /* R->S */
	FT_PAGES = 6,      /* S->R */
	FT_ACK = 7,        /* R->S */
	FT_STATE = 8,      /* S->R */
	FT_COMMIT = 9,     /* S->R */
	FT_COMMITTED = 10, /* R->S */
	FT_ERROR = 11,     /* both */
	FT_RESUME = 12,    /* S->R: continue a session on a new connection */
	FT_RESUMED = 13,   /* R->S */
	FT_PING = 14,      /* both */
	FT_PONG = 15,      /* both */
	FT_DOMAIN = 16,    /* S->R: a libvirt domain's XML and check options (CAP_DOMAIN) */
	FT_CHECKS = 17,    /* R->S: the receiver's pre-flight check rows (CAP_DOMAIN) */
	FT_QSTREAM = 18,   /* S->R: a piece of a QEMU migration stream (CAP_QEMU) */
	FT_QRETURN = 19,   /* R->S: bytes of QEMU's return path (CAP_QEMU) */
	FT_HAVE = 20,      /* R->S: hashes of units the receiver already holds (CAP_REUSE) */
	FT_COUNT = 21
};

/* Section 4.12: resume */
#define FERRY_SESSION_ID_LEN   16u
#define FERRY_PROOF_LEN        32u   /* HMAC-SHA256 */
#define FERRY_RESUME_KEY_LABEL     "EXPORTER-ferry-resume-key"
#define FERRY_RESUME_BIND_LABEL    "EXPORTER-ferry-resume-binding"
#define FERRY_RESUME_PROOF_PREFIX  "ferry resume v1"

enum ferry_resume_status {
	RSM_INVALID = 0,
	RSM_RECEIVING = 1, /* session open: continue from next_seq */
	RSM_COMMITTED = 2, /* session committed: the sender cleans up */
	RSM_FAILED = 3,    /* session failed, staging removed: not committed */
};

/* Section 4.1: capabilities (bit flags) */
#define FERRY_CAP_DOMAIN       1u    /* DOMAIN and CHECKS frames (section 4.15) */
#define FERRY_CAP_QEMU         2u    /* a QEMU stream: QSTREAM and QRETURN (section 4.17) */
#define FERRY_CAP_REUSE        4u    /* HAVE: the receiver starts from existing files (section 4.19) */
#define FERRY_CAPS_KNOWN       7u

/* Section 4.3: manifest limits */
#define FERRY_MAX_DEVICES      64u
#define FERRY_NAME_MAX         255u
#define FERRY_UNIT_MIN         4096u                 /* bytes */
#define FERRY_UNIT_MAX         (1024u * 1024u)       /* bytes */
#define FERRY_DEVICE_SIZE_MAX  (1ull << 46)          /* 64 TiB */
#define FERRY_STATE_SIZE_MAX   (256ull * 1024 * 1024) /* bytes */
#define FERRY_MAX_TOTAL_UNITS  (1ull << 24)          /* units over all devices */

enum ferry_device_kind {
	DK_INVALID = 0,
	DK_MEMORY = 1,
	DK_DISK = 2,
	DK_QEMU = 3,   /* a QEMU migration stream (CAP_QEMU): the only device */
};

/* Sections 4.17 and 4.18: QEMU streams (CAP_QEMU) */
enum ferry_qitem_type {
	QI_INVALID = 0,
	QI_OPAQUE = 1,   /* u8 type, u32 len, len bytes */
	QI_BLOCKS = 2,   /* u8 type, u16 n, n x (str8 id, u64 len) */
	QI_PAGE = 3,     /* u8 type, u8 rec, u16 block, u64 offset, u8 kind, payload */
};
#define FERRY_QREC_DATA        1u    /* PAGE rec: a data record (else a zero record) */
#define FERRY_QREC_CONT        2u    /* PAGE rec: the record had CONTINUE (no block id) */
#define FERRY_QREC_KNOWN       3u
#define FERRY_QPAGE_SIZE       4096u /* QEMU's target page on x86 */
#define FERRY_QBLOCKS_MAX      256u  /* RAM blocks in a BLOCKS item */
#define FERRY_QBLOCK_ID_MAX    255u  /* bytes of a block id */
#define FERRY_QRETURN_MAX      (1024u * 1024u) /* return-path bytes a session may carry */
#define FERRY_QITEM_MIN        6u    /* the smallest item: an OPAQUE of 1 byte */

/* Section 4.5: pages */
#define FERRY_MAX_PAGES_PER_FRAME 4096u
#define FERRY_HASH_LEN         16u   /* XXH3-128, canonical big-endian */

enum ferry_page_kind {
	PK_INVALID = 0,
	PK_ZERO = 1,   /* u32 index, u8 kind */
	PK_REF = 2,    /* + u32 src_device, u32 src_index, u8[16] hash */
	PK_LZ4 = 3,    /* + u32 clen, clen bytes */
	PK_RAW = 4,    /* + unit bytes */
};

#define FERRY_PAGE_ENTRY_MIN   5u    /* index + kind */

/* Section 4.19: HAVE (CAP_REUSE) */
#define FERRY_HAVE_HDR_LEN     12u   /* u32 device, u32 first, u32 count; then count hashes */

/* Section 4.x: text fields in REFUSE and ERROR */
#define FERRY_TEXT_MAX         1024u
#define FERRY_PING_FLOOD_PER_SEC 50u  /* more PINGs than this in a second: PROTO_FLOOD */

/* Section 4.15: DOMAIN and CHECKS */
#define FERRY_DOMAIN_CHECK_ONLY 1u           /* DOMAIN flags: run the checks, migrate nothing */
#define FERRY_DOMAIN_XML_MAX   (1024u * 1024u) /* bytes of domain XML */
#define FERRY_HOST_TOKEN_MAX   63u           /* host arch / CPU model bytes */
#define FERRY_UUID_LEN         36u           /* host UUID, 8-4-4-4-12 */
#define FERRY_WAIVE_MAX        16u           /* waived check names in DOMAIN */
#define FERRY_CHECKS_MAX       16u           /* rows in CHECKS */
#define FERRY_CHECK_NAME_MAX   31u           /* check name bytes */
#define FERRY_CHECK_VALUE_MAX  160u          /* source / destination value bytes */
#define FERRY_CHECK_WHY_MAX    512u          /* reason bytes */
/* 2 + FERRY_CHECKS_MAX rows of at most 1 + 4 + (1 + 31) + 2 * (2 + 160) + (2 + 512) */
#define FERRY_CHECKS_PAYLOAD_MAX 14002u

enum ferry_check_status {
	CS_INVALID = 0,
	CS_PASS = 1,
	CS_FAIL = 2,
	CS_WAIVED = 3,     /* failed, waived by the operator */
};

#endif
