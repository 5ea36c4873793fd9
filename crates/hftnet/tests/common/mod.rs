//! Helpers shared by the integration tests of the `hftnet` binary.

#![allow(dead_code)] // each test file uses its own subset

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hftnet_lab::Host;

pub const BIN: &str = env!("CARGO_BIN_EXE_hftnet");

#[allow(unused_imports)] // each test file uses its own subset
pub use hftnet_lab::skip_without_root;

/// How long a dropped [`Proc`] is given to end on SIGINT before SIGKILL.
const DROP_GRACE: Duration = Duration::from_secs(3);

/// A child process stopped (by its PID) and reaped when dropped, also when
/// the test fails: SIGINT first, so that it removes what it set up (DPDK
/// runtime files, XDP programs) as on a user's ^C, then SIGKILL if it has
/// not ended within [`DROP_GRACE`]. A child the test already reaped (e.g.
/// after killing it itself) is left alone.
pub struct Proc(pub Option<Child>);

impl Proc {
    pub fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("process not yet collected")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let Some(c) = self.0.as_mut() else { return };
        // Not reaped yet, so the PID is still this child's (alive or a
        // zombie): signalling it cannot reach another process.
        if !matches!(c.try_wait(), Ok(None)) {
            return;
        }
        let interrupted = Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if interrupted {
            let start = Instant::now();
            while start.elapsed() < DROP_GRACE {
                if !matches!(c.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Starts `hftnet ARGS` in this namespace, its output piped.
pub fn spawn(args: &[&str]) -> Proc {
    Proc(Some(
        Command::new(BIN)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hftnet"),
    ))
}

pub fn spawn_in(host: &Host, args: &[&str]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    Proc(Some(
        host.spawn(&mut cmd)
            .expect("spawn inside the lab namespace"),
    ))
}

/// Runs to completion, bounded by `limit`.
pub fn run_in(host: &Host, args: &[&str], limit: Duration) -> Output {
    finish(spawn_in(host, args), limit, &format!("hftnet {args:?}"))
}

/// Reads `pipe` to its end on a thread; the bytes come on the channel.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// Waits for `p` to exit, bounded by `limit`, and collects its output.
/// Its piped stdout and stderr (those the test has not taken) are read
/// while it runs, so a child that writes more than a pipe holds does not
/// block on it and look hung.
pub fn finish(mut p: Proc, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    let stdout = drain(p.child().stdout.take());
    let stderr = drain(p.child().stderr.take());
    let status = loop {
        if let Some(st) = p.child().try_wait().unwrap() {
            break st;
        }
        assert!(
            start.elapsed() < limit,
            "{what} did not finish within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // A descendant may still hold the pipes open: bounded too.
    let collect = |rx: mpsc::Receiver<Vec<u8>>, name: &str| {
        let left = limit
            .saturating_sub(start.elapsed())
            .max(Duration::from_secs(1));
        rx.recv_timeout(left)
            .unwrap_or_else(|_| panic!("{what}: its {name} stayed open after it exited"))
    };
    let stdout = collect(stdout, "stdout");
    let stderr = collect(stderr, "stderr");
    p.0 = None;
    Output {
        status,
        stdout,
        stderr,
    }
}

/// A fresh directory under the system's temporary directory, removed on
/// drop (also when the test fails).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
