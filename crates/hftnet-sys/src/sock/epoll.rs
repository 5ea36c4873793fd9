//! Waiting for a socket: a one-descriptor epoll instance ([`Epoll`], the
//! "block" half of the adaptive receive strategy) and `ppoll` waits for
//! readability ([`poll_readable`]) or for a report on the error queue
//! ([`poll_errqueue`]).
//!
//! Layer: part of [`sock`](super), used by receive strategies that sleep
//! instead of spinning, and by zero-copy senders waiting for completions.
//!
//! Invariants: an interrupted wait (`EINTR`) is reported as "not ready"
//! (`Ok(false)`), so the caller's loop decides whether to wait again;
//! timeouts are never rounded down to "forever".
//!
//! Must never: wait longer than the timeout given.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Result, cvt};

/// `ppoll(fd, POLLERR, timeout)`: waits until the error queue holds a report
/// (zero-copy completion, timestamp). `EINTR` is `Ok(false)`.
///
/// # Errors
/// Only unexpected kernel failures.
pub fn poll_errqueue(fd: BorrowedFd<'_>, timeout: std::time::Duration) -> Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLERR,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: p is a live pollfd and we pass a count of one; ts is a live
    // timespec; a null signal mask leaves the mask unchanged.
    let ret = unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) };
    match cvt("ppoll(POLLERR)", ret) {
        Ok(n) => Ok(n > 0 && p.revents & libc::POLLERR != 0),
        Err(e) if e.errno() == Some(libc::EINTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `ppoll(fd, POLLIN, timeout)`: waits until `fd` is readable (or, for a
/// listening socket, has a connection to accept), with nanosecond timeout
/// resolution (`None`: forever). `EINTR` is `Ok(false)`.
///
/// # Errors
/// Only unexpected kernel failures.
pub fn poll_readable(fd: BorrowedFd<'_>, timeout: Option<std::time::Duration>) -> Result<bool> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
    });
    let ts_ptr = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: p is a live pollfd and we pass a count of one; ts_ptr is null or
    // points to a live timespec; a null signal mask leaves the mask unchanged.
    let ret = unsafe { libc::ppoll(&mut p, 1, ts_ptr, std::ptr::null()) };
    match cvt("ppoll", ret) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.errno() == Some(libc::EINTR) => Ok(false),
        Err(e) => Err(e),
    }
}

/// An epoll instance watching one file descriptor for readability: the
/// "block" half of the adaptive receive strategy.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)` + `epoll_ctl(ADD, watched, EPOLLIN)`.
    ///
    /// # Errors
    /// `EMFILE`/`ENFILE` when out of descriptors.
    pub fn for_readable(watched: BorrowedFd<'_>) -> Result<Self> {
        // SAFETY: plain syscall without pointers.
        let raw = cvt("epoll_create1", unsafe {
            libc::epoll_create1(libc::EPOLL_CLOEXEC)
        })?;
        // SAFETY: raw is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: both descriptors are open; ev is a live local.
        let ret = unsafe {
            libc::epoll_ctl(
                fd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                watched.as_raw_fd(),
                &mut ev,
            )
        };
        cvt("epoll_ctl(EPOLL_CTL_ADD)", ret)?;
        Ok(Self { fd })
    }

    /// `epoll_wait` for up to `timeout_ms` (-1: forever). `Ok(true)` when the
    /// watched descriptor became readable; `EINTR` is reported as `Ok(false)`.
    ///
    /// # Errors
    /// Only unexpected kernel failures (`EBADF`, `EFAULT`).
    pub fn wait(&self, timeout_ms: i32) -> Result<bool> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: ev is a live local with room for the one event we ask for.
        let ret = unsafe { libc::epoll_wait(self.fd.as_raw_fd(), &mut ev, 1, timeout_ms) };
        match cvt("epoll_wait", ret) {
            Ok(n) => Ok(n > 0),
            Err(e) if e.errno() == Some(libc::EINTR) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn epoll_sees_readable() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let ep = Epoll::for_readable(rx.as_fd()).unwrap();
        assert!(!ep.wait(0).unwrap());
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        tx.send_to(b"x", rx.local_addr().unwrap()).unwrap();
        assert!(ep.wait(2000).unwrap());
    }
}

/// `ppoll` over many descriptors for readability, with its `pollfd` array
/// kept between calls so that a wait allocates nothing once the set has
/// reached its largest size.
#[derive(Debug, Default)]
pub struct PollSet {
    fds: Vec<libc::pollfd>,
}

impl PollSet {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Empties the set (keeping its memory).
    pub fn clear(&mut self) {
        self.fds.clear();
    }

    /// Adds `fd`; returns its index for [`PollSet::readable`].
    pub fn push(&mut self, fd: BorrowedFd<'_>) -> usize {
        self.fds.push(libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        self.fds.len() - 1
    }

    /// Adds `fd`, also waiting for it to be writable when `write` is set;
    /// returns its index for [`PollSet::readable`] (which then also reports
    /// writability).
    pub fn push_with_write(&mut self, fd: BorrowedFd<'_>, write: bool) -> usize {
        let i = self.push(fd);
        if write {
            self.fds[i].events |= libc::POLLOUT;
        }
        i
    }

    /// Descriptors in the set.
    #[must_use]
    pub fn len(&self) -> usize {
        self.fds.len()
    }

    /// Whether the set is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// Waits up to `timeout` (`None`: forever; zero: just looks) until one
    /// of the descriptors is readable, has hung up or has an error; returns
    /// how many are. `EINTR` is `Ok(0)`.
    ///
    /// The descriptors must stay open until the wait returns: the set holds
    /// only their numbers.
    ///
    /// # Errors
    /// Only unexpected kernel failures.
    pub fn wait(&mut self, timeout: Option<std::time::Duration>) -> Result<usize> {
        for p in &mut self.fds {
            p.revents = 0;
        }
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as libc::time_t,
            tv_nsec: libc::c_long::from(t.subsec_nanos() as i32),
        });
        let ts_ptr = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `fds` is a live array of `len` pollfds the kernel may write
        // `revents` into; ts_ptr is null or points to a live timespec; a null
        // signal mask leaves the mask unchanged. A closed descriptor number
        // makes the kernel report POLLNVAL for it, nothing worse.
        let ret = unsafe {
            libc::ppoll(
                self.fds.as_mut_ptr(),
                self.fds.len() as libc::nfds_t,
                ts_ptr,
                std::ptr::null(),
            )
        };
        match cvt("ppoll", ret) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.errno() == Some(libc::EINTR) => Ok(0),
            Err(e) => Err(e),
        }
    }

    /// Whether descriptor `i` had something to report in the last wait
    /// (data, a connection to accept, a hang-up or an error; room to write
    /// when it was added with [`PollSet::push_with_write`]).
    #[must_use]
    pub fn readable(&self, i: usize) -> bool {
        self.fds.get(i).is_some_and(|p| p.revents != 0)
    }
}

#[cfg(test)]
mod poll_set_tests {
    use super::PollSet;
    use std::io::Write;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;
    use std::time::Duration;

    #[test]
    fn reports_the_descriptor_that_became_readable() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let (c, _d) = UnixStream::pair().unwrap();
        let mut set = PollSet::new();
        let ia = set.push(a.as_fd());
        let ic = set.push(c.as_fd());
        assert_eq!(set.wait(Some(Duration::ZERO)).unwrap(), 0);
        assert!(!set.readable(ia) && !set.readable(ic));
        b.write_all(b"x").unwrap();
        assert_eq!(set.wait(Some(Duration::from_secs(5))).unwrap(), 1);
        assert!(set.readable(ia) && !set.readable(ic));
        drop(b);
        set.clear();
        let ia = set.push(a.as_fd());
        assert_eq!(
            set.wait(Some(Duration::ZERO)).unwrap(),
            1,
            "data and hang-up"
        );
        assert!(set.readable(ia));
        assert!(!set.readable(7), "out of range is not readable");
    }
}
