//! A scripted SoupBinTCP 4 / OUCH 5.0 order server for tests: the sans-IO
//! `hftnet_trade::soupbin` server engine and the `ouch50` codec over
//! `hftnet_io::TcpServer`, on its own thread. It answers an Enter Order
//! with Accepted (and, when told to, a full Execution at the order's
//! price), a Replace with Replaced, a Cancel with Canceled, an Account
//! Query with the next UserRefNum; it ignores a UserRefNum not above the
//! last one it processed (OUCH's rule), and logs everything it received.
//! Scripted faults: close the connection after N orders (once), send a
//! bad OUCH message and a bad SoupBinTCP frame after each login.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hftnet_io::tcp::ServerEvent as TcpEvent;
use hftnet_io::{RxBurst, TcpConfig, TcpServer, Uri};
use hftnet_trade::soupbin::{Server, ServerConfig, ServerConnection, ServerEvent, StreamId};
use hftnet_wire::ouch50::{
    AccountQueryResponseRepr, CancelReason, Capacity, ClOrdId, CrossType, Display, InboundMessage,
    IntermarketSweep, LiquidityFlag, Options, OrderAcceptedRepr, OrderCanceledRepr,
    OrderExecutedRepr, OrderReplacedRepr, OrderState, OutboundMessage, Side, TimeInForce,
};
use hftnet_wire::soupbintcp::{Password, Session, Username};

/// What the server does.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Execute every enter in full at its price.
    pub fill: bool,
    /// Close the connection once, after this many orders (enters and
    /// replaces) were processed.
    pub drop_after: Option<usize>,
    /// After the drop of `drop_after`, stop listening (the server is gone).
    pub vanish: bool,
    /// With `vanish`: called on the server's thread with its address once
    /// it stopped listening, and the stop flag (e.g. to leave a listener in
    /// its place that never accepts), returning when the flag is set.
    pub after_vanish: Option<fn(SocketAddr, &AtomicBool)>,
    /// Fall silent (no data, no heartbeats, connection kept open) on the
    /// first connection once this many orders were processed.
    pub mute_after: Option<usize>,
    /// After each login, send two bad OUCH messages (sequenced: an unknown
    /// type, a bad field) and a bad SoupBinTCP frame.
    pub garbage: bool,
}

/// What the server saw.
#[derive(Debug, Clone, Default)]
pub struct Log {
    /// Every OUCH message received, in order.
    pub inbound: Vec<Vec<u8>>,
    /// Enter Orders processed: (UserRefNum, symbol, side, quantity, price,
    /// ClOrdID number).
    pub enters: Vec<(u32, String, u8, u32, u64, Option<u64>)>,
    /// Cancels processed (UserRefNum).
    pub cancels: Vec<u32>,
    /// UserRefNums ignored as not above the last one.
    pub ignored: Vec<u32>,
    /// The next sequence number each login asked for (0: blank).
    pub logins: Vec<u64>,
    /// Connections accepted.
    pub connections: u64,
    /// Fills sent: (symbol, side, shares, price).
    pub fills: Vec<(String, u8, u32, u64)>,
    /// Sequenced messages published.
    pub published: u64,
}

pub struct OrderServer {
    pub addr: SocketAddr,
    pub log: Arc<Mutex<Log>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OrderServer {
    pub fn start(script: Script) -> OrderServer {
        Self::start_at("127.0.0.1:0", script)
    }

    /// Listening on `addr` (`IP:PORT`, port 0: the kernel picks).
    pub fn start_at(addr: &str, script: Script) -> OrderServer {
        let uri = Uri::parse(&format!("tcp://{addr}?framing=soupbin")).unwrap();
        let tcp = TcpServer::open(TcpConfig::from_uri(&uri).unwrap(), 8).unwrap();
        let addr = tcp.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || serve(tcp, script, &l, &s));
        OrderServer {
            addr,
            log,
            stop,
            thread: Some(thread),
        }
    }

    pub fn uri(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    pub fn log(&self) -> Log {
        self.log.lock().unwrap().clone()
    }

    pub fn stop(mut self) -> Log {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.log()
    }
}

impl Drop for OrderServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Order {
    symbol: hftnet_wire::ouch50::Symbol,
    side: Side,
    open: u32,
}

fn now_ns(start: Instant) -> u64 {
    start.elapsed().as_nanos() as u64
}

fn serve(mut tcp: TcpServer, script: Script, log: &Mutex<Log>, stop: &AtomicBool) {
    let start = Instant::now();
    let user = Username::new("trader").unwrap();
    let pass = Password::new("secret").unwrap();
    let mut server = Server::new(ServerConfig::new(user, pass)).unwrap();
    let day: StreamId = server.open(Session::new("TESTDAY").unwrap(), None).unwrap();
    let mut conns: HashMap<hftnet_io::tcp::ConnId, ServerConnection> = HashMap::new();
    let mut burst = RxBurst::new(64, 65_536);
    let mut orders: HashMap<u32, Order> = HashMap::new();
    let mut last_ref = 0u32;
    let mut processed = 0usize;
    let mut dropped = false;
    let mut buf = vec![0u8; 65_537];
    let mut match_no = 0u64;
    let mut muted: Option<hftnet_io::tcp::ConnId> = None;
    while !stop.load(Ordering::Relaxed) {
        let ev = tcp
            .poll(&mut burst, Some(Instant::now() + Duration::from_millis(2)))
            .unwrap();
        let now = now_ns(start);
        let mut inputs: Vec<(hftnet_io::tcp::ConnId, Vec<u8>)> = Vec::new();
        match ev {
            Some(TcpEvent::Accepted { id, .. }) => {
                conns.insert(id, server.connect(now));
                log.lock().unwrap().connections += 1;
            }
            Some(TcpEvent::Messages { id, n }) => {
                for i in 0..n {
                    inputs.push((id, burst.get(i).0.to_vec()));
                }
            }
            Some(TcpEvent::Closed { id, .. }) => {
                conns.remove(&id);
            }
            None => {}
        }
        for (id, bytes) in inputs {
            let Some(c) = conns.get_mut(&id) else {
                continue;
            };
            let mut msgs: Vec<Vec<u8>> = Vec::new();
            let mut logged_in = false;
            let len = (bytes.len() as u16).to_be_bytes();
            let mut on = |e: ServerEvent<'_>| match e {
                ServerEvent::Unsequenced(m) => msgs.push(m.to_vec()),
                ServerEvent::LoggedIn { next_sequence, .. } => {
                    logged_in = true;
                    log.lock().unwrap().logins.push(next_sequence);
                }
                _ => {}
            };
            c.handle_input(now, &len, &server, &mut on);
            c.handle_input(now, &bytes, &server, &mut on);
            if logged_in && script.garbage {
                // A sequenced OUCH message of no known type, and a
                // SoupBinTCP packet of an unknown type.
                server.publish(day, b"Zgarbage").unwrap();
                // A System Event whose event code is not one OUCH defines.
                server
                    .publish(day, &[b'S', 0, 0, 0, 0, 0, 0, 0, 1, b'Q'])
                    .unwrap();
                log.lock().unwrap().published += 2;
                let _ = tcp.send(id, &[b"?x"]);
            }
            for m in msgs {
                log.lock().unwrap().inbound.push(m.clone());
                let mut out: Vec<OutboundMessage> = Vec::new();
                match InboundMessage::parse(&m) {
                    Ok(InboundMessage::EnterOrder(o)) => {
                        if o.user_ref_num <= last_ref {
                            log.lock().unwrap().ignored.push(o.user_ref_num);
                            continue;
                        }
                        last_ref = o.user_ref_num;
                        processed += 1;
                        log.lock().unwrap().enters.push((
                            o.user_ref_num,
                            o.symbol.to_string(),
                            u8::from(o.side),
                            o.quantity,
                            o.price.raw(),
                            o.cl_ord_id.number(),
                        ));
                        out.push(
                            OrderAcceptedRepr {
                                timestamp: now,
                                user_ref_num: o.user_ref_num,
                                side: o.side,
                                quantity: o.quantity,
                                symbol: o.symbol,
                                price: o.price,
                                time_in_force: o.time_in_force,
                                display: o.display,
                                order_reference_number: u64::from(o.user_ref_num),
                                capacity: o.capacity,
                                intermarket_sweep: o.intermarket_sweep,
                                cross_type: o.cross_type,
                                order_state: OrderState::Live,
                                cl_ord_id: o.cl_ord_id,
                                options: Options::new(),
                            }
                            .into(),
                        );
                        let mut open = o.quantity;
                        if script.fill {
                            match_no += 1;
                            out.push(
                                OrderExecutedRepr {
                                    timestamp: now,
                                    user_ref_num: o.user_ref_num,
                                    quantity: o.quantity,
                                    price: o.price,
                                    liquidity_flag: LiquidityFlag::from_code(b'R'),
                                    match_number: match_no,
                                    options: Options::new(),
                                }
                                .into(),
                            );
                            log.lock().unwrap().fills.push((
                                o.symbol.to_string(),
                                u8::from(o.side),
                                o.quantity,
                                o.price.raw(),
                            ));
                            open = 0;
                        }
                        if open > 0 {
                            orders.insert(
                                o.user_ref_num,
                                Order {
                                    symbol: o.symbol,
                                    side: o.side,
                                    open,
                                },
                            );
                        }
                    }
                    Ok(InboundMessage::ReplaceOrder(r)) => {
                        if r.user_ref_num <= last_ref {
                            log.lock().unwrap().ignored.push(r.user_ref_num);
                            continue;
                        }
                        last_ref = r.user_ref_num;
                        processed += 1;
                        let Some(old) = orders.remove(&r.orig_user_ref_num) else {
                            continue;
                        };
                        orders.insert(
                            r.user_ref_num,
                            Order {
                                open: r.quantity,
                                ..old
                            },
                        );
                        out.push(
                            OrderReplacedRepr {
                                timestamp: now,
                                orig_user_ref_num: r.orig_user_ref_num,
                                user_ref_num: r.user_ref_num,
                                side: old.side,
                                quantity: r.quantity,
                                symbol: old.symbol,
                                price: r.price,
                                time_in_force: r.time_in_force,
                                display: r.display,
                                order_reference_number: u64::from(r.user_ref_num),
                                capacity: Capacity::Principal,
                                intermarket_sweep: IntermarketSweep::NotEligible,
                                cross_type: CrossType::ContinuousMarket,
                                order_state: OrderState::Live,
                                cl_ord_id: r.cl_ord_id,
                                options: Options::new(),
                            }
                            .into(),
                        );
                    }
                    Ok(InboundMessage::CancelOrder(x)) => {
                        log.lock().unwrap().cancels.push(x.user_ref_num);
                        if let Some(o) = orders.remove(&x.user_ref_num) {
                            out.push(
                                OrderCanceledRepr {
                                    timestamp: now,
                                    user_ref_num: x.user_ref_num,
                                    quantity: o.open,
                                    reason: CancelReason::from_code(b'U'),
                                }
                                .into(),
                            );
                        }
                    }
                    Ok(InboundMessage::AccountQuery(_)) => {
                        out.push(
                            AccountQueryResponseRepr {
                                timestamp: now,
                                next_user_ref_num: last_ref + 1,
                            }
                            .into(),
                        );
                    }
                    _ => {}
                }
                for o in out {
                    let n = o.emit(&mut buf).unwrap();
                    server.publish(day, &buf[..n]).unwrap();
                    log.lock().unwrap().published += 1;
                }
            }
            if let Some(k) = script.drop_after
                && !dropped
                && processed >= k
            {
                dropped = true;
                // Flush what is due first, then cut the connection.
                if let Some(c) = conns.get_mut(&id) {
                    let n = c.poll_transmit(now, &server, &mut buf);
                    send_frames(&mut tcp, id, &buf[..n]);
                }
                tcp.close(id);
                conns.remove(&id);
                if script.vanish {
                    let addr = tcp.local_addr().unwrap();
                    drop(tcp);
                    if let Some(f) = script.after_vanish {
                        f(addr, stop);
                    }
                    return;
                }
            }
        }
        if let Some(k) = script.mute_after
            && muted.is_none()
            && processed >= k
        {
            muted = conns.keys().next().copied();
        }
        let ids: Vec<_> = conns.keys().copied().collect();
        for id in ids {
            if Some(id) == muted {
                continue;
            }
            let c = conns.get_mut(&id).unwrap();
            if c.poll_timeout().is_some_and(|t| now >= t) {
                c.handle_timeout(now);
            }
            let n = c.poll_transmit(now, &server, &mut buf);
            send_frames(&mut tcp, id, &buf[..n]);
            if c.close_reason().is_some() {
                tcp.close(id);
                conns.remove(&id);
            }
        }
    }
    // Keep the names of types used only for their conversions.
    let _ = (TimeInForce::Day, Display::Visible, ClOrdId::from_number(0));
}

fn send_frames(tcp: &mut TcpServer, id: hftnet_io::tcp::ConnId, bytes: &[u8]) {
    let mut at = 0;
    while at + 2 <= bytes.len() {
        let len = usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]));
        let end = (at + 2 + len).min(bytes.len());
        let _ = tcp.send(id, &[&bytes[at + 2..end]]);
        at = end;
    }
}
