//! The typed primitives of OUCH 5.0 fields: prices, the alpha fields and the
//! closed one-byte code sets of the message bodies.
//!
//! Every type here is `Copy`, holds its wire value unchanged (a parsed field
//! emits back to the same bytes) and converts without allocating.

use core::fmt;

use crate::itch50::{self, Price4, Wire, alpha, fixed_price};
use crate::ouch50::{Error, Result};

/// How a field is read for a repr: the value, or the error naming the field.
/// Every slice passed is exactly the field's width.
pub(crate) trait Decode: Sized {
    fn decode(b: &[u8]) -> Result<Self>;
}

macro_rules! decode_infallible {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            #[inline]
            fn decode(b: &[u8]) -> Result<Self> {
                Ok(<$t as Wire>::get(b))
            }
        }
    )*};
}

decode_infallible!(
    u8,
    u16,
    u32,
    u64,
    Symbol,
    ClOrdId,
    Firm,
    Route,
    Price,
    SignedPrice
);

/// A stock symbol: 8 ASCII bytes, left-justified and space padded (the same
/// type as ITCH's [`itch50::Stock`], so a symbol from the feed goes into an
/// order as is).
pub type Symbol = itch50::Stock;

fixed_price!(
    /// A `Price` field: an 8-byte unsigned integer with 4 implied decimal places
    /// (`1_852_500` is `185.2500`).
    ///
    /// OUCH prices are 8 bytes wide but today's limits fit in 4: the largest
    /// limit price is [`Price::MAX_LIMIT`] (199,999.9900), and
    /// [`Price::MARKET`] (214,748.3647, `0x7FFF_FFFF`) flags a market order for
    /// a cross. The type holds any `u64`, so every byte pattern parses and emits
    /// back unchanged; the exchange decides what it accepts.
    Price(u64),
    10_000,
    4
);

impl Price {
    /// The largest limit price OUCH supports: $199,999.9900.
    pub const MAX_LIMIT: Self = Self(1_999_999_900);
    /// The special price of a market order for a cross: $214,748.3647.
    pub const MARKET: Self = Self(0x7FFF_FFFF);
    /// $200,000.0000, which Nasdaq also treats as a market order.
    pub const MARKET_200K: Self = Self(2_000_000_000);

    /// Whether Nasdaq treats this price as a market order
    /// ([`Price::MARKET`] or [`Price::MARKET_200K`]).
    #[must_use]
    pub const fn is_market(self) -> bool {
        self.0 == Self::MARKET.0 || self.0 == Self::MARKET_200K.0
    }

    /// Whether this is a limit price OUCH accepts: above zero and at most
    /// [`Price::MAX_LIMIT`].
    #[must_use]
    pub const fn is_valid_limit(self) -> bool {
        self.0 > 0 && self.0 <= Self::MAX_LIMIT.0
    }

    /// The same price as an ITCH `Price(4)`.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when the price does not fit in 4 bytes.
    pub fn to_itch(self) -> Result<Price4> {
        u32::try_from(self.0)
            .map(Price4::from_raw)
            .map_err(|_| Error::OutOfRange)
    }
}

impl From<Price4> for Price {
    fn from(p: Price4) -> Self {
        Self(u64::from(p.raw()))
    }
}

impl TryFrom<Price> for Price4 {
    type Error = Error;
    fn try_from(p: Price) -> Result<Self> {
        p.to_itch()
    }
}

/// A `Signed Price` field of the appendage (PegOffset, DiscretionPegOffset):
/// a 4-byte two's-complement integer with 4 implied decimal places
/// (`-100` is `-0.0100`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SignedPrice(i32);

impl SignedPrice {
    /// Raw units per whole currency unit.
    pub const SCALE: i32 = 10_000;

    /// An offset from its raw wire value (ten-thousandths).
    #[must_use]
    pub const fn from_raw(raw: i32) -> Self {
        Self(raw)
    }

    /// The raw wire value (ten-thousandths).
    #[must_use]
    pub const fn raw(self) -> i32 {
        self.0
    }
}

impl fmt::Display for SignedPrice {
    /// `-0.0100`: a sign when negative, the whole part and four decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0.unsigned_abs();
        let s = Self::SCALE.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:04}", a / s, a % s)
    }
}

impl Wire for SignedPrice {
    const LEN: usize = 4;
    type Get = Self;
    #[inline]
    fn get(b: &[u8]) -> Self {
        Self(u32::get(b).cast_signed())
    }
    #[inline]
    fn put(self, b: &mut [u8]) {
        self.0.cast_unsigned().put(b);
    }
}

alpha!(
    /// A customer order identifier (ClOrdID): 14 ASCII bytes, letters,
    /// digits and spaces, left-justified and space padded. OUCH does not
    /// check it for uniqueness; the trader uses it to carry a number (the
    /// MoldUDP64 sequence number of the market data that triggered the
    /// order), see [`ClOrdId::from_number`].
    ClOrdId,
    14
);
alpha!(
    /// A firm identifier (option 2): 4 ASCII bytes, all caps; blank for the
    /// account's default firm.
    Firm,
    4
);
alpha!(
    /// A routing strategy (option 14): 4 ASCII bytes.
    Route,
    4
);

impl ClOrdId {
    /// The largest number [`ClOrdId::from_number`] takes: 14 decimal digits.
    pub const MAX_NUMBER: u64 = 99_999_999_999_999;

    /// A ClOrdID holding `n` in decimal, left-justified and space padded
    /// (`42` is `"42            "`).
    ///
    /// # Errors
    /// [`Error::OutOfRange`] when `n` exceeds [`ClOrdId::MAX_NUMBER`].
    pub fn from_number(n: u64) -> Result<Self> {
        if n > Self::MAX_NUMBER {
            return Err(Error::OutOfRange);
        }
        // Count the digits, then write them right to left in place.
        let mut len = 1;
        let mut p = 10u64;
        while len < 14 && n >= p {
            len += 1;
            p *= 10;
        }
        let mut s = [b' '; 14];
        let mut v = n;
        for c in s[..len].iter_mut().rev() {
            #[allow(clippy::cast_possible_truncation)] // v % 10 < 10
            let d = (v % 10) as u8;
            *c = b'0' + d;
            v /= 10;
        }
        Ok(Self(s))
    }

    /// The number this ClOrdID holds when it is 1 to 14 decimal digits,
    /// left-justified and space padded (as [`ClOrdId::from_number`] writes
    /// it); `None` otherwise.
    #[must_use]
    pub fn number(&self) -> Option<u64> {
        let t = self.trimmed();
        if t.is_empty() || !t.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(t.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0')))
    }
}

closed_code! {
    /// The side of an order (Enter Order, Modify Order and the echoes).
    Side / Side {
        Buy = b'B' => "buy",
        Sell = b'S' => "sell",
        SellShort = b'T' => "sell short",
        SellShortExempt = b'E' => "sell short exempt",
    }
}

impl Side {
    /// Whether the order buys.
    #[must_use]
    pub const fn is_buy(self) -> bool {
        matches!(self, Self::Buy)
    }

    /// The side as ITCH shows it in the book: every sell is `S`.
    #[must_use]
    pub const fn to_itch(self) -> itch50::Side {
        match self {
            Self::Buy => itch50::Side::Buy,
            Self::Sell | Self::SellShort | Self::SellShortExempt => itch50::Side::Sell,
        }
    }
}

impl From<itch50::Side> for Side {
    fn from(s: itch50::Side) -> Self {
        match s {
            itch50::Side::Buy => Self::Buy,
            itch50::Side::Sell => Self::Sell,
        }
    }
}

closed_code! {
    /// Time in force (FIX TimeInForce (59)).
    TimeInForce / TimeInForce {
        Day = b'0' => "day (market hours)",
        Ioc = b'3' => "immediate or cancel",
        Gtx = b'5' => "good till extended hours",
        Gtt = b'6' => "good till time (ExpireTime needs to be specified)",
        AfterHours = b'E' => "after hours",
    }
}

closed_code! {
    /// How an order is displayed. Enter and Replace Order define `Y`, `N`
    /// and `A`; `Z` appears in the exchange's answers. The codec reads all
    /// four in both directions and leaves refusing `Z` on entry to the
    /// exchange ([`RejectReason::InvalidDisplay`](crate::ouch50::RejectReason::InvalidDisplay)).
    Display / Display {
        Visible = b'Y' => "visible (in Order Priority Update: anonymous, price to comply)",
        Hidden = b'N' => "hidden",
        Attributable = b'A' => "attributable",
        Conformant = b'Z' => "conformant",
    }
}

closed_code! {
    /// The capacity in which the firm enters the order.
    Capacity / Capacity {
        Agency = b'A' => "agency",
        Principal = b'P' => "principal",
        Riskless = b'R' => "riskless",
        Other = b'O' => "other",
    }
}

closed_code! {
    /// InterMarket Sweep (ISO) eligibility.
    IntermarketSweep / IntermarketSweep {
        Eligible = b'Y' => "eligible",
        NotEligible = b'N' => "not eligible",
    }
}

closed_code! {
    /// The cross an order takes part in, or the continuous market.
    CrossType / CrossType {
        ContinuousMarket = b'N' => "continuous market",
        Opening = b'O' => "opening cross (Nasdaq only)",
        Closing = b'C' => "closing cross (Nasdaq only)",
        HaltIpo = b'H' => "halt/IPO (Nasdaq only)",
        Supplemental = b'S' => "supplemental (Nasdaq only)",
        Retail = b'R' => "retail (BX only)",
        ExtendedLife = b'E' => "extended life (Nasdaq only)",
        AfterHoursClose = b'A' => "after hours close (Nasdaq only)",
    }
}

closed_code! {
    /// Whether an accepted or replaced order is on the book.
    OrderState / OrderState {
        Live = b'L' => "order live",
        Dead = b'D' => "order dead (accepted and automatically canceled)",
    }
}

closed_code! {
    /// The event of a System Event message.
    EventCode / EventCode {
        StartOfDay = b'S' => "start of day: the exchange is open and accepts orders",
        EndOfDay = b'E' => "end of day: the exchange is closed and accepts no new orders",
    }
}

closed_code! {
    /// Why a trade was broken.
    BrokenTradeReason / BrokenTradeReason {
        Erroneous = b'E' => "erroneous (trade deemed clearly erroneous)",
        Consent = b'C' => "consent (both parties agreed to break the trade)",
        Supervisory = b'S' => "supervisory (manually broken by supervisory)",
        External = b'X' => "external (trade broken by an external third party)",
    }
}

closed_code! {
    /// Why an order was restated.
    RestateReason / RestateReason {
        Refresh = b'R' => "refresh of display (on an order with reserves)",
        PriceUpdate = b'P' => "update of displayed price",
    }
}

#[cfg(test)]
mod from_seed {
    use super::*;
    use crate::itch50::FromSeed;

    impl FromSeed for Price {
        fn from_seed(s: u64) -> Self {
            Self(s)
        }
    }

    impl FromSeed for SignedPrice {
        #[allow(clippy::cast_possible_truncation)]
        fn from_seed(s: u64) -> Self {
            Self(s as i32)
        }
    }

    macro_rules! from_seed_alpha {
        ($($t:ident),*) => {$(
            impl FromSeed for $t {
                fn from_seed(s: u64) -> Self {
                    let mut a = [b' '; $t::LEN];
                    for (i, c) in a.iter_mut().enumerate() {
                        *c = (s.rotate_left(7 * i as u32) & 0xff) as u8;
                    }
                    Self(a)
                }
            }
        )*};
    }
    from_seed_alpha!(ClOrdId, Firm, Route);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ouch50::Field;

    #[test]
    fn price_display_and_itch() {
        assert_eq!(Price::from_raw(1_852_500).to_string(), "185.2500");
        assert_eq!(Price::from_raw(0).to_string(), "0.0000");
        assert_eq!(Price::from_raw(1).to_string(), "0.0001");
        assert_eq!(Price::MAX_LIMIT.to_string(), "199999.9900");
        assert_eq!(Price::MARKET.to_string(), "214748.3647");
        assert_eq!(
            Price::from_raw(u64::MAX).to_string(),
            "1844674407370955.1615"
        );
        assert!(Price::MARKET.is_market());
        assert!(Price::MARKET_200K.is_market());
        assert!(!Price::MAX_LIMIT.is_market());
        assert!(Price::MAX_LIMIT.is_valid_limit());
        assert!(!Price::from_raw(0).is_valid_limit());
        assert!(!Price::MARKET_200K.is_valid_limit());
        let p4 = Price4::from_raw(1_852_500);
        assert_eq!(Price::from(p4), Price::from_raw(1_852_500));
        assert_eq!(Price4::try_from(Price::from(p4)), Ok(p4));
        assert_eq!(
            Price::from_raw(u64::from(u32::MAX) + 1).to_itch(),
            Err(Error::OutOfRange)
        );
        assert!((Price::from_raw(1_852_500).to_f64() - 185.25).abs() < 1e-9);
        let mut b = [0u8; 8];
        Price::MARKET.put(&mut b);
        assert_eq!(b, [0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]);
        assert_eq!(Price::get(&b), Price::MARKET);
    }

    #[test]
    fn signed_price() {
        assert_eq!(SignedPrice::from_raw(-100).to_string(), "-0.0100");
        assert_eq!(SignedPrice::from_raw(12_345).to_string(), "1.2345");
        assert_eq!(SignedPrice::from_raw(i32::MIN).to_string(), "-214748.3648");
        let mut b = [0u8; 4];
        SignedPrice::from_raw(-1).put(&mut b);
        assert_eq!(b, [0xff; 4]);
        assert_eq!(SignedPrice::get(&b).raw(), -1);
    }

    #[test]
    fn cl_ord_id_numbers() {
        let c = ClOrdId::from_number(42).unwrap();
        assert_eq!(c.as_bytes(), b"42            ");
        assert_eq!(c.number(), Some(42));
        assert_eq!(
            ClOrdId::from_number(0).unwrap().as_bytes(),
            b"0             "
        );
        assert_eq!(ClOrdId::from_number(0).unwrap().number(), Some(0));
        let max = ClOrdId::from_number(ClOrdId::MAX_NUMBER).unwrap();
        assert_eq!(max.as_bytes(), b"99999999999999");
        assert_eq!(max.number(), Some(ClOrdId::MAX_NUMBER));
        assert_eq!(
            ClOrdId::from_number(ClOrdId::MAX_NUMBER + 1),
            Err(Error::OutOfRange)
        );
        assert_eq!(ClOrdId::BLANK.number(), None);
        assert_eq!(ClOrdId::new("ABC12").unwrap().number(), None);
        assert_eq!(ClOrdId::new(" 12").unwrap().number(), None);
        assert_eq!(ClOrdId::new("ORDER1").unwrap().to_string(), "ORDER1");
        assert!(ClOrdId::new("123456789012345").is_err());
    }

    proptest::proptest! {
        #[test]
        fn cl_ord_id_number_round_trip(n in 0..=ClOrdId::MAX_NUMBER) {
            let c = ClOrdId::from_number(n).unwrap();
            proptest::prop_assert_eq!(c.number(), Some(n));
            proptest::prop_assert_eq!(c.to_string(), n.to_string());
        }
    }

    #[test]
    fn closed_codes() {
        for s in Side::ALL {
            assert_eq!(Side::from_byte(s.as_byte()), Ok(*s));
        }
        assert_eq!(Side::from_byte(b'E'), Ok(Side::SellShortExempt));
        assert_eq!(
            Side::from_byte(b'b'),
            Err(Error::InvalidField {
                field: Field::Side,
                byte: b'b'
            })
        );
        assert_eq!(Side::SellShort.to_itch(), itch50::Side::Sell);
        assert_eq!(Side::from(itch50::Side::Buy), Side::Buy);
        assert_eq!(TimeInForce::from_byte(b'3'), Ok(TimeInForce::Ioc));
        assert_eq!(
            TimeInForce::from_byte(b'1'),
            Err(Error::InvalidField {
                field: Field::TimeInForce,
                byte: b'1'
            })
        );
        assert_eq!(u8::from(CrossType::AfterHoursClose), b'A');
        assert_eq!(CrossType::try_from(b'R'), Ok(CrossType::Retail));
        assert_eq!(Capacity::Riskless.description(), "riskless");
        assert_eq!(OrderState::ALL.len(), 2);
        assert_eq!(Field::Side.reject_reason().code(), 0x0009);
        assert_eq!(Field::Display.reject_reason().code(), 0x0003);
        for (t, n) in [
            (TimeInForce::ALL.len(), 5),
            (Display::ALL.len(), 4),
            (Capacity::ALL.len(), 4),
            (CrossType::ALL.len(), 8),
            (BrokenTradeReason::ALL.len(), 4),
            (RestateReason::ALL.len(), 2),
            (EventCode::ALL.len(), 2),
            (IntermarketSweep::ALL.len(), 2),
        ] {
            assert_eq!(t, n);
        }
    }
}
