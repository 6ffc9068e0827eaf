#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Flags that only make sense on a command line. */
static const char *const cmdline_only[] = { "help", "config", "check-config", NULL };

/* Values of the two flags config_merge adds to the table for its own scan;
 * above any char and any enum a daemon's table uses. */
enum { CFG_OPT_CONFIG = 0x7f001, CFG_OPT_CHECK = 0x7f002 };

static int
is_blank(char ch)
{
	return ch == ' ' || ch == '\t';
}

static const struct option *
find_key(const struct option *keys, const char *name)
{
	for (; keys->name != NULL; keys++)
		if (strcmp(keys->name, name) == 0)
			return keys;
	return NULL;
}

static int
in_list(const char *const *list, const char *s)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, s) == 0)
			return 1;
	return 0;
}

/* A flag's value: 1 true, 0 false, -1 neither. */
static int
bool_value(const char *v)
{
	static const char *const yes[] = { "true", "yes", "on", "1", NULL };
	static const char *const no[] = { "false", "no", "off", "0", NULL };

	if (in_list(yes, v))
		return 1;
	if (in_list(no, v))
		return 0;
	return -1;
}

/* One line, NUL-terminated in place (the caller's copy), blanks trimmed.
 * Adds at most one item to f. */
static int
parse_line(const char *path, unsigned ln, char *s, size_t n, const char *section,
    const struct option *keys, int *active, struct cfg_file *f, struct ferr *e)
{
	const struct option *o;
	char *key, *val, *eq;
	size_t i, klen;
	int b;

	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (n > CFG_LINE_MAX)
		return ferr_set(e, FERR_USAGE, "%s:%u: line longer than %u bytes", path, ln, CFG_LINE_MAX);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
			return ferr_set(e, FERR_USAGE, "%s:%u: control byte 0x%02x at column %zu", path, ln,
			    ch, i + 1);
	}
	while (n > 0 && is_blank(s[n - 1]))
		n--;
	s[n] = '\0';
	while (is_blank(*s)) {
		s++;
		n--;
	}
	if (n == 0 || s[0] == '#' || s[0] == ';')
		return 0;
	if (s[0] == '[') {
		char *name = s + 1, *end = s + n - 1;

		if (*end != ']')
			return ferr_set(e, FERR_USAGE, "%s:%u: section header '%s' does not end with ']'",
			    path, ln, s);
		*end = '\0';
		while (is_blank(*name))
			name++;
		for (end--; end >= name && is_blank(*end); end--)
			*end = '\0';
		if (strcmp(name, "send") != 0 && strcmp(name, "recv") != 0)
			return ferr_set(e, FERR_USAGE, "%s:%u: unknown section [%s] (expected [send] or [recv])",
			    path, ln, name);
		*active = strcmp(name, section) == 0;
		return 0;
	}
	if ((eq = strchr(s, '=')) == NULL) {
		klen = strcspn(s, " \t");
		return ferr_set(e, FERR_USAGE, "%s:%u: key '%.*s': missing '=' (write key = value)", path,
		    ln, (int)(klen > CFG_KEY_MAX ? CFG_KEY_MAX : klen), s);
	}
	key = s;
	val = eq + 1;
	for (klen = (size_t)(eq - s); klen > 0 && is_blank(key[klen - 1]); klen--)
		;
	key[klen] = '\0';
	while (is_blank(*val))
		val++;
	if (klen == 0)
		return ferr_set(e, FERR_USAGE, "%s:%u: missing key before '='", path, ln);
	if (klen > CFG_KEY_MAX)
		return ferr_set(e, FERR_USAGE, "%s:%u: key '%.*s...' longer than %u bytes", path, ln,
		    (int)CFG_KEY_MAX, key, CFG_KEY_MAX);
	for (i = 0; i < klen; i++) {
		char ch = key[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
			return ferr_set(e, FERR_USAGE,
			    "%s:%u: key '%s': only lower-case letters, digits and '-' (the flag's name without --)",
			    path, ln, key);
	}
	if (in_list(cmdline_only, key))
		return ferr_set(e, FERR_USAGE, "%s:%u: key '%s': only allowed on the command line", path, ln,
		    key);
	if (!*active)
		return 0;
	if ((o = find_key(keys, key)) == NULL)
		return ferr_set(e, FERR_USAGE, "%s:%u: unknown key '%s' (keys are the long flags of %s --help)",
		    path, ln, key, strcmp(section, "send") == 0 ? "ferry-send" : "ferry-recv");
	if (o->has_arg == no_argument) {
		if ((b = bool_value(val)) < 0)
			return ferr_set(e, FERR_USAGE, "%s:%u: key '%s': expected true or false, not '%s'", path,
			    ln, key, val);
		if (b == 0)
			return 0;
		val = NULL;
	} else if (*val == '\0') {
		if (o->has_arg == required_argument)
			return ferr_set(e, FERR_USAGE, "%s:%u: key '%s': missing value", path, ln, key);
		val = NULL;
	}
	if (f->n >= CFG_ITEMS_MAX)
		return ferr_set(e, FERR_USAGE, "%s:%u: more than %u settings", path, ln, CFG_ITEMS_MAX);
	f->items[f->n].key = o->name;
	f->items[f->n].value = val;
	f->items[f->n].line = ln;
	f->n++;
	return 0;
}

int
cfg_parse(const char *path, const uint8_t *buf, size_t len, const char *section,
    const struct option *keys, struct cfg_file *out, struct ferr *e)
{
	struct cfg_file f = { NULL, 0, NULL };
	size_t off = 0, nlines = 1, i;
	unsigned ln = 0;
	int active = 1, rc;

	memset(out, 0, sizeof(*out));
	if (len > CFG_FILE_MAX)
		return ferr_set(e, FERR_USAGE, "%s: %zu bytes, more than the %u a config file may have", path,
		    len, CFG_FILE_MAX);
	for (i = 0; i < len; i++)
		nlines += buf[i] == '\n';
	if ((f.text = malloc(len + 1)) == NULL ||
	    (f.items = calloc(nlines < CFG_ITEMS_MAX ? nlines : CFG_ITEMS_MAX, sizeof(*f.items))) == NULL) {
		cfg_file_fini(&f);
		return ferr_set(e, FERR_NOMEM, "%s: out of memory", path);
	}
	if (len > 0)
		memcpy(f.text, buf, len);
	f.text[len] = '\0';
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		off = 3;   /* a UTF-8 byte order mark */
	while (off < len || (off == len && ln == 0)) {
		const uint8_t *nl = memchr(buf + off, '\n', len - off);
		size_t n = nl != NULL ? (size_t)(nl - (buf + off)) : len - off;

		ln++;
		if (memchr(buf + off, '\0', n) != NULL) {
			rc = ferr_set(e, FERR_USAGE, "%s:%u: NUL byte (not a text file?)", path, ln);
			cfg_file_fini(&f);
			return rc;
		}
		if ((rc = parse_line(path, ln, f.text + off, n, section, keys, &active, &f, e)) != 0) {
			cfg_file_fini(&f);
			return rc;
		}
		off += n + 1;
	}
	*out = f;
	return 0;
}

void
cfg_file_fini(struct cfg_file *f)
{
	if (f == NULL)
		return;
	free(f->items);
	free(f->text);
	memset(f, 0, sizeof(*f));
}

/* ---- the daemons' hook --------------------------------------------------- */

static int
read_file(const char *path, uint8_t **buf, size_t *len, struct ferr *e)
{
	uint8_t *p;
	size_t n = 0;
	ssize_t got;
	int fd, err;

	*buf = NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ferr_set(e, FERR_USAGE, "%s: %s", path, strerror(errno));
	if ((p = malloc(CFG_FILE_MAX + 1)) == NULL) {
		close(fd);
		return ferr_set(e, FERR_NOMEM, "%s: out of memory", path);
	}
	/* One byte more than allowed tells a file that is too large. */
	while (n < CFG_FILE_MAX + 1) {
		got = read(fd, p + n, CFG_FILE_MAX + 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			err = errno;
			close(fd);
			free(p);
			return ferr_set(e, FERR_USAGE, "%s: %s", path, strerror(err));
		}
		if (got == 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	if (n > CFG_FILE_MAX) {
		free(p);
		return ferr_set(e, FERR_USAGE, "%s: larger than the %u bytes a config file may have", path,
		    CFG_FILE_MAX);
	}
	*buf = p;
	*len = n;
	return 0;
}

/* The command line's settings, from the first scan. */
struct cl_scan {
	const char **key;     /* option names (from the table) */
	const char **val;     /* their values, NULL for flags */
	int n;
	char *drop;           /* per argv element: 1 = a config flag, removed */
};

static int
scan_cmdline(struct config *c, const struct option *keys, const char *shortopts, int argc,
    char **argv, struct cl_scan *s, struct ferr *e)
{
	struct option *lo = NULL;
	char **copy = NULL, sopts[64];
	size_t nk = 0, i;
	int ch, idx, saved_opterr = opterr, rc = 0, j;

	while (keys[nk].name != NULL)
		nk++;
	lo = calloc(nk + 3, sizeof(*lo));
	copy = calloc((size_t)argc + 1, sizeof(*copy));
	s->key = calloc((size_t)argc + 1, sizeof(*s->key));
	s->val = calloc((size_t)argc + 1, sizeof(*s->val));
	s->drop = calloc((size_t)argc + 1, 1);
	if (lo == NULL || copy == NULL || s->key == NULL || s->val == NULL || s->drop == NULL) {
		rc = ferr_set(e, FERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < nk; i++) {
		lo[i] = keys[i];
		lo[i].flag = NULL;   /* this scan must not set the daemon's variables */
	}
	lo[nk] = (struct option){ "config", required_argument, NULL, CFG_OPT_CONFIG };
	lo[nk + 1] = (struct option){ "check-config", no_argument, NULL, CFG_OPT_CHECK };
	memcpy(copy, argv, (size_t)argc * sizeof(*copy));
	/* A leading ':' reports a missing value as ':', silently. */
	snprintf(sopts, sizeof(sopts), ":%s", shortopts);
	opterr = 0;
	optind = 0;
	for (;;) {
		idx = -1;
		if ((ch = getopt_long(argc, copy, sopts, lo, &idx)) == -1)
			break;
		if ((ch == ':' || ch == '?') && optopt == CFG_OPT_CONFIG) {
			rc = ferr_set(e, FERR_USAGE, "--config needs a FILE");
			goto out;
		}
		if (ch == ':' || ch == '?')
			continue;   /* the daemon's own parse reports it */
		if (ch == CFG_OPT_CONFIG || ch == CFG_OPT_CHECK) {
			char *last = copy[optind - 1];

			if (ch == CFG_OPT_CONFIG) {
				if (c->path != NULL) {
					rc = ferr_set(e, FERR_USAGE, "--config given twice");
					goto out;
				}
				c->path = optarg;
			} else {
				c->check = 1;
			}
			/* Drop the flag and, for "--config FILE", its value. */
			for (j = 1; j < argc; j++) {
				if (argv[j] == last ||
				    (ch == CFG_OPT_CONFIG && optarg == last && optind >= 2 &&
				    argv[j] == copy[optind - 2]))
					s->drop[j] = 1;
			}
			continue;
		}
		if (idx < 0) {
			/* A short option: its long name, when the table has one. */
			for (i = 0; i < nk && keys[i].val != ch; i++)
				;
			if (i == nk)
				continue;
			idx = (int)i;
		}
		s->key[s->n] = keys[idx].name;
		s->val[s->n] = optarg;
		s->n++;
	}
out:
	opterr = saved_opterr;
	optind = 0;
	free(lo);
	free(copy);
	return rc;
}

static void
cl_scan_fini(struct cl_scan *s)
{
	free(s->key);
	free(s->val);
	free(s->drop);
}

static int
on_cmdline(const struct cl_scan *s, const char *key)
{
	int i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->key[i], key) == 0)
			return 1;
	return 0;
}

int
config_merge(struct config *c, const char *section, const struct option *keys,
    const char *shortopts, int *argc, char ***argv, struct ferr *e)
{
	struct cl_scan s = { NULL, NULL, 0, NULL };
	uint8_t *buf = NULL;
	size_t len = 0, i, nitems = 0;
	int rc, k = 0, j;

	c->section = section;
	if ((rc = scan_cmdline(c, keys, shortopts, *argc, *argv, &s, e)) != 0)
		goto out;
	if (c->path != NULL) {
		if ((rc = read_file(c->path, &buf, &len, e)) != 0)
			goto out;
		if ((rc = cfg_parse(c->path, buf, len, section, keys, &c->file, e)) != 0)
			goto out;
		nitems = c->file.n;
	}
	/* argv[0], the file's settings, the command line, "--", NULL.  The
	 * "--" puts getopt's optind past every file setting once the
	 * daemon's loop ends, so config_blame never blames the file for a
	 * check made after the loop. */
	c->argv = calloc(nitems + (size_t)*argc + 2, sizeof(*c->argv));
	c->line = calloc(nitems + (size_t)*argc + 2, sizeof(*c->line));
	if (c->argv == NULL || c->line == NULL) {
		rc = ferr_set(e, FERR_NOMEM, "out of memory");
		goto out;
	}
	c->argv[k++] = (*argv)[0];
	for (i = 0; i < nitems; i++) {
		const struct cfg_item *it = &c->file.items[i];
		size_t n = strlen(it->key) + (it->value ? strlen(it->value) : 0) + 4;

		if (on_cmdline(&s, it->key))
			continue;
		if ((c->argv[k] = malloc(n)) == NULL) {
			rc = ferr_set(e, FERR_NOMEM, "out of memory");
			goto out;
		}
		snprintf(c->argv[k], n, "--%s%s%s", it->key, it->value ? "=" : "",
		    it->value ? it->value : "");
		c->line[k++] = it->line;
	}
	c->nfile = k - 1;
	for (j = 1; j < *argc; j++)
		if (!s.drop[j])
			c->argv[k++] = (*argv)[j];
	c->argv[k++] = (char *)"--";
	c->argv[k] = NULL;
	c->argc = k;
	*argc = c->argc;
	*argv = c->argv;
	c->cl_key = s.key;
	c->cl_val = s.val;
	c->ncl = s.n;
	s.key = NULL;
	s.val = NULL;
	rc = 0;
out:
	free(buf);
	cl_scan_fini(&s);
	optind = 0;
	return rc;
}

void
config_blame(const struct config *c, int ind, struct ferr *e)
{
	const char *a;
	size_t klen;
	int k = ind - 1;

	if (c == NULL || c->argv == NULL || k < 1 || k > c->nfile)
		return;
	a = c->argv[k] + 2;
	klen = strcspn(a, "=");
	(void)ferr_wrap(e, "%s:%u: key '%.*s'", c->path, c->line[k], (int)klen, a);
}

void
config_print(const struct config *c, const char *prog, FILE *f)
{
	size_t i;
	int j, k;

	fprintf(f, "# %s --check-config: the settings are valid\n", prog);
	fprintf(f, "# keys not listed keep their defaults (%s --help)\n[%s]\n", prog, c->section);
	if (c->path != NULL) {
		fprintf(f, "# from %s\n", c->path);
		for (i = 0, k = 1; i < c->file.n; i++) {
			const struct cfg_item *it = &c->file.items[i];

			if (k <= c->nfile && c->line[k] == it->line) {
				fprintf(f, "%s = %s\n", it->key, it->value ? it->value : "true");
				k++;
			} else {
				fprintf(f, "# %s = %s   (line %u, replaced by the command line)\n", it->key,
				    it->value ? it->value : "true", it->line);
			}
		}
	}
	for (j = 0; j < c->ncl; j++) {
		if (j == 0)
			fprintf(f, "# from the command line\n");
		fprintf(f, "%s = %s\n", c->cl_key[j], c->cl_val[j] ? c->cl_val[j] : "true");
	}
}

void
config_fini(struct config *c)
{
	int k;

	if (c == NULL)
		return;
	if (c->argv != NULL)
		for (k = 1; k <= c->nfile; k++)
			free(c->argv[k]);
	free(c->argv);
	free(c->line);
	free(c->cl_key);
	free(c->cl_val);
	cfg_file_fini(&c->file);
	memset(c, 0, sizeof(*c));
}
