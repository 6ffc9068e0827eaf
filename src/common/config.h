/* Config files for ferry-send and ferry-recv (`--config FILE`).
 *
 * A config file is a list of command-line flags written one per line:
 *
 *     # comment            ; comment
 *     [recv]               (optional section: [send] or [recv])
 *     listen = 10.10.0.2:7300
 *     dest-dir = /var/lib/ferry/images
 *     json = true          (a flag without a value: true/yes/on/1, or
 *                           false/no/off/0 to leave it unset)
 *
 * Each `key = value` becomes the flag `--key=value` and goes through the
 * daemon's own option parser, before the real command line, so there is
 * one source of truth for keys and values and a flag given on the command
 * line replaces every line of the file with the same key.  Keys are the
 * long flag names; a value is the rest of the line with the blanks around
 * it removed (no quoting, no inline comments: `#` inside a value is kept).
 * Lines before any section, and lines in the daemon's own section, apply;
 * the other daemon's section is checked for syntax only.
 *
 * cfg_parse is a pure function over the file's bytes (untrusted input,
 * bounded by the limits below).  config_merge is the daemons' hook: it finds
 * --config and --check-config on the command line, reads the file and
 * builds the argument vector to parse.  Errors name FILE:LINE and the key. */
#ifndef FERRY_CONFIG_H
#define FERRY_CONFIG_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "err.h"

#define CFG_FILE_MAX (64u * 1024)   /* bytes in a config file */
#define CFG_LINE_MAX 4096u          /* bytes in one line, newline excluded */
#define CFG_KEY_MAX 64u             /* bytes in a key */
#define CFG_ITEMS_MAX 512u          /* settings in one file */

/* One setting of a file that applies to this daemon. */
struct cfg_item {
	const char *key;      /* a long option name of the table */
	const char *value;    /* NUL-terminated; NULL for a flag without value */
	unsigned line;        /* 1-based line number in the file */
};

/* The settings of one file, in file order.  Strings point into `text`. */
struct cfg_file {
	struct cfg_item *items;
	size_t n;
	char *text;
};

/* Parse a config file's bytes.  `path` only names the file in messages;
 * `section` is the daemon's section name ("send" or "recv"); `keys` is the
 * daemon's getopt_long table (ending with a NULL name): a key must be one
 * of its names, spelled out, and `has_arg` decides whether it needs a
 * value or is a flag.  The keys help, config and check-config are refused.
 * On success *out owns its memory (cfg_file_fini); on error it holds
 * nothing and e says "PATH:LINE: ..." (FERR_USAGE, or FERR_NOMEM). */
int cfg_parse(const char *path, const uint8_t *buf, size_t len, const char *section,
    const struct option *keys, struct cfg_file *out, struct ferr *e) FERRY_MUST_CHECK;

void cfg_file_fini(struct cfg_file *f);

/* What a daemon's command line and config file add up to. */
struct config {
	const char *section;  /* "send" or "recv" */
	const char *path;     /* the --config FILE, or NULL */
	int check;            /* --check-config was given */
	int argc;             /* the vector to parse: argv[0], the file's */
	char **argv;          /*   settings, then the command line's */
	unsigned *line;       /* per argv element: file line, 0 = command line */
	int nfile;            /* argv[1..nfile] come from the file */
	struct cfg_file file;
	const char **cl_key;  /* the command line's settings, in order: */
	const char **cl_val;  /*   names from the table, values (NULL: flag) */
	int ncl;
};

/* The hook at the top of a daemon's parse_args: zero *c first.  Scans
 * argc and argv (with the daemon's table `keys` and short options `shortopts`)
 * for --config FILE and --check-config, reads FILE (at most CFG_FILE_MAX
 * bytes), drops its lines whose key is also on the command line, and
 * replaces argc and argv with the vector described in struct config, without
 * the two config flags.  The strings stay valid until config_fini.  Resets
 * getopt (optind = 0) for the daemon's own pass.  Without --config the
 * vector is the command line minus --check-config. */
int config_merge(struct config *c, const char *section, const struct option *keys,
    const char *shortopts, int *argc, char ***argv, struct ferr *e) FERRY_MUST_CHECK;

/* After the daemon's parser failed with getopt's `optind` at `ind`: when
 * the option it stopped at came from the file, prefix e's message with
 * "PATH:LINE: key 'KEY': ". */
void config_blame(const struct config *c, int ind, struct ferr *e);

/* --check-config output: the settings in effect as a config file (the
 * file's lines that stayed, then the command line's), each with where it
 * came from; unset keys keep the daemon's defaults. */
void config_print(const struct config *c, const char *prog, FILE *f);

void config_fini(struct config *c);

#endif
