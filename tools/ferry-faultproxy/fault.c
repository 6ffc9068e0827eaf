#include "fault.h"

#include <stdio.h>
#include <string.h>

#include "units.h"

enum arg_kind {
	ARG_NONE = 0,
	ARG_MS,       /* duration, a bare number is milliseconds */
	ARG_RATE,     /* bytes per second, units as parse_rate */
	ARG_BYTES,    /* size, units as parse_size */
};

#define TAKES_DIR  0x1u
#define TAKES_NEXT 0x2u

/* One row per command; the parser, the descriptions and the "unknown
 * command" hint all read it. */
struct op_def {
	const char *name;
	enum fp_op op;
	enum arg_kind arg;
	const char *arg_name;
	uint64_t min, max;
	unsigned flags;
};

static const struct op_def ops[] = {
	{ "latency", FP_OP_LATENCY, ARG_MS, "MS", 0, FP_LATENCY_MAX_MS, TAKES_DIR },
	{ "rate", FP_OP_RATE, ARG_RATE, "BYTES_PER_SEC", 0, FP_RATE_MAX, TAKES_DIR },
	{ "stall", FP_OP_STALL, ARG_NONE, NULL, 0, 0, TAKES_DIR },
	{ "unstall", FP_OP_UNSTALL, ARG_NONE, NULL, 0, 0, TAKES_DIR },
	{ "drop", FP_OP_DROP, ARG_NONE, NULL, 0, 0, TAKES_DIR },
	{ "undrop", FP_OP_UNDROP, ARG_NONE, NULL, 0, 0, TAKES_DIR },
	{ "reset", FP_OP_RESET, ARG_NONE, NULL, 0, 0, 0 },
	{ "close-after", FP_OP_CLOSE_AFTER, ARG_BYTES, "N", 1, FP_OFFSET_MAX, TAKES_DIR | TAKES_NEXT },
	{ "slice", FP_OP_SLICE, ARG_BYTES, "N", 0, FP_SLICE_MAX, 0 },
	{ "flip", FP_OP_FLIP, ARG_BYTES, "OFFSET", 0, FP_OFFSET_MAX, TAKES_DIR | TAKES_NEXT },
	{ "refuse", FP_OP_REFUSE, ARG_NONE, NULL, 0, 0, 0 },
	{ "accept", FP_OP_ACCEPT, ARG_NONE, NULL, 0, 0, 0 },
	{ "clear", FP_OP_CLEAR, ARG_NONE, NULL, 0, 0, 0 },
	{ "stats", FP_OP_STATS, ARG_NONE, NULL, 0, 0, 0 },
	{ "show", FP_OP_SHOW, ARG_NONE, NULL, 0, 0, 0 },
};

#define NOPS (sizeof(ops) / sizeof(ops[0]))
#define MAX_WORDS 5

static const struct op_def *
op_by_name(const char *name)
{
	for (size_t i = 0; i < NOPS; i++)
		if (strcmp(ops[i].name, name) == 0)
			return &ops[i];
	return NULL;
}

static const struct op_def *
op_by_id(enum fp_op op)
{
	for (size_t i = 0; i < NOPS; i++)
		if (ops[i].op == op)
			return &ops[i];
	return NULL;
}

const char *
fp_op_name(enum fp_op op)
{
	const struct op_def *d = op_by_id(op);

	return d != NULL ? d->name : "?";
}

const char *
fp_dirs_name(unsigned dirs)
{
	switch (dirs & FP_DIR_BOTH) {
	case FP_DIR_UP: return "up";
	case FP_DIR_DOWN: return "down";
	default: return "both";
	}
}

static void
all_names(char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NOPS && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%s", i ? " " : "", ops[i].name);

		if (n < 0)
			break;
		off += (size_t)n;
	}
}

static int
parse_arg(const struct op_def *d, const char *w, uint64_t *v, struct ferr *e)
{
	int r;

	switch (d->arg) {
	case ARG_MS: r = parse_duration_ms(w, 1, v, e); break;
	case ARG_RATE: r = parse_rate(w, v, e); break;
	case ARG_BYTES: r = parse_size(w, v, e); break;
	default: return ferr_set(e, FERR_INTERNAL, "%s: no argument kind", d->name);
	}
	if (r != 0) {
		(void)ferr_wrap(e, "%s", d->name);
		return r;
	}
	if (*v < d->min || *v > d->max)
		return ferr_set(e, FERR_USAGE, "%s: %s '%s' out of range %llu-%llu", d->name,
		    d->arg_name, w, (unsigned long long)d->min, (unsigned long long)d->max);
	return 0;
}

int
fp_cmd_parse(const char *line, struct fp_cmd *cmd, struct ferr *e)
{
	char buf[FP_LINE_MAX + 1], *w[MAX_WORDS + 1], *save = NULL, *t;
	const struct op_def *d;
	size_t nw = 0, i = 1;
	int have_dir = 0;

	memset(cmd, 0, sizeof(*cmd));
	if (strlen(line) > FP_LINE_MAX)
		return ferr_set(e, FERR_USAGE, "command longer than %d bytes", FP_LINE_MAX);
	memcpy(buf, line, strlen(line) + 1);
	for (t = strtok_r(buf, " \t\r", &save); t != NULL; t = strtok_r(NULL, " \t\r", &save)) {
		if (nw == MAX_WORDS)
			return ferr_set(e, FERR_USAGE, "too many words (at most %d)", MAX_WORDS);
		w[nw++] = t;
	}
	if (nw == 0)
		return ferr_set(e, FERR_USAGE, "empty command");
	d = op_by_name(w[0]);
	if (d == NULL) {
		char names[200];

		all_names(names, sizeof(names));
		return ferr_set(e, FERR_USAGE, "unknown command '%.40s' (commands: %s)", w[0], names);
	}
	cmd->op = d->op;
	cmd->dirs = FP_DIR_BOTH;
	if (d->arg != ARG_NONE) {
		if (nw < 2)
			return ferr_set(e, FERR_USAGE, "%s: missing %s", d->name, d->arg_name);
		int r = parse_arg(d, w[1], &cmd->value, e);

		if (r != 0)
			return r;
		i = 2;
	}
	for (; i < nw; i++) {
		unsigned dirs = 0;

		if (strcmp(w[i], "up") == 0)
			dirs = FP_DIR_UP;
		else if (strcmp(w[i], "down") == 0)
			dirs = FP_DIR_DOWN;
		else if (strcmp(w[i], "both") == 0)
			dirs = FP_DIR_BOTH;
		if (dirs != 0 && (d->flags & TAKES_DIR) && !have_dir) {
			cmd->dirs = dirs;
			have_dir = 1;
		} else if (strcmp(w[i], "next") == 0 && (d->flags & TAKES_NEXT) && !cmd->next) {
			cmd->next = 1;
		} else {
			return ferr_set(e, FERR_USAGE, "%s: unexpected '%.40s'%s", d->name, w[i],
			    (d->flags & TAKES_NEXT) ? " (expected up, down, both or next)" :
			    (d->flags & TAKES_DIR) ? " (expected up, down or both)" : "");
		}
	}
	return 0;
}

static void
set_dirs(uint64_t *a, unsigned dirs, uint64_t v)
{
	for (int d = 0; d < FP_NDIR; d++)
		if (dirs & (1u << d))
			a[d] = v;
}

static void
set_flags(int *a, unsigned dirs, int v)
{
	for (int d = 0; d < FP_NDIR; d++)
		if (dirs & (1u << d))
			a[d] = v;
}

int
fp_faults_apply(struct fp_faults *f, const struct fp_cmd *cmd)
{
	switch (cmd->op) {
	case FP_OP_LATENCY: set_dirs(f->latency_ms, cmd->dirs, cmd->value); return 1;
	case FP_OP_RATE: set_dirs(f->rate, cmd->dirs, cmd->value); return 1;
	case FP_OP_STALL: set_flags(f->stall, cmd->dirs, 1); return 1;
	case FP_OP_UNSTALL: set_flags(f->stall, cmd->dirs, 0); return 1;
	case FP_OP_DROP: set_flags(f->drop, cmd->dirs, 1); return 1;
	case FP_OP_UNDROP: set_flags(f->drop, cmd->dirs, 0); return 1;
	case FP_OP_SLICE: f->slice = cmd->value; return 1;
	case FP_OP_REFUSE: f->refuse = 1; return 1;
	case FP_OP_ACCEPT: f->refuse = 0; return 1;
	case FP_OP_CLEAR: memset(f, 0, sizeof(*f)); return 1;
	default: return 0;
	}
}

void
fp_cmd_describe(const struct fp_cmd *cmd, char *buf, size_t len)
{
	const struct op_def *d = op_by_id(cmd->op);
	const char *unit = "";
	char val[48] = "";

	if (d == NULL) {
		snprintf(buf, len, "invalid");
		return;
	}
	if (d->arg == ARG_MS)
		unit = " ms";
	else if (d->arg == ARG_RATE)
		unit = " B/s";
	if (d->arg != ARG_NONE)
		snprintf(val, sizeof(val), " %llu%s", (unsigned long long)cmd->value, unit);
	snprintf(buf, len, "%s%s%s%s%s", d->name, val, (d->flags & TAKES_DIR) ? " " : "",
	    (d->flags & TAKES_DIR) ? fp_dirs_name(cmd->dirs) : "", cmd->next ? " next" : "");
}

void
fp_faults_describe(const struct fp_faults *f, char *buf, size_t len)
{
	snprintf(buf, len, "latency=%llu/%llu rate=%llu/%llu stall=%d/%d drop=%d/%d slice=%llu refuse=%d",
	    (unsigned long long)f->latency_ms[FP_UP], (unsigned long long)f->latency_ms[FP_DOWN],
	    (unsigned long long)f->rate[FP_UP], (unsigned long long)f->rate[FP_DOWN],
	    f->stall[FP_UP], f->stall[FP_DOWN], f->drop[FP_UP], f->drop[FP_DOWN],
	    (unsigned long long)f->slice, f->refuse);
}
