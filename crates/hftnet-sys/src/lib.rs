//! The syscall layer of hftnet: the one crate that talks to the kernel with raw
//! calls (socket options, `recvmsg` and control messages, epoll, CPU affinity,
//! scheduling policy, memory locking, memory mappings (of rings and of files
//! read in place), a software prefetch hint, futexes, network namespaces,
//! rtnetlink and three `bpf(2)` link commands), plus the parsers of the
//! kernel's own text
//! formats that several crates need (CPU lists and masks in [`cpus`], the
//! release string in [`kernel`]).
//!
//! Every other crate goes through the typed, safe wrappers here. Each wrapper
//! names the C call it makes; each failure is a [`SyscallError`] that names the
//! call and keeps the `errno`, so a caller can tell the user which privilege or
//! limit was missing. Wrappers do not allocate unless their doc says so, so the
//! receive and send paths built on them stay allocation-free.
//!
//! `unsafe` is allowed in this crate only; every block carries a `// SAFETY:`
//! comment stating why the pointers and lengths handed to the kernel are valid.

pub mod bpf;
pub mod clock;
pub mod cpus;
pub mod error;
pub mod ethtool;
pub mod futex;
pub mod hint;
pub mod kernel;
pub mod mmap;
pub mod netlink;
pub mod netns;
pub mod packet;
pub mod proc;
pub mod sched;
pub mod sock;

pub use error::{Result, SyscallError};
