//! The ladder: the same ping-pong over every transport and receive strategy,
//! interleaved round-robin so that drift of a noisy machine spreads evenly
//! over all rows, with each row's p50 as a ratio to the baseline row.
//!
//! Layer: orchestration above the harness. Where the two ends run (two lab
//! namespaces, or loopback) is the caller's [`Hosts`]; what runs is a list of
//! [`Rung`]s, which the backend table of `hftnet-io` provides
//! ([`rungs_for`]): a new backend adds rows without a change here. One rung
//! is not a transport: the floor ([`floor_rung`], [`RungKind::CacheLineFloor`]),
//! a bare cache-line ping-pong between the same two CPUs as the other rows
//! ([`crate::floor`]), run in this process without the [`Hosts`], interleaved
//! like any row, so every row can be read against what no IPC can beat.
//!
//! Invariants: one server runs at a time (a spinning server would otherwise
//! steal a CPU from the row being measured); every slice is bounded in time;
//! a rung that fails, or whose technique does not take effect on this device,
//! is reported as such and never silently dropped; the floor is never the
//! baseline of the ratios.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use hftnet_io::{Capabilities, Endpoint, Role, RungContext, Transport, dispatch};
use serde::Serialize;

use crate::clock::Clock;
use crate::floor::{FloorConfig, cache_line_pingpong};
use crate::pingpong::{PingConfig, PongConfig, Protocol, run_ping_until, run_pong};
use crate::stats::{LatencyStats, Summary};

/// What a rung measures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RungKind {
    /// Ping-pong over a transport, between the [`Hosts`].
    #[default]
    Transport,
    /// The floor: a bare cache-line ping-pong between the client and server
    /// CPUs ([`crate::floor`]); no transport, URIs empty.
    CacheLineFloor,
}

/// Most round trips the floor row measures in one slice (≈ 14 s at 280 ns):
/// a bound beside the slice's duration.
pub const FLOOR_MAX_SAMPLES_PER_SLICE: u64 = 50_000_000;

/// One row: a transport with a receive strategy, as server and client URIs
/// (or the floor, see [`RungKind`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rung {
    /// Transport scheme, e.g. `udp`.
    pub transport: String,
    /// Receive strategy, e.g. `spin`.
    pub strategy: String,
    /// URI the server (pong) opens.
    pub server_uri: String,
    /// URI the client (ping) opens.
    pub client_uri: String,
    /// Set when the kernel must grant busy polling for the row to mean anything.
    pub needs_busy_poll: bool,
    /// What the row measures.
    pub kind: RungKind,
}

/// The floor row: transport `floor`, strategy `cache-line`, no URIs.
#[must_use]
pub fn floor_rung() -> Rung {
    Rung {
        transport: "floor".into(),
        strategy: "cache-line".into(),
        server_uri: String::new(),
        client_uri: String::new(),
        needs_busy_poll: false,
        kind: RungKind::CacheLineFloor,
    }
}

/// Where the two ends of a rung run.
pub trait Hosts {
    /// Starts `f` on a new thread where the server lives.
    ///
    /// # Errors
    /// When the thread cannot be placed there.
    fn spawn_server(&self, f: Box<dyn FnOnce() + Send + 'static>)
    -> Result<JoinHandle<()>, String>;

    /// Runs `f` where the client lives and returns what it returned.
    ///
    /// # Errors
    /// When the thread cannot be placed there.
    fn run_client(
        &self,
        f: Box<dyn FnOnce() -> SliceResult + Send + 'static>,
    ) -> Result<SliceResult, String>;
}

/// How the ladder runs.
#[derive(Debug, Clone)]
pub struct LadderConfig {
    /// Message size in bytes.
    pub size: usize,
    /// Measured time per rung, split over the rounds.
    pub duration: Duration,
    /// Round-robin passes over the rungs.
    pub rounds: u32,
    /// Warm-up probes at the start of every slice (each slice opens fresh sockets).
    pub warmup: u64,
    /// CPU for the client thread.
    pub client_cpu: Option<usize>,
    /// CPU for the server thread.
    pub server_cpu: Option<usize>,
}

/// What one slice of one rung produced.
#[derive(Debug, Default)]
pub struct SliceResult {
    /// Round trips measured.
    pub rtt: LatencyStats,
    /// Probes sent and lost.
    pub sent: u64,
    /// Probes not answered.
    pub lost: u64,
    /// Capabilities of the client transport after the slice.
    pub client_caps: Option<Capabilities>,
    /// Capabilities of the server transport after the slice.
    pub server_caps: Option<Capabilities>,
    /// Why the slice failed, if it did.
    pub error: Option<String>,
}

/// One row of the result.
#[derive(Debug, Clone, Serialize)]
pub struct RungResult {
    /// The rung.
    pub rung: Rung,
    /// Round-trip distribution over all slices; absent when nothing was measured.
    pub rtt_ns: Option<Summary>,
    /// Round trips measured.
    pub samples: u64,
    /// Probes sent.
    pub sent: u64,
    /// Probes lost.
    pub lost: u64,
    /// p50 divided by the baseline row's p50.
    pub p50_ratio: Option<f64>,
    /// Why the row has no figures, or what limits them.
    pub note: Option<String>,
    /// Server capabilities from the last slice.
    pub server_capabilities: Option<Capabilities>,
    /// Client capabilities from the last slice.
    pub client_capabilities: Option<Capabilities>,
    /// The round trips of all slices merged (not in the JSON: the HTML
    /// report plots it, `hftnet lab --hgrm-dir` writes it).
    #[serde(skip)]
    pub rtt: LatencyStats,
}

/// The rungs for every scheme in `transports`, in order, each with the
/// rungs its backend offers (its receive strategies or modes, from the
/// backend table of `hftnet-io`), and the schemes no backend answers to.
///
/// `server_ip`: the server end's address; `iface`: the interface between
/// the ends (each end's own name for it; `None` on loopback); `base_port` +
/// row index gives each rung its own port.
#[must_use]
pub fn rungs_for(
    transports: &[String],
    server_ip: &str,
    iface: Option<&str>,
    base_port: u16,
) -> Vec<Rung> {
    let mut rungs = Vec::new();
    for t in transports {
        let ctx = RungContext {
            server_ip,
            iface,
            port: base_port.saturating_add(rungs.len() as u16),
        };
        let Some(specs) = hftnet_io::backend::rungs(t, &ctx) else {
            continue;
        };
        rungs.extend(specs.into_iter().map(|r| Rung {
            transport: t.clone(),
            strategy: r.strategy,
            server_uri: r.server_uri,
            client_uri: r.client_uri,
            needs_busy_poll: r.needs_busy_poll,
            kind: RungKind::Transport,
        }));
    }
    rungs
}

/// The row the p50 ratios compare against: UDP with blocking receives (the
/// kernel's default) when it is among the rungs, else the first transport
/// rung; `None` when there is no transport rung (the floor is never the
/// baseline).
#[must_use]
pub fn baseline(rungs: &[Rung]) -> Option<usize> {
    let transport = |r: &Rung| r.kind == RungKind::Transport;
    rungs
        .iter()
        .position(|r| transport(r) && r.transport == "udp" && r.strategy == "block")
        .or_else(|| rungs.iter().position(transport))
}

/// Runs one slice of `rung`.
fn run_slice(
    hosts: &dyn Hosts,
    rung: &Rung,
    cfg: &LadderConfig,
    slice: Duration,
    clock: Clock,
    stop: &Arc<AtomicBool>,
) -> SliceResult {
    match rung.kind {
        RungKind::Transport => run_transport_slice(hosts, rung, cfg, slice, clock, stop),
        RungKind::CacheLineFloor => run_floor_slice(cfg, slice, clock, stop),
    }
}

/// One slice of the floor: both threads in this process, on the client and
/// server CPUs.
fn run_floor_slice(
    cfg: &LadderConfig,
    slice: Duration,
    clock: Clock,
    stop: &AtomicBool,
) -> SliceResult {
    let (Some(client_cpu), Some(server_cpu)) = (cfg.client_cpu, cfg.server_cpu) else {
        return SliceResult {
            error: Some(
                "not measured: the floor needs its two ends pinned to two different CPUs, and \
                 this run has no client and server CPU (fewer than two allowed CPUs)"
                    .into(),
            ),
            ..SliceResult::default()
        };
    };
    let floor = FloorConfig {
        warmup: cfg.warmup,
        max_samples: FLOOR_MAX_SAMPLES_PER_SLICE,
        ..FloorConfig::new(client_cpu, server_cpu, slice)
    };
    match cache_line_pingpong(&floor, clock, stop) {
        Ok(r) => SliceResult {
            error: r.interrupted.then(|| "interrupted".into()),
            sent: r.round_trips,
            lost: 0,
            rtt: r.rtt,
            client_caps: None,
            server_caps: None,
        },
        Err(e) => SliceResult {
            error: Some(e),
            ..SliceResult::default()
        },
    }
}

/// Runs one slice of a transport rung: server on its host, client on its
/// host, then stops the server.
fn run_transport_slice(
    hosts: &dyn Hosts,
    rung: &Rung,
    cfg: &LadderConfig,
    slice: Duration,
    clock: Clock,
    stop: &Arc<AtomicBool>,
) -> SliceResult {
    let server_ep = match Endpoint::parse(&rung.server_uri) {
        Ok(e) => e,
        Err(e) => {
            return SliceResult {
                error: Some(e.to_string()),
                ..SliceResult::default()
            };
        }
    };
    let client_ep = match Endpoint::parse(&rung.client_uri) {
        Ok(e) => e,
        Err(e) => {
            return SliceResult {
                error: Some(e.to_string()),
                ..SliceResult::default()
            };
        }
    };
    let server_stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let (caps_tx, caps_rx) = mpsc::channel::<Capabilities>();
    let stop2 = server_stop.clone();
    let server_cpu = cfg.server_cpu;
    let server = hosts.spawn_server(Box::new(move || {
        if let Some(c) = server_cpu {
            let _ = hftnet_sys::sched::pin_thread_to_cpu(c);
        }
        let mut t = match server_ep.open(Role::Server) {
            Ok(t) => t,
            Err(e) => {
                let _ = ready_tx.send(Err(format!("server: {e}")));
                return;
            }
        };
        let _ = ready_tx.send(Ok(()));
        let pong = PongConfig {
            check_every: Duration::from_millis(20),
            ..PongConfig::default()
        };
        let _ = dispatch!(&mut t, inner => run_pong(inner, &pong, &stop2));
        let _ = caps_tx.send(t.capabilities());
    }));
    let server = match server {
        Ok(h) => h,
        Err(e) => {
            return SliceResult {
                error: Some(e),
                ..SliceResult::default()
            };
        }
    };
    let stop_server = |server: JoinHandle<()>| {
        server_stop.store(true, Ordering::Relaxed);
        let _ = server.join();
    };
    match ready_rx.recv_timeout(Duration::from_secs(5)) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            stop_server(server);
            return SliceResult {
                error: Some(e),
                ..SliceResult::default()
            };
        }
        Err(_) => {
            stop_server(server);
            return SliceResult {
                error: Some("server did not start within 5 s".into()),
                ..SliceResult::default()
            };
        }
    }
    let mut res = run_client_slice(hosts, client_ep, cfg, slice, clock, stop);
    stop_server(server);
    res.server_caps = caps_rx.try_recv().ok();
    res
}

/// The client's half of a transport slice: opens `client_ep` where the
/// [`Hosts`] put the client, pinned to `cfg.client_cpu` when set, and
/// measures round trips for `slice` (or until `stop`) against a server
/// already serving. Failures are in [`SliceResult::error`].
pub fn run_client_slice(
    hosts: &dyn Hosts,
    client_ep: Endpoint,
    cfg: &LadderConfig,
    slice: Duration,
    clock: Clock,
    stop: &Arc<AtomicBool>,
) -> SliceResult {
    let ping = PingConfig {
        size: cfg.size,
        count: None,
        duration: Some(slice),
        warmup: cfg.warmup,
        rate: None,
        reply_timeout: Duration::from_millis(500),
        give_up_after: 3,
        protocol: Protocol::Hftnet,
    };
    let client_cpu = cfg.client_cpu;
    let interrupt = stop.clone();
    let res = hosts.run_client(Box::new(move || {
        if let Some(c) = client_cpu {
            let _ = hftnet_sys::sched::pin_thread_to_cpu(c);
        }
        let mut t = match client_ep.open(Role::Client) {
            Ok(t) => t,
            Err(e) => {
                return SliceResult {
                    error: Some(format!("client: {e}")),
                    ..SliceResult::default()
                };
            }
        };
        if let Err(e) = ping.validate(client_ep.max_message()) {
            return SliceResult {
                error: Some(e.to_string()),
                ..SliceResult::default()
            };
        }
        match dispatch!(&mut t, inner => run_ping_until(inner, &ping, clock, &interrupt)) {
            Ok(out) => SliceResult {
                error: out.aborted.clone(),
                rtt: out.rtt,
                sent: out.sent,
                lost: out.lost,
                client_caps: Some(t.capabilities()),
                server_caps: None,
            },
            Err(e) => SliceResult {
                error: Some(e.to_string()),
                ..SliceResult::default()
            },
        }
    }));
    res.unwrap_or_else(|e| SliceResult {
        error: Some(e),
        ..SliceResult::default()
    })
}

/// Runs the ladder: `rounds` passes over `rungs`, each slice `duration / rounds`
/// long, calling `progress(done, total, rung)` after each slice. Setting
/// `stop` ends the run early (the slice under way ends at once); the
/// results then cover the slices that ran.
///
/// The [`baseline`] rung is the reference of the p50 ratios (none without a
/// transport rung). A busy-poll rung whose
/// first slice shows busy polling not in effect is not run again; its row says why.
pub fn run_ladder(
    hosts: &dyn Hosts,
    rungs: &[Rung],
    cfg: &LadderConfig,
    clock: Clock,
    stop: &Arc<AtomicBool>,
    progress: impl FnMut(usize, usize, &Rung),
) -> Vec<RungResult> {
    run_ladder_with(hosts, rungs, cfg, clock, stop, progress, |_| {})
}

/// [`run_ladder`], calling `after_round(round)` (from 1) after each pass
/// over the rungs: other measurements run there interleave with the
/// ladder's rows round by round (`hftnet lab`'s tick-to-trade slices), so
/// drift of the machine spreads over both alike. Not called once `stop`
/// is set.
pub fn run_ladder_with(
    hosts: &dyn Hosts,
    rungs: &[Rung],
    cfg: &LadderConfig,
    clock: Clock,
    stop: &Arc<AtomicBool>,
    mut progress: impl FnMut(usize, usize, &Rung),
    mut after_round: impl FnMut(u32),
) -> Vec<RungResult> {
    let rounds = cfg.rounds.max(1);
    let slice = cfg.duration / rounds;
    let total = rungs.len() * rounds as usize;
    let mut acc: Vec<Acc> = rungs.iter().map(|_| Acc::default()).collect();
    let mut done = 0;
    for round in 1..=rounds {
        for (i, rung) in rungs.iter().enumerate() {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let a = &mut acc[i];
            if !a.retired {
                let r = run_slice(hosts, rung, cfg, slice, clock, stop);
                a.rtt.merge(&r.rtt);
                a.sent += r.sent;
                a.lost += r.lost;
                a.client_caps = r.client_caps.or(a.client_caps.take());
                a.server_caps = r.server_caps.or(a.server_caps.take());
                if let Some(e) = r.error {
                    a.note = Some(e);
                    a.retired = true;
                } else if rung.needs_busy_poll {
                    let active = a
                        .server_caps
                        .as_ref()
                        .and_then(Capabilities::busy_poll_active);
                    if active != Some(true) {
                        let napi = a
                            .server_caps
                            .as_ref()
                            .and_then(Capabilities::napi_id)
                            .map_or("unknown".into(), |n| n.to_string());
                        a.note = Some(format!(
                            "busy polling not in effect (server NAPI id {napi}): packets do not arrive through a NAPI \
                             context (veth needs GRO on and TSO off on the sender, as `hftnet lab` sets unless \
                             --no-napi); figures equal rx=block, row not repeated"
                        ));
                        a.retired = true;
                    }
                }
            }
            done += 1;
            progress(done, total, rung);
        }
        if !stop.load(Ordering::Relaxed) {
            after_round(round);
        }
    }
    let base = baseline(rungs)
        .and_then(|i| acc.get(i))
        .and_then(|a| a.rtt.summary())
        .map(|s| s.p50);
    rungs
        .iter()
        .zip(acc)
        .map(|(rung, a)| {
            let summary = a.rtt.summary();
            RungResult {
                rung: rung.clone(),
                p50_ratio: match (summary, base) {
                    (Some(s), Some(b)) if b > 0 => Some(s.p50 as f64 / b as f64),
                    _ => None,
                },
                samples: a.rtt.len(),
                rtt_ns: summary,
                sent: a.sent,
                lost: a.lost,
                note: a.note,
                server_capabilities: a.server_caps,
                client_capabilities: a.client_caps,
                rtt: a.rtt,
            }
        })
        .collect()
}

/// What the ladder gathers for one rung across rounds.
#[derive(Default)]
struct Acc {
    rtt: LatencyStats,
    sent: u64,
    lost: u64,
    note: Option<String>,
    client_caps: Option<Capabilities>,
    server_caps: Option<Capabilities>,
    /// Not run again (failed, or its technique is not in effect).
    retired: bool,
}

/// A p50 ratio as the table prints it: two decimals, or two significant
/// digits below 0.01 (the floor row reads `0.0045`, not `0.00`).
#[must_use]
pub fn ratio(q: f64) -> String {
    if q > 0.0 && q < 0.01 {
        let decimals = (1 - q.log10().floor() as i32).clamp(2, 9) as usize;
        format!("{q:.decimals$}")
    } else {
        format!("{q:.2}")
    }
}

/// The result as a fixed-width table (round trips in µs).
#[must_use]
pub fn table(results: &[RungResult]) -> String {
    let mut s = format!(
        "{:<8} {:<15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9}\n",
        "transport",
        "strategy",
        "samples",
        "p50 µs",
        "p99 µs",
        "p99.9 µs",
        "max µs",
        "lost",
        "p50 ratio"
    );
    let us = |ns: u64| format!("{:.2}", ns as f64 / 1000.0);
    for r in results {
        match &r.rtt_ns {
            Some(x) if r.samples > 0 => s.push_str(&format!(
                "{:<8} {:<15} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9}\n",
                r.rung.transport,
                r.rung.strategy,
                r.samples,
                us(x.p50),
                us(x.p99),
                us(x.p99_9),
                us(x.max),
                r.lost,
                r.p50_ratio.map_or("-".into(), |q| format!("{}x", ratio(q))),
            )),
            _ => s.push_str(&format!(
                "{:<8} {:<15} {:>9}  (no figures)\n",
                r.rung.transport, r.rung.strategy, 0
            )),
        }
    }
    let notes: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.note
                .as_ref()
                .map(|n| format!("  {}/{}: {n}", r.rung.transport, r.rung.strategy))
        })
        .collect();
    if !notes.is_empty() {
        s.push_str("notes:\n");
        s.push_str(&notes.join("\n"));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::floor::tests::{lock_cpus, two_cpus};

    /// Hosts that refuse to place anything: the floor must not need them.
    struct NoHosts;

    impl Hosts for NoHosts {
        fn spawn_server(
            &self,
            _: Box<dyn FnOnce() + Send + 'static>,
        ) -> Result<JoinHandle<()>, String> {
            Err("NoHosts places no server".into())
        }

        fn run_client(
            &self,
            _: Box<dyn FnOnce() -> SliceResult + Send + 'static>,
        ) -> Result<SliceResult, String> {
            Err("NoHosts places no client".into())
        }
    }

    /// Both ends on threads of this process.
    struct Threads;

    impl Hosts for Threads {
        fn spawn_server(
            &self,
            f: Box<dyn FnOnce() + Send + 'static>,
        ) -> Result<JoinHandle<()>, String> {
            std::thread::Builder::new()
                .spawn(f)
                .map_err(|e| e.to_string())
        }

        fn run_client(
            &self,
            f: Box<dyn FnOnce() -> SliceResult + Send + 'static>,
        ) -> Result<SliceResult, String> {
            std::thread::Builder::new()
                .spawn(f)
                .map_err(|e| e.to_string())?
                .join()
                .map_err(|_| "client panicked".to_string())
        }
    }

    fn ladder_cfg(cpus: Option<(usize, usize)>, duration: Duration, rounds: u32) -> LadderConfig {
        LadderConfig {
            size: 64,
            duration,
            rounds,
            warmup: 100,
            client_cpu: cpus.map(|c| c.0),
            server_cpu: cpus.map(|c| c.1),
        }
    }

    #[test]
    fn ratios_keep_two_significant_digits_when_small() {
        assert_eq!(ratio(1.0), "1.00");
        assert_eq!(ratio(0.05), "0.05");
        assert_eq!(ratio(0.0045), "0.0045");
        assert_eq!(ratio(0.000_123), "0.00012");
        assert_eq!(ratio(12.345), "12.35");
        assert_eq!(ratio(0.0), "0.00");
    }

    #[test]
    fn the_floor_is_never_the_baseline() {
        let udp = rungs_for(&["udp".into()], "127.0.0.1", None, 9000);
        let (block, spin) = (udp[0].clone(), udp[1].clone());
        assert_eq!(baseline(&[floor_rung(), spin.clone(), block]), Some(2));
        assert_eq!(baseline(&[floor_rung(), spin.clone()]), Some(1));
        assert_eq!(baseline(&[floor_rung()]), None);
        assert_eq!(baseline(&[]), None);
        // A rung named like the kernel default but of the floor kind is not it.
        let fake = Rung {
            transport: "udp".into(),
            strategy: "block".into(),
            ..floor_rung()
        };
        assert_eq!(baseline(&[fake, spin]), Some(1));
    }

    #[test]
    fn rungs_serialize_their_kind_beside_every_old_field() {
        let j = serde_json::to_value(floor_rung()).unwrap();
        assert_eq!(
            j,
            serde_json::json!({
                "transport": "floor",
                "strategy": "cache-line",
                "server_uri": "",
                "client_uri": "",
                "needs_busy_poll": false,
                "kind": "cache_line_floor",
            })
        );
        let udp = &rungs_for(&["udp".into()], "127.0.0.1", None, 9000)[0];
        let j = serde_json::to_value(udp).unwrap();
        assert_eq!(j["kind"], "transport");
        assert_eq!(j["server_uri"], "udp://127.0.0.1:9000?rx=block");
    }

    #[test]
    fn a_ladder_of_the_floor_alone_measures_it_without_hosts() {
        let _cpus = lock_cpus();
        let Some(cpus) = two_cpus("a_ladder_of_the_floor_alone_measures_it_without_hosts") else {
            return;
        };
        let cfg = ladder_cfg(Some(cpus), Duration::from_millis(200), 2);
        let stop = Arc::new(AtomicBool::new(false));
        let mut slices = 0;
        let r = run_ladder(
            &NoHosts,
            &[floor_rung()],
            &cfg,
            Clock::new(),
            &stop,
            |_, _, _| {
                slices += 1;
            },
        );
        assert_eq!(slices, 2);
        assert_eq!(r.len(), 1);
        let row = &r[0];
        assert_eq!(row.note, None, "{row:?}");
        assert!(row.samples > 0, "{row:?}");
        assert_eq!(row.sent, row.samples);
        assert_eq!(row.lost, 0);
        assert!(row.rtt_ns.is_some());
        // No transport row, so no baseline and no ratio.
        assert_eq!(row.p50_ratio, None);
    }

    #[test]
    fn the_floor_runs_interleaved_with_transport_rows() {
        let _cpus = lock_cpus();
        let cpus = two_cpus("the_floor_runs_interleaved_with_transport_rows");
        let mut rungs = vec![floor_rung()];
        rungs.extend(rungs_for(&["mem".into()], "127.0.0.1", None, 9400));
        let cfg = ladder_cfg(cpus, Duration::from_millis(200), 2);
        let stop = Arc::new(AtomicBool::new(false));
        let mut order = Vec::new();
        let r = run_ladder(&Threads, &rungs, &cfg, Clock::new(), &stop, |_, _, rung| {
            order.push(rung.strategy.clone());
        });
        assert_eq!(
            order,
            ["cache-line", "block", "spin", "cache-line", "block", "spin"]
        );
        // The baseline is the first transport row (mem/block), not the floor.
        assert_eq!(r[1].p50_ratio, Some(1.0), "{:?}", r[1]);
        for row in &r[1..] {
            assert!(row.samples > 0, "{row:?}");
        }
        if cpus.is_some() {
            assert!(r[0].samples > 0, "{:?}", r[0]);
            assert!(r[0].p50_ratio.is_some_and(|q| q > 0.0), "{:?}", r[0]);
        }
    }

    #[test]
    fn after_round_runs_between_the_rounds() {
        let rungs = rungs_for(&["mem".into()], "127.0.0.1", None, 9600);
        let cfg = ladder_cfg(None, Duration::from_millis(100), 2);
        let stop = Arc::new(AtomicBool::new(false));
        let order = std::cell::RefCell::new(Vec::new());
        let r = run_ladder_with(
            &Threads,
            &rungs[..1],
            &cfg,
            Clock::new(),
            &stop,
            |_, _, rung| order.borrow_mut().push(rung.strategy.clone()),
            |round| order.borrow_mut().push(format!("after {round}")),
        );
        assert_eq!(*order.borrow(), ["block", "after 1", "block", "after 2"]);
        assert!(r[0].samples > 0, "{:?}", r[0]);
        // Once stopped, no round runs and no hook is called.
        stop.store(true, Ordering::Relaxed);
        order.borrow_mut().clear();
        run_ladder_with(
            &Threads,
            &rungs[..1],
            &cfg,
            Clock::new(),
            &stop,
            |_, _, rung| order.borrow_mut().push(rung.strategy.clone()),
            |round| order.borrow_mut().push(format!("after {round}")),
        );
        assert!(order.borrow().is_empty(), "{:?}", order.borrow());
    }

    #[test]
    fn without_two_cpus_the_floor_says_so_and_the_run_goes_on() {
        let mut rungs = vec![floor_rung()];
        rungs.extend(rungs_for(&["mem".into()], "127.0.0.1", None, 9500));
        let rungs = &rungs[..2]; // the floor and mem/block
        let cfg = ladder_cfg(None, Duration::from_millis(100), 1);
        let stop = Arc::new(AtomicBool::new(false));
        let r = run_ladder(&Threads, rungs, &cfg, Clock::new(), &stop, |_, _, _| {});
        assert_eq!(r[0].samples, 0);
        assert!(r[0].rtt_ns.is_none());
        let note = r[0].note.as_deref().unwrap();
        assert!(note.contains("two different CPUs"), "{note}");
        assert!(r[1].samples > 0, "{:?}", r[1]);
        assert!(table(&r).contains("floor/cache-line: not measured"));
    }

    #[test]
    fn rungs_cover_transports_and_strategies_with_own_ports() {
        let r = rungs_for(
            &["udp".into(), "mcast".into()],
            "198.18.0.2",
            Some("veth0"),
            9000,
        );
        assert_eq!(r.len(), 11);
        assert_eq!(r[0].server_uri, "udp://198.18.0.2:9000?rx=block");
        assert_eq!(r[1].client_uri, "udp://198.18.0.2:9001?rx=spin");
        assert!(r[3].needs_busy_poll);
        let extra: Vec<&str> = r[4..7].iter().map(|r| r.strategy.as_str()).collect();
        assert_eq!(extra, ["spin+batch32", "spin+zerocopy", "spin+timestamps"]);
        assert_eq!(r[4].client_uri, "udp://198.18.0.2:9004?rx=spin&batch=32");
        assert_eq!(
            r[7].server_uri,
            "mcast://239.1.1.1:9007?rx=block&iface=veth0"
        );
        let u = rungs_for(&["uring".into()], "198.18.0.2", None, 9100);
        let names: Vec<&str> = u.iter().map(|r| r.strategy.as_str()).collect();
        assert_eq!(names, ["wait", "spin", "spin+multishot"]);
        assert_eq!(
            u[2].client_uri,
            "uring://198.18.0.2:9102?mode=spin&multishot=1"
        );
        assert!(u.iter().all(|r| !r.needs_busy_poll));
        let p = rungs_for(&["packet".into()], "198.18.0.2", Some("veth0"), 9200);
        let names: Vec<&str> = p.iter().map(|r| r.strategy.as_str()).collect();
        // TPACKET_V3 is a throughput mode, not a latency rung.
        assert_eq!(names, ["block", "spin"]);
        assert_eq!(p[1].server_uri, "packet://veth0?port=9201&rx=spin");
        assert_eq!(
            p[1].client_uri,
            "packet://veth0?port=9201&peer=198.18.0.2:9201&rx=spin"
        );
        for rung in &p {
            Endpoint::parse(&rung.server_uri).unwrap();
            Endpoint::parse(&rung.client_uri).unwrap();
        }
        let x = rungs_for(&["xdp".into()], "198.18.0.2", Some("veth0"), 9300);
        let names: Vec<&str> = x.iter().map(|r| r.strategy.as_str()).collect();
        assert_eq!(
            names,
            ["block", "spin", "spin/udp-client", "spin+timestamps"]
        );
        assert_eq!(
            x[3].server_uri,
            "xdp://veth0/0?port=9303&rx=spin&timestamps=rx"
        );
        assert_eq!(
            x[1].client_uri,
            "xdp://veth0/0?port=9301&peer=198.18.0.2:9301&rx=spin"
        );
        assert_eq!(x[2].server_uri, "xdp://veth0/0?port=9302&rx=spin");
        assert_eq!(x[2].client_uri, "udp://198.18.0.2:9302?rx=spin");
        for rung in &r {
            Endpoint::parse(&rung.server_uri).unwrap();
            Endpoint::parse(&rung.client_uri).unwrap();
        }
    }
}
