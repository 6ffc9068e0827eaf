/* DOMAIN and CHECKS payload codecs (proto/PROTOCOL.md sections 4.15 and
 * 4.16): the libvirt extension, used only when both sides negotiated
 * FERRY_CAP_DOMAIN.  Pure functions over bytes, like msg.c. */
#include "msg.h"

#include <string.h>

#include "frame.h"

/* A u8- or u16-length-prefixed string of at most max bytes into out
 * (NUL-terminated).  allow(c) says which bytes may appear; control bytes
 * are never allowed in names, and are replaced by '?' in free text. */
enum str_kind { SK_NAME, SK_HOST, SK_UUID, SK_TEXT };

static int
byte_ok(enum str_kind k, unsigned char c)
{
	switch (k) {
	case SK_NAME:   /* check names: lower-case letters, digits, '-' */
		return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
	case SK_HOST:   /* arch and CPU model tokens */
		return c > 0x20 && c < 0x7f;
	case SK_UUID:
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-';
	case SK_TEXT:
		return 1;
	}
	return 0;
}

static int
str_decode(struct rd *r, int wide, size_t min, size_t max, enum str_kind k, char *out,
    const char *what, struct ferr *e)
{
	uint16_t len16 = 0;
	uint8_t len8 = 0;
	size_t len, i;

	if (wide)
		rd_u16(r, &len16);
	else
		rd_u8(r, &len8);
	len = wide ? len16 : len8;
	if (r->err)
		return ferr_set(e, FERR_PROTO_LENGTH, "%s: truncated", what);
	if (len < min || len > max)
		return ferr_set(e, FERR_PROTO_RANGE, "%s: length %zu outside [%zu, %zu]", what, len,
		    min, max);
	if (rd_copy(r, out, len) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "%s: truncated", what);
	out[len] = '\0';
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)out[i];

		if (k == SK_TEXT) {
			if (c < 0x20 || c == 0x7f)
				out[i] = '?';
		} else if (!byte_ok(k, c)) {
			return ferr_set(e, FERR_PROTO_RANGE, "%s: byte 0x%02x at %zu not allowed", what, c,
			    i);
		}
	}
	return 0;
}

int
msg_domain_decode(const uint8_t *p, size_t n, struct msg_domain *m, struct ferr *e)
{
	struct rd r;
	uint8_t nw;
	uint32_t i, j;
	int rc;

	memset(m, 0, sizeof(*m));
	rd_init(&r, p, n);
	rd_u32(&r, &m->flags);
	if (r.err)
		return ferr_set(e, FERR_PROTO_LENGTH, "DOMAIN: truncated");
	if ((m->flags & ~FERRY_DOMAIN_CHECK_ONLY) != 0)
		return ferr_set(e, FERR_PROTO, "DOMAIN: unknown flags 0x%08x", m->flags);
	if ((rc = str_decode(&r, 0, 1, FERRY_HOST_TOKEN_MAX, SK_HOST, m->arch, "DOMAIN arch", e)) != 0 ||
	    (rc = str_decode(&r, 0, 0, FERRY_HOST_TOKEN_MAX, SK_HOST, m->model, "DOMAIN model", e)) != 0 ||
	    (rc = str_decode(&r, 0, 0, FERRY_UUID_LEN, SK_UUID, m->uuid, "DOMAIN uuid", e)) != 0)
		return rc;
	if (m->uuid[0] != '\0' && strlen(m->uuid) != FERRY_UUID_LEN)
		return ferr_set(e, FERR_PROTO_RANGE, "DOMAIN uuid: %zu bytes, expected 0 or %u",
		    strlen(m->uuid), FERRY_UUID_LEN);
	rd_u8(&r, &nw);
	if (r.err)
		return ferr_set(e, FERR_PROTO_LENGTH, "DOMAIN: truncated");
	if (nw > FERRY_WAIVE_MAX)
		return ferr_set(e, FERR_PROTO_RANGE, "DOMAIN: %u waived checks > %u", nw, FERRY_WAIVE_MAX);
	m->nwaive = nw;
	for (i = 0; i < m->nwaive; i++) {
		if ((rc = str_decode(&r, 0, 1, FERRY_CHECK_NAME_MAX, SK_NAME, m->waive[i],
		    "DOMAIN waived check", e)) != 0)
			return rc;
		for (j = 0; j < i; j++)
			if (strcmp(m->waive[i], m->waive[j]) == 0)
				return ferr_set(e, FERR_PROTO_RANGE, "DOMAIN: check '%s' waived twice",
				    m->waive[i]);
	}
	rd_u32(&r, &m->xml_len);
	if (r.err)
		return ferr_set(e, FERR_PROTO_LENGTH, "DOMAIN: truncated");
	if (m->xml_len == 0 || m->xml_len > FERRY_DOMAIN_XML_MAX)
		return ferr_set(e, FERR_PROTO_RANGE, "DOMAIN: xml_len %u outside [1, %u]", m->xml_len,
		    FERRY_DOMAIN_XML_MAX);
	if (rd_ptr(&r, m->xml_len, &m->xml) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "DOMAIN: xml truncated (%u bytes declared)",
		    m->xml_len);
	if (rd_end(&r) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "DOMAIN: %zu trailing bytes", rd_left(&r));
	return 0;
}

int
msg_checks_decode(const uint8_t *p, size_t n, struct msg_checks *m, struct ferr *e)
{
	struct rd r;
	uint16_t nrows;
	uint32_t i;
	int rc;

	memset(m, 0, sizeof(*m));
	rd_init(&r, p, n);
	rd_u16(&r, &nrows);
	if (r.err)
		return ferr_set(e, FERR_PROTO_LENGTH, "CHECKS: truncated");
	if (nrows == 0 || nrows > FERRY_CHECKS_MAX)
		return ferr_set(e, FERR_PROTO_RANGE, "CHECKS: %u rows outside [1, %u]", nrows,
		    FERRY_CHECKS_MAX);
	m->n = nrows;
	for (i = 0; i < m->n; i++) {
		struct check_row *c = &m->row[i];

		rd_u8(&r, &c->status);
		rd_u32(&r, &c->code);
		if (r.err)
			return ferr_set(e, FERR_PROTO_LENGTH, "CHECKS: row %u truncated", i);
		if (c->status < CS_PASS || c->status > CS_WAIVED)
			return ferr_set(e, FERR_PROTO_RANGE, "CHECKS: row %u status %u", i, c->status);
		if (c->status != CS_PASS && c->code == 0)
			return ferr_set(e, FERR_PROTO_RANGE, "CHECKS: row %u failed with code 0", i);
		if ((rc = str_decode(&r, 0, 1, FERRY_CHECK_NAME_MAX, SK_NAME, c->name, "CHECKS name", e)) != 0 ||
		    (rc = str_decode(&r, 1, 0, FERRY_CHECK_VALUE_MAX, SK_TEXT, c->src, "CHECKS source", e)) != 0 ||
		    (rc = str_decode(&r, 1, 0, FERRY_CHECK_VALUE_MAX, SK_TEXT, c->dst, "CHECKS destination", e)) != 0 ||
		    (rc = str_decode(&r, 1, 0, FERRY_CHECK_WHY_MAX, SK_TEXT, c->why, "CHECKS why", e)) != 0)
			return rc;
	}
	if (rd_end(&r) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "CHECKS: %zu trailing bytes", rd_left(&r));
	return 0;
}

static void
str_put(struct wr *w, int wide, const char *s, size_t max)
{
	size_t n = strnlen(s, max);

	if (wide)
		wr_u16(w, (uint16_t)n);
	else
		wr_u8(w, (uint8_t)n);
	wr_bytes(w, s, n);
}


int
msg_domain_encode(struct wr *w, const struct msg_domain *m)
{
	size_t at = frame_begin(w, FT_DOMAIN);
	uint32_t i;

	wr_u32(w, m->flags);
	str_put(w, 0, m->arch, FERRY_HOST_TOKEN_MAX);
	str_put(w, 0, m->model, FERRY_HOST_TOKEN_MAX);
	str_put(w, 0, m->uuid, FERRY_UUID_LEN);
	wr_u8(w, (uint8_t)(m->nwaive < FERRY_WAIVE_MAX ? m->nwaive : FERRY_WAIVE_MAX));
	for (i = 0; i < m->nwaive && i < FERRY_WAIVE_MAX; i++)
		str_put(w, 0, m->waive[i], FERRY_CHECK_NAME_MAX);
	wr_u32(w, m->xml_len);
	wr_bytes(w, m->xml, m->xml_len);
	return frame_finish(w, at);
}

int
msg_checks_encode(struct wr *w, const struct msg_checks *m)
{
	size_t at = frame_begin(w, FT_CHECKS);
	uint32_t i, n = m->n < FERRY_CHECKS_MAX ? m->n : FERRY_CHECKS_MAX;

	wr_u16(w, (uint16_t)n);
	for (i = 0; i < n; i++) {
		const struct check_row *c = &m->row[i];

		wr_u8(w, c->status);
		wr_u32(w, c->code);
		str_put(w, 0, c->name, FERRY_CHECK_NAME_MAX);
		str_put(w, 1, c->src, FERRY_CHECK_VALUE_MAX);
		str_put(w, 1, c->dst, FERRY_CHECK_VALUE_MAX);
		str_put(w, 1, c->why, FERRY_CHECK_WHY_MAX);
	}
	return frame_finish(w, at);
}

_Static_assert(FERRY_CHECKS_PAYLOAD_MAX == 2 + FERRY_CHECKS_MAX * (1 + 4 + 1 + FERRY_CHECK_NAME_MAX +
    2 + FERRY_CHECK_VALUE_MAX + 2 + FERRY_CHECK_VALUE_MAX + 2 + FERRY_CHECK_WHY_MAX),
    "FERRY_CHECKS_PAYLOAD_MAX is the largest CHECKS payload");
