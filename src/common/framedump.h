/* `--dump-frames DIR`: write each connection's decrypted frame stream,
 * both directions, to a file in DIR (format: dumpfmt.h, proto/PROTOCOL.md
 * appendix A) for ferry-inspect.
 *
 * The dump taps the bufferevent's input and output buffers, so it records
 * exactly the bytes that come out of and go into TLS, whoever wrote them,
 * each frame once it is complete.  A file holds guest memory: it is
 * created with mode 0600, never over an existing file.
 *
 * A dump never fails a migration: an error opening or writing the file is
 * logged once and ends that connection's dump. */
#ifndef FERRY_FRAMEDUMP_H
#define FERRY_FRAMEDUMP_H

#include <stdint.h>

#include "err.h"
#include "events.h"

struct bufferevent;
struct framedump_dir;
struct framedump;

/* Where dumps go and who writes them (enum dump_role).  Checks that path
 * is a writable directory: FERR_USAGE naming it if not.  ev (kept, not
 * owned) receives the log lines. */
int framedump_dir_new(const char *path, uint8_t role, const struct events *ev,
    struct framedump_dir **out, struct ferr *e) FERRY_MUST_CHECK;
void framedump_dir_free(struct framedump_dir *d);
/* Replace the wall clock (microseconds since 1970), for tests. */
void framedump_dir_set_clock(struct framedump_dir *d, uint64_t (*now_us)(void));

/* Start dumping the connection carried by bev (call right after creating
 * it).  The file, DIR/<role>-<YYYYmmddTHHMMSS>-<pid>-<conn>.fdump, is
 * created when the first bytes pass; once the session id is seen (WELCOME
 * or RESUME) it is recorded and added to the name:
 * ...-<conn>-<32 hex digits>.fdump.  Returns NULL when d is NULL or on
 * failure (logged). */
struct framedump *framedump_new(struct framedump_dir *d, struct bufferevent *bev);

/* Before the bufferevent is freed: record incomplete frames as partial,
 * write the END record, close the file, remove the taps.  NULL is a
 * no-op. */
void framedump_free(struct framedump *fd);

#endif
