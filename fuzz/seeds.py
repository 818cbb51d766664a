#!/usr/bin/python3
"""Writes the fuzz target's seed corpus (fuzz/corpus/pipeline/seed-*) with scapy.

An input is: config index (src/fuzzing.rs CONFIGS), ingress interface, clock step, then
frames, each a 2-byte big-endian length and its bytes. Interface i has MAC
02:00:00:00:00:0(i+1); a frontend a.b.c.d has 02:48:a:b:c:d; backends are at
02:00:00:00:0b:NN (NN: the address's last byte); clients at 02:00:00:00:c1:10.

    /usr/bin/python3 fuzz/seeds.py   # Debian's python3-scapy
"""
import os
import struct

from scapy.all import (ARP, Dot1Q, Ether, ICMP, IP, IPerror, IPv6, IPv6ExtHdrDestOpt,
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, ICMPv6EchoRequest,
                       ICMPv6ND_NA, ICMPv6ND_NS, ICMPv6NDOptDstLLAddr, ICMPv6NDOptSrcLLAddr,
                       TCP, TCPerror, UDP, Raw, fragment)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "pipeline")
IF0, IF1 = "02:00:00:00:00:01", "02:00:00:00:00:02"
CLIENT_MAC = "02:00:00:00:c1:10"


def fe_mac(v4):
    return "02:48:" + ":".join("%x" % int(o) for o in v4.split("."))


def be_mac(last):
    return "02:00:00:00:0b:%02x" % last


def seed(name, pick, ingress, frames, step=0):
    data = bytes([pick, ingress, step])
    for f in frames:
        b = bytes(f)
        data += struct.pack(">H", len(b)) + b
    with open(os.path.join(OUT, "seed-" + name), "wb") as fh:
        fh.write(data)


os.makedirs(OUT, exist_ok=True)
c = Ether(dst=IF0, src=CLIENT_MAC)
syn = IP(src="10.0.0.50", dst="10.0.0.100") / TCP(sport=40000, dport=443, flags="S")
# basic.toml (0): NAT HA ports
seed("nat-tcp-flow", 0, 0, [
    c / syn,
    c / IP(src="10.0.0.50", dst="10.0.0.100") / TCP(sport=40000, dport=443, flags="A") / b"hi",
    Ether(dst=IF0, src=be_mac(11)) / IP(src="10.0.0.11", dst="10.0.0.50") / TCP(sport=443, dport=40000, flags="SA"),
    Ether(dst=IF0, src=be_mac(12)) / IP(src="10.0.0.12", dst="10.0.0.50") / TCP(sport=443, dport=40000, flags="SA"),
    c / IP(src="10.0.0.50", dst="10.0.0.100") / TCP(sport=40000, dport=443, flags="FA"),
])
seed("nat-udp", 0, 0, [c / IP(src="10.0.0.50", dst="10.0.0.100") / UDP(sport=5353, dport=53) / (b"q" * 20),
                        c / IP(src="10.0.0.50", dst="10.0.0.100", options=b"\x01\x00\x00\x00") / UDP(sport=1, dport=2)])
seed("arp-and-ping", 0, 0, [
    Ether(dst="ff:ff:ff:ff:ff:ff", src=CLIENT_MAC) / ARP(op=1, hwsrc=CLIENT_MAC, psrc="10.0.0.50", pdst="10.0.0.100"),
    Ether(dst="ff:ff:ff:ff:ff:ff", src=CLIENT_MAC) / ARP(op=1, hwsrc=CLIENT_MAC, psrc="10.0.0.50", pdst="10.0.0.2"),
    Ether(dst=IF0, src=be_mac(11)) / ARP(op=2, hwsrc=be_mac(11), psrc="10.0.0.11", hwdst=IF0, pdst="10.0.0.2"),
    c / IP(src="10.0.0.50", dst="10.0.0.100") / ICMP(type=8) / b"ping",
    c / IP(src="10.0.0.50", dst="10.0.0.2") / ICMP(type=8) / b"ping",
])
seed("icmp-error", 0, 0, [
    c / syn,
    Ether(dst=IF0, src=CLIENT_MAC) / IP(src="10.0.0.1", dst="10.0.0.100") / ICMP(type=3, code=4, nexthopmtu=1400) /
    IPerror(src="10.0.0.100", dst="10.0.0.50") / TCPerror(sport=443, dport=40000),
])
seed("fragments", 0, 0, [c / f for f in fragment(IP(src="10.0.0.50", dst="10.0.0.100") / UDP(sport=7, dport=7) / (b"x" * 120), fragsize=48)])
seed("hostile", 0, 0, [
    c / IP(src="10.0.0.50", dst="10.0.0.100", ttl=0) / TCP(dport=80, flags="S"),
    c / IP(src="224.0.0.1", dst="10.0.0.100") / TCP(dport=80, flags="S"),
    c / IP(src="10.0.0.50", dst="10.0.0.100") / TCP(dport=80, flags="SF"),
    c / IP(src="10.0.0.50", dst="10.0.0.100", chksum=0x1234) / TCP(dport=80, flags="S"),
    Ether(dst=IF0, src=CLIENT_MAC) / Dot1Q(vlan=7) / syn,
    Ether(dst="ff:ff:ff:ff:ff:ff", src=CLIENT_MAC) / IP(src="0.0.0.0", dst="224.0.0.22") / Raw(b"\x22" * 8),
])
# ha-ports-plus-public.toml (1): a public port rule and an internal HA-ports rule on one pool
seed("public-and-internal", 1, 1, [
    Ether(dst=IF1, src=CLIENT_MAC) / IP(src="198.51.100.7", dst="203.0.113.10") / TCP(sport=50000, dport=443, flags="S"),
    Ether(dst=IF1, src=be_mac(11)) / IP(src="10.0.0.11", dst="198.51.100.7") / TCP(sport=8443, dport=50000, flags="SA"),
])
# multi-frontend-floating.toml (2): DSR, transit through two frontends
seed("transit", 2, 0, [
    Ether(dst=fe_mac("10.0.0.100"), src=CLIENT_MAC) / IP(src="10.0.0.50", dst="10.9.9.9") / TCP(sport=1000, dport=22, flags="S"),
    Ether(dst=fe_mac("10.1.0.100"), src=CLIENT_MAC) / IP(src="10.9.9.9", dst="10.0.0.50") / TCP(sport=22, dport=1000, flags="SA"),
    Ether(dst=IF0, src=CLIENT_MAC) / IP(src="10.0.0.50", dst="10.0.0.100") / UDP(sport=9, dport=9),
])
# nva-active-passive.toml (3), nva-n-active.toml (4)
seed("nva", 4, 0, [
    Ether(dst=fe_mac("10.1.0.100"), src=CLIENT_MAC) / IP(src="10.5.0.4", dst="10.6.0.4") / UDP(sport=4000, dport=53),
    Ether(dst=IF0, src=CLIENT_MAC) / IP(src="10.1.0.1", dst="10.1.0.100") / TCP(sport=4000, dport=22, flags="S"),
])
seed("active-passive", 3, 0, [Ether(dst=IF0, src=CLIENT_MAC) / IP(src="10.2.0.50", dst="10.2.0.100") / TCP(sport=1, dport=2, flags="S")])
# port-translation.toml (5)
seed("ports", 5, 0, [
    c / IP(src="10.0.0.50", dst="10.0.0.80") / TCP(sport=41000, dport=80, flags="S"),
    c / IP(src="10.0.0.50", dst="10.0.0.81") / UDP(sport=41000, dport=53),
    Ether(dst=IF0, src=be_mac(21)) / IP(src="10.0.0.21", dst="10.0.0.50") / TCP(sport=8080, dport=41000, flags="SA"),
])
# ipv6.toml (6)
c6 = Ether(dst=IF0, src=CLIENT_MAC)
seed("ipv6", 6, 0, [
    c6 / IPv6(src="fd00::50", dst="fd00::100") / TCP(sport=40000, dport=443, flags="S"),
    Ether(dst=IF0, src=be_mac(0x11)) / IPv6(src="fd00::11", dst="fd00::50") / TCP(sport=443, dport=40000, flags="SA"),
    Ether(dst="33:33:ff:00:01:00", src=CLIENT_MAC) / IPv6(src="fd00::50", dst="ff02::1:ff00:100", hlim=255) /
    ICMPv6ND_NS(tgt="fd00::100") / ICMPv6NDOptSrcLLAddr(lladdr=CLIENT_MAC),
    Ether(dst=IF0, src=be_mac(0x11)) / IPv6(src="fd00::11", dst="fd00::2", hlim=255) /
    ICMPv6ND_NA(tgt="fd00::11", S=1, O=1) / ICMPv6NDOptDstLLAddr(lladdr=be_mac(0x11)),
    c6 / IPv6(src="fd00::50", dst="fd00::100") / ICMPv6EchoRequest(),
])
seed("ipv6-extensions", 6, 0, [
    c6 / IPv6(src="fd00::50", dst="fd00::100") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / TCP(sport=1, dport=2, flags="S"),
    c6 / IPv6(src="fd00::50", dst="fd00::100") / IPv6ExtHdrFragment(id=9, m=1) / UDP(sport=3, dport=4) / (b"y" * 24),
    c6 / IPv6(src="fd00::50", dst="fd00::100") / IPv6ExtHdrFragment(id=9, offset=4) / (b"y" * 16),
])
# nva-over-vxlan.toml (8): NVAs behind VXLAN, MTU 1500 (an inner packet of up to 1450 fits)
big = b"z" * 1440
seed("vxlan", 8, 0, [
    c / syn,
    c / IP(src="10.0.0.50", dst="10.0.0.100", flags="DF") / UDP(sport=5353, dport=53) / big,
    c / IP(src="10.0.0.50", dst="10.0.0.100") / UDP(sport=5353, dport=53) / big,
    c / IP(src="10.0.0.50", dst="10.0.0.100", flags="DF", options=b"\x01\x00\x00\x00") / TCP(dport=80, flags="A") / b"o",
] + [c / f for f in fragment(IP(src="10.0.0.50", dst="10.0.0.100") / UDP(sport=7, dport=7) / (b"x" * 120), fragsize=48)])
# vxlan-small-mtu.toml (9): the same over MTU 1280, IPv6 inside too (an inner packet of up to
# 1230 fits)
seed("vxlan-small-mtu", 9, 0, [
    c / IP(src="10.0.0.50", dst="10.0.0.100", flags="DF") / TCP(sport=1, dport=2, flags="S") / (b"v" * 1200),
    c6 / IPv6(src="fd00::50", dst="fd00::100") / TCP(sport=40000, dport=443, flags="S"),
    c6 / IPv6(src="fd00::50", dst="fd00::100") / UDP(sport=4, dport=5) / (b"w" * 1240),
    c6 / IPv6(src="fd00::50", dst="fd00::100") / IPv6ExtHdrFragment(id=9, m=1) / UDP(sport=3, dport=4) / (b"y" * 1232),
])
# Several bursts (64 frames each) on one worker, the clock moving on between them: a flow's
# packets and a datagram's fragments in different bursts. Bit 7 of the ingress byte: the
# stages a burst apart; the step byte 6: bursts at 7 s, then 1.5 s apart; 24: 6 s apart,
# beyond a fragment's 5 s.
filler = [c / IP(src="10.0.0.50", dst="10.0.0.100") / UDP(sport=10000 + i, dport=53) / b"f"
          for i in range(62)]
frags = [c / f for f in fragment(IP(src="10.0.0.50", dst="10.0.0.100") / UDP(sport=7, dport=7) / (b"x" * 120), fragsize=48)]
burst1 = [c / syn, frags[0]] + filler
burst2 = [c / IP(src="10.0.0.50", dst="10.0.0.100") / TCP(sport=40000, dport=443, flags="A") / b"hi"] + frags[1:]
seed("bursts-apart", 0, 0x80, burst1 + burst2, step=6)
seed("bursts-in-turn", 0, 0, burst1 + burst2, step=24)
print(len(os.listdir(OUT)), "seeds in", OUT)
