//! Reports of a ping run: the JSON object `hftnet ping --json` prints (its
//! shape is a contract, see DESIGN.md: fields are added, never renamed), and
//! the `# key: value` lines printed otherwise.
//!
//! Layer: presentation, off the hot path. Latency is always the full round
//! trip in nanoseconds; nothing here halves it.

use hftnet_io::Capabilities;
use serde::Serialize;

use crate::clock::Clock;
use crate::env::Environment;
use crate::pingpong::{Breakdown, PingConfig, PingOutcome};
use crate::stats::Summary;

/// The JSON report of one ping run.
#[derive(Debug, Clone, Serialize)]
pub struct PingReport {
    /// Scheme of the transport (`udp`, `tcp`, `mcast`).
    pub transport: String,
    /// The URI as given.
    pub uri: String,
    /// Bytes per message.
    pub message_bytes: usize,
    /// The message format: `hftnet` (our probe) or `sockperf`.
    pub protocol: &'static str,
    /// Round trips measured (entries in the histogram).
    pub samples: u64,
    /// Warm-up probes sent and excluded.
    pub warmup: u64,
    /// Measured probes never answered.
    pub lost: u64,
    /// Replies received more than once.
    pub duplicated: u64,
    /// Replies received out of order.
    pub reordered: u64,
    /// Round-trip distribution, ns; `null` when nothing was measured (never
    /// a run of zero-nanosecond samples).
    pub rtt_ns: Option<Summary>,
    /// `tsc` or `monotonic`.
    pub clock: String,
    /// CPU the client thread was pinned to, if pinned.
    pub client_cpu: Option<usize>,
    /// Fixed rate, probes per second, or null for closed loop.
    pub rate_pps: Option<u64>,
    /// Measured probes sent.
    pub sent: u64,
    /// Replies that came after their wait ended.
    pub late: u64,
    /// Messages that were not this run's probes.
    pub foreign: u64,
    /// Messages larger than the receive buffer.
    pub truncated: u64,
    /// Replies whose padding came back changed.
    pub corrupted: u64,
    /// Sends refused by the kernel.
    pub send_errors: u64,
    /// Receives that failed.
    pub recv_errors: u64,
    /// First error seen.
    pub first_error: Option<String>,
    /// Why the run stopped early, if it did.
    pub aborted: Option<String>,
    /// Seconds the measured part took.
    pub duration_s: f64,
    /// Why the TSC was not used, if it was not.
    pub clock_note: Option<String>,
    /// What the kernel granted the client's transport.
    pub capabilities: Capabilities,
    /// Where it ran.
    pub environment: Environment,
    /// Each round trip split at the kernel's timestamps (only with
    /// `ping --timestamps`; absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breakdown_ns: Option<BreakdownReport>,
}

/// The round-trip breakdown of a timestamped ping run, ns. Each part is
/// `null` when no round trip had all its stamps.
#[derive(Debug, Clone, Serialize)]
pub struct BreakdownReport {
    /// User space before `send` → the kernel's software `SND` transmit stamp.
    pub send_to_tx: Option<Summary>,
    /// Our `SND` stamp → our kernel's software receive stamp of the reply
    /// (the path there, the peer, and back).
    pub tx_to_rx: Option<Summary>,
    /// Kernel receive stamp → user space after the receive returned.
    pub rx_to_user: Option<Summary>,
    /// `SCHED` stamp (qdisc) → `SND` stamp, part of `send_to_tx`.
    pub sched_to_snd: Option<Summary>,
    /// Round trips split (entries of each part's histogram).
    pub samples: u64,
    /// Measured round trips missing a stamp, left out.
    pub incomplete: u64,
    /// Round trips whose stamps were out of order (clock step), left out.
    pub disordered: u64,
    /// The clock of every part.
    pub clock: &'static str,
}

impl BreakdownReport {
    /// Summarises a run's breakdown.
    #[must_use]
    pub fn new(b: &Breakdown) -> Self {
        Self {
            send_to_tx: b.send_to_tx.summary(),
            tx_to_rx: b.tx_to_rx.summary(),
            rx_to_user: b.rx_to_user.summary(),
            sched_to_snd: b.sched_to_snd.summary(),
            samples: b.send_to_tx.len(),
            incomplete: b.incomplete,
            disordered: b.disordered,
            clock: "CLOCK_REALTIME (kernel software stamps)",
        }
    }

    /// `(key, value)` lines: one per part with its percentiles.
    #[must_use]
    pub fn lines(&self) -> Vec<(String, String)> {
        let mut v = vec![
            ("breakdown_samples".to_string(), self.samples.to_string()),
            (
                "breakdown_incomplete".to_string(),
                self.incomplete.to_string(),
            ),
        ];
        for (name, part) in [
            ("send_to_tx", &self.send_to_tx),
            ("tx_to_rx", &self.tx_to_rx),
            ("rx_to_user", &self.rx_to_user),
            ("sched_to_snd", &self.sched_to_snd),
        ] {
            v.push((
                format!("breakdown_{name}_ns"),
                part.map_or_else(
                    || "none measured".to_string(),
                    |s| {
                        format!(
                            "min {} p50 {} p90 {} p99 {} p99.9 {} max {}",
                            s.min, s.p50, s.p90, s.p99, s.p99_9, s.max
                        )
                    },
                ),
            ));
        }
        v
    }
}

impl PingReport {
    /// Assembles the report of a finished run.
    #[must_use]
    pub fn new(
        uri: &str,
        cfg: &PingConfig,
        out: &PingOutcome,
        clock: &Clock,
        client_cpu: Option<usize>,
        capabilities: Capabilities,
        environment: Environment,
    ) -> Self {
        Self {
            transport: capabilities.transport.to_string(),
            uri: uri.to_string(),
            message_bytes: cfg.size,
            protocol: cfg.protocol.name(),
            samples: out.rtt.len(),
            warmup: out.warmup_sent,
            lost: out.lost,
            duplicated: out.duplicated,
            reordered: out.reordered,
            rtt_ns: out.rtt.summary(),
            clock: clock.kind().to_string(),
            client_cpu,
            rate_pps: cfg.rate,
            sent: out.sent,
            late: out.late,
            foreign: out.foreign,
            truncated: out.truncated,
            corrupted: out.corrupted,
            send_errors: out.send_errors,
            recv_errors: out.recv_errors,
            first_error: out.first_error.clone(),
            aborted: out.aborted.clone(),
            duration_s: out.elapsed.as_secs_f64(),
            clock_note: clock.fallback_reason().map(str::to_string),
            capabilities,
            environment,
            breakdown_ns: out.breakdown.as_ref().map(BreakdownReport::new),
        }
    }

    /// The result as `(key, value)` lines, round trips in ns.
    #[must_use]
    pub fn result_lines(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = vec![
            ("samples".into(), self.samples.to_string()),
            ("warmup".into(), self.warmup.to_string()),
            ("sent".into(), self.sent.to_string()),
            ("lost".into(), self.lost.to_string()),
            ("duplicated".into(), self.duplicated.to_string()),
            ("reordered".into(), self.reordered.to_string()),
            ("late".into(), self.late.to_string()),
            ("foreign".into(), self.foreign.to_string()),
            ("truncated".into(), self.truncated.to_string()),
            ("corrupted".into(), self.corrupted.to_string()),
            ("send_errors".into(), self.send_errors.to_string()),
            ("recv_errors".into(), self.recv_errors.to_string()),
            ("duration_s".into(), format!("{:.3}", self.duration_s)),
        ];
        match &self.rtt_ns {
            Some(s) => {
                for (k, x) in [
                    ("rtt_min_ns", s.min),
                    ("rtt_mean_ns", s.mean),
                    ("rtt_stddev_ns", s.stddev),
                    ("rtt_p50_ns", s.p50),
                    ("rtt_p90_ns", s.p90),
                    ("rtt_p99_ns", s.p99),
                    ("rtt_p99_9_ns", s.p99_9),
                    ("rtt_p99_99_ns", s.p99_99),
                    ("rtt_max_ns", s.max),
                ] {
                    v.push((k.into(), x.to_string()));
                }
            }
            None => v.push(("rtt_ns".into(), "none measured".into())),
        }
        if let Some(b) = &self.breakdown_ns {
            v.extend(b.lines());
        }
        if let Some(e) = &self.first_error {
            v.push(("first_error".into(), e.clone()));
        }
        if let Some(a) = &self.aborted {
            v.push(("aborted".into(), a.clone()));
        }
        v
    }
}

/// Formats `(key, value)` pairs as `# key: value` lines.
#[must_use]
pub fn comment_lines(pairs: &[(String, String)]) -> String {
    let mut s = String::new();
    for (k, v) in pairs {
        s.push_str("# ");
        s.push_str(k);
        s.push_str(": ");
        s.push_str(v);
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::LatencyStats;

    #[test]
    fn json_has_the_contract_fields() {
        let mut rtt = LatencyStats::new();
        for v in [1000, 2000, 3000] {
            rtt.record(v);
        }
        let out = PingOutcome {
            rtt,
            sent: 4,
            received: 3,
            lost: 1,
            warmup_sent: 10,
            ..PingOutcome::default()
        };
        let cfg = PingConfig::default();
        let clock = Clock::monotonic();
        let caps = Capabilities {
            transport: "udp",
            ..Capabilities::default()
        };
        let r = PingReport::new(
            "udp://1.2.3.4:5",
            &cfg,
            &out,
            &clock,
            Some(1),
            caps,
            Environment::capture(),
        );
        let j: serde_json::Value = serde_json::to_value(&r).unwrap();
        for key in [
            "transport",
            "uri",
            "message_bytes",
            "samples",
            "warmup",
            "lost",
            "duplicated",
            "reordered",
            "rtt_ns",
            "clock",
            "client_cpu",
            "rate_pps",
        ] {
            assert!(j.get(key).is_some(), "missing {key}");
        }
        for key in [
            "min", "mean", "stddev", "p50", "p90", "p99", "p99_9", "p99_99", "max",
        ] {
            assert!(j["rtt_ns"].get(key).is_some(), "missing rtt_ns.{key}");
        }
        assert_eq!(j["transport"], "udp");
        assert_eq!(j["samples"], 3);
        assert_eq!(j["lost"], 1);
        assert_eq!(j["warmup"], 10);
        assert_eq!(j["clock"], "monotonic");
        assert_eq!(j["rate_pps"], serde_json::Value::Null);
        assert_eq!(j["rtt_ns"]["p50"], 2000);
        let empty = PingReport::new(
            "udp://1.2.3.4:5",
            &cfg,
            &PingOutcome::default(),
            &clock,
            None,
            Capabilities::default(),
            Environment::capture(),
        );
        let j = serde_json::to_value(&empty).unwrap();
        assert_eq!(
            j["rtt_ns"],
            serde_json::Value::Null,
            "an empty run has no latencies, not zeros"
        );
        assert!(comment_lines(&empty.result_lines()).contains("# rtt_ns: none measured"));
        let lines = comment_lines(&r.result_lines());
        assert!(lines.contains("# rtt_p50_ns: 2000\n"), "{lines}");
        assert!(j.get("breakdown_ns").is_none(), "only when asked");
        assert!(!lines.contains("breakdown"), "{lines}");
    }

    #[test]
    fn breakdown_appears_when_asked() {
        let mut b = Breakdown::default();
        for v in [100, 200, 300] {
            b.send_to_tx.record(v);
            b.tx_to_rx.record(v * 10);
            b.rx_to_user.record(v * 2);
        }
        b.incomplete = 2;
        let out = PingOutcome {
            breakdown: Some(b),
            ..PingOutcome::default()
        };
        let r = PingReport::new(
            "udp://1.2.3.4:5",
            &PingConfig::default(),
            &out,
            &Clock::monotonic(),
            None,
            Capabilities::default(),
            Environment::capture(),
        );
        let j = serde_json::to_value(&r).unwrap();
        let bd = &j["breakdown_ns"];
        assert_eq!(bd["send_to_tx"]["p50"], 200, "{bd}");
        assert_eq!(bd["tx_to_rx"]["p50"], 2000, "{bd}");
        assert_eq!(bd["rx_to_user"]["max"], 600, "{bd}");
        assert_eq!(bd["sched_to_snd"], serde_json::Value::Null);
        assert_eq!(
            (bd["samples"].as_u64(), bd["incomplete"].as_u64()),
            (Some(3), Some(2))
        );
        let lines = comment_lines(&r.result_lines());
        assert!(
            lines.contains("# breakdown_tx_to_rx_ns: min 1000 p50 2000 "),
            "{lines}"
        );
        assert!(
            lines.contains("# breakdown_sched_to_snd_ns: none measured"),
            "{lines}"
        );
    }
}
