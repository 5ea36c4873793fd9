//! Deterministic simulation of SoupBinTCP sessions: one server, several
//! clients, in-memory pipes with latency that deliver bytes in random
//! chunks, virtual time, and connections cut at random moments (the bytes in
//! flight are lost, as with a broken TCP connection). Every client
//! reconnects with its next expected sequence number and must end up with
//! every published message exactly once, in order; heartbeats must keep
//! idle connections up, and silence must end them on time.

#[path = "support/sim.rs"]
mod sim;

use hftnet_trade::rng::Rng;
use hftnet_trade::soupbin::{
    ClientConfig, ClientConnection, ClientCounters, ClientEvent, CloseReason, Server, ServerConfig,
    ServerConnection, ServerCounters, ServerEvent, StreamId,
};
use hftnet_wire::soupbintcp::{Password, Session, Username};
use sim::{Pipe, chunks};

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

/// One client with its current connection and the server's end of it.
struct Trader {
    name: &'static str,
    cfg: ClientConfig,
    client: Option<ClientConnection>,
    server_side: Option<ServerConnection>,
    to_server: Pipe,
    to_client: Pipe,
    reconnect_at: Option<u64>,
    delivered: Vec<(u64, Vec<u8>)>,
    orders_sent: Vec<Vec<u8>>,
    orders_received: Vec<Vec<u8>>,
    reconnects: u64,
    ended: bool,
    /// Counters summed over the connections dropped, both ends.
    client_totals: ClientCounters,
    server_totals: ServerCounters,
}

fn creds() -> (Username, Password) {
    (
        Username::new("alice").unwrap(),
        Password::new("secret").unwrap(),
    )
}

impl Trader {
    fn new(name: &'static str, server: &Server, now: u64) -> Self {
        let (u, p) = creds();
        let cfg = ClientConfig::new(u, p);
        let mut t = Self {
            name,
            cfg,
            client: None,
            server_side: None,
            to_server: Pipe::default(),
            to_client: Pipe::default(),
            reconnect_at: None,
            delivered: Vec::new(),
            orders_sent: Vec::new(),
            orders_received: Vec::new(),
            reconnects: 0,
            ended: false,
            client_totals: ClientCounters::default(),
            server_totals: ServerCounters::default(),
        };
        t.connect(server, now);
        t
    }

    fn connect(&mut self, server: &Server, now: u64) {
        self.client = Some(ClientConnection::new(self.cfg, now).unwrap());
        self.server_side = Some(server.connect(now));
        self.to_server = Pipe::default();
        self.to_client = Pipe::default();
    }

    /// Cuts the connection: bytes in flight are lost.
    fn disconnect(&mut self, now: u64, reconnect_after: u64) {
        if let Some(c) = self.client.take() {
            self.cfg = c.reconnect_config();
            self.client_totals.add(&c.counters());
        }
        if let Some(s) = self.server_side.take() {
            self.server_totals.add(&s.counters());
        }
        self.to_server = Pipe::default();
        self.to_client = Pipe::default();
        self.reconnect_at = (!self.ended).then_some(now + reconnect_after);
    }

    /// One turn of both ends' loops at `now`.
    fn step(&mut self, now: u64, server: &Server, rng: &mut Rng, latency: u64, orders: bool) {
        if self.client.is_none() {
            if self.reconnect_at.is_some_and(|t| now >= t) {
                self.reconnect_at = None;
                self.reconnects += 1;
                self.connect(server, now);
            } else {
                return;
            }
        }
        let (Some(c), Some(s)) = (self.client.as_mut(), self.server_side.as_mut()) else {
            return;
        };
        let mut buf = vec![0u8; 70_000];

        // Server side: input in random chunks, timeouts, output.
        let input = self.to_server.take(now);
        for part in chunks(&input, rng) {
            s.handle_input(now, part, server, |e| {
                if let ServerEvent::Unsequenced(m) = e {
                    self.orders_received.push(m.to_vec());
                }
            });
        }
        if s.poll_timeout().is_some_and(|t| now >= t) {
            s.handle_timeout(now);
        }
        let n = s.poll_transmit(now, server, &mut buf);
        self.to_client.send(now + latency, &buf[..n]);

        // Client side.
        let input = self.to_client.take(now);
        for part in chunks(&input, rng) {
            c.handle_input(now, part, |e| match e {
                ClientEvent::Sequenced { sequence, message } => {
                    self.delivered.push((sequence, message.to_vec()));
                }
                ClientEvent::EndOfSession => self.ended = true,
                ClientEvent::Gap { .. } => panic!("{}: gap reported", self.name),
                _ => {}
            });
        }
        if c.poll_timeout().is_some_and(|t| now >= t) {
            c.handle_timeout(now);
        }
        // Now and then an order.
        if orders && c.is_logged_in() && rng.chance(0.05) {
            let order = format!("{}-order-{}", self.name, self.orders_sent.len()).into_bytes();
            let n = c.send_unsequenced(now, &order, &mut buf).unwrap();
            self.orders_sent.push(order);
            self.to_server.send(now + latency, &buf[..n]);
        }
        let n = c.poll_transmit(now, &mut buf);
        self.to_server.send(now + latency, &buf[..n]);

        let closed = c.close_reason().or(s.close_reason());
        if let Some(reason) = closed {
            assert_eq!(
                reason,
                CloseReason::EndOfSession,
                "{}: unexpected close",
                self.name
            );
            // Let the End of Session reach the client before cutting.
            if self.ended {
                self.disconnect(now, 0);
            }
        }
    }
}

fn server() -> (Server, StreamId) {
    let (u, p) = creds();
    let mut server = Server::new(ServerConfig::new(u, p)).unwrap();
    let id = server.open(Session::new("DAY1").unwrap(), None).unwrap();
    (server, id)
}

fn run(seed: u64) {
    let mut rng = Rng::new(seed);
    let (mut server, stream) = server();
    let mut traders = vec![
        Trader::new("t1", &server, 0),
        Trader::new("t2", &server, 0),
        Trader::new("t3", &server, 0),
    ];
    let mut published: Vec<Vec<u8>> = Vec::new();
    let mut now = 0;
    let end_at = 14 * S;
    while now < 16 * S {
        // Publishing from 0 to 8 s and 12 to 14 s; idle in between, where
        // only heartbeats keep the connections up.
        let publishing = now < 8 * S || (12 * S..end_at).contains(&now);
        if publishing && rng.chance(0.3) {
            let len = rng.range(1, 60) as usize;
            let mut m = format!("m{}-", published.len() + 1).into_bytes();
            m.resize(len.max(m.len()), b'.');
            assert_eq!(
                server.publish(stream, &m).unwrap(),
                published.len() as u64 + 1
            );
            published.push(m);
        }
        if now == end_at {
            server.end(stream).unwrap();
        }
        for t in &mut traders {
            // Cuts while publishing (the idle stretch must stay up), and not
            // in the last 100 ms before the end of the session: a client
            // cut then could not log back in to read the tail, as the
            // specification has it (an ended session takes no logins).
            if publishing && now + 100 * MS < end_at && t.client.is_some() && rng.chance(0.002) {
                let after = rng.range(0, 50) * MS;
                t.disconnect(now, after);
            }
            let latency = rng.range(1, 3) * MS;
            t.step(now, &server, &mut rng, latency, publishing);
        }
        now += MS;
    }

    assert!(published.len() > 2000, "{}", published.len());
    for t in &mut traders {
        t.disconnect(now, 0);
        assert!(t.ended, "{}: no end of session", t.name);
        assert!(t.reconnects >= 3, "{}: {} reconnects", t.name, t.reconnects);
        let (c, s) = (t.client_totals, t.server_totals);
        assert!(s.replayed > 0, "{}: nothing replayed", t.name);
        // A cut can lose a Login Request or a Login Accepted in flight.
        assert!(
            (1..=s.logins_accepted).contains(&c.logins_accepted)
                && s.logins_accepted <= t.reconnects + 1,
            "{}: {} / {} logins for {} reconnects",
            t.name,
            c.logins_accepted,
            s.logins_accepted,
            t.reconnects
        );
        assert_eq!(c.sequenced_in, published.len() as u64, "{}", t.name);
        assert_eq!(c.end_of_session, 1, "{}", t.name);
        assert_eq!(
            c.traffic.bad_frames.total() + s.traffic.bad_frames.total(),
            0,
            "{}",
            t.name
        );
        // Exactly once, in order.
        assert_eq!(t.delivered.len(), published.len(), "{}", t.name);
        for (i, (sequence, m)) in t.delivered.iter().enumerate() {
            assert_eq!(*sequence, i as u64 + 1, "{}", t.name);
            assert_eq!(m, &published[i], "{}: message {sequence}", t.name);
        }
        // The idle 4 s were bridged by heartbeats both ways, never by a
        // timeout.
        assert_eq!((c.server_timeouts, s.client_timeouts), (0, 0), "{}", t.name);
        assert!(
            c.traffic.heartbeats_out >= 3,
            "{}: {}",
            t.name,
            c.traffic.heartbeats_out
        );
        assert!(
            s.traffic.heartbeats_out >= 3,
            "{}: {}",
            t.name,
            s.traffic.heartbeats_out
        );
        assert_eq!((c.duplicates, c.missing), (0, 0), "{}", t.name);
        // Orders (unsequenced) may be lost with a cut, never duplicated or
        // reordered.
        assert!(!t.orders_received.is_empty());
        let mut sent = t.orders_sent.iter();
        for o in &t.orders_received {
            assert!(sent.any(|s| s == o), "{}: order {o:?} out of order", t.name);
        }
    }
}

#[test]
fn reconnects_lose_and_duplicate_nothing() {
    for seed in [1, 2, 3] {
        run(seed);
    }
}

#[test]
fn silence_ends_connections_on_time() {
    let (mut server, stream) = server();
    let mut rng = Rng::new(9);
    let mut t = Trader::new("quiet", &server, 0);
    // Log in and exchange a little.
    let mut now = 0;
    while now < 2 * S {
        if now % (100 * MS) == 0 {
            server.publish(stream, b"tick").unwrap();
        }
        t.step(now, &server, &mut rng, MS, false);
        now += MS;
    }
    assert!(t.client.as_ref().unwrap().is_logged_in());
    // The client goes silent (its process hangs): only the server runs.
    let last_client_bytes = now;
    let mut buf = vec![0u8; 70_000];
    let s = t.server_side.as_mut().unwrap();
    let mut closed_at = None;
    while now < last_client_bytes + 20 * S && closed_at.is_none() {
        let input = t.to_server.take(now);
        s.handle_input(now, &input, &server, |_| {});
        if s.poll_timeout().is_some_and(|d| now >= d) && s.handle_timeout(now).is_some() {
            closed_at = Some(now);
        }
        let _ = s.poll_transmit(now, &server, &mut buf);
        now += MS;
    }
    // The client's last bytes (a heartbeat at most 1 s before it stopped,
    // delivered 1 ms later) + 15 s.
    let closed_at = closed_at.expect("server never dropped the silent client");
    assert_eq!(s.close_reason(), Some(CloseReason::PeerTimeout));
    assert!(
        (last_client_bytes + 14 * S..=last_client_bytes + 15 * S + MS).contains(&closed_at),
        "dropped at {closed_at}, client silent since {last_client_bytes}"
    );
    assert_eq!(s.counters().client_timeouts, 1);

    // The other way: the server stops; the client gives up 15 s after the
    // last byte it received.
    let c = t.client.as_mut().unwrap();
    let input = t.to_client.take(u64::MAX);
    c.handle_input(now, &input, |_| {});
    // Its last byte: a heartbeat, now.
    c.handle_input(now, b"\x00\x01H", |_| {});
    let last = now;
    let heartbeats = c.counters().traffic.heartbeats_out;
    let mut out = [0u8; 64];
    while c.handle_timeout(now).is_none() {
        // It keeps sending heartbeats meanwhile.
        let _ = c.poll_transmit(now, &mut out);
        now += MS;
    }
    assert_eq!(now, last + 15 * S);
    assert_eq!(c.close_reason(), Some(CloseReason::PeerTimeout));
    let sent = c.counters().traffic.heartbeats_out - heartbeats;
    assert!((14..=15).contains(&sent), "{sent} heartbeats in 15 s");
}
