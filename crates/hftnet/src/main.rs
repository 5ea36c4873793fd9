//! The `hftnet` command: the lab (the main job), ping and pong over any
//! transport URI, and the market-data tools (exchange, feed, replay).
//! Argument shapes are a contract relied on by scripts (DESIGN.md,
//! "Command-line contract"): options are added, never broken.
//!
//! Layer: the top. It parses arguments, opens the transports the URIs name,
//! calls the library and prints; the loops live in the library crates — the
//! harness in `hftnet-bench`, the exchange and the feed handler in
//! `hftnet-apps`.

#![forbid(unsafe_code)]

mod fanout;
mod jitter;
mod lab;
mod ladder_peer;
mod market;
mod paper_ladder;
mod pingpong;
mod shm;
mod throughput;
mod tune;
mod util;
mod xdp;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Low-latency network path toolkit: transports, latency harness, lab.
#[derive(Debug, Parser)]
#[command(name = "hftnet", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build a two-host namespace lab and run the ping-pong ladder over every
    /// transport and receive strategy; or manage labs (`lab up`, `lab down`, `lab list`).
    Lab(lab::LabArgs),
    /// Round-trip client against any UDP/TCP echo server (hftnet pong, socat, ...).
    Ping(pingpong::PingArgs),
    /// Echo server: sends every message it receives back to its sender, byte for byte.
    Pong(pingpong::PongArgs),
    /// One multicast sender, N receivers in their own namespaces: one-way latency,
    /// loss, duplicates and reordering per receiver, and the spread between receivers.
    Fanout(fanout::FanoutArgs),
    /// Throughput sender: sequence-numbered messages as fast as possible or at --rate.
    Blast(throughput::BlastArgs),
    /// Throughput receiver: packets/s, bytes/s, drops (sequence gaps), reordering, duplicates.
    Sink(throughput::SinkArgs),
    /// Exchange simulator: an ITCH 5.0 feed over MoldUDP64 on feeds A and B, with a
    /// re-request server and fault injection; or write a generated day to a file.
    Exchange(Box<market::ExchangeArgs>),
    /// Feed handler: A/B arbitration, gap recovery, order books, every counter.
    Feed(market::FeedArgs),
    /// Parse a Nasdaq ITCH 5.0 file (plain or gzip), build the books, report.
    Replay(market::ReplayArgs),
    /// Trader: market data in, a strategy and pre-trade risk, OUCH 5.0 orders out over
    /// SoupBinTCP; `trade kill --state FILE` trips a running trader's kill switch.
    Trade(market::TradeArgs),
    /// OS jitter per CPU: a spinning thread per CPU records every interruption above a threshold.
    Jitter(jitter::JitterArgs),
    /// Host tuning: audit (read only), apply a profile with a snapshot, revert it exactly.
    Tune(tune::TuneArgs),
    /// The XDP steering program of `xdp://` transports: `xdp stats IFACE`.
    Xdp(xdp::XdpArgs),
    /// The shared-memory rings of `shm://` endpoints: `shm list`, `shm stat NAME`, `shm rm NAME`.
    Shm(shm::ShmArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lab(a) => lab::run(a),
        Command::Ping(a) => pingpong::ping(a),
        Command::Pong(a) => pingpong::pong(a),
        Command::Fanout(a) => fanout::fanout(a),
        Command::Blast(a) => throughput::blast(a),
        Command::Sink(a) => throughput::sink(a),
        Command::Exchange(a) => market::exchange(*a),
        Command::Feed(a) => market::feed(a),
        Command::Replay(a) => market::replay(a),
        Command::Trade(a) => market::trade(a),
        Command::Jitter(a) => jitter::jitter(a),
        Command::Tune(a) => tune::tune(a),
        Command::Xdp(a) => xdp::run(a),
        Command::Shm(a) => shm::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hftnet: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
