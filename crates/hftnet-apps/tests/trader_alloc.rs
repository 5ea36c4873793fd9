//! Zero heap allocations per market-data message and per order in the
//! trader: with a counting global allocator (per thread), the trader's
//! thread — feed handler, books, strategy, risk, OUCH encode, SoupBinTCP
//! session, sends, exchange answers, position — allocates exactly as often
//! for a day ten times longer (with ten times the orders and fills). Its
//! allocations are the set-up (books, tables, histograms, buffers, the
//! connection), the price levels each book reserves when a stock directory
//! activates it, and the report.

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
use trader_run::{config, loose_risk, maker, run_counting, state_path};

#[test]
fn trader_allocates_nothing_per_message_or_order() {
    let mut seen = Vec::new();
    for messages in [4_000u64, 40_000] {
        let srv = OrderServer::start(Script {
            fill: true,
            ..Script::default()
        });
        let (_dir, state) = state_path(&format!("alloc-{messages}"));
        let mut cfg = config(&srv.uri(), &state, loose_risk());
        // One mark covers the whole run: the state file is written once.
        cfg.trader.ref_block = 1_000_000;
        let kill = AtomicBool::new(false);
        let (run, sent, n) = run_counting(messages, &cfg, maker(&cfg), &kill, allocs);
        let log = srv.stop();
        let r = &run.report;
        assert_eq!(r.feed.delivered, sent);
        assert!(r.orders.sent > 0 && r.orders.executions > 0);
        assert_eq!(r.orders.enters, log.enters.len() as u64);
        eprintln!(
            "{sent} messages, {} orders ({} replaces, {} cancels), {} fills: {n} allocations \
             on the trader's thread",
            r.orders.sent, r.orders.replaces, r.orders.cancels, r.orders.executions
        );
        seen.push((n, r.orders.sent));
    }
    assert!(
        seen[1].1 > 2 * seen[0].1,
        "the long run sent more orders: {seen:?}"
    );
    assert_eq!(seen[0].0, seen[1].0, "allocations (short, long): {seen:?}");
}
