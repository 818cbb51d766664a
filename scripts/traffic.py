#!/usr/bin/env python3
"""Real kernel TCP/UDP traffic to a frontend, for haports tests and the demo.

  traffic.py tcp|udp FRONTEND --ports P1,P2,... --count N [--sport S] [--source ADDR] [--summary]

Each exchange is a new flow (a new source port) unless --sport fixes it; TCP connections
send a line, read the backend's answer to EOF and close; UDP sends one datagram and waits
for the answer. Prints one JSON object: per-backend counts, failures, and each exchange's
(source port, destination port, backend). With --summary it prints a readable summary
instead, and exits 1 when any exchange failed (the JSON's reader judges the failures itself)."""
import argparse
import json
import socket
import struct
import sys

ap = argparse.ArgumentParser()
ap.add_argument("proto", choices=["tcp", "udp"])
ap.add_argument("frontend")
ap.add_argument("--ports", required=True)
ap.add_argument("--count", type=int, default=100)
ap.add_argument("--sport", type=int, default=0)
ap.add_argument("--source", default="", help="the client address to send from (one of the host's)")
ap.add_argument("--timeout", type=float, default=3.0)
ap.add_argument("--summary", action="store_true", help="print a readable summary, not JSON")
args = ap.parse_args()
ports = [int(p) for p in args.ports.split(",")]
family = socket.AF_INET6 if ":" in args.frontend else socket.AF_INET
any_addr = args.source or ("::" if family == socket.AF_INET6 else "0.0.0.0")

served, failures, flows = {}, [], []


def check(answer, port, payload):
    parts = answer.split(b" ", 2)
    if len(parts) != 3 or int(parts[1]) != port or parts[2] != payload:
        raise ValueError(f"unexpected answer {answer!r}")
    return parts[0].decode()


for i in range(args.count):
    port = ports[i % len(ports)]
    payload = f"hello {i} from the client\n".encode()
    try:
        if args.proto == "tcp":
            s = socket.socket(family, socket.SOCK_STREAM)
            if args.sport:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                # Close with RST so the same five-tuple can be reused at once.
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.bind((any_addr, args.sport))
            elif args.source:
                s.bind((any_addr, 0))
            s.settimeout(args.timeout)
            s.connect((args.frontend, port))
            sport = s.getsockname()[1]
            s.sendall(payload)
            answer = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
            s.close()
        else:
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.bind((any_addr, args.sport))
            s.settimeout(args.timeout)
            s.sendto(payload, (args.frontend, port))
            sport = s.getsockname()[1]
            answer, peer = s.recvfrom(4096)
            if (peer[0], peer[1]) != (args.frontend, port):
                raise ValueError(f"answer from {peer}, not the frontend")
            s.close()
        backend = check(answer, port, payload)
        served[backend] = served.get(backend, 0) + 1
        flows.append([sport, port, backend])
    except Exception as e:  # noqa: BLE001 - every failure is reported, none hidden
        failures.append(f"{args.proto} to port {port}: {e}")

if args.summary:
    total = args.count
    for backend, n in sorted(served.items()):
        print(f"   {backend}: {n:4d} ({100 * n / total:.0f}%)")
    print(f"   failed: {len(failures)}" + (f" (first: {failures[0]})" if failures else ""))
    # The demo runs it under `set -e`: a failed exchange must stop it, not pass as a success.
    if failures:
        sys.exit(1)
else:
    print(json.dumps({"served": served, "failures": failures, "flows": flows}))
