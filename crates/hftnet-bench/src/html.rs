//! The HTML report: one self-contained page of a run's latency rows, drawn
//! as inline SVG — the percentile distribution of every row on the HDR axis,
//! a histogram per row, an optional waterfall of a tuning ladder, an
//! optional tick-to-trade table and the environment of the run.
//!
//! Layer: presentation, off the hot path. Input is the plain [`Report`]
//! (any part of the program can fill it; [`Row::from_stats`] takes a
//! [`LatencyStats`]); [`render`] returns the page as a string.
//!
//! Invariants: the page fetches nothing (no external script, style, font or
//! image; inline CSS and SVG only, no script at all); every piece of text
//! that comes from the input is escaped, in text and in attributes alike;
//! each plot draws exactly one element of class `series` per row that has
//! samples (`data-row` names the row), so a test can count them; a row
//! without samples is listed beside the plots as such, never drawn as a
//! run of zero-nanosecond samples. Latency is the full round trip as the
//! rows carry it; nothing here halves it.
//!
//! The percentile plot follows HdrHistogram's plotter: x is `1/(1-p)` on a
//! log scale (ticks 0%, 50%, 90%, 99%, 99.9%, 99.99%, and 99.999% or more
//! when a row reaches them), y is the latency in µs on a log scale (the
//! rows of a ladder span three decades, from a shared-memory ring to a
//! blocking socket). A row's largest sample is drawn at `1/(1-p) = n`, its
//! sample count, where an empirical distribution of `n` samples puts it.

use std::fmt::Write as _;

use hdrhistogram::Histogram;

use crate::stats::{HGRM_TICKS_PER_HALF_DISTANCE, LatencyStats, Summary};

/// A whole report.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The page's title and heading.
    pub title: String,
    /// One paragraph under the heading: what was run and how to read it.
    pub summary: String,
    /// The latency rows, in table order.
    pub rows: Vec<Row>,
    /// A tuning ladder's steps, drawn as a waterfall (absent: no section).
    pub waterfall: Option<Waterfall>,
    /// The tick-to-trade table (absent: no section).
    pub tick_to_trade: Option<Table>,
    /// More tables after the waterfall, each under its heading (e.g. the
    /// tuning ladder's claims and verdicts).
    pub tables: Vec<(String, Table)>,
    /// The environment of the run, as `key: value` lines.
    pub environment: Vec<(String, String)>,
}

/// One latency row.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The row's name (e.g. `udp/spin`), shown in tables and legends.
    pub label: String,
    /// Samples measured.
    pub samples: u64,
    /// Probes lost.
    pub lost: u64,
    /// Its percentiles, ns; `None` without samples.
    pub summary: Option<Summary>,
    /// p50 divided by the baseline row's p50, when there is one.
    pub p50_ratio: Option<f64>,
    /// Its full distribution, ns; `None` (or empty) when there is none to
    /// plot — the row is then listed as without samples.
    pub histogram: Option<Histogram<u64>>,
    /// Why the row has no figures, or what limits them.
    pub note: Option<String>,
}

impl Row {
    /// A row of `label` from a recorder: its sample count, summary and
    /// histogram (an empty recorder gives a row without samples).
    #[must_use]
    pub fn from_stats(label: impl Into<String>, stats: &LatencyStats, lost: u64) -> Row {
        Row {
            label: label.into(),
            samples: stats.len(),
            lost,
            summary: stats.summary(),
            p50_ratio: None,
            histogram: (!stats.is_empty()).then(|| stats.histogram().clone()),
            note: None,
        }
    }

    /// The histogram when it holds samples.
    fn plotted(&self) -> Option<&Histogram<u64>> {
        self.histogram.as_ref().filter(|h| !h.is_empty())
    }
}

/// The steps of a tuning ladder, each measured against the one before and
/// the first (the baseline).
#[derive(Debug, Clone, Default)]
pub struct Waterfall {
    /// What the steps measure (e.g. `UDP round trip p50, µs`).
    pub caption: String,
    /// The steps in order; the first is the baseline.
    pub steps: Vec<Step>,
}

/// One step of a [`Waterfall`].
#[derive(Debug, Clone, Default)]
pub struct Step {
    /// The step (e.g. `+ CPU affinity`).
    pub label: String,
    /// Its p50, ns; `None` when it could not be measured.
    pub p50_ns: Option<u64>,
    /// Relative change against the previous measured step (`-0.25` is 25 %
    /// faster); see [`Waterfall::fill_changes`].
    pub vs_previous: Option<f64>,
    /// Relative change against the baseline.
    pub vs_baseline: Option<f64>,
    /// The gain the literature claims for the technique (e.g. `15–25 %`).
    pub claim: String,
    /// Whether the claim holds here, and why.
    pub verdict: String,
}

impl Waterfall {
    /// Fills every step's `vs_previous` and `vs_baseline` from the p50s:
    /// against the last measured step before it and against the first step
    /// (when measured); `None` where either side is missing or zero.
    pub fn fill_changes(&mut self) {
        let base = self.steps.first().and_then(|s| s.p50_ns);
        let mut prev: Option<u64> = None;
        for s in &mut self.steps {
            let change = |from: Option<u64>| match (from, s.p50_ns) {
                (Some(a), Some(b)) if a > 0 => Some(b as f64 / a as f64 - 1.0),
                _ => None,
            };
            s.vs_previous = change(prev);
            s.vs_baseline = change(base);
            if s.p50_ns.is_some() {
                prev = s.p50_ns;
            }
        }
        if let Some(first) = self.steps.first_mut() {
            first.vs_previous = None;
        }
    }
}

/// A plain table of text cells.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// A sentence above the table: what it shows, in which unit.
    pub caption: String,
    /// Column headings.
    pub header: Vec<String>,
    /// Rows of cells (as many as `header`, or fewer).
    pub rows: Vec<Vec<String>>,
}

/// Escapes text for HTML text and (double- or single-quoted) attributes.
#[must_use]
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Series colours (Tableau 10); beyond ten rows they repeat dashed.
const COLOURS: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

fn colour(i: usize) -> &'static str {
    COLOURS[i % COLOURS.len()]
}

fn dash(i: usize) -> &'static str {
    match (i / COLOURS.len()) % 3 {
        0 => "",
        1 => " stroke-dasharray=\"6 3\"",
        _ => " stroke-dasharray=\"2 2\"",
    }
}

/// Nanoseconds as µs for tables: two decimals (three significant digits
/// below 0.1 µs).
fn us(ns: u64) -> String {
    let v = ns as f64 / 1000.0;
    if v < 0.1 {
        format!("{v:.3}")
    } else {
        format!("{v:.2}")
    }
}

/// A tick value (µs) without trailing zeros.
fn tick_us(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A latency tick (given in µs) in the unit that reads best: `500 ns`,
/// `2 µs`, `10 ms`, `1 s`.
fn tick_time(v: f64) -> String {
    if v < 1.0 {
        format!("{} ns", tick_us(v * 1000.0))
    } else if v < 1000.0 {
        format!("{} µs", tick_us(v))
    } else if v < 1e6 {
        format!("{} ms", tick_us(v / 1000.0))
    } else {
        format!("{} s", tick_us(v / 1e6))
    }
}

/// A legend's text: at most [`LEGEND_CHARS`] characters (the full label is
/// the series' tooltip).
fn legend_text(label: &str) -> String {
    if label.chars().count() <= LEGEND_CHARS {
        label.to_string()
    } else {
        let mut t: String = label.chars().take(LEGEND_CHARS - 1).collect();
        t.push('…');
        t
    }
}

/// Characters of a label that fit the legend.
const LEGEND_CHARS: usize = 24;

fn pct(change: Option<f64>) -> String {
    change.map_or("–".into(), |c| format!("{:+.1} %", c * 100.0))
}

const CSS: &str = "body{font-family:sans-serif;margin:2em;color:#222;max-width:1300px}\
table{border-collapse:collapse;margin:.5em 0 1.5em}\
td,th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}\
td.l,th.l{text-align:left}.env th{text-align:left;font-weight:normal;color:#555}\
svg{background:#fff;display:block}svg text{font-size:12px;fill:#333}\
.grid line{stroke:#e4e4e4}.axis{stroke:#555}.note{color:#666;font-size:90%}\
.hists{display:flex;flex-wrap:wrap;gap:12px}.hists figure{margin:0}\
.hists figcaption{font-size:90%}.sw{display:inline-block;width:12px;height:12px;\
vertical-align:middle;margin-right:4px}";

/// The page of `r`.
#[must_use]
pub fn render(r: &Report) -> String {
    let mut o = String::with_capacity(64 * 1024);
    let title = escape(&r.title);
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width\"><title>{title}</title>\
         <style>{CSS}</style></head><body>\n<h1>{title}</h1>\n<p>{}</p>\n",
        escape(&r.summary)
    );
    rows_table(&mut o, &r.rows);
    o.push_str(
        "<h2>Percentile distribution</h2>\n<p class=note>Every row on the HDR axis: x is \
         1/(1−p) on a log scale, so each step right is ten times rarer; y is the latency on a \
         log scale.</p>\n",
    );
    percentile_plot(&mut o, &r.rows);
    o.push_str(
        "<h2>Histograms</h2>\n<p class=note>One per row, on a shared log-spaced latency \
         axis; bar height is the count on a log scale.</p>\n",
    );
    histograms(&mut o, &r.rows);
    if let Some(w) = &r.waterfall {
        waterfall(&mut o, w);
    }
    for (heading, t) in &r.tables {
        let _ = writeln!(o, "<h2>{}</h2>", escape(heading));
        table(&mut o, t);
    }
    if let Some(t) = &r.tick_to_trade {
        o.push_str("<h2>Tick to trade</h2>\n");
        table(&mut o, t);
    }
    o.push_str("<h2>Environment</h2>\n<table class=env>");
    for (k, v) in &r.environment {
        let _ = write!(
            o,
            "<tr><th>{}</th><td class=l>{}</td></tr>",
            escape(k),
            escape(v)
        );
    }
    o.push_str("</table>\n</body></html>\n");
    o
}

fn rows_table(o: &mut String, rows: &[Row]) {
    o.push_str(
        "<table id=rows><tr><th class=l>row</th><th>samples</th><th>lost</th><th>p50 µs</th>\
         <th>p90 µs</th><th>p99 µs</th><th>p99.9 µs</th><th>p99.99 µs</th><th>max µs</th>\
         <th>p50 ratio</th><th class=l>note</th></tr>\n",
    );
    for row in rows {
        let _ = write!(
            o,
            "<tr><td class=l>{}</td><td>{}</td><td>{}</td>",
            escape(&row.label),
            row.samples,
            row.lost
        );
        match row.summary {
            Some(s) if row.samples > 0 => {
                for v in [s.p50, s.p90, s.p99, s.p99_9, s.p99_99, s.max] {
                    let _ = write!(o, "<td>{}</td>", us(v));
                }
            }
            _ => o.push_str("<td colspan=6 class=l>no samples</td>"),
        }
        let _ = writeln!(
            o,
            "<td>{}</td><td class=l>{}</td></tr>",
            row.p50_ratio
                .map_or("–".into(), |q| format!("{}×", crate::ladder::ratio(q))),
            escape(row.note.as_deref().unwrap_or(""))
        );
    }
    o.push_str("</table>\n");
}

fn table(o: &mut String, t: &Table) {
    let _ = write!(o, "<p>{}</p>\n<table><tr>", escape(&t.caption));
    for (i, h) in t.header.iter().enumerate() {
        let cls = if i == 0 { " class=l" } else { "" };
        let _ = write!(o, "<th{cls}>{}</th>", escape(h));
    }
    o.push_str("</tr>\n");
    for row in &t.rows {
        o.push_str("<tr>");
        for (i, c) in row.iter().enumerate() {
            let cls = if i == 0 { " class=l" } else { "" };
            let _ = write!(o, "<td{cls}>{}</td>", escape(c));
        }
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
}

/// Plot points `(x, y)`.
type Points = Vec<(f64, f64)>;

/// A row's percentile distribution as `(1/(1-p), value ns)` points, HdrHistogram's
/// quantile iteration (as in the `.hgrm` file), the largest sample last at
/// `1/(1-p) = n` (or at the last quantile's x, when it stepped past `n`). Values below 1 ns are drawn at 1 ns (the log axis).
#[must_use]
pub fn distribution(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let mut pts: Points = Vec::new();
    if h.is_empty() {
        return pts;
    }
    for v in h.iter_quantiles(HGRM_TICKS_PER_HALF_DISTANCE) {
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            pts.push((1.0 / (1.0 - q), v.value_iterated_to().max(1) as f64));
        }
    }
    let last_x = pts.last().map_or(1.0, |p| p.0);
    pts.push((last_x.max(h.len() as f64), h.max().max(1) as f64));
    pts
}

/// The plot area of an SVG: its size and margins.
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn x(&self, f: f64) -> f64 {
        self.left + f.clamp(0.0, 1.0) * (self.w - self.left - self.right)
    }

    fn y(&self, f: f64) -> f64 {
        self.h - self.bottom - f.clamp(0.0, 1.0) * (self.h - self.top - self.bottom)
    }
}

/// Decade bounds (log10 of µs) covering `lo..=hi` ns, at least one decade.
fn decades(lo: f64, hi: f64) -> (f64, f64) {
    let lo = (lo / 1000.0).log10().floor();
    let hi = (hi / 1000.0).log10().ceil();
    if hi <= lo { (lo, lo + 1.0) } else { (lo, hi) }
}

/// Log-axis ticks (µs) from 10^lo to 10^hi: 1-2-5 per decade when few
/// decades, decades alone when many.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut t = Vec::new();
    let steps: &[f64] = if hi - lo <= 3.0 {
        &[1.0, 2.0, 5.0]
    } else {
        &[1.0]
    };
    let mut d = lo;
    while d <= hi {
        for s in steps {
            let v = s * 10f64.powf(d);
            if v.log10() <= hi + 1e-9 {
                t.push(v);
            }
        }
        d += 1.0;
    }
    t
}

/// The percentile label of `1/(1-p) = 10^k`.
fn percentile_label(k: u32) -> String {
    match k {
        0 => "0%".into(),
        1 => "90%".into(),
        2 => "99%".into(),
        k => format!("99.{}%", "9".repeat(k as usize - 2)),
    }
}

fn percentile_plot(o: &mut String, rows: &[Row]) {
    let series: Vec<(usize, &Row, Points)> = rows
        .iter()
        .filter_map(|r| r.plotted().map(|h| (r, distribution(h))))
        .enumerate()
        .map(|(i, (r, d))| (i, r, d))
        .collect();
    let f = Frame {
        w: 960.0,
        h: 460.0,
        left: 70.0,
        right: 190.0,
        top: 20.0,
        bottom: 50.0,
    };
    let _ = write!(
        o,
        "<svg id=percentiles class=plot data-plot=percentiles width={} height={} \
         viewBox=\"0 0 {} {}\" role=img aria-label=\"percentile distribution\">",
        f.w, f.h, f.w, f.h
    );
    // x: 10^4 (99.99%) at least, one decade more for each a row reaches.
    let reach = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let kmax = (reach.log10().ceil() as u32).clamp(4, 9);
    let xpos = |x: f64| f.x(x.max(1.0).log10() / f64::from(kmax));
    let (vlo, vhi) = series
        .iter()
        .flat_map(|s| s.2.iter().map(|p| p.1))
        .fold((f64::INFINITY, 0.0f64), |(a, b), v| (a.min(v), b.max(v)));
    let (ylo, yhi) = if vhi > 0.0 {
        decades(vlo, vhi)
    } else {
        (0.0, 1.0)
    };
    let ypos = |ns: f64| f.y(((ns / 1000.0).log10() - ylo) / (yhi - ylo));
    o.push_str("<g class=grid>");
    let mut xt: Vec<(f64, String)> = (0..=kmax)
        .map(|k| (10f64.powi(k as i32), percentile_label(k)))
        .collect();
    xt.insert(1, (2.0, "50%".into()));
    for (x, _) in &xt {
        let px = xpos(*x);
        let _ = write!(
            o,
            "<line x1={px:.1} x2={px:.1} y1={:.1} y2={:.1} />",
            f.top,
            f.h - f.bottom
        );
    }
    let yt = log_ticks(ylo, yhi);
    for v in &yt {
        let py = ypos(v * 1000.0);
        let _ = write!(
            o,
            "<line x1={:.1} x2={:.1} y1={py:.1} y2={py:.1} />",
            f.left,
            f.w - f.right
        );
    }
    o.push_str("</g>");
    axes(o, &f);
    for (x, label) in &xt {
        let _ = write!(
            o,
            "<text class=xtick x={:.1} y={:.1} text-anchor=middle>{label}</text>",
            xpos(*x),
            f.h - f.bottom + 16.0
        );
    }
    for v in &yt {
        let _ = write!(
            o,
            "<text class=ytick x={:.1} y={:.1} text-anchor=end>{}</text>",
            f.left - 6.0,
            ypos(v * 1000.0) + 4.0,
            tick_time(*v)
        );
    }
    axis_labels(
        o,
        &f,
        "percentile (x = 1/(1−p), log scale)",
        "latency (log scale)",
    );
    for (i, r, pts) in &series {
        let mut d = String::new();
        for (j, (x, v)) in pts.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1}",
                if j == 0 { "M" } else { " L" },
                xpos(*x),
                ypos(*v)
            );
        }
        let _ = write!(
            o,
            "<path class=series data-row=\"{}\" d=\"{d}\" fill=none stroke=\"{}\" \
             stroke-width=2{}><title>{}</title></path>",
            escape(&r.label),
            colour(*i),
            dash(*i),
            escape(&r.label)
        );
    }
    // The legend, right of the plot.
    for (i, r, _) in &series {
        let y = f.top + 10.0 + 18.0 * *i as f64;
        let _ = write!(
            o,
            "<g class=legend><line x1={:.1} x2={:.1} y1={y:.1} y2={y:.1} stroke=\"{}\" \
             stroke-width=3{} /><text x={:.1} y={:.1}>{}</text></g>",
            f.w - f.right + 12.0,
            f.w - f.right + 36.0,
            colour(*i),
            dash(*i),
            f.w - f.right + 42.0,
            y + 4.0,
            escape(&legend_text(&r.label))
        );
    }
    if series.is_empty() {
        let _ = write!(
            o,
            "<text x={:.1} y={:.1} text-anchor=middle>no row has samples</text>",
            f.x(0.5),
            f.y(0.5)
        );
    }
    o.push_str("</svg>\n");
    empty_rows_note(o, rows);
}

fn empty_rows_note(o: &mut String, rows: &[Row]) {
    let empty: Vec<String> = rows
        .iter()
        .filter(|r| r.plotted().is_none())
        .map(|r| escape(&r.label))
        .collect();
    if !empty.is_empty() {
        let _ = writeln!(
            o,
            "<p class=note>Not drawn, no samples: {}.</p>",
            empty.join(", ")
        );
    }
}

fn axes(o: &mut String, f: &Frame) {
    let _ = write!(
        o,
        "<path class=axis fill=none d=\"M{:.1},{:.1} L{:.1},{:.1} L{:.1},{:.1}\" />",
        f.left,
        f.top,
        f.left,
        f.h - f.bottom,
        f.w - f.right,
        f.h - f.bottom
    );
}

fn axis_labels(o: &mut String, f: &Frame, x: &str, y: &str) {
    let _ = write!(
        o,
        "<text class=xlabel x={:.1} y={:.1} text-anchor=middle>{x}</text>\
         <text class=ylabel transform=\"translate({:.1},{:.1}) rotate(-90)\" \
         text-anchor=middle>{y}</text>",
        (f.left + f.w - f.right) / 2.0,
        f.h - 8.0,
        14.0,
        (f.top + f.h - f.bottom) / 2.0
    );
}

/// Bins of the histograms: log-spaced over all rows' range.
const BINS: usize = 48;

fn histograms(o: &mut String, rows: &[Row]) {
    let plotted: Vec<(usize, &Row, &Histogram<u64>)> = rows
        .iter()
        .filter_map(|r| r.plotted().map(|h| (r, h)))
        .enumerate()
        .map(|(i, (r, h))| (i, r, h))
        .collect();
    let (lo, hi) = plotted
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), (_, _, h)| {
            (a.min(h.min().max(1) as f64), b.max(h.max().max(1) as f64))
        });
    let (dlo, dhi) = if hi > 0.0 {
        decades(lo, hi)
    } else {
        (0.0, 1.0)
    };
    o.push_str("<div class=hists>");
    for (i, r, h) in &plotted {
        let mut counts = [0u64; BINS];
        for v in h.iter_recorded() {
            let x = ((v.value_iterated_to().max(1) as f64 / 1000.0).log10() - dlo) / (dhi - dlo);
            let b = ((x * BINS as f64) as usize).min(BINS - 1);
            counts[b] += v.count_at_value();
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
        let f = Frame {
            w: 420.0,
            h: 190.0,
            left: 50.0,
            right: 10.0,
            top: 10.0,
            bottom: 40.0,
        };
        let _ = write!(
            o,
            "<figure><figcaption><span class=sw style=\"background:{}\"></span>{}</figcaption>\
             <svg class=\"plot histogram\" data-plot=histogram data-row=\"{}\" width={} height={} \
             viewBox=\"0 0 {} {}\" role=img>",
            colour(*i),
            escape(&r.label),
            escape(&r.label),
            f.w,
            f.h,
            f.w,
            f.h
        );
        let yt = log_ticks(dlo, dhi);
        o.push_str("<g class=grid>");
        for v in &yt {
            let px = f.x((v.log10() - dlo) / (dhi - dlo));
            let _ = write!(
                o,
                "<line x1={px:.1} x2={px:.1} y1={:.1} y2={:.1} />",
                f.top,
                f.h - f.bottom
            );
        }
        o.push_str("</g>");
        axes(o, &f);
        let _ = write!(
            o,
            "<g class=series data-row=\"{}\" fill=\"{}\">",
            escape(&r.label),
            colour(*i)
        );
        let bw = (f.w - f.left - f.right) / BINS as f64;
        let scale = (top + 1.0).log10();
        for (b, c) in counts.iter().enumerate().filter(|(_, c)| **c > 0) {
            let y = f.y((*c as f64 + 1.0).log10() / scale);
            let _ = write!(
                o,
                "<rect x={:.1} y={y:.1} width={:.1} height={:.1}><title>{c}</title></rect>",
                f.x(b as f64 / BINS as f64),
                (bw - 1.0).max(0.5),
                f.h - f.bottom - y
            );
        }
        o.push_str("</g>");
        // Labels at least 48 px apart (the grid keeps every tick).
        let mut last = f64::NEG_INFINITY;
        for v in &yt {
            let x = f.x((v.log10() - dlo) / (dhi - dlo));
            if x - last < 48.0 {
                continue;
            }
            last = x;
            let _ = write!(
                o,
                "<text class=xtick x={x:.1} y={:.1} text-anchor=middle>{}</text>",
                f.h - f.bottom + 14.0,
                tick_time(*v)
            );
        }
        let _ = write!(
            o,
            "<text class=ytick x={:.1} y={:.1} text-anchor=end>{}</text>",
            f.left - 4.0,
            f.top + 10.0,
            top as u64
        );
        axis_labels(o, &f, "latency (log scale)", "count (log)");
        o.push_str("</svg></figure>");
    }
    o.push_str("</div>\n");
    if plotted.is_empty() {
        o.push_str("<p class=note>No row has samples.</p>\n");
    }
    empty_rows_note(o, rows);
}

fn waterfall(o: &mut String, w: &Waterfall) {
    let _ = write!(o, "<h2>Ladder</h2>\n<p>{}</p>\n", escape(&w.caption));
    let f = Frame {
        w: 960.0,
        h: 340.0,
        left: 70.0,
        right: 20.0,
        top: 20.0,
        bottom: 90.0,
    };
    let top = w
        .steps
        .iter()
        .filter_map(|s| s.p50_ns)
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.1;
    let ypos = |ns: f64| f.y(ns / top);
    let _ = write!(
        o,
        "<svg id=waterfall class=plot data-plot=waterfall width={} height={} \
         viewBox=\"0 0 {} {}\" role=img aria-label=waterfall>",
        f.w, f.h, f.w, f.h
    );
    // Linear µs ticks: 1-2-5 steps, about five of them.
    let raw = top / 1000.0 / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    o.push_str("<g class=grid>");
    let mut ticks = Vec::new();
    let mut t = 0.0;
    while t * 1000.0 <= top && ticks.len() < 50 {
        ticks.push(t);
        t += step;
    }
    for t in &ticks {
        let py = ypos(t * 1000.0);
        let _ = write!(
            o,
            "<line x1={:.1} x2={:.1} y1={py:.1} y2={py:.1} />",
            f.left,
            f.w - f.right
        );
    }
    o.push_str("</g>");
    axes(o, &f);
    for t in &ticks {
        let _ = write!(
            o,
            "<text class=ytick x={:.1} y={:.1} text-anchor=end>{}</text>",
            f.left - 6.0,
            ypos(t * 1000.0) + 4.0,
            tick_us(*t)
        );
    }
    let n = w.steps.len().max(1) as f64;
    let band = (f.w - f.left - f.right) / n;
    let mut prev: Option<u64> = None;
    for (i, s) in w.steps.iter().enumerate() {
        let x = f.left + band * i as f64 + band * 0.15;
        let bw = band * 0.7;
        let cx = x + bw / 2.0;
        let label = escape(&s.label);
        match s.p50_ns {
            Some(p) => {
                let (from, fill) = match prev {
                    None => (0, "#4e79a7"),
                    Some(q) if p <= q => (q, "#59a14f"),
                    Some(q) => (q, "#e15759"),
                };
                let (y0, y1) = (ypos(from as f64), ypos(p as f64));
                let (ytop, h) = (y0.min(y1), (y0 - y1).abs().max(1.0));
                let _ = write!(
                    o,
                    "<rect class=step data-step=\"{label}\" x={x:.1} y={ytop:.1} width={bw:.1} \
                     height={h:.1} fill=\"{fill}\"><title>{label}: {} µs</title></rect>\
                     <text x={cx:.1} y={:.1} text-anchor=middle>{}</text>",
                    us(p),
                    ytop - 4.0,
                    us(p)
                );
                if i + 1 < w.steps.len() {
                    let _ = write!(
                        o,
                        "<line x1={:.1} x2={:.1} y1={y1:.1} y2={y1:.1} stroke=#888 \
                         stroke-dasharray=\"3 3\" />",
                        x + bw,
                        x + band
                    );
                }
                prev = Some(p);
            }
            None => {
                let _ = write!(
                    o,
                    "<text class=step-na data-step=\"{label}\" x={cx:.1} y={:.1} \
                     text-anchor=middle>n/a</text>",
                    f.h - f.bottom - 6.0
                );
            }
        }
        let _ = write!(
            o,
            "<text x={cx:.1} y={:.1} text-anchor=end transform=\"rotate(-30 {cx:.1} {:.1})\">\
             {label}</text>",
            f.h - f.bottom + 16.0,
            f.h - f.bottom + 16.0
        );
    }
    let _ = writeln!(
        o,
        "<text class=ylabel transform=\"translate(14,{:.1}) rotate(-90)\" \
         text-anchor=middle>p50 µs</text></svg>",
        (f.top + f.h - f.bottom) / 2.0
    );
    o.push_str(
        "<p class=note>Bars: the baseline (blue), then each step's change from the one before \
         (green: faster, red: slower).</p>\n<table id=ladder><tr><th class=l>step</th>\
         <th>p50 µs</th><th>vs previous</th><th>vs baseline</th><th class=l>claimed</th>\
         <th class=l>verdict</th></tr>\n",
    );
    for s in &w.steps {
        let _ = writeln!(
            o,
            "<tr><td class=l>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=l>{}</td>\
             <td class=l>{}</td></tr>",
            escape(&s.label),
            s.p50_ns.map_or("–".into(), us),
            pct(s.vs_previous),
            pct(s.vs_baseline),
            escape(&s.claim),
            escape(&s.verdict)
        );
    }
    o.push_str("</table>\n");
}

/// A file name for a row's `.hgrm`: `NN-label.hgrm`, the label's letters,
/// digits, `.`, `-` and `_` kept and anything else (`/`, `+`, spaces, path
/// separators) made `_`, the index keeping names unique.
#[must_use]
pub fn hgrm_file_name(index: usize, label: &str) -> String {
    let safe: String = label
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    format!("{index:02}-{safe}.hgrm")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(values: impl IntoIterator<Item = u64>) -> LatencyStats {
        let mut s = LatencyStats::new();
        for v in values {
            s.record(v);
        }
        s
    }

    fn count(hay: &str, needle: &str) -> usize {
        hay.matches(needle).count()
    }

    /// The text of the element `<svg id=ID ...>...</svg>`.
    fn svg<'a>(page: &'a str, id: &str) -> &'a str {
        let start = page.find(&format!("<svg id={id} ")).expect("svg present");
        let end = page[start..].find("</svg>").expect("svg closed");
        &page[start..start + end]
    }

    fn report(rows: Vec<Row>) -> Report {
        Report {
            title: "t".into(),
            summary: "s".into(),
            rows,
            ..Report::default()
        }
    }

    #[test]
    fn one_series_per_row_with_samples_in_each_plot() {
        let rows = vec![
            Row::from_stats("udp/block", &stats((0..10_000).map(|i| 50_000 + i)), 0),
            Row::from_stats("udp/spin", &stats((0..10_000).map(|i| 4_000 + i % 700)), 2),
            Row::from_stats("mem/spin", &stats((0..100_000).map(|i| 500 + i % 97)), 0),
            Row::from_stats("xdp/spin", &LatencyStats::new(), 5),
        ];
        let page = render(&report(rows));
        let p = svg(&page, "percentiles");
        assert_eq!(count(p, "class=series "), 3);
        for l in ["udp/block", "udp/spin", "mem/spin"] {
            assert_eq!(count(p, &format!("data-row=\"{l}\"")), 1, "{l}");
        }
        assert!(!p.contains("xdp/spin"));
        assert_eq!(count(&page, "data-plot=histogram"), 3);
        assert_eq!(count(&page, "<g class=series "), 3);
        assert!(page.contains("Not drawn, no samples: xdp/spin."));
        // The table keeps the empty row, with its loss.
        assert!(page.contains("<td class=l>xdp/spin</td><td>0</td><td>5</td><td colspan=6"));
    }

    #[test]
    fn percentile_axis_ticks_reach_what_the_rows_reach() {
        let page = render(&report(vec![Row::from_stats("a", &stats(1000..2000), 0)]));
        let p = svg(&page, "percentiles");
        for t in ["0%", "50%", "90%", "99%", "99.9%", "99.99%"] {
            assert!(p.contains(&format!("text-anchor=middle>{t}</text>")), "{t}");
        }
        assert!(
            !p.contains(">99.999%<"),
            "1000 samples do not reach 99.999%"
        );
        // Ticks in order, left to right.
        let xs: Vec<f64> = p
            .split("<text class=xtick x=")
            .skip(1)
            .map(|s| s.split(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(xs.len(), 6);
        assert!(xs.windows(2).all(|w| w[0] < w[1]), "{xs:?}");
        // 300 000 samples reach 1/(1-p) = 3e5: up to 99.9999%.
        let page = render(&report(vec![Row::from_stats(
            "b",
            &stats((0..300_000).map(|i| 1000 + i % 5000)),
            0,
        )]));
        let p = svg(&page, "percentiles");
        assert!(p.contains(">99.999%<") && p.contains(">99.9999%<"));
        assert!(!p.contains(">99.99999%<"));
    }

    #[test]
    fn y_ticks_cover_the_values_in_microseconds() {
        let page = render(&report(vec![Row::from_stats(
            "a",
            &stats([800, 900, 30_000]),
            0,
        )]));
        let p = svg(&page, "percentiles");
        // 0.8 µs .. 30 µs: decades 0.1 to 100 µs, 1-2-5 ticks.
        for t in [
            "100 ns", "200 ns", "500 ns", "1 µs", "2 µs", "5 µs", "10 µs", "20 µs", "50 µs",
            "100 µs",
        ] {
            assert!(p.contains(&format!("text-anchor=end>{t}</text>")), "{t}");
        }
    }

    #[test]
    fn everything_from_the_input_is_escaped() {
        let evil = "<script>alert('x')</script>\"&";
        let mut row = Row::from_stats(evil, &stats([1000, 2000]), 0);
        row.note = Some(evil.into());
        let mut r = report(vec![row, Row::from_stats(evil, &LatencyStats::new(), 0)]);
        r.title = evil.into();
        r.summary = evil.into();
        r.environment = vec![(evil.into(), evil.into())];
        r.tick_to_trade = Some(Table {
            caption: evil.into(),
            header: vec![evil.into()],
            rows: vec![vec![evil.into()]],
        });
        r.waterfall = Some(Waterfall {
            caption: evil.into(),
            steps: vec![Step {
                label: evil.into(),
                p50_ns: Some(1000),
                claim: evil.into(),
                verdict: evil.into(),
                ..Step::default()
            }],
        });
        let page = render(&r);
        assert!(!page.contains("<script"), "{page}");
        assert!(!page.contains("'x'"));
        assert!(!page.contains(evil));
        let escaped = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&amp;";
        // title ×2, summary, table row + note, empty-row notes ×2, legend,
        // series data-row + title, histogram caption + data-row ×2,
        // environment ×2, t2t ×3, waterfall caption, step ×4 (data-step,
        // title, axis label, table), claim, verdict.
        assert!(count(&page, escaped) >= 20, "{}", count(&page, escaped));
    }

    #[test]
    fn the_page_fetches_nothing() {
        let mut r = report(vec![Row::from_stats("a", &stats([1000, 2000]), 0)]);
        r.waterfall = Some(Waterfall::default());
        let page = render(&r);
        for bad in [
            "http:", "https:", "src=", "href=", "url(", "@import", "<link", "<script",
        ] {
            assert!(!page.contains(bad), "{bad}");
        }
    }

    #[test]
    fn no_rows_and_no_samples_render_without_series() {
        for rows in [
            Vec::new(),
            vec![Row {
                label: "empty".into(),
                ..Row::default()
            }],
        ] {
            let page = render(&report(rows));
            assert_eq!(count(&page, "class=series"), 0);
            assert!(page.contains("no row has samples"));
            assert!(!page.contains("NaN") && !page.contains("inf"), "{page}");
        }
    }

    #[test]
    fn huge_and_tiny_values_stay_finite_and_on_the_plot() {
        let mut h = Histogram::<u64>::new_with_bounds(1, u64::MAX / 2, 3).unwrap();
        h.record(0).unwrap();
        h.record(1).unwrap();
        h.record(u64::MAX / 4).unwrap();
        let row = Row {
            label: "huge".into(),
            samples: 3,
            summary: Some(Summary {
                max: u64::MAX,
                ..Summary::default()
            }),
            histogram: Some(h),
            ..Row::default()
        };
        let sat = Row::from_stats("60s", &stats([1, 70_000_000_000]), 0);
        let page = render(&report(vec![row, sat]));
        assert!(!page.contains("NaN") && !page.contains("inf"));
        assert_eq!(count(svg(&page, "percentiles"), "class=series "), 2);
        // Every path coordinate inside the plot's frame.
        let p = svg(&page, "percentiles");
        for d in p.split(" d=\"M").skip(1) {
            let d = d.split('"').next().unwrap();
            for pt in d.split(" L") {
                let (x, y) = pt.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!(
                    (70.0..=770.0).contains(&x) && (20.0..=410.0).contains(&y),
                    "{pt}"
                );
            }
        }
        assert!(page.contains(&us(u64::MAX)));
    }

    #[test]
    fn distribution_ends_at_the_max_at_n() {
        let s = stats(1..=1000);
        let d = distribution(s.histogram());
        assert_eq!(d.first().unwrap().0, 1.0);
        assert!(d.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        // The max at n = 1000, or where the last quantile stepped past it.
        let last = d.last().unwrap();
        assert_eq!(last.1, 1000.0);
        assert!((1000.0..1100.0).contains(&last.0), "{last:?}");
    }

    #[test]
    fn waterfall_changes_and_bars() {
        let mut w = Waterfall {
            caption: "UDP p50".into(),
            steps: [
                ("baseline", Some(60_000)),
                ("+ CPU affinity", Some(45_000)),
                ("+ IRQ affinity", None),
                ("+ busy polling", Some(50_000)),
                ("+ spinning", Some(5_000)),
            ]
            .into_iter()
            .map(|(l, p)| Step {
                label: l.into(),
                p50_ns: p,
                claim: "15–25 %".into(),
                verdict: "holds".into(),
                ..Step::default()
            })
            .collect(),
        };
        w.fill_changes();
        let c: Vec<(Option<f64>, Option<f64>)> = w
            .steps
            .iter()
            .map(|s| {
                (
                    s.vs_previous.map(|x| (x * 1000.0).round()),
                    s.vs_baseline.map(|x| (x * 1000.0).round()),
                )
            })
            .collect();
        assert_eq!(
            c,
            [
                (None, Some(0.0)),
                (Some(-250.0), Some(-250.0)),
                (None, None),
                (Some(111.0), Some(-167.0)),
                (Some(-900.0), Some(-917.0)),
            ]
        );
        let mut r = report(Vec::new());
        r.waterfall = Some(w);
        let page = render(&r);
        let s = svg(&page, "waterfall");
        assert_eq!(count(s, "<rect class=step "), 4);
        assert_eq!(count(s, "class=step-na"), 1);
        assert_eq!(count(s, "fill=\"#59a14f\""), 2, "two faster steps");
        assert_eq!(count(s, "fill=\"#e15759\""), 1, "one slower step");
        assert!(page.contains("<td>-25.0 %</td><td>-25.0 %</td>"));
        assert!(page.contains("<td>+11.1 %</td><td>-16.7 %</td>"));
        assert_eq!(count(&page, "<td class=l>holds</td>"), 5);
    }

    #[test]
    fn tick_units_and_legend_text() {
        assert_eq!(tick_time(0.05), "50 ns");
        assert_eq!(tick_time(0.5), "500 ns");
        assert_eq!(tick_time(2.0), "2 µs");
        assert_eq!(tick_time(5000.0), "5 ms");
        assert_eq!(tick_time(6e7), "60 s");
        assert_eq!(legend_text("udp/spin"), "udp/spin");
        let long = "x".repeat(40);
        assert_eq!(legend_text(&long).chars().count(), LEGEND_CHARS);
        assert!(legend_text(&long).ends_with('…'));
    }

    #[test]
    fn hgrm_names_are_safe_and_unique() {
        assert_eq!(hgrm_file_name(3, "udp/spin"), "03-udp_spin.hgrm");
        assert_eq!(
            hgrm_file_name(4, "uring/spin+multishot"),
            "04-uring_spin_multishot.hgrm"
        );
        assert_eq!(
            hgrm_file_name(5, "../../etc/passwd"),
            "05-_.._etc_passwd.hgrm"
        );
        assert_eq!(hgrm_file_name(6, ".."), "06-.hgrm");
        assert_ne!(hgrm_file_name(1, "a/b"), hgrm_file_name(2, "a_b"));
        assert!(!hgrm_file_name(7, &"x".repeat(1000)).contains(&"x".repeat(81)));
    }
}
