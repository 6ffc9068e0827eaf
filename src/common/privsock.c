#include "privsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
privsock_make(struct privsock *p, const char *name, struct ferr *e)
{
	snprintf(p->dir, sizeof(p->dir), "/tmp/ferry-qemu-XXXXXX");
	p->path[0] = '\0';
	if (mkdtemp(p->dir) == NULL) {
		p->dir[0] = '\0';
		return ferr_set(e, FERR_IO, "private socket directory in /tmp: %s", strerror(errno));
	}
	snprintf(p->path, sizeof(p->path), "%s/%s", p->dir, name);
	return 0;
}

void
privsock_remove(struct privsock *p)
{
	if (p->path[0] != '\0') {
		(void)unlink(p->path);
		p->path[0] = '\0';
	}
	if (p->dir[0] != '\0') {
		(void)rmdir(p->dir);
		p->dir[0] = '\0';
	}
}
