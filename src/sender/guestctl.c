#include "guestctl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "virt.h"

static int
run_cmd(const char *what, const char *cmd, struct ferr *e)
{
	int st = system(cmd);

	if (st == -1)
		return ferr_set(e, FERR_IO, "%s command: %s", what, strerror(errno));
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return ferr_set(e, FERR_IO, "%s command '%s' failed (status %d)", what, cmd,
		    WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	return 0;
}

/* Process state letter from /proc/PID/stat, or 0. */
static char
proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return (p != NULL && p[1] == ' ') ? p[2] : 0;
}

int
guest_pause(struct guestctl *g, struct ferr *e)
{
	struct timespec ts = { 0, 200000 };
	int i;

	if (g->virt != NULL) {
		int rc = virt_suspend(g->virt, g->domain, e);

		if (rc == 0)
			g->paused = 1;
		return rc;
	}
	if (g->pause_cmd != NULL) {
		int rc = run_cmd("pause", g->pause_cmd, e);

		if (rc == 0)
			g->paused = 1;
		return rc;
	}
	if (g->pid <= 0)
		return 0;
	if (kill(g->pid, SIGSTOP) != 0)
		return ferr_set(e, FERR_IO, "pause guest pid %d: %s", (int)g->pid, strerror(errno));
	g->paused = 1;
	/* Wait up to ~2 s for the stop to take effect. */
	for (i = 0; i < 10000; i++) {
		char s = proc_state(g->pid);

		if (s == 'T' || s == 't')
			return 0;
		if (s == 0 || s == 'Z' || s == 'X')
			return ferr_set(e, FERR_IO, "pause guest pid %d: process is gone", (int)g->pid);
		nanosleep(&ts, NULL);
	}
	return ferr_set(e, FERR_TIMEOUT, "pause guest pid %d: not stopped after 2 s", (int)g->pid);
}

int
guest_resume(struct guestctl *g, struct ferr *e)
{
	if (!g->paused)
		return 0;
	if (g->virt != NULL) {
		int rc = virt_resume(g->virt, g->domain, e);

		if (rc == 0)
			g->paused = 0;
		return rc;
	}
	if (g->resume_cmd != NULL) {
		int rc = run_cmd("resume", g->resume_cmd, e);

		if (rc == 0)
			g->paused = 0;
		return rc;
	}
	if (g->pid > 0 && kill(g->pid, SIGCONT) != 0)
		return ferr_set(e, FERR_IO, "resume guest pid %d: %s", (int)g->pid, strerror(errno));
	g->paused = 0;
	return 0;
}

int
guest_cleanup(struct guestctl *g, struct ferr *e)
{
	if (g->virt != NULL) {
		/* The domain runs at the destination now: stop this copy for
		 * good (never resumed), and forget it if asked. */
		int rc = virt_destroy(g->virt, g->domain, e);

		if (rc == 0 && g->undefine)
			rc = virt_undefine(g->virt, g->domain, e);
		if (rc == 0)
			g->paused = 0;
		return rc;
	}
	if (g->cleanup_cmd != NULL)
		return run_cmd("cleanup", g->cleanup_cmd, e);
	if (g->pid <= 0)
		return 0;
	/* SIGTERM stays pending while the guest is stopped; SIGCONT lets it
	 * run its handler and exit. */
	if (kill(g->pid, SIGTERM) != 0 && errno != ESRCH)
		return ferr_set(e, FERR_IO, "stop guest pid %d: %s", (int)g->pid, strerror(errno));
	(void)kill(g->pid, SIGCONT);
	g->paused = 0;
	return 0;
}

int
guest_can_pause(const struct guestctl *g)
{
	return g->pid > 0 || g->pause_cmd != NULL || (g->virt != NULL && g->domain != NULL);
}

int
guest_alive(const struct guestctl *g)
{
	return g->pid > 0 && kill(g->pid, 0) == 0;
}
