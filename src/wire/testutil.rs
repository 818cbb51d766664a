//! Byte-by-byte packet builders for the wire tests: each writes its header field by field
//! and fills its checksum, so the views are checked against independently laid-out bytes.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::{Ipv4Packet, MacAddr, TcpPacket, UdpPacket};

pub const ETH_DST: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x01]);
pub const ETH_SRC: MacAddr = MacAddr([0x02, 0, 0, 0, 0, 0x02]);

/// An untagged Ethernet frame, padded to the 60-byte minimum as a NIC would.
pub fn eth(ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = [ETH_DST.0, ETH_SRC.0].concat();
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    if f.len() < 60 {
        f.resize(60, 0);
    }
    f
}

/// An IPv4 packet without options: ident 0x1234, DF, TTL 64, checksum filled.
pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let total = (20 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    Ipv4Packet::new_checked(&mut p[..]).unwrap().fill_checksum();
    p
}

/// An IPv6 packet: traffic class and flow label zero, hop limit 64.
pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr, next_header: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    p.extend_from_slice(&[next_header, 64]);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(payload);
    p
}

/// A TCP segment without options (seq 1000, ack 2000, window 65535), its checksum filled
/// for `src` → `dst` over IPv4.
pub fn tcp(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut s = Vec::new();
    s.extend_from_slice(&sport.to_be_bytes());
    s.extend_from_slice(&dport.to_be_bytes());
    s.extend_from_slice(&1000u32.to_be_bytes());
    s.extend_from_slice(&2000u32.to_be_bytes());
    s.extend_from_slice(&[5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
    s.extend_from_slice(payload);
    TcpPacket::new_checked(&mut s[..])
        .unwrap()
        .fill_checksum_v4(src, dst);
    s
}

/// A UDP datagram, its checksum filled for `src` → `dst` over IPv4.
pub fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&sport.to_be_bytes());
    d.extend_from_slice(&dport.to_be_bytes());
    d.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    d.extend_from_slice(&[0, 0]);
    d.extend_from_slice(payload);
    UdpPacket::new_checked(&mut d[..])
        .unwrap()
        .fill_checksum_v4(src, dst);
    d
}
