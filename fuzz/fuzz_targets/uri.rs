//! Transport URIs from arbitrary text, every scheme through the real URI
//! parser (`Uri::parse`) and endpoint configuration (`Endpoint::parse`):
//! `udp`, `mcast`, `tcp`, `uring`, `packet`, `xdp`, `shm`, `mem`, with the
//! middleware parameters. Nothing panics, and:
//! - a split URI is its text: scheme, authority, path and parameters put
//!   back together parse to the same parts; parameters have names, once;
//! - an endpoint is of the backend the scheme names, with a message size,
//!   a burst and a CPU in range; parsing is deterministic and does not
//!   depend on the order of the parameters;
//! - whatever is refused is refused with a message.
//!
//! Host names would be resolved (a DNS query for arbitrary text): for the
//! schemes that take `host:port`, an authority that is not a literal socket
//! address gets the literal host 198.18.0.2 instead, keeping its port text,
//! so those URIs are still parsed in full without a resolver.
#![no_main]

use hftnet_io::backend;
use hftnet_io::{Endpoint, Uri};
use libfuzzer_sys::fuzz_target;

/// Schemes whose authority is `host:port`, resolved when not literal.
const HOST_PORT: &[&str] = &["udp", "mcast", "tcp", "uring"];

/// `text` with a host name replaced by a literal address (see the module doc).
fn without_host_names(text: &str, u: &Uri) -> String {
    if !HOST_PORT.contains(&u.scheme.as_str())
        || u.authority.parse::<std::net::SocketAddr>().is_ok()
        || !u.authority.contains(':')
    {
        return text.to_owned();
    }
    let port = u.authority.rsplit_once(':').map_or("", |(_, p)| p);
    let rest = &text[u.scheme.len() + 3 + u.authority.len()..];
    format!("{}://198.18.0.2:{port}{rest}", u.scheme)
}

fn check_uri(text: &str, u: &Uri) {
    assert!(backend::find(&u.scheme).is_some());
    assert!(text.starts_with(&format!("{}://{}", u.scheme, u.authority)));
    assert!(!u.authority.is_empty() && !u.authority.contains(['/', '?']));
    assert!(!u.path.contains('?'));
    for (i, (k, v)) in u.params.iter().enumerate() {
        assert!(!k.is_empty() && !k.contains(['=', '&']) && !v.contains('&'));
        assert!(u.params[..i].iter().all(|(seen, _)| seen != k), "{k} twice");
    }
    // Put back together, it splits the same.
    let mut again = format!("{}://{}", u.scheme, u.authority);
    if !u.path.is_empty() || text[again.len()..].starts_with('/') {
        again.push('/');
        again.push_str(&u.path);
    }
    for (i, (k, v)) in u.params.iter().enumerate() {
        again.push(if i == 0 { '?' } else { '&' });
        again.push_str(&format!("{k}={v}"));
    }
    let back = Uri::parse(&again).expect("a URI put back together parses");
    assert_eq!(
        (&back.scheme, &back.authority, &back.path, &back.params),
        (&u.scheme, &u.authority, &u.path, &u.params)
    );
}

fn check_endpoint(u: &Uri, ep: &Endpoint) {
    let named = backend::find(&u.scheme).expect("known scheme").name;
    assert_eq!(
        backend::find(ep.scheme()).expect("known scheme").name,
        named
    );
    assert!(ep.max_message() >= 1);
    assert!(ep.burst() >= 1);
    assert!(ep.cpu().is_none_or(|c| c <= 4095));
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let text = match Uri::parse(text) {
        Ok(u) => {
            check_uri(text, &u);
            without_host_names(text, &u)
        }
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(Endpoint::parse(text).is_err());
            return;
        }
    };
    let u = Uri::parse(&text).expect("still a URI");
    match Endpoint::parse(&text) {
        Ok(ep) => {
            check_endpoint(&u, &ep);
            assert_eq!(Endpoint::parse(&text).as_ref(), Ok(&ep), "deterministic");
            // The same parameters in the reverse order: the same endpoint.
            if u.params.len() > 1 {
                let mut r = u.clone();
                r.params.reverse();
                let mut rev = format!("{}://{}", r.scheme, r.authority);
                if text[rev.len()..].starts_with('/') {
                    rev.push('/');
                    rev.push_str(&r.path);
                }
                for (i, (k, v)) in r.params.iter().enumerate() {
                    rev.push(if i == 0 { '?' } else { '&' });
                    rev.push_str(&format!("{k}={v}"));
                }
                let other = Endpoint::parse(&rev).expect("reordered parameters parse");
                assert_eq!(other.config, ep.config, "{rev}");
                assert_eq!(other.layers, ep.layers, "{rev}");
            }
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
