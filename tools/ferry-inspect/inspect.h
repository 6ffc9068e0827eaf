/* ferry-inspect: decode frame dumps (--dump-frames) and TLS captures into
 * one line per frame.  Sources (dumpread.c, capture.c) find the frames;
 * describe.c decodes each with the project's codec (src/common/msg.c);
 * report.c prints lines, errors and the summary. */
#ifndef FERRY_INSPECT_H
#define FERRY_INSPECT_H

#include <stdint.h>
#include <stdio.h>

#include "ferry_proto.h"
#include "msg.h"
#include "msg_qemu.h"

struct json_object;

/* Where a frame or error was found. */
struct where {
	const char *src;            /* file name */
	int capture;                /* 0: dump file offset; 1: packet in a capture */
	uint64_t offset;            /* dump: file offset of the record */
	uint64_t packet;            /* capture: frame number of the packet */
	uint32_t stream;            /* capture: TCP stream index */
};

/* What the inspector knows about one flow (a dump file or a TCP stream). */
struct flow {
	uint8_t sid[FERRY_SESSION_ID_LEN];
	int have_sid;
	uint64_t t0_us;             /* times are shown relative to this */
	uint8_t writer_role;        /* dumps: enum dump_role; captures: 0 */
};

#define INSP_MAX_SESSIONS 64

struct session_man {
	uint8_t sid[FERRY_SESSION_ID_LEN];
	struct msg_manifest *man;
	struct qitem_block *qblocks;    /* QSTREAM's block table (4.17), FERRY_QBLOCKS_MAX */
	uint32_t nqblocks;
};

struct type_stats {
	uint64_t count, bytes;
};

struct inspector {
	FILE *out;
	int json;
	int verbose;                /* PAGES: one line per entry */
	/* MANIFESTs seen, by session, so PAGES entries of a later (resumed)
	 * connection can be decoded too. */
	struct session_man sessions[INSP_MAX_SESSIONS];
	uint32_t nsessions;
	struct msg_manifest *orphan;   /* a MANIFEST whose session is not known */
	struct qitem_block *orphan_qblocks;    /* a block table whose session is not known */
	uint32_t orphan_nqblocks;
	struct type_stats types[FT_COUNT + 1];  /* [FT_COUNT]: unknown types */
	uint64_t frames, frame_bytes, partial, errors, records;
};

void insp_init(struct inspector *in, FILE *out, int json, int verbose);
void insp_fini(struct inspector *in);

/* A frame travelling in fdir (FDIR_S2R or FDIR_R2S).  dir_word is "sent",
 * "recv" (dumps: the writer's view) or NULL (captures). */
void insp_frame(struct inspector *in, struct flow *f, const struct where *w, uint8_t fdir,
    const char *dir_word, uint64_t time_us, const uint8_t *p, size_t n, int partial);
void insp_session(struct inspector *in, struct flow *f, const struct where *w, uint64_t time_us,
    const uint8_t sid[FERRY_SESSION_ID_LEN]);
/* Anything else worth a line (file header, END record, capture notes). */
void insp_note(struct inspector *in, const struct where *w, const char *kind,
    struct json_object *fields);
/* An input error: shown at w, counted, decoding goes on. */
void insp_error(struct inspector *in, const struct where *w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void insp_summary(struct inspector *in);

/* Manifest for a session (NULL when none was seen). */
const struct msg_manifest *insp_manifest(const struct inspector *in, const struct flow *f);
void insp_keep_manifest(struct inspector *in, const struct flow *f, const struct msg_manifest *m);
/* QSTREAM block table for a session (*n 0 and NULL when none was seen), and
 * keeping the one a BLOCKS item brought. */
const struct qitem_block *insp_qblocks(const struct inspector *in, const struct flow *f, uint32_t *n);
void insp_keep_qblocks(struct inspector *in, const struct flow *f, const struct qitem_block *b,
    uint32_t n);

/* describe.c: decode a frame's payload into fields.  Returns 0, or an error
 * (message in *err) after which fields holds what decoded. */
struct ferr;
int describe_frame(struct inspector *in, struct flow *f, uint8_t type, const uint8_t *p,
    size_t n, struct json_object *fields, struct ferr *e);

/* Text form of a JSON value: k=v pairs, strings quoted when needed. */
void print_fields_text(FILE *out, struct json_object *fields);

/* Sources.  Each returns 0, or -1 when the input could not be read at all
 * (message printed). */
int inspect_dump_file(struct inspector *in, const char *path);
int inspect_capture(struct inspector *in, const char *cap, const char *keylog, const char *tshark,
    unsigned port);

#endif
