/* ferry-send's control socket: status, abort, bandwidth RATE. */
#include <event2/event.h>
#include <json-c/json.h>
#include <string.h>

#include "ctl.h"
#include "mig.h"
#include "units.h"

static void
abort_soon(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	phase_abort(arg, "aborted through the control socket");
}

struct json_object *
sctl_handle(void *ctx, int argc, char **argv)
{
	struct mig *m = ctx;
	struct ferr e = { 0 };
	uint64_t bps;

	ev_debug(m->ev, "control socket: %s%s%s", argv[0], argc > 1 ? " " : "", argc > 1 ? argv[1] : "");
	if (strcmp(argv[0], "status") == 0)
		return phase_status(m);
	if (strcmp(argv[0], "abort") == 0) {
		struct timeval soon = { 0, 20000 };

		if (m->commit_sent)
			return ctl_error("COMMIT is already sent: the migration can no longer be aborted");
		/* Abort just after this answer has left, so the operator sees it. */
		if (event_base_once(m->base, -1, EV_TIMEOUT, abort_soon, m, &soon) != 0)
			phase_abort(m, "aborted through the control socket");
		return json_object_new_object();
	}
	if (strcmp(argv[0], "bandwidth") == 0) {
		struct json_object *o;

		if (argc != 2)
			return ctl_error("usage: bandwidth RATE (e.g. 800Mbit, 100MiB/s, 0 for no cap)");
		if (parse_rate(argv[1], &bps, &e) != 0)
			return ctl_error("%s", e.msg);
		if (link_set_bandwidth(m, bps, &e) != 0)
			return ctl_error("%s", e.msg);
		ev_log(m->ev, "bandwidth cap set to %llu bytes/s", (unsigned long long)bps);
		o = json_object_new_object();
		json_object_object_add(o, "bandwidth", json_object_new_int64((int64_t)bps));
		return o;
	}
	return ctl_error("unknown command '%s' (status, abort, bandwidth RATE)", argv[0]);
}
