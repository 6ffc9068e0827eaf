#!/usr/bin/env python3
"""A loopback TCP relay that records every byte it forwards.

usage: relay.py TARGET_PORT CAPTURE_FILE
Listens on 127.0.0.1 (a free port, printed on stdout as "port N"), forwards
each connection to 127.0.0.1:TARGET_PORT and appends the bytes of both
directions to CAPTURE_FILE.  Runs until killed.
"""
import selectors
import socket
import sys


def main():
    target = int(sys.argv[1])
    cap = open(sys.argv[2], "ab", buffering=0)
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    print("port", lst.getsockname()[1], flush=True)
    sel = selectors.DefaultSelector()
    sel.register(lst, selectors.EVENT_READ, None)
    peers = {}
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if s is lst:
                c, _ = lst.accept()
                u = socket.create_connection(("127.0.0.1", target))
                peers[c], peers[u] = u, c
                sel.register(c, selectors.EVENT_READ, None)
                sel.register(u, selectors.EVENT_READ, None)
                continue
            other = peers.get(s)
            try:
                data = s.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                for x in (s, other):
                    if x in peers:
                        sel.unregister(x)
                        x.close()
                        del peers[x]
                continue
            cap.write(data)
            other.sendall(data)


if __name__ == "__main__":
    main()
