//! The optional appendage (Appendix B): a sequence of TagValue elements,
//! each `Length` (1 byte: the bytes that follow it), `OptionTag` (1 byte)
//! and the value (`Length - 1` bytes, of the size Appendix B gives the tag).
//!
//! [`Options`] is both the parsed appendage and the builder of one: a
//! fixed-capacity, `Copy` byte buffer that holds the elements exactly as
//! sent, checked when built ([`Options::parse`], [`Options::push`]), so
//! iterating it ([`Options::iter`]) cannot fail and emitting it writes back
//! the same bytes. Tags Appendix B does not list are kept and yielded as
//! [`TagValue::Unknown`]; a listed tag with a value of another size is
//! [`Error::OptionLength`], an element that runs past the appendage
//! [`Error::OptionTruncated`]. [`OptionsIter`] reads elements in place from
//! any byte slice (e.g. a view's appendage) without copying.

use core::fmt;

use super::types::Decode;
use super::{Error, Firm, Price, Result, Route, SignedPrice};
use crate::itch50::Wire;

closed_code! {
    /// CustomerType (option 4).
    CustomerType / CustomerType {
        Retail = b'R' => "retail designated order",
        NotRetail = b'N' => "not retail designated (default)",
        PortDefault = b' ' => "use the port default",
    }
}

closed_code! {
    /// PriceType (option 6) and DiscretionPriceType (option 10; only `L`,
    /// `P`, `M`, `R` are defined there).
    PriceType / PriceType {
        Limit = b'L' => "limit (default)",
        MarketPeg = b'P' => "market peg",
        MidpointPeg = b'M' => "midpoint peg",
        PrimaryPeg = b'R' => "primary peg",
        MarketMakerPeg = b'Q' => "market maker peg",
        Midpoint = b'm' => "midpoint",
    }
}

closed_code! {
    /// PostOnly (option 12).
    PostOnly / PostOnly {
        PostOnly = b'P' => "post only (midpoint post only not available on BX)",
        No = b'N' => "no (default)",
    }
}

closed_code! {
    /// TradeNow (option 16).
    TradeNow / TradeNow {
        Yes = b'Y' => "yes",
        No = b'N' => "no (default)",
        PortDefault = b' ' => "use the port default",
    }
}

closed_code! {
    /// HandleInst (option 17): handling instructions for cross and retail
    /// order types.
    HandleInst / HandleInst {
        ImbalanceOnly = b'I' => "imbalance only (CrossType O and C)",
        RetailType1 = b'O' => "retail order type 1 (CrossType R)",
        RetailType2 = b'T' => "retail order type 2 (CrossType R)",
        RetailPriceImprovement = b'Q' => "retail price improvement (CrossType R)",
        ExtendedLifeContinuous = b'B' => "extended life + continuous (CrossType E)",
        DirectListingCapitalRaise = b'D' => "direct listing capital raise (CrossType H)",
        RetailPriceImprovementHidden = b'R' => "retail price improvement, hidden price improvement indicator (CrossType R)",
        NoInstructions = b' ' => "no handling instructions (default)",
    }
}

closed_code! {
    /// BBO Weight Indicator (option 18).
    BboWeightIndicator / BboWeightIndicator {
        Up02 = b'0' => "0-0.2%",
        Up1 = b'1' => "0.2%-1%",
        Up2 = b'2' => "1%-2%",
        Over2 = b'3' => "greater than 2%",
        Unspecified = b' ' => "unspecified (default)",
        SetsQbboJoinsNbbo = b'S' => "sets the QBBO while joining the NBBO",
        ImprovesNbbo = b'N' => "improves the NBBO upon entry",
    }
}

closed_code! {
    /// Shares Located (option 25), for a short sale.
    SharesLocated / SharesLocated {
        Yes = b'Y' => "yes",
        No = b'N' => "no (default)",
    }
}

/// The option table of Appendix B: variant, tag, value type, name.
macro_rules! option_table {
    ($( $(#[doc = $doc:literal])* $v:ident = $tag:literal : $ty:ident, $name:literal; )+) => {
        /// An option tag Appendix B lists. (Tag 8, "Discretion", is named in
        /// the message tables but has no entry in Appendix B; it is read as
        /// [`TagValue::Unknown`].)
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum OptionTag {
            $(
                #[doc = concat!("Tag ", stringify!($tag), ", ", $name, ".")]
                $(#[doc = $doc])*
                $v = $tag,
            )+
        }

        impl OptionTag {
            /// Every listed tag, in tag order.
            pub const ALL: &'static [Self] = &[$(Self::$v),+];

            /// The tag a byte stands for; `None` when Appendix B does not
            /// list it.
            #[must_use]
            pub const fn from_tag(t: u8) -> Option<Self> {
                match t {
                    $($tag => Some(Self::$v),)+
                    _ => None,
                }
            }

            /// The tag byte.
            #[must_use]
            pub const fn tag(self) -> u8 {
                self as u8
            }

            /// Size of the value in bytes (the element is 2 bytes more).
            #[must_use]
            pub const fn size(self) -> usize {
                match self {
                    $(Self::$v => <$ty as Wire>::LEN,)+
                }
            }

            /// The option's name as Appendix B writes it.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$v => $name,)+
                }
            }
        }

        /// One option of the appendage, typed by its tag.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum TagValue<'a> {
            $(
                #[doc = concat!("Tag ", stringify!($tag), ", ", $name, ".")]
                $(#[doc = $doc])*
                $v($ty),
            )+
            /// A tag Appendix B does not list, with its value as sent.
            Unknown {
                /// The tag byte.
                tag: u8,
                /// The value bytes (at most 254).
                value: &'a [u8],
            },
        }

        impl<'a> TagValue<'a> {
            /// The tag byte.
            #[must_use]
            pub const fn tag(&self) -> u8 {
                match self {
                    $(Self::$v(_) => $tag,)+
                    Self::Unknown { tag, .. } => *tag,
                }
            }

            /// The listed tag; `None` for [`TagValue::Unknown`].
            #[must_use]
            pub const fn option_tag(&self) -> Option<OptionTag> {
                match self {
                    $(Self::$v(_) => Some(OptionTag::$v),)+
                    Self::Unknown { .. } => None,
                }
            }

            /// Size of the value in bytes.
            #[must_use]
            pub const fn value_len(&self) -> usize {
                match self {
                    $(Self::$v(_) => <$ty as Wire>::LEN,)+
                    Self::Unknown { value, .. } => value.len(),
                }
            }

            /// Reads the value of tag `tag`.
            ///
            /// # Errors
            /// [`Error::OptionLength`] when the tag is listed and `value` is
            /// not its size; [`Error::InvalidField`] when a coded value is
            /// not one Appendix B defines.
            pub fn decode(tag: u8, value: &'a [u8]) -> Result<Self> {
                let Some(t) = OptionTag::from_tag(tag) else {
                    return Ok(Self::Unknown { tag, value });
                };
                if value.len() != t.size() {
                    return Err(Error::OptionLength { tag, len: value.len() });
                }
                Ok(match t {
                    $(OptionTag::$v => Self::$v(<$ty as Decode>::decode(value)?),)+
                })
            }

            /// Writes the value (not the length and tag) into `b`, which is
            /// exactly [`Self::value_len`] bytes.
            fn put_value(&self, b: &mut [u8]) {
                match *self {
                    $(Self::$v(v) => v.put(b),)+
                    Self::Unknown { value, .. } => b.copy_from_slice(value),
                }
            }
        }

        #[cfg(test)]
        impl TagValue<'static> {
            /// A typed option of every listed tag, drawn from `s` (tests).
            pub(crate) fn from_seed(t: OptionTag, s: u64) -> Self {
                use crate::itch50::FromSeed;
                match t {
                    $(OptionTag::$v => Self::$v(<$ty as FromSeed>::from_seed(s)),)+
                }
            }
        }
    };
}

option_table! {
    /// An alternative order reference number used when publishing the order
    /// on the market data feeds (e.g. the displayed part of a reserve order).
    SecondaryOrdRefNum = 1: u64, "SecondaryOrdRefNum";
    /// Firm identifier (all caps); blank for the account's default firm.
    Firm = 2: Firm, "Firm";
    /// Minimum quantity, a round lot; 0 for none.
    MinQty = 3: u32, "MinQty";
    /// Retail designation.
    CustomerType = 4: CustomerType, "CustomerType";
    /// The displayed portion of the order; 0 for no max floor.
    MaxFloor = 5: u32, "MaxFloor";
    /// Limit or peg.
    PriceType = 6: PriceType, "PriceType";
    /// Offset of the pegged price (signed).
    PegOffset = 7: SignedPrice, "PegOffset";
    /// Discretion price of a discretionary order.
    DiscretionPrice = 9: Price, "DiscretionPrice";
    /// Limit or peg for the discretion price.
    DiscretionPriceType = 10: PriceType, "DiscretionPriceType";
    /// Offset of the pegged discretion price (signed).
    DiscretionPegOffset = 11: SignedPrice, "DiscretionPegOffset";
    /// Post only.
    PostOnly = 12: PostOnly, "PostOnly";
    /// Shares to do random reserve with.
    RandomReserves = 13: u32, "RandomReserves";
    /// Routing strategy.
    Route = 14: Route, "Route";
    /// Seconds to live, less than 86,400; 0 for none.
    ExpireTime = 15: u32, "ExpireTime";
    /// Trade now.
    TradeNow = 16: TradeNow, "TradeNow";
    /// Handling instructions.
    HandleInst = 17: HandleInst, "HandleInst";
    /// BBO weight indicator.
    BboWeightIndicator = 18: BboWeightIndicator, "BBO Weight Indicator";
    /// Updated displayed quantity (Order Restated only).
    DisplayQuantity = 22: u32, "Display Quantity";
    /// Updated displayed price (Order Restated only).
    DisplayPrice = 23: Price, "Display Price";
    /// Customer group ID within the firm; 0 for none.
    GroupId = 24: u16, "Group ID";
    /// Shares located for a short sale.
    SharesLocated = 25: SharesLocated, "Shares Located";
}

/// Reads the element at `at` of `bytes`: the option and the offset of the
/// next element.
#[inline]
fn element(bytes: &[u8], at: usize) -> Result<(TagValue<'_>, usize)> {
    let len = usize::from(bytes[at]);
    let end = at + 1 + len;
    if len == 0 || end > bytes.len() {
        return Err(Error::OptionTruncated { offset: at });
    }
    Ok((TagValue::decode(bytes[at + 1], &bytes[at + 2..end])?, end))
}

/// An iterator over the TagValue elements of an appendage, reading them in
/// place. Each item is the option or the error of its element; after an
/// error the iterator ends (the following bytes cannot be framed).
#[derive(Debug, Clone)]
pub struct OptionsIter<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> OptionsIter<'a> {
    /// Iterates the elements of `appendage` (the bytes after the Appendage
    /// Length field).
    #[must_use]
    pub const fn new(appendage: &'a [u8]) -> Self {
        Self {
            bytes: appendage,
            at: 0,
        }
    }

    /// Offset of the next element in the appendage.
    #[must_use]
    pub const fn offset(&self) -> usize {
        self.at
    }
}

impl<'a> Iterator for OptionsIter<'a> {
    type Item = Result<TagValue<'a>>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.at >= self.bytes.len() {
            return None;
        }
        match element(self.bytes, self.at) {
            Ok((v, next)) => {
                self.at = next;
                Some(Ok(v))
            }
            Err(e) => {
                self.at = self.bytes.len();
                Some(Err(e))
            }
        }
    }
}

/// The optional appendage, parsed or being built: up to
/// [`Options::CAPACITY`] bytes of TagValue elements, kept as on the wire.
///
/// ```
/// use hftnet_wire::ouch50::{OptionTag, Options, PostOnly, TagValue};
///
/// let mut o = Options::new();
/// o.push(TagValue::MinQty(200))?.push(TagValue::PostOnly(PostOnly::PostOnly))?;
/// assert_eq!(o.as_bytes(), &[5, 3, 0, 0, 0, 200, 2, 12, b'P']);
/// assert_eq!(o.get(OptionTag::PostOnly), Some(TagValue::PostOnly(PostOnly::PostOnly)));
/// assert_eq!(Options::parse(o.as_bytes())?, o);
/// assert_eq!(o.iter().count(), 2);
/// # Ok::<(), hftnet_wire::ouch50::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Options {
    /// Bytes used; the rest of `buf` is always zero (so the derives compare
    /// only the elements).
    len: u8,
    buf: [u8; Options::CAPACITY],
}

impl Default for Options {
    fn default() -> Self {
        Self::new()
    }
}

impl Options {
    /// The most appendage bytes held: every option of Appendix B once takes
    /// 112, so this leaves room for a few repeated or unknown ones. A longer
    /// appendage is refused with [`Error::AppendageTooLong`].
    pub const CAPACITY: usize = 128;
    /// No options.
    pub const EMPTY: Self = Self {
        len: 0,
        buf: [0; Self::CAPACITY],
    };

    /// No options, ready to [`push`](Self::push) to.
    #[must_use]
    pub const fn new() -> Self {
        Self::EMPTY
    }

    /// Checks and copies an appendage (the bytes after the Appendage Length
    /// field).
    ///
    /// # Errors
    /// [`Error::AppendageTooLong`] beyond [`Options::CAPACITY`] bytes;
    /// [`Error::OptionTruncated`] for an element of length 0 or one that runs
    /// past the end; [`Error::OptionLength`] for a listed tag with a value of
    /// another size; [`Error::InvalidField`] for a coded value Appendix B
    /// does not define.
    #[inline]
    pub fn parse(appendage: &[u8]) -> Result<Self> {
        if appendage.len() > Self::CAPACITY {
            return Err(Error::AppendageTooLong {
                len: appendage.len(),
            });
        }
        for e in OptionsIter::new(appendage) {
            e?;
        }
        let mut o = Self::EMPTY;
        o.buf[..appendage.len()].copy_from_slice(appendage);
        #[allow(clippy::cast_possible_truncation)] // <= CAPACITY
        {
            o.len = appendage.len() as u8;
        }
        Ok(o)
    }

    /// Appends one option; returns `self` for chaining.
    ///
    /// # Errors
    /// [`Error::AppendageTooLong`] when it does not fit in what is left of
    /// [`Options::CAPACITY`] (nothing is written); [`Error::OutOfRange`] for
    /// an unknown option whose value is longer than 254 bytes.
    pub fn push(&mut self, v: TagValue<'_>) -> Result<&mut Self> {
        let n = v.value_len();
        if n > usize::from(u8::MAX) - 1 {
            return Err(Error::OutOfRange);
        }
        let at = self.len();
        let end = at + 2 + n;
        if end > Self::CAPACITY {
            return Err(Error::AppendageTooLong { len: end });
        }
        #[allow(clippy::cast_possible_truncation)] // n + 1 <= 255, end <= CAPACITY
        {
            self.buf[at] = (n + 1) as u8;
            self.buf[at + 1] = v.tag();
            v.put_value(&mut self.buf[at + 2..end]);
            self.len = end as u8;
        }
        Ok(self)
    }

    /// Removes every option.
    pub fn clear(&mut self) {
        *self = Self::EMPTY;
    }

    /// The appendage bytes, as they go on the wire.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len()]
    }

    /// Length of the appendage in bytes.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether there are no options.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The options in order. Cannot fail: they were checked when parsed or
    /// pushed.
    pub fn iter(&self) -> impl Iterator<Item = TagValue<'_>> + '_ {
        // Every element was checked by `parse` or written by `push`.
        OptionsIter::new(self.as_bytes()).map_while(core::result::Result::ok)
    }

    /// The first option with tag `t`, if any.
    #[must_use]
    pub fn get(&self, t: OptionTag) -> Option<TagValue<'_>> {
        self.iter().find(|v| v.tag() == t.tag())
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
impl crate::itch50::FromSeed for Options {
    /// Up to four options of listed tags, and now and then an unknown one.
    fn from_seed(s: u64) -> Self {
        let mut o = Self::new();
        let n = s % 5;
        for i in 0..n {
            let x = s.rotate_left(13 * i as u32 + 5);
            let t = OptionTag::ALL[(x % OptionTag::ALL.len() as u64) as usize];
            o.push(TagValue::from_seed(t, x.rotate_left(17)))
                .expect("four options fit");
        }
        if s >> 60 == 0xf {
            o.push(TagValue::Unknown {
                tag: 99,
                value: &[1, 2, 3],
            })
            .expect("fits");
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ouch50::Field;
    use proptest::prelude::*;

    #[test]
    fn appendix_b_sizes() {
        let sizes: Vec<(u8, usize)> = OptionTag::ALL.iter().map(|t| (t.tag(), t.size())).collect();
        assert_eq!(
            sizes,
            [
                (1, 8),
                (2, 4),
                (3, 4),
                (4, 1),
                (5, 4),
                (6, 1),
                (7, 4),
                (9, 8),
                (10, 1),
                (11, 4),
                (12, 1),
                (13, 4),
                (14, 4),
                (15, 4),
                (16, 1),
                (17, 1),
                (18, 1),
                (22, 4),
                (23, 8),
                (24, 2),
                (25, 1),
            ]
        );
        // Every option once fits.
        let total: usize = OptionTag::ALL.iter().map(|t| t.size() + 2).sum();
        assert_eq!(total, 112);
        assert!(total <= Options::CAPACITY);
    }

    /// Every listed option once, as bytes built from Appendix B.
    static EVERY_OPTION: [u8; 112] = [
        9, 1, 0, 0, 0, 0, 0, 0, 0x30, 0x39, // SecondaryOrdRefNum 12345
        5, 2, b'F', b'I', b'R', b'M', // Firm
        5, 3, 0, 0, 0x01, 0x2c, // MinQty 300
        2, 4, b'R', // CustomerType retail
        5, 5, 0, 0, 0, 100, // MaxFloor 100
        2, 6, b'M', // PriceType midpoint peg
        5, 7, 0xff, 0xff, 0xff, 0x9c, // PegOffset -0.0100
        9, 9, 0, 0, 0, 0, 0, 0x1c, 0x44, 0x54, // DiscretionPrice 185.2500
        2, 10, b'P', // DiscretionPriceType market peg
        5, 11, 0, 0, 0, 50, // DiscretionPegOffset 0.0050
        2, 12, b'P', // PostOnly
        5, 13, 0, 0, 0x03, 0xe8, // RandomReserves 1000
        5, 14, b'R', b'T', b'E', b' ', // Route
        5, 15, 0, 0, 0x0e, 0x10, // ExpireTime 3600
        2, 16, b'Y', // TradeNow
        2, 17, b'I', // HandleInst imbalance only
        2, 18, b'S', // BBO Weight Indicator
        5, 22, 0, 0, 0, 200, // Display Quantity
        9, 23, 0, 0, 0, 0, 0, 0x1c, 0x44, 0x54, // Display Price
        3, 24, 0x01, 0x02, // Group ID 258
        2, 25, b'Y', // Shares Located
    ];

    fn every_option() -> [TagValue<'static>; 21] {
        [
            TagValue::SecondaryOrdRefNum(12_345),
            TagValue::Firm(Firm::new("FIRM").unwrap()),
            TagValue::MinQty(300),
            TagValue::CustomerType(CustomerType::Retail),
            TagValue::MaxFloor(100),
            TagValue::PriceType(PriceType::MidpointPeg),
            TagValue::PegOffset(SignedPrice::from_raw(-100)),
            TagValue::DiscretionPrice(Price::from_raw(1_852_500)),
            TagValue::DiscretionPriceType(PriceType::MarketPeg),
            TagValue::DiscretionPegOffset(SignedPrice::from_raw(50)),
            TagValue::PostOnly(PostOnly::PostOnly),
            TagValue::RandomReserves(1000),
            TagValue::Route(Route::new("RTE").unwrap()),
            TagValue::ExpireTime(3600),
            TagValue::TradeNow(TradeNow::Yes),
            TagValue::HandleInst(HandleInst::ImbalanceOnly),
            TagValue::BboWeightIndicator(BboWeightIndicator::SetsQbboJoinsNbbo),
            TagValue::DisplayQuantity(200),
            TagValue::DisplayPrice(Price::from_raw(1_852_500)),
            TagValue::GroupId(258),
            TagValue::SharesLocated(SharesLocated::Yes),
        ]
    }

    #[test]
    fn test_every_option_parse() {
        let o = Options::parse(&EVERY_OPTION).unwrap();
        assert_eq!(o.len(), 112);
        let got: Vec<TagValue<'_>> = o.iter().collect();
        assert_eq!(got, every_option());
        assert_eq!(
            o.get(OptionTag::PegOffset),
            Some(TagValue::PegOffset(SignedPrice::from_raw(-100)))
        );
        assert_eq!(
            o.get(OptionTag::ExpireTime),
            Some(TagValue::ExpireTime(3600))
        );
        let borrowed: Vec<_> = OptionsIter::new(&EVERY_OPTION)
            .collect::<Result<Vec<_>>>()
            .unwrap();
        assert_eq!(borrowed, every_option());
    }

    #[test]
    fn test_every_option_emit() {
        let mut o = Options::new();
        for v in every_option() {
            o.push(v).unwrap();
        }
        assert_eq!(o.as_bytes(), &EVERY_OPTION[..]);
        assert!(format!("{o:?}").contains("Firm(Firm(\"FIRM\"))"));
    }

    #[test]
    fn unknown_tags_are_kept() {
        // Tag 8 ("Discretion", no Appendix B entry) and tag 200, between
        // known ones.
        let b = [5, 3, 0, 0, 0, 100, 2, 8, b'Y', 4, 200, 1, 2, 3, 2, 12, b'N'];
        let o = Options::parse(&b).unwrap();
        let got: Vec<_> = o.iter().collect();
        assert_eq!(
            got,
            [
                TagValue::MinQty(100),
                TagValue::Unknown {
                    tag: 8,
                    value: b"Y"
                },
                TagValue::Unknown {
                    tag: 200,
                    value: &[1, 2, 3]
                },
                TagValue::PostOnly(PostOnly::No),
            ]
        );
        assert_eq!(o.as_bytes(), &b);
        let mut built = Options::new();
        for v in got {
            built.push(v).unwrap();
        }
        assert_eq!(built, o);
        assert_eq!(
            TagValue::Unknown {
                tag: 8,
                value: b"Y"
            }
            .option_tag(),
            None
        );
        assert_eq!(TagValue::MinQty(1).option_tag(), Some(OptionTag::MinQty));
    }

    #[test]
    fn bad_appendages() {
        // Empty is fine.
        assert_eq!(Options::parse(&[]).unwrap(), Options::EMPTY);
        // An element of length 0.
        assert_eq!(
            Options::parse(&[0]),
            Err(Error::OptionTruncated { offset: 0 })
        );
        // The second element runs past the end.
        assert_eq!(
            Options::parse(&[2, 12, b'P', 5, 3, 0, 0]),
            Err(Error::OptionTruncated { offset: 3 })
        );
        // A length byte alone at the end.
        assert_eq!(
            Options::parse(&[2, 12, b'P', 3]),
            Err(Error::OptionTruncated { offset: 3 })
        );
        // MinQty with a 2-byte value.
        assert_eq!(
            Options::parse(&[3, 3, 0, 1]),
            Err(Error::OptionLength { tag: 3, len: 2 })
        );
        // A tag with no value.
        assert_eq!(
            Options::parse(&[1, 12]),
            Err(Error::OptionLength { tag: 12, len: 0 })
        );
        // A PostOnly value Appendix B does not define.
        assert_eq!(
            Options::parse(&[2, 12, b'X']),
            Err(Error::InvalidField {
                field: Field::PostOnly,
                byte: b'X'
            })
        );
        // Longer than the capacity, even when well formed.
        let long = [[2u8, 12, b'P']; 43].concat();
        assert_eq!(
            Options::parse(&long),
            Err(Error::AppendageTooLong { len: 129 })
        );
        // The iterator ends after an error.
        let mut it = OptionsIter::new(&[2, 12, b'P', 0, 2, 12, b'P']);
        assert!(matches!(it.next(), Some(Ok(TagValue::PostOnly(_)))));
        assert_eq!(it.next(), Some(Err(Error::OptionTruncated { offset: 3 })));
        assert_eq!(it.next(), None);
    }

    #[test]
    fn builder_capacity() {
        let mut o = Options::new();
        for _ in 0..12 {
            o.push(TagValue::SecondaryOrdRefNum(1)).unwrap();
        }
        assert_eq!(o.len(), 120);
        let before = o;
        assert_eq!(
            o.push(TagValue::SecondaryOrdRefNum(2)).map(|_| ()),
            Err(Error::AppendageTooLong { len: 130 })
        );
        assert_eq!(o, before, "nothing written");
        o.push(TagValue::GroupId(7)).unwrap();
        o.push(TagValue::TradeNow(TradeNow::No)).unwrap();
        assert_eq!(o.len(), 127);
        let big = [0u8; 255];
        assert_eq!(
            Options::new()
                .push(TagValue::Unknown {
                    tag: 99,
                    value: &big
                })
                .map(|_| ()),
            Err(Error::OutOfRange)
        );
        o.clear();
        assert!(o.is_empty());
    }

    fn any_option() -> impl Strategy<Value = TagValue<'static>> {
        (0..OptionTag::ALL.len(), any::<u64>())
            .prop_map(|(i, s)| TagValue::from_seed(OptionTag::ALL[i], s))
    }

    proptest! {
        #[test]
        fn round_trip(opts in proptest::collection::vec(any_option(), 0..10)) {
            let mut o = Options::new();
            let mut pushed = Vec::new();
            for v in &opts {
                if o.push(*v).is_ok() {
                    pushed.push(*v);
                }
            }
            let p = Options::parse(o.as_bytes()).unwrap();
            prop_assert_eq!(p, o);
            prop_assert_eq!(p.iter().collect::<Vec<_>>(), pushed);
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
            if let Ok(o) = Options::parse(&bytes) {
                prop_assert_eq!(o.as_bytes(), &bytes[..]);
                let mut rebuilt = Options::new();
                for v in o.iter() {
                    rebuilt.push(v).unwrap();
                }
                prop_assert_eq!(rebuilt, o);
            } else {
                prop_assert!(OptionsIter::new(&bytes).any(|e| e.is_err()) || bytes.len() > Options::CAPACITY);
            }
        }
    }
}
