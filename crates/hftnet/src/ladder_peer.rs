//! The ladder across two machines: `hftnet pong --serve-ladder ADDR` on the
//! peer serves each rung's server over a small TCP control channel, and
//! `hftnet lab --ladder --peer ADDR --iface IF` runs the clients here.
//!
//! The channel is one line per message, each a word and, where it has one,
//! a JSON object:
//!
//! ```text
//! -> HELLO hftnet-ladder 1
//! <- HELLO hftnet-ladder 1 {"iface":…,"server_cpu":…,"steps":{…}}
//! -> START {"row":"udp/block","port":9000,"pinned":true,"isolate":false,"max_ms":…}
//! <- READY {"host_note":null}          (or ERROR why)
//! -> STOP
//! <- DONE {pong's JSON report}         (or DONE null)
//! -> BYE
//! ```
//!
//! The client names a row of the ladder (`scheme/strategy`) and a port; the
//! peer builds the server's URI itself, from its own interface and address,
//! so a client cannot make it open anything else (no file output, no DPDK
//! arguments, no other interface). It serves one client at a time (another
//! is told `ERROR busy`), isolates its server CPU with cpusets for the rungs
//! that ask (reverted after each slice), and stops the server and reverts
//! when the client goes away, falls silent, or on Ctrl-C. Lines are bounded
//! ([`MAX_LINE`]); there is no authentication: listen on an address only
//! the client can reach.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, ExitCode};
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::paper_ladder::{HostSteps, LadderRow, LadderServer, LocalServer, Served};
use hftnet_bench::paper::Step;

/// The protocol's name and version in HELLO.
const HELLO: &str = "HELLO hftnet-ladder 1";

/// Longest line either end accepts.
pub const MAX_LINE: usize = 64 * 1024;

/// How long either end waits for the other's next line.
const IDLE: Duration = Duration::from_secs(600);

/// What the peer says of itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The peer's interface facing the client (its layer-2 rungs' `iface`).
    pub iface: Option<String>,
    /// The address its rungs' servers listen on (its interface's).
    pub addr: std::net::Ipv4Addr,
    /// The CPU its pinned servers run on.
    pub server_cpu: Option<usize>,
    /// What its IRQ and isolation steps can do.
    pub steps: HostSteps,
}

#[derive(Debug, Serialize, Deserialize)]
struct Start {
    /// `scheme/strategy`, a row of the ladder.
    row: String,
    port: u16,
    pinned: bool,
    isolate: bool,
    /// The server ends by itself after this long.
    max_ms: u64,
}

/// Longest a served slice may last (`max_ms`).
const MAX_SLICE: Duration = Duration::from_secs(3600);

#[derive(Debug, Serialize, Deserialize)]
struct Ready {
    host_note: Option<String>,
}

/// Lines from a stream, at most [`MAX_LINE`] bytes each; what a read that
/// timed out had received stays for the next call.
struct Lines<R> {
    r: R,
    buf: Vec<u8>,
}

impl<R: Read> Lines<R> {
    fn new(r: R) -> Self {
        Lines { r, buf: Vec::new() }
    }

    /// The next line (without its newline); `None` at the end of the
    /// stream. A read timeout is returned as the error it is (`WouldBlock`
    /// or `TimedOut`), keeping what came.
    fn next_line(&mut self) -> std::io::Result<Option<String>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut line: Vec<u8> = self.buf.drain(..=i).collect();
                line.pop();
                return String::from_utf8(line).map(Some).map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, "a line not UTF-8")
                });
            }
            if self.buf.len() > MAX_LINE {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("a control line longer than {MAX_LINE} bytes"),
                ));
            }
            let mut chunk = [0u8; 4096];
            let n = self.r.read(&mut chunk)?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the control channel ended inside a line",
                    ))
                };
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

/// The row the peer serves for `start`: the server URI built here, from the
/// peer's own address and interface, for a ladder row of a network backend.
fn row_for(start: &Start, info: &PeerInfo) -> Result<LadderRow, String> {
    let (scheme, strategy) = start
        .row
        .split_once('/')
        .ok_or_else(|| format!("row {:?} is not scheme/strategy", start.row))?;
    if matches!(scheme, "mem" | "shm") {
        return Err(format!("{scheme}:// is not a network transport"));
    }
    if start.port < 1024 {
        return Err(format!("port {} is below 1024", start.port));
    }
    if Duration::from_millis(start.max_ms) > MAX_SLICE {
        return Err(format!("max_ms {} is over an hour", start.max_ms));
    }
    let ctx = hftnet_io::RungContext {
        server_ip: &info.addr.to_string(),
        iface: info.iface.as_deref(),
        port: start.port,
    };
    let spec = hftnet_io::backend::rungs(scheme, &ctx)
        .and_then(|r| r.into_iter().find(|r| r.strategy == strategy))
        .ok_or_else(|| format!("no ladder row {:?} in this build", start.row))?;
    Ok(LadderRow {
        step: Step::Baseline,
        protocol: scheme.to_string(),
        row: start.row.clone(),
        port: start.port,
        server_uri: spec.server_uri,
        client_uri: spec.client_uri,
        pinned: start.pinned,
        irq_affinity: false,
        isolated: start.isolate,
        needs_busy_poll: spec.needs_busy_poll,
    })
}

/// `hftnet pong --serve-ladder ADDR`: serves ladder clients until Ctrl-C.
pub fn serve(listen: SocketAddr, iface: Option<String>, cpu: Option<usize>) -> Result<ExitCode> {
    let stop = crate::util::stop_on_signals()?;
    let _lock = crate::paper_ladder::HostLock::take().map_err(anyhow::Error::msg)?;
    let listener = TcpListener::bind(listen)
        .with_context(|| format!("listening for ladder clients on {listen}"))?;
    listener.set_nonblocking(true)?;
    let server_cpu = cpu.or_else(|| {
        let c = hftnet_sys::sched::allowed_cpus().unwrap_or_default();
        (c.len() >= 2).then(|| c[1])
    });
    let local = LocalServer {
        spawn: Box::new(|cmd: &mut Command| cmd.spawn()),
        iface: iface.clone(),
        server_cpu,
        steps: HostSteps::for_iface(iface.as_deref(), server_cpu),
    };
    let addr = match &iface {
        Some(i) => hftnet_io::L2Iface::lookup(i)
            .with_context(|| format!("--iface {i}"))?
            .ipv4
            .map(|(a, _)| a)
            .with_context(|| format!("--iface {i} has no IPv4 address"))?,
        None => match listen.ip() {
            std::net::IpAddr::V4(a) if !a.is_unspecified() => a,
            _ => bail!("listen on the IPv4 address the rungs should use, or name --iface"),
        },
    };
    let info = PeerInfo {
        iface,
        addr,
        server_cpu,
        steps: local.steps(),
    };
    println!("# command: pong --serve-ladder");
    println!("# listen: {}", listener.local_addr()?);
    println!("# rungs_on: {addr}");
    println!(
        "# server_cpu: {}",
        server_cpu.map_or("not pinned".into(), |c| c.to_string())
    );
    std::io::stdout().flush()?;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((conn, from)) => {
                eprintln!("hftnet pong --serve-ladder: client {from}");
                if let Err(e) = session(conn, &listener, &local, &info, &stop) {
                    eprintln!("hftnet pong --serve-ladder: client {from}: {e}");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e).context("accepting a ladder client"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One client's session: its servers are stopped (and their host steps
/// reverted) when it ends, however it ends.
fn session(
    conn: TcpStream,
    listener: &TcpListener,
    local: &LocalServer<'_>,
    info: &PeerInfo,
    stop: &std::sync::atomic::AtomicBool,
) -> Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_nodelay(true)?;
    // Short reads so Ctrl-C is seen; the idle limit is counted below.
    conn.set_read_timeout(Some(Duration::from_millis(200)))?;
    // A client that stops reading cannot hold the peer (and its isolation).
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut w = conn.try_clone()?;
    let mut r = Lines::new(conn);
    let mut served: Option<Box<dyn Served + '_>> = None;
    let mut idle = std::time::Instant::now();
    let mut said_hello = false;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        // Another client while this one is served: told so, not left
        // waiting in the backlog.
        if let Ok((mut other, from)) = listener.accept() {
            let _ = other.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = other.write_all(b"ERROR busy: this peer serves another ladder client\n");
            eprintln!("hftnet pong --serve-ladder: {from} refused (busy)");
        }
        let line = match r.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => return Ok(()),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if idle.elapsed() > IDLE {
                    bail!("silent for {IDLE:?}: dropped");
                }
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        idle = std::time::Instant::now();
        let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let reply = match word {
            "HELLO" if line == HELLO => {
                said_hello = true;
                format!("{HELLO} {}", serde_json::to_string(info)?)
            }
            "HELLO" => format!("ERROR this peer speaks {HELLO:?}, not {line:?}"),
            _ if !said_hello => "ERROR say HELLO first".to_string(),
            "START" => {
                if let Some(s) = served.take() {
                    s.stop();
                }
                match serde_json::from_str::<Start>(rest) {
                    Err(e) => format!("ERROR a START that does not parse: {e}"),
                    Ok(s) => match row_for(&s, info)
                        .and_then(|row| local.start(&row, Duration::from_millis(s.max_ms)))
                    {
                        Ok(x) => {
                            let note = x.host_note();
                            served = Some(x);
                            format!(
                                "READY {}",
                                serde_json::to_string(&Ready { host_note: note })?
                            )
                        }
                        Err(e) => format!("ERROR {}", e.replace('\n', " ")),
                    },
                }
            }
            "STOP" => {
                let report = served.take().and_then(|s| s.stop());
                format!("DONE {}", serde_json::to_string(&report)?)
            }
            "BYE" => return Ok(()),
            _ => format!("ERROR unknown command {word:?} (HELLO, START, STOP, BYE)"),
        };
        w.write_all(reply.as_bytes())?;
        w.write_all(b"\n")?;
    }
}

/// The ladder's server on a peer, over its control channel.
pub struct PeerServer {
    conn: Mutex<(Lines<TcpStream>, TcpStream)>,
    /// An exchange failed: the answers may be out of step, so the channel
    /// is not used again.
    dead: std::sync::atomic::AtomicBool,
    /// What the peer said of itself.
    pub info: PeerInfo,
}

impl PeerServer {
    /// Connects to `hftnet pong --serve-ladder` at `addr`.
    ///
    /// # Errors
    /// Unreachable, silent (10 s), or not a ladder peer.
    pub fn connect(addr: SocketAddr) -> Result<PeerServer> {
        let c = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).with_context(|| {
            format!("connecting to the ladder peer {addr} (is `hftnet pong --serve-ladder {addr}` running there?)")
        })?;
        c.set_nodelay(true)?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        let w = c.try_clone()?;
        let mut me = PeerServer {
            conn: Mutex::new((Lines::new(c), w)),
            dead: std::sync::atomic::AtomicBool::new(false),
            info: PeerInfo {
                iface: None,
                addr: std::net::Ipv4Addr::UNSPECIFIED,
                server_cpu: None,
                steps: HostSteps::for_iface(None, None),
            },
        };
        let hello = me.ask(HELLO).map_err(anyhow::Error::msg)?;
        let json = hello
            .strip_prefix(HELLO)
            .map(str::trim)
            .ok_or_else(|| anyhow::anyhow!("{addr} is not a ladder peer: it said {hello:?}"))?;
        me.info = serde_json::from_str(json)
            .with_context(|| format!("{addr}'s HELLO does not parse: {json:?}"))?;
        let c = me
            .conn
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        c.1.set_read_timeout(Some(IDLE))?;
        c.0.r.set_read_timeout(Some(IDLE))?;
        Ok(me)
    }

    /// Sends one line, returns the answer (an `ERROR` answer as `Err`).
    /// After a failed exchange (timeout, closed) the channel is dead: the
    /// answers could be one behind.
    fn ask(&self, line: &str) -> Result<String, String> {
        if self.dead.load(Ordering::Relaxed) {
            return Err("the control channel to the ladder peer failed earlier".into());
        }
        let mut c = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (r, w) = &mut *c;
        let answer = w
            .write_all(line.as_bytes())
            .and_then(|()| w.write_all(b"\n"))
            .map_err(|e| format!("the ladder peer: {e}"))
            .and_then(|()| match r.next_line() {
                Ok(Some(a)) => Ok(a),
                Ok(None) => Err("the ladder peer closed the control channel".into()),
                Err(e) => Err(format!("the ladder peer: {e}")),
            });
        match answer {
            Ok(a) => match a.strip_prefix("ERROR ") {
                Some(why) => Err(format!("the ladder peer: {why}")),
                None => Ok(a),
            },
            Err(e) => {
                self.dead.store(true, Ordering::Relaxed);
                Err(e)
            }
        }
    }

    /// Ends the session.
    pub fn bye(&self) {
        let mut c = self
            .conn
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = c.1.write_all(b"BYE\n");
    }
}

struct PeerServed<'a> {
    peer: &'a PeerServer,
    note: Option<String>,
}

impl LadderServer for PeerServer {
    fn start(&self, row: &LadderRow, max: Duration) -> Result<Box<dyn Served + '_>, String> {
        let s = serde_json::to_string(&Start {
            row: row.row.clone(),
            port: row.port,
            pinned: row.pinned,
            isolate: row.isolated,
            max_ms: u64::try_from(max.as_millis()).unwrap_or(u64::MAX),
        })
        .map_err(|e| e.to_string())?;
        let a = self.ask(&format!("START {s}"))?;
        let ready: Ready = a
            .strip_prefix("READY ")
            .and_then(|j| serde_json::from_str(j).ok())
            .ok_or_else(|| format!("the ladder peer answered START with {a:?}"))?;
        Ok(Box::new(PeerServed {
            peer: self,
            note: ready.host_note,
        }))
    }

    fn steps(&self) -> HostSteps {
        self.info.steps.clone()
    }
}

impl Served for PeerServed<'_> {
    fn host_note(&self) -> Option<String> {
        self.note.clone()
    }

    fn stop(self: Box<Self>) -> Option<serde_json::Value> {
        let a = self.peer.ask("STOP").ok()?;
        serde_json::from_str(a.strip_prefix("DONE ")?).ok()?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_bounded_and_whole() {
        let mut r = Lines::new(&b"START {}\nSTOP\n"[..]);
        assert_eq!(r.next_line().unwrap().as_deref(), Some("START {}"));
        assert_eq!(r.next_line().unwrap().as_deref(), Some("STOP"));
        assert_eq!(r.next_line().unwrap(), None);
        let long = vec![b'x'; MAX_LINE + 10];
        assert!(Lines::new(&long[..]).next_line().is_err());
        // Cut off before its newline.
        assert!(Lines::new(&b"STO"[..]).next_line().is_err());
        assert!(Lines::new(&b"\xff\n"[..]).next_line().is_err());
    }

    /// A read that times out mid-line keeps what came: the line is whole
    /// at the next call.
    #[test]
    fn a_timeout_mid_line_loses_nothing() {
        struct Slow(Vec<&'static [u8]>);
        impl Read for Slow {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                match self.0.pop() {
                    Some(b"") => Err(std::io::ErrorKind::WouldBlock.into()),
                    Some(x) => {
                        b[..x.len()].copy_from_slice(x);
                        Ok(x.len())
                    }
                    None => Ok(0),
                }
            }
        }
        let mut r = Lines::new(Slow(vec![b"P\n", b"", b"STA", b""]));
        assert!(r.next_line().is_err());
        assert!(r.next_line().is_err());
        assert_eq!(r.next_line().unwrap().as_deref(), Some("STAP"));
    }

    #[test]
    fn the_peer_builds_its_own_uris_for_network_rows_only() {
        let info = PeerInfo {
            iface: Some("eth9".into()),
            addr: "198.18.0.2".parse().unwrap(),
            server_cpu: Some(1),
            steps: HostSteps::for_iface(None, None),
        };
        let start = |row: &str, port| Start {
            row: row.into(),
            port,
            pinned: true,
            isolate: false,
            max_ms: 1000,
        };
        let r = row_for(&start("udp/block", 9000), &info).unwrap();
        assert_eq!(r.server_uri, "udp://198.18.0.2:9000?rx=block");
        let r = row_for(&start("packet/spin", 9100), &info).unwrap();
        // (The backend numbers its rows' ports from the base: spin is its
        // second.)
        assert_eq!(r.server_uri, "packet://eth9?port=9101&rx=spin");
        assert!(row_for(&start("shm/spin", 9000), &info).is_err());
        assert!(row_for(&start("udp/nope", 9000), &info).is_err());
        assert!(row_for(&start("udp", 9000), &info).is_err());
        assert!(row_for(&start("udp/block", 80), &info).is_err());
        let mut long = start("udp/block", 9000);
        long.max_ms = 10 * 3_600_000;
        assert!(row_for(&long, &info).is_err());
    }
}
