#include "msg.h"

#include <string.h>

#include "frame.h"

#define CHECK_END(r, e, what) \
	do { \
		if ((r)->err) \
			return ferr_set(e, FERR_PROTO_LENGTH, "%s: truncated", what); \
		if (rd_end(r) != 0) \
			return ferr_set(e, FERR_PROTO_LENGTH, "%s: %zu trailing bytes", what, rd_left(r)); \
	} while (0)

static int
check_magic_version(uint32_t magic, uint16_t version, const char *what, struct ferr *e)
{
	if (magic != FERRY_MAGIC)
		return ferr_set(e, FERR_PROTO_VERSION, "%s: magic 0x%08x, expected 0x%08x", what, magic,
		    FERRY_MAGIC);
	if (version != FERRY_VERSION)
		return ferr_set(e, FERR_PROTO_VERSION, "%s: version %u unsupported (this side speaks %u)",
		    what, version, FERRY_VERSION);
	return 0;
}

static int
check_max_frame(uint32_t max, const char *what, struct ferr *e)
{
	if (max < FERRY_MAX_FRAME_MIN || max > FERRY_MAX_FRAME_LIMIT)
		return ferr_set(e, FERR_PROTO_RANGE, "%s: max_frame %u outside [%u, %u]", what, max,
		    FERRY_MAX_FRAME_MIN, FERRY_MAX_FRAME_LIMIT);
	return 0;
}

int
msg_hello_decode(const uint8_t *p, size_t n, struct msg_hello *m, struct ferr *e)
{
	struct rd r;
	uint32_t magic;
	uint16_t rsv;
	int rc;

	rd_init(&r, p, n);
	rd_u32(&r, &magic);
	rd_u16(&r, &m->version);
	rd_u16(&r, &rsv);
	rd_u32(&r, &m->caps);
	rd_u32(&r, &m->max_frame);
	rd_u64(&r, &m->hash_seed);
	CHECK_END(&r, e, "HELLO");
	if ((rc = check_magic_version(magic, m->version, "HELLO", e)) != 0)
		return rc;
	if (rsv != 0)
		return ferr_set(e, FERR_PROTO, "HELLO: reserved 0x%04x, must be 0", rsv);
	return check_max_frame(m->max_frame, "HELLO", e);
}

int
msg_welcome_decode(const uint8_t *p, size_t n, struct msg_welcome *m, struct ferr *e)
{
	struct rd r;
	uint32_t magic;
	uint16_t rsv;
	int rc;

	rd_init(&r, p, n);
	rd_u32(&r, &magic);
	rd_u16(&r, &m->version);
	rd_u16(&r, &rsv);
	rd_u32(&r, &m->caps);
	rd_u32(&r, &m->max_frame);
	rd_copy(&r, m->session_id, sizeof(m->session_id));
	CHECK_END(&r, e, "WELCOME");
	if ((rc = check_magic_version(magic, m->version, "WELCOME", e)) != 0)
		return rc;
	if (rsv != 0)
		return ferr_set(e, FERR_PROTO, "WELCOME: reserved 0x%04x, must be 0", rsv);
	return check_max_frame(m->max_frame, "WELCOME", e);
}

int
dev_name_valid(const char *name, size_t len)
{
	size_t i;

	if (len == 0 || len > FERRY_NAME_MAX)
		return 0;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	if (len >= 6 && memcmp(name, ".ferry", 6) == 0)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c < 0x20 || c >= 0x7f || c == '/')
			return 0;
	}
	return 1;
}

int
msg_manifest_decode(const uint8_t *p, size_t n, struct msg_manifest *m, struct ferr *e)
{
	struct rd r;
	uint32_t i, j;
	uint64_t units = 0;

	rd_init(&r, p, n);
	rd_u32(&r, &m->ndev);
	rd_u64(&r, &m->state_size);
	if (r.err)
		return ferr_set(e, FERR_PROTO_LENGTH, "MANIFEST: truncated");
	if (m->ndev == 0 || m->ndev > FERRY_MAX_DEVICES)
		return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: ndev %u outside [1, %u]", m->ndev,
		    FERRY_MAX_DEVICES);
	if (m->state_size > FERRY_STATE_SIZE_MAX)
		return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: state_size %llu > max %llu",
		    (unsigned long long)m->state_size, (unsigned long long)FERRY_STATE_SIZE_MAX);
	{
		uint16_t snl;

		rd_u16(&r, &snl);
		if (snl > FERRY_NAME_MAX)
			return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: state_name_len %u > %u", snl,
			    FERRY_NAME_MAX);
		if (rd_copy(&r, m->state_name, snl) != 0)
			return ferr_set(e, FERR_PROTO_LENGTH, "MANIFEST: truncated state_name");
		m->state_name[snl] = '\0';
		if ((m->state_size == 0) != (snl == 0))
			return ferr_set(e, FERR_PROTO_RANGE,
			    "MANIFEST: state_name_len %u with state_size %llu (both or neither)", snl,
			    (unsigned long long)m->state_size);
		if (snl != 0 && !dev_name_valid(m->state_name, snl))
			return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: state_name invalid");
	}
	for (i = 0; i < m->ndev; i++) {
		struct dev_desc *d = &m->dev[i];
		uint8_t rsv;
		uint16_t name_len;

		rd_u32(&r, &d->id);
		rd_u8(&r, &d->kind);
		rd_u8(&r, &rsv);
		rd_u16(&r, &name_len);
		rd_u32(&r, &d->unit);
		rd_u64(&r, &d->size);
		rd_u64(&r, &d->src_dev);
		rd_u64(&r, &d->src_ino);
		if (name_len > FERRY_NAME_MAX)
			return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: device %u name_len %u > %u", i,
			    name_len, FERRY_NAME_MAX);
		if (rd_copy(&r, d->name, name_len) != 0)
			return ferr_set(e, FERR_PROTO_LENGTH, "MANIFEST: device %u truncated", i);
		d->name[name_len] = '\0';
		if (d->id == 0)
			return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: device %u id 0", i);
		if (d->kind != DK_MEMORY && d->kind != DK_DISK && d->kind != DK_QEMU)
			return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: device %u kind %u unknown", d->id,
			    d->kind);
		if (rsv != 0)
			return ferr_set(e, FERR_PROTO, "MANIFEST: device %u reserved 0x%02x", d->id, rsv);
		if (!dev_name_valid(d->name, name_len))
			return ferr_set(e, FERR_PROTO_RANGE,
			    "MANIFEST: device %u name invalid (1-255 printable bytes, no '/', not '.', '..' or '.ferry*')",
			    d->id);
		if (d->unit == 0)
			return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: device %u unit 0", d->id);
		if (d->size == 0 || d->size > FERRY_DEVICE_SIZE_MAX)
			return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: device %u size %llu outside [1, %llu]",
			    d->id, (unsigned long long)d->size, (unsigned long long)FERRY_DEVICE_SIZE_MAX);
		/* Section 4.3: a QEMU stream is the session's only device. */
		if (d->kind == DK_QEMU && m->ndev != 1)
			return ferr_set(e, FERR_PROTO_RANGE,
			    "MANIFEST: device %u kind 3 (QEMU) with ndev %u: a QEMU device is the only one",
			    d->id, m->ndev);
		if (d->kind == DK_QEMU && d->unit != FERRY_QPAGE_SIZE)
			return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: device %u kind 3 (QEMU) unit %u, must be %u",
			    d->id, d->unit, FERRY_QPAGE_SIZE);
		if (d->kind == DK_QEMU && m->state_size != 0)
			return ferr_set(e, FERR_PROTO_RANGE,
			    "MANIFEST: state_size %llu with device %u of kind 3 (QEMU), must be 0",
			    (unsigned long long)m->state_size, d->id);
		if (dev_units(d) > UINT32_MAX)
			return ferr_set(e, FERR_PROTO_RANGE,
			    "MANIFEST: device %u has %llu units, max %u (unit too small for size)", d->id,
			    (unsigned long long)dev_units(d), UINT32_MAX);
		/* A QEMU stream has no per-unit tables at the receiver. */
		if (d->kind != DK_QEMU)
			units += dev_units(d);
		if (units > FERRY_MAX_TOTAL_UNITS)
			return ferr_set(e, FERR_PROTO_RANGE,
			    "MANIFEST: %llu units in devices 1-%u, more than the %llu a session may hold",
			    (unsigned long long)units, i + 1, (unsigned long long)FERRY_MAX_TOTAL_UNITS);
		for (j = 0; j < i; j++) {
			if (m->dev[j].id == d->id)
				return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: device id %u repeated", d->id);
			if (strcmp(m->dev[j].name, d->name) == 0)
				return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: device name '%s' repeated",
				    d->name);
		}
		if (m->state_size != 0 && strcmp(m->state_name, d->name) == 0)
			return ferr_set(e, FERR_PROTO_RANGE, "MANIFEST: device name '%s' equals state_name",
			    d->name);
	}
	CHECK_END(&r, e, "MANIFEST");
	return 0;
}

int
msg_accept_decode(const uint8_t *p, size_t n, struct msg_accept *m, struct ferr *e)
{
	struct rd r;

	rd_init(&r, p, n);
	rd_u64(&r, &m->next_seq);
	CHECK_END(&r, e, "ACCEPT");
	if (m->next_seq == 0)
		return ferr_set(e, FERR_PROTO_RANGE, "ACCEPT: next_seq 0");
	return 0;
}

static int
text_decode(struct rd *r, struct msg_text *m, const char *what, struct ferr *e)
{
	uint16_t len;
	size_t i;

	rd_u16(r, &len);
	if (len > FERRY_TEXT_MAX)
		return ferr_set(e, FERR_PROTO_RANGE, "%s: text length %u > %u", what, len, FERRY_TEXT_MAX);
	if (rd_copy(r, m->text, len) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "%s: truncated", what);
	m->text[len] = '\0';
	/* Text ends up in logs and terminals: replace control bytes. */
	for (i = 0; i < len; i++)
		if ((unsigned char)m->text[i] < 0x20 || (unsigned char)m->text[i] == 0x7f)
			m->text[i] = '?';
	CHECK_END(r, e, what);
	if (m->code == 0)
		return ferr_set(e, FERR_PROTO_RANGE, "%s: code 0", what);
	return 0;
}

int
msg_refuse_decode(const uint8_t *p, size_t n, struct msg_text *m, struct ferr *e)
{
	struct rd r;

	rd_init(&r, p, n);
	rd_u32(&r, &m->code);
	rd_u32(&r, &m->device);
	return text_decode(&r, m, "REFUSE", e);
}

int
msg_error_decode(const uint8_t *p, size_t n, struct msg_text *m, struct ferr *e)
{
	struct rd r;

	rd_init(&r, p, n);
	rd_u32(&r, &m->code);
	m->device = 0;
	return text_decode(&r, m, "ERROR", e);
}

int
msg_seq_decode(uint8_t type, const uint8_t *p, size_t n, struct msg_seq *m, struct ferr *e)
{
	struct rd r;
	const char *what = frame_name(type);

	rd_init(&r, p, n);
	rd_u64(&r, &m->seq);
	CHECK_END(&r, e, what);
	return 0;
}

int
msg_state_decode(const uint8_t *p, size_t n, struct msg_state *m, struct ferr *e)
{
	struct rd r;
	size_t left;

	rd_init(&r, p, n);
	rd_u64(&r, &m->offset);
	left = rd_left(&r);
	if (r.err)
		return ferr_set(e, FERR_PROTO_LENGTH, "STATE: truncated");
	if (left == 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "STATE: no data");
	if (m->offset > FERRY_STATE_SIZE_MAX || left > FERRY_STATE_SIZE_MAX - m->offset)
		return ferr_set(e, FERR_PROTO_RANGE, "STATE: offset %llu + %zu past max state size",
		    (unsigned long long)m->offset, left);
	m->len = (uint32_t)left;
	rd_ptr(&r, left, &m->data);
	return 0;
}

int
msg_commit_decode(const uint8_t *p, size_t n, struct msg_commit *m, struct ferr *e)
{
	struct rd r;
	uint32_t i;

	rd_init(&r, p, n);
	rd_u64(&r, &m->seq);
	rd_u32(&r, &m->ndev);
	if (r.err)
		return ferr_set(e, FERR_PROTO_LENGTH, "COMMIT: truncated");
	if (m->ndev == 0 || m->ndev > FERRY_MAX_DEVICES)
		return ferr_set(e, FERR_PROTO_RANGE, "COMMIT: ndev %u outside [1, %u]", m->ndev,
		    FERRY_MAX_DEVICES);
	for (i = 0; i < m->ndev; i++) {
		rd_u32(&r, &m->dev[i].id);
		rd_copy(&r, m->dev[i].digest, FERRY_HASH_LEN);
	}
	rd_copy(&r, m->state_digest, FERRY_HASH_LEN);
	CHECK_END(&r, e, "COMMIT");
	return 0;
}

int
msg_resume_decode(const uint8_t *p, size_t n, struct msg_resume *m, struct ferr *e)
{
	struct rd r;
	uint32_t magic;
	uint16_t rsv;
	int rc;

	rd_init(&r, p, n);
	rd_u32(&r, &magic);
	rd_u16(&r, &m->version);
	rd_u16(&r, &rsv);
	rd_u32(&r, &m->max_frame);
	rd_copy(&r, m->session_id, sizeof(m->session_id));
	rd_copy(&r, m->proof, sizeof(m->proof));
	CHECK_END(&r, e, "RESUME");
	if ((rc = check_magic_version(magic, m->version, "RESUME", e)) != 0)
		return rc;
	if (rsv != 0)
		return ferr_set(e, FERR_PROTO, "RESUME: reserved 0x%04x, must be 0", rsv);
	return check_max_frame(m->max_frame, "RESUME", e);
}

int
msg_resumed_decode(const uint8_t *p, size_t n, struct msg_resumed *m, struct ferr *e)
{
	struct rd r;

	rd_init(&r, p, n);
	rd_u32(&r, &m->status);
	rd_u64(&r, &m->next_seq);
	rd_u64(&r, &m->state_offset);
	CHECK_END(&r, e, "RESUMED");
	if (m->status != RSM_RECEIVING && m->status != RSM_COMMITTED && m->status != RSM_FAILED)
		return ferr_set(e, FERR_PROTO_RANGE, "RESUMED: status %u unknown", m->status);
	if (m->next_seq == 0)
		return ferr_set(e, FERR_PROTO_RANGE, "RESUMED: next_seq 0");
	if (m->state_offset > FERRY_STATE_SIZE_MAX)
		return ferr_set(e, FERR_PROTO_RANGE, "RESUMED: state_offset %llu > max",
		    (unsigned long long)m->state_offset);
	return 0;
}

int
msg_pages_decode(struct rd *r, struct msg_pages *m, struct ferr *e)
{
	rd_u64(r, &m->seq);
	rd_u32(r, &m->device);
	rd_u32(r, &m->round);
	rd_u32(r, &m->count);
	if (r->err)
		return ferr_set(e, FERR_PROTO_LENGTH, "PAGES: truncated header");
	if (m->seq == 0)
		return ferr_set(e, FERR_PROTO_RANGE, "PAGES: seq 0");
	if (m->round == 0)
		return ferr_set(e, FERR_PROTO_RANGE, "PAGES: round 0");
	if (m->count == 0 || m->count > FERRY_MAX_PAGES_PER_FRAME)
		return ferr_set(e, FERR_PROTO_RANGE, "PAGES: count %u outside [1, %u]", m->count,
		    FERRY_MAX_PAGES_PER_FRAME);
	/* Each entry takes at least 5 bytes: reject impossible counts early. */
	if (rd_left(r) / FERRY_PAGE_ENTRY_MIN < m->count)
		return ferr_set(e, FERR_PROTO_LENGTH, "PAGES: count %u does not fit in %zu bytes",
		    m->count, rd_left(r));
	return 0;
}

int
msg_page_next(struct rd *r, const struct dev_desc *d, struct page_entry *pe, struct ferr *e)
{
	rd_u32(r, &pe->index);
	rd_u8(r, &pe->kind);
	if (r->err)
		return ferr_set(e, FERR_PROTO_LENGTH, "PAGES: entry truncated");
	if ((uint64_t)pe->index >= dev_units(d))
		return ferr_set(e, FERR_PROTO_RANGE, "PAGES: device %u index %u >= %llu units", d->id,
		    pe->index, (unsigned long long)dev_units(d));
	pe->len = dev_unit_len(d, pe->index);
	pe->data = NULL;
	pe->data_len = 0;
	switch (pe->kind) {
	case PK_ZERO:
		return 0;
	case PK_REF:
		rd_u32(r, &pe->src_device);
		rd_u32(r, &pe->src_index);
		if (rd_copy(r, pe->hash, FERRY_HASH_LEN) != 0)
			return ferr_set(e, FERR_PROTO_LENGTH, "PAGES: REF entry %u truncated", pe->index);
		return 0;
	case PK_LZ4:
		rd_u32(r, &pe->data_len);
		if (r->err)
			return ferr_set(e, FERR_PROTO_LENGTH, "PAGES: LZ4 entry %u truncated", pe->index);
		if (pe->data_len == 0 || pe->data_len >= pe->len)
			return ferr_set(e, FERR_PROTO_CODEC, "PAGES: LZ4 entry %u clen %u outside [1, %u)",
			    pe->index, pe->data_len, pe->len);
		if (rd_ptr(r, pe->data_len, &pe->data) != 0)
			return ferr_set(e, FERR_PROTO_LENGTH, "PAGES: LZ4 entry %u clen %u past frame end",
			    pe->index, pe->data_len);
		return 0;
	case PK_RAW:
		pe->data_len = pe->len;
		if (rd_ptr(r, pe->len, &pe->data) != 0)
			return ferr_set(e, FERR_PROTO_LENGTH, "PAGES: RAW entry %u needs %u bytes", pe->index,
			    pe->len);
		return 0;
	default:
		return ferr_set(e, FERR_PROTO_RANGE, "PAGES: entry %u kind %u unknown", pe->index, pe->kind);
	}
}

/* ---- encoders ---- */


int
msg_hello_encode(struct wr *w, const struct msg_hello *m)
{
	size_t at = frame_begin(w, FT_HELLO);

	wr_u32(w, FERRY_MAGIC);
	wr_u16(w, m->version);
	wr_u16(w, 0);
	wr_u32(w, m->caps);
	wr_u32(w, m->max_frame);
	wr_u64(w, m->hash_seed);
	return frame_finish(w, at);
}

int
msg_welcome_encode(struct wr *w, const struct msg_welcome *m)
{
	size_t at = frame_begin(w, FT_WELCOME);

	wr_u32(w, FERRY_MAGIC);
	wr_u16(w, m->version);
	wr_u16(w, 0);
	wr_u32(w, m->caps);
	wr_u32(w, m->max_frame);
	wr_bytes(w, m->session_id, sizeof(m->session_id));
	return frame_finish(w, at);
}

int
msg_manifest_encode(struct wr *w, const struct msg_manifest *m)
{
	size_t at = frame_begin(w, FT_MANIFEST);
	uint32_t i;

	wr_u32(w, m->ndev);
	wr_u64(w, m->state_size);
	{
		size_t snl = m->state_size != 0 ? strnlen(m->state_name, FERRY_NAME_MAX) : 0;

		wr_u16(w, (uint16_t)snl);
		wr_bytes(w, m->state_name, snl);
	}
	for (i = 0; i < m->ndev && i < FERRY_MAX_DEVICES; i++) {
		const struct dev_desc *d = &m->dev[i];
		size_t nl = strnlen(d->name, FERRY_NAME_MAX);

		wr_u32(w, d->id);
		wr_u8(w, d->kind);
		wr_u8(w, 0);
		wr_u16(w, (uint16_t)nl);
		wr_u32(w, d->unit);
		wr_u64(w, d->size);
		wr_u64(w, d->src_dev);
		wr_u64(w, d->src_ino);
		wr_bytes(w, d->name, nl);
	}
	return frame_finish(w, at);
}

int
msg_accept_encode(struct wr *w, const struct msg_accept *m)
{
	size_t at = frame_begin(w, FT_ACCEPT);

	wr_u64(w, m->next_seq);
	return frame_finish(w, at);
}

static void
text_put(struct wr *w, const char *text)
{
	size_t n = strnlen(text, FERRY_TEXT_MAX);

	wr_u16(w, (uint16_t)n);
	wr_bytes(w, text, n);
}

int
msg_refuse_encode(struct wr *w, const struct msg_text *m)
{
	size_t at = frame_begin(w, FT_REFUSE);

	wr_u32(w, m->code);
	wr_u32(w, m->device);
	text_put(w, m->text);
	return frame_finish(w, at);
}

int
msg_error_encode(struct wr *w, const struct msg_text *m)
{
	size_t at = frame_begin(w, FT_ERROR);

	wr_u32(w, m->code);
	text_put(w, m->text);
	return frame_finish(w, at);
}

int
msg_seq_encode(struct wr *w, uint8_t type, const struct msg_seq *m)
{
	size_t at = frame_begin(w, type);

	wr_u64(w, m->seq);
	return frame_finish(w, at);
}

int
msg_state_encode(struct wr *w, const struct msg_state *m)
{
	size_t at = frame_begin(w, FT_STATE);

	wr_u64(w, m->offset);
	wr_bytes(w, m->data, m->len);
	return frame_finish(w, at);
}

int
msg_commit_encode(struct wr *w, const struct msg_commit *m)
{
	size_t at = frame_begin(w, FT_COMMIT);
	uint32_t i;

	wr_u64(w, m->seq);
	wr_u32(w, m->ndev);
	for (i = 0; i < m->ndev && i < FERRY_MAX_DEVICES; i++) {
		wr_u32(w, m->dev[i].id);
		wr_bytes(w, m->dev[i].digest, FERRY_HASH_LEN);
	}
	wr_bytes(w, m->state_digest, FERRY_HASH_LEN);
	return frame_finish(w, at);
}

int
msg_resume_encode(struct wr *w, const struct msg_resume *m)
{
	size_t at = frame_begin(w, FT_RESUME);

	wr_u32(w, FERRY_MAGIC);
	wr_u16(w, m->version);
	wr_u16(w, 0);
	wr_u32(w, m->max_frame);
	wr_bytes(w, m->session_id, sizeof(m->session_id));
	wr_bytes(w, m->proof, sizeof(m->proof));
	return frame_finish(w, at);
}

int
msg_resumed_encode(struct wr *w, const struct msg_resumed *m)
{
	size_t at = frame_begin(w, FT_RESUMED);

	wr_u32(w, m->status);
	wr_u64(w, m->next_seq);
	wr_u64(w, m->state_offset);
	return frame_finish(w, at);
}

/* Section 4.19: what the receiver already holds of a device. */
int
msg_have_decode(const uint8_t *p, size_t n, struct msg_have *m, struct ferr *e)
{
	struct rd r;

	memset(m, 0, sizeof(*m));
	rd_init(&r, p, n);
	rd_u32(&r, &m->device);
	rd_u32(&r, &m->first);
	rd_u32(&r, &m->count);
	if (r.err)
		return ferr_set(e, FERR_PROTO_LENGTH, "HAVE: truncated");
	if (m->device == 0)
		return ferr_set(e, FERR_PROTO_RANGE, "HAVE: device 0");
	if (m->count == 0)
		return ferr_set(e, FERR_PROTO_RANGE, "HAVE: device %u count 0", m->device);
	/* count < 2^32, so count * 16 fits in 64 bits. */
	if ((uint64_t)m->count * FERRY_HASH_LEN != rd_left(&r))
		return ferr_set(e, FERR_PROTO_LENGTH, "HAVE: device %u count %u needs %llu bytes of "
		    "hashes, %zu follow", m->device, m->count,
		    (unsigned long long)m->count * FERRY_HASH_LEN, rd_left(&r));
	if (m->count > UINT32_MAX - m->first)
		return ferr_set(e, FERR_PROTO_RANGE, "HAVE: device %u first %u + count %u past unit 2^32 - 1",
		    m->device, m->first, m->count);
	(void)rd_ptr(&r, rd_left(&r), &m->hashes);
	return 0;
}

int
msg_have_encode(struct wr *w, const struct msg_have *m)
{
	size_t at = frame_begin(w, FT_HAVE);

	wr_u32(w, m->device);
	wr_u32(w, m->first);
	wr_u32(w, m->count);
	wr_bytes(w, m->hashes, (size_t)m->count * FERRY_HASH_LEN);
	return frame_finish(w, at);
}

size_t
msg_pages_begin(struct wr *w, const struct msg_pages *m)
{
	size_t at = frame_begin(w, FT_PAGES);

	wr_u64(w, m->seq);
	wr_u32(w, m->device);
	wr_u32(w, m->round);
	wr_u32(w, 0);
	return w->err ? SIZE_MAX : at;
}

int
msg_page_put(struct wr *w, const struct page_entry *pe)
{
	wr_u32(w, pe->index);
	wr_u8(w, pe->kind);
	switch (pe->kind) {
	case PK_REF:
		wr_u32(w, pe->src_device);
		wr_u32(w, pe->src_index);
		wr_bytes(w, pe->hash, FERRY_HASH_LEN);
		break;
	case PK_LZ4:
		wr_u32(w, pe->data_len);
		wr_bytes(w, pe->data, pe->data_len);
		break;
	case PK_RAW:
		wr_bytes(w, pe->data, pe->data_len);
		break;
	default:
		break;
	}
	return w->err ? -1 : 0;
}

void
msg_pages_end(struct wr *w, size_t at, uint32_t count)
{
	if (w->err || at == SIZE_MAX)
		return;
	/* count sits after frame header (8) + seq (8) + device (4) + round (4) */
	wr_put_u32_at(w, at + FERRY_FRAME_HDR_LEN + 16, count);
	frame_end(w, at);
}
