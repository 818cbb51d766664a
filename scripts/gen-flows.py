#!/usr/bin/env python3
"""Writes a pcap of FLOWS distinct UDP flows to a frontend, 64-byte frames, for
scripts/bench-pps.sh (replayed in memory by net_pcap's infinite_rx).

  gen-flows.py FLOWS OUT.pcap [--frontend 10.0.0.100] [--seed 1] [--packets 65536]

Every flow appears once a lap, each lap in its own random order (a real link does not replay
the flow table in insertion order); laps are written until PACKETS frames (at least one lap).

Frames go to the frontend's own MAC (02:48 + its IPv4 address, which haports answers in ARP
and accepts), from clients 10.64.0.0/10 with random source ports; checksums are real."""
import argparse
import random
import socket
import struct

ap = argparse.ArgumentParser()
ap.add_argument("flows", type=int)
ap.add_argument("out")
ap.add_argument("--frontend", default="10.0.0.100")
ap.add_argument("--seed", type=int, default=1)
ap.add_argument("--packets", type=int, default=65536)
args = ap.parse_args()

rng = random.Random(args.seed)
fe = socket.inet_aton(args.frontend)
dst_mac = bytes([0x02, 0x48]) + fe
src_mac = bytes([0x02, 0x00, 0x00, 0x00, 0x00, 0x01])


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


seen = set()
flows = []
while len(flows) < args.flows:
    src = struct.pack("!I", (10 << 24 | 64 << 16) + rng.randrange(1 << 22))
    sport, dport = rng.randrange(1024, 65536), rng.randrange(1, 65536)
    if (src, sport, dport) in seen:
        continue
    seen.add((src, sport, dport))
    flows.append((src, sport, dport))

frames = []
for src, sport, dport in flows:
    payload = b"\0" * 18  # 14 + 20 + 8 + 18 = 60 bytes, 64 on the wire
    udp_len = 8 + len(payload)
    pseudo = src + fe + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    c = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0, 64, 17, 0, src, fe)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    frames.append(dst_mac + src_mac + b"\x08\x00" + ip + udp)

with open(args.out, "wb") as f:
    f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # pcap, Ethernet
    written = 0
    while written == 0 or written < args.packets:
        rng.shuffle(frames)
        for frame in frames:
            f.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)))
            f.write(frame)
        written += len(frames)
