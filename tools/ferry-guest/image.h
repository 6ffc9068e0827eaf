/* Opening the guest's image files: read and validate the header, check
 * the file size against it, optionally map memory MAP_SHARED.  Error
 * messages start with the file name. */
#ifndef FERRY_GUEST_IMAGE_H
#define FERRY_GUEST_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "layout.h"

#define IMG_WRITE  1   /* open read/write (and map writable) */
#define IMG_MAP    2   /* map the whole memory image MAP_SHARED */

struct mem_img {
	const char *path;
	int fd;                 /* -1 when closed */
	uint64_t size;          /* bytes */
	uint64_t npages;
	uint8_t *map;           /* NULL unless IMG_MAP */
	struct mem_hdr hdr;     /* as read at open */
};

struct disk_img {
	const char *path;
	int fd;
	uint64_t size;
	uint64_t nblocks;
	uint64_t allocated;     /* bytes the file occupies (st_blocks * 512) */
	struct disk_hdr hdr;
};

/* Open path.  Returns FERR_IO for system errors, FERR_PROTO_VERSION /
 * FERR_VERIFY from the header decoders (and FERR_VERIFY when the file size
 * differs from the header's).  On error m is closed; mem_img_fini is safe
 * either way. */
int mem_img_init(struct mem_img *m, const char *path, int flags, struct ferr *e) FERRY_MUST_CHECK;
void mem_img_fini(struct mem_img *m);

int disk_img_init(struct disk_img *d, const char *path, int flags, struct ferr *e) FERRY_MUST_CHECK;
void disk_img_fini(struct disk_img *d);

/* On a mapped, writable image: take the next generation from the header
 * counter (stored back before returning, so no unit is ever newer than the
 * header), and store a whole page at index i (1 <= i < npages) with the
 * in-flight slot naming it during the copy. */
uint64_t mem_img_next_gen(struct mem_img *m);
void mem_img_put_page(struct mem_img *m, uint64_t i, const uint8_t *page);

/* Exactly n bytes at off, retrying short transfers; FERR_IO naming path
 * (a read past the end is an error too). */
int img_pread(int fd, const char *path, void *buf, size_t n, uint64_t off,
    struct ferr *e) FERRY_MUST_CHECK;
/* Like img_pread, but holes of a sparse file are zeroed in buf instead of
 * read (SEEK_DATA/SEEK_HOLE), which saves the kernel filling page cache
 * with zeros for the untouched parts of big images. */
int img_pread_sparse(int fd, const char *path, void *buf, size_t n, uint64_t off,
    struct ferr *e) FERRY_MUST_CHECK;
int img_pwrite(int fd, const char *path, const void *buf, size_t n, uint64_t off,
    struct ferr *e) FERRY_MUST_CHECK;

#endif
