//! Fuzzes `meta.json` parsing with arbitrary bytes. Checked with every input: parsing never panics;
//! an error names the file; whatever parses serializes to JSON that parses back to the same value
//! (so rewriting a block's meta.json never changes or loses what was read).
#![no_main]

use std::path::Path;

use ember::{BlockMeta, Error};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz/meta.json");
    match BlockMeta::from_json(data, path) {
        Ok(meta) => {
            let json = meta.to_json();
            let again = BlockMeta::from_json(&json, path).unwrap_or_else(|e| {
                panic!("re-parse failed: {e}\n{}", String::from_utf8_lossy(&json))
            });
            assert_eq!(again, meta);
            assert_eq!(again.to_json(), json);
        }
        Err(Error::InvalidMeta { path: p, .. }) => assert_eq!(p, path),
        Err(e) => panic!("unexpected error kind: {e}"),
    }
});
