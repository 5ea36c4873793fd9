//! The fault middleware on real transports: with a fixed seed, `loss=0.05`
//! drops the same messages every run, as many as the binomial bounds allow;
//! another seed drops others; duplicates, reordering, delays and faults on
//! receives do what they say, and the capabilities count it all. Over
//! in-process `mem://` pairs (nothing else can lose a message) and over
//! loopback UDP.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hftnet_io::{AnyTransport, Endpoint, Role, RxBurst, Transport};
use hftnet_wire::faults::binomial_bounds;

const N: u32 = 10_000;

fn open(uri: &str, role: Role) -> AnyTransport {
    let mut t = Endpoint::parse(uri)
        .unwrap_or_else(|e| panic!("{uri}: {e}"))
        .open(role)
        .unwrap_or_else(|e| panic!("{uri}: {e}"));
    t.set_recv_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    t
}

/// Receives numbered messages until `idle` passes with nothing; returns
/// them in arrival order.
fn drain(t: &mut AnyTransport, idle: Duration) -> Vec<u32> {
    let mut b = RxBurst::new(64, 64);
    let mut got = Vec::new();
    let mut last = Instant::now();
    let end = Instant::now() + Duration::from_secs(30);
    while last.elapsed() < idle && Instant::now() < end {
        let n = t.recv_burst(&mut b).unwrap();
        if n > 0 {
            last = Instant::now();
        }
        for i in 0..n {
            let d = b.get(i).0;
            got.push(u32::from_le_bytes([d[0], d[1], d[2], d[3]]));
        }
    }
    got
}

fn faults_tx(t: &AnyTransport) -> hftnet_io::middleware::FaultCounters {
    t.capabilities()
        .middleware
        .and_then(|m| m.faults_tx)
        .expect("the fault middleware reports its sends")
}

/// Sends 0..N over a `mem://` pair whose client has `faults`; returns the
/// messages the server received, in order, and the client's counters.
fn through_mem(name: &str, faults: &str) -> (Vec<u32>, hftnet_io::middleware::FaultCounters) {
    let uri = format!("mem://{name}?slots=32768");
    let mut server = open(&uri, Role::Server);
    let mut client = open(&format!("{uri}&{faults}"), Role::Client);
    for i in 0..N {
        client.send(&i.to_le_bytes(), None).unwrap();
    }
    client.release_held().unwrap();
    let got = drain(&mut server, Duration::from_millis(300));
    (got, faults_tx(&client))
}

fn missing(got: &[u32]) -> BTreeSet<u32> {
    let have: BTreeSet<u32> = got.iter().copied().collect();
    (0..N).filter(|i| !have.contains(i)).collect()
}

#[test]
fn loss_with_a_seed_drops_the_same_messages_every_run() {
    let (a, fa) = through_mem("faults-loss-1", "loss=0.05&faults_on=tx&seed=7");
    let (b, _) = through_mem("faults-loss-2", "loss=0.05&faults_on=tx&seed=7");
    let (c, _) = through_mem("faults-loss-3", "loss=0.05&faults_on=tx&seed=8");
    let (ma, mb, mc) = (missing(&a), missing(&b), missing(&c));
    assert_eq!(ma, mb, "the same seed drops the same messages");
    assert_ne!(ma, mc, "another seed drops others");
    let (lo, hi) = binomial_bounds(u64::from(N), 0.05, 5.0);
    for m in [&ma, &mc] {
        assert!(
            (lo..=hi).contains(&(m.len() as u64)),
            "{} dropped, outside {lo}..={hi}",
            m.len()
        );
    }
    assert_eq!(fa.messages, u64::from(N));
    assert_eq!(fa.dropped, ma.len() as u64, "counted as dropped: {fa:?}");
    // Loss alone keeps the order of what passes.
    assert!(a.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn duplicates_and_reordering_are_exact_and_counted() {
    let (got, f) = through_mem("faults-dup", "dup=0.1&reorder=0.1&seed=3&faults_on=tx");
    assert!(missing(&got).is_empty(), "nothing lost");
    assert_eq!(got.len() as u64, u64::from(N) + f.duplicated, "{f:?}");
    let (lo, hi) = binomial_bounds(u64::from(N), 0.1, 5.0);
    assert!((lo..=hi).contains(&f.duplicated), "{f:?}");
    assert!(f.reordered > 0, "{f:?}");
    let swapped = got.windows(2).filter(|w| w[0] > w[1]).count() as u64;
    assert!(swapped > 0 && swapped <= f.reordered, "{swapped} {f:?}");
}

#[test]
fn delayed_sends_arrive_no_earlier_than_the_delay_and_all_arrive() {
    let uri = "mem://faults-delay?slots=1024";
    let mut server = open(uri, Role::Server);
    let mut client = open(&format!("{uri}&delay=20ms&faults_on=tx"), Role::Client);
    let sent = Instant::now();
    for i in 0..100u32 {
        client.send(&i.to_le_bytes(), None).unwrap();
    }
    let mut b = RxBurst::new(128, 64);
    assert_eq!(
        server.recv_burst_until(&mut b, Instant::now()).unwrap(),
        0,
        "held back"
    );
    // A receive on the sending end wakes for the delayed messages and sends them.
    let mut c = RxBurst::new(4, 64);
    client
        .recv_burst_until(&mut c, Instant::now() + Duration::from_millis(200))
        .unwrap();
    let got = drain(&mut server, Duration::from_millis(200));
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert!(sent.elapsed() >= Duration::from_millis(20));
    let f = faults_tx(&client);
    assert_eq!((f.delayed, f.released, f.overflow), (100, 100, 0), "{f:?}");
}

#[test]
fn reordering_does_not_cut_delays_short() {
    let uri = "mem://faults-delay-reorder?slots=1024";
    let mut server = open(uri, Role::Server);
    let mut client = open(
        &format!("{uri}&delay=20ms&reorder=0.3&seed=4&faults_on=tx"),
        Role::Client,
    );
    let sent = Instant::now();
    let mut c = RxBurst::new(4, 64);
    for i in 0..100u32 {
        client.send(&i.to_le_bytes(), None).unwrap();
        // Pass more than the 1 ms a reordered message waits for a next
        // one, a few times, well within the 20 ms delay.
        if i % 25 == 0 {
            client
                .recv_burst_until(&mut c, Instant::now() + Duration::from_millis(2))
                .unwrap();
        }
    }
    let mut b = RxBurst::new(128, 64);
    let early = server.recv_burst_until(&mut b, Instant::now()).unwrap();
    let checked = sent.elapsed() < Duration::from_millis(19);
    if checked {
        assert_eq!(early, 0, "a delayed message left before its time");
    }
    let mut got: Vec<u32> = (0..early)
        .map(|i| {
            let d = b.get(i).0;
            u32::from_le_bytes([d[0], d[1], d[2], d[3]])
        })
        .collect();
    client
        .recv_burst_until(&mut c, Instant::now() + Duration::from_millis(100))
        .unwrap();
    client.release_held().unwrap();
    got.extend(drain(&mut server, Duration::from_millis(200)));
    got.sort_unstable();
    assert_eq!(got, (0..100).collect::<Vec<_>>(), "all arrive, none twice");
    assert!(faults_tx(&client).reordered > 0);
    // On a machine that stalled the loop past the delay there was nothing
    // to check early; say so rather than pass quietly.
    if !checked {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "reordering_does_not_cut_delays_short: the loop took {:?}, the early check was \
             not made",
            sent.elapsed()
        );
    }
}

#[test]
fn a_message_too_long_is_refused_and_held_ones_are_kept() {
    let uri = "mem://faults-too-long?size=64";
    let mut server = open(uri, Role::Server);
    let mut client = open(&format!("{uri}&reorder=1&faults_on=tx"), Role::Client);
    client.send(b"held", None).unwrap();
    let e = client.send(&[0u8; 100], None).unwrap_err();
    assert_eq!(e.errno(), Some(libc::EMSGSIZE), "{e}");
    client.release_held().unwrap();
    let mut b = RxBurst::new(8, 64);
    assert_eq!(server.recv_burst(&mut b).unwrap(), 1);
    assert_eq!(b.get(0).0, b"held");
}

#[test]
fn held_message_buffers_are_bounded() {
    let e = Endpoint::parse("udp://127.0.0.1:0?loss=0.1&fault_slots=1048576")
        .unwrap()
        .open(Role::Server)
        .unwrap_err()
        .to_string();
    assert!(e.contains("fault_slots") && e.contains("1 GiB"), "{e}");
}

#[test]
fn faults_on_receives_and_over_udp() {
    // Loss on the receiving end of a loopback UDP pair.
    let mut server = open(
        "udp://127.0.0.1:0?rcvbuf=4M&loss=0.05&faults_on=rx&seed=5",
        Role::Server,
    );
    let addr = server.capabilities().local.unwrap();
    let mut client = open(&format!("udp://{addr}"), Role::Client);
    let mut got = Vec::new();
    for chunk in 0..(N / 500) {
        for i in chunk * 500..(chunk + 1) * 500 {
            client.send(&i.to_le_bytes(), None).unwrap();
        }
        got.extend(drain(&mut server, Duration::from_millis(50)));
    }
    let f = server
        .capabilities()
        .middleware
        .and_then(|m| m.faults_rx)
        .unwrap();
    assert_eq!(f.messages, u64::from(N), "{f:?}");
    assert_eq!(missing(&got).len() as u64, f.dropped);
    let (lo, hi) = binomial_bounds(u64::from(N), 0.05, 5.0);
    assert!((lo..=hi).contains(&f.dropped), "{f:?}");
}

#[test]
fn bad_fault_parameters_are_named() {
    for (uri, want) in [
        ("mem://x?loss=2", "a probability from 0 to 1"),
        ("mem://x?seed=4", "only with a fault"),
        ("udp://127.0.0.1:9?delay=soon", "a duration such as 50us"),
        ("udp://127.0.0.1:9?pcap_max=1M", "only with pcap=FILE"),
        ("udp://127.0.0.1:9?bogus=1", "loss, dup, reorder"),
    ] {
        let e = Endpoint::parse(uri).unwrap_err().to_string();
        assert!(e.contains(want), "{uri}: {e}");
    }
    let e = Endpoint::parse("udp://127.0.0.1:9?pcap=/nonexistent/dir/x.pcap")
        .unwrap()
        .open(Role::Client)
        .unwrap_err()
        .to_string();
    assert!(e.contains("cannot create the capture file"), "{e}");
}
