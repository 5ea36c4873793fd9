//! The shared-memory ring's own costs, one thread, lines in cache: what a
//! 64-byte publish and a 64-byte read cost before any cache line crosses
//! between CPUs (the cross-CPU figures are `scripts/bench-shm.sh`'s).
//!
//! `cargo bench -p hftnet-io --bench shm`

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hftnet_io::RxStrategy;
use hftnet_io::shm::{Poll, Publisher, Subscriber};

const BATCH: u64 = 2048;

fn ring(c: &mut Criterion) {
    let name = format!("bench-{}", std::process::id());
    let dir = Path::new("/dev/shm");
    let mut p = Publisher::create(dir, &name, 4096, 64, 0o600).expect("creating the ring");
    let mut s = Subscriber::attach(dir, &name, RxStrategy::Spin).expect("attaching");
    let msg = [7u8; 64];
    let mut buf = [0u8; 64];
    let mut g = c.benchmark_group("shm");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("publish_64B", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                p.publish(black_box(&msg)).expect("64 bytes fit");
            }
        });
    });
    g.bench_function("publish_then_read_64B", |b| {
        b.iter(|| {
            // Start where the writer is (the publish bench lapped us).
            while let Poll::Lapped { .. } | Poll::Message(_) = s.try_recv(&mut buf) {}
            for _ in 0..BATCH {
                p.publish(black_box(&msg)).expect("64 bytes fit");
            }
            let mut got = 0;
            while let Poll::Message(n) = s.try_recv(&mut buf) {
                got += n;
            }
            black_box(got)
        });
    });
    g.finish();
}

criterion_group!(benches, ring);
criterion_main!(benches);
