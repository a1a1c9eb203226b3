//! The query API's parameter parsers on arbitrary text: times (float seconds, RFC 3339), durations
//! (float seconds, Prometheus durations), `limit`, and `match[]` selectors must return a value or an
//! error, never panic (overflow included: fuzz builds check arithmetic), and parsed times stay within
//! Prometheus' MinTime/MaxTime.
#![no_main]

use ember_server::params::{
    MAX_TIME_MS, MIN_TIME_MS, parse_duration, parse_limit, parse_match_params,
    parse_model_duration, parse_time,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ms) = parse_time(text) {
        assert!(
            (MIN_TIME_MS..=MAX_TIME_MS).contains(&ms),
            "{text:?} -> {ms}"
        );
    }
    let _ = parse_duration(text);
    let _ = parse_model_duration(text);
    let _ = parse_limit(text);
    let _ = parse_match_params(&[text]);
});
