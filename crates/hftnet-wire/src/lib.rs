//! Sans-IO wire codecs for hftnet.
//!
//! Every codec follows one pattern: a private `field` module of byte ranges; a
//! view `Packet<T: AsRef<[u8]>>` over a buffer, built with `new_checked` (which
//! calls `check_len`), with getters where `T: AsRef<[u8]>` and setters where
//! `T: AsMut<[u8]>`; and a plain `Repr` with `parse`, `emit` and `header_len`.
//!
//! The contract: once `new_checked` (or `check_len`) returned `Ok`, no accessor
//! panics, whatever the bytes are. Codecs never allocate, never do I/O and
//! contain no `unsafe`; errors are the small `Copy` [`Error`].
//!
//! [`sockperf`] is the one header not of our own or an exchange's making:
//! sockperf's, so that our ping and pong interoperate with it.
//!
//! Beside the codecs, [`rng`] is the seeded generator every simulation draws
//! from (a seed gives the same stream on every machine), and [`faults`] the
//! one fault engine (loss, duplication, reordering, delay, jitter) that the
//! exchange simulator and the transports' fault middleware share.
//!
//! The one exception to "never allocate": a [`faults::FaultInjector`]
//! allocates the buffers it holds delayed and reordered packets in, once,
//! when it is built; offering, polling and flushing never allocate.

#![forbid(unsafe_code)]

/// The message-type enum of a message table (ITCH 5.0's, and OUCH 5.0's
/// per direction): one variant per message in the table's order, with
/// `COUNT`, `ALL`, `from_byte`, `byte`, `name`, `index` (dense, for
/// per-type counters in a plain array) and the length method the caller
/// names (`$len_fn`: ITCH's whole message, OUCH's fixed part). One place
/// for what both tables generate; each protocol's macro adds its own
/// extras.
macro_rules! message_type_enum {
    (
        $(#[doc = $tdoc:literal])*
        $Ty:ident, $len_fn:ident = $len_doc:literal, $example:literal;
        $(
            $(#[doc = $doc:literal])*
            $View:ident = $ch:literal, $len:literal, $name:literal;
        )+
    ) => {
        $(#[doc = $tdoc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $Ty {
            $(
                #[doc = concat!("`", $ch, "`, ", stringify!($len), " bytes, \"", $name, "\":")]
                $(#[doc = $doc])*
                $View,
            )+
        }

        impl $Ty {
            /// How many message types there are.
            pub const COUNT: usize = [$($name),+].len();
            /// Every type, in [`Self::index`] order.
            pub const ALL: [Self; Self::COUNT] = [$(Self::$View),+];

            /// The type a type byte stands for; `None` for a byte the
            /// table does not define.
            #[must_use]
            #[inline]
            pub const fn from_byte(b: u8) -> Option<Self> {
                match b as char {
                    $($ch => Some(Self::$View),)+
                    _ => None,
                }
            }

            /// The type byte.
            #[must_use]
            pub const fn byte(self) -> u8 {
                match self {
                    $(Self::$View => $crate::type_byte($ch),)+
                }
            }

            #[doc = concat!("A short snake_case name for reports, e.g. `\"", $example, "\"`.")]
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $(Self::$View => $name,)+
                }
            }

            #[doc = $len_doc]
            #[must_use]
            pub const fn $len_fn(self) -> usize {
                match self {
                    $(Self::$View => $len,)+
                }
            }

            /// A dense index `0..COUNT`, for per-type counters.
            #[must_use]
            #[inline]
            pub const fn index(self) -> usize {
                self as usize
            }
        }
    };
}

pub mod arp;
pub mod checksum;
pub mod ethernet;
pub mod faults;
pub mod ipv4;
pub mod itch50;
pub mod md;
pub mod moldudp64;
pub mod ouch50;
pub mod probe;
pub mod rng;
pub mod sockperf;
pub mod soupbintcp;
pub mod udp;

use core::fmt;

/// Why bytes could not be read as a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than the header, or than the length the header claims.
    Truncated,
    /// A field holds a value the format does not allow (bad magic, version).
    Malformed,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => f.write_str("truncated packet"),
            Self::Malformed => f.write_str("malformed packet"),
        }
    }
}

impl std::error::Error for Error {}

/// Result of a codec operation.
pub type Result<T> = core::result::Result<T, Error>;

/// The type byte of a message type letter (every letter in the message
/// tables of [`itch50`] and [`ouch50`] is ASCII).
pub(crate) const fn type_byte(c: char) -> u8 {
    assert!(c.is_ascii());
    c as u8
}

/// True when `fields` (offset, length) run contiguously from `start` to
/// exactly `end`: the compile-time check of the message tables.
pub(crate) const fn fields_contiguous(fields: &[(usize, usize)], start: usize, end: usize) -> bool {
    let mut at = start;
    let mut i = 0;
    while i < fields.len() {
        if fields[i].0 != at {
            return false;
        }
        at += fields[i].1;
        i += 1;
    }
    at == end
}
