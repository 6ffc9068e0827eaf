#include "gen.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "layout.h"

/* Percent of runs (memory) and blocks (disk) of each kind. */
#define MEM_PCT_ZERO    45u
#define MEM_PCT_TEXT    25u
#define MEM_PCT_DUP     10u
#define MEM_RUN_MAX     32u     /* pages */
#define DISK_PCT_USED   30u

void
prng_init(struct prng *g, uint64_t seed, uint64_t domain, uint64_t index)
{
	uint8_t in[16];

	put_be64(in, domain);
	put_be64(in + 8, index);
	g->s = XXH3_64bits_withSeed(in, sizeof(in), seed);
}

void
gen_random(struct prng *g, uint8_t *buf, size_t len)
{
	uint8_t tail[8];
	size_t i;

	for (i = 0; i + 8 <= len; i += 8)
		put_be64(buf + i, prng_next(g));
	if (i < len) {
		put_be64(tail, prng_next(g));
		memcpy(buf + i, tail, len - i);
	}
}

/* A small vocabulary of pseudo-instructions and words: a page of them
 * looks like a disassembly or a log, and lz4 finds the repeats.  64
 * entries; the first 16 are the "hot" ones (see gen_text). */
static const char *const vocab[64] = {
	"mov rax, rbx\n", "mov rdi, [rsp+8]\n", "add rsp, 0x28\n", "sub rsp, 0x18\n",
	"push rbp\n", "pop rbp\n", "ret\n", "call memcpy\n",
	"call malloc\n", "call free\n", "xor eax, eax\n", "test rax, rax\n",
	"jne .L3\n", "je .L7\n", "jmp .L12\n", "lea rsi, [rip+0x2e]\n",
	"cmp edx, 0x40\n", "movzx eax, byte [rdi]\n", "shl rcx, 4\n", "and eax, 0xff\n",
	"nop\n", "leave\n", "mov [rbp-0x8], rdi\n", "mov eax, [rbp-0x14]\n",
	"the ", "page ", "buffer ", "error ", "value ", "count ", "return ", "while ",
	"if (", "len ", "== ", "!= ", "NULL", ") {\n", "}\n", "\t",
	"struct ", "int ", "char *", "size_t ", "uint64_t ", "static ", "const ", "void ",
	"= 0;\n", "++;\n", "->next", "->len", "[i]", ", ", "; ", "memset(",
	"kernel: ", "eth0: link up\n", "ok\n", "INFO ", "WARN ", "debug: ", "0x", "\n",
};

void
gen_text(struct prng *g, uint8_t *buf, size_t len)
{
	uint8_t *p = buf, *end = buf + len;

	while (p < end) {
		uint64_t r = prng_next(g);

		/* 9 bits a token: 5 times in 8 one of the 16 hot entries, else
		 * any of the 64.  The skew brings lz4 to about 2.6x a page. */
		for (int k = 0; k < 7 && p < end; k++, r >>= 9) {
			unsigned pick = (unsigned)((r & 7) < 5 ? (r >> 3) & 15 : (r >> 3) & 63);
			const char *t = vocab[pick];
			size_t n = strlen(t);

			if (n > (size_t)(end - p))
				n = (size_t)(end - p);
			memcpy(p, t, n);
			p += n;
		}
	}
}

int
gen_map_new(uint64_t seed, uint64_t npages, struct gen_map **out, struct ferr *e)
{
	struct gen_map *m = NULL;
	uint32_t *roots = NULL;
	uint32_t nroots = 0, i;
	struct prng g;
	int r = FERR_NOMEM;

	*out = NULL;
	if (npages < GUEST_MIN_PAGES || npages > GUEST_MAX_MEM / GUEST_PAGE_SIZE)
		return ferr_set(e, FERR_INTERNAL, "page map: %llu pages out of range",
		    (unsigned long long)npages);
	if ((m = calloc(1, sizeof(*m))) == NULL ||
	    (m->kind = calloc(npages, 1)) == NULL ||
	    (m->src = calloc(npages, sizeof(*m->src))) == NULL ||
	    (roots = malloc(npages * sizeof(*roots))) == NULL) {
		ferr_set(e, r, "page map for %llu pages: out of memory", (unsigned long long)npages);
		goto out;
	}
	m->seed = seed;
	m->npages = (uint32_t)npages;
	m->kind[0] = GEN_HEADER;
	prng_init(&g, seed, GEN_DOMAIN_RUNS, 0);
	for (i = 1; i < m->npages;) {
		uint64_t pick = prng_next(&g) % 100;
		uint32_t len = 1 + (uint32_t)(prng_next(&g) % MEM_RUN_MAX);
		enum gen_kind k;

		if (pick < MEM_PCT_ZERO)
			k = GEN_ZERO;
		else if (pick < MEM_PCT_ZERO + MEM_PCT_TEXT)
			k = GEN_TEXT;
		else if (pick < MEM_PCT_ZERO + MEM_PCT_TEXT + MEM_PCT_DUP)
			k = nroots > 0 ? GEN_DUP : GEN_TEXT;
		else
			k = GEN_RANDOM;
		if (len > m->npages - i)
			len = m->npages - i;
		for (; len > 0; len--, i++) {
			m->kind[i] = (uint8_t)k;
			if (k == GEN_DUP)
				m->src[i] = roots[prng_next(&g) % nroots];
			else if (k != GEN_ZERO)
				roots[nroots++] = i;
		}
	}
	*out = m;
	m = NULL;
	r = 0;
out:
	free(roots);
	gen_map_free(m);
	return r;
}

void
gen_map_free(struct gen_map *m)
{
	if (m == NULL)
		return;
	free(m->kind);
	free(m->src);
	free(m);
}

void
gen_page(const struct gen_map *m, uint32_t i, uint8_t *page)
{
	struct prng g;
	uint32_t src = i;

	if (m->kind[i] == GEN_DUP)
		src = m->src[i];
	switch (m->kind[src]) {
	case GEN_TEXT:
		prng_init(&g, m->seed, GEN_DOMAIN_PAGE, src);
		gen_text(&g, page, GUEST_PAGE_SIZE);
		break;
	case GEN_RANDOM:
		prng_init(&g, m->seed, GEN_DOMAIN_PAGE, src);
		gen_random(&g, page, GUEST_PAGE_SIZE);
		break;
	default:
		memset(page, 0, GUEST_PAGE_SIZE);
		break;
	}
}

enum gen_kind
gen_block_kind(uint64_t seed, uint64_t b)
{
	struct prng g;
	uint64_t h;

	prng_init(&g, seed, GEN_DOMAIN_BLOCK, b);
	h = prng_next(&g);
	if (h % 100 >= DISK_PCT_USED)
		return GEN_ZERO;
	return ((h / 100) & 1) ? GEN_RANDOM : GEN_TEXT;
}

enum gen_kind
gen_block(uint64_t seed, uint64_t b, uint8_t *block)
{
	enum gen_kind k = gen_block_kind(seed, b);
	struct prng g;

	/* a stream apart from the one that picked the kind */
	prng_init(&g, seed ^ 0x5bd1e995u, GEN_DOMAIN_BLOCK, b);
	if (k == GEN_TEXT)
		gen_text(&g, block, GUEST_BLOCK_SIZE);
	else if (k == GEN_RANDOM)
		gen_random(&g, block, GUEST_BLOCK_SIZE);
	else
		memset(block, 0, GUEST_BLOCK_SIZE);
	return k;
}
