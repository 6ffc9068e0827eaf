#include "sdnotify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
sd_notify_ready(const char *sock, const char *status, struct ferr *e)
{
	struct sockaddr_un sun;
	char msg[512];
	size_t n;
	socklen_t alen;
	ssize_t sent;
	int fd, err;

	if (sock == NULL || sock[0] == '\0')
		return 0;
	n = strlen(sock);
	if ((sock[0] != '/' && sock[0] != '@') || n < 2 || n >= sizeof(sun.sun_path))
		return ferr_set(e, FERR_USAGE, "NOTIFY_SOCKET '%.100s': not a socket path or @name", sock);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, sock, n);
	if (sock[0] == '@')
		sun.sun_path[0] = '\0';   /* abstract: the name is the bytes after the NUL, no terminator */
	alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (sock[0] == '/'));
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=%s\n", status ? status : "ready");
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return ferr_set(e, FERR_IO, "NOTIFY_SOCKET: socket: %s", strerror(errno));
	sent = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sun, alen);
	err = errno;
	close(fd);
	if (sent < 0)
		return ferr_set(e, FERR_IO, "NOTIFY_SOCKET %s: %s", sock, strerror(err));
	return 0;
}
