#include "dumpfmt.h"

#include <string.h>

#include "frame.h"
#include "rd.h"

int
dump_file_hdr_encode(struct wr *w, const struct dump_file_hdr *h)
{
	wr_bytes(w, DUMP_MAGIC, DUMP_MAGIC_LEN);
	wr_u16(w, h->version);
	wr_u8(w, h->role);
	wr_u8(w, 0);
	wr_u32(w, h->pid);
	wr_u32(w, h->conn);
	wr_u32(w, 0);
	wr_u64(w, h->start_us);
	return w->err ? -1 : 0;
}

int
dump_rec_hdr_encode(struct wr *w, const struct dump_rec *r)
{
	wr_u8(w, r->kind);
	wr_u8(w, r->dir);
	wr_u8(w, r->role);
	wr_u8(w, r->flags);
	wr_u32(w, r->len);
	wr_u64(w, r->time_us);
	return w->err ? -1 : 0;
}

int
dump_end_encode(struct wr *w, const struct dump_end *end)
{
	wr_u64(w, end->frames_sent);
	wr_u64(w, end->frames_received);
	wr_u64(w, end->bytes_sent);
	wr_u64(w, end->bytes_received);
	return w->err ? -1 : 0;
}

static int
role_valid(uint8_t role)
{
	return role == DUMP_ROLE_SENDER || role == DUMP_ROLE_RECEIVER;
}

int
dump_file_hdr_decode(const uint8_t *p, size_t n, struct dump_file_hdr *h, struct ferr *e)
{
	uint8_t magic[DUMP_MAGIC_LEN], rsv8;
	uint32_t rsv32;
	struct rd r;

	memset(h, 0, sizeof(*h));
	if (n < DUMP_FILE_HDR_LEN)
		return ferr_set(e, FERR_NEED_MORE, "offset 0: file header needs %u bytes, the file has %zu",
		    DUMP_FILE_HDR_LEN, n);
	rd_init(&r, p, DUMP_FILE_HDR_LEN);
	rd_copy(&r, magic, sizeof(magic));
	rd_u16(&r, &h->version);
	rd_u8(&r, &h->role);
	rd_u8(&r, &rsv8);
	rd_u32(&r, &h->pid);
	rd_u32(&r, &h->conn);
	rd_u32(&r, &rsv32);
	rd_u64(&r, &h->start_us);
	if (memcmp(magic, DUMP_MAGIC, DUMP_MAGIC_LEN) != 0)
		return ferr_set(e, FERR_PROTO_VERSION,
		    "offset 0: magic %02x%02x%02x%02x%02x%02x%02x%02x is not \"FRYDUMP\\n\": not a ferry frame dump",
		    magic[0], magic[1], magic[2], magic[3], magic[4], magic[5], magic[6], magic[7]);
	if (h->version != DUMP_VERSION)
		return ferr_set(e, FERR_PROTO_VERSION, "offset 8: version %u unsupported (this reader knows %u)",
		    h->version, DUMP_VERSION);
	if (!role_valid(h->role))
		return ferr_set(e, FERR_PROTO_RANGE, "offset 10: role %u unknown (1 sender, 2 receiver)",
		    h->role);
	if (rsv8 != 0 || rsv32 != 0)
		return ferr_set(e, FERR_PROTO, "offset %u: reserved bytes not 0", rsv8 != 0 ? 11 : 20);
	return 0;
}

/* The FRAME body's own header must agree with the record: a complete frame
 * fills the body exactly; a PARTIAL one is shorter than its header says. */
static int
check_frame_body(const struct dump_rec *r, struct ferr *e)
{
	uint32_t flen;
	struct rd b;
	int partial = (r->flags & DUMP_FLAG_PARTIAL) != 0;

	if (r->len < FERRY_FRAME_HDR_LEN) {
		if (partial)
			return 0;
		return ferr_set(e, FERR_PROTO_LENGTH,
		    "offset %llu: FRAME record length %u < %u (a frame header)",
		    (unsigned long long)r->at, r->len, FERRY_FRAME_HDR_LEN);
	}
	rd_init(&b, r->body + 4, 4);
	(void)rd_u32(&b, &flen);
	if (!partial && flen != r->len - FERRY_FRAME_HDR_LEN)
		return ferr_set(e, FERR_PROTO_LENGTH,
		    "offset %llu: FRAME record length %u, but its frame header says %u + %u",
		    (unsigned long long)r->at, r->len, FERRY_FRAME_HDR_LEN, flen);
	if (partial && flen <= r->len - FERRY_FRAME_HDR_LEN)
		return ferr_set(e, FERR_PROTO_LENGTH,
		    "offset %llu: FRAME record flagged PARTIAL, but its frame (%u + %u) is complete",
		    (unsigned long long)r->at, FERRY_FRAME_HDR_LEN, flen);
	return 0;
}

static int
check_rec_fields(const struct dump_rec *r, uint8_t role, struct ferr *e)
{
	unsigned long long at = (unsigned long long)r->at;

	if (!role_valid(r->role))
		return ferr_set(e, FERR_PROTO_RANGE, "offset %llu: record role %u unknown", at, r->role);
	if (role != 0 && r->role != role)
		return ferr_set(e, FERR_PROTO_RANGE, "offset %llu: record role %u, the file's is %u", at,
		    r->role, role);
	if ((r->flags & ~DUMP_FLAGS_KNOWN) != 0 || (r->kind != DUMP_REC_FRAME && r->flags != 0))
		return ferr_set(e, FERR_PROTO, "offset %llu: record flags 0x%02x not allowed for kind %u",
		    at, r->flags, r->kind);
	switch (r->kind) {
	case DUMP_REC_FRAME:
		if (r->dir != DUMP_DIR_SENT && r->dir != DUMP_DIR_RECEIVED)
			return ferr_set(e, FERR_PROTO_RANGE, "offset %llu: FRAME record dir %u unknown", at,
			    r->dir);
		if (r->len > DUMP_FRAME_MAX)
			return ferr_set(e, FERR_PROTO_LENGTH, "offset %llu: FRAME record length %u > max %u",
			    at, r->len, DUMP_FRAME_MAX);
		return 0;
	case DUMP_REC_SESSION:
	case DUMP_REC_END:
		if (r->dir != 0)
			return ferr_set(e, FERR_PROTO, "offset %llu: %s record dir %u, must be 0", at,
			    dump_kind_name(r->kind), r->dir);
		if (r->len != (r->kind == DUMP_REC_SESSION ? DUMP_SESSION_LEN : DUMP_END_LEN))
			return ferr_set(e, FERR_PROTO_LENGTH, "offset %llu: %s record length %u, must be %u",
			    at, dump_kind_name(r->kind), r->len,
			    r->kind == DUMP_REC_SESSION ? DUMP_SESSION_LEN : DUMP_END_LEN);
		return 0;
	default:
		return ferr_set(e, FERR_PROTO_RANGE, "offset %llu: record kind %u unknown", at, r->kind);
	}
}

int
dump_rec_decode(const uint8_t *p, size_t n, uint64_t at, uint8_t role, struct dump_rec *r,
    size_t *used, struct ferr *e)
{
	struct rd rd;
	int rc;

	memset(r, 0, sizeof(*r));
	*used = 0;
	r->at = at;
	rd_init(&rd, p, n);
	rd_u8(&rd, &r->kind);
	rd_u8(&rd, &r->dir);
	rd_u8(&rd, &r->role);
	rd_u8(&rd, &r->flags);
	rd_u32(&rd, &r->len);
	rd_u64(&rd, &r->time_us);
	if (rd.err)
		return ferr_set(e, FERR_NEED_MORE, "offset %llu: record header truncated (%zu of %u bytes)",
		    (unsigned long long)at, n, DUMP_REC_HDR_LEN);
	if ((rc = check_rec_fields(r, role, e)) != 0)
		return rc;
	if (rd_ptr(&rd, r->len, &r->body) != 0)
		return ferr_set(e, FERR_NEED_MORE, "offset %llu: %s record truncated: %u body bytes, %zu left",
		    (unsigned long long)at, dump_kind_name(r->kind), r->len, n - DUMP_REC_HDR_LEN);
	if (r->kind == DUMP_REC_FRAME && (rc = check_frame_body(r, e)) != 0)
		return rc;
	*used = DUMP_REC_HDR_LEN + (size_t)r->len;
	return 0;
}

int
dump_end_decode(const struct dump_rec *r, struct dump_end *end, struct ferr *e)
{
	struct rd rd;

	rd_init(&rd, r->body, r->len);
	rd_u64(&rd, &end->frames_sent);
	rd_u64(&rd, &end->frames_received);
	rd_u64(&rd, &end->bytes_sent);
	rd_u64(&rd, &end->bytes_received);
	if (rd.err || rd_end(&rd) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "offset %llu: END record body %u bytes, must be %u",
		    (unsigned long long)r->at, r->len, DUMP_END_LEN);
	return 0;
}

/* A candidate record at `off`: it decodes, and what follows is the end,
 * a record cut off by the end, or another record that decodes. */
static int
resync_ok(const uint8_t *p, size_t n, size_t off, uint8_t role)
{
	struct dump_rec r;
	size_t used, used2;
	int rc;

	if (dump_rec_decode(p + off, n - off, off, role, &r, &used, NULL) != 0)
		return 0;
	off += used;
	if (off == n)
		return 1;
	rc = dump_rec_decode(p + off, n - off, off, role != 0 ? role : r.role, &r, &used2, NULL);
	return rc == 0 || rc == FERR_NEED_MORE;
}

size_t
dump_resync(const uint8_t *p, size_t n, size_t from, uint8_t role)
{
	size_t off;

	for (off = from + 1; off < n && n - off >= DUMP_REC_HDR_LEN; off++)
		if (resync_ok(p, n, off, role))
			return off;
	return n;
}

int
dump_reader_init(struct dump_reader *dr, const uint8_t *p, size_t n, struct ferr *e)
{
	int rc;

	memset(dr, 0, sizeof(*dr));
	dr->p = p;
	dr->n = p != NULL ? n : 0;
	rc = dump_file_hdr_decode(dr->p, dr->n, &dr->hdr, e);
	dr->off = dr->n < DUMP_FILE_HDR_LEN ? dr->n : DUMP_FILE_HDR_LEN;
	if (rc == 0) {
		dr->hdr_ok = 1;
		dr->role = dr->hdr.role;
	}
	return rc;
}

int
dump_reader_next(struct dump_reader *dr, struct dump_rec *r, struct ferr *e)
{
	size_t used;
	int rc;

	if (dr->off >= dr->n) {
		memset(r, 0, sizeof(*r));
		r->at = dr->n;
		return 0;
	}
	rc = dump_rec_decode(dr->p + dr->off, dr->n - dr->off, dr->off, dr->role, r, &used, e);
	if (rc == 0) {
		dr->off += used;
		if (dr->role == 0)
			dr->role = r->role;
		return 1;
	}
	if (rc == FERR_NEED_MORE)
		rc = FERR_PROTO_LENGTH;     /* in a whole file, cut off is truncated */
	if (e != NULL)
		e->code = rc;
	dr->off = dump_resync(dr->p, dr->n, dr->off, dr->role);
	return rc;
}

uint8_t
dump_frame_dir(uint8_t role, uint8_t dir)
{
	if (dir != DUMP_DIR_SENT && dir != DUMP_DIR_RECEIVED)
		return 0;
	if (role == DUMP_ROLE_SENDER)
		return dir == DUMP_DIR_SENT ? FDIR_S2R : FDIR_R2S;
	if (role == DUMP_ROLE_RECEIVER)
		return dir == DUMP_DIR_SENT ? FDIR_R2S : FDIR_S2R;
	return 0;
}

const char *
dump_role_name(uint8_t role)
{
	return role == DUMP_ROLE_SENDER ? "sender" : role == DUMP_ROLE_RECEIVER ? "receiver" : "?";
}

const char *
dump_kind_name(uint8_t kind)
{
	switch (kind) {
	case DUMP_REC_FRAME: return "FRAME";
	case DUMP_REC_SESSION: return "SESSION";
	case DUMP_REC_END: return "END";
	default: return "?";
	}
}
