//! Zero heap allocations per market-data message and per order on the
//! taker's path (`trader_alloc.rs` runs the market maker: quotes, replaces
//! and cancels; this one the taker of the lab's tick-to-trade table: an IOC
//! Enter Order on every one-tick move of a top, each filled): with a
//! counting global allocator (per thread), the trader's thread — feed
//! handler, books, strategy, risk, OUCH encode, SoupBinTCP session, sends,
//! executions, position — allocates exactly as often for a day ten times
//! longer, with more orders and fills — with and without the orders'
//! transmit stamps (`timestamps=tx`, read from the error queue).

use std::sync::atomic::AtomicBool;

#[path = "../../hftnet-bench/tests/support/counting_alloc.rs"]
mod counting_alloc;
#[allow(dead_code)]
#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/order_server.rs"]
mod order_server;
#[path = "support/trader_run.rs"]
mod trader_run;

use counting_alloc::allocs;
use order_server::{OrderServer, Script};
use trader_run::{config, loose_risk, run_counting, state_path, taker};

#[test]
fn the_taker_allocates_nothing_per_message_or_order() {
    for params in ["", "?timestamps=tx"] {
        allocates_nothing(params);
    }
}

fn allocates_nothing(params: &str) {
    let mut seen = Vec::new();
    for messages in [4_000u64, 40_000] {
        let srv = OrderServer::start(Script {
            fill: true,
            ..Script::default()
        });
        let (_dir, state) = state_path(&format!("taker-alloc-{messages}"));
        let mut cfg = config(&format!("{}{params}", srv.uri()), &state, loose_risk());
        // One mark covers the whole run: the state file is written once.
        cfg.trader.ref_block = 1_000_000;
        let kill = AtomicBool::new(false);
        let (run, sent, n) = run_counting(messages, &cfg, taker(&cfg), &kill, allocs);
        let log = srv.stop();
        let r = &run.report;
        assert_eq!(r.feed.delivered, sent);
        assert!(r.orders.enters > 0 && r.orders.executions > 0, "{r:?}");
        // Only enters: the taker neither replaces nor cancels.
        assert_eq!(r.orders.sent, r.orders.enters, "{r:?}");
        assert_eq!(r.orders.enters, log.enters.len() as u64);
        assert_eq!(r.orders.accepted, r.orders.enters, "{r:?}");
        assert_eq!(run.tick_to_trade.len(), r.orders.enters, "{r:?}");
        assert_eq!(run.tick_to_send_call.len(), r.orders.enters, "{r:?}");
        assert_eq!(r.tx_stamps.missing, 0, "{r:?}");
        eprintln!(
            "{params:?}: {sent} messages, {} orders, {} fills, risk refusals {:?}: {n} \
             allocations on the trader's thread",
            r.orders.sent,
            r.orders.executions,
            r.risk_refusals
                .iter()
                .filter(|(_, n)| *n > 0)
                .collect::<Vec<_>>()
        );
        seen.push((n, r.orders.sent));
    }
    // The scripted server fills without touching the feed's books, so the
    // taker fires mostly while they build: both days send orders (each
    // run asserts it above), the long one 36 000 more messages; how many
    // more orders depends on the timing of the fills (under load the long
    // day has sent fewer), so the count of orders is not compared.
    assert_eq!(
        seen[0].0, seen[1].0,
        "{params:?}: allocations (short, long): {seen:?}"
    );
}
