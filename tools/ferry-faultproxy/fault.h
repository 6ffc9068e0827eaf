/* Faults of ferry-faultproxy: the standing settings per direction, and the
 * parser of the one-line control commands.  Pure: no sockets, no clock;
 * proxy.c applies a parsed command to its connections.
 *
 * Directions: "up" is client -> server (the bytes the proxy reads from the
 * accepted connection), "down" is server -> client. */
#ifndef FAULTPROXY_FAULT_H
#define FAULTPROXY_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum fp_dir { FP_UP = 0, FP_DOWN = 1, FP_NDIR = 2 };

#define FP_DIR_UP   (1u << FP_UP)
#define FP_DIR_DOWN (1u << FP_DOWN)
#define FP_DIR_BOTH (FP_DIR_UP | FP_DIR_DOWN)

/* Named limits of command arguments. */
#define FP_LATENCY_MAX_MS  3600000ull          /* one hour */
#define FP_RATE_MAX        1000000000000ull    /* 1 TB/s: keeps token math in u64 */
#define FP_SLICE_MAX       (1ull << 30)
#define FP_OFFSET_MAX      (1ull << 62)        /* close-after, flip */
#define FP_LINE_MAX        256                 /* one control command */

/* Zero is "invalid", so a zeroed command never does anything. */
enum fp_op {
	FP_OP_INVALID = 0,
	FP_OP_LATENCY,      /* value: ms */
	FP_OP_RATE,         /* value: bytes per second, 0 = unlimited */
	FP_OP_STALL,
	FP_OP_UNSTALL,
	FP_OP_DROP,
	FP_OP_UNDROP,
	FP_OP_RESET,
	FP_OP_CLOSE_AFTER,  /* value: bytes, >= 1; one-shot */
	FP_OP_SLICE,        /* value: bytes per write, 0 = off */
	FP_OP_FLIP,         /* value: offset in bytes from now; one-shot */
	FP_OP_REFUSE,
	FP_OP_ACCEPT,
	FP_OP_CLEAR,
	FP_OP_STATS,
	FP_OP_SHOW,
};

struct fp_cmd {
	enum fp_op op;
	unsigned dirs;      /* FP_DIR_* mask; FP_DIR_BOTH when not given */
	uint64_t value;
	int next;           /* one-shots: "next" given, wait for the next connection */
};

/* Standing faults: apply to current and future connections. */
struct fp_faults {
	uint64_t latency_ms[FP_NDIR];
	uint64_t rate[FP_NDIR];     /* bytes per second, 0 = unlimited */
	int stall[FP_NDIR];
	int drop[FP_NDIR];
	uint64_t slice;             /* at most this many bytes per write, 0 = off */
	int refuse;
};

/* Parse one command line (no newline; words separated by blanks):
 *   NAME [VALUE] [up|down|both] [next]
 * Fills cmd.  Returns 0, or FERR_USAGE with a message naming the word. */
int fp_cmd_parse(const char *line, struct fp_cmd *cmd, struct ferr *e) FERRY_MUST_CHECK;

/* Apply a standing-fault command (latency, rate, stall, unstall, drop,
 * undrop, slice, refuse, accept, clear) to f.  Returns 1 when cmd was one
 * of those, 0 for the others (which f does not hold). */
int fp_faults_apply(struct fp_faults *f, const struct fp_cmd *cmd);

/* The command's name ("close-after"), "?" for an invalid op. */
const char *fp_op_name(enum fp_op op);

/* "up", "down" or "both". */
const char *fp_dirs_name(unsigned dirs);

/* A canonical one-line description, e.g. "latency 200 ms up",
 * "rate 5000000 B/s both", "close-after 1000 up next". */
void fp_cmd_describe(const struct fp_cmd *cmd, char *buf, size_t len);

/* The standing faults as "latency=0/200 rate=0/0 stall=0/0 drop=0/0
 * slice=0 refuse=0" (each pair is up/down). */
void fp_faults_describe(const struct fp_faults *f, char *buf, size_t len);

#endif
