/* `ferry-guest mark`: put a known text into one page as a valid dirtied
 * unit (writer 2), so a test can look for it in captured bytes and check
 * still passes.  Not meant to run while `run` writes the same image. */
#include "guest.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "image.h"
#include "layout.h"

int
guest_mark(const struct mark_opts *o, struct ferr *e)
{
	uint8_t page[GUEST_PAGE_SIZE];
	struct mem_img m = { .fd = -1 };
	size_t len = strlen(o->text);
	uint64_t gen;
	int r;

	if (len == 0 || len > UNIT_TEXT_MAX)
		return ferr_set(e, FERR_USAGE, "--text: %zu bytes, must be 1 to %u", len, UNIT_TEXT_MAX);
	if ((r = mem_img_init(&m, o->mem, IMG_WRITE | IMG_MAP, e)) != 0)
		return r;
	if (o->page < 1 || o->page >= m.npages) {
		r = ferr_set(e, FERR_USAGE, "--page %llu: must be 1 to %llu (page 0 is the header)",
		    (unsigned long long)o->page, (unsigned long long)(m.npages - 1));
		goto out;
	}
	gen = mem_img_next_gen(&m);
	unit_build_mark(page, GUEST_PAGE_SIZE, o->page, gen, o->text, len);
	mem_img_put_page(&m, o->page, page);
	if (msync(m.map, m.size, MS_SYNC) != 0) {
		r = ferr_set(e, FERR_IO, "%s: msync: %s", o->mem, strerror(errno));
		goto out;
	}
	printf("marked page %llu (offset %llu, generation %llu, %zu bytes of text at +%u)\n",
	    (unsigned long long)o->page, (unsigned long long)(o->page * GUEST_PAGE_SIZE),
	    (unsigned long long)gen, len, UNIT_HDR_LEN);
out:
	mem_img_fini(&m);
	return r;
}
