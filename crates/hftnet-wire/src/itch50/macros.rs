//! The macro that turns the message table in `messages.rs` into code.
//!
//! One table entry per message type:
//!
//! ```text
//! /// Doc of the message.
//! ViewName / ReprName = 'T', LEN, "report_name" {
//!     /// Doc of the field.
//!     getter / setter: FieldType @ OFFSET,
//!     ...
//! }
//! ```
//!
//! and for each entry `itch_message!` generates:
//! - `ViewName<T: AsRef<[u8]>>`, the smoltcp-style view: `new_unchecked`,
//!   `new_checked`, `check_len`, `into_inner`, the header getters, one getter
//!   per field, and the setters where `T: AsMut<[u8]>`;
//! - `ReprName`, the parsed `Copy` struct: `parse`, `emit`, `to_bytes`,
//!   `buffer_len`, and `From<ReprName> for Message`;
//! - a compile-time check that the fields are contiguous from the end of the
//!   header to exactly `LEN` (a wrong offset in the table does not build).
//!
//! `itch_messages!` does this for every entry and then generates the list of
//! types, `MessageType`, and the enum over all reprs, `Message`.
//!
//! Field types are single identifiers. Those whose byte may lie outside the
//! set ITCH defines (`Side`, `EventCode`) have getters that return `Result`;
//! see `get_ty!` and `get_val!`.

/// The type a view's getter returns for a field type.
macro_rules! get_ty {
    (Side) => { $crate::Result<$crate::itch50::Side> };
    (EventCode) => { $crate::Result<$crate::itch50::EventCode> };
    ($t:ident) => { $t };
}

/// A view getter's value as the field type, propagating `Malformed` for the
/// fallible ones (used by `Repr::parse`).
macro_rules! get_val {
    (Side, $e:expr) => {
        $e?
    };
    (EventCode, $e:expr) => {
        $e?
    };
    ($t:ident, $e:expr) => {
        $e
    };
}

/// One message type: its view, its repr and their impls. See the module doc.
macro_rules! itch_message {
    (
        $(#[doc = $doc:literal])*
        $View:ident / $Repr:ident = $ch:literal, $len:literal, $name:literal {
            $(
                $(#[doc = $fdoc:literal])*
                $field:ident / $set:ident : $ty:ident @ $off:literal
            ),+ $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        ///
        #[doc = concat!(
            "A read/write view over a buffer: type `", $ch, "`, ", stringify!($len),
            " bytes. The parsed form is [`", stringify!($Repr), "`]."
        )]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $View<T: AsRef<[u8]>> {
            buffer: T,
        }

        const _: () = assert!(
            fields_contiguous(&[$(($off, <$ty as Wire>::LEN)),+], HEADER_LEN, $len),
            concat!("the field table of ", stringify!($View), " is not contiguous up to its length")
        );

        impl<T: AsRef<[u8]>> $View<T> {
            /// Length of the message as defined by ITCH 5.0.
            pub const LEN: usize = $len;
            /// The message type byte.
            pub const MSG_TYPE: u8 = type_byte($ch);

            /// Wraps a buffer without checks.
            #[inline]
            pub const fn new_unchecked(buffer: T) -> Self {
                Self { buffer }
            }

            #[doc = concat!("Wraps a buffer after [`", stringify!($View), "::check_len`].")]
            ///
            /// # Errors
            #[doc = concat!("[`Error::Truncated`] when shorter than ", stringify!($len), " bytes.")]
            #[inline]
            pub fn new_checked(buffer: T) -> Result<Self> {
                let v = Self::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }

            /// Ensures every field lies inside the buffer, so no accessor can
            /// panic. Longer buffers are accepted; the type byte is not
            /// checked (that is the repr's `parse`).
            ///
            /// # Errors
            #[doc = concat!("[`Error::Truncated`] when shorter than ", stringify!($len), " bytes.")]
            #[inline]
            pub fn check_len(&self) -> Result<()> {
                if self.buffer.as_ref().len() < $len {
                    Err(Error::Truncated)
                } else {
                    Ok(())
                }
            }

            /// The buffer back.
            pub fn into_inner(self) -> T {
                self.buffer
            }

            #[doc = concat!("The message type byte (`", $ch, "` for this message).")]
            #[must_use]
            #[inline]
            pub fn msg_type(&self) -> u8 {
                self.buffer.as_ref()[0]
            }

            /// The stock locate code (0 for messages about no instrument).
            #[must_use]
            #[inline]
            pub fn stock_locate(&self) -> u16 {
                Header::new_unchecked(self.buffer.as_ref()).stock_locate()
            }

            /// Nasdaq's internal tracking number.
            #[must_use]
            #[inline]
            pub fn tracking_number(&self) -> u16 {
                Header::new_unchecked(self.buffer.as_ref()).tracking_number()
            }

            /// Nanoseconds since midnight.
            #[must_use]
            #[inline]
            pub fn timestamp(&self) -> Timestamp {
                Header::new_unchecked(self.buffer.as_ref()).timestamp()
            }

            /// The common header fields.
            #[must_use]
            #[inline]
            pub fn header(&self) -> HeaderRepr {
                HeaderRepr {
                    stock_locate: self.stock_locate(),
                    tracking_number: self.tracking_number(),
                    timestamp: self.timestamp(),
                }
            }

            $(
                $(#[doc = $fdoc])*
                #[must_use = "a getter only reads the field"]
                #[inline]
                pub fn $field(&self) -> get_ty!($ty) {
                    <$ty as Wire>::get(&self.buffer.as_ref()[$off..$off + <$ty as Wire>::LEN])
                }
            )+
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $View<T> {
            /// Writes the message type byte.
            #[inline]
            pub fn set_msg_type(&mut self, v: u8) {
                self.buffer.as_mut()[0] = v;
            }

            /// Writes the stock locate code.
            #[inline]
            pub fn set_stock_locate(&mut self, v: u16) {
                Header::new_unchecked(self.buffer.as_mut()).set_stock_locate(v);
            }

            /// Writes the tracking number.
            #[inline]
            pub fn set_tracking_number(&mut self, v: u16) {
                Header::new_unchecked(self.buffer.as_mut()).set_tracking_number(v);
            }

            /// Writes the timestamp.
            #[inline]
            pub fn set_timestamp(&mut self, v: Timestamp) {
                Header::new_unchecked(self.buffer.as_mut()).set_timestamp(v);
            }

            $(
                #[doc = concat!("Writes [`", stringify!($View), "::", stringify!($field), "`].")]
                #[inline]
                pub fn $set(&mut self, v: $ty) {
                    v.put(&mut self.buffer.as_mut()[$off..$off + <$ty as Wire>::LEN]);
                }
            )+
        }

        $(#[doc = $doc])*
        ///
        #[doc = concat!(
            "The parsed form of a [`", stringify!($View), "`] (type `", $ch, "`, ",
            stringify!($len), " bytes): the common header fields and the typed body."
        )]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $Repr {
            /// The common header fields.
            pub header: HeaderRepr,
            $(
                $(#[doc = $fdoc])*
                pub $field: $ty,
            )+
        }

        impl $Repr {
            /// The message type.
            pub const TYPE: MessageType = MessageType::$View;
            /// The message type byte.
            pub const MSG_TYPE: u8 = type_byte($ch);
            /// Length of the message as defined by ITCH 5.0.
            pub const LEN: usize = $len;

            /// Reads a message. Bytes past the defined length are ignored.
            ///
            /// # Errors
            #[doc = concat!(
                "[`Error::Truncated`] when shorter than ", stringify!($len),
                " bytes; [`Error::Malformed`] when the type byte is not `", $ch,
                "` or a field holds a value ITCH does not define."
            )]
            pub fn parse<T: AsRef<[u8]>>(v: &$View<T>) -> Result<Self> {
                v.check_len()?;
                if v.msg_type() != Self::MSG_TYPE {
                    return Err(Error::Malformed);
                }
                Ok(Self {
                    header: v.header(),
                    $( $field: get_val!($ty, v.$field()), )+
                })
            }

            /// Length of the emitted message.
            #[must_use]
            pub const fn buffer_len(&self) -> usize {
                $len
            }

            /// Writes the whole message, type byte included, into the view.
            ///
            /// # Panics
            #[doc = concat!(
                "When the buffer is shorter than ", stringify!($len),
                " bytes (only possible for a view made with `new_unchecked`)."
            )]
            pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, v: &mut $View<T>) {
                v.set_msg_type(Self::MSG_TYPE);
                v.set_stock_locate(self.header.stock_locate);
                v.set_tracking_number(self.header.tracking_number);
                v.set_timestamp(self.header.timestamp);
                $( v.$set(self.$field); )+
            }

            /// The message as bytes.
            #[must_use]
            pub fn to_bytes(&self) -> [u8; $len] {
                let mut b = [0u8; $len];
                self.emit(&mut $View::new_unchecked(&mut b[..]));
                b
            }
        }

        impl From<$Repr> for Message {
            fn from(r: $Repr) -> Self {
                Self::$View(r)
            }
        }

        impl $crate::itch50::ItchRepr for $Repr {
            const LEN: usize = $len;

            #[inline]
            fn emit_bytes(&self, buf: &mut [u8]) -> Option<usize> {
                let b = buf.get_mut(..$len)?;
                self.emit(&mut $View::new_unchecked(b));
                Some($len)
            }
        }

        #[cfg(test)]
        impl $Repr {
            /// A message whose every field is drawn from `seeds` (tests only).
            pub(super) fn from_seeds(seeds: &[u64]) -> Self {
                let mut s = seeds.iter().copied().chain(core::iter::repeat(0));
                let mut next = move || s.next().unwrap_or(0);
                Self {
                    header: HeaderRepr {
                        stock_locate: next() as u16,
                        tracking_number: next() as u16,
                        timestamp: FromSeed::from_seed(next()),
                    },
                    $( $field: <$ty as FromSeed>::from_seed(next()), )+
                }
            }
        }
    };
}

/// Every message type; see the module doc.
macro_rules! itch_messages {
    ($(
        $(#[doc = $doc:literal])*
        $View:ident / $Repr:ident = $ch:literal, $len:literal, $name:literal {
            $($fields:tt)+
        }
    )+) => {
        $(
            itch_message! {
                $(#[doc = $doc])*
                $View / $Repr = $ch, $len, $name { $($fields)+ }
            }
        )+

        message_type_enum! {
            /// Every message type ITCH 5.0 defines, in the order of the
            /// specification; [`MessageType::index`] numbers them `0..COUNT` for
            /// per-type counters in a plain array.
            MessageType, message_len = "Length of the message as defined by ITCH 5.0.", "add_order";
            $(
                $(#[doc = $doc])*
                $View = $ch, $len, $name;
            )+
        }

        impl MessageType {
            /// The type with this [`MessageType::index`].
            #[must_use]
            pub const fn from_index(i: usize) -> Option<Self> {
                if i < Self::COUNT { Some(Self::ALL[i]) } else { None }
            }
        }

        /// One ITCH 5.0 message, parsed; see the module documentation for the
        /// rules on unknown types and extra bytes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Message {
            $(
                $(#[doc = $doc])*
                $View($Repr),
            )+
            /// A type byte ITCH 5.0 does not define: skip the message by its
            /// length (which comes from the framing) and count it.
            Unknown {
                /// The type byte.
                msg_type: u8,
                /// Length of the message as framed.
                len: usize,
            },
        }

        impl Message {
            /// Reads one message: `buf` is exactly one message as framed
            /// (MoldUDP64 block, SoupBinTCP packet, file record).
            ///
            /// A known type longer than its defined length parses, and the
            /// extra bytes are ignored. An unknown type byte gives
            /// [`Message::Unknown`], not an error.
            ///
            /// # Errors
            /// [`Error::Truncated`] when `buf` is empty or shorter than its
            /// type's length; [`Error::Malformed`] when a field holds a value
            /// ITCH does not define (a side other than `B`/`S`, an unknown
            /// system event code).
            pub fn parse(buf: &[u8]) -> Result<Self> {
                let Some(&t) = buf.first() else {
                    return Err(Error::Truncated);
                };
                match t as char {
                    $($ch => $Repr::parse(&$View::new_unchecked(buf)).map(Self::$View),)+
                    _ => Ok(Self::Unknown { msg_type: t, len: buf.len() }),
                }
            }

            /// Writes the message at the start of `buf`; returns its length.
            ///
            /// # Errors
            /// [`Error::Truncated`] when `buf` is shorter than
            /// [`Message::buffer_len`] (nothing is written);
            /// [`Error::Malformed`] for [`Message::Unknown`], whose bytes
            /// were not kept.
            pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
                match self {
                    $(
                        Self::$View(r) => {
                            let b = buf.get_mut(..$len).ok_or(Error::Truncated)?;
                            r.emit(&mut $View::new_unchecked(b));
                            Ok($len)
                        }
                    )+
                    Self::Unknown { .. } => Err(Error::Malformed),
                }
            }

            /// Length of the message: the defined length of its type, or the
            /// framed length of an unknown one.
            #[must_use]
            pub const fn buffer_len(&self) -> usize {
                match self {
                    $(Self::$View(_) => $len,)+
                    Self::Unknown { len, .. } => *len,
                }
            }

            /// The type byte.
            #[must_use]
            pub const fn msg_type(&self) -> u8 {
                match self {
                    $(Self::$View(_) => type_byte($ch),)+
                    Self::Unknown { msg_type, .. } => *msg_type,
                }
            }

            /// The message type; `None` for [`Message::Unknown`].
            #[must_use]
            pub const fn message_type(&self) -> Option<MessageType> {
                match self {
                    $(Self::$View(_) => Some(MessageType::$View),)+
                    Self::Unknown { .. } => None,
                }
            }

            /// The common header fields; `None` for [`Message::Unknown`]
            /// (read them with [`Header`] when the message is long enough).
            #[must_use]
            pub const fn header(&self) -> Option<HeaderRepr> {
                match self {
                    $(Self::$View(r) => Some(r.header),)+
                    Self::Unknown { .. } => None,
                }
            }
        }

        /// Checks a buffer with the view of type `t` (tests only).
        #[cfg(test)]
        fn view_check_len(t: MessageType, b: &[u8]) -> Result<()> {
            match t {
                $(MessageType::$View => $View::new_checked(b).map(|_| ()),)+
            }
        }

        /// A message of type `t` drawn from `seeds` (tests only).
        #[cfg(test)]
        fn message_from_seeds(t: MessageType, seeds: &[u64]) -> Message {
            match t {
                $(MessageType::$View => Message::$View($Repr::from_seeds(seeds)),)+
            }
        }
    };
}
