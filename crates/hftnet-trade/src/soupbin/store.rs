//! The sequenced streams a SoupBinTCP server keeps: one per session name,
//! every message from sequence number 1, so any login can replay from any
//! point. Bounded: a stream's storage is reserved when it is opened
//! ([`StoreConfig`]) and a message that would exceed it is refused with
//! [`StoreError::Full`]; appending never allocates.

use core::fmt;

use hftnet_wire::soupbintcp::{MAX_PAYLOAD_LEN, Session, Username};

/// The most bytes [`StoreConfig::max_bytes`] may reserve per stream: 4 GiB.
pub const MAX_STREAM_BYTES: usize = 1 << 32;
/// The most messages [`StoreConfig::max_messages`] may index per stream:
/// 2^28 (2 GiB of index).
pub const MAX_STREAM_MESSAGES: usize = 1 << 28;

/// How much one stream may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// Bytes of message payload a stream keeps, reserved (as virtual
    /// memory; pages are committed as they are written) when it is opened.
    /// At least 1, at most [`MAX_STREAM_BYTES`]. Default 64 MiB.
    pub max_bytes: usize,
    /// Messages a stream keeps (8 bytes of index each, reserved when it is
    /// opened). At least 1, at most [`MAX_STREAM_MESSAGES`]. Default
    /// 1,048,576.
    pub max_messages: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_bytes: 64 << 20,
            max_messages: 1 << 20,
        }
    }
}

impl StoreConfig {
    /// Checks both bounds.
    ///
    /// # Errors
    /// [`StoreError::Config`] naming the field out of range.
    pub fn validate(&self) -> Result<(), StoreError> {
        if !(1..=MAX_STREAM_BYTES).contains(&self.max_bytes) {
            return Err(StoreError::Config {
                field: "max_bytes",
                why: "must be between 1 and 4 GiB (MAX_STREAM_BYTES)",
            });
        }
        if !(1..=MAX_STREAM_MESSAGES).contains(&self.max_messages) {
            return Err(StoreError::Config {
                field: "max_messages",
                why: "must be between 1 and 268435456 (MAX_STREAM_MESSAGES)",
            });
        }
        Ok(())
    }
}

/// Identifies a stream of a [`Streams`]; stable for its lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub(crate) usize);

/// Why a stream operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// A [`StoreConfig`] field is out of range.
    Config {
        /// The field.
        field: &'static str,
        /// What is allowed.
        why: &'static str,
    },
    /// The stream has no room for the message: `max_bytes` or
    /// `max_messages` would be exceeded. Nothing was appended. End the
    /// session ([`Streams::end`]) and open a new one, or configure a larger
    /// store.
    Full {
        /// The stream's session name.
        session: Session,
        /// Messages it holds.
        messages: u64,
        /// Payload bytes it holds.
        bytes: usize,
        /// The configured bounds.
        config: StoreConfig,
    },
    /// A message longer than a SoupBinTCP packet can carry
    /// ([`MAX_PAYLOAD_LEN`] bytes).
    TooLong(usize),
    /// The stream was ended; it takes no more messages.
    Ended(Session),
    /// A stream of that name (and owner) exists already.
    Duplicate(Session),
    /// The session name is blank (blank means "the current session" in a
    /// Login Request, so it cannot name a stream).
    BlankName,
    /// No such stream.
    Unknown,
    /// The memory for a new stream could not be reserved.
    NoMemory {
        /// The stream's session name.
        session: Session,
        /// Bytes asked for (payload and index).
        bytes: usize,
    },
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config { field, why } => write!(f, "soupbin store {field}: {why}"),
            Self::Full {
                session,
                messages,
                bytes,
                config,
            } => write!(
                f,
                "soupbin stream {session} is full ({messages} messages, {bytes} bytes; limits \
                 {} messages, {} bytes): end the session and open a new one, or raise \
                 max_messages / max_bytes",
                config.max_messages, config.max_bytes
            ),
            Self::TooLong(n) => write!(
                f,
                "message of {n} bytes exceeds SoupBinTCP's {MAX_PAYLOAD_LEN}-byte payload"
            ),
            Self::Ended(s) => write!(f, "soupbin stream {s} has ended"),
            Self::Duplicate(s) => write!(f, "soupbin stream {s} exists already"),
            Self::BlankName => f.write_str("a soupbin stream needs a non-blank session name"),
            Self::Unknown => f.write_str("no such soupbin stream"),
            Self::NoMemory { session, bytes } => write!(
                f,
                "cannot reserve {bytes} bytes for soupbin stream {session}: lower max_bytes / \
                 max_messages"
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// One session: its name, the user it belongs to (or `None`: any
/// authorised user), and its sequenced messages from sequence number 1.
#[derive(Debug)]
pub struct Stream {
    session: Session,
    owner: Option<Username>,
    data: Vec<u8>,
    /// `ends[i]`: end offset in `data` of message `i + 1`.
    ends: Vec<usize>,
    config: StoreConfig,
    ended: bool,
}

impl Stream {
    fn new(
        session: Session,
        owner: Option<Username>,
        config: StoreConfig,
    ) -> Result<Self, StoreError> {
        let mut data = Vec::new();
        let mut ends = Vec::new();
        let refused = StoreError::NoMemory {
            session,
            bytes: config.max_bytes + config.max_messages * size_of::<usize>(),
        };
        data.try_reserve_exact(config.max_bytes)
            .map_err(|_| refused)?;
        ends.try_reserve_exact(config.max_messages)
            .map_err(|_| refused)?;
        Ok(Self {
            session,
            owner,
            data,
            ends,
            config,
            ended: false,
        })
    }

    /// The session name.
    #[must_use]
    pub const fn session(&self) -> Session {
        self.session
    }

    /// The user the stream belongs to; `None` for a stream every
    /// authorised user may log into.
    #[must_use]
    pub const fn owner(&self) -> Option<Username> {
        self.owner
    }

    /// Messages held; the last one's sequence number.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.ends.len() as u64
    }

    /// Whether no message was published yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The sequence number the next message will get.
    #[must_use]
    pub fn next_sequence(&self) -> u64 {
        self.len() + 1
    }

    /// Payload bytes held.
    #[must_use]
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Whether the session has ended.
    #[must_use]
    pub const fn is_ended(&self) -> bool {
        self.ended
    }

    /// The message numbered `sequence` (1-based), if held.
    #[must_use]
    pub fn get(&self, sequence: u64) -> Option<&[u8]> {
        let i = usize::try_from(sequence.checked_sub(1)?).ok()?;
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start..end)
    }

    fn push(&mut self, msg: &[u8]) -> Result<u64, StoreError> {
        if self.ended {
            return Err(StoreError::Ended(self.session));
        }
        if msg.len() > MAX_PAYLOAD_LEN {
            return Err(StoreError::TooLong(msg.len()));
        }
        if self.ends.len() >= self.config.max_messages
            || msg.len() > self.config.max_bytes - self.data.len()
        {
            return Err(StoreError::Full {
                session: self.session,
                messages: self.len(),
                bytes: self.data.len(),
                config: self.config,
            });
        }
        // Within the capacity reserved in `new`: no reallocation.
        self.data.extend_from_slice(msg);
        self.ends.push(self.data.len());
        Ok(self.len())
    }
}

/// The streams of a server, by session name (and owner).
///
/// Which stream a login gets ([`Streams::resolve`]): among the streams the
/// user may read (its own, and those without an owner), the one named in
/// the request, or with a blank request the most recently opened one that
/// has not ended. Several connections may read one stream at once, each at
/// its own position.
#[derive(Debug)]
pub struct Streams {
    streams: Vec<Stream>,
    config: StoreConfig,
}

impl Streams {
    /// No stream yet; each stream opened reserves `config`'s bounds.
    ///
    /// # Errors
    /// [`StoreError::Config`] for bounds out of range.
    pub fn new(config: StoreConfig) -> Result<Self, StoreError> {
        config.validate()?;
        Ok(Self {
            streams: Vec::new(),
            config,
        })
    }

    /// Opens a stream named `session`, for `owner` only or (with `None`)
    /// for every authorised user. Allocates its storage.
    ///
    /// # Errors
    /// [`StoreError::NoMemory`] when its storage cannot be reserved;
    /// [`StoreError::BlankName`]; [`StoreError::Duplicate`] when a stream of
    /// that name and owner exists, ended or not (a session name is used
    /// once, so a sequence number always means the same message).
    pub fn open(
        &mut self,
        session: Session,
        owner: Option<Username>,
    ) -> Result<StreamId, StoreError> {
        if session.trimmed().is_empty() {
            return Err(StoreError::BlankName);
        }
        if self
            .streams
            .iter()
            .any(|s| s.session == session && same_owner(s.owner, owner))
        {
            return Err(StoreError::Duplicate(session));
        }
        self.streams.push(Stream::new(session, owner, self.config)?);
        Ok(StreamId(self.streams.len() - 1))
    }

    /// Appends one sequenced message; returns its sequence number. The
    /// connections logged into the stream send it at their next
    /// `poll_transmit`.
    ///
    /// # Errors
    /// [`StoreError::Full`], [`StoreError::TooLong`], [`StoreError::Ended`],
    /// [`StoreError::Unknown`]. Nothing is appended on error.
    pub fn publish(&mut self, id: StreamId, msg: &[u8]) -> Result<u64, StoreError> {
        self.streams
            .get_mut(id.0)
            .ok_or(StoreError::Unknown)?
            .push(msg)
    }

    /// Ends the session: no more messages; every connection reading it
    /// sends what is left, then End of Session, then closes. Logins to it
    /// are refused with reason `S` from now on.
    ///
    /// # Errors
    /// [`StoreError::Unknown`].
    pub fn end(&mut self, id: StreamId) -> Result<(), StoreError> {
        self.streams.get_mut(id.0).ok_or(StoreError::Unknown)?.ended = true;
        Ok(())
    }

    /// A stream.
    #[must_use]
    pub fn get(&self, id: StreamId) -> Option<&Stream> {
        self.streams.get(id.0)
    }

    /// Every stream with its id, in the order opened.
    pub fn iter(&self) -> impl Iterator<Item = (StreamId, &Stream)> {
        self.streams
            .iter()
            .enumerate()
            .map(|(i, s)| (StreamId(i), s))
    }

    /// The stream a login of `user` asking for `requested` gets (see the
    /// type's doc); `None` when there is none, or it has ended.
    #[must_use]
    pub fn resolve(&self, user: &Username, requested: &Session) -> Option<StreamId> {
        let readable = |s: &Stream| s.owner.is_none_or(|o| o.matches(user));
        let found = if requested.trimmed().is_empty() {
            self.streams.iter().rposition(|s| readable(s) && !s.ended)
        } else {
            // The user's own stream first, then a shared one.
            self.streams
                .iter()
                .rposition(|s| s.owner.is_some() && readable(s) && s.session == *requested)
                .or_else(|| {
                    self.streams
                        .iter()
                        .rposition(|s| s.owner.is_none() && s.session == *requested)
                })
        }?;
        (!self.streams[found].ended).then_some(StreamId(found))
    }
}

fn same_owner(a: Option<Username>, b: Option<Username>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.matches(&b),
        _ => false,
    }
}
