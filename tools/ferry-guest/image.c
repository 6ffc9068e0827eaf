#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int
img_pread(int fd, const char *path, void *buf, size_t n, uint64_t off, struct ferr *e)
{
	uint8_t *p = buf;

	while (n > 0) {
		ssize_t got = pread(fd, p, n, (off_t)off);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return ferr_set(e, FERR_IO, "%s: read at offset %llu: %s", path,
			    (unsigned long long)off, strerror(errno));
		if (got == 0)
			return ferr_set(e, FERR_IO, "%s: unexpected end of file at offset %llu", path,
			    (unsigned long long)off);
		p += got;
		n -= (size_t)got;
		off += (uint64_t)got;
	}
	return 0;
}

int
img_pread_sparse(int fd, const char *path, void *buf, size_t n, uint64_t off, struct ferr *e)
{
	uint8_t *p = buf;
	uint64_t end = off + n, data, hole;
	off_t at;

	while (off < end) {
		at = lseek(fd, (off_t)off, SEEK_DATA);
		if (at < 0 && errno == ENXIO) {
			data = end;                     /* only a hole up to the end */
		} else if (at < 0) {
			return img_pread(fd, path, p, (size_t)(end - off), off, e);
		} else {
			data = (uint64_t)at < end ? (uint64_t)at : end;
		}
		memset(p, 0, (size_t)(data - off));
		p += data - off;
		off = data;
		if (off >= end)
			break;
		at = lseek(fd, (off_t)off, SEEK_HOLE);
		hole = at < 0 || (uint64_t)at > end ? end : (uint64_t)at;
		if (hole <= off)
			hole = end;
		if (img_pread(fd, path, p, (size_t)(hole - off), off, e) != 0)
			return FERR_IO;
		p += hole - off;
		off = hole;
	}
	return 0;
}

int
img_pwrite(int fd, const char *path, const void *buf, size_t n, uint64_t off, struct ferr *e)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t put = pwrite(fd, p, n, (off_t)off);

		if (put < 0 && errno == EINTR)
			continue;
		if (put <= 0)
			return ferr_set(e, FERR_IO, "%s: write at offset %llu: %s", path,
			    (unsigned long long)off, put < 0 ? strerror(errno) : "no progress");
		p += put;
		n -= (size_t)put;
		off += (uint64_t)put;
	}
	return 0;
}

static int
open_regular(const char *path, int flags, uint64_t *size, uint64_t *allocated, struct ferr *e)
{
	struct stat st;
	int fd;

	fd = open(path, ((flags & IMG_WRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return ferr_set(e, FERR_IO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0) {
		ferr_set(e, FERR_IO, "%s: stat: %s", path, strerror(errno));
		close(fd);
		return FERR_IO;
	}
	if (!S_ISREG(st.st_mode)) {
		ferr_set(e, FERR_IO, "%s: not a regular file", path);
		close(fd);
		return FERR_IO;
	}
	*size = (uint64_t)st.st_size;
	if (allocated != NULL)
		*allocated = (uint64_t)st.st_blocks * 512;
	return fd;
}

int
mem_img_init(struct mem_img *m, const char *path, int flags, struct ferr *e)
{
	uint8_t page[GUEST_PAGE_SIZE];
	int prot = PROT_READ | ((flags & IMG_WRITE) ? PROT_WRITE : 0);
	void *map;
	int r;

	memset(m, 0, sizeof(*m));
	m->path = path;
	m->fd = open_regular(path, flags, &m->size, NULL, e);
	if (m->fd < 0)
		return m->fd;
	if (m->size < GUEST_PAGE_SIZE) {
		r = ferr_set(e, FERR_VERIFY, "%s: %llu bytes, too short for a memory image", path,
		    (unsigned long long)m->size);
		goto fail;
	}
	if ((r = img_pread(m->fd, path, page, sizeof(page), 0, e)) != 0)
		goto fail;
	if ((r = memhdr_decode(page, &m->hdr, e)) != 0) {
		ferr_wrap(e, "%s", path);
		goto fail;
	}
	if (m->hdr.mem_size != m->size) {
		r = ferr_set(e, FERR_VERIFY, "%s: file is %llu bytes, header says %llu", path,
		    (unsigned long long)m->size, (unsigned long long)m->hdr.mem_size);
		goto fail;
	}
	m->npages = m->size / GUEST_PAGE_SIZE;
	if (flags & IMG_MAP) {
		map = mmap(NULL, m->size, prot, MAP_SHARED, m->fd, 0);
		if (map == MAP_FAILED) {
			r = ferr_set(e, FERR_IO, "%s: mmap %llu bytes: %s", path,
			    (unsigned long long)m->size, strerror(errno));
			goto fail;
		}
		m->map = map;
	}
	return 0;
fail:
	mem_img_fini(m);
	return r;
}

void
mem_img_fini(struct mem_img *m)
{
	if (m->map != NULL)
		munmap(m->map, m->size);
	m->map = NULL;
	if (m->fd >= 0)
		close(m->fd);
	m->fd = -1;
}

int
disk_img_init(struct disk_img *d, const char *path, int flags, struct ferr *e)
{
	uint8_t *block = NULL;
	int r;

	memset(d, 0, sizeof(*d));
	d->path = path;
	d->fd = open_regular(path, flags, &d->size, &d->allocated, e);
	if (d->fd < 0)
		return d->fd;
	if (d->size < GUEST_BLOCK_SIZE) {
		r = ferr_set(e, FERR_VERIFY, "%s: %llu bytes, too short for a disk image", path,
		    (unsigned long long)d->size);
		goto fail;
	}
	if ((block = malloc(GUEST_BLOCK_SIZE)) == NULL) {
		r = ferr_set(e, FERR_NOMEM, "%s: out of memory", path);
		goto fail;
	}
	if ((r = img_pread(d->fd, path, block, GUEST_BLOCK_SIZE, 0, e)) != 0)
		goto fail;
	if ((r = diskhdr_decode(block, &d->hdr, e)) != 0) {
		ferr_wrap(e, "%s", path);
		goto fail;
	}
	if (d->hdr.disk_size != d->size) {
		r = ferr_set(e, FERR_VERIFY, "%s: file is %llu bytes, header says %llu", path,
		    (unsigned long long)d->size, (unsigned long long)d->hdr.disk_size);
		goto fail;
	}
	d->nblocks = d->size / GUEST_BLOCK_SIZE;
	free(block);
	return 0;
fail:
	free(block);
	disk_img_fini(d);
	return r;
}

void
disk_img_fini(struct disk_img *d)
{
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

uint64_t
mem_img_next_gen(struct mem_img *m)
{
	uint64_t gen = memhdr_load_u64(m->map, MEMHDR_GEN_OFF) + 1;

	memhdr_store_u64(m->map, MEMHDR_GEN_OFF, gen);
	return gen;
}

void
mem_img_put_page(struct mem_img *m, uint64_t i, const uint8_t *page)
{
	memhdr_store_u64(m->map, MEMHDR_INFLIGHT_OFF, i + 1);
	memcpy(m->map + i * GUEST_PAGE_SIZE, page, GUEST_PAGE_SIZE);
	memhdr_store_u64(m->map, MEMHDR_INFLIGHT_OFF, 0);
}
