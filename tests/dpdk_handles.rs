//! The DPDK wrappers keep their promises without the caller's care, on a real (null) PMD: a
//! queue, which the PMD lets one thread use, has one handle at a time; a port keeps its
//! pool; and a pool dropped while a packet buffer is still out is left allocated for it, not
//! freed under it; a pool
//! that does not fit on its socket comes from another; a started port receives all
//! multicast (a TAP device); and EAL's memory stays mapped while a pool lives, whatever
//! was dropped first.

use std::panic::{catch_unwind, AssertUnwindSafe};

use haports::dpdk::{Eal, Mbuf, MbufBurst, Mempool, Port, PortConfig};

#[test]
fn a_queue_has_one_handle_a_port_takes_all_multicast_and_a_pool_stays_while_buffers_are_out() {
    // The TAP is made in the host's namespace: a name of this run's own (IFNAMSIZ: 15).
    let tap_name = format!("hpth{}", std::process::id() % 10_000_000);
    let tap_vdev = format!("net_tap0,iface={tap_name}");
    let args = [
        "--no-huge",
        "--no-shconf",
        "-m",
        "256",
        "--no-pci",
        "-l",
        "0",
        "--vdev",
        "net_null0",
        "--vdev",
        &tap_vdev,
        "--vdev",
        "net_null1",
        "--log-level",
        "lib.eal:error",
        // Other tests' EALs may run at the same time, in the same runtime directory.
        "--no-telemetry",
    ]
    .map(|a| a.to_string());
    let eal = Eal::init(&args).expect("EAL on a null device");
    let pool = Mempool::new("handles", 4095, 0, None).expect("a pool");
    let cfg = PortConfig {
        rx_queues: 2,
        tx_queues: 2,
        rx_descriptors: 512,
        tx_descriptors: 512,
        rss: false,
        mac: None,
    };
    let port = Port::start(0, &cfg, &pool).expect("net_null0 starts");

    let rx = port.rx_queue(1);
    let tx = port.tx_queue(1);
    let second_rx = catch_unwind(AssertUnwindSafe(|| port.rx_queue(1)));
    assert!(second_rx.is_err(), "RX queue 1 was handed out twice");
    let second_tx = catch_unwind(AssertUnwindSafe(|| port.tx_queue(1)));
    assert!(second_tx.is_err(), "TX queue 1 was handed out twice");
    // Other queues are free, and a queue whose handle is gone may be taken again.
    let (rx0, tx0) = (port.rx_queue(0), port.tx_queue(0));
    drop((rx, tx));
    let (rx, tx) = (port.rx_queue(1), port.tx_queue(1));
    drop((rx, tx, rx0, tx0, port));

    // A port receives every multicast frame (IPv6 neighbour solicitations come to solicited-
    // node groups): on a TAP device, as its kernel interface's ALLMULTI flag shows.
    let tap = Port::start(
        1,
        &PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            ..cfg
        },
        &pool,
    )
    .expect("net_tap0 starts");
    let flags = std::fs::read_to_string(format!("/sys/class/net/{tap_name}/flags"))
        .expect("the TAP's flags");
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).expect("hex flags");
    const IFF_ALLMULTI: u32 = 0x200;
    assert_ne!(
        flags & IFF_ALLMULTI,
        0,
        "all-multicast off: flags {flags:#x}"
    );
    drop(tap);

    // A port keeps the pool its RX queues take buffers from: the caller's handle dropped,
    // the pool stays (registered under its name) and the port receives from it (net_null
    // allocates in each receive); it is freed with the port.
    let own = Mempool::new("port-own", 1023, 0, None).expect("a pool");
    let null = Port::start(
        2,
        &PortConfig {
            rx_queues: 1,
            tx_queues: 1,
            ..cfg
        },
        &own,
    )
    .expect("net_null1 starts");
    drop(own);
    assert!(
        Mempool::new("port-own", 1023, 0, None).is_err(),
        "the port's pool was freed under it"
    );
    let mut rx = null.rx_queue(0);
    let mut received = MbufBurst::default();
    assert!(rx.burst(&mut received) > 0, "net_null receives");
    drop((received, rx, null));
    let again = Mempool::new("port-own", 1023, 0, None);
    assert!(again.is_ok(), "the pool was not freed with its port");
    drop(again);

    // A pool for ports on a socket without the memory (here, one with none at all) is taken
    // from any socket's instead of failing the start.
    assert!(
        Mempool::new("far", 1023, 0, Some(7)).is_err(),
        "socket 7 has memory"
    );
    let far = Mempool::near("far", 1023, 0, 7).expect("a pool from any socket");
    assert_eq!(far.available(), 1023);
    drop(far);

    // A buffer out when its pool is dropped: the pool stays, and the buffer still draws from
    // it (a sibling) and goes back to it.
    let before = pool.available();
    let out = Mbuf::alloc(&pool).expect("a buffer");
    assert_eq!(pool.available(), before - 1);
    drop(pool);
    // Still registered under its name: not freed (freed memory would go on being read).
    assert!(
        Mempool::new("handles", 1023, 0, None).is_err(),
        "the pool was freed with a buffer out"
    );
    let sibling = out.sibling().expect("the pool still gives buffers");
    drop((sibling, out));

    // The `Eal` dropped before a pool: EAL is left as it is while the pool lives (cleaned
    // up, it would unmap the memory under it), and the pool still gives buffers.
    let late = Mempool::new("late", 1023, 0, None).expect("a pool");
    drop(eal);
    let buffer = Mbuf::alloc(&late).expect("the pool outlives the Eal");
    drop(buffer);
    assert_eq!(late.available(), 1023);
    drop(late);
}
