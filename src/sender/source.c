#include "source.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int
source_dev_open(struct source_dev *d, const char *path, uint32_t id, uint8_t kind, uint32_t unit,
    struct ferr *e)
{
	const char *base = strrchr(path, '/');
	struct stat sb;
	void *m;

	memset(d, 0, sizeof(*d));
	d->fd = -1;
	snprintf(d->path, sizeof(d->path), "%s", path);
	base = base ? base + 1 : path;
	if (!dev_name_valid(base, strlen(base)))
		return ferr_set(e, FERR_USAGE, "'%s': file name not usable as a device name", path);
	snprintf(d->desc.name, sizeof(d->desc.name), "%s", base);
	d->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (d->fd < 0)
		return ferr_set(e, FERR_IO, "open '%s': %s", path, strerror(errno));
	if (fstat(d->fd, &sb) != 0)
		return ferr_set(e, FERR_IO, "stat '%s': %s", path, strerror(errno));
	if (!S_ISREG(sb.st_mode))
		return ferr_set(e, FERR_USAGE, "'%s': not a regular file", path);
	if (sb.st_size == 0)
		return ferr_set(e, FERR_USAGE, "'%s': empty file", path);
	if ((uint64_t)sb.st_size > FERRY_DEVICE_SIZE_MAX)
		return ferr_set(e, FERR_USAGE, "'%s': larger than %llu bytes", path,
		    (unsigned long long)FERRY_DEVICE_SIZE_MAX);
	d->desc.id = id;
	d->desc.kind = kind;
	d->desc.unit = unit;
	d->desc.size = (uint64_t)sb.st_size;
	d->desc.src_dev = (uint64_t)sb.st_dev;
	d->desc.src_ino = (uint64_t)sb.st_ino;
	d->nunits = dev_units(&d->desc);
	if (d->nunits > UINT32_MAX)
		return ferr_set(e, FERR_USAGE, "'%s': too many units of %u bytes", path, unit);
	m = mmap(NULL, (size_t)d->desc.size, PROT_READ, MAP_SHARED, d->fd, 0);
	if (m == MAP_FAILED)
		return ferr_set(e, FERR_IO, "mmap '%s': %s", path, strerror(errno));
	d->map = m;
	d->sent = calloc(d->nunits, FERRY_HASH_LEN);
	d->sent_valid = calloc(d->nunits / 8 + 1, 1);
	if (d->sent == NULL || d->sent_valid == NULL)
		return ferr_set(e, FERR_NOMEM, "'%s': hash table for %llu units", path,
		    (unsigned long long)d->nunits);
	return 0;
}

void
source_release(const struct source_dev *d, uint64_t from, uint64_t to)
{
	uint64_t pg = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t start = from * d->desc.unit, end = to * d->desc.unit;

	if (d->map == NULL || pg == 0)
		return;
	if (end > d->desc.size)
		end = d->desc.size;
	start = (start + pg - 1) / pg * pg;
	end = end / pg * pg;
	if (to >= d->nunits)
		end = (d->desc.size + pg - 1) / pg * pg;  /* the mapping's tail page too */
	if (end > start)
		(void)madvise((void *)(uintptr_t)(d->map + start), (size_t)(end - start), MADV_DONTNEED);
}

void
source_dev_close(struct source_dev *d)
{
	if (d->map != NULL)
		munmap((void *)(uintptr_t)d->map, (size_t)d->desc.size);
	if (d->fd >= 0)
		close(d->fd);
	free(d->sent);
	free(d->sent_valid);
	d->map = NULL;
	d->fd = -1;
	d->sent = NULL;
	d->sent_valid = NULL;
}

int
source_read_file(const char *path, uint64_t max, uint8_t **buf, uint64_t *len, struct ferr *e)
{
	struct stat sb;
	uint8_t *p;
	size_t got = 0;
	int fd;

	*buf = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferr_set(e, FERR_IO, "open '%s': %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return ferr_set(e, FERR_USAGE, "'%s': not a regular file", path);
	}
	if ((uint64_t)sb.st_size > max) {
		close(fd);
		return ferr_set(e, FERR_USAGE, "'%s': %lld bytes, more than %llu", path,
		    (long long)sb.st_size, (unsigned long long)max);
	}
	p = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1);
	if (p == NULL) {
		close(fd);
		return ferr_set(e, FERR_NOMEM, "'%s'", path);
	}
	while (got < (size_t)sb.st_size) {
		ssize_t n = read(fd, p + got, (size_t)sb.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(p);
			close(fd);
			return ferr_set(e, FERR_IO, "read '%s': %s", path, n < 0 ? strerror(errno) : "short");
		}
		got += (size_t)n;
	}
	close(fd);
	*buf = p;
	*len = got;
	return 0;
}
