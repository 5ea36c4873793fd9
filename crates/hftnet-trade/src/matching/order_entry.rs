//! Order-entry domain types of the exchange core: the client requests it
//! takes and the events it emits per session, with OUCH 5.0's semantics and
//! codes, but independent of the codec.
//!
//! Every enum that stands for an OUCH field is named after the spec
//! (`/work/shared/specs/ouch_spec_5.0.txt`): [`CancelReason`] is Appendix C,
//! [`RejectReason`] Appendix D (with its numeric code), [`LiquidityFlag`]
//! the two flags of Appendix E this exchange gives. Request fields that
//! the spec defines as Alpha codes are kept as raw bytes
//! ([`EnterOrder::side`], [`EnterOrder::time_in_force`], ...) so that a
//! bad byte from the wire reaches the exchange and is rejected with the
//! spec's reason; `from_byte` / `as_byte` convert. Mapping to and from the
//! OUCH codec is one field to one field.

use hftnet_wire::itch50::{Side, Stock};

/// A client session's index in the exchange (see
/// [`Exchange::open_session`](super::Exchange::open_session)).
pub type SessionId = u16;

/// OUCH Side (Enter Order offset 5; Modify Order offset 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderSide {
    /// `B`.
    Buy,
    /// `S`.
    Sell,
    /// `T`: sell short.
    SellShort,
    /// `E`: sell short exempt.
    SellShortExempt,
}

impl OrderSide {
    /// From the OUCH byte; `None` for anything else.
    #[must_use]
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'B' => Some(Self::Buy),
            b'S' => Some(Self::Sell),
            b'T' => Some(Self::SellShort),
            b'E' => Some(Self::SellShortExempt),
            _ => None,
        }
    }

    /// The OUCH byte.
    #[must_use]
    pub const fn as_byte(self) -> u8 {
        match self {
            Self::Buy => b'B',
            Self::Sell => b'S',
            Self::SellShort => b'T',
            Self::SellShortExempt => b'E',
        }
    }

    /// The book side: buy, or sell for the three sell variants.
    #[must_use]
    pub const fn book_side(self) -> Side {
        match self {
            Self::Buy => Side::Buy,
            _ => Side::Sell,
        }
    }

    /// Whether OUCH's Modify Order may change `self` into `to`: only among
    /// the sells (S ↔ E, S ↔ T, E ↔ T), or to itself.
    #[must_use]
    pub const fn may_modify_to(self, to: OrderSide) -> bool {
        matches!(
            (self, to),
            (Self::Buy, Self::Buy)
                | (
                    Self::Sell | Self::SellShort | Self::SellShortExempt,
                    Self::Sell | Self::SellShort | Self::SellShortExempt
                )
        )
    }
}

/// OUCH Time In Force; this exchange supports Day and IOC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeInForce {
    /// `0`: rests until canceled or the end of the day.
    Day,
    /// `3`: immediate or cancel — what does not execute on entry is
    /// canceled ([`CancelReason::ImmediateOrCancel`]).
    Ioc,
}

impl TimeInForce {
    /// From the OUCH byte; `None` for values this exchange does not
    /// support (GTX, GTT, after hours) and invalid ones.
    #[must_use]
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'0' => Some(Self::Day),
            b'3' => Some(Self::Ioc),
            _ => None,
        }
    }

    /// The OUCH byte.
    #[must_use]
    pub const fn as_byte(self) -> u8 {
        match self {
            Self::Day => b'0',
            Self::Ioc => b'3',
        }
    }
}

/// OUCH Display: `Y` visible (published as ITCH Add Order), `A`
/// attributable (published as ITCH Add Order with MPID, `F`), `N` hidden
/// (not published; its executions are ITCH Trade, `P`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Display {
    /// `Y`.
    Visible,
    /// `A`.
    Attributable,
    /// `N`.
    Hidden,
}

impl Display {
    /// From the OUCH byte.
    #[must_use]
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'Y' => Some(Self::Visible),
            b'A' => Some(Self::Attributable),
            b'N' => Some(Self::Hidden),
            _ => None,
        }
    }

    /// The OUCH byte.
    #[must_use]
    pub const fn as_byte(self) -> u8 {
        match self {
            Self::Visible => b'Y',
            Self::Attributable => b'A',
            Self::Hidden => b'N',
        }
    }
}

/// Whether `b` is an OUCH Capacity (`A` agency, `P` principal, `R`
/// riskless, `O` other).
#[must_use]
pub const fn valid_capacity(b: u8) -> bool {
    matches!(b, b'A' | b'P' | b'R' | b'O')
}

/// OUCH 5.0 Appendix C, Order Cancel Reasons (the byte is the spec's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CancelReason {
    /// `D`: regulatory restriction.
    RegulatoryRestriction = b'D',
    /// `E`: closed.
    Closed = b'E',
    /// `F`: post only cancel (NMS).
    PostOnlyCancelNms = b'F',
    /// `G`: post only cancel (displayed contra order).
    PostOnlyCancelDisplayed = b'G',
    /// `H`: halted.
    Halted = b'H',
    /// `I`: immediate or cancel order — the IOC remainder.
    ImmediateOrCancel = b'I',
    /// `K`: market collars.
    MarketCollars = b'K',
    /// `Q`: self match prevention.
    SelfMatchPrevention = b'Q',
    /// `S`: supervisory.
    Supervisory = b'S',
    /// `T`: timeout — a DAY order still resting at the end of market hours.
    Timeout = b'T',
    /// `U`: user requested (Cancel Order Request, Modify to zero).
    UserRequested = b'U',
    /// `X`: open protection.
    OpenProtection = b'X',
    /// `Z`: system cancel (e.g. the end of the day).
    SystemCancel = b'Z',
    /// `e`: direct listing capital raise.
    DirectListingCapitalRaise = b'e',
}

impl CancelReason {
    /// The OUCH byte.
    #[must_use]
    pub const fn as_byte(self) -> u8 {
        self as u8
    }
}

/// OUCH 5.0 Appendix D, Order Reject Reasons (the value is the spec's
/// 2-byte code).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
#[allow(missing_docs)]
pub enum RejectReason {
    QuoteUnavailable = 0x01,
    /// Outside market hours (before the generated Start of Market Hours
    /// event or after End of Market Hours).
    DestinationClosed = 0x02,
    /// Display byte not `Y`, `A` or `N`.
    InvalidDisplay = 0x03,
    InvalidMaxFloor = 0x04,
    InvalidPegType = 0x05,
    FatFinger = 0x06,
    /// The instrument is not trading (ITCH trading state other than `T`).
    Halted = 0x07,
    /// InterMarket Sweep Eligibility `Y` (or not `N`).
    IsoNotAllowed = 0x08,
    /// Side byte not `B`, `S`, `T` or `E`.
    InvalidSide = 0x09,
    ProcessingError = 0x0A,
    CancelPending = 0x0B,
    FirmNotAuthorized = 0x0C,
    InvalidMinQuantity = 0x0D,
    NoClosingReferencePrice = 0x0E,
    /// Anything without a code of its own: a Time In Force or Capacity
    /// this exchange does not support.
    Other = 0x0F,
    CancelNotAllowed = 0x10,
    PeggingNotAllowed = 0x11,
    CrossedMarket = 0x12,
    /// Quantity 0 or above the maximum.
    InvalidQuantity = 0x13,
    /// CrossType other than `N`.
    InvalidCrossOrder = 0x14,
    /// Replace of an order that is not live in this session.
    ReplaceNotAllowed = 0x15,
    RoutingNotAllowed = 0x16,
    /// Symbol not in the stock directory.
    InvalidSymbol = 0x17,
    Test = 0x18,
    LateLocTooAggressive = 0x19,
    RetailNotAllowed = 0x1A,
    InvalidMidpointPostOnlyPrice = 0x1B,
    InvalidDestination = 0x1C,
    /// Price 0, above ITCH's 4-byte range, not on the tick, or outside
    /// the price band.
    InvalidPrice = 0x1D,
    SharesExceedThreshold = 0x1E,
    ExceedsMaximumAllowedNotionalValue = 0x1F,
    RiskAggregateExposureExceeded = 0x20,
    RiskMarketImpact = 0x21,
    RiskRestrictedStock = 0x22,
    RiskShortSellRestricted = 0x23,
    RiskOrderTypeRestricted = 0x24,
    RiskExceedsAdvLimit = 0x25,
    RiskFatFinger = 0x26,
    RiskLocateRequired = 0x27,
    RiskSymbolMessageRateRestriction = 0x28,
    RiskPortMessageRateRestriction = 0x29,
    RiskDuplicateMessageRateRestriction = 0x2A,
}

impl RejectReason {
    /// The spec's code.
    #[must_use]
    pub const fn code(self) -> u16 {
        self as u16
    }
}

/// OUCH 5.0 Appendix E, the liquidity flags this exchange gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LiquidityFlag {
    /// `A`: added (a displayed resting order executed).
    Added = b'A',
    /// `J`: non-displayed adding liquidity (a hidden resting order executed).
    NonDisplayedAdded = b'J',
    /// `R`: removed (the incoming order).
    Removed = b'R',
}

impl LiquidityFlag {
    /// The OUCH byte.
    #[must_use]
    pub const fn as_byte(self) -> u8 {
        self as u8
    }
}

/// OUCH Enter Order (`O`). Alpha fields are raw bytes (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EnterOrder {
    /// Day-unique, strictly increasing per session.
    pub user_ref_num: u32,
    /// `B`, `S`, `T`, `E`.
    pub side: u8,
    /// Shares, `1..=max_quantity`.
    pub quantity: u32,
    /// Stock symbol.
    pub symbol: Stock,
    /// OUCH Price: 8 bytes, 4 implied decimals.
    pub price: u64,
    /// `0` (Day) or `3` (IOC).
    pub time_in_force: u8,
    /// `Y`, `A`, `N`.
    pub display: u8,
    /// `A`, `P`, `R`, `O`.
    pub capacity: u8,
    /// InterMarket Sweep Eligibility: `N` (`Y` is refused: no routing
    /// here).
    pub intermarket_sweep: u8,
    /// CrossType: `N`, the continuous market (crosses are refused).
    pub cross_type: u8,
    /// Customer order id, echoed.
    pub cl_ord_id: [u8; 14],
}

/// OUCH Replace Order (`U`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ReplaceOrder {
    /// The order's current UserRefNum.
    pub orig_user_ref_num: u32,
    /// The replacement's, strictly increasing per session.
    pub user_ref_num: u32,
    /// Total shares liable, inclusive of what the order chain executed: the
    /// new order rests `quantity − executed`.
    pub quantity: u32,
    /// New price (OUCH Price).
    pub price: u64,
    /// `0` or `3`.
    pub time_in_force: u8,
    /// `Y`, `A`, `N`.
    pub display: u8,
    /// InterMarket Sweep Eligibility: `N`.
    pub intermarket_sweep: u8,
    /// Customer order id of the replacement.
    pub cl_ord_id: [u8; 14],
}

/// OUCH Cancel Order (`X`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CancelOrder {
    /// The order's current UserRefNum.
    pub user_ref_num: u32,
    /// The new intended open size: 0 cancels the order; a smaller size
    /// than open reduces it and keeps its priority; anything else is
    /// superfluous and ignored (as the spec says).
    pub quantity: u32,
}

/// OUCH Modify Order (`M`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModifyOrder {
    /// The order's current UserRefNum.
    pub user_ref_num: u32,
    /// The new side byte: only S ↔ T ↔ E changes are allowed.
    pub side: u8,
    /// The new intended open size (at most the open size; 0 cancels).
    pub quantity: u32,
}

/// A client request, one OUCH inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Request {
    /// `O`.
    Enter(EnterOrder),
    /// `U`.
    Replace(ReplaceOrder),
    /// `X`.
    Cancel(CancelOrder),
    /// `M`.
    Modify(ModifyOrder),
    /// `Q`: answered with [`OrderEvent::AccountQuery`].
    AccountQuery,
}

/// An order-entry event for one session: one OUCH outbound message. The
/// caller stamps it with its own timestamp when encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OrderEvent {
    /// `A` Order Accepted.
    Accepted {
        /// The order's UserRefNum.
        user_ref_num: u32,
        /// Side as entered.
        side: OrderSide,
        /// Shares accepted.
        quantity: u32,
        /// Symbol.
        symbol: Stock,
        /// Price (OUCH Price).
        price: u64,
        /// Time in force.
        time_in_force: TimeInForce,
        /// Display.
        display: Display,
        /// Capacity byte.
        capacity: u8,
        /// The exchange's order reference number (the ITCH ref when the
        /// order is published).
        order_reference_number: u64,
        /// Customer order id.
        cl_ord_id: [u8; 14],
    },
    /// `U` Order Replaced.
    Replaced {
        /// The replacement's UserRefNum.
        user_ref_num: u32,
        /// The replaced order's UserRefNum.
        orig_user_ref_num: u32,
        /// Side.
        side: OrderSide,
        /// Open shares of the replacement (before it executes).
        quantity: u32,
        /// Symbol.
        symbol: Stock,
        /// Price.
        price: u64,
        /// Time in force.
        time_in_force: TimeInForce,
        /// Display.
        display: Display,
        /// Capacity byte (the original order's: Replace does not change it).
        capacity: u8,
        /// The replacement's order reference number.
        order_reference_number: u64,
        /// Customer order id of the replacement.
        cl_ord_id: [u8; 14],
    },
    /// `C` Order Canceled: `decrement` shares left the order (incremental).
    Canceled {
        /// The order.
        user_ref_num: u32,
        /// Shares removed.
        decrement: u32,
        /// Appendix C reason.
        reason: CancelReason,
    },
    /// `E` Order Executed.
    Executed {
        /// The order.
        user_ref_num: u32,
        /// Shares executed (incremental).
        quantity: u32,
        /// Execution price (OUCH Price).
        price: u64,
        /// Added or removed.
        liquidity: LiquidityFlag,
        /// The match number, shared by both sides and the ITCH message.
        match_number: u64,
    },
    /// `J` Rejected.
    Rejected {
        /// The Enter's or Replace's UserRefNum (cannot be reused).
        user_ref_num: u32,
        /// Appendix D reason.
        reason: RejectReason,
        /// Customer order id.
        cl_ord_id: [u8; 14],
    },
    /// `M` Order Modified.
    Modified {
        /// The order.
        user_ref_num: u32,
        /// Its side now.
        side: OrderSide,
        /// Its open shares now.
        quantity: u32,
    },
    /// `Q` Account Query Response.
    AccountQuery {
        /// The next UserRefNum this session may use.
        next_user_ref_num: u32,
    },
}
