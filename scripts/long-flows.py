#!/usr/bin/env python3
"""Long-lived TCP connections that each send data continuously and check every byte that
comes back, for the scale-out lab and its test.

  long-flows.py FRONTEND PORT --sources 10.8.0.10-59 --per-source 6 [--interval 0.2]

Opens PER-SOURCE connections from each source address (the client namespace holds them all)
to a scripts/backend.py behind FRONTEND:PORT, in its `session` mode: every line sent comes
back as `NAME PORT LINE`. Each connection sends `ID SEQ FILLER` lines, one every INTERVAL
seconds, and checks that the echoes come back in order, byte for byte, from one backend.
Prints `ready N` once all N connections are open and answered, then runs until standard
input says `stop` (or closes); then it stops sending, waits up to 10 s for the outstanding
echoes and prints one JSON object:
  {"connections": [{"src", "sport", "backend", "sent", "echoed", "bytes", "error"}...]}
A connection has an error when it was reset or closed, an echo differed from what was sent,
the backend's name changed, or echoes were still missing at the end."""
import argparse
import ipaddress
import json
import selectors
import socket
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("frontend")
ap.add_argument("port", type=int)
ap.add_argument("--sources", required=True, help="FIRST-LASTOCTET, e.g. 10.8.0.10-59")
ap.add_argument("--per-source", type=int, default=6)
ap.add_argument("--interval", type=float, default=0.2)
args = ap.parse_args()

first, last = args.sources.rsplit("-", 1)
base = ipaddress.ip_address(first)
sources = [str(base + i) for i in range(int(last) - int(first.rsplit(".", 1)[1]) + 1)]
FILLER = b"x" * 40

sel = selectors.DefaultSelector()
conns = []


class Conn:
    def __init__(self, cid, src):
        self.cid, self.src = cid, src
        self.sock = socket.create_connection((args.frontend, args.port), timeout=10, source_address=(src, 0))
        self.sport = self.sock.getsockname()[1]
        self.sock.setblocking(False)
        self.sent = 0  # lines sent
        self.echoed = 0  # lines echoed back correctly
        self.bytes = 0
        self.backend = None
        self.error = None
        self.inbuf = b""
        self.outbuf = b"session\n"

    def line(self, seq):
        return b"%d %d %s" % (self.cid, seq, FILLER)

    def send_next(self):
        self.outbuf += self.line(self.sent) + b"\n"
        self.sent += 1
        self.flush()

    def flush(self):
        if self.error or not self.outbuf:
            return
        try:
            n = self.sock.send(self.outbuf)
            self.outbuf = self.outbuf[n:]
        except BlockingIOError:
            pass
        except OSError as e:
            self.fail(f"send: {e}")

    def fail(self, why):
        if not self.error:
            self.error = why
        try:
            sel.unregister(self.sock)
        except (KeyError, ValueError):
            pass

    def readable(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            return self.fail(f"recv: {e}")
        if not data:
            return self.fail("closed by the far end")
        self.inbuf += data
        *lines, self.inbuf = self.inbuf.split(b"\n")
        for echo in lines:
            parts = echo.split(b" ", 2)
            if len(parts) != 3:
                return self.fail(f"malformed echo {echo[:60]!r}")
            name = parts[0].decode()
            if self.backend is None:
                self.backend = name
            elif name != self.backend:
                return self.fail(f"backend changed from {self.backend} to {name}")
            if parts[2] != self.line(self.echoed):
                return self.fail(f"echo {self.echoed} differs: {parts[2][:60]!r}")
            self.echoed += 1
            self.bytes += len(parts[2]) + 1


cid = 0
for src in sources:
    for _ in range(args.per_source):
        c = Conn(cid, src)
        cid += 1
        conns.append(c)
        sel.register(c.sock, selectors.EVENT_READ, c)
        c.send_next()

stop = threading.Event()


def watch_stdin():
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()


threading.Thread(target=watch_stdin, daemon=True).start()


def pump(until):
    while time.monotonic() < until:
        for key, _ in sel.select(timeout=max(0.0, min(0.05, until - time.monotonic()))):
            key.data.readable()
        for c in conns:
            c.flush()


# Ready once every connection has an answer (and so a backend); else not, and no run.
deadline = time.monotonic() + 30
while time.monotonic() < deadline and any(c.echoed == 0 and not c.error for c in conns):
    pump(time.monotonic() + 0.05)
unanswered = sum(1 for c in conns if c.echoed == 0)
if unanswered:
    print(f"not ready: {unanswered} of {len(conns)} connections unanswered", flush=True)
    sys.exit(1)
print(f"ready {len(conns)}", flush=True)

next_send = time.monotonic()
while not stop.is_set():
    now = time.monotonic()
    if now >= next_send:
        next_send += args.interval
        for c in conns:
            if not c.error:
                c.send_next()
    pump(min(next_send, now + 0.05))

# Every line sent must come back.
deadline = time.monotonic() + 10
while time.monotonic() < deadline and any(not c.error and c.echoed < c.sent for c in conns):
    pump(time.monotonic() + 0.05)
for c in conns:
    if not c.error and c.echoed < c.sent:
        c.error = f"{c.sent - c.echoed} echoes missing"
    c.sock.close()
print(json.dumps({"connections": [
    {"src": c.src, "sport": c.sport, "backend": c.backend, "sent": c.sent,
     "echoed": c.echoed, "bytes": c.bytes, "error": c.error} for c in conns]}), flush=True)
