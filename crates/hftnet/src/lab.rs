//! `hftnet lab`: the main job (build a lab, run the ladder, print the table)
//! and lab management (`up`, `down`, `list`).
//!
//! The ladder always starts with the floor row (a bare cache-line ping-pong
//! between the client and server CPUs, `hftnet_bench::floor`): what no row
//! between those CPUs can beat. It is never the baseline of the ratios.

use std::fs;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hftnet_apps::tick_to_trade::{self, T2tConfig, T2tHosts, T2tResult, T2tRow, TickToTrade};
use hftnet_bench::clock::Clock;
use hftnet_bench::env::Environment;
use hftnet_bench::ladder::{
    Hosts, LadderConfig, RungKind, RungResult, SliceResult, baseline, floor_rung, run_ladder_with,
    rungs_for, table,
};
use hftnet_lab::{Host, Lab};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use crate::paper_ladder;
use crate::util::{COMMIT, VERSION, parse_duration, parse_size};

/// The help of `--transports`: the schemes of the backend table.
fn transports_help() -> String {
    format!(
        "Transports to run, comma separated: a scheme runs all its rows, SCHEME/ROW only that row \
         (e.g. udp/spin,uring/spin+multishot) (default: every one of this build: {})",
        hftnet_io::backend::schemes().collect::<Vec<_>>().join(", ")
    )
}

/// One `--transports` entry: a scheme, and a row of it or all its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RowPick {
    scheme: String,
    row: Option<String>,
}

/// Reads `--transports` entries (`SCHEME` or `SCHEME/ROW`) against the
/// backend table; rows are checked once the rungs are known.
fn parse_picks(entries: &[String]) -> Result<Vec<RowPick>> {
    let all: Vec<&str> = hftnet_io::backend::schemes().collect();
    let mut picks = Vec::new();
    for t in entries {
        let (scheme, row) = match t.split_once('/') {
            Some((s, r)) => (s, Some(r)),
            None => (t.as_str(), None),
        };
        if let Some(how) = hftnet_io::backend::left_out(scheme) {
            bail!("--transports {scheme}: {how}");
        }
        if !all.contains(&scheme) {
            bail!(
                "unknown transport {scheme:?} in --transports; accepted: {} (each alone, or as \
                 SCHEME/ROW for one row, e.g. udp/spin)",
                all.join(", ")
            );
        }
        if row.is_some_and(str::is_empty) {
            bail!("--transports entry {t:?} names no row: write {scheme} or {scheme}/ROW");
        }
        picks.push(RowPick {
            scheme: scheme.to_string(),
            row: row.map(str::to_string),
        });
    }
    Ok(picks)
}

/// Keeps the rungs the picks name; an unknown row is an error naming the
/// scheme's rows.
fn pick_rungs(
    rungs: Vec<hftnet_bench::ladder::Rung>,
    picks: &[RowPick],
) -> Result<Vec<hftnet_bench::ladder::Rung>> {
    for p in picks {
        if let Some(row) = &p.row
            && !rungs
                .iter()
                .any(|r| r.transport == p.scheme && &r.strategy == row)
        {
            let rows: Vec<&str> = rungs
                .iter()
                .filter(|r| r.transport == p.scheme)
                .map(|r| r.strategy.as_str())
                .collect();
            bail!(
                "--transports: {} has no row {row:?}; its rows here: {}",
                p.scheme,
                if rows.is_empty() {
                    "none".to_string()
                } else {
                    rows.join(", ")
                }
            );
        }
    }
    Ok(rungs
        .into_iter()
        .filter(|r| {
            picks.iter().any(|p| {
                p.scheme == r.transport && p.row.as_ref().is_none_or(|row| *row == r.strategy)
            })
        })
        .collect())
}

/// Smallest `--size`: a probe carries its header.
const LAB_MIN_SIZE: usize = hftnet_wire::probe::HEADER_LEN;

/// Largest `--size`: the largest UDP payload. The lab's rows are datagrams
/// (a larger size failed every UDP row only after the lab was built); a
/// stream or ring beyond it is measured with `hftnet ping`.
const LAB_MAX_SIZE: usize = hftnet_io::udp::MAX_UDP_PAYLOAD;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LabArgs {
    #[command(subcommand)]
    action: Option<LabAction>,
    /// Transports to run, comma separated (default: every one of this build).
    #[arg(long, value_delimiter = ',', help = transports_help())]
    transports: Vec<String>,
    /// Measured time per row, spread over the rounds [default: 3s; 1s with --quick].
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Message size in bytes.
    #[arg(long, default_value = "64", value_parser = parse_size)]
    size: usize,
    /// Round-robin passes over the rows (interleaving cancels drift) [default: 5; 2 with
    /// --quick].
    #[arg(long)]
    rounds: Option<u32>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Write the results as a self-contained HTML page to this file: the
    /// table, every row's percentile distribution and histogram, the
    /// tick-to-trade table and the environment.
    #[arg(long)]
    report: Option<std::path::PathBuf>,
    /// Write each row's round-trip histogram to this directory (created if
    /// missing) as HdrHistogram's .hgrm text (µs), one file per row with
    /// samples: NN-transport_strategy.hgrm.
    #[arg(long)]
    hgrm_dir: Option<std::path::PathBuf>,
    /// Run on loopback in this namespace even when a lab could be built.
    #[arg(long)]
    loopback: bool,
    /// Leave the veth on its default backlog path instead of NAPI (GRO on,
    /// TSO off); kernel busy polling then cannot take effect.
    #[arg(long)]
    no_napi: bool,
    /// Skip the tick-to-trade table that follows the ping-pong rows.
    #[arg(long)]
    no_t2t: bool,
    /// The tick-to-trade trader's SoupBinTCP heartbeat while it sends no
    /// order: short keeps its kernel send path warm between orders; 1s (the
    /// protocol's own) measures a cold one.
    /// A comma list runs each tick-to-trade row once per heartbeat, side by
    /// side (e.g. 100us,1s: warm and cold).
    #[arg(long, default_value = "100us", value_parser = parse_duration, value_delimiter = ',')]
    t2t_heartbeat: Vec<Duration>,
    /// A short run: 1 s per ping-pong row in 2 rounds (unless --duration or --rounds say
    /// otherwise) and a short trading day per tick-to-trade slice.
    #[arg(long)]
    quick: bool,
    /// Run the paper's tuning ladder instead (baseline, then adding CPU affinity, IRQ
    /// affinity, CPU isolation, busy polling and spinning, over UDP and TCP; then the
    /// bypass rungs), each rung judged against the seeds' claim. Needs root: it builds the lab
    /// and isolates the server CPU with cpusets for the rungs that ask for it (reverted
    /// after each slice).
    #[arg(long, conflicts_with_all = ["transports", "loopback", "no_napi", "t2t_heartbeat"])]
    ladder: bool,
    /// With --ladder: run across a real network against `hftnet pong --serve-ladder ADDR`
    /// on the peer machine (its control channel's address; the rungs' servers listen on
    /// the same IP), instead of in a lab.
    #[arg(long, requires_all = ["ladder", "iface"])]
    peer: Option<std::net::SocketAddr>,
    /// With --peer: this machine's interface facing the peer (for the layer-2 rungs).
    #[arg(long, requires = "peer", value_parser = crate::util::parse_iface)]
    iface: Option<String>,
}

/// Order-flow messages of each tick-to-trade slice's day (at
/// [`T2T_RATE`]), and with `--quick`.
const T2T_MESSAGES: u64 = 50_000;
const T2T_MESSAGES_QUICK: u64 = 10_000;
/// Messages per second the exchange publishes in a tick-to-trade slice.
const T2T_RATE: u64 = 50_000;
/// First market-data port of the tick-to-trade rows.
const T2T_PORT: u16 = 31_000;

#[derive(Debug, Subcommand)]
enum LabAction {
    /// Build a lab and leave it up (remove it with `hftnet lab down`).
    Up {
        /// Lab name (letters, digits, '-'; default: generated).
        #[arg(long)]
        name: Option<String>,
        /// Leave the veth on its backlog path instead of NAPI (GRO on, TSO off).
        #[arg(long)]
        no_napi: bool,
        /// Receive and transmit queues of each veth end (like `ethtool -L veth0 rx N tx N`;
        /// at most one per possible CPU): two AF_XDP endpoints need two queues (xdp://veth0/0
        /// and xdp://veth0/1); a frame sent on queue N arrives on the peer's queue N.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        queues: u32,
    },
    /// Remove a lab, or every hftnet lab (e.g. left by a killed run).
    Down {
        /// Lab to remove.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        name: Option<String>,
        /// Remove every hftnet lab on this machine except those of running
        /// hftnet processes (tests, lab runs in progress).
        #[arg(long)]
        all: bool,
        /// With --all: also remove labs of processes that are still running.
        #[arg(long, requires = "all")]
        force: bool,
    },
    /// List the hftnet labs on this machine.
    List,
}

pub fn run(a: LabArgs) -> Result<ExitCode> {
    match a.action {
        Some(LabAction::Up {
            name,
            no_napi,
            queues,
        }) => up(name.as_deref(), !no_napi, queues),
        Some(LabAction::Down { name, all, force }) => down(name.as_deref(), all, force),
        Some(LabAction::List) => {
            for l in hftnet_lab::list() {
                println!("{} {}", l.name, l.namespaces.join(" "));
            }
            Ok(ExitCode::SUCCESS)
        }
        None if a.ladder => paper(&a),
        None => ladder(&a),
    }
}

fn up(name: Option<&str>, napi: bool, queues: u32) -> Result<ExitCode> {
    hftnet_lab::check_privileges()?;
    let mut b = Lab::builder().napi(napi).queues(queues);
    if let Some(n) = name {
        b = b.name(n);
    }
    let lab = b.build()?;
    println!("{}", lab.describe().trim_end());
    let name = lab.name().to_string();
    // Leave it up on purpose: the user removes it with `lab down`.
    std::mem::forget(lab);
    println!("# lab {name} is up; remove it with: hftnet lab down --name {name}");
    Ok(ExitCode::SUCCESS)
}

fn down(name: Option<&str>, all: bool, force: bool) -> Result<ExitCode> {
    hftnet_lab::check_privileges()?;
    if all {
        let live: Vec<String> = if force {
            Vec::new()
        } else {
            hftnet_lab::list()
                .into_iter()
                .filter(hftnet_lab::in_use)
                .map(|l| l.name)
                .collect()
        };
        let gone = if force {
            hftnet_lab::remove_all()?
        } else {
            hftnet_lab::remove_stale()?
        };
        let nothing = gone.is_empty() && live.is_empty();
        for n in gone {
            println!("removed lab {n}");
        }
        for n in live {
            let pid = hftnet_lab::creator_pid(&n)
                .map_or(String::new(), |p| format!(" of running process {p}"));
            println!("kept lab {n}{pid} (add --force to remove it anyway)");
        }
        if remove_stale_rings(None) == 0 && nothing {
            println!("# no hftnet labs found");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let name = name.expect("clap requires --name without --all");
    let found = hftnet_lab::remove(name)?;
    if found {
        println!("removed lab {name}");
    }
    let rings = hftnet_lab::creator_pid(name).map_or(0, |pid| remove_stale_rings(Some(pid)));
    if found || rings > 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("hftnet lab down: no lab named {name:?} (see `hftnet lab list`)");
        Ok(ExitCode::from(1))
    }
}

/// Removes the shared-memory rings of killed lab runs (their shm rows;
/// only those of process `pid` when given) and says so.
fn remove_stale_rings(pid: Option<u32>) -> usize {
    let dir = std::path::Path::new(hftnet_io::shm::DEFAULT_DIR);
    let mut removed = 0;
    for r in hftnet_io::shm::remove_stale_ladder_rings(dir, pid) {
        match r {
            Ok(n) => {
                removed += 1;
                println!("removed ring {n} (left by a killed lab run)");
            }
            Err(e) => eprintln!("hftnet lab down: {e}"),
        }
    }
    removed
}

/// The two ends in two lab namespaces.
struct LabHosts<'a> {
    server: &'a Host,
    client: &'a Host,
}

impl Hosts for LabHosts<'_> {
    fn spawn_server(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<JoinHandle<()>, String> {
        self.server
            .spawn_thread("hftnet-pong", f)
            .map_err(|e| e.to_string())
    }

    fn run_client(
        &self,
        f: Box<dyn FnOnce() -> SliceResult + Send + 'static>,
    ) -> Result<SliceResult, String> {
        self.client.run(f).map_err(|e| e.to_string())
    }
}

impl T2tHosts for LabHosts<'_> {
    fn spawn_exchange(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<JoinHandle<()>, String> {
        self.server
            .spawn_thread("hftnet-exchange", f)
            .map_err(|e| e.to_string())
    }

    fn spawn_trader(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<JoinHandle<()>, String> {
        self.client
            .spawn_thread("hftnet-trader", f)
            .map_err(|e| e.to_string())
    }
}

/// Both ends in this process's namespace, over loopback.
struct LoopbackHosts;

impl LoopbackHosts {
    fn spawn(name: &str, f: Box<dyn FnOnce() + Send + 'static>) -> Result<JoinHandle<()>, String> {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(|e| e.to_string())
    }
}

impl T2tHosts for LoopbackHosts {
    fn spawn_exchange(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<JoinHandle<()>, String> {
        Self::spawn("hftnet-exchange", f)
    }

    fn spawn_trader(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<JoinHandle<()>, String> {
        Self::spawn("hftnet-trader", f)
    }
}

impl Hosts for LoopbackHosts {
    fn spawn_server(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<JoinHandle<()>, String> {
        Self::spawn("hftnet-pong", f)
    }

    fn run_client(
        &self,
        f: Box<dyn FnOnce() -> SliceResult + Send + 'static>,
    ) -> Result<SliceResult, String> {
        std::thread::Builder::new()
            .name("hftnet-ping".into())
            .spawn(f)
            .map_err(|e| e.to_string())?
            .join()
            .map_err(|_| "the ping thread panicked".to_string())
    }
}

#[derive(Serialize)]
struct LabReport<'a> {
    /// The hftnet version and the git commit it was built from.
    hftnet_version: &'a str,
    hftnet_commit: &'a str,
    mode: &'a str,
    lab: Option<hftnet_lab::LabInfo>,
    message_bytes: usize,
    duration_per_row_s: f64,
    rounds: u32,
    clock: String,
    client_cpu: Option<usize>,
    server_cpu: Option<usize>,
    baseline: String,
    /// p50 of the floor row (bare cache-line round trip between the client
    /// and server CPUs), ns; `null` when it was not measured.
    floor_p50_ns: Option<u64>,
    environment: Environment,
    results: &'a [RungResult],
    /// The tick-to-trade rows (`null` with `--no-t2t`).
    tick_to_trade: Option<&'a [T2tResult]>,
}

/// The rounds and the measured time per row: `--rounds`/`--duration`, or
/// their defaults (shorter with `--quick`), checked with `--size`.
fn shape(a: &LabArgs) -> Result<(u32, Duration)> {
    let rounds = a.rounds.unwrap_or(if a.quick { 2 } else { 5 });
    let duration = a
        .duration
        .unwrap_or(Duration::from_secs(if a.quick { 1 } else { 3 }));
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    if !(LAB_MIN_SIZE..=LAB_MAX_SIZE).contains(&a.size) {
        bail!(
            "--size {} is outside {LAB_MIN_SIZE}..={LAB_MAX_SIZE} bytes (a probe header to the \
             largest UDP payload)",
            a.size
        );
    }
    // Each round gives every row a slice of duration / rounds.
    if duration < Duration::from_millis(u64::from(rounds)) {
        bail!(
            "--duration {duration:?} is too short: each row needs at least 1ms per round \
             ({rounds} rounds)"
        );
    }
    // A directory that cannot be made fails now, not after the run.
    if let Some(d) = &a.hgrm_dir {
        fs::create_dir_all(d)
            .with_context(|| format!("--hgrm-dir {}: cannot create the directory", d.display()))?;
    }
    Ok((rounds, duration))
}

/// A run's ladder configuration (the client and server CPUs: the first two
/// this process may use, or none, unpinned, with fewer), its clock, and the
/// flag Ctrl-C (or SIGTERM) sets: the run ends after the slice under way.
fn run_config(
    a: &LabArgs,
    rounds: u32,
    duration: Duration,
) -> Result<(LadderConfig, Clock, Arc<AtomicBool>)> {
    let cpus = hftnet_sys::sched::allowed_cpus().unwrap_or_default();
    let (client_cpu, server_cpu) = if cpus.len() >= 2 {
        (Some(cpus[0]), Some(cpus[1]))
    } else {
        (None, None)
    };
    let cfg = LadderConfig {
        size: a.size,
        duration,
        rounds,
        warmup: 1000,
        client_cpu,
        server_cpu,
    };
    Ok((cfg, Clock::new(), crate::util::stop_on_signals()?))
}

/// The JSON of `hftnet lab --ladder`.
#[derive(Serialize)]
struct PaperReport<'a> {
    mode: &'a str,
    hftnet_version: &'a str,
    hftnet_commit: &'a str,
    /// The lab's namespaces; `null` across two machines (`--peer`).
    lab: Option<hftnet_lab::LabInfo>,
    message_bytes: usize,
    duration_per_row_s: f64,
    rounds: u32,
    clock: String,
    client_cpu: Option<usize>,
    server_cpu: Option<usize>,
    /// Rungs this build or machine cannot run, and why.
    missing: &'a [String],
    environment: Environment,
    ladder: &'a [paper_ladder::LadderResult],
}

/// `hftnet lab --ladder`: the paper's tuning ladder in a fresh lab.
fn paper(a: &LabArgs) -> Result<ExitCode> {
    let (rounds, duration) = shape(a)?;
    // --no-t2t is accepted (scripts pass it to every lab run): the ladder
    // has no tick-to-trade table.
    hftnet_lab::check_privileges().map_err(|e| {
        anyhow::anyhow!("hftnet lab --ladder needs root (network namespaces, cpusets): {e}")
    })?;
    let (cfg, clock, stop) = run_config(a, rounds, duration)?;
    let (client_cpu, server_cpu) = (cfg.client_cpu, cfg.server_cpu);
    if let (Some(peer), Some(iface)) = (a.peer, &a.iface) {
        return paper_peer(a, peer, iface, cfg, clock, &stop);
    }
    let _lock = paper_ladder::HostLock::take().map_err(anyhow::Error::msg)?;
    let lab = Lab::builder()
        .napi(true)
        .build()
        .context("building the lab")?;
    let server = lab.exchange();
    let (rows, missing) = paper_ladder::rows(&server.addr().to_string(), server.iface(), 9000);
    let steps = paper_ladder::HostSteps::for_lab(server_cpu);
    let mut head: Vec<(String, String)> = vec![
        ("command".into(), "lab --ladder".into()),
        ("message_bytes".into(), a.size.to_string()),
        ("duration_per_row".into(), format!("{duration:?}")),
        ("rounds".into(), rounds.to_string()),
        (
            "client_cpu".into(),
            client_cpu.map_or("not pinned".into(), |c| c.to_string()),
        ),
        (
            "server_cpu".into(),
            server_cpu.map_or("not pinned".into(), |c| c.to_string()),
        ),
        ("clock".into(), clock.kind().to_string()),
        (
            "irq_affinity".into(),
            steps
                .irq_blocked
                .clone()
                .unwrap_or_else(|| "applied".into()),
        ),
        (
            "cpu_isolation".into(),
            match (&steps.isolation_blocked, steps.kernel_isolated) {
                (Some(w), _) => w.clone(),
                (None, true) => "the server CPU is isolated by the kernel (isolcpus)".into(),
                (None, false) => "cpuset at run time for the isolated rungs' slices, reverted \
                                  after each (hftnet-tune, snapshot in /var/lib/hftnet)"
                    .into(),
            },
        ),
    ];
    for m in &missing {
        head.push(("rung_not_in_this_build".into(), m.clone()));
    }
    head.extend(Environment::capture().lines());
    head.push(("hftnet_version".into(), VERSION.into()));
    head.push(("hftnet_commit".into(), COMMIT.into()));
    print!("{}", hftnet_bench::report::comment_lines(&head));

    let bar = progress_bar((rows.len() * rounds as usize) as u64);
    let hosts = LabHosts {
        server,
        client: lab.trader(),
    };
    let local = paper_ladder::LocalServer {
        spawn: Box::new(|cmd| server.spawn(cmd).map_err(std::io::Error::other)),
        // The lab's veth has no IRQs (HostSteps::for_lab says so).
        iface: None,
        server_cpu,
        steps,
    };
    let run = paper_ladder::LadderRun {
        server: &local,
        hosts: &hosts,
        cfg,
        clock,
    };
    let results = run.run(&rows, &stop, |row| {
        bar.inc(1);
        bar.set_message(format!("{} {}", row.step.label(), row.protocol));
    });
    bar.finish_and_clear();
    let code = finish_paper(
        a,
        "ladder",
        Some(lab.info()),
        &run.cfg,
        clock,
        &missing,
        &results,
        &stop,
        &head,
    );
    drop(local);
    lab.down().context("removing the lab")?;
    code
}

/// `hftnet lab --ladder --peer ADDR --iface IF`: the ladder's clients here,
/// its servers on the peer's `hftnet pong --serve-ladder ADDR`.
fn paper_peer(
    a: &LabArgs,
    peer: std::net::SocketAddr,
    iface: &str,
    cfg: LadderConfig,
    clock: Clock,
    stop: &Arc<AtomicBool>,
) -> Result<ExitCode> {
    use paper_ladder::LadderServer;
    let server = crate::ladder_peer::PeerServer::connect(peer)?;
    let server_iface = server
        .info
        .iface
        .clone()
        .unwrap_or_else(|| iface.to_string());
    // The rungs go to the address the peer's servers listen on (its
    // interface's), which need not be the control channel's.
    let (rows, missing) = paper_ladder::rows_between(
        &server.info.addr.to_string(),
        &server_iface,
        iface,
        9000,
        false,
    );
    let steps = server.steps();
    let mut head: Vec<(String, String)> = vec![
        ("command".into(), "lab --ladder --peer".into()),
        ("peer".into(), peer.to_string()),
        ("peer_iface".into(), server_iface.clone()),
        ("peer_rungs_on".into(), server.info.addr.to_string()),
        ("iface".into(), iface.to_string()),
        ("message_bytes".into(), a.size.to_string()),
        ("duration_per_row".into(), format!("{:?}", cfg.duration)),
        ("rounds".into(), cfg.rounds.to_string()),
        (
            "client_cpu".into(),
            cfg.client_cpu
                .map_or("not pinned".into(), |c| c.to_string()),
        ),
        (
            "peer_server_cpu".into(),
            server
                .info
                .server_cpu
                .map_or("not pinned".into(), |c| c.to_string()),
        ),
        ("clock".into(), clock.kind().to_string()),
        (
            "irq_affinity".into(),
            steps
                .irq_blocked
                .clone()
                .unwrap_or_else(|| "applied".into()),
        ),
        (
            "cpu_isolation".into(),
            steps
                .isolation_blocked
                .clone()
                .unwrap_or_else(|| "on the peer, for the isolated rungs' slices".into()),
        ),
    ];
    for m in &missing {
        head.push(("rung_not_run".into(), m.clone()));
    }
    head.extend(Environment::capture().lines());
    head.push(("hftnet_version".into(), VERSION.into()));
    head.push(("hftnet_commit".into(), COMMIT.into()));
    print!("{}", hftnet_bench::report::comment_lines(&head));
    let bar = progress_bar((rows.len() * cfg.rounds as usize) as u64);
    let run = paper_ladder::LadderRun {
        server: &server,
        hosts: &LoopbackHosts,
        // The server CPU is the peer's (the report says which).
        cfg: LadderConfig {
            server_cpu: server.info.server_cpu,
            ..cfg
        },
        clock,
    };
    let results = run.run(&rows, stop, |row| {
        bar.inc(1);
        bar.set_message(format!("{} {}", row.step.label(), row.protocol));
    });
    bar.finish_and_clear();
    server.bye();
    finish_paper(
        a,
        "ladder-peer",
        None,
        &run.cfg,
        clock,
        &missing,
        &results,
        stop,
        &head,
    )
}

/// The ladder's progress bar, with its ETA.
fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} ETA {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

/// The end of a ladder run: the table, the host lines, the JSON; exit 1
/// when no row measured anything.
#[allow(clippy::too_many_arguments)]
fn finish_paper(
    a: &LabArgs,
    mode: &str,
    lab: Option<hftnet_lab::LabInfo>,
    cfg: &LadderConfig,
    clock: Clock,
    missing: &[String],
    results: &[paper_ladder::LadderResult],
    stop: &AtomicBool,
    head: &[(String, String)],
) -> Result<ExitCode> {
    if stop.load(Ordering::Relaxed) {
        eprintln!("hftnet lab --ladder: interrupted; figures below cover the slices that ran");
    }
    println!(
        "\nthe paper's ladder: round trips (µs), {} B messages; vs prev / vs base = p50 change; \
         claim = the latency the seeds say the technique takes off prev (the rung before), \
         base (the baseline) or spin (the kernel's spinning UDP rung); gain = what it took off \
         that same reference here (negative: it added):",
        a.size
    );
    print!("{}", paper_ladder::table(results));
    for m in missing {
        println!("not run: {m}");
    }
    // The host steps as they went, once per distinct line.
    let mut said: Vec<&str> = Vec::new();
    for r in results {
        for h in &r.host {
            if !said.contains(&h.as_str()) {
                println!("host ({}): {h}", r.label);
                said.push(h);
            }
        }
    }
    let report = PaperReport {
        mode,
        hftnet_version: VERSION,
        hftnet_commit: COMMIT,
        lab,
        message_bytes: a.size,
        duration_per_row_s: cfg.duration.as_secs_f64(),
        rounds: cfg.rounds,
        clock: clock.kind().to_string(),
        client_cpu: cfg.client_cpu,
        server_cpu: cfg.server_cpu,
        missing,
        environment: Environment::capture(),
        ladder: results,
    };
    if let Some(p) = &a.json {
        fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
        println!("# json: {}", p.display());
    }
    if let Some(p) = &a.report {
        fs::write(p, paper_html(&report, head))
            .with_context(|| format!("writing {}", p.display()))?;
        println!("# report: {}", p.display());
    }
    if let Some(dir) = &a.hgrm_dir {
        let n = write_hgrms(dir, results.iter().map(|r| (r.name(), &r.rtt)))?;
        println!("# hgrm: {n} files in {}", dir.display());
    }
    let measured = results.iter().filter(|r| r.samples > 0).count();
    Ok(if measured == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn ladder(a: &LabArgs) -> Result<ExitCode> {
    let all: Vec<&str> = hftnet_io::backend::schemes().collect();
    let picks = parse_picks(&a.transports)?;
    // The schemes to build rungs for, in the order first named.
    let transports: Vec<String> = if picks.is_empty() {
        all.iter().map(|s| s.to_string()).collect()
    } else {
        let mut t: Vec<String> = Vec::new();
        for p in &picks {
            if !t.contains(&p.scheme) {
                t.push(p.scheme.clone());
            }
        }
        t
    };
    // Rows are named the same whatever the addresses: check them now, before
    // a lab is built for nothing.
    pick_rungs(
        rungs_for(&transports, "198.18.0.2", Some("veth0"), 9000),
        &picks,
    )?;
    let (rounds, duration) = shape(a)?;
    for h in &a.t2t_heartbeat {
        if *h < hftnet_apps::trader::MIN_HEARTBEAT || *h > Duration::from_secs(10) {
            bail!(
                "--t2t-heartbeat {h:?}: from {:?} to 10s (the exchange drops a client silent for \
                 15s)",
                hftnet_apps::trader::MIN_HEARTBEAT
            );
        }
    }
    // Ctrl-C ends the run after the current slice, so the lab is still removed.
    let (cfg, clock, stop) = run_config(a, rounds, duration)?;
    let (client_cpu, server_cpu) = (cfg.client_cpu, cfg.server_cpu);

    let privileged = hftnet_lab::check_privileges();
    let lab = match (&privileged, a.loopback) {
        (Ok(()), false) => Some(
            Lab::builder()
                .napi(!a.no_napi)
                .build()
                .context("building the lab")?,
        ),
        (Err(e), false) => {
            eprintln!("hftnet lab: {e}");
            eprintln!(
                "hftnet lab: falling back to a loopback-only run in this namespace (no veth, no multicast)"
            );
            None
        }
        (_, true) => None,
    };
    let (mode, transports, rungs, t2t_rows) = match &lab {
        Some(lab) => {
            let server = lab.exchange();
            let rungs = rungs_for(
                &transports,
                &server.addr().to_string(),
                Some(server.iface()),
                9000,
            );
            let t2t = tick_to_trade::rows_for(
                &transports,
                &lab.trader().addr().to_string(),
                &server.addr().to_string(),
                Some(lab.trader().iface()),
                T2T_PORT,
            );
            ("lab", transports.clone(), rungs, t2t)
        }
        None => {
            // Layer-2 rings and multicast need the lab's veth.
            let t: Vec<String> = transports
                .iter()
                .filter(|t| {
                    hftnet_io::backend::placement(t) != Some(hftnet_io::Placement::Interface)
                })
                .cloned()
                .collect();
            for skipped in transports.iter().filter(|x| !t.contains(x)) {
                eprintln!("hftnet lab: {skipped} skipped on loopback (it needs the lab's veth)");
            }
            let rungs = rungs_for(&t, "127.0.0.1", None, 19000);
            let t2t = tick_to_trade::rows_for(&t, "127.0.0.1", "127.0.0.1", None, T2T_PORT);
            ("loopback", t, rungs, t2t)
        }
    };
    // The tick-to-trade rows of the transports (and rows) the run names.
    let t2t_rows: Vec<T2tRow> = if a.no_t2t {
        Vec::new()
    } else {
        let rows = tick_to_trade::with_heartbeats(t2t_rows, &a.t2t_heartbeat);
        rows.into_iter()
            .filter(|r| {
                picks.is_empty()
                    || picks.iter().any(|p| {
                        p.scheme == r.transport && p.row.as_ref().is_none_or(|x| *x == r.strategy)
                    })
            })
            .collect()
    };
    let rungs = if picks.is_empty() {
        rungs
    } else {
        pick_rungs(rungs, &picks)?
    };
    if rungs.is_empty() {
        bail!("nothing to run: no transport left for a {mode} run");
    }
    // The floor first: a bare cache-line ping-pong between the same CPUs.
    let rungs: Vec<_> = std::iter::once(floor_rung()).chain(rungs).collect();

    let mut head: Vec<(String, String)> = vec![
        ("command".into(), "lab".into()),
        ("mode".into(), mode.into()),
        (
            "transports".into(),
            if picks.iter().any(|p| p.row.is_some()) {
                a.transports.join(",")
            } else {
                transports.join(",")
            },
        ),
        ("message_bytes".into(), a.size.to_string()),
        ("duration_per_row".into(), format!("{duration:?}")),
        ("rounds".into(), rounds.to_string()),
        (
            "tick_to_trade".into(),
            if a.no_t2t {
                "off (--no-t2t)".into()
            } else {
                format!(
                    "{} rows, each slice a day of {} messages at {T2T_RATE}/s, taker on {} \
                     symbols, orders over tcp",
                    t2t_rows.len(),
                    if a.quick {
                        T2T_MESSAGES_QUICK
                    } else {
                        T2T_MESSAGES
                    },
                    tick_to_trade::SYMBOLS.len()
                )
            },
        ),
        (
            "client_cpu".into(),
            client_cpu.map_or("not pinned".into(), |c| c.to_string()),
        ),
        (
            "server_cpu".into(),
            server_cpu.map_or("not pinned".into(), |c| c.to_string()),
        ),
        ("clock".into(), clock.kind().to_string()),
    ];
    if let Some(lab) = &lab {
        head.push((
            "veth_rx_path".into(),
            if lab.napi() {
                "NAPI (gro on, tso off), as a real NIC".into()
            } else {
                "backlog (no NAPI: busy polling cannot take effect)".into()
            },
        ));
        for h in lab.hosts() {
            head.push((
                format!("host_{}", h.role()),
                format!(
                    "{} {} {}/{}",
                    h.netns(),
                    h.iface(),
                    h.addr(),
                    h.prefix_len()
                ),
            ));
        }
    }
    head.extend(Environment::capture().lines());
    head.push(("hftnet_version".into(), VERSION.into()));
    head.push(("hftnet_commit".into(), COMMIT.into()));
    print!("{}", hftnet_bench::report::comment_lines(&head));

    let bar = ProgressBar::new(((rungs.len() + t2t_rows.len()) * rounds as usize) as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let progress = |_done: usize, _total: usize, rung: &hftnet_bench::ladder::Rung| {
        bar.inc(1);
        bar.set_message(format!("{}/{}", rung.transport, rung.strategy));
    };
    // The tick-to-trade slices run after each round of the ladder, so both
    // tables share the machine's drift.
    let mut t2t = TickToTrade::new(
        t2t_rows,
        T2tConfig {
            messages: if a.quick {
                T2T_MESSAGES_QUICK
            } else {
                T2T_MESSAGES
            },
            rate: T2T_RATE,
            trader_cpu: client_cpu,
            exchange_cpu: server_cpu,
            ..T2tConfig::default()
        },
    );
    let t2t_progress = |row: &T2tRow| {
        bar.inc(1);
        bar.set_message(format!("tick-to-trade {}/{}", row.transport, row.strategy));
    };
    let results = match &lab {
        Some(lab) => {
            let hosts = LabHosts {
                server: lab.exchange(),
                client: lab.trader(),
            };
            run_ladder_with(&hosts, &rungs, &cfg, clock, &stop, progress, |_| {
                t2t.run_round(&hosts, &stop, t2t_progress);
            })
        }
        None => run_ladder_with(&LoopbackHosts, &rungs, &cfg, clock, &stop, progress, |_| {
            t2t.run_round(&LoopbackHosts, &stop, t2t_progress);
        }),
    };
    bar.finish_and_clear();
    let t2t_results = t2t.results();
    if stop.load(Ordering::Relaxed) {
        eprintln!("hftnet lab: interrupted; figures below cover the slices that ran");
    }

    let base = baseline(&rungs).map_or_else(
        || "none".to_string(),
        |i| format!("{}/{}", rungs[i].transport, rungs[i].strategy),
    );
    println!(
        "\nround trips (RTT), {} B messages; p50 ratio vs {base}:",
        a.size
    );
    print!("{}", table(&results));
    let floor = results
        .iter()
        .find(|r| r.rung.kind == RungKind::CacheLineFloor);
    let floor_p50_ns = floor.and_then(|r| r.rtt_ns).map(|s| s.p50);
    match (floor_p50_ns, client_cpu, server_cpu) {
        (Some(p50), Some(c), Some(s)) => {
            println!("floor: bare cache-line RTT p50 {p50} ns on CPUs {c} and {s}");
        }
        _ => println!(
            "floor: not measured ({})",
            floor
                .and_then(|r| r.note.as_deref())
                .unwrap_or("no round trip completed")
        ),
    }
    if !a.no_t2t {
        println!(
            "\ntick-to-trade (µs): market data over each row, orders over tcp; internal = \
             trigger packet received -> the order's kernel transmit stamp (trader; call = -> \
             the send call, the application's part; ret = -> the send's return, which on veth \
             includes the exchange side's TCP receive), external = trigger packet sent -> \
             order received (exchange); hb = the trader's heartbeat, a short one keeps its send \
             path warm (--t2t-heartbeat):"
        );
        if t2t_results.is_empty() {
            println!("  no rows: none of the transports run carries datagrams");
        } else {
            print!("{}", tick_to_trade::table(&t2t_results));
        }
    }

    let report = LabReport {
        hftnet_version: VERSION,
        hftnet_commit: COMMIT,
        mode,
        lab: lab.as_ref().map(Lab::info),
        message_bytes: a.size,
        duration_per_row_s: duration.as_secs_f64(),
        rounds,
        clock: clock.kind().to_string(),
        client_cpu,
        server_cpu,
        baseline: base,
        floor_p50_ns,
        environment: Environment::capture(),
        results: &results,
        tick_to_trade: (!a.no_t2t).then_some(t2t_results.as_slice()),
    };
    if let Some(p) = &a.json {
        fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", p.display()))?;
        println!("# json: {}", p.display());
    }
    if let Some(p) = &a.report {
        fs::write(p, html(&report, &head)).with_context(|| format!("writing {}", p.display()))?;
        println!("# report: {}", p.display());
    }
    if let Some(dir) = &a.hgrm_dir {
        let n = write_hgrms(dir, results.iter().map(|r| (label(r), &r.rtt)))?;
        println!("# hgrm: {n} files in {}", dir.display());
    }
    if let Some(lab) = lab {
        lab.down().context("removing the lab")?;
    }
    // The floor alone is not a measured run: a transport row must have figures.
    let measured = results
        .iter()
        .filter(|r| r.rung.kind == RungKind::Transport && r.samples > 0)
        .count();
    Ok(if measured == 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A row's name in the report and its `.hgrm` file: `transport/strategy`.
fn label(r: &RungResult) -> String {
    format!("{}/{}", r.rung.transport, r.rung.strategy)
}

/// Writes one `.hgrm` (µs) per row with samples into `dir` (created if
/// missing); returns how many.
fn write_hgrms<'a>(
    dir: &std::path::Path,
    rows: impl IntoIterator<Item = (String, &'a hftnet_bench::stats::LatencyStats)>,
) -> Result<usize> {
    fs::create_dir_all(dir)
        .with_context(|| format!("--hgrm-dir {}: cannot create the directory", dir.display()))?;
    let mut n = 0;
    for (i, (name, rtt)) in rows
        .into_iter()
        .enumerate()
        .filter(|(_, (_, r))| !r.is_empty())
    {
        let p = dir.join(hftnet_bench::html::hgrm_file_name(i, &name));
        let mut w = std::io::BufWriter::new(
            fs::File::create(&p).with_context(|| format!("writing {}", p.display()))?,
        );
        rtt.write_hgrm(&mut w, hftnet_bench::stats::HGRM_MICROSECONDS)
            .and_then(|()| std::io::Write::flush(&mut w))
            .with_context(|| format!("writing {}", p.display()))?;
        n += 1;
    }
    Ok(n)
}

/// The HTML report of a ladder run: the UDP rungs (tuning, then bypass) as
/// a waterfall with each claim and verdict, every row's distribution and
/// histogram, the ladder's table and the environment.
fn paper_html(r: &PaperReport<'_>, head: &[(String, String)]) -> String {
    use hftnet_bench::html::{Report, Row, Step, Table, Waterfall, render};
    use hftnet_bench::paper::Verdict;
    let verdict = |x: &paper_ladder::LadderResult| match &x.verdict {
        Verdict::NotMeasurable(why) => format!("not measurable here: {why}"),
        v => v.word().to_string(),
    };
    let claim = |x: &paper_ladder::LadderResult| format!("{} — {}", x.claim.text, x.claim.source);
    let rows = r
        .ladder
        .iter()
        .map(|x| Row {
            note: x.note.clone(),
            ..Row::from_stats(x.name(), &x.rtt, x.lost)
        })
        .collect();
    let mut waterfall = Waterfall {
        caption: "UDP round trip p50 (µs), each rung keeping what the rungs before it set up; \
                  TCP's rungs are in the table below"
            .into(),
        steps: r
            .ladder
            .iter()
            .filter(|x| x.row.protocol != "tcp")
            .map(|x| Step {
                label: x.label.to_string(),
                p50_ns: x.rtt_ns.map(|s| s.p50),
                claim: claim(x),
                verdict: verdict(x),
                ..Step::default()
            })
            .collect(),
    };
    waterfall.fill_changes();
    let pct = |p: Option<f64>| p.map_or("–".into(), |x| format!("{:+.1}%", x + 0.0));
    let table = Table {
        caption: "The ladder, µs; changes are the p50's against the rung before (of the same \
                  protocol) and the baseline; gain is the reduction measured against the \
                  reference the claim names (negative: the rung added latency)."
            .into(),
        header: [
            "rung", "proto", "p50", "p99", "p99.9", "max", "vs prev", "vs base", "gain", "claim",
            "verdict",
        ]
        .map(String::from)
        .to_vec(),
        rows: r
            .ladder
            .iter()
            .map(|x| {
                let us = |f: fn(&hftnet_bench::stats::Summary) -> u64| {
                    x.rtt_ns
                        .as_ref()
                        .map_or("–".into(), |s| format!("{:.2}", f(s) as f64 / 1e3))
                };
                vec![
                    x.label.to_string(),
                    x.row.protocol.clone(),
                    us(|s| s.p50),
                    us(|s| s.p99),
                    us(|s| s.p99_9),
                    us(|s| s.max),
                    pct(x.change_vs_previous_pct),
                    pct(x.change_vs_baseline_pct),
                    // The reduction against the claim's reference, in the
                    // claim's terms (negative: the rung added latency).
                    x.measured_reduction_pct
                        .map_or("–".into(), |g| format!("{:.1}%", g + 0.0)),
                    claim(x),
                    verdict(x),
                ]
            })
            .collect(),
    };
    render(&Report {
        title: "hftnet lab --ladder: the paper's tuning ladder".into(),
        summary: format!(
            "{} run, {} B messages, {:.1} s per rung in {} interleaved rounds, clock {}. \
             Figures are full round trips; each rung is judged against the gain the seeds \
             claim for its technique.",
            r.mode, r.message_bytes, r.duration_per_row_s, r.rounds, r.clock
        ),
        rows,
        waterfall: Some(waterfall),
        tick_to_trade: None,
        tables: vec![("Rungs, claims and verdicts".into(), table)],
        environment: head.to_vec(),
    })
}

/// The HTML report of a run (`hftnet_bench::html`): its rows with their
/// histograms, the tick-to-trade table, and `head` (the run's settings and
/// environment, as printed) as the environment.
fn html(r: &LabReport<'_>, head: &[(String, String)]) -> String {
    use hftnet_bench::html::{Report, Row, Table, render};
    let rows = r
        .results
        .iter()
        .map(|x| Row {
            label: label(x),
            samples: x.samples,
            lost: x.lost,
            summary: x.rtt_ns,
            p50_ratio: x.p50_ratio,
            histogram: (!x.rtt.is_empty()).then(|| x.rtt.histogram().clone()),
            note: x.note.clone(),
        })
        .collect();
    let us = |x: Option<u64>| x.map_or("–".to_string(), |ns| format!("{:.2}", ns as f64 / 1e3));
    let tick_to_trade = r.tick_to_trade.map(|t| Table {
        caption: "Tick to trade, µs: market data over each row, orders over tcp. internal = \
                  trigger packet received → the order's kernel transmit stamp (at the trader; \
                  call = → the send call, ret = → the send's return); external = trigger \
                  packet sent → order received (at the exchange); hb = the trader's heartbeat."
            .into(),
        header: [
            "row", "hb µs", "orders", "accepted", "fills", "call p50", "int p50", "int p99",
            "int max", "ret p50", "ext p50", "ext p99", "ext max", "note",
        ]
        .map(String::from)
        .to_vec(),
        rows: t
            .iter()
            .map(|x| {
                let (i, e) = (x.internal_ns, x.external_ns);
                vec![
                    format!("{}/{}", x.row.transport, x.row.strategy),
                    x.row.trader_heartbeat_us.to_string(),
                    x.orders.to_string(),
                    x.accepted.to_string(),
                    x.fills.to_string(),
                    us(x.internal_to_send_call_ns.map(|s| s.p50)),
                    us(i.map(|s| s.p50)),
                    us(i.map(|s| s.p99)),
                    us(i.map(|s| s.max)),
                    us(x.internal_to_send_return_ns.map(|s| s.p50)),
                    us(e.map(|s| s.p50)),
                    us(e.map(|s| s.p99)),
                    us(e.map(|s| s.max)),
                    x.note.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    });
    render(&Report {
        title: "hftnet lab: round trips".into(),
        summary: format!(
            "{} run, {} B messages, {:.1} s per row in {} interleaved rounds, clock {}; p50 \
             ratio against {}. Figures are full round trips in µs.",
            r.mode, r.message_bytes, r.duration_per_row_s, r.rounds, r.clock, r.baseline
        ),
        rows,
        waterfall: None,
        tick_to_trade,
        tables: Vec::new(),
        environment: head.to_vec(),
    })
}
