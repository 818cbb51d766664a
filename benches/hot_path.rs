//! Criterion benches of the per-packet pieces (DESIGN §9): flow hash, Maglev build (10, 100,
//! 1000 backends) and lookup, flow-table hit and miss at 64k and 1M flows in random order,
//! parse (slow and fast path), and a whole burst ([`BURST`] packets) through the worker's
//! pipeline without DPDK. `cargo bench --bench hot_path`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use haports::dataplane::pipeline::{
    classify_burst, decide_burst, prefetch_buckets_again, Classified,
};
use haports::dataplane::{process_burst, Action, NeighbourReports, Spill, WorkerState};
use haports::dpdk::{prefetch, BURST};
use haports::lb::flow::FlowKey;
use haports::lb::flow_table::{FlowTable, V4Key};
use haports::lb::hash::symmetric_hash;
use haports::lb::maglev::{instance_id, MaglevBackend, MaglevTable, TableSize};
use haports::lb::verdict::DropReason;

#[path = "support/burst.rs"]
mod support;
use support::{forwarding, udp_frame};

const SEED: u64 = 0x5eed;
const FLOW_TABLE_CAPACITY: usize = 1 << 20;
const IDLE_TIMEOUT_MS: u64 = 240_000;

/// A distinct TCP flow per `n`, client side varying as in real traffic.
fn flow(n: u32) -> FlowKey {
    FlowKey {
        proto: 6,
        src: IpAddr::from((0x0a00_0000 | (n >> 4)).to_be_bytes()),
        dst: IpAddr::from([10, 255, 0, 100]),
        src_port: 1024 + (n & 0xf) as u16 * 4000,
        dst_port: 443,
    }
}

fn flows(count: u32) -> Vec<(FlowKey, u64)> {
    (0..count)
        .map(|n| {
            let key = flow(n);
            (key, symmetric_hash(&key, SEED))
        })
        .collect()
}

fn pool(n: usize) -> Vec<MaglevBackend> {
    (0..n)
        .map(|i| MaglevBackend {
            id: instance_id(&format!("10.0.0.{}", 11 + i)),
            weight: 1,
        })
        .collect()
}

fn hash(c: &mut Criterion) {
    let mut group = c.benchmark_group("symmetric_hash");
    group.throughput(Throughput::Elements(1));
    let v4: FlowKey = "tcp 10.0.0.1:40000 10.0.0.100:443".parse().unwrap();
    let v6: FlowKey = "udp [2001:db8::1]:40000 [2001:db8::100]:53"
        .parse()
        .unwrap();
    group.bench_function("ipv4", |b| {
        b.iter(|| symmetric_hash(black_box(&v4), black_box(SEED)))
    });
    group.bench_function("ipv6", |b| {
        b.iter(|| symmetric_hash(black_box(&v6), black_box(SEED)))
    });
    group.finish();
}

fn maglev(c: &mut Criterion) {
    let mut group = c.benchmark_group("maglev/build");
    group.sample_size(10);
    for n in [10, 100, 1000] {
        let backends = pool(n);
        group.bench_function(BenchmarkId::new("65537", n), |b| {
            b.iter(|| MaglevTable::build(black_box(&backends), TableSize::DEFAULT))
        });
    }
    group.finish();

    let backends = pool(10);
    let table = MaglevTable::build(&backends, TableSize::DEFAULT);
    let hashes: Vec<u64> = flows(4096).into_iter().map(|(_, h)| h).collect();
    let mut group = c.benchmark_group("maglev/lookup");
    group.throughput(Throughput::Elements(1));
    group.bench_function("65537x10", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % hashes.len();
            table.lookup(black_box(hashes[i]))
        })
    });
    group.finish();
}

/// `count` distinct IPv4 flows as table keys with their hashes, in a random order (a real
/// link does not replay the table in insertion order).
fn v4_flows(count: u32) -> Vec<(V4Key, u64)> {
    let mut keys: Vec<(V4Key, u64)> = flows(count)
        .into_iter()
        .map(|(k, h)| {
            let (IpAddr::V4(s), IpAddr::V4(d)) = (k.src, k.dst) else {
                unreachable!("IPv4 flows")
            };
            let key = V4Key::new(k.proto, s.into(), k.src_port, d.into(), k.dst_port);
            // Where the tables below (keyed 0) place it.
            let _ = h;
            (key, haports::lb::hash::table_hash_v4(&key, 0))
        })
        .collect();
    // A fixed shuffle (xorshift), the same every run.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in (1..keys.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        keys.swap(i, (x % (i as u64 + 1)) as usize);
    }
    keys
}

fn flow_table(c: &mut Criterion) {
    let mut group = c.benchmark_group("flow_table");
    for live in [65_536u32, 1 << 20] {
        // The default capacity a user gets; `live` flows held, looked up in random order
        // a burst at a time: hash known, both buckets prefetched, then the lookups.
        let keys = v4_flows(live);
        let mut table = FlowTable::with_capacity(FLOW_TABLE_CAPACITY);
        let held = keys
            .iter()
            .enumerate()
            .filter(|(i, (key, hash))| {
                table
                    .insert(*key, *hash, *i as u32, 0, IDLE_TIMEOUT_MS)
                    .is_some()
            })
            .count();
        eprintln!("flow_table: {held} of {live} flows held at capacity {FLOW_TABLE_CAPACITY}");
        group.throughput(Throughput::Elements(BURST as u64));
        group.bench_function(BenchmarkId::new("hit_burst", live), |b| {
            let mut at = 0usize;
            b.iter(|| {
                let burst = &keys[at..at + BURST];
                at = (at + BURST) % (keys.len() - BURST);
                for (_, hash) in burst {
                    prefetch(table.first_bucket_of(*hash));
                }
                let mut found = 0u32;
                for (key, hash) in burst {
                    if let Some(s) = table.find(black_box(key), *hash, 1) {
                        found = found.wrapping_add(table.value(s));
                        table.refresh(s, table.value(s), 1, IDLE_TIMEOUT_MS);
                    }
                }
                found
            })
        });
        // New flows: a miss, then remembered; the oldest is forgotten so the table holds
        // `live` flows however many iterations criterion runs.
        let ring = v4_flows(live + live / 2);
        let mut table = FlowTable::with_capacity(FLOW_TABLE_CAPACITY);
        for (i, (key, hash)) in ring[..live as usize].iter().enumerate() {
            table.insert(*key, *hash, i as u32, 0, IDLE_TIMEOUT_MS);
        }
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::new("miss_insert", live), |b| {
            let mut next = live as usize;
            b.iter(|| {
                let (old_key, old_hash) = &ring[(next + ring.len() - live as usize) % ring.len()];
                table.remove(old_key, *old_hash);
                let (key, hash) = &ring[next];
                let miss = table.find(black_box(key), *hash, 1);
                table.insert(*key, *hash, next as u32, 1, IDLE_TIMEOUT_MS);
                next = (next + 1) % ring.len();
                miss
            })
        });
    }
    group.finish();
}

/// A 64-byte TCP SYN frame to a frontend, as a client sends it.
fn syn_frame() -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&[10, 0, 1, 10]);
    ip[16..20].copy_from_slice(&[10, 0, 0, 100]);
    let tcp = &mut f[34..54];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&443u16.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = 0x02;
    f
}

fn parse(c: &mut Criterion) {
    let frame = syn_frame();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("parse_headers/ipv4_tcp", |b| {
        b.iter(|| haports::wire::parse_headers(black_box(&frame)))
    });
    g.bench_function("fast/ipv4_tcp", |b| {
        b.iter(|| haports::wire::parse_ipv4_fast(black_box(&frame)))
    });
    g.finish();
}

/// A whole burst ([`BURST`] packets) of UDP to an HA-ports frontend (NAT) through the worker's
/// pipeline without DPDK: `flows` distinct flows already in the flow table, visited in random order.
fn burst(c: &mut Criterion) {
    let fwd = forwarding(false);
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(BURST as u64));
    for count in [1000u32, 65_536, 1 << 20] {
        let frames: Vec<Vec<u8>> = v4_flows(count)
            .iter()
            .map(|(k, _)| udp_frame((k.addrs >> 32) as u32, (k.ports >> 16) as u16))
            .collect();
        let mut st = WorkerState::new(FLOW_TABLE_CAPACITY, NeighbourReports::new_queue());
        let mut actions = [Action::Drop(DropReason::Unsupported); BURST];
        let mut spill = Spill::with_capacity(BURST);
        for chunk in frames.chunks(BURST) {
            let mut burst: Vec<Vec<u8>> = chunk.to_vec();
            process_burst(&mut burst, 0, &mut st, &fwd, 0, &mut actions, &mut spill);
        }
        let mut burst: Vec<Vec<u8>> = frames[..BURST].to_vec();
        group.bench_function(BenchmarkId::new("nat_udp_burst", count), |b| {
            let mut at = 0usize;
            b.iter(|| {
                for (dst, src) in burst.iter_mut().zip(&frames[at..at + BURST]) {
                    dst.copy_from_slice(src);
                }
                at = (at + BURST) % (frames.len() - BURST);
                process_burst(&mut burst, 0, &mut st, &fwd, 1, &mut actions, &mut spill);
                actions[0]
            })
        });
        // As the worker runs the stages: the next burst classified, this one decided, the
        // next one's buckets requested again where the table is large enough for that to pay.
        let mut lanes = [frames[..BURST].to_vec(), frames[..BURST].to_vec()];
        let mut found = [Classified::default(), Classified::default()];
        classify_burst(&mut lanes[0], 0, &st, &fwd, &mut found[0]);
        group.bench_function(BenchmarkId::new("nat_udp_burst_ahead", count), |b| {
            let (mut at, mut next) = (BURST, 1usize);
            b.iter(|| {
                let [a, b] = &mut lanes;
                let (new, waiting) = if next == 0 { (a, b) } else { (b, a) };
                for (dst, src) in new.iter_mut().zip(&frames[at..at + BURST]) {
                    dst.copy_from_slice(src);
                }
                at = (at + BURST) % (frames.len() - BURST);
                let [fa, fb] = &mut found;
                let (found_new, found_waiting) = if next == 0 { (fa, fb) } else { (fb, fa) };
                classify_burst(new, 0, &st, &fwd, found_new);
                decide_burst(
                    waiting,
                    found_waiting,
                    &mut st,
                    &fwd,
                    1,
                    &mut actions,
                    &mut spill,
                );
                prefetch_buckets_again(found_new, &st);
                next ^= 1;
                actions[0]
            })
        });
    }
    group.finish();
}

criterion_group!(benches, hash, maglev, flow_table, parse, burst);
criterion_main!(benches);
