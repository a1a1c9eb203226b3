//! Both scrape text parsers on arbitrary bytes: they must never panic, and
//! every sample they return must satisfy what the scrape loop relies on.
#![no_main]

use ember_scrape::textparse::{self, Entry};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the format so one corpus covers both.
    let Some((first, input)) = data.split_first() else {
        return;
    };
    let ct = if first & 1 == 0 {
        "text/plain; version=0.0.4"
    } else {
        "application/openmetrics-text; version=1.0.0"
    };
    let mut errors = 0;
    for item in textparse::parse(ct, input) {
        match item {
            Ok(Entry::Sample(s)) => {
                assert!(!s.name.is_empty());
                assert!(s.line >= 1);
                if s.value.is_nan() {
                    assert_eq!(s.value.to_bits(), textparse::NORMAL_NAN_BITS);
                }
                let mut names: Vec<_> = s.labels.iter().map(|(n, _)| n.as_ref()).collect();
                names.sort_unstable();
                names.dedup();
                assert_eq!(
                    names.len(),
                    s.labels.len(),
                    "duplicate label names returned"
                );
                let _ = s.to_labels();
            }
            Ok(_) => {}
            Err(_) => errors += 1,
        }
    }
    // Parsing stops at the first error.
    assert!(errors <= 1);
});
