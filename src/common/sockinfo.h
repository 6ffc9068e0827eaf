/* What the kernel knows about a TCP socket. */
#ifndef FERRY_SOCKINFO_H
#define FERRY_SOCKINFO_H

#include <stdint.h>

/* Bytes of payload the peer acknowledged (TLS records included): the
 * bytes ferry put on the wire.  0 when unknown. */
uint64_t sock_bytes_acked(int fd);
/* Bytes of payload received on the socket.  0 when unknown. */
uint64_t sock_bytes_received(int fd);

#endif
