//! Fuzzes the WAL record decoders. With every input:
//!
//! 1. Each of the three decoders returns `Ok` or `Err` without panicking, and
//!    leaves its output vector untouched on error.
//! 2. Whatever decodes re-encodes to bytes that decode to the same values
//!    (values compared bit for bit, so NaN payloads count).
#![no_main]

use ember_wal::record::{
    RefSample, decode_samples, decode_series, decode_tombstones, encode_samples, encode_series,
    encode_tombstones, record_type,
};
use libfuzzer_sys::fuzz_target;

fn sample_bits(s: &[RefSample]) -> Vec<(u64, i64, u64)> {
    s.iter().map(|s| (s.r, s.t, s.v.to_bits())).collect()
}

fn check(rec: &[u8]) {
    let _ = record_type(rec);

    let mut series = Vec::new();
    if decode_series(rec, &mut series).is_ok() {
        let mut buf = Vec::new();
        encode_series(&series, &mut buf);
        let mut again = Vec::new();
        decode_series(&buf, &mut again).unwrap();
        assert_eq!(again, series);
    } else {
        assert!(series.is_empty());
    }

    let mut samples = Vec::new();
    if decode_samples(rec, &mut samples).is_ok() {
        let mut buf = Vec::new();
        encode_samples(&samples, &mut buf);
        let mut again = Vec::new();
        decode_samples(&buf, &mut again).unwrap();
        assert_eq!(sample_bits(&again), sample_bits(&samples));
    } else {
        assert!(samples.is_empty());
    }

    let mut stones = Vec::new();
    if decode_tombstones(rec, &mut stones).is_ok() {
        let mut buf = Vec::new();
        encode_tombstones(&stones, &mut buf);
        let mut again = Vec::new();
        decode_tombstones(&buf, &mut again).unwrap();
        assert_eq!(again, stones);
    } else {
        assert!(stones.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Most random inputs fail on the type byte alone: also try the body
    // under each of the three types.
    if let Some((_, body)) = data.split_first() {
        let mut rec = Vec::with_capacity(data.len());
        for t in 1..=3u8 {
            rec.clear();
            rec.push(t);
            rec.extend_from_slice(body);
            check(&rec);
        }
    }
});
