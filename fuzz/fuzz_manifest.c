/* Fuzz target: the MANIFEST payload decoder (msg_manifest_decode).
 *
 * Input: a MANIFEST payload (no frame header).  When it decodes, every
 * rule of proto/PROTOCOL.md 4.3 is checked on the result, independently of
 * the decoder, and encoding the result must give the input back byte for
 * byte (reserved fields are 0 and lengths exact, so there is one encoding). */
#include "fuzz_common.h"

/* The name rules of 4.3, written again here rather than calling
 * dev_name_valid, so a bug there shows up as a disagreement. */
static int
name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > FERRY_NAME_MAX)
		return 0;
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strncmp(s, ".ferry", 6) == 0)
		return 0;
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '/')
			return 0;
	return 1;
}

static void
check_manifest(const struct msg_manifest *m)
{
	uint64_t total = 0;
	uint32_t i, j;

	FZ_CHECK(m->ndev >= 1 && m->ndev <= FERRY_MAX_DEVICES);
	FZ_CHECK(m->state_size <= FERRY_STATE_SIZE_MAX);
	FZ_CHECK(memchr(m->state_name, '\0', sizeof(m->state_name)) != NULL);
	if (m->state_size == 0)
		FZ_CHECK(m->state_name[0] == '\0');
	else
		FZ_CHECK(name_ok(m->state_name));
	for (i = 0; i < m->ndev; i++) {
		const struct dev_desc *d = &m->dev[i];
		uint64_t units;

		FZ_CHECK(memchr(d->name, '\0', sizeof(d->name)) != NULL);
		FZ_CHECK(d->id != 0);
		FZ_CHECK(d->kind == DK_MEMORY || d->kind == DK_DISK || d->kind == DK_QEMU);
		/* A QEMU stream is the only device: unit 4096, no state blob. */
		if (d->kind == DK_QEMU)
			FZ_CHECK(m->ndev == 1 && d->unit == FERRY_QPAGE_SIZE && m->state_size == 0);
		FZ_CHECK(name_ok(d->name));
		FZ_CHECK(d->unit != 0);
		FZ_CHECK(d->size >= 1 && d->size <= FERRY_DEVICE_SIZE_MAX);
		units = d->size / d->unit + (d->size % d->unit != 0);
		FZ_CHECK(units == dev_units(d));
		FZ_CHECK(units >= 1 && units <= UINT32_MAX);
		/* The last unit holds the rest, and is never empty. */
		FZ_CHECK(dev_unit_len(d, units - 1) >= 1 && dev_unit_len(d, units - 1) <= d->unit);
		FZ_CHECK((units - 1) * d->unit + dev_unit_len(d, units - 1) == d->size);
		if (d->kind != DK_QEMU)   /* a QEMU stream keeps no per-unit tables */
			total += units;
		for (j = 0; j < i; j++) {
			FZ_CHECK(m->dev[j].id != d->id);
			FZ_CHECK(strcmp(m->dev[j].name, d->name) != 0);
		}
		if (m->state_size != 0)
			FZ_CHECK(strcmp(m->state_name, d->name) != 0);
	}
	FZ_CHECK(total <= FERRY_MAX_TOTAL_UNITS);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *payload = fz_dup(data, size);
	struct msg_manifest *m = calloc(1, sizeof(*m));
	struct msg_manifest *m2 = calloc(1, sizeof(*m2));
	struct ferr e = { 0 };
	struct fz_out o;
	struct wr w;
	int rc;

	FZ_CHECK(m != NULL && m2 != NULL);
	/* Fill with garbage first: the decoder must set every field it
	 * promises (names NUL-terminated at their length). */
	memset(m, 0xa5, sizeof(*m));
	rc = msg_manifest_decode(payload, size, m, &e);
	if (rc != 0) {
		FZ_CHECK(rc < 0 && rc != FERR_NEED_MORE && e.code == rc && e.msg[0] != '\0');
		goto out;
	}
	check_manifest(m);

	fz_out_init(&o, FERRY_FRAME_HDR_LEN + size + 64);
	wr_init(&w, o.p, o.cap);
	FZ_CHECK(msg_manifest_encode(&w, m) == 0);
	o.len = w.off;
	fz_same_frame(&o, FT_MANIFEST, payload, size);
	/* And the encoding decodes to the same manifest. */
	FZ_CHECK(msg_manifest_decode(o.p + FERRY_FRAME_HDR_LEN, o.len - FERRY_FRAME_HDR_LEN, m2, &e) == 0);
	FZ_CHECK(m2->ndev == m->ndev && m2->state_size == m->state_size);
	FZ_CHECK(strcmp(m2->state_name, m->state_name) == 0);
	{
		uint32_t i;

		for (i = 0; i < m->ndev; i++) {
			FZ_CHECK(m2->dev[i].id == m->dev[i].id && m2->dev[i].kind == m->dev[i].kind);
			FZ_CHECK(m2->dev[i].unit == m->dev[i].unit && m2->dev[i].size == m->dev[i].size);
			FZ_CHECK(m2->dev[i].src_dev == m->dev[i].src_dev);
			FZ_CHECK(m2->dev[i].src_ino == m->dev[i].src_ino);
			FZ_CHECK(strcmp(m2->dev[i].name, m->dev[i].name) == 0);
		}
	}
	free(o.p);
out:
	free(m);
	free(m2);
	free(payload);
	return 0;
}
