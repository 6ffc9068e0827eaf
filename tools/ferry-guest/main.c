/* ferry-guest: the simulated guest ferry migrates.  Command-line parsing
 * and exit statuses only; the subcommands live in their own files. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "guest.h"
#include "units.h"

#define EXIT_OK      0
#define EXIT_FAILED  1   /* check found bad units */
#define EXIT_USAGE   2   /* bad command line, or an I/O error */

enum opt_id {
	OPT_MEM = 1, OPT_MEM_SIZE, OPT_DISK, OPT_DISK_SIZE, OPT_SEED, OPT_FORCE,
	OPT_DIRTY_RATE, OPT_DISK_RATE, OPT_PIDFILE, OPT_DURATION, OPT_TEXT, OPT_PAGE,
	OPT_DIRTY_LOG, OPT_HELP,
};

#define BIT(o) (1u << (o))

static const struct option long_opts[] = {
	{ "mem", required_argument, NULL, OPT_MEM },
	{ "mem-size", required_argument, NULL, OPT_MEM_SIZE },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "disk-size", required_argument, NULL, OPT_DISK_SIZE },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "force", no_argument, NULL, OPT_FORCE },
	{ "dirty-rate", required_argument, NULL, OPT_DIRTY_RATE },
	{ "disk-rate", required_argument, NULL, OPT_DISK_RATE },
	{ "pidfile", required_argument, NULL, OPT_PIDFILE },
	{ "dirty-log", required_argument, NULL, OPT_DIRTY_LOG },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "text", required_argument, NULL, OPT_TEXT },
	{ "page", required_argument, NULL, OPT_PAGE },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 },
};

/* Every option's value, parsed; seen has a BIT per option given. */
struct args {
	unsigned seen;
	const char *mem, *disk, *pidfile, *text, *dirty_log;
	uint64_t mem_size, disk_size, seed, dirty_rate, disk_rate, duration_ms, page;
	int force;
};

/* Command handlers: run one command and return its exit status. */
static int
status_of(int r)
{
	return r == 0 ? EXIT_OK : EXIT_USAGE;
}

static int
cmd_create(const struct args *a, struct ferr *e)
{
	struct create_opts o = {
		.mem = a->mem, .disk = a->disk, .mem_size = a->mem_size, .disk_size = a->disk_size,
		.seed = (a->seen & BIT(OPT_SEED)) ? a->seed : 1, .force = a->force,
	};

	if ((a->disk != NULL) != ((a->seen & BIT(OPT_DISK_SIZE)) != 0))
		return status_of(ferr_set(e, FERR_USAGE, "--disk and --disk-size go together"));
	return status_of(guest_create(&o, e));
}

static int
cmd_run(const struct args *a, struct ferr *e)
{
	struct run_opts o = {
		.mem = a->mem, .disk = a->disk, .pidfile = a->pidfile, .dirty_rate = a->dirty_rate,
		.disk_rate = a->disk_rate, .duration_ms = a->duration_ms, .seed = a->seed,
		.dirty_log = a->dirty_log,
	};

	return status_of(guest_run(&o, e));
}

static int
cmd_check(const struct args *a, struct ferr *e)
{
	struct check_opts o = { .mem = a->mem, .disk = a->disk };
	uint64_t bad = 0;
	int r = guest_check(&o, &bad, e);

	if (r == 0 && bad > 0)
		return EXIT_FAILED;
	return status_of(r);
}

static int
cmd_mark(const struct args *a, struct ferr *e)
{
	struct mark_opts o = { .mem = a->mem, .text = a->text, .page = a->page };

	return status_of(guest_mark(&o, e));
}

static int
cmd_stats(const struct args *a, struct ferr *e)
{
	struct stats_opts o = { .mem = a->mem, .disk = a->disk };

	return status_of(guest_stats(&o, e));
}

struct command {
	const char *name;
	int (*run)(const struct args *a, struct ferr *e);
	unsigned allowed;         /* BITs of accepted options */
	unsigned required;        /* BITs that must be given */
	const char *usage;
};

static const struct command commands[] = {
	{ "create", cmd_create,
	  BIT(OPT_MEM) | BIT(OPT_MEM_SIZE) | BIT(OPT_DISK) | BIT(OPT_DISK_SIZE) | BIT(OPT_SEED) |
	  BIT(OPT_FORCE),
	  BIT(OPT_MEM) | BIT(OPT_MEM_SIZE),
	  "create --mem FILE --mem-size SIZE [--disk FILE --disk-size SIZE] [--seed N] [--force]\n"
	  "    Write a new memory image (4 KiB pages, at least 64; page 0 is the header) and\n"
	  "    disk image (64 KiB blocks, sparse), both generated from the seed (default 1).\n"
	  "    Refuses to overwrite existing files without --force.\n" },
	{ "run", cmd_run,
	  BIT(OPT_MEM) | BIT(OPT_DISK) | BIT(OPT_DIRTY_RATE) | BIT(OPT_DISK_RATE) | BIT(OPT_PIDFILE) |
	  BIT(OPT_DURATION) | BIT(OPT_SEED) | BIT(OPT_DIRTY_LOG),
	  BIT(OPT_MEM) | BIT(OPT_DIRTY_RATE),
	  "run --mem FILE --dirty-rate RATE [--disk FILE] [--disk-rate RATE] [--pidfile FILE]\n"
	  "    [--duration TIME] [--seed N] [--dirty-log FILE]\n"
	  "    Map the memory image and rewrite random pages at RATE (e.g. 8MiB/s, 100Mbit),\n"
	  "    and random disk blocks at --disk-rate (default 0), until SIGTERM/SIGINT or\n"
	  "    --duration.  --pidfile is written once the image is mapped and removed at exit.\n"
	  "    --seed fixes which pages are chosen (default: from the clock).  --dirty-log\n"
	  "    creates FILE (proto/DIRTYLOG.md) and marks every page and block written in it,\n"
	  "    for ferry-send --dirty-log.\n" },
	{ "check", cmd_check,
	  BIT(OPT_MEM) | BIT(OPT_DISK),
	  0,
	  "check [--mem FILE] [--disk FILE]\n"
	  "    Verify every page and block: a valid dirtied unit for its index, or its initial\n"
	  "    content.  Only the in-flight page may be torn.  Exit 1 and list bad units\n"
	  "    (20 at most) when any fail.\n" },
	{ "mark", cmd_mark,
	  BIT(OPT_MEM) | BIT(OPT_TEXT) | BIT(OPT_PAGE),
	  BIT(OPT_MEM) | BIT(OPT_TEXT) | BIT(OPT_PAGE),
	  "mark --mem FILE --page N --text STRING\n"
	  "    Write STRING into page N as a valid dirtied page (text at byte 40 of the page).\n" },
	{ "stats", cmd_stats,
	  BIT(OPT_MEM) | BIT(OPT_DISK),
	  0,
	  "stats [--mem FILE] [--disk FILE]\n"
	  "    Print \"name value [percent]\" lines: zero, non-zero, duplicate, compressible\n"
	  "    and dirtied pages; zero, non-zero and dirtied blocks; bytes allocated.\n" },
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage_all(FILE *f)
{
	fprintf(f, "usage: ferry-guest COMMAND [OPTIONS]   (ferry-guest COMMAND --help for one)\n\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s", commands[i].usage);
	fprintf(f, "\nSIZE: 4096, 64K, 256M, 2G.  RATE: 800Mbit, 100MiB/s, 20MB/s, 100M (MiB/s).\n"
	    "Exit status: 0 ok, 1 check failed, 2 usage or I/O error.\n");
}

static const char *
opt_name(int id)
{
	for (const struct option *o = long_opts; o->name != NULL; o++)
		if (o->val == id)
			return o->name;
	return "?";
}

static int
parse_value(int id, const char *v, struct args *a, struct ferr *e)
{
	switch (id) {
	case OPT_MEM: a->mem = v; return 0;
	case OPT_DISK: a->disk = v; return 0;
	case OPT_PIDFILE: a->pidfile = v; return 0;
	case OPT_DIRTY_LOG: a->dirty_log = v; return 0;
	case OPT_TEXT: a->text = v; return 0;
	case OPT_FORCE: a->force = 1; return 0;
	case OPT_MEM_SIZE: return parse_size(v, &a->mem_size, e);
	case OPT_DISK_SIZE: return parse_size(v, &a->disk_size, e);
	case OPT_DIRTY_RATE: return parse_rate(v, &a->dirty_rate, e);
	case OPT_DISK_RATE: return parse_rate(v, &a->disk_rate, e);
	case OPT_DURATION: return parse_duration_ms(v, 1000, &a->duration_ms, e);
	case OPT_SEED: return parse_uint(v, 0, UINT64_MAX, &a->seed, e);
	case OPT_PAGE: return parse_uint(v, 0, UINT64_MAX, &a->page, e);
	default: return ferr_set(e, FERR_INTERNAL, "option %d not handled", id);
	}
}

/* Parse argv (argv[0] is the command name) into a.  Returns 0, 1 when
 * --help was asked, or FERR_USAGE. */
static int
parse_args(const struct command *c, int argc, char **argv, struct args *a, struct ferr *e)
{
	int id;

	opterr = 0;
	optind = 1;
	/* leading ':' tells a missing value (':') from an unknown option ('?') */
	while ((id = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
		if (id == OPT_HELP || id == 'h')
			return 1;
		if (id == ':')
			return ferr_set(e, FERR_USAGE, "option --%s needs a value", opt_name(optopt));
		if (id == '?')
			return ferr_set(e, FERR_USAGE, "unknown option %s", argv[optind - 1]);
		if (!(c->allowed & BIT(id)))
			return ferr_set(e, FERR_USAGE, "--%s is not an option of %s", opt_name(id), c->name);
		if (a->seen & BIT(id))
			return ferr_set(e, FERR_USAGE, "--%s given twice", opt_name(id));
		a->seen |= BIT(id);
		if (parse_value(id, optarg, a, e) != 0)
			return ferr_wrap(e, "--%s", opt_name(id));
	}
	if (optind < argc)
		return ferr_set(e, FERR_USAGE, "unexpected argument '%s'", argv[optind]);
	for (id = OPT_MEM; id < OPT_HELP; id++)
		if ((c->required & BIT(id)) && !(a->seen & BIT(id)))
			return ferr_set(e, FERR_USAGE, "--%s is required", opt_name(id));
	return 0;
}

int
main(int argc, char **argv)
{
	const struct command *c = NULL;
	struct ferr e = { 0 };
	struct args a;
	int r;

	if (argc < 2) {
		usage_all(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage_all(stdout);
		return EXIT_OK;
	}
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			c = &commands[i];
	if (c == NULL) {
		fprintf(stderr, "ferry-guest: unknown command '%s'\n", argv[1]);
		usage_all(stderr);
		return EXIT_USAGE;
	}
	memset(&a, 0, sizeof(a));
	r = parse_args(c, argc - 1, argv + 1, &a, &e);
	if (r == 1) {
		printf("usage: ferry-guest %s", c->usage);
		return EXIT_OK;
	}
	if (r != 0) {
		fprintf(stderr, "ferry-guest %s: %s\nusage: ferry-guest %s", c->name, e.msg, c->usage);
		return EXIT_USAGE;
	}
	r = c->run(&a, &e);
	if (r == EXIT_USAGE)
		fprintf(stderr, "ferry-guest %s: %s\n", c->name, e.msg);
	return r;
}
