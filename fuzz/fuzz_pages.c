/* Fuzz target: a PAGES payload (msg_pages_decode + msg_page_next) against
 * one manifest device, and lz4 decoding of its LZ4 entries into a buffer
 * of exactly the unit's length (codec_lz4_decode), as the receiver does.
 *
 * Every entry that decodes is encoded again with msg_page_put; a payload
 * that decodes exactly must come back byte for byte.
 *
 * Input layout:
 *   u8 sel            sel < 0xf0: device devs[sel % NDEVS] below;
 *                     else u32 unit, u64 size follow, folded into a device
 *                     the MANIFEST decoder would accept (unit <= 1 MiB so
 *                     the unit buffer stays small)
 *   bytes             the PAGES payload (no frame header): u64 seq,
 *                     u32 device, u32 round, u32 count, entries
 */
#include "fuzz_common.h"

#include "codec_lz4.h"

static const struct {
	uint32_t unit;
	uint64_t size;
} devs[] = {
	{ 4096, 16 * 4096 },                 /* memory, whole units */
	{ 4096, 2 * 4096 + 100 },            /* disk, short last unit */
	{ 65536, 1u << 20 },
	{ 1u << 20, (1u << 20) + 1 },        /* last unit 1 byte */
	{ 4096, 1 },                         /* one unit of one byte */
	{ 3000, 10000 },                     /* not a power of two: decoders allow it */
	{ 1, 100 },                          /* unit of one byte: no LZ4 possible */
	{ 1u << 20, 1ull << 44 },            /* 2^24 units, the session maximum */
};
#define NDEVS (sizeof(devs) / sizeof(devs[0]))

static void
pick_device(const uint8_t **p, size_t *n, struct dev_desc *d)
{
	uint8_t sel = (*p)[0];

	memset(d, 0, sizeof(*d));
	d->id = 7;
	d->kind = DK_DISK;
	memcpy(d->name, "disk0", 6);
	(*p)++;
	(*n)--;
	if (sel < 0xf0 || *n < 12) {
		d->unit = devs[sel % NDEVS].unit;
		d->size = devs[sel % NDEVS].size;
		return;
	}
	{
		uint64_t lim;

		d->unit = 1 + fz_be32(*p) % FERRY_UNIT_MAX;
		/* Fold into [1, 2^46] and at most 2^32 - 1 units. */
		lim = (uint64_t)d->unit * UINT32_MAX;
		if (lim > FERRY_DEVICE_SIZE_MAX)
			lim = FERRY_DEVICE_SIZE_MAX;
		d->size = 1 + fz_be64(*p + 4) % lim;
		*p += 12;
		*n -= 12;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dev_desc d;
	struct msg_pages ph;
	struct page_entry pe;
	struct ferr e = { 0 };
	struct rd r;
	struct fz_out o = { NULL, 0, 0 };
	struct wr w;
	uint8_t *payload;
	size_t at;
	uint32_t i;
	int rc;

	if (size < 1)
		return 0;
	pick_device(&data, &size, &d);
	FZ_CHECK(dev_units(&d) >= 1 && dev_units(&d) <= UINT32_MAX);

	payload = fz_dup(data, size);
	rd_init(&r, payload, size);
	if ((rc = msg_pages_decode(&r, &ph, &e)) != 0) {
		FZ_CHECK(rc < 0 && e.code == rc);
		goto out;
	}
	FZ_CHECK(ph.count >= 1 && ph.count <= FERRY_MAX_PAGES_PER_FRAME);
	FZ_CHECK(r.off == 20);
	/* Re-encode what decodes, entry by entry, as the sender builds it. */
	fz_out_init(&o, FERRY_FRAME_HDR_LEN + size);
	wr_init(&w, o.p, o.cap);
	at = msg_pages_begin(&w, &ph);
	FZ_CHECK(at == 0);
	for (i = 0; i < ph.count; i++) {
		memset(&pe, 0, sizeof(pe));
		if ((rc = msg_page_next(&r, &d, &pe, &e)) != 0) {
			FZ_CHECK(rc < 0 && e.code == rc);
			goto out;
		}
		FZ_CHECK(msg_page_put(&w, &pe) == 0);
		FZ_CHECK((uint64_t)pe.index < dev_units(&d));
		FZ_CHECK(pe.len == dev_unit_len(&d, pe.index) && pe.len >= 1 && pe.len <= d.unit);
		if (pe.kind == PK_LZ4) {
			uint8_t *unit;

			FZ_CHECK(pe.data_len >= 1 && pe.data_len < pe.len);
			FZ_CHECK(pe.data >= payload && (size_t)(pe.data - payload) <= size - pe.data_len);
			/* Decode from an exact copy into an exact unit buffer; on
			 * success decode again into a buffer filled differently:
			 * both must agree, so every byte of the unit was written. */
			{
				uint8_t *src = fz_dup(pe.data, pe.data_len);
				uint8_t *unit2;
				struct ferr le = { 0 };

				unit = malloc(pe.len);
				FZ_CHECK(unit != NULL);
				rc = codec_lz4_decode(src, pe.data_len, unit, pe.len, "PAGES: LZ4 entry", &le);
				FZ_CHECK(rc == 0 || (rc == FERR_PROTO_CODEC && le.code == rc));
				if (rc == 0) {
					unit2 = malloc(pe.len);
					FZ_CHECK(unit2 != NULL);
					memset(unit2, 0xff, pe.len);
					FZ_CHECK(codec_lz4_decode(src, pe.data_len, unit2, pe.len, "again", &le) == 0);
					FZ_CHECK(memcmp(unit, unit2, pe.len) == 0);
					free(unit2);
				}
				free(src);
				free(unit);
			}
		} else if (pe.kind == PK_RAW) {
			FZ_CHECK(pe.data_len == pe.len);
			FZ_CHECK(pe.data >= payload && (size_t)(pe.data - payload) <= size - pe.data_len);
			(void)fz_touch(pe.data, pe.data_len);
		} else {
			FZ_CHECK(pe.kind == PK_ZERO || pe.kind == PK_REF);
			FZ_CHECK(pe.data == NULL && pe.data_len == 0);
		}
	}
	/* A payload that decoded exactly has one encoding: this one. */
	if (rd_end(&r) == 0) {
		msg_pages_end(&w, at, ph.count);
		FZ_CHECK(w.err == 0);
		o.len = w.off;
		fz_same_frame(&o, FT_PAGES, payload, size);
	}
out:
	free(o.p);
	free(payload);
	return 0;
}
