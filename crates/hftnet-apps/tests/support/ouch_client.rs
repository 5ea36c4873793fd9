//! A scripted OUCH 5.0 client for the order-entry tests: the sans-IO
//! SoupBinTCP client ([`ClientConnection`]) and the `ouch50` codec over a
//! `tcp://...?framing=soupbin` transport (which cuts the 2-byte SoupBinTCP
//! length off each packet on receive and puts it on on send; the session
//! engine wants the byte stream, so the client puts it back and takes it
//! off). Every wait is bounded.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hftnet_io::{AnyTransport, Endpoint, Role, RxBurst, Transport};
use hftnet_trade::soupbin::{ClientConfig, ClientConnection, ClientEvent};
use hftnet_wire::ouch50::OutboundMessage;
use hftnet_wire::soupbintcp::{Password, RejectReason, Username};

/// One connection of a client and what it received.
pub struct Client {
    pub t: AnyTransport,
    pub c: ClientConnection,
    rx: RxBurst,
    buf: Vec<u8>,
    start: Instant,
    /// Sequenced messages, parsed, with their sequence numbers.
    pub seq: Vec<(u64, OutboundMessage)>,
    /// Sequence number given by the Login Accepted.
    pub logged_in: Option<u64>,
    pub rejected: Option<RejectReason>,
    pub end_of_session: bool,
    /// The server closed the socket.
    pub closed: bool,
}

pub fn config(user: &str, pass: &str) -> ClientConfig {
    ClientConfig::new(Username::new(user).unwrap(), Password::new(pass).unwrap())
}

impl Client {
    /// Connects to `addr` and queues the Login Request of `cfg`.
    pub fn connect(addr: SocketAddr, cfg: ClientConfig) -> Self {
        Self::try_connect(addr, cfg).unwrap_or_else(|e| panic!("{addr}: {e}"))
    }

    /// Connects, retrying for up to `wait` while nothing listens yet.
    pub fn connect_within(addr: SocketAddr, cfg: ClientConfig, wait: Duration) -> Self {
        let end = Instant::now() + wait;
        loop {
            match Self::try_connect(addr, cfg) {
                Ok(c) => return c,
                Err(e) if Instant::now() >= end => panic!("{addr}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    fn try_connect(addr: SocketAddr, cfg: ClientConfig) -> Result<Self, String> {
        let uri = format!("tcp://{addr}?framing=soupbin");
        let t = Endpoint::parse(&uri)
            .map_err(|e| e.to_string())?
            .open(Role::Client)
            .map_err(|e| e.to_string())?;
        let c = ClientConnection::new(cfg, 0).unwrap();
        let mut me = Self {
            t,
            c,
            rx: RxBurst::new(16, 65_536),
            buf: vec![0; 65_537],
            start: Instant::now(),
            seq: Vec::new(),
            logged_in: None,
            rejected: None,
            end_of_session: false,
            closed: false,
        };
        me.transmit();
        Ok(me)
    }

    pub fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Writes what the session has to send, frame by frame.
    pub fn transmit(&mut self) {
        let now = self.now();
        let n = self.c.poll_transmit(now, &mut self.buf);
        send_frames(&mut self.t, &self.buf[..n]);
    }

    /// Sends one OUCH message as Unsequenced Data.
    pub fn send(&mut self, msg: &[u8]) {
        let now = self.now();
        let n = self.c.send_unsequenced(now, msg, &mut self.buf).unwrap();
        send_frames(&mut self.t, &self.buf[..n]);
    }

    /// Sends one SoupBinTCP packet as is (type byte first; the transport
    /// adds the length).
    pub fn send_packet(&mut self, packet: &[u8]) {
        self.t.send(packet, None).unwrap();
    }

    /// Reads and handles input until `done` or `timeout`; returns `done`.
    pub fn until(&mut self, timeout: Duration, mut done: impl FnMut(&Self) -> bool) -> bool {
        let end = Instant::now() + timeout;
        while !done(self) {
            if Instant::now() >= end || self.closed {
                return done(self);
            }
            self.poll(Duration::from_millis(2));
        }
        true
    }

    /// One receive (up to `wait`), timers, transmit.
    pub fn poll(&mut self, wait: Duration) {
        if self.closed {
            return;
        }
        match self.t.recv_burst_until(&mut self.rx, Instant::now() + wait) {
            Ok(n) => {
                for i in 0..n {
                    let (m, meta) = self.rx.get(i);
                    let len = (meta.wire_len as u16).to_be_bytes();
                    let now = self.start.elapsed().as_nanos() as u64;
                    self.c.handle_input(now, &len, |_| {});
                    let (seq, logged, rej, eos) = (
                        &mut self.seq,
                        &mut self.logged_in,
                        &mut self.rejected,
                        &mut self.end_of_session,
                    );
                    self.c.handle_input(now, m, |e| match e {
                        ClientEvent::LoggedIn { sequence, .. } => *logged = Some(sequence),
                        ClientEvent::LoginRejected(r) => *rej = Some(r),
                        ClientEvent::Sequenced { sequence, message } => seq.push((
                            sequence,
                            OutboundMessage::parse(message)
                                .unwrap_or_else(|e| panic!("outbound OUCH {message:?}: {e}")),
                        )),
                        ClientEvent::EndOfSession => *eos = true,
                        _ => {}
                    });
                }
            }
            Err(_) => self.closed = true,
        }
        let now = self.now();
        if self.c.poll_timeout().is_some_and(|t| now >= t) {
            self.c.handle_timeout(now);
        }
        if !self.closed {
            self.transmit();
        }
    }

    /// The sequenced messages of one type byte.
    pub fn of_type(&self, t: u8) -> Vec<OutboundMessage> {
        self.seq
            .iter()
            .filter(|(_, m)| m.msg_type() == t)
            .map(|(_, m)| *m)
            .collect()
    }
}

/// Sends the SoupBinTCP frames in `bytes` one by one (the transport puts
/// the length back).
pub fn send_frames(t: &mut AnyTransport, bytes: &[u8]) {
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let len = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
        t.send(&bytes[at + 2..at + 2 + len], None).unwrap();
        at += 2 + len;
    }
}
