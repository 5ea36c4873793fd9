//! A feed handler on any transport URI, as a library user writes it:
//! `cargo run -p hftnet-apps --example feed -- 'mcast://239.1.1.1:30001?iface=veth0'`
//! (feed A; gaps are reported lost). It prints the report as JSON.

use std::sync::atomic::AtomicBool;

use hftnet_apps::Transports;
use hftnet_apps::feed::{FeedHandlerConfig, run_feed_handler};
use hftnet_io::{Endpoint, Role, dispatch};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let uri = std::env::args()
        .nth(1)
        .unwrap_or("udp://127.0.0.1:30001".into());
    let mut feed = Endpoint::parse(&uri)?.open(Role::Server)?;
    let cfg = FeedHandlerConfig {
        recovery: false,
        ..FeedHandlerConfig::default()
    };
    let (stop, mut on_top) = (AtomicBool::new(false), |_: &_| {});
    let report = dispatch!(&mut feed, t => {
        run_feed_handler(&cfg, Transports::new().feed_a(t), &stop, &mut on_top)
    })?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
