//! Remote-write decoding on arbitrary input: the first byte picks the path (snappy-compressed or raw
//! protobuf, 1.0 or 2.0); decoding must return a value or an error, never panic, and the decompression
//! limit must hold whatever length the input declares.
#![no_main]

use ember_server::remote_write::{Limits, Protocol, decode, decompress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else { return };
    let protocol = if sel & 1 == 0 { Protocol::V1 } else { Protocol::V2 };
    let limits = Limits { max_body_bytes: 1 << 20, max_decompressed_bytes: 4 << 20 };
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
    if let Ok(series) = decode(protocol, &raw) {
        for s in series {
            if let Ok(l) = &s.labels {
                assert!(l.get("__name__").is_some());
            }
        }
    }
});
