#include "frame.h"

#include <stdio.h>

#include "rd.h"

/* Indexed by type.  min/max are payload sizes from PROTOCOL.md section 4. */
static const struct frame_info frame_table[FT_COUNT] = {
	[FT_HELLO] = { "HELLO", 24, 24, FDIR_S2R },
	[FT_WELCOME] = { "WELCOME", 32, 32, FDIR_R2S },
	[FT_MANIFEST] = { "MANIFEST", 14, 0, FDIR_S2R },
	[FT_ACCEPT] = { "ACCEPT", 8, 8, FDIR_R2S },
	[FT_REFUSE] = { "REFUSE", 10, 10 + FERRY_TEXT_MAX, FDIR_R2S },
	[FT_PAGES] = { "PAGES", 20 + FERRY_PAGE_ENTRY_MIN, 0, FDIR_S2R },
	[FT_ACK] = { "ACK", 8, 8, FDIR_R2S },
	[FT_STATE] = { "STATE", 8, 0, FDIR_S2R },
	[FT_COMMIT] = { "COMMIT", 28, 12 + 20 * FERRY_MAX_DEVICES + 16, FDIR_S2R },
	[FT_COMMITTED] = { "COMMITTED", 8, 8, FDIR_R2S },
	[FT_ERROR] = { "ERROR", 6, 6 + FERRY_TEXT_MAX, FDIR_BOTH },
	[FT_RESUME] = { "RESUME", 60, 60, FDIR_S2R },
	[FT_RESUMED] = { "RESUMED", 20, 20, FDIR_R2S },
	[FT_PING] = { "PING", 8, 8, FDIR_BOTH },
	[FT_PONG] = { "PONG", 8, 8, FDIR_BOTH },
	[FT_DOMAIN] = { "DOMAIN", 14, 0, FDIR_S2R },
	[FT_CHECKS] = { "CHECKS", 15, FERRY_CHECKS_PAYLOAD_MAX, FDIR_R2S },
	[FT_QSTREAM] = { "QSTREAM", 20 + FERRY_QITEM_MIN, 0, FDIR_S2R },
	[FT_QRETURN] = { "QRETURN", 9, 8 + FERRY_QRETURN_MAX, FDIR_R2S },
	[FT_HAVE] = { "HAVE", FERRY_HAVE_HDR_LEN + FERRY_HASH_LEN, 0, FDIR_R2S },
};

const struct frame_info *
frame_info(uint8_t type)
{
	if (type == FT_INVALID || type >= FT_COUNT)
		return NULL;
	return &frame_table[type];
}

const char *
frame_name(uint8_t type)
{
	const struct frame_info *fi = frame_info(type);

	return fi != NULL ? fi->name : "UNKNOWN";
}

int
frame_decode_hdr(const uint8_t *p, size_t n, uint32_t max_payload, uint8_t arriving_dir,
    struct frame_hdr *h, struct ferr *e)
{
	const struct frame_info *fi;
	struct rd r;
	uint16_t rsv;
	uint32_t max;

	if (n < FERRY_FRAME_HDR_LEN)
		return FERR_NEED_MORE;
	rd_init(&r, p, FERRY_FRAME_HDR_LEN);
	(void)rd_u8(&r, &h->type);
	(void)rd_u8(&r, &h->flags);
	(void)rd_u16(&r, &rsv);
	(void)rd_u32(&r, &h->len);

	fi = frame_info(h->type);
	if (fi == NULL)
		return ferr_set(e, FERR_PROTO_TYPE, "frame header: type %u unknown", h->type);
	if ((fi->dir & arriving_dir) == 0)
		return ferr_set(e, FERR_PROTO_TYPE, "%s: not allowed in this direction", fi->name);
	if (h->flags != 0)
		return ferr_set(e, FERR_PROTO, "%s: flags 0x%02x set, none defined", fi->name, h->flags);
	if (rsv != 0)
		return ferr_set(e, FERR_PROTO, "%s: reserved field 0x%04x, must be 0", fi->name, rsv);
	max = fi->max_len != 0 ? fi->max_len : max_payload;
	if (max > max_payload)
		max = max_payload;
	if (h->len > max)
		return ferr_set(e, FERR_PROTO_LENGTH, "%s: length %u > max %u", fi->name, h->len, max);
	if (h->len < fi->min_len)
		return ferr_set(e, FERR_PROTO_LENGTH, "%s: length %u < min %u", fi->name, h->len,
		    fi->min_len);
	return 0;
}

size_t
frame_begin(struct wr *w, uint8_t type)
{
	size_t at = w->off;

	wr_u8(w, type);
	wr_u8(w, 0);
	wr_u16(w, 0);
	wr_u32(w, 0);
	return w->err ? SIZE_MAX : at;
}

void
frame_end(struct wr *w, size_t hdr_off)
{
	size_t len;

	if (w->err || hdr_off == SIZE_MAX)
		return;
	len = w->off - hdr_off - FERRY_FRAME_HDR_LEN;
	wr_put_u32_at(w, hdr_off + 4, (uint32_t)len);
}

int
frame_finish(struct wr *w, size_t hdr_off)
{
	frame_end(w, hdr_off);
	return w->err ? -1 : 0;
}
