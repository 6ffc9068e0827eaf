/* Pausing, resuming and retiring the source guest: by signals to a
 * process (SIGSTOP / SIGCONT / SIGTERM), by operator commands, or through
 * libvirt (suspend / resume / destroy and, if asked, undefine). */
#ifndef FERRY_GUESTCTL_H
#define FERRY_GUESTCTL_H

#include <sys/types.h>

#include "err.h"

struct virt;

struct guestctl {
	pid_t pid;                  /* 0 = none */
	struct virt *virt;          /* libvirt domain control, or NULL */
	const char *domain;
	int undefine;               /* cleanup: also undefine the domain */
	const char *pause_cmd;      /* sh -c; used instead of SIGSTOP */
	const char *resume_cmd;
	const char *cleanup_cmd;
	int paused;
};

/* Pause and wait until the guest is really stopped (a SIGSTOP is only
 * delivered asynchronously).  No-op without a pid or command. */
int guest_pause(struct guestctl *g, struct ferr *e) FERRY_MUST_CHECK;
int guest_resume(struct guestctl *g, struct ferr *e) FERRY_MUST_CHECK;
/* After commit: stop the source guest for good. */
int guest_cleanup(struct guestctl *g, struct ferr *e) FERRY_MUST_CHECK;
/* 1 when there is something to pause (a pid, a command or a domain). */
int guest_can_pause(const struct guestctl *g);
/* 1 when a pid was given and that process exists. */
int guest_alive(const struct guestctl *g);

#endif
