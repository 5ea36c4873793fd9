//! An exchange and a feed handler in one process, each on its own thread,
//! over loopback UDP (feeds A and B and the re-request channel on ports the
//! kernel picks, bound before the exchange sends its first packet) or over
//! in-process `mem://` pairs; the feed handler publishing its market-data
//! records when given a transport for them. Shared by the test binaries
//! that include this file with `#[path]`.

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

/// The six transports of a run: the feed handler's feeds and re-request
/// client, the exchange's feeds and re-request server.
pub struct Ends {
    pub feed_a: AnyTransport,
    pub feed_b: AnyTransport,
    pub requests: AnyTransport,
    pub to_a: AnyTransport,
    pub to_b: AnyTransport,
    pub server: AnyTransport,
}

/// Loopback UDP on ports the kernel picks, the exchange's feed transports
/// opened with the URI parameters `faults` (the fault middleware, e.g.
/// `loss=0.05&faults_on=tx`).
pub fn udp_ends(faults: &str) -> Ends {
    // The feed handler's sockets (servers: bound) and the exchange's
    // re-request server, on ports the kernel picks.
    let feed_a = open("udp://127.0.0.1:0?rcvbuf=4M", Role::Server);
    let feed_b = open("udp://127.0.0.1:0?rcvbuf=4M", Role::Server);
    let server = open("udp://127.0.0.1:0?rcvbuf=1M", Role::Server);
    let to_a = open(
        &format!("udp://{}?{faults}&seed=11", local(&feed_a)),
        Role::Client,
    );
    let to_b = open(
        &format!("udp://{}?{faults}&seed=12", local(&feed_b)),
        Role::Client,
    );
    let requests = open(&format!("udp://{}", local(&server)), Role::Client);
    Ends {
        feed_a,
        feed_b,
        requests,
        to_a,
        to_b,
        server,
    }
}

/// In-process `mem://` pairs named after `name`, the exchange's feed
/// transports opened with the URI parameters `faults`.
pub fn mem_ends(name: &str, faults: &str) -> Ends {
    let q = "slots=65536";
    Ends {
        feed_a: open(&format!("mem://{name}-a?{q}"), Role::Server),
        feed_b: open(&format!("mem://{name}-b?{q}"), Role::Server),
        server: open(&format!("mem://{name}-rr?{q}"), Role::Server),
        to_a: open(
            &format!("mem://{name}-a?{q}&{faults}&seed=11"),
            Role::Client,
        ),
        to_b: open(
            &format!("mem://{name}-b?{q}&{faults}&seed=12"),
            Role::Client,
        ),
        requests: open(&format!("mem://{name}-rr?{q}"), Role::Client),
    }
}

/// Runs `exchange` into `feed` over loopback UDP (see [`udp_ends`]);
/// `allocs` reads the calling thread's allocation counter (return 0 when
/// not counting).
pub fn exchange_to_feed(
    exchange: &ExchangeConfig,
    feed: &FeedHandlerConfig,
    faults: &str,
    allocs: fn() -> u64,
) -> Run {
    exchange_to_feed_over(exchange, feed, udp_ends(faults), allocs)
}

/// Runs `exchange` into `feed` over `ends`, each on its own thread.
pub fn exchange_to_feed_over(
    exchange: &ExchangeConfig,
    feed: &FeedHandlerConfig,
    ends: Ends,
    allocs: fn() -> u64,
) -> Run {
    exchange_to_feed_publishing(exchange, feed, ends, None, allocs)
}

/// Runs `exchange` into `feed` over `ends`, each on its own thread, the
/// feed handler publishing its market-data records on `publish` if given.
pub fn exchange_to_feed_publishing(
    exchange: &ExchangeConfig,
    feed: &FeedHandlerConfig,
    ends: Ends,
    publish: Option<&mut AnyTransport>,
    allocs: fn() -> u64,
) -> Run {
    let Ends {
        mut feed_a,
        mut feed_b,
        mut requests,
        mut to_a,
        mut to_b,
        mut server,
    } = ends;
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
                let io = match publish {
                    Some(p) => dispatch!(p, p => io.publish(p)),
                    None => io,
                };
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
