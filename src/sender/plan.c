/* Plan files for `ferry-send --plan` (plan.h): a bounded, pure parser. */
#include "plan.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The words of one line, copied out. */
struct words {
	char *w[PLAN_ARGS_MAX + 1];
	size_t n;
};

static void
words_free(struct words *ws)
{
	for (size_t i = 0; i < ws->n; i++)
		free(ws->w[i]);
	ws->n = 0;
}

static int
is_blank(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* One quoted part starting after the opening quote at s[*i - 1]; appends
 * to tmp[*t]. */
static int
quoted(const uint8_t *s, size_t len, size_t *i, char q, char *tmp, size_t *t)
{
	while (*i < len) {
		uint8_t c = s[(*i)++];

		if (c == (uint8_t)q)
			return 0;
		if (q == '"' && c == '\\' && *i < len && (s[*i] == '"' || s[*i] == '\\'))
			c = s[(*i)++];
		tmp[(*t)++] = (char)c;
	}
	return -1;
}

/* Split one line (no newline) into words.  Returns 0, or -1 with e set
 * (without the PATH:LINE prefix). */
static int
split_line(const uint8_t *s, size_t len, struct words *ws, char *tmp, struct ferr *e)
{
	size_t i = 0;

	ws->n = 0;
	for (;;) {
		size_t t = 0;

		while (i < len && is_blank(s[i]))
			i++;
		if (i >= len || s[i] == '#')
			return 0;
		while (i < len && !is_blank(s[i])) {
			uint8_t c = s[i++];

			if (c == '\'' || c == '"') {
				if (quoted(s, len, &i, (char)c, tmp, &t) != 0)
					return ferr_set(e, FERR_USAGE, "unterminated %c quote", c);
			} else {
				tmp[t++] = (char)c;
			}
		}
		if (ws->n >= PLAN_ARGS_MAX + 1)
			return ferr_set(e, FERR_USAGE, "more than %u flags on one line", PLAN_ARGS_MAX);
		ws->w[ws->n] = strndup(tmp, t);
		if (ws->w[ws->n] == NULL)
			return ferr_set(e, FERR_NOMEM, "out of memory");
		ws->n++;
	}
}

static int
check_name(const char *s, struct ferr *e)
{
	size_t n = strlen(s);

	if (n == 0 || n > PLAN_NAME_MAX)
		return ferr_set(e, FERR_USAGE, "entry name must be 1 to %u characters", PLAN_NAME_MAX);
	if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || s[0] == '-')
		return ferr_set(e, FERR_USAGE, "bad entry name '%s'", s);
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '.' || c == '_' || c == '-'))
			return ferr_set(e, FERR_USAGE, "entry name '%s': only letters, digits, '.', '_' "
			    "and '-'", s);
	}
	return 0;
}

/* Move the words of a line into a new entry of p. */
static int
add_entry(struct plan *p, struct words *ws, unsigned line, struct ferr *e)
{
	struct plan_entry *x;

	if (check_name(ws->w[0], e) != 0)
		return e->code;
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->e[i].name, ws->w[0]) == 0)
			return ferr_set(e, FERR_USAGE, "entry name '%s' already used on line %u",
			    ws->w[0], p->e[i].line);
	if (ws->n < 2)
		return ferr_set(e, FERR_USAGE, "entry '%s' has no flags", ws->w[0]);
	if (p->n >= PLAN_ENTRIES_MAX)
		return ferr_set(e, FERR_USAGE, "more than %u entries", PLAN_ENTRIES_MAX);
	x = &p->e[p->n];
	x->argv = calloc(ws->n, sizeof(char *));
	if (x->argv == NULL)
		return ferr_set(e, FERR_NOMEM, "out of memory");
	x->name = ws->w[0];
	for (size_t i = 1; i < ws->n; i++)
		x->argv[i - 1] = ws->w[i];
	x->nargs = ws->n - 1;
	x->line = line;
	ws->n = 0;
	p->n++;
	return 0;
}

void
plan_fini(struct plan *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->e[i].name);
		for (size_t j = 0; j < p->e[i].nargs; j++)
			free(p->e[i].argv[j]);
		free(p->e[i].argv);
	}
	free(p->e);
	p->e = NULL;
	p->n = 0;
}

/* One line of the file: words, then an entry when there are any. */
static int
parse_line(struct plan *p, const uint8_t *s, size_t len, unsigned line, char *tmp, struct ferr *e)
{
	struct words ws = { .n = 0 };
	int rc;

	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (len > PLAN_LINE_MAX)
		return ferr_set(e, FERR_USAGE, "line longer than %u bytes", PLAN_LINE_MAX);
	if (memchr(s, '\0', len) != NULL)
		return ferr_set(e, FERR_USAGE, "NUL byte");
	rc = split_line(s, len, &ws, tmp, e);
	if (rc == 0 && ws.n > 0)
		rc = add_entry(p, &ws, line, e);
	words_free(&ws);
	return rc;
}

int
plan_parse(const char *path, const uint8_t *buf, size_t len, struct plan *out, struct ferr *e)
{
	char *tmp;
	size_t pos = 0;
	unsigned line = 0;

	memset(out, 0, sizeof(*out));
	if (len > PLAN_FILE_MAX)
		return ferr_set(e, FERR_USAGE, "%s: larger than %u bytes", path, PLAN_FILE_MAX);
	out->e = calloc(PLAN_ENTRIES_MAX, sizeof(*out->e));
	tmp = malloc(PLAN_LINE_MAX + 1);
	if (out->e == NULL || tmp == NULL) {
		free(tmp);
		free(out->e);
		out->e = NULL;
		return ferr_set(e, FERR_NOMEM, "out of memory");
	}
	while (pos < len) {
		const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
		size_t n = nl != NULL ? (size_t)(nl - (buf + pos)) : len - pos;

		line++;
		if (parse_line(out, buf + pos, n, line, tmp, e) != 0) {
			free(tmp);
			plan_fini(out);
			return ferr_wrap(e, "%s:%u", path, line);
		}
		pos += n + (nl != NULL);
	}
	free(tmp);
	if (out->n == 0) {
		plan_fini(out);
		return ferr_set(e, FERR_USAGE, "%s: no entries", path);
	}
	return 0;
}

int
plan_load(const char *path, struct plan *out, struct ferr *e)
{
	uint8_t *buf;
	size_t len = 0;
	ssize_t r;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ferr_set(e, FERR_USAGE, "%s: %s", path, strerror(errno));
	buf = malloc(PLAN_FILE_MAX + 1);
	if (buf == NULL) {
		close(fd);
		return ferr_set(e, FERR_NOMEM, "out of memory");
	}
	while (len <= PLAN_FILE_MAX && (r = read(fd, buf + len, PLAN_FILE_MAX + 1 - len)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = ferr_set(e, FERR_USAGE, "%s: %s", path, strerror(errno));
			goto out;
		}
		len += (size_t)r;
	}
	rc = plan_parse(path, buf, len, out, e);
out:
	free(buf);
	close(fd);
	return rc;
}
