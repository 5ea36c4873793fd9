//! `hftnet shm list | stat NAME | rm NAME`: the shared-memory rings of
//! `shm://` endpoints — which exist, who writes and reads them, how far each
//! reader lags and how often it was lapped, and removal of stale ones.
//!
//! Layer: the CLI over `hftnet_io::shm` (list, stat, remove); nothing here
//! touches a ring's memory itself.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use hftnet_io::shm::{self, RingInfo, ShmError, WriterState};

#[derive(Debug, Args)]
pub struct ShmArgs {
    #[command(subcommand)]
    action: ShmAction,
}

#[derive(Debug, Subcommand)]
enum ShmAction {
    /// Every ring in the directory: writer (live, closed or dead), position, readers.
    List {
        /// Where the rings live (the URIs' dir=).
        #[arg(long, default_value = shm::DEFAULT_DIR)]
        dir: PathBuf,
        /// Print one JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One ring: its shape, its writer, and each reader's cursor, lag, laps and missed messages.
    Stat {
        /// The ring's name (`md` for shm://md; `pp.c2s` / `pp.s2c` for a duplex pair).
        name: String,
        /// Where the rings live (the URIs' dir=).
        #[arg(long, default_value = shm::DEFAULT_DIR)]
        dir: PathBuf,
        /// Print one JSON object instead of `# key: value` lines.
        #[arg(long)]
        json: bool,
    },
    /// Remove a ring whose writer is gone (closed or dead); with --force also a live
    /// one or a file that is not a usable ring. A duplex name removes both rings.
    Rm {
        /// The ring's name.
        name: String,
        /// Where the rings live (the URIs' dir=).
        #[arg(long, default_value = shm::DEFAULT_DIR)]
        dir: PathBuf,
        /// Remove it even if its writer is alive, or if it is not a usable ring.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(a: ShmArgs) -> Result<ExitCode> {
    match a.action {
        ShmAction::List { dir, json } => list(&dir, json),
        ShmAction::Stat { name, dir, json } => stat(&name, &dir, json),
        ShmAction::Rm { name, dir, force } => rm(&name, &dir, force),
    }
}

fn writer(w: &WriterState) -> String {
    match w {
        WriterState::Live { pid } => format!("live (pid {pid})"),
        WriterState::Closed => "closed".into(),
        WriterState::Dead { pid, silent_ms } => {
            format!("dead (pid {pid}, silent {silent_ms} ms)")
        }
    }
}

fn list(dir: &std::path::Path, json: bool) -> Result<ExitCode> {
    if !dir.is_dir() {
        bail!("{} is not a directory (--dir)", dir.display());
    }
    if let Err(e) = std::fs::read_dir(dir) {
        bail!("cannot list {}: {e}", dir.display());
    }
    let rings = shm::list(dir);
    if json {
        let v: Vec<serde_json::Value> = rings
            .iter()
            .map(|r| match r {
                Ok(i) => serde_json::json!({ "ring": i, "stale": i.stale() }),
                Err(e) => serde_json::json!({ "error": e.to_string() }),
            })
            .collect();
        println!("{}", serde_json::json!({ "dir": dir, "rings": v }));
        return Ok(ExitCode::SUCCESS);
    }
    if rings.is_empty() {
        println!("no shm rings in {}", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<32} {:>9} {:>7} {:>12} {:>7}  writer",
        "ring", "slots", "size", "position", "readers"
    );
    for r in &rings {
        match r {
            Ok(i) => println!(
                "{:<32} {:>9} {:>7} {:>12} {:>7}  {}{}",
                i.name,
                i.slots,
                i.slot_size,
                i.head,
                i.readers.len(),
                writer(&i.writer),
                if i.stale() {
                    "  [stale: `hftnet shm rm` removes it]"
                } else {
                    ""
                }
            ),
            Err(e) => println!("{e}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn stat_lines(i: &RingInfo) -> Vec<(String, String)> {
    let mut v = vec![
        ("ring".into(), i.name.clone()),
        ("path".into(), i.path.clone()),
        ("format_version".into(), i.version.to_string()),
        ("slots".into(), i.slots.to_string()),
        ("slot_size".into(), i.slot_size.to_string()),
        ("bytes".into(), i.bytes.to_string()),
        ("writer".into(), writer(&i.writer)),
        ("heartbeat_age_ms".into(), i.heartbeat_age_ms.to_string()),
        ("position".into(), i.head.to_string()),
        ("readers".into(), i.readers.len().to_string()),
        (
            "sleeping_readers".into(),
            format!("{} (of {} that may sleep)", i.sleeping, i.may_sleep),
        ),
    ];
    for r in &i.readers {
        v.push((
            format!("reader_{}", r.entry),
            format!(
                "pid {}{} {}: cursor {}, lag {}, received {}, lapped {}, missed {}",
                r.pid,
                if r.alive { "" } else { " (gone)" },
                match (r.blocking, r.asleep) {
                    (true, true) => "blocking (asleep)",
                    (true, false) => "blocking",
                    _ => "spinning",
                },
                r.cursor,
                r.lag,
                r.received,
                r.lapped,
                r.missed
            ),
        ));
    }
    v
}

fn stat(name: &str, dir: &std::path::Path, json: bool) -> Result<ExitCode> {
    let infos: Vec<RingInfo> = match shm::stat(dir, name) {
        Ok(i) => vec![i],
        // A duplex name: its two rings (an unusable one is an error too).
        Err(not_found @ ShmError::NotFound { .. }) => {
            let mut pair = Vec::new();
            for d in ["c2s", "s2c"] {
                match shm::stat(dir, &format!("{name}.{d}")) {
                    Ok(i) => pair.push(i),
                    Err(ShmError::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            if pair.is_empty() {
                return Err(not_found.into());
            }
            pair
        }
        Err(e) => return Err(e.into()),
    };
    if json {
        let v = if infos.len() == 1 {
            serde_json::to_value(&infos[0])?
        } else {
            serde_json::json!({ "rings": infos })
        };
        println!("{v}");
    } else {
        for i in &infos {
            print!("{}", hftnet_bench::report::comment_lines(&stat_lines(i)));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn rm(name: &str, dir: &std::path::Path, force: bool) -> Result<ExitCode> {
    let names: Vec<String> = match shm::stat(dir, name) {
        Err(not_found @ ShmError::NotFound { .. }) => {
            let pair: Vec<String> = ["c2s", "s2c"]
                .iter()
                .map(|d| format!("{name}.{d}"))
                .filter(|n| shm::path_of(dir, n).exists())
                .collect();
            if pair.is_empty() {
                return Err(not_found.into());
            }
            pair
        }
        _ => vec![name.to_string()],
    };
    for n in &names {
        match shm::remove(dir, n, force)? {
            Some(i) => println!("removed shm ring {n} (writer {})", writer(&i.writer)),
            None => println!(
                "removed {} (not a usable ring)",
                shm::path_of(dir, n).display()
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}
