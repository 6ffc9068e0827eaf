/* Fuzz target: the plan file parser plan_parse (src/sender/plan.c).
 *
 * Input: the file's bytes, given to the parser in an exact-size heap
 * block.  Checked on success: 1..PLAN_ENTRIES_MAX entries; each name is
 * 1..PLAN_NAME_MAX bytes of [A-Za-z0-9._-], not "." or "..", unique; at
 * most PLAN_ARGS_MAX words, argv NULL-terminated, no word holds a NUL or
 * a newline; line numbers increase and stay within the input's lines.
 * On failure: FERR_USAGE or FERR_NOMEM, a message naming the file, and
 * nothing left in the output. */
#include "fuzz_common.h"

#include "plan.h"

static int
name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > PLAN_NAME_MAX || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = fz_dup(data, size);
	struct plan p;
	struct ferr e = { 0 };
	unsigned lines = 1, last = 0;
	size_t i, j, k;
	int rc;

	for (i = 0; i < size; i++)
		lines += data[i] == '\n';
	memset(&p, 0xa5, sizeof(p));
	rc = plan_parse("fuzz.plan", buf, size, &p, &e);
	if (rc != 0) {
		FZ_CHECK(rc == FERR_USAGE || rc == FERR_NOMEM);
		FZ_CHECK(e.code == rc && (rc == FERR_NOMEM || strncmp(e.msg, "fuzz.plan", 9) == 0));
		FZ_CHECK(p.e == NULL && p.n == 0);
		free(buf);
		return 0;
	}
	FZ_CHECK(p.n >= 1 && p.n <= PLAN_ENTRIES_MAX);
	for (i = 0; i < p.n; i++) {
		const struct plan_entry *en = &p.e[i];

		FZ_CHECK(name_ok(en->name));
		for (j = 0; j < i; j++)
			FZ_CHECK(strcmp(p.e[j].name, en->name) != 0);
		FZ_CHECK(en->nargs <= PLAN_ARGS_MAX && en->argv[en->nargs] == NULL);
		for (k = 0; k < en->nargs; k++)
			FZ_CHECK(strchr(en->argv[k], '\n') == NULL);
		FZ_CHECK(en->line > last && en->line <= lines);
		last = en->line;
	}
	plan_fini(&p);
	free(buf);
	return 0;
}
