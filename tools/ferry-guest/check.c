/* `ferry-guest check`: every page and block must either be a valid
 * dirtied unit for its index, or equal its initial content regenerated
 * from the seed.  The one exception is the page named by the in-flight
 * slot, which a stop in the middle of a store may have torn.
 *
 * Images are read with pread in CHECK_CHUNK pieces, not mapped, so a
 * truncated or changing file gives an error instead of SIGBUS. */
#include "guest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"
#include "image.h"
#include "layout.h"

#define CHECK_CHUNK     (1024u * 1024u)   /* bytes per read */
#define CHECK_LIST_MAX  20u               /* bad units listed by name */

struct checker {
	uint8_t *chunk;           /* CHECK_CHUNK bytes */
	uint8_t *expect;          /* GUEST_BLOCK_SIZE bytes */
	uint64_t bad;             /* all bad units, pages and blocks */
	uint64_t pages, pages_dirty, pages_bad, inflight_ok;
	uint64_t blocks, blocks_dirty, blocks_bad;
};

enum verdict { V_INITIAL, V_DIRTY, V_BAD };

static void
report(struct checker *c, const char *fmt, ...) FERRY_PRINTF(2, 3);

static void
report(struct checker *c, const char *fmt, ...)
{
	va_list ap;

	if (c->bad++ >= CHECK_LIST_MAX)
		return;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

static int
all_zero(const uint8_t *p, size_t n)
{
	return p[0] == 0 && memcmp(p, p + 1, n - 1) == 0;
}

/* Where a unit's initial content comes from: the page map, or the disk
 * seed.  Generated only when a unit is not a valid dirtied one. */
struct expect {
	const struct gen_map *map;   /* memory; NULL for disk */
	uint64_t seed;               /* disk */
	uint8_t *buf;                /* GUEST_BLOCK_SIZE scratch */
};

static int
equals_initial(const struct expect *x, uint64_t index, const uint8_t *u, uint32_t size)
{
	if (x->map != NULL) {
		if (x->map->kind[index] == GEN_ZERO)
			return all_zero(u, size);
		gen_page(x->map, (uint32_t)index, x->buf);
	} else if (gen_block(x->seed, index, x->buf) == GEN_ZERO) {
		return all_zero(u, size);
	}
	return memcmp(u, x->buf, size) == 0;
}

/* Judge one unit.  max_gen 0: no bound on generations.  why gets the
 * reason for V_BAD. */
static enum verdict
judge(const uint8_t *u, uint32_t size, uint64_t index, uint64_t max_gen,
    const struct expect *x, char *why, size_t whylen)
{
	struct unit_info info;
	enum unit_verdict v = unit_verify(u, size, index, &info);

	if (v == UNIT_OK && (max_gen == 0 || info.gen <= max_gen))
		return V_DIRTY;
	if (equals_initial(x, index, u, size))
		return V_INITIAL;
	switch (v) {
	case UNIT_OK:
		snprintf(why, whylen, "generation %llu newer than the header's %llu",
		    (unsigned long long)info.gen, (unsigned long long)max_gen);
		break;
	case UNIT_NOT_DIRTY:
		snprintf(why, whylen, "differs from initial content");
		break;
	case UNIT_BAD_INDEX:
		snprintf(why, whylen, "index mismatch (holds %llu)", (unsigned long long)info.index);
		break;
	case UNIT_BAD_SIZE:
		snprintf(why, whylen, "wrong unit size %u", info.size);
		break;
	case UNIT_BAD_WRITER:
		snprintf(why, whylen, "unknown writer %u (text length %u)", info.writer, info.text_len);
		break;
	default:
		snprintf(why, whylen, "%s", unit_verdict_str(v));
		break;
	}
	return V_BAD;
}

static int
check_mem(struct checker *c, const struct mem_img *m, struct ferr *e)
{
	const uint64_t per = CHECK_CHUNK / GUEST_PAGE_SIZE;
	struct gen_map *map = NULL;
	struct expect x = { .buf = c->expect };
	char why[128];
	uint64_t base, i, n;
	int r;

	if ((r = gen_map_new(m->hdr.seed, m->npages, &map, e)) != 0)
		return r;
	x.map = map;
	c->pages = m->npages;
	for (base = 0; base < m->npages; base += per) {
		n = m->npages - base < per ? m->npages - base : per;
		if ((r = img_pread_sparse(m->fd, m->path, c->chunk, n * GUEST_PAGE_SIZE,
		    base * GUEST_PAGE_SIZE, e)) != 0)
			goto out;
		/* page 0 was validated when the image was opened */
		for (i = base == 0 ? 1 : 0; i < n; i++) {
			uint64_t p = base + i;
			enum verdict v = judge(c->chunk + i * GUEST_PAGE_SIZE, GUEST_PAGE_SIZE, p,
			    m->hdr.last_gen, &x, why, sizeof(why));

			if (v == V_DIRTY) {
				c->pages_dirty++;
			} else if (v == V_BAD && p + 1 == m->hdr.inflight) {
				printf("page %llu: in-flight, accepted (%s)\n", (unsigned long long)p, why);
				c->inflight_ok++;
			} else if (v == V_BAD) {
				c->pages_bad++;
				report(c, "page %llu: %s", (unsigned long long)p, why);
			}
		}
	}
out:
	gen_map_free(map);
	return r;
}

static int
check_disk(struct checker *c, const struct disk_img *d, uint64_t max_gen, struct ferr *e)
{
	const uint64_t per = CHECK_CHUNK / GUEST_BLOCK_SIZE;
	struct expect x = { .seed = d->hdr.seed, .buf = c->expect };
	uint64_t base, i, n;
	char why[128];
	int r;

	c->blocks = d->nblocks;
	for (base = 0; base < d->nblocks; base += per) {
		n = d->nblocks - base < per ? d->nblocks - base : per;
		if ((r = img_pread_sparse(d->fd, d->path, c->chunk, n * GUEST_BLOCK_SIZE,
		    base * GUEST_BLOCK_SIZE, e)) != 0)
			return r;
		for (i = base == 0 ? 1 : 0; i < n; i++) {
			uint64_t b = base + i;
			enum verdict v = judge(c->chunk + i * GUEST_BLOCK_SIZE, GUEST_BLOCK_SIZE, b,
			    max_gen, &x, why, sizeof(why));

			if (v == V_DIRTY) {
				c->blocks_dirty++;
			} else if (v == V_BAD) {
				c->blocks_bad++;
				report(c, "block %llu: %s", (unsigned long long)b, why);
			}
		}
	}
	return 0;
}

/* A header that does not validate is a failed check (reported, returns
 * 0 with *ok = 0), not an error; I/O errors are. */
static int
header_verdict(struct checker *c, const char *unit, int r, int *ok, struct ferr *e)
{
	*ok = r == 0;
	if (r == FERR_VERIFY || r == FERR_PROTO_VERSION) {
		report(c, "%s 0: %s", unit, e->msg);
		ferr_clear(e);
		return 0;
	}
	return r;
}

int
guest_check(const struct check_opts *o, uint64_t *bad, struct ferr *e)
{
	struct checker c;
	struct mem_img m = { .fd = -1 };
	struct disk_img d = { .fd = -1 };
	int mem_ok = 0, disk_ok = 0, r;

	*bad = 0;
	memset(&c, 0, sizeof(c));
	if (o->mem == NULL && o->disk == NULL)
		return ferr_set(e, FERR_USAGE, "check needs --mem or --disk");
	if ((c.chunk = malloc(CHECK_CHUNK)) == NULL || (c.expect = malloc(GUEST_BLOCK_SIZE)) == NULL) {
		r = ferr_set(e, FERR_NOMEM, "check: out of memory");
		goto out;
	}
	if (o->mem != NULL &&
	    (r = header_verdict(&c, "page", mem_img_init(&m, o->mem, 0, e), &mem_ok, e)) != 0)
		goto out;
	if (o->disk != NULL &&
	    (r = header_verdict(&c, "block", disk_img_init(&d, o->disk, 0, e), &disk_ok, e)) != 0)
		goto out;
	if (mem_ok && disk_ok && d.hdr.seed != m.hdr.seed) {
		report(&c, "block 0: disk seed %llu differs from memory seed %llu",
		    (unsigned long long)d.hdr.seed, (unsigned long long)m.hdr.seed);
		disk_ok = 0;
	}
	if (mem_ok && disk_ok && m.hdr.disk_size != 0 && m.hdr.disk_size != d.size) {
		report(&c, "block 0: disk is %llu bytes, memory header says %llu",
		    (unsigned long long)d.size, (unsigned long long)m.hdr.disk_size);
		disk_ok = 0;
	}
	if (mem_ok && (r = check_mem(&c, &m, e)) != 0)
		goto out;
	if (disk_ok && (r = check_disk(&c, &d, mem_ok ? m.hdr.last_gen : 0, e)) != 0)
		goto out;

	*bad = c.bad;
	if (c.bad > CHECK_LIST_MAX)
		printf("... and %llu more\n", (unsigned long long)(c.bad - CHECK_LIST_MAX));
	if (c.bad > 0) {
		printf("FAILED: %llu bad pages, %llu bad blocks", (unsigned long long)c.pages_bad,
		    (unsigned long long)c.blocks_bad);
		if (c.pages_bad + c.blocks_bad < c.bad)
			printf(", %llu bad headers", (unsigned long long)(c.bad - c.pages_bad - c.blocks_bad));
		printf(" (of %llu pages, %llu blocks)\n", (unsigned long long)c.pages,
		    (unsigned long long)c.blocks);
	} else {
		if (mem_ok)
			printf("ok: %llu pages ok, %llu dirtied, %llu in-flight accepted%s",
			    (unsigned long long)c.pages, (unsigned long long)c.pages_dirty,
			    (unsigned long long)c.inflight_ok, disk_ok ? "; " : "\n");
		if (disk_ok)
			printf("%s%llu blocks ok, %llu dirtied\n", mem_ok ? "" : "ok: ",
			    (unsigned long long)c.blocks, (unsigned long long)c.blocks_dirty);
	}
	r = 0;
out:
	disk_img_fini(&d);
	mem_img_fini(&m);
	free(c.chunk);
	free(c.expect);
	return r;
}
