//! The code sets of the appendices, which Nasdaq extends over time: order
//! cancel reasons (Appendix C), order reject reasons (Appendix D) and
//! liquidity flags (Appendix E). Each is an enum with every code of the
//! specification, its description, and `Unknown(code)` for the others, so a
//! message with a new code stays readable and writes back unchanged.

open_code! {
    /// Why an order was reduced or canceled (Order Canceled `C`, AIQ
    /// Canceled `D`; Appendix C).
    CancelReason: u8 {
        RegulatoryRestriction = b'D' => "this order cannot be executed because of a regulatory restriction (e.g. trade through restrictions)",
        Closed = b'E' => "closed: a DAY order received after the closing cross in its symbol",
        PostOnlyNms = b'F' => "post only cancel: the order would have been price slid for NMS",
        PostOnlyContraDisplayed = b'G' => "post only cancel: the order would have been price slid due to a contra side displayed order on the book",
        Halted = b'H' => "halted: the on-open order was canceled because the symbol remained halted after the opening cross",
        ImmediateOrCancel = b'I' => "immediate or cancel order",
        MarketCollars = b'K' => "this order cannot be executed because of market collars",
        SelfMatchPrevention = b'Q' => "self match prevention: the order would have executed with an existing order of the same MPID",
        Supervisory = b'S' => "supervisory: canceled or reduced by a Nasdaq supervisory terminal",
        Timeout = b'T' => "timeout: the time in force of this order has expired",
        UserRequested = b'U' => "user requested cancel, in response to a Cancel Order request",
        OpenProtection = b'X' => "open protection: canceled by the Opening Price Protection Threshold",
        SystemCancel = b'Z' => "system cancel: canceled by the system",
        DirectListingExceeded = b'e' => "Company Direct Listing Capital Raise order exceeds allowable shares offered",
    }
}

open_code! {
    /// Why an Enter or Replace Order was rejected (Rejected `J`;
    /// Appendix D). Two bytes on the wire.
    RejectReason: u16 {
        QuoteUnavailable = 0x0001 => "quote unavailable",
        DestinationClosed = 0x0002 => "destination closed",
        InvalidDisplay = 0x0003 => "invalid display",
        InvalidMaxFloor = 0x0004 => "invalid max floor",
        InvalidPegType = 0x0005 => "invalid peg type",
        FatFinger = 0x0006 => "fat finger",
        Halted = 0x0007 => "halted",
        IsoNotAllowed = 0x0008 => "ISO not allowed",
        InvalidSide = 0x0009 => "invalid side",
        ProcessingError = 0x000A => "processing error",
        CancelPending = 0x000B => "cancel pending",
        FirmNotAuthorized = 0x000C => "firm not authorized",
        InvalidMinQuantity = 0x000D => "invalid min quantity",
        NoClosingReferencePrice = 0x000E => "no closing reference price",
        Other = 0x000F => "other",
        CancelNotAllowed = 0x0010 => "cancel not allowed",
        PeggingNotAllowed = 0x0011 => "pegging not allowed",
        CrossedMarket = 0x0012 => "crossed market",
        InvalidQuantity = 0x0013 => "invalid quantity",
        InvalidCrossOrder = 0x0014 => "invalid cross order",
        ReplaceNotAllowed = 0x0015 => "replace not allowed",
        RoutingNotAllowed = 0x0016 => "routing not allowed",
        InvalidSymbol = 0x0017 => "invalid symbol",
        Test = 0x0018 => "test",
        LateLocTooAggressive = 0x0019 => "late LOC too aggressive",
        RetailNotAllowed = 0x001A => "retail not allowed",
        InvalidMidpointPostOnlyPrice = 0x001B => "invalid midpoint post only price",
        InvalidDestination = 0x001C => "invalid destination",
        InvalidPrice = 0x001D => "invalid price",
        SharesExceedThreshold = 0x001E => "shares exceed threshold",
        ExceedsMaxNotional = 0x001F => "exceeds maximum allowed notional value",
        RiskAggregateExposure = 0x0020 => "risk: aggregate exposure exceeded",
        RiskMarketImpact = 0x0021 => "risk: market impact",
        RiskRestrictedStock = 0x0022 => "risk: restricted stock",
        RiskShortSellRestricted = 0x0023 => "risk: short sell restricted",
        RiskOrderTypeRestricted = 0x0024 => "risk: order type restricted",
        RiskExceedsAdvLimit = 0x0025 => "risk: exceeds ADV limit",
        RiskFatFinger = 0x0026 => "risk: fat finger",
        RiskLocateRequired = 0x0027 => "risk: locate required",
        RiskSymbolMessageRate = 0x0028 => "risk: symbol message rate restriction",
        RiskPortMessageRate = 0x0029 => "risk: port message rate restriction",
        RiskDuplicateMessageRate = 0x002A => "risk: duplicate message rate restriction",
    }
}

open_code! {
    /// The liquidity flag of an execution (Order Executed `E`, AIQ Canceled
    /// `D`; Appendix E). The description names the markets the flag is
    /// used on.
    LiquidityFlag: u8 {
        Added = b'A' => "added (all markets)",
        ClosingCross = b'C' => "closing cross (Nasdaq only)",
        RetailAddedDisplayed = b'e' => "retail designated execution that added displayed liquidity (Nasdaq/BX only)",
        HaltIpoCross = b'H' => "halt/IPO cross (Nasdaq only)",
        AfterHoursClosingCross = b'i' => "after hours closing cross (Nasdaq only)",
        NonDisplayedAdded = b'J' => "non-displayed adding liquidity (all markets)",
        RpiProvides = b'j' => "RPI (retail price improving) order provides liquidity (BX only)",
        AddedMidpoint = b'k' => "added liquidity via a midpoint order (all markets)",
        HaltCross = b'K' => "halt cross (Nasdaq only)",
        ClosingCrossImbalanceOnly = b'L' => "closing cross, imbalance-only (Nasdaq only)",
        OpeningCrossImbalanceOnly = b'M' => "opening cross, imbalance-only (Nasdaq only)",
        RemovedMidpoint = b'm' => "removed liquidity at a midpoint (all markets)",
        PassiveMidpoint = b'N' => "passive midpoint execution (Nasdaq/BX only)",
        MidpointExtendedLife = b'n' => "midpoint extended life order execution (Nasdaq only)",
        OpeningCross = b'O' => "opening cross (Nasdaq only)",
        RemovedPriceImprovingNonDisplayed = b'p' => "removed price improving non-displayed liquidity (BX only)",
        RmoRemovesNonRpiMidpoint = b'q' => "RMO retail order removes non-RPI midpoint liquidity (BX only)",
        Removed = b'R' => "removed (all markets)",
        RetailRemovesRpi = b'r' => "retail order removes RPI liquidity (BX only)",
        RetailRemovesPriceImproving = b't' => "retail order removes price improving non-displayed liquidity other than RPI liquidity (BX only)",
        ReserveAddedNonDisplayed = b'u' => "added non-displayed liquidity via a reserve order (all markets)",
        Supplemental = b'0' => "supplemental order execution (Nasdaq only)",
        ImprovesNbbo = b'7' => "displayed, liquidity-adding order improves the NBBO (Nasdaq/BX only)",
        SetsQbboJoinsNbbo = b'8' => "displayed, liquidity-adding order sets the QBBO while joining the NBBO (Nasdaq/BX only)",
        RpiNoRpii = b'1' => "RPI order provides liquidity, no RPII (BX only)",
    }
}

impl LiquidityFlag {
    /// Whether the execution added liquidity (the resting side: `A`, `J`,
    /// `k`, `u`, `e`, `j`, `7`, `8`, `1`, `N`).
    #[must_use]
    pub const fn is_added(self) -> bool {
        matches!(
            self,
            Self::Added
                | Self::NonDisplayedAdded
                | Self::AddedMidpoint
                | Self::ReserveAddedNonDisplayed
                | Self::RetailAddedDisplayed
                | Self::RpiProvides
                | Self::ImprovesNbbo
                | Self::SetsQbboJoinsNbbo
                | Self::RpiNoRpii
                | Self::PassiveMidpoint
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_of_the_appendices() {
        assert_eq!(CancelReason::ALL.len(), 14);
        assert_eq!(RejectReason::ALL.len(), 0x2A);
        assert_eq!(LiquidityFlag::ALL.len(), 25);
        // Appendix D runs 0x0001..=0x002A without a gap.
        for (i, r) in RejectReason::ALL.iter().enumerate() {
            assert_eq!(usize::from(r.code()), i + 1);
            assert!(r.is_known());
        }
        for c in CancelReason::ALL {
            assert_eq!(CancelReason::from_code(c.code()), *c);
        }
        for f in LiquidityFlag::ALL {
            assert_eq!(LiquidityFlag::from_code(f.code()), *f);
        }
    }

    #[test]
    fn descriptions_and_unknowns() {
        assert_eq!(RejectReason::from_code(0x0009).to_string(), "invalid side");
        assert_eq!(RejectReason::from(0x002B), RejectReason::Unknown(0x2B));
        assert!(!RejectReason::Unknown(0x2B).is_known());
        assert_eq!(RejectReason::Unknown(0x2B).description(), "unknown");
        assert_eq!(CancelReason::from_code(b'U'), CancelReason::UserRequested);
        assert_eq!(
            CancelReason::from_code(b'e'),
            CancelReason::DirectListingExceeded
        );
        assert_eq!(CancelReason::from_code(b'E'), CancelReason::Closed);
        assert_eq!(CancelReason::from_code(b'?'), CancelReason::Unknown(b'?'));
        assert_eq!(u8::from(CancelReason::Unknown(b'?')), b'?');
        assert_eq!(
            LiquidityFlag::from_code(b'm'),
            LiquidityFlag::RemovedMidpoint
        );
        assert_eq!(
            LiquidityFlag::from_code(b'M'),
            LiquidityFlag::OpeningCrossImbalanceOnly
        );
        assert!(LiquidityFlag::Added.is_added());
        assert!(!LiquidityFlag::Removed.is_added());
        // An Unknown holding a known code writes that code.
        assert!(RejectReason::Unknown(0x0009).is_known());
    }
}
