#!/usr/bin/env python3
"""Continuous traffic through a frontend while something changes, for haports' failover,
drain and reload tests.

  streams.py FRONTEND --udp-port P --udp-flows N --tcp-port Q --duration S
             [--kill-pid PID --kill-at T] [--session-port R [--session-sport S]]
             [--session-timeout T] [--until-stdin-closes [--at-least A]]

- N UDP flows (fixed source ports) each send a sequence-numbered datagram every 10 ms; every
  answer names its backend. Per flow: the backends seen and the sequence numbers never
  answered.
- One thread opens new TCP connections back to back (each a new flow; none with
  --tcp-port 0) and records, for each, the time and the backend that answered (or the error).
- --kill-pid: at T seconds, SIGKILL that process (a backend's service) and note the time.
- --session-port: one long-lived TCP connection sending a line every 50 ms throughout;
  every line must come back from the same backend.
- --until-stdin-closes: stop once standard input closes, if that is before --duration (and
  not before --at-least A seconds: enough traffic for the report, however quick the test).
Times are seconds from the start. Prints one JSON object at the end; exits 1 (the error on
stderr) if any thread failed, so that a report never passes for lack of entries."""
import argparse
import json
import os
import signal
import socket
import sys
import threading
import time

ap = argparse.ArgumentParser()
ap.add_argument("frontend")
ap.add_argument("--udp-port", type=int, default=8000)
ap.add_argument("--udp-flows", type=int, default=8)
ap.add_argument("--tcp-port", type=int, default=8001, help="0: no new TCP connections")
ap.add_argument("--duration", type=float, default=3.0)
ap.add_argument("--kill-pid", type=int, default=0)
ap.add_argument("--kill-at", type=float, default=1.0)
ap.add_argument("--session-port", type=int, default=0)
ap.add_argument("--session-sport", type=int, default=0, help="the session's source port")
ap.add_argument("--session-timeout", type=float, default=2.0,
                help="seconds the session waits for an answer before it counts as broken")
ap.add_argument("--until-stdin-closes", action="store_true",
                help="stop when standard input closes (or at --duration, whichever is first)")
ap.add_argument("--at-least", type=float, default=0.0,
                help="with --until-stdin-closes, run at least this many seconds")
args = ap.parse_args()

t0 = time.monotonic()
stop = threading.Event()
now = lambda: time.monotonic() - t0  # noqa: E731
result = {"udp": [], "tcp": [], "kill_at": None, "session": None}
failures = []


def recorded(target):
    """Runs `target`, noting any exception it ends with (a thread's own would only be printed)."""
    def run():
        try:
            target()
        except Exception as e:  # noqa: BLE001 - every failure must fail the run
            failures.append(f"{target.__name__}: {e!r}")
            stop.set()
    return run


def udp_flows():
    socks = []
    for _ in range(args.udp_flows):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 0))
        # Connected: only answers from the frontend's address and port are received (a reply
        # the data plane failed to rewrite back, from a backend's address, is missing).
        s.connect((args.frontend, args.udp_port))
        s.setblocking(False)
        socks.append({"sock": s, "sent": 0, "answered": set(), "backends": {}})
    while not stop.is_set():
        for f in socks:
            try:
                f["sock"].send(f"{f['sent']}".encode())
            except ConnectionRefusedError:
                pass  # an ICMP error about an earlier one: this one counts as missing if lost
            f["sent"] += 1
        deadline = time.monotonic() + 0.01
        while time.monotonic() < deadline:
            for f in socks:
                drain(f)
            time.sleep(0.001)
    end = time.monotonic() + 2.0  # answers still in flight: until each came, or 2 s
    while time.monotonic() < end and any(len(f["answered"]) < f["sent"] for f in socks):
        for f in socks:
            drain(f)
        time.sleep(0.005)
    for f in socks:
        missing = sorted(set(range(f["sent"])) - f["answered"])
        result["udp"].append({
            "sport": f["sock"].getsockname()[1],
            "sent": f["sent"],
            "missing": len(missing),
            "first_missing": missing[:5],
            "backends": f["backends"],
        })


def drain(f):
    while True:
        try:
            data = f["sock"].recv(2048)
        except BlockingIOError:
            return
        except ConnectionRefusedError:
            continue  # an ICMP error (a backend gone): its datagram counts as missing
        name, port, seq = data.decode().split(" ", 2)
        if int(port) != args.udp_port:
            raise ValueError(f"answer from port {port}, not {args.udp_port}: {data!r}")
        f["answered"].add(int(seq))
        f["backends"][name] = f["backends"].get(name, 0) + 1


def tcp_churn():
    while not stop.is_set():
        start = now()
        try:
            s = socket.create_connection((args.frontend, args.tcp_port), timeout=1.0)
            s.sendall(b"hi\n")
            answer = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
            s.close()
            # `NAME PORT hi`: anything else is no answer (a reset mid-way, another service).
            parts = answer.split(b" ", 2)
            served = len(parts) == 3 and parts[1] == str(args.tcp_port).encode() \
                and parts[2] == b"hi\n"
            result["tcp"].append([start, parts[0].decode() if served else None])
        except OSError as e:
            result["tcp"].append([start, None, str(e)])
            time.sleep(0.005)


def session():
    s = socket.create_connection((args.frontend, args.session_port), timeout=args.session_timeout,
                                 source_address=("0.0.0.0", args.session_sport))
    s.sendall(b"session\n")
    f = s.makefile("rb")
    backends, sent, answered, errors = {}, 0, 0, []
    while not stop.is_set():
        try:
            s.sendall(f"line {sent}\n".encode())
            sent += 1
            answer = f.readline().decode().split(" ", 2)
            if len(answer) == 3 and answer[2].strip() == f"line {sent - 1}":
                answered += 1
                backends[answer[0]] = backends.get(answer[0], 0) + 1
            else:
                errors.append(f"bad answer {answer!r}")
        except OSError as e:
            errors.append(str(e))
            break
        time.sleep(0.05)
    s.close()
    result["session"] = {"sent": sent, "answered": answered, "backends": backends, "errors": errors[:5]}


threads = [threading.Thread(target=recorded(udp_flows))]
if args.tcp_port:
    threads.append(threading.Thread(target=recorded(tcp_churn)))
if args.session_port:
    threads.append(threading.Thread(target=recorded(session)))
for t in threads:
    t.start()
if args.kill_pid:
    time.sleep(max(0.0, args.kill_at - now()))
    result["kill_at"] = now()
    os.kill(args.kill_pid, signal.SIGKILL)
if args.until_stdin_closes:
    def watch_stdin():
        sys.stdin.read()
        time.sleep(max(0.0, args.at_least - now()))
        stop.set()
    threading.Thread(target=watch_stdin, daemon=True).start()
stop.wait(max(0.0, args.duration - now()))
stop.set()
for t in threads:
    t.join()
print(json.dumps(result))
if failures:
    sys.exit("streams.py: " + "; ".join(failures))
