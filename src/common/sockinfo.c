#include "sockinfo.h"

#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

static int
info(int fd, struct tcp_info *ti)
{
	socklen_t l = sizeof(*ti);

	memset(ti, 0, sizeof(*ti));
	return fd >= 0 && getsockopt(fd, IPPROTO_TCP, TCP_INFO, ti, &l) == 0 ? 0 : -1;
}

uint64_t
sock_bytes_acked(int fd)
{
	struct tcp_info ti;

	return info(fd, &ti) == 0 ? ti.tcpi_bytes_acked : 0;
}

uint64_t
sock_bytes_received(int fd)
{
	struct tcp_info ti;

	return info(fd, &ti) == 0 ? ti.tcpi_bytes_received : 0;
}
