//! Sets of CPUs in the two text forms the kernel uses: CPU lists (`"0-3,5"`,
//! with the `isolcpus` stride syntax `"0-15:2/4"`; `/sys/devices/system/cpu/online`,
//! cgroup `cpuset.cpus`, `taskset -c`) and CPU masks (`"ff,ffffffff"`:
//! hexadecimal, 32-bit groups, most significant first; `/proc/irq/N/smp_affinity`).
//!
//! Layer: `hftnet-sys`, pure text handling with no system call, so the
//! tuner, the benchmark environment report and the command line share one
//! parser and one formatter (`hftnet_tune::root` re-exports them).
//!
//! Invariants: parsers return CPU numbers sorted ascending without repeats,
//! never above [`MAX_CPU`]; formatters accept any order and repeats and write
//! what the kernel writes; a refused input is a [`CpuListError`] that names
//! the whole input and the part that is wrong.
//!
//! Must never: panic on any input string, or accept a list the kernel would
//! refuse while silently dropping part of it.

#![forbid(unsafe_code)]

use std::fmt::Write as _;

/// A malformed CPU list or CPU mask.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad CPU {what} `{input}`: `{part}` {reason}")]
pub struct CpuListError {
    /// `"list"` or `"mask"`.
    pub what: &'static str,
    /// The whole input.
    pub input: String,
    /// The part that is wrong.
    pub part: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// The largest CPU number accepted in lists and masks (the kernel's
/// `NR_CPUS` limit is 8192).
pub const MAX_CPU: usize = 8191;

/// Parses a kernel CPU list (`"0-3,5"`, `"0-15:2/4"` with the stride syntax of
/// `isolcpus`) into sorted, de-duplicated CPU numbers. An empty string (as in
/// `/sys/devices/system/cpu/isolated` with nothing isolated) is the empty set.
///
/// # Errors
/// [`CpuListError`] naming the bad part: not a number, a range whose end is
/// below its start, a bad stride, or a CPU above [`MAX_CPU`].
pub fn parse_cpu_list(s: &str) -> Result<Vec<usize>, CpuListError> {
    let err = |part: &str, reason| CpuListError {
        what: "list",
        input: s.to_owned(),
        part: part.to_owned(),
        reason,
    };
    let t = s.trim();
    // One bit per CPU: however many parts repeat a range, the work and the
    // memory stay bounded by MAX_CPU, not by the parts times their ranges.
    let mut set = vec![0u64; (MAX_CPU + 1).div_ceil(64)];
    if t.is_empty() || t == "(null)" {
        return Ok(Vec::new());
    }
    let num = |x: &str, part: &str| -> Result<usize, CpuListError> {
        let x = x.trim();
        // Digits only: Rust's parser also takes a leading `+`, the kernel's does not.
        if !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(part, "is not a CPU number"));
        }
        let n: usize = x.parse().map_err(|_| err(part, "is not a CPU number"))?;
        if n > MAX_CPU {
            return Err(err(part, "is beyond the largest CPU number (8191)"));
        }
        Ok(n)
    };
    for part in t.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(err(part, "is empty (stray comma)"));
        }
        let (range, stride) = match part.split_once(':') {
            Some((r, st)) => (r, Some(st)),
            None => (part, None),
        };
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (num(a, part)?, num(b, part)?),
            None => {
                if stride.is_some() {
                    return Err(err(part, "has a stride but no range"));
                }
                let n = num(range, part)?;
                (n, n)
            }
        };
        if hi < lo {
            return Err(err(part, "is a range whose end is below its start"));
        }
        let (used, group) = match stride {
            None => (1, 1),
            Some(st) => {
                let (u, g) = st
                    .split_once('/')
                    .filter(|(u, g)| u.bytes().chain(g.bytes()).all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| err(part, "has a stride that is not `used/group`"))?;
                let u: usize = u
                    .parse()
                    .map_err(|_| err(part, "has a stride that is not `used/group`"))?;
                let g: usize = g
                    .parse()
                    .map_err(|_| err(part, "has a stride that is not `used/group`"))?;
                if u == 0 || g == 0 || u > g {
                    return Err(err(part, "has a stride with used = 0 or used > group"));
                }
                (u, g)
            }
        };
        for c in lo..=hi {
            if (c - lo) % group < used {
                set[c / 64] |= 1 << (c % 64);
            }
        }
    }
    Ok((0..=MAX_CPU)
        .filter(|&c| set[c / 64] & (1 << (c % 64)) != 0)
        .collect())
}

/// Formats CPUs as the kernel does (`[0, 1, 2, 3, 5]` → `"0-3,5"`; two
/// consecutive CPUs are a range too: `"0-1"`). Order and duplicates in the
/// input do not matter; the empty set is `""`.
#[must_use]
pub fn format_cpu_list(cpus: &[usize]) -> String {
    let mut v = cpus.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            end += 1;
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        // Writing to a String cannot fail.
        let _ = if start == end {
            write!(out, "{start}")
        } else {
            write!(out, "{start}-{end}")
        };
        i += 1;
    }
    out
}

/// Parses a kernel CPU mask (`"3"`, `"ff,ffffffff"`: hexadecimal, 32-bit
/// groups separated by commas, most significant first).
///
/// # Errors
/// [`CpuListError`] naming the group that is not hexadecimal or too long.
pub fn parse_cpu_mask(s: &str) -> Result<Vec<usize>, CpuListError> {
    let err = |part: &str, reason| CpuListError {
        what: "mask",
        input: s.to_owned(),
        part: part.to_owned(),
        reason,
    };
    let t = s.trim();
    let groups: Vec<&str> = t.split(',').collect();
    let mut cpus = Vec::new();
    for (gi, g) in groups.iter().rev().enumerate() {
        if g.is_empty() || g.len() > 8 {
            return Err(err(g, "is not a group of 1 to 8 hexadecimal digits"));
        }
        if !g.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err(g, "is not hexadecimal"));
        }
        let bits = u32::from_str_radix(g, 16).map_err(|_| err(g, "is not hexadecimal"))?;
        for b in 0..32 {
            if bits & (1 << b) != 0 {
                let cpu = gi * 32 + b;
                if cpu > MAX_CPU {
                    return Err(err(g, "sets a CPU beyond the largest CPU number (8191)"));
                }
                cpus.push(cpu);
            }
        }
    }
    cpus.sort_unstable();
    Ok(cpus)
}

/// Formats CPUs as a kernel CPU mask laid out like `like` (the file's current
/// value: same number of hexadecimal digits, zero-padded, a comma every eight
/// digits from the right), widened if a CPU needs more digits.
/// `format_cpu_mask(&[0, 1], "3")` → `"3"`; `format_cpu_mask(&[1], "00000003")`
/// → `"00000002"`.
#[must_use]
pub fn format_cpu_mask(cpus: &[usize], like: &str) -> String {
    let want_digits = like.chars().filter(char::is_ascii_hexdigit).count().max(1);
    let need_digits = cpus.iter().max().map_or(1, |m| m / 4 + 1);
    let digits = want_digits.max(need_digits);
    let mut nibbles = vec![0u8; digits];
    for &c in cpus {
        nibbles[c / 4] |= 1 << (c % 4);
    }
    let mut out = String::with_capacity(digits + digits / 8);
    for i in (0..digits).rev() {
        out.push(char::from_digit(u32::from(nibbles[i]), 16).unwrap_or('0'));
        if i % 8 == 0 && i != 0 {
            out.push(',');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_list_round_trip() {
        assert_eq!(parse_cpu_list("0-3,5").unwrap(), vec![0, 1, 2, 3, 5]);
        assert_eq!(format_cpu_list(&[5, 0, 1, 2, 3, 3]), "0-3,5");
        assert_eq!(format_cpu_list(&[0, 1]), "0-1");
        assert_eq!(format_cpu_list(&[]), "");
        assert_eq!(parse_cpu_list("").unwrap(), Vec::<usize>::new());
        assert_eq!(parse_cpu_list("(null)").unwrap(), Vec::<usize>::new());
        assert_eq!(parse_cpu_list("0-7:2/4").unwrap(), vec![0, 1, 4, 5]);
        assert_eq!(parse_cpu_list(" 2 \n").unwrap(), vec![2]);
    }

    #[test]
    fn cpu_list_errors_name_the_part() {
        let e = parse_cpu_list("0,3-1").unwrap_err();
        assert_eq!(e.part, "3-1");
        assert_eq!(
            e.to_string(),
            "bad CPU list `0,3-1`: `3-1` is a range whose end is below its start"
        );
        assert_eq!(parse_cpu_list("0,x").unwrap_err().part, "x");
        assert_eq!(
            parse_cpu_list("0,,1").unwrap_err().reason,
            "is empty (stray comma)"
        );
        assert_eq!(parse_cpu_list("9999").unwrap_err().part, "9999");
        assert_eq!(parse_cpu_list("0-7:5/4").unwrap_err().part, "0-7:5/4");
        // A sign is not a digit (Rust's integer parser takes `+`, the kernel does not).
        assert_eq!(parse_cpu_list("+3").unwrap_err().part, "+3");
        assert_eq!(parse_cpu_list("0-+3").unwrap_err().part, "0-+3");
        assert_eq!(parse_cpu_list("0-7:+1/2").unwrap_err().part, "0-7:+1/2");
        assert_eq!(parse_cpu_mask("+f").unwrap_err().part, "+f");
    }

    #[test]
    fn cpu_masks() {
        assert_eq!(parse_cpu_mask("3").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_mask("1,00000002").unwrap(), vec![1, 32]);
        assert_eq!(
            format_cpu_mask(&[1, 32], "ffffffff,ffffffff"),
            "00000001,00000002"
        );
        assert_eq!(format_cpu_mask(&[0], "3"), "1");
        assert_eq!(format_cpu_mask(&[], "3"), "0");
        assert_eq!(format_cpu_mask(&[35], "f"), "8,00000000");
        assert_eq!(parse_cpu_mask("xyz").unwrap_err().part, "xyz");
    }

    #[test]
    fn formatting_matches_the_kernel() {
        assert_eq!(format_cpu_list(&[0, 1, 2, 3, 6, 8, 9]), "0-3,6,8-9");
        assert_eq!(format_cpu_list(&[7]), "7");
        assert_eq!(format_cpu_list(&[9, 8, 7, 1]), "1,7-9");
        assert_eq!(format_cpu_list(&[MAX_CPU, 0]), "0,8191");
        // What the formatter writes, the parser reads back.
        let cpus = [0, 2, 3, 4, 10, 11, 63, 64, 65];
        assert_eq!(parse_cpu_list(&format_cpu_list(&cpus)).unwrap(), cpus);
        assert_eq!(parse_cpu_mask(&format_cpu_mask(&cpus, "0")).unwrap(), cpus);
        assert!(parse_cpu_list(&(MAX_CPU + 1).to_string()).is_err());
    }
}
