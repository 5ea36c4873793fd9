//! The exchange core: the generated ITCH order flow and the clients' OUCH
//! orders meet in one [`MatchingEngine`]; out come the ITCH messages to
//! publish and the order-entry events of every session.

use std::collections::HashMap;
use std::fmt;

use hftnet_wire::itch50::{
    AddOrderMpidRepr, AddOrderRepr, EventCode, HeaderRepr, Message, Mpid, OrderCancelRepr,
    OrderDeleteRepr, OrderExecutedRepr, OrderExecutedWithPriceRepr, OrderReplaceRepr, Price4, Side,
    Stock, Timestamp, TradeRepr, codes,
};

use super::engine::{
    Entered, Fill, MatchConfig, MatchConfigError, MatchEvents, MatchingEngine, Resting,
};
use super::order_entry::{
    CancelOrder, CancelReason, Capacity, ClOrdId, Display, EnterOrder, LiquidityFlag, ModifyOrder,
    OrderEvent, OrderSide, RejectReason, ReplaceOrder, Request, SessionId, TimeInForce,
    may_modify_to,
};
use crate::book::index::{NONE, RefHashBuilder, RefIndex};

/// The MPID published on attributable client orders (ITCH `F`).
pub const CLIENT_MPID: Mpid = Mpid(*b"HFTC");

/// Marks a generated order in the engine's per-order `user` value.
const GEN: u64 = 1 << 63;

/// Configuration of an [`Exchange`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExchangeConfig {
    /// The matching engine's capacities.
    pub matching: MatchConfig,
    /// Largest order quantity accepted; OUCH: less than 1,000,000.
    pub max_quantity: u32,
    /// Prices must be multiples of this (Price(4) units); default 100, one
    /// cent, the generator's tick.
    pub tick: u32,
    /// Price band: an order more than this many percent away from the
    /// instrument's reference price (its last execution, else the
    /// midpoint of its best bid and offer) is rejected; `None`, no band.
    pub price_band_pct: Option<u32>,
    /// Client sessions at most.
    pub max_sessions: usize,
    /// Resting client orders reserved for up front.
    pub client_orders: usize,
}

impl ExchangeConfig {
    /// Checks every field without reserving anything.
    ///
    /// # Errors
    /// [`ExchangeError`] naming the field out of range.
    pub fn validate(&self) -> Result<(), ExchangeError> {
        if self.tick == 0 {
            return Err(ExchangeError::Config("tick must be at least 1"));
        }
        if self.max_quantity == 0 {
            return Err(ExchangeError::Config("max_quantity must be at least 1"));
        }
        if self.max_sessions == 0 || self.max_sessions > usize::from(SessionId::MAX) + 1 {
            return Err(ExchangeError::Config("max_sessions must be in 1..=65536"));
        }
        self.matching.validate().map_err(ExchangeError::Matching)
    }
}

impl Default for ExchangeConfig {
    fn default() -> Self {
        ExchangeConfig {
            matching: MatchConfig::default(),
            max_quantity: 999_999,
            tick: 100,
            price_band_pct: Some(10),
            max_sessions: 64,
            client_orders: 1 << 16,
        }
    }
}

/// Why an [`Exchange`] could not be built or a session opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeError {
    /// The matching configuration is out of range.
    Matching(MatchConfigError),
    /// `tick` is 0 or `max_quantity` is 0.
    Config(&'static str),
    /// Every session of [`ExchangeConfig::max_sessions`] is open.
    TooManySessions {
        /// The limit.
        max: usize,
    },
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Matching(e) => e.fmt(f),
            ExchangeError::Config(s) => write!(f, "exchange config: {s}"),
            ExchangeError::TooManySessions { max } => {
                write!(f, "all {max} client sessions are open; raise max_sessions")
            }
        }
    }
}

impl std::error::Error for ExchangeError {}

/// Where the exchange's outputs go, called synchronously in order.
pub trait ExchangeOutput {
    /// An ITCH message to publish (in this order) on the feed.
    fn itch(&mut self, msg: &Message);
    /// An order-entry event for `session`.
    fn order_event(&mut self, session: SessionId, event: &OrderEvent);
}

/// Per-session order-entry counters. Invariant:
/// `received == accepted + rejected`; retransmissions are not received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionCounters {
    /// Enter and Replace requests with a fresh UserRefNum.
    pub received: u64,
    /// Of those, accepted (Accepted, Replaced, or a replace to no shares).
    pub accepted: u64,
    /// Of those, rejected (one Rejected event each).
    pub rejected: u64,
    /// Enter and Replace requests whose UserRefNum was not above the last
    /// one: ignored as retransmissions, no event.
    pub retransmissions: u64,
    /// Replace requests of an order that is no longer live: silently
    /// ignored, their UserRefNum not consumed (OUCH 5.0, 2.2 case 1), so
    /// neither received nor retransmissions.
    pub replaces_ignored: u64,
    /// Cancel requests.
    pub cancels: u64,
    /// Cancel requests ignored: unknown order or superfluous size.
    pub cancels_ignored: u64,
    /// Modify requests.
    pub modifies: u64,
    /// Modify requests ignored: unknown order, side change not allowed,
    /// or a size increase.
    pub modifies_ignored: u64,
    /// Account queries.
    pub account_queries: u64,
    /// Executed events (fills of this session's orders).
    pub executions: u64,
    /// Shares executed.
    pub executed_shares: u64,
    /// Canceled events.
    pub canceled: u64,
}

/// Exchange-wide counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExchangeCounters {
    /// Generated messages handled.
    pub generated: u64,
    /// Generated messages published unchanged (apart from refs and match
    /// numbers, which are the exchange's).
    pub generated_as_is: u64,
    /// Generated messages published changed: a cancel of more than is left
    /// (a delete), an execution swept ahead or shortened, an add or
    /// replace that executed against resting orders.
    pub generated_adjusted: u64,
    /// Generated messages about orders the book no longer has (clients
    /// took them): not published.
    pub generated_dropped: u64,
    /// ITCH messages published.
    pub published: u64,
    /// Executions (one per maker order touched).
    pub fills: u64,
    /// Shares executed.
    pub volume: u64,
    /// Executions with a client order on at least one side.
    pub client_fills: u64,
    /// Requests naming a session that was never opened (ignored).
    pub unknown_session: u64,
}

#[derive(Clone, Copy, Debug)]
struct ClientOrder {
    session: SessionId,
    user_ref: u32,
    side: OrderSide,
    display: Display,
    tif: TimeInForce,
    capacity: Capacity,
    /// The engine's id (the ITCH ref).
    exch_ref: u64,
    /// Shares the order chain executed (for Replace's quantity).
    executed: u32,
    next_free: u32,
}

#[derive(Clone, Copy, Debug)]
struct GenOrder {
    gen_ref: u64,
    exch_ref: u64,
    /// What the generator believes is left.
    gen_left: u32,
    next_free: u32,
}

#[derive(Clone, Copy, Debug, Default)]
struct Session {
    last_user_ref: u32,
    counters: SessionCounters,
}

#[derive(Clone, Copy, Debug, Default)]
struct InstrumentInfo {
    symbol: Option<Stock>,
    /// ITCH trading state byte; 0 before any trading action.
    state: u8,
    last_price: u32,
}

/// A free-listed table of `T`s.
#[derive(Debug)]
struct Table<T> {
    items: Vec<T>,
    free: u32,
}

trait Linked: Copy {
    fn next_free(&mut self) -> &mut u32;
}

impl Linked for ClientOrder {
    fn next_free(&mut self) -> &mut u32 {
        &mut self.next_free
    }
}

impl Linked for GenOrder {
    fn next_free(&mut self) -> &mut u32 {
        &mut self.next_free
    }
}

impl<T: Linked> Table<T> {
    fn with_capacity(n: usize) -> Self {
        Table {
            items: Vec::with_capacity(n),
            free: NONE,
        }
    }

    fn alloc(&mut self, t: T) -> u32 {
        if self.free == NONE {
            self.items.push(t);
            (self.items.len() - 1) as u32
        } else {
            let i = self.free;
            self.free = *self.items[i as usize].next_free();
            self.items[i as usize] = t;
            i
        }
    }

    fn release(&mut self, i: u32) {
        *self.items[i as usize].next_free() = self.free;
        self.free = i;
    }
}

/// `header` about an order of `locate` (a generated message's own locate
/// may name another book than the order's).
#[inline]
fn at(header: HeaderRepr, locate: u16) -> HeaderRepr {
    HeaderRepr {
        stock_locate: locate,
        ..header
    }
}

/// The key of a client order: session and UserRefNum.
#[inline]
fn client_key(session: SessionId, user_ref: u32) -> u64 {
    (u64::from(session) << 32) | u64::from(user_ref)
}

/// Everything a fill touches besides the engine, borrowed apart from it.
struct Sink<'a, O: ExchangeOutput> {
    clients: &'a mut Table<ClientOrder>,
    client_index: &'a mut HashMap<u64, u32, RefHashBuilder>,
    gens: &'a mut Table<GenOrder>,
    gen_index: &'a mut RefIndex,
    sessions: &'a mut [Session],
    counters: &'a mut ExchangeCounters,
    next_match: &'a mut u64,
    header: HeaderRepr,
    stock: Stock,
    /// The incoming client order (session, UserRefNum), if a client's.
    taker: Option<(SessionId, u32)>,
    last_price: &'a mut u32,
    out: &'a mut O,
}

impl<O: ExchangeOutput> Sink<'_, O> {
    fn publish(&mut self, m: &Message) {
        self.counters.published += 1;
        self.out.itch(m);
    }
}

impl<O: ExchangeOutput> MatchEvents for Sink<'_, O> {
    fn fill(&mut self, f: &Fill) {
        let match_number = *self.next_match;
        *self.next_match += 1;
        self.counters.fills += 1;
        self.counters.volume += u64::from(f.quantity);
        *self.last_price = f.price;
        let mut client = self.taker.is_some();
        if f.maker_user & GEN != 0 {
            let g = (f.maker_user & !GEN) as u32;
            let msg = Message::OrderExecuted(OrderExecutedRepr {
                header: self.header,
                order_ref: f.maker,
                executed_shares: f.quantity,
                match_number,
            });
            self.publish(&msg);
            if f.maker_left == 0 {
                let gen_ref = self.gens.items[g as usize].gen_ref;
                self.gen_index.remove(gen_ref);
                self.gens.release(g);
            }
        } else {
            client = true;
            let i = f.maker_user as u32;
            let c = &mut self.clients.items[i as usize];
            c.executed = c.executed.saturating_add(f.quantity);
            let c = *c;
            let msg = if c.display == Display::Hidden {
                Message::Trade(TradeRepr {
                    header: self.header,
                    order_ref: 0,
                    side: f.maker_side,
                    shares: f.quantity,
                    stock: self.stock,
                    price: Price4::from_raw(f.price),
                    match_number,
                })
            } else {
                Message::OrderExecuted(OrderExecutedRepr {
                    header: self.header,
                    order_ref: f.maker,
                    executed_shares: f.quantity,
                    match_number,
                })
            };
            self.publish(&msg);
            let liquidity = if c.display == Display::Hidden {
                LiquidityFlag::NonDisplayedAdded
            } else {
                LiquidityFlag::Added
            };
            self.executed(c.session, c.user_ref, f, liquidity, match_number);
            if f.maker_left == 0 {
                self.client_index.remove(&client_key(c.session, c.user_ref));
                self.clients.release(i);
            }
        }
        if let Some((s, u)) = self.taker {
            self.executed(s, u, f, LiquidityFlag::Removed, match_number);
        }
        if client {
            self.counters.client_fills += 1;
        }
    }
}

impl<O: ExchangeOutput> Sink<'_, O> {
    fn executed(
        &mut self,
        session: SessionId,
        user_ref: u32,
        f: &Fill,
        liquidity: LiquidityFlag,
        match_number: u64,
    ) {
        if let Some(s) = self.sessions.get_mut(usize::from(session)) {
            s.counters.executions += 1;
            s.counters.executed_shares += u64::from(f.quantity);
        }
        self.out.order_event(
            session,
            &OrderEvent::Executed {
                user_ref_num: user_ref,
                quantity: f.quantity,
                price: u64::from(f.price),
                liquidity,
                match_number,
            },
        );
    }
}

/// A resting client order, as [`Exchange::client_order`] reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientOrderInfo {
    /// The ITCH order reference number (published unless hidden).
    pub order_ref: u64,
    /// Instrument.
    pub locate: u16,
    /// Side as entered or modified.
    pub side: OrderSide,
    /// Price (Price(4)).
    pub price: u32,
    /// Open shares.
    pub open: u32,
    /// Shares the order chain executed.
    pub executed: u32,
    /// Display.
    pub display: Display,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Capacity.
    pub capacity: Capacity,
}

/// The exchange core; see the module doc of [`crate::matching`].
///
/// Inputs, in any interleaving:
/// - [`handle_generated`](Self::handle_generated): one message of the
///   generated ITCH day ([`crate::exchange::Generator`]);
/// - [`handle_request`](Self::handle_request): one OUCH request of a
///   session opened with [`open_session`](Self::open_session).
///
/// Both call the [`ExchangeOutput`] with the ITCH messages to publish, in
/// feed order, and the order-entry events, per session. Queries:
/// [`engine`](Self::engine), [`published_orders`](Self::published_orders),
/// [`client_order`](Self::client_order), [`counters`](Self::counters),
/// [`session_counters`](Self::session_counters), [`locate`](Self::locate).
pub struct Exchange {
    engine: MatchingEngine,
    clients: Table<ClientOrder>,
    client_index: HashMap<u64, u32, RefHashBuilder>,
    gens: Table<GenOrder>,
    gen_index: RefIndex,
    sessions: Vec<Session>,
    max_sessions: usize,
    symbols: HashMap<[u8; 8], u16>,
    instruments: Vec<InstrumentInfo>,
    next_ref: u64,
    next_match: u64,
    /// Between the generated Start and End of Market Hours events.
    market_open: bool,
    counters: ExchangeCounters,
    max_quantity: u32,
    tick: u32,
    band: Option<u32>,
}

impl fmt::Debug for Exchange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exchange")
            .field("engine", &self.engine)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl Exchange {
    /// An exchange with empty books, no session and no instrument (the
    /// generated stock directory names them).
    ///
    /// # Errors
    /// [`ExchangeError`] naming the field out of range.
    pub fn new(cfg: &ExchangeConfig) -> Result<Self, ExchangeError> {
        cfg.validate()?;
        let engine = MatchingEngine::new(&cfg.matching).map_err(ExchangeError::Matching)?;
        let mut client_index = HashMap::with_hasher(RefHashBuilder);
        client_index.reserve(cfg.client_orders);
        Ok(Exchange {
            engine,
            clients: Table::with_capacity(cfg.client_orders),
            client_index,
            gens: Table::with_capacity(cfg.matching.max_orders),
            gen_index: RefIndex::new(
                cfg.matching.ref_window,
                cfg.matching.ref_window.min(1 << 20),
            ),
            sessions: Vec::with_capacity(cfg.max_sessions),
            max_sessions: cfg.max_sessions,
            symbols: HashMap::new(),
            instruments: vec![InstrumentInfo::default(); cfg.matching.max_locates],
            next_ref: 1,
            next_match: 1,
            market_open: false,
            counters: ExchangeCounters::default(),
            max_quantity: cfg.max_quantity,
            tick: cfg.tick,
            band: cfg.price_band_pct,
        })
    }

    /// Opens a client session; its UserRefNums start above 0.
    ///
    /// # Errors
    /// [`ExchangeError::TooManySessions`].
    pub fn open_session(&mut self) -> Result<SessionId, ExchangeError> {
        if self.sessions.len() >= self.max_sessions {
            return Err(ExchangeError::TooManySessions {
                max: self.max_sessions,
            });
        }
        self.sessions.push(Session::default());
        Ok((self.sessions.len() - 1) as SessionId)
    }

    /// The matching engine (every resting order, hidden ones included).
    #[must_use]
    pub fn engine(&self) -> &MatchingEngine {
        &self.engine
    }

    /// Counters.
    #[must_use]
    pub fn counters(&self) -> &ExchangeCounters {
        &self.counters
    }

    /// Every session's counters summed: the order-entry totals of the
    /// exchange (`received == accepted + rejected` holds for them too).
    #[must_use]
    pub fn session_totals(&self) -> SessionCounters {
        let mut t = SessionCounters::default();
        for s in &self.sessions {
            let c = &s.counters;
            t.received += c.received;
            t.accepted += c.accepted;
            t.rejected += c.rejected;
            t.retransmissions += c.retransmissions;
            t.replaces_ignored += c.replaces_ignored;
            t.cancels += c.cancels;
            t.cancels_ignored += c.cancels_ignored;
            t.modifies += c.modifies;
            t.modifies_ignored += c.modifies_ignored;
            t.account_queries += c.account_queries;
            t.executions += c.executions;
            t.executed_shares += c.executed_shares;
            t.canceled += c.canceled;
        }
        t
    }

    /// A session's counters.
    #[must_use]
    pub fn session_counters(&self, session: SessionId) -> Option<&SessionCounters> {
        self.sessions.get(usize::from(session)).map(|s| &s.counters)
    }

    /// The locate of a symbol named by the stock directory.
    #[must_use]
    pub fn locate(&self, symbol: Stock) -> Option<u16> {
        self.symbols.get(symbol.as_bytes()).copied()
    }

    /// A session's resting order by UserRefNum.
    #[must_use]
    pub fn client_order(&self, session: SessionId, user_ref_num: u32) -> Option<ClientOrderInfo> {
        let i = *self.client_index.get(&client_key(session, user_ref_num))?;
        let c = self.clients.items[i as usize];
        let r = self.engine.order(c.exch_ref)?;
        Some(ClientOrderInfo {
            order_ref: c.exch_ref,
            locate: r.locate,
            side: c.side,
            price: r.price,
            open: r.quantity,
            executed: c.executed,
            display: c.display,
            time_in_force: c.tif,
            capacity: c.capacity,
        })
    }

    /// The resting orders of `locate` that the feed shows (hidden client
    /// orders left out): what a feed handler's book built from the
    /// published ITCH must hold, as `(ref, side, shares, price)`.
    pub fn published_orders(
        &self,
        locate: u16,
    ) -> impl Iterator<Item = (u64, Side, u32, u32)> + '_ {
        self.engine.orders(locate).filter_map(|r| {
            if r.user & GEN == 0
                && self
                    .clients
                    .items
                    .get(r.user as usize)
                    .is_some_and(|c| c.display == Display::Hidden)
            {
                return None;
            }
            Some((r.id, r.side, r.quantity, r.price))
        })
    }

    // ------------------------------------------------------------ generated

    /// Handles one generated ITCH message: publishes it, adjusted to the
    /// book, or drops it; see the module doc of [`crate::matching`] for the
    /// rules.
    pub fn handle_generated(&mut self, msg: &Message, out: &mut impl ExchangeOutput) {
        self.counters.generated += 1;
        let m = *msg;
        match m {
            Message::SystemEvent(e) => {
                self.as_is(&m, out);
                match e.event_code {
                    EventCode::StartOfMarketHours => self.market_open = true,
                    EventCode::EndOfMarketHours => {
                        self.market_open = false;
                        self.expire_client_orders(e.header.timestamp, out);
                    }
                    _ => {}
                }
            }
            Message::StockDirectory(d) => {
                let l = d.header.stock_locate;
                if let Some(i) = self.instruments.get_mut(usize::from(l)) {
                    if let Some(old) = i.symbol {
                        self.symbols.remove(old.as_bytes());
                    }
                    i.symbol = Some(d.stock);
                    self.symbols.insert(*d.stock.as_bytes(), l);
                }
                self.as_is(&m, out);
            }
            Message::StockTradingAction(a) => {
                if let Some(i) = self.instruments.get_mut(usize::from(a.header.stock_locate)) {
                    i.state = a.trading_state;
                }
                self.as_is(&m, out);
            }
            Message::AddOrder(a) => self.gen_add(a, None, out),
            Message::AddOrderMpid(a) => self.gen_add(
                AddOrderRepr {
                    header: a.header,
                    order_ref: a.order_ref,
                    side: a.side,
                    shares: a.shares,
                    stock: a.stock,
                    price: a.price,
                },
                Some(a.attribution),
                out,
            ),
            Message::OrderDelete(d) => match self.gen_lookup(d.order_ref) {
                Some((g, r)) => {
                    self.engine.cancel(r.id, &mut super::engine::NoEvents);
                    self.gen_forget(g);
                    self.as_is(
                        &Message::OrderDelete(OrderDeleteRepr {
                            header: at(d.header, r.locate),
                            order_ref: r.id,
                        }),
                        out,
                    );
                }
                None => self.counters.generated_dropped += 1,
            },
            Message::OrderCancel(x) => match self.gen_lookup(x.order_ref) {
                Some(_) if x.cancelled_shares == 0 => self.counters.generated_dropped += 1,
                Some((g, r)) => {
                    let header = at(x.header, r.locate);
                    let gl = &mut self.gens.items[g as usize].gen_left;
                    *gl = gl.saturating_sub(x.cancelled_shares);
                    if x.cancelled_shares < r.quantity && *gl > 0 {
                        self.engine
                            .reduce(r.id, x.cancelled_shares, &mut super::engine::NoEvents);
                        self.as_is(
                            &Message::OrderCancel(OrderCancelRepr {
                                header,
                                order_ref: r.id,
                                cancelled_shares: x.cancelled_shares,
                            }),
                            out,
                        );
                    } else {
                        // More than is left (a client took the rest) or all
                        // the generator thought was left: a delete.
                        self.engine.cancel(r.id, &mut super::engine::NoEvents);
                        self.gen_forget(g);
                        self.counters.generated_adjusted += 1;
                        self.publish(
                            &Message::OrderDelete(OrderDeleteRepr {
                                header,
                                order_ref: r.id,
                            }),
                            out,
                        );
                    }
                }
                None => self.counters.generated_dropped += 1,
            },
            Message::OrderExecuted(e) => {
                self.gen_execute(e.header, e.order_ref, e.executed_shares, out)
            }
            Message::OrderExecutedWithPrice(c) => match self.gen_lookup(c.order_ref) {
                Some(_) if c.executed_shares == 0 => self.counters.generated_dropped += 1,
                Some((g, r)) => {
                    let header = at(c.header, r.locate);
                    let n = c.executed_shares.min(r.quantity);
                    let match_number = self.take_match();
                    self.counters.fills += 1;
                    self.counters.volume += u64::from(n);
                    if n < c.executed_shares {
                        self.counters.generated_adjusted += 1;
                    } else {
                        self.counters.generated_as_is += 1;
                    }
                    let gone = self.engine.reduce(r.id, n, &mut super::engine::NoEvents) == Some(0);
                    self.publish(
                        &Message::OrderExecutedWithPrice(OrderExecutedWithPriceRepr {
                            header,
                            order_ref: r.id,
                            executed_shares: n,
                            match_number,
                            ..c
                        }),
                        out,
                    );
                    if gone {
                        self.gen_forget(g);
                    } else {
                        let gl = &mut self.gens.items[g as usize].gen_left;
                        *gl = gl.saturating_sub(c.executed_shares);
                        self.gen_tidy(g, r.id, header, out);
                    }
                }
                None => self.counters.generated_dropped += 1,
            },
            Message::OrderReplace(u) => self.gen_replace(u, out),
            Message::Trade(mut t) => {
                t.match_number = self.take_match();
                self.as_is(&Message::Trade(t), out);
            }
            Message::CrossTrade(mut q) => {
                q.match_number = self.take_match();
                self.as_is(&Message::CrossTrade(q), out);
            }
            Message::BrokenTrade(_) | Message::Unknown { .. } => {
                // Refers to match numbers of the generator's own; never
                // generated. Not published.
                self.counters.generated_dropped += 1;
            }
            _ => self.as_is(&m, out),
        }
    }

    /// A generated add (`F` with its MPID): executes against what it
    /// crosses, rests the remainder.
    fn gen_add(&mut self, a: AddOrderRepr, mpid: Option<Mpid>, out: &mut impl ExchangeOutput) {
        let AddOrderRepr {
            header,
            order_ref: gen_ref,
            side,
            shares,
            stock,
            price,
        } = a;
        let price = price.raw();
        let exch_ref = self.take_ref();
        let g = self.gens.alloc(GenOrder {
            gen_ref,
            exch_ref,
            gen_left: shares,
            next_free: NONE,
        });
        let r = self.enter(
            header,
            stock,
            None,
            exch_ref,
            GEN | u64::from(g),
            side,
            price,
            shares,
            true,
            out,
        );
        let rested = r.map_or(0, |e| e.rested);
        if rested == 0 {
            self.gens.release(g);
            if r.is_err() {
                self.counters.generated_dropped += 1;
            } else {
                self.counters.generated_adjusted += 1;
            }
            return;
        }
        self.gen_displace(gen_ref, header, out);
        self.gen_index.insert(gen_ref, g);
        if rested == shares {
            self.counters.generated_as_is += 1;
        } else {
            self.counters.generated_adjusted += 1;
        }
        let msg = match mpid {
            Some(attribution) => Message::AddOrderMpid(AddOrderMpidRepr {
                header,
                order_ref: exch_ref,
                side,
                shares: rested,
                stock,
                price: Price4::from_raw(price),
                attribution,
            }),
            None => Message::AddOrder(AddOrderRepr {
                header,
                order_ref: exch_ref,
                side,
                shares: rested,
                stock,
                price: Price4::from_raw(price),
            }),
        };
        self.publish(&msg, out);
    }

    /// A generated execution of `gen_ref`: the order's price is a limit that
    /// an aggressive opposite order of `shares` sweeps to, in price-time
    /// order — better-priced and older client orders execute first.
    fn gen_execute(
        &mut self,
        header: HeaderRepr,
        gen_ref: u64,
        shares: u32,
        out: &mut impl ExchangeOutput,
    ) {
        let Some((g, r)) = self.gen_lookup(gen_ref).filter(|_| shares > 0) else {
            self.counters.generated_dropped += 1;
            return;
        };
        let header = at(header, r.locate);
        let stock = self.stock_of(r.locate);
        let fills = self.counters.fills;
        let taker_side = super::engine::opposite(r.side);
        // The sweep's id: never rests, so any value; 0 is never an order's.
        let _ = self.enter(
            header, stock, None, 0, 0, taker_side, r.price, shares, false, out,
        );
        let left = self.engine.order(r.id).map_or(0, |o| o.quantity);
        if self.counters.fills == fills + 1 && r.quantity - left == shares {
            self.counters.generated_as_is += 1;
        } else {
            self.counters.generated_adjusted += 1;
        }
        // The generated order may be gone (taken in the sweep).
        if self.gen_index.get(gen_ref) == Some(g) {
            let gl = &mut self.gens.items[g as usize].gen_left;
            *gl = gl.saturating_sub(shares);
            self.gen_tidy(g, r.id, header, out);
        }
    }

    /// A generated replace: the original leaves the book, the new order
    /// executes against what it crosses and rests the remainder.
    fn gen_replace(&mut self, u: OrderReplaceRepr, out: &mut impl ExchangeOutput) {
        let Some((g, orig)) = self.gen_lookup(u.original_order_ref) else {
            self.counters.generated_dropped += 1;
            return;
        };
        let header = at(u.header, orig.locate);
        self.engine.cancel(orig.id, &mut super::engine::NoEvents);
        self.gen_index.remove(u.original_order_ref);
        // A live order under the new ref (never from the generator) goes.
        self.gen_displace(u.new_order_ref, header, out);
        let new_ref = self.take_ref();
        self.gens.items[g as usize] = GenOrder {
            gen_ref: u.new_order_ref,
            exch_ref: new_ref,
            gen_left: u.shares,
            next_free: NONE,
        };
        let stock = self.stock_of(orig.locate);
        let r = self.enter(
            header,
            stock,
            None,
            new_ref,
            GEN | u64::from(g),
            orig.side,
            u.price.raw(),
            u.shares,
            true,
            out,
        );
        let rested = r.map_or(0, |e| e.rested);
        if rested == u.shares {
            self.counters.generated_as_is += 1;
        } else {
            self.counters.generated_adjusted += 1;
        }
        if rested > 0 {
            self.gen_index.insert(u.new_order_ref, g);
            self.publish(
                &Message::OrderReplace(OrderReplaceRepr {
                    header,
                    original_order_ref: orig.id,
                    new_order_ref: new_ref,
                    shares: rested,
                    price: u.price,
                }),
                out,
            );
        } else {
            self.gens.release(g);
            self.publish(
                &Message::OrderDelete(OrderDeleteRepr {
                    header,
                    order_ref: orig.id,
                }),
                out,
            );
        }
    }

    /// Makes room for generated ref `gen_ref`: an order still live under
    /// it (a ref reused, which the generator never does) is deleted — the
    /// newest message wins, as in the L3 book.
    fn gen_displace(&mut self, gen_ref: u64, header: HeaderRepr, out: &mut impl ExchangeOutput) {
        if let Some((old, r)) = self.gen_lookup(gen_ref) {
            self.engine.cancel(r.id, &mut super::engine::NoEvents);
            self.gen_forget(old);
            self.counters.generated_adjusted += 1;
            self.publish(
                &Message::OrderDelete(OrderDeleteRepr {
                    header: at(header, r.locate),
                    order_ref: r.id,
                }),
                out,
            );
        }
    }

    /// Deletes a generated order the generator believes gone but the book
    /// still has (a client took the shares it meant to execute).
    fn gen_tidy(
        &mut self,
        g: u32,
        exch_ref: u64,
        header: HeaderRepr,
        out: &mut impl ExchangeOutput,
    ) {
        if self.gens.items[g as usize].gen_left == 0 {
            if self
                .engine
                .cancel(exch_ref, &mut super::engine::NoEvents)
                .is_some()
            {
                self.publish(
                    &Message::OrderDelete(OrderDeleteRepr {
                        header,
                        order_ref: exch_ref,
                    }),
                    out,
                );
            }
            self.gen_forget(g);
        }
    }

    /// The slot and the resting order of generated ref `gen_ref`. The
    /// index holds exactly the generated orders that rest in the engine.
    fn gen_lookup(&self, gen_ref: u64) -> Option<(u32, Resting)> {
        let g = self.gen_index.get(gen_ref)?;
        let r = self.engine.order(self.gens.items[g as usize].exch_ref);
        debug_assert!(
            r.is_some(),
            "generated order {gen_ref} indexed but not resting"
        );
        Some((g, r?))
    }

    fn gen_forget(&mut self, g: u32) {
        let gen_ref = self.gens.items[g as usize].gen_ref;
        if self.gen_index.get(gen_ref) == Some(g) {
            self.gen_index.remove(gen_ref);
            self.gens.release(g);
        }
    }

    // --------------------------------------------------------------- client

    /// Handles one OUCH request of `session` at `now_ns` (nanoseconds
    /// since midnight on the feed's clock: the timestamp of the ITCH
    /// messages it causes; the caller keeps it non-decreasing with the
    /// generated messages').
    /// Events go to `out` for this session and for the sessions whose
    /// resting orders execute; ITCH messages to publish too. A session
    /// that was not opened is ignored (counted in
    /// [`ExchangeCounters::unknown_session`]).
    pub fn handle_request(
        &mut self,
        session: SessionId,
        req: &Request,
        now_ns: u64,
        out: &mut impl ExchangeOutput,
    ) {
        if usize::from(session) >= self.sessions.len() {
            self.counters.unknown_session += 1;
            return;
        }
        let ts = Self::stamp(now_ns);
        match req {
            Request::Enter(o) => self.client_enter(session, o, ts, out),
            Request::Replace(o) => self.client_replace(session, o, ts, out),
            Request::Cancel(o) => self.client_cancel(session, o, ts, out),
            Request::Modify(o) => self.client_modify(session, o, ts, out),
            Request::AccountQuery => {
                let s = &mut self.sessions[usize::from(session)];
                s.counters.account_queries += 1;
                let next = s.last_user_ref.saturating_add(1);
                out.order_event(
                    session,
                    &OrderEvent::AccountQuery {
                        next_user_ref_num: next,
                    },
                );
            }
        }
    }

    /// Rejects an Enter or Replace Order that the caller could not turn
    /// into a [`Request`] (e.g. its optional appendage does not parse),
    /// with the same rules as [`Exchange::handle_request`]: a UserRefNum
    /// not above the session's last is ignored as a retransmission, a
    /// fresh one is counted received and rejected with `reason`. Returns
    /// whether a Rejected event was given.
    pub fn reject_request(
        &mut self,
        session: SessionId,
        user_ref_num: u32,
        reason: RejectReason,
        cl_ord_id: ClOrdId,
        out: &mut impl ExchangeOutput,
    ) -> bool {
        if usize::from(session) >= self.sessions.len() {
            self.counters.unknown_session += 1;
            return false;
        }
        if !self.fresh(session, user_ref_num) {
            return false;
        }
        self.reject(session, user_ref_num, reason, cl_ord_id, out);
        true
    }

    /// Whether `user_ref` is fresh for `session` (then it is taken and the
    /// request counted received); else counted as a retransmission.
    fn fresh(&mut self, session: SessionId, user_ref: u32) -> bool {
        let s = &mut self.sessions[usize::from(session)];
        if user_ref <= s.last_user_ref {
            s.counters.retransmissions += 1;
            return false;
        }
        s.last_user_ref = user_ref;
        s.counters.received += 1;
        true
    }

    fn reject(
        &mut self,
        session: SessionId,
        user_ref: u32,
        reason: RejectReason,
        cl_ord_id: ClOrdId,
        out: &mut impl ExchangeOutput,
    ) {
        self.sessions[usize::from(session)].counters.rejected += 1;
        out.order_event(
            session,
            &OrderEvent::Rejected {
                user_ref_num: user_ref,
                reason,
                cl_ord_id,
            },
        );
    }

    /// Checks a price for `locate`; the price in Price(4) units.
    fn check_price(&self, locate: u16, price: u64) -> Result<u32, RejectReason> {
        let p = u32::try_from(price).map_err(|_| RejectReason::InvalidPrice)?;
        if p == 0 || !p.is_multiple_of(self.tick) {
            return Err(RejectReason::InvalidPrice);
        }
        if let Some(pct) = self.band {
            let last = self.instruments[usize::from(locate)].last_price;
            let reference = if last != 0 {
                Some(last)
            } else {
                match (
                    self.engine.best(locate, Side::Buy),
                    self.engine.best(locate, Side::Sell),
                ) {
                    (Some(b), Some(a)) => Some(b.price / 2 + a.price / 2),
                    _ => None,
                }
            };
            if let Some(r) = reference {
                let diff = u64::from(p.abs_diff(r)) * 100;
                if diff > u64::from(r) * u64::from(pct) {
                    return Err(RejectReason::InvalidPrice);
                }
            }
        }
        Ok(p)
    }

    fn check_quantity(&self, q: u32) -> Result<(), RejectReason> {
        if q == 0 || q > self.max_quantity {
            Err(RejectReason::InvalidQuantity)
        } else {
            Ok(())
        }
    }

    /// Validates an Enter; the parsed fields.
    fn validate_enter(
        &self,
        o: &EnterOrder,
    ) -> Result<(OrderSide, u16, u32, TimeInForce, Display, Capacity), RejectReason> {
        if !self.market_open {
            return Err(RejectReason::DestinationClosed);
        }
        let side = OrderSide::from_byte(o.side).map_err(|_| RejectReason::InvalidSide)?;
        self.check_quantity(o.quantity)?;
        let locate = self
            .symbols
            .get(o.symbol.as_bytes())
            .copied()
            .ok_or(RejectReason::InvalidSymbol)?;
        if self.instruments[usize::from(locate)].state != codes::trading_state::TRADING {
            return Err(RejectReason::Halted);
        }
        let price = self.check_price(locate, o.price)?;
        let tif = entry_time_in_force(o.time_in_force)?;
        let display = entry_display(o.display)?;
        let capacity = Capacity::from_byte(o.capacity).map_err(|_| RejectReason::Other)?;
        if o.intermarket_sweep != b'N' {
            return Err(RejectReason::IsoNotAllowed);
        }
        if o.cross_type != b'N' {
            return Err(RejectReason::InvalidCrossOrder);
        }
        Ok((side, locate, price, tif, display, capacity))
    }

    fn client_enter(
        &mut self,
        session: SessionId,
        o: &EnterOrder,
        ts: Timestamp,
        out: &mut impl ExchangeOutput,
    ) {
        if !self.fresh(session, o.user_ref_num) {
            return;
        }
        let (side, locate, price, tif, display, capacity) = match self.validate_enter(o) {
            Ok(v) => v,
            Err(reason) => return self.reject(session, o.user_ref_num, reason, o.cl_ord_id, out),
        };
        self.sessions[usize::from(session)].counters.accepted += 1;
        let exch_ref = self.take_ref();
        out.order_event(
            session,
            &OrderEvent::Accepted {
                user_ref_num: o.user_ref_num,
                side,
                quantity: o.quantity,
                symbol: o.symbol,
                price: u64::from(price),
                time_in_force: tif,
                display,
                capacity,
                order_reference_number: exch_ref,
                cl_ord_id: o.cl_ord_id,
            },
        );
        let c = ClientOrder {
            session,
            user_ref: o.user_ref_num,
            side,
            display,
            tif,
            capacity,
            exch_ref,
            executed: 0,
            next_free: NONE,
        };
        self.client_submit(c, locate, price, o.quantity, ts, None, out);
    }

    /// Enters client order `c` (its chain's state so far) for `quantity`
    /// at `price`; publishes it as it rests, after `orig` (the replaced
    /// order's published ref, if it was published) is replaced or deleted.
    #[allow(clippy::too_many_arguments)]
    fn client_submit(
        &mut self,
        c: ClientOrder,
        locate: u16,
        price: u32,
        quantity: u32,
        ts: Timestamp,
        orig: Option<u64>,
        out: &mut impl ExchangeOutput,
    ) {
        let header = HeaderRepr {
            stock_locate: locate,
            tracking_number: 0,
            timestamp: ts,
        };
        let stock = self.stock_of(locate);
        let i = self.clients.alloc(c);
        let rest = c.tif == TimeInForce::Day;
        let side = c.side.to_itch();
        let r = self.enter(
            header,
            stock,
            Some((c.session, c.user_ref)),
            c.exch_ref,
            u64::from(i),
            side,
            price,
            quantity,
            rest,
            out,
        );
        let e = r.unwrap_or(Entered {
            unfilled: quantity,
            ..Entered::default()
        });
        let published = e.rested > 0 && c.display != Display::Hidden;
        if e.rested > 0 {
            self.client_index
                .insert(client_key(c.session, c.user_ref), i);
            self.clients.items[i as usize].executed = c.executed + e.executed;
        } else {
            self.clients.release(i);
        }
        match (orig, published) {
            (Some(o), true) => self.publish(
                &Message::OrderReplace(OrderReplaceRepr {
                    header,
                    original_order_ref: o,
                    new_order_ref: c.exch_ref,
                    shares: e.rested,
                    price: Price4::from_raw(price),
                }),
                out,
            ),
            (Some(o), false) => self.publish(
                &Message::OrderDelete(OrderDeleteRepr {
                    header,
                    order_ref: o,
                }),
                out,
            ),
            (None, true) if c.display == Display::Attributable => self.publish(
                &Message::AddOrderMpid(AddOrderMpidRepr {
                    header,
                    order_ref: c.exch_ref,
                    side,
                    shares: e.rested,
                    stock,
                    price: Price4::from_raw(price),
                    attribution: CLIENT_MPID,
                }),
                out,
            ),
            (None, true) => self.publish(
                &Message::AddOrder(AddOrderRepr {
                    header,
                    order_ref: c.exch_ref,
                    side,
                    shares: e.rested,
                    stock,
                    price: Price4::from_raw(price),
                }),
                out,
            ),
            (None, false) => {}
        }
        if e.unfilled > 0 {
            let reason = if r.is_ok() {
                CancelReason::ImmediateOrCancel
            } else {
                CancelReason::SystemCancel
            };
            self.canceled(c.session, c.user_ref, e.unfilled, reason, out);
        }
    }

    fn canceled(
        &mut self,
        session: SessionId,
        user_ref: u32,
        decrement: u32,
        reason: CancelReason,
        out: &mut impl ExchangeOutput,
    ) {
        self.sessions[usize::from(session)].counters.canceled += 1;
        out.order_event(
            session,
            &OrderEvent::Canceled {
                user_ref_num: user_ref,
                decrement,
                reason,
            },
        );
    }

    fn client_replace(
        &mut self,
        session: SessionId,
        o: &ReplaceOrder,
        ts: Timestamp,
        out: &mut impl ExchangeOutput,
    ) {
        let s = &mut self.sessions[usize::from(session)];
        if o.user_ref_num <= s.last_user_ref {
            s.counters.retransmissions += 1;
            return;
        }
        // OUCH 5.0, 2.2 case 1: a replace of an order that is no longer
        // live is silently ignored, and its UserRefNum is not consumed.
        let key = client_key(session, o.orig_user_ref_num);
        let live = self.client_index.get(&key).and_then(|&i| {
            let c = self.clients.items[i as usize];
            Some((i, c, self.engine.order(c.exch_ref)?))
        });
        let Some((i, c, cur)) = live else {
            self.sessions[usize::from(session)]
                .counters
                .replaces_ignored += 1;
            return;
        };
        if !self.fresh(session, o.user_ref_num) {
            return;
        }
        if !self.market_open {
            return self.reject(
                session,
                o.user_ref_num,
                RejectReason::DestinationClosed,
                o.cl_ord_id,
                out,
            );
        }
        let trading =
            self.instruments[usize::from(cur.locate)].state == codes::trading_state::TRADING;
        let checked = self
            .check_quantity(o.quantity)
            .and(if trading {
                Ok(())
            } else {
                Err(RejectReason::Halted)
            })
            .and_then(|()| self.check_price(cur.locate, o.price))
            .and_then(|p| {
                let tif = entry_time_in_force(o.time_in_force)?;
                let display = entry_display(o.display)?;
                if o.intermarket_sweep != b'N' {
                    return Err(RejectReason::IsoNotAllowed);
                }
                Ok((p, tif, display))
            });
        let (price, tif, display) = match checked {
            Ok(v) => v,
            Err(reason) => return self.reject(session, o.user_ref_num, reason, o.cl_ord_id, out),
        };
        self.sessions[usize::from(session)].counters.accepted += 1;
        // The original leaves the book either way.
        self.engine.cancel(c.exch_ref, &mut super::engine::NoEvents);
        self.client_index.remove(&key);
        self.clients.release(i);
        let orig_pub = (c.display != Display::Hidden).then_some(c.exch_ref);
        let header = HeaderRepr {
            stock_locate: cur.locate,
            tracking_number: 0,
            timestamp: ts,
        };
        let open = o.quantity.saturating_sub(c.executed);
        if open == 0 {
            // Replaced to no more than it executed: nothing left to trade.
            if let Some(r) = orig_pub {
                self.publish(
                    &Message::OrderDelete(OrderDeleteRepr {
                        header,
                        order_ref: r,
                    }),
                    out,
                );
            }
            self.canceled(
                session,
                o.orig_user_ref_num,
                cur.quantity,
                CancelReason::UserRequested,
                out,
            );
            return;
        }
        let exch_ref = self.take_ref();
        out.order_event(
            session,
            &OrderEvent::Replaced {
                user_ref_num: o.user_ref_num,
                orig_user_ref_num: o.orig_user_ref_num,
                side: c.side,
                quantity: open,
                symbol: self.stock_of(cur.locate),
                price: u64::from(price),
                time_in_force: tif,
                display,
                capacity: c.capacity,
                order_reference_number: exch_ref,
                cl_ord_id: o.cl_ord_id,
            },
        );
        let nc = ClientOrder {
            user_ref: o.user_ref_num,
            display,
            tif,
            exch_ref,
            ..c
        };
        self.client_submit(nc, cur.locate, price, open, ts, orig_pub, out);
    }

    /// The live client order `user_ref` of `session`: slot, state, open
    /// shares and locate.
    fn live_client(
        &self,
        session: SessionId,
        user_ref: u32,
    ) -> Option<(u32, ClientOrder, u32, u16)> {
        let i = *self.client_index.get(&client_key(session, user_ref))?;
        let c = self.clients.items[i as usize];
        let r = self.engine.order(c.exch_ref)?;
        Some((i, c, r.quantity, r.locate))
    }

    /// Reduces client order slot `i` to `to` open shares (0: removes it),
    /// publishing the ITCH cancel or delete.
    #[allow(clippy::too_many_arguments)]
    fn client_reduce(
        &mut self,
        i: u32,
        c: ClientOrder,
        open: u32,
        to: u32,
        locate: u16,
        ts: Timestamp,
        event: bool,
        out: &mut impl ExchangeOutput,
    ) {
        let header = HeaderRepr {
            stock_locate: locate,
            tracking_number: 0,
            timestamp: ts,
        };
        let published = c.display != Display::Hidden;
        if to == 0 {
            self.engine.cancel(c.exch_ref, &mut super::engine::NoEvents);
            self.client_index.remove(&client_key(c.session, c.user_ref));
            self.clients.release(i);
            if published {
                self.publish(
                    &Message::OrderDelete(OrderDeleteRepr {
                        header,
                        order_ref: c.exch_ref,
                    }),
                    out,
                );
            }
        } else {
            self.engine
                .reduce(c.exch_ref, open - to, &mut super::engine::NoEvents);
            if published {
                self.publish(
                    &Message::OrderCancel(OrderCancelRepr {
                        header,
                        order_ref: c.exch_ref,
                        cancelled_shares: open - to,
                    }),
                    out,
                );
            }
        }
        if event || to == 0 {
            self.canceled(
                c.session,
                c.user_ref,
                open - to,
                CancelReason::UserRequested,
                out,
            );
        }
    }

    fn client_cancel(
        &mut self,
        session: SessionId,
        o: &CancelOrder,
        ts: Timestamp,
        out: &mut impl ExchangeOutput,
    ) {
        self.sessions[usize::from(session)].counters.cancels += 1;
        match self.live_client(session, o.user_ref_num) {
            Some((i, c, open, locate)) if o.quantity < open => {
                self.client_reduce(i, c, open, o.quantity, locate, ts, true, out);
            }
            _ => self.sessions[usize::from(session)].counters.cancels_ignored += 1,
        }
    }

    fn client_modify(
        &mut self,
        session: SessionId,
        o: &ModifyOrder,
        ts: Timestamp,
        out: &mut impl ExchangeOutput,
    ) {
        self.sessions[usize::from(session)].counters.modifies += 1;
        let Some((i, c, open, locate)) = self.live_client(session, o.user_ref_num) else {
            self.sessions[usize::from(session)]
                .counters
                .modifies_ignored += 1;
            return;
        };
        let side = match OrderSide::from_byte(o.side) {
            Ok(s) if may_modify_to(c.side, s) && o.quantity <= open => s,
            _ => {
                self.sessions[usize::from(session)]
                    .counters
                    .modifies_ignored += 1;
                return;
            }
        };
        if o.quantity < open {
            // A Modify reduction is answered by Order Modified alone; to
            // zero, by Order Canceled.
            self.client_reduce(i, c, open, o.quantity, locate, ts, false, out);
        }
        if o.quantity > 0 {
            self.clients.items[i as usize].side = side;
            out.order_event(
                session,
                &OrderEvent::Modified {
                    user_ref_num: o.user_ref_num,
                    side,
                    quantity: o.quantity,
                },
            );
        }
    }

    // ------------------------------------------------------------ internals

    /// Runs an order through the engine with the fill sink.
    #[allow(clippy::too_many_arguments)]
    fn enter(
        &mut self,
        header: HeaderRepr,
        stock: Stock,
        taker: Option<(SessionId, u32)>,
        id: u64,
        user: u64,
        side: Side,
        price: u32,
        shares: u32,
        rest: bool,
        out: &mut impl ExchangeOutput,
    ) -> Result<Entered, super::engine::EnterError> {
        let locate = header.stock_locate;
        let mut dummy = 0;
        let last_price = match self.instruments.get_mut(usize::from(locate)) {
            Some(i) => &mut i.last_price,
            None => &mut dummy,
        };
        let mut sink = Sink {
            clients: &mut self.clients,
            client_index: &mut self.client_index,
            gens: &mut self.gens,
            gen_index: &mut self.gen_index,
            sessions: &mut self.sessions,
            counters: &mut self.counters,
            next_match: &mut self.next_match,
            header,
            stock,
            taker,
            last_price,
            out,
        };
        self.engine
            .enter(locate, id, user, side, price, shares, rest, &mut sink)
    }

    fn stock_of(&self, locate: u16) -> Stock {
        self.instruments
            .get(usize::from(locate))
            .and_then(|i| i.symbol)
            .unwrap_or(Stock(*b"        "))
    }

    /// The end of market hours: every resting client order (all are DAY
    /// orders) is canceled, [`CancelReason::Timeout`], and deleted from
    /// the feed. Allocates (a list of the orders); once a day.
    fn expire_client_orders(&mut self, ts: Timestamp, out: &mut impl ExchangeOutput) {
        let mut live: Vec<(u64, u32)> = self.client_index.iter().map(|(&k, &i)| (k, i)).collect();
        // In entry order, so the feed and the sessions see the same order
        // on every run.
        live.sort_unstable_by_key(|&(_, i)| self.clients.items[i as usize].exch_ref);
        for (_, i) in live {
            let c = self.clients.items[i as usize];
            let Some(r) = self.engine.cancel(c.exch_ref, &mut super::engine::NoEvents) else {
                continue;
            };
            self.client_index.remove(&client_key(c.session, c.user_ref));
            self.clients.release(i);
            if c.display != Display::Hidden {
                self.publish(
                    &Message::OrderDelete(OrderDeleteRepr {
                        header: HeaderRepr {
                            stock_locate: r.locate,
                            tracking_number: 0,
                            timestamp: ts,
                        },
                        order_ref: c.exch_ref,
                    }),
                    out,
                );
            }
            self.canceled(
                c.session,
                c.user_ref,
                r.quantity,
                CancelReason::Timeout,
                out,
            );
        }
    }

    fn take_ref(&mut self) -> u64 {
        let r = self.next_ref;
        self.next_ref += 1;
        r
    }

    fn take_match(&mut self) -> u64 {
        let m = self.next_match;
        self.next_match += 1;
        m
    }

    /// The ITCH timestamp of `ns` (clamped to 48 bits).
    fn stamp(ns: u64) -> Timestamp {
        Timestamp::new(ns.min(Timestamp::MAX.nanos())).unwrap_or(Timestamp::MAX)
    }

    fn as_is(&mut self, m: &Message, out: &mut impl ExchangeOutput) {
        self.counters.generated_as_is += 1;
        self.publish(m, out);
    }

    fn publish(&mut self, m: &Message, out: &mut impl ExchangeOutput) {
        self.counters.published += 1;
        out.itch(m);
    }
}

/// The Time In Force of an Enter or Replace: Day or IOC; anything else
/// (GTX, GTT, after hours, or no OUCH code) is [`RejectReason::Other`].
fn entry_time_in_force(b: u8) -> Result<TimeInForce, RejectReason> {
    match TimeInForce::from_byte(b) {
        Ok(t @ (TimeInForce::Day | TimeInForce::Ioc)) => Ok(t),
        _ => Err(RejectReason::Other),
    }
}

/// The Display of an Enter or Replace: `Y`, `A` or `N`; anything else
/// (`Z` appears only in the exchange's answers) is
/// [`RejectReason::InvalidDisplay`].
fn entry_display(b: u8) -> Result<Display, RejectReason> {
    match Display::from_byte(b) {
        Ok(d @ (Display::Visible | Display::Attributable | Display::Hidden)) => Ok(d),
        _ => Err(RejectReason::InvalidDisplay),
    }
}
