//! Transport URIs from arbitrary text: parsing never panics, and whatever is
//! refused is refused with a message.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // Host names would be resolved; keep the fuzzer off the resolver.
    if let Ok(u) = hftnet_io::Uri::parse(text) {
        let host = u.authority.rsplit_once(':').map_or(u.authority.as_str(), |(h, _)| h);
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok();
        if !literal {
            return;
        }
    }
    match hftnet_io::Endpoint::parse(text) {
        Ok(ep) => {
            let _ = (ep.scheme(), ep.max_message(), ep.cpu(), ep.burst());
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
