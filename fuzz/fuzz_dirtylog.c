/* Fuzz target: the dirty log header parser (src/common/dirtylog.c,
 * proto/DIRTYLOG.md).
 *
 * Input: the first bytes of a dirty log file.  dirtylog_parse runs twice:
 * with the input's length as the file size, and with a file size taken
 * from the input's first 8 bytes.  What it promises is checked: an error
 * has a code of its class and a message; an accepted layout has every
 * count in range, bitmaps that follow one another at 64-byte offsets,
 * inside the file, after the header and the slots, and a file size equal
 * to the given one; and dirtylog_layout_for rebuilds the same layout from
 * the parsed counts. */
#include "fuzz_common.h"

#include "dirtylog.h"

static void
check(const uint8_t *data, size_t size, uint64_t file_size)
{
	struct dirtylog_layout l, again;
	struct ferr e = { 0 };
	uint32_t unit[DIRTYLOG_MAX_DEV];
	uint64_t nunits[DIRTYLOG_MAX_DEV], end;
	uint32_t i;
	int rc;

	rc = dirtylog_parse(data, size, file_size, &l, &e);
	if (rc != 0) {
		FZ_CHECK(rc == FERR_PROTO_VERSION || rc == FERR_PROTO_RANGE || rc == FERR_PROTO_LENGTH);
		FZ_CHECK(e.code == rc && e.msg[0] != '\0');
		return;
	}
	FZ_CHECK(l.ndev >= 1 && l.ndev <= DIRTYLOG_MAX_DEV);
	FZ_CHECK(l.nslots >= 1 && l.nslots <= DIRTYLOG_MAX_SLOTS);
	FZ_CHECK(l.size == file_size && l.size % DIRTYLOG_ALIGN == 0);
	FZ_CHECK(l.slots_off >= DIRTYLOG_HDR_FIXED + (uint64_t)l.ndev * DIRTYLOG_HDR_PER_DEV);
	end = l.slots_off + (uint64_t)l.nslots * 8;
	for (i = 0; i < l.ndev; i++) {
		FZ_CHECK(l.dev[i].off % DIRTYLOG_ALIGN == 0 && l.dev[i].off >= end);
		FZ_CHECK(l.dev[i].nwords == (l.dev[i].nunits + 63) / 64);
		end = l.dev[i].off + l.dev[i].nwords * 8;
		unit[i] = l.dev[i].unit;
		nunits[i] = l.dev[i].nunits;
	}
	FZ_CHECK(end <= l.size);
	FZ_CHECK(dirtylog_layout_for(l.ndev, unit, nunits, l.nslots, &again, &e) == 0);
	FZ_CHECK(again.size == l.size && again.slots_off == l.slots_off);
	for (i = 0; i < l.ndev; i++)
		FZ_CHECK(again.dev[i].off == l.dev[i].off);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p = calloc(1, size > 0 ? size : 1);   /* exact size: ASan sees an overrun */
	uint64_t fs = 0;
	size_t i;

	FZ_CHECK(p != NULL);
	if (size > 0)
		memcpy(p, data, size);

	check(p, size, size);
	for (i = 0; i < 8 && i < size; i++)
		fs = fs << 8 | p[i];
	check(p, size, fs);
	free(p);
	return 0;
}
