#include "staging.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "pagehash.h"

struct staged_file {
	int fd;
	char part[PATH_MAX];        /* staging path */
	char final[PATH_MAX];       /* where it lands at commit */
	uint64_t size;
	uint32_t unit;
	uint64_t src_dev, src_ino;  /* the source file (manifest), 0 = unknown */
	int reusing;                /* reuse_fd: the existing destination file, being copied */
	int reuse_fd;
	int copy_kernel;            /* copy_file_range works for it */
	int renamed;
	uint64_t unsynced;          /* bytes written since writeback was started */
};

struct staging {
	char dir[PATH_MAX];
	uint32_t expect_disks;
	uint64_t seed;
	uint32_t n;                 /* files: devices, then the state blob */
	uint32_t ndev;
	struct staged_file f[FERRY_MAX_DEVICES + 1];
	int committed;
	/* Writes of consecutive units, gathered for one pwrite (see
	 * sink_write); comb_len 0 = nothing pending. */
	uint8_t *comb;
	uint32_t comb_dev;
	uint64_t comb_off;
	uint32_t comb_len;
};

/* Bytes gathered before they are written.  A 4 KiB write into the page
 * cache costs several times more per byte than a 1 MiB one (measured on
 * ext4: 550 MiB of scattered pages of a 1 GiB image took 0.65 s in 4 KiB
 * writes, 0.3 s gathered). */
#define COMBINE_BYTES (1u << 20)

struct staging *
staging_new(const struct staging_opts *o)
{
	struct staging *st = calloc(1, sizeof(*st));

	if (st == NULL)
		return NULL;
	snprintf(st->dir, sizeof(st->dir), "%s", o->dest_dir);
	st->expect_disks = o->expect_disks;
	return st;
}

static void reuse_close(struct staged_file *f);

static void
staging_remove(struct staging *st)
{
	uint32_t i;

	st->comb_len = 0;
	for (i = 0; i < st->n; i++) {
		reuse_close(&st->f[i]);
		if (st->f[i].fd >= 0)
			close(st->f[i].fd);
		st->f[i].fd = -1;
		if (!st->f[i].renamed)
			(void)unlink(st->f[i].part);
	}
	st->n = 0;
}

void
staging_free(struct staging *st)
{
	if (st == NULL)
		return;
	if (!st->committed)
		staging_remove(st);
	free(st->comb);
	free(st);
}

static int FERRY_PRINTF(4, 5)
refuse(struct msg_text *r, int code, uint32_t dev, const char *fmt, ...)
{
	va_list ap;

	r->device = dev;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
	return code;
}

static int
unit_supported(uint32_t u)
{
	return u >= FERRY_UNIT_MIN && u <= FERRY_UNIT_MAX && (u & (u - 1)) == 0;
}

/* Pre-flight (section 5.1): every check runs before any file is created. */
static int
preflight(struct staging *st, const struct msg_manifest *m, struct msg_text *r)
{
	struct statvfs vfs;
	struct stat sb;
	unsigned long long need = m->state_size, avail, disks = 0;
	char path[PATH_MAX];
	uint32_t i;

	if (stat(st->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return refuse(r, FERR_REFUSE_DIR, 0, "destination directory '%s' does not exist", st->dir);
	if (access(st->dir, W_OK | X_OK) != 0)
		return refuse(r, FERR_REFUSE_DIR, 0, "destination directory '%s' is not writable", st->dir);
	for (i = 0; i < m->ndev; i++)
		if (m->dev[i].kind == DK_DISK)
			disks++;
	if (st->expect_disks != 0 && disks != st->expect_disks)
		return refuse(r, FERR_REFUSE_COUNT, 0,
		    "disk count: source has %llu disks, destination expects %u", disks,
		    st->expect_disks);
	for (i = 0; i < m->ndev; i++) {
		const struct dev_desc *d = &m->dev[i];

		if (!unit_supported(d->unit))
			return refuse(r, FERR_REFUSE_UNIT, d->id,
			    "device '%s': unit size %u not supported (powers of two from 4096 to %u)",
			    d->name, d->unit, FERRY_UNIT_MAX);
		snprintf(path, sizeof(path), "%s/%s", st->dir, d->name);
		if (stat(path, &sb) == 0) {
			if (d->src_ino != 0 && (uint64_t)sb.st_dev == d->src_dev &&
			    (uint64_t)sb.st_ino == d->src_ino)
				return refuse(r, FERR_REFUSE_SAMEFILE, d->id,
				    "device '%s': destination is the source file itself (device %llu inode %llu)",
				    path, (unsigned long long)sb.st_dev, (unsigned long long)sb.st_ino);
			if (!S_ISREG(sb.st_mode))
				return refuse(r, FERR_REFUSE_SIZE, d->id,
				    "device '%s': destination exists and is not a regular file", path);
			if ((uint64_t)sb.st_size != d->size)
				return refuse(r, FERR_REFUSE_SIZE, d->id,
				    "device '%s': destination exists with size %llu, source size is %llu",
				    path, (unsigned long long)sb.st_size, (unsigned long long)d->size);
		}
		need += d->size;
	}
	if (statvfs(st->dir, &vfs) != 0)
		return refuse(r, FERR_REFUSE_DIR, 0, "destination directory '%s': statvfs failed", st->dir);
	avail = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
	if (need > avail)
		return refuse(r, FERR_REFUSE_SPACE, 0,
		    "destination directory '%s': needs %llu bytes, %llu free", st->dir, need, avail);
	return 0;
}

static int
stage_one(struct staging *st, const char *name, const char *sid, uint64_t size, uint32_t unit,
    int prealloc, struct msg_text *r, uint32_t devid)
{
	struct staged_file *f = &st->f[st->n];

	const char *dir = st->dir;
	char final[PATH_MAX], part[PATH_MAX];

	snprintf(final, sizeof(final), "%s/%s", dir, name);
	snprintf(part, sizeof(part), "%s/.ferry-%s-%s.part", dir, sid, name);
	memcpy(f->final, final, sizeof(final));
	memcpy(f->part, part, sizeof(part));
	f->fd = open(f->part, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (f->fd < 0)
		return refuse(r, FERR_REFUSE_DIR, devid, "staging file '%s': %s", f->part,
		    strerror(errno));
	st->n++;
	f->size = size;
	f->unit = unit;
	f->renamed = 0;
	f->reusing = 0;
	f->reuse_fd = -1;
	if (ftruncate(f->fd, (off_t)size) != 0) {
		snprintf(r->text, sizeof(r->text), "staging file '%s': sizing to %llu bytes: %s", f->part,
		    (unsigned long long)size, strerror(errno));
		r->device = devid;
		return FERR_REFUSE_SPACE;
	}
	/* A memory image is written nearly whole: reserving its blocks up
	 * front spares ext4 a block reservation per page written (the file
	 * still reads as zeros).  Disk images stay sparse.  A file system
	 * without fallocate just skips it. */
	if (prealloc && size > 0 && fallocate(f->fd, 0, 0, (off_t)size) != 0 &&
	    errno != EOPNOTSUPP && errno != ENOSYS) {
		snprintf(r->text, sizeof(r->text), "staging file '%s': reserving %llu bytes: %s", f->part,
		    (unsigned long long)size, strerror(errno));
		r->device = devid;
		return FERR_REFUSE_SPACE;
	}
	return 0;
}

static int
sink_accept(void *ctx, const struct msg_manifest *m, uint64_t seed, const uint8_t sid[16],
    struct msg_text *r)
{
	struct staging *st = ctx;
	char sidhex[2 * FERRY_HASH_LEN + 1];
	uint32_t i;
	int rc;

	if ((rc = preflight(st, m, r)) != 0)
		return rc;
	hash_hex(sid, sidhex);
	sidhex[16] = '\0';
	st->seed = seed;
	st->ndev = m->ndev;
	for (i = 0; i < m->ndev; i++) {
		if ((rc = stage_one(st, m->dev[i].name, sidhex, m->dev[i].size, m->dev[i].unit,
		    m->dev[i].kind == DK_MEMORY, r, m->dev[i].id)) != 0)
			goto fail;
		st->f[i].src_dev = m->dev[i].src_dev;
		st->f[i].src_ino = m->dev[i].src_ino;
	}
	if (m->state_size != 0 &&
	    (rc = stage_one(st, m->state_name, sidhex, m->state_size, 0, 0, r, 0)) != 0)
		goto fail;
	return 0;
fail:
	staging_remove(st);
	return rc;
}

static int
io_full(int write, int fd, uint64_t off, uint8_t *p, uint32_t len, const char *path,
    struct ferr *e)
{
	uint32_t done = 0;

	while (done < len) {
		ssize_t n = write ? pwrite(fd, p + done, len - done, (off_t)(off + done))
				  : pread(fd, p + done, len - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ferr_set(e, FERR_IO, "%s '%s' at offset %llu (%u bytes): %s",
			    write ? "writing" : "reading", path, (unsigned long long)(off + done),
			    len - done, strerror(errno));
		if (n == 0)
			return ferr_set(e, FERR_IO, "reading '%s' at offset %llu: unexpected end of file",
			    path, (unsigned long long)(off + done));
		done += (uint32_t)n;
	}
	return 0;
}

/* Start writeback every so often, so that the fsync at commit (while the
 * guest is paused) finds little left to write. */
#define WRITEBACK_EVERY (32u << 20)

/* Write what sink_write gathered, and start writeback every so often. */
static int
comb_flush(struct staging *st, struct ferr *e)
{
	struct staged_file *f = &st->f[st->comb_dev];
	uint32_t len = st->comb_len;
	int rc;

	if (len == 0)
		return 0;
	st->comb_len = 0;
	if ((rc = io_full(1, f->fd, st->comb_off, st->comb, len, f->part, e)) != 0)
		return rc;
	f->unsynced += len;
	if (f->unsynced >= WRITEBACK_EVERY) {
		(void)sync_file_range(f->fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		f->unsynced = 0;
	}
	return 0;
}

/* A write that continues the gathered one is appended to it; anything
 * else writes what is gathered first.  Whatever reads a staging file
 * flushes before it reads (commit, reuse), or reads the gathered bytes
 * (sink_read). */
static int
sink_write(void *ctx, uint32_t dev, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e)
{
	struct staging *st = ctx;
	int rc;

	if (dev >= st->ndev)
		return ferr_set(e, FERR_INTERNAL, "staging: device %u", dev);
	if (st->comb_len > 0 && (dev != st->comb_dev || off != st->comb_off + st->comb_len ||
	    st->comb_len + (uint64_t)len > COMBINE_BYTES) && (rc = comb_flush(st, e)) != 0)
		return rc;
	if (len >= COMBINE_BYTES)
		return io_full(1, st->f[dev].fd, off, (uint8_t *)(uintptr_t)p, len, st->f[dev].part, e);
	if (st->comb == NULL && (st->comb = malloc(COMBINE_BYTES)) == NULL)
		return ferr_set(e, FERR_NOMEM, "staging: write buffer");
	if (st->comb_len == 0) {
		st->comb_dev = dev;
		st->comb_off = off;
	}
	memcpy(st->comb + st->comb_len, p, len);
	st->comb_len += len;
	return 0;
}

static int
sink_read(void *ctx, uint32_t dev, uint64_t off, uint8_t *p, uint32_t len, struct ferr *e)
{
	struct staging *st = ctx;

	int rc;

	if (dev >= st->ndev)
		return ferr_set(e, FERR_INTERNAL, "staging: device %u", dev);
	/* References often name a unit still in the gathered write. */
	if (st->comb_len > 0 && dev == st->comb_dev && off < st->comb_off + st->comb_len &&
	    off + len > st->comb_off) {
		if (off >= st->comb_off && off + len <= st->comb_off + st->comb_len) {
			memcpy(p, st->comb + (off - st->comb_off), len);
			return 0;
		}
		if ((rc = comb_flush(st, e)) != 0)
			return rc;
	}
	return io_full(0, st->f[dev].fd, off, p, len, st->f[dev].part, e);
}

static int
sink_state(void *ctx, uint64_t off, const uint8_t *p, uint32_t len, struct ferr *e)
{
	struct staging *st = ctx;

	if (st->n != st->ndev + 1)
		return ferr_set(e, FERR_INTERNAL, "staging: no state file");
	return io_full(1, st->f[st->ndev].fd, off, (uint8_t *)(uintptr_t)p, len,
	    st->f[st->ndev].part, e);
}

/* Digest of a staged file as section 5.2 defines it.  unit 0 = the state
 * blob: one hash over the whole content. */
static int
file_digest(struct staging *st, struct staged_file *f, uint8_t out[FERRY_HASH_LEN], struct ferr *e)
{
	const size_t chunk = 1u << 20;
	uint32_t unit = f->unit ? f->unit : (uint32_t)chunk;
	size_t bufsz = unit > chunk ? unit : chunk - chunk % unit;
	struct digest *d = digest_new(st->seed);
	uint8_t *buf = malloc(bufsz), h[FERRY_HASH_LEN];
	uint64_t off = 0;
	int rc = 0;

	if (d == NULL || buf == NULL) {
		rc = ferr_set(e, FERR_NOMEM, "digest of '%s'", f->final);
		goto out;
	}
	(void)posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (off < f->size) {
		uint32_t n = f->size - off < bufsz ? (uint32_t)(f->size - off) : (uint32_t)bufsz;
		uint32_t k;

		if ((rc = io_full(0, f->fd, off, buf, n, f->part, e)) != 0)
			goto out;
		for (k = 0; k < n; k += unit) {
			uint32_t l = n - k < unit ? n - k : unit;

			page_hash(st->seed, buf + k, l, h);
			digest_add(d, h);
		}
		off += n;
	}
	digest_final(d, out);
out:
	digest_free(d);
	free(buf);
	return rc;
}

static int
sink_commit(void *ctx, const struct msg_commit *c, struct ferr *e)
{
	struct staging *st = ctx;
	uint8_t got[FERRY_HASH_LEN];
	char a[33], b[33];
	const char *base;
	uint32_t i;
	int rc, dfd;

	if ((rc = comb_flush(st, e)) != 0)
		return rc;
	/* Device digests were checked by the session from the hashes of the
	 * units it applied; the state blob is checked here, read back. */
	for (i = st->ndev; i < st->n; i++) {
		const uint8_t *want = c->state_digest;

		if ((rc = file_digest(st, &st->f[i], got, e)) != 0)
			return rc;
		if (memcmp(got, want, FERRY_HASH_LEN) != 0) {
			hash_hex(got, a);
			hash_hex(want, b);
			base = strrchr(st->f[i].final, '/');
			return ferr_set(e, FERR_VERIFY, "COMMIT: '%s' digest %s, sender's %s",
			    base ? base + 1 : st->f[i].final, a, b);
		}
	}
	for (i = 0; i < st->n; i++)
		if (fsync(st->f[i].fd) != 0)
			return ferr_set(e, FERR_IO, "fsync '%s': %s", st->f[i].part, strerror(errno));
	for (i = 0; i < st->n; i++) {
		if (rename(st->f[i].part, st->f[i].final) != 0)
			return ferr_set(e, FERR_IO, "rename '%s' to '%s': %s", st->f[i].part,
			    st->f[i].final, strerror(errno));
		st->f[i].renamed = 1;
	}
	dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		rc = fsync(dfd);
		close(dfd);
		if (rc != 0)
			return ferr_set(e, FERR_IO, "fsync directory '%s': %s", st->dir, strerror(errno));
	}
	for (i = 0; i < st->n; i++) {
		close(st->f[i].fd);
		st->f[i].fd = -1;
	}
	st->committed = 1;
	return 0;
}

static void
sink_abort(void *ctx)
{
	staging_remove(ctx);
}

/* Copy bytes [off, off + len) of the existing file into the same place
 * of f's staging file: copy_file_range (a reflink, or an in-kernel copy),
 * else read and write. */
static int
copy_range(struct staged_file *f, uint64_t off, uint64_t len, struct ferr *e)
{
	const size_t bufsz = 1u << 20;
	loff_t in = (loff_t)off, out = (loff_t)off;
	uint64_t end = off + len, at;
	uint8_t *buf;
	int rc = 0;

	while (f->copy_kernel && (uint64_t)in < end) {
		ssize_t n = copy_file_range(f->reuse_fd, &in, f->fd, &out, (size_t)(end - (uint64_t)in), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP ||
		    errno == EINVAL) && (uint64_t)in == off) {
			f->copy_kernel = 0;     /* not here: read and write from now on */
			break;
		}
		if (n < 0)
			return ferr_set(e, FERR_IO, "reuse: copying '%s' into '%s' at offset %llu: %s",
			    f->final, f->part, (unsigned long long)in, strerror(errno));
		if (n == 0)
			return ferr_set(e, FERR_IO, "reuse: '%s' ended at %llu bytes of %llu", f->final,
			    (unsigned long long)in, (unsigned long long)f->size);
	}
	if ((uint64_t)in == end)
		return 0;
	if ((buf = malloc(bufsz)) == NULL)
		return ferr_set(e, FERR_NOMEM, "reuse: copy buffer");
	for (at = off; at < end && rc == 0; at += bufsz) {
		uint32_t n = end - at < bufsz ? (uint32_t)(end - at) : (uint32_t)bufsz;

		if ((rc = io_full(0, f->reuse_fd, at, buf, n, f->final, e)) == 0)
			rc = io_full(1, f->fd, at, buf, n, f->part, e);
	}
	free(buf);
	return rc;
}

/* Hash the units of f's staging file from unit `first` on, count of them
 * (section 5.2), as they are there now. */
static int
hash_range(struct staging *st, struct staged_file *f, uint64_t first, uint32_t count,
    uint8_t (*hash)[FERRY_HASH_LEN], struct ferr *e)
{
	const size_t chunk = 1u << 20;
	size_t bufsz = f->unit > chunk ? f->unit : chunk - chunk % f->unit;
	uint64_t off = first * f->unit, end = (first + count) * (uint64_t)f->unit;
	uint8_t *buf = malloc(bufsz);
	uint32_t k = 0;
	int rc = 0;

	if (buf == NULL)
		return ferr_set(e, FERR_NOMEM, "reuse: hashing '%s'", f->part);
	if (end > f->size)
		end = f->size;
	while (off < end && rc == 0) {
		uint32_t n = end - off < bufsz ? (uint32_t)(end - off) : (uint32_t)bufsz;
		uint32_t u;

		if ((rc = io_full(0, f->fd, off, buf, n, f->part, e)) != 0)
			break;
		for (u = 0; u < n; u += f->unit) {
			uint32_t l = n - u < f->unit ? n - u : f->unit;

			page_hash(st->seed, buf + u, l, hash[k++]);
		}
		off += n;
	}
	free(buf);
	return rc;
}

static void
reuse_close(struct staged_file *f)
{
	if (f->reusing)
		close(f->reuse_fd);
	f->reusing = 0;
	f->reuse_fd = -1;
}

/* Section 4.19: the staging file of device dev starts as a copy of its
 * existing destination file, a range of units per call.  Pre-flight
 * already refused a destination of another size, not a regular file, or
 * the source itself; the checks are made again on what is opened (it may
 * have changed since), and a file that no longer qualifies is simply not
 * reused.  A symbolic link is not followed.  The hashes are of the
 * staging file as copied, which nothing else writes: they describe it
 * even if the destination file changes meanwhile. */
static int
sink_reuse(void *ctx, uint32_t dev, uint64_t first, uint32_t count,
    uint8_t (*hash)[FERRY_HASH_LEN], struct ferr *e)
{
	struct staging *st = ctx;
	struct staged_file *f;
	uint64_t off, len;
	struct stat sb;
	int rc;

	if (dev >= st->ndev)
		return ferr_set(e, FERR_INTERNAL, "staging: device %u", dev);
	if ((rc = comb_flush(st, e)) != 0)
		return rc;
	f = &st->f[dev];
	if (first == 0 && !f->reusing) {
		int fd = open(f->final, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);

		if (fd < 0) {
			if (errno == ENOENT || errno == ELOOP)
				return 0;
			return ferr_set(e, FERR_IO, "reuse: opening '%s': %s", f->final, strerror(errno));
		}
		if (fstat(fd, &sb) != 0) {
			rc = errno;
			close(fd);
			return ferr_set(e, FERR_IO, "reuse: '%s': %s", f->final, strerror(rc));
		}
		if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != f->size ||
		    (f->src_ino != 0 && (uint64_t)sb.st_dev == f->src_dev &&
		    (uint64_t)sb.st_ino == f->src_ino)) {
			close(fd);
			return 0;
		}
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		(void)posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
		f->reuse_fd = fd;
		f->reusing = 1;
		f->copy_kernel = 1;
	}
	off = first * f->unit;
	if (!f->reusing || count == 0 || off >= f->size)
		return ferr_set(e, FERR_INTERNAL, "reuse: '%s' units %llu+%u", f->final,
		    (unsigned long long)first, count);
	len = (uint64_t)count * f->unit;
	if (len > f->size - off)
		len = f->size - off;
	if ((rc = copy_range(f, off, len, e)) != 0 || (rc = hash_range(st, f, first, count, hash, e)) != 0) {
		reuse_close(f);
		return rc;
	}
	/* Start writeback now, so that the fsync at commit finds little to do. */
	(void)sync_file_range(f->fd, (off64_t)off, (off64_t)len, SYNC_FILE_RANGE_WRITE);
	if (off + len == f->size)
		reuse_close(f);
	return 1;
}

const struct rsess_sink_ops staging_sink_ops = {
	.accept = sink_accept,
	.write = sink_write,
	.read = sink_read,
	.state = sink_state,
	.commit = sink_commit,
	.abort = sink_abort,
	.reuse = sink_reuse,
};

const char *
staging_final_path(const struct staging *st, uint32_t i)
{
	return i < st->n ? st->f[i].final : NULL;
}

uint32_t
staging_count(const struct staging *st)
{
	return st->committed ? st->n : 0;
}

void
staging_unpublish(struct staging *st)
{
	uint32_t i;

	if (!st->committed)
		return;
	for (i = 0; i < st->n; i++)
		if (st->f[i].renamed) {
			(void)unlink(st->f[i].final);
			st->f[i].renamed = 0;
		}
	st->n = 0;
	st->committed = 0;
}
