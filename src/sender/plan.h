/* Host evacuation plans (`ferry-send --plan FILE`).
 *
 * A plan file lists one migration per line:
 *
 *     # comment
 *     NAME  FLAG...            e.g.  vm1 --mem /g/vm1.mem --guest-pid 4242
 *
 * NAME is 1 to PLAN_NAME_MAX characters of [A-Za-z0-9._-] (not "." or
 * "..", unique in the file: it names the entry in reports and its log
 * files); the FLAGs are ordinary ferry-send flags for that guest.  Words are
 * separated by blanks.  Quoting, as in the shell but simpler: '...' keeps
 * everything up to the next ' literally; "..." does the same up to the next
 * unescaped " and knows two escapes only, \" and \\; quoted and unquoted
 * parts of one word join up ('a b'c is the word "a bc").  No other escapes,
 * no variables, no globbing.  A word starting with # (unquoted) starts a
 * comment to the end of the line; blank lines are skipped; a trailing CR is
 * ignored.  A NUL byte, an unterminated quote, a line over PLAN_LINE_MAX
 * bytes, more than PLAN_ARGS_MAX flags on a line or PLAN_ENTRIES_MAX
 * entries in the file are refused with FERR_USAGE naming PATH:LINE.
 *
 * plan_parse is a pure function over the file's bytes (untrusted input). */
#ifndef FERRY_PLAN_H
#define FERRY_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define PLAN_FILE_MAX (256u * 1024) /* bytes in a plan file */
#define PLAN_LINE_MAX 4096u         /* bytes in one line, newline excluded */
#define PLAN_ENTRIES_MAX 256u       /* migrations in one plan */
#define PLAN_ARGS_MAX 64u           /* flag words on one line */
#define PLAN_NAME_MAX 64u           /* bytes in an entry name */

struct plan_entry {
	char *name;
	char **argv;        /* nargs words, NULL-terminated */
	size_t nargs;
	unsigned line;      /* 1-based line number in the file */
};

struct plan {
	struct plan_entry *e;
	size_t n;
};

/* Parse a plan file's bytes; `path` only names the file in messages.  On
 * success *out owns its memory (plan_fini) and holds at least one entry; on
 * error it holds nothing. */
int plan_parse(const char *path, const uint8_t *buf, size_t len, struct plan *out,
    struct ferr *e) FERRY_MUST_CHECK;

/* Read PATH (at most PLAN_FILE_MAX bytes) and parse it. */
int plan_load(const char *path, struct plan *out, struct ferr *e) FERRY_MUST_CHECK;

void plan_fini(struct plan *p);

#endif
