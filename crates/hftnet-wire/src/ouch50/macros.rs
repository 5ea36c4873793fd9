//! The macros that turn the tables in `types.rs`, `codes.rs`, `options.rs`,
//! `inbound.rs` and `outbound.rs` into code.
//!
//! - `closed_code!`: a one-byte code of a closed set (an enum; an unknown
//!   byte is [`Error::InvalidField`](super::Error::InvalidField) naming the
//!   field).
//! - `open_code!`: a code of a set Nasdaq extends (an enum with
//!   `Unknown(code)`, so every code reads and writes back unchanged).
//! - `ouch_messages!`: one message table per direction, as in
//!   `itch50/macros.rs`: for each entry
//!
//!   ```text
//!   /// Doc of the message.
//!   ViewName / ReprName = 'T', LEN [+ options], "report_name" {
//!       /// Doc of the field.
//!       getter / setter: FieldType @ OFFSET,
//!   }
//!   ```
//!
//!   a smoltcp-style view, a `Copy` repr and a compile-time check that the
//!   fields run contiguously from byte 1 to `LEN` (to `LEN - 2` when the
//!   message has the optional appendage, whose 2-byte length closes the
//!   fixed part); then the type enum and the message enum of the direction.

/// The type a view's getter returns: `Result` for the closed code sets.
macro_rules! ouch_get_ty {
    (Side) => { Result<Side> };
    (TimeInForce) => { Result<TimeInForce> };
    (Display) => { Result<Display> };
    (Capacity) => { Result<Capacity> };
    (IntermarketSweep) => { Result<IntermarketSweep> };
    (CrossType) => { Result<CrossType> };
    (OrderState) => { Result<OrderState> };
    (EventCode) => { Result<EventCode> };
    (BrokenTradeReason) => { Result<BrokenTradeReason> };
    (RestateReason) => { Result<RestateReason> };
    ($t:ident) => { $t };
}

/// Width of the appendage length field, present when the entry names one.
macro_rules! ouch_app_width {
    ($app:ident) => {
        2
    };
}

/// `true` when the entry names an appendage.
macro_rules! ouch_app_true {
    ($app:ident) => {
        true
    };
}

/// A one-byte code of a closed set. See the module doc.
macro_rules! closed_code {
    (
        $(#[doc = $doc:literal])*
        $name:ident / $field:ident {
            $( $v:ident = $b:literal => $desc:literal ),+ $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum $name {
            $(
                #[doc = concat!("`", stringify!($b), "`: ", $desc, ".")]
                $v = $b,
            )+
        }

        impl $name {
            /// Every value, in the specification's order.
            pub const ALL: &'static [Self] = &[$(Self::$v),+];
            /// The field this code fills, as [`Error::InvalidField`](crate::ouch50::Error::InvalidField) names it.
            pub const FIELD: $crate::ouch50::Field = $crate::ouch50::Field::$field;

            /// The value a byte stands for.
            ///
            /// # Errors
            /// [`Error::InvalidField`](crate::ouch50::Error::InvalidField)
            /// naming this field, for a byte OUCH 5.0 does not define here.
            pub const fn from_byte(b: u8) -> $crate::ouch50::Result<Self> {
                match b {
                    $($b => Ok(Self::$v),)+
                    _ => Err($crate::ouch50::Error::InvalidField { field: Self::FIELD, byte: b }),
                }
            }

            /// The byte on the wire.
            #[must_use]
            pub const fn as_byte(self) -> u8 {
                self as u8
            }

            /// What the value means, as the specification says it.
            #[must_use]
            pub const fn description(self) -> &'static str {
                match self {
                    $(Self::$v => $desc,)+
                }
            }
        }

        impl TryFrom<u8> for $name {
            type Error = $crate::ouch50::Error;
            fn try_from(b: u8) -> $crate::ouch50::Result<Self> {
                Self::from_byte(b)
            }
        }

        impl From<$name> for u8 {
            fn from(v: $name) -> u8 {
                v.as_byte()
            }
        }

        impl $crate::itch50::Wire for $name {
            const LEN: usize = 1;
            type Get = $crate::ouch50::Result<Self>;
            #[inline]
            fn get(b: &[u8]) -> Self::Get {
                Self::from_byte(b[0])
            }
            #[inline]
            fn put(self, b: &mut [u8]) {
                b[0] = self.as_byte();
            }
        }

        impl $crate::ouch50::types::Decode for $name {
            #[inline]
            fn decode(b: &[u8]) -> $crate::ouch50::Result<Self> {
                Self::from_byte(b[0])
            }
        }

        #[cfg(test)]
        impl $crate::itch50::FromSeed for $name {
            #[allow(clippy::cast_possible_truncation)]
            fn from_seed(s: u64) -> Self {
                Self::ALL[(s % Self::ALL.len() as u64) as usize]
            }
        }
    };
}

/// A code of an open set, kept as sent when unknown. See the module doc.
macro_rules! open_code {
    (
        $(#[doc = $doc:literal])*
        $name:ident : $int:ty {
            $( $v:ident = $b:literal => $desc:literal ),+ $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        ///
        /// A code this version of the codec does not know reads as
        /// `Unknown(code)` and writes back unchanged; construct known codes
        /// with their variant (`Unknown` of a known code writes that code,
        /// which reads back as the named variant).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $(
                #[doc = concat!("`", stringify!($b), "`: ", $desc, ".")]
                $v,
            )+
            /// A code the specification does not list.
            Unknown($int),
        }

        impl $name {
            /// Every known code, in the specification's order.
            pub const ALL: &'static [Self] = &[$(Self::$v),+];

            /// The value of a code (never fails: unknown codes are kept).
            #[must_use]
            pub const fn from_code(c: $int) -> Self {
                match c {
                    $($b => Self::$v,)+
                    _ => Self::Unknown(c),
                }
            }

            /// The code on the wire.
            #[must_use]
            pub const fn code(self) -> $int {
                match self {
                    $(Self::$v => $b,)+
                    Self::Unknown(c) => c,
                }
            }

            /// What the code means, as the specification says it
            /// (`"unknown"` for [`Self::Unknown`]).
            #[must_use]
            pub const fn description(self) -> &'static str {
                match self {
                    $(Self::$v => $desc,)+
                    Self::Unknown(_) => "unknown",
                }
            }

            /// Whether the specification lists the code.
            #[must_use]
            pub const fn is_known(self) -> bool {
                !matches!(Self::from_code(self.code()), Self::Unknown(_))
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.description())
            }
        }

        impl From<$int> for $name {
            fn from(c: $int) -> Self {
                Self::from_code(c)
            }
        }

        impl From<$name> for $int {
            fn from(v: $name) -> $int {
                v.code()
            }
        }

        impl $crate::itch50::Wire for $name {
            const LEN: usize = size_of::<$int>();
            type Get = Self;
            #[inline]
            fn get(b: &[u8]) -> Self {
                Self::from_code(<$int as $crate::itch50::Wire>::get(b))
            }
            #[inline]
            fn put(self, b: &mut [u8]) {
                $crate::itch50::Wire::put(self.code(), b);
            }
        }

        impl $crate::ouch50::types::Decode for $name {
            #[inline]
            fn decode(b: &[u8]) -> $crate::ouch50::Result<Self> {
                Ok(<Self as $crate::itch50::Wire>::get(b))
            }
        }

        #[cfg(test)]
        impl $crate::itch50::FromSeed for $name {
            #[allow(clippy::cast_possible_truncation)]
            fn from_seed(s: u64) -> Self {
                Self::from_code(s as $int)
            }
        }
    };
}

/// One message type: its view, its repr and their impls. See the module doc.
macro_rules! ouch_message {
    (
        $Ty:ident, $Msg:ident;
        $(#[doc = $doc:literal])*
        $View:ident / $Repr:ident = $ch:literal, $len:literal $(+ $app:ident)?, $name:literal {
            $(
                $(#[doc = $fdoc:literal])*
                $field:ident / $set:ident : $ty:ident @ $off:literal
            ),* $(,)?
        }
    ) => {
        $(#[doc = $doc])*
        ///
        #[doc = concat!(
            "A read/write view over a buffer: type `", $ch, "`, ", stringify!($len),
            " bytes", $(" plus the optional appendage (", stringify!($app), ")",)?
            ". The parsed form is [`", stringify!($Repr), "`]."
        )]
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $View<T: AsRef<[u8]>> {
            buffer: T,
        }

        const _: () = assert!(
            fields_contiguous(&[$(($off, <$ty as Wire>::LEN)),*], 1, $len $(- ouch_app_width!($app))?),
            concat!("the field table of ", stringify!($View), " is not contiguous up to its length")
        );

        impl<T: AsRef<[u8]>> $View<T> {
            /// Length of the fixed part (the whole message when it has no
            /// appendage), type byte included.
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
            /// [`Error::Truncated`] when a field lies outside the buffer.
            #[inline]
            pub fn new_checked(buffer: T) -> Result<Self> {
                let v = Self::new_unchecked(buffer);
                v.check_len()?;
                Ok(v)
            }

            /// Ensures every field (and the appendage, for the messages that
            /// have one) lies inside the buffer, so no accessor can panic.
            /// Longer buffers are accepted; the type byte is not checked
            /// (that is the repr's `parse`).
            ///
            /// # Errors
            /// [`Error::Truncated`] when the buffer is shorter than the fixed
            /// part, or than the fixed part plus the appendage length it
            /// declares.
            #[inline]
            pub fn check_len(&self) -> Result<()> {
                let b = self.buffer.as_ref();
                let truncated = |need| Error::Truncated {
                    msg_type: b.first().copied().unwrap_or(Self::MSG_TYPE),
                    len: b.len(),
                    need,
                };
                if b.len() < $len {
                    return Err(truncated($len));
                }
                $(
                    let _ = stringify!($app);
                    let need = $len + usize::from(be16(b, $len - 2));
                    if b.len() < need {
                        return Err(truncated(need));
                    }
                )?
                Ok(())
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

            /// Length of the whole message: the fixed part plus the appendage.
            #[must_use]
            #[inline]
            pub fn message_len(&self) -> usize {
                $len $(+ { let _ = stringify!($app); usize::from(self.appendage_len()) })?
            }

            $(
                $(#[doc = $fdoc])*
                #[must_use = "a getter only reads the field"]
                #[inline]
                pub fn $field(&self) -> ouch_get_ty!($ty) {
                    <$ty as Wire>::get(&self.buffer.as_ref()[$off..$off + <$ty as Wire>::LEN])
                }
            )*

            $(
                /// Length of the optional appendage in bytes.
                #[must_use]
                #[inline]
                pub fn appendage_len(&self) -> u16 {
                    let _ = stringify!($app);
                    be16(self.buffer.as_ref(), $len - 2)
                }

                /// The optional appendage as sent (TagValue elements, not
                /// checked; [`Options::parse`] or [`OptionsIter`](crate::ouch50::OptionsIter) read them).
                #[must_use]
                #[inline]
                pub fn appendage(&self) -> &[u8] {
                    &self.buffer.as_ref()[$len..$len + usize::from(self.appendage_len())]
                }

                /// The optional appendage, checked and typed.
                ///
                /// # Errors
                /// As [`Options::parse`].
                #[inline]
                pub fn options(&self) -> Result<Options> {
                    Options::parse(self.appendage())
                }
            )?
        }

        impl<T: AsRef<[u8]> + AsMut<[u8]>> $View<T> {
            /// Writes the message type byte.
            #[inline]
            pub fn set_msg_type(&mut self, v: u8) {
                self.buffer.as_mut()[0] = v;
            }

            $(
                #[doc = concat!("Writes [`", stringify!($View), "::", stringify!($field), "`].")]
                #[inline]
                pub fn $set(&mut self, v: $ty) {
                    v.put(&mut self.buffer.as_mut()[$off..$off + <$ty as Wire>::LEN]);
                }
            )*

            $(
                /// Writes the appendage length and the appendage.
                ///
                /// # Panics
                /// When the buffer is shorter than the fixed part plus the
                /// options (only possible for a view made with `new_unchecked`).
                #[inline]
                pub fn set_options(&mut self, o: &Options) {
                    let _ = stringify!($app);
                    let b = self.buffer.as_mut();
                    let n = o.len();
                    #[allow(clippy::cast_possible_truncation)] // n <= Options::CAPACITY
                    b[$len - 2..$len].copy_from_slice(&(n as u16).to_be_bytes());
                    b[$len..$len + n].copy_from_slice(o.as_bytes());
                }
            )?
        }

        $(#[doc = $doc])*
        ///
        #[doc = concat!(
            "The parsed form of a [`", stringify!($View), "`] (type `", $ch, "`, ",
            stringify!($len), " bytes", $(" plus the ", stringify!($app), " appendage",)? ")."
        )]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $Repr {
            $(
                $(#[doc = $fdoc])*
                pub $field: $ty,
            )*
            $(
                /// The optional appendage (tag-value options).
                pub $app: Options,
            )?
        }

        impl $Repr {
            /// The message type.
            pub const TYPE: $Ty = $Ty::$View;
            /// The message type byte.
            pub const MSG_TYPE: u8 = type_byte($ch);
            /// Length of the fixed part (the whole message when it has no
            /// appendage).
            pub const LEN: usize = $len;

            /// Reads a message from a view. Bytes past the message are
            /// ignored (use [`Self::decode`] for an exact length).
            ///
            /// # Errors
            /// [`Error::Truncated`] when a field lies outside the buffer;
            /// [`Error::WrongType`] when the type byte is not this message's;
            /// [`Error::InvalidField`] when a code field holds a value OUCH
            /// does not define; the errors of [`Options::parse`] for the
            /// appendage.
            #[inline]
            pub fn parse<T: AsRef<[u8]>>(v: &$View<T>) -> Result<Self> {
                v.check_len()?;
                if v.msg_type() != Self::MSG_TYPE {
                    return Err(Error::WrongType { expected: Self::MSG_TYPE, found: v.msg_type() });
                }
                #[allow(unused_variables)]
                let b = v.buffer.as_ref();
                Ok(Self {
                    $( $field: <$ty as Decode>::decode(&b[$off..$off + <$ty as Wire>::LEN])?, )*
                    $( $app: v.options()?, )?
                })
            }

            /// Reads a message that fills `buf` exactly (one SoupBinTCP
            /// payload).
            ///
            /// # Errors
            /// [`Error::Empty`] for an empty buffer; [`Error::Length`] when
            /// `buf` is longer than the message; otherwise as [`Self::parse`].
            #[inline]
            pub fn decode(buf: &[u8]) -> Result<Self> {
                let Some(&t) = buf.first() else {
                    return Err(Error::Empty);
                };
                if t != Self::MSG_TYPE {
                    return Err(Error::WrongType { expected: Self::MSG_TYPE, found: t });
                }
                let v = $View::new_checked(buf)?;
                if buf.len() != v.message_len() {
                    return Err(Error::Length { msg_type: t, len: buf.len(), expected: v.message_len() });
                }
                Self::parse(&v)
            }

            /// Length of the emitted message, appendage included.
            #[must_use]
            pub const fn buffer_len(&self) -> usize {
                $len $(+ self.$app.len())?
            }

            /// Writes the whole message, type byte included, into the view.
            ///
            /// # Panics
            /// When the buffer is shorter than [`Self::buffer_len`] (only
            /// possible for a view made with `new_unchecked`).
            #[inline]
            pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, v: &mut $View<T>) {
                v.set_msg_type(Self::MSG_TYPE);
                $( v.$set(self.$field); )*
                $( v.set_options(&self.$app); )?
            }

            /// Writes the message at the start of `buf`; returns its length.
            ///
            /// # Errors
            /// [`Error::BufferTooSmall`] when `buf` is shorter than
            /// [`Self::buffer_len`] (nothing is written).
            #[inline]
            pub fn encode(&self, buf: &mut [u8]) -> Result<usize> {
                let n = self.buffer_len();
                let len = buf.len();
                let b = buf.get_mut(..n).ok_or(Error::BufferTooSmall { need: n, len })?;
                self.emit(&mut $View::new_unchecked(b));
                Ok(n)
            }
        }

        impl From<$Repr> for $Msg {
            fn from(r: $Repr) -> Self {
                Self::$View(r)
            }
        }

        #[cfg(test)]
        impl $Repr {
            /// A message whose every field is drawn from `seeds` (tests only).
            #[allow(unused_mut, unused_variables)]
            pub(crate) fn from_seeds(seeds: &[u64]) -> Self {
                let mut s = seeds.iter().copied().chain(core::iter::repeat(0));
                let mut next = move || s.next().unwrap_or(0);
                Self {
                    $( $field: <$ty as FromSeed>::from_seed(next()), )*
                    $( $app: <Options as FromSeed>::from_seed(next()), )?
                }
            }
        }
    };
}

/// Every message type of one direction; see the module doc.
macro_rules! ouch_messages {
    (
        $(#[doc = $tdoc:literal])*
        type $Ty:ident;
        $(#[doc = $mdoc:literal])*
        message $Msg:ident;
        $(
            $(#[doc = $doc:literal])*
            $View:ident / $Repr:ident = $ch:literal, $len:literal $(+ $app:ident)?, $name:literal {
                $($fields:tt)*
            }
        )+
    ) => {
        $(
            ouch_message! {
                $Ty, $Msg;
                $(#[doc = $doc])*
                $View / $Repr = $ch, $len $(+ $app)?, $name { $($fields)* }
            }
        )+

        message_type_enum! {
            $(#[doc = $tdoc])*
            ///
            /// [`Self::index`] numbers the types `0..COUNT` for per-type counters
            /// in a plain array.
            $Ty, fixed_len = "Length of the fixed part (the whole message for the types without an appendage).", "enter_order";
            $(
                $(#[doc = $doc])*
                $View = $ch, $len, $name;
            )+
        }

        impl $Ty {
            /// Whether the message ends with the optional appendage.
            #[must_use]
            pub const fn has_appendage(self) -> bool {
                match self {
                    $(Self::$View => false $(|| ouch_app_true!($app))?,)+
                }
            }
        }

        impl ::core::fmt::Display for $Ty {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(self.name())
            }
        }

        $(#[doc = $mdoc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $Msg {
            $(
                $(#[doc = $doc])*
                $View($Repr),
            )+
        }

        impl $Msg {
            /// Reads one message: `buf` is exactly one message as framed
            /// (one SoupBinTCP data packet's payload).
            ///
            /// # Errors
            /// [`Error::Empty`] for an empty buffer; [`Error::UnknownType`]
            /// for a type byte this direction does not define;
            /// [`Error::Truncated`] / [`Error::Length`] when `buf` is shorter
            /// / longer than the message; [`Error::InvalidField`] for a code
            /// field OUCH does not define; the errors of [`Options::parse`]
            /// for the appendage.
            pub fn parse(buf: &[u8]) -> Result<Self> {
                let Some(&t) = buf.first() else {
                    return Err(Error::Empty);
                };
                match t as char {
                    $($ch => $Repr::decode(buf).map(Self::$View),)+
                    _ => Err(Error::UnknownType { msg_type: t }),
                }
            }

            /// Writes the message at the start of `buf`; returns its length.
            ///
            /// # Errors
            /// [`Error::BufferTooSmall`] when `buf` is shorter than
            /// [`Self::buffer_len`] (nothing is written).
            pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
                match self {
                    $(Self::$View(r) => r.encode(buf),)+
                }
            }

            /// Length of the message, appendage included.
            #[must_use]
            pub const fn buffer_len(&self) -> usize {
                match self {
                    $(Self::$View(r) => r.buffer_len(),)+
                }
            }

            /// The message type.
            #[must_use]
            pub const fn message_type(&self) -> $Ty {
                match self {
                    $(Self::$View(_) => $Ty::$View,)+
                }
            }

            /// The type byte.
            #[must_use]
            pub const fn msg_type(&self) -> u8 {
                self.message_type().byte()
            }
        }

        /// Checks a buffer with the view of type `t` (tests only).
        #[cfg(test)]
        pub(crate) fn view_check_len(t: $Ty, b: &[u8]) -> Result<()> {
            match t {
                $($Ty::$View => $View::new_checked(b).map(|_| ()),)+
            }
        }

        /// A message of type `t` drawn from `seeds` (tests only).
        #[cfg(test)]
        pub(crate) fn message_from_seeds(t: $Ty, seeds: &[u64]) -> $Msg {
            match t {
                $($Ty::$View => $Msg::$View($Repr::from_seeds(seeds)),)+
            }
        }
    };
}
