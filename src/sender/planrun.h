/* Running a plan (plan.h): `ferry-send --plan FILE [--concurrency N]
 * [--plan-log-dir DIR] [FLAG...]` runs one child ferry-send per entry,
 * with the command line's FLAGs, then the entry's own flags, then --json;
 * at most N at once.  Each child's stderr goes to DIR/NAME.log (or to this
 * stderr, each line prefixed "[NAME] "), its JSON events to DIR/NAME.json
 * (and with --json to this stdout, each with "entry": NAME added).  One
 * line per finished entry and a summary line on stderr; with --json a
 * "plan_result" event per entry and a final "plan" event.  SIGINT and
 * SIGTERM are forwarded to the running children (each aborts and resumes
 * its guest) and no further entry starts. */
#ifndef FERRY_PLANRUN_H
#define FERRY_PLANRUN_H

#include <getopt.h>

#include "err.h"
#include "events.h"
#include "plan.h"

#define PLAN_CONCURRENCY_DEFAULT 2u
#define PLAN_CONCURRENCY_MAX 64u

/* The plan flags of a command line, and the flags every entry gets. */
struct plan_cli {
	const char *plan;        /* --plan FILE, or NULL: not a plan run */
	const char *log_dir;     /* --plan-log-dir DIR, or NULL */
	unsigned concurrency;    /* --concurrency N */
	int json;                /* --json */
	int quiet;               /* -q / --quiet (also passed on) */
	const char *log_level;   /* the last --log-level value (-q: "error"), or NULL */
	int help;                /* -h / --help */
	char **common;           /* the other flags, in order (pointers into argv) */
	int ncommon;
};

/* Split argv (argv[0] excluded) with the ferry-send option table `lo`:
 * long flags must be spelled out.  c->plan is NULL when there is no --plan
 * (the caller then parses the command line as usual and ignores e).  On
 * success c->common owns an array (plan_cli_fini). */
int plan_cli_split(int argc, char **argv, const struct option *lo, struct plan_cli *c,
    struct ferr *e) FERRY_MUST_CHECK;
void plan_cli_fini(struct plan_cli *c);

/* Check one child's full argument vector (argv[0] first) without running
 * it: 0, or an error (FERR_USAGE) in e. */
typedef int (*plan_validate_fn)(int argc, char **argv, struct ferr *e);

/* Build and check every entry's argument vector, then run the plan with
 * the program `exe`.  Returns the exit status for ferry-send: 0 when every
 * entry ended ok, else the highest exit status among the failed ones (an
 * entry that never started counts as aborted, 4; one killed by a signal as
 * 1), or 2 when a line's flags are refused before anything starts (e set). */
int plan_run(const struct plan *p, const struct plan_cli *c, const char *exe,
    plan_validate_fn validate, struct events *ev, struct ferr *e);

#endif
