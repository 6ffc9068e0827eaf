/* Structured output: human log lines on stderr, and with --json one JSON
 * object per line on stdout (json-c), each with "event" and "ts_ms". */
#ifndef FERRY_EVENTS_H
#define FERRY_EVENTS_H

#include <stdio.h>

#include "err.h"

struct json_object;

struct events {
	const char *prog;       /* "ferry-send" */
	int json;               /* emit JSON lines on out */
	FILE *out;              /* stdout */
	int quiet;              /* suppress info logs */
};

/* Log a human line to stderr: "ferry-send: message". */
void ev_log(const struct events *ev, const char *fmt, ...) FERRY_PRINTF(2, 3);

/* The same, even with quiet set: for the final error of a run. */
void ev_error(const struct events *ev, const char *fmt, ...) FERRY_PRINTF(2, 3);

/* Emit {"event": name, "ts_ms": ..., ...fields} when json is on.  Takes
 * ownership of fields (may be NULL). */
void ev_json(const struct events *ev, const char *name, struct json_object *fields);

#endif
