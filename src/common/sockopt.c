#include "sockopt.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>

void
sock_tune(int fd, uint64_t keepalive_ms, uint64_t dead_ms)
{
	int one = 1, idle, cnt = 3;
	unsigned int uto;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	idle = (int)(keepalive_ms / 1000);
	if (idle < 1)
		idle = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof(idle));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	uto = dead_ms > 0xffffffffu ? 0xffffffffu : (unsigned int)dead_ms;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &uto, sizeof(uto));
}

int
sock_bind_device(int fd, const char *ifname, struct ferr *e)
{
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) != 0)
		return ferr_set(e, FERR_USAGE, "--interface %s: %s", ifname, strerror(errno));
	return 0;
}
