//! The ITCH 5.0 message table: every message type with its type byte, length
//! and field layout (offset from the start of the message, type byte
//! included), as in the specification's tables. `macros.rs` generates the
//! views, reprs, [`MessageType`] and [`Message`] from it, and refuses to build
//! when a table's fields do not run contiguously from byte 11 to its length.

use core::fmt;

use super::header::{HEADER_LEN, Header, HeaderRepr};
#[cfg(test)]
use super::types::FromSeed;
use super::types::{
    EventCode, IssueSubType, Mpid, Price4, Price8, ReasonCode, Side, Stock, Timestamp, Wire,
};
use crate::{Error, Result, fields_contiguous, type_byte};

itch_messages! {
    /// System Event (`S`): a market or feed event, e.g. start of market hours.
    SystemEvent / SystemEventRepr = 'S', 12, "system_event" {
        /// The event. `Err(Malformed)` for a code ITCH 5.0 does not define.
        event_code / set_event_code: EventCode @ 11,
    }

    /// Stock Directory (`R`): one per instrument at the start of the day; it
    /// assigns the day's stock locate code.
    StockDirectory / StockDirectoryRepr = 'R', 39, "stock_directory" {
        /// The symbol.
        stock / set_stock: Stock @ 11,
        /// Listing market or tier (see [`codes::market_category`](super::codes::market_category)).
        market_category / set_market_category: u8 @ 19,
        /// Financial status (see [`codes::financial_status`](super::codes::financial_status)).
        financial_status / set_financial_status: u8 @ 20,
        /// Shares in a round lot.
        round_lot_size / set_round_lot_size: u32 @ 21,
        /// `Y` when only round lots are accepted, `N` otherwise.
        round_lots_only / set_round_lots_only: u8 @ 25,
        /// Issue classification (Appendix D of the specification, e.g. `C` common stock).
        issue_classification / set_issue_classification: u8 @ 26,
        /// Issue sub-type (Appendix E of the specification).
        issue_sub_type / set_issue_sub_type: IssueSubType @ 27,
        /// `P` production, `T` test (see [`codes::authenticity`](super::codes::authenticity)).
        authenticity / set_authenticity: u8 @ 29,
        /// Short sale threshold (Rule 203(b)(3)): `Y`, `N` or space.
        short_sale_threshold / set_short_sale_threshold: u8 @ 30,
        /// Set up as a new IPO: `Y`, `N` or space.
        ipo_flag / set_ipo_flag: u8 @ 31,
        /// LULD reference price tier: `1`, `2` or space.
        luld_tier / set_luld_tier: u8 @ 32,
        /// Exchange traded product: `Y`, `N` or space.
        etp_flag / set_etp_flag: u8 @ 33,
        /// ETP leverage factor (integer, as sent).
        etp_leverage_factor / set_etp_leverage_factor: u32 @ 34,
        /// Inverse ETP: `Y` or `N`.
        inverse_indicator / set_inverse_indicator: u8 @ 38,
    }

    /// Stock Trading Action (`H`): an instrument is halted, paused, released
    /// for quotation or for trading.
    StockTradingAction / StockTradingActionRepr = 'H', 25, "stock_trading_action" {
        /// The symbol.
        stock / set_stock: Stock @ 11,
        /// The trading state (see [`codes::trading_state`](super::codes::trading_state)).
        trading_state / set_trading_state: u8 @ 19,
        /// Reserved.
        reserved / set_reserved: u8 @ 20,
        /// The reason (Appendix C of the specification), e.g. `T1`, `LUDP`.
        reason / set_reason: ReasonCode @ 21,
    }

    /// Reg SHO Short Sale Price Test Restricted Indicator (`Y`).
    RegShoRestriction / RegShoRestrictionRepr = 'Y', 20, "reg_sho_restriction" {
        /// The symbol.
        stock / set_stock: Stock @ 11,
        /// The Rule 201 status (see [`codes::reg_sho_action`](super::codes::reg_sho_action)).
        reg_sho_action / set_reg_sho_action: u8 @ 19,
    }

    /// Market Participant Position (`L`): a market maker's status in an issue.
    MarketParticipantPosition / MarketParticipantPositionRepr = 'L', 26, "market_participant_position" {
        /// The market participant.
        mpid / set_mpid: Mpid @ 11,
        /// The symbol.
        stock / set_stock: Stock @ 15,
        /// `Y` primary market maker, `N` not.
        primary_market_maker / set_primary_market_maker: u8 @ 23,
        /// Regulation M mode (see [`codes::market_maker_mode`](super::codes::market_maker_mode)).
        market_maker_mode / set_market_maker_mode: u8 @ 24,
        /// Registration state (see [`codes::participant_state`](super::codes::participant_state)).
        participant_state / set_participant_state: u8 @ 25,
    }

    /// MWCB Decline Level (`V`): the day's market-wide circuit breaker levels.
    MwcbDeclineLevel / MwcbDeclineLevelRepr = 'V', 35, "mwcb_decline_level" {
        /// Level 1.
        level1 / set_level1: Price8 @ 11,
        /// Level 2.
        level2 / set_level2: Price8 @ 19,
        /// Level 3.
        level3 / set_level3: Price8 @ 27,
    }

    /// MWCB Status (`W`): a market-wide circuit breaker level was breached.
    MwcbStatus / MwcbStatusRepr = 'W', 12, "mwcb_status" {
        /// The level breached: `1`, `2` or `3`.
        breached_level / set_breached_level: u8 @ 11,
    }

    /// IPO Quoting Period Update (`K`): the anticipated quotation release time
    /// of an IPO.
    IpoQuotingPeriodUpdate / IpoQuotingPeriodUpdateRepr = 'K', 28, "ipo_quoting_period_update" {
        /// The symbol.
        stock / set_stock: Stock @ 11,
        /// Release time in seconds since midnight (0 when canceled).
        release_time / set_release_time: u32 @ 19,
        /// `A` anticipated, `C` canceled or postponed.
        release_qualifier / set_release_qualifier: u8 @ 23,
        /// The IPO price (0 when canceled).
        ipo_price / set_ipo_price: Price4 @ 24,
    }

    /// LULD Auction Collar (`J`): the collars within which a paused instrument
    /// can reopen.
    LuldAuctionCollar / LuldAuctionCollarRepr = 'J', 35, "luld_auction_collar" {
        /// The symbol.
        stock / set_stock: Stock @ 11,
        /// Reference price of the collars.
        reference_price / set_reference_price: Price4 @ 19,
        /// Upper collar.
        upper_collar / set_upper_collar: Price4 @ 23,
        /// Lower collar.
        lower_collar / set_lower_collar: Price4 @ 27,
        /// Number of extensions of the reopening auction.
        extension / set_extension: u32 @ 31,
    }

    /// Operational Halt (`h`): an instrument is halted on one Nasdaq market
    /// only.
    OperationalHalt / OperationalHaltRepr = 'h', 21, "operational_halt" {
        /// The symbol.
        stock / set_stock: Stock @ 11,
        /// The market: `Q` Nasdaq, `B` BX, `X` PSX.
        market_code / set_market_code: u8 @ 19,
        /// `H` halted, `T` resumed.
        halt_action / set_halt_action: u8 @ 20,
    }

    /// Add Order, no MPID attribution (`A`): a displayed order joins the book.
    AddOrder / AddOrderRepr = 'A', 36, "add_order" {
        /// The day-unique order reference number.
        order_ref / set_order_ref: u64 @ 11,
        /// Buy or sell. `Err(Malformed)` for anything but `B` and `S`.
        side / set_side: Side @ 19,
        /// Shares displayed.
        shares / set_shares: u32 @ 20,
        /// The symbol.
        stock / set_stock: Stock @ 24,
        /// Display price.
        price / set_price: Price4 @ 32,
    }

    /// Add Order with MPID attribution (`F`): an attributed order joins the
    /// book.
    AddOrderMpid / AddOrderMpidRepr = 'F', 40, "add_order_mpid" {
        /// The day-unique order reference number.
        order_ref / set_order_ref: u64 @ 11,
        /// Buy or sell. `Err(Malformed)` for anything but `B` and `S`.
        side / set_side: Side @ 19,
        /// Shares displayed.
        shares / set_shares: u32 @ 20,
        /// The symbol.
        stock / set_stock: Stock @ 24,
        /// Display price.
        price / set_price: Price4 @ 32,
        /// The market participant that entered the order.
        attribution / set_attribution: Mpid @ 36,
    }

    /// Order Executed (`E`): a resting order traded at its display price.
    OrderExecuted / OrderExecutedRepr = 'E', 31, "order_executed" {
        /// The order.
        order_ref / set_order_ref: u64 @ 11,
        /// Shares executed (deduct from the order's shares).
        executed_shares / set_executed_shares: u32 @ 19,
        /// The day-unique match number.
        match_number / set_match_number: u64 @ 23,
    }

    /// Order Executed With Price (`C`): a resting order traded at a price other
    /// than its display price.
    OrderExecutedWithPrice / OrderExecutedWithPriceRepr = 'C', 36, "order_executed_with_price" {
        /// The order.
        order_ref / set_order_ref: u64 @ 11,
        /// Shares executed (deduct from the order's shares).
        executed_shares / set_executed_shares: u32 @ 19,
        /// The day-unique match number.
        match_number / set_match_number: u64 @ 23,
        /// `Y` printable, `N` not (counted in a later bulk print).
        printable / set_printable: u8 @ 31,
        /// The execution price.
        execution_price / set_execution_price: Price4 @ 32,
    }

    /// Order Cancel (`X`): part of a resting order was canceled.
    OrderCancel / OrderCancelRepr = 'X', 23, "order_cancel" {
        /// The order.
        order_ref / set_order_ref: u64 @ 11,
        /// Shares removed from the order.
        cancelled_shares / set_cancelled_shares: u32 @ 19,
    }

    /// Order Delete (`D`): a resting order left the book.
    OrderDelete / OrderDeleteRepr = 'D', 19, "order_delete" {
        /// The order.
        order_ref / set_order_ref: u64 @ 11,
    }

    /// Order Replace (`U`): a resting order was cancel-replaced; side, stock
    /// and attribution carry over from the original.
    OrderReplace / OrderReplaceRepr = 'U', 35, "order_replace" {
        /// The order replaced (it leaves the book).
        original_order_ref / set_original_order_ref: u64 @ 11,
        /// The new order's reference number.
        new_order_ref / set_new_order_ref: u64 @ 19,
        /// Shares displayed by the new order.
        shares / set_shares: u32 @ 27,
        /// Display price of the new order.
        price / set_price: Price4 @ 31,
    }

    /// Trade, non-cross (`P`): a non-displayed order traded; no effect on the
    /// book.
    Trade / TradeRepr = 'P', 44, "trade" {
        /// The order (sent as zero since 2010).
        order_ref / set_order_ref: u64 @ 11,
        /// Side of the resting order (always `B` since 2014).
        /// `Err(Malformed)` for anything but `B` and `S`.
        side / set_side: Side @ 19,
        /// Shares traded.
        shares / set_shares: u32 @ 20,
        /// The symbol.
        stock / set_stock: Stock @ 24,
        /// The match price.
        price / set_price: Price4 @ 32,
        /// The day-unique match number.
        match_number / set_match_number: u64 @ 36,
    }

    /// Cross Trade (`Q`): the bulk print of a cross.
    CrossTrade / CrossTradeRepr = 'Q', 40, "cross_trade" {
        /// Shares matched in the cross (8 bytes).
        shares / set_shares: u64 @ 11,
        /// The symbol.
        stock / set_stock: Stock @ 19,
        /// The cross price.
        cross_price / set_cross_price: Price4 @ 27,
        /// The day-unique match number.
        match_number / set_match_number: u64 @ 31,
        /// Which cross (see [`codes::cross_type`](super::codes::cross_type)).
        cross_type / set_cross_type: u8 @ 39,
    }

    /// Broken Trade (`B`): an execution was broken.
    BrokenTrade / BrokenTradeRepr = 'B', 19, "broken_trade" {
        /// The match number of the execution broken.
        match_number / set_match_number: u64 @ 11,
    }

    /// Net Order Imbalance Indicator (`I`): the state of an upcoming cross.
    Noii / NoiiRepr = 'I', 50, "noii" {
        /// Shares eligible to match at the current reference price.
        paired_shares / set_paired_shares: u64 @ 11,
        /// Shares not paired at the current reference price.
        imbalance_shares / set_imbalance_shares: u64 @ 19,
        /// Side of the imbalance (see [`codes::imbalance_direction`](super::codes::imbalance_direction)).
        imbalance_direction / set_imbalance_direction: u8 @ 27,
        /// The symbol.
        stock / set_stock: Stock @ 28,
        /// Hypothetical clearing price for cross orders only.
        far_price / set_far_price: Price4 @ 36,
        /// Hypothetical clearing price for cross and continuous orders.
        near_price / set_near_price: Price4 @ 40,
        /// The price the NOII shares are computed at.
        current_reference_price / set_current_reference_price: Price4 @ 44,
        /// Which cross (see [`codes::cross_type`](super::codes::cross_type)).
        cross_type / set_cross_type: u8 @ 48,
        /// Near price deviation (see [`codes::price_variation`](super::codes::price_variation)).
        price_variation / set_price_variation: u8 @ 49,
    }

    /// Retail Price Improvement Indicator (`N`): retail interest on a side.
    Rpii / RpiiRepr = 'N', 20, "rpii" {
        /// The symbol.
        stock / set_stock: Stock @ 11,
        /// Which sides have RPI orders (see [`codes::interest_flag`](super::codes::interest_flag)).
        interest_flag / set_interest_flag: u8 @ 19,
    }

    /// Direct Listing with Capital Raise price discovery (`O`).
    Dlcr / DlcrRepr = 'O', 48, "dlcr" {
        /// The symbol.
        stock / set_stock: Stock @ 11,
        /// `Y` eligible to be released for trading, `N` not.
        open_eligibility / set_open_eligibility: u8 @ 19,
        /// Minimum allowable price.
        min_price / set_min_price: Price4 @ 20,
        /// Maximum allowable price.
        max_price / set_max_price: Price4 @ 24,
        /// Reference price when the volatility test passed.
        near_execution_price / set_near_execution_price: Price4 @ 28,
        /// When the near execution price was set: an 8-byte integer, kept as
        /// sent (the specification gives no unit).
        near_execution_time / set_near_execution_time: u64 @ 32,
        /// Lower price range collar.
        lower_collar / set_lower_collar: Price4 @ 40,
        /// Upper price range collar.
        upper_collar / set_upper_collar: Price4 @ 44,
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(ns: u64) -> Timestamp {
        Timestamp::new(ns).unwrap()
    }

    fn stock(s: &str) -> Stock {
        Stock::new(s).unwrap()
    }

    // ---- System Event -------------------------------------------------
    // Start of market hours at 09:30:00: 34_200_000_000_000 ns
    // = 0x1F1A_CED9_F000.
    static SYSTEM_EVENT: [u8; 12] = [
        b'S', 0x00, 0x00, 0x00, 0x07, 0x1f, 0x1a, 0xce, 0xd9, 0xf0, 0x00, b'Q',
    ];

    fn system_event() -> SystemEventRepr {
        SystemEventRepr {
            header: HeaderRepr {
                stock_locate: 0,
                tracking_number: 7,
                timestamp: ts(34_200_000_000_000),
            },
            event_code: EventCode::StartOfMarketHours,
        }
    }

    #[test]
    fn test_system_event_deconstruct() {
        let v = SystemEvent::new_checked(&SYSTEM_EVENT[..]).unwrap();
        assert_eq!(v.msg_type(), b'S');
        assert_eq!(v.stock_locate(), 0);
        assert_eq!(v.tracking_number(), 7);
        assert_eq!(v.timestamp().to_string(), "09:30:00.000000000");
        assert_eq!(v.event_code(), Ok(EventCode::StartOfMarketHours));
    }

    #[test]
    fn test_system_event_construct() {
        let mut buf = [0xaau8; 12];
        let mut v = SystemEvent::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'S');
        v.set_stock_locate(0);
        v.set_tracking_number(7);
        v.set_timestamp(ts(34_200_000_000_000));
        v.set_event_code(EventCode::StartOfMarketHours);
        assert_eq!(buf, SYSTEM_EVENT);
    }

    #[test]
    fn test_system_event_parse_emit() {
        let m = Message::parse(&SYSTEM_EVENT).unwrap();
        assert_eq!(m, Message::SystemEvent(system_event()));
        assert_eq!(system_event().to_bytes(), SYSTEM_EVENT);
        let mut buf = [0u8; 12];
        assert_eq!(m.emit(&mut buf), Ok(12));
        assert_eq!(buf, SYSTEM_EVENT);
    }

    #[test]
    fn test_system_event_bad_code() {
        let mut b = SYSTEM_EVENT;
        b[11] = b'Z';
        assert_eq!(
            SystemEvent::new_checked(&b[..]).unwrap().event_code(),
            Err(Error::Malformed)
        );
        assert_eq!(Message::parse(&b), Err(Error::Malformed));
    }

    // ---- Stock Directory ------------------------------------------------
    // AAPL, locate 13, Global Select, normal, round lot 100, not round lots
    // only, common stock "C ", production, N, N, tier 1, not ETP, leverage
    // 0, not inverse. 03:00:00.000000001 = 10_800_000_000_001 ns =
    // 0x09D2_9229_E001.
    static STOCK_DIRECTORY: [u8; 39] = [
        b'R', 0x00, 0x0d, 0x00, 0x00, 0x09, 0xd2, 0x92, 0x29, 0xe0, 0x01, //
        b'A', b'A', b'P', b'L', b' ', b' ', b' ', b' ', //
        b'Q', b'N', //
        0x00, 0x00, 0x00, 0x64, //
        b'N', b'C', b'C', b' ', b'P', b'N', b'N', b'1', b'N', //
        0x00, 0x00, 0x00, 0x00, //
        b'N',
    ];

    fn stock_directory() -> StockDirectoryRepr {
        StockDirectoryRepr {
            header: HeaderRepr {
                stock_locate: 13,
                tracking_number: 0,
                timestamp: ts(10_800_000_000_001),
            },
            stock: stock("AAPL"),
            market_category: b'Q',
            financial_status: b'N',
            round_lot_size: 100,
            round_lots_only: b'N',
            issue_classification: b'C',
            issue_sub_type: IssueSubType::new("C").unwrap(),
            authenticity: b'P',
            short_sale_threshold: b'N',
            ipo_flag: b'N',
            luld_tier: b'1',
            etp_flag: b'N',
            etp_leverage_factor: 0,
            inverse_indicator: b'N',
        }
    }

    #[test]
    fn test_stock_directory_deconstruct() {
        let v = StockDirectory::new_checked(&STOCK_DIRECTORY[..]).unwrap();
        assert_eq!(v.stock_locate(), 13);
        assert_eq!(v.timestamp().to_string(), "03:00:00.000000001");
        assert_eq!(v.stock().to_string(), "AAPL");
        assert_eq!(v.market_category(), b'Q');
        assert_eq!(v.financial_status(), b'N');
        assert_eq!(v.round_lot_size(), 100);
        assert_eq!(v.round_lots_only(), b'N');
        assert_eq!(v.issue_classification(), b'C');
        assert_eq!(v.issue_sub_type().as_bytes(), b"C ");
        assert_eq!(v.authenticity(), b'P');
        assert_eq!(v.short_sale_threshold(), b'N');
        assert_eq!(v.ipo_flag(), b'N');
        assert_eq!(v.luld_tier(), b'1');
        assert_eq!(v.etp_flag(), b'N');
        assert_eq!(v.etp_leverage_factor(), 0);
        assert_eq!(v.inverse_indicator(), b'N');
    }

    #[test]
    fn test_stock_directory_construct() {
        let mut buf = [0xaau8; 39];
        let mut v = StockDirectory::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'R');
        v.set_stock_locate(13);
        v.set_tracking_number(0);
        v.set_timestamp(ts(10_800_000_000_001));
        v.set_stock(stock("AAPL"));
        v.set_market_category(b'Q');
        v.set_financial_status(b'N');
        v.set_round_lot_size(100);
        v.set_round_lots_only(b'N');
        v.set_issue_classification(b'C');
        v.set_issue_sub_type(IssueSubType::new("C").unwrap());
        v.set_authenticity(b'P');
        v.set_short_sale_threshold(b'N');
        v.set_ipo_flag(b'N');
        v.set_luld_tier(b'1');
        v.set_etp_flag(b'N');
        v.set_etp_leverage_factor(0);
        v.set_inverse_indicator(b'N');
        assert_eq!(buf, STOCK_DIRECTORY);
    }

    #[test]
    fn test_stock_directory_parse_emit() {
        assert_eq!(
            Message::parse(&STOCK_DIRECTORY),
            Ok(Message::StockDirectory(stock_directory()))
        );
        assert_eq!(stock_directory().to_bytes(), STOCK_DIRECTORY);
    }

    // ---- Add Order --------------------------------------------------------
    // Locate 13, tracking 1, 09:30:00.000000123 (0x1F1A_CED9_F07B), order
    // 0x0102030405060708, buy 100 AAPL at 185.2500 (1_852_500 = 0x001C_4454).
    static ADD_ORDER: [u8; 36] = [
        b'A', 0x00, 0x0d, 0x00, 0x01, 0x1f, 0x1a, 0xce, 0xd9, 0xf0, 0x7b, //
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, //
        b'B', //
        0x00, 0x00, 0x00, 0x64, //
        b'A', b'A', b'P', b'L', b' ', b' ', b' ', b' ', //
        0x00, 0x1c, 0x44, 0x54,
    ];

    fn add_order() -> AddOrderRepr {
        AddOrderRepr {
            header: HeaderRepr {
                stock_locate: 13,
                tracking_number: 1,
                timestamp: ts(34_200_000_000_123),
            },
            order_ref: 0x0102_0304_0506_0708,
            side: Side::Buy,
            shares: 100,
            stock: stock("AAPL"),
            price: Price4::from_raw(1_852_500),
        }
    }

    #[test]
    fn test_add_order_deconstruct() {
        let v = AddOrder::new_checked(&ADD_ORDER[..]).unwrap();
        assert_eq!(v.msg_type(), b'A');
        assert_eq!(v.stock_locate(), 13);
        assert_eq!(v.tracking_number(), 1);
        assert_eq!(v.timestamp().nanos(), 34_200_000_000_123);
        assert_eq!(v.order_ref(), 0x0102_0304_0506_0708);
        assert_eq!(v.side(), Ok(Side::Buy));
        assert_eq!(v.shares(), 100);
        assert_eq!(v.stock().to_string(), "AAPL");
        assert_eq!(v.price().to_string(), "185.2500");
    }

    #[test]
    fn test_add_order_construct() {
        let mut buf = [0xaau8; 36];
        let mut v = AddOrder::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'A');
        v.set_stock_locate(13);
        v.set_tracking_number(1);
        v.set_timestamp(ts(34_200_000_000_123));
        v.set_order_ref(0x0102_0304_0506_0708);
        v.set_side(Side::Buy);
        v.set_shares(100);
        v.set_stock(stock("AAPL"));
        v.set_price(Price4::from_raw(1_852_500));
        assert_eq!(buf, ADD_ORDER);
    }

    #[test]
    fn test_add_order_parse() {
        let v = AddOrder::new_checked(&ADD_ORDER[..]).unwrap();
        assert_eq!(AddOrderRepr::parse(&v), Ok(add_order()));
        assert_eq!(
            Message::parse(&ADD_ORDER),
            Ok(Message::AddOrder(add_order()))
        );
    }

    #[test]
    fn test_add_order_emit() {
        let mut buf = [0u8; 36];
        add_order().emit(&mut AddOrder::new_unchecked(&mut buf[..]));
        assert_eq!(buf, ADD_ORDER);
        assert_eq!(add_order().buffer_len(), 36);
    }

    #[test]
    fn test_add_order_bad_side() {
        let mut b = ADD_ORDER;
        b[19] = b'X';
        let v = AddOrder::new_checked(&b[..]).unwrap();
        assert_eq!(v.side(), Err(Error::Malformed));
        assert_eq!(v.shares(), 100, "other fields still read");
        assert_eq!(AddOrderRepr::parse(&v), Err(Error::Malformed));
        assert_eq!(Message::parse(&b), Err(Error::Malformed));
    }

    #[test]
    fn test_add_order_wrong_type_for_view() {
        let v = AddOrder::new_checked(&ADD_ORDER_MPID[..]).unwrap();
        assert_eq!(AddOrderRepr::parse(&v), Err(Error::Malformed));
    }

    // ---- Add Order with MPID ----------------------------------------------
    // Locate 0x0102, tracking 2, 15:59:59.999999999 (57_599_999_999_999 =
    // 0x3463_0B89_FFFF), order 42, sell 0x01000000 shares of "BRK.A" at
    // 429496.7295 (u32::MAX), attributed to "GSCO".
    static ADD_ORDER_MPID: [u8; 40] = [
        b'F', 0x01, 0x02, 0x00, 0x02, 0x34, 0x63, 0x0b, 0x89, 0xff, 0xff, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x2a, //
        b'S', //
        0x01, 0x00, 0x00, 0x00, //
        b'B', b'R', b'K', b'.', b'A', b' ', b' ', b' ', //
        0xff, 0xff, 0xff, 0xff, //
        b'G', b'S', b'C', b'O',
    ];

    fn add_order_mpid() -> AddOrderMpidRepr {
        AddOrderMpidRepr {
            header: HeaderRepr {
                stock_locate: 0x0102,
                tracking_number: 2,
                timestamp: ts(57_599_999_999_999),
            },
            order_ref: 42,
            side: Side::Sell,
            shares: 0x0100_0000,
            stock: stock("BRK.A"),
            price: Price4::from_raw(u32::MAX),
            attribution: Mpid::new("GSCO").unwrap(),
        }
    }

    #[test]
    fn test_add_order_mpid_deconstruct() {
        let v = AddOrderMpid::new_checked(&ADD_ORDER_MPID[..]).unwrap();
        assert_eq!(v.stock_locate(), 0x0102);
        assert_eq!(v.timestamp().to_string(), "15:59:59.999999999");
        assert_eq!(v.order_ref(), 42);
        assert_eq!(v.side(), Ok(Side::Sell));
        assert_eq!(v.shares(), 16_777_216);
        assert_eq!(v.stock().to_string(), "BRK.A");
        assert_eq!(v.price().to_string(), "429496.7295");
        assert_eq!(v.attribution().to_string(), "GSCO");
    }

    #[test]
    fn test_add_order_mpid_construct() {
        let mut buf = [0u8; 40];
        let mut v = AddOrderMpid::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'F');
        v.set_stock_locate(0x0102);
        v.set_tracking_number(2);
        v.set_timestamp(ts(57_599_999_999_999));
        v.set_order_ref(42);
        v.set_side(Side::Sell);
        v.set_shares(0x0100_0000);
        v.set_stock(stock("BRK.A"));
        v.set_price(Price4::from_raw(u32::MAX));
        v.set_attribution(Mpid::new("GSCO").unwrap());
        assert_eq!(buf, ADD_ORDER_MPID);
    }

    #[test]
    fn test_add_order_mpid_parse_emit() {
        assert_eq!(
            Message::parse(&ADD_ORDER_MPID),
            Ok(Message::AddOrderMpid(add_order_mpid()))
        );
        assert_eq!(add_order_mpid().to_bytes(), ADD_ORDER_MPID);
    }

    // ---- Order Executed ---------------------------------------------------
    // Locate 13, tracking 3, 10:00:00 (36_000_000_000_000 = 0x20BD_E736_4000),
    // order 0x0102030405060708, 40 shares, match 0x00000000DEADBEEF.
    static ORDER_EXECUTED: [u8; 31] = [
        b'E', 0x00, 0x0d, 0x00, 0x03, 0x20, 0xbd, 0xe7, 0x36, 0x40, 0x00, //
        0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, //
        0x00, 0x00, 0x00, 0x28, //
        0x00, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xef,
    ];

    fn order_executed() -> OrderExecutedRepr {
        OrderExecutedRepr {
            header: HeaderRepr {
                stock_locate: 13,
                tracking_number: 3,
                timestamp: ts(36_000_000_000_000),
            },
            order_ref: 0x0102_0304_0506_0708,
            executed_shares: 40,
            match_number: 0xdead_beef,
        }
    }

    #[test]
    fn test_order_executed_deconstruct() {
        let v = OrderExecuted::new_checked(&ORDER_EXECUTED[..]).unwrap();
        assert_eq!(v.timestamp().to_string(), "10:00:00.000000000");
        assert_eq!(v.order_ref(), 0x0102_0304_0506_0708);
        assert_eq!(v.executed_shares(), 40);
        assert_eq!(v.match_number(), 0xdead_beef);
    }

    #[test]
    fn test_order_executed_construct() {
        let mut buf = [0xffu8; 31];
        let mut v = OrderExecuted::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'E');
        v.set_stock_locate(13);
        v.set_tracking_number(3);
        v.set_timestamp(ts(36_000_000_000_000));
        v.set_order_ref(0x0102_0304_0506_0708);
        v.set_executed_shares(40);
        v.set_match_number(0xdead_beef);
        assert_eq!(buf, ORDER_EXECUTED);
    }

    #[test]
    fn test_order_executed_parse_emit() {
        assert_eq!(
            Message::parse(&ORDER_EXECUTED),
            Ok(Message::OrderExecuted(order_executed()))
        );
        assert_eq!(order_executed().to_bytes(), ORDER_EXECUTED);
    }

    // ---- Order Executed With Price ------------------------------------------
    // Locate 13, tracking 4, 10:00:00, order 7, 250 shares, match 9,
    // non-printable, at 185.2600 (1_852_600 = 0x001C_44B8).
    static ORDER_EXECUTED_WITH_PRICE: [u8; 36] = [
        b'C', 0x00, 0x0d, 0x00, 0x04, 0x20, 0xbd, 0xe7, 0x36, 0x40, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, //
        0x00, 0x00, 0x00, 0xfa, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, //
        b'N', //
        0x00, 0x1c, 0x44, 0xb8,
    ];

    fn order_executed_with_price() -> OrderExecutedWithPriceRepr {
        OrderExecutedWithPriceRepr {
            header: HeaderRepr {
                stock_locate: 13,
                tracking_number: 4,
                timestamp: ts(36_000_000_000_000),
            },
            order_ref: 7,
            executed_shares: 250,
            match_number: 9,
            printable: b'N',
            execution_price: Price4::from_raw(1_852_600),
        }
    }

    #[test]
    fn test_order_executed_with_price_deconstruct() {
        let v = OrderExecutedWithPrice::new_checked(&ORDER_EXECUTED_WITH_PRICE[..]).unwrap();
        assert_eq!(v.order_ref(), 7);
        assert_eq!(v.executed_shares(), 250);
        assert_eq!(v.match_number(), 9);
        assert_eq!(v.printable(), b'N');
        assert_eq!(v.execution_price().to_string(), "185.2600");
    }

    #[test]
    fn test_order_executed_with_price_construct() {
        let mut buf = [0u8; 36];
        let mut v = OrderExecutedWithPrice::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'C');
        v.set_stock_locate(13);
        v.set_tracking_number(4);
        v.set_timestamp(ts(36_000_000_000_000));
        v.set_order_ref(7);
        v.set_executed_shares(250);
        v.set_match_number(9);
        v.set_printable(b'N');
        v.set_execution_price(Price4::from_raw(1_852_600));
        assert_eq!(buf, ORDER_EXECUTED_WITH_PRICE);
    }

    #[test]
    fn test_order_executed_with_price_parse_emit() {
        assert_eq!(
            Message::parse(&ORDER_EXECUTED_WITH_PRICE),
            Ok(Message::OrderExecutedWithPrice(order_executed_with_price()))
        );
        assert_eq!(
            order_executed_with_price().to_bytes(),
            ORDER_EXECUTED_WITH_PRICE
        );
    }

    // ---- Order Cancel -----------------------------------------------------
    // Locate 13, tracking 5, 1 ns after midnight, order 7, 60 shares.
    static ORDER_CANCEL: [u8; 23] = [
        b'X', 0x00, 0x0d, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, //
        0x00, 0x00, 0x00, 0x3c,
    ];

    fn order_cancel() -> OrderCancelRepr {
        OrderCancelRepr {
            header: HeaderRepr {
                stock_locate: 13,
                tracking_number: 5,
                timestamp: ts(1),
            },
            order_ref: 7,
            cancelled_shares: 60,
        }
    }

    #[test]
    fn test_order_cancel_deconstruct() {
        let v = OrderCancel::new_checked(&ORDER_CANCEL[..]).unwrap();
        assert_eq!(v.timestamp().nanos(), 1);
        assert_eq!(v.order_ref(), 7);
        assert_eq!(v.cancelled_shares(), 60);
    }

    #[test]
    fn test_order_cancel_construct() {
        let mut buf = [0u8; 23];
        let mut v = OrderCancel::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'X');
        v.set_stock_locate(13);
        v.set_tracking_number(5);
        v.set_timestamp(ts(1));
        v.set_order_ref(7);
        v.set_cancelled_shares(60);
        assert_eq!(buf, ORDER_CANCEL);
    }

    #[test]
    fn test_order_cancel_parse_emit() {
        assert_eq!(
            Message::parse(&ORDER_CANCEL),
            Ok(Message::OrderCancel(order_cancel()))
        );
        assert_eq!(order_cancel().to_bytes(), ORDER_CANCEL);
    }

    // ---- Order Delete -----------------------------------------------------
    // Locate 0xFFFF, tracking 0xFFFF, the largest timestamp, order u64::MAX.
    static ORDER_DELETE: [u8; 19] = [
        b'D', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, //
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ];

    fn order_delete() -> OrderDeleteRepr {
        OrderDeleteRepr {
            header: HeaderRepr {
                stock_locate: 0xffff,
                tracking_number: 0xffff,
                timestamp: Timestamp::MAX,
            },
            order_ref: u64::MAX,
        }
    }

    #[test]
    fn test_order_delete_deconstruct() {
        let v = OrderDelete::new_checked(&ORDER_DELETE[..]).unwrap();
        assert_eq!(v.stock_locate(), 0xffff);
        assert_eq!(v.tracking_number(), 0xffff);
        assert_eq!(v.timestamp(), Timestamp::MAX);
        assert_eq!(v.order_ref(), u64::MAX);
    }

    #[test]
    fn test_order_delete_construct() {
        let mut buf = [0u8; 19];
        let mut v = OrderDelete::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'D');
        v.set_stock_locate(0xffff);
        v.set_tracking_number(0xffff);
        v.set_timestamp(Timestamp::MAX);
        v.set_order_ref(u64::MAX);
        assert_eq!(buf, ORDER_DELETE);
    }

    #[test]
    fn test_order_delete_parse_emit() {
        assert_eq!(
            Message::parse(&ORDER_DELETE),
            Ok(Message::OrderDelete(order_delete()))
        );
        assert_eq!(order_delete().to_bytes(), ORDER_DELETE);
    }

    // ---- Order Replace ----------------------------------------------------
    // Locate 13, tracking 6, 10:00:00, order 7 replaced by order 8: 300
    // shares at 185.3000 (1_853_000 = 0x001C_4648).
    static ORDER_REPLACE: [u8; 35] = [
        b'U', 0x00, 0x0d, 0x00, 0x06, 0x20, 0xbd, 0xe7, 0x36, 0x40, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, //
        0x00, 0x00, 0x01, 0x2c, //
        0x00, 0x1c, 0x46, 0x48,
    ];

    fn order_replace() -> OrderReplaceRepr {
        OrderReplaceRepr {
            header: HeaderRepr {
                stock_locate: 13,
                tracking_number: 6,
                timestamp: ts(36_000_000_000_000),
            },
            original_order_ref: 7,
            new_order_ref: 8,
            shares: 300,
            price: Price4::from_raw(1_853_000),
        }
    }

    #[test]
    fn test_order_replace_deconstruct() {
        let v = OrderReplace::new_checked(&ORDER_REPLACE[..]).unwrap();
        assert_eq!(v.original_order_ref(), 7);
        assert_eq!(v.new_order_ref(), 8);
        assert_eq!(v.shares(), 300);
        assert_eq!(v.price().to_string(), "185.3000");
    }

    #[test]
    fn test_order_replace_construct() {
        let mut buf = [0u8; 35];
        let mut v = OrderReplace::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'U');
        v.set_stock_locate(13);
        v.set_tracking_number(6);
        v.set_timestamp(ts(36_000_000_000_000));
        v.set_original_order_ref(7);
        v.set_new_order_ref(8);
        v.set_shares(300);
        v.set_price(Price4::from_raw(1_853_000));
        assert_eq!(buf, ORDER_REPLACE);
    }

    #[test]
    fn test_order_replace_parse_emit() {
        assert_eq!(
            Message::parse(&ORDER_REPLACE),
            Ok(Message::OrderReplace(order_replace()))
        );
        assert_eq!(order_replace().to_bytes(), ORDER_REPLACE);
    }

    // ---- Trade (non-cross) ------------------------------------------------
    // Locate 13, tracking 7, 10:00:00, order 0 (as Nasdaq sends it), "B",
    // 500 shares of MSFT at 410.0100 (4_100_100 = 0x003E_9004), match
    // 0x0000_0001_0000_0000.
    static TRADE: [u8; 44] = [
        b'P', 0x00, 0x0d, 0x00, 0x07, 0x20, 0xbd, 0xe7, 0x36, 0x40, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        b'B', //
        0x00, 0x00, 0x01, 0xf4, //
        b'M', b'S', b'F', b'T', b' ', b' ', b' ', b' ', //
        0x00, 0x3e, 0x90, 0x04, //
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
    ];

    fn trade() -> TradeRepr {
        TradeRepr {
            header: HeaderRepr {
                stock_locate: 13,
                tracking_number: 7,
                timestamp: ts(36_000_000_000_000),
            },
            order_ref: 0,
            side: Side::Buy,
            shares: 500,
            stock: stock("MSFT"),
            price: Price4::from_raw(4_100_100),
            match_number: 1 << 32,
        }
    }

    #[test]
    fn test_trade_deconstruct() {
        let v = Trade::new_checked(&TRADE[..]).unwrap();
        assert_eq!(v.order_ref(), 0);
        assert_eq!(v.side(), Ok(Side::Buy));
        assert_eq!(v.shares(), 500);
        assert_eq!(v.stock().to_string(), "MSFT");
        assert_eq!(v.price().to_string(), "410.0100");
        assert_eq!(v.match_number(), 1 << 32);
    }

    #[test]
    fn test_trade_construct() {
        let mut buf = [0xaau8; 44];
        let mut v = Trade::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'P');
        v.set_stock_locate(13);
        v.set_tracking_number(7);
        v.set_timestamp(ts(36_000_000_000_000));
        v.set_order_ref(0);
        v.set_side(Side::Buy);
        v.set_shares(500);
        v.set_stock(stock("MSFT"));
        v.set_price(Price4::from_raw(4_100_100));
        v.set_match_number(1 << 32);
        assert_eq!(buf, TRADE);
    }

    #[test]
    fn test_trade_parse_emit() {
        assert_eq!(Message::parse(&TRADE), Ok(Message::Trade(trade())));
        assert_eq!(trade().to_bytes(), TRADE);
    }

    // ---- Cross Trade --------------------------------------------------------
    // Locate 13, tracking 8, 16:00:00 (57_600_000_000_000 = 0x3463_0B8A_0000),
    // 0x0000_0001_0000_0002 shares of AAPL at 186.0000 (1_860_000 =
    // 0x001C_61A0), match 10, closing cross.
    static CROSS_TRADE: [u8; 40] = [
        b'Q', 0x00, 0x0d, 0x00, 0x08, 0x34, 0x63, 0x0b, 0x8a, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, //
        b'A', b'A', b'P', b'L', b' ', b' ', b' ', b' ', //
        0x00, 0x1c, 0x61, 0xa0, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, //
        b'C',
    ];

    fn cross_trade() -> CrossTradeRepr {
        CrossTradeRepr {
            header: HeaderRepr {
                stock_locate: 13,
                tracking_number: 8,
                timestamp: ts(57_600_000_000_000),
            },
            shares: 0x0000_0001_0000_0002,
            stock: stock("AAPL"),
            cross_price: Price4::from_raw(1_860_000),
            match_number: 10,
            cross_type: b'C',
        }
    }

    #[test]
    fn test_cross_trade_deconstruct() {
        let v = CrossTrade::new_checked(&CROSS_TRADE[..]).unwrap();
        assert_eq!(v.timestamp().to_string(), "16:00:00.000000000");
        assert_eq!(v.shares(), 4_294_967_298);
        assert_eq!(v.stock().to_string(), "AAPL");
        assert_eq!(v.cross_price().to_string(), "186.0000");
        assert_eq!(v.match_number(), 10);
        assert_eq!(v.cross_type(), b'C');
    }

    #[test]
    fn test_cross_trade_construct() {
        let mut buf = [0u8; 40];
        let mut v = CrossTrade::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'Q');
        v.set_stock_locate(13);
        v.set_tracking_number(8);
        v.set_timestamp(ts(57_600_000_000_000));
        v.set_shares(0x0000_0001_0000_0002);
        v.set_stock(stock("AAPL"));
        v.set_cross_price(Price4::from_raw(1_860_000));
        v.set_match_number(10);
        v.set_cross_type(b'C');
        assert_eq!(buf, CROSS_TRADE);
    }

    #[test]
    fn test_cross_trade_parse_emit() {
        assert_eq!(
            Message::parse(&CROSS_TRADE),
            Ok(Message::CrossTrade(cross_trade()))
        );
        assert_eq!(cross_trade().to_bytes(), CROSS_TRADE);
    }

    // ---- NOII ---------------------------------------------------------------
    // Locate 13, tracking 9, 15:50:00 (57_000_000_000_000 = 0x33D7_58C0_9000),
    // paired 1_000_000 (0x0F4240), imbalance 5_000 (0x1388) to buy, AAPL,
    // far 185.0000 (0x001C_3A90), near 185.5000 (0x001C_4E18), reference
    // 185.2500 (0x001C_4454), closing cross, deviation less than 1 %.
    static NOII: [u8; 50] = [
        b'I', 0x00, 0x0d, 0x00, 0x09, 0x33, 0xd7, 0x58, 0xc0, 0x90, 0x00, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x42, 0x40, //
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x13, 0x88, //
        b'B', //
        b'A', b'A', b'P', b'L', b' ', b' ', b' ', b' ', //
        0x00, 0x1c, 0x3a, 0x90, //
        0x00, 0x1c, 0x4e, 0x18, //
        0x00, 0x1c, 0x44, 0x54, //
        b'C', b'L',
    ];

    fn noii() -> NoiiRepr {
        NoiiRepr {
            header: HeaderRepr {
                stock_locate: 13,
                tracking_number: 9,
                timestamp: ts(57_000_000_000_000),
            },
            paired_shares: 1_000_000,
            imbalance_shares: 5_000,
            imbalance_direction: b'B',
            stock: stock("AAPL"),
            far_price: Price4::from_raw(1_850_000),
            near_price: Price4::from_raw(1_855_000),
            current_reference_price: Price4::from_raw(1_852_500),
            cross_type: b'C',
            price_variation: b'L',
        }
    }

    #[test]
    fn test_noii_deconstruct() {
        let v = Noii::new_checked(&NOII[..]).unwrap();
        assert_eq!(v.timestamp().to_string(), "15:50:00.000000000");
        assert_eq!(v.paired_shares(), 1_000_000);
        assert_eq!(v.imbalance_shares(), 5_000);
        assert_eq!(v.imbalance_direction(), b'B');
        assert_eq!(v.stock().to_string(), "AAPL");
        assert_eq!(v.far_price().to_string(), "185.0000");
        assert_eq!(v.near_price().to_string(), "185.5000");
        assert_eq!(v.current_reference_price().to_string(), "185.2500");
        assert_eq!(v.cross_type(), b'C');
        assert_eq!(v.price_variation(), b'L');
    }

    #[test]
    fn test_noii_construct() {
        let mut buf = [0u8; 50];
        let mut v = Noii::new_unchecked(&mut buf[..]);
        v.set_msg_type(b'I');
        v.set_stock_locate(13);
        v.set_tracking_number(9);
        v.set_timestamp(ts(57_000_000_000_000));
        v.set_paired_shares(1_000_000);
        v.set_imbalance_shares(5_000);
        v.set_imbalance_direction(b'B');
        v.set_stock(stock("AAPL"));
        v.set_far_price(Price4::from_raw(1_850_000));
        v.set_near_price(Price4::from_raw(1_855_000));
        v.set_current_reference_price(Price4::from_raw(1_852_500));
        v.set_cross_type(b'C');
        v.set_price_variation(b'L');
        assert_eq!(buf, NOII);
    }

    #[test]
    fn test_noii_parse_emit() {
        assert_eq!(Message::parse(&NOII), Ok(Message::Noii(noii())));
        assert_eq!(noii().to_bytes(), NOII);
    }

    // ---- MWCB Decline Level (Price(8)) --------------------------------------
    // Levels 5104.66000000, 4771.96000000 and 4160.20000000 (raw
    // 510_466_000_000 = 0x76_DA25_0480, 477_196_000_000 = 0x6F_1B19_1B00,
    // 416_020_000_000 = 0x60_DCB9_6D00).
    static MWCB_DECLINE_LEVEL: [u8; 35] = [
        b'V', 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x00, 0x76, 0xda, 0x25, 0x04, 0x80, //
        0x00, 0x00, 0x00, 0x6f, 0x1b, 0x19, 0x1b, 0x00, //
        0x00, 0x00, 0x00, 0x60, 0xdc, 0xb9, 0x6d, 0x00,
    ];

    #[test]
    fn test_mwcb_decline_level() {
        let v = MwcbDeclineLevel::new_checked(&MWCB_DECLINE_LEVEL[..]).unwrap();
        assert_eq!(v.level1().to_string(), "5104.66000000");
        assert_eq!(v.level2().to_string(), "4771.96000000");
        assert_eq!(v.level3().to_string(), "4160.20000000");
        let Ok(Message::MwcbDeclineLevel(r)) = Message::parse(&MWCB_DECLINE_LEVEL) else {
            panic!("not parsed");
        };
        assert_eq!(r.level1, Price8::from_raw(510_466_000_000));
        assert_eq!(r.to_bytes(), MWCB_DECLINE_LEVEL);
    }

    // ---- Every type ---------------------------------------------------------

    #[test]
    fn message_type_table() {
        let total: usize = MessageType::ALL.iter().map(|t| t.message_len()).sum();
        assert_eq!(MessageType::COUNT, 23);
        // The lengths the specification gives, in table order.
        let lens = [
            12, 39, 25, 20, 26, 35, 12, 28, 35, 21, 36, 40, 31, 36, 23, 19, 35, 44, 40, 19, 50, 20,
            48,
        ];
        assert_eq!(
            MessageType::ALL.map(MessageType::message_len).as_slice(),
            &lens
        );
        assert_eq!(total, lens.iter().sum::<usize>());
        let mut seen = [false; 256];
        for (i, t) in MessageType::ALL.into_iter().enumerate() {
            assert_eq!(t.index(), i);
            assert_eq!(MessageType::from_index(i), Some(t));
            assert_eq!(MessageType::from_byte(t.byte()), Some(t));
            assert!(!seen[usize::from(t.byte())], "duplicate byte {}", t.byte());
            seen[usize::from(t.byte())] = true;
            assert!(!t.name().is_empty());
            assert_eq!(t.to_string(), t.name());
        }
        assert_eq!(MessageType::from_index(MessageType::COUNT), None);
        assert_eq!(MessageType::from_byte(b'A'), Some(MessageType::AddOrder));
        assert_eq!(MessageType::AddOrder.name(), "add_order");
        assert_eq!(
            MessageType::from_byte(b'h'),
            Some(MessageType::OperationalHalt)
        );
        assert_eq!(MessageType::from_byte(b'Z'), None);
        assert_eq!(
            MessageType::from_byte(b'H'),
            Some(MessageType::StockTradingAction)
        );
    }

    #[test]
    fn every_prefix_is_truncated() {
        let seeds: Vec<u64> = (1..=32).map(|i| i * 0x0101_0101_0101_0101).collect();
        for t in MessageType::ALL {
            let m = message_from_seeds(t, &seeds);
            let mut buf = [0u8; 64];
            let n = m.emit(&mut buf).unwrap();
            assert_eq!(n, t.message_len());
            assert_eq!(Message::parse(&buf[..n]), Ok(m), "{t}");
            assert_eq!(view_check_len(t, &buf[..n]), Ok(()), "{t}");
            for k in 0..n {
                assert_eq!(Message::parse(&buf[..k]), Err(Error::Truncated), "{t} {k}");
                assert_eq!(
                    view_check_len(t, &buf[..k]),
                    Err(Error::Truncated),
                    "{t} {k}"
                );
                assert_eq!(m.emit(&mut buf[..k]), Err(Error::Truncated), "{t} {k}");
            }
        }
    }

    #[test]
    fn longer_messages_are_accepted() {
        let seeds = [7u64; 32];
        for t in MessageType::ALL {
            let m = message_from_seeds(t, &seeds);
            let mut buf = [0x5au8; 80];
            let n = m.emit(&mut buf).unwrap();
            // Nasdaq appended fields before; the framing gives the length.
            assert_eq!(Message::parse(&buf[..n + 3]), Ok(m), "{t}");
            assert_eq!(Message::parse(&buf[..n + 3]).unwrap().buffer_len(), n);
        }
    }

    #[test]
    fn unknown_and_empty() {
        assert_eq!(Message::parse(&[]), Err(Error::Truncated));
        let m = Message::parse(b"Z123").unwrap();
        assert_eq!(
            m,
            Message::Unknown {
                msg_type: b'Z',
                len: 4
            }
        );
        assert_eq!(m.msg_type(), b'Z');
        assert_eq!(m.buffer_len(), 4);
        assert_eq!(m.message_type(), None);
        assert_eq!(m.header(), None);
        assert_eq!(m.emit(&mut [0u8; 64]), Err(Error::Malformed));
        // A lone unknown type byte is still a message to skip.
        assert_eq!(
            Message::parse(b"T"),
            Ok(Message::Unknown {
                msg_type: b'T',
                len: 1
            })
        );
    }

    #[test]
    fn message_accessors() {
        let m = Message::from(add_order());
        assert_eq!(m.msg_type(), b'A');
        assert_eq!(m.message_type(), Some(MessageType::AddOrder));
        assert_eq!(m.buffer_len(), AddOrderRepr::LEN);
        assert_eq!(m.header(), Some(add_order().header));
        assert_eq!(AddOrderRepr::TYPE, MessageType::AddOrder);
        assert_eq!(AddOrder::<&[u8]>::MSG_TYPE, b'A');
        let v = AddOrder::new_checked(&ADD_ORDER[..]).unwrap();
        assert_eq!(v.header(), add_order().header);
        assert_eq!(v.into_inner(), &ADD_ORDER[..]);
    }

    #[test]
    fn views_read_any_bytes() {
        // Whatever the bytes, a checked view's getters return without
        // panicking; the fallible ones say Malformed.
        for fill in [0x00u8, 0x42, 0xff] {
            let buf = [fill; 64];
            for t in MessageType::ALL {
                let n = t.message_len();
                assert_eq!(view_check_len(t, &buf[..n]), Ok(()));
            }
            let v = AddOrder::new_checked(&buf[..]).unwrap();
            let _ = (v.order_ref(), v.side(), v.shares(), v.stock(), v.price());
            let h = Header::new_checked(&buf[..]).unwrap();
            let _ = (h.msg_type(), h.stock_locate(), h.timestamp());
        }
    }

    proptest! {
        #[test]
        fn round_trip_every_type(seeds in any::<[u64; 20]>()) {
            for t in MessageType::ALL {
                let m = message_from_seeds(t, &seeds);
                let mut buf = [0u8; 64];
                let n = m.emit(&mut buf).unwrap();
                prop_assert_eq!(n, m.buffer_len());
                prop_assert_eq!(buf[0], t.byte());
                prop_assert_eq!(Message::parse(&buf[..n]), Ok(m), "{}", t);
            }
        }

        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(m) = Message::parse(&bytes) {
                let mut buf = [0u8; 64];
                match m.emit(&mut buf) {
                    Ok(n) => {
                        prop_assert_eq!(&buf[..n], &bytes[..n]);
                        prop_assert_eq!(Message::parse(&buf[..n]), Ok(m));
                    }
                    Err(e) => {
                        prop_assert_eq!(e, Error::Malformed);
                        prop_assert!(matches!(m, Message::Unknown { .. }), "only unknowns fail to emit");
                    }
                }
            }
        }
    }
}
