//! Market data applied: ITCH 5.0 messages in, order books and counts out.
//!
//! [`MarketData`] is the glue between the codec ([`hftnet_wire::itch50`]) and
//! the [`Book`]: it reads each message in place through the codec's views
//! (no copy, no enum on the hot path), applies the order messages and the
//! directory and trading-state messages to the book, counts every message
//! by type, and keeps a digest of the stream itself so two parties can check
//! they saw the same messages in the same order.
//!
//! Malformed messages (too short for their type, a side byte other than `B`
//! or `S`) are counted and skipped; unknown types are counted and skipped by
//! length. Nothing here panics on any input.

use hftnet_wire::itch50::{
    AddOrder, AddOrderMpid, MessageType, OrderCancel, OrderDelete, OrderExecuted,
    OrderExecutedWithPrice, OrderReplace, StockDirectory, StockTradingAction,
};

use crate::book::{Book, BookConfig, ConfigError, Side, TopChange, TopOfBook};

/// Counts of what [`MarketData`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageCounts {
    /// Messages of each known type, indexed by [`MessageType::index`].
    pub by_type: [u64; MessageType::COUNT],
    /// Messages of a type ITCH 5.0 does not define (skipped).
    pub unknown: u64,
    /// Messages too short for their type or with a field out of range.
    pub malformed: u64,
}

impl Default for MessageCounts {
    fn default() -> Self {
        Self {
            by_type: [0; MessageType::COUNT],
            unknown: 0,
            malformed: 0,
        }
    }
}

impl MessageCounts {
    /// All messages seen, known, unknown and malformed.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.by_type.iter().sum::<u64>() + self.unknown + self.malformed
    }

    /// The count of one type.
    #[must_use]
    pub fn of(&self, t: MessageType) -> u64 {
        self.by_type[t.index()]
    }

    /// `(name, count)` of every known type seen at least once, in table order.
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        (0..MessageType::COUNT).filter_map(|i| {
            let t = MessageType::from_index(i)?;
            let n = self.by_type[i];
            (n > 0).then_some((t.name(), n))
        })
    }
}

/// A digest of a message stream: FNV-1a's multiply, applied to the length
/// and then to 8-byte big-endian words (the last one zero-padded), so it
/// costs a few multiplies per message. Stable across runs, machines and
/// processes; not cryptographic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamDigest(u64);

impl Default for StreamDigest {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl StreamDigest {
    const PRIME: u64 = 0x0100_0000_01b3;

    /// Adds one message (its length first, so boundaries count).
    #[inline]
    pub fn add(&mut self, msg: &[u8]) {
        self.mix(msg.len() as u64);
        let mut chunks = msg.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_be_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_be_bytes(w));
        }
    }

    #[inline]
    fn mix(&mut self, w: u64) {
        self.0 = (self.0 ^ w).wrapping_mul(Self::PRIME);
        self.0 ^= self.0 >> 29;
    }

    /// The digest so far.
    #[must_use]
    pub fn value(&self) -> u64 {
        self.0
    }
}

/// A change of the best bid, best offer or trading state of one book, as
/// handed to the strategy by [`MarketData::handle_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopUpdate {
    /// The stock locate of the book.
    pub locate: u16,
    /// What changed.
    pub change: TopChange,
    /// The best bid and offer after the message.
    pub top: TopOfBook,
    /// The message's timestamp, nanoseconds since midnight.
    pub timestamp_ns: u64,
}

/// Books plus counts; see the module doc.
#[derive(Debug)]
pub struct MarketData {
    book: Book,
    counts: MessageCounts,
    digest: StreamDigest,
    last_timestamp_ns: u64,
}

impl MarketData {
    /// Empty books.
    ///
    /// # Errors
    /// When the book configuration is invalid.
    pub fn new(cfg: BookConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            book: Book::new(cfg)?,
            counts: MessageCounts::default(),
            digest: StreamDigest::default(),
            last_timestamp_ns: 0,
        })
    }

    /// The books.
    #[must_use]
    pub fn book(&self) -> &Book {
        &self.book
    }

    /// Counts by type.
    #[must_use]
    pub fn counts(&self) -> &MessageCounts {
        &self.counts
    }

    /// Digest of every message handled, in order.
    #[must_use]
    pub fn stream_digest(&self) -> u64 {
        self.digest.value()
    }

    /// Timestamp of the last well-formed message, nanoseconds since midnight.
    #[must_use]
    pub fn last_timestamp_ns(&self) -> u64 {
        self.last_timestamp_ns
    }

    /// Applies one message (without framing). Returns how the top of its
    /// book changed ([`TopChange::NONE`] for messages that do not touch a
    /// book, and for unknown or malformed ones, which are counted).
    pub fn handle(&mut self, msg: &[u8]) -> TopChange {
        self.digest.add(msg);
        let Some(&ty) = msg.first() else {
            self.counts.malformed += 1;
            return TopChange::NONE;
        };
        let Some(t) = MessageType::from_byte(ty) else {
            self.counts.unknown += 1;
            return TopChange::NONE;
        };
        match self.apply(ty, msg) {
            Some(change) => {
                self.counts.by_type[t.index()] += 1;
                change
            }
            None => {
                self.counts.malformed += 1;
                TopChange::NONE
            }
        }
    }

    /// Like [`MarketData::handle`], and calls `on_top` when the message
    /// changed the best bid, the best offer or the trading state of its book
    /// — the hook for a strategy. The callback runs before the next message
    /// is handled; it gets a copy of the top, nothing to free.
    pub fn handle_with(&mut self, msg: &[u8], on_top: &mut impl FnMut(&TopUpdate)) -> TopChange {
        let change = self.handle(msg);
        if !change.is_empty() {
            // A change means the message was well formed: its header is there.
            let locate = u16::from_be_bytes([msg[1], msg[2]]);
            on_top(&TopUpdate {
                locate,
                change,
                top: self.book.top(locate),
                timestamp_ns: self.last_timestamp_ns,
            });
        }
        change
    }

    /// `None` when the message is malformed.
    #[inline]
    fn apply(&mut self, ty: u8, msg: &[u8]) -> Option<TopChange> {
        let b = &mut self.book;
        let (change, ts) = match ty {
            b'A' => {
                let m = AddOrder::new_checked(msg).ok()?;
                let side = Side::from_itch(m.side().ok()?.as_byte())?;
                (
                    b.add(
                        m.stock_locate(),
                        m.order_ref(),
                        side,
                        m.shares(),
                        m.price().raw(),
                    ),
                    m.timestamp(),
                )
            }
            b'F' => {
                let m = AddOrderMpid::new_checked(msg).ok()?;
                let side = Side::from_itch(m.side().ok()?.as_byte())?;
                (
                    b.add(
                        m.stock_locate(),
                        m.order_ref(),
                        side,
                        m.shares(),
                        m.price().raw(),
                    ),
                    m.timestamp(),
                )
            }
            b'E' => {
                let m = OrderExecuted::new_checked(msg).ok()?;
                (
                    b.execute(m.stock_locate(), m.order_ref(), m.executed_shares()),
                    m.timestamp(),
                )
            }
            b'C' => {
                let m = OrderExecutedWithPrice::new_checked(msg).ok()?;
                (
                    b.execute_with_price(
                        m.stock_locate(),
                        m.order_ref(),
                        m.executed_shares(),
                        m.execution_price().raw(),
                    ),
                    m.timestamp(),
                )
            }
            b'X' => {
                let m = OrderCancel::new_checked(msg).ok()?;
                (
                    b.cancel(m.stock_locate(), m.order_ref(), m.cancelled_shares()),
                    m.timestamp(),
                )
            }
            b'D' => {
                let m = OrderDelete::new_checked(msg).ok()?;
                (b.delete(m.stock_locate(), m.order_ref()), m.timestamp())
            }
            b'U' => {
                let m = OrderReplace::new_checked(msg).ok()?;
                (
                    b.replace(
                        m.stock_locate(),
                        m.original_order_ref(),
                        m.new_order_ref(),
                        m.shares(),
                        m.price().raw(),
                    ),
                    m.timestamp(),
                )
            }
            b'R' => {
                let m = StockDirectory::new_checked(msg).ok()?;
                (
                    b.stock_directory(m.stock_locate(), m.stock().0),
                    m.timestamp(),
                )
            }
            b'H' => {
                let m = StockTradingAction::new_checked(msg).ok()?;
                (
                    b.trading_action(m.stock_locate(), m.trading_state()),
                    m.timestamp(),
                )
            }
            _ => {
                // Every other known type: checked for length, not applied.
                let t = MessageType::from_byte(ty)?;
                if msg.len() < t.message_len() {
                    return None;
                }
                let h = hftnet_wire::itch50::Header::new_checked(msg).ok()?;
                (TopChange::NONE, h.timestamp())
            }
        };
        self.last_timestamp_ns = ts.nanos();
        Some(change)
    }
}

#[cfg(test)]
mod tests {
    use hftnet_wire::itch50::Message;

    use super::*;
    use crate::exchange::{Generator, GeneratorConfig};

    fn small_book() -> BookConfig {
        BookConfig {
            max_orders: 1 << 12,
            ref_window: 1 << 16,
            ref_window_prealloc: 1 << 12,
            max_locates: 256,
            ..BookConfig::default()
        }
    }

    #[test]
    fn applies_a_generated_day_consistently() {
        let mut g = Generator::new(GeneratorConfig::new(3, 4)).unwrap();
        let mut md = MarketData::new(small_book()).unwrap();
        let mut buf = [0u8; 64];
        let mut n_msgs = 0;
        while let Some(m) = g.next_message() {
            let n = m.emit(&mut buf).unwrap();
            md.handle(&buf[..n]);
            n_msgs += 1;
            if g.in_flow() && g.generated() > 5_000 {
                g.finish();
            }
        }
        let c = md.counts();
        assert_eq!(c.total(), n_msgs);
        assert_eq!((c.unknown, c.malformed), (0, 0));
        let bc = md.book().counters();
        assert_eq!(
            bc.adds,
            c.of(MessageType::AddOrder) + c.of(MessageType::AddOrderMpid)
        );
        assert_eq!(
            (bc.unknown_ref, bc.oversized, bc.duplicate_ref),
            (0, 0, 0),
            "the generator only references live orders"
        );
        let report = md.book().check_invariants().unwrap();
        assert!(
            report.crossed.is_empty(),
            "the generated book never crosses"
        );
        assert!(report.locked.is_empty(), "nor locks");
        assert!(md.book().live_orders() > 0);
        assert_eq!(&md.book().symbol(1).unwrap(), b"AAPL    ");
    }

    #[test]
    fn the_strategy_hook_sees_every_top_change() {
        let mut g = Generator::new(GeneratorConfig::new(11, 3)).unwrap();
        let mut md = MarketData::new(small_book()).unwrap();
        let mut buf = [0u8; 64];
        let mut updates = Vec::new();
        let mut last_top = [TopOfBook::default(); 4];
        while let Some(m) = g.next_message() {
            let n = m.emit(&mut buf).unwrap();
            let before = updates.len();
            let change = md.handle_with(&buf[..n], &mut |u: &TopUpdate| updates.push(*u));
            let locate = m.header().unwrap().stock_locate;
            if let Some(u) = updates.get(before) {
                // One call per changing message, with the top as it now is.
                assert_eq!(updates.len(), before + 1);
                assert_eq!((u.locate, u.change), (locate, change));
                assert_eq!(u.top, md.book().top(locate));
                assert_eq!(u.timestamp_ns, m.header().unwrap().timestamp.nanos());
                last_top[usize::from(locate)] = u.top;
            } else {
                assert!(change.is_empty());
                // No call: the top of that book is as last reported.
                if usize::from(locate) < last_top.len() {
                    assert_eq!(md.book().top(locate), last_top[usize::from(locate)]);
                }
            }
            if g.in_flow() && g.generated() > 3_000 {
                g.finish();
            }
        }
        assert!(updates.len() > 500, "{}", updates.len());
        // Best bid/offer changes, plus one trading-state change per instrument.
        assert_eq!(updates.len() as u64, md.book().counters().top_changes + 3);
    }

    #[test]
    fn unknown_and_malformed_are_counted() {
        let mut md = MarketData::new(small_book()).unwrap();
        md.handle(&[]);
        md.handle(b"z123");
        md.handle(b"A12");
        let mut add = [0u8; 36];
        let n = Message::parse(&{
            let mut b = [0u8; 36];
            b[0] = b'A';
            b[19] = b'B';
            b
        })
        .unwrap()
        .emit(&mut add)
        .unwrap();
        add[19] = b'Q'; // not a side
        md.handle(&add[..n]);
        let c = md.counts();
        assert_eq!((c.unknown, c.malformed, c.total()), (1, 3, 4));
        assert_eq!(md.book().live_orders(), 0);
    }

    #[test]
    fn stream_digest_sees_order_and_boundaries() {
        let digest = |msgs: &[&[u8]]| {
            let mut d = StreamDigest::default();
            msgs.iter().for_each(|m| d.add(m));
            d.value()
        };
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"c", b"ab"]));
        assert_eq!(digest(&[b"ab", b"c"]), digest(&[b"ab", b"c"]));
        assert_ne!(
            digest(&[b"ab\0"]),
            digest(&[b"ab"]),
            "padding is not content"
        );
        assert_ne!(digest(&[b"12345678x"]), digest(&[b"12345678y"]));
        // Pinned: processes of different versions compare digests.
        assert_eq!(digest(&[b"hftnet"]), 0x974d_1d43_431b_f178);
    }
}
