//! Transport URIs: `scheme://authority[/path][?key=value&...]`.
//!
//! Layer: configuration, off the hot path. Parsing is strict: an unknown
//! scheme, an unknown parameter, a repeated parameter or a value of the wrong
//! form is an [`UriError`] that names what was wrong and what is accepted, so a
//! typo in a benchmark configuration never silently runs something else.
//! Every backend reads its parameters through a [`Params`] and calls
//! [`Params::finish`], which rejects whatever the backend did not consume.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;

/// Why a URI was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UriError {
    /// The text is not `scheme://...`.
    #[error("malformed transport URI {uri:?}: {reason}")]
    Malformed {
        /// The URI as given.
        uri: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The scheme is not one we implement.
    #[error("unknown transport scheme {scheme:?} in {uri:?}; accepted schemes: {accepted}")]
    UnknownScheme {
        /// The URI as given.
        uri: String,
        /// The scheme found.
        scheme: String,
        /// The accepted schemes, comma separated.
        accepted: String,
    },
    /// A parameter the scheme does not take.
    #[error("unknown parameter {param:?} for {scheme}://; accepted parameters: {accepted}")]
    UnknownParam {
        /// The scheme.
        scheme: String,
        /// The parameter found.
        param: String,
        /// The accepted parameters, comma separated.
        accepted: String,
    },
    /// A parameter given twice.
    #[error("parameter {param:?} is given more than once")]
    RepeatedParam {
        /// The parameter.
        param: String,
    },
    /// A parameter value of the wrong form.
    #[error("bad value {value:?} for parameter {param:?}: expected {expected}")]
    BadValue {
        /// The parameter.
        param: String,
        /// The value found.
        value: String,
        /// What the parameter accepts.
        expected: String,
    },
}

/// A URI split into its parts; parameters are kept in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// The URI exactly as given.
    pub text: String,
    /// `udp`, `tcp`, ...
    pub scheme: String,
    /// Between `://` and the first `/` or `?`: `host:port`, an interface, ...
    pub authority: String,
    /// From the first `/` after the authority up to `?` (without the slash), possibly empty.
    pub path: String,
    /// `key=value` pairs from the query.
    pub params: Vec<(String, String)>,
}

impl Uri {
    /// Splits `text` into scheme, authority, path and parameters.
    ///
    /// # Errors
    /// [`UriError::Malformed`] when there is no `scheme://`, an empty
    /// authority, or a parameter without `=`; [`UriError::UnknownScheme`] for a
    /// scheme no backend of the table answers to ([`crate::backend::schemes`]);
    /// [`UriError::RepeatedParam`].
    pub fn parse(text: &str) -> Result<Self, UriError> {
        let malformed = |reason: &str| UriError::Malformed {
            uri: text.to_string(),
            reason: reason.to_string(),
        };
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| malformed("expected scheme://address, e.g. udp://198.18.0.2:9000"))?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(malformed("the scheme must be lower-case letters, e.g. udp"));
        }
        if let Some(how) = crate::backend::left_out(scheme) {
            return Err(malformed(how));
        }
        if crate::backend::find(scheme).is_none() {
            return Err(UriError::UnknownScheme {
                uri: text.to_string(),
                scheme: scheme.to_string(),
                accepted: crate::backend::schemes().collect::<Vec<_>>().join(", "),
            });
        }
        let (before_query, query) = match rest.split_once('?') {
            Some((a, q)) => (a, Some(q)),
            None => (rest, None),
        };
        let (authority, path) = match before_query.split_once('/') {
            Some((a, p)) => (a, p),
            None => (before_query, ""),
        };
        if authority.is_empty() {
            return Err(malformed("the address after :// is empty"));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        if let Some(q) = query {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    malformed(&format!(
                        "parameter {pair:?} has no value (write {pair}=VALUE)"
                    ))
                })?;
                if k.is_empty() {
                    return Err(malformed("a parameter has an empty name"));
                }
                if params.iter().any(|(seen, _)| seen == k) {
                    return Err(UriError::RepeatedParam {
                        param: k.to_string(),
                    });
                }
                params.push((k.to_string(), v.to_string()));
            }
        }
        Ok(Self {
            text: text.to_string(),
            scheme: scheme.to_string(),
            authority: authority.to_string(),
            path: path.to_string(),
            params,
        })
    }

    /// The authority as one socket address (`host:port`; IPv6 as `[addr]:port`;
    /// host names are resolved, the first IPv4 result preferred).
    ///
    /// # Errors
    /// [`UriError::Malformed`] when it is not a `host:port` that resolves.
    pub fn socket_addr(&self) -> Result<SocketAddr, UriError> {
        if let Ok(a) = SocketAddr::from_str(&self.authority) {
            return Ok(a);
        }
        let malformed = |reason: String| UriError::Malformed {
            uri: self.text.clone(),
            reason,
        };
        if !self.authority.contains(':') {
            return Err(malformed(format!(
                "{:?} has no port; write host:port",
                self.authority
            )));
        }
        let addrs: Vec<SocketAddr> = self
            .authority
            .to_socket_addrs()
            .map_err(|e| malformed(format!("cannot resolve {:?}: {e}", self.authority)))?
            .collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| malformed(format!("{:?} resolves to no address", self.authority)))
    }

    /// A reader over the parameters, for a backend accepting the parameters
    /// of the lists in `accepted` (e.g. the common ones and its own); the
    /// middleware parameters every scheme takes are listed with them in
    /// errors.
    #[must_use]
    pub fn params(&self, accepted: &[&[&'static str]]) -> Params<'_> {
        let mut all = accepted.concat();
        for m in crate::middleware::PARAMS {
            if !all.contains(m) {
                all.push(m);
            }
        }
        Params {
            uri: self,
            accepted: all,
            used: vec![false; self.params.len()],
        }
    }
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Typed access to a URI's parameters that remembers what was read.
#[derive(Debug)]
pub struct Params<'a> {
    uri: &'a Uri,
    accepted: Vec<&'static str>,
    used: Vec<bool>,
}

impl Params<'_> {
    /// The raw value of `key`, if given; marks it as read.
    pub fn raw(&mut self, key: &str) -> Option<&str> {
        debug_assert!(
            self.accepted.contains(&key),
            "{key} missing from the accepted list"
        );
        let i = self.uri.params.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        Some(self.uri.params[i].1.as_str())
    }

    /// `key` parsed by `parse`; `expected` describes the form for the error.
    ///
    /// # Errors
    /// [`UriError::BadValue`] naming the parameter and `expected`.
    pub fn get_with<T>(
        &mut self,
        key: &str,
        expected: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, UriError> {
        match self.raw(key) {
            None => Ok(None),
            Some(v) => parse(v).map(Some).ok_or_else(|| UriError::BadValue {
                param: key.to_string(),
                value: v.to_string(),
                expected: expected.to_string(),
            }),
        }
    }

    /// An integer parameter within `range`.
    ///
    /// # Errors
    /// [`UriError::BadValue`] when it is not a decimal (or `0x` hex) integer in range.
    pub fn int(
        &mut self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, UriError> {
        let expected = format!("an integer from {} to {}", range.start(), range.end());
        self.get_with(key, &expected, |v| {
            parse_int(v).filter(|n| range.contains(n))
        })
    }

    /// A boolean parameter: `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`.
    ///
    /// # Errors
    /// [`UriError::BadValue`] for anything else.
    pub fn bool(&mut self, key: &str) -> Result<Option<bool>, UriError> {
        self.get_with(key, "1 or 0 (true/false, yes/no, on/off)", |v| match v {
            "1" | "true" | "yes" | "on" => Some(true),
            "0" | "false" | "no" | "off" => Some(false),
            _ => None,
        })
    }

    /// A byte size: plain bytes or with a `K`, `M` or `G` suffix (powers of 1024).
    ///
    /// # Errors
    /// [`UriError::BadValue`] when not a size between 1 byte and 2 GiB.
    pub fn size(&mut self, key: &str) -> Result<Option<u32>, UriError> {
        self.get_with(
            key,
            "a size in bytes such as 4194304, 4096K or 4M (at most 2G)",
            |v| {
                parse_size(v)
                    .filter(|&n| (1..=i32::MAX as u64).contains(&n))
                    .map(|n| n as u32)
            },
        )
    }

    /// One of a fixed set of words.
    ///
    /// # Errors
    /// [`UriError::BadValue`] listing `choices`.
    pub fn choice(
        &mut self,
        key: &str,
        choices: &[&'static str],
    ) -> Result<Option<&'static str>, UriError> {
        let expected = format!("one of {}", choices.join(", "));
        self.get_with(key, &expected, |v| {
            choices.iter().find(|c| **c == v).copied()
        })
    }

    /// Rejects any parameter that was not read.
    ///
    /// # Errors
    /// [`UriError::UnknownParam`] for the first parameter not read, listing the accepted ones.
    pub fn finish(self) -> Result<(), UriError> {
        if let Some(i) = self.used.iter().position(|u| !u) {
            return Err(UriError::UnknownParam {
                scheme: self.uri.scheme.clone(),
                param: self.uri.params[i].0.clone(),
                accepted: self.accepted.join(", "),
            });
        }
        Ok(())
    }
}

/// Parses a decimal or `0x`-hexadecimal integer.
#[must_use]
pub fn parse_int(v: &str) -> Option<i64> {
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// Parses a duration: a number (a fraction allowed) and a unit — `ns`,
/// `us` (`µs`), `ms`, `s`, `m` (`min`) or `h` — such as `50us`, `1.5ms` or
/// `2m`. `None` for anything else: no unit, an unknown one, a negative,
/// non-finite or too large value (more than `u64::MAX` nanoseconds).
#[must_use]
pub fn parse_duration(v: &str) -> Option<std::time::Duration> {
    let t = v.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (num, unit) = t.split_at(split);
    let x: f64 = num.parse().ok()?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        _ => return None,
    };
    let ns = x * scale;
    (ns.is_finite() && (0.0..u64::MAX as f64).contains(&ns))
        .then(|| std::time::Duration::from_nanos(ns.round() as u64))
}

/// Parses `N`, `NK`, `NM`, `NG` (1024-based, case-insensitive, optional trailing `B`/`iB`).
#[must_use]
pub fn parse_size(v: &str) -> Option<u64> {
    let lower = v.to_ascii_lowercase();
    let t = lower.trim_end_matches("ib").trim_end_matches('b');
    let (num, mult) = match t.as_bytes().last()? {
        b'k' => (&t[..t.len() - 1], 1u64 << 10),
        b'm' => (&t[..t.len() - 1], 1 << 20),
        b'g' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts_in_order() {
        let u = Uri::parse("udp://198.18.0.2:9000?rx=spin&cpu=1").unwrap();
        assert_eq!(u.scheme, "udp");
        assert_eq!(u.authority, "198.18.0.2:9000");
        assert_eq!(u.path, "");
        assert_eq!(
            u.params,
            vec![("rx".into(), "spin".into()), ("cpu".into(), "1".into())]
        );
        assert_eq!(u.socket_addr().unwrap(), "198.18.0.2:9000".parse().unwrap());
        let v6 = Uri::parse("udp://[::1]:7").unwrap();
        assert_eq!(v6.socket_addr().unwrap(), "[::1]:7".parse().unwrap());
    }

    #[test]
    fn rejects_with_names() {
        let e = Uri::parse("quic://1.2.3.4:5").unwrap_err();
        assert!(
            e.to_string().contains("\"quic\"") && e.to_string().contains("udp, mcast, tcp"),
            "{e}"
        );
        assert!(matches!(
            Uri::parse("udp:1.2.3.4:5"),
            Err(UriError::Malformed { .. })
        ));
        assert!(matches!(
            Uri::parse("udp://"),
            Err(UriError::Malformed { .. })
        ));
        assert!(matches!(
            Uri::parse("udp://1.2.3.4:5?rx"),
            Err(UriError::Malformed { .. })
        ));
        assert!(matches!(
            Uri::parse("udp://1.2.3.4:5?rx=spin&rx=block"),
            Err(UriError::RepeatedParam { .. })
        ));
        let u = Uri::parse("udp://1.2.3.4").unwrap();
        assert!(u.socket_addr().unwrap_err().to_string().contains("no port"));
        let u = Uri::parse("udp://1.2.3.4:99999").unwrap();
        assert!(u.socket_addr().is_err());
    }

    #[test]
    fn typed_params_and_unknown_ones() {
        let u = Uri::parse("udp://1.2.3.4:5?rcvbuf=4M&tos=0x10&loop=off&rx=spin&bogus=1").unwrap();
        let mut p = u.params(&[&["rcvbuf", "tos", "loop", "rx", "ttl"]]);
        assert_eq!(p.size("rcvbuf").unwrap(), Some(4 << 20));
        assert_eq!(p.int("tos", 0..=255).unwrap(), Some(16));
        assert_eq!(p.bool("loop").unwrap(), Some(false));
        assert_eq!(p.choice("rx", &["block", "spin"]).unwrap(), Some("spin"));
        assert_eq!(p.int("ttl", 0..=255).unwrap(), None);
        let e = p.finish().unwrap_err();
        assert!(
            e.to_string().contains("\"bogus\"")
                && e.to_string().contains("rcvbuf, tos, loop, rx, ttl"),
            "{e}"
        );

        let u = Uri::parse("udp://1.2.3.4:5?tos=300&rx=fast").unwrap();
        let mut p = u.params(&[&["tos", "rx"]]);
        let e = p.int("tos", 0..=255).unwrap_err();
        assert!(e.to_string().contains("from 0 to 255"), "{e}");
        let e = p.choice("rx", &["block", "spin"]).unwrap_err();
        assert!(e.to_string().contains("one of block, spin"), "{e}");
    }

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("50us"), Some(Duration::from_micros(50)));
        assert_eq!(parse_duration("1.5ms"), Some(Duration::from_micros(1500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("100ns"), Some(Duration::from_nanos(100)));
        for bad in ["5", "5x", "-1ms", "ms", "", "1e999s", "9999999999999h"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64k"), Some(65536));
        assert_eq!(parse_size("4MiB"), Some(4 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_size(""), None);
    }
}
