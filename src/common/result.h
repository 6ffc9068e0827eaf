/* Migration results, their names in JSON "done" events and the exit
 * statuses of ferry-send and ferry-recv (README "Exit statuses"). */
#ifndef FERRY_RESULT_H
#define FERRY_RESULT_H

enum result {
	RES_OK = 0,        /* exit 0 */
	RES_ERROR = 1,     /* exit 1: local error (I/O, internal) */
	RES_USAGE = 2,     /* exit 2: bad flags or config */
	RES_REFUSED = 3,   /* exit 3: receiver refused at pre-flight */
	RES_ABORTED = 4,   /* exit 4 */
	RES_TIMEOUT = 5,   /* exit 5 */
	RES_NETWORK = 6,   /* exit 6: connection, TLS or peer protocol failure */
	RES_VERIFY = 7,    /* exit 7: digest mismatch at commit */
	RES_INDOUBT = 8,   /* exit 8: COMMIT sent, outcome unknown; guest left paused */
};

/* Map an error code (enum ferr_code) to a result. */
enum result result_from_err(int code);
/* "ok", "refused", ... as in the JSON done event. */
const char *result_name(enum result r);
/* The process exit status for a result (equal to its value). */
static inline int result_exit(enum result r) { return (int)r; }

#endif
