//! The SoupBinTCP session engines (hftnet-trade's `soupbin`) driven by
//! arbitrary events: raw bytes into either end, the two ends' output fed to
//! each other, time passing, messages published into a small bounded stream,
//! the session ended, unsequenced data and logouts. Nothing panics, and:
//! - everything either end writes splits into well-formed frames;
//! - the client delivers sequenced messages numbered consecutively, each
//!   equal to the message of that number in the server's stream (raw input
//!   into the client can forge messages: the check applies while the client
//!   was fed only the server's output);
//! - bad frames never outnumber the frames received (plus one for a stream
//!   that could not be split);
//! - a closed connection stays closed.
#![no_main]

use hftnet_trade::soupbin::{
    ClientConfig, ClientConnection, ClientEvent, Server, ServerConfig, StoreConfig,
};
use hftnet_wire::soupbintcp::{FrameSplitter, Password, Repr, Session, Username};
use libfuzzer_sys::fuzz_target;

fn frames_ok(bytes: &[u8]) {
    let mut s = FrameSplitter::new(65535);
    let mut rest = bytes;
    while !rest.is_empty() {
        let n = s.feed(rest);
        rest = &rest[n..];
        while let Some(f) = s.next_frame().expect("output splits") {
            Repr::parse_frame(f).expect("output frames parse");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let user = Username::new("alice").unwrap();
    let pass = Password::new("secret").unwrap();
    let mut cfg = ServerConfig::new(user, pass);
    cfg.max_length = 256;
    cfg.store = StoreConfig {
        max_bytes: 4096,
        max_messages: 64,
    };
    let mut server = Server::new(cfg).unwrap();
    let stream = server.open(Session::new("FUZZ").unwrap(), None).unwrap();
    let mut now = 0u64;
    let mut conn = server.connect(now);
    let mut ccfg = ClientConfig::new(user, pass);
    ccfg.max_length = 256;
    let mut client = ClientConnection::new(ccfg, now).unwrap();
    let mut buf = vec![0u8; 70_000];
    let mut forged = false;
    let mut last_seq: Option<u64> = None;

    let mut input = data;
    while let [op, rest @ ..] = input {
        input = rest;
        let take = |input: &mut &[u8]| -> Vec<u8> {
            let Some((&n, rest)) = input.split_first() else {
                return Vec::new();
            };
            let n = usize::from(n).min(rest.len());
            let (b, rest) = rest.split_at(n);
            *input = rest;
            b.to_vec()
        };
        let server_closed = conn.close_reason().is_some();
        let client_closed = client.close_reason().is_some();
        match op % 9 {
            0 => {
                let b = take(&mut input);
                conn.handle_input(now, &b, &server, |_| {});
            }
            1 => {
                let b = take(&mut input);
                forged = true;
                client.handle_input(now, &b, |_| {});
            }
            2 => {
                now += u64::from(input.first().copied().unwrap_or(0)) * 100_000_000;
                input = input.get(1..).unwrap_or(&[]);
                let _ = conn.handle_timeout(now);
                let _ = client.handle_timeout(now);
            }
            3 => {
                let b = take(&mut input);
                let _ = server.publish(stream, &b);
            }
            4 => {
                let n = conn.poll_transmit(now, &server, &mut buf);
                frames_ok(&buf[..n]);
                client.handle_input(now, &buf[..n], |e| {
                    if let ClientEvent::Sequenced { sequence, message } = e
                        && !forged
                    {
                        if let Some(l) = last_seq {
                            assert_eq!(sequence, l + 1, "sequence numbers skip");
                        }
                        last_seq = Some(sequence);
                        let s = server.streams().get(stream).unwrap();
                        assert_eq!(s.get(sequence), Some(message), "message differs");
                    }
                });
            }
            5 => {
                let n = client.poll_transmit(now, &mut buf);
                frames_ok(&buf[..n]);
                conn.handle_input(now, &buf[..n], &server, |_| {});
            }
            6 => {
                let _ = server.end(stream);
            }
            7 => {
                let b = take(&mut input);
                if let Ok(n) = client.send_unsequenced(now, &b, &mut buf) {
                    frames_ok(&buf[..n]);
                    conn.handle_input(now, &buf[..n], &server, |_| {});
                }
                if let Ok(n) = conn.send_unsequenced(now, &b, &mut buf) {
                    frames_ok(&buf[..n]);
                }
            }
            _ => client.logout(),
        }
        let k = conn.counters();
        assert!(k.traffic.bad_frames.total() <= k.traffic.frames_in + 1);
        let k = client.counters();
        assert!(k.traffic.bad_frames.total() <= k.traffic.frames_in + 1);
        if server_closed {
            assert!(conn.close_reason().is_some() && !conn.is_logged_in());
        }
        if client_closed {
            assert!(client.close_reason().is_some() && !client.is_logged_in());
        }
    }
});
