/* config.c: the config file parser (a pure function over the file's bytes)
 * and the daemons' hook that merges a file with the command line.  Every
 * error names FILE:LINE and the key; boundaries are tried one under and
 * one over each limit; a file cut at every offset never crashes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "units.h"

/* A daemon's table, as in src/receiver/main.c. */
enum { K_LISTEN = 256, K_DEST, K_JSON, K_ONCE, K_PIN, K_MAXS, K_HS, K_ONCOMMIT };
static const struct option keys[] = {
	{ "listen", required_argument, NULL, K_LISTEN },
	{ "dest-dir", required_argument, NULL, K_DEST },
	{ "json", no_argument, NULL, K_JSON },
	{ "once", no_argument, NULL, K_ONCE },
	{ "pin", required_argument, NULL, K_PIN },
	{ "max-sessions", required_argument, NULL, K_MAXS },
	{ "handshake-timeout", required_argument, NULL, K_HS },
	{ "on-commit", required_argument, NULL, K_ONCOMMIT },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int
parse(const char *text, struct cfg_file *f, struct ferr *e)
{
	memset(e, 0, sizeof(*e));
	return cfg_parse("t.conf", (const uint8_t *)text, strlen(text), "recv", keys, f, e);
}

/* The text must fail, with a message starting "t.conf:LINE: " and
 * containing `what`. */
static void
parse_bad(const char *text, unsigned line, const char *what)
{
	struct cfg_file f;
	struct ferr e;
	char pre[32];

	if (parse(text, &f, &e) == 0)
		fail_msg("accepted: %s", text);
	assert_int_equal(e.code, FERR_USAGE);
	snprintf(pre, sizeof(pre), "t.conf:%u: ", line);
	if (strncmp(e.msg, pre, strlen(pre)) != 0 || strstr(e.msg, what) == NULL)
		fail_msg("message '%s' lacks '%s' or '%s'", e.msg, pre, what);
	assert_null(f.items);
	assert_int_equal(f.n, 0);
}

static void
test_settings_in_order(void **state)
{
	struct cfg_file f;
	struct ferr e;

	(void)state;
	assert_int_equal(parse("\xef\xbb\xbf# ferry-recv\r\n"
	    "; another comment\n"
	    "\n"
	    "   listen   =   127.0.0.1:7300   \r\n"
	    "json = true\n"
	    "once = false\n"
	    "\tdest-dir=/var/lib/ferry/images\n"
	    "on-commit = logger \"a=b\" # not a comment\n"
	    "pin = sha256:aa\n"
	    "pin = sha256:bb", &f, &e), 0);
	assert_int_equal(f.n, 6);
	assert_string_equal(f.items[0].key, "listen");
	assert_string_equal(f.items[0].value, "127.0.0.1:7300");
	assert_int_equal(f.items[0].line, 4);
	assert_string_equal(f.items[1].key, "json");
	assert_null(f.items[1].value);
	assert_int_equal(f.items[1].line, 5);
	/* once = false sets nothing */
	assert_string_equal(f.items[2].key, "dest-dir");
	assert_string_equal(f.items[2].value, "/var/lib/ferry/images");
	assert_int_equal(f.items[2].line, 7);
	assert_string_equal(f.items[3].value, "logger \"a=b\" # not a comment");
	assert_string_equal(f.items[4].value, "sha256:aa");
	assert_string_equal(f.items[5].value, "sha256:bb");
	assert_int_equal(f.items[5].line, 10);
	/* keys point at the table's names */
	assert_ptr_equal(f.items[0].key, keys[0].name);
	cfg_file_fini(&f);
	cfg_file_fini(&f);   /* twice is harmless */
}

static void
test_booleans(void **state)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	struct cfg_file f;
	struct ferr e;
	char buf[64];
	size_t i;

	(void)state;
	for (i = 0; i < 4; i++) {
		snprintf(buf, sizeof(buf), "json = %s\n", yes[i]);
		assert_int_equal(parse(buf, &f, &e), 0);
		assert_int_equal(f.n, 1);
		assert_null(f.items[0].value);
		cfg_file_fini(&f);
		snprintf(buf, sizeof(buf), "json = %s\n", no[i]);
		assert_int_equal(parse(buf, &f, &e), 0);
		assert_int_equal(f.n, 0);
		cfg_file_fini(&f);
	}
	parse_bad("json = maybe\n", 1, "key 'json': expected true or false, not 'maybe'");
	parse_bad("\n\njson =\n", 3, "key 'json': expected true or false");
	parse_bad("json = TRUE\n", 1, "key 'json'");
}

static void
test_sections(void **state)
{
	struct cfg_file f;
	struct ferr e;

	(void)state;
	/* Lines before a section and in [recv] apply; [send] is checked
	 * for syntax only (its keys are ferry-send's). */
	assert_int_equal(parse("listen = a:1\n[send]\nto = b:2\nbandwidth = 1x\n[ recv ]\njson = on\n",
	    &f, &e), 0);
	assert_int_equal(f.n, 2);
	assert_string_equal(f.items[0].key, "listen");
	assert_string_equal(f.items[1].key, "json");
	assert_int_equal(f.items[1].line, 6);
	cfg_file_fini(&f);
	parse_bad("[send]\nto b:2\n", 2, "key 'to': missing '='");
	parse_bad("[send]\nhelp = true\n", 2, "key 'help': only allowed on the command line");
	parse_bad("json = on\n[daemon]\n", 2, "unknown section [daemon] (expected [send] or [recv])");
	parse_bad("[recv\n", 1, "section header '[recv' does not end with ']'");
	parse_bad("[]\n", 1, "unknown section []");
}

static void
test_errors_name_line_and_key(void **state)
{
	(void)state;
	parse_bad("json = on\nbandwidth = 1G\n", 2,
	    "unknown key 'bandwidth' (keys are the long flags of ferry-recv --help)");
	parse_bad("listen 1.2.3.4:5\n", 1, "key 'listen': missing '=' (write key = value)");
	parse_bad("# c\n = 5\n", 2, "missing key before '='");
	parse_bad("listen =\n", 1, "key 'listen': missing value");
	parse_bad("listen =   \t \n", 1, "key 'listen': missing value");
	parse_bad("Listen = x\n", 1, "key 'Listen': only lower-case letters, digits and '-'");
	parse_bad("--listen = x\n", 1, "unknown key '--listen'");
	parse_bad("max sessions = 3\n", 1, "key 'max sessions': only lower-case");
	parse_bad("config = other.conf\n", 1, "key 'config': only allowed on the command line");
	parse_bad("check-config = true\n", 1, "key 'check-config': only allowed");
	parse_bad("list = x\n", 1, "unknown key 'list'");   /* no abbreviations */
	parse_bad("json = on\nlisten = a\x01:1\n", 2, "control byte 0x01 at column 11");
	parse_bad("json = on\nlisten = a\x7f\n", 2, "control byte 0x7f");
	parse_bad("listen = a\rb\n", 1, "control byte 0x0d");
}

static void
test_nul_byte(void **state)
{
	static const uint8_t text[] = "json = on\nlisten = a\0b\n";
	struct cfg_file f;
	struct ferr e = { 0 };

	(void)state;
	assert_int_equal(cfg_parse("t.conf", text, sizeof(text) - 1, "recv", keys, &f, &e), FERR_USAGE);
	assert_string_equal(e.msg, "t.conf:2: NUL byte (not a text file?)");
}

static void
test_limits(void **state)
{
	struct cfg_file f;
	struct ferr e;
	char *buf = malloc(CFG_FILE_MAX + 2);
	size_t n, i;

	(void)state;
	assert_non_null(buf);
	/* A line of exactly CFG_LINE_MAX bytes (plus CR LF) is fine, one more is not. */
	n = (size_t)snprintf(buf, 32, "on-commit = ");
	memset(buf + n, 'x', CFG_LINE_MAX - n);
	memcpy(buf + CFG_LINE_MAX, "\r\n", 3);
	assert_int_equal(parse(buf, &f, &e), 0);
	assert_int_equal(strlen(f.items[0].value), CFG_LINE_MAX - n);
	cfg_file_fini(&f);
	buf[CFG_LINE_MAX] = 'x';
	memcpy(buf + CFG_LINE_MAX + 1, "\n", 2);
	parse_bad(buf, 1, "line longer than 4096 bytes");
	/* A key of CFG_KEY_MAX bytes is only unknown; one more is too long. */
	memset(buf, 'k', CFG_KEY_MAX);
	memcpy(buf + CFG_KEY_MAX, " = 1\n", 6);
	parse_bad(buf, 1, "unknown key 'kkkk");
	memset(buf, 'k', CFG_KEY_MAX + 1);
	memcpy(buf + CFG_KEY_MAX + 1, " = 1\n", 6);
	parse_bad(buf, 1, "longer than 64 bytes");
	/* CFG_ITEMS_MAX settings, then one more. */
	buf[0] = '\0';
	for (i = 0, n = 0; i < CFG_ITEMS_MAX; i++)
		n += (size_t)sprintf(buf + n, "pin = %zu\n", i);
	assert_int_equal(parse(buf, &f, &e), 0);
	assert_int_equal(f.n, CFG_ITEMS_MAX);
	cfg_file_fini(&f);
	strcpy(buf + n, "# fine\njson = 0\npin = x\n");
	parse_bad(buf, CFG_ITEMS_MAX + 3, "more than 512 settings");
	/* CFG_FILE_MAX bytes of comment lines, then one more byte. */
	memset(buf, '#', CFG_FILE_MAX);
	for (i = 63; i < CFG_FILE_MAX; i += 64)
		buf[i] = '\n';
	assert_int_equal(cfg_parse("t.conf", (uint8_t *)buf, CFG_FILE_MAX, "recv", keys, &f, &e), 0);
	cfg_file_fini(&f);
	buf[CFG_FILE_MAX] = '#';
	assert_int_equal(cfg_parse("t.conf", (uint8_t *)buf, CFG_FILE_MAX + 1, "recv", keys, &f, &e),
	    FERR_USAGE);
	assert_string_equal(e.msg, "t.conf: 65537 bytes, more than the 65536 a config file may have");
	free(buf);
}

/* Every prefix of a valid file parses or fails with a located message,
 * with an exact-size copy so ASan sees any read past the end. */
static void
test_truncated_everywhere(void **state)
{
	static const char text[] = "# x\n[recv]\nlisten = 1.2.3.4:5\njson = yes\n[send]\nto = h:1\n"
	    "[recv]\npin = sha256:00\r\n";
	size_t cut;

	(void)state;
	for (cut = 0; cut <= sizeof(text) - 1; cut++) {
		uint8_t *p = malloc(cut ? cut : 1);
		struct cfg_file f;
		struct ferr e = { 0 };
		int rc;

		assert_non_null(p);
		memcpy(p, text, cut);
		rc = cfg_parse("t.conf", p, cut, "recv", keys, &f, &e);
		if (rc != 0) {
			assert_int_equal(rc, FERR_USAGE);
			assert_memory_equal(e.msg, "t.conf:", 7);
		} else {
			assert_true(f.n <= 3);
		}
		cfg_file_fini(&f);
		free(p);
	}
}

/* ---- config_merge, with a parse loop shaped like the daemons' ---- */

struct opts {
	const char *listen, *dest, *oncommit, *pins[4];
	int npins, json, once, quiet;
	uint64_t hs_ms, maxs;
};

static int
daemon_parse(int argc, char **argv, struct opts *o, struct config *cfg, struct ferr *e)
{
	int ch;

	memset(o, 0, sizeof(*o));
	if (config_merge(cfg, "recv", keys, "qh", &argc, &argv, e) != 0)
		return e->code;
	while ((ch = getopt_long(argc, argv, "qh", keys, NULL)) != -1) {
		switch (ch) {
		case K_LISTEN: o->listen = optarg; break;
		case K_DEST: o->dest = optarg; break;
		case K_ONCOMMIT: o->oncommit = optarg; break;
		case K_JSON: o->json = 1; break;
		case K_ONCE: o->once = 1; break;
		case K_PIN:
			if (o->npins >= 2)
				return ferr_set(e, FERR_USAGE, "--pin: at most two");
			o->pins[o->npins++] = optarg;
			break;
		case K_MAXS:
			if (parse_uint(optarg, 1, 1024, &o->maxs, e) != 0)
				return ferr_wrap(e, "--max-sessions");
			break;
		case K_HS:
			if (parse_timeout_flag("--handshake-timeout", optarg, &o->hs_ms, e) != 0)
				return e->code;
			break;
		case 'q': o->quiet = 1; break;
		case 'h': return 1;
		default: return ferr_set(e, FERR_USAGE, "see --help");
		}
	}
	if (optind < argc)
		return ferr_set(e, FERR_USAGE, "unexpected argument '%s'", argv[optind]);
	if (o->listen == NULL)
		return ferr_set(e, FERR_USAGE, "--listen is required");
	return 0;
}

/* Run daemon_parse on a command line (NULL-terminated words) with the
 * config file text written to a temp file, which "@" in a word names. */
struct run {
	char path[64];
	struct config cfg;
	struct opts o;
	struct ferr e;
	int rc;
	char *words[16];
};

static void
run(struct run *r, const char *text, ...)
{
	va_list ap;
	const char *w;
	int n = 0, fd;

	memset(r, 0, sizeof(*r));
	strcpy(r->path, "/tmp/ferry-test-config.XXXXXX");
	fd = mkstemp(r->path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	r->words[n++] = strdup("ferry-recv");
	va_start(ap, text);
	while ((w = va_arg(ap, const char *)) != NULL) {
		char buf[128];

		if (strcmp(w, "@") == 0)
			snprintf(buf, sizeof(buf), "%s", r->path);
		else if (strcmp(w, "--config=@") == 0)
			snprintf(buf, sizeof(buf), "--config=%s", r->path);
		else
			snprintf(buf, sizeof(buf), "%s", w);
		r->words[n++] = strdup(buf);
	}
	va_end(ap);
	r->rc = daemon_parse(n, r->words, &r->o, &r->cfg, &r->e);
	if (r->rc != 0 && r->rc != 1)
		config_blame(&r->cfg, optind, &r->e);
}

static void
run_fini(struct run *r)
{
	int i;

	config_fini(&r->cfg);
	for (i = 0; r->words[i] != NULL; i++)
		free(r->words[i]);
	unlink(r->path);
}

static void
test_merge_flags_override_file(void **state)
{
	struct run r;

	(void)state;
	run(&r, "listen = 10.0.0.1:1\ndest-dir = /d\npin = sha256:f1\npin = sha256:f2\njson = yes\n",
	    "--config", "@", "--listen", "127.0.0.1:0", "--pin=sha256:c1", "-q", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.o.listen, "127.0.0.1:0");
	assert_string_equal(r.o.dest, "/d");
	/* A repeatable key on the command line replaces all the file's lines. */
	assert_int_equal(r.o.npins, 1);
	assert_string_equal(r.o.pins[0], "sha256:c1");
	assert_int_equal(r.o.json, 1);
	assert_int_equal(r.o.quiet, 1);
	assert_int_equal(r.cfg.check, 0);
	assert_int_equal(r.cfg.nfile, 2);   /* dest-dir, json */
	assert_string_equal(r.cfg.argv[1], "--dest-dir=/d");
	assert_int_equal(r.cfg.line[1], 2);
	assert_string_equal(r.cfg.argv[2], "--json");
	assert_int_equal(r.cfg.line[2], 5);
	assert_string_equal(r.cfg.argv[r.cfg.argc - 1], "--");
	assert_int_equal(r.cfg.ncl, 3);
	assert_string_equal(r.cfg.cl_key[0], "listen");
	assert_string_equal(r.cfg.cl_val[1], "sha256:c1");
	assert_string_equal(r.cfg.cl_key[2], "quiet");
	assert_null(r.cfg.cl_val[2]);
	run_fini(&r);
}

static void
test_merge_check_and_forms(void **state)
{
	struct run r;

	(void)state;
	run(&r, "[recv]\nlisten = a:1\n", "--check-config", "--config=@", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cfg.check, 1);
	assert_string_equal(r.o.listen, "a:1");
	assert_int_equal(r.cfg.argc, 3);   /* ferry-recv --listen=a:1 -- */
	run_fini(&r);
	/* Without --config: the command line alone, --check-config taken out. */
	run(&r, "", "--listen", "b:2", "--check-config", NULL);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.cfg.check, 1);
	assert_null(r.cfg.path);
	assert_string_equal(r.o.listen, "b:2");
	run_fini(&r);
	/* A value that looks like the flag is not the flag. */
	run(&r, "listen = a:1\n", "--on-commit", "--config", "--config", "@", NULL);
	assert_int_equal(r.rc, 0);
	assert_string_equal(r.o.listen, "a:1");
	assert_string_equal(r.o.oncommit, "--config");
	run_fini(&r);
}

static void
test_merge_errors(void **state)
{
	struct run r;

	(void)state;
	/* A bad value in the file: the daemon's own message, located. */
	run(&r, "listen = a:1\n\nhandshake-timeout = 5x\n", "--config", "@", NULL);
	assert_int_equal(r.rc, FERR_USAGE);
	assert_true(strncmp(r.e.msg, r.path, strlen(r.path)) == 0);
	assert_non_null(strstr(r.e.msg, ":3: key 'handshake-timeout': --handshake-timeout"));
	assert_non_null(strstr(r.e.msg, "5x"));
	run_fini(&r);
	/* The last line of the file is still blamed... */
	run(&r, "listen = a:1\nmax-sessions = 0\n", "--config", "@", NULL);
	assert_int_equal(r.rc, FERR_USAGE);
	assert_non_null(strstr(r.e.msg, ":2: key 'max-sessions': --max-sessions"));
	run_fini(&r);
	/* ...but not a check after the loop, nor a bad command-line value. */
	run(&r, "max-sessions = 3\n", "--config", "@", NULL);
	assert_int_equal(r.rc, FERR_USAGE);
	assert_string_equal(r.e.msg, "--listen is required");
	run_fini(&r);
	run(&r, "listen = a:1\n", "--config", "@", "--max-sessions", "0", NULL);
	assert_int_equal(r.rc, FERR_USAGE);
	assert_null(strstr(r.e.msg, r.path));
	run_fini(&r);
	/* Loader errors. */
	run(&r, "listen = a:1\nspeed = 1\n", "--config", "@", NULL);
	assert_int_equal(r.rc, FERR_USAGE);
	assert_non_null(strstr(r.e.msg, ":2: unknown key 'speed'"));
	run_fini(&r);
	run(&r, "", "--listen", "a:1", "--config", NULL);
	assert_int_equal(r.rc, FERR_USAGE);
	assert_string_equal(r.e.msg, "--config needs a FILE");
	run_fini(&r);
	run(&r, "", "--config", "@", "--config", "@", NULL);
	assert_string_equal(r.e.msg, "--config given twice");
	run_fini(&r);
	run(&r, "", "--config", "/nonexistent/ferry.conf", NULL);
	assert_int_equal(r.rc, FERR_USAGE);
	assert_string_equal(r.e.msg, "/nonexistent/ferry.conf: No such file or directory");
	run_fini(&r);
	run(&r, "", "--config", "/tmp", NULL);
	assert_int_equal(r.rc, FERR_USAGE);
	assert_string_equal(r.e.msg, "/tmp: Is a directory");
	run_fini(&r);
}

static void
test_print(void **state)
{
	struct run r;
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	(void)state;
	run(&r, "listen = a:1\njson = on\ndest-dir = /d\n", "--config", "@", "--dest-dir", "/e", NULL);
	assert_int_equal(r.rc, 0);
	f = open_memstream(&out, &len);
	assert_non_null(f);
	config_print(&r.cfg, "ferry-recv", f);
	fclose(f);
	assert_non_null(strstr(out, "[recv]\n"));
	assert_non_null(strstr(out, "\nlisten = a:1\njson = true\n# dest-dir = /d   (line 3, replaced"));
	assert_non_null(strstr(out, "# from the command line\ndest-dir = /e\n"));
	free(out);
	run_fini(&r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings_in_order),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_errors_name_line_and_key),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_truncated_everywhere),
		cmocka_unit_test(test_merge_flags_override_file),
		cmocka_unit_test(test_merge_check_and_forms),
		cmocka_unit_test(test_merge_errors),
		cmocka_unit_test(test_print),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
