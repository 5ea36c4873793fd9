//! The typed primitives of ITCH 5.0 fields: prices with implied decimals, the
//! 48-bit timestamp, space-padded ASCII fields and the closed code sets that
//! get an enum ([`Side`], [`EventCode`]).
//!
//! Every type here is `Copy`, holds its wire value unchanged (a parsed field
//! emits back to the same bytes) and converts without allocating. The private
//! `Wire` trait ties each type to its width and byte order for the message
//! tables in `messages.rs` (and in [`crate::ouch50`], which shares the trait,
//! the integer and symbol impls and the `alpha!` macro for its own fields).

use core::fmt;

use crate::{Error, Result};

/// How a field type is read from and written to its bytes. Every slice the
/// codec passes is exactly `LEN` bytes long, cut from a buffer whose length
/// was checked, so no implementation can index out of bounds.
pub(crate) trait Wire: Copy {
    /// Width on the wire.
    const LEN: usize;
    /// What a view's getter returns: the value, or `Result` of it for a field
    /// whose byte may be outside the set ITCH defines.
    type Get;
    /// The read.
    fn get(b: &[u8]) -> Self::Get;
    /// The write.
    fn put(self, b: &mut [u8]);
}

macro_rules! wire_uint {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            const LEN: usize = size_of::<$t>();
            type Get = $t;
            #[inline]
            fn get(b: &[u8]) -> $t {
                let mut a = [0u8; size_of::<$t>()];
                a.copy_from_slice(&b[..size_of::<$t>()]);
                <$t>::from_be_bytes(a)
            }
            #[inline]
            fn put(self, b: &mut [u8]) {
                b[..size_of::<$t>()].copy_from_slice(&self.to_be_bytes());
            }
        }
    )*};
}

wire_uint!(u8, u16, u32, u64);

/// Defines an unsigned fixed-point price type: a newtype over its raw wire
/// integer with `DECIMALS` implied decimal places, `from_raw` / `raw` /
/// `to_f64`, a `Display` that prints every decimal, and its `Wire` impl
/// (big-endian, the integer's width). Shared with [`crate::ouch50`].
macro_rules! fixed_price {
    ($(#[doc = $doc:literal])* $name:ident($int:ty), $scale:literal, $decimals:literal) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name($int);

        impl $name {
            /// Raw units per whole currency unit.
            pub const SCALE: $int = $scale;

            /// A price from its raw wire value.
            #[must_use]
            pub const fn from_raw(raw: $int) -> Self {
                Self(raw)
            }

            /// The raw wire value.
            #[must_use]
            pub const fn raw(self) -> $int {
                self.0
            }

            /// The price as a float (for reports, not for arithmetic on the
            /// book).
            #[must_use]
            #[allow(clippy::cast_precision_loss, clippy::cast_lossless)]
            pub fn to_f64(self) -> f64 {
                (self.0 / Self::SCALE) as f64
                    + (self.0 % Self::SCALE) as f64 / Self::SCALE as f64
            }
        }

        impl ::core::fmt::Display for $name {
            #[doc = concat!("The whole part, a point and all ", stringify!($decimals), " decimals.")]
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{}.{:0w$}", self.0 / Self::SCALE, self.0 % Self::SCALE, w = $decimals)
            }
        }

        impl $crate::itch50::Wire for $name {
            const LEN: usize = size_of::<$int>();
            type Get = Self;
            #[inline]
            fn get(b: &[u8]) -> Self {
                Self(<$int as $crate::itch50::Wire>::get(b))
            }
            #[inline]
            fn put(self, b: &mut [u8]) {
                $crate::itch50::Wire::put(self.0, b);
            }
        }
    };
}

pub(crate) use fixed_price;

fixed_price!(
    /// A `Price(4)` field: an unsigned integer with 4 implied decimal places
    /// (`1234500` is `123.4500`).
    ///
    /// ITCH caps real prices at 200,000.0000 (raw `0x7735_9400`); the type
    /// holds any `u32` so that every byte pattern parses and emits back
    /// unchanged.
    Price4(u32),
    10_000,
    4
);

fixed_price!(
    /// A `Price(8)` field: an unsigned integer with 8 implied decimal places,
    /// used by the MWCB decline levels.
    Price8(u64),
    100_000_000,
    8
);

/// The message timestamp: nanoseconds since midnight, a 6-byte big-endian
/// field.
///
/// A `Timestamp` always fits in 48 bits: [`Timestamp::new`] rejects larger
/// values, so emitting one never has to mask or fail. (A 48-bit count reaches
/// about 78 hours; a real feed stays under 24.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The largest value the field holds, `2^48 - 1` nanoseconds.
    pub const MAX: Self = Self((1 << 48) - 1);
    /// Midnight.
    pub const MIDNIGHT: Self = Self(0);
    /// Nanoseconds in one second.
    const NS_PER_SEC: u64 = 1_000_000_000;

    /// A timestamp of `nanos` nanoseconds since midnight.
    ///
    /// # Errors
    /// [`Error::Malformed`] when `nanos` does not fit in 48 bits.
    pub const fn new(nanos: u64) -> Result<Self> {
        if nanos > Self::MAX.0 {
            Err(Error::Malformed)
        } else {
            Ok(Self(nanos))
        }
    }

    /// Nanoseconds since midnight.
    #[must_use]
    pub const fn nanos(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    /// `HH:MM:SS.nnnnnnnnn` (hours go past 23 for values beyond a day).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0 / Self::NS_PER_SEC;
        write!(
            f,
            "{:02}:{:02}:{:02}.{:09}",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            self.0 % Self::NS_PER_SEC
        )
    }
}

impl Wire for Timestamp {
    const LEN: usize = 6;
    type Get = Self;
    #[inline]
    fn get(b: &[u8]) -> Self {
        Self(u64::from_be_bytes([
            0, 0, b[0], b[1], b[2], b[3], b[4], b[5],
        ]))
    }
    #[inline]
    fn put(self, b: &mut [u8]) {
        b[..6].copy_from_slice(&self.0.to_be_bytes()[2..]);
    }
}

/// Defines a fixed-width ASCII field type: left-justified, padded on the right
/// with spaces.
macro_rules! alpha {
    ($(#[doc = $doc:literal])* $name:ident, $n:literal) => {
        $(#[doc = $doc])*
        ///
        /// The bytes are kept as sent; [`Display`](core::fmt::Display) drops
        /// the padding and escapes anything that is not printable ASCII.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub [u8; $n]);

        impl $name {
            /// Width of the field in bytes.
            pub const LEN: usize = $n;
            /// The field of all spaces (no value).
            pub const BLANK: Self = Self([b' '; $n]);

            #[doc = concat!("A field from a name of at most ", stringify!($n), " bytes, space padded.")]
            ///
            /// # Errors
            #[doc = concat!("[`Error::Malformed`](crate::Error::Malformed) when the name is longer than ", stringify!($n))]
            /// bytes or holds anything but printable ASCII and spaces.
            pub fn new(name: &str) -> $crate::Result<Self> {
                let b = name.as_bytes();
                if b.len() > $n || !b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') {
                    return Err($crate::Error::Malformed);
                }
                let mut s = [b' '; $n];
                s[..b.len()].copy_from_slice(b);
                Ok(Self(s))
            }

            /// The bytes as sent, padding included.
            #[must_use]
            pub const fn as_bytes(&self) -> &[u8; $n] {
                &self.0
            }

            /// The bytes without the right padding.
            #[must_use]
            pub fn trimmed(&self) -> &[u8] {
                let end = self.0.iter().rposition(|c| *c != b' ').map_or(0, |i| i + 1);
                &self.0[..end]
            }

            /// The trimmed name as text, when it is ASCII.
            #[must_use]
            pub fn as_str(&self) -> Option<&str> {
                let t = self.trimmed();
                if t.is_ascii() {
                    core::str::from_utf8(t).ok()
                } else {
                    None
                }
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                for &c in self.trimmed() {
                    if c.is_ascii_graphic() || c == b' ' {
                        write!(f, "{}", c as char)?;
                    } else {
                        write!(f, "\\x{c:02x}")?;
                    }
                }
                Ok(())
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, concat!(stringify!($name), "(\"{}\")"), self)
            }
        }

        impl $crate::itch50::Wire for $name {
            const LEN: usize = $n;
            type Get = Self;
            #[inline]
            fn get(b: &[u8]) -> Self {
                let mut s = [0u8; $n];
                s.copy_from_slice(&b[..$n]);
                Self(s)
            }
            #[inline]
            fn put(self, b: &mut [u8]) {
                b[..$n].copy_from_slice(&self.0);
            }
        }
    };
}

pub(crate) use alpha;

alpha!(
    /// A stock symbol: 8 ASCII bytes, e.g. `AAPL    `.
    Stock,
    8
);
alpha!(
    /// A market participant identifier (MPID): 4 ASCII bytes, e.g. `NSDQ`.
    Mpid,
    4
);
alpha!(
    /// A trading action reason code: 4 ASCII bytes, e.g. `T1  ` or `LUDP`
    /// (Appendix C of the specification), all spaces when not available.
    ReasonCode,
    4
);
alpha!(
    /// An issue sub-type: 2 ASCII bytes, e.g. `C ` or `ET` (Appendix E of the
    /// specification).
    IssueSubType,
    2
);

/// The Buy/Sell indicator of an order or trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Side {
    /// `B`: a buy order.
    Buy = b'B',
    /// `S`: a sell order.
    Sell = b'S',
}

impl Side {
    /// The side a byte stands for.
    ///
    /// # Errors
    /// [`Error::Malformed`] for anything but `B` and `S`.
    pub const fn from_byte(b: u8) -> Result<Self> {
        // One test for validity (always true in a good feed), then the
        // side without a branch on it: a feed's sides are a coin toss that
        // no predictor guesses.
        match b {
            b'B' | b'S' => Ok(if b == b'S' { Self::Sell } else { Self::Buy }),
            _ => Err(Error::Malformed),
        }
    }

    /// The byte on the wire.
    #[must_use]
    pub const fn as_byte(self) -> u8 {
        self as u8
    }
}

impl Wire for Side {
    const LEN: usize = 1;
    type Get = Result<Self>;
    #[inline]
    fn get(b: &[u8]) -> Result<Self> {
        Self::from_byte(b[0])
    }
    #[inline]
    fn put(self, b: &mut [u8]) {
        b[0] = self.as_byte();
    }
}

/// The event code of a System Event message, in the order a day sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventCode {
    /// `O`: start of messages, the first message of the day.
    StartOfMessages = b'O',
    /// `S`: start of system hours; Nasdaq accepts orders.
    StartOfSystemHours = b'S',
    /// `Q`: start of market hours; market hours orders can execute.
    StartOfMarketHours = b'Q',
    /// `M`: end of market hours.
    EndOfMarketHours = b'M',
    /// `E`: end of system hours; no new orders today (broken trades and
    /// deletes can still follow).
    EndOfSystemHours = b'E',
    /// `C`: end of messages, the last message of the day.
    EndOfMessages = b'C',
}

impl EventCode {
    /// The event a byte stands for.
    ///
    /// # Errors
    /// [`Error::Malformed`] for a byte ITCH 5.0 does not define.
    pub const fn from_byte(b: u8) -> Result<Self> {
        match b {
            b'O' => Ok(Self::StartOfMessages),
            b'S' => Ok(Self::StartOfSystemHours),
            b'Q' => Ok(Self::StartOfMarketHours),
            b'M' => Ok(Self::EndOfMarketHours),
            b'E' => Ok(Self::EndOfSystemHours),
            b'C' => Ok(Self::EndOfMessages),
            _ => Err(Error::Malformed),
        }
    }

    /// The byte on the wire.
    #[must_use]
    pub const fn as_byte(self) -> u8 {
        self as u8
    }
}

impl Wire for EventCode {
    const LEN: usize = 1;
    type Get = Result<Self>;
    #[inline]
    fn get(b: &[u8]) -> Result<Self> {
        Self::from_byte(b[0])
    }
    #[inline]
    fn put(self, b: &mut [u8]) {
        b[0] = self.as_byte();
    }
}

/// Builds a field value from 64 random bits, for the property tests.
#[cfg(test)]
pub(crate) trait FromSeed {
    fn from_seed(s: u64) -> Self;
}

#[cfg(test)]
mod from_seed {
    use super::*;

    macro_rules! from_seed_cast {
        ($($t:ty),*) => {$(
            impl FromSeed for $t {
                #[allow(clippy::cast_possible_truncation)]
                fn from_seed(s: u64) -> Self {
                    s as $t
                }
            }
        )*};
    }
    from_seed_cast!(u8, u16, u32, u64);

    impl FromSeed for Price4 {
        #[allow(clippy::cast_possible_truncation)]
        fn from_seed(s: u64) -> Self {
            Self(s as u32)
        }
    }

    impl FromSeed for Price8 {
        fn from_seed(s: u64) -> Self {
            Self(s)
        }
    }

    impl FromSeed for Timestamp {
        fn from_seed(s: u64) -> Self {
            Self(s & Self::MAX.0)
        }
    }

    macro_rules! from_seed_alpha {
        ($($t:ident),*) => {$(
            impl FromSeed for $t {
                fn from_seed(s: u64) -> Self {
                    let mut a = [0u8; $t::LEN];
                    a.copy_from_slice(&s.to_be_bytes()[..$t::LEN]);
                    Self(a)
                }
            }
        )*};
    }
    from_seed_alpha!(Stock, Mpid, ReasonCode, IssueSubType);

    impl FromSeed for Side {
        fn from_seed(s: u64) -> Self {
            if s & 1 == 0 { Self::Buy } else { Self::Sell }
        }
    }

    impl FromSeed for EventCode {
        fn from_seed(s: u64) -> Self {
            const ALL: [EventCode; 6] = [
                EventCode::StartOfMessages,
                EventCode::StartOfSystemHours,
                EventCode::StartOfMarketHours,
                EventCode::EndOfMarketHours,
                EventCode::EndOfSystemHours,
                EventCode::EndOfMessages,
            ];
            ALL[(s % 6) as usize]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn price4_display() {
        assert_eq!(Price4::from_raw(1_234_500).to_string(), "123.4500");
        assert_eq!(Price4::from_raw(0).to_string(), "0.0000");
        assert_eq!(Price4::from_raw(1).to_string(), "0.0001");
        assert_eq!(Price4::from_raw(10_000).to_string(), "1.0000");
        assert_eq!(Price4::from_raw(2_000_000_000).to_string(), "200000.0000");
        assert_eq!(Price4::from_raw(u32::MAX).to_string(), "429496.7295");
        assert_eq!(Price4::from_raw(1_234_500).raw(), 1_234_500);
        assert!((Price4::from_raw(1_234_500).to_f64() - 123.45).abs() < 1e-9);
    }

    #[test]
    fn price8_display() {
        assert_eq!(
            Price8::from_raw(302_512_345_678).to_string(),
            "3025.12345678"
        );
        assert_eq!(Price8::from_raw(0).to_string(), "0.00000000");
        assert_eq!(Price8::from_raw(1).to_string(), "0.00000001");
        assert_eq!(
            Price8::from_raw(u64::MAX).to_string(),
            "184467440737.09551615"
        );
        assert!((Price8::from_raw(150_000_000).to_f64() - 1.5).abs() < 1e-12);
    }

    #[test]
    fn timestamp_bounds_and_display() {
        assert_eq!(Timestamp::new(1 << 48), Err(Error::Malformed));
        assert_eq!(Timestamp::new((1 << 48) - 1), Ok(Timestamp::MAX));
        let t = Timestamp::new(34_200_000_000_001).unwrap(); // 09:30 and 1 ns
        assert_eq!(t.to_string(), "09:30:00.000000001");
        assert_eq!(Timestamp::MIDNIGHT.to_string(), "00:00:00.000000000");
        let mut b = [0u8; 6];
        Timestamp::MAX.put(&mut b);
        assert_eq!(b, [0xff; 6]);
        assert_eq!(Timestamp::get(&b), Timestamp::MAX);
    }

    #[test]
    fn alpha_fields() {
        let s = Stock::new("AAPL").unwrap();
        assert_eq!(s.as_bytes(), b"AAPL    ");
        assert_eq!(s.to_string(), "AAPL");
        assert_eq!(format!("{s:?}"), "Stock(\"AAPL\")");
        assert_eq!(s.as_str(), Some("AAPL"));
        assert_eq!(Stock::new("ABCDEFGH").unwrap().trimmed(), b"ABCDEFGH");
        assert_eq!(Stock::new("ABCDEFGHI"), Err(Error::Malformed));
        assert_eq!(Stock::new("A\tB"), Err(Error::Malformed));
        assert_eq!(Stock::new("").unwrap(), Stock::BLANK);
        assert_eq!(Stock::BLANK.to_string(), "");
        assert_eq!(Stock([0xff; 8]).to_string().len(), 32);
        assert_eq!(Stock([0xff; 8]).as_str(), None);
        assert_eq!(Mpid::new("NSDQ").unwrap().to_string(), "NSDQ");
        assert_eq!(IssueSubType::new("Z").unwrap().as_bytes(), b"Z ");
        assert_eq!(ReasonCode::new("T1").unwrap().as_bytes(), b"T1  ");
    }

    #[test]
    fn code_enums() {
        assert_eq!(Side::from_byte(b'B'), Ok(Side::Buy));
        assert_eq!(Side::from_byte(b'S'), Ok(Side::Sell));
        assert_eq!(Side::from_byte(b'b'), Err(Error::Malformed));
        assert_eq!(Side::Sell.as_byte(), b'S');
        for b in 0..=u8::MAX {
            if let Ok(e) = EventCode::from_byte(b) {
                assert_eq!(e.as_byte(), b);
            }
        }
        assert_eq!(EventCode::from_byte(b'X'), Err(Error::Malformed));
    }
}
