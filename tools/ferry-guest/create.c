/* `ferry-guest create`: write the initial memory and disk images.
 *
 * Both files are sized with ftruncate and only non-zero units are written,
 * so zero pages and blocks are holes.  Consecutive non-zero units are
 * gathered into one pwrite of up to CREATE_CHUNK bytes. */
#include "guest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gen.h"
#include "image.h"
#include "layout.h"

#define CREATE_CHUNK (1024u * 1024u)   /* bytes per pwrite at most */

static int
create_file(const char *path, uint64_t size, int force, int *fd, struct ferr *e)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);

	*fd = open(path, flags, 0644);
	if (*fd < 0 && errno == EEXIST)
		return ferr_set(e, FERR_USAGE, "%s: already exists (use --force to overwrite)", path);
	if (*fd < 0)
		return ferr_set(e, FERR_IO, "%s: %s", path, strerror(errno));
	if (ftruncate(*fd, (off_t)size) != 0)
		return ferr_set(e, FERR_IO, "%s: set size to %llu: %s", path,
		    (unsigned long long)size, strerror(errno));
	return 0;
}

/* Batches consecutive units into one write. */
struct batch {
	int fd;
	const char *path;
	uint8_t *buf;           /* CREATE_CHUNK bytes */
	size_t used;
	uint64_t off;           /* file offset of buf[0] */
};

static int
batch_flush(struct batch *b, struct ferr *e)
{
	int r = 0;

	if (b->used > 0)
		r = img_pwrite(b->fd, b->path, b->buf, b->used, b->off, e);
	b->off += b->used;
	b->used = 0;
	return r;
}

/* Space for the unit at file offset off, flushing as needed. */
static int
batch_slot(struct batch *b, uint64_t off, size_t unit, uint8_t **slot, struct ferr *e)
{
	int r;

	if (b->used > 0 && (off != b->off + b->used || b->used + unit > CREATE_CHUNK))
		if ((r = batch_flush(b, e)) != 0)
			return r;
	if (b->used == 0)
		b->off = off;
	*slot = b->buf + b->used;
	b->used += unit;
	return 0;
}

static int
write_mem(int fd, const struct create_opts *o, uint8_t *buf, struct ferr *e)
{
	struct mem_hdr h = { .seed = o->seed, .mem_size = o->mem_size, .disk_size = o->disk_size };
	struct batch b = { .fd = fd, .path = o->mem, .buf = buf };
	struct gen_map *m = NULL;
	uint8_t *slot;
	uint32_t i;
	int r;

	if ((r = gen_map_new(o->seed, o->mem_size / GUEST_PAGE_SIZE, &m, e)) != 0)
		return r;
	if ((r = batch_slot(&b, 0, GUEST_PAGE_SIZE, &slot, e)) != 0)
		goto out;
	memhdr_encode(&h, slot);
	for (i = 1; i < m->npages; i++) {
		if (m->kind[i] == GEN_ZERO)
			continue;
		if ((r = batch_slot(&b, (uint64_t)i * GUEST_PAGE_SIZE, GUEST_PAGE_SIZE, &slot, e)) != 0)
			goto out;
		gen_page(m, i, slot);
	}
	r = batch_flush(&b, e);
out:
	gen_map_free(m);
	return r;
}

static int
write_disk(int fd, const struct create_opts *o, uint8_t *buf, struct ferr *e)
{
	struct disk_hdr h = { .seed = o->seed, .disk_size = o->disk_size };
	struct batch b = { .fd = fd, .path = o->disk, .buf = buf };
	uint64_t n = o->disk_size / GUEST_BLOCK_SIZE, i;
	uint8_t *slot;
	int r;

	if ((r = batch_slot(&b, 0, GUEST_BLOCK_SIZE, &slot, e)) != 0)
		return r;
	diskhdr_encode(&h, slot);
	for (i = 1; i < n; i++) {
		if (gen_block_kind(o->seed, i) == GEN_ZERO)
			continue;
		if ((r = batch_slot(&b, i * GUEST_BLOCK_SIZE, GUEST_BLOCK_SIZE, &slot, e)) != 0)
			return r;
		(void)gen_block(o->seed, i, slot);
	}
	return batch_flush(&b, e);
}

static int
close_file(int *fd, const char *path, struct ferr *e)
{
	int r = 0;

	if (*fd >= 0 && close(*fd) != 0)
		r = ferr_set(e, FERR_IO, "%s: close: %s", path, strerror(errno));
	*fd = -1;
	return r;
}

int
guest_create(const struct create_opts *o, struct ferr *e)
{
	int mem_fd = -1, disk_fd = -1, made_mem = 0, made_disk = 0;
	uint8_t *buf = NULL;
	struct stat st;
	int r;

	if ((r = layout_check_mem_size(o->mem_size, e)) != 0)
		return ferr_wrap(e, "--mem-size");
	if (o->disk != NULL && (r = layout_check_disk_size(o->disk_size, e)) != 0)
		return ferr_wrap(e, "--disk-size");
	if (o->disk != NULL && strcmp(o->mem, o->disk) == 0)
		return ferr_set(e, FERR_USAGE, "--mem and --disk name the same file %s", o->mem);
	/* refuse before creating either file */
	if (!o->force && stat(o->mem, &st) == 0)
		return ferr_set(e, FERR_USAGE, "%s: already exists (use --force to overwrite)", o->mem);
	if (!o->force && o->disk != NULL && stat(o->disk, &st) == 0)
		return ferr_set(e, FERR_USAGE, "%s: already exists (use --force to overwrite)", o->disk);
	if ((buf = malloc(CREATE_CHUNK)) == NULL)
		return ferr_set(e, FERR_NOMEM, "create: out of memory");

	r = create_file(o->mem, o->mem_size, o->force, &mem_fd, e);
	made_mem = mem_fd >= 0;
	if (r != 0)
		goto out;
	if ((r = write_mem(mem_fd, o, buf, e)) != 0 || (r = close_file(&mem_fd, o->mem, e)) != 0)
		goto out;
	if (o->disk != NULL) {
		r = create_file(o->disk, o->disk_size, o->force, &disk_fd, e);
		made_disk = disk_fd >= 0;
		if (r != 0)
			goto out;
		if ((r = write_disk(disk_fd, o, buf, e)) != 0 ||
		    (r = close_file(&disk_fd, o->disk, e)) != 0)
			goto out;
	}
out:
	if (mem_fd >= 0)
		close(mem_fd);
	if (disk_fd >= 0)
		close(disk_fd);
	/* no half-written image is left behind */
	if (r != 0 && made_mem)
		unlink(o->mem);
	if (r != 0 && made_disk)
		unlink(o->disk);
	free(buf);
	return r;
}
