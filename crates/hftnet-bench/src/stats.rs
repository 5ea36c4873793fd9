//! Latency statistics: an HDR histogram of nanosecond samples, its summary
//! (the `rtt_ns` object of the ping JSON) and the classic `.hgrm` export.
//!
//! Layer: `hftnet-bench`, fed from the measurement loops. The histogram covers
//! 1 ns to 60 s at 3 significant digits (±0.05 % per value), allocated once in
//! [`LatencyStats::new`].
//!
//! Invariants: recording never allocates, never fails and never drops a
//! sample — a value above 60 s is recorded as 60 s and counted in
//! [`LatencyStats::saturated`], so a stall is visible rather than lost.
//! Percentiles follow HdrHistogram's convention (the highest value equivalent
//! to the bucket that holds the quantile), so they match what other HdrHistogram
//! tools print for the same data.
//!
//! It must never report the mean alone, and never report an empty run as a run
//! of zero-nanosecond samples: [`LatencyStats::summary`] returns `None` then.

use std::io::{self, Write};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Lowest discernible value, ns.
pub const LOWEST_NS: u64 = 1;
/// Highest trackable value, ns (60 s); larger samples saturate here.
pub const HIGHEST_NS: u64 = 60_000_000_000;
/// Significant decimal digits kept per value.
pub const SIGNIFICANT_DIGITS: u8 = 3;
/// `.hgrm` unit ratio for nanosecond samples printed in microseconds, the
/// customary unit of HdrHistogram's plotter.
pub const HGRM_MICROSECONDS: f64 = 1000.0;
/// Percentile ticks per half distance in the `.hgrm` output, as in
/// HdrHistogram's `outputPercentileDistribution` default.
pub const HGRM_TICKS_PER_HALF_DISTANCE: u32 = 5;

/// A recorder of latency samples in nanoseconds.
#[derive(Clone)]
pub struct LatencyStats {
    hist: Histogram<u64>,
    saturated: u64,
}

/// Summary of a latency distribution, in nanoseconds: the `rtt_ns` object of
/// DESIGN.md's ping JSON. `mean` and `stddev` are rounded to the nearest ns;
/// the others are histogram values (within 0.05 % of a recorded sample).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Smallest sample.
    pub min: u64,
    /// Arithmetic mean.
    pub mean: u64,
    /// Population standard deviation.
    pub stddev: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// 99.99th percentile.
    pub p99_99: u64,
    /// Largest sample.
    pub max: u64,
}

impl LatencyStats {
    /// An empty recorder (allocates the histogram's counts, ≈ 400 KiB).
    #[must_use]
    pub fn new() -> Self {
        let hist = Histogram::new_with_bounds(LOWEST_NS, HIGHEST_NS, SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
        Self { hist, saturated: 0 }
    }

    /// Records one sample. A sample above [`HIGHEST_NS`] is recorded as
    /// [`HIGHEST_NS`] and counted in [`saturated`](Self::saturated).
    #[inline]
    pub fn record(&mut self, ns: u64) {
        if self.hist.record(ns).is_err() {
            self.saturated += 1;
            self.hist.saturating_record(ns);
        }
    }

    /// Records one sample of a fixed-rate run with coordinated-omission
    /// correction: when `ns` exceeds `expected_interval_ns` (the send period),
    /// the samples that the stall kept from being sent are added too
    /// (`ns - interval`, `ns - 2·interval`, … down to `interval`), as
    /// HdrHistogram's `recordValueWithExpectedInterval` does.
    ///
    /// Use this *or* schedule-based timing (measuring from the scheduled send
    /// time), never both. A saturated sample is corrected from [`HIGHEST_NS`].
    ///
    /// The cost grows with `ns / expected_interval_ns` (one histogram
    /// increment per missed send); an interval of 0 records `ns` alone.
    #[inline]
    pub fn record_correct(&mut self, ns: u64, expected_interval_ns: u64) {
        let ns = if ns > HIGHEST_NS {
            self.saturated += 1;
            HIGHEST_NS
        } else {
            ns
        };
        if self.hist.record_correct(ns, expected_interval_ns).is_err() {
            // Unreachable: every value ≤ HIGHEST_NS is trackable.
            self.hist.saturating_record(ns);
        }
    }

    /// Adds every sample (and saturation count) of `other` to `self`.
    pub fn merge(&mut self, other: &LatencyStats) {
        self.hist
            .add(&other.hist)
            .expect("histograms with identical bounds always add");
        self.saturated += other.saturated;
    }

    /// Forgets every sample, keeping the allocation.
    pub fn reset(&mut self) {
        self.hist.reset();
        self.saturated = 0;
    }

    /// Number of samples recorded (including corrected and saturated ones).
    #[must_use]
    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// True when nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    /// Number of samples above [`HIGHEST_NS`] that were recorded as
    /// [`HIGHEST_NS`].
    #[must_use]
    pub fn saturated(&self) -> u64 {
        self.saturated
    }

    /// The underlying histogram, for anything this type does not offer.
    #[must_use]
    pub fn histogram(&self) -> &Histogram<u64> {
        &self.hist
    }

    /// The value at `quantile` (0.0..=1.0), ns; 0 when empty.
    #[must_use]
    pub fn value_at_quantile(&self, quantile: f64) -> u64 {
        self.hist.value_at_quantile(quantile)
    }

    /// Min, mean, standard deviation, p50 … p99.99 and max, in ns; `None` when
    /// nothing was recorded (use `unwrap_or_default()` for an all-zero
    /// [`Summary`] where a value is required, and report the sample count
    /// beside it).
    #[must_use]
    pub fn summary(&self) -> Option<Summary> {
        if self.hist.is_empty() {
            return None;
        }
        let h = &self.hist;
        Some(Summary {
            min: h.min(),
            mean: h.mean().round() as u64,
            stddev: h.stdev().round() as u64,
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            max: h.max(),
        })
    }

    /// Writes the classic HdrHistogram percentile distribution (`.hgrm`), the
    /// text `outputPercentileDistribution(out, 5, unit_ratio)` prints in
    /// HdrHistogram Java, which HdrHistogram's online plotter reads. Values
    /// are divided by `unit_ratio`: pass [`HGRM_MICROSECONDS`] for µs.
    ///
    /// # Errors
    /// Any error of `w`.
    pub fn write_hgrm(&self, mut w: impl Write, unit_ratio: f64) -> io::Result<()> {
        let h = &self.hist;
        let digits = usize::from(h.sigfig());
        writeln!(
            w,
            "{:>12} {:>14} {:>10} {:>14}\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        )?;
        if !h.is_empty() {
            let mut total: u64 = 0;
            for v in h.iter_quantiles(HGRM_TICKS_PER_HALF_DISTANCE) {
                total += v.count_since_last_iteration();
                let value = v.value_iterated_to() as f64 / unit_ratio;
                let q = v.quantile_iterated_to();
                if q < 1.0 {
                    writeln!(
                        w,
                        "{value:12.digits$} {q:2.12} {total:10} {:14.2}",
                        1.0 / (1.0 - q)
                    )?;
                } else {
                    writeln!(w, "{value:12.digits$} {q:2.12} {total:10}")?;
                }
            }
        }
        let (mean, stddev, max) = if h.is_empty() {
            (0.0, 0.0, 0.0)
        } else {
            (h.mean(), h.stdev(), h.max() as f64)
        };
        writeln!(
            w,
            "#[Mean    = {:12.digits$}, StdDeviation   = {:12.digits$}]",
            mean / unit_ratio,
            stddev / unit_ratio
        )?;
        writeln!(
            w,
            "#[Max     = {:12.digits$}, Total count    = {:12}]",
            max / unit_ratio,
            h.len()
        )?;
        writeln!(
            w,
            "#[Buckets = {:12}, SubBuckets     = {:12}]",
            h.buckets(),
            sub_bucket_count(h.sigfig())
        )
    }
}

/// Shows the count and summary, not the histogram's thousands of buckets.
impl std::fmt::Debug for LatencyStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyStats")
            .field("len", &self.len())
            .field("saturated", &self.saturated)
            .field("summary", &self.summary())
            .finish()
    }
}

impl Default for LatencyStats {
    fn default() -> Self {
        Self::new()
    }
}

/// HdrHistogram's sub-bucket count for `sigfig` digits:
/// `2^ceil(log2(2 × 10^sigfig))` (2048 for 3 digits).
fn sub_bucket_count(sigfig: u8) -> u64 {
    (2 * 10u64.pow(u32::from(sigfig))).next_power_of_two()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_to(n: u64) -> LatencyStats {
        let mut s = LatencyStats::new();
        for v in 1..=n {
            s.record(v);
        }
        s
    }

    #[test]
    fn known_percentiles() {
        // 1..=1000 ns: every value is exact at 3 significant digits.
        let s = one_to(1000);
        assert_eq!(s.len(), 1000);
        let sum = s.summary().unwrap();
        assert_eq!(
            sum,
            Summary {
                min: 1,
                mean: 501, // 500.5 rounded half away from zero
                stddev: 289,
                p50: 500,
                p90: 900,
                p99: 990,
                p99_9: 999,
                p99_99: 1000,
                max: 1000,
            }
        );
        assert_eq!(s.saturated(), 0);
    }

    #[test]
    fn large_values_keep_three_digits() {
        let mut s = LatencyStats::new();
        for _ in 0..99 {
            s.record(7_600);
        }
        s.record(5_000_000);
        let sum = s.summary().unwrap();
        assert_eq!(sum.p50, 7_600 + 3); // highest value equivalent to 7600 (4 ns buckets)
        assert!(sum.p99 < 7_610);
        assert!(sum.max.abs_diff(5_000_000) <= 5_000_000 / 1000);
        assert_eq!(sum.p99_99, sum.max);
    }

    #[test]
    fn empty_summary_is_none_and_zero_default() {
        let s = LatencyStats::new();
        assert!(s.is_empty());
        assert_eq!(s.summary(), None);
        let zero = s.summary().unwrap_or_default();
        let json = serde_json::to_string(&zero).unwrap();
        assert_eq!(
            json,
            r#"{"min":0,"mean":0,"stddev":0,"p50":0,"p90":0,"p99":0,"p99_9":0,"p99_99":0,"max":0}"#
        );
    }

    #[test]
    fn saturation_is_counted_not_lost() {
        let mut s = LatencyStats::new();
        s.record(10);
        s.record(HIGHEST_NS * 2);
        s.record(u64::MAX);
        s.record(0);
        assert_eq!(s.len(), 4);
        assert_eq!(s.saturated(), 2);
        let sum = s.summary().unwrap();
        assert_eq!(sum.min, 0);
        assert!(sum.max >= HIGHEST_NS);
    }

    #[test]
    fn coordinated_omission_correction() {
        let mut s = LatencyStats::new();
        // A 10 µs-period run where one reply took 100 µs: the nine sends that
        // stall blocked are added at 90, 80, ..., 10 µs.
        for _ in 0..100 {
            s.record_correct(5_000, 10_000);
        }
        s.record_correct(100_000, 10_000);
        assert_eq!(s.len(), 110);
        let sum = s.summary().unwrap();
        // Without correction p99 would be 5 µs; with it, the stall shows.
        assert_eq!(sum.p90, 5_003, "{sum:?}");
        assert!(sum.p99.abs_diff(90_000) <= 90, "{sum:?}");
        assert!(sum.max.abs_diff(100_000) <= 100);
        // Saturated values are corrected from the top of the range.
        let mut t = LatencyStats::new();
        t.record_correct(u64::MAX, HIGHEST_NS / 2);
        assert_eq!((t.len(), t.saturated()), (2, 1));
    }

    #[test]
    fn merge_adds_counts_and_saturations() {
        let mut a = one_to(500);
        let mut b = LatencyStats::new();
        for v in 501..=1000 {
            b.record(v);
        }
        b.record(u64::MAX);
        a.merge(&b);
        assert_eq!(a.len(), 1001);
        assert_eq!(a.saturated(), 1);
        assert_eq!(a.value_at_quantile(0.5), 501);
        a.reset();
        assert!(a.is_empty() && a.saturated() == 0);
    }

    /// Parses `.hgrm` text: the rows and the footer's total count.
    fn parse_hgrm(text: &str) -> (Vec<(f64, f64, u64)>, u64) {
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        assert_eq!(
            header,
            ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"]
        );
        assert_eq!(lines.next(), Some(""));
        let mut rows = Vec::new();
        let mut total = None;
        for line in lines {
            if let Some(rest) = line.strip_prefix("#[Max") {
                let n = rest
                    .rsplit('=')
                    .next()
                    .unwrap()
                    .trim_end_matches(']')
                    .trim();
                total = Some(n.parse().unwrap());
            } else if !line.starts_with('#') {
                let f: Vec<&str> = line.split_whitespace().collect();
                assert!(f.len() == 4 || f.len() == 3, "{line}");
                rows.push((
                    f[0].parse().unwrap(),
                    f[1].parse().unwrap(),
                    f[2].parse().unwrap(),
                ));
            }
        }
        (rows, total.expect("footer"))
    }

    #[test]
    fn hgrm_parses_back() {
        let mut s = LatencyStats::new();
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.record(5_000 + x % 20_000 + if x.is_multiple_of(97) { 1_000_000 } else { 0 });
        }
        let mut out = Vec::new();
        s.write_hgrm(&mut out, HGRM_MICROSECONDS).unwrap();
        let text = String::from_utf8(out).unwrap();
        let (rows, total) = parse_hgrm(&text);
        assert_eq!(total, 10_000);
        assert!(rows.len() > 20);
        assert!(
            rows.windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1 && w[0].2 <= w[1].2)
        );
        let last = rows.last().unwrap();
        assert_eq!(last.1, 1.0);
        assert_eq!(last.2, 10_000);
        assert_eq!(rows[0].1, 0.0);
        // Values are in µs with three decimals.
        assert!((last.0 - s.summary().unwrap().max as f64 / 1000.0).abs() < 1e-9);
        assert!(text.contains("#[Buckets = "));
        assert!(text.ends_with("SubBuckets     =         2048]\n"), "{text}");
    }

    #[test]
    fn hgrm_matches_the_java_layout() {
        let s = one_to(4);
        let mut out = Vec::new();
        s.write_hgrm(&mut out, 1.0).unwrap();
        let text = String::from_utf8(out).unwrap();
        let buckets = s.histogram().buckets();
        let expected = format!(
            "       Value     Percentile TotalCount 1/(1-Percentile)\n\
             \n\
             \x20      1.000 0.000000000000          1           1.00\n\
             \x20      1.000 0.100000000000          1           1.11\n\
             \x20      1.000 0.200000000000          1           1.25\n\
             \x20      2.000 0.300000000000          2           1.43\n\
             \x20      2.000 0.400000000000          2           1.67\n\
             \x20      2.000 0.500000000000          2           2.00\n\
             \x20      3.000 0.550000000000          3           2.22\n\
             \x20      3.000 0.600000000000          3           2.50\n\
             \x20      3.000 0.650000000000          3           2.86\n\
             \x20      3.000 0.700000000000          3           3.33\n\
             \x20      4.000 0.750000000000          4           4.00\n\
             \x20      4.000 1.000000000000          4\n\
             #[Mean    =        2.500, StdDeviation   =        1.118]\n\
             #[Max     =        4.000, Total count    =            4]\n\
             #[Buckets = {buckets:12}, SubBuckets     =         2048]\n"
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn hgrm_of_empty_histogram_has_header_and_footer() {
        let mut out = Vec::new();
        LatencyStats::new()
            .write_hgrm(&mut out, HGRM_MICROSECONDS)
            .unwrap();
        let (rows, total) = parse_hgrm(std::str::from_utf8(&out).unwrap());
        assert!(rows.is_empty());
        assert_eq!(total, 0);
    }
}
