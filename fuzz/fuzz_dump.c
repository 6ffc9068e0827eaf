/* Fuzz target: the frame dump reader (src/common/dumpfmt.c), as
 * ferry-inspect runs it over a file, and the frame splitter
 * (src/common/framesplit.c).
 *
 * Input: a dump file (32-byte header, then records).  The reader walks it
 * to the end; checked: every call makes progress and stays inside the
 * input, each record's body lies inside the input and matches its header
 * (length, kind, direction, role, flags), errors come with a message and a
 * code, and the reader never returns more records than the input could
 * hold.  Each complete FRAME body is then decoded as ferry-inspect does
 * (frame_decode_hdr in the record's direction, the payload decoder with a
 * round trip: fz_check_payload).  Last, the complete frames of one
 * direction, concatenated, are fed to the splitter in pieces whose size
 * comes from the first input byte: it must give back the same frames. */
#include "dumpfmt.h"
#include "framesplit.h"
#include "fuzz_common.h"

struct split_check {
	const uint8_t *want;        /* the concatenated frames */
	size_t want_len;
	size_t off;                 /* how far the splitter has given back */
};

static void
on_split(void *arg, const uint8_t *p, size_t n, int partial)
{
	struct split_check *c = arg;

	FZ_CHECK(!partial);
	FZ_CHECK(n >= FERRY_FRAME_HDR_LEN && n <= c->want_len - c->off);
	FZ_CHECK(memcmp(p, c->want + c->off, n) == 0);
	c->off += n;
}

static void
check_record(const struct dump_reader *dr, const struct dump_rec *r, const uint8_t *data,
    size_t size)
{
	FZ_CHECK(r->at >= DUMP_FILE_HDR_LEN || !dr->hdr_ok);
	FZ_CHECK(r->at < size && DUMP_REC_HDR_LEN <= size - r->at);
	FZ_CHECK(r->body == data + r->at + DUMP_REC_HDR_LEN);
	FZ_CHECK(r->len <= size - r->at - DUMP_REC_HDR_LEN);
	FZ_CHECK(dr->off == r->at + DUMP_REC_HDR_LEN + r->len);
	FZ_CHECK(r->role == DUMP_ROLE_SENDER || r->role == DUMP_ROLE_RECEIVER);
	FZ_CHECK((r->flags & ~DUMP_FLAGS_KNOWN) == 0);
	switch (r->kind) {
	case DUMP_REC_FRAME:
		FZ_CHECK(dump_frame_dir(r->role, r->dir) != 0);
		FZ_CHECK(r->len <= DUMP_FRAME_MAX);
		if ((r->flags & DUMP_FLAG_PARTIAL) == 0)
			FZ_CHECK(r->len >= FERRY_FRAME_HDR_LEN && fz_be32(r->body + 4) == r->len - 8);
		break;
	case DUMP_REC_SESSION:
		FZ_CHECK(r->len == DUMP_SESSION_LEN && r->dir == 0 && r->flags == 0);
		break;
	case DUMP_REC_END: {
		struct dump_end end;
		struct ferr e = { 0 };

		FZ_CHECK(r->len == DUMP_END_LEN && r->dir == 0 && r->flags == 0);
		FZ_CHECK(dump_end_decode(r, &end, &e) == 0);
		break;
	}
	default:
		FZ_CHECK(!"the reader returned an unknown kind");
	}
}

/* Decode a complete frame as ferry-inspect does. */
static void
check_frame(const struct dump_rec *r)
{
	struct frame_hdr h;
	struct ferr e = { 0 };
	uint8_t *payload;
	int rc;

	rc = frame_decode_hdr(r->body, r->len, FERRY_MAX_FRAME_LIMIT, dump_frame_dir(r->role, r->dir),
	    &h, &e);
	if (rc != 0) {
		FZ_CHECK(ferr_is_proto(rc) && e.msg[0] != '\0');
		return;
	}
	FZ_CHECK(h.len == r->len - FERRY_FRAME_HDR_LEN);
	payload = fz_dup(r->body + FERRY_FRAME_HDR_LEN, h.len);
	rc = fz_check_payload(h.type, payload, h.len, &e);
	if (rc != 0)
		FZ_CHECK(e.code == rc && e.msg[0] != '\0');
	free(payload);
}

static void
check_split(const uint8_t *frames, size_t len, size_t piece)
{
	struct split_check c = { frames, len, 0 };
	struct fsplit s;
	size_t off;

	fsplit_init(&s, DUMP_FRAME_MAX);
	for (off = 0; off < len; off += piece)
		FZ_CHECK(fsplit_feed(&s, frames + off, len - off < piece ? len - off : piece, on_split,
		    &c) == 0);
	FZ_CHECK(c.off == len && fsplit_pending(&s) == 0 && s.lost == 0);
	fsplit_flush(&s, on_split, &c);
	fsplit_fini(&s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = fz_dup(data, size), *frames = malloc(size ? size : 1);
	struct dump_reader dr;
	struct dump_rec r;
	struct ferr e = { 0 };
	size_t nframes = 0, records = 0, errors = 0, last = 0;
	int rc;

	FZ_CHECK(frames != NULL);
	rc = dump_reader_init(&dr, copy, size, &e);
	FZ_CHECK(rc == 0 || (rc < 0 && e.msg[0] != '\0'));
	FZ_CHECK(dr.off == (size < DUMP_FILE_HDR_LEN ? size : DUMP_FILE_HDR_LEN));
	while ((rc = dump_reader_next(&dr, &r, &e)) != 0) {
		FZ_CHECK(dr.off > last && dr.off <= size);
		last = dr.off;
		if (rc < 0) {
			FZ_CHECK(e.code == rc && e.msg[0] != '\0' && rc != FERR_NEED_MORE);
			errors++;
			continue;
		}
		FZ_CHECK(rc == 1);
		records++;
		check_record(&dr, &r, copy, size);
		if (r.kind != DUMP_REC_FRAME || (r.flags & DUMP_FLAG_PARTIAL) != 0)
			continue;
		check_frame(&r);
		if (r.dir == DUMP_DIR_SENT) {
			memcpy(frames + nframes, r.body, r.len);
			nframes += r.len;
		}
	}
	FZ_CHECK(records * DUMP_REC_HDR_LEN <= size && errors <= size);
	check_split(frames, nframes, size > 0 ? (size_t)data[0] % 64 + 1 : 1);
	check_split(frames, nframes, nframes > 0 ? nframes : 1);
	free(frames);
	free(copy);
	return 0;
}
