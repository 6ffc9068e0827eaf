/* plan.c: the plan file parser (ferry-send --plan). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

static int
parse_n(const char *text, size_t len, struct plan *p, struct ferr *e)
{
	return plan_parse("t.plan", (const uint8_t *)text, len, p, e);
}

static int
parse(const char *text, struct plan *p, struct ferr *e)
{
	return parse_n(text, strlen(text), p, e);
}

static void
test_entries_words_and_lines(void **state)
{
	struct plan p;
	struct ferr e = { 0 };

	(void)state;
	assert_int_equal(parse("# host a\n\nvm1 --mem /g/vm1.mem --guest-pid 42\r\n"
	    "  vm.2\t--disk \"/g/disk two.img\" # comment\n", &p, &e), 0);
	assert_int_equal(p.n, 2);
	assert_string_equal(p.e[0].name, "vm1");
	assert_int_equal(p.e[0].line, 3);
	assert_int_equal(p.e[0].nargs, 4);
	assert_string_equal(p.e[0].argv[3], "42");
	assert_null(p.e[0].argv[4]);
	assert_string_equal(p.e[1].name, "vm.2");
	assert_int_equal(p.e[1].line, 4);
	assert_int_equal(p.e[1].nargs, 2);
	assert_string_equal(p.e[1].argv[1], "/g/disk two.img");
	plan_fini(&p);
}

static void
test_quotes_join_and_escape(void **state)
{
	struct plan p;
	struct ferr e = { 0 };

	(void)state;
	assert_int_equal(parse("a 'b c'd \"x\\\"y\\\\z\" 'q\\n'\n", &p, &e), 0);
	assert_int_equal(p.e[0].nargs, 3);
	assert_string_equal(p.e[0].argv[0], "b cd");
	assert_string_equal(p.e[0].argv[1], "x\"y\\z");
	assert_string_equal(p.e[0].argv[2], "q\\n");
	plan_fini(&p);
}

/* Each bad file is refused with FERR_USAGE naming the file and line, and
 * leaves nothing in the output. */
static void
test_refusals_name_the_line(void **state)
{
	static const struct { const char *text; size_t len; const char *where; } bad[] = {
		{ "vm1 \"open\n", 0, "t.plan:1" },
		{ "ok --mem a\ndup --mem b\ndup --mem c\n", 0, "t.plan:3" },
		{ "ok --mem a\n../x --mem a\n", 0, "t.plan:2" },
		{ "ok --mem a\nnoflags\n", 0, "t.plan:2" },
		{ "# only comments\n\n", 0, "t.plan" },
		{ "a -x\n\nb\0c\n", 10, "t.plan:3" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct plan p;
		struct ferr e = { 0 };
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].text);

		assert_int_equal(parse_n(bad[i].text, len, &p, &e), FERR_USAGE);
		if (strstr(e.msg, bad[i].where) == NULL)
			fail_msg("case %zu: '%s' does not name %s", i, e.msg, bad[i].where);
		assert_null(p.e);
		assert_int_equal(p.n, 0);
	}
}

static void
test_limits(void **state)
{
	size_t n = PLAN_LINE_MAX + 16, i;
	char *long_line = malloc(n + 2), *many = malloc(PLAN_ARGS_MAX * 3 + 16);
	char name[PLAN_NAME_MAX + 16];
	struct plan p;
	struct ferr e = { 0 };

	(void)state;
	assert_non_null(long_line);
	assert_non_null(many);
	memset(long_line, 'a', n);
	long_line[n] = '\n';
	long_line[n + 1] = '\0';
	assert_int_equal(parse(long_line, &p, &e), FERR_USAGE);
	strcpy(many, "vm");
	for (i = 0; i < PLAN_ARGS_MAX + 1; i++)
		strcat(many, " x");
	assert_int_equal(parse(many, &p, &e), FERR_USAGE);
	memset(name, 'n', PLAN_NAME_MAX + 1);
	strcpy(name + PLAN_NAME_MAX + 1, " --mem a");
	assert_int_equal(parse(name, &p, &e), FERR_USAGE);
	strcpy(name + PLAN_NAME_MAX, " --mem a");     /* exactly the maximum */
	assert_int_equal(parse(name, &p, &e), 0);
	plan_fini(&p);
	free(long_line);
	free(many);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_entries_words_and_lines),
		cmocka_unit_test(test_quotes_join_and_escape),
		cmocka_unit_test(test_refusals_name_the_line),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
