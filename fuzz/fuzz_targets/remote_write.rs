//! Remote-write decoding on arbitrary input: the first byte picks the path (snappy-compressed or raw
//! protobuf, 1.0 or 2.0); decoding must return a value or an error, never panic, and the decompression
//! limit must hold whatever length the input declares. For 1.0 the zero-copy decoder must agree with the
//! prost-derived reference decoder: both refuse, or both give the same series, labels and samples.
#![no_main]

use ember_server::remote_write::{
    DecodedSeries, Limits, Protocol, decode, decode_v1_reference, decompress,
};
use libfuzzer_sys::fuzz_target;

/// A series with sample values as bits, so NaNs compare equal.
fn comparable(s: &DecodedSeries) -> impl PartialEq + std::fmt::Debug + '_ {
    (
        &s.labels,
        s.samples
            .iter()
            .map(|&(t, v)| (t, v.to_bits()))
            .collect::<Vec<_>>(),
        s.histograms,
        s.exemplars,
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let protocol = if sel & 1 == 0 {
        Protocol::V1
    } else {
        Protocol::V2
    };
    let limits = Limits {
        max_body_bytes: 1 << 20,
        max_decompressed_bytes: 4 << 20,
    };
    let raw = if sel & 2 == 0 {
        match decompress(body, &limits) {
            Ok(raw) => {
                assert!(raw.len() <= limits.max_decompressed_bytes);
                raw
            }
            Err(_) => return,
        }
    } else {
        body.to_vec()
    };
    let got = decode(protocol, &raw);
    if protocol == Protocol::V1 {
        match (&got, decode_v1_reference(&raw)) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a.len(), b.len());
                for (x, y) in a.iter().zip(&b) {
                    assert_eq!(comparable(x), comparable(y));
                }
            }
            (Err(_), Err(_)) => {}
            (a, b) => panic!("decoders disagree: zero-copy {a:?}, prost {b:?}"),
        }
    }
    if let Ok(series) = got {
        for s in series {
            if let Ok(l) = &s.labels {
                assert!(l.get("__name__").is_some());
            }
        }
    }
});
