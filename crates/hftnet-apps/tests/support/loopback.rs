//! An exchange and a feed handler in one process over loopback UDP, each on
//! its own thread: feeds A and B and the re-request channel on ports the
//! kernel picks, bound before the exchange sends its first packet. Shared by
//! the test binaries that include this file with `#[path]`.

use std::sync::atomic::AtomicBool;
use std::thread;

use hftnet_apps::Transports;
use hftnet_apps::exchange::{Exchange, ExchangeConfig, ExchangeReport};
use hftnet_apps::feed::{FeedHandlerApp, FeedHandlerConfig, FeedHandlerReport};
use hftnet_io::{AnyTransport, Endpoint, Role, Transport, dispatch};

/// What one run did, and what each loop allocated.
pub struct Run {
    pub exchange: ExchangeReport,
    pub feed: FeedHandlerReport,
    /// Allocations made by [`Exchange::run`] (the publishing loop).
    pub exchange_run_allocs: u64,
    /// Allocations made by [`FeedHandlerApp::run`] (the receiving loop).
    pub feed_run_allocs: u64,
    /// Allocations of each whole thread: set-up, loop and report.
    pub exchange_total_allocs: u64,
    pub feed_total_allocs: u64,
    /// Calls of the top-of-book callback.
    pub top_calls: u64,
}

fn open(uri: &str, role: Role) -> AnyTransport {
    Endpoint::parse(uri)
        .unwrap_or_else(|e| panic!("{uri}: {e}"))
        .open(role)
        .unwrap_or_else(|e| panic!("{uri}: {e}"))
}

fn local(t: &AnyTransport) -> std::net::SocketAddr {
    t.capabilities()
        .local
        .expect("a bound UDP socket has an address")
}

/// Runs `exchange` into `feed` over loopback UDP; `allocs` reads the calling
/// thread's allocation counter (return 0 when not counting).
pub fn exchange_to_feed(
    exchange: &ExchangeConfig,
    feed: &FeedHandlerConfig,
    allocs: fn() -> u64,
) -> Run {
    // The feed handler's sockets (servers: bound) and the exchange's
    // re-request server, on ports the kernel picks.
    let mut feed_a = open("udp://127.0.0.1:0?rcvbuf=4M", Role::Server);
    let mut feed_b = open("udp://127.0.0.1:0?rcvbuf=4M", Role::Server);
    let mut server = open("udp://127.0.0.1:0?rcvbuf=1M", Role::Server);
    let mut to_a = open(&format!("udp://{}", local(&feed_a)), Role::Client);
    let mut to_b = open(&format!("udp://{}", local(&feed_b)), Role::Client);
    let mut requests = open(&format!("udp://{}", local(&server)), Role::Client);
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let feed_thread = s.spawn(|| {
            let start = allocs();
            let mut app = FeedHandlerApp::new(feed).unwrap();
            let mut top_calls = 0u64;
            let before = allocs();
            // The feeds' concrete types, as a CLI would dispatch them.
            dispatch!(&mut feed_a, a => dispatch!(&mut feed_b, b => {
                let io = Transports::new().feed_a(a).feed_b(b).retransmit(&mut requests);
                app.run(io, &stop, &mut |_| top_calls += 1).unwrap()
            }));
            let run = allocs() - before;
            let report = app.report();
            (report, run, allocs() - start, top_calls)
        });
        let start = allocs();
        let mut ex = Exchange::new(exchange).unwrap();
        let before = allocs();
        dispatch!(&mut to_a, a => dispatch!(&mut to_b, b => {
            ex.run(Transports::new().feed_a(a).feed_b(b).retransmit(&mut server), &stop)
                .unwrap()
        }));
        let exchange_run_allocs = allocs() - before;
        let exchange = ex.report();
        let exchange_total_allocs = allocs() - start;
        let (feed, feed_run_allocs, feed_total_allocs, top_calls) = feed_thread.join().unwrap();
        Run {
            exchange,
            feed,
            exchange_run_allocs,
            feed_run_allocs,
            exchange_total_allocs,
            feed_total_allocs,
            top_calls,
        }
    })
}
