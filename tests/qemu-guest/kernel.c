/* The ferry QEMU test guest: a freestanding multiboot kernel.
 *
 * On boot it fills guest RAM from FG_FILL_START up to 1 MiB below the top
 * of memory with a known pattern, then rewrites a rotating set of pages
 * forever, counting each rewrite.  A test reads the status block at
 * FG_STATUS_ADDR (QMP pmemsave) to see how far it got.
 *
 * Page pattern, little-endian u32 words of the 4 KiB page at physical P,
 * a mix like real guest memory: a quarter of the pages incompressible, a
 * quarter identical to each other, half repetitive.  By K = (P >> 12) % 4:
 *   K 1        word i = FG_SAME_BASE | i, except word 3 (every such page
 *              is the same until it is rewritten)
 *   K 0, 2, 3  word 0 = P, word 1 = FG_PAGE_MAGIC, word 2 = ~P, then
 *   K 0        words i>=4 from xorshift32 seeded with P | 1 (random)
 *   K 2, 3     word i>=4 = P + 4 * (i % 16) (a 64-byte motif)
 *   all        word 3 = generation: 0 after the fill, the counter of the
 *              last rewrite
 *
 * Status block (u32 words at FG_STATUS_ADDR):
 *   0 FG_STATUS_MAGIC   1 state (1 filling, 2 rewriting)   2 counter
 *   3 fill start        4 fill end (exclusive)              5 rotating pages
 *   6 pages filled
 *
 * Command line (multiboot, QEMU's -append): the word "nofill" skips the
 * fill, so guest RAM keeps whatever it held at boot (the bench boots it on
 * a memory-backend-file holding a memory image, tools/bench/bench.py).
 * The guest then goes straight to state 2 with fill end = fill start and
 * 0 pages filled, and rewrites word 3 of the same rotating pages from
 * FG_FILL_START (a counter, as above; the rest of each page is left as it
 * was).  Without "nofill" the behaviour is the one described above. */
#include <stdint.h>

#include "pattern.h"

#define FG_STATUS_ADDR 0x00180000u
#define FG_FILL_START 0x00200000u
#define FG_STATUS_MAGIC 0x47595246u	/* "FRYG" */
#define FG_ROT_PAGES 1024u
#define MB_LOADER_MAGIC 0x2BADB002u
#define COM1 0x3f8

enum { ST_MAGIC, ST_STATE, ST_COUNTER, ST_START, ST_END, ST_ROT, ST_FILLED };

#define MB_INFO_MEMORY (1u << 0)
#define MB_INFO_CMDLINE (1u << 2)

struct mb_info {
	uint32_t flags;
	uint32_t mem_lower;	/* KiB below 1 MiB */
	uint32_t mem_upper;	/* KiB above 1 MiB */
	uint32_t boot_device;
	uint32_t cmdline;	/* physical address of a NUL-terminated string */
};

void guest_main(uint32_t magic, const struct mb_info *mbi);

static inline void
outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t
inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void
serial_putc(char c)
{
	int spins = 100000;

	while ((inb(COM1 + 5) & 0x20) == 0 && --spins > 0)
		;
	outb(COM1, (uint8_t)c);
}

static void
serial_puts(const char *s)
{
	while (*s != '\0')
		serial_putc(*s++);
}

static void
serial_hex(uint32_t v)
{
	int i;

	serial_puts("0x");
	for (i = 28; i >= 0; i -= 4)
		serial_putc("0123456789abcdef"[(v >> i) & 0xf]);
}

static void
fill_page(uint32_t p)
{
	fg_pattern(p, (volatile uint32_t *)p);
}

/* Top of RAM from the loader's memory info; 32 MiB when it gave none. */
static uint32_t
memory_top(uint32_t magic, const struct mb_info *mbi)
{
	if (magic == MB_LOADER_MAGIC && (mbi->flags & MB_INFO_MEMORY) != 0)
		return 0x100000u + mbi->mem_upper * 1024u;
	return 32u << 20;
}

/* 1 when the loader's command line has WORD as a whole word (words are
 * separated by spaces; QEMU passes the kernel's file name, a space, and
 * -append's string). */
static int
cmdline_has(uint32_t magic, const struct mb_info *mbi, const char *word)
{
	const char *c, *w;

	if (magic != MB_LOADER_MAGIC || (mbi->flags & MB_INFO_CMDLINE) == 0 || mbi->cmdline == 0)
		return 0;
	c = (const char *)mbi->cmdline;
	while (*c != '\0') {
		while (*c == ' ')
			c++;
		for (w = word; *w != '\0' && *c == *w; w++, c++)
			;
		if (*w == '\0' && (*c == ' ' || *c == '\0'))
			return 1;
		while (*c != ' ' && *c != '\0')
			c++;
	}
	return 0;
}

void
guest_main(uint32_t magic, const struct mb_info *mbi)
{
	volatile uint32_t *st = (volatile uint32_t *)FG_STATUS_ADDR;
	uint32_t top = memory_top(magic, mbi), end, p, rot, counter = 0;
	int nofill = cmdline_has(magic, mbi, "nofill");

	end = top > FG_FILL_START + (2u << 20) ? (top - (1u << 20)) & ~(FG_PAGE - 1) :
	    FG_FILL_START + FG_PAGE;
	rot = (end - FG_FILL_START) / FG_PAGE;
	if (rot > FG_ROT_PAGES)
		rot = FG_ROT_PAGES;
	st[ST_STATE] = 1;
	st[ST_COUNTER] = 0;
	st[ST_START] = FG_FILL_START;
	st[ST_END] = nofill ? FG_FILL_START : end;
	st[ST_ROT] = rot;
	st[ST_FILLED] = 0;
	st[ST_MAGIC] = FG_STATUS_MAGIC;
	if (nofill) {
		serial_puts("ferry test guest: nofill, rewriting ");
		serial_hex(rot);
		serial_puts(" pages from ");
		serial_hex(FG_FILL_START);
		serial_puts("\n");
	} else {
		serial_puts("ferry test guest: filling ");
		serial_hex(FG_FILL_START);
		serial_puts("..");
		serial_hex(end);
		serial_puts("\n");
		for (p = FG_FILL_START; p < end; p += FG_PAGE) {
			fill_page(p);
			st[ST_FILLED]++;
		}
	}
	st[ST_STATE] = 2;
	if (!nofill)
		serial_puts("ferry test guest: fill done, rewriting\n");
	for (;;) {
		volatile uint32_t *w;

		counter++;
		w = (volatile uint32_t *)(FG_FILL_START + (counter % rot) * FG_PAGE);
		w[3] = counter;
		st[ST_COUNTER] = counter;
	}
}
