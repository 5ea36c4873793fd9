//! A TCP server of many concurrent connections (`tcp://` with several
//! clients at once), for request/response protocols whose sessions live side
//! by side — SoupBinTCP order entry, where every trader holds its own
//! session.
//!
//! Layer: beside [`TcpTransport`](super::TcpTransport), which serves one
//! connection at a time behind the [`Transport`](crate::Transport) trait.
//! Both cut messages out of the stream the same way (the URI's `framing=`)
//! and set connections up with the same options.
//!
//! Invariants: connections are non-blocking; a send never waits: what the
//! kernel does not take stays in the connection's buffer and leaves, in
//! order, on the next send or poll, and a connection whose buffer is full
//! (a client that stopped reading) is reported to the caller, who decides
//! (usually: close it). A [`ConnId`] names one connection for its whole life
//! and never a later one in the same slot. Once the connection table has
//! reached its largest size nothing here allocates.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_sys::sock::{self, PollSet};
use serde::Serialize;

use super::{Conn, StreamBufs, TcpConfig, new_socket, setup_conn};
use crate::common;
use crate::error::{OpenError, from_io};
use crate::transport::{RxBurst, RxStrategy};
use crate::Role;

/// Largest number of concurrent connections a [`TcpServer`] can be opened with.
pub const MAX_SERVER_CONNECTIONS: usize = 4096;

/// One connection of a [`TcpServer`], for its whole life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct ConnId {
    slot: u32,
    generation: u32,
}

impl ConnId {
    /// The slot it occupies (reused by later connections).
    #[must_use]
    pub fn slot(self) -> usize {
        self.slot as usize
    }
}

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "connection {}.{}", self.slot, self.generation)
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// The peer closed it (end of stream).
    PeerClosed,
    /// The peer reset it, or the kernel reported an error on it (errno).
    Error(i32),
}

/// What [`TcpServer::poll`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerEvent {
    /// A new connection.
    Accepted {
        /// Its name from now on.
        id: ConnId,
        /// The client's address.
        peer: Option<SocketAddr>,
    },
    /// `n` whole messages from `id` are in the burst (slots `0..n`).
    Messages {
        /// Where they came from.
        id: ConnId,
        /// How many.
        n: usize,
    },
    /// A connection ended; its id names nothing from now on.
    Closed {
        /// The connection.
        id: ConnId,
        /// Why.
        why: CloseReason,
    },
}

/// Why a send to one connection failed; the server and its other
/// connections are unaffected.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The id names no open connection (closed, or never opened).
    #[error("{0} is not open")]
    NotOpen(ConnId),
    /// The connection's send buffer is full: the client reads slower than
    /// the server writes (or stopped reading). Close it or try later.
    #[error("{id}: the send buffer is full ({pending} bytes wait); the client does not read")]
    Full {
        /// The connection.
        id: ConnId,
        /// Bytes waiting to leave.
        pending: usize,
    },
    /// A message is larger than the framing can carry.
    #[error("a {len}-byte message is larger than the framing's {max}-byte limit")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The kernel refused the send (the connection is then closed and
    /// reported by the next poll).
    #[error("{id}: {cause}")]
    Kernel {
        /// The connection.
        id: ConnId,
        /// What the kernel said.
        cause: SyscallError,
    },
}

/// Counters of a [`TcpServer`], since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections refused because the table was full.
    pub refused: u64,
    /// Connections that ended (by either side).
    pub closed: u64,
    /// Connections open now.
    pub open: usize,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent (handed to the kernel or queued behind earlier ones).
    pub messages_out: u64,
    /// Sends refused because a connection's buffer was full.
    pub sends_full: u64,
    /// `accept` calls that failed for a reason other than "none waiting"
    /// (out of descriptors or memory, a connection's network error): counted,
    /// and the server goes on.
    pub accept_errors: u64,
}

#[derive(Debug)]
struct Slot {
    generation: u32,
    conn: Option<Conn>,
    /// An error found while sending or receiving, reported by the next poll.
    failed: Option<i32>,
    /// The peer closed its side: reported once what it sent before is delivered.
    eof: bool,
    /// The stream buffers of the slot's last connection, for the next one
    /// (an accept allocates none once the slot has been used).
    spare: Option<StreamBufs>,
}

impl Slot {
    /// Ends the slot's connection (closing its socket), keeping its buffers.
    fn retire(&mut self) {
        if let Some(c) = self.conn.take() {
            self.spare = Some(c.into_bufs());
        }
    }
}

/// A listening TCP socket and its open connections.
#[derive(Debug)]
pub struct TcpServer {
    cfg: TcpConfig,
    listener: socket2::Socket,
    local: Option<SocketAddr>,
    slots: Vec<Slot>,
    max: usize,
    poll: PollSet,
    /// Where the next round-robin sweep starts, so a busy client cannot
    /// starve the others.
    next: usize,
    stats: ServerStats,
    nofile_raised: Option<(u64, u64)>,
}

/// Descriptors kept free beside the connections and the listener, for
/// what the process opens later (state files, captures, a re-request
/// socket).
const NOFILE_RESERVE: u64 = 16;

/// Checks that the process may hold `connections` more sockets (and the
/// listener) beside the descriptors open now; raises the soft
/// `RLIMIT_NOFILE` up to the hard limit when that is enough. Returns the
/// raise `(before, after)`, if any.
///
/// # Errors
/// [`OpenError::Descriptors`] when even the hard limit is too low.
fn fit_descriptors(connections: usize) -> Result<Option<(u64, u64)>, OpenError> {
    let lim = hftnet_sys::sched::nofile_limit()
        .map_err(OpenError::setup("reading the descriptor limit"))?;
    let Some(soft) = lim.soft else {
        return Ok(None);
    };
    // Less the descriptor of the listing itself.
    let open = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count().saturating_sub(1)) as u64;
    let need = open + connections as u64 + 1 + NOFILE_RESERVE;
    if need <= soft {
        return Ok(None);
    }
    let too_low = OpenError::Descriptors {
        connections,
        open,
        need,
        soft,
        hard: lim.hard,
    };
    if lim.hard.is_some_and(|h| h < need) {
        return Err(too_low);
    }
    match hftnet_sys::sched::set_nofile_soft(need) {
        Ok(()) => Ok(Some((soft, need))),
        Err(_) => Err(too_low),
    }
}

impl TcpServer {
    /// Listens on `cfg.addr` for up to `max_connections` concurrent clients
    /// (a client beyond that is accepted and closed at once, and counted).
    ///
    /// The process must be allowed the descriptors: the soft
    /// `RLIMIT_NOFILE` is raised (up to the hard limit) when it is below
    /// the descriptors open now plus `max_connections`, the listener and a
    /// reserve of 16 ([`TcpServer::nofile_raised`] says so).
    ///
    /// # Errors
    /// [`OpenError`] naming the failing step; `max_connections` outside
    /// 1..=[`MAX_SERVER_CONNECTIONS`] is refused, and so is a hard
    /// `RLIMIT_NOFILE` too low for it ([`OpenError::Descriptors`]).
    pub fn open(cfg: TcpConfig, max_connections: usize) -> Result<Self, OpenError> {
        if !(1..=MAX_SERVER_CONNECTIONS).contains(&max_connections) {
            return Err(OpenError::Uri(crate::UriError::BadValue {
                param: "connections".into(),
                value: max_connections.to_string(),
                expected: format!("from 1 to {MAX_SERVER_CONNECTIONS} concurrent connections"),
            }));
        }
        if cfg.tx_timestamps {
            return Err(OpenError::Uri(crate::UriError::BadValue {
                param: "timestamps".into(),
                value: "tx".into(),
                expected: "0 on a server of many connections: transmit stamps are read per \
                           connection (a client's tcp://, or a one-connection server opened as a \
                           transport)"
                    .into(),
            }));
        }
        common::check_role_addr(cfg.addr, cfg.socket.bind, Role::Server)?;
        let nofile_raised = fit_descriptors(max_connections)?;
        let s = new_socket(&cfg)?;
        cfg.socket.apply(&s)?;
        if cfg.socket.reuseaddr.is_none() {
            sock::set_int(s.as_fd(), sock::SO_REUSEADDR, 1)
                .map_err(OpenError::setup("setting SO_REUSEADDR"))?;
        }
        common::bind(&s, cfg.addr)?;
        s.listen(128)
            .map_err(|e| OpenError::setup("listening")(from_io("listen", e)))?;
        s.set_nonblocking(true).map_err(|e| {
            OpenError::setup("making the listener non-blocking")(from_io("fcntl", e))
        })?;
        let local = s.local_addr().ok().and_then(|a| a.as_socket());
        Ok(Self {
            cfg,
            listener: s,
            local,
            slots: Vec::new(),
            max: max_connections,
            poll: PollSet::new(),
            next: 0,
            stats: ServerStats::default(),
            nofile_raised,
        })
    }

    /// The soft `RLIMIT_NOFILE` [`TcpServer::open`] raised to fit its
    /// connections: `(before, after)`; `None` when it was high enough.
    #[must_use]
    pub fn nofile_raised(&self) -> Option<(u64, u64)> {
        self.nofile_raised
    }

    /// The address it listens on (with the port the kernel chose for port 0).
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local
    }

    /// The configuration it was opened with.
    #[must_use]
    pub fn config(&self) -> &TcpConfig {
        &self.cfg
    }

    /// Counters since it opened.
    #[must_use]
    pub fn stats(&self) -> ServerStats {
        ServerStats {
            open: self.slots.iter().filter(|s| s.conn.is_some()).count(),
            ..self.stats
        }
    }

    /// The client address of an open connection.
    #[must_use]
    pub fn peer(&self, id: ConnId) -> Option<SocketAddr> {
        self.conn(id).and_then(|c| c.peer)
    }

    /// Whether `id` is open.
    #[must_use]
    pub fn is_open(&self, id: ConnId) -> bool {
        self.conn(id).is_some()
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        let s = self.slots.get(id.slot as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.conn.as_ref()
    }

    fn id(&self, slot: usize) -> ConnId {
        ConnId {
            slot: slot as u32,
            generation: self.slots[slot].generation,
        }
    }

    /// Closes `id` (what it had not sent yet is dropped). Returns whether
    /// it was open. No [`ServerEvent::Closed`] follows for it.
    pub fn close(&mut self, id: ConnId) -> bool {
        match self.slots.get_mut(id.slot as usize) {
            Some(s) if s.generation == id.generation && s.conn.is_some() => {
                s.retire();
                s.failed = None;
                self.stats.closed += 1;
                true
            }
            _ => false,
        }
    }

    /// Sends `msgs` to `id`, each behind its length prefix, in one write.
    /// Never waits: what the kernel does not take now leaves first on the
    /// next send or poll. Returns how many messages were taken (fewer than
    /// given when the connection's buffer filled: the rest is the caller's).
    ///
    /// # Errors
    /// [`SendError`]; only the connection named is affected.
    pub fn send(&mut self, id: ConnId, msgs: &[&[u8]]) -> Result<usize, SendError> {
        let max = self.cfg.framing.max_message();
        if let Some(m) = msgs.iter().find(|m| m.len() > max) {
            return Err(SendError::TooLarge { len: m.len(), max });
        }
        let slot = match self.slots.get_mut(id.slot as usize) {
            Some(s) if s.generation == id.generation && s.failed.is_none() => s,
            _ => return Err(SendError::NotOpen(id)),
        };
        let Some(conn) = slot.conn.as_mut() else {
            return Err(SendError::NotOpen(id));
        };
        // Move what still waits to the front, then frame the new messages
        // behind it, so everything leaves in order.
        if conn.pend.0 > 0 {
            conn.tx.copy_within(conn.pend.0..conn.pend.1, 0);
            conn.pend = (0, conn.pend.1 - conn.pend.0);
        }
        let (count, end) = conn
            .frame(msgs.iter().copied(), conn.pend.1)
            .map_err(|cause| SendError::Kernel { id, cause })?;
        if count == 0 && !msgs.is_empty() {
            self.stats.sends_full += 1;
            return Err(SendError::Full {
                id,
                pending: conn.pend.1 - conn.pend.0,
            });
        }
        conn.pend.1 = end;
        self.stats.messages_out += count as u64;
        if let Err(cause) = conn.flush(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) {
            slot.failed = Some(cause.errno().unwrap_or(libc::EIO));
            return Err(SendError::Kernel { id, cause });
        }
        Ok(count)
    }

    /// Bytes waiting to leave on `id` (0 when all were sent or it is closed).
    #[must_use]
    pub fn pending(&self, id: ConnId) -> usize {
        self.conn(id).map_or(0, |c| c.pend.1 - c.pend.0)
    }

    /// Waits until `deadline` (`None`: until something happens) for the
    /// next event: a connection, messages of one connection (into `burst`),
    /// or an end. Spins with `rx=spin` in the URI; sleeps in `ppoll`
    /// otherwise. `Ok(None)`: the deadline passed.
    ///
    /// # Errors
    /// Only unexpected kernel failures of the listener or the poll; a
    /// failing connection is a [`ServerEvent::Closed`].
    pub fn poll(
        &mut self,
        burst: &mut RxBurst,
        deadline: Option<Instant>,
    ) -> Result<Option<ServerEvent>, SyscallError> {
        let spin = matches!(self.cfg.socket.strategy, RxStrategy::Spin);
        loop {
            if let Some(ev) = self.sweep(burst) {
                return Ok(Some(ev));
            }
            // Nothing buffered: ask the kernel.
            self.poll.clear();
            self.poll.push(self.listener.as_fd());
            for s in &self.slots {
                if let Some(c) = &s.conn {
                    // Also woken when a connection with bytes waiting to
                    // leave can take them.
                    self.poll
                        .push_with_write(c.sock.as_fd(), c.pend.0 < c.pend.1);
                }
            }
            let timeout = if spin {
                Some(Duration::ZERO)
            } else {
                deadline.map(|d| d.saturating_duration_since(Instant::now()))
            };
            let ready = self.poll.wait(timeout)?;
            if ready > 0 {
                // Every ready connection is read (the poll's indices name
                // them until the table changes), then a new client is
                // accepted; the sweep above delivers round robin.
                self.read_ready();
                if self.poll.readable(0)
                    && let Some(ev) = self.accept()?
                {
                    return Ok(Some(ev));
                }
                continue;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                burst.set_len(0);
                return Ok(None);
            }
        }
    }

    /// Flushes what waits to leave, reports a failed send, and delivers
    /// messages already buffered, round robin from `next`.
    fn sweep(&mut self, burst: &mut RxBurst) -> Option<ServerEvent> {
        let n = self.slots.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            let id = self.id(i);
            let slot = &mut self.slots[i];
            let Some(conn) = slot.conn.as_mut() else {
                continue;
            };
            if let Some(errno) = slot.failed.take() {
                slot.retire();
                self.stats.closed += 1;
                self.next = (i + 1) % n;
                return Some(ServerEvent::Closed {
                    id,
                    why: CloseReason::Error(errno),
                });
            }
            if conn.pend.0 < conn.pend.1
                && let Err(e) = conn.flush(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
            {
                slot.retire();
                self.stats.closed += 1;
                self.next = (i + 1) % n;
                return Some(ServerEvent::Closed {
                    id,
                    why: CloseReason::Error(e.errno().unwrap_or(libc::EIO)),
                });
            }
            let got = conn.deliver(burst, 0);
            if got > 0 {
                burst.set_len(got);
                self.stats.messages_in += got as u64;
                self.next = (i + 1) % n;
                return Some(ServerEvent::Messages { id, n: got });
            }
            if slot.eof {
                slot.retire();
                slot.eof = false;
                self.stats.closed += 1;
                self.next = (i + 1) % n;
                return Some(ServerEvent::Closed {
                    id,
                    why: CloseReason::PeerClosed,
                });
            }
        }
        None
    }

    /// Reads once from every connection the last poll found ready (the
    /// next [`TcpServer::sweep`] delivers, round robin); an end or an error
    /// is marked on the slot and reported by the sweep after what came
    /// before it.
    fn read_ready(&mut self) {
        // Poll index 0 is the listener; connections follow in slot order.
        let mut p = 1;
        for slot in &mut self.slots {
            let Some(conn) = slot.conn.as_mut() else {
                continue;
            };
            let readable = self.poll.readable(p);
            p += 1;
            if !readable || slot.eof || slot.failed.is_some() {
                continue;
            }
            conn.compact();
            let fd = conn.sock.as_fd();
            let room = &mut conn.rx[conn.end..];
            if room.is_empty() {
                // A full buffer: the sweep delivers (or the framing is
                // refused) before more is read.
                continue;
            }
            match sock::recv(fd, room, libc::MSG_DONTWAIT) {
                Ok(0) => slot.eof = true,
                Ok(k) => {
                    conn.end += k;
                    if self.cfg.quickack {
                        let _ = sock::set_int(fd, sock::TCP_QUICKACK, 1);
                    }
                }
                Err(e) if e.would_block() || e.errno() == Some(libc::EINTR) => {}
                Err(e) => slot.failed = Some(e.errno().unwrap_or(libc::EIO)),
            }
        }
    }

    /// Accepts one waiting connection, if any.
    fn accept(&mut self) -> Result<Option<ServerEvent>, SyscallError> {
        let (s, addr) = match self.listener.accept() {
            Ok(v) => v,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                return Ok(None);
            }
            // The client gave up between the poll and the accept.
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => return Ok(None),
            // Out of descriptors or memory, or a network error of the
            // connection being accepted: counted, and the server goes on
            // (pausing a moment: the connection stays queued, so the
            // listener stays readable).
            Err(_) => {
                self.stats.accept_errors += 1;
                std::thread::sleep(Duration::from_millis(1));
                return Ok(None);
            }
        };
        let peer = addr.as_socket();
        let free = self.slots.iter().position(|s| s.conn.is_none());
        let open = self.slots.iter().filter(|s| s.conn.is_some()).count();
        if open >= self.max {
            // Full: the client sees the connection close at once.
            drop(s);
            self.stats.refused += 1;
            return Ok(None);
        }
        // A free slot lends the buffers of its last connection.
        let bufs = free.and_then(|i| self.slots[i].spare.take());
        let conn = match setup_conn(&self.cfg, s, peer, None, bufs) {
            Ok(c) => c,
            // The client went away while being set up: nothing to report
            // (the buffers went with it; the slot allocates next time).
            Err(_) => return Ok(None),
        };
        let i = match free {
            Some(i) => {
                let s = &mut self.slots[i];
                s.generation = s.generation.wrapping_add(1);
                s.conn = Some(conn);
                s.failed = None;
                s.eof = false;
                i
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    conn: Some(conn),
                    failed: None,
                    eof: false,
                    spare: None,
                });
                self.slots.len() - 1
            }
        };
        self.stats.accepted += 1;
        Ok(Some(ServerEvent::Accepted {
            id: self.id(i),
            peer,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;
    use crate::tcp::Framing;

    fn server(q: &str, max: usize) -> TcpServer {
        let uri = crate::Uri::parse(&format!("tcp://127.0.0.1:0?{q}")).unwrap();
        TcpServer::open(TcpConfig::from_uri(&uri).unwrap(), max).unwrap()
    }

    fn soup(frames: &[&[u8]]) -> Vec<u8> {
        let mut w = Vec::new();
        for f in frames {
            w.extend_from_slice(&(f.len() as u16).to_be_bytes());
            w.extend_from_slice(f);
        }
        w
    }

    fn next(s: &mut TcpServer, burst: &mut RxBurst) -> ServerEvent {
        s.poll(burst, Some(Instant::now() + Duration::from_secs(5)))
            .unwrap()
            .expect("an event within 5 s")
    }

    /// Several clients at once, each with its own stream: messages come
    /// back tagged with the right connection, answers reach only their
    /// client, and an end is reported once, naming the connection.
    #[test]
    fn serves_concurrent_clients_with_soupbin_framing() {
        for q in ["framing=soupbin&rx=block", "framing=soupbin&rx=spin"] {
            let mut s = server(q, 8);
            let addr = s.local_addr().unwrap();
            let mut burst = RxBurst::new(16, 2048);
            let mut clients = Vec::new();
            let mut ids = Vec::new();
            for _ in 0..3 {
                clients.push(TcpStream::connect(addr).unwrap());
                match next(&mut s, &mut burst) {
                    ServerEvent::Accepted { id, peer } => {
                        assert_eq!(peer, Some(clients.last().unwrap().local_addr().unwrap()));
                        ids.push(id);
                    }
                    e => panic!("{q}: expected a connection, got {e:?}"),
                }
            }
            // Each client sends two frames in one write, split oddly.
            for (k, c) in clients.iter_mut().enumerate() {
                let a = vec![b'U', k as u8, 1];
                let b = vec![b'U', k as u8, 2, 2];
                let wire = soup(&[&a, &b]);
                c.write_all(&wire[..3]).unwrap();
                c.write_all(&wire[3..]).unwrap();
            }
            let mut got: Vec<(ConnId, Vec<u8>)> = Vec::new();
            while got.len() < 6 {
                match next(&mut s, &mut burst) {
                    ServerEvent::Messages { id, n } => {
                        for i in 0..n {
                            got.push((id, burst.get(i).0.to_vec()));
                        }
                    }
                    e => panic!("{q}: expected messages, got {e:?}"),
                }
            }
            for (k, id) in ids.iter().enumerate() {
                let mine: Vec<_> = got.iter().filter(|(i, _)| i == id).map(|(_, m)| m.clone()).collect();
                assert_eq!(mine, vec![vec![b'U', k as u8, 1], vec![b'U', k as u8, 2, 2]], "{q}");
            }
            // Answers go to one client only, framed.
            assert_eq!(s.send(ids[1], &[b"Hhello", b"H"]).unwrap(), 2);
            let mut buf = [0u8; 11];
            clients[1].read_exact(&mut buf).unwrap();
            assert_eq!(&buf[..], &soup(&[b"Hhello", b"H"])[..]);
            // A closed client is reported once; its id is dead from then on.
            drop(clients.remove(0));
            match next(&mut s, &mut burst) {
                ServerEvent::Closed { id, why } => {
                    assert_eq!((id, why), (ids[0], CloseReason::PeerClosed), "{q}");
                }
                e => panic!("{q}: expected the close, got {e:?}"),
            }
            assert!(!s.is_open(ids[0]));
            assert!(matches!(s.send(ids[0], &[b"x"]), Err(SendError::NotOpen(_))));
            // The freed slot is reused under a new id; the old one stays dead.
            let _c = TcpStream::connect(addr).unwrap();
            let ServerEvent::Accepted { id: new, .. } = next(&mut s, &mut burst) else {
                panic!("{q}: expected a connection");
            };
            assert_eq!(new.slot(), ids[0].slot());
            assert_ne!(new, ids[0]);
            assert!(matches!(s.send(ids[0], &[b"x"]), Err(SendError::NotOpen(_))));
            let st = s.stats();
            assert_eq!((st.accepted, st.closed, st.open, st.messages_in), (4, 1, 3, 6), "{q}");
            assert!(s.poll(&mut burst, Some(Instant::now() + Duration::from_millis(20))).unwrap().is_none());
        }
    }

    /// A client beyond the limit is closed at once and counted; the others
    /// are untouched.
    #[test]
    fn refuses_clients_beyond_the_limit() {
        let mut s = server("framing=soupbin", 1);
        let addr = s.local_addr().unwrap();
        let mut burst = RxBurst::new(4, 256);
        let mut first = TcpStream::connect(addr).unwrap();
        assert!(matches!(next(&mut s, &mut burst), ServerEvent::Accepted { .. }));
        let mut second = TcpStream::connect(addr).unwrap();
        second.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // Polling accepts and drops the second client.
        let _ = s.poll(&mut burst, Some(Instant::now() + Duration::from_millis(200)));
        let mut b = [0u8; 1];
        assert_eq!(second.read(&mut b).unwrap_or(0), 0, "the second client was closed");
        assert_eq!(s.stats().refused, 1);
        first.write_all(&soup(&[b"R"])).unwrap();
        assert!(matches!(next(&mut s, &mut burst), ServerEvent::Messages { n: 1, .. }));
        assert!(TcpServer::open(TcpConfig::new(addr), 0).is_err());
        let e = TcpServer::open(TcpConfig::new("127.0.0.1:0".parse().unwrap()), 99_999).unwrap_err();
        assert!(e.to_string().contains("connections"), "{e}");
    }

    /// A client that stops reading fills its buffer: sends to it report
    /// `Full`, never block, and the other clients are served meanwhile;
    /// what was taken arrives whole and in order once it reads again.
    #[test]
    fn a_client_that_stops_reading_never_blocks_the_server() {
        let mut s = server("framing=soupbin&sndbuf=4096", 4);
        let addr = s.local_addr().unwrap();
        let mut burst = RxBurst::new(4, 256);
        let mut slow = TcpStream::connect(addr).unwrap();
        let ServerEvent::Accepted { id: slow_id, .. } = next(&mut s, &mut burst) else {
            panic!("expected a connection");
        };
        let mut fast = TcpStream::connect(addr).unwrap();
        let ServerEvent::Accepted { id: fast_id, .. } = next(&mut s, &mut burst) else {
            panic!("expected a connection");
        };
        let msg = [b'S'; 1000];
        let mut taken = 0usize;
        let mut full = false;
        for _ in 0..100_000 {
            match s.send(slow_id, &[&msg]) {
                Ok(1) => taken += 1,
                Err(SendError::Full { pending, .. }) => {
                    assert!(pending > 0);
                    full = true;
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(full, "the buffers filled after {taken} messages");
        assert!(s.pending(slow_id) > 0);
        assert_eq!(s.stats().sends_full, 1);
        // The other client is still served.
        fast.write_all(&soup(&[b"R"])).unwrap();
        assert!(matches!(next(&mut s, &mut burst), ServerEvent::Messages { id, .. } if id == fast_id));
        assert_eq!(s.send(fast_id, &[b"H"]).unwrap(), 1);
        let mut b = [0u8; 3];
        fast.read_exact(&mut b).unwrap();
        assert_eq!(&b, &[0, 1, b'H']);
        // The slow client reads everything that was taken, in order.
        let reader = std::thread::spawn(move || {
            let mut all = vec![0u8; taken * 1002];
            slow.read_exact(&mut all).unwrap();
            all
        });
        let until = Instant::now() + Duration::from_secs(30);
        while s.pending(slow_id) > 0 && Instant::now() < until {
            let _ = s.poll(&mut burst, Some(Instant::now() + Duration::from_millis(5)));
        }
        assert_eq!(s.pending(slow_id), 0);
        let all = reader.join().unwrap();
        for (i, f) in all.chunks(1002).enumerate() {
            assert_eq!(&f[..2], &1000u16.to_be_bytes(), "frame {i}");
            assert!(f[2..].iter().all(|&b| b == b'S'), "frame {i}");
        }
        assert!(matches!(
            s.send(fast_id, &[&[0u8; 70_000][..]]),
            Err(SendError::TooLarge { len: 70_000, max: 65_535 })
        ));
        assert_eq!(s.config().framing, Framing::Soupbin);
    }

    /// A client with a flood of messages waiting does not starve another:
    /// every ready connection is read, and delivery goes round robin, so
    /// the quiet client's one message comes within the first events.
    #[test]
    fn a_busy_client_does_not_starve_a_quiet_one() {
        let mut s = server("framing=soupbin", 4);
        let addr = s.local_addr().unwrap();
        let mut burst = RxBurst::new(16, 256);
        let mut busy = TcpStream::connect(addr).unwrap();
        let ServerEvent::Accepted { id: busy_id, .. } = next(&mut s, &mut burst) else {
            panic!("expected a connection");
        };
        let mut quiet = TcpStream::connect(addr).unwrap();
        let ServerEvent::Accepted { id: quiet_id, .. } = next(&mut s, &mut burst) else {
            panic!("expected a connection");
        };
        let flood: Vec<&[u8]> = vec![b"Uxx"; 5000];
        busy.write_all(&soup(&flood)).unwrap();
        quiet.write_all(&soup(&[b"Uquiet"])).unwrap();
        // Both are in the kernel's buffers before the server looks (not a
        // timing assertion: only the order of events below is checked).
        thread_sleep_ms(100);
        let mut events = 0;
        loop {
            match next(&mut s, &mut burst) {
                ServerEvent::Messages { id, n } if id == quiet_id => {
                    assert_eq!((n, burst.get(0).0), (1, &b"Uquiet"[..]));
                    break;
                }
                ServerEvent::Messages { id, .. } => assert_eq!(id, busy_id),
                e => panic!("unexpected {e:?}"),
            }
            events += 1;
            assert!(
                events <= 3,
                "the quiet client waited behind {events} bursts of the busy one"
            );
        }
    }

    fn thread_sleep_ms(ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}
