//! SoupBinTCP codec throughput, in frames per second: a 48-byte message
//! framed as Sequenced Data (header written, payload copied), a frame parsed
//! into its `Repr`, and a stream of frames split from 1,460-byte TCP-sized
//! chunks and parsed.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hftnet_wire::soupbintcp::{FrameSplitter, Repr, packet_type, write_header};

const MSG: [u8; 48] = [b'O'; 48];
const FRAMES: usize = 1000;

fn stream() -> Vec<u8> {
    let mut out = vec![0u8; FRAMES * (MSG.len() + 3)];
    let mut at = 0;
    for _ in 0..FRAMES {
        at += Repr::SequencedData(&MSG)
            .emit(&mut out[at..])
            .expect("fits");
    }
    out
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("soupbintcp");
    g.throughput(Throughput::Elements(1));
    let mut buf = [0u8; 64];
    g.bench_function("frame_sequenced_48", |b| {
        b.iter(|| {
            let n = write_header(&mut buf, packet_type::SEQUENCED_DATA, MSG.len()).expect("fits");
            buf[3..n].copy_from_slice(black_box(&MSG));
            black_box(n)
        });
    });
    let frame = &stream()[..MSG.len() + 3];
    g.bench_function("parse_sequenced_48", |b| {
        b.iter(|| black_box(Repr::parse_frame(black_box(frame))))
    });

    let wire = stream();
    let mut s = FrameSplitter::new(4096);
    g.throughput(Throughput::Elements(FRAMES as u64));
    g.bench_function("split_and_parse_1000", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for mut chunk in wire.chunks(1460) {
                while !chunk.is_empty() {
                    let took = s.feed(chunk);
                    chunk = &chunk[took..];
                    while let Some(f) = s.next_frame().expect("well-formed") {
                        if let Ok(Repr::SequencedData(m)) = Repr::parse_frame(f) {
                            n += m.len();
                        }
                    }
                }
            }
            assert_eq!(n, FRAMES * MSG.len());
            black_box(n)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
