//! What the pipeline's benchmarks feed it: an HA-ports load balancer and UDP datagrams to
//! its frontend. Shared by `benches/hot_path.rs` and `examples/pipeline_ns.rs` (each takes
//! this file in with `#[path]`).

use haports::config::Config;
use haports::lb::forwarding::{Forwarding, Observations};
use haports::wire::MacAddr;

/// An HA-ports rule over four backends on one interface, NAT or floating.
pub fn forwarding(floating: bool) -> Forwarding {
    let text = format!(
        r#"
[[interface]]
name = "lan"
port = 0
address = "10.0.0.2/16"
[[load_balancer]]
name = "ilb"
kind = "internal"
  [[load_balancer.frontend]]
  name = "fe"
  address = "10.0.0.100"
  [[load_balancer.backend_pool]]
  name = "pool"
  backends = [
    {{ address = "10.0.0.11", mac = "02:00:00:00:00:11" }},
    {{ address = "10.0.0.12", mac = "02:00:00:00:00:12" }},
    {{ address = "10.0.0.13", mac = "02:00:00:00:00:13" }},
    {{ address = "10.0.0.14", mac = "02:00:00:00:00:14" }},
  ]
  [[load_balancer.rule]]
  name = "ha"
  frontend = "fe"
  backend_pool = "pool"
  protocol = "all"
  frontend_port = 0
  backend_port = 0
  floating_ip = {floating}
"#
    );
    let cfg = Config::from_toml(&text, "bench").expect("the benchmark config parses");
    let obs = Observations {
        interface_macs: vec![MacAddr([2, 0, 0, 0, 0, 1])],
        ..Observations::default()
    };
    Forwarding::build(&cfg, &obs, 1, None)
}

/// A 60-byte UDP datagram from client `src`:`sport` to the frontend, to its MAC, with its
/// header checksum (the UDP checksum left out, as senders may).
pub fn udp_frame(src: u32, sport: u16) -> Vec<u8> {
    let mut f = vec![0u8; 60];
    f[0..6].copy_from_slice(&[0x02, 0x48, 10, 0, 0, 100]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 0xc1]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&46u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src.to_be_bytes());
    ip[16..20].copy_from_slice(&[10, 0, 0, 100]);
    let sum = haports::wire::checksum::internet_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&sport.to_be_bytes());
    udp[2..4].copy_from_slice(&53u16.to_be_bytes());
    udp[4..6].copy_from_slice(&26u16.to_be_bytes());
    f
}
