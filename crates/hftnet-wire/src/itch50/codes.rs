//! The letters ITCH 5.0 defines for the one-byte code fields that stay `u8`
//! in the messages (the sets are open: Nasdaq adds values, and an unknown
//! letter must not make a message unreadable).
//!
//! The closed sets that matter to a book builder are enums instead:
//! [`Side`](super::Side) and [`EventCode`](super::EventCode).

/// Stock Directory, Market Category: the listing market or tier.
pub mod market_category {
    /// Nasdaq Global Select Market.
    pub const NASDAQ_GLOBAL_SELECT: u8 = b'Q';
    /// Nasdaq Global Market.
    pub const NASDAQ_GLOBAL: u8 = b'G';
    /// Nasdaq Capital Market.
    pub const NASDAQ_CAPITAL: u8 = b'S';
    /// New York Stock Exchange.
    pub const NYSE: u8 = b'N';
    /// NYSE American.
    pub const NYSE_AMERICAN: u8 = b'A';
    /// NYSE Arca.
    pub const NYSE_ARCA: u8 = b'P';
    /// BATS Z Exchange.
    pub const BATS_Z: u8 = b'Z';
    /// Investors' Exchange.
    pub const IEX: u8 = b'V';
    /// Not available.
    pub const NOT_AVAILABLE: u8 = b' ';
}

/// Stock Directory, Financial Status Indicator (Nasdaq-listed issues).
pub mod financial_status {
    /// Deficient.
    pub const DEFICIENT: u8 = b'D';
    /// Delinquent.
    pub const DELINQUENT: u8 = b'E';
    /// Bankrupt.
    pub const BANKRUPT: u8 = b'Q';
    /// Suspended.
    pub const SUSPENDED: u8 = b'S';
    /// Deficient and bankrupt.
    pub const DEFICIENT_BANKRUPT: u8 = b'G';
    /// Deficient and delinquent.
    pub const DEFICIENT_DELINQUENT: u8 = b'H';
    /// Delinquent and bankrupt.
    pub const DELINQUENT_BANKRUPT: u8 = b'J';
    /// Deficient, delinquent and bankrupt.
    pub const DEFICIENT_DELINQUENT_BANKRUPT: u8 = b'K';
    /// Creations and/or redemptions suspended for an exchange traded product.
    pub const CREATIONS_SUSPENDED: u8 = b'C';
    /// Normal: not deficient, delinquent or bankrupt.
    pub const NORMAL: u8 = b'N';
    /// Not available (issues not listed on Nasdaq).
    pub const NOT_AVAILABLE: u8 = b' ';
}

/// The yes/no flags: Round Lots Only, Short Sale Threshold, IPO Flag, ETP
/// Flag, Inverse Indicator, Primary Market Maker, Printable, Open Eligibility.
pub mod flag {
    /// Yes.
    pub const YES: u8 = b'Y';
    /// No.
    pub const NO: u8 = b'N';
    /// Not available (where the field allows it).
    pub const NOT_AVAILABLE: u8 = b' ';
}

/// Stock Directory, Authenticity.
pub mod authenticity {
    /// Live / production.
    pub const PRODUCTION: u8 = b'P';
    /// Test.
    pub const TEST: u8 = b'T';
}

/// Stock Directory, LULD Reference Price Tier.
pub mod luld_tier {
    /// Tier 1 NMS stocks and select ETPs.
    pub const TIER_1: u8 = b'1';
    /// Tier 2 NMS stocks.
    pub const TIER_2: u8 = b'2';
    /// Not available.
    pub const NOT_AVAILABLE: u8 = b' ';
}

/// Stock Trading Action, Trading State.
pub mod trading_state {
    /// Halted across all U.S. equity markets.
    pub const HALTED: u8 = b'H';
    /// Paused across all U.S. equity markets (Nasdaq-listed only).
    pub const PAUSED: u8 = b'P';
    /// Quotation only period for a cross-SRO halt or pause.
    pub const QUOTATION_ONLY: u8 = b'Q';
    /// Trading on Nasdaq.
    pub const TRADING: u8 = b'T';
}

/// Reg SHO Short Sale Price Test Restricted Indicator, Reg SHO Action.
pub mod reg_sho_action {
    /// No price test in place.
    pub const NO_PRICE_TEST: u8 = b'0';
    /// Restriction in effect after an intraday price drop.
    pub const IN_EFFECT: u8 = b'1';
    /// Restriction remains in effect.
    pub const REMAINS_IN_EFFECT: u8 = b'2';
}

/// Market Participant Position, Market Maker Mode.
pub mod market_maker_mode {
    /// Normal.
    pub const NORMAL: u8 = b'N';
    /// Passive.
    pub const PASSIVE: u8 = b'P';
    /// Syndicate.
    pub const SYNDICATE: u8 = b'S';
    /// Pre-syndicate.
    pub const PRE_SYNDICATE: u8 = b'R';
    /// Penalty.
    pub const PENALTY: u8 = b'L';
}

/// Market Participant Position, Market Participant State.
pub mod participant_state {
    /// Active.
    pub const ACTIVE: u8 = b'A';
    /// Excused / withdrawn.
    pub const EXCUSED: u8 = b'E';
    /// Withdrawn.
    pub const WITHDRAWN: u8 = b'W';
    /// Suspended.
    pub const SUSPENDED: u8 = b'S';
    /// Deleted.
    pub const DELETED: u8 = b'D';
}

/// MWCB Status, Breached Level.
pub mod breached_level {
    /// Level 1.
    pub const LEVEL_1: u8 = b'1';
    /// Level 2.
    pub const LEVEL_2: u8 = b'2';
    /// Level 3.
    pub const LEVEL_3: u8 = b'3';
}

/// IPO Quoting Period Update, IPO Quotation Release Qualifier.
pub mod release_qualifier {
    /// Anticipated quotation release time.
    pub const ANTICIPATED: u8 = b'A';
    /// IPO release canceled or postponed.
    pub const CANCELED: u8 = b'C';
}

/// Operational Halt, Market Code.
pub mod market_code {
    /// Nasdaq.
    pub const NASDAQ: u8 = b'Q';
    /// BX.
    pub const BX: u8 = b'B';
    /// PSX.
    pub const PSX: u8 = b'X';
}

/// Operational Halt, Operational Halt Action.
pub mod halt_action {
    /// Operationally halted on the market.
    pub const HALTED: u8 = b'H';
    /// The halt was lifted; trading resumed.
    pub const RESUMED: u8 = b'T';
}

/// Cross Trade and NOII, Cross Type.
pub mod cross_type {
    /// Nasdaq Opening Cross.
    pub const OPENING: u8 = b'O';
    /// Nasdaq Closing Cross.
    pub const CLOSING: u8 = b'C';
    /// Cross for IPO and halted / paused securities.
    pub const IPO_OR_HALTED: u8 = b'H';
    /// Extended Trading Close (NOII only).
    pub const EXTENDED_TRADING_CLOSE: u8 = b'A';
    /// Intraday / post-close cross (Cross Trade; seen in feeds, not in the
    /// current specification's list).
    pub const INTRADAY: u8 = b'I';
}

/// NOII, Imbalance Direction.
pub mod imbalance_direction {
    /// Buy imbalance.
    pub const BUY: u8 = b'B';
    /// Sell imbalance.
    pub const SELL: u8 = b'S';
    /// No imbalance.
    pub const NONE: u8 = b'N';
    /// Insufficient orders to calculate.
    pub const INSUFFICIENT_ORDERS: u8 = b'O';
    /// Paused.
    pub const PAUSED: u8 = b'P';
}

/// NOII, Price Variation Indicator: deviation of the near indicative clearing
/// price from the current reference price. `'1'`..=`'9'` stand for 1–1.99 %
/// up to 9–9.99 %.
pub mod price_variation {
    /// Less than 1 %.
    pub const LESS_THAN_1: u8 = b'L';
    /// 10 to 19.99 %.
    pub const FROM_10: u8 = b'A';
    /// 20 to 29.99 %.
    pub const FROM_20: u8 = b'B';
    /// 30 % or more.
    pub const FROM_30: u8 = b'C';
    /// Cannot be calculated.
    pub const NOT_CALCULATED: u8 = b' ';
}

/// RPII, Interest Flag.
pub mod interest_flag {
    /// RPI orders available on the buy side.
    pub const BUY: u8 = b'B';
    /// RPI orders available on the sell side.
    pub const SELL: u8 = b'S';
    /// RPI orders available on both sides.
    pub const BOTH: u8 = b'A';
    /// No RPI orders available.
    pub const NONE: u8 = b'N';
}
