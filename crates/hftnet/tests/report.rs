//! The HTML report in a real browser: headless Chromium (Debian's
//! `chromium`, installed by `.ci/run`) loads a report from a synthetic
//! input and one from a short `hftnet lab` run, and the tests check that
//! the page raised no console error, that each plot has exactly one series
//! per row with samples, and that a screenshot shows the series drawn.
//!
//! Chromium runs twice per page (`--dump-dom`, then `--screenshot`) on a
//! copy of the page with a probe added: a script at the top of `<head>`
//! collects errors (`error` events, also of resources, `console.error` /
//! `console.warn`), one at the end of `<body>` writes them and the plots'
//! positions into a `<pre id="probe">` the dumped DOM carries (again on
//! `load`, for errors that come later). Chromium's own stderr is
//! searched for console lines too. Without chromium the tests are skipped
//! with the reason (a failure under CI).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Proc, TempDir};
use hftnet_bench::html::{Report, Row, Step, Table, Waterfall, render};
use hftnet_bench::stats::LatencyStats;

const WIDTH: u32 = 1300;
const HEIGHT: u32 = 2400;

const HEAD_PROBE: &str = "<script>window.__errs=[];\
window.addEventListener('error',function(e){__errs.push('error: '+(e.message||\
(e.target&&e.target.outerHTML)||e.type));},true);\
['error','warn'].forEach(function(k){var f=console[k];console[k]=function(){\
__errs.push(k+': '+Array.prototype.join.call(arguments,' '));f.apply(console,arguments);};});\
</script>";

const BODY_PROBE: &str = "<script>(function(){var q=function(s){var e=document.querySelector(s);\
if(!e)return null;var r=e.getBoundingClientRect();return [r.left+scrollX,r.top+scrollY,\
r.width,r.height];};var p=document.createElement('pre');p.id='probe';\
var w=function(){p.textContent=JSON.stringify({errors:__errs,percentiles:q('#percentiles'),\
histogram:q('svg.histogram'),injected:document.querySelectorAll('#pwned').length});};\
w();document.body.appendChild(p);window.addEventListener('load',w);})();</script>";

/// Chromium's path, or `None` after saying why the test is skipped.
fn chromium(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        hftnet_lab::skip::skip(
            test,
            &"chromium is not installed (apt-get install chromium; .ci/run installs it)",
        );
    }
    found
}

/// Runs chromium headless on `page` with `extra` arguments, bounded in
/// time; returns stdout and stderr.
fn run_chromium(bin: &Path, dir: &Path, page: &Path, extra: &str) -> (String, String) {
    let profile = dir.join(format!("profile{}", extra.len()));
    let child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
            "--enable-logging=stderr",
            "--v=0",
            &format!("--window-size={WIDTH},{HEIGHT}"),
            &format!("--user-data-dir={}", profile.display()),
            extra,
            &format!("file://{}", page.display()),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chromium");
    let out = common::finish(
        Proc(Some(child)),
        Duration::from_secs(120),
        &format!("chromium {extra}"),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(
        out.status.success(),
        "chromium {extra} failed ({}):\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The values of attribute `name` in `html`, in order, unescaped.
fn attrs(html: &str, name: &str) -> Vec<String> {
    let key = format!("{name}=\"");
    html.split(&key)
        .skip(1)
        .map(|s| unescape(s.split('"').next().unwrap()))
        .collect()
}

/// The serialised element from `<tag` with `marker` in its start tag to its
/// `</tag>` (no nesting of the same tag).
fn element<'a>(dom: &'a str, tag: &str, marker: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find(&format!("<{tag} ")) {
        let from = &rest[i..];
        let end = from.find(&format!("</{tag}>")).expect("element closed");
        let start_tag = &from[..from.find('>').unwrap()];
        if start_tag.contains(marker) {
            out.push(&from[..end]);
        }
        rest = &from[end..];
    }
    out
}

/// What the browser showed of one page.
struct Seen {
    /// The row labels of the percentile plot's series, in order.
    percentile_rows: Vec<String>,
    /// Their stroke colours.
    colours: Vec<String>,
    /// The row labels of the histograms' series, one list per histogram.
    histogram_rows: Vec<Vec<String>>,
    /// The page as dumped.
    dom: String,
    /// What the probe wrote (errors, boxes, `injected`: elements with id
    /// `pwned`).
    probe: serde_json::Value,
}

/// Loads the report `html` in chromium and checks it raised no error and
/// that the percentile plot was drawn; returns what the DOM shows.
fn check_in_chromium(bin: &Path, html: &str, dir: &Path) -> Seen {
    assert!(!html.contains("<script"), "the report itself has no script");
    let probed = html
        .replacen("<head>", &format!("<head>{HEAD_PROBE}"), 1)
        .replacen("</body>", &format!("{BODY_PROBE}</body>"), 1);
    let page = dir.join("probed.html");
    std::fs::write(&page, probed).unwrap();

    let (dom, stderr) = run_chromium(bin, dir, &page, "--dump-dom");
    let console: Vec<&str> = stderr.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console output: {console:#?}");
    let probe = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("no probe in the dumped DOM:\n{dom}"));
    let probe: serde_json::Value = serde_json::from_str(&unescape(probe)).unwrap();
    assert_eq!(probe["errors"], serde_json::json!([]), "page errors");

    let plot = element(&dom, "svg", "id=\"percentiles\"");
    assert_eq!(plot.len(), 1, "one percentile plot");
    let series = element(plot[0], "path", "class=\"series\"");
    let percentile_rows = series.iter().flat_map(|s| attrs(s, "data-row")).collect();
    let colours: Vec<String> = series.iter().flat_map(|s| attrs(s, "stroke")).collect();
    let histogram_rows = element(&dom, "svg", "data-plot=\"histogram\"")
        .iter()
        .map(|h| {
            element(h, "g", "class=\"series\"")
                .iter()
                .flat_map(|g| attrs(g, "data-row"))
                .collect()
        })
        .collect();

    // The screenshot: the series' colours drawn inside the plot's box.
    let shot = dir.join("shot.png");
    run_chromium(bin, dir, &page, &format!("--screenshot={}", shot.display()));
    let rect: Vec<f64> = probe["percentiles"]
        .as_array()
        .expect("the plot's box")
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let (x0, y0) = (rect[0] as u32, rect[1] as u32);
    let (x1, y1) = (
        ((rect[0] + rect[2]) as u32).min(info.width),
        ((rect[1] + rect[3]) as u32).min(info.height),
    );
    assert!(
        y1 > y0 + 100 && x1 > x0 + 100,
        "plot box {rect:?} on {}x{}",
        info.width,
        info.height
    );
    let pixel = |x: u32, y: u32| {
        let i = (y as usize * info.width as usize + x as usize) * channels;
        [buf[i], buf[i + 1], buf[i + 2]]
    };
    let mut background = 0;
    let mut coloured = 0;
    for y in y0..y1 {
        for x in x0..x1 {
            let [r, g, b] = pixel(x, y);
            if [r, g, b] == [255, 255, 255] {
                background += 1;
            }
            if r.max(g).max(b) - r.min(g).min(b) > 40 {
                coloured += 1;
            }
        }
    }
    let area = (x1 - x0) * (y1 - y0);
    assert!(
        background > area / 2,
        "the plot's background is white: {background} of {area} pixels"
    );
    assert!(
        coloured > 300,
        "the series are drawn: only {coloured} coloured pixels of {area} in the plot"
    );
    // Each series' own colour is on screen (the legend alone has 24×3
    // pixels of it; the line has hundreds more).
    let hex = |c: &str| {
        let v = u32::from_str_radix(c.trim_start_matches('#'), 16).unwrap();
        [(v >> 16) as u8, (v >> 8) as u8, v as u8]
    };
    let unique: std::collections::BTreeSet<&String> = colours.iter().collect();
    for c in unique {
        let want = hex(c);
        let n = (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (x, y)))
            .filter(|&(x, y)| {
                let p = pixel(x, y);
                (0..3).all(|k| p[k].abs_diff(want[k]) <= 8)
            })
            .count();
        assert!(n > 60, "colour {c}: {n} pixels");
    }
    Seen {
        percentile_rows,
        colours,
        histogram_rows,
        dom,
        probe,
    }
}

fn stats(values: impl Iterator<Item = u64>) -> LatencyStats {
    let mut s = LatencyStats::new();
    for v in values {
        s.record(v);
    }
    s
}

#[test]
fn synthetic_report_loads_clean_with_one_series_per_row() {
    let Some(bin) = chromium("synthetic_report_loads_clean_with_one_series_per_row") else {
        return;
    };
    let dir = TempDir::new("hftnet-report-synthetic");
    let evil = "<b id=\"pwned\">udp</b>/spin&'x'";
    let mut rows = vec![
        Row::from_stats(
            "udp/block",
            &stats((0..20_000).map(|i| 40_000 + i * 7 % 9_000)),
            0,
        ),
        Row::from_stats(evil, &stats((0..50_000).map(|i| 5_000 + i * 13 % 3_000)), 3),
        Row::from_stats(
            "mem/spin",
            &stats((0..200_000).map(|i| 400 + i * 31 % 500)),
            0,
        ),
        Row::from_stats("xdp/spin", &LatencyStats::new(), 10),
        Row::from_stats(
            "stall",
            &stats((0..1000).map(|i| if i == 999 { 70_000_000_000 } else { 9_000 + i })),
            0,
        ),
    ];
    rows[1].note = Some("a <note> & more".into());
    let mut waterfall = Waterfall {
        caption: "UDP round trip p50".into(),
        steps: [
            ("baseline", Some(60_000), "–"),
            ("+ CPU affinity", Some(48_000), "10–20 %"),
            ("+ IRQ affinity", None, "15–25 %"),
            ("+ busy polling", Some(30_000), "40–60 %"),
            ("+ spinning", Some(7_000), "–"),
        ]
        .into_iter()
        .map(|(l, p, c)| Step {
            label: l.into(),
            p50_ns: p,
            claim: c.into(),
            verdict: if p.is_some() {
                "holds".into()
            } else {
                "not measurable here: veth has no IRQs".into()
            },
            ..Step::default()
        })
        .collect(),
    };
    waterfall.fill_changes();
    let report = Report {
        title: "synthetic <report>".into(),
        summary: "rows of every shape".into(),
        rows,
        waterfall: Some(waterfall),
        tick_to_trade: Some(Table {
            caption: "tick to trade".into(),
            header: vec!["row".into(), "int p50".into()],
            rows: vec![vec!["udp/spin".into(), "12.00".into()]],
        }),
        tables: vec![(
            "Rungs, claims <and> verdicts".into(),
            Table {
                caption: "the ladder".into(),
                header: vec!["rung".into(), "verdict".into()],
                rows: vec![vec!["+ busy polling".into(), "holds".into()]],
            },
        )],
        environment: vec![("kernel".into(), "6.1 <x>".into())],
    };
    let seen = check_in_chromium(&bin, &render(&report), &dir.0);
    let with_samples = ["udp/block", evil, "mem/spin", "stall"];
    assert_eq!(seen.percentile_rows, with_samples);
    let distinct: std::collections::BTreeSet<_> = seen.colours.iter().collect();
    assert_eq!(distinct.len(), with_samples.len(), "{:?}", seen.colours);
    assert_eq!(
        seen.histogram_rows,
        with_samples.map(|l| vec![l.to_string()])
    );
    // The label stayed text: no element came out of it.
    assert_eq!(seen.probe["injected"], 0);
    assert!(seen.dom.contains("id=\"pwned\"&gt;udp&lt;/b&gt;/spin"));
    assert!(seen.dom.contains("Not drawn, no samples: xdp/spin."));
    // The waterfall: a bar per measured step, the unmeasured one marked.
    let wf = element(&seen.dom, "svg", "id=\"waterfall\"");
    assert_eq!(wf.len(), 1);
    assert_eq!(element(wf[0], "rect", "class=\"step\"").len(), 4);
    assert_eq!(attrs(wf[0], "data-step").len(), 5);
}

/// The JSON's `hftnet_commit`: in a git checkout (this one), twelve hex
/// digits (and `-dirty` when the tree differs), else `unknown`.
fn assert_commit(j: &serde_json::Value) {
    let c = j["hftnet_commit"].as_str().unwrap();
    let in_git = std::process::Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "ls-files",
            "--error-unmatch",
            "build.rs",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if in_git {
        let hex = c.strip_suffix("-dirty").unwrap_or(c);
        assert!(
            hex.len() == 12 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{c:?}"
        );
    } else {
        assert_eq!(c, "unknown");
    }
}

/// Runs `hftnet lab ARGS --report R --json J --hgrm-dir D` in a fresh
/// directory (kept until the returned value drops); fails the test unless
/// it exits 0. Returns the directory, the page and the parsed JSON, and the
/// `.hgrm` directory.
fn lab_with_report(tag: &str, args: &[&str]) -> (TempDir, String, serde_json::Value, PathBuf) {
    // One lab run at a time in this binary: the ladder isolates a CPU and
    // moves every process of the host (a lab started meanwhile would see
    // one CPU and measure no floor).
    static ONE_LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = TempDir::new(tag);
    let (report, json, hgrm) = (
        dir.0.join("r.html"),
        dir.0.join("r.json"),
        dir.0.join("hgrm"),
    );
    let mut all = vec!["lab"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--report",
        report.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
        "--hgrm-dir",
        hgrm.to_str().unwrap(),
    ]);
    let out = common::finish(
        common::spawn(&all),
        Duration::from_secs(180),
        &format!("hftnet {all:?}"),
    );
    assert!(
        out.status.success(),
        "hftnet {all:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let j = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let html = std::fs::read_to_string(&report).unwrap();
    (dir, html, j, hgrm)
}

#[test]
fn lab_report_loads_clean_with_one_series_per_row() {
    let test = "lab_report_loads_clean_with_one_series_per_row";
    if common::skip_without_root(test) {
        return;
    }
    let Some(bin) = chromium(test) else {
        return;
    };
    let (dir, html, j, hgrm) = lab_with_report(
        "hftnet-report-lab",
        &["--quick", "--no-t2t", "--transports", "udp/block,udp/spin"],
    );
    assert_commit(&j);
    assert_eq!(j["hftnet_version"], env!("CARGO_PKG_VERSION"));
    let rows: Vec<(String, u64)> = j["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                format!(
                    "{}/{}",
                    r["rung"]["transport"].as_str().unwrap(),
                    r["rung"]["strategy"].as_str().unwrap()
                ),
                r["samples"].as_u64().unwrap(),
            )
        })
        .collect();
    let labels: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(labels, ["floor/cache-line", "udp/block", "udp/spin"]);
    assert!(rows.iter().all(|r| r.1 > 0), "{rows:?}");

    let seen = check_in_chromium(&bin, &html, &dir.0);
    assert_eq!(seen.percentile_rows, labels);
    assert_eq!(
        seen.histogram_rows,
        labels
            .iter()
            .map(|l| vec![l.to_string()])
            .collect::<Vec<_>>()
    );
    assert!(seen.dom.contains("hftnet_commit"));

    // One .hgrm per row, each holding the row's samples.
    let mut files: Vec<String> = std::fs::read_dir(&hgrm)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "00-floor_cache-line.hgrm",
            "01-udp_block.hgrm",
            "02-udp_spin.hgrm"
        ]
    );
    for (f, (_, samples)) in files.iter().zip(&rows) {
        let text = std::fs::read_to_string(hgrm.join(f)).unwrap();
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
        let total: u64 = text
            .split("Total count    =")
            .nth(1)
            .and_then(|s| s.split(']').next())
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(total, *samples, "{f}");
    }
}

/// `hftnet lab --ladder --quick --json F --report R --hgrm-dir D` (the
/// issue's acceptance): the page loads clean in Chromium with one series
/// per rung that measured, the waterfall and the rungs' table with every
/// verdict, and one `.hgrm` per rung.
#[test]
fn ladder_report_loads_clean_with_its_waterfall() {
    let test = "ladder_report_loads_clean_with_its_waterfall";
    if common::skip_without_root(test) {
        return;
    }
    let Some(bin) = chromium(test) else {
        return;
    };
    let (dir, html, j, hgrm) = lab_with_report(
        "hftnet-report-ladder",
        &["--ladder", "--quick", "--duration", "400ms"],
    );
    let rows = j["ladder"].as_array().unwrap();
    let names: Vec<String> = rows
        .iter()
        .filter(|r| r["samples"].as_u64().unwrap() > 0)
        .map(|r| {
            format!(
                "{} {}",
                r["label"].as_str().unwrap(),
                r["protocol"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names.len(), rows.len(), "every rung measured: {rows:?}");
    assert_commit(&j);
    assert_eq!(j["hftnet_version"], env!("CARGO_PKG_VERSION"));
    let seen = check_in_chromium(&bin, &html, &dir.0);
    assert_eq!(seen.percentile_rows, names);
    assert!(seen.dom.contains("hftnet_commit"));
    assert!(
        seen.dom.contains("<h2>Ladder</h2>"),
        "the waterfall is there"
    );
    assert!(seen.dom.contains("Rungs, claims and verdicts"));
    for r in rows {
        let claim = r["claim"]["text"].as_str().unwrap();
        assert!(
            seen.dom.contains(
                &claim
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;")
            ),
            "{claim}"
        );
    }
    let files = std::fs::read_dir(&hgrm).unwrap().count();
    assert_eq!(files, names.len());
}
