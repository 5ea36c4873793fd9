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
use crate::pingpong::{PingConfig, PingOutcome};
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
    }
}
