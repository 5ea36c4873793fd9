//! CPU lists (`"0-3,5"`, `"0-15:2/4"`) and CPU masks (`"ff,ffffffff"`) from
//! arbitrary text, through every parser that reads them: `hftnet_sys::cpus`
//! (sysfs files, `--cpus`, cgroups, IRQ affinity), the kernel command-line
//! parameters of the tuner (`isolcpus=managed_irq,domain,2-3`) and the
//! jitter probe's list. Nothing panics, and:
//! - what parses is ascending, without repeats, never above `MAX_CPU` (so
//!   the output is bounded whatever the input);
//! - formatting what parsed and parsing it again gives the same CPUs, as a
//!   list and as a mask laid out like the input;
//! - a refusal names the input and the part at fault, and the part is in it;
//! - a command-line parameter splits into flags and a list that rebuild it.
#![no_main]

use hftnet_sys::cpus::{MAX_CPU, format_cpu_list, format_cpu_mask, parse_cpu_list, parse_cpu_mask};
use hftnet_tune::facts::{CmdlineFacts, CpuParam};
use libfuzzer_sys::fuzz_target;

fn check_set(cpus: &[usize]) {
    assert!(
        cpus.windows(2).all(|w| w[0] < w[1]),
        "ascending, no repeats"
    );
    assert!(cpus.iter().all(|&c| c <= MAX_CPU));
    assert!(cpus.len() <= MAX_CPU + 1);
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    match parse_cpu_list(text) {
        Ok(cpus) => {
            check_set(&cpus);
            let list = format_cpu_list(&cpus);
            assert_eq!(parse_cpu_list(&list).as_ref(), Ok(&cpus), "list {list:?}");
            let mask = format_cpu_mask(&cpus, "0");
            assert_eq!(parse_cpu_mask(&mask).as_ref(), Ok(&cpus), "mask {mask:?}");
            // The jitter probe reads the same lists, but refuses an empty one.
            match hftnet_tune::jitter::parse_cpu_list(text) {
                Ok(j) => assert_eq!(j, cpus),
                Err(e) => assert!(cpus.is_empty(), "{e}"),
            }
        }
        Err(e) => {
            assert_eq!(e.input, text);
            assert!(text.contains(&e.part), "{e}");
            assert!(e.to_string().contains(&e.part));
            assert!(hftnet_tune::jitter::parse_cpu_list(text).is_err());
        }
    }

    match parse_cpu_mask(text) {
        Ok(cpus) => {
            check_set(&cpus);
            // Written back laid out like the input, it reads the same.
            let mask = format_cpu_mask(&cpus, text);
            assert_eq!(parse_cpu_mask(&mask).as_ref(), Ok(&cpus), "mask {mask:?}");
            assert!(mask.len() <= 2 * text.len().max(MAX_CPU / 4 + 1));
            let list = format_cpu_list(&cpus);
            assert_eq!(parse_cpu_list(&list).as_ref(), Ok(&cpus));
        }
        Err(e) => {
            assert_eq!(e.input, text);
            assert!(text.contains(&e.part), "{e}");
        }
    }

    // A kernel parameter's value: leading flags, then a list.
    let p = CpuParam::parse(text);
    assert_eq!(p.value, text);
    assert!(p.cpus.is_none() || p.error.is_none());
    for f in &p.flags {
        assert!(!f.is_empty() && f.chars().all(|c| c.is_ascii_alphabetic() || c == '_'));
    }
    if let Some(cpus) = &p.cpus {
        check_set(cpus);
    }
    if let Some(cpus) = p.cpus.as_ref().filter(|c| !c.is_empty()) {
        let mut rebuilt = p.flags.clone();
        rebuilt.push(format_cpu_list(cpus));
        let again = CpuParam::parse(&rebuilt.join(","));
        assert_eq!(again.flags, p.flags);
        assert_eq!(again.cpus.as_ref(), Some(cpus));
    }

    // A whole command line: every CPU parameter it holds is read as above.
    let facts = CmdlineFacts::parse(text);
    for param in [
        &facts.isolcpus,
        &facts.nohz_full,
        &facts.rcu_nocbs,
        &facts.irqaffinity,
    ]
    .into_iter()
    .flatten()
    {
        assert!(text.contains(&param.value));
        if let Some(cpus) = &param.cpus {
            check_set(cpus);
        }
    }
});
