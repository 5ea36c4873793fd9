//! Tuning profiles (`hftnet tune apply --profile FILE`) from arbitrary TOML
//! text. Nothing panics, and:
//! - a refusal names the profile (`profile ORIGIN: ...`);
//! - what is accepted holds only what the checks allow: one-line non-empty
//!   values, dotted sysctl names that cannot climb out of `/proc/sys`, NIC
//!   keys the NIC module knows, kernel parameters without spaces;
//! - the accepted profile written back as TOML parses to the same profile;
//! - filling in CPU lists leaves no `{cpus}` / `{others}` behind when CPUs
//!   are given, and sets aside the parameters that need them when not.
#![no_main]

use hftnet_tune::profile::{Profile, Want};
use libfuzzer_sys::fuzz_target;
use toml::{Table, Value};

/// The profile as a TOML file.
fn to_toml(p: &Profile) -> String {
    let mut t = Table::new();
    t.insert("name".into(), Value::String(p.name.clone()));
    t.insert("description".into(), Value::String(p.description.clone()));
    let section = |t: &mut Table, name: &str, key: &str, s: &hftnet_tune::profile::Setting| {
        let entry = if s.why.is_empty() {
            Value::String(s.value.clone())
        } else {
            let mut e = Table::new();
            e.insert("value".into(), Value::String(s.value.clone()));
            e.insert("why".into(), Value::String(s.why.clone()));
            Value::Table(e)
        };
        let sec = t
            .entry(name)
            .or_insert_with(|| Value::Table(Table::new()))
            .as_table_mut()
            .expect("a section");
        assert!(
            sec.insert(key.into(), entry).is_none(),
            "{name}.{key} twice"
        );
    };
    for s in &p.settings {
        match &s.want {
            Want::Sysctl(k) => section(&mut t, "sysctl", k, s),
            Want::Nic(k) => section(&mut t, "nic", k, s),
            Want::IrqAffinity => section(&mut t, "irq", "affinity", s),
            Want::Governor => section(&mut t, "cpu", "governor", s),
            Want::MaxCstateLatencyUs => section(&mut t, "cpu", "max_cstate_latency_us", s),
            Want::Isolate => section(&mut t, "cpu", "isolate", s),
            Want::StopIrqbalance => section(&mut t, "cpu", "stop_irqbalance", s),
            Want::ThpEnabled => section(&mut t, "thp", "enabled", s),
            Want::ThpDefrag => section(&mut t, "thp", "defrag", s),
        }
    }
    if !p.cmdline.is_empty() || !p.cmdline_why.is_empty() {
        let mut c = Table::new();
        c.insert(
            "params".into(),
            Value::Array(p.cmdline.iter().cloned().map(Value::String).collect()),
        );
        c.insert("why".into(), Value::String(p.cmdline_why.clone()));
        t.insert("cmdline".into(), Value::Table(c));
    }
    toml::to_string(&t).expect("TOML of strings")
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let p = match Profile::parse("fuzz", text) {
        Ok(p) => p,
        Err(e) => {
            assert!(e.to_string().starts_with("profile fuzz: "), "{e}");
            return;
        }
    };
    for s in &p.settings {
        assert!(
            !s.value.trim().is_empty() && !s.value.contains('\n'),
            "{s:?}"
        );
        match &s.want {
            Want::Sysctl(k) => {
                assert!(k.contains('.') && !k.starts_with('.') && !k.contains(".."));
                assert!(!k.contains('/') && !k.contains('\0'), "{k:?}");
            }
            Want::Nic(k) => assert!(k.parse::<hftnet_tune::nic::NicKey>().is_ok(), "{k:?}"),
            _ => {}
        }
    }
    for c in &p.cmdline {
        assert!(!c.is_empty() && !c.contains(char::is_whitespace), "{c:?}");
    }
    assert!(p.cmdline_needs_cpus.is_empty());

    // Written back, it reads the same.
    let again = to_toml(&p);
    match Profile::parse("fuzz", &again) {
        Ok(q) => assert_eq!(q, p, "{again}"),
        Err(e) => panic!("the profile written back is refused: {e}\n{again}"),
    }

    // CPU lists filled in.
    let n = data.len() % 5;
    let cpus: Vec<usize> = (0..n).map(|i| i * 2).collect();
    let all: Vec<usize> = (0..8).collect();
    let e = p.expand(&cpus, &all);
    assert_eq!(e.settings.len(), p.settings.len());
    assert_eq!(
        e.cmdline.len() + e.cmdline_needs_cpus.len(),
        p.cmdline.len()
    );
    if cpus.is_empty() {
        for c in &e.cmdline {
            assert!(!c.contains("{cpus}") && !c.contains("{others}"), "{c:?}");
        }
    } else {
        assert!(e.cmdline_needs_cpus.is_empty());
        for c in e.cmdline.iter().chain(e.settings.iter().map(|s| &s.value)) {
            assert!(!c.contains("{cpus}") && !c.contains("{others}"), "{c:?}");
        }
    }
});
