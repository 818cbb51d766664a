#!/usr/bin/env python3
"""A backend for haports tests and the demo: answers on every given TCP and UDP port.

TCP: reads one line and answers `NAME PORT LINE` then closes; a connection whose first line
is `session` instead gets every further line echoed the same way until it closes. UDP: answers each datagram
with `NAME PORT DATAGRAM`. NAME tells the client which backend served it."""
import selectors
import socket
import sys

name = sys.argv[1]
ports = [int(p) for p in sys.argv[2:]]
sel = selectors.DefaultSelector()
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux value; some Python builds lack the name

for port in ports:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("0.0.0.0", port))
    t.listen(512)
    t.setblocking(False)
    sel.register(t, selectors.EVENT_READ, ("accept", port))
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Answer from the address the datagram was sent to (the frontend, under DSR).
    u.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    u.bind(("0.0.0.0", port))
    u.setblocking(False)
    sel.register(u, selectors.EVENT_READ, ("udp", port))

# IPv6 too (v6-only sockets beside the IPv4 ones), answering from the address asked.
IPV6_RECVPKTINFO = getattr(socket, "IPV6_RECVPKTINFO", 49)
IPV6_PKTINFO = getattr(socket, "IPV6_PKTINFO", 50)
for port in ports:
    t = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    t.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind(("::", port))
    t.listen(512)
    t.setblocking(False)
    sel.register(t, selectors.EVENT_READ, ("accept", port))
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    u.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
    u.bind(("::", port))
    u.setblocking(False)
    sel.register(u, selectors.EVENT_READ, ("udp6", port))

print("ready", flush=True)
pending = {}
while True:
    for key, _ in sel.select():
        kind, port = key.data
        sock = key.fileobj
        if kind == "accept":
            try:
                conn, _ = sock.accept()
            except BlockingIOError:
                continue
            conn.setblocking(False)
            pending[conn] = b""
            sel.register(conn, selectors.EVENT_READ, ("conn", port))
        elif kind == "udp6":
            try:
                data, anc, _, peer = sock.recvmsg(2048, socket.CMSG_SPACE(20))
            except BlockingIOError:
                continue
            # struct in6_pktinfo { in6_addr addr; int ifindex; }: reply from addr.
            cmsg = [(lvl, IPV6_PKTINFO, d) for lvl, typ, d in anc
                    if lvl == socket.IPPROTO_IPV6 and typ == IPV6_PKTINFO]
            sock.sendmsg([f"{name} {port} ".encode() + data], cmsg, 0, peer)
        elif kind == "udp":
            try:
                data, anc, _, peer = sock.recvmsg(2048, socket.CMSG_SPACE(12))
            except BlockingIOError:
                continue
            # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }: reply from addr.
            pktinfo = [d for lvl, typ, d in anc if lvl == socket.IPPROTO_IP and typ == IP_PKTINFO]
            cmsg = []
            if pktinfo:
                info = pktinfo[0]
                cmsg = [(socket.IPPROTO_IP, IP_PKTINFO, b"\0\0\0\0" + info[8:12] + b"\0\0\0\0")]
            sock.sendmsg([f"{name} {port} ".encode() + data], cmsg, 0, peer)
        else:
            try:
                chunk = sock.recv(2048)
            except (BlockingIOError, ConnectionError):
                chunk = None
            if chunk is None:
                continue
            pending[sock] += chunk
            if pending[sock].startswith(b"session\n"):
                # A long-lived session: echo every further line, until the client closes.
                lines = pending[sock].split(b"\n")
                pending[sock] = b"session\n" + lines[-1]
                for line in lines[1:-1]:
                    try:
                        sock.sendall(f"{name} {port} ".encode() + line + b"\n")
                    except OSError:
                        pass
                if chunk:
                    continue
            if b"\n" in pending[sock] or not chunk:
                try:
                    sock.setblocking(True)
                    sock.settimeout(2)
                    sock.sendall(f"{name} {port} ".encode() + pending[sock])
                except OSError:
                    pass
                sel.unregister(sock)
                del pending[sock]
                sock.close()
