#include "dirtylog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rd.h"
#include "wr.h"

#define DIRTYLOG_MAX_FILE (1ull << 30)
#define DIRTYLOG_UNIT_MIN 512u
#define DIRTYLOG_UNIT_MAX (1u << 20)
#define DIRTYLOG_MAX_UNITS (1ull << 32)

static uint64_t
align_up(uint64_t v)
{
	return (v + DIRTYLOG_ALIGN - 1) / DIRTYLOG_ALIGN * DIRTYLOG_ALIGN;
}

static uint64_t
header_len(uint32_t ndev)
{
	return DIRTYLOG_HDR_FIXED + (uint64_t)ndev * DIRTYLOG_HDR_PER_DEV;
}

/* Where each bitmap lies, once ndev and every device's unit count are
 * known and checked. */
static void
place(struct dirtylog_layout *l)
{
	uint64_t off = align_up(header_len(l->ndev));
	uint32_t i;

	l->slots_off = off;
	off = align_up(off + (uint64_t)l->nslots * 8);
	for (i = 0; i < l->ndev; i++) {
		l->dev[i].nwords = (l->dev[i].nunits + 63) / 64;
		l->dev[i].off = off;
		off = align_up(off + l->dev[i].nwords * 8);
	}
	l->size = off;
}

static int
check_dev(uint32_t i, uint32_t unit, uint64_t nunits, struct ferr *e)
{
	if (unit < DIRTYLOG_UNIT_MIN || unit > DIRTYLOG_UNIT_MAX || (unit & (unit - 1)) != 0)
		return ferr_set(e, FERR_PROTO_RANGE, "dirty log: device %u unit %u is not a power of two "
		    "in %u..%u", i, unit, DIRTYLOG_UNIT_MIN, DIRTYLOG_UNIT_MAX);
	if (nunits == 0 || nunits > DIRTYLOG_MAX_UNITS)
		return ferr_set(e, FERR_PROTO_RANGE, "dirty log: device %u nunits %llu not in 1..2^32", i,
		    (unsigned long long)nunits);
	return 0;
}

int
dirtylog_parse(const uint8_t *p, size_t len, uint64_t file_size, struct dirtylog_layout *l,
    struct ferr *e)
{
	uint8_t magic[8];
	uint32_t version, reserved0, i;
	struct rd r;
	int rc;

	memset(l, 0, sizeof(*l));
	rd_init(&r, p, len);
	if (rd_copy(&r, magic, sizeof(magic)) != 0 || rd_u32(&r, &version) != 0 ||
	    rd_u32(&r, &l->ndev) != 0 || rd_u32(&r, &l->nslots) != 0 || rd_u32(&r, &reserved0) != 0)
		return ferr_set(e, FERR_PROTO_LENGTH, "dirty log: header of %zu bytes, need %u", len,
		    DIRTYLOG_HDR_FIXED);
	if (memcmp(magic, DIRTYLOG_MAGIC, sizeof(magic)) != 0)
		return ferr_set(e, FERR_PROTO_VERSION, "dirty log: magic is not %s", DIRTYLOG_MAGIC);
	if (version != DIRTYLOG_VERSION)
		return ferr_set(e, FERR_PROTO_VERSION, "dirty log: version %u, this reads %u", version,
		    DIRTYLOG_VERSION);
	if (l->ndev == 0 || l->ndev > DIRTYLOG_MAX_DEV)
		return ferr_set(e, FERR_PROTO_RANGE, "dirty log: ndev %u not in 1..%u", l->ndev,
		    DIRTYLOG_MAX_DEV);
	if (l->nslots == 0 || l->nslots > DIRTYLOG_MAX_SLOTS)
		return ferr_set(e, FERR_PROTO_RANGE, "dirty log: nslots %u not in 1..%u", l->nslots,
		    DIRTYLOG_MAX_SLOTS);
	if (reserved0 != 0)
		return ferr_set(e, FERR_PROTO_RANGE, "dirty log: header reserved field is %u, must be 0",
		    reserved0);
	for (i = 0; i < l->ndev; i++) {
		uint32_t reserved;

		if (rd_u32(&r, &l->dev[i].unit) != 0 || rd_u32(&r, &reserved) != 0 ||
		    rd_u64(&r, &l->dev[i].nunits) != 0)
			return ferr_set(e, FERR_PROTO_LENGTH, "dirty log: header ends in device %u's entry "
			    "(%zu bytes, need %llu)", i, len, (unsigned long long)header_len(l->ndev));
		if (reserved != 0)
			return ferr_set(e, FERR_PROTO_RANGE, "dirty log: device %u reserved field is %u, "
			    "must be 0", i, reserved);
		if ((rc = check_dev(i, l->dev[i].unit, l->dev[i].nunits, e)) != 0)
			return rc;
	}
	place(l);
	if (file_size != l->size)
		return ferr_set(e, FERR_PROTO_LENGTH, "dirty log: file size %llu, its header says %llu",
		    (unsigned long long)file_size, (unsigned long long)l->size);
	return 0;
}

int
dirtylog_layout_for(uint32_t ndev, const uint32_t *unit, const uint64_t *nunits,
    uint32_t nslots, struct dirtylog_layout *l, struct ferr *e)
{
	uint32_t i;
	int rc;

	memset(l, 0, sizeof(*l));
	if (ndev == 0 || ndev > DIRTYLOG_MAX_DEV)
		return ferr_set(e, FERR_PROTO_RANGE, "dirty log: ndev %u not in 1..%u", ndev,
		    DIRTYLOG_MAX_DEV);
	if (nslots == 0 || nslots > DIRTYLOG_MAX_SLOTS)
		return ferr_set(e, FERR_PROTO_RANGE, "dirty log: nslots %u not in 1..%u", nslots,
		    DIRTYLOG_MAX_SLOTS);
	l->ndev = ndev;
	l->nslots = nslots;
	for (i = 0; i < ndev; i++) {
		if ((rc = check_dev(i, unit[i], nunits[i], e)) != 0)
			return rc;
		l->dev[i].unit = unit[i];
		l->dev[i].nunits = nunits[i];
	}
	place(l);
	return 0;
}

static int
map_file(struct dirtylog *dl, int fd, uint64_t size, struct ferr *e)
{
	void *m = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (m == MAP_FAILED)
		return ferr_set(e, FERR_IO, "dirty log '%s': mmap: %s", dl->path, strerror(errno));
	dl->map = m;
	dl->fd = fd;
	return 0;
}

int
dirtylog_create(struct dirtylog *dl, const char *path, uint32_t ndev, const uint32_t *unit,
    const uint64_t *nunits, uint32_t nslots, struct ferr *e)
{
	char tmp[sizeof(dl->path) + 16];
	uint8_t *hdr;
	struct wr w;
	uint32_t i;
	int fd, rc;

	memset(dl, 0, sizeof(*dl));
	dl->fd = -1;
	if (snprintf(dl->path, sizeof(dl->path), "%s", path) >= (int)sizeof(dl->path))
		return ferr_set(e, FERR_USAGE, "dirty log '%s': path too long", path);
	if ((rc = dirtylog_layout_for(ndev, unit, nunits, nslots, &dl->l, e)) != 0)
		return rc;
	if (dl->l.size > DIRTYLOG_MAX_FILE)
		return ferr_set(e, FERR_USAGE, "dirty log '%s': %llu bytes, at most 1 GiB", path,
		    (unsigned long long)dl->l.size);
	snprintf(tmp, sizeof(tmp), "%s.tmp-XXXXXX", path);
	if ((fd = mkstemp(tmp)) < 0)
		return ferr_set(e, FERR_IO, "dirty log '%s': creating %s: %s", path, tmp, strerror(errno));
	hdr = calloc(1, (size_t)header_len(ndev));
	if (hdr == NULL) {
		rc = ferr_set(e, FERR_NOMEM, "dirty log '%s': header", path);
		goto fail;
	}
	wr_init(&w, hdr, (size_t)header_len(ndev));
	wr_bytes(&w, DIRTYLOG_MAGIC, 8);
	wr_u32(&w, DIRTYLOG_VERSION);
	wr_u32(&w, ndev);
	wr_u32(&w, nslots);
	wr_u32(&w, 0);
	for (i = 0; i < ndev; i++) {
		wr_u32(&w, unit[i]);
		wr_u32(&w, 0);
		wr_u64(&w, nunits[i]);
	}
	/* Slots and bitmaps start clear: the file is sized first (zeros),
	 * then the header written. */
	if (ftruncate(fd, (off_t)dl->l.size) != 0 || pwrite(fd, hdr, w.off, 0) != (ssize_t)w.off) {
		rc = ferr_set(e, FERR_IO, "dirty log '%s': writing %s: %s", path, tmp, strerror(errno));
		goto fail;
	}
	if (rename(tmp, path) != 0) {
		rc = ferr_set(e, FERR_IO, "dirty log '%s': rename from %s: %s", path, tmp,
		    strerror(errno));
		goto fail;
	}
	free(hdr);
	if ((rc = map_file(dl, fd, dl->l.size, e)) != 0)
		close(fd);
	return rc;
fail:
	free(hdr);
	close(fd);
	unlink(tmp);
	return rc;
}

int
dirtylog_open(struct dirtylog *dl, const char *path, struct ferr *e)
{
	uint8_t hdr[DIRTYLOG_HDR_FIXED + DIRTYLOG_MAX_DEV * DIRTYLOG_HDR_PER_DEV];
	struct stat sb;
	ssize_t n;
	int fd, rc;

	memset(dl, 0, sizeof(*dl));
	dl->fd = -1;
	if (snprintf(dl->path, sizeof(dl->path), "%s", path) >= (int)sizeof(dl->path))
		return ferr_set(e, FERR_USAGE, "dirty log '%s': path too long", path);
	if ((fd = open(path, O_RDWR | O_CLOEXEC | O_NOCTTY)) < 0)
		return ferr_set(e, FERR_IO, "dirty log '%s': %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		rc = ferr_set(e, FERR_IO, "dirty log '%s': not a regular file", path);
		goto fail;
	}
	if (sb.st_size < (off_t)DIRTYLOG_HDR_FIXED || (uint64_t)sb.st_size > DIRTYLOG_MAX_FILE) {
		rc = ferr_set(e, FERR_PROTO_LENGTH, "dirty log '%s': %lld bytes, not in %u..1 GiB", path,
		    (long long)sb.st_size, DIRTYLOG_HDR_FIXED);
		goto fail;
	}
	n = pread(fd, hdr, sizeof(hdr), 0);
	if (n < 0) {
		rc = ferr_set(e, FERR_IO, "dirty log '%s': %s", path, strerror(errno));
		goto fail;
	}
	if ((rc = dirtylog_parse(hdr, (size_t)n, (uint64_t)sb.st_size, &dl->l, e)) != 0) {
		ferr_wrap(e, "%s", path);
		goto fail;
	}
	if ((rc = map_file(dl, fd, dl->l.size, e)) != 0)
		goto fail;
	return 0;
fail:
	close(fd);
	return rc;
}

void
dirtylog_close(struct dirtylog *dl)
{
	if (dl->map != NULL)
		munmap(dl->map, (size_t)dl->l.size);
	if (dl->fd >= 0)
		close(dl->fd);
	dl->map = NULL;
	dl->fd = -1;
}

static uint64_t *
words(struct dirtylog *dl, uint32_t dev)
{
	return (uint64_t *)(void *)(dl->map + dl->l.dev[dev].off);
}

static uint64_t *
slots(struct dirtylog *dl)
{
	return (uint64_t *)(void *)(dl->map + dl->l.slots_off);
}

void
dirtylog_begin(struct dirtylog *dl, uint32_t slot, uint32_t dev, uint64_t idx)
{
	if (dl->map == NULL || slot >= dl->l.nslots || dev >= dl->l.ndev ||
	    idx >= dl->l.dev[dev].nunits)
		return;
	/* Seen by a reader before any byte of the unit changes. */
	__atomic_store_n(&slots(dl)[slot], ((uint64_t)dev << 32 | idx) + 1, __ATOMIC_SEQ_CST);
}

void
dirtylog_mark(struct dirtylog *dl, uint32_t dev, uint64_t idx)
{
	if (dl->map == NULL || dev >= dl->l.ndev || idx >= dl->l.dev[dev].nunits)
		return;
	__atomic_fetch_or(&words(dl, dev)[idx / 64], 1ull << (idx % 64), __ATOMIC_RELEASE);
}

void
dirtylog_end(struct dirtylog *dl, uint32_t slot)
{
	if (dl->map == NULL || slot >= dl->l.nslots)
		return;
	__atomic_store_n(&slots(dl)[slot], 0, __ATOMIC_RELEASE);
}

uint64_t
dirtylog_take(struct dirtylog *dl, uint32_t dev, uint64_t *out)
{
	uint64_t *w, i, got = 0;

	if (dl->map == NULL || dev >= dl->l.ndev)
		return 0;
	w = words(dl, dev);
	for (i = 0; i < dl->l.dev[dev].nwords; i++) {
		uint64_t v;

		if (__atomic_load_n(&w[i], __ATOMIC_RELAXED) == 0)
			continue;
		v = __atomic_exchange_n(&w[i], 0, __ATOMIC_ACQ_REL);
		out[i] |= v;
		got += (uint64_t)__builtin_popcountll(v);
	}
	/* A writer may be stopped in the middle of a change it has not
	 * marked yet: its slot names the unit. */
	for (i = 0; i < dl->l.nslots; i++) {
		uint64_t v = __atomic_load_n(&slots(dl)[i], __ATOMIC_ACQUIRE), idx;

		if (v == 0 || (v - 1) >> 32 != dev)
			continue;
		idx = (v - 1) & 0xffffffffull;
		if (idx >= dl->l.dev[dev].nunits)
			continue;
		if (!(out[idx / 64] & (1ull << (idx % 64))))
			got++;
		out[idx / 64] |= 1ull << (idx % 64);
	}
	return got;
}
