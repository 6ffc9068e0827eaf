/* Fuzz target: the config file parser cfg_parse (src/common/config.c).
 *
 * Input: u8 sel (bit 0: parse as ferry-send, else ferry-recv), then the
 * file's bytes, given to the parser in an exact-size heap block.  The key
 * table holds both daemons' kinds of keys (with and without a value).
 *
 * Checked on success: at most CFG_ITEMS_MAX items; every key is a name of
 * the table (the same pointer); a value is present exactly for keys that
 * take one, non-empty, without control bytes (tabs inside are kept) or
 * blanks at either end, and is a run of the input's bytes; line numbers
 * start at 1, increase and stay within the input's lines.  The items written out again as
 * "key = value" lines parse to the same items, on lines 1, 2, 3...
 * On failure: FERR_USAGE (or FERR_NOMEM) with a message that begins with
 * the file name and holds no control bytes but tabs (one line). */
#include "fuzz_common.h"

#include <getopt.h>

#include "config.h"

static const struct option keys[] = {
	{ "listen", required_argument, NULL, 1 },
	{ "to", required_argument, NULL, 2 },
	{ "dest-dir", required_argument, NULL, 3 },
	{ "on-commit", required_argument, NULL, 4 },
	{ "pin", required_argument, NULL, 5 },
	{ "bandwidth", required_argument, NULL, 6 },
	{ "downtime", required_argument, NULL, 7 },
	{ "json", no_argument, NULL, 8 },
	{ "once", no_argument, NULL, 9 },
	{ "progress", no_argument, NULL, 10 },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static const struct option *
table_entry(const char *key)
{
	const struct option *o;

	for (o = keys; o->name != NULL; o++)
		if (o->name == key)
			return o;
	return NULL;
}

static void
check_items(const struct cfg_file *f, const uint8_t *in, size_t len, size_t nlines)
{
	size_t i;
	unsigned prev = 0;

	FZ_CHECK(f->n <= CFG_ITEMS_MAX);
	FZ_CHECK(f->n == 0 || f->items != NULL);
	for (i = 0; i < f->n; i++) {
		const struct cfg_item *it = &f->items[i];
		const struct option *o = table_entry(it->key);

		FZ_CHECK(o != NULL);
		FZ_CHECK(strcmp(it->key, "help") != 0);
		FZ_CHECK(it->line >= 1 && it->line > prev && it->line <= nlines);
		prev = it->line;
		if (o->has_arg == no_argument) {
			FZ_CHECK(it->value == NULL);
		} else {
			size_t n, j;

			FZ_CHECK(it->value != NULL);
			n = strlen(it->value);
			FZ_CHECK(n >= 1 && n <= CFG_LINE_MAX);
			FZ_CHECK(it->value[0] != ' ' && it->value[0] != '\t');
			FZ_CHECK(it->value[n - 1] != ' ' && it->value[n - 1] != '\t');
			for (j = 0; j < n; j++)
				FZ_CHECK(((unsigned char)it->value[j] >= 0x20 || it->value[j] == '\t') &&
				    it->value[j] != 0x7f);
			FZ_CHECK(memmem(in, len, it->value, n) != NULL);
		}
	}
}

/* The items as a file of their own parse to themselves. */
static void
check_round_trip(const struct cfg_file *f, const char *section)
{
	struct cfg_file g;
	struct ferr e = { 0 };
	size_t i, cap = 16, len = 0;
	char *text;

	for (i = 0; i < f->n; i++)
		cap += strlen(f->items[i].key) + (f->items[i].value ? strlen(f->items[i].value) : 4) + 4;
	text = malloc(cap);
	FZ_CHECK(text != NULL);
	for (i = 0; i < f->n; i++)
		len += (size_t)snprintf(text + len, cap - len, "%s = %s\n", f->items[i].key,
		    f->items[i].value ? f->items[i].value : "true");
	FZ_CHECK(cfg_parse("again.conf", (const uint8_t *)text, len, section, keys, &g, &e) == 0);
	FZ_CHECK(g.n == f->n);
	for (i = 0; i < f->n; i++) {
		FZ_CHECK(g.items[i].key == f->items[i].key);
		FZ_CHECK(g.items[i].line == i + 1);
		FZ_CHECK((g.items[i].value == NULL) == (f->items[i].value == NULL));
		if (g.items[i].value != NULL)
			FZ_CHECK(strcmp(g.items[i].value, f->items[i].value) == 0);
	}
	cfg_file_fini(&g);
	free(text);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *section;
	struct cfg_file f;
	struct ferr e = { 0 };
	uint8_t *in;
	size_t len, i, nlines = 1;
	int rc;

	if (size < 1)
		return 0;
	section = (data[0] & 1) ? "send" : "recv";
	len = size - 1;
	in = fz_dup(data + 1, len);
	for (i = 0; i < len; i++)
		nlines += in[i] == '\n';
	rc = cfg_parse("f.conf", in, len, section, keys, &f, &e);
	if (rc == 0) {
		check_items(&f, in, len, nlines);
		check_round_trip(&f, section);
	} else {
		FZ_CHECK(rc == e.code && (rc == FERR_USAGE || rc == FERR_NOMEM));
		FZ_CHECK(strncmp(e.msg, "f.conf", 6) == 0);
		FZ_CHECK(memchr(e.msg, '\0', sizeof(e.msg)) != NULL);
		for (i = 0; e.msg[i] != '\0'; i++)
			FZ_CHECK(((unsigned char)e.msg[i] >= 0x20 || e.msg[i] == '\t') && e.msg[i] != 0x7f);
		FZ_CHECK(f.items == NULL && f.text == NULL && f.n == 0);
	}
	cfg_file_fini(&f);
	free(in);
	return 0;
}
