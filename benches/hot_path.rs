//! Criterion benches of the per-packet pieces (DESIGN §9): flow hash, Maglev build and lookup,
//! flow-table hit and miss. `cargo bench --bench hot_path`.

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use haports::lb::flow::FlowKey;
use haports::lb::flow_table::FlowTable;
use haports::lb::hash::symmetric_hash;
use haports::lb::maglev::{instance_id, MaglevBackend, MaglevTable, TableSize};

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
    let backends = pool(10);
    c.bench_function("maglev/build/65537x10", |b| {
        b.iter(|| MaglevTable::build(black_box(&backends), TableSize::DEFAULT))
    });

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

fn flow_table(c: &mut Criterion) {
    let mut group = c.benchmark_group("flow_table");
    group.throughput(Throughput::Elements(1));

    // Hits in a table three-quarters full, keys visited in an order the prefetcher cannot
    // guess (stride coprime with the count).
    let live = (FLOW_TABLE_CAPACITY / 4 * 3) as u32;
    let keys = flows(live);
    let mut table = FlowTable::with_capacity(FLOW_TABLE_CAPACITY);
    for (i, (key, hash)) in keys.iter().enumerate() {
        assert!(table.insert(*key, *hash, i as u32, 0, IDLE_TIMEOUT_MS));
    }
    group.bench_function(BenchmarkId::new("hit", FLOW_TABLE_CAPACITY), |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 7919) % keys.len();
            let (key, hash) = &keys[i];
            table.lookup(black_box(key), *hash, 1)
        })
    });

    // A new flow: lookup misses, insert remembers it; the oldest flow is removed so the table
    // stays three-quarters full however many iterations criterion runs.
    let ring = flows(live + live / 2);
    let mut table = FlowTable::with_capacity(FLOW_TABLE_CAPACITY);
    for (i, (key, hash)) in ring[..live as usize].iter().enumerate() {
        table.insert(*key, *hash, i as u32, 0, IDLE_TIMEOUT_MS);
    }
    group.bench_function(
        BenchmarkId::new("miss_insert_evict", FLOW_TABLE_CAPACITY),
        |b| {
            let mut next = live as usize;
            b.iter(|| {
                let (key, hash) = &ring[next];
                let miss = table.lookup(black_box(key), *hash, 1);
                table.insert(*key, *hash, next as u32, 1, IDLE_TIMEOUT_MS);
                let (old_key, old_hash) = &ring[(next + ring.len() - live as usize) % ring.len()];
                table.remove(old_key, *old_hash);
                next = (next + 1) % ring.len();
                miss
            })
        },
    );
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
    g.finish();
}

criterion_group!(benches, hash, maglev, flow_table, parse);
criterion_main!(benches);
